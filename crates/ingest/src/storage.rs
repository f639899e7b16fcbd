//! One small trait over where CloudTrail objects live and where the archive goes.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parquetrail_core::sink::Sink;
use tokio::io::AsyncRead;

/// Why a storage operation failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The kinds of storage failure an operator acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// Throttling, 5xx, timeouts, dropped connections, missing permissions: try again later
    /// (permissions included, so a fixed policy plus a redrive loses nothing).
    Retryable,
    /// The request itself is wrong and will never succeed.
    Permanent,
    /// A conditional write lost: the object is no longer at the version the caller read (S3 412
    /// `PreconditionFailed` or 409 `ConditionalRequestConflict`). Re-read and decide again.
    Conflict,
}

impl StorageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StorageError { kind, message: message.into() }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

/// A storage failure as an I/O error (what the core's sinks and readers speak): the
/// [`StorageError`] stays inside, and the kind says what the core needs to know — a permanent
/// failure gets a kind the core never retries.
impl From<StorageError> for std::io::Error {
    fn from(e: StorageError) -> Self {
        let kind = match e.kind {
            ErrorKind::Retryable => std::io::ErrorKind::Other,
            ErrorKind::Permanent => std::io::ErrorKind::InvalidInput,
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            // Another writer's request on the same key was in flight: it settles, so try again.
            ErrorKind::Conflict => std::io::ErrorKind::ResourceBusy,
        };
        std::io::Error::new(kind, e)
    }
}

/// An object opened for streaming.
pub struct Opened {
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The object's user metadata (S3 `x-amz-meta-*`, without the prefix; lower-case names).
    /// CloudTrail keeps each digest's signature there (`signature`, `signature-algorithm`).
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened").field("size", &self.size).field("etag", &self.etag).finish()
    }
}

/// An object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// When the object was last written, when the storage says.
    pub last_modified: Option<std::time::SystemTime>,
}

/// One page of a listing: up to 1,000 objects (S3's page size) and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    /// Pass to the next [`Storage::list_page`] call; `None` on the last page.
    pub next: Option<String>,
}

/// Where objects are read from and written to: an S3 bucket or a local directory.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// How to name this storage in messages: `s3://bucket` or a directory.
    fn describe(&self) -> String;
    /// The bucket, for S3 storage (recorded in quarantine objects).
    fn bucket(&self) -> Option<&str> {
        None
    }
    /// Opens an object for streaming.
    async fn open(&self, key: &str, version_id: Option<&str>) -> Result<Opened, StorageError>;
    /// Lists the objects under a prefix, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
    /// The "directories" directly under `prefix` (empty, or ending with `/`): the common prefixes
    /// of a delimiter listing, each ending with `/`, sorted. Walking a CloudTrail layout with it
    /// touches one request per level instead of every object below.
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// One page of the objects under `prefix`, sorted by key, continuing from `token` (the
    /// previous page's [`ListPage::next`]). Callers that stream pages hold one page at a time
    /// however many objects there are.
    async fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<ListPage, StorageError>;
    /// Reads a whole (small) object.
    async fn read(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let mut opened = self.open(key, None).await?;
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut opened.reader, &mut out)
            .await
            .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("{}/{key}: {e}", self.describe())))?;
        Ok(out)
    }
    /// The last `n` bytes of an object (all of it when it is shorter) and the object's size: a
    /// Parquet reader's first request. The default reads the whole object.
    async fn read_tail(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StorageError> {
        let mut body = self.read(key).await?;
        let size = body.len() as u64;
        body.drain(..size.saturating_sub(n) as usize);
        Ok((body, size))
    }
    /// The bytes `range` of an object (S3 ranged GET). The default reads the whole object.
    async fn read_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StorageError> {
        let body = self.read(key).await?;
        let end = (range.end as usize).min(body.len());
        Ok(body[(range.start as usize).min(end)..end].to_vec())
    }
    /// Writes a whole object, atomically: readers see the old object or the new one, never a part.
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError>;
    /// Reads a whole (small) object with its version tag (S3's ETag, a content hash on disk), for
    /// a later [`Storage::put_if`]. `Ok(None)` when there is no such object.
    async fn read_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError>;
    /// Compare-and-swap: writes `body` only if the object is still at tag `expected`, or, with
    /// `None`, only if it does not exist yet (S3 conditional writes: `If-Match` /
    /// `If-None-Match: *`). Fails with [`ErrorKind::Conflict`] otherwise. Returns the new tag.
    async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, StorageError>;
    /// Deletes an object; deleting one that is already gone succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// How a manifest names an object of this storage: `s3://bucket/key` (what Athena reads), or,
    /// for a directory, the key itself (relative to the directory, so the archive can move).
    fn uri(&self, key: &str) -> String {
        key.to_string()
    }
    /// A sink that writes under `prefix`, for the synchronous core. Its files must be written
    /// and committed from a blocking thread (`tokio::task::spawn_blocking`).
    fn sink(&self, prefix: &str) -> Arc<dyn Sink + Send + Sync>;
}
