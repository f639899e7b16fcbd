//! Archive reads for lookups, over the [`Storage`] trait: the same code for a local directory
//! and an S3 bucket.
//!
//! A lookup on years of archive must touch only what can hold its answer, newest first:
//! 1. **Partitions from the manifests**, not from listing data files: `manifests/DATASET/` is
//!    walked one level at a time (`account=` → `region=` → `date=`), and accounts, regions and
//!    dates outside the query are never listed below. Files come from each partition's manifest,
//!    the archive's truth of what is live, so a compaction in progress never shows a record twice.
//! 2. **Dates newest first, stopping early**: a day's events are all newer than the previous
//!    day's (partitions are by `eventTime`), so once a day's partitions have been read and
//!    there are more hits than a page holds, older days cannot change the page.
//! 3. **Row groups by statistics**: within a file, only row groups whose `eventtime_ts` range
//!    meets the query's (narrowed by the cursor) are decoded
//!    ([`parquetrail_core::lookup::read_hits`], pure and tested in the core).
//! 4. **Bounded concurrency**: a day's manifests and files are fetched a few at a time
//!    ([`ArchiveReader::with_concurrency`]), decoding on blocking threads.
//!
//! Every request and byte is counted ([`ReadStats`]), for `lookup --stats` and benchmarks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use parquetrail_core::lookup::{self, Cursor, LookupError, LookupQuery};
use parquetrail_core::partition::escape_value;
use parquetrail_core::record::Row;
use serde::Serialize;

use crate::location::join;
use crate::manifest::{self, MANIFESTS};
use crate::storage::{ErrorKind, Storage, StorageError};

/// Why a lookup could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request itself is invalid (the server answers with its AWS error class).
    #[error(transparent)]
    Invalid(#[from] LookupError),
    /// Listing or fetching failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file of the archive is not readable Parquet of the expected schema.
    #[error(transparent)]
    Archive(#[from] parquetrail_core::Error),
}

/// What a lookup read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// Storage requests: listings, manifest reads and file reads.
    pub requests: u64,
    /// Bytes of Parquet files fetched.
    pub bytes: u64,
    /// Parquet files opened.
    pub files: u64,
    /// Partitions whose manifest was read.
    pub partitions: u64,
    /// Row groups in the files opened, and of those, the ones decoded.
    pub row_groups: u64,
    pub row_groups_read: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    partitions: AtomicU64,
    row_groups: AtomicU64,
    row_groups_read: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ReadStats {
        ReadStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            partitions: self.partitions.load(Ordering::Relaxed),
            row_groups: self.row_groups.load(Ordering::Relaxed),
            row_groups_read: self.row_groups_read.load(Ordering::Relaxed),
        }
    }
}

/// One page of a lookup.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The hits, newest first (at most the query's `max_results`).
    pub events: Vec<Row<'static>>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
    pub stats: ReadStats,
}

/// One partition directory of a dataset, relative to the archive root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `events/account=…/region=…/date=…`
    pub dir: String,
    pub date: NaiveDate,
}

/// Reads an archive (an S3 prefix or a local directory) for lookups.
#[derive(Debug, Clone)]
pub struct ArchiveReader {
    storage: Arc<dyn Storage>,
    root: String,
    concurrency: usize,
}

impl ArchiveReader {
    /// Requests in flight at once by default: enough to hide S3 latency, few enough for a
    /// small machine's memory (each holds one Parquet file).
    pub const DEFAULT_CONCURRENCY: usize = 8;

    /// The archive under `root` (a key prefix; empty for the storage's root).
    pub fn new(storage: Arc<dyn Storage>, root: impl Into<String>) -> ArchiveReader {
        ArchiveReader { storage, root: root.into(), concurrency: Self::DEFAULT_CONCURRENCY }
    }

    /// Sets how many manifests or files are fetched at once (at least one).
    pub fn with_concurrency(mut self, concurrency: usize) -> ArchiveReader {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The partitions of the query's dataset that can hold hits (by account, region and date),
    /// newest date first, found by walking the manifests' directories.
    pub async fn partitions(&self, query: &LookupQuery) -> Result<Vec<Partition>, ReadError> {
        self.partitions_counted(query, &Counters::default()).await
    }

    async fn partitions_counted(&self, query: &LookupQuery, counters: &Counters) -> Result<Vec<Partition>, ReadError> {
        let base = join(&self.root, &format!("{MANIFESTS}/"));
        let dataset = join(&self.root, &format!("{MANIFESTS}/{}/", query.dataset()));
        let list = |prefix: String| async move {
            Counters::add(&counters.requests, 1);
            self.storage.list_prefixes(&prefix).await
        };
        // `account=A/` → A, when A is wanted.
        let value_of = |prefix: &str, name: &str| -> Option<String> {
            let last = prefix.trim_end_matches('/').rsplit('/').next()?;
            last.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
        };
        let wanted = |values: &[String], v: &str| values.is_empty() || values.iter().any(|w| escape_value(w) == v);
        let accounts: Vec<String> = list(dataset)
            .await?
            .into_iter()
            .filter(|p| value_of(p, "account").is_some_and(|a| wanted(&query.accounts, &a)))
            .collect();
        let regions: Vec<String> = stream::iter(accounts)
            .map(&list)
            .buffered(self.concurrency)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .filter(|p| value_of(p, "region").is_some_and(|r| wanted(&query.regions, &r)))
            .collect();
        let dates: Vec<String> = stream::iter(regions)
            .map(list)
            .buffered(self.concurrency)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        let (first, last) = (query.start.date_naive(), query.end.date_naive());
        let mut out: Vec<Partition> = dates
            .into_iter()
            .filter_map(|p| {
                let date = NaiveDate::parse_from_str(&value_of(&p, "date")?, "%Y-%m-%d").ok()?;
                let dir = p.strip_prefix(&base)?.trim_end_matches('/').to_string();
                (date >= first && date <= last).then_some(Partition { dir, date })
            })
            .collect();
        out.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.dir.cmp(&b.dir)));
        Ok(out)
    }

    /// One page of the query's hits after `cursor` (from the start without one), newest first.
    pub async fn lookup(&self, query: &LookupQuery, cursor: Option<&Cursor>) -> Result<Page, ReadError> {
        query.validate()?;
        let counters = Counters::default();
        let partitions = self.partitions_counted(query, &counters).await?;
        let mut by_date: BTreeMap<std::cmp::Reverse<NaiveDate>, Vec<String>> = BTreeMap::new();
        for p in partitions {
            by_date.entry(std::cmp::Reverse(p.date)).or_default().push(p.dir);
        }
        let (from, to) = query.time_range_us(cursor);
        let mut hits: Vec<Row<'static>> = Vec::new();
        for (std::cmp::Reverse(date), dirs) in by_date {
            // Days wholly newer than the cursor hold nothing for this page.
            let day_start = date.and_hms_opt(0, 0, 0).map_or(i64::MIN, |t| t.and_utc().timestamp_micros());
            if day_start > to || from > to {
                continue;
            }
            let files: Vec<String> = stream::iter(dirs)
                .map(|dir| {
                    let counters = &counters;
                    async move {
                        Counters::add(&counters.requests, 1);
                        Counters::add(&counters.partitions, 1);
                        manifest::read(self.storage.as_ref(), &self.root, &dir).await
                    }
                })
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flat_map(|m| m.files)
                .collect();
            let found: Vec<Vec<Row<'static>>> = stream::iter(files)
                .map(|path| self.read_file(path, query, cursor, &counters))
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            hits.extend(found.into_iter().flatten());
            if hits.len() > query.max_results {
                break;
            }
        }
        let (events, next) = lookup::page(hits, query.max_results);
        Ok(Page { events, next, stats: counters.snapshot() })
    }

    async fn read_file(
        &self,
        path: String,
        query: &LookupQuery,
        cursor: Option<&Cursor>,
        counters: &Counters,
    ) -> Result<Vec<Row<'static>>, ReadError> {
        let key = join(&self.root, &path);
        Counters::add(&counters.requests, 1);
        let body = self.storage.read(&key).await?;
        Counters::add(&counters.files, 1);
        Counters::add(&counters.bytes, body.len() as u64);
        let (query, cursor) = (query.clone(), cursor.cloned());
        let what = format!("{}/{key}", self.storage.describe());
        let hits = tokio::task::spawn_blocking(move || {
            lookup::read_hits(bytes::Bytes::from(body), &what, &query, cursor.as_ref())
        })
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("reading {path}: {e}")))??;
        Counters::add(&counters.row_groups, hits.row_groups as u64);
        Counters::add(&counters.row_groups_read, hits.row_groups_read as u64);
        Ok(hits.rows)
    }
}
