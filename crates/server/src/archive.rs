//! The backend over a parquetrail archive: the server's validated query → the core's
//! [`lookup::LookupQuery`], one page read by `parquetrail-ingest`'s [`ArchiveReader`] (manifests,
//! partition and row-group pruning, local or S3), each hit → core's [`lookup::LookupEvent`],
//! CloudTrail's `Event` shape.
//!
//! Insights metrics: the `metrics` dataset's partitions dated in the request's range (of its
//! Region) are read without writing anything ([`insights::load_metrics`]; a partition whose
//! metrics are missing or out of date is counted from its events in memory), and the core's
//! [`metric_data`] makes the series.

use chrono::{DateTime, TimeZone, Utc};
use parquetrail_core::insights::series::{MetricQuery, metric_data};
use parquetrail_core::lookup::{self, Cursor, LookupError};
use parquetrail_ingest::insights;
use parquetrail_ingest::reader::{ArchiveReader, Page, ReadError};

use crate::{
    Error, EventCategory, LookupBackend, LookupPage, LookupQuery, MetricDataPage, MetricDataQuery, MetricDataType,
    Result,
};

/// Answers `LookupEvents` from an archive.
#[derive(Debug, Clone)]
pub struct ArchiveBackend {
    reader: ArchiveReader,
    include_data_events: bool,
}

impl ArchiveBackend {
    /// Lookups over `reader`'s archive. Like CloudTrail's Event history, data events are left
    /// out unless `include_data_events`.
    pub fn new(reader: ArchiveReader, include_data_events: bool) -> ArchiveBackend {
        ArchiveBackend { reader, include_data_events }
    }

    /// The core's query for the server's: no bound is the archive's whole span.
    fn query(&self, q: &LookupQuery) -> Result<lookup::LookupQuery> {
        let earliest = Utc.timestamp_opt(0, 0).single().expect("the epoch is a time");
        let mut query =
            lookup::LookupQuery::new(q.start.unwrap_or(earliest), q.end.unwrap_or(DateTime::<Utc>::MAX_UTC));
        for attribute in &q.attributes {
            query.attributes.push((attribute.key, attribute.value.clone()));
        }
        query.regions = q.region.iter().cloned().collect();
        query.insights = q.category == EventCategory::Insights;
        query.include_data_events = self.include_data_events;
        query.max_results = q.max_results;
        Ok(query)
    }
}

#[async_trait::async_trait]
impl LookupBackend for ArchiveBackend {
    async fn lookup(&self, q: LookupQuery) -> Result<LookupPage> {
        let query = self.query(&q)?;
        let cursor =
            q.cursor.as_deref().map(Cursor::decode).transpose().map_err(|e| Error::InvalidCursor(e.to_string()))?;
        let page = self.reader.lookup(&query, cursor.as_ref()).await.map_err(|e| match e {
            ReadError::Invalid(LookupError::InvalidNextToken(why)) => Error::InvalidCursor(why),
            other => {
                tracing::error!(error = %other, "lookup failed");
                Error::Backend(other.into())
            }
        })?;
        let events = page.events.iter().map(lookup::lookup_event).collect();
        Ok(LookupPage { events, cursor: page.next.as_ref().map(Cursor::encode) })
    }

    async fn rows(&self, query: &lookup::LookupQuery, cursor: Option<&Cursor>) -> Result<Page> {
        let mut query = query.clone();
        query.include_data_events = self.include_data_events;
        self.reader.lookup(&query, cursor).await.map_err(|e| match e {
            ReadError::Invalid(LookupError::InvalidNextToken(why)) => Error::InvalidCursor(why),
            ReadError::Invalid(other) => Error::InvalidCursor(other.to_string()),
            other => Error::Backend(other.into()),
        })
    }

    async fn scopes(&self) -> Result<Vec<(String, String)>> {
        let query = lookup::LookupQuery::new(DateTime::UNIX_EPOCH, DateTime::<Utc>::MAX_UTC);
        let partitions = self.reader.partitions(&query).await.map_err(|e| Error::Backend(e.into()))?;
        let mut scopes: Vec<(String, String)> = partitions
            .iter()
            .filter_map(|p| {
                let mut parts = p.dir.split('/');
                let account = parts.find_map(|s| s.strip_prefix("account="))?;
                let region = parts.find_map(|s| s.strip_prefix("region="))?;
                Some((account.to_string(), region.to_string()))
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    async fn metric_data(&self, q: MetricDataQuery) -> Result<MetricDataPage> {
        let invalid = || Error::InvalidCursor("not a metric cursor".into());
        // The cursor is the start of the next data point, in microseconds.
        let from = match q.cursor.as_deref() {
            Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| invalid())?),
            None => None,
        };
        let start = q.start.timestamp_micros().max(from.unwrap_or(i64::MIN));
        let end = q.end.timestamp_micros();
        if start >= end {
            return Ok(MetricDataPage::default());
        }
        let day = |t: i64| DateTime::from_timestamp_micros(t).map(|d| d.date_naive()).ok_or_else(invalid);
        let (first, last) = (day(start)?, day(end - 1)?);
        let (metrics, report) = insights::load_metrics(
            self.reader.storage(),
            self.reader.root(),
            first,
            last,
            q.region.as_deref(),
            self.reader.concurrency(),
        )
        .await
        .map_err(|e| Error::Backend(e.into()))?;
        tracing::debug!(partitions = report.partitions, counted = report.rebuilt, "metrics loaded");
        let query = MetricQuery {
            insight_type: q.insight_type,
            eventsource: q.event_source.clone(),
            eventname: q.event_name.clone(),
            errorcode: q.error_code.clone(),
            start,
            end,
            period: q.period,
            fill_with_zeros: q.data_type == MetricDataType::FillWithZeros,
        };
        let mut points = tokio::task::spawn_blocking(move || metric_data(&metrics, &query))
            .await
            .map_err(|e| Error::Backend(e.into()))?;
        let cursor = points.get(q.max_results).map(|(t, _)| t.to_string());
        points.truncate(q.max_results);
        let points = points.into_iter().filter_map(|(t, v)| Some((DateTime::from_timestamp_micros(t)?, v))).collect();
        Ok(MetricDataPage { points, cursor })
    }
}
