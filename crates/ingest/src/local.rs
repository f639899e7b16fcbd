//! Local disk: a directory as [`Storage`], and the sink that writes an archive directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parquetrail_core::sink::{Sink, SinkFile};

use crate::storage::{ErrorKind, ListPage, ObjectMeta, Opened, Storage, StorageError};

/// Writes outputs under a directory. Each output is written to a temporary file beside its final
/// path and renamed on commit, so readers never see a half-written Parquet file and an
/// interrupted run leaves no partial output behind.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink under `root`, created now.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(DirSink { root })
    }

    /// A sink under `root`, created with its first output.
    pub fn new_lazy(root: impl Into<PathBuf>) -> Self {
        DirSink { root: root.into() }
    }

    /// The directory outputs go under.
    pub fn root(&self) -> &Path {
        &self.root
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
    /// A commit that fails (a full disk on the last flush, a rename refused) removes the
    /// temporary file too: nothing hidden is left behind.
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        let committed = file.into_inner().map_err(|e| e.into_error()).and_then(|file| {
            file.sync_data()?;
            drop(file);
            fs::rename(&self.tmp, &self.dest)
        });
        if committed.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        committed
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
/// A local directory; keys are paths relative to it, `/`-separated.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if key.split('/').any(|s| s == "..") {
            return Err(StorageError::new(ErrorKind::Permanent, format!("refusing key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

fn io_error(what: &str, e: io::Error) -> StorageError {
    let kind = match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ErrorKind::Permanent,
        _ => ErrorKind::Retryable,
    };
    StorageError::new(kind, format!("{what}: {e}"))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let key = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let meta = entry.metadata()?;
            out.push(ObjectMeta { key, size: meta.len(), etag: None, last_modified: meta.modified().ok() });
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for LocalStorage {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn open(&self, key: &str, _version_id: Option<&str>) -> Result<Opened, StorageError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| io_error(&path.display().to_string(), e))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        Ok(Opened { reader: Box::new(file), size, etag: None, version_id: None, metadata: Default::default() })
    }

    async fn read_tail(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StorageError> {
        let path = self.path(key)?;
        let what = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut file = fs::File::open(&path)?;
            let size = file.metadata()?.len();
            let start = size.saturating_sub(n);
            io::Seek::seek(&mut file, io::SeekFrom::Start(start))?;
            let mut body = Vec::with_capacity((size - start) as usize);
            io::Read::read_to_end(&mut file, &mut body)?;
            Ok((body, size))
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))?
        .map_err(|e| io_error(&what, e))
    }

    async fn read_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        let what = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut file = fs::File::open(&path)?;
            io::Seek::seek(&mut file, io::SeekFrom::Start(range.start))?;
            let len = range.end.saturating_sub(range.start);
            let mut body = Vec::with_capacity(len as usize);
            io::Read::read_to_end(&mut io::Read::take(file, len), &mut body)?;
            Ok(body)
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))?
        .map_err(|e| io_error(&what, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let root = self.root.clone();
        let dir = self.path(prefix)?;
        let mut out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &dir, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))?
        .map_err(|e| io_error(&self.describe(), e))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.path(prefix)?;
        let prefix = prefix.to_string();
        let what = dir.display().to_string();
        tokio::task::spawn_blocking(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && entry.file_type()?.is_dir() {
                    out.push(format!("{prefix}{name}/"));
                }
            }
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))?
        .map_err(|e| io_error(&what, e))
    }

    /// A directory is listed in one page: the prefixes a backfill lists are single days of one
    /// account and region (at most a few thousand files), so one page stays small.
    async fn list_page(&self, prefix: &str, _token: Option<&str>) -> Result<ListPage, StorageError> {
        Ok(ListPage { objects: self.list(prefix).await?, next: None })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io_error(&parent.display().to_string(), e))?;
        }
        // Beside the destination, hidden (listings skip dot files), then renamed over it.
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("object");
        let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let what = path.display().to_string();
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &body).await?;
            file.sync_data().await?;
            drop(file);
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map_err(|e| io_error(&what, e))
    }

    async fn read_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => {
                let tag = content_tag(&body);
                Ok(Some((body, tag)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path.display().to_string(), e)),
        }
    }

    /// The compare and the swap happen under an exclusive lock on a hidden file beside the
    /// object, so concurrent writers in this and other processes take turns; the swap itself is a
    /// rename, so readers (who take no lock) see the old object or the new one.
    async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, StorageError> {
        let path = self.path(key)?;
        let expected = expected.map(str::to_string);
        let what = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let what = path.display().to_string();
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error(&what, e))?;
            }
            let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("object").to_string();
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path.with_file_name(format!(".{name}.lock")))
                .map_err(|e| io_error(&what, e))?;
            lock.lock().map_err(|e| io_error(&what, e))?;
            let current = match fs::read(&path) {
                Ok(b) => Some(content_tag(&b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_error(&what, e)),
            };
            if current != expected {
                return Err(StorageError::new(
                    ErrorKind::Conflict,
                    format!("{what}: changed since read (expected {expected:?}, found {current:?})"),
                ));
            }
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
            let written = (|| {
                let mut file = fs::File::create(&tmp)?;
                file.write_all(&body)?;
                file.sync_data()?;
                fs::rename(&tmp, &path)
            })();
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io_error(&what, e));
            }
            Ok(content_tag(&body))
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("{what}: {e}")))?
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path.display().to_string(), e)),
        }
    }

    fn sink(&self, prefix: &str) -> Arc<dyn Sink + Send + Sync> {
        Arc::new(DirSink::new_lazy(self.root.join(prefix)))
    }
}

/// A local object's version tag: the SHA-256 of its content, quoted like an ETag.
fn content_tag(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A commit that fails leaves no temporary file: here the destination is a directory.
        fs::create_dir_all(dir.path().join("a/d.txt/inside")).unwrap();
        let mut h = sink.create("a/d.txt").unwrap();
        h.write_all(b"data").unwrap();
        assert!(h.commit().is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["b.txt", "d.txt"], "a failed commit leaves nothing behind");
        for bad in ["../x", "/abs", "a/../../x", "a//b", "./a"] {
            assert!(sink.create(bad).is_err(), "{bad}");
        }
    }
}
