//! `ListInsightsMetricData`: parsing and validating a request as CloudTrail does, the fingerprint
//! its `NextToken` is sealed to, and the answer's JSON.
//!
//! Members and defaults are those of CloudTrail's API reference: `EventSource`, `EventName` and
//! `InsightType` required; `ErrorCode` required for `ApiErrorRateInsight` (and, for
//! `ApiCallRateInsight`, ignored and not echoed); `Period` 60, 300 or 3600 (default 3600);
//! `DataType` `NonZeroData` (default) or `FillWithZeros`; `MaxResults` 1 to 21600 (default
//! 21600); `StartTime` inclusive, default 90 days before the request; `EndTime` exclusive,
//! default the time of the request. Refusals:
//! - a member outside its modelled constraints (a missing required member, a pattern, a length,
//!   a range, an enum value): `ValidationException`, every violation listed in AWS's words
//!   (`1 validation error detected: Value 'x' at 'insightType' failed to satisfy constraint: …`);
//! - a combination CloudTrail refuses (a period within 60..=3600 that is not 60, 300 or 3600, an
//!   error rate without `ErrorCode`, `StartTime` not before `EndTime`, a time beyond year 9999):
//!   `InvalidParameterException`;
//! - `TrailName` (Insights on a trail's data events): `UnsupportedOperationException`, since an
//!   archive is not split by trail;
//! - a body that is not JSON, or a member of the wrong JSON type: `SerializationException`.
//!
//! Unlike CloudTrail, every period is served over the whole archive: CloudTrail keeps 1-minute
//! points for 15 days, 5-minute points for 63 and hourly points for 90.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{InsightType, MetricDataPage, MetricDataQuery, MetricDataType};
use crate::fault::Fault;
use crate::request::timestamp;

/// The largest page, and the default.
pub(crate) const MAX_RESULTS: usize = 21_600;
/// The periods CloudTrail serves, in seconds.
const PERIODS: [i64; 3] = [60, 300, 3600];
/// The default `StartTime` is this long before the request.
const DEFAULT_SPAN_DAYS: i64 = 90;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRequest {
    trail_name: Option<String>,
    event_source: Option<String>,
    event_name: Option<String>,
    insight_type: Option<String>,
    error_code: Option<String>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    period: Option<i64>,
    data_type: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// A parsed request: the query (without Region scope and cursor, which the server adds), the
/// client's `NextToken`, still sealed, and the times as the client gave them (the token is sealed
/// to those, so that a default `EndTime`, "now", does not invalidate the next page's token).
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    pub query: MetricDataQuery,
    pub next_token: Option<String>,
    given_start: Option<DateTime<Utc>>,
    given_end: Option<DateTime<Utc>>,
}

/// The constraint violations of one request, worded as AWS words them.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, value: Option<&str>, member: &str, constraint: impl std::fmt::Display) {
        let value = value.map_or("null".to_string(), |v| format!("'{v}'"));
        self.0.push(format!("Value {value} at '{member}' failed to satisfy constraint: Member must {constraint}"));
    }

    /// A required string member: present, then as [`Violations::optional`].
    fn required(&mut self, value: Option<&str>, member: &str, max: usize, pattern: &str, ok: fn(&str) -> bool) {
        match value {
            None => self.add(None, member, "not be null"),
            Some(v) => self.optional(v, member, max, pattern, ok),
        }
    }

    /// A string member: at most `max` characters, matching `pattern` (which `ok` implements).
    fn optional(&mut self, value: &str, member: &str, max: usize, pattern: &str, ok: fn(&str) -> bool) {
        if value.chars().count() > max {
            self.add(Some(value), member, format!("have length less than or equal to {max}"));
        } else if !ok(value) {
            self.add(Some(value), member, format!("satisfy regular expression pattern: {pattern}"));
        }
    }

    fn range(&mut self, value: Option<i64>, member: &str, min: i64, max: i64) {
        match value {
            Some(v) if v < min => {
                self.add(Some(&v.to_string()), member, format!("have value greater than or equal to {min}"))
            }
            Some(v) if v > max => {
                self.add(Some(&v.to_string()), member, format!("have value less than or equal to {max}"))
            }
            _ => {}
        }
    }

    fn fault(self) -> Option<Fault> {
        let n = self.0.len();
        (n > 0).then(|| {
            let s = if n == 1 { "" } else { "s" };
            Fault::validation(format!("{n} validation error{s} detected: {}", self.0.join("; ")))
        })
    }
}

/// `^[a-z0-9_-]+\.amazonaws\.com$`
fn is_event_source(value: &str) -> bool {
    value.strip_suffix(".amazonaws.com").is_some_and(|service| {
        !service.is_empty()
            && service.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

/// Parses and validates a `ListInsightsMetricData` body; `now` is the time of the request.
pub(crate) fn parse(body: &[u8], now: DateTime<Utc>) -> Result<ParsedRequest, Fault> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    let wire: WireRequest = serde_json::from_slice(body).map_err(|e| {
        Fault::serialization(format!("the request body is not a valid ListInsightsMetricData request: {e}"))
    })?;

    let mut violations = Violations::default();
    violations.required(
        wire.event_source.as_deref(),
        "eventSource",
        256,
        r"^[a-z0-9_-]+\.amazonaws\.com$",
        is_event_source,
    );
    violations.required(wire.event_name.as_deref(), "eventName", 128, "^[A-Za-z0-9_]+$", |v| {
        !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if let Some(code) = wire.error_code.as_deref() {
        violations.optional(code, "errorCode", 128, r"^[\w\d\s_.,\-:\[\]]+$", |v| {
            !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || "_.,-:[]".contains(c))
        });
    }
    let insight_type = match wire.insight_type.as_deref() {
        Some("ApiCallRateInsight") => Some(InsightType::ApiCallRateInsight),
        Some("ApiErrorRateInsight") => Some(InsightType::ApiErrorRateInsight),
        other => {
            let constraint = "satisfy enum value set: [ApiErrorRateInsight, ApiCallRateInsight]";
            violations.add(other, "insightType", if other.is_none() { "not be null" } else { constraint });
            None
        }
    };
    let data_type = match wire.data_type.as_deref() {
        None | Some("NonZeroData") => MetricDataType::NonZeroData,
        Some("FillWithZeros") => MetricDataType::FillWithZeros,
        Some(other) => {
            violations.add(Some(other), "dataType", "satisfy enum value set: [FillWithZeros, NonZeroData]");
            MetricDataType::NonZeroData
        }
    };
    violations.range(wire.period, "period", 60, 3600);
    violations.range(wire.max_results, "maxResults", 1, MAX_RESULTS as i64);
    if let Some(token) = wire.next_token.as_deref() {
        let chars = token.chars().count();
        if chars == 0 {
            violations.add(Some(token), "nextToken", "have length greater than or equal to 1");
        } else if chars > 5000 {
            violations.add(Some(token), "nextToken", "have length less than or equal to 5000");
        }
    }
    if let Some(fault) = violations.fault() {
        return Err(fault);
    }
    let (Some(event_source), Some(event_name), Some(insight_type)) = (wire.event_source, wire.event_name, insight_type)
    else {
        unreachable!("missing required members are violations");
    };

    if wire.trail_name.is_some() {
        return Err(Fault::unsupported_operation(
            "TrailName (Insights on a trail's data events) is not supported: the archive is not split by trail; \
             leave it out for the management events' metrics",
        ));
    }
    let period = wire.period.unwrap_or(3600);
    if !PERIODS.contains(&period) {
        return Err(Fault::invalid_parameter(format!("Period must be 60, 300 or 3600 seconds, not {period}")));
    }
    let error_code = match insight_type {
        InsightType::ApiErrorRateInsight => match wire.error_code {
            Some(code) => Some(code),
            None => {
                return Err(Fault::invalid_parameter("ErrorCode is required when InsightType is ApiErrorRateInsight"));
            }
        },
        InsightType::ApiCallRateInsight => None,
    };
    let given_start = timestamp("StartTime", wire.start_time, Fault::invalid_parameter)?;
    let given_end = timestamp("EndTime", wire.end_time, Fault::invalid_parameter)?;
    let end = given_end.unwrap_or(now);
    let start = given_start.unwrap_or(now - Duration::days(DEFAULT_SPAN_DAYS));
    if start >= end {
        return Err(Fault::invalid_parameter(format!(
            "StartTime ({}) must be before EndTime ({}){}",
            start.to_rfc3339(),
            end.to_rfc3339(),
            if given_start.is_none() { "; StartTime defaults to 90 days before the request" } else { "" }
        )));
    }
    let max_results = wire.max_results.map_or(MAX_RESULTS, |n| n as usize);
    Ok(ParsedRequest {
        query: MetricDataQuery {
            event_source,
            event_name,
            insight_type,
            error_code,
            start,
            end,
            period: period as u32,
            data_type,
            region: None,
            max_results,
            cursor: None,
        },
        next_token: wire.next_token,
        given_start,
        given_end,
    })
}

impl ParsedRequest {
    /// SHA-256 over an unambiguous encoding of what defines the answer: every member but
    /// `MaxResults` and `NextToken`, the times as given, and the Region scope.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        fn field(hash: &mut Sha256, bytes: Option<&[u8]>) {
            match bytes {
                None => hash.update([0]),
                Some(bytes) => {
                    hash.update([1]);
                    hash.update((bytes.len() as u64).to_be_bytes());
                    hash.update(bytes);
                }
            }
        }
        let q = &self.query;
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros().to_be_bytes());
        let mut hash = Sha256::new();
        hash.update(b"parquetrail ListInsightsMetricData v1");
        field(&mut hash, Some(q.event_source.as_bytes()));
        field(&mut hash, Some(q.event_name.as_bytes()));
        field(&mut hash, Some(q.insight_type.as_str().as_bytes()));
        field(&mut hash, q.error_code.as_deref().map(str::as_bytes));
        field(&mut hash, micros(self.given_start).as_ref().map(|b| &b[..]));
        field(&mut hash, micros(self.given_end).as_ref().map(|b| &b[..]));
        field(&mut hash, Some(&q.period.to_be_bytes()));
        field(&mut hash, Some(q.data_type.as_str().as_bytes()));
        field(&mut hash, q.region.as_deref().map(str::as_bytes));
        hash.finalize().into()
    }
}

/// The answer's JSON: the series' identity echoed, epoch-second timestamps and their values.
pub(crate) fn response_body(query: &MetricDataQuery, page: &MetricDataPage, next_token: Option<&str>) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        event_source: &'a str,
        event_name: &'a str,
        insight_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'a str>,
        timestamps: Vec<i64>,
        values: Vec<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_token: Option<&'a str>,
    }
    let answer = Answer {
        event_source: &query.event_source,
        event_name: &query.event_name,
        insight_type: query.insight_type.as_str(),
        error_code: query.error_code.as_deref(),
        timestamps: page.points.iter().map(|(t, _)| t.timestamp()).collect(),
        values: page.points.iter().map(|(_, v)| *v).collect(),
        next_token,
    };
    serde_json::to_string(&answer).expect("a metric page serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: &str = r#""EventSource":"ec2.amazonaws.com","EventName":"RunInstances""#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_710_000_000, 0).unwrap()
    }

    /// (what, members besides EventSource and EventName, expected `__type` or "ok")
    const CASES: &[(&str, &str, &str)] = &[
        ("call rate", r#""InsightType":"ApiCallRateInsight""#, "ok"),
        ("error rate", r#""InsightType":"ApiErrorRateInsight","ErrorCode":"AccessDenied""#, "ok"),
        ("error rate without code", r#""InsightType":"ApiErrorRateInsight""#, "InvalidParameterException"),
        ("no type", r#""Period":60"#, "ValidationException"),
        ("bad type", r#""InsightType":"ApiCallRate""#, "ValidationException"),
        ("period 300", r#""InsightType":"ApiCallRateInsight","Period":300"#, "ok"),
        ("period 120", r#""InsightType":"ApiCallRateInsight","Period":120"#, "InvalidParameterException"),
        ("period 30", r#""InsightType":"ApiCallRateInsight","Period":30"#, "ValidationException"),
        ("period 7200", r#""InsightType":"ApiCallRateInsight","Period":7200"#, "ValidationException"),
        ("period string", r#""InsightType":"ApiCallRateInsight","Period":"60""#, "SerializationException"),
        ("fill", r#""InsightType":"ApiCallRateInsight","DataType":"FillWithZeros""#, "ok"),
        ("bad data type", r#""InsightType":"ApiCallRateInsight","DataType":"Zeros""#, "ValidationException"),
        ("max 21600", r#""InsightType":"ApiCallRateInsight","MaxResults":21600"#, "ok"),
        ("max 21601", r#""InsightType":"ApiCallRateInsight","MaxResults":21601"#, "ValidationException"),
        ("max 0", r#""InsightType":"ApiCallRateInsight","MaxResults":0"#, "ValidationException"),
        ("empty token", r#""InsightType":"ApiCallRateInsight","NextToken":"""#, "ValidationException"),
        (
            "reversed times",
            r#""InsightType":"ApiCallRateInsight","StartTime":1709251200,"EndTime":1709251100"#,
            "InvalidParameterException",
        ),
        (
            "equal times",
            r#""InsightType":"ApiCallRateInsight","StartTime":1709251200,"EndTime":1709251200"#,
            "InvalidParameterException",
        ),
        (
            "end before default start",
            r#""InsightType":"ApiCallRateInsight","EndTime":1600000000"#,
            "InvalidParameterException",
        ),
        ("negative time", r#""InsightType":"ApiCallRateInsight","StartTime":-5"#, "InvalidParameterException"),
        ("trail", r#""InsightType":"ApiCallRateInsight","TrailName":"t""#, "UnsupportedOperationException"),
        ("unknown member", r#""InsightType":"ApiCallRateInsight","Future":1"#, "ok"),
    ];

    #[test]
    fn validation_table() {
        let mut failures = Vec::new();
        for (what, members, expected) in CASES {
            let body = format!("{{{REQUIRED},{members}}}");
            let got = match parse(body.as_bytes(), now()) {
                Ok(_) => "ok",
                Err(fault) => fault.code(),
            };
            if got != *expected {
                failures.push(format!("{what}: body {body}: expected {expected}, got {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn patterns_and_required_members_are_worded_as_aws_words_them() {
        let cases: [(&str, &str); 6] = [
            (
                "{}",
                "3 validation errors detected: Value null at 'eventSource' failed to satisfy constraint: Member must not be null; Value null at 'eventName'",
            ),
            (
                r#"{"EventSource":"EC2.amazonaws.com","EventName":"Run","InsightType":"ApiCallRateInsight"}"#,
                r"Value 'EC2.amazonaws.com' at 'eventSource' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9_-]+\.amazonaws\.com$",
            ),
            (
                r#"{"EventSource":"ec2.amazonaws.com","EventName":"Run-Instances","InsightType":"ApiCallRateInsight"}"#,
                "1 validation error detected: Value 'Run-Instances' at 'eventName'",
            ),
            (
                r#"{"EventSource":"ec2.amazonaws.com","EventName":"Run","InsightType":"ApiErrorRateInsight","ErrorCode":"Access/Denied"}"#,
                "at 'errorCode' failed to satisfy constraint",
            ),
            (
                r#"{"EventSource":"ec2.amazonaws.com","EventName":"Run","InsightType":"x"}"#,
                "Member must satisfy enum value set: [ApiErrorRateInsight, ApiCallRateInsight]",
            ),
            (
                r#"{"EventSource":"ec2.amazonaws.com","EventName":"Run","InsightType":"ApiCallRateInsight","Period":4000}"#,
                "Value '4000' at 'period' failed to satisfy constraint: Member must have value less than or equal to 3600",
            ),
        ];
        for (body, message) in cases {
            let fault = parse(body.as_bytes(), now()).unwrap_err();
            assert_eq!(fault.code(), "ValidationException", "{body}");
            assert!(fault.message().contains(message), "{body}: {}", fault.message());
        }
        // Error codes CloudTrail records, with their dots, colons and spaces, pass.
        for code in ["Client.UnauthorizedOperation", "ThrottlingException", "Server.InternalError: x [1]"] {
            let body = format!(r#"{{{REQUIRED},"InsightType":"ApiErrorRateInsight","ErrorCode":"{code}"}}"#);
            assert!(parse(body.as_bytes(), now()).is_ok(), "{code}");
        }
    }

    #[test]
    fn defaults_are_cloudtrails() {
        let parsed =
            parse(format!(r#"{{{REQUIRED},"InsightType":"ApiCallRateInsight","ErrorCode":"x"}}"#).as_bytes(), now())
                .unwrap();
        let q = &parsed.query;
        assert_eq!((q.period, q.data_type, q.max_results), (3600, MetricDataType::NonZeroData, 21_600));
        assert_eq!((q.start, q.end), (now() - Duration::days(90), now()));
        assert_eq!(q.error_code, None, "ErrorCode is ignored for a call rate");
    }

    #[test]
    fn the_fingerprint_ignores_page_size_and_a_moving_now_but_nothing_else() {
        let fp = |members: &str, now: DateTime<Utc>| {
            parse(format!("{{{REQUIRED},{members}}}").as_bytes(), now).unwrap().fingerprint()
        };
        let base = r#""InsightType":"ApiCallRateInsight","Period":60"#;
        let later = now() + Duration::minutes(5);
        assert_eq!(fp(base, now()), fp(&format!("{base},\"MaxResults\":5"), later));
        for other in [
            r#""InsightType":"ApiCallRateInsight","Period":300"#,
            r#""InsightType":"ApiCallRateInsight","Period":60,"DataType":"FillWithZeros""#,
            r#""InsightType":"ApiCallRateInsight","Period":60,"StartTime":1709251200"#,
            r#""InsightType":"ApiErrorRateInsight","Period":60,"ErrorCode":"AccessDenied""#,
        ] {
            assert_ne!(fp(base, now()), fp(other, now()), "{other}");
        }
    }
}
