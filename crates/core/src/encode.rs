//! Rows → Arrow batches → Parquet, with the writer settings chosen in one place.
//!
//! Rows borrow from the reader's buffer, so each is copied into Arrow builders as soon as it is
//! made (typed builders filled by the record model itself, no generic serializer); every
//! `batch_rows` rows become a `RecordBatch` handed to the Parquet writer, which cuts row groups at
//! `row_group_rows`. An output of more than one batch (from a large log file) is encoded
//! on a thread of its own while the next batches are parsed, so one large file uses two cores.
//! Memory per open partition is the batch being built, the one being encoded and one row group of
//! encoded pages, plus, for all of them together, [`ENCODER_QUEUE_BYTES`] of batches waiting,
//! however large the input file.
//!
//! Most outputs are small (one delivery's rows of one partition: tens of rows), and for them the
//! fixed cost per column chunk dominates: parquet-rs creates a zstd compressor *and* decompressor
//! for every chunk it compresses, and a dictionary encoder (a 4,096-slot hash table) for every
//! dictionary-encoded one. So the writer is opened only when the first batch is ready, and when
//! that batch is the whole output, each leaf column's settings follow what it holds: empty leaves
//! (about 40% of them in typical deliveries) get neither codec nor dictionary, and leaves under
//! 1 KiB are stored uncompressed. Same rows in about the same bytes, at a
//! fraction of the CPU (see `BENCHMARKS.md`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, NullBufferBuilder, OffsetBufferBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};

use crate::error::DataError;
use crate::record::Row;
use crate::schema::schema;
use crate::sink::SinkFile;

/// Parquet compression codec of the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Zstandard at the given level (1–22): the default, at level 3.
    Zstd(i32),
    /// Snappy, for readers without zstd.
    Snappy,
    /// No compression.
    None,
}

impl std::str::FromStr for Codec {
    type Err = crate::UnknownValue;
    /// `zstd`, `zstd:LEVEL`, `snappy` or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "zstd" => Ok(Codec::Zstd(3)),
            None if s == "snappy" => Ok(Codec::Snappy),
            None if s == "none" || s == "uncompressed" => Ok(Codec::None),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Codec::Zstd(l)),
                _ => Err(crate::UnknownValue::new("zstd level", level, "1 to 22")),
            },
            _ => Err(crate::UnknownValue::new("compression", s, "zstd, zstd:LEVEL, snappy or none")),
        }
    }
}

/// How outputs are written. Every output of one run uses the same settings, so files written by
/// the CLI, the Lambda and the compactor are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    pub codec: Codec,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows per Arrow batch handed to the writer (bounds builder memory).
    pub batch_rows: usize,
}

impl Default for WriterSettings {
    fn default() -> Self {
        // 32 Ki rows is ~40 MB of CloudTrail JSON and ~2 MB of compacted Parquet: few enough row
        // groups for readers (a 128 MiB compacted file has a few dozen, each with event-time
        // min/max to skip by), and each open partition of a large file buffers at most one; at
        // 128 Ki rows peak RSS grew with the file (BENCHMARKS.md, "Memory").
        // 2 Ki rows per batch (~2.5 MB of Arrow data, ~4 MiB as allocated): a large file keeps
        // two batches per open partition (one building, one encoding on its thread), plus those
        // waiting within ENCODER_QUEUE_BYTES for all partitions together, and a 500 MB file opens
        // a handful of partitions; at 8 Ki rows that cost ~30 MiB more peak RSS (BENCHMARKS.md,
        // "Memory").
        WriterSettings { codec: Codec::Zstd(3), row_group_rows: 32 * 1024, batch_rows: 2 * 1024 }
    }
}

/// Rows per data page in compacted files (parquet-rs checks it every 1,024 values, so this is
/// also the finest it gives). With the offset index, a point lookup in a row group of 32 Ki rows
/// decodes one such page per column instead of the whole chunk (`docs/LOOKUP.md`).
pub const COMPACTED_PAGE_ROWS: usize = 1024;

/// Columns whose values are (nearly) unique per row: a dictionary costs space and time there.
const NO_DICTIONARY: &[&str] = &[
    "eventid",
    "requestid",
    "sharedeventid",
    "requestparameters",
    "responseelements",
    "additionaleventdata",
    "serviceeventdetails",
    "insightdetails",
    "unmapped",
    "source_index",
];

impl WriterSettings {
    pub fn properties(&self) -> WriterProperties {
        self.builder().build()
    }

    /// The properties of a compacted file (sorted by time, up to a few hundred MB): those of
    /// [`WriterSettings::properties`], plus what lets engines answer point lookups without
    /// decoding whole row groups (`docs/COMPACTION.md`):
    /// - page statistics and the page index, so a time range or an ID skips pages, not only
    ///   row groups, with pages of [`COMPACTED_PAGE_ROWS`] rows;
    /// - Parquet bloom filters on [`BLOOM_FILTER_COLUMNS`] (Athena, Trino, Spark and DuckDB
    ///   read them), sized for a row group and folded to their content.
    pub fn compacted_properties(&self) -> WriterProperties {
        self.compacted_builder().build()
    }

    /// [`WriterSettings::compacted_properties`] for outputs whose rows are all among `batches`
    /// (a partition compacted in one go, as most are): the same page index, page size and bloom
    /// filters, with each leaf's codec chosen from what it holds in `batches`, as a delivery's is
    /// (under 1 KiB, uncompressed; no value, no codec and no dictionary), except that a string
    /// leaf of few distinct values is judged by what its dictionary and indices take, not by
    /// its PLAIN bytes. A reader
    /// opens a zstd context pair per compressed column chunk, and on x86-64 virtual machines a
    /// pair costs more than decoding the few hundred bytes such a chunk holds (`BENCHMARKS.md`,
    /// "Codecs of small compacted files"). `parquet` is the Parquet schema of the batches.
    pub fn compacted_properties_for(&self, parquet: &SchemaDescriptor, batches: &[RecordBatch]) -> WriterProperties {
        match leaf_totals(parquet, batches) {
            Some(mut sizes) => {
                let base = self.compacted_builder().build();
                let dictionary = |leaf: usize| base.dictionary_enabled(parquet.column(leaf).path());
                with_dictionary_estimates(&mut sizes, batches, dictionary);
                self.per_leaf_codecs(self.compacted_builder(), parquet, &sizes)
            }
            None => self.compacted_properties(),
        }
    }

    fn compacted_builder(&self) -> WriterPropertiesBuilder {
        let mut builder = self
            .builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(COMPACTED_PAGE_ROWS);
        for column in NO_STATISTICS {
            builder = builder.set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
        }
        for column in BLOOM_FILTER_COLUMNS {
            let path = ColumnPath::from(column.split('.').map(str::to_string).collect::<Vec<_>>());
            builder = builder
                .set_column_bloom_filter_enabled(path.clone(), true)
                .set_column_bloom_filter_fpp(path.clone(), 0.01)
                .set_column_bloom_filter_max_ndv(path, self.row_group_rows.max(1) as u64);
        }
        builder
    }

    /// The properties of an output whose rows are all in `batch` (every delivery-sized output),
    /// chosen per leaf column from what it actually holds:
    /// - no value at all: neither compressed nor dictionary-encoded;
    /// - under [`MIN_COMPRESSED_BYTES`]: not compressed (a dictionary, where enabled, still
    ///   shares repeated values; a string leaf of few distinct values is measured by its
    ///   dictionary and indices, [`with_dictionary_estimates`]);
    /// - the rest: the configured codec.
    ///
    /// Such an output has one page per column chunk (short of a column over 1 MiB), so its offset
    /// index would only repeat the column chunk's own metadata and is left out.
    fn properties_for_single_batch(&self, batch: &RecordBatch) -> WriterProperties {
        let batches = std::slice::from_ref(batch);
        match leaf_totals(parquet_schema(), batches) {
            Some(mut sizes) => {
                let dictionary = dictionary_leaves();
                with_dictionary_estimates(&mut sizes, batches, |leaf| dictionary[leaf]);
                self.per_leaf_codecs(self.builder().set_offset_index_disabled(true), parquet_schema(), &sizes)
            }
            None => self.properties(),
        }
    }

    /// Sets each leaf column's codec and dictionary from `sizes`, what it holds in all the rows
    /// of the outputs to be written ([`leaf_totals`]): no value at all, neither compressed nor
    /// dictionary-encoded; under [`MIN_COMPRESSED_BYTES`], not compressed; the rest, the
    /// configured codec.
    fn per_leaf_codecs(
        &self,
        builder: WriterPropertiesBuilder,
        parquet: &SchemaDescriptor,
        sizes: &[LeafSize],
    ) -> WriterProperties {
        // Most leaves of a delivery-sized output are small: "uncompressed" is the default and the
        // few large ones are named, which keeps the per-output property map short.
        let codec = self.compression();
        let mut builder = builder.set_compression(Compression::UNCOMPRESSED);
        for (leaf, size) in parquet.columns().iter().zip(sizes) {
            if size.values == 0 {
                builder = builder.set_column_dictionary_enabled(leaf.path().clone(), false);
            } else if size.bytes >= MIN_COMPRESSED_BYTES && codec != Compression::UNCOMPRESSED {
                builder = builder.set_column_compression(leaf.path().clone(), codec);
            }
        }
        builder.build()
    }

    fn compression(&self) -> Compression {
        match self.codec {
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        }
    }

    fn builder(&self) -> WriterPropertiesBuilder {
        let mut builder = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(self.compression())
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            // Per-delivery files are small (a few KB of gzip): page indexes would cost more than
            // they save. Chunk statistics still let engines skip whole files and row groups.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_created_by(concat!("parquetrail version ", env!("CARGO_PKG_VERSION")).to_string());
        for column in NO_DICTIONARY {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        for column in NO_STATISTICS {
            builder = builder.set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
        }
        // Event times come in order (sorted in compacted files, nearly so within a delivery) and
        // share long prefixes: DELTA_BYTE_ARRAY stores each as the previous one's prefix length
        // plus a short suffix, less than half the bytes of a dictionary (BENCHMARKS.md). Athena,
        // Spark, DuckDB and pyarrow all read it.
        builder
            .set_column_dictionary_enabled(ColumnPath::from("eventtime"), false)
            .set_column_encoding(ColumnPath::from("eventtime"), Encoding::DELTA_BYTE_ARRAY)
    }
}

/// Below this many PLAIN-encoded bytes a column chunk of a single-batch output is left
/// uncompressed: zstd on a few hundred bytes saves a few dozen, while each compressed chunk costs
/// a compressor and a decompressor context, and an entropy table build (see `BENCHMARKS.md`).
const MIN_COMPRESSED_BYTES: usize = 1024;

/// Columns of compacted files with a Parquet bloom filter: the values of lookups by event ID,
/// access key, user and event name (the user as its record carries it: `userName`, `arn`).
pub const BLOOM_FILTER_COLUMNS: &[&str] =
    &["eventid", "eventname", "useridentity.accesskeyid", "useridentity.username", "useridentity.arn"];

/// Columns nobody filters on by value: free-form JSON text, whose min/max (64 bytes each) say
/// nothing useful and made up a tenth of every footer's statistics.
const NO_STATISTICS: &[&str] = &[
    "requestparameters",
    "responseelements",
    "additionaleventdata",
    "serviceeventdetails",
    "edgedevicedetails",
    "insightdetails",
    "unmapped",
];

/// Whether each leaf of [`parquet_schema`] is dictionary-encoded (where it holds values), as
/// [`WriterSettings`]'s properties say; they do not depend on the codec or row group size.
fn dictionary_leaves() -> &'static [bool] {
    static LEAVES: OnceLock<Vec<bool>> = OnceLock::new();
    LEAVES.get_or_init(|| {
        let properties = WriterSettings::default().properties();
        parquet_schema().columns().iter().map(|leaf| properties.dictionary_enabled(leaf.path())).collect()
    })
}

/// The Parquet schema of the outputs, converted from the Arrow schema once.
fn parquet_schema() -> &'static SchemaDescriptor {
    static SCHEMA: OnceLock<SchemaDescriptor> = OnceLock::new();
    SCHEMA.get_or_init(|| ArrowSchemaConverter::new().convert(&schema()).expect("the output schema converts"))
}

/// How much one Parquet leaf column of a batch holds.
#[derive(Debug, Clone, Copy, Default)]
struct LeafSize {
    /// Values present (not null, and not under a null or empty parent).
    values: usize,
    /// An upper bound of their PLAIN-encoded bytes (or, for compacted files, of their
    /// dictionary-encoded ones where [`with_dictionary_estimates`] counted them).
    bytes: usize,
}

/// Leaves holding more values than this keep their PLAIN estimate in
/// [`with_dictionary_estimates`]: at that size a column chunk is worth its codec anyway, and
/// counting distinct values stays a small part of writing.
const DICTIONARY_ESTIMATE_MAX_VALUES: usize = 65_536;

/// Lowers the estimate of each dictionary-encoded string leaf (`dictionary(leaf)`) that holds
/// few distinct values to what its dictionary and indices take: a Region or an account ID
/// repeated in a thousand rows is a few thousand PLAIN bytes but about a hundred encoded ones,
/// and compressing it saves nothing while its reader pays a zstd context pair. Counting stops
/// as soon as the distinct values alone pass [`MIN_COMPRESSED_BYTES`].
fn with_dictionary_estimates(sizes: &mut [LeafSize], batches: &[RecordBatch], dictionary: impl Fn(usize) -> bool) {
    use std::collections::HashSet;
    let leaves: Vec<Vec<Option<&dyn Array>>> = batches.iter().map(leaf_arrays).collect();
    for (leaf, size) in sizes.iter_mut().enumerate() {
        if size.bytes < MIN_COMPRESSED_BYTES || size.values > DICTIONARY_ESTIMATE_MAX_VALUES || !dictionary(leaf) {
            continue;
        }
        let mut distinct: HashSet<&str> = HashSet::new();
        let mut dictionary_bytes = 0;
        let mut small = true;
        'batches: for batch in &leaves {
            let Some(array) = batch.get(leaf).copied().flatten() else { continue };
            let Some(strings) = array.as_string_opt::<i32>() else {
                small = false;
                break;
            };
            for value in strings.iter().flatten() {
                if distinct.insert(value) {
                    dictionary_bytes += value.len() + 4;
                    if dictionary_bytes >= MIN_COMPRESSED_BYTES {
                        small = false;
                        break 'batches;
                    }
                }
            }
        }
        if small {
            // RLE/bit-packed indices: at most this many bits per value (none for one value).
            let bits = (usize::BITS - distinct.len().saturating_sub(1).leading_zeros()) as usize;
            size.bytes = size.bytes.min(dictionary_bytes + (size.values * bits).div_ceil(8));
        }
    }
}

/// For each leaf column of `parquet`, how much it holds in all of `batches`; `None` when a batch
/// does not have those leaves.
fn leaf_totals(parquet: &SchemaDescriptor, batches: &[RecordBatch]) -> Option<Vec<LeafSize>> {
    let mut sizes = vec![LeafSize::default(); parquet.num_columns()];
    for batch in batches {
        let batch_sizes = leaf_sizes(batch);
        if batch_sizes.len() != sizes.len() {
            return None;
        }
        for (size, add) in sizes.iter_mut().zip(batch_sizes) {
            size.values += add.values;
            size.bytes += add.bytes;
        }
    }
    Some(sizes)
}

/// For each Parquet leaf column of `batch`, in schema order, its values array (`None` when
/// it holds no value: under a parent that is null or empty in every row).
fn leaf_arrays(batch: &RecordBatch) -> Vec<Option<&dyn Array>> {
    fn walk<'a>(array: &'a dyn Array, empty: bool, out: &mut Vec<Option<&'a dyn Array>>) {
        let empty = empty || array.null_count() == array.len();
        match array.data_type() {
            DataType::Struct(_) => {
                for child in array.as_struct().columns() {
                    walk(child.as_ref(), empty, out);
                }
            }
            DataType::List(_) => walk(array.as_list::<i32>().values().as_ref(), empty, out),
            DataType::Map(..) => walk(array.as_map().entries(), empty, out),
            _ => out.push((!empty).then_some(array)),
        }
    }
    let mut out = Vec::with_capacity(parquet_schema().num_columns());
    for column in batch.columns() {
        walk(column.as_ref(), false, &mut out);
    }
    out
}

/// For each Parquet leaf column of `batch`, in schema order, how much it holds.
fn leaf_sizes(batch: &RecordBatch) -> Vec<LeafSize> {
    leaf_arrays(batch)
        .into_iter()
        .map(|leaf| {
            let Some(array) = leaf else { return LeafSize::default() };
            let values = array.len() - array.null_count();
            let bytes = match array.data_type() {
                // Value bytes plus PLAIN's 4-byte length prefix per value.
                DataType::Utf8 => {
                    let offsets = array.as_string::<i32>().offsets();
                    (offsets[offsets.len() - 1] - offsets[0]) as usize + 4 * values
                }
                DataType::Boolean => values.div_ceil(8),
                other => other.primitive_width().unwrap_or(8) * values,
            };
            LeafSize { values, bytes }
        })
        .collect()
}

/// Arrow builders for the output schema, filled row by row by the record model
/// ([`Row::push_columns`]): one builder per schema node, depth first, and a cursor that walks them
/// in the order the model visits its fields. Typed builders instead of a generic serializer: no
/// field lookup by name per value, and finishing a batch moves buffers instead of converting them.
pub(crate) struct Columns {
    nodes: Vec<Node>,
    /// The node the next value goes to.
    at: usize,
    /// Where the row model and the schema first disagreed (a bug), reported at the end of the row.
    mismatch: Option<usize>,
}

/// The builder of one schema node.
enum Node {
    Utf8(StringBuilder),
    Boolean(BooleanBuilder),
    Int32(Int32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    /// A struct's validity; its children follow.
    Struct(NullBufferBuilder),
    /// A list's offsets and validity; its item's nodes follow, `span` of them.
    List {
        offsets: OffsetBufferBuilder<i32>,
        nulls: NullBufferBuilder,
        span: usize,
    },
    /// A map's offsets and validity; its entries struct, keys and values follow.
    Map {
        offsets: OffsetBufferBuilder<i32>,
        nulls: NullBufferBuilder,
    },
}

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Columns").field("nodes", &self.nodes.len()).field("at", &self.at).finish()
    }
}

impl Columns {
    /// Builders for `fields`; `Err` names a data type the model does not produce.
    pub(crate) fn new(fields: &Fields) -> Result<Self, DataError> {
        fn add(field: &Field, nodes: &mut Vec<Node>) -> Result<(), DataError> {
            match field.data_type() {
                DataType::Utf8 => nodes.push(Node::Utf8(StringBuilder::with_capacity(0, 0))),
                DataType::Boolean => nodes.push(Node::Boolean(BooleanBuilder::with_capacity(0))),
                DataType::Int32 => nodes.push(Node::Int32(Int32Builder::with_capacity(0))),
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    nodes.push(Node::Timestamp(TimestampMicrosecondBuilder::with_capacity(0)))
                }
                DataType::Struct(children) => {
                    nodes.push(Node::Struct(NullBufferBuilder::new(0)));
                    for child in children {
                        add(child, nodes)?;
                    }
                }
                DataType::List(item) => {
                    let at = nodes.len();
                    nodes.push(Node::Utf8(StringBuilder::with_capacity(0, 0))); // replaced below
                    add(item, nodes)?;
                    let span = nodes.len() - at - 1;
                    nodes[at] =
                        Node::List { offsets: OffsetBufferBuilder::new(0), nulls: NullBufferBuilder::new(0), span };
                }
                DataType::Map(entries, _) => {
                    nodes.push(Node::Map { offsets: OffsetBufferBuilder::new(0), nulls: NullBufferBuilder::new(0) });
                    add(entries, nodes)?;
                }
                other => return Err(DataError::model(format!("column {:?}: no builder for {other}", field.name()))),
            }
            Ok(())
        }
        let mut nodes = Vec::new();
        for field in fields {
            add(field, &mut nodes)?;
        }
        Ok(Columns { nodes, at: 0, mismatch: None })
    }

    /// Copies one row into the builders (see [`Row::push_columns`]).
    pub(crate) fn push(&mut self, row: &Row<'_>) -> Result<(), DataError> {
        self.begin_row();
        row.push_columns(self);
        self.end_row()
    }

    /// Starts a row: the cursor goes back to the first column.
    fn begin_row(&mut self) {
        self.at = 0;
    }

    /// Ends a row, which must have visited every node.
    fn end_row(&mut self) -> Result<(), DataError> {
        if self.at != self.nodes.len() {
            self.fail(self.at);
        }
        match self.mismatch {
            Some(at) => {
                Err(DataError::model(format!("the row model and the output schema disagree at column node {at}")))
            }
            None => Ok(()),
        }
    }

    fn fail(&mut self, at: usize) {
        self.mismatch.get_or_insert(at);
    }

    /// The next node, the cursor moved past it.
    fn next(&mut self) -> (usize, Option<&mut Node>) {
        let at = self.at;
        self.at += 1;
        (at, self.nodes.get_mut(at))
    }

    pub(crate) fn utf8(&mut self, value: Option<&str>) {
        match self.next() {
            (_, Some(Node::Utf8(b))) => b.append_option(value),
            (at, _) => self.fail(at),
        }
    }

    pub(crate) fn boolean(&mut self, value: Option<bool>) {
        match self.next() {
            (_, Some(Node::Boolean(b))) => b.append_option(value),
            (at, _) => self.fail(at),
        }
    }

    pub(crate) fn int32(&mut self, value: i32) {
        match self.next() {
            (_, Some(Node::Int32(b))) => b.append_value(value),
            (at, _) => self.fail(at),
        }
    }

    pub(crate) fn timestamp(&mut self, micros: Option<i64>) {
        match self.next() {
            (_, Some(Node::Timestamp(b))) => b.append_option(micros),
            (at, _) => self.fail(at),
        }
    }

    /// A struct, present or null; its fields follow (null ones when the struct is).
    pub(crate) fn struct_(&mut self, present: bool) {
        match self.next() {
            (_, Some(Node::Struct(nulls))) => nulls.append(present),
            (at, _) => self.fail(at),
        }
    }

    /// A list, present or null; `item` writes each item, starting at the item's first node.
    pub(crate) fn list<T>(&mut self, items: Option<&[T]>, mut item: impl FnMut(&mut Columns, &T)) {
        let span = match self.next() {
            (_, Some(Node::List { offsets, nulls, span })) => {
                offsets.push_length(items.map_or(0, <[T]>::len));
                nulls.append(items.is_some());
                *span
            }
            (at, _) => return self.fail(at),
        };
        let start = self.at;
        for value in items.unwrap_or_default() {
            self.at = start;
            item(self, value);
        }
        self.at = start + span;
    }

    /// A map of strings, present or null.
    pub(crate) fn str_map(&mut self, map: Option<&BTreeMap<Cow<'_, str>, Cow<'_, str>>>) {
        let at = self.at;
        self.at += 4;
        match self.nodes.get_mut(at..at + 4) {
            Some([Node::Map { offsets, nulls }, Node::Struct(entries), Node::Utf8(keys), Node::Utf8(values)]) => {
                offsets.push_length(map.map_or(0, BTreeMap::len));
                nulls.append(map.is_some());
                for (key, value) in map.into_iter().flatten() {
                    entries.append_non_null();
                    keys.append_value(key);
                    values.append_value(value);
                }
            }
            _ => self.fail(at),
        }
    }

    /// The rows pushed since the last call, as a batch of `schema`; the builders start over.
    pub(crate) fn finish(&mut self, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch, DataError> {
        fn build(field: &Field, nodes: &mut std::slice::IterMut<'_, Node>) -> Result<ArrayRef, DataError> {
            let mismatch = || DataError::model(format!("column {:?} does not match the row model", field.name()));
            let node = nodes.next().ok_or_else(mismatch)?;
            let array: ArrayRef = match (field.data_type(), node) {
                (DataType::Utf8, Node::Utf8(b)) => Arc::new(b.finish()),
                (DataType::Boolean, Node::Boolean(b)) => Arc::new(b.finish()),
                (DataType::Int32, Node::Int32(b)) => Arc::new(b.finish()),
                (DataType::Timestamp(TimeUnit::Microsecond, tz), Node::Timestamp(b)) => {
                    Arc::new(b.finish().with_timezone_opt(tz.clone()))
                }
                (DataType::Struct(children), Node::Struct(nulls)) => {
                    let nulls = nulls.finish();
                    let arrays = children.iter().map(|c| build(c, nodes)).collect::<Result<Vec<_>, _>>()?;
                    Arc::new(StructArray::try_new(children.clone(), arrays, nulls)?)
                }
                (DataType::List(item), Node::List { offsets, nulls, .. }) => {
                    let offsets = std::mem::replace(offsets, OffsetBufferBuilder::new(0)).finish();
                    let nulls = nulls.finish();
                    let values = build(item, nodes)?;
                    Arc::new(ListArray::try_new(item.clone(), offsets, values, nulls)?)
                }
                (DataType::Map(entries, ordered), Node::Map { offsets, nulls }) => {
                    let offsets = std::mem::replace(offsets, OffsetBufferBuilder::new(0)).finish();
                    let nulls = nulls.finish();
                    let values = build(entries, nodes)?;
                    let values = values.as_struct_opt().ok_or_else(mismatch)?.clone();
                    Arc::new(MapArray::try_new(entries.clone(), offsets, values, nulls, *ordered)?)
                }
                _ => return Err(mismatch()),
            };
            Ok(array)
        }
        let mut nodes = self.nodes.iter_mut();
        let columns = schema.fields().iter().map(|f| build(f, &mut nodes)).collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Counts the bytes that pass to the sink file, and keeps the first error the sink returned.
pub(crate) struct Counting {
    pub(crate) inner: Box<dyn SinkFile>,
    pub(crate) bytes: u64,
    pub(crate) fault: SinkFault,
}

impl Counting {
    pub(crate) fn new(inner: Box<dyn SinkFile>) -> (Counting, SinkFault) {
        let fault = SinkFault::default();
        (Counting { inner, bytes: 0, fault: fault.clone() }, fault)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf).map_err(|e| self.fault.record(e))?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.fault.record(e))
    }
}

/// The first error a sink file returned to the Parquet writer. The writer wraps I/O errors in its
/// own error type (or reports a later, unrelated failure), so without this a failed upload
/// would read as an encoding failure — permanent — and a file lost to an S3 blip would be
/// acknowledged with nothing archived. Every writer error is checked against it first. The
/// error is kept whole (its kind and what it wraps, such as a storage adapter's own error), so
/// whether it is worth retrying is decided on the sink's words, not the writer's.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkFault(Arc<Mutex<Option<Arc<io::Error>>>>);

/// A copy of the sink's first error: displays as it, and has it as its source.
#[derive(Debug)]
struct SinkCopy(Arc<io::Error>);

impl std::fmt::Display for SinkCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SinkCopy {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl SinkFault {
    /// Keeps `e` if it is the sink's first error; returns a copy for the writer.
    fn record(&self, e: io::Error) -> io::Error {
        let kind = e.kind();
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let first = slot.get_or_insert_with(|| Arc::new(e));
        io::Error::new(kind, SinkCopy(first.clone()))
    }

    /// The sink's error, if the sink failed (a copy: every later call reports it too).
    pub(crate) fn error(&self) -> Option<io::Error> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|first| io::Error::new(first.kind(), SinkCopy(first.clone())))
    }

    /// `error` as an [`OutputError`]: the sink's failure when there was one, else an encoding one.
    pub(crate) fn classify(&self, error: impl Into<DataError>) -> OutputError {
        match self.error() {
            Some(e) => OutputError::Sink(e),
            None => OutputError::Encode(error.into()),
        }
    }
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The sink (disk, S3 upload) failed: a storage failure, worth retrying.
    #[error("{0}")]
    Sink(#[source] io::Error),
    /// The rows could not be encoded: retrying the same rows cannot help.
    #[error("{0}")]
    Encode(#[source] DataError),
}

impl From<DataError> for OutputError {
    fn from(e: DataError) -> Self {
        OutputError::Encode(e)
    }
}

/// One Parquet output being written.
pub struct ParquetOutput {
    columns: Columns,
    /// Rows in `columns`.
    pending: usize,
    /// Rows built elsewhere ([`ParquetOutput::push_batch`]), oldest first, waiting to make up a
    /// batch of `batch_rows` (any rows of `columns` go first, when they meet), and their rows.
    fragments: std::collections::VecDeque<RecordBatch>,
    queued: usize,
    rows: u64,
    settings: WriterSettings,
    /// The sink file until the writer is opened (with the first batch), then the writer.
    file: Option<Box<dyn SinkFile>>,
    writer: Option<Writer>,
    /// The sink file's first error, shared with the writer's [`Counting`].
    fault: SinkFault,
    /// Where batches wait for an encoder thread ([`QUEUED`], but for tests).
    budget: &'static QueueBudget,
}

/// Where a [`ParquetOutput`]'s batches are encoded.
enum Writer {
    /// On the calling thread: outputs whose rows all fit in one batch (every delivery-sized
    /// output), where a thread would cost more than it overlaps.
    Inline(Box<ArrowWriter<Counting>>),
    /// On a thread of the output's own: outputs of several batches (large log files),
    /// so that encoding and compressing one batch overlaps with parsing the rows of the next, and a
    /// single large file uses two cores. Batches may wait for the encoder, up to
    /// [`ENCODER_QUEUE_BYTES`] of all encoders' together, so parsing runs on while a row group is
    /// closed.
    Background {
        batches: Sender<RecordBatch>,
        queued: Arc<EncoderQueue>,
        encoder: JoinHandle<Result<ArrowWriter<Counting>, parquet::errors::ParquetError>>,
    },
    /// The encoder thread stopped on an error, already reported.
    Failed,
}

impl Writer {
    /// Encodes on a thread of its own, or inline when no thread can be started (the writer is
    /// handed over only once the thread runs, so it is never lost with one that did not start).
    fn background(writer: ArrowWriter<Counting>, budget: &'static QueueBudget) -> Writer {
        let (batches, queue) = std::sync::mpsc::channel::<RecordBatch>();
        let (hand_over, handed) = std::sync::mpsc::channel::<ArrowWriter<Counting>>();
        let queued = Arc::new(EncoderQueue::new(budget));
        let encoded = Arc::clone(&queued);
        let encoder = std::thread::Builder::new().name("parquet-encode".into()).spawn(move || {
            // However the encoder ends, its queued bytes are given back and no sender waits on it.
            // Declared first, so dropped last: after the channel, with the batches still in it.
            let _ended = EndOnDrop(&encoded);
            let Ok(mut writer) = handed.recv() else {
                return Err(parquet::errors::ParquetError::General("no writer was handed to the encoder".into()));
            };
            for batch in queue {
                let bytes = batch.get_array_memory_size();
                writer.write(&batch)?;
                drop(batch);
                encoded.release(bytes);
            }
            // The last row group is closed here, not on the thread that joins this one: a file's
            // outputs then close theirs side by side (see `ParquetOutput::end_input`).
            writer.flush()?;
            Ok(writer)
        });
        match encoder {
            Ok(encoder) => match hand_over.send(writer) {
                Ok(()) => Writer::Background { batches, queued, encoder },
                Err(unsent) => Writer::Inline(Box::new(unsent.0)),
            },
            Err(_) => Writer::Inline(Box::new(writer)),
        }
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), DataError> {
        match self {
            Writer::Inline(writer) => Ok(writer.write(&batch)?),
            // A send fails only when the encoder stopped, on an error it returns at `finish`.
            Writer::Background { batches, queued, .. } => {
                if queued.reserve(batch.get_array_memory_size()) && batches.send(batch).is_ok() {
                    return Ok(());
                }
                // The encoder stopped on an error: report it now, not after the rest of the file.
                let stopped = std::mem::replace(self, Writer::Failed);
                match stopped.into_writer() {
                    Err(e) => Err(e),
                    Ok(_) => Err(stopped_error()),
                }
            }
            Writer::Failed => Err(stopped_error()),
        }
    }

    /// Tells an encoder thread that no batch follows, so it closes its last row group now: its
    /// channel is swapped for one already closed (a batch sent after this fails, as to a stopped
    /// encoder).
    fn end_input(&mut self) {
        if let Writer::Background { batches, .. } = self {
            *batches = std::sync::mpsc::channel().0;
        }
    }

    /// The writer, once every batch sent is encoded (the encoder's error if one failed). A panic
    /// of the encoder continues on the calling thread, as one of the conversion itself would.
    fn into_writer(self) -> Result<ArrowWriter<Counting>, DataError> {
        match self {
            Writer::Inline(writer) => Ok(*writer),
            Writer::Background { batches, encoder, .. } => {
                drop(batches);
                match encoder.join() {
                    Ok(written) => Ok(written?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Writer::Failed => Err(stopped_error()),
        }
    }
}

/// Arrow bytes of batches that may wait for encoder threads, all of a process's outputs together
/// (however many partitions, files and conversions are open). A large file's batches go to its
/// outputs in turn, and an encoder's work comes in bursts (a row group's 74 column chunks are
/// compressed at its close): with a rendezvous per output, parsing waited on them, and one large
/// file used 1.6 cores of 2; with 32 MiB (eight of its 4 MiB batches), 1.85 (`BENCHMARKS.md`,
/// "One large file on two cores"). Counted in bytes, so what it adds to memory does not depend on
/// the records.
pub const ENCODER_QUEUE_BYTES: usize = 32 << 20;

/// Bytes queued for encoder threads against a limit, and a signal when some were encoded.
struct QueueBudget {
    limit: usize,
    /// Bytes queued, and senders waiting for room.
    state: Mutex<(usize, usize)>,
    room: Condvar,
}

impl QueueBudget {
    const fn new(limit: usize) -> Self {
        QueueBudget { limit, state: Mutex::new((0, 0)), room: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What waits for all encoder threads of the process ([`ENCODER_QUEUE_BYTES`]).
static QUEUED: QueueBudget = QueueBudget::new(ENCODER_QUEUE_BYTES);

/// One encoder thread's part of a [`QueueBudget`]. Its fields change only under the budget's lock.
struct EncoderQueue {
    budget: &'static QueueBudget,
    /// Bytes sent to this encoder and not yet encoded.
    bytes: AtomicUsize,
    /// The encoder ended: nothing more can be sent to it, and its bytes were given back.
    ended: AtomicBool,
}

impl EncoderQueue {
    fn new(budget: &'static QueueBudget) -> Self {
        EncoderQueue { budget, bytes: AtomicUsize::new(0), ended: AtomicBool::new(false) }
    }

    /// Waits until `bytes` more fit in the budget (any batch fits when nothing is queued, so a
    /// batch larger than the budget still goes, alone), then counts them; false when the encoder
    /// has ended, so the batch is not to be sent. Every byte counted is given back, by the
    /// encoder as it encodes or when it ends, so a wait always ends.
    fn reserve(&self, bytes: usize) -> bool {
        let mut state = self.budget.lock();
        loop {
            if self.ended.load(Ordering::Relaxed) {
                return false;
            }
            if state.0 == 0 || state.0 + bytes <= self.budget.limit {
                state.0 += bytes;
                self.bytes.fetch_add(bytes, Ordering::Relaxed);
                return true;
            }
            state.1 += 1;
            state = self.budget.room.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.1 -= 1;
        }
    }

    /// A batch of `bytes` was encoded and dropped.
    fn release(&self, bytes: usize) {
        let mut state = self.budget.lock();
        let bytes = bytes.min(self.bytes.load(Ordering::Relaxed));
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        state.0 -= bytes;
        self.budget.room.notify_all();
    }

    /// The encoder ended (returned, failed or panicked): what was still queued for it is dropped
    /// with its channel, so its bytes are given back, and a sender waiting for room is let go.
    fn end(&self) {
        let mut state = self.budget.lock();
        self.ended.store(true, Ordering::Relaxed);
        state.0 -= self.bytes.swap(0, Ordering::Relaxed);
        self.budget.room.notify_all();
    }
}

/// Calls [`EncoderQueue::end`] when dropped, however the encoder thread ends.
struct EndOnDrop<'q>(&'q EncoderQueue);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A writer used after its encoder stopped (on an error reported then).
fn stopped_error() -> DataError {
    DataError::model("the encoder stopped on an earlier error")
}

impl std::fmt::Debug for ParquetOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetOutput").field("rows", &self.rows).finish()
    }
}

impl ParquetOutput {
    pub fn new(file: Box<dyn SinkFile>, settings: &WriterSettings) -> Result<Self, OutputError> {
        let columns = Columns::new(schema().fields())?;
        Ok(ParquetOutput {
            columns,
            pending: 0,
            fragments: Default::default(),
            queued: 0,
            rows: 0,
            settings: settings.clone(),
            file: Some(file),
            writer: None,
            fault: SinkFault::default(),
            budget: &QUEUED,
        })
    }

    /// Opens the writer; `background` encodes on a thread of its own (see [`Writer`]).
    fn open(&mut self, properties: WriterProperties, background: bool) -> Result<&mut Writer, DataError> {
        let file = self.file.take().ok_or_else(|| DataError::model("the Parquet writer was already opened"))?;
        // Parquet's own logical types carry every type we use (UTC timestamps, maps, lists), so the
        // embedded copy of the Arrow schema (6 KB per file) is left out.
        let options = ArrowWriterOptions::new()
            .with_properties(properties)
            .with_parquet_schema(parquet_schema().clone())
            .with_skip_arrow_metadata(true);
        let (counting, fault) = Counting::new(file);
        self.fault = fault;
        let writer = ArrowWriter::try_new_with_options(counting, schema(), options)?;
        let writer =
            if background { Writer::background(writer, self.budget) } else { Writer::Inline(Box::new(writer)) };
        Ok(self.writer.insert(writer))
    }

    /// Copies one row into the current batch.
    pub fn push(&mut self, row: &Row<'_>) -> Result<(), OutputError> {
        self.check_encoder()?;
        self.columns.push(row)?;
        self.pending += 1;
        self.rows += 1;
        if self.pending + self.queued >= self.settings.batch_rows.max(1) {
            self.flush_batch(false).map_err(|e| self.fault.classify(e))?;
        }
        Ok(())
    }

    /// Appends rows built elsewhere (by [`Columns`] of the output schema, on a parse worker),
    /// after every row pushed so far. They are cut into the same batches of `batch_rows` rows
    /// that [`ParquetOutput::push`] makes, so the file is the same whichever way its rows came.
    pub(crate) fn push_batch(&mut self, batch: RecordBatch) -> Result<(), OutputError> {
        self.check_encoder()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.queued += batch.num_rows();
        self.fragments.push_back(batch);
        let batch_rows = self.settings.batch_rows.max(1);
        while self.pending + self.queued >= batch_rows {
            self.flush_batch(false).map_err(|e| self.fault.classify(e))?;
        }
        Ok(())
    }

    /// An output whose encoder stopped on an error refuses every later row with that error.
    fn check_encoder(&self) -> Result<(), OutputError> {
        match self.writer {
            Some(Writer::Failed) => Err(self.fault.classify(stopped_error())),
            _ => Ok(()),
        }
    }

    /// The next batch: the rows of `columns`, then those of `fragments`, at most `batch_rows`
    /// of them unless `last`; `None` when no row is pending.
    fn next_batch(&mut self, last: bool) -> Result<Option<RecordBatch>, DataError> {
        if self.fragments.is_empty() {
            if self.pending == 0 {
                return Ok(None);
            }
            self.pending = 0;
            return Ok(Some(self.columns.finish(&schema())?));
        }
        if self.pending > 0 {
            let built = self.columns.finish(&schema())?;
            self.fragments.push_front(built);
            self.queued += std::mem::take(&mut self.pending);
        }
        let mut want = if last { self.queued } else { self.queued.min(self.settings.batch_rows.max(1)) };
        self.queued -= want;
        let mut parts = Vec::new();
        while want > 0 {
            let Some(front) = self.fragments.pop_front() else { break };
            if front.num_rows() > want {
                self.fragments.push_front(front.slice(want, front.num_rows() - want));
                parts.push(front.slice(0, want));
                break;
            }
            want -= front.num_rows();
            parts.push(front);
        }
        match parts.len() {
            1 => Ok(parts.pop()),
            _ => Ok(Some(arrow_select::concat::concat_batches(&schema(), &parts)?)),
        }
    }

    /// Hands the next batch to the writer; `last` when no row will follow.
    fn flush_batch(&mut self, last: bool) -> Result<(), DataError> {
        let Some(batch) = self.next_batch(last)? else { return Ok(()) };
        let writer = match self.writer {
            Some(ref mut writer) => writer,
            None if last => self.open(self.settings.properties_for_single_batch(&batch), false)?,
            None => self.open(self.settings.properties(), true)?,
        };
        writer.write(batch)?;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer; returns the rows, the bytes and the file, ready to commit. A failure of
    /// the sink is [`OutputError::Sink`] however the writer reported it.
    /// No more rows will come: the last batch goes to the writer, and an encoder thread is told
    /// to close its last row group. A file's outputs are all told before any is finished, so their
    /// encoder threads close their row groups side by side rather than one after another.
    pub fn end_input(&mut self) -> Result<(), OutputError> {
        self.check_encoder()?;
        self.flush_batch(true).map_err(|e| self.fault.classify(e))?;
        if let Some(writer) = self.writer.as_mut() {
            writer.end_input();
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(u64, u64, Box<dyn SinkFile>), OutputError> {
        let finished = self.finish_inner();
        finished.map_err(|e| self.fault.classify(e))
    }

    fn finish_inner(&mut self) -> Result<(u64, u64, Box<dyn SinkFile>), DataError> {
        self.flush_batch(true)?;
        if self.writer.is_none() {
            self.open(self.settings.properties(), false)?;
        }
        let writer = self.writer.take().ok_or_else(|| DataError::model("no Parquet writer is open"))?.into_writer()?;
        let counting = writer.into_inner()?;
        Ok((self.rows, counting.bytes, counting.inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{MemorySink, Sink};
    use bytes_reader::read_rows;

    mod bytes_reader {
        use crate::record::Row;
        pub fn read_rows(data: Vec<u8>) -> Vec<Row<'static>> {
            crate::archive::read_rows(bytes::Bytes::from(data), None).unwrap()
        }
    }

    /// Outputs written in one batch choose each leaf's codec and dictionary by what it holds;
    /// outputs of several batches keep the configured codec everywhere. JSON bodies carry no
    /// statistics in either.
    #[test]
    fn leaf_settings_follow_the_data() {
        use parquet::file::metadata::ColumnChunkMetaData;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // 40 rows: eventName is 520 bytes of one repeated value, sourceIPAddress 1,120 of another
        // (over 1 KiB as PLAIN bytes, one dictionary entry encoded), userAgent and
        // requestParameters are over 1 KiB of distinct values, errorCode and useridentity.arn
        // are absent.
        let texts: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    r#"{{"eventTime":"2024-01-01T00:00:{:02}Z","eventName":"GetObject","sourceIPAddress":"cloudtrail.amazonaws.com","userAgent":"aws-cli/2.15.{i} Python/3.11 Linux/6.1 exe/x86_64","userIdentity":{{"type":"Root"}},"resources":[{{"ARN":"a"}}],"requestParameters":{{"bucketName":"bucket-{i}","key":"some/long/key/{i}.json"}}}}"#,
                    i % 60
                )
            })
            .collect();
        let rows: Vec<Row<'_>> =
            texts.iter().enumerate().map(|(i, t)| Row::parse(t.as_bytes(), "key", i).unwrap()).collect();
        let write = |settings: &WriterSettings| {
            let sink = MemorySink::default();
            let mut out = ParquetOutput::new(sink.create("x.parquet").unwrap(), settings).unwrap();
            for row in &rows {
                out.push(row).unwrap();
            }
            out.finish().unwrap().2.commit().unwrap();
            let data = sink.get("x.parquet").unwrap();
            assert_eq!(read_rows(data.clone()), rows);
            SerializedFileReader::new(bytes::Bytes::from(data)).unwrap()
        };
        // (compressed, dictionary, statistics, offset index)
        let settings_of = |reader: &SerializedFileReader<bytes::Bytes>, path: &str| {
            let group = reader.metadata().row_group(0);
            assert_eq!(group.num_columns(), parquet_schema().num_columns());
            let column: &ColumnChunkMetaData =
                group.columns().iter().find(|c| c.column_path().string() == path).unwrap();
            (
                // The file records the codec, not its level.
                matches!(column.compression(), Compression::ZSTD(_)),
                column.dictionary_page_offset().is_some(),
                column.statistics().is_some(),
                column.offset_index_offset().is_some(),
            )
        };

        let single = write(&WriterSettings::default());
        let eventtime = |reader: &SerializedFileReader<bytes::Bytes>| {
            let group = reader.metadata().row_group(0);
            let column = group.columns().iter().find(|c| c.column_path().string() == "eventtime").unwrap();
            column.encodings().collect::<Vec<_>>()
        };
        assert!(eventtime(&single).contains(&Encoding::DELTA_BYTE_ARRAY), "{:?}", eventtime(&single));
        let cases = [
            ("useragent", (true, true, true, false)),
            ("requestparameters", (true, false, false, false)),
            ("eventname", (false, true, true, false)),
            ("sourceipaddress", (false, true, true, false)),
            ("useridentity.type", (false, true, true, false)),
            ("resources.list.item.arn", (false, true, true, false)),
            ("errorcode", (false, false, true, false)),
            ("useridentity.arn", (false, false, true, false)),
            ("resources.list.item.type", (false, false, true, false)),
        ];
        for (path, want) in cases {
            assert_eq!(settings_of(&single, path), want, "single batch: {path}");
        }

        let batched = write(&WriterSettings { batch_rows: 16, ..WriterSettings::default() });
        assert!(eventtime(&batched).contains(&Encoding::DELTA_BYTE_ARRAY), "{:?}", eventtime(&batched));
        for (path, want) in [
            ("eventname", (true, true, true, true)),
            ("errorcode", (true, true, true, true)),
            ("sourceipaddress", (true, true, true, true)),
            ("requestparameters", (true, false, false, true)),
        ] {
            assert_eq!(settings_of(&batched, path), want, "several batches: {path}");
        }
    }

    /// The typed builders produce exactly the batch a generic serializer of the model does,
    /// nulls and nesting included.
    #[test]
    fn columns_match_the_serialized_model() {
        let inputs = [
            r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"IAMUser","sessionContext":{"webIdFederationData":{"federatedProvider":"p","attributes":{"k":"v","a":"b"}},"attributes":{"mfaAuthenticated":"false"}}},"resources":[{"ARN":"a"},"x",{"type":"t","accountId":"1"}],"readOnly":false,"managementEvent":true,"requestParameters":{"n":1.0},"responseElements":null,"extra":[1]}"#,
            r#"{"eventTime":"2024-01-01T00:00:01Z","insightDetails":{"state":"Start"},"eventType":"AwsCloudTrailInsight","resources":[]}"#,
            r#"{"eventTime":"2024-01-01T00:00:02Z","userIdentity":{"sessionContext":{"webIdFederationData":{}}},"tlsDetails":{"tlsVersion":"TLSv1.3"},"addendum":{"reason":"r"}}"#,
            r#"{"eventTime":"nope","managementEvent":false,"userIdentity":{"onBehalfOf":{"userId":"u"},"inScopeOf":{"issuerType":"i"},"invokedByDelegate":{"accountId":"2"}}}"#,
            r#"{"eventTime":"2024-01-01T00:00:03Z","resources":[null]}"#,
        ];
        let rows: Vec<Row<'_>> =
            inputs.iter().enumerate().map(|(i, t)| Row::parse(t.as_bytes(), "key", i).unwrap()).collect();
        for n in 0..=rows.len() {
            let mut columns = Columns::new(schema().fields()).unwrap();
            let mut serialized = serde_arrow::ArrayBuilder::from_arrow(schema().fields()).unwrap();
            for row in &rows[..n] {
                columns.begin_row();
                row.push_columns(&mut columns);
                columns.end_row().unwrap();
                serialized.push(row).unwrap();
            }
            let typed = columns.finish(&schema()).unwrap();
            assert_eq!(typed, serialized.to_record_batch().unwrap(), "first {n} rows");
            // The builders start over after a batch.
            assert_eq!(columns.finish(&schema()).unwrap().num_rows(), 0);
        }
    }

    /// The same over a generated sample of realistic records (every service shape the generator
    /// knows), in batches of uneven size.
    #[test]
    fn columns_match_the_serialized_model_on_generated_records() {
        let texts = parquetrail_synth::sample_records_json(11, 1500);
        let rows: Vec<Row<'_>> =
            texts.iter().enumerate().map(|(i, t)| Row::parse(t.as_bytes(), "key", i).unwrap()).collect();
        let mut columns = Columns::new(schema().fields()).unwrap();
        for chunk in rows.chunks(317) {
            let mut serialized = serde_arrow::ArrayBuilder::from_arrow(schema().fields()).unwrap();
            for row in chunk {
                columns.begin_row();
                row.push_columns(&mut columns);
                columns.end_row().unwrap();
                serialized.push(row).unwrap();
            }
            assert_eq!(columns.finish(&schema()).unwrap(), serialized.to_record_batch().unwrap());
        }
    }

    #[test]
    fn codecs_parse() {
        assert_eq!("zstd".parse(), Ok(Codec::Zstd(3)));
        assert_eq!("zstd:9".parse(), Ok(Codec::Zstd(9)));
        assert_eq!("snappy".parse(), Ok(Codec::Snappy));
        assert!("zstd:0".parse::<Codec>().is_err());
        assert!("gzip".parse::<Codec>().unwrap_err().to_string().contains("unknown compression"));
    }

    /// Write → read back → compare, across the writer settings we ship.
    #[test]
    fn round_trips_across_settings() {
        let inputs = [
            r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"IAMUser","sessionContext":{"webIdFederationData":{"federatedProvider":"p","attributes":{"k":"v"}}}},"resources":[{"ARN":"a"},"x"],"readOnly":false,"managementEvent":true,"requestParameters":{"n":1.0},"responseElements":null,"extra":[1]}"#,
            r#"{"eventTime":"2024-01-01T00:00:01Z","insightDetails":{"state":"Start"},"eventType":"AwsCloudTrailInsight"}"#,
            r#"{"eventTime":"2024-01-01T00:00:02Z"}"#,
        ];
        let rows: Vec<Row<'_>> =
            inputs.iter().enumerate().map(|(i, t)| Row::parse(t.as_bytes(), "key", i).unwrap()).collect();
        for settings in [
            WriterSettings::default(),
            WriterSettings { codec: Codec::Snappy, row_group_rows: 1, batch_rows: 1 },
            WriterSettings { codec: Codec::None, row_group_rows: 2, batch_rows: 2 },
            WriterSettings { codec: Codec::Zstd(19), row_group_rows: 1000, batch_rows: 1 },
        ] {
            let sink = MemorySink::default();
            let mut out = ParquetOutput::new(sink.create("x.parquet").unwrap(), &settings).unwrap();
            for row in &rows {
                out.push(row).unwrap();
            }
            let (n, bytes, file) = out.finish().unwrap();
            file.commit().unwrap();
            let data = sink.get("x.parquet").unwrap();
            assert_eq!((n, bytes), (3, data.len() as u64));
            let back = read_rows(data);
            assert_eq!(back.len(), rows.len(), "{settings:?}");
            for (a, b) in rows.iter().zip(&back) {
                assert_eq!(a, b, "{settings:?}");
                assert_eq!(a.to_json(), b.to_json());
            }
        }
    }

    /// An output of several batches is encoded on its own thread: many batches (more rows than a
    /// row group) come back in order, and a sink that fails on that thread stops the next push with
    /// the sink's own error, not at the end of the file.
    #[test]
    fn background_encoding_keeps_order_and_reports_sink_errors() {
        let texts = parquetrail_synth::sample_records_json(3, 500);
        let rows: Vec<Row<'_>> =
            texts.iter().enumerate().map(|(i, t)| Row::parse(t.as_bytes(), "key", i).unwrap()).collect();
        let settings = WriterSettings { batch_rows: 7, row_group_rows: 64, ..WriterSettings::default() };
        let sink = MemorySink::default();
        let mut out = ParquetOutput::new(sink.create("x.parquet").unwrap(), &settings).unwrap();
        for row in &rows {
            out.push(row).unwrap();
        }
        assert!(matches!(out.writer, Some(Writer::Background { .. })));
        let (n, _, file) = out.finish().unwrap();
        file.commit().unwrap();
        assert_eq!(n, 500);
        assert_eq!(read_rows(sink.get("x.parquet").unwrap()), rows);

        // Ending the input first (the encoder closes its last row group on its own thread) writes
        // the same bytes, and a row after it is refused.
        let mut ended = ParquetOutput::new(sink.create("y.parquet").unwrap(), &settings).unwrap();
        rows.iter().for_each(|row| ended.push(row).unwrap());
        ended.end_input().unwrap();
        // Rows are buffered until a batch (7) is full; that batch is refused.
        let refused = rows.iter().take(7).map(|row| ended.push(row)).find_map(Result::err);
        assert!(refused.is_some());
        let mut ended = ParquetOutput::new(sink.create("z.parquet").unwrap(), &settings).unwrap();
        rows.iter().for_each(|row| ended.push(row).unwrap());
        ended.end_input().unwrap();
        let (n, _, file) = ended.finish().unwrap();
        file.commit().unwrap();
        assert_eq!(n, 500);
        assert_eq!(sink.get("z.parquet").unwrap(), sink.get("x.parquet").unwrap());

        /// Takes the file's magic bytes, written when the writer opens, then fails.
        struct Broken(usize);
        impl Write for Broken {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 + buf.len() > 4 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl SinkFile for Broken {
            fn commit(self: Box<Self>) -> io::Result<()> {
                Ok(())
            }
        }
        // At most one batch waits for the encoder (however busy the machine), as a large file's
        // several megabytes of batches do against the process's budget.
        let one_batch: &'static QueueBudget = Box::leak(Box::new(QueueBudget::new(1)));
        let mut out = ParquetOutput::new(Box::new(Broken(0)), &settings).unwrap();
        out.budget = one_batch;
        // The first row group (64 rows) is written to the sink by the encoder thread; the error
        // reaches a push soon after, and every later call reports it again. However the writer
        // reported it (flattened into text on the encoder thread), it is the sink's failure, not
        // an encoding one: a storage error must stay retryable.
        let failed = rows.iter().position(|row| out.push(row).is_err()).expect("a push fails");
        assert!(failed < 200, "the failure surfaced only at row {failed}");
        let again = out.push(&rows[0]).unwrap_err();
        assert!(matches!(&again, OutputError::Sink(e) if e.to_string() == "disk on fire"), "{again:?}");
        let mut out = ParquetOutput::new(Box::new(Broken(0)), &settings).unwrap();
        out.budget = one_batch;
        let error = rows.iter().find_map(|row| out.push(row).err()).unwrap();
        assert!(matches!(&error, OutputError::Sink(e) if e.to_string() == "disk on fire"), "{error:?}");

        // Outputs filled in turn from one thread share one budget: a batch for one waits for
        // another's encoder to drain (never for its own sender), and every row arrives.
        let (a, b) = (sink.create("a.parquet").unwrap(), sink.create("b.parquet").unwrap());
        let (mut a, mut b) = (ParquetOutput::new(a, &settings).unwrap(), ParquetOutput::new(b, &settings).unwrap());
        (a.budget, b.budget) = (one_batch, one_batch);
        for row in &rows {
            a.push(row).unwrap();
            b.push(row).unwrap();
        }
        a.end_input().unwrap();
        b.end_input().unwrap();
        for (out, name) in [(a, "a.parquet"), (b, "b.parquet")] {
            let (n, _, file) = out.finish().unwrap();
            file.commit().unwrap();
            assert_eq!(n, 500);
            assert_eq!(sink.get(name).unwrap(), sink.get("x.parquet").unwrap());
        }
        assert_eq!(one_batch.lock().0, 0, "every queued byte was given back");

        // The same on the calling thread (an output of one batch): the failure comes at finish.
        let single = WriterSettings { batch_rows: 10_000, ..WriterSettings::default() };
        let mut out = ParquetOutput::new(Box::new(Broken(0)), &single).unwrap();
        rows.iter().for_each(|row| out.push(row).unwrap());
        let error = out.finish().map(|_| ()).unwrap_err();
        assert!(matches!(&error, OutputError::Sink(e) if e.to_string() == "disk on fire"), "{error:?}");
        let core = error.into_error("key", "x.parquet");
        assert!(core.retryable(), "a sink failure must be retryable: {core}");
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// Waits (without a clock) until `n` senders wait for room in `budget`.
    fn until_waiting(budget: &QueueBudget, n: usize) {
        while budget.lock().1 != n {
            std::thread::yield_now();
        }
    }

    /// Batches wait for encoders up to the budget, all queues together; a batch larger than the
    /// budget goes when nothing else waits; what an encoder gives back lets a waiting sender go.
    #[test]
    fn the_budget_bounds_all_queues_together() {
        let budget: &'static QueueBudget = Box::leak(Box::new(QueueBudget::new(100)));
        let (a, b) = (EncoderQueue::new(budget), EncoderQueue::new(budget));
        assert!(a.reserve(60));
        assert!(b.reserve(40));
        assert_eq!(budget.lock().0, 100);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                assert!(b.reserve(30));
                // Room was made before this reservation was counted.
                budget.lock().0
            });
            until_waiting(budget, 1);
            a.release(60);
            assert_eq!(waiting.join().unwrap(), 70);
        });
        b.release(70);
        assert_eq!(budget.lock().0, 0);
        // Larger than the whole budget: goes alone, and the next one waits for it.
        assert!(a.reserve(500));
        std::thread::scope(|s| {
            let waiting = s.spawn(|| b.reserve(1));
            until_waiting(budget, 1);
            a.release(500);
            assert!(waiting.join().unwrap());
        });
        b.release(1);
        assert_eq!(budget.lock().0, 0);
    }

    /// An encoder that ends gives back what was queued for it, refuses more, and lets a sender
    /// waiting for room go: nothing waits forever on a failed encoder.
    #[test]
    fn an_ended_encoder_gives_its_bytes_back() {
        let budget: &'static QueueBudget = Box::leak(Box::new(QueueBudget::new(100)));
        let (a, b) = (EncoderQueue::new(budget), EncoderQueue::new(budget));
        assert!(a.reserve(80));
        std::thread::scope(|s| {
            let waiting_on_a = s.spawn(|| a.reserve(50));
            let waiting_on_b = s.spawn(|| b.reserve(50));
            until_waiting(budget, 2);
            a.end();
            // a's sender is refused; b's gets the room a gave back.
            assert!(!waiting_on_a.join().unwrap());
            assert!(waiting_on_b.join().unwrap());
        });
        assert_eq!(budget.lock().0, 50);
        assert!(!a.reserve(1));
        b.end();
        assert_eq!(budget.lock().0, 0);
    }
}
