//! Archive reads for lookups, over the [`Storage`] trait: the same code for a local directory
//! and an S3 bucket.
//!
//! A lookup on years of archive must touch only what can hold its answer, newest first:
//! 1. **Partitions from the manifests**, not from listing data files: `manifests/DATASET/` is
//!    walked one level at a time (`account=` → `region=` → `date=`), and accounts, regions and
//!    dates outside the query are never listed below. Files come from each partition's manifest,
//!    the archive's truth of what is live, so a compaction in progress never shows a record twice.
//!    A lookup of a few days ([`ArchiveReader::PROBED_DAYS`]) lists no dates: it reads its days'
//!    manifests where they would be.
//! 2. **Dates newest first, stopping early**: a day's events are all newer than the previous
//!    day's (partitions are by `eventTime`), so once a day's partitions have been read and
//!    there are more hits than a page holds, older days cannot change the page.
//! 3. **Row groups by statistics, newest first**: within a file, only row groups whose
//!    `eventtime_ts` range meets the query's (narrowed by the cursor) are read, newest first, and
//!    reading stops once the file alone has more than a page of hits newer than the groups left.
//!    Only the filter columns are decoded to find hits; the other columns only for the hit rows
//!    ([`parquetrail_core::lookup::select_hits`], pure and tested in the core).
//! 4. **Lookup indexes**: compaction stores, per compaction, each output's time range and bloom
//!    filters of the values lookups match most selectively
//!    ([`parquetrail_core::lookup::index`]); a file they rule out is never opened, so a point
//!    lookup over years reads one small index per partition instead of every file's footer.
//! 5. **Ranged reads**: a file's first request is its tail (the footer; the whole of a small
//!    file), then only the chosen row groups' bytes are fetched, adjacent groups in one request.
//! 6. **Bounded concurrency**: a day's manifests and files are fetched a few at a time
//!    ([`ArchiveReader::with_concurrency`]), decoding on blocking threads.
//!
//! Every request and byte is counted ([`ReadStats`]), for `lookup --stats` and benchmarks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use parquetrail_core::lookup::index::{self, FileIndex, IndexPart};
use parquetrail_core::lookup::{self, Cursor, Footer, LookupError, LookupQuery, SparseFile};
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
    /// Bytes fetched: of Parquet files and of lookup indexes (manifests and listings aside).
    pub bytes: u64,
    /// Parquet files opened.
    pub files: u64,
    /// Files listed in the manifests read that the lookup indexes ruled out, unopened.
    pub files_skipped: u64,
    /// Lookup indexes read.
    pub indexes: u64,
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
    files_skipped: AtomicU64,
    indexes: AtomicU64,
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
            files_skipped: self.files_skipped.load(Ordering::Relaxed),
            indexes: self.indexes.load(Ordering::Relaxed),
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
    tail_bytes: u64,
}

impl ArchiveReader {
    /// Requests in flight at once by default: enough to hide S3 latency, few enough for a
    /// small machine's memory (each holds one Parquet file).
    pub const DEFAULT_CONCURRENCY: usize = 8;

    /// A file's first read: its last 64 KiB, which hold the footer of a large file and the whole of
    /// a small one (most files before compaction), so a small file costs one request.
    pub const DEFAULT_TAIL_BYTES: u64 = 64 * 1024;

    /// Queries spanning at most this many days read each day's manifest directly instead of
    /// listing a region's dates first: a listing returns every date the region has (years of
    /// them), costs a request per region, and on S3 a LIST costs as much as a dozen GETs.
    pub const PROBED_DAYS: i64 = 3;

    /// The archive under `root` (a key prefix; empty for the storage's root).
    pub fn new(storage: Arc<dyn Storage>, root: impl Into<String>) -> ArchiveReader {
        ArchiveReader {
            storage,
            root: root.into(),
            concurrency: Self::DEFAULT_CONCURRENCY,
            tail_bytes: Self::DEFAULT_TAIL_BYTES,
        }
    }

    /// Sets how many manifests or files are fetched at once (at least one).
    pub fn with_concurrency(mut self, concurrency: usize) -> ArchiveReader {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The storage the archive is read from.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The archive's root (a key prefix; empty for the storage's root).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// How many manifests or files are fetched at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Sets the size of a file's first read (see [`Self::DEFAULT_TAIL_BYTES`]; at least 8 bytes).
    pub fn with_tail_bytes(mut self, tail_bytes: u64) -> ArchiveReader {
        self.tail_bytes = tail_bytes.max(8);
        self
    }

    /// The partitions of the query's dataset that can hold hits (by account, region and date),
    /// newest date first, found by walking the manifests' directories.
    pub async fn partitions(&self, query: &LookupQuery) -> Result<Vec<Partition>, ReadError> {
        self.partitions_counted(query, false, &Counters::default()).await
    }

    /// [`Self::partitions`]; with `probe`, a query of at most [`Self::PROBED_DAYS`] days gives
    /// each of its days in each region wanted, without listing the regions' dates, whether the
    /// day's manifest exists or not.
    async fn partitions_counted(
        &self,
        query: &LookupQuery,
        probe: bool,
        counters: &Counters,
    ) -> Result<Vec<Partition>, ReadError> {
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
        let (first, last) = (query.start.date_naive(), query.end.date_naive());
        let days = (last - first).num_days() + 1;
        let dates: Vec<String> = if probe && (1..=Self::PROBED_DAYS).contains(&days) {
            // A few days: each day's manifest is read where it would be (a missing one reads as
            // no files), and a region's dates are not listed.
            regions
                .iter()
                .flat_map(|region| first.iter_days().take(days as usize).map(move |d| format!("{region}date={d}/")))
                .collect()
        } else {
            stream::iter(regions)
                .map(list)
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                .collect()
        };
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
        let partitions = self.partitions_counted(query, true, &counters).await?;
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
                .map(|dir| self.candidates(dir, query, (from, to), &counters))
                .buffered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
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

    /// The files of a partition that can hold hits in `[from, to]`: those its manifest lists,
    /// less the compacted ones that their compaction's lookup index rules out. A file without an
    /// index entry (a delivery since the compaction, an archive compacted before indexes, an index
    /// that cannot be read) is kept: the index only ever removes work.
    async fn candidates(
        &self,
        dir: String,
        query: &LookupQuery,
        (from, to): (i64, i64),
        counters: &Counters,
    ) -> Result<Vec<String>, ReadError> {
        Counters::add(&counters.requests, 1);
        let manifest = manifest::read(self.storage.as_ref(), &self.root, &dir).await?;
        if manifest.tag.is_some() {
            Counters::add(&counters.partitions, 1);
        }
        let files = manifest.files;
        let keys: BTreeSet<String> = files
            .iter()
            .filter_map(|p| manifest::compacted_stem(p.rsplit('/').next().unwrap_or(p)))
            .map(|stem| stem.to_string())
            .collect();
        let part = IndexPart::for_query(query);
        let indexes: Vec<Vec<FileIndex>> = stream::iter(keys)
            .map(|stem| self.read_index(&dir, stem, part, counters))
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        let by_name: BTreeMap<&str, &FileIndex> = indexes.iter().flatten().map(|f| (f.name.as_str(), f)).collect();
        let before = files.len();
        let kept: Vec<String> = files
            .into_iter()
            .filter(|p| {
                let name = p.rsplit('/').next().unwrap_or(p);
                by_name.get(name).is_none_or(|f| f.may_match(query, from, to))
            })
            .collect();
        Counters::add(&counters.files_skipped, (before - kept.len()) as u64);
        Ok(kept)
    }

    /// Fetches byte ranges of a file into `file`, a few at a time: what `file` already holds is
    /// left out, and ranges near each other are fetched in one request ([`lookup::coalesce`]).
    async fn fetch_ranges(
        &self,
        key: &str,
        ranges: Vec<std::ops::Range<u64>>,
        file: &mut SparseFile,
        counters: &Counters,
    ) -> Result<(), ReadError> {
        let ranges =
            lookup::coalesce(ranges.into_iter().filter_map(|r| file.missing(r)).collect(), lookup::COALESCE_GAP);
        let bodies: Vec<(u64, Vec<u8>)> = stream::iter(ranges)
            .map(|r| async move { self.storage.read_range(key, r.clone()).await.map(|b| (r.start, b)) })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        for (offset, body) in bodies {
            Counters::add(&counters.requests, 1);
            Counters::add(&counters.bytes, body.len() as u64);
            file.insert(offset, bytes::Bytes::from(body));
        }
        Ok(())
    }

    /// One part of a compaction's lookup index; none when it is absent or unreadable. An archive
    /// compacted before the index had parts has one object with every filter, under the name of
    /// the [`IndexPart::Keys`] part: read when the part asked for is absent.
    async fn read_index(
        &self,
        dir: &str,
        stem: String,
        part: IndexPart,
        counters: &Counters,
    ) -> Result<Vec<FileIndex>, StorageError> {
        let mut bytes = None;
        let parts: &[IndexPart] = if part == IndexPart::Keys { &[IndexPart::Keys] } else { &[part, IndexPart::Keys] };
        for &part in parts {
            let key = manifest::lookup_index_key(&self.root, dir, &stem, part);
            Counters::add(&counters.requests, 1);
            match self.storage.read(&key).await {
                Ok(b) => {
                    bytes = Some((key, b));
                    break;
                }
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        let Some((key, bytes)) = bytes else { return Ok(Vec::new()) };
        Counters::add(&counters.indexes, 1);
        Counters::add(&counters.bytes, bytes.len() as u64);
        Ok(index::decode(&bytes).unwrap_or_else(|e| {
            tracing::warn!(index = key, error = e, "unreadable lookup index ignored");
            Vec::new()
        }))
    }

    /// Reads one file's hits with ranged reads: its tail (the whole of a small file), then only
    /// the row groups whose statistics can match, adjacent ones in one request.
    async fn read_file(
        &self,
        path: String,
        query: &LookupQuery,
        cursor: Option<&Cursor>,
        counters: &Counters,
    ) -> Result<Vec<Row<'static>>, ReadError> {
        let key = join(&self.root, &path);
        let what = format!("{}/{key}", self.storage.describe());
        let fetched = |bytes: &Vec<u8>| {
            Counters::add(&counters.requests, 1);
            Counters::add(&counters.bytes, bytes.len() as u64);
        };
        let (tail, len) = self.storage.read_tail(&key, self.tail_bytes).await?;
        fetched(&tail);
        Counters::add(&counters.files, 1);
        let mut tail = bytes::Bytes::from(tail);
        let hits = if tail.len() as u64 == len {
            let (query, cursor, what) = (query.clone(), cursor.cloned(), what.clone());
            blocking(move || lookup::read_hits(tail, &what, &query, cursor.as_ref())).await?
        } else {
            let metadata = loop {
                match lookup::parse_footer(&tail, len, &what)? {
                    Footer::Parsed(m) => break m,
                    Footer::NeedTail(n) if n > tail.len() as u64 => {
                        let (more, _) = self.storage.read_tail(&key, n).await?;
                        fetched(&more);
                        tail = bytes::Bytes::from(more);
                    }
                    Footer::NeedTail(n) => {
                        return Err(parquetrail_core::Error::Archive {
                            path: what,
                            source: parquetrail_core::DataError::model(format!(
                                "the footer needs {n} bytes and {} did not do",
                                tail.len()
                            )),
                        }
                        .into());
                    }
                }
            };
            let groups = lookup::plan_row_groups(metadata.metadata(), &what, query, cursor)?;
            // Two phases: the filter columns of the candidate row groups, newest first, until
            // older ones cannot hold a row of the page; then the other columns of the row groups
            // with hits only.
            let leaves = lookup::filter_leaves(metadata.metadata(), query, cursor);
            let mut file = SparseFile::new(len);
            // The tail read for the footer often holds column chunks too (all of a small file's
            // last ones): what it holds is not fetched again.
            let tail_start = len - tail.len() as u64;
            file.insert(tail_start, tail);
            let order = lookup::newest_first(metadata.metadata(), &groups, &what)?;
            let mut selection = lookup::Selection::default();
            let (mut next, mut step) = (0, 1);
            while next < order.len() {
                let mut batch: Vec<usize> =
                    order[next..(next + step).min(order.len())].iter().map(|(g, _)| *g).collect();
                next += batch.len();
                step *= 2;
                batch.sort_unstable();
                let ranges: Vec<_> =
                    batch.iter().flat_map(|&g| lookup::column_ranges(metadata.metadata(), g, &leaves, true)).collect();
                self.fetch_ranges(&key, ranges, &mut file, counters).await?;
                let (part, md, q, cursor, what) =
                    (file.clone(), metadata.clone(), query.clone(), cursor.cloned(), what.clone());
                let found = blocking(move || lookup::select_hits(part, md, batch, &what, &q, cursor.as_ref())).await?;
                selection.merge(found);
                if let Some((_, Some(newest_left))) = order.get(next)
                    && !lookup::may_hold_page_rows(&selection.times, query.max_results, *newest_left)
                {
                    break;
                }
            }
            selection.row_groups = metadata.metadata().num_row_groups();
            // Only the hits that can be on the page are decoded whole.
            selection.keep_newest(query.max_results);
            // Phase two reads, of the other columns, only the pages holding a hit when the file
            // has an offset index (compacted files do): a point lookup in a row group of 30,000
            // rows then reads a page per column instead of the whole row group.
            let mut metadata = metadata;
            let all: Vec<usize> = (0..metadata.metadata().num_row_groups()).collect();
            if !selection.groups.is_empty()
                && let Some(span) = lookup::offset_index_range(metadata.metadata(), &all)
            {
                self.fetch_ranges(&key, vec![span], &mut file, counters).await?;
                match lookup::with_offset_index(&file, &metadata, &what) {
                    Ok(with_pages) => metadata = with_pages,
                    Err(e) => tracing::warn!(file = what, error = %e, "offset index unreadable: reading whole columns"),
                }
            }
            let ranges = lookup::page_ranges(metadata.metadata(), &selection, &leaves, false).unwrap_or_else(|| {
                selection
                    .groups
                    .iter()
                    .flat_map(|(g, _)| lookup::column_ranges(metadata.metadata(), *g, &leaves, false))
                    .collect()
            });
            self.fetch_ranges(&key, ranges, &mut file, counters).await?;
            let (query, what) = (query.clone(), what.clone());
            blocking(move || lookup::decode_selected(file, metadata, &selection, &what, &query)).await?
        };
        Counters::add(&counters.row_groups, hits.row_groups as u64);
        Counters::add(&counters.row_groups_read, hits.row_groups_read as u64);
        Ok(hits.rows)
    }
}

/// Runs Parquet decoding on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> parquetrail_core::Result<T> + Send + 'static,
) -> Result<T, ReadError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("decoding a Parquet file: {e}")))?
        .map_err(ReadError::from)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use parquetrail_core::convert::{Options, convert};
    use parquetrail_core::encode::WriterSettings;
    use parquetrail_core::lookup::AttributeKey;
    use parquetrail_core::sink::MemorySink;

    use super::*;
    use crate::local::LocalStorage;

    /// 3 days × 2 regions of records, one every 7 minutes, in row groups of 16 rows, listed in
    /// their manifests. Returns the records' (time, eventID), the expected order's input.
    async fn archive(storage: &dyn Storage) -> Vec<(DateTime<Utc>, String)> {
        archive_in(storage, 1).await
    }

    /// [`archive`], each region's records delivered in `deliveries` log files.
    async fn archive_in(storage: &dyn Storage, deliveries: usize) -> Vec<(DateTime<Utc>, String)> {
        let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        let mut expected = Vec::new();
        let mut written = Vec::new();
        for region in ["us-east-1", "eu-west-1"] {
            let mut records = Vec::new();
            for i in 0..(3 * 24 * 60 / 7) {
                let t = start + TimeDelta::minutes(7 * i);
                let id = format!("{region}-{i:04}");
                records.push(format!(
                    r#"{{"eventVersion":"1.11","eventTime":"{}","eventSource":"s3.amazonaws.com","eventName":"N{}","awsRegion":"{region}","requestParameters":null,"responseElements":null,"eventID":"{id}","eventCategory":"Management","recipientAccountId":"111122223333"}}"#,
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    i % 5
                ));
                expected.push((t, id));
            }
            let sink = MemorySink::default();
            let options = Options {
                writer: WriterSettings { row_group_rows: 16, ..WriterSettings::default() },
                ..Options::default()
            };
            for (n, part) in records.chunks(records.len().div_ceil(deliveries)).enumerate() {
                let key = format!(
                    "AWSLogs/111122223333/CloudTrail/{region}/2024/03/01/111122223333_CloudTrail_{region}_20240301T0000Z_ab{n}.json.gz"
                );
                convert(&key, format!(r#"{{"Records":[{}]}}"#, part.join(",")).as_bytes(), &sink, &options).unwrap();
            }
            for (path, body) in sink.files() {
                storage.put(&join("lake", &path), body).await.unwrap();
                written.push(path);
            }
        }
        crate::manifest::add(storage, "lake", &written).await.unwrap();
        expected
    }

    /// Every page of a lookup, through the cursor.
    async fn all_pages(reader: &ArchiveReader, query: &LookupQuery) -> (Vec<String>, ReadStats) {
        let mut ids = Vec::new();
        let mut stats = ReadStats::default();
        let mut cursor = None;
        loop {
            let page = reader.lookup(query, cursor.as_ref()).await.unwrap();
            ids.extend(page.events.iter().map(|r| r.eventid.as_deref().unwrap().to_string()));
            stats.bytes += page.stats.bytes;
            stats.requests += page.stats.requests;
            stats.row_groups_read += page.stats.row_groups_read;
            stats.files += page.stats.files;
            stats.files_skipped += page.stats.files_skipped;
            stats.indexes += page.stats.indexes;
            match page.next {
                Some(next) => cursor = Some(next),
                None => return (ids, stats),
            }
        }
    }

    #[tokio::test]
    async fn ranged_reads_give_the_answers_of_whole_reads_with_fewer_bytes() {
        let dir = tempfile::tempdir().unwrap();
        check_reads(Arc::new(LocalStorage::new(dir.path()))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranged_reads_on_s3_give_the_answers_of_whole_reads() {
        let Some(moto) = parquetrail_testkit::MotoServer::start("ranged_reads_on_s3_give_the_answers_of_whole_reads")
        else {
            return;
        };
        moto.create_bucket("archive").await;
        check_reads(Arc::new(crate::s3::S3Storage::new(moto.client().await, "archive"))).await;
    }

    /// Lookups with whole-file and with ranged reads equal the answer computed from the records.
    async fn check_reads(storage: Arc<dyn Storage>) {
        let records = archive(storage.as_ref()).await;
        let whole = ArchiveReader::new(storage.clone(), "lake").with_tail_bytes(u64::MAX);
        let ranged = ArchiveReader::new(storage, "lake").with_tail_bytes(8).with_concurrency(2);
        let at = |h: i64| Utc.with_ymd_and_hms(2024, 3, 2, 0, 0, 0).unwrap() + TimeDelta::hours(h);
        let mut narrow = LookupQuery::new(at(5), at(6));
        narrow.max_results = 7;
        let mut by_id = LookupQuery::new(at(-24), at(48));
        by_id.attributes.push((AttributeKey::EventId, "eu-west-1-0300".into()));
        let mut everything = LookupQuery::new(at(-24), at(48));
        everything.max_results = 100;
        for (what, query) in [("narrow", &narrow), ("by id", &by_id), ("everything", &everything)] {
            let mut want: Vec<&(DateTime<Utc>, String)> = records
                .iter()
                .filter(|(t, id)| *t >= query.start && *t <= query.end && query.attributes.iter().all(|(_, v)| v == id))
                .collect();
            want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<String> = want.into_iter().map(|(_, id)| id.clone()).collect();
            assert!(!want.is_empty(), "{what}");
            let (got_whole, whole_stats) = all_pages(&whole, query).await;
            let (got_ranged, ranged_stats) = all_pages(&ranged, query).await;
            assert_eq!(got_whole, want, "{what}: whole reads");
            assert_eq!(got_ranged, want, "{what}: ranged reads");
            if what == "narrow" {
                // With 16-row groups the footers (statistics of ~100 leaf columns per group) are
                // most of each file, so the saving here is modest; with real row groups the
                // data dominates.
                assert!(
                    ranged_stats.bytes < whole_stats.bytes,
                    "{what}: ranged {ranged_stats:?} vs whole {whole_stats:?}"
                );
            }
        }
        // Partition pruning: a region filter never opens the other region's files.
        let mut one_region = everything.clone();
        one_region.regions = vec!["eu-west-1".into()];
        let page = ranged.lookup(&one_region, None).await.unwrap();
        assert!(page.events.iter().all(|r| r.awsregion.as_deref() == Some("eu-west-1")));
        let partitions = ranged.partitions(&one_region).await.unwrap();
        assert_eq!(partitions.len(), 3, "{partitions:?}");
        assert!(partitions.windows(2).all(|w| w[0].date > w[1].date), "newest first: {partitions:?}");
        assert!(page.stats.partitions <= 3, "{:?}", page.stats);
    }

    /// A lookup of a few days reads each of its days' manifests where they would be instead
    /// of listing the regions' dates; a day without a manifest has no hits and is no partition.
    #[tokio::test]
    async fn short_ranges_read_their_days_manifests_without_listing_dates() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let records = archive(storage.as_ref()).await;
        // Whole-file reads: one request a file.
        let reader = ArchiveReader::new(storage, "lake").with_tail_bytes(u64::MAX);
        let day = |d: u32| Utc.with_ymd_and_hms(2024, 3, d, 0, 0, 0).unwrap();
        let within = |q: &LookupQuery| records.iter().filter(|(t, _)| *t >= q.start && *t <= q.end).count();
        for (first, days, dates_held) in [(3, 1, 1), (3, 2, 1), (2, 3, 2), (5, 1, 0), (1, 4, 3)] {
            let mut query = LookupQuery::new(day(first), day(first + days - 1) + TimeDelta::seconds(86_399));
            query.max_results = 10_000;
            let page = reader.lookup(&query, None).await.unwrap();
            let what = format!("{days} day(s) from March {first}");
            assert_eq!(page.events.len(), within(&query), "{what}");
            assert_eq!(page.stats.partitions, 2 * dates_held, "{what}: {:?}", page.stats);
            // The dataset's accounts and the account's regions are listed; then, for each of the
            // 2 regions, its dates (more than PROBED_DAYS days) or each day's manifest; then the
            // files.
            let listed =
                2 + if i64::from(days) > ArchiveReader::PROBED_DAYS { 2 + 2 * dates_held } else { 2 * u64::from(days) };
            assert_eq!(page.stats.requests, listed + page.stats.files, "{what}: {:?}", page.stats);
        }
    }

    /// [`archive`] in 4 deliveries a region, compacted (one file a partition, 16-row groups).
    async fn compacted_archive(storage: Arc<dyn Storage>) -> Vec<(DateTime<Utc>, String)> {
        use crate::compaction::{Compactor, Scope, Settings};
        let records = archive_in(storage.as_ref(), 4).await;
        let mut settings = Settings { grace: std::time::Duration::ZERO, ..Settings::default() };
        settings.options.target_bytes = 4 * 1024 * 1024;
        settings.options.settings.row_group_rows = 16;
        let compactor = Compactor::new(storage, "lake", parquetrail_core::convert::Layout::default(), settings);
        let scope = Scope { datasets: vec![parquetrail_core::convert::Dataset::Events], ..Scope::default() };
        let report = compactor.run(&scope).await.unwrap();
        assert!(report.compacted().count() == 6, "{report:?}");
        records
    }

    /// In a file of many row groups, a newest-first page reads its newest groups and stops once
    /// older ones cannot hold a row of the page; paging on still gives every record once.
    #[tokio::test]
    async fn newest_first_reads_stop_within_a_file_once_a_page_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let records = compacted_archive(storage.clone()).await;
        let reader = ArchiveReader::new(storage, "lake").with_tail_bytes(8);
        let day = |d: u32| Utc.with_ymd_and_hms(2024, 3, d, 0, 0, 0).unwrap();
        let mut query = LookupQuery::new(day(2), day(3) - TimeDelta::microseconds(1));
        query.regions = vec!["us-east-1".into()];
        query.max_results = 5;
        let page = reader.lookup(&query, None).await.unwrap();
        let s = &page.stats;
        assert_eq!((s.files, page.events.len()), (1, 5), "{s:?}");
        assert!(s.row_groups >= 10, "the day's file has many row groups: {s:?}");
        assert!(s.row_groups_read <= 2, "a page of 5 needs the newest group or two: {s:?}");
        let mut want: Vec<&(DateTime<Utc>, String)> = records
            .iter()
            .filter(|(t, id)| *t >= query.start && *t <= query.end && id.starts_with("us-east-1"))
            .collect();
        want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let want: Vec<String> = want.into_iter().map(|(_, id)| id.clone()).collect();
        let (all, _) = all_pages(&reader, &query).await;
        assert_eq!(all, want);
    }

    /// When a partition is compacted again (a late delivery), the collection deletes both parts
    /// of the old compaction's index and keeps both of the new one's.
    #[tokio::test]
    async fn a_recompaction_replaces_both_parts_of_the_index() {
        use crate::compaction::{Compactor, Scope, Settings};
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        compacted_archive(storage.clone()).await;
        let state = join("lake", &format!("{}/", crate::manifest::COMPACTION));
        let indexes = |objects: Vec<crate::storage::ObjectMeta>| -> BTreeSet<String> {
            objects.into_iter().map(|o| o.key).filter(|k| k.ends_with(crate::manifest::LOOKUP_INDEX_SUFFIX)).collect()
        };
        let before = indexes(storage.list(&state).await.unwrap());
        let late = r#"{"Records":[{"eventVersion":"1.11","eventTime":"2024-03-02T12:00:30Z","eventSource":"s3.amazonaws.com","eventName":"N9","awsRegion":"us-east-1","eventID":"late-1","eventCategory":"Management","recipientAccountId":"111122223333"}]}"#;
        let sink = MemorySink::default();
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/111122223333_CloudTrail_us-east-1_20240302T1200Z_late.json.gz";
        convert(key, late.as_bytes(), &sink, &Options::default()).unwrap();
        let written: Vec<String> = sink.files().into_keys().collect();
        for path in &written {
            storage.put(&join("lake", path), sink.get(path).unwrap()).await.unwrap();
        }
        crate::manifest::add(storage.as_ref(), "lake", &written).await.unwrap();
        let settings = Settings { grace: std::time::Duration::ZERO, ..Settings::default() };
        let compactor = Compactor::new(storage.clone(), "lake", parquetrail_core::convert::Layout::default(), settings);
        let scope = Scope { datasets: vec![parquetrail_core::convert::Dataset::Events], ..Scope::default() };
        let report = compactor.run(&scope).await.unwrap();
        assert_eq!(report.compacted().count(), 1, "{report:?}");
        let after = indexes(storage.list(&state).await.unwrap());
        let gone: Vec<&String> = before.difference(&after).collect();
        let new: Vec<&String> = after.difference(&before).collect();
        assert_eq!((gone.len(), new.len(), after.len()), (2, 2, 12), "gone {gone:?}, new {new:?}");
        let ids = |keys: &[&String]| keys.iter().filter(|k| k.ends_with(IndexPart::EventIds.suffix())).count();
        assert_eq!((ids(&gone), ids(&new)), (1, 1), "one of each part: gone {gone:?}, new {new:?}");
        let mut by_id = LookupQuery::new(
            Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap(),
        );
        by_id.attributes.push((AttributeKey::EventId, "late-1".into()));
        let (got, _) = all_pages(&ArchiveReader::new(storage, "lake"), &by_id).await;
        assert_eq!(got, vec!["late-1".to_string()]);
    }

    /// After compaction, the lookup indexes rule files out without changing any answer: the
    /// answers equal the reference from the records, with and without the indexes.
    #[tokio::test]
    async fn lookup_indexes_skip_files_and_change_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let records = compacted_archive(storage.clone()).await;
        let reader = ArchiveReader::new(storage.clone(), "lake").with_tail_bytes(8);
        let at = |h: i64| Utc.with_ymd_and_hms(2024, 3, 2, 0, 0, 0).unwrap() + TimeDelta::hours(h);
        let mut queries = Vec::new();
        for (key, value) in [(AttributeKey::EventId, "eu-west-1-0300"), (AttributeKey::EventName, "N3")] {
            let mut q = LookupQuery::new(at(-24), at(48));
            q.attributes.push((key, value.into()));
            q.max_results = 50;
            queries.push(q);
        }
        let mut narrow = LookupQuery::new(at(5), at(6));
        narrow.max_results = 3;
        queries.push(narrow);
        let mut with_index = Vec::new();
        for query in &queries {
            let mut want: Vec<&(DateTime<Utc>, String)> = records
                .iter()
                .filter(|(t, id)| {
                    let n = id.rsplit('-').next().unwrap().parse::<u32>().unwrap();
                    *t >= query.start
                        && *t <= query.end
                        && query.attributes.iter().all(|(k, v)| match k {
                            AttributeKey::EventId => v == id,
                            AttributeKey::EventName => *v == format!("N{}", n % 5),
                            _ => unreachable!(),
                        })
                })
                .collect();
            want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<String> = want.into_iter().map(|(_, id)| id.clone()).collect();
            let (got, stats) = all_pages(&reader, query).await;
            assert_eq!(got, want, "{query:?}");
            with_index.push(stats);
        }
        let by_id = &with_index[0];
        assert!(by_id.indexes >= 6, "{by_id:?}");
        assert!(by_id.files_skipped > by_id.files, "the index rules most files out: {by_id:?}");

        let state = join("lake", &format!("{}/", crate::manifest::COMPACTION));
        let indexes: Vec<_> = storage.list(&state).await.unwrap();
        let indexes: Vec<_> =
            indexes.into_iter().filter(|o| o.key.ends_with(crate::manifest::LOOKUP_INDEX_SUFFIX)).collect();
        assert_eq!(indexes.len(), 12, "an index per compacted partition, in two parts");

        // An archive compacted before the index had parts: one object with every filter, under
        // the keys part's name. Event ID lookups read it and skip as many files.
        for o in indexes.iter().filter(|o| o.key.ends_with(IndexPart::EventIds.suffix())) {
            let keys_key = o.key.replace(IndexPart::EventIds.suffix(), IndexPart::Keys.suffix());
            let mut files = index::decode(&storage.read(&keys_key).await.unwrap()).unwrap();
            for (f, ids) in files.iter_mut().zip(index::decode(&storage.read(&o.key).await.unwrap()).unwrap()) {
                assert_eq!(f.name, ids.name);
                f.filters.extend(ids.filters);
            }
            storage.put(&keys_key, index::encode(&files)).await.unwrap();
            storage.delete(&o.key).await.unwrap();
        }
        let (got, one_part) = all_pages(&reader, &queries[0]).await;
        assert_eq!(got, vec!["eu-west-1-0300".to_string()]);
        assert_eq!((one_part.files, one_part.files_skipped), (by_id.files, by_id.files_skipped), "{one_part:?}");
        let indexes: Vec<_> = storage.list(&state).await.unwrap();
        let indexes: Vec<_> =
            indexes.into_iter().filter(|o| o.key.ends_with(crate::manifest::LOOKUP_INDEX_SUFFIX)).collect();
        assert_eq!(indexes.len(), 6);

        // Without the indexes (an archive compacted before them): the same answers, more files.
        for o in &indexes {
            storage.delete(&o.key).await.unwrap();
        }
        for (query, indexed) in queries.iter().zip(&with_index) {
            let (_, plain) = all_pages(&reader, query).await;
            assert_eq!(plain.indexes, 0);
            assert!(plain.files > indexed.files || indexed.files_skipped == 0, "{plain:?} vs {indexed:?}");
        }
        let (got, _) = all_pages(&reader, &queries[0]).await;
        assert_eq!(got, vec!["eu-west-1-0300".to_string()]);
    }
}
