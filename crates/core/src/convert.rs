//! One CloudTrail object through the whole pipeline: classify → read → normalize → partition →
//! write, with quarantine and a report that reconciles. Log and Insights files become rows of
//! `events` and `insights`; a digest file becomes one row of `digests` ([`crate::digest_table`]).
//!
//! Guarantees, for every call:
//! - **Deterministic outputs.** Paths derive from the source key and the partition; bytes from
//!   the content. Converting the same object again overwrites the same objects with the same bytes.
//! - **All or nothing per file.** Outputs are committed only after the file was read to its end;
//!   a file that breaks halfway (corrupt gzip, broken JSON structure) leaves no partial rows.
//! - **Nothing lost.** A record that cannot be placed goes, with its raw text and the reason, to
//!   `<quarantine>/records/…jsonl`; a file that cannot be read gets `<quarantine>/files/…json`
//!   naming the key, the byte offset and the reason. Reports reconcile:
//!   `records == rows + quarantined + filtered` for every converted file.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::encode::{ParquetOutput, WriterSettings};
use crate::log_file::{ContentKind, ReadAheadGuard, ReadError, RecordReader};
use crate::object_key::{KeyKind, ObjectKey};
use crate::partition::{PartitionKey, escape_value};
use crate::record::Row;
use crate::sink::{Sink, SinkFile};
use crate::{Error, Result};

/// Where each kind of output goes, relative to the sink's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub events: String,
    pub insights: String,
    pub digests: String,
    pub quarantine: String,
}

impl Layout {
    /// The prefix of a dataset.
    pub fn prefix(&self, dataset: Dataset) -> &str {
        match dataset {
            Dataset::Events => &self.events,
            Dataset::Insights => &self.insights,
            Dataset::Digests => &self.digests,
        }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            events: "events".into(),
            insights: "insights".into(),
            digests: "digests".into(),
            quarantine: "quarantine".into(),
        }
    }
}

/// Conversion options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub writer: WriterSettings,
    pub layout: Layout,
    /// Which records to keep; the others are counted as `filtered`.
    pub filter: EventFilter,
    /// What one input may cost: the bounds that keep memory and work independent of content.
    pub limits: Limits,
    /// Opt-in rules dropping noise and redacting secrets (none by default: lossless).
    pub shaping: crate::shaping::Shaping,
    /// When a large log file's records are parsed on threads of their own.
    pub parse_threads: ParseThreads,
}

/// Bounds on what one input file may make the converter hold or do. Anyone who can write to the
/// trail bucket can craft an object, so memory and work must not depend on what it contains: past
/// a bound, the records concerned are quarantined (nothing is dropped) and the rest of the file
/// is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest record kept in memory, in bytes of JSON. A larger record is quarantined *by
    /// reference* (its index, byte range and SHA-256 in the decompressed file), never copied.
    /// CloudTrail's own records are at most a few hundred KB.
    pub max_record_bytes: usize,
    /// Distinct output partitions (dataset, account, Region, day) one file may write. A delivery
    /// names one account and Region and one or two days; each open partition holds a Parquet
    /// writer (about 1 MB) and costs S3 requests, so records that would open one more are
    /// quarantined instead.
    pub max_partitions: usize,
    /// The largest digest file, in inflated bytes (a real one lists at most a few thousand log
    /// files: well under a megabyte). A larger one is quarantined as `oversized_digest`.
    pub max_digest_bytes: u64,
    /// The most one file may write to its record quarantine, in bytes of JSON lines. Each
    /// quarantined record costs a line of about a hundred bytes plus its text, so a tiny record
    /// repeated (a 4 KB gzip of `[1,1,1,…]` holds millions) would otherwise turn kilobytes of
    /// input into hundreds of megabytes. Past the cap, no more lines are written: one last line
    /// quarantines the rest *by reference* — how many records, the first one's index and offset,
    /// and the SHA-256 of the decompressed source — and they are still counted as quarantined.
    pub max_quarantine_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 16 << 20,
            max_partitions: 64,
            max_digest_bytes: crate::digest::MAX_DIGEST_BYTES,
            max_quarantine_bytes: 16 << 20,
        }
    }
}

/// An event category, as a trail's event selectors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Management,
    Data,
    Insight,
    NetworkActivity,
}

impl std::str::FromStr for Category {
    type Err = crate::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "management" => Ok(Category::Management),
            "data" => Ok(Category::Data),
            "insight" | "insights" => Ok(Category::Insight),
            "networkactivity" | "network" => Ok(Category::NetworkActivity),
            other => {
                Err(crate::UnknownValue::new("event category", other, "management, data, insight or networkactivity"))
            }
        }
    }
}

/// Read-only, write-only or all events, like a trail's `ReadWriteType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadWrite {
    #[default]
    All,
    ReadOnly,
    WriteOnly,
}

impl std::str::FromStr for ReadWrite {
    type Err = crate::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(ReadWrite::All),
            "read" | "readonly" => Ok(ReadWrite::ReadOnly),
            "write" | "writeonly" => Ok(ReadWrite::WriteOnly),
            other => Err(crate::UnknownValue::new("read/write selector", other, "all, readonly or writeonly")),
        }
    }
}

/// Which records to archive, mirroring a trail's own event selectors. The default keeps all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// Keep only these categories (empty: all). Records older than eventVersion 1.07 carry no
    /// category and count as management events, as CloudTrail defines them.
    pub categories: std::collections::BTreeSet<Category>,
    pub read_write: ReadWrite,
    /// Drop events from these sources, e.g. `kms.amazonaws.com`, `rdsdata.amazonaws.com`.
    pub exclude_sources: std::collections::BTreeSet<String>,
}

impl EventFilter {
    /// Whether the filter keeps everything (the common case, checked once per file).
    pub fn keeps_all(&self) -> bool {
        self.categories.is_empty() && self.read_write == ReadWrite::All && self.exclude_sources.is_empty()
    }

    /// Whether a row passes.
    pub fn keeps(&self, row: &Row<'_>) -> bool {
        if !self.categories.is_empty() {
            let category = match row.eventcategory.as_deref() {
                Some("Data") => Category::Data,
                Some("Insight") => Category::Insight,
                Some("NetworkActivity") => Category::NetworkActivity,
                Some(_) => Category::Management,
                None if row.is_insight() => Category::Insight,
                None => Category::Management,
            };
            if !self.categories.contains(&category) {
                return false;
            }
        }
        let read_only = row.readonly.as_deref();
        match self.read_write {
            ReadWrite::All => {}
            ReadWrite::ReadOnly if read_only == Some("false") => return false,
            ReadWrite::WriteOnly if read_only == Some("true") => return false,
            _ => {}
        }
        !row.eventsource.as_deref().is_some_and(|s| self.exclude_sources.contains(s))
    }
}

/// The dataset a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Events,
    Insights,
    /// One row per digest file.
    Digests,
}

/// One Parquet object written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputReport {
    pub path: String,
    pub dataset: Dataset,
    pub account: String,
    pub region: String,
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Why a whole file was not converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    /// `unreadable` (gzip or I/O), `malformed_json`, `malformed_digest` (a digest file that is
    /// JSON but not a digest), or, from [`quarantine_object`], `unconvertible` (an encoding
    /// failure) and `crashed` (the conversion panicked).
    pub class: String,
    pub reason: String,
    /// Byte offset in the decompressed stream where the fault is.
    pub offset: u64,
    /// The quarantine object written for it.
    pub quarantine_path: String,
}

/// What happened to one source object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    pub key: String,
    /// Set when the object is neither a log nor a digest file (Config, empty…): nothing was written.
    pub skipped: Option<String>,
    /// Set when the file could not be read; nothing but its quarantine object was written.
    pub failure: Option<FileFailure>,
    /// Bytes of the object as stored (compressed).
    pub bytes_in: u64,
    /// Bytes of JSON after decompression.
    pub json_bytes: u64,
    /// Hex SHA-256 of the decompressed content, when it was read to its end: the value
    /// CloudTrail's digest files sign for each log file (`logFiles[].hashValue`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Records of a log file (a digest file has none: its one `digests` row is in `outputs`).
    pub records: u64,
    pub rows: u64,
    pub quarantined: u64,
    /// Records dropped by the configured [`EventFilter`].
    pub filtered: u64,
    /// Records with a key repeated in one object: converted with the last value, the earlier
    /// ones kept in `unmapped` (see [`crate::record`]). Counted, since a producer writing them is
    /// broken or crafting input.
    pub duplicate_keys: u64,
    /// What the run's [`Shaping`](crate::shaping::Shaping) did: `<set>/<rule>` → records dropped
    /// (counted in `filtered` too) or values redacted. Empty without shaping.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub shaped: crate::shaping::RuleCounts,
    pub outputs: Vec<OutputReport>,
    /// The record quarantine object, when any record was quarantined.
    pub quarantine_path: Option<String>,
    /// Of `quarantined`, the records past [`Limits::max_quarantine_bytes`]: not copied, but
    /// named by the quarantine's last line (count, first index, the source's SHA-256).
    pub quarantined_by_reference: u64,
}

impl FileReport {
    /// `records == rows + quarantined + filtered`.
    pub fn reconciles(&self) -> bool {
        self.records == self.rows + self.quarantined + self.filtered
    }
}

/// Totals over many objects' [`FileReport`]s, summed here once for every front end (`convert`,
/// `backfill`, the Lambda's metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileTotals {
    /// Objects looked at.
    pub files: u64,
    pub converted: u64,
    /// Neither log nor digest files (Config, empty objects): nothing written.
    pub skipped: u64,
    /// Not converted: errors (see [`FileTotals::add_failed`]) and files quarantined whole.
    pub failed: u64,
    /// Of `failed`, the files quarantined whole (unreadable: a rerun does not retry them).
    pub quarantined_files: u64,
    pub records: u64,
    pub rows: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Records dropped by event filters (shaping's drops included).
    pub filtered: u64,
    /// Records with a key repeated in one object (see [`FileReport::duplicate_keys`]).
    pub duplicate_keys: u64,
    /// Shaping rules' work: `<set>/<rule>` → records dropped or values redacted.
    pub shaped: BTreeMap<String, u64>,
    /// Digest files converted, one `digests` row each (not counted in `records`).
    pub digests: u64,
    pub bytes_in: u64,
    pub json_bytes: u64,
    pub bytes_out: u64,
    pub outputs: u64,
}

impl FileTotals {
    /// Counts one object's report.
    pub fn add(&mut self, report: &FileReport) {
        self.files += 1;
        if report.skipped.is_some() {
            self.skipped += 1;
        } else if report.failure.is_some() {
            self.failed += 1;
            self.quarantined_files += 1;
        } else {
            self.converted += 1;
        }
        self.records += report.records;
        self.rows += report.rows;
        self.quarantined += report.quarantined;
        self.filtered += report.filtered;
        self.duplicate_keys += report.duplicate_keys;
        for (rule, n) in &report.shaped {
            *self.shaped.entry(rule.clone()).or_default() += n;
        }
        self.bytes_in += report.bytes_in;
        self.json_bytes += report.json_bytes;
        for o in &report.outputs {
            self.digests += u64::from(o.dataset == Dataset::Digests);
            self.outputs += 1;
            self.bytes_out += o.bytes;
        }
    }

    /// Counts an object that could not be converted at all (an error, not a report).
    pub fn add_failed(&mut self) {
        self.files += 1;
        self.failed += 1;
    }

    /// `records == rows + quarantined + filtered`, over every object counted.
    pub fn reconciles(&self) -> bool {
        self.records == self.rows + self.quarantined + self.filtered
    }
}

/// A quarantined record, one JSON line of `<quarantine>/records/<stem>.jsonl`.
#[derive(Debug, Serialize)]
struct QuarantinedRecord<'a> {
    source_key: &'a str,
    record_index: usize,
    offset: u64,
    reason: String,
    /// The record's text exactly as read (lossily decoded if it was not UTF-8); absent for a
    /// record too large to hold, which `reference` identifies instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<std::borrow::Cow<'a, str>>,
    /// Where an oversized record's bytes are: `length` bytes from `offset` of the decompressed
    /// source object, and their SHA-256, so they can be extracted and checked later.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    reference: Option<Reference>,
}

/// An oversized record, by reference.
#[derive(Debug, Serialize)]
struct Reference {
    length: u64,
    sha256: String,
}

/// The last line of a record quarantine that reached [`Limits::max_quarantine_bytes`]: the
/// records not copied, by reference to the source object.
#[derive(Debug, Serialize)]
struct OmittedRecords<'a> {
    source_key: &'a str,
    /// The first record not copied, and where it starts in the decompressed source.
    record_index: usize,
    offset: u64,
    reason: String,
    /// How many quarantined records, from `record_index` on, this line stands for.
    omitted: u64,
    /// SHA-256 of the decompressed source, to check a copy of it before extracting them.
    #[serde(skip_serializing_if = "Option::is_none")]
    source_sha256: Option<&'a str>,
}

/// Records quarantined past the cap: counted, not copied.
#[derive(Debug, Clone, Copy)]
struct Omitted {
    count: u64,
    first_index: usize,
    first_offset: u64,
}

/// The longest escaped account or Region value of a partition path: a path segment must stay
/// well under the 255 bytes most file systems allow a name.
const MAX_PARTITION_VALUE: usize = 200;

/// Why a key is skipped without reading it, if it is.
pub fn skip_reason(key: &ObjectKey<'_>) -> Option<String> {
    match key.kind {
        KeyKind::Config => Some("AWS Config object, not CloudTrail".into()),
        KeyKind::OtherService => Some("another service's logs under AWSLogs/, not CloudTrail".into()),
        KeyKind::Log | KeyKind::Insight | KeyKind::Digest | KeyKind::Unknown => None,
    }
}

/// Where an object came from: its key, and for objects in S3 its bucket, version and the digest
/// signature kept in its user metadata. The key names the outputs; bucket and version are recorded
/// in quarantine objects so an operator can find the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Source<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<&'a str>,
    pub key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<&'a str>,
    /// A digest's signature and its algorithm (S3 user metadata `signature` and
    /// `signature-algorithm`); `None` for a local copy or any other object.
    #[serde(skip)]
    pub signature: crate::digest_table::Signature<'a>,
    /// The source's full identity (`s3://bucket/key`, or a local file's path as bytes), given
    /// only when another, different object already owns this one's output names: two sources
    /// under different prefixes with the same `AWSLogs/…` key, or two file names that decode
    /// alike. Every output and quarantine name then carries a suffix derived from it (see
    /// [`output_stem`]), so neither overwrites the other. `None` keeps the plain names, which
    /// stay stable from run to run.
    #[serde(skip)]
    pub distinct: Option<&'a [u8]>,
}

/// The file stem of every output and quarantine object made from `source`: the key's plain stem
/// ([`ObjectKey::output_stem`]), plus, for a source whose plain names are taken by a different
/// object, `-d` and 16 hex digits of the SHA-256 of its full identity ([`Source::distinct`]).
pub fn output_stem(source: &Source<'_>) -> String {
    let mut stem = ObjectKey::parse(source.key).output_stem();
    if let Some(identity) = source.distinct {
        use sha2::{Digest as _, Sha256};
        stem.push_str("-d");
        stem.push_str(&hex(&Sha256::digest(identity)[..8]));
    }
    stem
}

/// The rows a committed Parquet object holds, from its footer: what a run checks its reports
/// against, so a summary states what is in the archive rather than what was attempted.
///
/// `tail` is the object's last bytes. A run reads back every output it wrote, so the caller
/// reads one tail (most footers fit in [`FOOTER_READ_BYTES`]) and asks again with more only when
/// this returns [`FooterRows::Needs`]. Statistics are skipped, not decoded: the count needs none.
pub fn committed_rows(tail: &[u8], path: &str) -> Result<FooterRows> {
    use parquet::file::metadata::{FooterTail, ParquetMetaDataOptions, ParquetMetaDataReader, ParquetStatisticsPolicy};
    let archive =
        |source: parquet::errors::ParquetError| Error::Archive { path: path.to_string(), source: source.into() };
    let Some(last) = tail.last_chunk::<8>() else {
        return Err(archive(parquet::errors::ParquetError::EOF("shorter than a Parquet footer".into())));
    };
    let footer = FooterTail::try_new(last).map_err(archive)?;
    let needed = footer.metadata_length() + last.len();
    let Some(start) = tail.len().checked_sub(needed) else { return Ok(FooterRows::Needs(needed)) };
    let options = ParquetMetaDataOptions::new()
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll);
    let metadata =
        ParquetMetaDataReader::decode_metadata_with_options(&tail[start..tail.len() - last.len()], Some(&options))
            .map_err(archive)?;
    Ok(FooterRows::Rows(u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0)))
}

/// Bytes of an object's end that [`committed_rows`] is first given: a one-row-group output's
/// footer (every delivery-sized one) is about 10 KB; longer ones take a second read.
pub const FOOTER_READ_BYTES: usize = 16 * 1024;

/// What [`committed_rows`] found in a tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterRows {
    /// The object's rows.
    Rows(u64),
    /// The footer is longer than the tail given: the object's last this many bytes hold it.
    Needs(usize),
}

/// Converts one object read from `input`, writing through `sink`.
///
/// Returns `Err` only for failures worth retrying (the source stream or the sink failed with an
/// I/O error that is not corrupt data); content problems are reported in the [`FileReport`] and
/// quarantined, so one bad file never stops a batch.
pub fn convert(key: &str, input: impl Read + Send, sink: &dyn Sink, options: &Options) -> Result<FileReport> {
    convert_source(Source { key, ..Source::default() }, input, sink, options)
}

/// [`convert`], naming the source's bucket and version in quarantine objects.
pub fn convert_source(
    source: Source<'_>,
    input: impl Read + Send,
    sink: &dyn Sink,
    options: &Options,
) -> Result<FileReport> {
    let key = source.key;
    let object = ObjectKey::parse(key);
    let mut report = FileReport { key: key.to_string(), ..FileReport::default() };
    if let Some(reason) = skip_reason(&object) {
        report.skipped = Some(reason);
        return Ok(report);
    }
    if object.kind == KeyKind::Digest {
        return convert_digest(source, &object, input, sink, options);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let counted = CountingReader { inner: input, count: counter.clone() };
    let mut reader =
        RecordReader::new(counted).map_err(|source| Error::Read { key: key.to_string(), offset: 0, source })?;
    reader.set_max_record_bytes(options.limits.max_record_bytes);
    if reader.is_empty_input() {
        report.skipped = Some("zero-byte object".into());
        return Ok(report);
    }
    let stem = output_stem(&source);
    let mut state = FileState::new(&object, &stem, sink, options);
    let outcome = std::thread::scope(|scope| {
        let guard = ReadAheadGuard(&mut reader);
        state.read_all(guard.0, scope, options.parse_threads.resolve())
    });
    report.bytes_in = counter.load(Ordering::Relaxed);
    report.json_bytes = reader.offset();
    report.sha256 = reader.content_sha256().map(|d| hex(&d));
    match outcome {
        Ok(()) => {}
        Err(ReadFault::Sink(e)) => return Err(e),
        Err(ReadFault::Source(err)) => {
            drop(state); // discards every uncommitted output
            // A source that failed for now is retried, its error kept whole; corrupt content
            // is quarantined.
            let err = match err {
                ReadError::Io { source: error, offset } if !is_corrupt(&error) => {
                    return Err(Error::Read { key: key.to_string(), offset, source: error });
                }
                err => err,
            };
            report.failure = Some(quarantine_read_error(source, &err, sink, options, &stem)?);
            return Ok(report);
        }
    }
    let envelope = reader.envelope().clone();
    if !envelope.has_records {
        let (reason, quarantine) = match envelope.content_kind() {
            ContentKind::Digest => ("CloudTrail digest file (by content)".to_string(), false),
            ContentKind::Config => ("AWS Config file (by content)".to_string(), false),
            _ => (
                format!("not a CloudTrail log file: no \"Records\" array (top-level keys: {:?})", envelope.other_keys),
                true,
            ),
        };
        if quarantine {
            let err = ReadError::Json { offset: 0, reason: reason.clone() };
            report.failure = Some(quarantine_read_error(source, &err, sink, options, &stem)?);
        } else {
            report.skipped = Some(reason);
        }
        return Ok(report);
    }
    state.commit(&mut report)?;
    debug_assert!(report.reconciles());
    Ok(report)
}

/// Decompressed bytes read on the converting thread before decompression moves to a thread of its
/// own: most deliveries are smaller, and for them a thread would cost more than it overlaps.
const READ_AHEAD_AFTER: u64 = 4 << 20;

/// When a log file's records are parsed on threads of their own. Parsing a record and copying it
/// into Arrow builders is the largest share of a conversion's work, and records are independent
/// once the reader has split them: past `after_bytes`, the converting thread only splits, hands
/// chunks of records to `workers` threads and takes their rows back in order. Reports, quarantine
/// lines and outputs (byte for byte) are the same as when one thread does it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseThreads {
    /// Decompressed bytes read before records are parsed on worker threads. Smaller files (most
    /// deliveries) never start them: a thread would cost more than it saves.
    pub after_bytes: u64,
    /// Worker threads; 0 is one per available core beyond two (at most [`MAX_PARSE_WORKERS`]):
    /// the converting thread, the inflate thread and the encoders take about as much CPU as the
    /// parsing, so on 2 cores they already keep both busy. Measured there with the machine to
    /// itself, a worker gave no wall time on a 500 MB file (2.28–2.49 s against 2.21–2.49) for
    /// 30 MiB more peak RSS (`BENCHMARKS.md`, "Scaling across cores"); each worker adds an
    /// allocator heap (10–20 MiB).
    pub workers: usize,
    /// Bytes of record text per chunk handed to a worker: enough that handing it over costs
    /// nothing next to parsing it, few enough that the chunks in flight (at most
    /// [`CHUNKS_PER_WORKER`] per worker) stay a few MiB.
    pub chunk_bytes: usize,
}

impl Default for ParseThreads {
    fn default() -> Self {
        ParseThreads { after_bytes: READ_AHEAD_AFTER, workers: 0, chunk_bytes: 1 << 20 }
    }
}

/// The most parse workers one file starts by default: past a few, the converting thread (which
/// splits records and hands rows on) is the bottleneck.
pub const MAX_PARSE_WORKERS: usize = 4;

impl ParseThreads {
    /// How many workers to start; 0 parses on the converting thread.
    fn resolve(&self) -> usize {
        match self.workers {
            0 => crate::cores().saturating_sub(2).min(MAX_PARSE_WORKERS),
            n => n,
        }
    }
}

/// Chunks each parse worker may hold (queued, being parsed, or parsed and waiting to be taken
/// back): the bound on the memory in flight.
pub const CHUNKS_PER_WORKER: usize = 2;

enum ReadFault {
    Source(ReadError),
    Sink(Error),
}

/// The output a row goes to: its dataset and its partition.
type Slot = (Dataset, PartitionKey);

/// What a record's own content decides, independent of the rest of the file: whether it parses
/// and has a time, its output, and what filters and shaping do to it. Shared by the converting
/// thread and the parse workers, so both decide alike.
#[derive(Clone, Copy)]
struct RecordRules<'s> {
    object: &'s ObjectKey<'s>,
    options: &'s Options,
    filter_all: bool,
    shaping_none: bool,
}

/// A record with a row and a place for it; whether it may open a new partition is decided later,
/// in file order ([`FileState::admit`]).
struct Placed<'a> {
    row: Box<Row<'a>>,
    slot: Slot,
    judgement: Judgement,
}

/// What filters and shaping made of a placed record.
#[derive(Debug)]
struct Judgement {
    duplicate_keys: bool,
    /// Shaping rules that redacted values, and how many.
    redacted: Vec<(String, u32)>,
    fate: Fate,
}

#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Write,
    Filtered,
    /// Dropped by this shaping rule.
    Dropped(String),
}

impl<'s> RecordRules<'s> {
    fn new(object: &'s ObjectKey<'s>, options: &'s Options) -> Self {
        RecordRules {
            object,
            options,
            filter_all: options.filter.keeps_all(),
            shaping_none: options.shaping.is_empty(),
        }
    }

    /// Parses and places one record; the reason to quarantine it if it cannot be.
    fn place<'a>(&self, text: &'a [u8], index: usize) -> std::result::Result<Placed<'a>, String>
    where
        's: 'a,
    {
        let row = Row::parse_boxed(text, self.object.key, index).map_err(|e| e.to_string())?;
        let time = row.event_time().map_err(|e| e.to_string())?;
        let slot = self.slot(&row, time);
        // A partition value too long to name a path can never be opened, wherever the record is.
        let (account, region) = (escape_value(&slot.1.account), escape_value(&slot.1.region));
        if account.len() > MAX_PARTITION_VALUE || region.len() > MAX_PARTITION_VALUE {
            return Err(format!(
                "the account or Region value cannot name a partition: escaped, it is {} / {} bytes long (at most {MAX_PARTITION_VALUE})",
                account.len(),
                region.len()
            ));
        }
        let mut row = row;
        let mut judgement =
            Judgement { duplicate_keys: row.duplicate_keys > 0, redacted: Vec::new(), fate: Fate::Write };
        if !self.filter_all && !self.options.filter.keeps(&row) {
            judgement.fate = Fate::Filtered;
        } else if !self.shaping_none {
            let outcome = self.options.shaping.apply(&mut row);
            judgement.redacted = outcome.redacted;
            if let Some(rule) = outcome.dropped {
                judgement.fate = Fate::Dropped(rule);
            }
        }
        Ok(Placed { row, slot, judgement })
    }

    /// The output a row goes to: its dataset and its partition.
    fn slot(&self, row: &Row<'_>, time: chrono::DateTime<chrono::Utc>) -> Slot {
        let account = row
            .recipientaccountid
            .as_deref()
            .or_else(|| row.useridentity.as_ref().and_then(|u| u.accountid.as_deref()))
            .filter(|a| !a.is_empty())
            .or(self.object.account)
            .unwrap_or_default();
        let region = row.awsregion.as_deref().filter(|r| !r.is_empty()).or(self.object.region).unwrap_or_default();
        let partition =
            PartitionKey { account: account.to_string(), region: region.to_string(), date: time.date_naive() };
        let dataset = if row.is_insight() { Dataset::Insights } else { Dataset::Events };
        (dataset, partition)
    }

    /// A parse worker's share: every record of `chunk` judged, and the rows to write built into
    /// one batch per output, in record order.
    fn judge_chunk(&self, chunk: Chunk) -> JudgedChunk {
        let mut slots: Vec<Slot> = Vec::new();
        let mut columns: Vec<crate::encode::Columns> = Vec::new();
        let mut failed = None;
        let mut verdicts = Vec::with_capacity(chunk.records.len());
        for record in &chunk.records {
            if let Some(big) = record.oversized {
                verdicts.push(Verdict::Oversized(big));
                continue;
            }
            let placed = match self.place(&chunk.text[record.span.clone()], record.index) {
                Ok(placed) => placed,
                Err(reason) => {
                    verdicts.push(Verdict::Refused(reason));
                    continue;
                }
            };
            let at = match slots.iter().position(|s| *s == placed.slot) {
                Some(at) => at,
                None => match crate::encode::Columns::new(crate::schema::schema().fields()) {
                    Ok(built) => {
                        slots.push(placed.slot);
                        columns.push(built);
                        slots.len() - 1
                    }
                    Err(e) => {
                        failed.get_or_insert((placed.slot, e));
                        break;
                    }
                },
            };
            if placed.judgement.fate == Fate::Write
                && let Err(e) = columns[at].push(&placed.row)
            {
                failed.get_or_insert((slots[at].clone(), e));
                break;
            }
            verdicts.push(Verdict::Placed { slot: at, judgement: placed.judgement });
        }
        let mut batches = Vec::with_capacity(columns.len());
        for (at, mut built) in columns.into_iter().enumerate() {
            match built.finish(&crate::schema::schema()) {
                Ok(batch) => batches.push(batch),
                Err(e) => {
                    failed.get_or_insert((slots[at].clone(), e));
                    break;
                }
            }
        }
        JudgedChunk { chunk, verdicts, slots, batches, failed }
    }
}

/// Records split from the file, copied out of the reader's buffer for a parse worker.
#[derive(Default)]
struct Chunk {
    text: Vec<u8>,
    records: Vec<ChunkRecord>,
}

impl Chunk {
    /// Room for `bytes` of text and a little more, so the record that crosses the line does not
    /// double the buffer.
    fn with_capacity(bytes: usize) -> Chunk {
        Chunk { text: Vec::with_capacity(bytes + bytes / 8), records: Vec::new() }
    }
}

struct ChunkRecord {
    index: usize,
    offset: u64,
    /// Where its text is in [`Chunk::text`] (empty when oversized).
    span: std::ops::Range<usize>,
    oversized: Option<crate::log_file::Oversized>,
}

/// A chunk back from its worker.
struct JudgedChunk {
    chunk: Chunk,
    /// One per record of the chunk, in order (fewer only with `failed`).
    verdicts: Vec<Verdict>,
    /// The outputs the chunk's placed records go to, and for each, its rows to write.
    slots: Vec<Slot>,
    batches: Vec<arrow_array::RecordBatch>,
    /// Rows that could not be built (the row model and the schema disagree: a bug).
    failed: Option<(Slot, crate::error::DataError)>,
}

enum Verdict {
    Oversized(crate::log_file::Oversized),
    Refused(String),
    Placed { slot: usize, judgement: Judgement },
}

struct FileState<'s> {
    rules: RecordRules<'s>,
    stem: &'s str,
    sink: &'s dyn Sink,
    options: &'s Options,
    outputs: BTreeMap<Slot, ParquetOutput>,
    quarantine: Option<(String, Box<dyn SinkFile>)>,
    /// Bytes written to `quarantine` so far, and the records past the cap.
    quarantine_bytes: u64,
    omitted: Option<Omitted>,
    records: u64,
    quarantined: u64,
    filtered: u64,
    duplicate_keys: u64,
    shaped: crate::shaping::RuleCounts,
}

impl<'s> FileState<'s> {
    fn new(object: &'s ObjectKey<'s>, stem: &'s str, sink: &'s dyn Sink, options: &'s Options) -> Self {
        FileState {
            rules: RecordRules::new(object, options),
            stem,
            sink,
            options,
            outputs: BTreeMap::new(),
            quarantine: None,
            quarantine_bytes: 0,
            omitted: None,
            records: 0,
            quarantined: 0,
            filtered: 0,
            duplicate_keys: 0,
            shaped: Default::default(),
        }
    }

    fn key(&self) -> &'s str {
        self.rules.object.key
    }

    /// Reads every record; past the first [`READ_AHEAD_AFTER`] bytes, decompression moves to a
    /// thread of `scope`, so a large file is inflated while its records are parsed, and past
    /// [`ParseThreads::after_bytes`] parsing moves to `workers` threads of its own (none: all
    /// on this thread).
    fn read_all<'r: 'scope, 'scope>(
        &mut self,
        reader: &mut RecordReader<'r>,
        scope: &'scope std::thread::Scope<'scope, '_>,
        workers: usize,
    ) -> std::result::Result<(), ReadFault> {
        loop {
            if reader.offset() >= READ_AHEAD_AFTER {
                reader.read_ahead(scope);
            }
            if workers > 0 && reader.offset() >= self.options.parse_threads.after_bytes {
                return self.read_parallel(reader, scope, workers);
            }
            let Some(raw) = reader.next_record().map_err(ReadFault::Source)? else { break };
            self.records += 1;
            if let Some(big) = raw.oversized {
                self.quarantine_oversized(big, raw.index, raw.offset).map_err(ReadFault::Sink)?;
                continue;
            }
            let placed = self.rules.place(raw.text, raw.index).and_then(|placed| {
                self.admit(&placed.slot)?;
                Ok(placed)
            });
            match placed {
                Ok(placed) => {
                    if self.tally(placed.judgement) {
                        let key = self.key();
                        let output = self.output(&placed.slot).map_err(ReadFault::Sink)?;
                        output
                            .push(&placed.row)
                            .map_err(|e| ReadFault::Sink(e.into_error(key, &placed.slot.1.path())))?
                    }
                }
                Err(reason) => self
                    .quarantine_record(Some(raw.text), None, raw.index, raw.offset, reason)
                    .map_err(ReadFault::Sink)?,
            }
        }
        Ok(())
    }

    /// The rest of the file with records parsed on `workers` threads. This thread splits records
    /// into chunks, deals them to the workers in turn and takes them back in the same turn, so
    /// chunks are settled in file order: counts, quarantine lines and the partitions a file may
    /// open (which depend on what came before) are decided here exactly as [`FileState::read_all`]
    /// decides them, and each output gets its rows in file order. At most
    /// [`CHUNKS_PER_WORKER`] chunks per worker are in flight. A worker that panics ends the
    /// scope with its panic, as a panic of the conversion itself would.
    fn read_parallel<'r: 'scope, 'scope>(
        &mut self,
        reader: &mut RecordReader<'r>,
        scope: &'scope std::thread::Scope<'scope, '_>,
        workers: usize,
    ) -> std::result::Result<(), ReadFault> {
        let rules = self.rules;
        std::thread::scope(|parse| {
            let mut lanes = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (to_worker, chunks) = std::sync::mpsc::channel::<Chunk>();
                let (judged, from_worker) = std::sync::mpsc::channel::<JudgedChunk>();
                let spawned = std::thread::Builder::new().name("parse".into()).spawn_scoped(parse, move || {
                    for chunk in chunks {
                        if judged.send(rules.judge_chunk(chunk)).is_err() {
                            break;
                        }
                    }
                });
                if spawned.is_ok() {
                    lanes.push((to_worker, from_worker));
                }
            }
            if lanes.is_empty() {
                return self.read_all(reader, scope, 0);
            }
            let chunk_bytes = self.options.parse_threads.chunk_bytes.max(1);
            let (mut sent, mut settled) = (0usize, 0usize);
            let mut chunk = Chunk::with_capacity(chunk_bytes);
            // Chunks settled, kept for reuse: fresh megabytes each time cost the kernel's zeroing
            // of new pages, about a tenth of this thread's time.
            let mut spare: Vec<Chunk> = Vec::new();
            loop {
                if reader.offset() >= READ_AHEAD_AFTER {
                    reader.read_ahead(scope);
                }
                let raw = reader.next_record().map_err(ReadFault::Source)?;
                let end = raw.is_none();
                if let Some(raw) = raw {
                    let start = chunk.text.len();
                    chunk.text.extend_from_slice(raw.text);
                    let span = start..chunk.text.len();
                    chunk.records.push(ChunkRecord {
                        index: raw.index,
                        offset: raw.offset,
                        span,
                        oversized: raw.oversized,
                    });
                }
                if chunk.text.len() >= chunk_bytes || (end && !chunk.records.is_empty()) {
                    if sent - settled == lanes.len() * CHUNKS_PER_WORKER {
                        // A closed lane means its worker panicked: the scope resumes the panic.
                        let Ok(judged) = lanes[settled % lanes.len()].1.recv() else { return Ok(()) };
                        spare.push(self.settle(judged).map_err(ReadFault::Sink)?);
                        settled += 1;
                    }
                    let next = spare.pop().unwrap_or_else(|| Chunk::with_capacity(chunk_bytes));
                    if lanes[sent % lanes.len()].0.send(std::mem::replace(&mut chunk, next)).is_err() {
                        return Ok(());
                    }
                    sent += 1;
                }
                if end {
                    break;
                }
            }
            while settled < sent {
                let Ok(judged) = lanes[settled % lanes.len()].1.recv() else { return Ok(()) };
                self.settle(judged).map_err(ReadFault::Sink)?;
                settled += 1;
            }
            Ok(())
        })
    }

    /// Takes a judged chunk back, in file order: each record counted, quarantined or admitted
    /// as [`FileState::read_all`] would, then the rows of each admitted output handed to it.
    /// Returns the chunk, emptied, to be filled again.
    fn settle(&mut self, judged: JudgedChunk) -> Result<Chunk> {
        let key = self.key();
        if let Some((slot, e)) = judged.failed {
            return Err(crate::encode::OutputError::from(e).into_error(key, &slot.1.path()));
        }
        let JudgedChunk { chunk, verdicts, slots, batches, .. } = judged;
        // An output's rows of one chunk are all written or none: once a record opens its output,
        // the later ones find it open; once one is refused, the file is at its partition limit
        // for good.
        let mut admitted = vec![false; slots.len()];
        for (record, verdict) in chunk.records.iter().zip(verdicts) {
            self.records += 1;
            let text = &chunk.text[record.span.clone()];
            match verdict {
                Verdict::Oversized(big) => self.quarantine_oversized(big, record.index, record.offset)?,
                Verdict::Refused(reason) => {
                    self.quarantine_record(Some(text), None, record.index, record.offset, reason)?
                }
                Verdict::Placed { slot, judgement } => match self.admit(&slots[slot]) {
                    Err(reason) => self.quarantine_record(Some(text), None, record.index, record.offset, reason)?,
                    Ok(()) => {
                        if self.tally(judgement) {
                            self.output(&slots[slot])?;
                            admitted[slot] = true;
                        }
                    }
                },
            }
        }
        for ((slot, batch), admitted) in slots.iter().zip(batches).zip(admitted) {
            if admitted {
                let output = self.outputs.get_mut(slot).expect("opened when admitted");
                output.push_batch(batch).map_err(|e| e.into_error(key, &slot.1.path()))?;
            }
        }
        let mut chunk = chunk;
        chunk.text.clear();
        chunk.records.clear();
        Ok(chunk)
    }

    /// Whether a placed record's output may be written to: one already open always may; a new
    /// one only while the file is under [`Limits::max_partitions`]. The reason to quarantine
    /// the record if not.
    fn admit(&self, slot: &Slot) -> std::result::Result<(), String> {
        if self.outputs.contains_key(slot) {
            return Ok(());
        }
        let limit = self.options.limits.max_partitions;
        if self.outputs.len() >= limit {
            return Err(format!(
                "the file already writes {limit} partitions, the most one file may (this record's is {})",
                slot.1
            ));
        }
        Ok(())
    }

    /// Counts what became of an admitted record; whether its row is to be written.
    fn tally(&mut self, judgement: Judgement) -> bool {
        self.duplicate_keys += u64::from(judgement.duplicate_keys);
        for (rule, n) in judgement.redacted {
            *self.shaped.entry(rule).or_default() += u64::from(n);
        }
        match judgement.fate {
            Fate::Write => return true,
            Fate::Filtered => {}
            Fate::Dropped(rule) => *self.shaped.entry(rule).or_default() += 1,
        }
        self.filtered += 1;
        false
    }

    /// The output of `slot`, created with the first row written to it.
    fn output(&mut self, slot: &Slot) -> Result<&mut ParquetOutput> {
        if !self.outputs.contains_key(slot) {
            let prefix = self.options.layout.prefix(slot.0);
            let path = format!("{prefix}/{}/{}.parquet", slot.1.path(), self.stem);
            let file = self.sink.create(&path).map_err(|source| Error::Write {
                key: self.key().into(),
                path: path.clone(),
                source,
            })?;
            let output = ParquetOutput::new(file, &self.options.writer).map_err(|e| e.into_error(self.key(), &path))?;
            self.outputs.insert(slot.clone(), output);
        }
        Ok(self.outputs.get_mut(slot).expect("inserted above"))
    }

    /// Quarantines a record too large to hold, by reference.
    fn quarantine_oversized(&mut self, big: crate::log_file::Oversized, index: usize, offset: u64) -> Result<()> {
        let limit = self.options.limits.max_record_bytes;
        let reason = format!("record of {} bytes, larger than the limit of {limit} bytes", big.len);
        let reference = Reference { length: big.len, sha256: hex(&big.sha256) };
        self.quarantine_record(None, Some(reference), index, offset, reason)
    }

    /// Quarantines one record: with its text, or, for one too large to hold, by reference.
    fn quarantine_record(
        &mut self,
        text: Option<&[u8]>,
        reference: Option<Reference>,
        index: usize,
        offset: u64,
        reason: String,
    ) -> Result<()> {
        self.quarantined += 1;
        if let Some(omitted) = self.omitted.as_mut() {
            omitted.count += 1; // past the cap: counted, never serialized
            return Ok(());
        }
        if self.quarantine.is_none() {
            let path = format!("{}/records/{}.jsonl", self.options.layout.quarantine, self.stem);
            let file = self.sink.create(&path).map_err(|source| Error::Write {
                key: self.key().into(),
                path: path.clone(),
                source,
            })?;
            self.quarantine = Some((path, file));
        }
        let line = QuarantinedRecord {
            source_key: self.rules.object.key,
            record_index: index,
            offset,
            reason,
            raw: text.map(String::from_utf8_lossy),
            reference,
        };
        let mut bytes = serde_json::to_vec(&line).expect("quarantine lines serialize");
        bytes.push(b'\n');
        // The first record over the cap, and every one after it, is counted instead of copied.
        if self.quarantine_bytes + bytes.len() as u64 > self.options.limits.max_quarantine_bytes {
            self.omitted = Some(Omitted { count: 1, first_index: index, first_offset: offset });
            return Ok(());
        }
        self.quarantine_bytes += bytes.len() as u64;
        let key = self.key();
        let (path, file) = self.quarantine.as_mut().expect("created above");
        file.write_all(&bytes).map_err(|source| Error::Write { key: key.into(), path: path.clone(), source })
    }

    fn commit(mut self, report: &mut FileReport) -> Result<()> {
        let key = self.key().to_string();
        // Every output is told its input ended before any is finished (their encoders then close
        // their last row groups side by side).
        let mut paths = Vec::with_capacity(self.outputs.len());
        for ((dataset, partition), output) in &mut self.outputs {
            let path = format!("{}/{}/{}.parquet", self.options.layout.prefix(*dataset), partition.path(), self.stem);
            output.end_input().map_err(|e| e.into_error(&key, &path))?;
            paths.push(path);
        }
        for (((dataset, partition), output), path) in self.outputs.into_iter().zip(paths) {
            let (rows, bytes, file) = output.finish().map_err(|e| e.into_error(&key, &path))?;
            file.commit().map_err(|source| Error::Write { key: key.clone(), path: path.clone(), source })?;
            report.rows += rows;
            report.outputs.push(OutputReport {
                path,
                dataset,
                account: partition.account.clone(),
                region: partition.region.clone(),
                date: partition.date.format("%Y-%m-%d").to_string(),
                rows,
                bytes,
            });
        }
        if let (Some(omitted), Some((path, file))) = (self.omitted, self.quarantine.as_mut()) {
            let line = OmittedRecords {
                source_key: self.rules.object.key,
                record_index: omitted.first_index,
                offset: omitted.first_offset,
                reason: format!(
                    "the file's quarantine reached its limit of {} bytes: this record and the {} quarantined after it are not copied; they are in the source object",
                    self.options.limits.max_quarantine_bytes,
                    omitted.count - 1
                ),
                omitted: omitted.count,
                source_sha256: report.sha256.as_deref(),
            };
            let mut bytes = serde_json::to_vec(&line).expect("quarantine lines serialize");
            bytes.push(b'\n');
            file.write_all(&bytes).map_err(|source| Error::Write { key: key.clone(), path: path.clone(), source })?;
            report.quarantined_by_reference = omitted.count;
        }
        if let Some((path, file)) = self.quarantine {
            file.commit().map_err(|source| Error::Write { key: key.clone(), path: path.clone(), source })?;
            report.quarantine_path = Some(path);
        }
        report.records = self.records;
        report.quarantined = self.quarantined;
        report.filtered = self.filtered;
        report.duplicate_keys = self.duplicate_keys;
        report.shaped = self.shaped;
        Ok(())
    }
}

/// A digest file through to its one `digests` row. All or nothing like a log file: the row is
/// written only once the whole digest was read and parsed; a digest that cannot be read or parsed
/// is quarantined with the reason (class `malformed_digest` when it inflates but is no digest).
fn convert_digest(
    source: Source<'_>,
    object: &ObjectKey<'_>,
    input: impl Read,
    sink: &dyn Sink,
    options: &Options,
) -> Result<FileReport> {
    let key = source.key;
    let mut report = FileReport { key: key.to_string(), ..FileReport::default() };
    let stem = output_stem(&source);
    let counter = Arc::new(AtomicU64::new(0));
    let inflated = crate::digest::inflate(
        CountingReader { inner: input, count: counter.clone() },
        options.limits.max_digest_bytes,
    );
    report.bytes_in = counter.load(Ordering::Relaxed);
    let inflated = match inflated {
        Ok(bytes) => bytes,
        Err(e) if is_corrupt(&e) => {
            let err = ReadError::Io { offset: 0, source: e };
            report.failure = Some(quarantine_read_error(source, &err, sink, options, &stem)?);
            return Ok(report);
        }
        Err(e) => return Err(Error::Read { key: key.to_string(), offset: 0, source: e }),
    };
    if report.bytes_in == 0 {
        report.skipped = Some("zero-byte object".into());
        return Ok(report);
    }
    report.json_bytes = inflated.len() as u64;
    report.sha256 = Some(hex(&crate::digest::sha256(&inflated)));
    let row = match crate::digest_table::DigestRow::parse(&inflated, object, source.signature) {
        Ok(row) => row,
        Err(reason) => {
            let reason = reason.to_string();
            report.failure = Some(quarantine_file(source, "malformed_digest", &reason, 0, sink, options, &stem)?);
            return Ok(report);
        }
    };
    let path = format!("{}/{}/{stem}.parquet", options.layout.digests, row.partition.path());
    let bytes = crate::digest_table::encode(std::slice::from_ref(&row), &options.writer)
        .map_err(|source| Error::Encode { key: key.into(), path: path.clone(), source })?;
    let write = |source| Error::Write { key: key.into(), path: path.clone(), source };
    let mut file = sink.create(&path).map_err(write)?;
    file.write_all(&bytes).map_err(write)?;
    file.commit().map_err(write)?;
    report.outputs.push(OutputReport {
        path: path.clone(),
        dataset: Dataset::Digests,
        account: row.partition.account.clone(),
        region: row.partition.region.clone(),
        date: row.partition.date.format("%Y-%m-%d").to_string(),
        rows: 1,
        bytes: bytes.len() as u64,
    });
    Ok(report)
}

/// Whether a read error means corrupt content (quarantine) rather than a failing stream (retry).
fn is_corrupt(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof)
}

/// Quarantines a whole object that failed for a reason no retry can change but the reading
/// did not catch (an encoding failure, a crash of the converter): a marker under
/// `quarantine/files/` names it, its bucket and version and the reason, so the object is never
/// acknowledged with nothing to show for it. Outputs of the failed attempt were never listed in a
/// manifest, so no reader sees them.
pub fn quarantine_object(
    source: Source<'_>,
    class: &str,
    reason: &str,
    sink: &dyn Sink,
    options: &Options,
) -> Result<FileReport> {
    let stem = output_stem(&source);
    let failure = quarantine_file(source, class, reason, 0, sink, options, &stem)?;
    Ok(FileReport { key: source.key.to_string(), failure: Some(failure), ..FileReport::default() })
}

/// [`quarantine_file`] for a read error.
fn quarantine_read_error(
    source: Source<'_>,
    err: &ReadError,
    sink: &dyn Sink,
    options: &Options,
    stem: &str,
) -> Result<FileFailure> {
    let class = match err {
        ReadError::Io { .. } => "unreadable",
        ReadError::Json { .. } => "malformed_json",
    };
    quarantine_file(source, class, &err.to_string(), err.offset(), sink, options, stem)
}

/// Writes `<quarantine>/files/<stem>.json` for a file that could not be read.
fn quarantine_file(
    source: Source<'_>,
    class: &str,
    reason: &str,
    offset: u64,
    sink: &dyn Sink,
    options: &Options,
    stem: &str,
) -> Result<FileFailure> {
    let key = source.key;
    let path = format!("{}/files/{stem}.json", options.layout.quarantine);
    let failure =
        FileFailure { class: class.into(), reason: reason.to_string(), offset, quarantine_path: path.clone() };
    #[derive(Serialize)]
    struct Marker<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        source_bucket: Option<&'a str>,
        source_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_version_id: Option<&'a str>,
        class: &'a str,
        reason: &'a str,
        offset: u64,
    }
    let marker = Marker {
        source_bucket: source.bucket,
        source_key: key,
        source_version_id: source.version_id,
        class,
        reason: &failure.reason,
        offset: failure.offset,
    };
    let mut file = sink.create(&path).map_err(|source| Error::Write { key: key.into(), path: path.clone(), source })?;
    let mut body = serde_json::to_vec_pretty(&marker).expect("markers serialize");
    body.push(b'\n');
    file.write_all(&body).map_err(|source| Error::Write { key: key.into(), path: path.clone(), source })?;
    file.commit().map_err(|source| Error::Write { key: key.into(), path: path.clone(), source })?;
    Ok(failure)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_count_each_kind_of_object_once_and_reconcile() {
        let sink = MemorySink::default();
        let json = br#"{"Records":[{"eventTime":"2024-03-01T00:00:00Z","eventID":"a","awsRegion":"us-east-1","recipientAccountId":"111122223333"},{"eventID":"no time"}]}"#;
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_a.json";
        let converted = convert(key, &json[..], &sink, &Options::default()).unwrap();
        let broken = convert(&key.replace("_a.", "_b."), &b"{\"Records\":[{"[..], &sink, &Options::default()).unwrap();
        let skipped = convert("AWSLogs/111122223333/Config/x.json", &b""[..], &sink, &Options::default()).unwrap();
        assert!(broken.failure.is_some() && skipped.skipped.is_some(), "{broken:?} {skipped:?}");
        let mut t = FileTotals::default();
        for r in [&converted, &broken, &skipped] {
            t.add(r);
        }
        t.add_failed();
        let counts = (t.files, t.converted, t.skipped, t.failed, t.quarantined_files);
        assert_eq!(counts, (4, 1, 1, 2, 1), "{t:?}");
        assert_eq!((t.records, t.rows, t.quarantined), (2, 1, 1), "{t:?}");
        assert_eq!(t.outputs, converted.outputs.len() as u64 + broken.outputs.len() as u64);
        assert!(t.reconciles(), "{t:?}");
    }
    use crate::sink::MemorySink;

    const FILE: &str = r#"{"Records":[
        {"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventCategory":"Data","readOnly":true},
        {"eventTime":"2024-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventCategory":"Management","readOnly":false},
        {"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com","readOnly":true},
        {"eventTime":"2024-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","eventCategory":"Insight"},
        {"eventName":"no time"}]}"#;

    #[test]
    fn filters_mirror_trail_selectors_and_reconcile() {
        let cases: [(&str, EventFilter, u64); 5] = [
            ("keep all", EventFilter::default(), 4),
            ("management only", EventFilter { categories: [Category::Management].into(), ..Default::default() }, 2),
            (
                "data and insight",
                EventFilter { categories: [Category::Data, Category::Insight].into(), ..Default::default() },
                2,
            ),
            ("write only", EventFilter { read_write: ReadWrite::WriteOnly, ..Default::default() }, 2),
            (
                "exclude KMS",
                EventFilter { exclude_sources: ["kms.amazonaws.com".to_string()].into(), ..Default::default() },
                3,
            ),
        ];
        for (name, filter, rows) in cases {
            let options = Options { filter, ..Options::default() };
            let report = convert("k.json", FILE.as_bytes(), &MemorySink::default(), &options).unwrap();
            assert_eq!(report.rows, rows, "{name}");
            assert_eq!(report.quarantined, 1, "{name}");
            assert_eq!(report.filtered, 4 - rows, "{name}");
            assert!(report.reconciles(), "{name}: {report:?}");
        }
        assert!("Management".parse::<Category>().is_ok() && "bogus".parse::<Category>().is_err());
        assert_eq!("writeonly".parse(), Ok(ReadWrite::WriteOnly));
    }

    /// A committed output's rows come from its footer, whatever the tail it is given: the last
    /// bytes holding the footer, the whole object, or too few (then it asks for the footer's
    /// length, and reading that many gives the count). Bytes that end in no footer are an error.
    #[test]
    fn committed_rows_from_a_footer() {
        let sink = MemorySink::default();
        let report = convert("k.json", FILE.as_bytes(), &sink, &Options::default()).unwrap();
        let output = report.outputs.iter().find(|o| o.dataset == Dataset::Events).expect("an events output");
        let object = sink.get(&output.path).unwrap();
        let events = FILE.lines().filter(|l| l.contains("eventTime") && !l.contains("Insight")).count() as u64;
        assert_eq!(committed_rows(&object, &output.path).unwrap(), FooterRows::Rows(events));
        let FooterRows::Needs(needed) = committed_rows(&object[object.len() - 100..], &output.path).unwrap() else {
            panic!("100 bytes cannot hold a footer of {} columns", crate::schema::schema().fields().len());
        };
        assert!(needed > 100 && needed < object.len(), "{needed} of {}", object.len());
        assert_eq!(committed_rows(&object[object.len() - needed..], &output.path).unwrap(), FooterRows::Rows(events));
        for broken in [&b"PAR"[..], &b"not a parquet file at all"[..], &object[..object.len() - 1]] {
            assert!(committed_rows(broken, &output.path).is_err(), "{} bytes", broken.len());
        }
    }

    /// Quarantine lines of a converted file, parsed.
    fn quarantine_lines(sink: &MemorySink) -> Vec<serde_json::Value> {
        let path = sink.paths().into_iter().find(|p| p.starts_with("quarantine/records/")).expect("a quarantine file");
        let text = String::from_utf8(sink.get(&path).unwrap()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// A record larger than the limit is quarantined by reference — its byte range and SHA-256 in
    /// the decompressed file, never its text — and the records around it are converted. The
    /// reference is checked against the input itself.
    #[test]
    fn an_oversized_record_is_quarantined_by_reference_and_the_file_goes_on() {
        use sha2::{Digest as _, Sha256};
        let small = |name: &str| format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"{name}"}}"#);
        let huge =
            format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","requestParameters":{{"x":"{}"}}}}"#, "a".repeat(3000));
        let json = format!(r#"{{"Records":[{},{huge},{}]}}"#, small("Before"), small("After"));
        for (limit, oversized) in [(2000, true), (huge.len() - 1, true), (huge.len(), false)] {
            let limits = Limits { max_record_bytes: limit, ..Limits::default() };
            let options = Options { limits, ..Options::default() };
            let sink = MemorySink::default();
            let report = convert("k.json", json.as_bytes(), &sink, &options).unwrap();
            assert!(report.reconciles(), "{limit}: {report:?}");
            assert_eq!(report.records, 3, "{limit}");
            if !oversized {
                assert_eq!((report.rows, report.quarantined), (3, 0), "{limit}");
                continue;
            }
            assert_eq!((report.rows, report.quarantined), (2, 1), "{limit}");
            let lines = quarantine_lines(&sink);
            let line = &lines[0];
            let offset = json.find(&huge).unwrap() as u64;
            assert_eq!(line["record_index"], 1, "{line}");
            assert_eq!(line["offset"], offset, "{line}");
            assert_eq!(line["length"], huge.len() as u64, "{line}");
            assert_eq!(line["sha256"], hex(&Sha256::digest(huge.as_bytes())), "{line}");
            assert!(line.get("raw").is_none(), "the text must not be copied: {line}");
            assert!(line["reason"].as_str().unwrap().contains(&format!("limit of {limit} bytes")), "{line}");
        }
    }

    /// Memory does not grow with one huge value: a gzip of a few hundred KB holding a 64 MiB
    /// string is read with the buffer bounded near the limit (checked on the reader's capacity).
    #[test]
    fn a_huge_string_streams_past_without_being_held() {
        use std::io::Write as _;
        let (open, close) = (r#"{"eventTime":"2024-01-01T00:00:00Z","x":""#, r#""}"#);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!(r#"{{"Records":[{open}"#).as_bytes()).unwrap();
        let chunk = vec![b'z'; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&chunk).unwrap();
        }
        gz.write_all(format!(r#"{close},{{"eventTime":"2024-01-01T00:00:01Z"}}]}}"#).as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut reader = RecordReader::new(&gz[..]).unwrap();
        reader.set_max_record_bytes(1 << 20);
        let first = reader.next_record().unwrap().unwrap();
        let big = first.oversized.expect("oversized");
        assert_eq!(big.len, (open.len() + (64 << 20) + close.len()) as u64, "the record's exact length");
        assert!(reader.capacity() <= 4 << 20, "buffer grew to {} bytes", reader.capacity());
        let second = reader.next_record().unwrap().unwrap();
        assert_eq!(second.text, br#"{"eventTime":"2024-01-01T00:00:01Z"}"#);
        assert!(reader.next_record().unwrap().is_none());
    }

    /// A file naming more partitions than the limit converts the first ones and quarantines,
    /// with their text, the records that would open more; a value too long to be a file name is
    /// quarantined rather than failing the file.
    #[test]
    fn partition_fan_out_and_unnameable_partitions_are_quarantined() {
        let records: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"eventTime":"2024-01-01T00:00:00Z","recipientAccountId":"{:012}","eventName":"E{i}"}}"#,
                    i % 5
                )
            })
            .chain([format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","awsRegion":"{}"}}"#, "é".repeat(43))])
            .collect();
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let limits = Limits { max_partitions: 3, ..Limits::default() };
        let sink = MemorySink::default();
        let report = convert("k.json", json.as_bytes(), &sink, &Options { limits, ..Options::default() }).unwrap();
        assert!(report.reconciles(), "{report:?}");
        // Accounts 0, 1, 2 open the three partitions (two records each); 3 and 4 are refused.
        assert_eq!((report.records, report.rows, report.quarantined), (11, 6, 5), "{report:?}");
        assert_eq!(report.outputs.len(), 3);
        let lines = quarantine_lines(&sink);
        let raws: Vec<&str> = lines.iter().map(|l| l["raw"].as_str().unwrap()).collect();
        let want: Vec<&str> =
            records.iter().enumerate().filter(|(i, _)| *i == 10 || i % 5 >= 3).map(|(_, r)| r.as_str()).collect();
        assert_eq!(raws, want);
        assert!(lines[0]["reason"].as_str().unwrap().contains("already writes 3 partitions"), "{}", lines[0]);
        assert!(lines[4]["reason"].as_str().unwrap().contains("cannot name a partition"), "{}", lines[4]);
    }

    /// A tiny record repeated cannot amplify into a huge quarantine: lines stop at the cap, and
    /// one last line names the rest by reference (count, first index and offset, source hash).
    /// Every record is still counted, so the file reconciles.
    #[test]
    fn the_quarantine_of_one_file_is_capped_and_refers_to_the_rest() {
        use sha2::{Digest as _, Sha256};
        let n = 5000;
        let json = format!(r#"{{"Records":[{}]}}"#, vec!["1"; n].join(","));
        let limits = Limits { max_quarantine_bytes: 10_000, ..Limits::default() };
        let sink = MemorySink::default();
        let report = convert("k.json", json.as_bytes(), &sink, &Options { limits, ..Options::default() }).unwrap();
        assert!(report.reconciles(), "{report:?}");
        assert_eq!((report.records, report.quarantined, report.rows), (n as u64, n as u64, 0));
        let path = report.quarantine_path.clone().unwrap();
        let body = sink.get(&path).unwrap();
        let lines = quarantine_lines(&sink);
        let last = lines.last().unwrap();
        let copied = lines.len() as u64 - 1;
        assert!(copied > 10, "some lines are copied before the cap: {copied}");
        let copied_bytes = body.len() - serde_json::to_vec(last).unwrap().len() - 1;
        assert!(copied_bytes <= 10_000, "{copied_bytes} bytes of lines under a 10000-byte cap");
        assert_eq!(last["omitted"], n as u64 - copied, "{last}");
        assert_eq!(report.quarantined_by_reference, n as u64 - copied);
        assert_eq!(last["record_index"], copied, "the first record not copied: {last}");
        // Records are `1` at offsets 12, 14, 16, …: the first omitted one's offset is its own.
        assert_eq!(last["offset"], 12 + 2 * copied, "{last}");
        assert_eq!(last["source_sha256"], hex(&Sha256::digest(json.as_bytes())), "{last}");
        assert!(last["reason"].as_str().unwrap().contains("limit of 10000 bytes"), "{last}");
        // Under the cap, nothing changes: every record has its own line.
        let sink = MemorySink::default();
        let report = convert("k.json", json.as_bytes(), &sink, &Options::default()).unwrap();
        assert_eq!((quarantine_lines(&sink).len(), report.quarantined_by_reference), (n, 0));
    }

    /// A source whose plain names are taken gets names of its own, derived from its full
    /// identity, for every output and quarantine object; without it the names stay plain.
    #[test]
    fn a_distinct_source_gets_names_of_its_own() {
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/f.json.gz";
        let json = r#"{"Records":[{"eventTime":"2024-01-01T00:00:00Z"},{"eventName":"NoTime"}]}"#;
        let plain = ObjectKey::parse(key).output_stem();
        let names = |distinct: Option<&[u8]>| {
            let sink = MemorySink::default();
            let source = Source { key, distinct, ..Source::default() };
            let report = convert_source(source, json.as_bytes(), &sink, &Options::default()).unwrap();
            assert!(report.reconciles(), "{report:?}");
            sink.paths()
        };
        let a = names(None);
        let b = names(Some(b"s3://one/p/AWSLogs/..."));
        let c = names(Some(b"s3://two/p/AWSLogs/..."));
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(a.iter().all(|p| p.contains(&format!("/{plain}."))), "{a:?}");
        for other in [&b, &c] {
            assert_eq!(other.len(), 2);
            assert!(other.iter().all(|p| p.contains(&format!("/{plain}-d")) && !a.contains(p)), "{other:?}");
        }
        assert!(b.iter().all(|p| !c.contains(p)), "{b:?} {c:?}");
        assert_eq!(names(Some(b"s3://one/p/AWSLogs/...")), b, "deterministic");
    }

    /// A digest bomb (a small gzip inflating past the limit) is quarantined as unreadable — a
    /// permanent verdict, not an out-of-memory retried forever.
    #[test]
    fn a_digest_bomb_is_quarantined_not_read() {
        use crate::digest_table::tests::KEY;
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..8 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        let limits = Limits { max_digest_bytes: 4 << 20, ..Limits::default() };
        let sink = MemorySink::default();
        let report = convert(KEY, &gz[..], &sink, &Options { limits, ..Options::default() }).unwrap();
        let failure = report.failure.expect("quarantined");
        assert!(failure.reason.contains("more than 4194304 bytes once inflated"), "{failure:?}");
        assert!(report.outputs.is_empty());
        assert_eq!(sink.paths(), [failure.quarantine_path]);
    }

    #[test]
    fn reports_the_sha256_of_the_decompressed_content() {
        use sha2::{Digest as _, Sha256};
        use std::io::Write as _;
        let want = hex(&Sha256::digest(FILE.as_bytes()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(FILE.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        // Two gzip members, as concatenated deliveries have: still the hash of all the JSON.
        let (a, b) = FILE.as_bytes().split_at(100);
        let two = gzip_members(&[a, b]);
        for (name, input) in [("plain", FILE.as_bytes().to_vec()), ("gzip", gz), ("two members", two)] {
            let report = convert("k.json", &input[..], &MemorySink::default(), &Options::default()).unwrap();
            assert_eq!(report.sha256.as_deref(), Some(want.as_str()), "{name}");
        }
        let broken = convert("k.json", &br#"{"Records":[{"a":1}"#[..], &MemorySink::default(), &Options::default());
        assert!(broken.unwrap().failure.is_some());
    }

    #[test]
    fn a_digest_becomes_one_row_of_digests_named_like_the_other_outputs() {
        use crate::digest_table::tests::{DIGEST, KEY};
        let sink = MemorySink::default();
        let signature = crate::digest_table::Signature { signature: Some("ab12"), algorithm: Some("SHA256withRSA") };
        let source = Source { key: KEY, signature, ..Source::default() };
        let report = convert_source(source, DIGEST.as_bytes(), &sink, &Options::default()).unwrap();
        assert_eq!((report.skipped.as_deref(), report.failure.as_ref()), (None, None), "{report:?}");
        assert_eq!((report.records, report.rows), (0, 0), "no CloudTrail records");
        assert!(report.reconciles());
        assert_eq!(report.outputs.len(), 1);
        let out = &report.outputs[0];
        assert_eq!((out.dataset, out.rows), (Dataset::Digests, 1));
        // Partitioned by digestEndTime, named by the source key's stem like events outputs.
        let stem = ObjectKey::parse(KEY).output_stem();
        let want = format!("digests/account=111122223333/region=us-east-2/date=2015-08-17/{stem}.parquet");
        assert_eq!(out.path, want);
        assert_eq!(sink.paths(), vec![want.clone()]);
        // Deterministic: the same digest again gives the same object, byte for byte.
        let first = sink.get(&want).unwrap();
        let again = MemorySink::default();
        convert_source(source, DIGEST.as_bytes(), &again, &Options::default()).unwrap();
        assert_eq!(again.get(&want).unwrap(), first);
        assert_eq!(report.sha256.as_deref(), Some(hex(&crate::digest::sha256(DIGEST.as_bytes())).as_str()));
    }

    #[test]
    fn a_digest_that_does_not_parse_is_quarantined_with_its_reason() {
        use crate::digest_table::tests::KEY;
        let cases: [(&str, &[u8], &str); 3] = [
            ("missing fields", br#"{"awsAccountId":"111122223333","logFiles":[]}"#, "malformed_digest"),
            ("not json", b"{\"awsAccountId\":", "malformed_digest"),
            ("corrupt gzip", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3], "unreadable"),
        ];
        for (name, input, class) in cases {
            let sink = MemorySink::default();
            let report = convert(KEY, input, &sink, &Options::default()).unwrap();
            let failure = report.failure.unwrap_or_else(|| panic!("{name}: not quarantined"));
            assert_eq!(failure.class, class, "{name}: {failure:?}");
            assert!(report.outputs.is_empty(), "{name}");
            assert_eq!(sink.paths(), vec![failure.quarantine_path.clone()], "{name}: nothing but the marker");
            let marker: serde_json::Value =
                serde_json::from_slice(&sink.get(&failure.quarantine_path).unwrap()).unwrap();
            assert_eq!(marker["source_key"], KEY, "{name}");
            assert!(!marker["reason"].as_str().unwrap().is_empty(), "{name}");
        }
    }

    /// A log file larger than [`READ_AHEAD_AFTER`] and its many-batch outputs: ~6 MB of JSON
    /// spread over a few partitions, as gzip in two members.
    fn large_log_file() -> (String, Vec<u8>) {
        let records = parquetrail_synth::sample_records_json(21, 5000);
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        assert!(json.len() as u64 > READ_AHEAD_AFTER + (1 << 20), "{} bytes", json.len());
        let (a, b) = json.as_bytes().split_at(json.len() / 3);
        let gz = gzip_members(&[a, b]);
        (json, gz)
    }

    /// Each part compressed as a gzip member of its own, concatenated.
    fn gzip_members(parts: &[&[u8]]) -> Vec<u8> {
        use std::io::Write as _;
        let mut gz = Vec::new();
        for part in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        gz
    }

    /// Past the first few MB a gzip file is inflated on a thread of its own and its large outputs
    /// are encoded on others: the outputs are byte-identical to those of the same content read as
    /// plain JSON (inflated on the converting thread, no read-ahead), with the same hash.
    #[test]
    fn large_files_convert_the_same_with_read_ahead() {
        let (json, gz) = large_log_file();
        let options =
            Options { writer: WriterSettings { batch_rows: 512, ..WriterSettings::default() }, ..Default::default() };
        let (plain_sink, gz_sink) = (MemorySink::default(), MemorySink::default());
        let plain = convert("k.json", json.as_bytes(), &plain_sink, &options).unwrap();
        let gzip = convert("k.json", &gz[..], &gz_sink, &options).unwrap();
        assert_eq!(gzip.records, 5000);
        assert!(gzip.reconciles(), "{gzip:?}");
        assert_eq!((gzip.rows, gzip.json_bytes, &gzip.sha256), (plain.rows, plain.json_bytes, &plain.sha256));
        assert_eq!(gzip.outputs, plain.outputs);
        assert_eq!(gz_sink.files(), plain_sink.files());
    }

    /// Converts `input` with every record parsed on the converting thread, then with records
    /// parsed on worker threads: from the first byte in chunks of a few records (so chunks of
    /// one output, of quarantined records and of refused partitions meet at every boundary), with
    /// one to three workers, and past the default threshold as large files are. The reports and
    /// every object written, byte for byte, are the same each time. Returns the serial report.
    fn assert_parallel_parse_changes_nothing(key: &str, input: &[u8], options: &Options) -> FileReport {
        let with = |parse_threads: ParseThreads| {
            let sink = MemorySink::default();
            let report = convert(key, input, &sink, &Options { parse_threads, ..options.clone() }).unwrap();
            assert!(report.reconciles(), "{parse_threads:?}: {report:?}");
            (report, sink.files())
        };
        let (serial, files) = with(ParseThreads { after_bytes: u64::MAX, ..ParseThreads::default() });
        for parse_threads in [
            ParseThreads { after_bytes: 0, workers: 1, chunk_bytes: 5000 },
            ParseThreads { after_bytes: 0, workers: 2, chunk_bytes: 2000 },
            ParseThreads { after_bytes: 0, workers: 3, chunk_bytes: 64 << 10 },
            ParseThreads { workers: 2, ..ParseThreads::default() },
        ] {
            let (report, parallel) = with(parse_threads);
            assert_eq!(report, serial, "{parse_threads:?}");
            assert_eq!(parallel.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>(), "{parse_threads:?}");
            for (path, body) in &files {
                assert!(parallel[path] == *body, "{parse_threads:?}: {path} differs");
            }
        }
        serial
    }

    /// A large file, plain and as gzip (inflated on its own thread while records are parsed on
    /// others), in batches smaller than the chunks and with the default ones.
    #[test]
    fn parallel_parse_writes_the_same_outputs() {
        let (json, gz) = large_log_file();
        for batch_rows in [512, WriterSettings::default().batch_rows] {
            let writer = WriterSettings { batch_rows, ..WriterSettings::default() };
            let options = Options { writer, ..Options::default() };
            for input in [json.as_bytes(), &gz[..]] {
                let report = assert_parallel_parse_changes_nothing("k.json", input, &options);
                assert_eq!((report.records, report.rows, report.quarantined), (5000, 5000, 0));
                assert!(report.outputs.len() > 1, "{:?}", report.outputs);
            }
        }
    }

    /// Records that are quarantined, each for its own reason (not JSON, no object, no time, a
    /// partition value too long, larger than the record limit, a key repeated), mixed among good
    /// ones: the same lines in the same order; and past a quarantine cap reached halfway, the
    /// same last line standing for the rest.
    #[test]
    fn parallel_parse_quarantines_the_same_records() {
        let mut records = parquetrail_synth::sample_records_json(31, 3000);
        let long_account = "1".repeat(MAX_PARTITION_VALUE + 1);
        let mut bad = 0;
        for (i, record) in records.iter_mut().enumerate() {
            let replacement = match i % 61 {
                3 => r#"{"eventTime":"yesterday"}"#.to_string(),
                17 => "[1,2]".to_string(),
                29 => r#"{"eventName":"NoTime"}"#.to_string(),
                41 => format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","recipientAccountId":"{long_account}"}}"#),
                53 => format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","pad":"{}"}}"#, "x".repeat(9000)),
                _ => continue,
            };
            *record = replacement;
            bad += 1;
        }
        records[7] = records[7].replacen(r#""eventName":"#, r#""eventName":"Twice","eventName":"#, 1);
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let limits = Limits { max_record_bytes: 8192, ..Limits::default() };
        let options = Options { limits, ..Options::default() };
        let report = assert_parallel_parse_changes_nothing("k.json", json.as_bytes(), &options);
        assert_eq!((report.records, report.quarantined, report.quarantined_by_reference), (3000, bad, 0));
        assert_eq!(report.duplicate_keys, 1, "{report:?}");

        let limits = Limits { max_quarantine_bytes: 20_000, ..limits };
        let options = Options { limits, ..Options::default() };
        let report = assert_parallel_parse_changes_nothing("k.json", json.as_bytes(), &options);
        assert_eq!(report.quarantined, bad);
        assert!(report.quarantined_by_reference > 0 && report.quarantined_by_reference < bad, "{report:?}");
    }

    /// A file that reaches its partition limit partway, with partitions holding only filtered
    /// records (which open none): the same records refused, and the same partitions written.
    #[test]
    fn parallel_parse_refuses_the_same_partitions() {
        let mut records = parquetrail_synth::sample_records(37, 3000);
        for (i, record) in records.iter_mut().enumerate() {
            // One account and Region; a new day every 250 records, and one record in 40 of an
            // excluded source on a day of its own.
            let day = if i % 40 == 39 { 20 + i % 7 } else { i / 250 };
            record["eventTime"] = format!("2024-01-{:02}T00:00:00Z", day + 1).into();
            record["recipientAccountId"] = "111122223333".into();
            record["awsRegion"] = "us-east-1".into();
            if i % 40 == 39 {
                record["eventSource"] = "excluded.example".into();
            }
        }
        let texts: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let json = format!(r#"{{"Records":[{}]}}"#, texts.join(","));
        let filter = EventFilter { exclude_sources: ["excluded.example".to_string()].into(), ..EventFilter::default() };
        let limits = Limits { max_partitions: 5, ..Limits::default() };
        let options = Options { filter, limits, ..Options::default() };
        let report = assert_parallel_parse_changes_nothing("k.json", json.as_bytes(), &options);
        // Days 1–5 open at records 0, 250, …, 1000; of the 1250 records before day 6, the 31 of
        // the excluded source are filtered, except the 6 from record 1000 on, which would open a
        // sixth partition. Every record from 1250 on is refused.
        let dates: Vec<&str> = report.outputs.iter().map(|o| o.date.as_str()).collect();
        assert_eq!(dates, ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]);
        assert_eq!((report.rows, report.filtered, report.quarantined), (1250 - 31, 31 - 6, 1750 + 6), "{report:?}");
        let lines = quarantine_lines_of(&json, &options);
        assert!(lines.iter().all(|l| l["reason"].as_str().unwrap().contains("already writes 5 partitions")));
    }

    /// The quarantine lines of converting `json` with `options` (serially).
    fn quarantine_lines_of(json: &str, options: &Options) -> Vec<serde_json::Value> {
        let sink = MemorySink::default();
        convert("k.json", json.as_bytes(), &sink, options).unwrap();
        quarantine_lines(&sink)
    }

    /// Event filters and shaping (drops and redactions, counted per rule): the same counts and
    /// the same rows.
    #[test]
    fn parallel_parse_filters_and_shapes_the_same() {
        let (json, _) = large_log_file();
        let shaping = crate::shaping::Shaping {
            sets: vec![
                crate::shaping::Shaping::builtin("noise").unwrap(),
                crate::shaping::Shaping::builtin("secrets").unwrap(),
            ],
        };
        let filter = EventFilter { read_write: ReadWrite::WriteOnly, ..EventFilter::default() };
        for (filter, shaping) in [(EventFilter::default(), shaping.clone()), (filter, shaping)] {
            let options = Options { filter, shaping, ..Options::default() };
            let report = assert_parallel_parse_changes_nothing("k.json", json.as_bytes(), &options);
            assert!(report.filtered > 0 && !report.shaped.is_empty(), "{report:?}");
        }
    }

    /// A gzip file cut short after the read-ahead began is quarantined as truncated, as it is when
    /// cut early; and a sink that fails while the inflate thread is ahead stops the conversion
    /// with the sink's error instead of waiting on that thread forever.
    #[test]
    fn read_ahead_reports_truncation_and_stops_on_sink_errors() {
        let (_, gz) = large_log_file();
        let cut = &gz[..gz.len() * 9 / 10];
        let sink = MemorySink::default();
        let report = convert("k.json.gz", cut, &sink, &Options::default()).unwrap();
        let failure = report.failure.as_ref().expect("quarantined");
        assert!(report.outputs.is_empty() && report.rows == 0, "{report:?}");
        assert!(report.json_bytes > READ_AHEAD_AFTER, "cut after the read-ahead began: {report:?}");
        assert_eq!(failure.class, "unreadable", "{failure:?}");
        assert!(failure.reason.contains("incomplete deflate stream"), "{failure:?}");
        assert!(sink.paths().iter().all(|p| !p.ends_with(".parquet")), "{:?}", sink.paths());

        /// Refuses to create the outputs of one partition.
        struct Refusing;
        impl Sink for Refusing {
            fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>> {
                if path.contains("date=2030-01-01") {
                    return Err(io::Error::other("quota exceeded"));
                }
                MemorySink::default().create(path)
            }
        }
        // The one record of that partition comes after the read-ahead began, with more than the
        // channel holds after it: the inflate thread is blocked on a full channel when the sink fails.
        let mut records = parquetrail_synth::sample_records_json(21, 15_000);
        let mut at = 0;
        let mut bytes = 0;
        while bytes < READ_AHEAD_AFTER as usize + (256 << 10) {
            bytes += records[at].len() + 1;
            at += 1;
        }
        records[at] = records[at].replacen(r#""eventTime":""#, r#""eventTime":"2030-01-01T00:00:00Z","x":""#, 1);
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let ahead = crate::log_file::READ_AHEAD_CHUNKS * crate::log_file::CHUNK;
        assert!(json.len() > bytes + ahead + (2 << 20), "{} bytes after the record", json.len() - bytes);
        let gz = gzip_members(&[json.as_bytes()]);
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(convert("k.json.gz", &gz[..], &Refusing, &Options::default()));
        });
        let outcome = wait.recv_timeout(std::time::Duration::from_secs(60)).expect("the conversion returns");
        let error = outcome.expect_err("the sink failed").to_string();
        assert!(error.contains("quota exceeded"), "{error}");
    }

    /// A sink that refuses an output for good (a name the file system or S3 will not take) fails
    /// the conversion with a permanent error, whether it refuses at create or in a write of the
    /// Parquet writer (which sees only a copy of the sink's error, under a kind that says
    /// nothing); a sink that fails for now (a full disk) leaves it retryable.
    #[test]
    fn a_sink_that_refuses_for_good_fails_permanently() {
        /// Fails every output: at create, or on its first write, with an error of `kind` wrapped
        /// the way an adapter wraps its own (under `Other`).
        struct Failing {
            kind: io::ErrorKind,
            at_create: bool,
        }
        struct FailingFile(io::ErrorKind);
        impl Write for FailingFile {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other(io::Error::new(self.0, "refused")))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl SinkFile for FailingFile {
            fn commit(self: Box<Self>) -> io::Result<()> {
                Ok(())
            }
        }
        impl Sink for Failing {
            fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>> {
                if self.at_create {
                    return Err(io::Error::new(self.kind, format!("{path}: refused")));
                }
                Ok(Box::new(FailingFile(self.kind)))
            }
        }
        for (kind, retryable) in [
            (io::ErrorKind::InvalidFilename, false),
            (io::ErrorKind::InvalidInput, false),
            (io::ErrorKind::StorageFull, true),
            (io::ErrorKind::Other, true),
        ] {
            for at_create in [true, false] {
                let sink = Failing { kind, at_create };
                let error = convert("k.json", FILE.as_bytes(), &sink, &Options::default()).expect_err("the sink fails");
                assert!(matches!(error, Error::Write { .. }), "{kind:?} at_create={at_create}: {error:?}");
                assert_eq!(error.retryable(), retryable, "{kind:?} at_create={at_create}: {error}");
                assert!(error.to_string().contains("refused"), "{error}");
            }
        }
    }
}
