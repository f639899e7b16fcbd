//! The seam between the protocol and the query engine: a validated [`LookupQuery`] in, a
//! [`LookupPage`] out (and, for `ListInsightsMetricData`, a [`MetricDataQuery`] in, a
//! [`MetricDataPage`] out). The server owns everything about the wire (parsing, validation,
//! signatures, NextToken sealing); a backend only answers queries, a page at a time.

use chrono::{DateTime, Utc};

use crate::Result;

/// Answers lookups. Implemented over the archive engine; the tests implement it over records in memory.
///
/// Contract: events matching every condition of the query, ordered newest first (`EventTime`
/// descending, ties in an order the backend keeps stable across pages), at most
/// `query.max_results` of them, and a cursor when more may follow. The cursor is the backend's own
/// string: the server seals it into the client's `NextToken` together with a fingerprint of the
/// query, so a backend sees only cursors it made, for the same query, unaltered. It may still
/// answer [`crate::Error::InvalidCursor`] (for example when the data changed under the cursor).
#[async_trait::async_trait]
pub trait LookupBackend: Send + Sync + 'static {
    /// One page of events for `query`.
    async fn lookup(&self, query: LookupQuery) -> Result<LookupPage>;

    /// For the web console: one page of the core's `query` after `cursor`, as rows (every
    /// column, so the console can show what `LookupEvents` leaves out). Backends without rows
    /// answer an error, and the console says it cannot serve them.
    async fn rows(
        &self,
        _query: &parquetrail_core::lookup::LookupQuery,
        _cursor: Option<&parquetrail_core::lookup::Cursor>,
    ) -> Result<parquetrail_ingest::reader::Page> {
        Err(crate::Error::Backend("this backend does not serve the console".into()))
    }

    /// For the web console's pickers: the `(account, Region)` pairs the archive holds events of.
    async fn scopes(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// One page of an Insights metric series (`ListInsightsMetricData`): the data points of
    /// `query`, oldest first, at most `query.max_results` of them, from `query.cursor` (a cursor
    /// this backend returned for the same query) on, and a cursor when more follow. Backends
    /// without metrics answer [`crate::Error::Unsupported`], which clients get as
    /// `UnsupportedOperationException`.
    async fn metric_data(&self, _query: MetricDataQuery) -> Result<MetricDataPage> {
        Err(crate::Error::Unsupported("this server does not serve Insights metrics (ListInsightsMetricData)".into()))
    }
}

/// The two Insights types, CloudTrail's names: the core's.
pub use parquetrail_core::insights::detect::InsightType;

/// Which periods a series has a data point for (`DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricDataType {
    /// Only periods with events (AWS's default).
    #[default]
    NonZeroData,
    /// Every period of the range, zero when nothing happened.
    FillWithZeros,
}

impl MetricDataType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricDataType::NonZeroData => "NonZeroData",
            MetricDataType::FillWithZeros => "FillWithZeros",
        }
    }
}

/// A validated `ListInsightsMetricData` request: the count per `period` of one API's write
/// management events (`ApiCallRateInsight`) or of its management events that returned
/// `error_code` (`ApiErrorRateInsight`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataQuery {
    pub event_source: String,
    pub event_name: String,
    pub insight_type: InsightType,
    /// The error code counted; `Some` exactly for `ApiErrorRateInsight`.
    pub error_code: Option<String>,
    /// First instant, inclusive: a data point is returned when its period starts in `[start, end)`.
    pub start: DateTime<Utc>,
    /// Last instant, exclusive.
    pub end: DateTime<Utc>,
    /// Seconds per data point: 60, 300 or 3600. Periods are aligned to multiples of it since the epoch.
    pub period: u32,
    pub data_type: MetricDataType,
    /// Only events of this Region, as for [`LookupQuery::region`].
    pub region: Option<String>,
    /// Page size, 1..=21600.
    pub max_results: usize,
    /// Where the previous page stopped: a cursor this backend returned for the same query.
    pub cursor: Option<String>,
}

/// One page of a metric series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDataPage {
    /// `(period start, events in the period)`, oldest first, at most `max_results` of them.
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// Where the next page starts; `None` when there is no more.
    pub cursor: Option<String>,
}

/// The lookup attribute keys (CloudTrail's eight, then parquetrail's extensions), the event and its
/// `Resources` entries are the core's, so the server and `parquetrail lookup` cannot drift apart:
/// the server sends a [`LookupEvent`] as core serializes it (PascalCase, `ReadOnly` a string,
/// `EventTime` in epoch seconds, absent fields left out as AWS leaves them out).
pub use parquetrail_core::lookup::{AttributeKey, LookupEvent, Resource};

/// One condition: the attribute `key` equals `value` exactly (case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupAttribute {
    pub key: AttributeKey,
    pub value: String,
}

/// Which dataset a lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventCategory {
    /// Events (`EventCategory` absent).
    #[default]
    Events,
    /// CloudTrail Insights events (`EventCategory: insight`).
    Insights,
}

/// A validated lookup. Every condition is ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupQuery {
    /// Attribute conditions, in request order. AWS accepts one; parquetrail accepts several.
    pub attributes: Vec<LookupAttribute>,
    /// Inclusive lower bound on `eventTime`; `None`: no lower bound (the whole archive, not AWS's 90 days).
    pub start: Option<DateTime<Utc>>,
    /// Inclusive upper bound on `eventTime`; `None`: no upper bound.
    pub end: Option<DateTime<Utc>>,
    pub category: EventCategory,
    /// Only events of this Region (`awsRegion`): the Region of the request's SigV4 credential
    /// scope, as at AWS. `None` when the server serves all Regions or the request was not signed.
    pub region: Option<String>,
    /// Page size, 1..=50.
    pub max_results: usize,
    /// Where the previous page stopped: a cursor this backend returned for the same query.
    pub cursor: Option<String>,
}

/// One page of a lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookupPage {
    /// At most `max_results` events, newest first.
    pub events: Vec<LookupEvent>,
    /// Where the next page starts; `None` when there is no more.
    pub cursor: Option<String>,
}
