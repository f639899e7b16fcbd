//! Local-disk adapter: the sink that writes an archive directory, and walking sources.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parquetrail_core::sink::{Sink, SinkFile};

/// Writes outputs under a directory. Each output is written to a temporary file beside its final
/// path and renamed on commit, so readers never see a half-written Parquet file and an
/// interrupted run leaves no partial output behind.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(DirSink { root })
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

struct DirFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<io::BufWriter<fs::File>>,
}

impl Write for DirFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl SinkFile for DirFile {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        drop(file);
        fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for DirFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Sink for DirSink {
    fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>> {
        // Paths come from the core (escaped partition values, sanitised stems); refuse anything
        // that would still leave the root.
        if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") || path.starts_with('/') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing unsafe output path {path:?}")));
        }
        let dest = self.root.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dest.with_file_name(format!(
            ".{}.{}-{n}.tmp",
            dest.file_name().and_then(|f| f.to_str()).unwrap_or("out"),
            std::process::id()
        ));
        let file = fs::File::create(&tmp)?;
        Ok(Box::new(DirFile { tmp, dest, file: Some(io::BufWriter::with_capacity(1 << 20, file)) }))
    }
}

/// One local source file and the object key it stands for.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub key: String,
    pub size: u64,
    /// Named on the command line (rather than found in a directory walk).
    pub explicit: bool,
}

/// Lists the files of the given sources (files or directories, walked recursively in sorted
/// order). A file's key is its path from the `AWSLogs` segment on when there is one — the key it
/// has in the trail bucket — and otherwise its path relative to the directory given.
pub fn list_sources(sources: &[PathBuf]) -> io::Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    for source in sources {
        let meta = fs::metadata(source).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", source.display())))?;
        if meta.is_dir() {
            walk(source, source, &mut out)?;
        } else {
            let name = source.file_name().map(PathBuf::from).unwrap_or_else(|| source.clone());
            out.push(SourceFile {
                key: key_for(source, &name),
                path: source.clone(),
                size: meta.len(),
                explicit: true,
            });
        }
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // temporary and hidden files
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let size = entry.metadata()?.len();
            out.push(SourceFile { key: key_for(&path, &rel), path, size, explicit: false });
        }
    }
    Ok(())
}

fn key_for(path: &Path, fallback: &Path) -> String {
    let parts: Vec<String> = path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if let Some(pos) = parts.iter().rposition(|p| p == "AWSLogs") {
        return parts[pos..].join("/");
    }
    fallback.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// The Parquet files of one dataset of an archive, with their partition values, sorted.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub account: String,
    pub region: String,
    pub date: String,
    pub size: u64,
}

pub fn list_archive(root: &Path, dataset: &str) -> io::Result<Vec<ArchiveFile>> {
    let base = root.join(dataset);
    let mut files = Vec::new();
    if !base.exists() {
        return Ok(files);
    }
    let mut all = Vec::new();
    walk(&base, &base, &mut all)?;
    for f in all {
        if f.path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let rel = f.path.strip_prefix(&base).unwrap_or(&f.path);
        let mut account = String::new();
        let mut region = String::new();
        let mut date = String::new();
        for comp in rel.components() {
            let c = comp.as_os_str().to_string_lossy();
            if let Some((k, v)) = c.split_once('=') {
                let v = parquetrail_core::partition::unescape_value(v);
                match k {
                    "account" => account = v,
                    "region" => region = v,
                    "date" => date = v,
                    _ => {}
                }
            }
        }
        files.push(ArchiveFile { path: f.path, account, region, date, size: f.size });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_start_at_awslogs() {
        let cases = [
            (
                "/data/trail/AWSLogs/1/CloudTrail/r/2024/01/01/f.json.gz",
                "x",
                "AWSLogs/1/CloudTrail/r/2024/01/01/f.json.gz",
            ),
            ("sub/dir/file.json.gz", "dir/file.json.gz", "dir/file.json.gz"),
            ("AWSLogs/AWSLogs/x.json", "x", "AWSLogs/x.json"),
        ];
        for (path, fallback, want) in cases {
            assert_eq!(key_for(Path::new(path), Path::new(fallback)), want, "{path}");
        }
    }

    #[test]
    fn dir_sink_commits_atomically_and_discards_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink::new(dir.path()).unwrap();
        let mut f = sink.create("a/b.txt").unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dir.path().join("a/b.txt").exists(), "invisible before commit");
        f.commit().unwrap();
        assert_eq!(fs::read(dir.path().join("a/b.txt")).unwrap(), b"hello");
        let mut g = sink.create("a/c.txt").unwrap();
        g.write_all(b"partial").unwrap();
        drop(g);
        let names: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["b.txt"], "an uncommitted output leaves nothing behind");
        for bad in ["../x", "/abs", "a/../../x", "a//b", "./a"] {
            assert!(sink.create(bad).is_err(), "{bad}");
        }
    }
}
