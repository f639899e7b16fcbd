//! The seam between the protocol and the query engine: a validated [`LookupQuery`] in, a
//! [`LookupPage`] out. The server owns everything about the wire (parsing, validation, signatures,
//! NextToken sealing); a backend only answers queries, newest first, a page at a time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::Serializer;

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
}

/// The lookup attribute keys (CloudTrail's eight, then parquetrail's extensions) and the
/// `Resources` entries are the core's, so the server and `parquetrail lookup` cannot drift apart.
pub use parquetrail_core::lookup::{AttributeKey, Resource};

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
    pub events: Vec<Event>,
    /// Where the next page starts; `None` when there is no more.
    pub cursor: Option<String>,
}

/// An event as `LookupEvents` returns it (CloudTrail's `Event` shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub event_id: String,
    pub event_name: String,
    /// `"true"` or `"false"`: a string on the wire, as at AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(serialize_with = "epoch_seconds")]
    pub event_time: DateTime<Utc>,
    pub event_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub resources: Vec<Resource>,
    /// The original record, as JSON text.
    #[serde(rename = "CloudTrailEvent")]
    pub cloudtrail_event: String,
}

/// AWS JSON 1.1 timestamps: epoch seconds as a JSON number, an integer when whole.
fn epoch_seconds<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let nanos = time.timestamp_subsec_nanos();
    if nanos == 0 {
        serializer.serialize_i64(time.timestamp())
    } else {
        serializer.serialize_f64(time.timestamp() as f64 + f64::from(nanos) / 1e9)
    }
}
