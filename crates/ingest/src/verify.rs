//! `verify`: prove that a trail bucket — and the archive made from it — hold exactly what
//! CloudTrail signed.
//!
//! 1. **List** the digest files of the range with the same delimiter walk as a backfill
//!    ([`crate::listing::list_kinds`] over `CloudTrail-Digest/`), one extra day past the end
//!    (the digest written just after midnight signs the last deliveries of the day before).
//! 2. **Fetch** each digest with its S3 user metadata (the signature lives in
//!    `x-amz-meta-signature`, not in the file) and group them into chains (trail × account ×
//!    region).
//! 3. **Verify** each chain with the pure [`parquetrail_core::digest::verify_chain`]: location,
//!    key, signature, links, and gaps (a deleted digest, a restarted chain).
//! 4. **Hash** every log file each *valid* digest lists (inflated, streamed, a few at a time)
//!    and compare with the signed `hashValue`: valid, invalid (modified) or missing (deleted).
//! 5. **Reconcile** with the archive, when one is given: the backfill ledger records, per source
//!    object, the SHA-256 of its inflated content, so without reading any source again it says
//!    which archived files a valid digest covers, which are archived but signed by nothing, which
//!    differ from what was signed, and which signed files never reached the archive.
//!
//! Everything is reported per file; nothing stops at the first finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use parquetrail_core::digest::{
    ChainId, DigestKey, DigestVerdict, FetchedDigest, Gap, MAX_DIGEST_BYTES, PublicKeys, hex, inflate, inflated_sha256,
    key_window, verify_chain,
};
use parquetrail_core::object_key::{KeyKind, ObjectKey};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Entry, LEDGER_DIR, Status};
use crate::listing::{Selection, list_kinds, retry};
use crate::location::join;
use crate::storage::{ErrorKind, ObjectMeta, Storage, StorageError};

/// What to verify, and against what.
#[derive(Debug, Clone)]
pub struct Verify {
    /// The trail bucket (or a local copy of it).
    pub source: Arc<dyn Storage>,
    /// The trail prefix: the part of the key before `AWSLogs/` (may be empty).
    pub source_prefix: String,
    /// Delivery dates, accounts, regions and organization to verify (`dataset` is ignored).
    pub selection: Selection,
    /// Where public keys come from: CloudTrail's `ListPublicKeys` (the CLI's), or a
    /// [`PublicKeys`] saved from it for offline use.
    pub keys: Arc<dyn KeySource>,
    /// The archive whose ledger is reconciled with the digests: its storage and root prefix.
    pub archive: Option<(Arc<dyn Storage>, String)>,
    /// Objects fetched at once.
    pub concurrency: usize,
}

/// Why a [`KeySource`] has no keys to give.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The request for them failed (`what` names it); the message follows the whole chain of
    /// causes, as an SDK error keeps the useful part a few levels down.
    #[error("{what}: {}", causes(source.as_ref()))]
    Fetch {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A key was given, but it is not a key.
    #[error("key {fingerprint}: {source}")]
    Invalid {
        fingerprint: String,
        #[source]
        source: parquetrail_core::digest::KeyError,
    },
}

/// An error and its sources, `: `-separated.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = e.source();
    }
    text
}

/// Public keys for a trail's home region and a time range.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The keys that signed digests of `home_region` between `from` and `to`.
    async fn public_keys(
        &self,
        home_region: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PublicKeys, KeysError>;
}

/// Keys given up front (a `--public-keys` file): the same for every region and time.
#[async_trait::async_trait]
impl KeySource for PublicKeys {
    async fn public_keys(&self, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Result<PublicKeys, KeysError> {
        Ok(self.clone())
    }
}

/// What became of one signed log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStatus {
    /// Its inflated bytes hash to what the digest signed.
    Valid,
    /// It is there, but its content is not what was signed (modified, or not even gzip).
    Invalid,
    /// It is not there (deleted).
    Missing,
    /// It could not be read (permissions, network): no verdict.
    Error,
}

/// The verdict on one log file a valid digest lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogVerdict {
    pub key: String,
    pub status: LogStatus,
    /// The digest that signs it.
    pub digest: String,
    pub signed_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A break in a chain, and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainGap {
    pub chain: String,
    #[serde(flatten)]
    pub gap: Gap,
}

/// One chain's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    #[serde(flatten)]
    pub id: ChainId,
    pub digests: usize,
    pub valid_digests: usize,
    pub first: Option<String>,
    pub last: Option<String>,
}

/// An archived (or signed but not archived) source file that is not simply covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveFinding {
    pub key: String,
    /// What the valid digest signed, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_sha256: Option<String>,
    /// What the ledger recorded when the file was archived, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The archive's ledger against the valid digests, for the log files delivered in the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Ledger entries read, and of them the log files considered (in range, in a verified chain).
    pub ledger_entries: u64,
    pub considered: u64,
    /// Archived with exactly the hash a valid digest signed.
    pub covered: u64,
    /// Archived, but with another hash than the one signed (or none recorded).
    pub differs: Vec<ArchiveFinding>,
    /// Archived, but no valid digest signs them.
    pub unsigned: Vec<ArchiveFinding>,
    /// Signed by a valid digest, but never archived.
    pub not_archived: Vec<ArchiveFinding>,
}

impl Reconciliation {
    pub fn clean(&self) -> bool {
        self.differs.is_empty() && self.unsigned.is_empty() && self.not_archived.is_empty()
    }
}

/// Totals, for the summary line and scripts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub chains: usize,
    pub digests: usize,
    pub valid_digests: usize,
    pub invalid_digests: usize,
    pub gaps: usize,
    pub log_files: usize,
    pub valid_log_files: usize,
    pub invalid_log_files: usize,
    pub missing_log_files: usize,
    pub unreadable_log_files: usize,
}

/// Everything a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// True when everything in range is proven: at least one digest, every digest and log file
    /// valid, no gap, nothing unlisted, and (with an archive) the archive matches.
    pub valid: bool,
    pub counts: Counts,
    pub chains: Vec<ChainSummary>,
    /// Every digest, newest first per chain.
    pub digests: Vec<DigestVerdict>,
    pub gaps: Vec<ChainGap>,
    /// Every log file a valid digest lists.
    pub log_files: Vec<LogVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<Reconciliation>,
    /// Prefixes that could not be listed and digests that could not be read: the verification
    /// is incomplete.
    pub failures: Vec<String>,
}

impl Verify {
    /// The key to read a signed object under: as signed in a bucket; from `AWSLogs/` on in a
    /// local copy (whose root is the trail root).
    fn source_key<'k>(&self, signed: &'k str) -> &'k str {
        if self.source.bucket().is_some() { signed } else { ObjectKey::parse(signed).source_id() }
    }

    pub async fn run(&self) -> Report {
        let mut report = Report::default();
        let (window_start, window_end) = key_window(self.selection.start, self.selection.end);
        // 1. List one day past the end: the digest just after midnight signs the day before.
        let mut listing = self.selection.clone();
        listing.end = listing.end.and_then(|d| d.succ_opt());
        let (tx, mut rx) = mpsc::channel::<ObjectMeta>(1024);
        let source = self.source.clone();
        let root = self.source_prefix.clone();
        let lister = tokio::spawn(async move {
            list_kinds(source.as_ref(), &root, &listing, &["CloudTrail-Digest"], tx, CancellationToken::new()).await
        });
        let mut listed: Vec<(DigestKey, String)> = Vec::new();
        while let Some(meta) = rx.recv().await {
            let Some(parsed) = DigestKey::parse(&meta.key) else { continue };
            let in_window = window_start.is_none_or(|s| parsed.time >= s) && window_end.is_none_or(|e| parsed.time < e);
            if in_window {
                listed.push((parsed, meta.key));
            }
        }
        match lister.await {
            Ok(found) => report.failures.extend(found.failures.iter().map(ToString::to_string)),
            Err(e) => report.failures.push(format!("listing task failed: {e}")),
        }

        // 2. Fetch every digest with its metadata, grouped by chain.
        let mut chains: BTreeMap<ChainId, Vec<FetchedDigest>> = BTreeMap::new();
        let fetches = self.bounded(listed, |storage, (parsed, key)| async move {
            let fetched = fetch_digest(storage.as_ref(), &key).await;
            (parsed.chain, key, fetched)
        });
        for (chain, key, fetched) in fetches.await {
            match fetched {
                Ok(Some(digest)) => chains.entry(chain).or_default().push(digest),
                // Deleted between listing and reading: as if never listed (the chain says so).
                Ok(None) => {}
                Err(e) => report.failures.push(format!("{}/{key}: {e}", self.source.describe())),
            }
        }

        // 3. The keys of each home region, for the time the digests span; then each chain.
        let mut spans: BTreeMap<&str, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
        for (id, digests) in &chains {
            for time in digests.iter().filter_map(|d| DigestKey::parse(&d.key)).map(|k| k.time.and_utc()) {
                let span = spans.entry(id.home_region.as_str()).or_insert((time, time));
                span.0 = span.0.min(time - chrono::Duration::hours(2));
                span.1 = span.1.max(time);
            }
        }
        let mut keys = PublicKeys::default();
        for (region, (from, to)) in spans {
            match self.keys.public_keys(region, from, to).await {
                Ok(found) => keys.extend(found),
                Err(e) => report.failures.push(format!("public keys of {region}: {e}")),
            }
        }
        for (id, digests) in chains {
            let verified = verify_chain(digests, &keys, window_start);
            let name = id.to_string();
            report.chains.push(ChainSummary {
                digests: verified.digests.len(),
                valid_digests: verified.digests.iter().filter(|d| d.valid).count(),
                first: verified.digests.last().and_then(|d| d.start_time.clone()),
                last: verified.digests.first().and_then(|d| d.end_time.clone()),
                id,
            });
            report.gaps.extend(verified.gaps.into_iter().map(|gap| ChainGap { chain: name.clone(), gap }));
            report.digests.extend(verified.digests);
        }

        // 4. Hash every log file a valid digest signs.
        let signed: Vec<(String, String, String)> = report
            .digests
            .iter()
            .filter(|d| d.valid)
            .flat_map(|d| {
                d.log_files.iter().map(|f| {
                    (
                        f.s3_object.clone().unwrap_or_default(),
                        f.hash_value.clone().unwrap_or_default().to_ascii_lowercase(),
                        d.key.clone(),
                    )
                })
            })
            .collect();
        let this = self.clone();
        report.log_files = self
            .bounded(signed, move |storage, (key, signed_sha256, digest)| {
                let read_key = this.source_key(&key).to_string();
                async move {
                    let (status, actual_sha256, reason) = hash_object(storage, &read_key).await;
                    let status = match (status, &actual_sha256) {
                        (LogStatus::Valid, Some(actual)) if *actual != signed_sha256 => LogStatus::Invalid,
                        (s, _) => s,
                    };
                    LogVerdict { key, status, digest, signed_sha256, actual_sha256, reason }
                }
            })
            .await;
        report.log_files.sort_by(|a, b| a.key.cmp(&b.key));

        // 5. The archive's ledger against the valid digests.
        if let Some((storage, prefix)) = &self.archive {
            match read_ledger(storage.as_ref(), prefix).await {
                Ok(entries) => report.archive = Some(self.reconcile(&report, &entries)),
                Err(e) => report.failures.push(format!("reading the ledger of {}: {e}", storage.describe())),
            }
        }
        report.counts = Counts {
            chains: report.chains.len(),
            digests: report.digests.len(),
            valid_digests: report.digests.iter().filter(|d| d.valid).count(),
            invalid_digests: report.digests.iter().filter(|d| !d.valid).count(),
            gaps: report.gaps.len(),
            log_files: report.log_files.len(),
            valid_log_files: count(&report.log_files, LogStatus::Valid),
            invalid_log_files: count(&report.log_files, LogStatus::Invalid),
            missing_log_files: count(&report.log_files, LogStatus::Missing),
            unreadable_log_files: count(&report.log_files, LogStatus::Error),
        };
        let c = &report.counts;
        report.valid = c.digests > 0
            && c.invalid_digests == 0
            && c.gaps == 0
            && c.valid_log_files == c.log_files
            && report.failures.is_empty()
            && report.archive.as_ref().is_none_or(Reconciliation::clean);
        report
    }

    /// Runs `work` over `items`, at most `concurrency` at a time, each with the source storage.
    async fn bounded<I, T, F, Fut>(&self, items: Vec<I>, work: F) -> Vec<T>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(Arc<dyn Storage>, I) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut set = JoinSet::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            while set.len() >= self.concurrency.max(1) {
                if let Some(done) = set.join_next().await {
                    out.push(done.expect("verification tasks do not panic"));
                }
            }
            set.spawn(work(self.source.clone(), item));
        }
        while let Some(done) = set.join_next().await {
            out.push(done.expect("verification tasks do not panic"));
        }
        out
    }

    /// Which archived files the valid digests cover. Considered: ledger entries of log files
    /// (`CloudTrail/` keys) delivered in the range, of an account and region whose chain was
    /// verified, read from this bucket; and signed log files delivered in the range. Keys are
    /// compared from `AWSLogs/` on, so an archive made from a local copy reconciles too.
    fn reconcile(&self, report: &Report, entries: &[Entry]) -> Reconciliation {
        let in_range = |key: &ObjectKey<'_>| {
            key.delivery_date.is_some_and(|d: NaiveDate| {
                self.selection.start.is_none_or(|s| d >= s) && self.selection.end.is_none_or(|e| d <= e)
            })
        };
        let chains: BTreeSet<(Option<&str>, &str, &str)> = report
            .chains
            .iter()
            .map(|c| (c.id.org_id.as_deref(), c.id.account.as_str(), c.id.region.as_str()))
            .collect();
        let ours = |key: &ObjectKey<'_>| {
            key.kind == KeyKind::Log
                && in_range(key)
                && chains.contains(&(key.org_id, key.account.unwrap_or_default(), key.region.unwrap_or_default()))
        };
        // Signed, by identity: (hash, digest, key as signed).
        let mut signed: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for d in report.digests.iter().filter(|d| d.valid) {
            for f in &d.log_files {
                let key = f.s3_object.as_deref().unwrap_or_default();
                let parsed = ObjectKey::parse(key);
                if ours(&parsed) {
                    let hash = f.hash_value.clone().unwrap_or_default().to_ascii_lowercase();
                    signed.insert(parsed.source_id().to_string(), (hash, d.key.clone(), key.to_string()));
                }
            }
        }
        // Archived, by identity: the latest entry for each key.
        let bucket = self.source.bucket();
        let mut archived: HashMap<String, &Entry> = HashMap::new();
        let mut out = Reconciliation { ledger_entries: entries.len() as u64, ..Reconciliation::default() };
        for entry in entries {
            let parsed = ObjectKey::parse(&entry.key);
            let same_bucket = match (bucket, entry.bucket.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if entry.status == Status::Skipped || !same_bucket || !ours(&parsed) {
                continue;
            }
            let slot = archived.entry(parsed.source_id().to_string()).or_insert(entry);
            if entry.finished_at > slot.finished_at {
                *slot = entry;
            }
        }
        out.considered = archived.len() as u64;
        let mut keys: Vec<&String> = archived.keys().chain(signed.keys()).collect();
        keys.sort();
        keys.dedup();
        for id in keys {
            let finding = |entry: Option<&&Entry>, signed: Option<&(String, String, String)>| ArchiveFinding {
                key: entry.map(|e| e.key.clone()).or_else(|| signed.map(|s| s.2.clone())).unwrap_or_else(|| id.clone()),
                signed_sha256: signed.map(|s| s.0.clone()),
                archived_sha256: entry.and_then(|e| e.sha256.clone()),
                digest: signed.map(|s| s.1.clone()),
            };
            match (archived.get(id), signed.get(id)) {
                (Some(entry), Some(s)) if entry.sha256.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&s.0)) => {
                    out.covered += 1
                }
                (Some(entry), Some(s)) => out.differs.push(finding(Some(entry), Some(s))),
                (Some(entry), None) => out.unsigned.push(finding(Some(entry), None)),
                (None, Some(s)) => out.not_archived.push(finding(None, Some(s))),
                (None, None) => {}
            }
        }
        out
    }
}

fn count(logs: &[LogVerdict], status: LogStatus) -> usize {
    logs.iter().filter(|l| l.status == status).count()
}

/// Reads a digest and its signature metadata; `Ok(None)` when it is gone.
async fn fetch_digest(storage: &dyn Storage, key: &str) -> Result<Option<FetchedDigest>, StorageError> {
    let read = retry(|| async {
        let mut opened = storage.open(key, None).await?;
        let mut body = Vec::new();
        // Compressed, a digest is smaller still than its inflated bound: read no more than that.
        let limited = tokio::io::AsyncReadExt::take(&mut opened.reader, MAX_DIGEST_BYTES + 1);
        tokio::io::AsyncReadExt::read_to_end(&mut { limited }, &mut body)
            .await
            .map_err(|e| StorageError::new(ErrorKind::Retryable, e.to_string()))?;
        Ok((opened.metadata, body))
    })
    .await;
    let (metadata, body) = match read {
        Ok(read) => read,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(FetchedDigest {
        bucket: storage.bucket().map(str::to_string),
        key: key.to_string(),
        signature: metadata.get("signature").cloned(),
        signature_algorithm: metadata.get("signature-algorithm").cloned(),
        inflated: inflate(&body[..], MAX_DIGEST_BYTES).map_err(|e| format!("cannot inflate: {e}")),
    }))
}

/// Attempts at reading one log file before it is reported as an error.
const ATTEMPTS: u32 = 3;

/// Streams an object through gunzip and SHA-256 on a blocking thread.
async fn hash_object(storage: Arc<dyn Storage>, key: &str) -> (LogStatus, Option<String>, Option<String>) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let opened = match storage.open(key, None).await {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return (LogStatus::Missing, None, None),
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => continue,
            Err(e) => return (LogStatus::Error, None, Some(e.message)),
        };
        let reader = SyncIoBridge::new(opened.reader);
        let hashed = tokio::task::spawn_blocking(move || inflated_sha256(reader)).await;
        match hashed {
            Ok(Ok(hash)) => return (LogStatus::Valid, Some(hex(&hash)), None),
            // Not gzip, or corrupt: the bytes there are not what was signed.
            Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput) => {
                return (LogStatus::Invalid, None, Some(format!("cannot inflate: {e}")));
            }
            Ok(Err(_)) if attempt < ATTEMPTS => continue,
            Ok(Err(e)) => return (LogStatus::Error, None, Some(e.to_string())),
            Err(e) => return (LogStatus::Error, None, Some(e.to_string())),
        }
    }
}

/// Every entry of every ledger segment under `<prefix>/_ledger/`.
pub async fn read_ledger(storage: &dyn Storage, prefix: &str) -> Result<Vec<Entry>, StorageError> {
    let dir = join(prefix, LEDGER_DIR);
    let segments = storage.list(&format!("{dir}/")).await?;
    let mut entries = Vec::new();
    for segment in segments.iter().filter(|m| m.key.ends_with(".jsonl")) {
        let body = retry(|| storage.read(&segment.key)).await?;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                Err(e) => tracing::warn!(segment = %segment.key, error = %e, "ignoring a ledger line"),
            }
        }
    }
    Ok(entries)
}
