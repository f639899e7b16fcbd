//! Reading an archive back: rows from Parquet, a summary of what an archive holds, and export to
//! CloudTrail's own JSON (JSON Lines or the `{"Records":[…]}` envelope).
//!
//! Walking directories or buckets is the adapters' job; this module works on one Parquet file's
//! bytes at a time (anything implementing [`ChunkReader`]: `bytes::Bytes`, `std::fs::File`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use serde::Deserialize;

use crate::record::{Row, UserIdentity};
use crate::{DataError, Error, Result};

fn archive_error(path: &str, e: impl Into<DataError>) -> Error {
    Error::Archive { path: path.to_string(), source: e.into() }
}

/// Reads every row of one Parquet file of the archive. `path` only names the file in errors.
/// Holds the whole file's rows: for files of unknown size use [`row_batches`].
pub fn read_rows<R: ChunkReader + 'static>(reader: R, path: Option<&str>) -> Result<Vec<Row<'static>>> {
    let mut rows = Vec::new();
    for batch in row_batches(reader, path, 8192)? {
        rows.append(&mut batch?);
    }
    Ok(rows)
}

/// The rows of one Parquet file of the archive, `batch_rows` at a time, read as they are asked
/// for: memory holds one row group's pages and one batch, whatever the file's size.
pub fn row_batches<R: ChunkReader + 'static>(
    reader: R,
    path: Option<&str>,
    batch_rows: usize,
) -> Result<impl Iterator<Item = Result<Vec<Row<'static>>>>> {
    let name = path.unwrap_or("parquet file").to_string();
    let reader = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(|e| archive_error(&name, e))?
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(|e| archive_error(&name, e))?;
    Ok(reader.map(move |batch| {
        let batch = batch.map_err(|e| archive_error(&name, e))?;
        serde_arrow::from_record_batch(&batch).map_err(|e| archive_error(&name, e))
    }))
}

/// Which rows to export or summarise (partition-level filters are applied by the caller from the
/// path, before a file is even opened).
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Keep only these event names (empty: all).
    pub event_names: BTreeSet<String>,
    /// Keep only these event sources (empty: all).
    pub event_sources: BTreeSet<String>,
    /// Keep rows with `eventTime` at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Keep rows with `eventTime` before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl RowFilter {
    pub fn matches(&self, row: &Row<'_>) -> bool {
        let name_ok =
            self.event_names.is_empty() || row.eventname.as_deref().is_some_and(|n| self.event_names.contains(n));
        let source_ok =
            self.event_sources.is_empty() || row.eventsource.as_deref().is_some_and(|n| self.event_sources.contains(n));
        let ts = row.eventtime_ts;
        let since_ok = self.since.is_none_or(|s| ts.is_some_and(|t| t >= s.timestamp_micros()));
        let until_ok = self.until.is_none_or(|u| ts.is_some_and(|t| t < u.timestamp_micros()));
        name_ok && source_ok && since_ok && until_ok
    }
}

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// One original record per line.
    #[default]
    JsonLines,
    /// CloudTrail's own `{"Records":[…]}` envelope.
    Records,
}

/// Writes records to `out` in a format; call [`Exporter::finish`] at the end.
#[derive(Debug)]
pub struct Exporter<W: Write> {
    out: W,
    format: ExportFormat,
    written: u64,
}

impl<W: Write> Exporter<W> {
    pub fn new(mut out: W, format: ExportFormat) -> io::Result<Self> {
        if format == ExportFormat::Records {
            out.write_all(b"{\"Records\":[")?;
        }
        Ok(Exporter { out, format, written: 0 })
    }

    pub fn write(&mut self, row: &Row<'_>) -> io::Result<()> {
        let json = row.to_json();
        match self.format {
            ExportFormat::JsonLines => {
                self.out.write_all(json.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            ExportFormat::Records => {
                if self.written > 0 {
                    self.out.write_all(b",\n")?;
                }
                self.out.write_all(json.as_bytes())?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.format == ExportFormat::Records {
            self.out.write_all(b"]}\n")?;
        }
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

/// The few columns a summary needs; read with a projection so summaries stay cheap.
#[derive(Debug, Deserialize)]
struct SummaryRow {
    eventname: Option<String>,
    eventsource: Option<String>,
    errorcode: Option<String>,
    eventtime_ts: Option<i64>,
    useridentity: Option<UserIdentity<'static>>,
    additionaleventdata: Option<String>,
    responseelements: Option<String>,
}

/// What an archive holds, accumulated file by file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub by_source: BTreeMap<String, u64>,
    pub by_name: BTreeMap<String, u64>,
    pub by_error: BTreeMap<String, u64>,
    pub by_identity_type: BTreeMap<String, u64>,
    pub errors: u64,
    pub root_calls: u64,
    pub console_logins: u64,
    pub console_logins_without_mfa: u64,
    pub console_login_failures: u64,
    #[serde(skip)]
    min_ts: Option<i64>,
    #[serde(skip)]
    max_ts: Option<i64>,
}

impl Summary {
    /// Adds one Parquet file of the archive.
    pub fn add_file<R: ChunkReader + 'static>(&mut self, reader: R, bytes: u64, path: &str) -> Result<()> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| archive_error(path, e))?;
        let wanted = [
            "eventname",
            "eventsource",
            "errorcode",
            "eventtime_ts",
            "useridentity",
            "additionaleventdata",
            "responseelements",
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
        let reader = builder.with_projection(mask).build().map_err(|e| archive_error(path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| archive_error(path, e))?;
            let rows: Vec<SummaryRow> = serde_arrow::from_record_batch(&batch).map_err(|e| archive_error(path, e))?;
            for row in rows {
                self.add_row(row);
            }
        }
        self.files += 1;
        self.bytes += bytes;
        Ok(())
    }

    fn add_row(&mut self, row: SummaryRow) {
        self.rows += 1;
        *self.by_source.entry(row.eventsource.unwrap_or_default()).or_default() += 1;
        let name = row.eventname.unwrap_or_default();
        *self.by_name.entry(name.clone()).or_default() += 1;
        if let Some(code) = row.errorcode {
            self.errors += 1;
            *self.by_error.entry(code).or_default() += 1;
        }
        let identity_type = row.useridentity.as_ref().and_then(|u| u.r#type.as_deref()).unwrap_or("(none)").to_string();
        if identity_type == "Root" {
            self.root_calls += 1;
        }
        *self.by_identity_type.entry(identity_type).or_default() += 1;
        if name == "ConsoleLogin" {
            self.console_logins += 1;
            let extra = row.additionaleventdata.unwrap_or_default();
            if extra.contains("\"MFAUsed\":\"No\"") {
                self.console_logins_without_mfa += 1;
            }
            if row.responseelements.unwrap_or_default().contains("\"ConsoleLogin\":\"Failure\"") {
                self.console_login_failures += 1;
            }
        }
        if let Some(ts) = row.eventtime_ts {
            self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
            self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
            let fmt = |t: i64| {
                DateTime::from_timestamp_micros(t).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            };
            self.first_event = self.min_ts.and_then(fmt);
            self.last_event = self.max_ts.and_then(fmt);
        }
    }

    /// The `n` largest entries of a count map, largest first (ties by name).
    pub fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = map.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}
