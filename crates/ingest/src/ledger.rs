//! The backfill ledger: one JSON line per source object processed, kept in the archive itself.
//!
//! # Why this shape
//!
//! Outputs are already deterministic per source object (named after the source key and the
//! partition, bytes from the content), so converting an object twice rewrites identical objects.
//! That makes "no duplicates after a crash" structural, and leaves the ledger one job: remember
//! what is done so a rerun can skip it. It therefore only needs to be durable enough — losing its
//! last few entries costs re-converting those objects, never correctness.
//!
//! So the ledger is **append-only segments**: `<archive>/_ledger/<run>-<seq>.jsonl`, each written
//! whole and atomically (one PUT on S3; a temporary file renamed on local disk) when
//! [`Checkpoint::objects`] entries have accumulated or [`Checkpoint::interval`] has passed, and at
//! exit. There is no read-modify-write, no lock and no coordination: concurrent runs write
//! disjoint segments; a run killed at any point leaves whole segments only. An entry is added
//! only after all the object's outputs were committed, so an entry always means "done".
//!
//! At start every segment is read back into a set of identities — a 128-bit hash of
//! (bucket, key, ETag, or size where there is no ETag) — 16 bytes per object done, so ten million
//! done objects cost about 160 MB. An object rewritten in place since (new ETag) is converted again.
//!
//! # Output names that collide
//!
//! Outputs are named after the source key from `AWSLogs/` on, so that a local copy and the bucket
//! name them alike. Two *different* objects can therefore map to one name: the same `AWSLogs/…`
//! key under two trail prefixes, or two local file names that decode to the same text. Each
//! entry also records which plain name it owns, so a later run can tell. [`Claims`] holds, for
//! every plain name, its owner: the first object recorded under it (its full identity, and the
//! SHA-256 of its content). A source that maps to a taken name is the owner again (same identity),
//! a copy of it (same content: converting it rewrites the same bytes), or a different object: that
//! one's outputs get names of their own, suffixed with a hash of its full identity
//! ([`parquetrail_core::convert::Source::distinct`]), and its entry says so (`distinct`). Within
//! one run, [`assign_names`] applies the same rule to the sources that share a name, the smallest
//! identity hash first, so the choice never depends on timing. Names that collide with nothing stay
//! plain, so reruns rewrite the same objects as before.
//!
//! The segments are JSON lines under a reserved prefix outside the datasets, so they are queryable
//! as they are (`SELECT * FROM read_json('archive/_ledger/*.jsonl')` in DuckDB, or an Athena table
//! with the OpenX JSON SerDe over `_ledger/`), and they carry the SHA-256 of each log file's
//! *uncompressed* content — the value CloudTrail's digest files sign — so the archive can be
//! reconciled against the digests without reading the sources again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parquetrail_core::convert::FileReport;
use parquetrail_core::object_key::ObjectKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::location::join;
use crate::storage::{ObjectMeta, Storage, StorageError};

/// The reserved prefix of the ledger under an archive's root.
pub const LEDGER_DIR: &str = "_ledger";

/// When the ledger writes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// After this many entries.
    pub objects: usize,
    /// Or after this long since the last segment, whichever comes first.
    pub interval: Duration,
}

impl Default for Checkpoint {
    /// 1,000 objects or 10 seconds: at most that much work is redone after a crash, and a long
    /// backfill writes a segment every few seconds rather than one per object.
    fn default() -> Self {
        Checkpoint { objects: 1000, interval: Duration::from_secs(10) }
    }
}

/// What became of a source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Converted: its rows are in `outputs`.
    Converted,
    /// Not a log file (digest, Config, empty object…): nothing to convert.
    Skipped,
    /// Unreadable (corrupt gzip, broken JSON): a quarantine marker was written instead.
    Quarantined,
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The source bucket (`None` for a local source directory).
    pub bucket: Option<String>,
    pub key: String,
    /// The ETag listed for the object (S3).
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Bytes as stored (compressed).
    pub size: u64,
    /// Hex SHA-256 of the uncompressed content (what CloudTrail digests sign).
    pub sha256: Option<String>,
    pub status: Status,
    pub records: u64,
    pub rows: u64,
    pub quarantined: u64,
    pub filtered: u64,
    /// Output paths, relative to the archive root.
    pub outputs: Vec<String>,
    /// Why it was skipped or quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was done (RFC 3339, UTC).
    pub finished_at: String,
    /// The run that did it (also the segment name's stem).
    pub run: String,
    /// The full identity of the source ([`identity_hash`] of `s3://bucket/key`, or of a local
    /// file's path), 16 hex digits. Absent in older lines: it is then derived from bucket and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The outputs carry `-d<source_id>` in their names: another object owned the plain ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distinct: bool,
}

impl Entry {
    /// The line for an object the pipeline finished: converted, skipped or quarantined.
    pub fn for_file(
        bucket: Option<&str>,
        key: &str,
        etag: Option<&str>,
        size: u64,
        file: &FileReport,
        run: &str,
    ) -> Entry {
        let (status, reason) = match (&file.skipped, &file.failure) {
            (Some(skip), _) => (Status::Skipped, Some(skip.clone())),
            (None, Some(failure)) => (Status::Quarantined, Some(failure.reason.clone())),
            (None, None) => (Status::Converted, None),
        };
        Entry {
            bucket: bucket.map(str::to_string),
            key: key.to_string(),
            etag: etag.map(str::to_string),
            version_id: None,
            size,
            sha256: file.sha256.clone(),
            status,
            records: file.records,
            rows: file.rows,
            quarantined: file.quarantined,
            filtered: file.filtered,
            outputs: file.outputs.iter().map(|o| o.path.clone()).collect(),
            reason,
            finished_at: timestamp(),
            run: run.to_string(),
            source_id: None,
            distinct: false,
        }
    }

    /// The same entry, naming the source's full identity and whether its outputs had names of
    /// their own.
    pub fn with_source(mut self, identity: &[u8], distinct: bool) -> Entry {
        self.source_id = Some(format!("{:016x}", identity_hash(identity)));
        self.distinct = distinct;
        self
    }

    /// The identity this entry's source has for [`Claims`].
    fn source_identity(&self) -> u64 {
        self.source_id
            .as_deref()
            .and_then(|id| u64::from_str_radix(id, 16).ok())
            .unwrap_or_else(|| identity_hash(&full_identity(self.bucket.as_deref(), &self.key)))
    }
}

/// The full identity of an object in a bucket (`s3://bucket/key`), or of a key of a local
/// directory (the key itself): what tells two objects apart when their output names agree.
pub fn full_identity(bucket: Option<&str>, key: &str) -> Vec<u8> {
    match bucket {
        Some(bucket) => format!("s3://{bucket}/{key}").into_bytes(),
        None => key.as_bytes().to_vec(),
    }
}

/// 64 bits of the SHA-256 of a full identity: the suffix of a distinct source's output names and
/// the `source_id` of its ledger entry (the same 16 hex digits).
pub fn identity_hash(identity: &[u8]) -> u64 {
    u64::from_be_bytes(Sha256::digest(identity)[..8].try_into().expect("8 bytes"))
}

/// 64 bits of a hex SHA-256 of content (as [`FileReport::sha256`] gives it), for comparing.
pub fn content_hash(sha256_hex: &str) -> Option<u64> {
    sha256_hex.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok())
}

/// The owner of a plain output name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// [`identity_hash`] of the owning source.
    pub identity: u64,
    /// [`content_hash`] of its content, when it was read to the end.
    pub content: Option<u64>,
}

/// Who owns each plain output name (see the module's "Output names that collide"). Keyed by a
/// 64-bit hash of the name: about 40 bytes per object done.
#[derive(Debug, Default, Clone)]
pub struct Claims {
    owners: HashMap<u64, Owner>,
}

impl Claims {
    /// The owner of the plain names of `key` (the names [`ObjectKey::output_stem`] gives).
    pub fn owner(&self, key: &str) -> Option<Owner> {
        self.owners.get(&name_hash(key)).copied()
    }

    /// Records a source that used the plain names of `key`, unless they are owned already.
    pub fn claim(&mut self, key: &str, owner: Owner) {
        self.owners.entry(name_hash(key)).or_insert(owner);
    }

    fn add(&mut self, entry: &Entry) {
        if entry.distinct || entry.status == Status::Skipped {
            return;
        }
        let content = entry.sha256.as_deref().and_then(content_hash);
        self.claim(&entry.key, Owner { identity: entry.source_identity(), content });
    }
}

fn name_hash(key: &str) -> u64 {
    let stem = ObjectKey::parse(key).output_stem();
    u64::from_be_bytes(Sha256::digest(stem.as_bytes())[..8].try_into().expect("8 bytes"))
}

/// A source of one run, competing for the plain names of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    /// [`identity_hash`] of its full identity.
    pub identity: u64,
    /// [`content_hash`] of its content, when [`contested`] asked for it and it could be read.
    pub content: Option<u64>,
}

/// How a source's outputs are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The plain names: no other object owns them, or this one owns them, or it is a copy of
    /// the owner (same content) and converting it rewrites the same bytes.
    Plain,
    /// Names of its own: a different object owns the plain ones.
    Distinct,
    /// The same content as the candidate at this index, converted in the same run: skip it.
    CopyOf(usize),
}

/// Which candidates need their content hashed before [`assign_names`] can decide: those that share
/// their plain names with another candidate, or whose names are owned by another identity.
pub fn contested(candidates: &[Candidate], claims: &Claims) -> Vec<bool> {
    let mut by_name: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_name.entry(name_hash(&c.key)).or_default().push(i);
    }
    let mut out = vec![false; candidates.len()];
    for (name, members) in by_name {
        let owner = claims.owners.get(&name);
        for &i in &members {
            out[i] = members.len() > 1 || owner.is_some_and(|o| o.identity != candidates[i].identity);
        }
    }
    out
}

/// Names the sources of one run. Among those sharing plain names, the ledger's owner keeps them;
/// without one, the smallest identity hash takes them. Every other candidate with different content
/// gets names of its own; one whose content equals an earlier candidate's is that one's copy.
pub fn assign_names(candidates: &[Candidate], claims: &Claims) -> Vec<Naming> {
    let mut by_name: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_name.entry(name_hash(&c.key)).or_default().push(i);
    }
    let mut out = vec![Naming::Plain; candidates.len()];
    for (name, mut members) in by_name {
        members.sort_by_key(|&i| (candidates[i].identity, i));
        let mut owner = claims.owners.get(&name).copied();
        let mut seen: Vec<(u64, usize)> = Vec::new();
        for i in members {
            let c = &candidates[i];
            if let Some(&(_, first)) = seen.iter().find(|(content, _)| Some(*content) == c.content) {
                out[i] = Naming::CopyOf(first);
                continue;
            }
            if let Some(content) = c.content {
                seen.push((content, i));
            }
            let o = *owner.get_or_insert(Owner { identity: c.identity, content: c.content });
            let same = o.identity == c.identity || (c.content.is_some() && c.content == o.content);
            out[i] = if same { Naming::Plain } else { Naming::Distinct };
        }
    }
    out
}

/// Records the rule sets that shape a run's conversions in the archive (`_shaping/`, see
/// [`Shaping::markers`](parquetrail_core::shaping::Shaping::markers)); nothing without shaping.
/// Idempotent: the same set gives the same object.
pub async fn record_shaping(
    storage: &dyn Storage,
    archive_prefix: &str,
    shaping: &parquetrail_core::shaping::Shaping,
) -> Result<(), StorageError> {
    for (path, body) in shaping.markers() {
        storage.put(&join(archive_prefix, &path), body).await?;
    }
    Ok(())
}

/// Records the objects one invocation of the Lambda converted in one segment
/// (`lambda-<hash>.jsonl`): the Lambda's ledger. The name is a hash of the objects' bucket and key
/// (of the one object, when there is one, as before batches shared a segment), so a retried or
/// duplicated invocation overwrites its segment instead of adding lines, and no run has to
/// coordinate with another. One PUT covers an SQS batch: up to ten objects, where a segment per
/// object cost a PUT each (BENCHMARKS.md, "S3 requests per object"). An object redelivered in a
/// batch of other objects is written again in another segment; readers keep one identity per
/// object ([`Ledger::open`], and `verify` the latest entry per source), so a repeat changes
/// nothing.
pub async fn record_objects(
    storage: &dyn Storage,
    archive_prefix: &str,
    entries: &[Entry],
) -> Result<(), StorageError> {
    let Some(first) = entries.first() else { return Ok(()) };
    let identify = |h: &mut Sha256, e: &Entry| {
        h.update(e.bucket.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(e.key.as_bytes());
    };
    let mut h = Sha256::new();
    if entries.len() == 1 {
        identify(&mut h, first);
    } else {
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by(|a, b| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)));
        h.update(b"batch");
        for e in sorted {
            h.update([0xff]);
            identify(&mut h, e);
        }
    }
    let name: String = h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut body = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut body, entry).expect("ledger entries serialize");
        body.push(b'\n');
    }
    storage.put(&format!("{}/lambda-{name}.jsonl", join(archive_prefix, LEDGER_DIR)), body).await
}

/// The identity of a source object version: what "already done" is keyed on.
pub fn identity(bucket: Option<&str>, key: &str, etag: Option<&str>, size: u64) -> u128 {
    let mut h = Sha256::new();
    h.update(bucket.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    match etag {
        Some(etag) => h.update(etag.trim_matches('"').as_bytes()),
        None => h.update(format!("size:{size}").as_bytes()),
    }
    let d = h.finalize();
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

/// A new run's identifier: its start time, the process and a random tail, so concurrent runs
/// never write the same segment and segments sort by time.
pub fn run_id() -> String {
    let now = chrono::DateTime::<chrono::Utc>::from(SystemTime::now());
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), std::process::id(), nanos)
}

/// Now, RFC 3339 (UTC, seconds).
pub fn timestamp() -> String {
    chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The ledger of one archive, as one run sees and extends it.
#[derive(Debug)]
pub struct Ledger {
    storage: Arc<dyn Storage>,
    dir: String,
    run: String,
    checkpoint: Checkpoint,
    done: HashSet<u128>,
    claims: Claims,
    segments_read: usize,
    pending: Vec<u8>,
    pending_entries: usize,
    seq: u32,
    last_flush: Instant,
    written: usize,
}

impl Ledger {
    /// Reads every segment under `<archive_prefix>/_ledger/`. A line that does not parse is
    /// ignored with a warning (segments are written whole, so this means someone edited one).
    pub async fn open(
        storage: Arc<dyn Storage>,
        archive_prefix: &str,
        checkpoint: Checkpoint,
    ) -> Result<Ledger, StorageError> {
        let dir = join(archive_prefix, LEDGER_DIR);
        let segments: Vec<ObjectMeta> =
            storage.list(&format!("{dir}/")).await?.into_iter().filter(|m| m.key.ends_with(".jsonl")).collect();
        let mut done = HashSet::new();
        let mut claims = Claims::default();
        // A few reads at a time: a long history has thousands of small segments.
        for chunk in segments.chunks(16) {
            let reads = chunk.iter().map(|m| storage.read(&m.key));
            for (meta, body) in chunk.iter().zip(futures_util::future::join_all(reads).await) {
                let body = body?;
                for (n, line) in body.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Entry>(line) {
                        Ok(e) => {
                            done.insert(identity(e.bucket.as_deref(), &e.key, e.etag.as_deref(), e.size));
                            claims.add(&e);
                        }
                        Err(err) => {
                            tracing::warn!(segment = %meta.key, line = n + 1, error = %err, "ignoring a ledger line")
                        }
                    }
                }
            }
        }
        Ok(Ledger {
            storage,
            dir,
            run: run_id(),
            checkpoint,
            done,
            claims,
            segments_read: segments.len(),
            pending: Vec::new(),
            pending_entries: 0,
            seq: 0,
            last_flush: Instant::now(),
            written: 0,
        })
    }

    /// This run's identifier.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Objects recorded as done (by earlier runs and this one).
    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Segments found at start.
    pub fn segments_read(&self) -> usize {
        self.segments_read
    }

    /// Segments this run wrote.
    pub fn segments_written(&self) -> usize {
        self.written
    }

    /// Whether this listed object (this version of it) is already done.
    pub fn is_done(&self, bucket: Option<&str>, object: &ObjectMeta) -> bool {
        self.done.contains(&identity(bucket, &object.key, object.etag.as_deref(), object.size))
    }

    /// Who owns each plain output name, by the entries read and recorded so far.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Records an object as done; it is written with the next segment.
    pub fn record(&mut self, entry: &Entry) {
        self.done.insert(identity(entry.bucket.as_deref(), &entry.key, entry.etag.as_deref(), entry.size));
        self.claims.add(entry);
        serde_json::to_writer(&mut self.pending, entry).expect("ledger entries serialize");
        self.pending.push(b'\n');
        self.pending_entries += 1;
    }

    /// Whether a segment is due (enough entries, or enough time with some pending).
    pub fn due(&self) -> bool {
        self.pending_entries >= self.checkpoint.objects
            || (self.pending_entries > 0 && self.last_flush.elapsed() >= self.checkpoint.interval)
    }

    /// Writes the pending entries as one segment (nothing when none are pending). On failure
    /// they stay pending for the next attempt.
    pub async fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending_entries == 0 {
            return Ok(());
        }
        let key = format!("{}/{}-{:06}.jsonl", self.dir, self.run, self.seq);
        self.storage.put(&key, self.pending.clone()).await?;
        tracing::debug!(segment = key, entries = self.pending_entries, "ledger segment written");
        self.seq += 1;
        self.written += 1;
        self.pending.clear();
        self.pending_entries = 0;
        self.last_flush = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStorage;

    fn entry(key: &str, etag: Option<&str>, size: u64) -> Entry {
        Entry {
            bucket: Some("trail".into()),
            key: key.into(),
            etag: etag.map(str::to_string),
            version_id: None,
            size,
            sha256: Some("ab".repeat(32)),
            status: Status::Converted,
            records: 3,
            rows: 3,
            quarantined: 0,
            filtered: 0,
            outputs: vec!["events/x.parquet".into()],
            reason: None,
            finished_at: timestamp(),
            run: "r".into(),
            source_id: None,
            distinct: false,
        }
    }

    /// The naming rule, table-driven: who keeps the plain names, who gets names of their own,
    /// and which candidate is a copy, with and without an owner in the ledger.
    #[test]
    fn names_are_assigned_by_owner_identity_and_content() {
        let key = "AWSLogs/1/CloudTrail/r/2024/01/01/f.json.gz";
        let other = "AWSLogs/1/CloudTrail/r/2024/01/01/g.json.gz";
        let c = |key: &str, identity, content| Candidate { key: key.into(), identity, content };
        let owned = |identity, content| {
            let mut claims = Claims::default();
            claims.claim(key, Owner { identity, content });
            claims
        };
        use Naming::*;
        let cases: Vec<(&str, Claims, Vec<Candidate>, Vec<Naming>)> = vec![
            ("alone, no owner", Claims::default(), vec![c(key, 5, None)], vec![Plain]),
            ("two different names", Claims::default(), vec![c(key, 9, None), c(other, 1, None)], vec![Plain, Plain]),
            (
                "two sources, one name: the smallest identity keeps it",
                Claims::default(),
                vec![c(key, 9, Some(1)), c(key, 3, Some(2))],
                vec![Distinct, Plain],
            ),
            (
                "the same content twice: a copy",
                Claims::default(),
                vec![c(key, 9, Some(1)), c(key, 3, Some(1))],
                vec![CopyOf(1), Plain],
            ),
            ("the owner again", owned(7, Some(1)), vec![c(key, 7, None)], vec![Plain]),
            ("a copy of the owner", owned(7, Some(1)), vec![c(key, 2, Some(1))], vec![Plain]),
            ("a different object", owned(7, Some(1)), vec![c(key, 2, Some(4))], vec![Distinct]),
            ("unreadable content", owned(7, Some(1)), vec![c(key, 2, None)], vec![Distinct]),
            (
                "the owner keeps its names even with a smaller identity in the run",
                owned(7, Some(1)),
                vec![c(key, 2, Some(3)), c(key, 7, Some(1))],
                vec![Distinct, Plain],
            ),
        ];
        for (why, claims, candidates, want) in cases {
            assert_eq!(assign_names(&candidates, &claims), want, "{why}: {candidates:?}");
        }
        let contested_of = contested(&[c(key, 7, None), c(key, 2, None), c(other, 2, None)], &owned(7, Some(1)));
        assert_eq!(contested_of, [true, true, false]);
        assert_eq!(contested(&[c(key, 7, None)], &owned(7, None)), [false], "the owner itself");
        assert_eq!(contested(&[c(key, 8, None)], &owned(7, None)), [true]);
    }

    #[tokio::test]
    async fn segments_round_trip_and_identify_object_versions() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let every = Checkpoint { objects: 2, interval: Duration::from_secs(3600) };
        let mut ledger = Ledger::open(storage.clone(), "lake", every).await.unwrap();
        assert_eq!((ledger.done_count(), ledger.segments_read()), (0, 0));
        ledger.record(&entry("a", Some("\"e1\""), 10));
        assert!(!ledger.due());
        ledger.record(&entry("b", None, 20));
        assert!(ledger.due());
        ledger.flush().await.unwrap();
        ledger.record(&entry("c", Some("e3"), 30));
        ledger.flush().await.unwrap();
        ledger.flush().await.unwrap(); // nothing pending: no empty segment
        assert_eq!(ledger.segments_written(), 2);

        let again = Ledger::open(storage.clone(), "lake", every).await.unwrap();
        assert_eq!((again.done_count(), again.segments_read()), (3, 2));
        let meta = |key: &str, etag: Option<&str>, size| ObjectMeta {
            key: key.into(),
            etag: etag.map(str::to_string),
            size,
            last_modified: None,
        };
        let cases = [
            (meta("a", Some("\"e1\""), 10), true, "same ETag"),
            (meta("a", Some("e1"), 10), true, "ETag quoting does not matter"),
            (meta("a", Some("\"e2\""), 10), false, "rewritten object"),
            (meta("b", None, 20), true, "local file, same size"),
            (meta("b", None, 21), false, "local file, new size"),
            (meta("d", Some("e3"), 30), false, "never seen"),
        ];
        for (object, want, why) in cases {
            assert_eq!(again.is_done(Some("trail"), &object), want, "{why}");
        }
        assert!(!again.is_done(Some("other-bucket"), &meta("a", Some("e1"), 10)));
        // Each entry claims its plain names for its full identity and content; distinct ones do not.
        let owner = again.claims().owner("a").expect("a owns its names");
        assert_eq!(owner.identity, identity_hash(b"s3://trail/a"));
        assert_eq!(owner.content, content_hash(&"ab".repeat(32)));
        let mut ledger = Ledger::open(storage.clone(), "lake2", every).await.unwrap();
        ledger.record(&entry("x", None, 1).with_source(b"/tmp/one/x", true));
        ledger.record(&entry("y", None, 1).with_source(b"/tmp/one/y", false));
        ledger.flush().await.unwrap();
        let reopened = Ledger::open(storage.clone(), "lake2", every).await.unwrap();
        assert_eq!(reopened.claims().owner("x"), None, "a distinct entry owns no plain names");
        assert_eq!(reopened.claims().owner("y").map(|o| o.identity), Some(identity_hash(b"/tmp/one/y")));
        // The segments are plain JSON lines under the reserved prefix.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("lake/_ledger")).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(names.len(), 2, "no temporary files left behind");
        let text = std::fs::read_to_string(names[0].path()).unwrap();
        let first: Entry = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first.status, Status::Converted);
    }
}
