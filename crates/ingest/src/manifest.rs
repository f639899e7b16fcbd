//! Per-partition manifests: which files of a partition readers see.
//!
//! Every partition directory of every dataset (`events/account=A/region=R/date=D`) has one
//! manifest, `manifests/events/account=A/region=R/date=D/symlink.txt`: the partition's live
//! Parquet files, one per line, as Athena's `SymlinkTextInputFormat` reads them (`s3://bucket/key`;
//! for a local directory, paths relative to the archive). A file is readable once it is listed.
//!
//! The manifest is a compare-and-swap register ([`Storage::put_if`], S3 conditional writes): a
//! writer appends with `If-Match` on the version it read and, when it loses a race, reads again.
//! Compaction swaps a partition's small files for large ones the same way, in one write, so a
//! query sees one version of the partition: before or after, never both, never neither. The
//! design, its alternatives and its failure analysis are in `docs/COMPACTION.md`.
//!
//! A writer that lists files in the same partition again and again (a warm Lambda instance, a
//! backfill) keeps what it last knew of each partition in a [`ManifestCache`] and writes its next
//! version on that, without reading first: one conditional PUT per delivery instead of two GETs and
//! a PUT. The conditional write is what makes it safe (see [`add_cached`]).
//!
//! Files compacted away are recorded in `_compaction/…/consumed.jsonl` before the swap. A file in
//! that list which the manifest no longer holds is never added again: a redelivered or
//! reconverted object whose rows already live in a compacted file cannot reappear. The list is
//! kept for good: it is a few hundred short lines per partition (one per delivery).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parquetrail_core::lookup::index::IndexPart;
use serde::{Deserialize, Serialize};

use crate::location::join;
use crate::storage::{ErrorKind, Storage, StorageError};

/// Where manifests live, under the archive root (mirroring the datasets' directories).
pub const MANIFESTS: &str = "manifests";
/// The manifest's name in each partition's manifest directory.
pub const MANIFEST_FILE: &str = "symlink.txt";
/// Compaction's own state, under the archive root (outside every table's location).
pub const COMPACTION: &str = "_compaction";
/// The list of compacted-away files, in each partition's compaction directory.
pub const CONSUMED_FILE: &str = "consumed.jsonl";

/// How many conditional writes of one manifest (or consumed list) a writer makes while they keep
/// losing to concurrent updates, before it gives up with a retryable error naming the object.
/// Writers of one partition are few, so a real race is won within two or three tries; a write
/// refused every time (an endpoint answering 412 to everything) must not hold the invocation.
pub const CONFLICT_ATTEMPTS: u32 = 12;
/// The longest a writer keeps trying one object's conditional write (requests and backoff
/// included), whatever the attempt count; the backoff of [`CONFLICT_ATTEMPTS`] alone adds up to
/// about 8 s on average.
pub const CONFLICT_TIME: Duration = Duration::from_secs(20);

/// The partition directory (relative to the archive root) of a data file: its parent.
pub fn partition_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The manifest key of a partition directory, in the storage.
pub fn manifest_key(root: &str, dir: &str) -> String {
    join(root, &format!("{MANIFESTS}/{dir}/{MANIFEST_FILE}"))
}

/// The suffix of a compaction's lookup index ([`parquetrail_core::lookup::index`]), stored in the
/// partition's compaction directory as `<stem>.lookup` and `<stem>.ids.lookup` (its
/// [`IndexPart`]s; outside every table's location, so Athena never reads it as data or as a
/// manifest).
pub const LOOKUP_INDEX_SUFFIX: &str = ".lookup";

/// The key of one part of the lookup index of a compaction's outputs, by their stem.
pub fn lookup_index_key(root: &str, dir: &str, stem: &str, part: IndexPart) -> String {
    join(root, &format!("{COMPACTION}/{dir}/{stem}{}", part.suffix()))
}

/// The stem of a compacted output's file name (`compacted-<hex>-0003.parquet` →
/// `compacted-<hex>`); `None` for any other file.
pub fn compacted_stem(name: &str) -> Option<&str> {
    let base = name.strip_suffix(".parquet")?;
    let (stem, n) = base.rsplit_once('-')?;
    (stem.starts_with(COMPACTED_PREFIX) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(stem)
}

/// The consumed-list key of a partition directory, in the storage.
pub fn consumed_key(root: &str, dir: &str) -> String {
    join(root, &format!("{COMPACTION}/{dir}/{CONSUMED_FILE}"))
}

/// One version of a partition's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The live files, relative to the archive root (`events/account=…/x.parquet`), sorted.
    pub files: BTreeSet<String>,
    /// The version read (`None`: no manifest yet).
    pub tag: Option<String>,
}

/// One compacted-away file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumedEntry {
    /// Relative to the archive root.
    pub path: String,
    /// Unix seconds when the compaction that consumed it recorded it.
    pub at: i64,
}

/// One version of a partition's consumed list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumed {
    /// Path → when it was last consumed (a compaction that crashed or lost a race may have
    /// recorded it earlier; garbage collection counts the grace period from the latest).
    pub entries: BTreeMap<String, i64>,
    pub tag: Option<String>,
}

/// What [`add`] did with the files it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AddReport {
    /// Newly listed.
    pub added: usize,
    /// Listed already (a retry, or a duplicate notification).
    pub present: usize,
    /// Not listed because a compaction consumed them: their rows are in a compacted file. The
    /// object just rewritten is left for compaction's garbage collection.
    pub refused: Vec<String>,
}

fn uri_base(storage: &dyn Storage, root: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() { storage.uri("") } else { storage.uri(&format!("{root}/")) }
}

/// Reads a partition's manifest (an absent manifest is an empty one).
pub async fn read(storage: &dyn Storage, root: &str, dir: &str) -> Result<Manifest, StorageError> {
    let key = manifest_key(root, dir);
    let Some((body, tag)) = storage.read_tagged(&key).await? else { return Ok(Manifest::default()) };
    let base = uri_base(storage, root);
    let text = String::from_utf8(body).map_err(|_| {
        StorageError::new(ErrorKind::Permanent, format!("{}/{key}: manifest is not UTF-8", storage.describe()))
    })?;
    let mut files = BTreeSet::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = line.strip_prefix(&base).ok_or_else(|| {
            StorageError::new(
                ErrorKind::Permanent,
                format!("{}/{key}: line {line:?} is not under the archive ({base})", storage.describe()),
            )
        })?;
        files.insert(path.to_string());
    }
    Ok(Manifest { files, tag: Some(tag) })
}

fn render(storage: &dyn Storage, root: &str, files: &BTreeSet<String>) -> Vec<u8> {
    let base = uri_base(storage, root);
    let mut out = String::new();
    for f in files {
        out.push_str(&base);
        out.push_str(f);
        out.push('\n');
    }
    out.into_bytes()
}

/// Writes a partition's manifest if it is still at `expected` ([`ErrorKind::Conflict`] if not).
/// Returns the new version.
pub async fn swap(
    storage: &dyn Storage,
    root: &str,
    dir: &str,
    files: &BTreeSet<String>,
    expected: Option<&str>,
) -> Result<String, StorageError> {
    storage.put_if(&manifest_key(root, dir), render(storage, root, files), expected).await
}

/// Reads a partition's consumed list.
pub async fn read_consumed(storage: &dyn Storage, root: &str, dir: &str) -> Result<Consumed, StorageError> {
    let key = consumed_key(root, dir);
    let Some((body, tag)) = storage.read_tagged(&key).await? else { return Ok(Consumed::default()) };
    let mut entries = BTreeMap::new();
    for (n, line) in body.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let entry: ConsumedEntry = serde_json::from_slice(line).map_err(|e| {
            StorageError::new(ErrorKind::Permanent, format!("{}/{key}: line {}: {e}", storage.describe(), n + 1))
        })?;
        let at = entries.entry(entry.path).or_insert(entry.at);
        *at = (*at).max(entry.at);
    }
    Ok(Consumed { entries, tag: Some(tag) })
}

/// Records files as consumed at `at` (unix seconds), refreshing the time of those recorded
/// already, so the grace period runs from the compaction that is about to swap them out.
pub async fn mark_consumed(
    storage: &dyn Storage,
    root: &str,
    dir: &str,
    paths: &BTreeSet<String>,
    at: i64,
) -> Result<(), StorageError> {
    let key = consumed_key(root, dir);
    let mut conflicts = Conflicts::new();
    loop {
        let mut consumed = read_consumed(storage, root, dir).await?;
        if paths.iter().all(|p| consumed.entries.get(p).is_some_and(|t| *t >= at)) {
            return Ok(());
        }
        for p in paths {
            let t = consumed.entries.entry(p.clone()).or_insert(at);
            *t = (*t).max(at);
        }
        let mut body = Vec::new();
        for (path, at) in &consumed.entries {
            serde_json::to_writer(&mut body, &ConsumedEntry { path: path.clone(), at: *at }).expect("serializes");
            body.push(b'\n');
        }
        match storage.put_if(&key, body, consumed.tag.as_deref()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind == ErrorKind::Conflict => conflicts.lost(storage, &key, &e).await?,
            Err(e) => return Err(e),
        }
    }
}

/// Lists freshly written files (paths relative to the archive root) in their partitions'
/// manifests, so readers see them. Idempotent: files already listed are left alone, files a
/// compaction consumed are refused. Call it only after the files are committed.
pub async fn add(storage: &dyn Storage, root: &str, paths: &[String]) -> Result<AddReport, StorageError> {
    add_cached(storage, root, paths, &ManifestCache::default()).await
}

/// How many partitions a [`ManifestCache`] remembers: a day's manifest is ~50 KB at one delivery
/// per 5 minutes, so at most ~13 MB.
pub const CACHED_PARTITIONS: usize = 256;

/// What one writer last knew of the manifests of one storage's partitions: a version it read or
/// wrote, and the consumed list read after the version the chain of its own writes started from.
#[derive(Debug, Default)]
pub struct ManifestCache {
    known: Mutex<HashMap<String, Known>>,
    /// One lock per partition being written: this writer's own updates of a partition take turns
    /// (several objects of one SQS batch often land in one partition), instead of racing each
    /// other into refused conditional PUTs and reads. Removed when nobody holds or awaits it.
    writing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per partition, the files waiting for its next manifest write: whoever's turn comes next
    /// lists all of them in one conditional PUT (a group commit), so the objects of one SQS batch
    /// that land in one partition cost one manifest PUT between them, not one each.
    waiting: Mutex<HashMap<String, Arc<Group>>>,
}

/// Files of one partition listed together by one manifest write ([`ManifestCache::join`]), and
/// what became of them.
#[derive(Debug, Default)]
struct Group {
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    paths: BTreeSet<String>,
    /// The write's outcome, once made; until then any member whose turn comes makes it.
    outcome: Option<Result<Listed, StorageError>>,
}

/// What one manifest write did with each file of its group. A file newly listed is counted as
/// added for one member only (two members may bring the same output: a duplicate notification).
#[derive(Debug, Clone, Default)]
struct Listed {
    added: BTreeSet<String>,
    refused: BTreeSet<String>,
}

impl Group {
    /// `wanted`'s share of the outcome, if the write was made: counted into `report`. A member's
    /// files are all in the write: it joined before the group was closed and its files read.
    fn share(&self, wanted: &BTreeSet<String>, report: &mut AddReport) -> Option<Result<(), StorageError>> {
        let mut state = self.state.lock().expect("not poisoned");
        let listed = match state.outcome.as_mut()? {
            Ok(listed) => listed,
            Err(e) => return Some(Err(e.clone())),
        };
        for p in wanted {
            if listed.added.remove(p) {
                report.added += 1;
            } else if listed.refused.contains(p) {
                report.refused.push(p.clone());
            } else {
                report.present += 1;
            }
        }
        Some(Ok(()))
    }
}

#[derive(Debug, Clone)]
struct Known {
    manifest: Manifest,
    consumed: BTreeSet<String>,
    /// Whether to write on this version without reading first. Off after such a write lost (the
    /// partition has other writers), on again once a read finds the version unchanged.
    trusted: bool,
    /// When it was last used (a counter), to forget the least recently used partition.
    used: u64,
}

impl ManifestCache {
    /// Waits for this writer's other updates of the manifest `key` to finish; the guard's drop
    /// lets the next one go.
    async fn turn(&self, key: &str) -> Turn<'_> {
        let lock = self.writing.lock().expect("not poisoned").entry(key.to_string()).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        Turn { cache: self, key: key.to_string(), lock, guard: Some(guard) }
    }

    /// Adds `wanted` to the files waiting for the next write of the manifest `key`.
    fn join(&self, key: &str, wanted: &BTreeSet<String>) -> Arc<Group> {
        // Under the map's lock, as `close` reads the files: a member joins before the group is
        // closed (and its files are in the write) or after (and joins the next group).
        let mut waiting = self.waiting.lock().expect("not poisoned");
        let group = waiting.entry(key.to_string()).or_default().clone();
        group.state.lock().expect("not poisoned").paths.extend(wanted.iter().cloned());
        group
    }

    /// Closes `group` to newcomers (they start the next one) and returns its files.
    fn close(&self, key: &str, group: &Arc<Group>) -> BTreeSet<String> {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if waiting.get(key).is_some_and(|open| Arc::ptr_eq(open, group)) {
            waiting.remove(key);
        }
        group.state.lock().expect("not poisoned").paths.clone()
    }

    fn take(&self, key: &str) -> Option<Known> {
        self.known.lock().expect("not poisoned").remove(key)
    }

    fn keep(&self, key: String, mut known: Known) {
        let mut map = self.known.lock().expect("not poisoned");
        known.used = map.values().map(|k| k.used + 1).max().unwrap_or(0);
        if map.len() >= CACHED_PARTITIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, k)| k.used).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(key, known);
    }
}

/// A writer's turn to update one partition's manifest ([`ManifestCache::turn`]).
struct Turn<'c> {
    cache: &'c ManifestCache,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut writing = self.cache.writing.lock().expect("not poisoned");
        // The map's reference and this one: nobody else holds or awaits the lock.
        if Arc::strong_count(&self.lock) == 2 {
            writing.remove(&self.key);
        }
    }
}

/// [`add`], remembering each partition's manifest in `cache` and writing the next version on it.
///
/// Why writing on a remembered version keeps every guarantee of [`add`]: the write is conditional
/// on that version (`If-Match`), so it succeeds only if nobody wrote the manifest since, and then
/// the consumed list remembered with it is as good as a fresh one. A compaction marks files
/// consumed *before* its swap, and a swap changes the version; every swap that removed a file
/// happened before the remembered chain of versions started, so its files were marked before the
/// consumed list remembered with it was read (after that first version). A compaction that marked
/// files but has not swapped yet only marked files the manifest still lists (its swap will now
/// lose and start again). A write that loses costs one refused PUT, and the partition is then
/// read before each write (as [`add`] does) until a read finds the version unchanged again; the
/// consumed list is read again whenever the version changed.
pub async fn add_cached(
    storage: &dyn Storage,
    root: &str,
    paths: &[String],
    cache: &ManifestCache,
) -> Result<AddReport, StorageError> {
    let mut by_dir: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for p in paths {
        by_dir.entry(partition_dir(p)).or_default().insert(p.clone());
    }
    let mut report = AddReport::default();
    for (dir, wanted) in by_dir {
        let key = manifest_key(root, dir);
        let group = cache.join(&key, &wanted);
        let _turn = cache.turn(&key).await;
        // Another member's turn came first and listed this group's files (or failed to).
        if let Some(shared) = group.share(&wanted, &mut report) {
            shared?;
            continue;
        }
        let files = cache.close(&key, &group);
        let listed = write_group(storage, root, dir, &key, &files, cache).await;
        group.state.lock().expect("not poisoned").outcome = Some(listed);
        group.share(&wanted, &mut report).expect("the outcome was just set")?;
    }
    Ok(report)
}

/// One write of a partition's manifest listing `wanted` (what a turn of [`add_cached`] does), on
/// the version `cache` remembers when it trusts it, else on one read.
async fn write_group(
    storage: &dyn Storage,
    root: &str,
    dir: &str,
    key: &str,
    wanted: &BTreeSet<String>,
    cache: &ManifestCache,
) -> Result<Listed, StorageError> {
    let mut conflicts = Conflicts::new();
    let mut remembered = cache.take(key);
    let mut lost = false;
    loop {
        let (manifest, consumed, unread, trusted) = match remembered.take() {
            Some(known) if known.trusted => (known.manifest, known.consumed, true, true),
            stale => {
                // The manifest first, then the consumed list: a compaction records its inputs
                // before it swaps, so a file missing from this manifest because it was
                // compacted is already in the consumed list read after it.
                let manifest = read(storage, root, dir).await?;
                match stale {
                    Some(known) if known.manifest.tag == manifest.tag => (manifest, known.consumed, false, true),
                    _ => {
                        let consumed = read_consumed(storage, root, dir).await?.entries.into_keys().collect();
                        (manifest, consumed, false, stale.is_none() && !lost)
                    }
                }
            }
        };
        let refused: BTreeSet<String> =
            wanted.iter().filter(|p| !manifest.files.contains(*p) && consumed.contains(*p)).cloned().collect();
        let new: BTreeSet<String> =
            wanted.iter().filter(|p| !manifest.files.contains(*p) && !consumed.contains(*p)).cloned().collect();
        if new.is_empty() {
            cache.keep(key.to_string(), Known { manifest, consumed, trusted, used: 0 });
            return Ok(Listed { added: new, refused });
        }
        let mut files = manifest.files.clone();
        files.extend(new.iter().cloned());
        match swap(storage, root, dir, &files, manifest.tag.as_deref()).await {
            Ok(tag) => {
                let manifest = Manifest { files, tag: Some(tag) };
                cache.keep(key.to_string(), Known { manifest, consumed, trusted, used: 0 });
                return Ok(Listed { added: new, refused });
            }
            // Someone wrote since the version remembered: read it, at once (no race was lost to
            // a writer in flight, the memory was old), and read before writing from now on.
            Err(e) if e.kind == ErrorKind::Conflict && unread => {
                lost = true;
                remembered = Some(Known { manifest, consumed, trusted: false, used: 0 });
            }
            Err(e) if e.kind == ErrorKind::Conflict => {
                lost = true;
                conflicts.lost(storage, key, &e).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Lists, in their partitions' manifests, the Parquet files of a dataset that no manifest lists
/// yet and no compaction consumed: an archive written before manifests existed, or outputs of a
/// writer that stopped between writing and listing. Compacted outputs are left to garbage
/// collection. Returns how many files were added.
pub async fn adopt(storage: &dyn Storage, root: &str, dataset_prefix: &str) -> Result<usize, StorageError> {
    let base = join(root, "");
    let mut by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in storage.list(&join(root, &format!("{dataset_prefix}/"))).await? {
        let path = o.key.strip_prefix(&base).unwrap_or(&o.key).to_string();
        let name = path.rsplit('/').next().unwrap_or_default();
        if path.ends_with(".parquet") && !name.starts_with(COMPACTED_PREFIX) {
            by_dir.entry(partition_dir(&path).to_string()).or_default().push(path);
        }
    }
    let mut added = 0;
    for paths in by_dir.values() {
        added += add(storage, root, paths).await?.added;
    }
    Ok(added)
}

/// How compacted outputs are named: `compacted-HASH-NNNN.parquet`.
pub const COMPACTED_PREFIX: &str = "compacted-";

/// The partition directories of a dataset that have a manifest (relative to the archive root,
/// e.g. `events/account=…/region=…/date=…`), found by listing `manifests/DATASET/`.
pub async fn partitions(storage: &dyn Storage, root: &str, dataset_prefix: &str) -> Result<Vec<String>, StorageError> {
    let base = join(root, &format!("{MANIFESTS}/"));
    let listed = storage.list(&join(root, &format!("{MANIFESTS}/{dataset_prefix}/"))).await?;
    Ok(listed
        .into_iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(&base)?;
            rel.strip_suffix(&format!("/{MANIFEST_FILE}")).map(str::to_string)
        })
        .collect())
}

/// Every live file of a dataset, relative to the archive root, sorted: what a query reads.
pub async fn live_files(storage: &dyn Storage, root: &str, dataset_prefix: &str) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for dir in partitions(storage, root, dataset_prefix).await? {
        out.extend(read(storage, root, &dir).await?.files);
    }
    out.sort();
    Ok(out)
}

/// The conditional writes of one object that lost to concurrent updates, bounded by
/// [`CONFLICT_ATTEMPTS`] and [`CONFLICT_TIME`].
struct Conflicts {
    lost: u32,
    started: Instant,
}

impl Conflicts {
    fn new() -> Self {
        Conflicts { lost: 0, started: Instant::now() }
    }

    /// After a lost write: waits before the next try, or gives up (retryably, naming the object
    /// and keeping the last conflict) when the next try would pass either bound.
    async fn lost(&mut self, storage: &dyn Storage, key: &str, last: &StorageError) -> Result<(), StorageError> {
        self.lost += 1;
        // Jittered, growing to ~1 s: writers to one partition are few (one delivery per ~5 minutes
        // per account and region), so a lost race is retried at once in practice.
        let base = 10u64.saturating_mul(1 << self.lost.min(7));
        let wait = Duration::from_millis(base / 2 + fastrand::u64(0..=base));
        let elapsed = self.started.elapsed();
        if self.lost >= CONFLICT_ATTEMPTS || elapsed + wait > CONFLICT_TIME {
            return Err(StorageError::new(
                ErrorKind::Retryable,
                format!(
                    "{}/{key}: gave up after {} conditional writes in {:.1} s, each refused as a concurrent update \
                     (last: {last}); try again",
                    storage.describe(),
                    self.lost,
                    elapsed.as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStorage;
    use std::sync::Arc;

    #[test]
    fn keys() {
        assert_eq!(partition_dir("events/account=1/region=r/date=d/x.parquet"), "events/account=1/region=r/date=d");
        assert_eq!(manifest_key("", "events/a=1"), "manifests/events/a=1/symlink.txt");
        assert_eq!(manifest_key("pre/", "events/a=1"), "pre/manifests/events/a=1/symlink.txt");
        assert_eq!(consumed_key("pre", "events/a=1"), "pre/_compaction/events/a=1/consumed.jsonl");
    }

    /// Writers reading before each write race writers that write on what they remember of the
    /// partition (Lambda instances, each with its own memory): every file is listed once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_adds_on_disk_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let part = "events/account=1/region=r/date=2024-01-01";
        let mut tasks = Vec::new();
        for i in 0..24 {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                let files = vec![format!("{part}/f{i:02}.parquet"), format!("{part}/shared.parquet")];
                add(storage.as_ref(), "arch", &files).await.unwrap().added
            }));
        }
        for writer in 0..4 {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                let cache = ManifestCache::default();
                let mut added = 0;
                for n in 0..6 {
                    let file = vec![format!("{part}/w{writer}-{n}.parquet")];
                    added += add_cached(storage.as_ref(), "arch", &file, &cache).await.unwrap().added;
                }
                added
            }));
        }
        let mut added = 0;
        for t in tasks {
            added += t.await.unwrap();
        }
        assert_eq!(added, 49, "24 + 24 own files and the shared one, once");
        let m = read(storage.as_ref(), "arch", part).await.unwrap();
        assert_eq!(m.files.len(), 49);
        let text = std::fs::read_to_string(dir.path().join("arch/manifests").join(part).join(MANIFEST_FILE)).unwrap();
        assert!(
            text.lines().all(|l| l.starts_with(&format!("arch/{part}/"))),
            "paths relative to the directory: {text}"
        );
        assert_eq!(live_files(storage.as_ref(), "arch", "events").await.unwrap().len(), 49);
    }

    /// A writer whose memory of a partition is older than a compaction of it neither lists a
    /// compacted-away file again nor loses a new one.
    #[tokio::test]
    async fn a_writer_remembering_a_compacted_partition_keeps_consumed_files_out() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        let part = "events/account=1/region=r/date=2024-01-01";
        let file = |name: &str| format!("{part}/{name}.parquet");
        let cache = ManifestCache::default();
        for name in ["a", "b"] {
            assert_eq!(add_cached(&storage, "", &[file(name)], &cache).await.unwrap().added, 1);
        }
        // Another writer lists `c`; a compaction then consumes all three.
        add(&storage, "", &[file("c")]).await.unwrap();
        let before = read(&storage, "", part).await.unwrap();
        mark_consumed(&storage, "", part, &before.files, 100).await.unwrap();
        let compacted = BTreeSet::from([file("compacted-x-0000")]);
        swap(&storage, "", part, &compacted, before.tag.as_deref()).await.unwrap();

        // Redeliveries of `a` (remembered as listed) and `c` (never seen by this writer).
        let again = add_cached(&storage, "", &[file("a")], &cache).await.unwrap();
        assert_eq!(again.added, 0, "{again:?}");
        let again = add_cached(&storage, "", &[file("c")], &cache).await.unwrap();
        assert_eq!((again.added, again.refused.clone()), (0, vec![file("c")]), "{again:?}");
        assert_eq!(read(&storage, "", part).await.unwrap().files, compacted);
        // A new delivery lands on the compacted version.
        assert_eq!(add_cached(&storage, "", &[file("d")], &cache).await.unwrap().added, 1);
        let want = BTreeSet::from([file("compacted-x-0000"), file("d")]);
        assert_eq!(read(&storage, "", part).await.unwrap().files, want);
    }

    /// Local storage whose manifest writes are counted and can be made to fail.
    #[derive(Debug)]
    struct Writes {
        inner: LocalStorage,
        puts: std::sync::atomic::AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl Storage for Writes {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn open(&self, key: &str, version: Option<&str>) -> Result<crate::storage::Opened, StorageError> {
            self.inner.open(key, version).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<crate::storage::ObjectMeta>, StorageError> {
            self.inner.list(prefix).await
        }
        async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list_prefixes(prefix).await
        }
        async fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<crate::storage::ListPage, StorageError> {
            self.inner.list_page(prefix, token).await
        }
        async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
            self.inner.put(key, body).await
        }
        async fn read_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
            self.inner.read_tagged(key).await
        }
        async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, StorageError> {
            self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StorageError::new(ErrorKind::Retryable, "503 Slow Down"));
            }
            self.inner.put_if(key, body, expected).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        fn sink(&self, prefix: &str) -> Arc<dyn parquetrail_core::sink::Sink + Send + Sync> {
            self.inner.sink(prefix)
        }
    }

    /// Adds each of `files` (one list per caller) through one cache while the partition's turn is
    /// held, once all of them are waiting for it; returns each caller's report.
    async fn grouped(
        storage: &Arc<Writes>,
        cache: &Arc<ManifestCache>,
        files: &[Vec<String>],
    ) -> Vec<Result<AddReport, StorageError>> {
        let part = "events/account=1/region=r/date=2024-01-01";
        let key = manifest_key("", part);
        let held = cache.turn(&key).await;
        let tasks: Vec<_> = files
            .iter()
            .map(|files| {
                let (storage, cache, files) = (storage.clone(), cache.clone(), files.clone());
                tokio::spawn(async move { add_cached(storage.as_ref(), "", &files, &cache).await })
            })
            .collect();
        let want: BTreeSet<&String> = files.iter().flatten().collect();
        loop {
            let joined = cache.waiting.lock().unwrap().get(&key).map(|g| g.state.lock().unwrap().paths.len());
            if joined == Some(want.len()) {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(held);
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await.unwrap());
        }
        reports
    }

    /// The objects of one SQS batch that land in one partition: those whose turn had not come
    /// yet are listed by one manifest write between them, each file counted as added once (a
    /// file two callers bring, a duplicate notification, too); a failed write fails them all,
    /// and the next turn lists them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writers_share_one_manifest_write() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Writes {
            inner: LocalStorage::new(dir.path()),
            puts: Default::default(),
            fail: Default::default(),
        });
        let cache = Arc::new(ManifestCache::default());
        let part = "events/account=1/region=r/date=2024-01-01";
        let file = |name: &str| format!("{part}/{name}.parquet");
        let puts = || storage.puts.load(std::sync::atomic::Ordering::SeqCst);

        let mut files: Vec<Vec<String>> = (0..8).map(|i| vec![file(&format!("f{i}"))]).collect();
        files.push(vec![file("f3")]);
        let reports: Vec<AddReport> = grouped(&storage, &cache, &files).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(puts(), 1, "one write for the nine callers: {reports:?}");
        assert_eq!(reports.iter().map(|r| r.added).sum::<usize>(), 8, "{reports:?}");
        assert_eq!(reports.iter().map(|r| r.added + r.present).collect::<Vec<_>>(), vec![1; 9], "{reports:?}");
        let listed = read(storage.as_ref(), "", part).await.unwrap().files;
        assert_eq!(listed, files.iter().flatten().cloned().collect::<BTreeSet<_>>());

        storage.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let files: Vec<Vec<String>> = (8..12).map(|i| vec![file(&format!("f{i}"))]).collect();
        let failed = grouped(&storage, &cache, &files).await;
        assert_eq!(puts(), 2, "one refused write for the four: {failed:?}");
        assert!(failed.iter().all(|r| r.as_ref().is_err_and(|e| e.kind == ErrorKind::Retryable)), "{failed:?}");
        assert_eq!(read(storage.as_ref(), "", part).await.unwrap().files, listed, "nothing listed");

        storage.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let again: Vec<AddReport> = grouped(&storage, &cache, &files).await.into_iter().map(Result::unwrap).collect();
        assert_eq!((puts(), again.iter().map(|r| r.added).sum::<usize>()), (3, 4), "{again:?}");
        assert_eq!(read(storage.as_ref(), "", part).await.unwrap().files.len(), 12);
        assert!(cache.waiting.lock().unwrap().is_empty(), "no group is left waiting");
    }

    #[tokio::test]
    async fn consumed_files_are_not_added_again() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        let part = "events/account=1/region=r/date=2024-01-01";
        let small = format!("{part}/small.parquet");
        add(&storage, "", std::slice::from_ref(&small)).await.unwrap();
        let m = read(&storage, "", part).await.unwrap();
        mark_consumed(&storage, "", part, &BTreeSet::from([small.clone()]), 100).await.unwrap();
        let big = BTreeSet::from([format!("{part}/compacted.parquet")]);
        swap(&storage, "", part, &big, m.tag.as_deref()).await.unwrap();
        // The stale version no longer swaps.
        let err = swap(&storage, "", part, &BTreeSet::new(), m.tag.as_deref()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        let report = add(&storage, "", std::slice::from_ref(&small)).await.unwrap();
        assert_eq!(report.refused, vec![small.clone()]);
        assert_eq!(read(&storage, "", part).await.unwrap().files, big);
    }
}
