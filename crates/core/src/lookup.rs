//! The LookupEvents model: CloudTrail's Event history, over the archive.
//!
//! CloudTrail answers "who did what, when" for 90 days, through the console's Event history and
//! the `LookupEvents` API. The archive holds years, so this module gives the same answers over it:
//! the same attribute keys (plus a few of ours), the same `Username` and `Resources` columns, the
//! same event shape (so a server can serialize a [`LookupEvent`] as it is), newest first, and a
//! paging cursor that a `NextToken` can wrap. It is pure: the reader in `parquetrail-ingest` lists
//! and fetches files, this module decides which row groups to read and which rows are hits.
//!
//! Decisions, and why:
//! - **Computed at query time.** `Username` and `Resources` are derived from the record's own
//!   `userIdentity` and `resources` ([`username`], [`resources`]), not stored as extra columns:
//!   the rules can then change without rewriting the archive. The rules are in `docs/LOOKUP.md`.
//! - **Data events are left out by default**, as CloudTrail's Event history does (it shows
//!   management events only); [`LookupQuery::include_data_events`] includes them
//!   ([`is_data_event`] says which records are data events).
//! - **Order**: newest first by `eventTime`, ties broken by `eventID`, then the source object and
//!   the record's index in it ([`Position`]). Every row has a distinct position, so a page
//!   boundary never drops or repeats a row, and compaction (which keeps those values) does not
//!   change the order.
//! - **Duplicates** are not removed: a record CloudTrail delivered twice is two rows until
//!   compaction deduplicates it (see `docs/COMPACTION.md`).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use parquetrail_core::lookup::{AttributeKey, Bound, LookupQuery, parse_attribute, parse_time};
//! let now = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
//! let mut query = LookupQuery::new(parse_time("90d", now, Bound::Start).unwrap(), now);
//! query.attributes.push(parse_attribute("Username=alice").unwrap());
//! assert_eq!(query.attributes[0].0, AttributeKey::Username);
//! assert!(parse_attribute("UserName=alice").unwrap_err().to_string().contains("Username"));
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::Row;
use crate::{DataError, Error, Result};

pub mod index;

/// Why a lookup request is invalid. Each variant is one of `LookupEvents`' error classes, so a
/// server can answer with [`LookupError::aws_type`] and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    InvalidLookupAttributes(String),
    #[error("{0}")]
    InvalidTimeRange(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    InvalidMaxResults(String),
    #[error("{0}")]
    InvalidEventCategory(String),
}

impl LookupError {
    /// CloudTrail's name of the error (`__type` of its JSON error body).
    pub fn aws_type(&self) -> &'static str {
        match self {
            LookupError::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            LookupError::InvalidTimeRange(_) => "InvalidTimeRangeException",
            LookupError::InvalidNextToken(_) => "InvalidNextTokenException",
            LookupError::InvalidMaxResults(_) => "InvalidMaxResultsException",
            LookupError::InvalidEventCategory(_) => "InvalidEventCategoryException",
        }
    }
}

/// What a lookup can filter on: CloudTrail's eight `LookupAttributes` keys, then ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
    /// Ours: the account the record belongs to (its partition's account).
    AccountId,
    /// Ours: `awsRegion`.
    AwsRegion,
    /// Ours: `sourceIPAddress`.
    SourceIpAddress,
    /// Ours: `errorCode`.
    ErrorCode,
}

impl AttributeKey {
    /// Every key, CloudTrail's first.
    pub const ALL: [AttributeKey; 12] = [
        AttributeKey::EventId,
        AttributeKey::EventName,
        AttributeKey::ReadOnly,
        AttributeKey::Username,
        AttributeKey::ResourceType,
        AttributeKey::ResourceName,
        AttributeKey::EventSource,
        AttributeKey::AccessKeyId,
        AttributeKey::AccountId,
        AttributeKey::AwsRegion,
        AttributeKey::SourceIpAddress,
        AttributeKey::ErrorCode,
    ];

    /// The key as CloudTrail (or, for ours, this project) spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKey::EventId => "EventId",
            AttributeKey::EventName => "EventName",
            AttributeKey::ReadOnly => "ReadOnly",
            AttributeKey::Username => "Username",
            AttributeKey::ResourceType => "ResourceType",
            AttributeKey::ResourceName => "ResourceName",
            AttributeKey::EventSource => "EventSource",
            AttributeKey::AccessKeyId => "AccessKeyId",
            AttributeKey::AccountId => "AccountId",
            AttributeKey::AwsRegion => "AwsRegion",
            AttributeKey::SourceIpAddress => "SourceIpAddress",
            AttributeKey::ErrorCode => "ErrorCode",
        }
    }

    /// Whether CloudTrail's own `LookupEvents` knows the key (a server speaking its protocol
    /// accepts only these).
    pub fn is_cloudtrail(self) -> bool {
        !matches!(
            self,
            AttributeKey::AccountId | AttributeKey::AwsRegion | AttributeKey::SourceIpAddress | AttributeKey::ErrorCode
        )
    }

    /// Whether the key may filter Insights events (CloudTrail allows only these three).
    pub fn allowed_for_insights(self) -> bool {
        matches!(self, AttributeKey::EventId | AttributeKey::EventName | AttributeKey::EventSource)
    }

    /// The keys, comma-separated, for error messages.
    pub fn valid_keys() -> String {
        AttributeKey::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The key's value in a row (`None` when the row has none); for the multi-valued
    /// `ResourceType`/`ResourceName`, use [`AttributeKey::matches`].
    fn value(self, row: &Row<'_>) -> Option<String> {
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        match self {
            AttributeKey::EventId => s(&row.eventid),
            AttributeKey::EventName => s(&row.eventname).or_else(|| insight_detail(row, "eventName")),
            AttributeKey::ReadOnly => s(&row.readonly),
            AttributeKey::Username => username(row),
            AttributeKey::EventSource => s(&row.eventsource).or_else(|| insight_detail(row, "eventSource")),
            AttributeKey::AccessKeyId => row.useridentity.as_ref().and_then(|u| s(&u.accesskeyid)),
            AttributeKey::AccountId => account(row).map(str::to_string),
            AttributeKey::AwsRegion => s(&row.awsregion),
            AttributeKey::SourceIpAddress => s(&row.sourceipaddress),
            AttributeKey::ErrorCode => s(&row.errorcode),
            AttributeKey::ResourceType | AttributeKey::ResourceName => None,
        }
    }

    /// Whether `row` has `value` for this key (exact, case-sensitive, as CloudTrail compares).
    pub fn matches(self, row: &Row<'_>, value: &str) -> bool {
        match self {
            AttributeKey::ResourceType => resources(row).iter().any(|r| r.resource_type.as_deref() == Some(value)),
            AttributeKey::ResourceName => resources(row).iter().any(|r| r.resource_name.as_deref() == Some(value)),
            _ => self.value(row).as_deref() == Some(value),
        }
    }
}

impl fmt::Display for AttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttributeKey {
    type Err = LookupError;

    /// CloudTrail's exact spelling: `Username`, not `UserName` or `username`.
    fn from_str(s: &str) -> std::result::Result<Self, LookupError> {
        AttributeKey::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            LookupError::InvalidLookupAttributes(format!(
                "unknown attribute key {s:?} (keys are case-sensitive); valid keys: {}",
                AttributeKey::valid_keys()
            ))
        })
    }
}

/// CloudTrail's limit on an attribute value's length, in characters.
pub const MAX_VALUE_CHARS: usize = 2000;

/// Checks one attribute as CloudTrail does (value of 1–2000 characters).
pub fn check_attribute(key: AttributeKey, value: &str) -> std::result::Result<(), LookupError> {
    let n = value.chars().count();
    if n == 0 || n > MAX_VALUE_CHARS {
        return Err(LookupError::InvalidLookupAttributes(format!(
            "the value of {key} must be 1 to {MAX_VALUE_CHARS} characters, not {n}"
        )));
    }
    Ok(())
}

/// Parses `KEY=VALUE` (the value may itself hold `=`).
pub fn parse_attribute(text: &str) -> std::result::Result<(AttributeKey, String), LookupError> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        LookupError::InvalidLookupAttributes(format!(
            "expected KEY=VALUE, got {text:?}; valid keys: {}",
            AttributeKey::valid_keys()
        ))
    })?;
    let key: AttributeKey = key.parse()?;
    check_attribute(key, value)?;
    Ok((key, value.to_string()))
}

/// One lookup: which events, in which window, how many per page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupQuery {
    /// Attribute filters, all of which must hold (CloudTrail accepts one; we accept more).
    pub attributes: Vec<(AttributeKey, String)>,
    /// Earliest `eventTime`, inclusive.
    pub start: DateTime<Utc>,
    /// Latest `eventTime`, inclusive.
    pub end: DateTime<Utc>,
    /// Only these accounts (empty: all). Compared with the record's partition account.
    pub accounts: Vec<String>,
    /// Only these regions (empty: all). Compared with the record's partition region.
    pub regions: Vec<String>,
    /// Look up Insights events (the `insights` dataset) instead of API activity.
    pub insights: bool,
    /// Include data (and network activity) events, which CloudTrail's Event history leaves out.
    pub include_data_events: bool,
    /// Events per page.
    pub max_results: usize,
}

impl LookupQuery {
    /// CloudTrail's default page size.
    pub const DEFAULT_MAX_RESULTS: usize = 50;

    /// Every event of `[start, end]`, a default-sized page at a time.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> LookupQuery {
        LookupQuery {
            attributes: Vec::new(),
            start,
            end,
            accounts: Vec::new(),
            regions: Vec::new(),
            insights: false,
            include_data_events: false,
            max_results: Self::DEFAULT_MAX_RESULTS,
        }
    }

    /// Checks what CloudTrail checks: a time range in order, a page size of at least one, valid
    /// attribute values, and only `EventId`/`EventName`/`EventSource` for Insights.
    pub fn validate(&self) -> std::result::Result<(), LookupError> {
        if self.start > self.end {
            return Err(LookupError::InvalidTimeRange(format!(
                "the start time {} is after the end time {}",
                self.start.to_rfc3339(),
                self.end.to_rfc3339()
            )));
        }
        if self.max_results == 0 {
            return Err(LookupError::InvalidMaxResults("the page size must be at least 1".into()));
        }
        for (key, value) in &self.attributes {
            check_attribute(*key, value)?;
            if self.insights && !key.allowed_for_insights() {
                return Err(LookupError::InvalidLookupAttributes(format!(
                    "Insights events can be looked up by EventId, EventName or EventSource only, not {key}"
                )));
            }
        }
        Ok(())
    }

    /// The dataset the query reads: `events` or `insights`.
    pub fn dataset(&self) -> &'static str {
        if self.insights { "insights" } else { "events" }
    }

    /// Whether a partition can hold hits, from its values alone (unescaped).
    pub fn keeps_partition(&self, account: &str, region: &str, date: NaiveDate) -> bool {
        let (first, last) = (self.start.date_naive(), self.end.date_naive());
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
            && date >= first
            && date <= last
    }

    /// Whether a row is a hit (ignoring paging).
    pub fn matches(&self, row: &Row<'_>) -> bool {
        let Some(ts) = row.eventtime_ts else { return false };
        if ts < self.start.timestamp_micros() || ts > self.end.timestamp_micros() {
            return false;
        }
        if !self.insights && !self.include_data_events && is_data_event(row) {
            return false;
        }
        if !self.accounts.is_empty() && !account(row).is_some_and(|a| self.accounts.iter().any(|x| x == a)) {
            return false;
        }
        if !self.regions.is_empty() && !row.awsregion.as_deref().is_some_and(|r| self.regions.iter().any(|x| x == r)) {
            return false;
        }
        self.attributes.iter().all(|(key, value)| key.matches(row, value))
    }

    /// A stable hash of every parameter but the page size: what a `NextToken` is bound to, so a
    /// token is refused with other parameters. Attribute, account and region order do not count.
    /// Resolve defaults the same way on every page: an end of "now" would move between pages
    /// and invalidate the token.
    pub fn fingerprint(&self) -> String {
        let mut attributes: Vec<(&str, &str)> = self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        attributes.sort_unstable();
        let mut accounts: Vec<&str> = self.accounts.iter().map(String::as_str).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut regions: Vec<&str> = self.regions.iter().map(String::as_str).collect();
        regions.sort_unstable();
        regions.dedup();
        // JSON gives every value an unambiguous encoding (no separator can be forged).
        let canonical = serde_json::json!({
            "v": 1,
            "attributes": attributes,
            "start": self.start.timestamp_micros(),
            "end": self.end.timestamp_micros(),
            "accounts": accounts,
            "regions": regions,
            "insights": self.insights,
            "data": self.include_data_events,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `eventtime_ts` range (microseconds, inclusive) that can still hold hits after `cursor`.
    pub fn time_range_us(&self, cursor: Option<&Cursor>) -> (i64, i64) {
        let end = self.end.timestamp_micros();
        (self.start.timestamp_micros(), cursor.map_or(end, |c| c.0.time_us.min(end)))
    }

    /// The equivalent Athena query over the tables `parquetrail ddl` creates (`database`,
    /// tables named `<table_prefix>events` / `<table_prefix>insights`), paging excepted.
    pub fn athena_sql(&self, database: &str, table_prefix: &str) -> String {
        let mut conditions = vec![
            format!(
                "\"date\" BETWEEN '{}' AND '{}'",
                self.start.date_naive().format("%Y-%m-%d"),
                self.end.date_naive().format("%Y-%m-%d")
            ),
            format!(
                "eventtime_ts BETWEEN from_iso8601_timestamp('{}') AND from_iso8601_timestamp('{}')",
                self.start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                self.end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        ];
        let list = |v: &[String]| v.iter().map(|x| sql_string(x)).collect::<Vec<_>>().join(", ");
        if !self.accounts.is_empty() {
            conditions.push(format!("account IN ({})", list(&self.accounts)));
        }
        if !self.regions.is_empty() {
            conditions.push(format!("awsregion IN ({})", list(&self.regions)));
        }
        if !self.insights && !self.include_data_events {
            conditions.push(format!("NOT ({DATA_EVENT_SQL})"));
        }
        for (key, value) in &self.attributes {
            conditions.push(attribute_sql(*key, value));
        }
        format!(
            "-- parquetrail lookup, as Athena SQL over the tables of `parquetrail ddl`.\n\
             -- Username and Resources follow docs/LOOKUP.md; newest first, as Event history.\n\
             SELECT eventtime, eventid, eventname, readonly, useridentity.accesskeyid AS accesskeyid,\n       \
             eventsource, {USERNAME_SQL} AS username,\n       \
             transform(resources, r -> CAST(ROW(r.type, coalesce(r.arn, r.arnprefix)) AS ROW(resourcetype varchar, resourcename varchar))) AS resources,\n       \
             account, awsregion, sourceipaddress, errorcode\n\
             FROM \"{}\".\"{}{}\"\n\
             WHERE {}\n\
             ORDER BY eventtime_ts DESC, eventid, source_key, source_index\n\
             LIMIT {};\n",
            database.replace('"', "\"\""),
            table_prefix.replace('"', "\"\""),
            self.dataset(),
            conditions.join("\n  AND "),
            self.max_results
        )
    }
}

fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// [`is_data_event`] in SQL.
const DATA_EVENT_SQL: &str = "coalesce(eventcategory NOT IN ('Management', 'Insight'), managementevent = false, false)";

/// [`username`] in SQL (Athena / Trino).
const USERNAME_SQL: &str = "CASE useridentity.type\n         \
    WHEN 'Root' THEN 'root'\n         \
    WHEN 'IAMUser' THEN useridentity.username\n         \
    WHEN 'AWSService' THEN useridentity.invokedby\n         \
    WHEN 'AWSAccount' THEN coalesce(useridentity.username, useridentity.accountid, useridentity.principalid)\n         \
    WHEN 'IdentityCenterUser' THEN coalesce(useridentity.username, useridentity.onbehalfof.userid, useridentity.principalid)\n         \
    ELSE coalesce(nullif(element_at(split(useridentity.arn, '/'), -1), ''), useridentity.username, \
    nullif(element_at(split(useridentity.principalid, ':'), -1), ''), useridentity.invokedby)\n       END";

fn attribute_sql(key: AttributeKey, value: &str) -> String {
    let v = sql_string(value);
    match key {
        AttributeKey::EventId => format!("eventid = {v}"),
        AttributeKey::EventName => {
            format!("coalesce(eventname, json_extract_scalar(insightdetails, '$.eventName')) = {v}")
        }
        AttributeKey::ReadOnly => format!("readonly = {v}"),
        AttributeKey::Username => format!("({USERNAME_SQL}) = {v}"),
        AttributeKey::ResourceType => format!("any_match(resources, r -> r.type = {v})"),
        AttributeKey::ResourceName => format!("any_match(resources, r -> coalesce(r.arn, r.arnprefix) = {v})"),
        AttributeKey::EventSource => {
            format!("coalesce(eventsource, json_extract_scalar(insightdetails, '$.eventSource')) = {v}")
        }
        AttributeKey::AccessKeyId => format!("useridentity.accesskeyid = {v}"),
        AttributeKey::AccountId => format!("account = {v}"),
        AttributeKey::AwsRegion => format!("awsregion = {v}"),
        AttributeKey::SourceIpAddress => format!("sourceipaddress = {v}"),
        AttributeKey::ErrorCode => format!("errorcode = {v}"),
    }
}

/// `insightDetails.<field>` of an Insights event, which names the API it is about: Insights
/// records have no top-level `eventName`/`eventSource`, and CloudTrail's lookup by those keys
/// with the `insight` category matches these.
fn insight_detail(row: &Row<'_>, field: &str) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(row.insightdetails.as_deref()?).ok()?;
    details.get(field)?.as_str().map(str::to_string)
}

/// The account a record belongs to, by the rule that picks its partition: `recipientAccountId`,
/// else `userIdentity.accountId` (the conversion falls back to the log file's account last,
/// which a row does not carry; such rows are found by their partition).
pub fn account<'r>(row: &'r Row<'_>) -> Option<&'r str> {
    row.recipientaccountid.as_deref().or_else(|| row.useridentity.as_ref().and_then(|u| u.accountid.as_deref()))
}

/// Whether a record is a data (or network activity) event, which CloudTrail's Event history
/// does not show: its `eventCategory` is neither `Management` nor `Insight`, or, in records
/// older than `eventCategory` (before 1.07), `managementEvent` is `false`.
pub fn is_data_event(row: &Row<'_>) -> bool {
    match row.eventcategory.as_deref() {
        Some(category) => category != "Management" && category != "Insight",
        None => row.managementevent == Some(false),
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

fn last_segment(v: Option<&str>, separator: char) -> Option<&str> {
    non_empty(v).and_then(|s| non_empty(s.rsplit(separator).next()))
}

/// The `Username` of Event history, which AWS does not specify. The rules (`docs/LOOKUP.md`):
///
/// | `userIdentity.type` | Username |
/// |---|---|
/// | `Root` | `root` |
/// | `IAMUser` | `userName` |
/// | `AssumedRole`, `Role`, `FederatedUser` | the last `/` segment of `arn` (the session name; the federated user's name) |
/// | `AWSService` | `invokedBy` (`ec2.amazonaws.com`) |
/// | `AWSAccount` | `userName`, else `accountId`, else `principalId` |
/// | `IdentityCenterUser` | `userName`, else `onBehalfOf.userId`, else `principalId` |
/// | others (`SAMLUser`, `WebIdentityUser`, `Directory`, `Unknown`, new types) | the last `/` segment of `arn`, else `userName`, else the last `:` segment of `principalId`, else `invokedBy` |
///
/// Empty strings count as absent. Records without `userIdentity` (Insights events) have none.
pub fn username(row: &Row<'_>) -> Option<String> {
    let u = row.useridentity.as_ref()?;
    let arn = u.arn.as_deref();
    let user_name = non_empty(u.username.as_deref());
    let principal = non_empty(u.principalid.as_deref());
    let invoked_by = non_empty(u.invokedby.as_deref());
    let name = match u.r#type.as_deref() {
        Some("Root") => Some("root"),
        Some("IAMUser") => user_name.or_else(|| last_segment(arn, '/')),
        Some("AssumedRole" | "Role" | "FederatedUser") => {
            last_segment(arn, '/').or_else(|| last_segment(principal, ':')).or(user_name)
        }
        Some("AWSService") => invoked_by,
        Some("AWSAccount") => user_name.or(non_empty(u.accountid.as_deref())).or(principal),
        Some("IdentityCenterUser") => {
            user_name.or_else(|| u.onbehalfof.as_ref().and_then(|o| non_empty(o.userid.as_deref()))).or(principal)
        }
        _ => last_segment(arn, '/').or(user_name).or_else(|| last_segment(principal, ':')).or(invoked_by),
    };
    name.map(str::to_string)
}

/// One entry of an event's `Resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// The `Resources` of Event history: the record's own `resources` array, each `{type, ARN}` as
/// `{ResourceType, ResourceName}` (the ARN is the name, as CloudTrail shows it; `ARNPrefix`
/// when there is no ARN). Entries with neither a type nor a name are left out.
pub fn resources(row: &Row<'_>) -> Vec<Resource> {
    row.resources
        .iter()
        .flatten()
        .flatten()
        .map(|r| Resource {
            resource_type: r.r#type.as_deref().map(str::to_string),
            resource_name: r.arn.as_deref().or(r.arnprefix.as_deref()).map(str::to_string),
        })
        .filter(|r| r.resource_type.is_some() || r.resource_name.is_some())
        .collect()
}

/// One event as `LookupEvents` returns it (CloudTrail's PascalCase names; absent fields are
/// left out, as AWS does). `EventTime` serializes as epoch seconds, the AWS JSON 1.1 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// `"true"` or `"false"`: a string, as CloudTrail sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(serialize_with = "epoch_seconds")]
    pub event_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub resources: Vec<Resource>,
    /// The whole original record, exactly the JSON `export` writes for it.
    pub cloud_trail_event: String,
}

/// Epoch seconds as a JSON number: an integer when whole, else with the fraction.
fn epoch_seconds<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    let micros = t.timestamp_micros();
    if micros % 1_000_000 == 0 { s.serialize_i64(micros / 1_000_000) } else { s.serialize_f64(micros as f64 / 1e6) }
}

/// The `LookupEvents` view of a row.
pub fn lookup_event(row: &Row<'_>) -> LookupEvent {
    let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
    let event_time = row
        .eventtime_ts
        .and_then(DateTime::from_timestamp_micros)
        .or_else(|| row.event_time().ok())
        .unwrap_or(DateTime::UNIX_EPOCH);
    LookupEvent {
        event_id: s(&row.eventid),
        event_name: AttributeKey::EventName.value(row),
        read_only: s(&row.readonly),
        access_key_id: row.useridentity.as_ref().and_then(|u| non_empty(u.accesskeyid.as_deref())).map(str::to_string),
        event_time,
        event_source: AttributeKey::EventSource.value(row),
        username: username(row),
        resources: resources(row),
        cloud_trail_event: row.to_json(),
    }
}

/// Where a row sits in lookup order: newest first, then by `eventID`, source object and index
/// in it. Smaller positions come first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub time_us: i64,
    pub event_id: String,
    pub source_key: String,
    pub source_index: i32,
}

impl Position {
    pub fn of(row: &Row<'_>) -> Position {
        Position {
            time_us: row.eventtime_ts.unwrap_or(i64::MIN),
            event_id: row.eventid.as_deref().unwrap_or_default().to_string(),
            source_key: row.source_key.to_string(),
            source_index: row.source_index,
        }
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time_us
            .cmp(&self.time_us)
            .then_with(|| self.event_id.cmp(&other.event_id))
            .then_with(|| self.source_key.cmp(&other.source_key))
            .then_with(|| self.source_index.cmp(&other.source_index))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where the next page starts: the position of the last event returned. A `NextToken` wraps it
/// (with the query's [`LookupQuery::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub Position);

impl Cursor {
    /// Whether a row comes after the cursor (belongs to a later page).
    pub fn is_before(&self, row: &Row<'_>) -> bool {
        // Cheap test first: most rows differ in time.
        let t = row.eventtime_ts.unwrap_or(i64::MIN);
        match self.0.time_us.cmp(&t) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => Position::of(row) > self.0,
        }
    }

    /// A compact, URL-safe string.
    pub fn encode(&self) -> String {
        let p = &self.0;
        let json = serde_json::json!([p.time_us, p.source_index, p.event_id, p.source_key]).to_string();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads what [`Cursor::encode`] wrote.
    pub fn decode(text: &str) -> std::result::Result<Cursor, LookupError> {
        let bad = || LookupError::InvalidNextToken(format!("{text:?} is not a token this archive gave"));
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let (time_us, source_index, event_id, source_key): (i64, i32, String, String) =
            serde_json::from_slice(&json).map_err(|_| bad())?;
        Ok(Cursor(Position { time_us, event_id, source_key, source_index }))
    }
}

/// The `NextToken` of a page: the cursor bound to the query's [`LookupQuery::fingerprint`], so
/// it is refused with other parameters (a changed page size is allowed, as at AWS).
pub fn next_token(query: &LookupQuery, cursor: &Cursor) -> String {
    format!("{}.{}", query.fingerprint(), cursor.encode())
}

/// Reads a [`next_token`] given back with `query`; an error when the token was made for other
/// parameters or is no token at all.
pub fn parse_next_token(query: &LookupQuery, token: &str) -> std::result::Result<Cursor, LookupError> {
    let (fingerprint, cursor) = token
        .split_once('.')
        .ok_or_else(|| LookupError::InvalidNextToken("the token is not one this archive gave".into()))?;
    if fingerprint != query.fingerprint() {
        return Err(LookupError::InvalidNextToken(
            "the token was given for other parameters; repeat the request that returned it".into(),
        ));
    }
    Cursor::decode(cursor)
}

/// A cell for a CSV file meant for spreadsheets: a value beginning with `=`, `+`, `-`, `@`, a
/// tab or a carriage return would be read as a formula (CSV injection), so it gets a leading
/// `'`, which spreadsheets show as text. Other values are unchanged.
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// Sorts rows into lookup order.
pub fn sort_newest_first(rows: &mut [Row<'_>]) {
    rows.sort_by_cached_key(Position::of);
}

/// One page of hits: the first `max_results` rows in lookup order, and the cursor of the next
/// page when there are more rows.
pub fn page<'a>(mut rows: Vec<Row<'a>>, max_results: usize) -> (Vec<Row<'a>>, Option<Cursor>) {
    sort_newest_first(&mut rows);
    if rows.len() <= max_results {
        return (rows, None);
    }
    rows.truncate(max_results);
    let next = rows.last().map(|r| Cursor(Position::of(r)));
    (rows, next)
}

/// Which end of a range a time is, for dates: the start of a day or its last microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    End,
}

/// Reads a time as people write it on a command line: `now`; a date (`2024-03-01`: its first
/// microsecond as a start, its last as an end, so a one-day range is that whole day); RFC 3339
/// (`2024-03-01T12:00:00Z`, `2024-03-01T14:00:00+02:00`); or a time before `now`: a number and
/// a unit, `d` days, `h` hours, `m` minutes, `s` seconds (`90d`, `12h`, `30m`).
pub fn parse_time(text: &str, now: DateTime<Utc>, bound: Bound) -> std::result::Result<DateTime<Utc>, LookupError> {
    let t = text.trim();
    let bad = || {
        LookupError::InvalidTimeRange(format!(
            "{text:?} is not a time: use now, a date (2024-03-01), RFC 3339 (2024-03-01T12:00:00Z) \
             or a time ago (90d, 12h, 30m, 45s)"
        ))
    };
    if t == "now" {
        return Ok(now);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let start = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        return Ok(match bound {
            Bound::Start => start,
            Bound::End => start + TimeDelta::days(1) - TimeDelta::microseconds(1),
        });
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    let ago = match unit {
        'd' => TimeDelta::try_days(n),
        'h' => TimeDelta::try_hours(n),
        'm' => TimeDelta::try_minutes(n),
        's' => TimeDelta::try_seconds(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    now.checked_sub_signed(ago).ok_or_else(bad)
}

/// What reading one Parquet file for a lookup did.
#[derive(Debug, Clone, Default)]
pub struct FileHits<'a> {
    /// The hits past the cursor, in file order (sort them with [`page`]).
    pub rows: Vec<Row<'a>>,
    pub row_groups: usize,
    /// Row groups read; the others were ruled out by their `eventtime_ts` statistics.
    pub row_groups_read: usize,
}

/// The row groups of a file whose `eventtime_ts` statistics overlap `[from, to]` (microseconds,
/// inclusive). A row group without statistics is kept.
pub fn row_groups_in_range(metadata: &ParquetMetaData, from: i64, to: i64, path: &str) -> Result<Vec<usize>> {
    let ranges = group_time_ranges(metadata, path)?;
    Ok(ranges
        .iter()
        .enumerate()
        .filter(|(_, (min, max))| min.is_none_or(|min| min <= to) && max.is_none_or(|max| max >= from))
        .map(|(i, _)| i)
        .collect())
}

/// Each row group's `eventtime_ts` (min, max) from its statistics (`None` where absent).
pub fn group_time_ranges(metadata: &ParquetMetaData, path: &str) -> Result<Vec<(Option<i64>, Option<i64>)>> {
    let error = |e: parquet::errors::ParquetError| Error::Archive { path: path.to_string(), source: e.into() };
    let schema =
        parquet::arrow::parquet_to_arrow_schema(metadata.file_metadata().schema_descr(), None).map_err(error)?;
    let converter = StatisticsConverter::try_new("eventtime_ts", &schema, metadata.file_metadata().schema_descr())
        .map_err(error)?;
    let mins = converter.row_group_mins(metadata.row_groups().iter()).map_err(error)?;
    let maxes = converter.row_group_maxes(metadata.row_groups().iter()).map_err(error)?;
    let as_i64 = |a: &arrow_array::ArrayRef, i: usize| -> Option<i64> {
        let a = a.as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>()?;
        a.is_valid(i).then(|| a.value(i))
    };
    use arrow_array::Array as _;
    Ok((0..metadata.num_row_groups()).map(|i| (as_i64(&mins, i), as_i64(&maxes, i))).collect())
}

/// `groups` in the order a newest-first lookup reads them: by their newest row, newest first
/// (those without statistics first), each with that time.
pub fn newest_first(metadata: &ParquetMetaData, groups: &[usize], path: &str) -> Result<Vec<(usize, Option<i64>)>> {
    let ranges = group_time_ranges(metadata, path)?;
    let mut out: Vec<(usize, Option<i64>)> =
        groups.iter().map(|&g| (g, ranges.get(g).and_then(|(_, max)| *max))).collect();
    out.sort_by_key(|&(g, max)| (std::cmp::Reverse(max.unwrap_or(i64::MAX)), g));
    Ok(out)
}

/// Whether rows no newer than `newest_left` can still belong to a page of `max_results`, given the
/// times of hits found so far in the same file: not once more than a page of hits is strictly
/// newer (a page needs `max_results` hits, plus one to know another page follows; a tie at
/// `newest_left` could still sort first by event ID, hence strictly).
pub fn may_hold_page_rows(hit_times: &[i64], max_results: usize, newest_left: i64) -> bool {
    hit_times.iter().filter(|&&t| t > newest_left).count() <= max_results
}

/// Reads the hits of one Parquet file of the query's dataset: row groups outside the time range
/// (narrowed by `cursor`) are skipped from their statistics, the rest read and filtered.
/// `path` names the file in errors.
pub fn read_hits<R: ChunkReader + Clone + 'static>(
    reader: R,
    path: &str,
    query: &LookupQuery,
    cursor: Option<&Cursor>,
) -> Result<FileHits<'static>> {
    let error = |e: parquet::errors::ParquetError| Error::Archive { path: path.to_string(), source: e.into() };
    let metadata = ArrowReaderMetadata::load(&reader, ArrowReaderOptions::new()).map_err(error)?;
    let groups = plan_row_groups(metadata.metadata(), path, query, cursor)?;
    decode_hits(reader, metadata, groups, path, query, cursor)
}

/// The row groups of a file that can hold hits past `cursor` (see [`row_groups_in_range`]).
pub fn plan_row_groups(
    metadata: &ParquetMetaData,
    path: &str,
    query: &LookupQuery,
    cursor: Option<&Cursor>,
) -> Result<Vec<usize>> {
    let (from, to) = query.time_range_us(cursor);
    if from > to { Ok(Vec::new()) } else { row_groups_in_range(metadata, from, to, path) }
}

/// The bytes of a row group in its file: what a ranged read must fetch to decode it.
pub fn row_group_bytes(metadata: &ParquetMetaData, index: usize) -> std::ops::Range<u64> {
    let group = metadata.row_group(index);
    let ranges = group.columns().iter().map(|c| c.byte_range());
    let start = ranges.clone().map(|(start, _)| start).min().unwrap_or(0);
    let end = ranges.map(|(start, len)| start + len).max().unwrap_or(0);
    start..end
}

/// A file's footer (its metadata), parsed from the last bytes of the file.
#[derive(Debug)]
pub enum Footer {
    Parsed(ArrowReaderMetadata),
    /// The tail given was too short: fetch this many bytes from the end and parse again.
    NeedTail(u64),
}

/// Parses a Parquet footer from `tail`, the last `tail.len()` bytes of a file of `file_len`.
pub fn parse_footer(tail: &bytes::Bytes, file_len: u64, path: &str) -> Result<Footer> {
    let error = |e: parquet::errors::ParquetError| Error::Archive { path: path.to_string(), source: e.into() };
    let mut reader = parquet::file::metadata::ParquetMetaDataReader::new();
    match reader.try_parse_sized(tail, file_len) {
        Ok(()) => {}
        Err(parquet::errors::ParquetError::NeedMoreData(n)) => return Ok(Footer::NeedTail(n as u64)),
        Err(e) => return Err(error(e)),
    }
    let metadata = std::sync::Arc::new(reader.finish().map_err(error)?);
    Ok(Footer::Parsed(ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new()).map_err(error)?))
}

/// Some byte ranges of a Parquet file (its tail and the row groups to decode), read as the whole
/// file by the parquet crate: ranged reads fetch only these.
#[derive(Debug, Clone, Default)]
pub struct SparseFile {
    len: u64,
    /// `(offset, bytes)`, sorted by offset.
    parts: Vec<(u64, bytes::Bytes)>,
}

impl SparseFile {
    pub fn new(len: u64) -> SparseFile {
        SparseFile { len, parts: Vec::new() }
    }

    /// Adds the bytes found at `offset`.
    pub fn insert(&mut self, offset: u64, bytes: bytes::Bytes) {
        let at = self.parts.partition_point(|(o, _)| *o < offset);
        self.parts.insert(at, (offset, bytes));
    }

    /// The part of `range` still to fetch, given the parts held: `None` when a held part covers
    /// it, the range cut short when a held part covers its end (as a file's tail does).
    pub fn missing(&self, range: std::ops::Range<u64>) -> Option<std::ops::Range<u64>> {
        let mut end = range.end;
        for (offset, bytes) in &self.parts {
            let part = *offset..offset + bytes.len() as u64;
            if part.start <= range.start && range.end <= part.end {
                return None;
            }
            if part.start > range.start && part.start < end && range.end <= part.end {
                end = part.start;
            }
        }
        Some(range.start..end)
    }

    /// The bytes from `start`: `len` of them, or (`None`) as many as the parts held run on
    /// without a gap. Parts join where they meet or overlap: a column chunk fetched in two
    /// requests (cut short where the tail began) reads as one, page headers across the seam too.
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<bytes::Bytes> {
        let len = match len {
            Some(n) => Some(n),
            None => {
                // Where the contiguous run of held bytes from `start` ends.
                let mut end = start;
                while let Some(e) = self
                    .parts
                    .iter()
                    .filter(|(o, b)| *o <= end && end < o + b.len() as u64)
                    .map(|(o, b)| o + b.len() as u64)
                    .max()
                {
                    end = e;
                }
                (end > start).then(|| (end - start) as usize)
            }
        };
        for (offset, bytes) in self.parts.iter().rev() {
            let end = offset + bytes.len() as u64;
            if *offset <= start && start <= end {
                let from = (start - offset) as usize;
                let to = len.map_or(bytes.len(), |n| from + n);
                if to <= bytes.len() {
                    return Ok(bytes.slice(from..to));
                }
            }
        }
        // Bytes fetched in two parts (a range cut short where the tail began): join them.
        if let Some(n) = len {
            let mut out = Vec::with_capacity(n);
            let mut at = start;
            while out.len() < n {
                let Some((offset, bytes)) = self.parts.iter().rev().find(|(o, b)| *o <= at && at < o + b.len() as u64)
                else {
                    break;
                };
                let from = (at - offset) as usize;
                let take = (bytes.len() - from).min(n - out.len());
                out.extend_from_slice(&bytes[from..from + take]);
                at += take as u64;
            }
            if out.len() == n {
                return Ok(bytes::Bytes::from(out));
            }
        }
        Err(parquet::errors::ParquetError::General(format!("bytes at {start} (length {len:?}) were not fetched")))
    }
}

impl parquet::file::reader::Length for SparseFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SparseFile {
    type T = bytes::buf::Reader<bytes::Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf as _;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.slice(start, Some(length))
    }
}

/// The top-level columns a lookup's filter and order read: everything [`LookupQuery::matches`],
/// [`AttributeKey::matches`] and [`Position`] look at. Lookups decode these first and the other
/// columns (request parameters, response elements…, most of a file's bytes) only for hits.
pub const FILTER_COLUMNS: &[&str] = &[
    "eventtime_ts",
    "eventid",
    "eventname",
    "eventsource",
    "readonly",
    "useridentity",
    "resources",
    "awsregion",
    "recipientaccountid",
    "sourceipaddress",
    "errorcode",
    "eventcategory",
    "managementevent",
    "insightdetails",
    "source_key",
    "source_index",
];

impl LookupQuery {
    /// The columns this query's filter and order read, as dotted paths: top-level columns of
    /// [`FILTER_COLUMNS`], or fields of them. A lookup by event ID decodes the event IDs and a few
    /// small columns, not `userIdentity`; one by access key decodes `userIdentity.accessKeyId`,
    /// not the twenty-odd other leaves of `userIdentity` (each a column chunk to open and decode).
    /// The rest of a row's position (event ID, source key and index) is read only `after_cursor`:
    /// a first page orders its hits by time alone until whole rows are decoded, and the source key,
    /// a hundred bytes in every row, was most of what a point lookup's first phase decoded.
    pub fn filter_columns(&self, after_cursor: bool) -> Vec<&'static str> {
        // What `account` reads.
        const ACCOUNT: [&str; 2] = ["recipientaccountid", "useridentity.accountid"];
        // Time and the data-event rule are always read.
        let mut columns = vec!["eventtime_ts", "eventcategory", "managementevent"];
        if after_cursor {
            columns.extend(["eventid", "source_key", "source_index"]);
        }
        if !self.accounts.is_empty() {
            columns.extend(ACCOUNT);
        }
        if !self.regions.is_empty() {
            columns.push("awsregion");
        }
        for (key, _) in &self.attributes {
            columns.extend_from_slice(match key {
                AttributeKey::EventId => &["eventid"][..],
                AttributeKey::EventName => &["eventname", "insightdetails"],
                AttributeKey::EventSource => &["eventsource", "insightdetails"],
                AttributeKey::ReadOnly => &["readonly"],
                // What `username` reads.
                AttributeKey::Username => &[
                    "useridentity.type",
                    "useridentity.arn",
                    "useridentity.username",
                    "useridentity.principalid",
                    "useridentity.invokedby",
                    "useridentity.accountid",
                    "useridentity.onbehalfof",
                ],
                AttributeKey::AccessKeyId => &["useridentity.accesskeyid"],
                AttributeKey::ResourceType | AttributeKey::ResourceName => &["resources"],
                AttributeKey::AccountId => &ACCOUNT,
                AttributeKey::AwsRegion => &["awsregion"],
                AttributeKey::SourceIpAddress => &["sourceipaddress"],
                AttributeKey::ErrorCode => &["errorcode"],
            });
        }
        columns.sort_unstable();
        columns.dedup();
        debug_assert!(columns.iter().all(|c| FILTER_COLUMNS.contains(&c.split('.').next().unwrap_or(c))));
        columns
    }
}

/// For each leaf column of a file, whether it is one of `query`'s
/// [`LookupQuery::filter_columns`] (past `cursor`, if given) or under one.
pub fn filter_leaves(metadata: &ParquetMetaData, query: &LookupQuery, cursor: Option<&Cursor>) -> Vec<bool> {
    let wanted = query.filter_columns(cursor.is_some());
    metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|leaf| {
            let path = leaf.path().parts();
            wanted.iter().any(|w| {
                let parts = w.split('.');
                parts.clone().count() <= path.len() && parts.zip(path).all(|(a, b)| a == b)
            })
        })
        .collect()
}

/// The byte ranges of a row group's leaf columns for which `leaves[i] == wanted`, adjacent ones
/// merged: what a ranged read fetches for one phase of [`select_hits`] / [`decode_selected`].
pub fn column_ranges(
    metadata: &ParquetMetaData,
    group: usize,
    leaves: &[bool],
    wanted: bool,
) -> Vec<std::ops::Range<u64>> {
    let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
    let mut columns: Vec<(u64, u64)> = metadata
        .row_group(group)
        .columns()
        .iter()
        .enumerate()
        .filter(|(i, _)| leaves.get(*i).copied().unwrap_or(true) == wanted)
        .map(|(_, c)| c.byte_range())
        .collect();
    columns.sort_unstable();
    for (start, len) in columns {
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = start + len,
            _ => ranges.push(start..start + len),
        }
    }
    ranges
}

/// The hits of some row groups, as row positions: what [`select_hits`] found.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Row groups with at least one hit, ascending, each with the hits' row indices in it.
    pub groups: Vec<(usize, Vec<usize>)>,
    /// The hits' `eventtime_ts`, in the order of `groups`' rows.
    pub times: Vec<i64>,
    pub row_groups: usize,
    pub row_groups_read: usize,
}

impl Selection {
    pub fn hits(&self) -> usize {
        self.groups.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// Each row group's hits with their times, taken out of the selection (its counts stay).
    fn take_parts(&mut self) -> Vec<(usize, Vec<usize>, Vec<i64>)> {
        let mut times = std::mem::take(&mut self.times).into_iter();
        std::mem::take(&mut self.groups)
            .into_iter()
            .map(|(g, rows)| {
                let t = times.by_ref().take(rows.len()).collect();
                (g, rows, t)
            })
            .collect()
    }

    fn set_parts(&mut self, parts: Vec<(usize, Vec<usize>, Vec<i64>)>) {
        self.times = parts.iter().flat_map(|(_, _, t)| t.iter().copied()).collect();
        self.groups = parts.into_iter().filter(|(_, rows, _)| !rows.is_empty()).map(|(g, rows, _)| (g, rows)).collect();
    }

    /// Adds the hits of other row groups (read separately) to these.
    pub fn merge(&mut self, mut other: Selection) {
        let mut parts = self.take_parts();
        parts.extend(other.take_parts());
        parts.sort_by_key(|(g, _, _)| *g);
        self.set_parts(parts);
        self.row_groups = self.row_groups.max(other.row_groups);
        self.row_groups_read += other.row_groups_read;
    }

    /// Keeps only the hits that can be among the first `max_results + 1` of a lookup (a page and
    /// the one that tells another page follows): pages are newest first, so a hit older than
    /// `max_results + 1` hits of this file never is, whatever other files hold. Hits tied in
    /// time with the last kept one stay (their order is decided by event ID, read later).
    /// A page of a frequent event name then decodes about a page of rows, not every hit of the
    /// row groups read.
    pub fn keep_newest(&mut self, max_results: usize) {
        let keep = max_results.saturating_add(1);
        if self.times.len() <= keep {
            return;
        }
        let mut times = self.times.clone();
        let (_, &mut oldest_kept, _) = times.select_nth_unstable_by(keep - 1, |a, b| b.cmp(a));
        let parts = self
            .take_parts()
            .into_iter()
            .map(|(g, rows, times)| {
                let (rows, times) = rows.into_iter().zip(times).filter(|(_, t)| *t >= oldest_kept).unzip();
                (g, rows, times)
            })
            .collect();
        self.set_parts(parts);
    }
}

/// Finds the hits (past `cursor`) in the given row groups, decoding only the query's
/// [`LookupQuery::filter_columns`].
/// `reader` needs only those columns' bytes ([`column_ranges`] with `true`).
pub fn select_hits<R: ChunkReader + 'static>(
    reader: R,
    metadata: ArrowReaderMetadata,
    groups: Vec<usize>,
    path: &str,
    query: &LookupQuery,
    cursor: Option<&Cursor>,
) -> Result<Selection> {
    let error = |e: DataError| Error::Archive { path: path.to_string(), source: e };
    let mut selection = Selection {
        groups: Vec::new(),
        times: Vec::new(),
        row_groups: metadata.metadata().num_row_groups(),
        row_groups_read: groups.len(),
    };
    if groups.is_empty() {
        return Ok(selection);
    }
    let leaves = filter_leaves(metadata.metadata(), query, cursor);
    let schema = metadata.metadata().file_metadata().schema_descr_ptr();
    let mask = ProjectionMask::leaves(&schema, leaves.iter().enumerate().filter(|(_, w)| **w).map(|(i, _)| i));
    // Row `n` of the concatenated groups is row `n - start` of the group starting at `start`.
    let starts: Vec<(usize, usize)> = groups
        .iter()
        .scan(0usize, |at, &g| {
            let start = *at;
            *at += metadata.metadata().row_group(g).num_rows() as usize;
            Some((start, g))
        })
        .collect();
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, metadata)
        .with_row_groups(groups)
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| error(e.into()))?;
    let mut at = 0usize;
    for batch in batches {
        let batch = batch.map_err(|e| error(e.into()))?;
        // Rows are turned into structs one at a time: a Vec of a batch's worth (8,192 rows of a few
        // hundred bytes each, grown by doubling), and even of 256-row slices, was most of a point
        // lookup's freshly touched memory, and so of its page faults.
        let candidates = candidate_rows(&batch, query, cursor);
        let rows = serde_arrow::Deserializer::from_record_batch(&batch).map_err(|e| error(e.into()))?;
        for (i, item) in rows.iter().enumerate() {
            if candidates.as_ref().is_some_and(|c| !c[i]) {
                continue;
            }
            let row = Row::deserialize(item).map_err(|e| error(e.into()))?;
            if query.matches(&row) && cursor.is_none_or(|c| c.is_before(&row)) {
                selection.times.push(row.eventtime_ts.unwrap_or(i64::MIN));
                let n = at + i;
                let (start, group) = starts[starts.partition_point(|(s, _)| *s <= n) - 1];
                match selection.groups.last_mut() {
                    Some((g, rows)) if *g == group => rows.push(n - start),
                    _ => selection.groups.push((group, vec![n - start])),
                }
            }
        }
        at += batch.num_rows();
    }
    Ok(selection)
}

/// Ranges of one file closer together than this are fetched as one: a request costs more than
/// the bytes between them (an S3 GET's latency and price, a local read's open and system calls),
/// and phase two's ranges are many small pages, one or two per column, a few kilobytes apart.
pub const COALESCE_GAP: u64 = 64 * 1024;

/// `ranges` sorted and merged where they overlap or lie within `gap` bytes of each other.
pub fn coalesce(mut ranges: Vec<std::ops::Range<u64>>, gap: u64) -> Vec<std::ops::Range<u64>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Which rows of a batch of filter columns can be hits, from their columns alone: the time range
/// (narrowed by the cursor) and the attributes compared with one column. A necessary condition,
/// never a sufficient one: the rows it keeps are checked whole ([`LookupQuery::matches`]), so
/// turning only those into structs leaves the answer unchanged and skips most of the work of a
/// selective query. `None` (every row a candidate) when the batch's columns are not the types
/// the archive writes.
fn candidate_rows(batch: &arrow_array::RecordBatch, query: &LookupQuery, cursor: Option<&Cursor>) -> Option<Vec<bool>> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::TimestampMicrosecondType;
    use arrow_array::{Array as _, StringArray};
    let (from, to) = query.time_range_us(cursor);
    let times = batch.column_by_name("eventtime_ts")?.as_primitive_opt::<TimestampMicrosecondType>()?;
    let mut keep: Vec<bool> =
        (0..batch.num_rows()).map(|i| times.is_valid(i) && (from..=to).contains(&times.value(i))).collect();
    let column = |name: &str| -> Option<&StringArray> { batch.column_by_name(name)?.as_string_opt::<i32>() };
    for (key, value) in &query.attributes {
        // The column holding the key's value, and whether a row without one can still match
        // (an Insights record's event name and source are in its insight details).
        let (values, or_null) = match key {
            AttributeKey::EventId => (column("eventid")?, false),
            AttributeKey::EventName => (column("eventname")?, true),
            AttributeKey::EventSource => (column("eventsource")?, true),
            AttributeKey::ReadOnly => (column("readonly")?, false),
            AttributeKey::AwsRegion => (column("awsregion")?, false),
            AttributeKey::SourceIpAddress => (column("sourceipaddress")?, false),
            AttributeKey::ErrorCode => (column("errorcode")?, false),
            AttributeKey::AccessKeyId => {
                let identity = batch.column_by_name("useridentity")?.as_struct_opt()?;
                // A row without an identity has no access key: the child's slot is then null or
                // unset, and the struct's own null is checked below.
                let keys = identity.column_by_name("accesskeyid")?.as_string_opt::<i32>()?;
                for (i, k) in keep.iter_mut().enumerate() {
                    *k = *k && identity.is_valid(i) && keys.is_valid(i) && keys.value(i) == value;
                }
                continue;
            }
            AttributeKey::Username
            | AttributeKey::AccountId
            | AttributeKey::ResourceType
            | AttributeKey::ResourceName => {
                continue;
            }
        };
        for (i, k) in keep.iter_mut().enumerate() {
            *k = *k && if values.is_valid(i) { values.value(i) == value } else { or_null };
        }
    }
    Some(keep)
}

/// The byte range holding the offset indexes (page locations) of every column chunk of `groups`,
/// or `None` when one of them has none (a delivery-sized file, written without it).
pub fn offset_index_range(metadata: &ParquetMetaData, groups: &[usize]) -> Option<std::ops::Range<u64>> {
    let mut span: Option<std::ops::Range<u64>> = None;
    for &g in groups {
        for column in metadata.row_group(g).columns() {
            let r = column.offset_index_range()?;
            span = Some(span.map_or(r.clone(), |s| s.start.min(r.start)..s.end.max(r.end)));
        }
    }
    span
}

/// `metadata` with the offset indexes of its column chunks, parsed from `reader` (which must hold
/// [`offset_index_range`]): with them, decoding a few rows reads only the pages holding them.
pub fn with_offset_index<R: ChunkReader>(
    reader: &R,
    metadata: &ArrowReaderMetadata,
    path: &str,
) -> Result<ArrowReaderMetadata> {
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    let error = |e: parquet::errors::ParquetError| Error::Archive { path: path.to_string(), source: e.into() };
    let mut loader = ParquetMetaDataReader::new_with_metadata(metadata.metadata().as_ref().clone())
        .with_offset_index_policy(PageIndexPolicy::Required);
    loader.read_page_indexes(reader).map_err(error)?;
    let loaded = std::sync::Arc::new(loader.finish().map_err(error)?);
    ArrowReaderMetadata::try_new(loaded, ArrowReaderOptions::new()).map_err(error)
}

/// The byte ranges [`decode_selected`] reads for `selection` in the leaf columns with
/// `leaves[i] == wanted`, given `metadata` with its offset indexes ([`with_offset_index`]): each
/// column's dictionary page and the data pages holding a selected row, adjacent ones merged.
/// `None` when a column chunk has no offset index: read whole chunks ([`column_ranges`]) then.
pub fn page_ranges(
    metadata: &ParquetMetaData,
    selection: &Selection,
    leaves: &[bool],
    wanted: bool,
) -> Option<Vec<std::ops::Range<u64>>> {
    let index = metadata.page_index()?;
    let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
    for (group, rows) in &selection.groups {
        let total = metadata.row_group(*group).num_rows();
        for (i, column) in metadata.row_group(*group).columns().iter().enumerate() {
            if leaves.get(i).copied().unwrap_or(true) != wanted {
                continue;
            }
            let pages = index.page_locations(*group, i)?;
            let (start, len) = column.byte_range();
            match pages.first() {
                Some(first) if first.offset as u64 != start => ranges.push(start..first.offset as u64),
                Some(_) => {}
                None => {
                    ranges.push(start..start + len);
                    continue;
                }
            }
            for (p, page) in pages.iter().enumerate() {
                let first = page.first_row_index;
                let end = pages.get(p + 1).map_or(total, |next| next.first_row_index);
                let at = rows.partition_point(|&r| (r as i64) < first);
                if rows.get(at).is_some_and(|&r| (r as i64) < end) {
                    let offset = page.offset as u64;
                    ranges.push(offset..offset + page.compressed_page_size as u64);
                }
            }
        }
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Some(merged)
}

/// Decodes the rows [`select_hits`] selected, every column. `reader` needs the whole of the
/// selected row groups.
pub fn decode_selected<R: ChunkReader + Clone + 'static>(
    reader: R,
    metadata: ArrowReaderMetadata,
    selection: &Selection,
    path: &str,
    query: &LookupQuery,
) -> Result<FileHits<'static>> {
    decode_selected_on(reader, metadata, selection, path, query, decode_threads())
}

/// [`decode_selected`] on `threads` threads.
fn decode_selected_on<R: ChunkReader + Clone + 'static>(
    reader: R,
    metadata: ArrowReaderMetadata,
    selection: &Selection,
    path: &str,
    query: &LookupQuery,
    threads: usize,
) -> Result<FileHits<'static>> {
    use parquet::arrow::arrow_reader::{RowSelection, RowSelectionPolicy, RowSelector};
    let error = |e: DataError| Error::Archive { path: path.to_string(), source: e };
    let mut hits =
        FileHits { rows: Vec::new(), row_groups: selection.row_groups, row_groups_read: selection.row_groups_read };
    if selection.groups.is_empty() {
        return Ok(hits);
    }
    let mut selectors = Vec::new();
    for (group, rows) in &selection.groups {
        let total = metadata.metadata().row_group(*group).num_rows() as usize;
        let mut next = 0;
        for &r in rows {
            if r > next {
                selectors.push(RowSelector::skip(r - next));
            }
            selectors.push(RowSelector::select(1));
            next = r + 1;
        }
        if total > next {
            selectors.push(RowSelector::skip(total - next));
        }
    }
    let selection_rows = RowSelection::from(selectors);
    let groups: Vec<usize> = selection.groups.iter().map(|(g, _)| *g).collect();
    // One top-level column at a time: a reader holds a decompression context and buffers for
    // every leaf it reads, so reading all 74 leaves at once touches megabytes of fresh memory
    // for a few kilobytes of hits; column by column, each reader's memory is reused by the next.
    let schema = metadata.schema().clone();
    let decode_root = |root: usize| -> Result<arrow_array::ArrayRef> {
        let mask = ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), [root]);
        let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(reader.clone(), metadata.clone())
            .with_row_groups(groups.clone())
            .with_row_selection(selection_rows.clone())
            // Skip pages, never read under a mask: only the pages holding hits were fetched, and
            // the crate's default picks a mask for selections of short runs, which reads every
            // page between the first hit and the last.
            .with_row_selection_policy(RowSelectionPolicy::Selectors)
            .with_projection(mask)
            .with_batch_size(selection.hits().max(1))
            .build()
            .map_err(|e| error(e.into()))?;
        let mut parts = Vec::new();
        for batch in batches {
            parts.push(batch.map_err(|e| error(e.into()))?.column(0).clone());
        }
        Ok(match parts.len() {
            0 => arrow_array::new_empty_array(schema.field(root).data_type()),
            1 => parts.pop().expect("one part"),
            _ => {
                let parts: Vec<&dyn arrow_array::Array> = parts.iter().map(|a| a.as_ref()).collect();
                arrow_select::concat::concat(&parts).map_err(|e| error(e.into()))?
            }
        })
    };
    // Every page holding a hit is decompressed whole, in every column: the top-level columns are
    // shared out among the cores, each decoded by one thread (a column's work is independent of
    // the others').
    let shares = share_roots(metadata.metadata(), &groups, threads);
    let decode = |roots: &[usize]| roots.iter().map(|&r| decode_root(r).map(|a| (r, a))).collect::<Result<Vec<_>>>();
    let mut decoded = std::thread::scope(|scope| -> Result<Vec<_>> {
        let (mine, others) = shares.split_first().expect("at least one share");
        let (mut handles, mut here) = (Vec::new(), vec![mine]);
        for roots in others {
            // A share whose thread the system cannot start now is decoded here.
            match std::thread::Builder::new().name("lookup-decode".into()).spawn_scoped(scope, move || decode(roots)) {
                Ok(handle) => handles.push(handle),
                Err(_) => here.push(roots),
            }
        }
        let mut all = Vec::new();
        for roots in here {
            all.extend(decode(roots)?);
        }
        for handle in handles {
            all.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(all)
    })?;
    // Every top-level column is in exactly one share: in root order, they are the schema's.
    decoded.sort_unstable_by_key(|(root, _)| *root);
    let columns: Vec<arrow_array::ArrayRef> = decoded.into_iter().map(|(_, array)| array).collect();
    let batch = arrow_array::RecordBatch::try_new(schema, columns).map_err(|e| error(e.into()))?;
    let rows: Vec<Row<'static>> = serde_arrow::from_record_batch(&batch).map_err(|e| error(e.into()))?;
    // The filter ran on these rows' own values; checking again costs little and keeps a
    // projection that missed a column from ever widening the answer.
    hits.rows.extend(rows.into_iter().filter(|r| query.matches(r)));
    Ok(hits)
}

/// Threads that decode a selection's columns: the cores this process may use, at most 4.
fn decode_threads() -> usize {
    crate::cores().clamp(1, 4)
}

/// Shares the file's top-level columns out among `threads` threads, each share of about equal
/// work, largest first (the longest-processing-time rule). A column's work is taken as its
/// compressed bytes in the row groups read, plus a fixed cost per leaf: setting up a leaf's
/// reader, and for a compressed one its codec, costs as much as decoding kilobytes.
/// Never returns an empty list; a share may be empty.
fn share_roots(metadata: &ParquetMetaData, groups: &[usize], threads: usize) -> Vec<Vec<usize>> {
    use parquet::basic::Compression;
    let schema = metadata.file_metadata().schema_descr();
    let roots = schema.root_schema().get_fields().len();
    let mut cost = vec![0u64; roots];
    for &g in groups {
        for (leaf, column) in metadata.row_group(g).columns().iter().enumerate() {
            let fixed = if column.compression() == Compression::UNCOMPRESSED { 4 << 10 } else { 24 << 10 };
            cost[schema.get_column_root_idx(leaf)] += column.compressed_size().max(0) as u64 + fixed;
        }
    }
    let threads = threads.clamp(1, roots.max(1));
    let mut order: Vec<usize> = (0..roots).collect();
    order.sort_by_key(|&r| std::cmp::Reverse(cost[r]));
    let mut shares = vec![(0u64, Vec::new()); threads];
    for root in order {
        let lightest = shares.iter_mut().min_by_key(|(work, _)| *work).expect("one share at least");
        lightest.0 += cost[root];
        lightest.1.push(root);
    }
    shares.into_iter().map(|(_, roots)| roots).collect()
}

/// Decodes the given row groups of a file whose metadata is known and keeps the hits: the filter
/// columns first ([`select_hits`]), then every column of the hits only ([`decode_selected`]).
pub fn decode_hits<R: ChunkReader + Clone + 'static>(
    reader: R,
    metadata: ArrowReaderMetadata,
    groups: Vec<usize>,
    path: &str,
    query: &LookupQuery,
    cursor: Option<&Cursor>,
) -> Result<FileHits<'static>> {
    let mut selection = select_hits(reader.clone(), metadata.clone(), groups, path, query, cursor)?;
    selection.keep_newest(query.max_results);
    decode_selected(reader, metadata, &selection, path, query)
}

#[cfg(test)]
mod tests;
