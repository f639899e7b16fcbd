//! Backfill: a trail's history for a date range into the archive — fast, bounded, resumable.
//!
//! - **Listing and conversion overlap.** [`crate::listing`] walks only the day prefixes in range
//!   and streams their objects into a small bounded channel; up to `concurrency` objects convert
//!   at once while the next pages are listed. Memory is the channel, the objects in flight and the
//!   ledger's set of done identities — not the number of objects in the bucket.
//! - **Resumable and idempotent.** Each finished object is recorded in the [`Ledger`]; a rerun
//!   skips what is recorded. Outputs are deterministic per source object, so whatever a crash
//!   interrupts is rewritten with identical bytes on the rerun: nothing is lost or duplicated.
//! - **Failures are named.** Objects that failed for a retryable reason are not recorded (the
//!   rerun tries them again); unreadable ones are quarantined and recorded as such.
//!
//! The same listing also writes the S3 Batch Operations manifest ([`Backfill::manifest`]) for
//! running the conversion on AWS's own fleet through the deployed Lambda instead.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use parquetrail_core::convert::{FileTotals, Options};

use crate::ledger::{Checkpoint, Entry, Ledger, full_identity, identity_hash};
use crate::listing::{Discovered, ListFailure, Selection, list_objects};
use crate::pipeline::{IngestError, Outcome, Pipeline};
use crate::storage::{ObjectMeta, Storage, StorageError};

/// A backfill: where from, where to, what, and how hard.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub source: Arc<dyn Storage>,
    /// The trail prefix: the part of the key before `AWSLogs/` (may be empty).
    pub source_prefix: String,
    pub dest: Arc<dyn Storage>,
    /// The archive's root within `dest`.
    pub dest_prefix: String,
    pub selection: Selection,
    /// Conversion options; the record filter is replaced by the selection's dataset filter.
    pub options: Options,
    /// Objects converted at once.
    pub concurrency: usize,
    pub checkpoint: Checkpoint,
}

/// Live counters, shared with whoever draws the progress (updated as work happens).
#[derive(Debug, Default)]
pub struct Progress {
    /// Objects and bytes listed so far (in range, including those already done).
    pub listed: AtomicU64,
    pub listed_bytes: AtomicU64,
    /// Listing has finished: `listed` is the total.
    pub listing_done: AtomicBool,
    /// Objects skipped because the ledger has them, and their bytes.
    pub already_done: AtomicU64,
    pub already_done_bytes: AtomicU64,
    /// Objects processed by this run, and their stored bytes.
    pub processed: AtomicU64,
    pub processed_bytes: AtomicU64,
    pub records: AtomicU64,
    pub failed: AtomicU64,
}

impl Progress {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// An object that was not converted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub key: String,
    pub reason: String,
    /// Whether a rerun may succeed (throttling, network) rather than never (corrupt content).
    pub retryable: bool,
}

/// How an object's outputs were named: its full identity, and whether another object owned its
/// plain names (see [`crate::ledger`], "Output names that collide").
#[derive(Debug)]
struct Named {
    identity: Vec<u8>,
    distinct: bool,
}

/// The first 64 bits of the SHA-256 of an object's decompressed content (what the ledger keeps),
/// read only when another object owns its plain names; `None` when it cannot be read.
async fn content_hash_of(source: &dyn Storage, key: &str) -> Option<u64> {
    let opened = source.open(key, None).await.ok()?;
    let reader = tokio_util::io::SyncIoBridge::new(opened.reader);
    let sha =
        tokio::task::spawn_blocking(move || parquetrail_core::digest::inflated_sha256(reader)).await.ok()?.ok()?;
    Some(u64::from_be_bytes(sha[..8].try_into().expect("8 bytes")))
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run: String,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub orgs: Vec<String>,
    pub days: u64,
    pub list_requests: u64,
    /// Objects in range, and those of them the ledger already had.
    pub listed: u64,
    pub already_done: u64,
    /// Objects converted (and skipped, quarantined), records and bytes, summed over every object's
    /// report.
    #[serde(flatten)]
    pub totals: FileTotals,
    pub seconds: f64,
    /// Ctrl-C (or the caller) stopped it early; a rerun finishes the rest.
    pub interrupted: bool,
    pub ledger_segments_written: usize,
    /// Objects not converted (retryable ones are retried by a rerun) and prefixes not listed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether everything in range is now converted (or skipped, or already done).
    pub fn complete(&self) -> bool {
        !self.interrupted && self.failures.is_empty()
    }

    fn add_discovery(&mut self, found: Discovered) {
        self.accounts = found.accounts.into_iter().collect();
        self.regions = found.regions.into_iter().collect();
        self.orgs = found.orgs.into_iter().collect();
        self.days = found.days;
        self.list_requests = found.requests;
        self.failures.extend(found.failures.into_iter().map(|f| Failure {
            key: f.uri(),
            reason: format!("could not be listed: {f}"),
            retryable: f.retryable(),
        }));
    }
}

/// What a dry run found: the work left, before doing any of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub orgs: Vec<String>,
    pub days: u64,
    pub list_requests: u64,
    pub listed: u64,
    pub listed_bytes: u64,
    pub already_done: u64,
    /// Objects and stored bytes still to convert.
    pub objects: u64,
    pub bytes: u64,
    pub failures: Vec<ListFailure>,
}

/// A written S3 Batch Operations manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Manifest {
    /// Its key within the destination storage.
    pub key: String,
    pub objects: u64,
    pub bytes: u64,
    /// Its ETag (CreateJob names the manifest by ARN and ETag), when the storage gives one.
    pub etag: Option<String>,
    pub failures: Vec<ListFailure>,
}

/// Characters percent-encoded in a manifest key: everything but unreserved characters and `/`.
/// Batch Operations requires URL-encoded keys in CSV manifests; encoding `+` and space as
/// `%2B`/`%20` keeps them unambiguous whether the key is later percent- or form-decoded (the
/// Lambda's task parser form-decodes and falls back to the raw key).
const MANIFEST_KEY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// One manifest line, `Bucket,Key` (format `S3BatchOperations_CSV_20180820`).
pub fn manifest_line(bucket: &str, key: &str) -> String {
    format!("{bucket},{}\n", utf8_percent_encode(key, MANIFEST_KEY))
}

impl Backfill {
    fn pipeline(&self) -> Pipeline {
        let mut options = self.options.clone();
        options.filter = self.selection.dataset.filter();
        Pipeline::new(self.dest.clone(), self.dest_prefix.clone(), options)
    }

    /// An object's full identity: `s3://bucket/key`, or the source directory and the key.
    fn identity(&self, key: &str) -> Vec<u8> {
        match self.source.bucket() {
            Some(bucket) => full_identity(Some(bucket), key),
            None => format!("{}/{key}", self.source.describe()).into_bytes(),
        }
    }

    /// Lists in the background into a bounded channel; the task returns what it discovered.
    fn start_listing(
        &self,
        capacity: usize,
        cancel: &CancellationToken,
    ) -> (mpsc::Receiver<ObjectMeta>, tokio::task::JoinHandle<Discovered>) {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        let source = self.source.clone();
        let prefix = self.source_prefix.clone();
        let selection = self.selection.clone();
        let cancel = cancel.clone();
        let lister = tokio::spawn(async move { list_objects(source.as_ref(), &prefix, &selection, tx, cancel).await });
        (rx, lister)
    }

    /// Converts everything in range that the ledger does not have. Stops early (finishing the
    /// objects in flight and writing the ledger) when `cancel` fires.
    pub async fn run(&self, progress: Arc<Progress>, cancel: CancellationToken) -> Result<Report, StorageError> {
        let started = Instant::now();
        let mut ledger = Ledger::open(self.dest.clone(), &self.dest_prefix, self.checkpoint).await?;
        let pipeline = Arc::new(self.pipeline());
        let concurrency = self.concurrency.max(1);
        let stop_listing = cancel.child_token();
        let (mut rx, lister) = self.start_listing(concurrency * 4, &stop_listing);
        let bucket = self.source.bucket().map(str::to_string);
        let mut report = Report { run: ledger.run().to_string(), ..Report::default() };
        let mut tasks: JoinSet<(ObjectMeta, Outcome, Named)> = JoinSet::new();
        let mut listing_open = true;
        let mut tick = tokio::time::interval(self.checkpoint.interval.min(Duration::from_secs(1)));
        loop {
            if !listing_open && tasks.is_empty() {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled(), if listing_open => {
                    report.interrupted = true;
                    listing_open = false;
                    rx.close();
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    let (object, outcome, named) = match joined {
                        Ok(done) => done,
                        Err(source) => {
                            // A panic in a conversion: name nothing we cannot, but never hide it.
                            let e = IngestError::from(crate::Error::Task { key: "?".into(), source });
                            report.failures.push(Failure { key: "?".into(), reason: e.message, retryable: e.retryable });
                            continue;
                        }
                    };
                    self.finish(&mut report, &mut ledger, &progress, object, outcome, named);
                    if ledger.due() {
                        flush(&mut ledger).await;
                    }
                }
                next = rx.recv(), if listing_open && tasks.len() < concurrency => match next {
                    None => listing_open = false,
                    Some(object) => {
                        progress.listed.fetch_add(1, Ordering::Relaxed);
                        progress.listed_bytes.fetch_add(object.size, Ordering::Relaxed);
                        if ledger.is_done(bucket.as_deref(), &object) {
                            report.already_done += 1;
                            progress.already_done.fetch_add(1, Ordering::Relaxed);
                            progress.already_done_bytes.fetch_add(object.size, Ordering::Relaxed);
                        } else {
                            let pipeline = pipeline.clone();
                            let source = self.source.clone();
                            let identity = self.identity(&object.key);
                            // Only an owner of another identity contests the plain names.
                            let owner = ledger.claims().owner(&object.key).filter(|o| o.identity != identity_hash(&identity));
                            tasks.spawn(async move {
                                let distinct = match owner {
                                    None => false,
                                    Some(owner) => {
                                        let content = content_hash_of(source.as_ref(), &object.key).await;
                                        content.is_none() || content != owner.content
                                    }
                                };
                                let named = Named { identity, distinct };
                                let outcome = pipeline
                                    .process_named(source.as_ref(), &object.key, None, None, named.distinct.then_some(&named.identity[..]))
                                    .await;
                                (object, outcome, named)
                            });
                        }
                    }
                },
                _ = tick.tick() => {
                    if ledger.due() {
                        flush(&mut ledger).await;
                    }
                }
            }
        }
        stop_listing.cancel();
        drop(rx);
        let found = lister.await.unwrap_or_default();
        progress.listing_done.store(true, Ordering::Relaxed);
        report.listed = progress.listed.load(Ordering::Relaxed);
        report.add_discovery(found);
        // The last segment: retried a few times, since losing it costs redoing its objects.
        for attempt in 0..5 {
            match ledger.flush().await {
                Ok(()) => break,
                Err(e) if attempt < 4 => {
                    tracing::warn!(error = %e, "writing the ledger failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        report.ledger_segments_written = ledger.segments_written();
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn finish(
        &self,
        report: &mut Report,
        ledger: &mut Ledger,
        progress: &Progress,
        object: ObjectMeta,
        outcome: Outcome,
        named: Named,
    ) {
        progress.processed.fetch_add(1, Ordering::Relaxed);
        progress.processed_bytes.fetch_add(object.size, Ordering::Relaxed);
        let file = match outcome.result {
            Err(e) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                report.totals.add_failed();
                report.failures.push(Failure { key: object.key, reason: e.message, retryable: e.retryable });
                return;
            }
            Ok(file) => file,
        };
        progress.records.fetch_add(file.records, Ordering::Relaxed);
        report.totals.add(&file);
        if let Some(failure) = &file.failure {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            report.failures.push(Failure {
                key: object.key.clone(),
                reason: format!("quarantined ({}): {}", failure.quarantine_path, failure.reason),
                retryable: false,
            });
        }
        let entry = Entry::for_file(
            self.source.bucket(),
            &object.key,
            object.etag.as_deref(),
            object.size,
            &file,
            ledger.run(),
        );
        ledger.record(&entry.with_source(&named.identity, named.distinct));
    }

    /// Lists what a run would do, without converting or writing anything.
    pub async fn plan(&self, progress: Arc<Progress>) -> Result<Plan, StorageError> {
        let ledger = Ledger::open(self.dest.clone(), &self.dest_prefix, self.checkpoint).await?;
        let cancel = CancellationToken::new();
        let (mut rx, lister) = self.start_listing(1024, &cancel);
        let bucket = self.source.bucket().map(str::to_string);
        let mut plan = Plan::default();
        while let Some(object) = rx.recv().await {
            plan.listed += 1;
            plan.listed_bytes += object.size;
            progress.listed.fetch_add(1, Ordering::Relaxed);
            progress.listed_bytes.fetch_add(object.size, Ordering::Relaxed);
            if ledger.is_done(bucket.as_deref(), &object) {
                plan.already_done += 1;
            } else {
                plan.objects += 1;
                plan.bytes += object.size;
            }
        }
        let found = lister.await.unwrap_or_default();
        progress.listing_done.store(true, Ordering::Relaxed);
        plan.accounts = found.accounts.into_iter().collect();
        plan.regions = found.regions.into_iter().collect();
        plan.orgs = found.orgs.into_iter().collect();
        plan.days = found.days;
        plan.list_requests = found.requests;
        plan.failures = found.failures;
        Ok(plan)
    }

    /// Writes the S3 Batch Operations manifest (CSV `Bucket,Key`, keys URL-encoded) of every
    /// object in range that the destination's ledger does not have, to `key` in `store`,
    /// streamed (multipart on S3), so it may list any number of objects.
    pub async fn manifest(
        &self,
        store: Arc<dyn Storage>,
        key: &str,
        progress: Arc<Progress>,
    ) -> Result<Manifest, StorageError> {
        let Some(bucket) = self.source.bucket().map(str::to_string) else {
            return Err(StorageError::new(
                crate::storage::ErrorKind::Permanent,
                "a Batch Operations manifest needs an s3:// source",
            ));
        };
        let ledger = Ledger::open(self.dest.clone(), &self.dest_prefix, self.checkpoint).await?;
        let cancel = CancellationToken::new();
        let (mut rx, lister) = self.start_listing(1024, &cancel);
        let (lines_tx, mut lines_rx) = mpsc::channel::<String>(1024);
        let sink = store.sink("");
        let path = key.to_string();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = sink.create(&path)?;
            let mut buf = Vec::with_capacity(1 << 16);
            while let Some(line) = lines_rx.blocking_recv() {
                buf.extend_from_slice(line.as_bytes());
                if buf.len() >= 1 << 16 {
                    file.write_all(&buf)?;
                    buf.clear();
                }
            }
            file.write_all(&buf)?;
            file.commit()
        });
        let mut manifest = Manifest { key: key.to_string(), ..Manifest::default() };
        while let Some(object) = rx.recv().await {
            progress.listed.fetch_add(1, Ordering::Relaxed);
            progress.listed_bytes.fetch_add(object.size, Ordering::Relaxed);
            if ledger.is_done(Some(&bucket), &object) {
                progress.already_done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            manifest.objects += 1;
            manifest.bytes += object.size;
            if lines_tx.send(manifest_line(&bucket, &object.key)).await.is_err() {
                break;
            }
        }
        drop(lines_tx);
        let found = lister.await.unwrap_or_default();
        progress.listing_done.store(true, Ordering::Relaxed);
        manifest.failures = found.failures;
        writer
            .await
            .map_err(|e| StorageError::new(crate::storage::ErrorKind::Retryable, e.to_string()))?
            .map_err(|e| StorageError::new(crate::storage::ErrorKind::Retryable, format!("writing {key}: {e}")))?;
        manifest.etag =
            store.list_page(key, None).await?.objects.into_iter().find(|o| o.key == key).and_then(|o| o.etag);
        Ok(manifest)
    }
}

async fn flush(ledger: &mut Ledger) {
    if let Err(e) = ledger.flush().await {
        // Kept pending and retried at the next checkpoint and at the end.
        tracing::warn!(error = %e, "writing a ledger segment failed; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_are_url_encoded_unambiguously() {
        let cases = [
            (
                "AWSLogs/o-abc/1/CloudTrail/us-east-1/2024/03/01/f.json.gz",
                "AWSLogs/o-abc/1/CloudTrail/us-east-1/2024/03/01/f.json.gz",
            ),
            ("trail logs/AWSLogs/x+y.json.gz", "trail%20logs/AWSLogs/x%2By.json.gz"),
            ("a,b/ü=%.gz", "a%2Cb/%C3%BC%3D%25.gz"),
        ];
        for (key, want) in cases {
            assert_eq!(manifest_line("trail", key), format!("trail,{want}\n"), "{key}");
            // What the Lambda does with a task's s3Key gives the key back.
            let (decoded, _) = crate::notifications::decode_maybe_encoded(want);
            assert_eq!(decoded, key, "{key}");
        }
    }
}
