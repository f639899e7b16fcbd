//! One announced object through the pure core: open (streaming), convert on a blocking thread,
//! write through the destination's sink, and say whether a failure is worth retrying.
//!
//! Outputs become visible to readers only when [`crate::manifest::add`] lists them, after they are
//! committed.
//!
//! Idempotence comes from the core: output names derive from the source key and partition and
//! bytes from the content, so a retry, a duplicate notification or two concurrent invocations for
//! the same object all leave exactly the same objects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parquetrail_core::convert::{FileReport, Options, Source, convert_source, quarantine_object, skip_reason};
use parquetrail_core::digest_table::Signature;
use parquetrail_core::object_key::ObjectKey;
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::error::Error;
use crate::manifest::ManifestCache;
use crate::storage::{ErrorKind, Storage, StorageError};

/// Why an object was not converted, as reports and responses carry it: an [`Error`]'s verdict
/// ([`Error::retryable`]) and message. `retryable` decides between "try again" (SQS redrive,
/// `TemporaryFailure`, a Lambda retry) and "never" (the object is gone or invalid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub retryable: bool,
    pub message: String,
}

impl From<&Error> for IngestError {
    fn from(e: &Error) -> Self {
        IngestError { retryable: e.retryable(), message: e.to_string() }
    }
}

impl From<Error> for IngestError {
    fn from(e: Error) -> Self {
        IngestError::from(&e)
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub bucket: Option<String>,
    /// The key that was read (the second reading of the key when the first was not found).
    pub key: String,
    pub result: Result<FileReport, IngestError>,
    /// The ETag of the object read, when the storage gives one (what the ledger keys versions on).
    pub etag: Option<String>,
    pub attempts: u32,
    pub seconds: f64,
}

impl Outcome {
    /// A one-line reason for a failed or quarantined object, for responses and logs.
    pub fn problem(&self) -> Option<String> {
        match &self.result {
            Err(e) => Some(e.message.clone()),
            Ok(r) => r.failure.as_ref().map(|f| format!("quarantined ({}): {}", f.quarantine_path, f.reason)),
        }
    }
}

/// Converts objects into one destination.
#[derive(Debug, Clone)]
pub struct Pipeline {
    dest: Arc<dyn Storage>,
    dest_prefix: String,
    options: Options,
    attempts: u32,
    backoff: Duration,
    /// What this pipeline (and its clones: a warm Lambda instance's invocations) last knew of the
    /// manifests it wrote, so the next delivery to a partition writes without reading first.
    manifests: Arc<ManifestCache>,
    /// Whether outputs are left for the caller to list ([`Pipeline::listing_later`]).
    list_later: bool,
}

impl Pipeline {
    /// Writes under `dest_prefix` of `dest`; transient failures are retried up to 3 attempts per
    /// object (each request is retried by the SDK as well).
    pub fn new(dest: Arc<dyn Storage>, dest_prefix: impl Into<String>, options: Options) -> Self {
        Pipeline {
            dest,
            dest_prefix: dest_prefix.into(),
            options,
            attempts: 3,
            backoff: Duration::from_millis(250),
            manifests: Arc::default(),
            list_later: false,
        }
    }

    /// This pipeline, leaving the outputs of each object it converts unlisted: the caller lists
    /// those of several objects at once with [`Pipeline::list`], one manifest write per partition
    /// between them, once all are converted (a Lambda invocation's SQS batch). Until then no
    /// reader sees them, as when a conversion stops before listing.
    pub fn listing_later(mut self) -> Self {
        self.list_later = true;
        self
    }

    /// Lists the outputs of converted objects in their partitions' manifests: one conditional
    /// write per partition for all of them. Call it only once every one of them is committed.
    /// A transient failure is tried again as a conversion is (the pipeline's attempts and
    /// backoff): before outputs were listed together, each object's listing had those retries.
    pub async fn list(&self, reports: &[&FileReport]) -> Result<(), StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.list_once(reports).await {
                Err(e) if crate::error::storage_retryable(&e) && attempt < self.attempts => {
                    let wait = self.backoff * 2u32.pow(attempt - 1);
                    tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "listing failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                listed => return listed,
            }
        }
    }

    async fn list_once(&self, reports: &[&FileReport]) -> Result<(), StorageError> {
        let paths: Vec<String> = reports.iter().flat_map(|r| r.outputs.iter().map(|o| o.path.clone())).collect();
        if paths.is_empty() {
            return Ok(());
        }
        let added = crate::manifest::add_cached(self.dest.as_ref(), &self.dest_prefix, &paths, &self.manifests).await?;
        if !added.refused.is_empty() {
            tracing::info!(
                keys = ?reports.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
                files = ?added.refused,
                "outputs already compacted: their rows are in a compacted file, so they stay unlisted"
            );
        }
        Ok(())
    }

    /// Attempts per object and the first backoff between them.
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// Where outputs go: the storage and the archive's prefix in it.
    pub fn destination(&self) -> (&Arc<dyn Storage>, &str) {
        (&self.dest, &self.dest_prefix)
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Converts one object. `raw_key`, a second reading of a key whose encoding is ambiguous (see
    /// [`crate::notifications::ObjectRef::raw_key`]), is read only when `key` is not found: an
    /// object that exists under `key` is never passed over for another.
    pub async fn process(
        &self,
        source: &dyn Storage,
        key: &str,
        raw_key: Option<&str>,
        version_id: Option<&str>,
    ) -> Outcome {
        self.process_named(source, key, raw_key, version_id, None).await
    }

    /// [`Pipeline::process`], naming the outputs after `distinct`, the source's full identity,
    /// when another object owns its plain names ([`parquetrail_core::convert::Source::distinct`]).
    pub async fn process_named(
        &self,
        source: &dyn Storage,
        key: &str,
        raw_key: Option<&str>,
        version_id: Option<&str>,
        distinct: Option<&[u8]>,
    ) -> Outcome {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (used_key, etag, result) = self.process_once(source, key, raw_key, version_id, distinct).await;
            let retry = matches!(&result, Err(e) if e.retryable) && attempt < self.attempts;
            if !retry {
                let outcome = Outcome {
                    bucket: source.bucket().map(str::to_string),
                    key: used_key,
                    result,
                    etag,
                    attempts: attempt,
                    seconds: started.elapsed().as_secs_f64(),
                };
                log(&outcome);
                return outcome;
            }
            let wait = self.backoff * 2u32.pow(attempt - 1);
            tracing::warn!(key, attempt, wait_ms = wait.as_millis() as u64, "transient failure, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn process_once(
        &self,
        source: &dyn Storage,
        key: &str,
        raw_key: Option<&str>,
        version_id: Option<&str>,
        distinct: Option<&[u8]>,
    ) -> (String, Option<String>, Result<FileReport, IngestError>) {
        if let Some(reason) = skip_reason(&ObjectKey::parse(key)) {
            return (
                key.to_string(),
                None,
                Ok(FileReport { key: key.to_string(), skipped: Some(reason), ..FileReport::default() }),
            );
        }
        let mut used = key.to_string();
        let mut opened = source.open(key, version_id).await;
        if let (Err(e), Some(raw)) = (&opened, raw_key)
            && e.kind == ErrorKind::NotFound
            && raw != key
        {
            used = raw.to_string();
            opened = source.open(raw, version_id).await;
        }
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                let error = match e.kind {
                    ErrorKind::NotFound => {
                        Error::NotFound { location: source.describe(), key: used.clone(), source: e }
                    }
                    _ => Error::Storage(e),
                };
                return (used, None, Err(error.into()));
            }
        };
        let version = version_id.map(str::to_string).or(opened.version_id.clone());
        let etag = opened.etag.clone();
        let distinct = distinct.map(<[u8]>::to_vec);
        let result =
            self.convert_opened(opened, source.bucket().map(str::to_string), used.clone(), version, distinct).await;
        (used, etag, result.map_err(IngestError::from))
    }

    /// Converts a local file under the given key (its CloudTrail key, so outputs are named as if
    /// it were read from the trail bucket).
    pub async fn process_file(&self, path: &std::path::Path, key: &str) -> Outcome {
        self.process_file_named(path, key, None).await
    }

    /// [`Pipeline::process_file`] with names of its own when `distinct` (see
    /// [`Pipeline::process_named`]).
    pub async fn process_file_named(&self, path: &std::path::Path, key: &str, distinct: Option<&[u8]>) -> Outcome {
        let started = Instant::now();
        let result = match tokio::fs::File::open(path).await {
            Ok(file) => {
                let opened = crate::storage::Opened {
                    reader: Box::new(file),
                    size: None,
                    etag: None,
                    version_id: None,
                    metadata: Default::default(),
                };
                self.convert_opened(opened, None, key.to_string(), None, distinct.map(<[u8]>::to_vec)).await
            }
            Err(source) => Err(Error::File { path: path.to_path_buf(), source }),
        };
        let result = result.map_err(IngestError::from);
        let outcome = Outcome {
            bucket: None,
            key: key.to_string(),
            result,
            etag: None,
            attempts: 1,
            seconds: started.elapsed().as_secs_f64(),
        };
        log(&outcome);
        outcome
    }

    async fn convert_opened(
        &self,
        opened: crate::storage::Opened,
        bucket: Option<String>,
        key: String,
        version: Option<String>,
        distinct: Option<Vec<u8>>,
    ) -> Result<FileReport, Error> {
        let sink = self.dest.sink(&self.dest_prefix);
        let reader = SyncIoBridge::new(opened.reader);
        let options = self.options.clone();
        let used = key.clone();
        let (bucket_kept, version_kept, distinct_kept) = (bucket.clone(), version.clone(), distinct.clone());
        // A digest's signature lives in its user metadata; the core takes it as plain values.
        let signature = opened.metadata.get("signature").cloned();
        let signature_algorithm = opened.metadata.get("signature-algorithm").cloned();
        let joined = tokio::task::spawn_blocking(move || {
            let source = Source {
                bucket: bucket.as_deref(),
                key: &key,
                version_id: version.as_deref(),
                signature: Signature { signature: signature.as_deref(), algorithm: signature_algorithm.as_deref() },
                distinct: distinct.as_deref(),
            };
            convert_source(source, reader, sink.as_ref(), &options)
        })
        .await;
        // A failure no retry can change is quarantined, never just reported: an object
        // acknowledged with nothing archived and nothing quarantined would be lost silently.
        let (class, reason) = match joined {
            Ok(Ok(report)) => return self.publish(report).await,
            Ok(Err(e)) if !e.retryable() => ("unconvertible", e.to_string()),
            Ok(Err(e)) => return Err(Error::Convert(e)),
            Err(e) if e.is_panic() => ("crashed", format!("the conversion panicked: {}", panic_text(e.into_panic()))),
            Err(source) => return Err(Error::Task { key: used, source }),
        };
        tracing::error!(key = %used, class, reason = %reason, "quarantining the whole object");
        let sink = self.dest.sink(&self.dest_prefix);
        let options = self.options.clone();
        let key = used.clone();
        let written = tokio::task::spawn_blocking(move || {
            let source = Source {
                bucket: bucket_kept.as_deref(),
                key: &key,
                version_id: version_kept.as_deref(),
                distinct: distinct_kept.as_deref(),
                ..Source::default()
            };
            quarantine_object(source, class, &reason, sink.as_ref(), &options)
        })
        .await;
        let failed = match written {
            Ok(Ok(report)) => return Ok(report),
            Ok(Err(e)) => Error::Convert(e),
            Err(source) => Error::Task { key: used.clone(), source },
        };
        Err(Error::Quarantine { key: used, source: Box::new(failed) })
    }
}

/// The message a panic carried (`panic!` with a literal or a formatted string), for the record.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "no message".to_string(), |s| s.to_string()),
    }
}

impl Pipeline {
    /// Lists a converted file's outputs in their partitions' manifests: until then no reader
    /// sees them, and a failure here is retryable like a failed write (the outputs are rewritten
    /// identically and listed on the next attempt).
    async fn publish(&self, report: FileReport) -> Result<FileReport, Error> {
        if self.list_later {
            return Ok(report);
        }
        // One attempt: a failure here fails the attempt, which process_named repeats whole.
        match self.list_once(&[&report]).await {
            Ok(()) => Ok(report),
            Err(source) => Err(Error::Publish { key: report.key, source }),
        }
    }
}

fn log(outcome: &Outcome) {
    let bucket = outcome.bucket.as_deref().unwrap_or("");
    let duration_ms = (outcome.seconds * 1000.0) as u64;
    match &outcome.result {
        Ok(r) if r.skipped.is_some() => {
            tracing::info!(bucket, key = %outcome.key, reason = r.skipped.as_deref(), "skipped")
        }
        Ok(r) if r.failure.is_some() => tracing::error!(
            bucket,
            key = %outcome.key,
            reason = r.failure.as_ref().map(|f| f.reason.as_str()),
            quarantine = r.failure.as_ref().map(|f| f.quarantine_path.as_str()),
            bytes = r.bytes_in,
            duration_ms,
            "file quarantined"
        ),
        Ok(r) => tracing::info!(
            bucket,
            key = %outcome.key,
            records = r.records,
            rows = r.rows,
            quarantined = r.quarantined,
            filtered = r.filtered,
            bytes = r.bytes_in,
            json_bytes = r.json_bytes,
            partitions = r.outputs.len(),
            duration_ms,
            attempts = outcome.attempts,
            "converted"
        ),
        Err(e) => tracing::error!(
            bucket,
            key = %outcome.key,
            retryable = e.retryable,
            error = %e.message,
            attempts = outcome.attempts,
            duration_ms,
            "failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use async_trait::async_trait;
    use parquetrail_core::sink::Sink;
    use tokio::io::{AsyncRead, ReadBuf};

    use super::*;
    use crate::local::LocalStorage;
    use crate::storage::{ListPage, ObjectMeta, Opened, StorageError};

    /// A source whose objects make the converter crash: the stream panics after its first bytes,
    /// on the conversion's own thread (as a bug in the converter would).
    #[derive(Debug)]
    struct Crashing(LocalStorage);

    /// Hands out the start of a log file, then panics.
    struct PanicsAfterOpening(&'static [u8]);

    impl AsyncRead for PanicsAfterOpening {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            assert!(!self.0.is_empty(), "the converter crashed");
            let n = buf.remaining().min(self.0.len());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Poll::Ready(Ok(()))
        }
    }

    #[async_trait]
    impl Storage for Crashing {
        fn describe(&self) -> String {
            "crashing".into()
        }
        fn bucket(&self) -> Option<&str> {
            Some("trail")
        }
        async fn open(&self, _: &str, _: Option<&str>) -> Result<Opened, StorageError> {
            let reader = Box::new(PanicsAfterOpening(br#"{"Records":[{"eventTime":"2024-01-01T00:00:00Z"},"#));
            Ok(Opened { reader, size: None, etag: None, version_id: None, metadata: Default::default() })
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
            self.0.list(prefix).await
        }
        async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.0.list_prefixes(prefix).await
        }
        async fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<ListPage, StorageError> {
            self.0.list_page(prefix, token).await
        }
        async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
            self.0.put(key, body).await
        }
        async fn read_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
            self.0.read_tagged(key).await
        }
        async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, StorageError> {
            self.0.put_if(key, body, expected).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.0.delete(key).await
        }
        fn sink(&self, prefix: &str) -> Arc<dyn Sink + Send + Sync> {
            self.0.sink(prefix)
        }
    }

    /// A crash of the converter is not retried forever (into the DLQ, with its neighbours) nor
    /// acknowledged with nothing to show: the object is quarantined, naming it and the panic.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_of_the_converter_quarantines_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Arc::new(LocalStorage::new(dir.path().join("archive")));
        let pipeline = Pipeline::new(archive.clone(), "", Options::default()).with_retries(3, Duration::ZERO);
        let source = Crashing(LocalStorage::new(dir.path().join("trail")));
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/111122223333_CloudTrail_us-east-1_20240101T0000Z_Crash.json.gz";
        let outcome = pipeline.process(&source, key, None, Some("v1")).await;
        let report = outcome.result.expect("quarantined, not an error");
        let failure = report.failure.expect("a file failure");
        assert_eq!(failure.class, "crashed");
        assert!(failure.reason.contains("the converter crashed"), "{failure:?}");
        assert_eq!(outcome.attempts, 1, "a crash is not retried");
        let marker: serde_json::Value =
            serde_json::from_slice(&archive.read(&failure.quarantine_path).await.unwrap()).unwrap();
        assert_eq!((marker["source_bucket"].as_str(), marker["source_key"].as_str()), (Some("trail"), Some(key)));
        assert_eq!(marker["source_version_id"], "v1");
        assert_eq!(marker["class"], "crashed");
        let listed = archive.list("").await.unwrap();
        assert_eq!(listed.len(), 1, "only the marker: {listed:?}");
    }

    /// Writes `json` gzipped under `key` of `storage`.
    async fn put_gzipped(storage: &LocalStorage, key: &str, json: &str) {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        storage.put(key, gz.finish().unwrap()).await.unwrap();
    }

    /// An archive that refuses every output for good (a directory name longer than the file
    /// system takes, as an over-long partition value gives) fails the object at once, as not
    /// retryable: not even its quarantine marker can be written, and retrying would hold it (and
    /// its queue) forever. An archive that fails for now (a file where a directory must go, which
    /// an operator can remove) is retried, then reported retryable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_failures_are_retried_only_when_they_may_pass() {
        let dir = tempfile::tempdir().unwrap();
        let trail = LocalStorage::new(dir.path().join("trail"));
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/111122223333_CloudTrail_us-east-1_20240101T0000Z_Write.json.gz";
        put_gzipped(&trail, key, r#"{"Records":[{"eventTime":"2024-01-01T00:00:00Z","eventID":"a"}]}"#).await;

        let refusing = Arc::new(LocalStorage::new(dir.path().join("refusing")));
        let too_long = "p".repeat(300);
        let pipeline = Pipeline::new(refusing, too_long, Options::default()).with_retries(3, Duration::ZERO);
        let outcome = pipeline.process(&trail, key, None, None).await;
        let err = outcome.result.expect_err("nothing can be written");
        assert!(!err.retryable, "{err}");
        assert_eq!(outcome.attempts, 1, "a permanent failure is not retried: {err}");
        assert!(err.message.contains("quarantining it"), "{err}");

        let full = dir.path().join("blocked");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("events"), b"a file where the dataset's directory goes").unwrap();
        let pipeline =
            Pipeline::new(Arc::new(LocalStorage::new(&full)), "", Options::default()).with_retries(3, Duration::ZERO);
        let outcome = pipeline.process(&trail, key, None, None).await;
        let err = outcome.result.expect_err("the outputs cannot be written");
        assert!(err.retryable, "{err}");
        assert_eq!(outcome.attempts, 3, "{err}");
        assert!(err.message.contains("cannot write output events/"), "{err}");
    }
}
