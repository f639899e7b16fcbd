//! A console URL's query string → the core's [`LookupQuery`]: the same model `parquetrail lookup`
//! and `LookupEvents` use, so the console shows what they would answer.
//!
//! Parameters (each may repeat where a list makes sense):
//! `attr=Key=Value` (CloudTrail's keys and ours, all ANDed; plus the console's `RequestId`),
//! `start`/`end` (`now`, a date, RFC 3339, or a time ago: `30m`, `12h`, `7d`, `1y`; both inclusive),
//! `account`, `region` (any of them), `limit` (page size), `next` (the token of the previous page).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use parquetrail_core::lookup::{self, AttributeKey, Bound, Cursor, LookupQuery, parse_time};
use sha2::{Digest, Sha256};

use super::ApiError;

/// The largest page the console asks for.
pub(crate) const MAX_LIMIT: usize = 1000;
/// The most events one download holds.
pub(crate) const MAX_DOWNLOAD: usize = 10_000;
/// The console's page size when none is given, CloudTrail's.
pub(crate) const DEFAULT_LIMIT: usize = LookupQuery::DEFAULT_MAX_RESULTS;
/// The console-only attribute: `requestID`, matched while reading (no index helps it).
pub(crate) const REQUEST_ID: &str = "RequestId";

/// A parsed console query.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// The lookup (its `max_results` is the page size).
    pub query: LookupQuery,
    /// Only events of this `requestID`.
    pub request_id: Option<String>,
    /// Where the previous page stopped.
    pub cursor: Option<Cursor>,
}

/// The pairs of a query string, decoded.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The last value of `name`, if any.
pub(crate) fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone()).collect()
}

/// The end of a range without `end`: the last instant of year 9999 (as `parquetrail lookup`).
fn open_end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A time as `parse_time` reads it, plus years ago (`1y`: 365 days).
fn time(name: &str, text: &str, now: DateTime<Utc>, bound: Bound) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    let years = text.strip_suffix('y').and_then(|n| n.parse::<i64>().ok()).filter(|n| *n >= 0);
    let parsed = match years {
        Some(n) => {
            TimeDelta::try_days(n.saturating_mul(365)).and_then(|d| now.checked_sub_signed(d)).ok_or_else(|| {
                lookup::LookupError::InvalidTimeRange(format!("{text:?} reaches before the calendar's beginning"))
            })
        }
        None => parse_time(text, now, bound),
    };
    parsed.map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

/// Reads the query string's lookup; `now` resolves relative times. Everything wrong is a 400 that
/// names the parameter.
pub(crate) fn parse(pairs: &[(String, String)], now: DateTime<Utc>, max_limit: usize) -> Result<Params, ApiError> {
    let start = match one(pairs, "start").filter(|s| !s.is_empty()) {
        Some(t) => time("start", t, now, Bound::Start)?,
        None => DateTime::UNIX_EPOCH,
    };
    let end = match one(pairs, "end").filter(|s| !s.is_empty()) {
        Some(t) => time("end", t, now, Bound::End)?,
        None => open_end(),
    };
    if start > end {
        return Err(ApiError::bad_request(format!("start {} is after end {}", rfc3339(start), rfc3339(end))));
    }
    let mut query = LookupQuery::new(start, end);
    let mut request_id = None;
    for text in all(pairs, "attr") {
        if let Some(value) = text.strip_prefix(REQUEST_ID).and_then(|t| t.strip_prefix('=')) {
            lookup::check_attribute(AttributeKey::EventId, value).map_err(|e| {
                ApiError::bad_request(format!("attr: {}", e.to_string().replace("EventId", REQUEST_ID)))
            })?;
            request_id = Some(value.to_string());
            continue;
        }
        let attribute = lookup::parse_attribute(&text).map_err(|e| ApiError::bad_request(format!("attr: {e}")))?;
        query.attributes.push(attribute);
    }
    query.accounts = all(pairs, "account");
    query.regions = all(pairs, "region");
    query.max_results = match one(pairs, "limit").filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max_limit).contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("limit: {text:?} is not a number from 1 to {max_limit}"))),
        },
    };
    query.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut params = Params { query, request_id, cursor: None };
    if let Some(token) = one(pairs, "next").filter(|s| !s.is_empty()) {
        let inner = token.strip_prefix(&params.token_prefix()).ok_or_else(|| {
            ApiError::bad_request("next: the token was given for other parameters; repeat the request that returned it")
        })?;
        let cursor =
            lookup::parse_next_token(&params.query, inner).map_err(|e| ApiError::bad_request(format!("next: {e}")))?;
        params.cursor = Some(cursor);
    }
    Ok(params)
}

impl Params {
    /// The token for the page after `cursor`: the core's, bound to the query, and to the
    /// console's request ID filter.
    pub(crate) fn next_token(&self, cursor: &Cursor) -> String {
        format!("{}{}", self.token_prefix(), lookup::next_token(&self.query, cursor))
    }

    fn token_prefix(&self) -> String {
        match &self.request_id {
            None => String::new(),
            Some(id) => {
                let hash = Sha256::digest(id.as_bytes());
                format!("r{}~", hash.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
            }
        }
    }
}

/// A time as the console's JSON shows it.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(query: &str) -> Result<Params, ApiError> {
        let now = DateTime::parse_from_rfc3339("2024-03-10T12:00:00Z").unwrap().with_timezone(&Utc);
        parse(&pairs(Some(query)), now, MAX_LIMIT)
    }

    #[test]
    fn a_query_string_becomes_the_core_query() {
        let p = parsed("attr=EventName%3DRunInstances&attr=ReadOnly=false&start=1h&end=now&account=1&account=2&region=us-east-1&limit=10").unwrap();
        assert_eq!(p.query.attributes.len(), 2);
        assert_eq!(rfc3339(p.query.start), "2024-03-10T11:00:00Z");
        assert_eq!(rfc3339(p.query.end), "2024-03-10T12:00:00Z");
        assert_eq!(p.query.accounts, ["1", "2"]);
        assert_eq!(p.query.regions, ["us-east-1"]);
        assert_eq!(p.query.max_results, 10);
        assert_eq!(rfc3339(parsed("start=1y").unwrap().query.start), "2023-03-11T12:00:00Z");
        assert_eq!(parsed("attr=RequestId=abc").unwrap().request_id.as_deref(), Some("abc"));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, names) in [
            ("attr=Nope=1", "attr"),
            ("attr=EventName", "attr"),
            ("attr=EventName=", "attr"),
            ("start=yesterday", "start"),
            ("end=2024-13-01", "end"),
            ("start=2024-03-02&end=2024-03-01", "start"),
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
            ("limit=x", "limit"),
            ("next=garbage", "next"),
        ] {
            let e = parsed(query).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{query}");
            assert!(e.message.contains(names), "{query}: {}", e.message);
        }
    }

    #[test]
    fn a_token_is_bound_to_its_query() {
        let p = parsed("attr=EventName=A&start=2024-01-01&end=2024-01-02").unwrap();
        let cursor = Cursor::decode(
            &Cursor(lookup::Position { time_us: 1, event_id: "e".into(), source_key: "k".into(), source_index: 0 })
                .encode(),
        )
        .unwrap();
        let token = p.next_token(&cursor);
        let again = format!("attr=EventName=A&start=2024-01-01&end=2024-01-02&next={token}");
        assert!(parsed(&again).unwrap().cursor.is_some());
        let other = format!("attr=EventName=B&start=2024-01-01&end=2024-01-02&next={token}");
        assert!(parsed(&other).is_err());
        let with_request = format!("attr=EventName=A&attr=RequestId=r&start=2024-01-01&end=2024-01-02&next={token}");
        assert!(parsed(&with_request).is_err());
    }
}
