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
pub fn committed_rows<R: parquet::file::reader::ChunkReader + 'static>(reader: R, path: &str) -> Result<u64> {
    let reader = parquet::file::reader::SerializedFileReader::new(reader)
        .map_err(|e| Error::Archive { path: path.to_string(), source: e.into() })?;
    let rows = parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows();
    Ok(u64::try_from(rows).unwrap_or(0))
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
        state.read_all(guard.0, scope)
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

enum ReadFault {
    Source(ReadError),
    Sink(Error),
}

struct FileState<'s> {
    object: &'s ObjectKey<'s>,
    stem: &'s str,
    sink: &'s dyn Sink,
    options: &'s Options,
    outputs: BTreeMap<(Dataset, PartitionKey), ParquetOutput>,
    quarantine: Option<(String, Box<dyn SinkFile>)>,
    /// Bytes written to `quarantine` so far, and the records past the cap.
    quarantine_bytes: u64,
    omitted: Option<Omitted>,
    records: u64,
    quarantined: u64,
    filtered: u64,
    duplicate_keys: u64,
    filter_all: bool,
    shaping_none: bool,
    shaped: crate::shaping::RuleCounts,
}

impl<'s> FileState<'s> {
    fn new(object: &'s ObjectKey<'s>, stem: &'s str, sink: &'s dyn Sink, options: &'s Options) -> Self {
        FileState {
            object,
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
            filter_all: options.filter.keeps_all(),
            shaping_none: options.shaping.is_empty(),
            shaped: Default::default(),
        }
    }

    fn key(&self) -> &str {
        self.object.key
    }

    /// Reads every record; past the first [`READ_AHEAD_AFTER`] bytes, decompression moves to a
    /// thread of `scope`, so a large file is inflated while its records are parsed.
    fn read_all<'r: 'scope, 'scope>(
        &mut self,
        reader: &mut RecordReader<'r>,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> std::result::Result<(), ReadFault> {
        loop {
            if reader.offset() >= READ_AHEAD_AFTER {
                reader.read_ahead(scope);
            }
            let Some(raw) = reader.next_record().map_err(ReadFault::Source)? else { break };
            self.records += 1;
            if let Some(big) = raw.oversized {
                let limit = self.options.limits.max_record_bytes;
                let reason = format!("record of {} bytes, larger than the limit of {limit} bytes", big.len);
                let reference = Reference { length: big.len, sha256: hex(&big.sha256) };
                self.quarantine_record(None, Some(reference), raw.index, raw.offset, reason)
                    .map_err(ReadFault::Sink)?;
                continue;
            }
            let placed = Row::parse(raw.text, self.object.key, raw.index).and_then(|row| {
                let time = row.event_time()?;
                Ok((row, time))
            });
            let placed = placed.map_err(|e| e.to_string()).and_then(|(row, time)| {
                let slot = self.slot(&row, time);
                self.check_room(&slot)?;
                Ok((row, slot))
            });
            if let Ok((row, _)) = &placed {
                self.duplicate_keys += u64::from(row.duplicate_keys > 0);
            }
            match placed {
                Ok((row, _)) if !self.filter_all && !self.options.filter.keeps(&row) => self.filtered += 1,
                Ok((mut row, slot)) => {
                    if !self.shaping_none {
                        let outcome = self.options.shaping.apply(&mut row);
                        for (rule, n) in outcome.redacted {
                            *self.shaped.entry(rule).or_default() += u64::from(n);
                        }
                        if let Some(rule) = outcome.dropped {
                            *self.shaped.entry(rule).or_default() += 1;
                            self.filtered += 1;
                            continue;
                        }
                    }
                    self.write_row(&row, slot).map_err(ReadFault::Sink)?
                }
                Err(reason) => self
                    .quarantine_record(Some(raw.text), None, raw.index, raw.offset, reason)
                    .map_err(ReadFault::Sink)?,
            }
        }
        Ok(())
    }

    /// The output a row goes to: its dataset and its partition.
    fn slot(&self, row: &Row<'_>, time: chrono::DateTime<chrono::Utc>) -> (Dataset, PartitionKey) {
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

    /// Whether a row may go to `slot`: its partition values must fit a file name, and a new
    /// partition must stay within [`Limits::max_partitions`]; the reason to quarantine it if not.
    fn check_room(&self, slot: &(Dataset, PartitionKey)) -> std::result::Result<(), String> {
        if self.outputs.contains_key(slot) {
            return Ok(());
        }
        let (account, region) = (escape_value(&slot.1.account), escape_value(&slot.1.region));
        if account.len() > MAX_PARTITION_VALUE || region.len() > MAX_PARTITION_VALUE {
            return Err(format!(
                "the account or Region value cannot name a partition: escaped, it is {} / {} bytes long (at most {MAX_PARTITION_VALUE})",
                account.len(),
                region.len()
            ));
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

    fn write_row(&mut self, row: &Row<'_>, slot: (Dataset, PartitionKey)) -> Result<()> {
        if !self.outputs.contains_key(&slot) {
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
        let output = self.outputs.get_mut(&slot).expect("inserted above");
        output.push(row).map_err(|e| e.into_error(self.object.key, &slot.1.path()))
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
            source_key: self.object.key,
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
        let (path, file) = self.quarantine.as_mut().expect("created above");
        file.write_all(&bytes).map_err(|source| Error::Write {
            key: self.object.key.into(),
            path: path.clone(),
            source,
        })
    }

    fn commit(mut self, report: &mut FileReport) -> Result<()> {
        let key = self.object.key.to_string();
        for ((dataset, partition), output) in self.outputs {
            let path = format!("{}/{}/{}.parquet", self.options.layout.prefix(dataset), partition.path(), self.stem);
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
                source_key: self.object.key,
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
        let mut records = parquetrail_synth::sample_records_json(21, 5000);
        let mut at = 0;
        let mut bytes = 0;
        while bytes < READ_AHEAD_AFTER as usize + (256 << 10) {
            bytes += records[at].len() + 1;
            at += 1;
        }
        records[at] = records[at].replacen(r#""eventTime":""#, r#""eventTime":"2030-01-01T00:00:00Z","x":""#, 1);
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        assert!(json.len() > bytes + (2 << 20));
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
