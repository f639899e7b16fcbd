//! Compaction over storage: a partition's small files become a few large, sorted, deduplicated
//! ones, swapped in through the partition's manifest so that no reader ever sees a record twice
//! or misses one (the protocol and its failure analysis: `docs/COMPACTION.md`).
//!
//! One partition, step by step:
//! 1. Read the manifest (version `E`) and list the partition's objects (sizes, ages).
//! 2. If it holds at least two files and one of them is small, read every listed file and write
//!    the compacted files (pure core, [`mod@parquetrail_core::compact`]) under names derived from the
//!    hash of the input list: the same inputs give the same names and the same bytes, so a rerun
//!    after a crash overwrites, never adds.
//! 3. Record the inputs as consumed (so a redelivered object cannot list its file again).
//! 4. Swap the manifest, `If-Match: E`, to (current files − inputs) + outputs. A late writer that
//!    appended meanwhile makes the swap fail: read again and retry, keeping its files. If an
//!    input is gone, another compaction won: give up; our outputs are orphans.
//! 5. Collect garbage: delete files the manifest does not list once they have been consumed (or,
//!    never listed, written) longer ago than the grace period, so queries planned on an older
//!    manifest can still read them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use parquetrail_core::compact::{CompactOptions, CompactReport};
use parquetrail_core::convert::{Dataset, Layout};
use parquetrail_core::lookup::index::IndexPart;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::task::JoinSet;

use crate::location::join;
use crate::manifest;
use crate::storage::{ErrorKind, Storage, StorageError};

/// How compaction runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Output size, memory budget and writer settings (those of the converter, so compacted and
    /// per-delivery files are interchangeable).
    pub options: CompactOptions,
    /// How long a file stays after the manifest stops listing it (default 1 hour): longer than
    /// any query planned on the previous manifest runs.
    pub grace: Duration,
    /// Partitions compacted at once (each holds up to `options.memory_budget` of rows).
    pub concurrency: usize,
    /// Plan only: say which partitions would be compacted, write and delete nothing.
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            options: CompactOptions::default(),
            grace: Duration::from_secs(3600),
            concurrency: 2,
            dry_run: false,
        }
    }
}

/// Which partitions to look at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub datasets: Vec<Dataset>,
    /// Only partitions whose day ended at least this long ago (late deliveries have landed).
    pub older_than: Option<Duration>,
    /// Only partitions dated on or after this day.
    pub since: Option<NaiveDate>,
    /// Only these partition directories (`events/account=…/region=…/date=…`); overrides the rest.
    pub partitions: Vec<String>,
}

/// What happened to one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Its small files were replaced by the outputs.
    Compacted,
    /// Nothing to do (fewer than two files, or none small).
    AlreadyCompact,
    /// Would be compacted (dry run).
    Planned,
    /// A concurrent compaction swapped the manifest first; its result stands.
    LostRace,
}

/// One partition's compaction.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub partition: String,
    pub verdict: Verdict,
    /// Files listed before.
    pub files_before: usize,
    /// Files listed after (outputs plus late files kept).
    pub files_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub duplicates_removed: u64,
    /// Files a writer listed while this compaction ran, kept beside the outputs.
    pub late_files: usize,
    /// Unlisted files deleted by garbage collection.
    pub deleted: usize,
    pub seconds: f64,
}

/// Why a partition failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub partition: String,
    pub error: String,
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The partitions that ended, sorted by directory.
    pub partitions: Vec<PartitionReport>,
    /// The partitions that failed, sorted by directory; the others went on.
    pub failures: Vec<Failure>,
    /// Partitions in scope.
    pub in_scope: usize,
    /// Partitions not started because the run was told to stop (a deadline, an interrupt): the
    /// next run does them.
    pub not_started: usize,
}

impl Report {
    pub fn compacted(&self) -> impl Iterator<Item = &PartitionReport> {
        self.partitions.iter().filter(|p| p.verdict == Verdict::Compacted)
    }

    /// The run's totals, summed once for every front end.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            partitions: self.in_scope,
            failed: self.failures.len(),
            not_started: self.not_started,
            ..Totals::default()
        };
        for p in &self.partitions {
            match p.verdict {
                Verdict::Compacted => t.compacted += 1,
                Verdict::AlreadyCompact => t.already_compact += 1,
                Verdict::Planned => t.planned += 1,
                Verdict::LostRace => t.lost_race += 1,
            }
            if matches!(p.verdict, Verdict::Compacted | Verdict::Planned) {
                t.files_before += p.files_before;
                t.files_after += p.files_after;
                t.bytes_before += p.bytes_before;
                t.bytes_after += p.bytes_after;
            }
            t.rows_in += p.rows_in;
            t.rows_out += p.rows_out;
            t.duplicates_removed += p.duplicates_removed;
            t.late_files += p.late_files;
            t.deleted += p.deleted;
        }
        t
    }
}

/// Totals of a run: what `parquetrail compact` prints and the Lambda's compaction run answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Partitions in scope.
    pub partitions: usize,
    pub compacted: usize,
    pub already_compact: usize,
    /// Would be compacted (dry run).
    pub planned: usize,
    /// Compacted meanwhile by another run, whose result stands.
    pub lost_race: usize,
    pub failed: usize,
    /// Not started because the run was told to stop (an interrupt, the invocation's deadline).
    pub not_started: usize,
    /// Files and bytes of the partitions compacted (or, in a dry run, planned), before and after.
    pub files_before: usize,
    pub files_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub duplicates_removed: u64,
    pub late_files: usize,
    /// Replaced files deleted, in every partition looked at.
    pub deleted: usize,
}

/// Where a run stands, told after each partition ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Partitions ended (compacted, already compact, lost, or failed).
    pub done: usize,
    pub failed: usize,
    /// Partitions in scope.
    pub total: usize,
}

/// How a run is steered from outside: when to stop starting partitions, and whom to tell how far
/// it got. The default never stops and tells no one.
pub struct Control<'a> {
    go_on: Box<dyn Fn() -> bool + Send + Sync + 'a>,
    progress: Box<dyn FnMut(Progress) + Send + 'a>,
    must_exist: bool,
}

impl Default for Control<'_> {
    fn default() -> Self {
        Control { go_on: Box::new(|| true), progress: Box::new(|_| {}), must_exist: false }
    }
}

impl std::fmt::Debug for Control<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("must_exist", &self.must_exist).finish_non_exhaustive()
    }
}

impl<'a> Control<'a> {
    /// Asked before each partition starts; once it says `false`, no more start (partitions in
    /// flight finish: each is safe to stop anywhere, but finishing is cheaper than redoing) and the
    /// rest are counted as not started.
    pub fn go_on_while(mut self, go_on: impl Fn() -> bool + Send + Sync + 'a) -> Self {
        self.go_on = Box::new(go_on);
        self
    }

    /// Called after each partition ends.
    pub fn on_progress(mut self, progress: impl FnMut(Progress) + Send + 'a) -> Self {
        self.progress = Box::new(progress);
        self
    }

    /// The partitions were named by the user: one that no manifest lists is a failure, not a
    /// quiet "already compact".
    pub fn must_exist(mut self, must_exist: bool) -> Self {
        self.must_exist = must_exist;
        self
    }
}

/// Compacts partitions of one archive.
#[derive(Debug, Clone)]
pub struct Compactor {
    storage: Arc<dyn Storage>,
    root: String,
    layout: Layout,
    settings: Settings,
}

/// A file is small when under half the target: compacting it with others gains something.
fn is_small(size: u64, target: u64) -> bool {
    size < target / 2
}

impl Compactor {
    pub fn new(storage: Arc<dyn Storage>, root: impl Into<String>, layout: Layout, settings: Settings) -> Self {
        Compactor { storage, root: root.into(), layout, settings }
    }

    /// The partition directories in scope, sorted: walked level by level (account, region, date)
    /// through the manifests, so only dates in range are looked at.
    pub async fn partitions(&self, scope: &Scope) -> Result<Vec<(Dataset, String)>, StorageError> {
        let mut out = Vec::new();
        for dataset in &scope.datasets {
            let prefix = self.layout.prefix(*dataset).to_string();
            if !scope.partitions.is_empty() {
                out.extend(
                    scope
                        .partitions
                        .iter()
                        .filter(|p| p.starts_with(&format!("{prefix}/")))
                        .map(|p| (*dataset, p.clone())),
                );
                continue;
            }
            let base = join(&self.root, &format!("{}/", manifest::MANIFESTS));
            let mut level = vec![join(&self.root, &format!("{}/{prefix}/", manifest::MANIFESTS))];
            for _ in 0..3 {
                let mut next = Vec::new();
                for p in level {
                    next.extend(self.storage.list_prefixes(&p).await?);
                }
                level = next;
            }
            for p in level {
                let Some(dir) = p.strip_prefix(&base).map(|d| d.trim_end_matches('/').to_string()) else { continue };
                let Some(date) =
                    dir.rsplit_once("date=").and_then(|(_, d)| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                else {
                    continue;
                };
                if scope.since.is_some_and(|s| date < s) {
                    continue;
                }
                if let Some(age) = scope.older_than {
                    let end = date.succ_opt().unwrap_or(date).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
                    let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
                    if end + age > Utc::now() {
                        continue;
                    }
                }
                out.push((*dataset, dir));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Compacts every partition in scope, `concurrency` at a time; a failed partition is reported
    /// and the others go on.
    pub async fn run(&self, scope: &Scope) -> Result<Report, StorageError> {
        let partitions = self.partitions(scope).await?;
        Ok(self.schedule(partitions, Control::default()).await)
    }

    /// The one scheduler of compaction runs (the CLI's, the Lambda's, [`Compactor::run`]'s):
    /// compacts `partitions`, `concurrency` at a time, while `control` lets it; a failed partition
    /// is reported and the others go on.
    pub async fn schedule(&self, partitions: Vec<(Dataset, String)>, mut control: Control<'_>) -> Report {
        let mut report = Report { in_scope: partitions.len(), ..Report::default() };
        let mut queue = partitions.into_iter();
        let mut running = JoinSet::new();
        let mut names = std::collections::HashMap::new();
        loop {
            while running.len() < self.settings.concurrency.max(1) && (control.go_on)() {
                let Some((dataset, dir)) = queue.next() else { break };
                let this = self.clone();
                let must_exist = control.must_exist;
                let handle = running.spawn({
                    let dir = dir.clone();
                    async move { this.existing_partition(dataset, &dir, must_exist).await }
                });
                names.insert(handle.id(), dir);
            }
            let Some(done) = running.join_next_with_id().await else { break };
            match done {
                Ok((id, result)) => {
                    let partition = names.remove(&id).unwrap_or_default();
                    match result {
                        Ok(p) => report.partitions.push(p),
                        Err(error) => report.failures.push(Failure { partition, error }),
                    }
                }
                Err(e) => {
                    let partition = names.remove(&e.id()).unwrap_or_default();
                    report.failures.push(Failure { partition, error: format!("the compaction task failed: {e}") });
                }
            }
            (control.progress)(Progress {
                done: report.partitions.len() + report.failures.len(),
                failed: report.failures.len(),
                total: report.in_scope,
            });
        }
        report.not_started = queue.len();
        report.partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
        report.failures.sort_by(|a, b| a.partition.cmp(&b.partition));
        report
    }

    /// [`Compactor::partition`], refusing (with `must_exist`) a partition no manifest lists:
    /// compacting it would quietly do nothing.
    async fn existing_partition(
        &self,
        dataset: Dataset,
        dir: &str,
        must_exist: bool,
    ) -> Result<PartitionReport, String> {
        if must_exist {
            let m = manifest::read(self.storage.as_ref(), &self.root, dir).await.map_err(|e| e.message)?;
            if m.tag.is_none() {
                return Err(format!(
                    "no manifest ({}): no such partition, or its files are listed in no manifest",
                    manifest::manifest_key(&self.root, dir)
                ));
            }
        }
        self.partition(dataset, dir).await.map_err(|e| e.message)
    }

    /// Compacts one partition directory (`events/account=…/region=…/date=…`) and collects its
    /// garbage.
    pub async fn partition(&self, dataset: Dataset, dir: &str) -> Result<PartitionReport, StorageError> {
        let started = Instant::now();
        let storage = self.storage.as_ref();
        let target = self.settings.options.target_bytes;
        let mut manifest = manifest::read(storage, &self.root, dir).await?;
        let listed = storage.list(&join(&self.root, &format!("{dir}/"))).await?;
        let size_of = |path: &str| {
            let key = join(&self.root, path);
            listed.iter().find(|o| o.key == key).map(|o| o.size)
        };
        // Computed Insights files are replaced whole by each Insights run (see `insights`).
        let inputs: BTreeSet<String> = manifest
            .files
            .iter()
            .filter(|p| !p.rsplit('/').next().unwrap_or(p).starts_with(crate::insights::COMPUTED_PREFIX))
            .cloned()
            .collect();
        let bytes_before: u64 = inputs.iter().filter_map(|p| size_of(p)).sum();
        let mut report = PartitionReport {
            partition: dir.to_string(),
            verdict: Verdict::AlreadyCompact,
            files_before: inputs.len(),
            files_after: inputs.len(),
            bytes_before,
            bytes_after: bytes_before,
            rows_in: 0,
            rows_out: 0,
            duplicates_removed: 0,
            late_files: 0,
            deleted: 0,
            seconds: 0.0,
        };
        // A lone per-delivery file is rewritten too: a compacted file has what lookups need
        // (sorted rows, bloom filters, a page index, an entry in a lookup index), and a
        // partition without one would be read whole by every point lookup.
        let lone_delivery = inputs.len() == 1
            && inputs.iter().all(|p| manifest::compacted_stem(p.rsplit('/').next().unwrap_or(p)).is_none());
        let worth_it = lone_delivery
            || (inputs.len() >= 2 && inputs.iter().any(|p| size_of(p).is_none_or(|s| is_small(s, target))));
        if worth_it && self.settings.dry_run {
            report.verdict = Verdict::Planned;
        } else if worth_it {
            let stem = stem(&inputs);
            let compacted = self.write_outputs(dataset, dir, &inputs, &stem).await?;
            let outputs: BTreeSet<String> = compacted.outputs.iter().map(|o| o.path.clone()).collect();
            // The index only speeds lookups up (they read the files themselves without it), so
            // failing to store it is not worth failing the compaction over.
            for (part, bytes) in &compacted.lookup_indexes {
                let index_key = manifest::lookup_index_key(&self.root, dir, &stem, *part);
                if let Err(e) = storage.put(&index_key, bytes.clone()).await {
                    tracing::warn!(partition = dir, error = %e, "could not store the lookup index; lookups read every file");
                }
            }
            manifest::mark_consumed(storage, &self.root, dir, &inputs, unix_now()).await?;
            // Outputs never listed are garbage after the grace period: a compaction that took
            // longer than half of it might swap in files another run's collection just deleted.
            if started.elapsed() > self.settings.grace / 2 && !self.settings.grace.is_zero() {
                return Err(StorageError::new(
                    ErrorKind::Retryable,
                    format!(
                        "{dir}: compaction took {:.0} s, over half the grace period; not swapping (run again)",
                        started.elapsed().as_secs_f64()
                    ),
                ));
            }
            let mut attempt = 0;
            loop {
                let mut files: BTreeSet<String> = manifest.files.difference(&inputs).cloned().collect();
                let late = files.len();
                files.extend(outputs.iter().cloned());
                match manifest::swap(storage, &self.root, dir, &files, manifest.tag.as_deref()).await {
                    Ok(_) => {
                        report.verdict = Verdict::Compacted;
                        report.late_files = late;
                        report.files_after = files.len();
                        report.bytes_after = compacted.outputs.iter().map(|o| o.bytes).sum::<u64>()
                            + manifest.files.difference(&inputs).filter_map(|p| size_of(p)).sum::<u64>();
                        break;
                    }
                    Err(e) if e.kind == ErrorKind::Conflict && attempt < 40 => {
                        attempt += 1;
                        manifest = manifest::read(storage, &self.root, dir).await?;
                        if !inputs.is_subset(&manifest.files) {
                            // Another compaction swapped first: its outputs hold these rows.
                            report.verdict = Verdict::LostRace;
                            break;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            report.rows_in = compacted.rows_in;
            report.rows_out = compacted.rows_out;
            report.duplicates_removed = compacted.duplicates_removed;
        }
        if !self.settings.dry_run {
            report.deleted = self.collect_garbage(dir).await?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            partition = dir,
            verdict = ?report.verdict,
            files_before = report.files_before,
            files_after = report.files_after,
            duplicates_removed = report.duplicates_removed,
            deleted = report.deleted,
            "compaction"
        );
        Ok(report)
    }

    /// Reads every input (one at a time) and writes the compacted files, on a blocking thread.
    async fn write_outputs(
        &self,
        dataset: Dataset,
        dir: &str,
        inputs: &BTreeSet<String>,
        stem: &str,
    ) -> Result<CompactReport, StorageError> {
        let storage = self.storage.clone();
        let root = self.root.clone();
        let sink = storage.sink(&root);
        let handle = Handle::current();
        let inputs: Vec<String> = inputs.iter().cloned().collect();
        let (dir, stem, options) = (dir.to_string(), stem.to_string(), self.settings.options.clone());
        let what = format!("{}/{}", storage.describe(), join(&root, &dir));
        let joined = tokio::task::spawn_blocking(move || {
            let fetch = inputs.into_iter().map(|path| {
                let key = join(&root, &path);
                handle
                    .block_on(storage.read(&key))
                    .map(|b| (path.clone(), Bytes::from(b)))
                    .map_err(|e| parquetrail_core::Error::Read { key: path, offset: 0, source: e.into() })
            });
            parquetrail_core::compact::compact(dataset, fetch, sink.as_ref(), &dir, &stem, &options)
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("{what}: compaction task failed: {e}")))?;
        joined.map_err(|e| {
            let kind = if e.retryable() { ErrorKind::Retryable } else { ErrorKind::Permanent };
            StorageError::new(kind, format!("compacting {what}: {e}"))
        })
    }

    /// Deletes the partition's files that its manifest does not list, once past the grace period:
    /// consumed ones counted from when they were (last) consumed, and compacted outputs never
    /// listed (a crashed or beaten compaction's) from when they were written. An unlisted
    /// per-delivery file that was never consumed is kept: it may be a writer's, about to be
    /// listed, or an archive's from before manifests ([`manifest::adopt`] lists those).
    /// Returns how many were deleted.
    pub async fn collect_garbage(&self, dir: &str) -> Result<usize, StorageError> {
        let storage = self.storage.as_ref();
        // List first, then read the manifest: every object listed was written before the
        // manifest read, so one that a swap had listed by then is seen as listed.
        let objects = storage.list(&join(&self.root, &format!("{dir}/"))).await?;
        let manifest = manifest::read(storage, &self.root, dir).await?;
        let consumed = manifest::read_consumed(storage, &self.root, dir).await?;
        let now = SystemTime::now();
        let grace = self.settings.grace;
        let mut deleted = 0;
        let prefix = join(&self.root, "");
        for object in objects {
            let path = object.key.strip_prefix(&prefix).unwrap_or(&object.key).to_string();
            if manifest.files.contains(&path) || !path.ends_with(".parquet") || manifest.tag.is_none() {
                continue;
            }
            let compacted = path.rsplit('/').next().is_some_and(|n| n.starts_with(manifest::COMPACTED_PREFIX));
            let since = match consumed.entries.get(&path) {
                Some(at) => SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(*at).unwrap_or(0)),
                None if compacted => object.last_modified.unwrap_or(now),
                None => continue,
            };
            if now.duration_since(since).unwrap_or_default() >= grace {
                storage.delete(&object.key).await?;
                deleted += 1;
            }
        }
        // Lookup indexes of compactions whose outputs are no longer listed (or never were).
        if manifest.tag.is_some() {
            let live: BTreeSet<&str> = manifest
                .files
                .iter()
                .filter_map(|p| manifest::compacted_stem(p.rsplit('/').next().unwrap_or(p)))
                .collect();
            let state = join(&self.root, &format!("{}/{dir}/", manifest::COMPACTION));
            for object in storage.list(&state).await? {
                let name = object.key.rsplit('/').next().unwrap_or(&object.key);
                let Some(stem) = IndexPart::stem_of(name) else { continue };
                let since = object.last_modified.unwrap_or(now);
                if !live.contains(stem) && now.duration_since(since).unwrap_or_default() >= grace {
                    storage.delete(&object.key).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

/// Parses a size: bytes, or a whole number with a unit (`KiB`, `MiB`, `GiB`, or `KB`, `MB`, `GB`),
/// case-insensitive; zero is refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a size like 64MiB, 1GiB or a number of bytes, got {text:?}");
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(0) => Err(format!("{text:?}: must be more than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(bad()),
    }
}

/// Parses a duration: a whole number and a unit (`s`, `m`, `h`, `d`), possibly several (`1h30m`);
/// a bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 30m, 6h, 1d or 0s, got {text:?}");
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut rest = text;
    let mut seconds: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_end = rest[digits..].find(|c: char| c.is_ascii_digit()).map_or(rest.len(), |i| digits + i);
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match &rest[digits..unit_end] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        seconds = n.checked_mul(unit).and_then(|s| s.checked_add(seconds)).ok_or_else(bad)?;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs(seconds))
}

/// The output stem of a set of inputs: `compacted-` and 16 hex digits of the hash of their paths.
fn stem(inputs: &BTreeSet<String>) -> String {
    let mut hash = Sha256::new();
    for p in inputs {
        hash.update(p.as_bytes());
        hash.update(b"\n");
    }
    let hex: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", manifest::COMPACTED_PREFIX)
}

fn unix_now() -> i64 {
    Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        for (text, bytes) in [("64MiB", 64 << 20), ("1GiB", 1 << 30), ("128mib", 128 << 20), ("1000", 1000)] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MiB", "1.5GiB", "0", "9999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        for (text, secs) in [("0", 0), ("0s", 0), ("30m", 1800), ("6h", 21_600), ("1d", 86_400), ("1h30m", 5400)] {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for bad in ["", "1", "h", "1x", "-1h", "1.5h", "1 h"] {
            assert!(parse_duration(bad).unwrap_err().contains("30m"), "{bad}");
        }
    }

    #[test]
    fn stems_depend_only_on_the_input_set() {
        let a = BTreeSet::from(["x/1.parquet".to_string(), "x/2.parquet".to_string()]);
        let b = BTreeSet::from(["x/2.parquet".to_string(), "x/1.parquet".to_string()]);
        assert_eq!(stem(&a), stem(&b));
        assert_ne!(stem(&a), stem(&BTreeSet::from(["x/1.parquet".to_string()])));
        assert!(stem(&a).starts_with("compacted-") && stem(&a).len() == "compacted-".len() + 16);
    }
}
