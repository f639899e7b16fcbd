//! Rows → Arrow batches → Parquet, with the writer settings chosen in one place.
//!
//! Rows borrow from the reader's buffer, so each is copied into an Arrow builder as soon as it is
//! made ([`serde_arrow::ArrayBuilder`]); every `batch_rows` rows become a `RecordBatch` handed to
//! the Parquet writer, which cuts row groups at `row_group_rows`. Memory per open partition is
//! one batch of rows plus one row group of encoded pages, however large the input file.
//!
//! Most outputs are small (one delivery's rows of one partition: tens of rows), and for them the
//! fixed cost per column chunk dominates: parquet-rs creates a zstd compressor *and* decompressor
//! for every chunk it compresses, and a dictionary page for every dictionary-encoded one. So the
//! writer is opened only when the first batch is ready, and when that batch is the whole output,
//! leaf columns that hold no value at all in it (about 40% of them in typical deliveries) are
//! written uncompressed and without a dictionary: the same nulls in fewer bytes, at a fraction of
//! the CPU (see `BENCHMARKS.md`).

use std::io::{self, Write};
use std::sync::OnceLock;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use serde_arrow::ArrayBuilder;

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
    type Err = String;
    /// `zstd`, `zstd:LEVEL`, `snappy` or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "zstd" => Ok(Codec::Zstd(3)),
            None if s == "snappy" => Ok(Codec::Snappy),
            None if s == "none" || s == "uncompressed" => Ok(Codec::None),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Codec::Zstd(l)),
                _ => Err(format!("zstd level must be 1 to 22, got {level:?}")),
            },
            _ => Err(format!("unknown compression {s:?} (expected zstd, zstd:LEVEL, snappy or none)")),
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
        // 128 Ki rows is ~200 MB of CloudTrail JSON and ~10 MB of Parquet: large enough that
        // readers see few row groups, small enough that a Lambda holds one in memory.
        WriterSettings { codec: Codec::Zstd(3), row_group_rows: 128 * 1024, batch_rows: 8 * 1024 }
    }
}

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

    /// The properties of an output whose rows are all in `batch`: leaf columns without a single
    /// value are neither compressed nor dictionary-encoded (nothing to gain, a codec to pay for).
    fn properties_for_single_batch(&self, batch: &RecordBatch) -> WriterProperties {
        let leaves = parquet_schema().columns();
        let empty = empty_leaves(batch);
        let mut builder = self.builder();
        if empty.len() == leaves.len() {
            for (leaf, _) in leaves.iter().zip(empty).filter(|(_, empty)| *empty) {
                builder = builder
                    .set_column_compression(leaf.path().clone(), Compression::UNCOMPRESSED)
                    .set_column_dictionary_enabled(leaf.path().clone(), false);
            }
        }
        builder.build()
    }

    fn builder(&self) -> WriterPropertiesBuilder {
        let compression = match self.codec {
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            // Per-delivery files are small (a few KB of gzip): page indexes would cost more than
            // they save. Chunk statistics still let engines skip whole files and row groups.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_created_by(concat!("parquetrail version ", env!("CARGO_PKG_VERSION")).to_string());
        for column in NO_DICTIONARY {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        builder
    }
}

/// The Parquet schema of the outputs, converted from the Arrow schema once.
fn parquet_schema() -> &'static SchemaDescriptor {
    static SCHEMA: OnceLock<SchemaDescriptor> = OnceLock::new();
    SCHEMA.get_or_init(|| ArrowSchemaConverter::new().convert(&schema()).expect("the output schema converts"))
}

/// For each Parquet leaf column of `batch`, in schema order: whether it certainly holds no value
/// (every row is null there or under a null or empty parent).
fn empty_leaves(batch: &RecordBatch) -> Vec<bool> {
    fn walk(array: &dyn Array, empty: bool, out: &mut Vec<bool>) {
        let empty = empty || array.null_count() == array.len();
        match array.data_type() {
            DataType::Struct(_) => {
                for child in array.as_struct().columns() {
                    walk(child.as_ref(), empty, out);
                }
            }
            DataType::List(_) => walk(array.as_list::<i32>().values().as_ref(), empty, out),
            DataType::Map(..) => walk(array.as_map().entries(), empty, out),
            _ => out.push(empty),
        }
    }
    let mut out = Vec::with_capacity(parquet_schema().num_columns());
    for column in batch.columns() {
        walk(column.as_ref(), false, &mut out);
    }
    out
}

/// Counts the bytes that pass to the sink file.
struct Counting {
    inner: Box<dyn SinkFile>,
    bytes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One Parquet output being written.
pub struct ParquetOutput {
    builder: ArrayBuilder,
    pending: usize,
    rows: u64,
    settings: WriterSettings,
    /// The sink file until the writer is opened (with the first batch), then the writer.
    file: Option<Box<dyn SinkFile>>,
    writer: Option<ArrowWriter<Counting>>,
}

impl std::fmt::Debug for ParquetOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetOutput").field("rows", &self.rows).finish()
    }
}

impl ParquetOutput {
    pub fn new(file: Box<dyn SinkFile>, settings: &WriterSettings) -> Result<Self, String> {
        let builder = ArrayBuilder::from_arrow(schema().fields()).map_err(|e| e.to_string())?;
        Ok(ParquetOutput { builder, pending: 0, rows: 0, settings: settings.clone(), file: Some(file), writer: None })
    }

    fn open(&mut self, properties: WriterProperties) -> Result<&mut ArrowWriter<Counting>, String> {
        let file = self.file.take().ok_or("the Parquet writer was already opened")?;
        // Parquet's own logical types carry every type we use (UTC timestamps, maps, lists), so the
        // embedded copy of the Arrow schema (6 KB per file) is left out.
        let options = ArrowWriterOptions::new()
            .with_properties(properties)
            .with_parquet_schema(parquet_schema().clone())
            .with_skip_arrow_metadata(true);
        let writer = ArrowWriter::try_new_with_options(Counting { inner: file, bytes: 0 }, schema(), options)
            .map_err(|e| e.to_string())?;
        Ok(self.writer.insert(writer))
    }

    /// Copies one row into the current batch.
    pub fn push(&mut self, row: &Row<'_>) -> Result<(), String> {
        self.builder.push(row).map_err(|e| e.to_string())?;
        self.pending += 1;
        self.rows += 1;
        if self.pending >= self.settings.batch_rows.max(1) {
            self.flush_batch(false)?;
        }
        Ok(())
    }

    /// Hands the pending rows to the writer; `last` when no row will follow.
    fn flush_batch(&mut self, last: bool) -> Result<(), String> {
        if self.pending == 0 {
            return Ok(());
        }
        let batch = self.builder.to_record_batch().map_err(|e| e.to_string())?;
        let writer = match self.writer {
            Some(ref mut writer) => writer,
            None if last => self.open(self.settings.properties_for_single_batch(&batch))?,
            None => self.open(self.settings.properties())?,
        };
        writer.write(&batch).map_err(|e| e.to_string())?;
        self.pending = 0;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer; returns the rows, the bytes and the file, ready to commit.
    pub fn finish(mut self) -> Result<(u64, u64, Box<dyn SinkFile>), String> {
        self.flush_batch(true)?;
        if self.writer.is_none() {
            self.open(self.settings.properties())?;
        }
        let writer = self.writer.take().ok_or("the Parquet writer is open")?;
        let counting = writer.into_inner().map_err(|e| e.to_string())?;
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

    /// Outputs written in one batch leave their empty leaf columns uncompressed and without a
    /// dictionary; the others keep the configured codec.
    #[test]
    fn empty_leaf_columns_skip_the_codec() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let text = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"GetObject","userIdentity":{"type":"Root"},"resources":[{"ARN":"a"}]}"#;
        let row = Row::parse(text.as_bytes(), "key", 0).unwrap();
        let sink = MemorySink::default();
        let mut out = ParquetOutput::new(sink.create("x.parquet").unwrap(), &WriterSettings::default()).unwrap();
        out.push(&row).unwrap();
        out.finish().unwrap().2.commit().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(sink.get("x.parquet").unwrap())).unwrap();
        let group = reader.metadata().row_group(0);
        assert_eq!(group.num_columns(), parquet_schema().num_columns());
        let codec = |path: &str| {
            let column = group.columns().iter().find(|c| c.column_path().string() == path).unwrap();
            // The file records the codec, not its level.
            let compressed = matches!(column.compression(), Compression::ZSTD(_));
            (compressed, column.dictionary_page_offset().is_some())
        };
        for path in ["eventname", "useridentity.type", "resources.list.item.arn"] {
            assert_eq!(codec(path), (true, true), "{path}");
        }
        for path in ["errorcode", "useridentity.arn", "resources.list.item.type"] {
            assert_eq!(codec(path), (false, false), "{path}");
        }
        assert_eq!(read_rows(sink.get("x.parquet").unwrap()), vec![row]);
    }

    #[test]
    fn codecs_parse() {
        assert_eq!("zstd".parse(), Ok(Codec::Zstd(3)));
        assert_eq!("zstd:9".parse(), Ok(Codec::Zstd(9)));
        assert_eq!("snappy".parse(), Ok(Codec::Snappy));
        assert!("zstd:0".parse::<Codec>().is_err());
        assert!("gzip".parse::<Codec>().unwrap_err().contains("unknown compression"));
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
}
