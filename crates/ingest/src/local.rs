//! Local disk: a directory as [`Storage`], and the sink that writes an archive directory.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use parquetrail_core::sink::{Sink, SinkFile};

use crate::storage::{ErrorKind, ListPage, ObjectMeta, Opened, Storage, StorageError};

/// Writes outputs under a directory. Each output is written to a temporary file beside its final
/// path and renamed on commit, so readers never see a half-written Parquet file and an
/// interrupted run leaves no partial output behind. The temporary files a killed run left in a
/// directory are reclaimed when a later run writes there (see [`reclaim_stale_temporaries`]).
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
    reclaimed: Reclaimed,
}

impl DirSink {
    /// A sink under `root`, created now.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(DirSink { root, reclaimed: Reclaimed::default() })
    }

    /// A sink under `root`, created with its first output.
    pub fn new_lazy(root: impl Into<PathBuf>) -> Self {
        DirSink { root: root.into(), reclaimed: Reclaimed::default() }
    }

    /// The directory outputs go under.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name of a temporary file beside `dest`: hidden (listings and source walks skip dot files),
/// and naming the process that writes it, so a later run can tell a live writer's file from one a
/// killed process left behind.
fn temporary_name(dest: &Path, fallback: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest.file_name().and_then(|f| f.to_str()).unwrap_or(fallback);
    dest.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// The process id a temporary file name (see [`temporary_name`]) carries.
fn temporary_owner(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, owner) = stem.rsplit_once('.')?;
    let (pid, n) = owner.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether the process that named a temporary file may still be writing it. Where the system
/// lists its processes (`/proc`), a process that is not listed is gone; elsewhere a file is taken
/// as abandoned once it has not changed for a day.
fn owner_may_be_alive(pid: u32, path: &Path) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    let age = fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_none_or(|age| age < std::time::Duration::from_secs(24 * 3600))
}

/// Removes from `dir` the temporary files of writers that are gone (a process killed mid-write,
/// a machine that lost power): they are hidden, so no reader or listing ever saw them, and they
/// would otherwise hold disk space forever. Files of live processes are left alone, so two runs
/// writing to one archive at once do not disturb each other. Returns how many were removed.
///
/// The archive directory is expected to be written from one machine: a process id names a
/// process of this machine only.
pub fn reclaim_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else { continue };
        let path = entry.path();
        if !owner_may_be_alive(pid, &path) && fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), pid, "removed a temporary file left by a process that is gone");
            removed += 1;
        }
    }
    removed
}

/// The directories a writer already reclaimed stale temporary files from: each once per writer.
#[derive(Debug, Clone, Default)]
struct Reclaimed(Arc<Mutex<HashSet<PathBuf>>>);

/// Bytes an output collects before each write: a delivery's output (tens of KB) goes out in one
/// or two writes. At 1 MiB, every output allocated and faulted in a buffer of its own larger
/// than most outputs.
const OUTPUT_BUFFER: usize = 128 << 10;

impl Reclaimed {
    fn seen(&self, dir: &Path) -> bool {
        self.0.lock().is_ok_and(|seen| seen.contains(dir))
    }

    fn once(&self, dir: &Path) {
        let first = self.0.lock().map(|mut seen| seen.insert(dir.to_path_buf())).unwrap_or(false);
        if first {
            reclaim_stale_temporaries(dir);
        }
    }
}

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
        // A directory this writer made before is not made again (two system calls an output).
        if let Some(parent) = dest.parent()
            && !self.reclaimed.seen(parent)
        {
            fs::create_dir_all(parent)?;
            self.reclaimed.once(parent);
        }
        let tmp = temporary_name(&dest, "out");
        let file = match (fs::File::create(&tmp), dest.parent()) {
            // Made before and removed since (an archive cleared under a long run).
            (Err(e), Some(parent)) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(parent)?;
                fs::File::create(&tmp)?
            }
            (file, _) => file?,
        };
        Ok(Box::new(DirFile { tmp, dest, file: Some(io::BufWriter::with_capacity(OUTPUT_BUFFER, file)) }))
    }
}
/// A local directory; keys are paths relative to it, `/`-separated.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    reclaimed: Reclaimed,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into(), reclaimed: Reclaimed::default() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if key.split('/').any(|s| s == "..") {
            return Err(StorageError::new(ErrorKind::Permanent, format!("refusing key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

/// Reads up to this size (a footer, a page range, a manifest, a lookup index part) run on the
/// calling task: a `pread` of a few hundred KB from the page cache takes microseconds, while
/// handing it to tokio's blocking pool cost a thread hand-off each, and a lookup making dozens of
/// them at once spawned dozens of threads (most of a point lookup's time was that). Larger reads
/// still go to the blocking pool.
const INLINE_BYTES: u64 = 256 << 10;

/// Runs file I/O on this task when `inline` (small, see [`INLINE_BYTES`]), else on tokio's
/// blocking pool.
async fn file_io<T: Send + 'static>(
    inline: bool,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<io::Result<T>, StorageError> {
    if inline {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))
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

    async fn read(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        let what = path.display().to_string();
        let small = fs::metadata(&path).is_ok_and(|m| m.len() <= INLINE_BYTES);
        file_io(small, move || fs::read(&path)).await?.map_err(|e| io_error(&what, e))
    }

    async fn read_tail(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StorageError> {
        let path = self.path(key)?;
        let what = path.display().to_string();
        file_io(n <= INLINE_BYTES, move || {
            let mut file = fs::File::open(&path)?;
            let size = file.metadata()?.len();
            let start = size.saturating_sub(n);
            io::Seek::seek(&mut file, io::SeekFrom::Start(start))?;
            let mut body = Vec::with_capacity((size - start) as usize);
            io::Read::read_to_end(&mut file, &mut body)?;
            Ok((body, size))
        })
        .await?
        .map_err(|e| io_error(&what, e))
    }

    async fn read_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        let what = path.display().to_string();
        let len = range.end.saturating_sub(range.start);
        file_io(len <= INLINE_BYTES, move || {
            let mut file = fs::File::open(&path)?;
            io::Seek::seek(&mut file, io::SeekFrom::Start(range.start))?;
            let mut body = Vec::with_capacity(len as usize);
            io::Read::read_to_end(&mut io::Read::take(file, len), &mut body)?;
            Ok(body)
        })
        .await?
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
        file_io(true, move || {
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
        .await?
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
            self.reclaimed.once(parent);
        }
        // Beside the destination, hidden (listings skip dot files), then renamed over it.
        let tmp = temporary_name(&path, "object");
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
        let small = fs::metadata(&path).map_or(true, |m| m.len() <= INLINE_BYTES);
        let read = {
            let path = path.clone();
            file_io(small, move || fs::read(&path)).await?
        };
        match read {
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
        let reclaimed = self.reclaimed.clone();
        tokio::task::spawn_blocking(move || {
            let what = path.display().to_string();
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error(&what, e))?;
                reclaimed.once(parent);
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
            let tmp = temporary_name(&path, "object");
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
        // A directory the sink made, removed since, is made again.
        fs::remove_dir_all(dir.path().join("a")).unwrap();
        sink.create("a/e.txt").unwrap().commit().unwrap();
        assert!(dir.path().join("a/e.txt").is_file());
    }

    /// A process that exited (as a killed run has) left temporary files: the next writer in that
    /// directory removes them, and leaves alone those of a live process and anything else hidden.
    #[cfg(target_os = "linux")]
    #[test]
    fn temporaries_of_gone_processes_are_reclaimed_by_the_next_writer() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("events/account=1");
        fs::create_dir_all(&part).unwrap();
        let stale = format!(".f.parquet.{gone}-7.tmp");
        let live = format!(".g.parquet.{}-3.tmp", std::process::id());
        for name in [stale.as_str(), live.as_str(), ".notes.tmp", ".symlink.txt.lock"] {
            fs::write(part.join(name), b"x").unwrap();
        }
        let sink = DirSink::new(dir.path()).unwrap();
        sink.create("events/account=1/h.parquet").unwrap().commit().unwrap();
        let mut names: Vec<String> =
            fs::read_dir(&part).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let mut want = vec![live.clone(), ".notes.tmp".into(), ".symlink.txt.lock".into(), "h.parquet".into()];
        want.sort();
        assert_eq!(names, want);
        assert_eq!(temporary_owner(&stale), Some(gone));
        assert_eq!(temporary_owner(".notes.tmp"), None);
    }
}
