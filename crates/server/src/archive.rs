//! The backend over a parquetrail archive: the server's validated query → the core's
//! [`lookup::LookupQuery`], one page read by `parquetrail-ingest`'s [`ArchiveReader`] (manifests,
//! partition and row-group pruning, local or S3), each hit → core's [`lookup::LookupEvent`],
//! CloudTrail's `Event` shape.

use chrono::{DateTime, TimeZone, Utc};
use parquetrail_core::lookup::{self, Cursor, LookupError};
use parquetrail_ingest::reader::{ArchiveReader, Page, ReadError};

use crate::{Error, EventCategory, LookupBackend, LookupPage, LookupQuery, Result};

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
}
