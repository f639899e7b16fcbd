//! The `LookupEvents` request: JSON body → a validated [`LookupQuery`], refusing exactly what AWS
//! refuses, with AWS's exception names.
//!
//! Where parquetrail differs from AWS, on purpose:
//! - several `LookupAttributes` are accepted and ANDed (AWS accepts one), and four extension keys
//!   (`AccountId`, `AwsRegion`, `SourceIpAddress`, `ErrorCode`) besides CloudTrail's eight;
//! - an omitted `StartTime` means no lower bound, not "90 days ago": the archive exists to look
//!   further back; an omitted `EndTime` means no upper bound (which is "now" for an archive, and
//!   unlike a moving "now" it keeps every page of one lookup consistent);
//! - timestamps are kept to the microsecond (CloudTrail's own `eventTime` has whole seconds).
//!
//! Unknown members are ignored, as JSON protocol services do, so newer clients keep working.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::backend::{AttributeKey, EventCategory, LookupAttribute, LookupQuery};
use crate::fault::Fault;

/// The largest page, and the default.
pub(crate) const MAX_RESULTS: usize = 50;
/// Attribute values are 1 to 2000 characters.
const MAX_VALUE_CHARS: usize = 2000;
/// The latest timestamp accepted: 9999-12-31T23:59:59Z.
const MAX_EPOCH_SECONDS: f64 = 253_402_300_799.0;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRequest {
    lookup_attributes: Option<Vec<WireAttribute>>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    event_category: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAttribute {
    attribute_key: Option<String>,
    attribute_value: Option<String>,
}

/// A parsed request: the query (without Region scope and cursor, which the server adds) and the
/// client's `NextToken`, still sealed.
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    pub query: LookupQuery,
    pub next_token: Option<String>,
}

/// Parses and validates a `LookupEvents` body.
pub(crate) fn parse(body: &[u8]) -> Result<ParsedRequest, Fault> {
    // An empty body is an empty request; every SDK sends at least `{}`.
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    let wire: WireRequest = serde_json::from_slice(body)
        .map_err(|e| Fault::serialization(format!("the request body is not a valid LookupEvents request: {e}")))?;

    let max_results = match wire.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(Fault::invalid_max_results(format!("MaxResults must be from 1 to {MAX_RESULTS}, not {n}")));
        }
    };
    let category = match wire.event_category.as_deref() {
        None => EventCategory::Events,
        Some("insight") => EventCategory::Insights,
        Some(other) => {
            return Err(Fault::invalid_event_category(format!(
                "EventCategory must be \"insight\" or absent, not {other:?}"
            )));
        }
    };
    let attributes = attributes(wire.lookup_attributes.unwrap_or_default(), category)?;
    let start = timestamp("StartTime", wire.start_time, Fault::invalid_time_range)?;
    let end = timestamp("EndTime", wire.end_time, Fault::invalid_time_range)?;
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(Fault::invalid_time_range(format!(
            "StartTime ({}) is after EndTime ({})",
            start.to_rfc3339(),
            end.to_rfc3339()
        )));
    }
    Ok(ParsedRequest {
        query: LookupQuery { attributes, start, end, category, region: None, max_results, cursor: None },
        next_token: wire.next_token,
    })
}

fn attributes(wire: Vec<WireAttribute>, category: EventCategory) -> Result<Vec<LookupAttribute>, Fault> {
    let mut attributes = Vec::with_capacity(wire.len());
    for (index, attribute) in wire.into_iter().enumerate() {
        let n = index + 1;
        let (Some(name), Some(value)) = (attribute.attribute_key, attribute.attribute_value) else {
            return Err(Fault::invalid_lookup_attributes(format!(
                "LookupAttributes item {n} needs both AttributeKey and AttributeValue"
            )));
        };
        let Some(key) = name.parse::<AttributeKey>().ok() else {
            let known: Vec<&str> = AttributeKey::ALL.iter().map(|k| k.as_str()).collect();
            return Err(Fault::invalid_lookup_attributes(format!(
                "LookupAttributes item {n}: unknown AttributeKey {name:?}; valid keys: {}",
                known.join(", ")
            )));
        };
        let chars = value.chars().count();
        if !(1..=MAX_VALUE_CHARS).contains(&chars) {
            return Err(Fault::invalid_lookup_attributes(format!(
                "LookupAttributes item {n}: the {key} value must be 1 to {MAX_VALUE_CHARS} characters, not {chars}"
            )));
        }
        if key == AttributeKey::ReadOnly && value != "true" && value != "false" {
            return Err(Fault::invalid_lookup_attributes(format!(
                "LookupAttributes item {n}: ReadOnly must be \"true\" or \"false\", not {value:?}"
            )));
        }
        if category == EventCategory::Insights && !key.allowed_for_insights() {
            return Err(Fault::invalid_lookup_attributes(format!(
                "LookupAttributes item {n}: with EventCategory \"insight\" only EventId, EventName and \
                 EventSource can be used, not {key}"
            )));
        }
        attributes.push(LookupAttribute { key, value });
    }
    Ok(attributes)
}

/// Epoch seconds (a JSON number, fractions allowed) → a time, kept to the microsecond; a time
/// before 1970 or after 9999 is refused with the operation's own `refusal`.
pub(crate) fn timestamp(
    member: &str,
    seconds: Option<f64>,
    refusal: fn(String) -> Fault,
) -> Result<Option<DateTime<Utc>>, Fault> {
    let Some(seconds) = seconds else { return Ok(None) };
    if !(0.0..=MAX_EPOCH_SECONDS).contains(&seconds) {
        return Err(refusal(format!(
            "{member} must be epoch seconds from 0 to {MAX_EPOCH_SECONDS} (year 9999), not {seconds}"
        )));
    }
    // An f64 holds today's epoch seconds to about 0.2 µs, so rounding to microseconds gives back
    // exactly what a client wrote with up to six decimals.
    let micros = (seconds * 1e6).round() as i64;
    Ok(DateTime::from_timestamp_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (what, body, expected `__type` or "ok")
    const CASES: &[(&str, &str, &str)] = &[
        ("empty body", "", "ok"),
        ("empty object", "{}", "ok"),
        ("not JSON", "{\"MaxResults\": ", "SerializationException"),
        ("array", "[]", "SerializationException"),
        ("MaxResults is a string", r#"{"MaxResults":"5"}"#, "SerializationException"),
        ("MaxResults fractional", r#"{"MaxResults":5.5}"#, "SerializationException"),
        ("MaxResults 0", r#"{"MaxResults":0}"#, "InvalidMaxResultsException"),
        ("MaxResults 1", r#"{"MaxResults":1}"#, "ok"),
        ("MaxResults 50", r#"{"MaxResults":50}"#, "ok"),
        ("MaxResults 51", r#"{"MaxResults":51}"#, "InvalidMaxResultsException"),
        ("MaxResults negative", r#"{"MaxResults":-3}"#, "InvalidMaxResultsException"),
        ("category insight", r#"{"EventCategory":"insight"}"#, "ok"),
        ("category Insight", r#"{"EventCategory":"Insight"}"#, "InvalidEventCategoryException"),
        ("category management", r#"{"EventCategory":"management"}"#, "InvalidEventCategoryException"),
        (
            "unknown key",
            r#"{"LookupAttributes":[{"AttributeKey":"Bogus","AttributeValue":"x"}]}"#,
            "InvalidLookupAttributesException",
        ),
        (
            "key case",
            r#"{"LookupAttributes":[{"AttributeKey":"eventname","AttributeValue":"x"}]}"#,
            "InvalidLookupAttributesException",
        ),
        ("no value", r#"{"LookupAttributes":[{"AttributeKey":"EventName"}]}"#, "InvalidLookupAttributesException"),
        ("no key", r#"{"LookupAttributes":[{"AttributeValue":"x"}]}"#, "InvalidLookupAttributesException"),
        (
            "empty value",
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}"#,
            "InvalidLookupAttributesException",
        ),
        ("ReadOnly true", r#"{"LookupAttributes":[{"AttributeKey":"ReadOnly","AttributeValue":"true"}]}"#, "ok"),
        (
            "ReadOnly yes",
            r#"{"LookupAttributes":[{"AttributeKey":"ReadOnly","AttributeValue":"yes"}]}"#,
            "InvalidLookupAttributesException",
        ),
        (
            "two attributes",
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"a"},{"AttributeKey":"AwsRegion","AttributeValue":"us-east-1"}]}"#,
            "ok",
        ),
        (
            "insight EventName",
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"x"}]}"#,
            "ok",
        ),
        (
            "insight Username",
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"x"}]}"#,
            "InvalidLookupAttributesException",
        ),
        (
            "insight AccountId",
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"AccountId","AttributeValue":"1"}]}"#,
            "InvalidLookupAttributesException",
        ),
        ("attributes not a list", r#"{"LookupAttributes":{"AttributeKey":"EventName"}}"#, "SerializationException"),
        ("start after end", r#"{"StartTime":1700000001,"EndTime":1700000000}"#, "InvalidTimeRangeException"),
        ("start equals end", r#"{"StartTime":1700000000,"EndTime":1700000000}"#, "ok"),
        ("fractional, ordered", r#"{"StartTime":1700000000.25,"EndTime":1700000000.5}"#, "ok"),
        ("fractional, reversed", r#"{"StartTime":1700000000.5,"EndTime":1700000000.25}"#, "InvalidTimeRangeException"),
        ("negative time", r#"{"StartTime":-1}"#, "InvalidTimeRangeException"),
        ("beyond year 9999", r#"{"EndTime":1e12}"#, "InvalidTimeRangeException"),
        ("time as a string", r#"{"StartTime":"2024-01-01"}"#, "SerializationException"),
        ("nulls", r#"{"StartTime":null,"EndTime":null,"MaxResults":null,"NextToken":null}"#, "ok"),
        ("unknown member", r#"{"Future":1}"#, "ok"),
    ];

    #[test]
    fn validation_table() {
        let mut failures = Vec::new();
        for (what, body, expected) in CASES {
            let got = match parse(body.as_bytes()) {
                Ok(_) => "ok",
                Err(fault) => fault.code(),
            };
            if got != *expected {
                failures.push(format!("{what}: body {body:?}: expected {expected}, got {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn value_length_is_counted_in_characters() {
        for (chars, ok) in [(1, true), (2000, true), (2001, false)] {
            // Multi-byte characters: the limit is on characters, not bytes.
            let value = "é".repeat(chars);
            let body = serde_json::json!({"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":value}]});
            let result = parse(body.to_string().as_bytes());
            assert_eq!(result.is_ok(), ok, "{chars} characters: {result:?}");
        }
    }

    #[test]
    fn timestamps_keep_fractions_and_defaults_are_unbounded() {
        let parsed = parse(br#"{"StartTime":1700000000.123456,"EndTime":1700000100}"#).unwrap();
        let start = parsed.query.start.unwrap();
        assert_eq!((start.timestamp(), start.timestamp_subsec_micros()), (1_700_000_000, 123_456));
        assert_eq!(parsed.query.end.unwrap().timestamp(), 1_700_000_100);

        let parsed = parse(b"{}").unwrap();
        assert_eq!((parsed.query.start, parsed.query.end), (None, None));
        assert_eq!(parsed.query.max_results, 50);
        assert_eq!(parsed.query.category, EventCategory::Events);
    }

    #[test]
    fn attributes_keep_request_order() {
        let parsed = parse(
            br#"{"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"alice"},
                {"AttributeKey":"ErrorCode","AttributeValue":"AccessDenied"}],"NextToken":"t"}"#,
        )
        .unwrap();
        let keys: Vec<_> = parsed.query.attributes.iter().map(|a| a.key).collect();
        assert_eq!(keys, [AttributeKey::Username, AttributeKey::ErrorCode]);
        assert_eq!(parsed.next_token.as_deref(), Some("t"));
    }
}
