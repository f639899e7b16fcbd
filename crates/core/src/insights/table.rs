//! The `metrics` dataset's Parquet files, and metrics read straight from the `events` dataset.
//!
//! A metrics file holds one row per series and minute ([`MetricRow`]) with the columns
//! `account, region, eventsource, eventname, errorcode, readonly, eventcategory, minute, count,
//! identities, identities_other, useragents, useragents_other` — the last four the bounded tallies
//! of [`TopValues`] as lists of `{value, count}` plus the count of events not listed.

use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, Fields, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use serde::{Deserialize, Serialize};

use super::metrics::{EventFields, MetricRow, Metrics, MinuteCell, SeriesKey, TopValues, ValueCount};
use crate::{DataError, Error, Result};

fn error(path: &str, e: impl Into<DataError>) -> Error {
    Error::Archive { path: path.to_string(), source: e.into() }
}

#[derive(Serialize, Deserialize)]
struct Flat {
    account: String,
    region: String,
    eventsource: String,
    eventname: String,
    errorcode: Option<String>,
    readonly: Option<bool>,
    eventcategory: String,
    minute: i64,
    count: i64,
    identities: Vec<Pair>,
    identities_other: i64,
    useragents: Vec<Pair>,
    useragents_other: i64,
}

#[derive(Serialize, Deserialize)]
struct Pair {
    value: String,
    count: i64,
}

fn pairs(t: &TopValues) -> Vec<Pair> {
    t.values.iter().map(|v| Pair { value: v.value.clone(), count: v.count as i64 }).collect()
}

fn tally(pairs: Vec<Pair>, other: i64) -> TopValues {
    TopValues {
        values: pairs.into_iter().map(|p| ValueCount { value: p.value, count: p.count.max(0) as u64 }).collect(),
        other: other.max(0) as u64,
    }
}

/// The Arrow fields of a metrics file.
pub fn metrics_fields() -> Vec<FieldRef> {
    let pair = DataType::Struct(Fields::from(vec![
        Field::new("value", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
    ]));
    let list = DataType::List(Arc::new(Field::new("element", pair, false)));
    [
        Field::new("account", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("eventsource", DataType::Utf8, false),
        Field::new("eventname", DataType::Utf8, false),
        Field::new("errorcode", DataType::Utf8, true),
        Field::new("readonly", DataType::Boolean, true),
        Field::new("eventcategory", DataType::Utf8, false),
        Field::new("minute", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("count", DataType::Int64, false),
        Field::new("identities", list.clone(), false),
        Field::new("identities_other", DataType::Int64, false),
        Field::new("useragents", list, false),
        Field::new("useragents_other", DataType::Int64, false),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

/// Rows per row group of a metrics file.
const ROW_GROUP: usize = 64 * 1024;

/// Encodes metric rows as one Parquet file (zstd; `metadata` goes into the footer's key-value
/// metadata, e.g. what the file was built from).
pub fn encode_metrics(rows: &[MetricRow], metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
    let fields = metrics_fields();
    let schema = Arc::new(arrow_schema::Schema::new(fields.clone()));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.to_string(), v.to_string()))
                .collect(),
        ))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| error("metrics", e))?;
    for chunk in rows.chunks(ROW_GROUP) {
        let flat: Vec<Flat> = chunk
            .iter()
            .map(|r| Flat {
                account: r.key.account.clone(),
                region: r.key.region.clone(),
                eventsource: r.key.eventsource.clone(),
                eventname: r.key.eventname.clone(),
                errorcode: r.key.errorcode.clone(),
                readonly: r.key.readonly,
                eventcategory: r.key.eventcategory.clone(),
                minute: r.minute,
                count: r.cell.count as i64,
                identities: pairs(&r.cell.identities),
                identities_other: r.cell.identities.other as i64,
                useragents: pairs(&r.cell.user_agents),
                useragents_other: r.cell.user_agents.other as i64,
            })
            .collect();
        let batch = serde_arrow::to_record_batch(&fields, &flat).map_err(|e| error("metrics", e))?;
        writer.write(&batch).map_err(|e| error("metrics", e))?;
    }
    writer.close().map_err(|e| error("metrics", e))?;
    Ok(out)
}

/// Reads a metrics file into `metrics`. Returns the rows read.
pub fn decode_metrics<R: ChunkReader + 'static>(reader: R, path: &str, metrics: &mut Metrics) -> Result<u64> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(|e| error(path, e))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| error(path, e))?;
    let mut n = 0;
    for batch in reader {
        let batch = batch.map_err(|e| error(path, e))?;
        let flat: Vec<Flat> = serde_arrow::from_record_batch(&batch).map_err(|e| error(path, e))?;
        for f in flat {
            n += 1;
            metrics.add_metric(&MetricRow {
                key: SeriesKey {
                    account: f.account,
                    region: f.region,
                    eventsource: f.eventsource,
                    eventname: f.eventname,
                    errorcode: f.errorcode,
                    readonly: f.readonly,
                    eventcategory: f.eventcategory,
                },
                minute: f.minute,
                cell: MinuteCell {
                    count: f.count.max(0) as u64,
                    identities: tally(f.identities, f.identities_other),
                    user_agents: tally(f.useragents, f.useragents_other),
                },
            });
        }
    }
    Ok(n)
}

/// The columns of an `events` file that metrics need.
#[derive(Deserialize)]
struct EventColumns {
    eventtime_ts: Option<i64>,
    recipientaccountid: Option<String>,
    useridentity: Option<IdentityColumns>,
    awsregion: Option<String>,
    eventsource: Option<String>,
    eventname: Option<String>,
    errorcode: Option<String>,
    readonly: Option<String>,
    eventcategory: Option<String>,
    managementevent: Option<bool>,
    eventtype: Option<String>,
    useragent: Option<String>,
}

#[derive(Deserialize)]
struct IdentityColumns {
    accountid: Option<String>,
    arn: Option<String>,
}

/// Counts the events of one `events` Parquet file into `metrics`, reading only the columns
/// metrics need. Returns the events counted.
pub fn add_events_file<R: ChunkReader + 'static>(reader: R, path: &str, metrics: &mut Metrics) -> Result<u64> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| error(path, e))?;
    let wanted = [
        "eventtime_ts",
        "recipientaccountid",
        "useridentity",
        "awsregion",
        "eventsource",
        "eventname",
        "errorcode",
        "readonly",
        "eventcategory",
        "managementevent",
        "eventtype",
        "useragent",
    ];
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).with_batch_size(8192).build().map_err(|e| error(path, e))?;
    let mut n = 0;
    for batch in reader {
        let batch = batch.map_err(|e| error(path, e))?;
        let rows: Vec<EventColumns> = serde_arrow::from_record_batch(&batch).map_err(|e| error(path, e))?;
        for r in &rows {
            let identity = r.useridentity.as_ref();
            let fields = EventFields {
                time: r.eventtime_ts,
                recipient_account: r.recipientaccountid.as_deref(),
                identity_account: identity.and_then(|u| u.accountid.as_deref()),
                region: r.awsregion.as_deref(),
                source: r.eventsource.as_deref(),
                name: r.eventname.as_deref(),
                error_code: r.errorcode.as_deref(),
                read_only: r.readonly.as_deref(),
                category: r.eventcategory.as_deref(),
                management: r.managementevent,
                is_insight: r.eventtype.as_deref() == Some("AwsCloudTrailInsight")
                    || r.eventcategory.as_deref() == Some("Insight"),
                arn: identity.and_then(|u| u.arn.as_deref()),
                user_agent: r.useragent.as_deref(),
            };
            n += u64::from(metrics.add_event(&fields));
        }
    }
    Ok(n)
}
