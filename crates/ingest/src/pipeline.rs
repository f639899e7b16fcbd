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

use parquetrail_core::convert::{FileReport, Options, Source, convert_source, skip_reason};
use parquetrail_core::digest_table::Signature;
use parquetrail_core::object_key::ObjectKey;
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::storage::{ErrorKind, Storage};

/// Why an object was not converted; `retryable` decides between "try again" (SQS redrive,
/// `TemporaryFailure`, a Lambda retry) and "never" (the object is gone or invalid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub retryable: bool,
    pub message: String,
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
}

impl Pipeline {
    /// Writes under `dest_prefix` of `dest`; transient failures are retried up to 3 attempts per
    /// object (each request is retried by the SDK as well).
    pub fn new(dest: Arc<dyn Storage>, dest_prefix: impl Into<String>, options: Options) -> Self {
        Pipeline { dest, dest_prefix: dest_prefix.into(), options, attempts: 3, backoff: Duration::from_millis(250) }
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
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (used_key, etag, result) = self.process_once(source, key, raw_key, version_id).await;
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
                let message = match e.kind {
                    ErrorKind::NotFound => {
                        format!("{}/{used}: object not found (deleted since announced?): {e}", source.describe())
                    }
                    _ => e.message,
                };
                return (used, None, Err(IngestError { retryable: e.kind == ErrorKind::Retryable, message }));
            }
        };
        let version = version_id.map(str::to_string).or(opened.version_id.clone());
        let etag = opened.etag.clone();
        let result = self.convert_opened(opened, source.bucket().map(str::to_string), used.clone(), version).await;
        (used, etag, result)
    }

    /// Converts a local file under the given key (its CloudTrail key, so outputs are named as if
    /// it were read from the trail bucket).
    pub async fn process_file(&self, path: &std::path::Path, key: &str) -> Outcome {
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
                self.convert_opened(opened, None, key.to_string(), None).await
            }
            Err(e) => Err(IngestError { retryable: false, message: format!("{}: {e}", path.display()) }),
        };
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
    ) -> Result<FileReport, IngestError> {
        let sink = self.dest.sink(&self.dest_prefix);
        let reader = SyncIoBridge::new(opened.reader);
        let options = self.options.clone();
        let used = key.clone();
        let key_owned = key;
        // A digest's signature lives in its user metadata; the core takes it as plain values.
        let signature = opened.metadata.get("signature").cloned();
        let signature_algorithm = opened.metadata.get("signature-algorithm").cloned();
        let joined = tokio::task::spawn_blocking(move || {
            let source = Source {
                bucket: bucket.as_deref(),
                key: &key_owned,
                version_id: version.as_deref(),
                signature: Signature { signature: signature.as_deref(), algorithm: signature_algorithm.as_deref() },
            };
            convert_source(source, reader, sink.as_ref(), &options)
        })
        .await;
        match joined {
            Ok(Ok(report)) => self.publish(report).await,
            Ok(Err(e)) => Err(IngestError { retryable: !e.is_permanent(), message: e.to_string() }),
            Err(e) => Err(IngestError { retryable: true, message: format!("{used}: conversion task failed: {e}") }),
        }
    }
}

impl Pipeline {
    /// Lists a converted file's outputs in their partitions' manifests: until then no reader
    /// sees them, and a failure here is retryable like a failed write (the outputs are rewritten
    /// identically and listed on the next attempt).
    async fn publish(&self, report: FileReport) -> Result<FileReport, IngestError> {
        let paths: Vec<String> = report.outputs.iter().map(|o| o.path.clone()).collect();
        if paths.is_empty() {
            return Ok(report);
        }
        match crate::manifest::add(self.dest.as_ref(), &self.dest_prefix, &paths).await {
            Ok(added) => {
                if !added.refused.is_empty() {
                    tracing::info!(
                        key = %report.key,
                        files = ?added.refused,
                        "outputs already compacted: their rows are in a compacted file, so they stay unlisted"
                    );
                }
                Ok(report)
            }
            Err(e) => Err(IngestError {
                retryable: e.kind != ErrorKind::Permanent,
                message: format!("{}: listing outputs in the manifest: {e}", report.key),
            }),
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
