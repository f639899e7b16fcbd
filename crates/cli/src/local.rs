//! Local sources: walking files and directories, and reading an archive directory's layout.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use parquetrail_ingest::local::DirSink;

/// One local source file and the object key it stands for.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub key: String,
    pub size: u64,
    /// Named on the command line (rather than found in a directory walk).
    pub explicit: bool,
}

/// A directory or file below a source that could not be listed or examined: a run names it,
/// counts it as failed and goes on with the rest.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
    /// Whether a rerun may read it ([`parquetrail_core::io_retryable`] of the failure).
    pub retryable: bool,
}

/// Lists the files of the given sources (files or directories, walked recursively in sorted
/// order), and what below them could not be read. A file's key is its path from the `AWSLogs`
/// segment on when there is one — the key it has in the trail bucket — and otherwise its path
/// relative to the directory given. A source that is missing or unreadable itself is an error.
///
/// `archive` is the directory the run writes to: when it lies inside a source, it is not walked,
/// so a run never reads its own outputs and quarantine back as input (which would quarantine
/// every Parquet file and grow the quarantine on each run).
pub fn list_sources(sources: &[PathBuf], archive: Option<&Path>) -> io::Result<(Vec<SourceFile>, Vec<Unreadable>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    let archive = archive.and_then(|a| fs::canonicalize(a).ok());
    for source in sources {
        let meta = fs::metadata(source).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", source.display())))?;
        if meta.is_dir() {
            // The directory given must itself be readable: otherwise there is nothing to do.
            fs::read_dir(source).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", source.display())))?;
            walk(source, source, archive.as_deref(), &mut out, &mut unreadable);
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
    Ok((out, unreadable))
}

/// Walks `dir`, except the directory `skip`; whatever cannot be listed or examined goes to
/// `unreadable`, and the walk goes on.
fn walk(root: &Path, dir: &Path, skip: Option<&Path>, out: &mut Vec<SourceFile>, unreadable: &mut Vec<Unreadable>) {
    let failed = |path: &Path, e: io::Error| Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
        retryable: parquetrail_core::io_retryable(&e),
    };
    let mut entries = match fs::read_dir(dir).and_then(|d| d.collect::<io::Result<Vec<_>>>()) {
        Ok(entries) => entries,
        Err(e) => return unreadable.push(failed(dir, e)),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // temporary and hidden files
        }
        match entry.file_type() {
            Ok(ty) if ty.is_dir() => {
                // Canonicalised only when the name matches: one system call per candidate.
                let is_skipped = skip.is_some_and(|skip| {
                    skip.file_name() == Some(&*entry.file_name())
                        && fs::canonicalize(&path).is_ok_and(|p| p.as_path() == skip)
                });
                if is_skipped {
                    eprintln!("not reading {} as input: it is the archive this run writes to", path.display());
                } else {
                    walk(root, &path, skip, out, unreadable)
                }
            }
            Ok(ty) if ty.is_file() => match entry.metadata() {
                Ok(meta) => {
                    let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                    out.push(SourceFile { key: key_for(&path, &rel), path, size: meta.len(), explicit: false });
                }
                Err(e) => unreadable.push(failed(&path, e)),
            },
            Ok(_) => {}
            Err(e) => unreadable.push(failed(&path, e)),
        }
    }
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

/// The Parquet files of a dataset that readers see: in a partition with a manifest, the files it
/// lists (compaction leaves replaced files behind for a grace period); in one without (an archive
/// written before manifests), every file.
/// What the archive at `root` records of the rule sets that shaped it, as a sentence; `None`
/// when it was never shaped (the lossless default).
pub fn recorded_shaping(root: &Path) -> anyhow::Result<Option<String>> {
    use parquetrail_core::shaping::{MARKER_DIR, Shaping};
    let dir = root.join(MARKER_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", dir.display())),
    };
    let mut sets = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            sets.push(Shaping::parse_set(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
        }
    }
    sets.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    Ok(Shaping::describe_recorded(&sets))
}

pub fn list_archive(root: &Path, dataset: &str) -> io::Result<Vec<ArchiveFile>> {
    let base = root.join(dataset);
    let mut files = Vec::new();
    if !base.exists() {
        return Ok(files);
    }
    let manifests = root.join(parquetrail_ingest::manifest::MANIFESTS).join(dataset);
    let mut listed = std::collections::BTreeSet::new();
    let mut managed = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    if manifests.is_dir() {
        walk(&manifests, &manifests, None, &mut found, &mut unreadable);
    }
    for m in found.iter().filter(|m| m.path.ends_with(parquetrail_ingest::manifest::MANIFEST_FILE)) {
        if let Some(dir) = m.path.parent().and_then(|d| d.strip_prefix(&manifests).ok()) {
            managed.insert(base.join(dir));
        }
        for line in std::fs::read_to_string(&m.path)?.lines().filter(|l| !l.is_empty()) {
            listed.insert(root.join(line));
        }
    }
    let mut all = Vec::new();
    walk(&base, &base, None, &mut all, &mut unreadable);
    // A reader must not answer from part of the archive without saying so.
    if let Some(u) = unreadable.first() {
        return Err(io::Error::other(format!("{}: {}", u.path.display(), u.reason)));
    }
    for f in all {
        if f.path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        if f.path.parent().is_some_and(|d| managed.contains(d)) && !listed.contains(&f.path) {
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
}
