//! Compaction: the many small Parquet files of one partition rewritten as a few large ones,
//! sorted by time and without duplicate records.
//!
//! Converting each delivery on its own leaves a partition (`events/account=…/region=…/date=…/`)
//! with hundreds of files of a few KB: query engines pay per file (a request, a footer, a row
//! group), so a day's partition is cheaper to read as one or two files of about 128 MiB. Which
//! files to compact, and fetching and deleting them, is the caller's business (an async
//! orchestrator); [`compact`] only turns the bytes of one partition's files into new files.
//!
//! Guarantees, for every call:
//! - **Same schema, same writer.** Every input must have exactly the dataset's schema (a file that
//!   does not is an error naming it and the first differing column), and outputs are written with
//!   the run's [`WriterSettings`], so a compacted file and a per-delivery file are interchangeable.
//! - **Sorted.** Rows are ordered by the dataset's time column (`eventtime_ts`, or
//!   `digestendtime_ts` for digests), ties broken by the rest of the row's content, so range
//!   filters skip row groups and files. The sort is global when the partition fits in
//!   [`CompactOptions::memory_budget`]; otherwise the rows are sorted one budget-sized chunk at a
//!   time (each chunk sorted, chunks in input order).
//! - **Duplicates removed.** CloudTrail delivers events *at least* once, so the same event can
//!   reach the archive in two delivery files. Rows whose content is identical apart from where they
//!   were read ([lineage columns](lineage_columns)) are written once; rows that merely share an
//!   `eventID` but differ in anything else are all kept. Duplicates are found across the whole
//!   call, not only within a chunk.
//! - **Deterministic.** The same inputs in the same order, with the same options, give
//!   byte-identical outputs, so a compaction interrupted by a crash can simply be run again (the
//!   caller names outputs from a hash of the input list). When the partition fits in the memory
//!   budget, the outputs do not even depend on the order of the inputs.
//! - **Reconciled.** `rows_in == rows_out + duplicates_removed` ([`CompactReport::reconciles`]).
//!
//! Outputs are committed to the sink one by one, as each is closed. If the call fails, some outputs
//! may already be visible: the caller must retire the inputs only after `Ok` (and not count or
//! publish outputs of a failed call); a rerun overwrites them with the same bytes.
//!
//! ```
//! use parquetrail_core::compact::{CompactOptions, compact};
//! use parquetrail_core::convert::{Dataset, Options, convert};
//! use parquetrail_core::sink::MemorySink;
//! let json = br#"{"Records":[{"eventTime":"2024-03-01T12:00:00Z","eventID":"e1",
//!   "awsRegion":"us-east-1","recipientAccountId":"123456789012"}]}"#;
//! let deliveries = MemorySink::default();
//! for key in ["AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/a.json.gz",
//!             "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/b.json.gz"] {
//!     convert(key, &json[..], &deliveries, &Options::default()).unwrap();
//! }
//! let dir = "events/account=123456789012/region=us-east-1/date=2024-03-01";
//! let inputs = deliveries.files().into_iter().map(|(name, data)| Ok((name, bytes::Bytes::from(data))));
//! let out = MemorySink::default();
//! let report = compact(Dataset::Events, inputs, &out, dir, "compacted", &CompactOptions::default()).unwrap();
//! assert_eq!((report.rows_in, report.rows_out, report.duplicates_removed), (2, 1, 1));
//! assert_eq!(out.paths(), [format!("{dir}/compacted-0000.parquet")]);
//! ```

use std::collections::HashSet;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, FieldRef, Fields, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, parquet_to_arrow_schema};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::SchemaDescriptor;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::convert::Dataset;
use crate::encode::{Counting, SinkFault, WriterSettings};
use crate::lookup::index::{FileIndex, FileIndexer};
use crate::sink::Sink;
use crate::{DataError, Error, Result};

/// How a partition is compacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// Target bytes per output file (default 128 MiB): a file is closed once its estimated size
    /// reaches it, checked after every `settings.batch_rows` rows, so outputs end near it and the
    /// last one is smaller. Until a file's first row group is written its size can only be
    /// estimated from mostly uncompressed pages, so a target below one row group
    /// (`settings.row_group_rows` rows) gives files smaller than asked.
    pub target_bytes: u64,
    /// Upper bound on the decoded rows (Arrow arrays plus their sort keys) held at once for
    /// sorting (default 256 MiB). One decoded batch of `settings.batch_rows` rows may go over it.
    /// Partitions larger than this are sorted chunk by chunk (see the module docs). Not counted:
    /// the fingerprints that find duplicates across chunks, about 32 bytes per distinct row.
    pub memory_budget: usize,
    /// The writer settings of the run; `batch_rows` also sizes the batches read and written.
    pub settings: WriterSettings,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_bytes: 128 * 1024 * 1024,
            memory_budget: 256 * 1024 * 1024,
            settings: Default::default(),
        }
    }
}

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Input files read.
    pub inputs: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows not written because an identical record (lineage aside) was already written.
    pub duplicates_removed: u64,
    /// The files written, in order (their rows are in sort order across files too when the
    /// partition fit in the memory budget).
    pub outputs: Vec<CompactedFile>,
    /// The lookup index of the outputs ([`crate::lookup::index`]), one object per part, to be
    /// stored beside them.
    #[serde(skip)]
    pub lookup_indexes: Vec<(crate::lookup::index::IndexPart, Vec<u8>)>,
}

impl CompactReport {
    /// `rows_in == rows_out + duplicates_removed`, and `rows_out` is the sum of the outputs' rows.
    pub fn reconciles(&self) -> bool {
        self.rows_in == self.rows_out + self.duplicates_removed
            && self.rows_out == self.outputs.iter().map(|o| o.rows).sum::<u64>()
    }
}

/// One output file, committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactedFile {
    /// Path in the sink: `<out_dir>/<stem>-<NNNN>.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// The columns that say where a row was read from rather than what the record says: the
/// delivery object's key, and for log records the position in its `Records` array. A record
/// CloudTrail delivered twice differs from its copy there and nowhere else, so these are left out
/// of a row's identity when duplicates are found.
///
/// Every other column is identity, including those derived from the object rather than the
/// record: a digest's `signature` (S3 metadata, absent for a local copy) and `trail`/`home_region`
/// (parsed from the key). Two rows differing there are not certainly the same thing, and keeping
/// a duplicate costs a row while dropping a distinct row loses data. `eventtime_ts` and
/// `unmapped` are functions of the record's own text, so they agree between copies anyway.
pub fn lineage_columns(dataset: Dataset) -> &'static [&'static str] {
    match dataset {
        Dataset::Events | Dataset::Insights => &["source_key", "source_index"],
        Dataset::Digests => &["source_key"],
    }
}

/// The column a dataset's rows are sorted by.
pub fn time_column(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::Events | Dataset::Insights => "eventtime_ts",
        Dataset::Digests => "digestendtime_ts",
    }
}

fn dataset_schema(dataset: Dataset) -> SchemaRef {
    match dataset {
        Dataset::Events | Dataset::Insights => crate::schema::schema(),
        Dataset::Digests => crate::digest_table::schema(),
    }
}

/// Compacts the files of one partition of `dataset` into `<out_dir>/<stem>-<NNNN>.parquet`
/// (`NNNN` counting from `0000`), written through `sink` and committed one by one.
///
/// `inputs` yields each input's name (used in errors only) and bytes, in the order the caller
/// chose: pulled one at a time, so only one input's bytes need be fetched at once. An `Err` from
/// it stops the compaction and is returned as is.
///
/// Errors: [`Error::Archive`] naming the input that cannot be read or whose schema is not the
/// dataset's (with the first differing column); [`Error::Write`] / [`Error::Encode`] naming the
/// output (their `key` is `out_dir`, the partition being compacted). Zero inputs, or inputs
/// without rows, write nothing.
pub fn compact(
    dataset: Dataset,
    inputs: impl IntoIterator<Item = Result<(String, Bytes)>>,
    sink: &dyn Sink,
    out_dir: &str,
    stem: &str,
    options: &CompactOptions,
) -> Result<CompactReport> {
    let table = Table::new(dataset, out_dir)?;
    let mut report = CompactReport::default();
    let mut chunk = Chunk::default();
    let mut seen = HashSet::new();
    let mut output = Outputs::new(&table, sink, out_dir, stem, options);
    for input in inputs {
        let (name, data) = input?;
        report.inputs += 1;
        for batch in table.read(&name, data, options.settings.batch_rows)? {
            let batch = batch.map_err(|e| archive_error(&name, e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            report.rows_in += batch.num_rows() as u64;
            let (identity, lineage) = table.keys(&batch).map_err(|e| archive_error(&name, e))?;
            let size = batch.get_array_memory_size() + identity.size() + lineage.size();
            if !chunk.batches.is_empty() && chunk.bytes + size > options.memory_budget {
                report.duplicates_removed += std::mem::take(&mut chunk).write(&mut seen, &mut output)?;
            }
            chunk.push(batch, identity, lineage, size);
        }
    }
    report.duplicates_removed += chunk.write_last(&mut seen, &mut output)?;
    let (outputs, index) = output.finish()?;
    report.outputs = outputs;
    report.lookup_indexes = crate::lookup::index::encode_parts(&index);
    report.rows_out = report.outputs.iter().map(|o| o.rows).sum();
    debug_assert!(report.reconciles(), "{report:?}");
    Ok(report)
}

fn archive_error(path: &str, e: impl Into<DataError>) -> Error {
    Error::Archive { path: path.to_string(), source: e.into() }
}

/// A dataset's table as the compactor sees it: its schema, and how a row's sort and identity keys
/// are made.
struct Table {
    schema: SchemaRef,
    /// The Parquet schema of the outputs (and so of every valid input).
    parquet: SchemaDescriptor,
    /// The Arrow schema a reader infers from that Parquet schema, to compare inputs against.
    inferred: SchemaRef,
    /// Column indices of the identity: the time column first (so keys sort by time), then every
    /// other non-lineage column in schema order.
    identity: Vec<usize>,
    lineage: Vec<usize>,
    identity_rows: RowConverter,
    lineage_rows: RowConverter,
}

impl Table {
    fn new(dataset: Dataset, out_dir: &str) -> Result<Table> {
        let schema = dataset_schema(dataset);
        let setup = |source: DataError| Error::Encode { key: out_dir.into(), path: out_dir.into(), source };
        let parquet = ArrowSchemaConverter::new().convert(&schema).map_err(|e| setup(e.into()))?;
        let inferred = parquet_to_arrow_schema(&parquet, None).map_err(|e| setup(e.into()))?.into();
        let index = |name: &str| schema.index_of(name).map_err(|e| setup(e.into()));
        let lineage: Vec<usize> = lineage_columns(dataset).iter().map(|c| index(c)).collect::<Result<_>>()?;
        let time = index(time_column(dataset))?;
        let identity: Vec<usize> = std::iter::once(time)
            .chain((0..schema.fields().len()).filter(|i| *i != time && !lineage.contains(i)))
            .collect();
        let converter = |columns: &[usize]| {
            let fields = columns.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
            RowConverter::new(fields).map_err(|e| setup(e.into()))
        };
        let identity_rows = converter(&identity)?;
        let lineage_rows = converter(&lineage)?;
        Ok(Table { schema, parquet, inferred, identity, lineage, identity_rows, lineage_rows })
    }

    /// A reader of one input's batches, after checking its schema is the dataset's.
    fn read(
        &self,
        name: &str,
        data: Bytes,
        batch_rows: usize,
    ) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
        // Our files carry no embedded Arrow schema; ignoring one keeps foreign hints (views,
        // large strings) from passing for a difference that is not in the Parquet file.
        let plain = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let metadata = ArrowReaderMetadata::load(&data, plain).map_err(|e| archive_error(name, e))?;
        if let Some(difference) = first_difference(self.inferred.fields(), metadata.schema().fields(), "") {
            return Err(archive_error(name, DataError::model(format!("not the dataset's schema: {difference}"))));
        }
        // Read as the dataset's own Arrow schema (map entry names, nullability), so batches can be
        // written as they are.
        let typed = ArrowReaderOptions::new().with_schema(self.schema.clone());
        let metadata =
            ArrowReaderMetadata::try_new(metadata.metadata().clone(), typed).map_err(|e| archive_error(name, e))?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(data, metadata)
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| archive_error(name, e))
    }

    /// The identity and lineage keys of every row of `batch`, as comparable bytes.
    fn keys(&self, batch: &RecordBatch) -> std::result::Result<(Rows, Rows), arrow_schema::ArrowError> {
        let columns =
            |indices: &[usize]| -> Vec<ArrayRef> { indices.iter().map(|&i| batch.column(i).clone()).collect() };
        let identity = self.identity_rows.convert_columns(&columns(&self.identity))?;
        let lineage = self.lineage_rows.convert_columns(&columns(&self.lineage))?;
        Ok((identity, lineage))
    }
}

/// Where the fields of an input first differ from the expected ones, as a sentence naming the
/// column by its dotted path (`tlsdetails.keyexchange`, `resources.item.arn`); `None` if equal.
fn first_difference(expected: &Fields, found: &Fields, prefix: &str) -> Option<String> {
    for i in 0..expected.len().max(found.len()) {
        match (expected.get(i), found.get(i)) {
            (Some(e), Some(f)) if e.name() != f.name() => {
                return Some(format!("column `{prefix}{}` expected, found `{prefix}{}`", e.name(), f.name()));
            }
            (Some(e), Some(f)) if e != f => {
                let path = format!("{prefix}{}", e.name());
                let deeper = match (children(e.data_type()), children(f.data_type())) {
                    (Some(ec), Some(fc)) if same_kind(e, f) => first_difference(&ec, &fc, &format!("{path}.")),
                    _ => None,
                };
                return Some(deeper.unwrap_or_else(|| {
                    format!(
                        "column `{path}` is {}{}, expected {}{}",
                        f.data_type(),
                        if f.is_nullable() { "" } else { " (required)" },
                        e.data_type(),
                        if e.is_nullable() { "" } else { " (required)" },
                    )
                }));
            }
            (Some(_), Some(_)) => {}
            (Some(e), None) => return Some(format!("column `{prefix}{}` is missing", e.name())),
            (None, Some(f)) => return Some(format!("unexpected column `{prefix}{}`", f.name())),
            (None, None) => unreachable!("i is below the longer length"),
        }
    }
    None
}

/// The child fields of a nested type (a struct's fields, a list's item, a map's entries).
fn children(data_type: &DataType) -> Option<Fields> {
    match data_type {
        DataType::Struct(fields) => Some(fields.clone()),
        DataType::List(item) | DataType::LargeList(item) | DataType::Map(item, _) => {
            Some(Fields::from(vec![item.clone()]))
        }
        _ => None,
    }
}

/// Whether two fields are the same kind of nested type, so their children can be compared.
fn same_kind(e: &FieldRef, f: &FieldRef) -> bool {
    std::mem::discriminant(e.data_type()) == std::mem::discriminant(f.data_type())
}

/// Decoded rows held for sorting, with their keys.
#[derive(Default)]
struct Chunk {
    batches: Vec<RecordBatch>,
    identity: Vec<Rows>,
    lineage: Vec<Rows>,
    /// Decoded bytes held (arrays and keys).
    bytes: usize,
}

impl Chunk {
    fn push(&mut self, batch: RecordBatch, identity: Rows, lineage: Rows, size: usize) {
        self.batches.push(batch);
        self.identity.push(identity);
        self.lineage.push(lineage);
        self.bytes += size;
    }

    /// [`Chunk::write`] for the last chunk. When nothing was written before it, it holds every
    /// row of the outputs, and their codecs are chosen per column from what it holds.
    fn write_last(self, seen: &mut HashSet<u128>, output: &mut Outputs<'_>) -> Result<u64> {
        if output.current.is_none() && output.done.is_empty() {
            output.properties = output.options.settings.compacted_properties_for(&output.table.parquet, &self.batches);
        }
        self.write(seen, output)
    }

    /// Sorts the rows, drops those whose identity was already `seen` (in this chunk or an earlier
    /// one), writes the rest; returns how many were dropped.
    fn write(self, seen: &mut HashSet<u128>, output: &mut Outputs<'_>) -> Result<u64> {
        let mut order: Vec<(usize, usize)> =
            self.batches.iter().enumerate().flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r))).collect();
        // Identity keys start with the time column, so this sorts by time, then by content; the
        // lineage keys make the order total, so the copy kept of a duplicate is always the same.
        // Rows equal in both are equal in every column: their relative order cannot show.
        order.sort_unstable_by(|&(a, i), &(b, j)| {
            let identity = self.identity[a].row(i).cmp(&self.identity[b].row(j));
            identity.then_with(|| self.lineage[a].row(i).cmp(&self.lineage[b].row(j)))
        });
        let before = order.len();
        order.retain(|&(b, r)| seen.insert(fingerprint(self.identity[b].row(r).as_ref())));
        let duplicates = (before - order.len()) as u64;
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        for slice in order.chunks(output.batch_rows()) {
            let batch = arrow_select::interleave::interleave_record_batch(&batches, slice)
                .map_err(|e| output.encode_error(e))?;
            output.write(&batch)?;
        }
        Ok(duplicates)
    }
}

/// The first 128 bits of the SHA-256 of a row's identity key. Only fingerprints are kept across
/// chunks (16 bytes a row, where the keys are about as large as the rows), so a collision would
/// silently drop a distinct record: at 128 bits the chance of any among a billion rows is about
/// 10⁻²¹, while 64 bits would already give a few percent.
fn fingerprint(identity: &[u8]) -> u128 {
    let digest = Sha256::digest(identity);
    u128::from_be_bytes(digest[..16].try_into().expect("SHA-256 has 32 bytes"))
}

/// What the file would weigh if closed now: the bytes written, plus the open row group at the
/// bytes per row of the row groups already written. Before the first one is written, the writer's
/// own estimate of the open row group stands in; it counts most pages uncompressed, so it is high
/// (two to three times, with zstd) and a file smaller than one row group closes early.
fn estimated_size(writer: &ArrowWriter<Counting>) -> u64 {
    let written = writer.bytes_written() as u64;
    let flushed: i64 = writer.flushed_row_groups().iter().map(|group| group.num_rows()).sum();
    let open = match u64::try_from(flushed) {
        Ok(rows) if rows > 0 => writer.in_progress_rows() as u64 * written / rows,
        _ => writer.in_progress_size() as u64,
    };
    written + open
}

/// One output being written.
struct Open {
    path: String,
    rows: u64,
    writer: ArrowWriter<Counting>,
    index: FileIndexer,
    /// The sink file's first error: a writer error after it is a storage failure (retryable).
    fault: SinkFault,
}

/// The sequence of outputs: opened on the first row, rotated at the target size.
struct Outputs<'a> {
    table: &'a Table,
    sink: &'a dyn Sink,
    out_dir: &'a str,
    stem: &'a str,
    options: &'a CompactOptions,
    /// The writer properties of every output: [`WriterSettings::compacted_properties`], or, for
    /// a partition compacted in one chunk, [`WriterSettings::compacted_properties_for`] its rows.
    properties: WriterProperties,
    current: Option<Open>,
    done: Vec<CompactedFile>,
    index: Vec<FileIndex>,
}

impl<'a> Outputs<'a> {
    fn new(table: &'a Table, sink: &'a dyn Sink, out_dir: &'a str, stem: &'a str, options: &'a CompactOptions) -> Self {
        let properties = options.settings.compacted_properties();
        Outputs { table, sink, out_dir, stem, options, properties, current: None, done: Vec::new(), index: Vec::new() }
    }

    fn batch_rows(&self) -> usize {
        self.options.settings.batch_rows.max(1)
    }

    fn path(&self) -> String {
        let name = format!("{}-{:04}.parquet", self.stem, self.done.len());
        match self.out_dir.trim_end_matches('/') {
            "" => name,
            dir => format!("{dir}/{name}"),
        }
    }

    fn encode_error(&self, e: impl Into<DataError>) -> Error {
        match &self.current {
            Some(open) => open.fault.classify(e).into_error(self.out_dir, &open.path),
            None => Error::Encode { key: self.out_dir.into(), path: self.path(), source: e.into() },
        }
    }

    fn open(&mut self) -> Result<&mut Open> {
        let path = self.path();
        let file = self.sink.create(&path).map_err(|source| Error::Write {
            key: self.out_dir.into(),
            path: path.clone(),
            source,
        })?;
        // As the per-delivery writer: the run's settings (plus page indexes and bloom filters),
        // and no embedded Arrow schema (Parquet's logical types carry every type used).
        let options = ArrowWriterOptions::new()
            .with_properties(self.properties.clone())
            .with_parquet_schema(self.table.parquet.clone())
            .with_skip_arrow_metadata(true);
        let (counting, fault) = Counting::new(file);
        let writer = ArrowWriter::try_new_with_options(counting, self.table.schema.clone(), options)
            .map_err(|e| fault.classify(e).into_error(self.out_dir, &path))?;
        let index = FileIndexer::new(path.rsplit('/').next().unwrap_or(&path));
        Ok(self.current.insert(Open { path, rows: 0, writer, index, fault }))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let open = match self.current {
            Some(ref mut open) => open,
            None => self.open()?,
        };
        if let Err(e) = open.writer.write(batch) {
            return Err(self.encode_error(e));
        }
        open.rows += batch.num_rows() as u64;
        if let Err(e) = open.index.add(batch) {
            return Err(self.encode_error(e));
        }
        if estimated_size(&open.writer) >= self.options.target_bytes {
            self.close()?;
        }
        Ok(())
    }

    /// Writes the footer of the current output and commits it.
    fn close(&mut self) -> Result<()> {
        let Some(Open { path, rows, writer, index, fault }) = self.current.take() else {
            return Ok(());
        };
        let Counting { inner, bytes, .. } =
            writer.into_inner().map_err(|e| fault.classify(e).into_error(self.out_dir, &path))?;
        inner.commit().map_err(|source| Error::Write { key: self.out_dir.into(), path: path.clone(), source })?;
        self.done.push(CompactedFile { path, rows, bytes });
        self.index.push(index.finish());
        Ok(())
    }

    fn finish(mut self) -> Result<(Vec<CompactedFile>, Vec<FileIndex>)> {
        self.close()?;
        Ok((self.done, self.index))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::new_empty_array;
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::convert::{Options, convert};
    use crate::record::Row;
    use crate::sink::MemorySink;

    const DIR: &str = "events/account=111122223333/region=us-east-1/date=2024-03-01";

    fn key(name: &str) -> String {
        format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_{name}.json.gz")
    }

    /// A record of the test partition; `extra` is spliced in as more JSON members.
    fn record(id: &str, second: u32, name: &str, extra: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","sessionContext":{{"webIdFederationData":{{"federatedProvider":"p","attributes":{{"k":"{id}"}}}}}}}},"eventTime":"2024-03-01T12:00:{second:02}Z","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","eventID":"{id}","resources":[{{"ARN":"arn:aws:s3:::b/{id}","type":"AWS::S3::Object"}}],"readOnly":true,"managementEvent":false,"recipientAccountId":"111122223333"{extra}}}"#
        )
    }

    /// Converts each delivery (file name, records) into `sink`, as the per-delivery path does.
    fn deliver(sink: &MemorySink, deliveries: &[(&str, Vec<String>)], settings: &WriterSettings) {
        let options = Options { writer: settings.clone(), ..Options::default() };
        for (name, records) in deliveries {
            let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
            let report = convert(&key(name), json.as_bytes(), sink, &options).unwrap();
            assert_eq!(report.rows, records.len() as u64, "{report:?}");
        }
    }

    /// Every file under `dir`, in path order, as `compact` takes them.
    fn inputs(sink: &MemorySink, dir: &str) -> Vec<Result<(String, Bytes)>> {
        let files = sink.files().into_iter().filter(|(path, _)| path.starts_with(dir));
        files.map(|(path, data)| Ok((path, Bytes::from(data)))).collect()
    }

    fn read(sink: &MemorySink, report: &CompactReport) -> Vec<Row<'static>> {
        let mut rows = Vec::new();
        for output in &report.outputs {
            let data = sink.get(&output.path).unwrap();
            assert_eq!(output.bytes, data.len() as u64, "{}", output.path);
            let mut part = crate::archive::read_rows(Bytes::from(data), Some(&output.path)).unwrap();
            assert_eq!(output.rows, part.len() as u64, "{}", output.path);
            rows.append(&mut part);
        }
        rows
    }

    /// A row's identity: its record as CloudTrail JSON (lineage is not part of it).
    fn identity(row: &Row<'_>) -> String {
        row.to_json()
    }

    fn identities(rows: &[Row<'_>]) -> Vec<String> {
        let mut out: Vec<String> = rows.iter().map(identity).collect();
        out.sort();
        out
    }

    fn expected(records: &[&String]) -> Vec<String> {
        let mut out: Vec<String> =
            records.iter().map(|r| identity(&Row::parse(r.as_bytes(), "k", 0).unwrap())).collect();
        out.sort();
        out
    }

    fn assert_sorted(rows: &[Row<'_>]) {
        let times: Vec<i64> = rows.iter().map(|r| r.eventtime_ts.unwrap()).collect();
        assert!(times.is_sorted(), "{times:?}");
    }

    /// Three deliveries of one partition: (a) an event delivered twice, in different files;
    /// (b) two different records with one eventID; (c) times out of order across files; and an
    /// event repeated within one file.
    fn partition() -> (MemorySink, Vec<String>, [String; 7]) {
        let e1 = record("e1", 3, "GetObject", "");
        let e2 = record("e2", 1, "PutObject", "");
        let e3 = record("e3", 0, "GetObject", "");
        let e4 = record("e4", 5, "DeleteObject", "");
        let e5 = record("e5", 4, "GetObject", r#","newField":{"b":[1,2.50]}"#);
        let x1 = record("x", 2, "GetObject", "");
        let x2 = record("x", 2, "GetObject", r#","errorCode":"AccessDenied""#);
        let deliveries = [
            ("20240301T1205Z_a", vec![e1.clone(), e2.clone(), x1.clone()]),
            ("20240301T1210Z_b", vec![e3.clone(), e1.clone(), x2.clone()]),
            ("20240301T1215Z_c", vec![e4.clone(), e2.clone(), e5.clone(), e5.clone()]),
        ];
        let sink = MemorySink::default();
        deliver(&sink, &deliveries, &WriterSettings::default());
        let keys = deliveries.iter().map(|(name, _)| key(name)).collect();
        (sink, keys, [e1, e2, e3, e4, e5, x1, x2])
    }

    /// Compacted files carry Parquet bloom filters on the lookup columns and a page index, as
    /// engines read them; and a lookup index whose filters hold every event ID written.
    #[test]
    fn compacted_files_have_bloom_filters_a_page_index_and_a_lookup_index() {
        use parquet::file::properties::ReaderProperties;
        use parquet::file::reader::FileReader;
        use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
        let (sink, _, records) = partition();
        let out = MemorySink::default();
        let report = compact(Dataset::Events, inputs(&sink, DIR), &out, DIR, "c", &CompactOptions::default()).unwrap();
        let data = Bytes::from(out.get(&report.outputs[0].path).unwrap());
        let options = ReadOptionsBuilder::new()
            .with_reader_properties(ReaderProperties::builder().set_read_bloom_filter(true).build())
            .build();
        let reader = SerializedFileReader::new_with_options(data, options).unwrap();
        let metadata = reader.metadata();
        let time = metadata.row_group(0).columns().iter().find(|c| c.column_path().string() == "eventtime_ts").unwrap();
        assert!(time.column_index_range().is_some() && time.offset_index_range().is_some(), "page index");
        // Ten input rows compacted in one go: columns of a few hundred bytes are not compressed,
        // so a reader makes no codec for them (their bloom filters and page index stay).
        for name in ["eventid", "eventname", "awsregion", "errormessage"] {
            let chunk = metadata.row_group(0).columns().iter().find(|c| c.column_path().string() == name).unwrap();
            assert_eq!(chunk.compression(), parquet::basic::Compression::UNCOMPRESSED, "{name}");
        }
        let group = reader.get_row_group(0).unwrap();
        let column = |name: &str| {
            metadata.file_metadata().schema_descr().columns().iter().position(|c| c.path().string() == name).unwrap()
        };
        let ids: Vec<String> = records
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["eventID"].as_str().unwrap().to_string())
            .collect();
        let bloom = group.get_column_bloom_filter(column("eventid")).expect("a bloom filter on eventid");
        for id in &ids {
            assert!(bloom.check(id.as_str()), "{id}");
        }
        assert!(group.get_column_bloom_filter(column("eventname")).unwrap().check("GetObject"));
        assert!(group.get_column_bloom_filter(column("awsregion")).is_none(), "only the lookup columns");

        let part =
            &report.lookup_indexes.iter().find(|(p, _)| *p == crate::lookup::index::IndexPart::EventIds).unwrap().1;
        let index = crate::lookup::index::decode(part).unwrap();
        assert_eq!(index.len(), 1);
        assert_eq!((index[0].name.as_str(), index[0].rows), ("c-0000.parquet", report.rows_out));
        let filter = &index[0].filters[&crate::lookup::AttributeKey::EventId];
        assert!(ids.iter().all(|id| filter.check(id.as_str())));
    }

    /// The partition `DIR` of `sink` compacted into one file, with its parsed footer.
    fn compacted_file(sink: &MemorySink) -> (Bytes, parquet::arrow::arrow_reader::ArrowReaderMetadata) {
        let out = MemorySink::default();
        let report = compact(Dataset::Events, inputs(sink, DIR), &out, DIR, "c", &CompactOptions::default()).unwrap();
        let file = Bytes::from(out.get(&report.outputs[0].path).unwrap());
        let len = file.len() as u64;
        let crate::lookup::Footer::Parsed(metadata) = crate::lookup::parse_footer(&file, len, "f").unwrap() else {
            panic!("whole file")
        };
        (file, metadata)
    }

    /// What phase one of a lookup holds of a compacted file of one row group: the footer and page
    /// index (the file's tail, from the offset index on) and the filter columns (`leaves`).
    fn phase_one_bytes(
        file: &Bytes,
        md: &parquet::file::metadata::ParquetMetaData,
        leaves: &[bool],
    ) -> crate::lookup::SparseFile {
        let mut sparse = crate::lookup::SparseFile::new(file.len() as u64);
        let index = crate::lookup::offset_index_range(md, &[0]).expect("compacted files have an offset index");
        sparse.insert(index.start, file.slice(index.start as usize..));
        insert_ranges(&mut sparse, file, &crate::lookup::column_ranges(md, 0, leaves, true));
        sparse
    }

    fn insert_ranges(sparse: &mut crate::lookup::SparseFile, file: &Bytes, ranges: &[std::ops::Range<u64>]) {
        for r in ranges {
            sparse.insert(r.start, file.slice(r.start as usize..r.end as usize));
        }
    }

    fn span(ranges: &[std::ops::Range<u64>]) -> u64 {
        ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// A point lookup in a compacted row group of thousands of rows decodes its filter columns,
    /// then only the pages holding the hit of the others (through the offset index), and gets
    /// the input record back; without those pages' bytes it fails rather than answer wrongly.
    #[test]
    fn a_point_lookup_in_a_compacted_file_reads_only_the_pages_holding_its_hit() {
        use chrono::TimeZone;

        use crate::lookup::{self, AttributeKey, LookupQuery};
        let rows = 5 * crate::encode::COMPACTED_PAGE_ROWS;
        let records: Vec<String> = (0..rows)
            .map(|i| {
                // Values that do not compress away, as real request parameters.
                let noise: String = (1..=4u64)
                    .map(|k| format!("{:016x}", (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(k))))
                    .collect();
                let padding = format!(r#","requestParameters":{{"key":"{noise}"}}"#);
                record(&format!("id-{i:05}"), (i % 60) as u32, "GetObject", &padding)
            })
            .collect();
        let sink = MemorySink::default();
        let half = rows / 2;
        let deliveries =
            [("20240301T1200Z_a", records[..half].to_vec()), ("20240301T1205Z_b", records[half..].to_vec())];
        deliver(&sink, &deliveries, &WriterSettings::default());
        let (file, metadata) = compacted_file(&sink);
        let md = metadata.metadata().clone();
        assert_eq!(md.num_row_groups(), 1, "one row group of {rows} rows");
        // One batch holds the whole partition, so each column's codec follows its size: 5,120
        // request parameters of 64 random hex digits are compressed, an empty column is not.
        let codec = |name: &str| {
            md.row_group(0).columns().iter().find(|c| c.column_path().string() == name).unwrap().compression()
        };
        assert!(matches!(codec("requestparameters"), parquet::basic::Compression::ZSTD(_)));
        assert!(matches!(codec("eventid"), parquet::basic::Compression::ZSTD(_)));
        assert_eq!(codec("errormessage"), parquet::basic::Compression::UNCOMPRESSED);
        // One Region in 5,120 rows is 66 KB of PLAIN bytes but a one-entry dictionary: compressing
        // it would save nothing and cost every reader a zstd context pair.
        assert_eq!(codec("awsregion"), parquet::basic::Compression::UNCOMPRESSED);
        assert_eq!(codec("eventsource"), parquet::basic::Compression::UNCOMPRESSED);

        let wanted = "id-03333";
        let t = |h: u32| chrono::Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
        let mut query = LookupQuery::new(t(0), t(23));
        query.include_data_events = true;
        query.attributes.push((AttributeKey::EventId, wanted.into()));
        let leaves = lookup::filter_leaves(&md, &query, None);
        let mut sparse = phase_one_bytes(&file, &md, &leaves);
        let selection = lookup::select_hits(sparse.clone(), metadata.clone(), vec![0], "f", &query, None).unwrap();
        assert_eq!(selection.groups, vec![(0, vec![selection.groups[0].1[0]])], "one hit");
        // Phase two: the pages of the other columns that hold the hit.
        let with_pages = lookup::with_offset_index(&sparse, &metadata, "f").unwrap();
        let pages = lookup::page_ranges(with_pages.metadata(), &selection, &leaves, false).unwrap();
        let whole = span(&lookup::column_ranges(&md, 0, &leaves, false));
        assert!(span(&pages) * 3 < whole, "pages {} of {whole} bytes", span(&pages));
        assert!(
            lookup::decode_selected(sparse.clone(), with_pages.clone(), &selection, "f", &query).is_err(),
            "bytes never fetched are an error, not a wrong answer"
        );
        insert_ranges(&mut sparse, &file, &pages);
        let hits = lookup::decode_selected(sparse, with_pages, &selection, "f", &query).unwrap();
        let input = &records[records.iter().position(|r| r.contains(wanted)).unwrap()];
        let want: serde_json::Value = serde_json::from_str(input).unwrap();
        assert_eq!(hits.rows.len(), 1);
        let got = &hits.rows[0];
        assert_eq!(got.eventid.as_deref(), Some(wanted));
        let params: serde_json::Value = serde_json::from_str(got.requestparameters.as_deref().unwrap()).unwrap();
        assert_eq!(params, want["requestParameters"]);
    }

    /// Hits close together (one row in four of some pages) and pages without any between: phase
    /// two fetches only the pages holding hits, so it must decode by skipping whole pages, not
    /// by reading every row under a mask (the parquet crate's choice for dense selections,
    /// which would ask for the bytes of pages never fetched).
    #[test]
    fn dense_hits_decode_from_only_the_pages_that_hold_them() {
        use chrono::TimeZone;

        use crate::lookup::{self, AttributeKey, LookupQuery};
        let rows = 5 * crate::encode::COMPACTED_PAGE_ROWS;
        // Compaction orders by time: the rows of second s are those with i % 60 == s, so the
        // hits (one i / 60 in four, seconds under 10 or from 50) are every fourth row of the
        // first and last pages, with pages without a hit between them.
        let hit = |i: usize| (i / 60).is_multiple_of(4) && !(10..50).contains(&(i % 60));
        let records: Vec<String> = (0..rows)
            .map(|i| record(&format!("id-{i:05}"), (i % 60) as u32, if hit(i) { "Hit" } else { "Other" }, ""))
            .collect();
        let sink = MemorySink::default();
        deliver(&sink, &[("20240301T1200Z_a", records.clone())], &WriterSettings::default());
        let (file, metadata) = compacted_file(&sink);
        let md = metadata.metadata().clone();

        let t = |h: u32| chrono::Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
        let mut query = LookupQuery::new(t(0), t(23));
        query.include_data_events = true;
        query.attributes.push((AttributeKey::EventName, "Hit".into()));
        let leaves = lookup::filter_leaves(&md, &query, None);
        let mut sparse = phase_one_bytes(&file, &md, &leaves);
        let selection = lookup::select_hits(sparse.clone(), metadata.clone(), vec![0], "f", &query, None).unwrap();
        let want: std::collections::BTreeSet<String> =
            (0..rows).filter(|&i| hit(i)).map(|i| format!("id-{i:05}")).collect();
        assert_eq!(selection.hits(), want.len());
        let with_pages = lookup::with_offset_index(&sparse, &metadata, "f").unwrap();
        let pages = lookup::page_ranges(with_pages.metadata(), &selection, &leaves, false).unwrap();
        let whole = span(&lookup::column_ranges(&md, 0, &leaves, false));
        assert!(span(&pages) < whole, "some pages hold no hit: {} of {whole} bytes", span(&pages));
        insert_ranges(&mut sparse, &file, &pages);
        let hits = lookup::decode_selected(sparse, with_pages, &selection, "f", &query).unwrap();
        let got: std::collections::BTreeSet<String> =
            hits.rows.iter().map(|r| r.eventid.as_deref().unwrap().to_string()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sorts_dedups_and_keeps_distinct_records_sharing_an_event_id() {
        let (sink, keys, records) = partition();
        let input = inputs(&sink, DIR);
        assert_eq!(input.len(), 3);
        let out = MemorySink::default();
        let report = compact(Dataset::Events, input, &out, DIR, "c", &CompactOptions::default()).unwrap();
        assert_eq!(
            (report.inputs, report.rows_in, report.rows_out, report.duplicates_removed),
            (3, 10, 7, 3),
            "{report:?}"
        );
        assert!(report.reconciles());
        assert_eq!(out.paths(), [format!("{DIR}/c-0000.parquet")]);
        let rows = read(&out, &report);
        assert_sorted(&rows);
        assert_eq!(identities(&rows), expected(&records.iter().collect::<Vec<_>>()));
        // Both records with eventID "x" are kept: they differ in errorCode.
        assert_eq!(rows.iter().filter(|r| r.eventid.as_deref() == Some("x")).count(), 2);
        // The copy kept of a duplicate is the one that sorts first: the smaller key, then index.
        let e1 = rows.iter().find(|r| r.eventid.as_deref() == Some("e1")).unwrap();
        assert_eq!((e1.source_key.as_ref(), e1.source_index), (keys[0].as_str(), 0));
        let e5 = rows.iter().find(|r| r.eventid.as_deref() == Some("e5")).unwrap();
        assert_eq!((e5.source_key.as_ref(), e5.source_index), (keys[2].as_str(), 2));
        // Unknown fields survive in `unmapped`, exactly as written.
        assert!(e5.to_json().contains(r#""newField":{"b":[1,2.50]}"#), "{}", e5.to_json());
    }

    #[test]
    fn reruns_are_byte_identical_and_input_order_does_not_matter_within_the_budget() {
        let (sink, _, _) = partition();
        let run = |reverse: bool| {
            let mut input = inputs(&sink, DIR);
            if reverse {
                input.reverse();
            }
            let out = MemorySink::default();
            let report = compact(Dataset::Events, input, &out, DIR, "c", &CompactOptions::default()).unwrap();
            (report, out.files())
        };
        let first = run(false);
        assert_eq!(run(false), first);
        assert_eq!(run(true), first);
    }

    #[test]
    fn outputs_are_written_like_per_delivery_files() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let (sink, _, _) = partition();
        let out = MemorySink::default();
        let options = CompactOptions {
            settings: WriterSettings { codec: crate::encode::Codec::Snappy, row_group_rows: 4, batch_rows: 3 },
            ..CompactOptions::default()
        };
        let report = compact(Dataset::Events, inputs(&sink, DIR), &out, DIR, "c", &options).unwrap();
        let input = SerializedFileReader::new(Bytes::from(sink.files().into_values().next().unwrap())).unwrap();
        let output = SerializedFileReader::new(Bytes::from(out.get(&report.outputs[0].path).unwrap())).unwrap();
        let (input, output) = (input.metadata().file_metadata(), output.metadata());
        assert_eq!(output.file_metadata().created_by(), input.created_by());
        assert_eq!(output.file_metadata().schema_descr().root_schema(), input.schema_descr().root_schema());
        assert_eq!(output.file_metadata().key_value_metadata(), None, "no embedded Arrow schema");
        let groups: Vec<i64> = output.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [4, 3], "row groups of settings.row_group_rows");
        // The partition was compacted in one go, so each column's codec is chosen from what it
        // holds: no column of ten rows reaches a KiB encoded (their source keys pass it as PLAIN
        // bytes, but are three values in a dictionary), so none is compressed.
        for column in output.row_group(0).columns() {
            assert_eq!(column.compression(), parquet::basic::Compression::UNCOMPRESSED, "{}", column.column_path());
        }
    }

    /// Realistic records (synth) of one partition, many small deliveries with duplicates across
    /// them: a tiny budget and target give many chunks and outputs, and still dedup globally.
    #[test]
    fn small_budget_and_target_rotate_outputs_and_still_reconcile() {
        let records: Vec<String> = parquetrail_synth::sample_records(7, 120)
            .into_iter()
            .map(|mut r| {
                r["recipientAccountId"] = "111122223333".into();
                r["awsRegion"] = "us-east-1".into();
                let time = r["eventTime"].as_str().unwrap().replace("2024-03-01T0", "2024-03-01T1");
                r["eventTime"] = time.into();
                r.to_string()
            })
            .collect();
        // 20 deliveries of 8 records: each delivery repeats two records of an earlier one.
        let deliveries: Vec<(String, Vec<String>)> = (0..20)
            .map(|d| {
                let mut batch: Vec<String> = records[d * 6..d * 6 + 6].to_vec();
                batch.push(records[(d * 37) % 120].clone());
                batch.push(records[(d * 53 + 11) % 120].clone());
                (format!("20240301T12{:02}Z_d{d:02}", 59 - d), batch)
            })
            .collect();
        let deliveries: Vec<(&str, Vec<String>)> = deliveries.iter().map(|(n, r)| (n.as_str(), r.clone())).collect();
        let settings = WriterSettings { batch_rows: 5, row_group_rows: 7, ..WriterSettings::default() };
        let sink = MemorySink::default();
        deliver(&sink, &deliveries, &settings);
        let input_rows = 20 * 8;

        let all = CompactOptions { settings: settings.clone(), ..CompactOptions::default() };
        let whole = MemorySink::default();
        let one = compact(Dataset::Events, inputs(&sink, DIR), &whole, DIR, "c", &all).unwrap();
        assert_eq!((one.rows_in, one.rows_out, one.outputs.len()), (input_rows, 120, 1), "{one:?}");
        let reference = read(&whole, &one);
        assert_sorted(&reference);
        assert_eq!(identities(&reference), expected(&records.iter().collect::<Vec<_>>()));

        let small = CompactOptions { target_bytes: 20_000, memory_budget: 1, settings };
        let out = MemorySink::default();
        let report = compact(Dataset::Events, inputs(&sink, DIR), &out, DIR, "c", &small).unwrap();
        assert!(report.reconciles(), "{report:?}");
        assert_eq!((report.rows_in, report.rows_out, report.duplicates_removed), (input_rows, 120, 40));
        assert!(report.outputs.len() > 2, "{report:?}");
        let names: Vec<String> = (0..report.outputs.len()).map(|i| format!("{DIR}/c-{i:04}.parquet")).collect();
        assert_eq!(out.paths(), names);
        let rows = read(&out, &report);
        assert_eq!(identities(&rows), identities(&reference), "the same records, deduplicated across chunks");
        // Written chunk by chunk, the outputs cannot know what the whole partition holds: every
        // column has the configured codec.
        for path in out.paths() {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let file = SerializedFileReader::new(Bytes::from(out.get(&path).unwrap())).unwrap();
            for column in file.metadata().row_group(0).columns() {
                assert!(matches!(column.compression(), parquet::basic::Compression::ZSTD(_)), "{path}");
            }
        }
        let mut again = MemorySink::default();
        let rerun = compact(Dataset::Events, inputs(&sink, DIR), &again, DIR, "c", &small).unwrap();
        assert_eq!((rerun, again.files()), (report, out.files()));
        again = MemorySink::default();
        assert!(compact(Dataset::Events, Vec::new(), &again, DIR, "c", &small).unwrap().outputs.is_empty());
        assert!(again.paths().is_empty());
    }

    #[test]
    fn insights_compact_like_events() {
        let insight = |s: u32, state: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:{s:02}Z","awsRegion":"us-east-1","eventID":"i1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s","insightDetails":{{"state":"{state}"}},"eventCategory":"Insight"}}"#
            )
        };
        let (start, end) = (insight(9, "Start"), insight(1, "End"));
        let sink = MemorySink::default();
        let deliveries = [("a", vec![start.clone(), end.clone()]), ("b", vec![start.clone()])];
        deliver(&sink, &deliveries, &WriterSettings::default());
        let dir = DIR.replacen("events/", "insights/", 1);
        let out = MemorySink::default();
        let report =
            compact(Dataset::Insights, inputs(&sink, &dir), &out, &dir, "c", &CompactOptions::default()).unwrap();
        assert_eq!((report.rows_in, report.rows_out, report.duplicates_removed), (3, 2, 1));
        let rows = read(&out, &report);
        assert_sorted(&rows);
        assert_eq!(identities(&rows), expected(&[&start, &end]));
    }

    #[test]
    fn digests_sort_by_end_time_and_dedup_copies_under_another_key() {
        use crate::digest_table::tests::{DIGEST, KEY};
        use crate::digest_table::{DigestRow, Signature, encode};
        use crate::object_key::ObjectKey;
        let later =
            DIGEST.replace(r#""digestEndTime":"2015-08-17T15:01:31Z""#, r#""digestEndTime":"2015-08-17T16:01:31Z""#);
        let later_key = KEY.replace("20150817T150131Z", "20150817T160131Z");
        let copy_key = format!("replica/{KEY}");
        let file = |json: &str, key: &str| {
            let row = DigestRow::parse(json.as_bytes(), &ObjectKey::parse(key), Signature::default()).unwrap();
            Bytes::from(encode(&[row], &WriterSettings::default()).unwrap())
        };
        let input = vec![
            Ok(("later".to_string(), file(&later, &later_key))),
            Ok(("copy".to_string(), file(DIGEST, &copy_key))),
            Ok(("first".to_string(), file(DIGEST, KEY))),
        ];
        let dir = "digests/account=111122223333/region=us-east-2/date=2015-08-17";
        let out = MemorySink::default();
        let report = compact(Dataset::Digests, input, &out, dir, "c", &CompactOptions::default()).unwrap();
        assert_eq!((report.rows_in, report.rows_out, report.duplicates_removed), (3, 2, 1), "{report:?}");
        let data = Bytes::from(out.get(&report.outputs[0].path).unwrap());
        let batch = ParquetRecordBatchReaderBuilder::try_new(data).unwrap().build().unwrap().next().unwrap().unwrap();
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        use arrow_array::cast::AsArray;
        let ends = column("digestendtime_ts");
        let ends = ends.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert!(ends.value(0) < ends.value(1));
        // Of the two copies, the one that sorts first (by source_key) is kept.
        let sources = column("source_key");
        assert_eq!(sources.as_string::<i32>().value(0), copy_key.min(KEY.to_string()));
    }

    /// Files whose schema is not the dataset's are refused, naming the file and the column.
    #[test]
    fn schema_mismatches_name_the_file_and_the_first_differing_column() {
        fn parquet(schema: Schema) -> Bytes {
            let schema = Arc::new(schema);
            let columns = schema.fields().iter().map(|f| new_empty_array(f.data_type())).collect();
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
            writer.write(&batch).unwrap();
            Bytes::from(writer.into_inner().unwrap())
        }
        let events = crate::schema::schema();
        let replace = |name: &str, field: Option<Field>| {
            let fields = events.fields().iter().filter_map(|f| match f.name() == name {
                true => field.clone().map(Arc::new),
                false => Some(f.clone()),
            });
            Schema::new(fields.collect::<Vec<_>>())
        };
        let tls = |drop: &str| {
            let DataType::Struct(fields) = events.field_with_name("tlsdetails").unwrap().data_type().clone() else {
                unreachable!()
            };
            let kept: Vec<FieldRef> = fields.iter().filter(|f| f.name() != drop).cloned().collect();
            Field::new("tlsdetails", DataType::Struct(Fields::from(kept)), true)
        };
        let digests = Bytes::from(crate::digest_table::encode(&[], &WriterSettings::default()).unwrap());
        let cases = [
            ("digests.parquet", digests, "column `eventversion` expected, found `awsaccountid`"),
            (
                "bool.parquet",
                parquet(replace("managementevent", Some(Field::new("managementevent", DataType::Utf8, true)))),
                "column `managementevent` is Utf8, expected Boolean",
            ),
            (
                "nested.parquet",
                parquet(replace("tlsdetails", Some(tls("keyexchange")))),
                "`tlsdetails.keyexchange` is missing",
            ),
            ("short.parquet", parquet(replace("unmapped", None)), "column `unmapped` is missing"),
            ("garbage.parquet", Bytes::from_static(b"not parquet"), "cannot read Parquet"),
        ];
        let (sink, _, _) = partition();
        for (name, data, want) in cases {
            let mut input = inputs(&sink, DIR);
            input.insert(1, Ok((name.to_string(), data)));
            let out = MemorySink::default();
            let err = compact(Dataset::Events, input, &out, DIR, "c", &CompactOptions::default()).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with(&format!("{name}: ")) && message.contains(want), "{name}: {message}");
            assert!(!err.retryable(), "{name}");
            assert!(out.paths().is_empty(), "{name}: the failure comes before any output is closed");
        }
        // An error from the caller's input stream is returned as is.
        let failing = vec![Err(Error::Archive { path: "x".into(), source: DataError::model("fetch failed") })];
        let err = compact(Dataset::Events, failing, &MemorySink::default(), DIR, "c", &CompactOptions::default());
        assert!(err.unwrap_err().to_string().contains("fetch failed"));
    }
}
