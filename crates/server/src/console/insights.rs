//! The Insights page: the Insights of a range (the archive's `insights` dataset, those CloudTrail
//! delivered and those `parquetrail insights` computed), each with the API's per-minute rate over
//! its episode and the record's baseline and attributions.
//!
//! **The rate is counted from the events, as the `metrics` dataset counts them.** The series
//! endpoint reads the episode window's events of the Insight's API (the same lookup as Event
//! history) into the core's [`Metrics`] and answers [`metric_data`] over them: the counting rules
//! of `parquetrail insights` (write management events for a call-rate Insight, events with the
//! error code for an error-rate one), without reading the stored `metrics` files. Those exist only
//! where `parquetrail insights` ran, and building a missing one writes to the archive, which a
//! `GET` must not do; counting a window's events is a small read, and works as well for the
//! Insights CloudTrail delivered.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use parquetrail_core::insights::detect::InsightType;
use parquetrail_core::insights::metrics::{MINUTE_MICROS, Metrics};
use parquetrail_core::insights::series::{MetricQuery, PERIODS, metric_data};
use parquetrail_core::lookup::{self, AttributeKey, LookupQuery};
use parquetrail_core::record::Row;
use parquetrail_ingest::insights::COMPUTED_SOURCE_KEY;
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{SCAN_PAGE, backend_error, describe, json_response, parse, time_of};
use super::params::{self, MAX_LIMIT, rfc3339};
use super::{ApiError, Console};

/// Most Insight records one list reads (two per Insight).
pub(crate) const MAX_RECORDS: usize = 2000;
/// Minutes shown before an episode's start and after its end.
pub(crate) const PAD_MINUTES: i64 = 30;
/// Most points of a chart: a window longer than this many minutes is drawn 5 minutes (or an
/// hour) a point.
pub(crate) const MAX_POINTS: i64 = 1440;
/// Longest window the series endpoint counts.
const MAX_WINDOW_DAYS: i64 = 31;
/// Most events the series endpoint reads; beyond, it answers what it counted with `truncated`.
const MAX_SERIES_EVENTS: usize = 500_000;

/// A `Start` or `End` record of an Insight.
#[derive(Debug, Clone, Serialize)]
struct Edge {
    event_id: Option<String>,
    time: String,
}

/// One Insight: its `Start` and `End` records joined on `sharedEventID`.
#[derive(Debug, Clone, Serialize)]
struct Insight {
    shared_event_id: String,
    /// Computed by `parquetrail insights` (its `source_key` starts with `parquetrail-insights`),
    /// not delivered by CloudTrail.
    computed: bool,
    source_key: String,
    account: Option<String>,
    region: Option<String>,
    insight_type: Option<String>,
    event_source: Option<String>,
    event_name: Option<String>,
    error_code: Option<String>,
    start: Option<Edge>,
    end: Option<Edge>,
    /// From the `End` record when there is one (it covers the whole episode), else the `Start`.
    statistics: Value,
    attributions: Value,
    /// The series endpoint's parameters for this Insight's chart.
    series: BTreeMap<&'static str, String>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Adds one Insight record to the Insight it belongs to.
fn add_record(insights: &mut BTreeMap<String, Insight>, order: &mut Vec<String>, row: &Row<'_>) {
    let details: Value =
        row.insightdetails.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    let shared = row.sharedeventid.as_deref().or(row.eventid.as_deref()).unwrap_or_default().to_string();
    let edge = Edge { event_id: row.eventid.as_deref().map(str::to_string), time: rfc3339(time_of(row)) };
    let state = details["state"].as_str().unwrap_or("Start");
    let insight = insights.entry(shared.clone()).or_insert_with(|| {
        order.push(shared.clone());
        Insight {
            shared_event_id: shared.clone(),
            computed: row.source_key.starts_with(COMPUTED_SOURCE_KEY),
            source_key: row.source_key.to_string(),
            account: lookup::account(row).map(str::to_string),
            region: row.awsregion.as_deref().map(str::to_string),
            insight_type: text(&details["insightType"]),
            event_source: text(&details["eventSource"]),
            event_name: text(&details["eventName"]),
            error_code: text(&details["errorCode"]),
            start: None,
            end: None,
            statistics: Value::Null,
            attributions: Value::Null,
            series: BTreeMap::new(),
        }
    });
    let context = &details["insightContext"];
    let is_end = state == "End";
    if is_end || insight.end.is_none() {
        insight.statistics = context["statistics"].clone();
        insight.attributions = context["attributions"].clone();
    }
    if is_end {
        insight.end = Some(edge);
    } else {
        insight.start = Some(edge);
    }
}

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros().div_euclid(MINUTE_MICROS) * MINUTE_MICROS;
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// The chart's window: the episode with [`PAD_MINUTES`] either side, whole minutes, and the
/// period that keeps it within [`MAX_POINTS`].
fn chart_window(insight: &Insight) -> Option<(DateTime<Utc>, DateTime<Utc>, u32)> {
    let at = |e: &Option<Edge>| e.as_ref().and_then(|e| DateTime::parse_from_rfc3339(&e.time).ok()).map(|t| t.to_utc());
    let duration = insight.statistics["insightDuration"].as_i64().unwrap_or(1).clamp(1, MAX_WINDOW_DAYS * 1440);
    let (start, end) = match (at(&insight.start), at(&insight.end)) {
        (Some(s), Some(e)) => (s, e.max(s)),
        (Some(s), None) => (s, s + TimeDelta::minutes(duration)),
        (None, Some(e)) => (e - TimeDelta::minutes(duration), e),
        (None, None) => return None,
    };
    let pad = TimeDelta::minutes(PAD_MINUTES);
    let from = minute_floor(start) - pad;
    let to = minute_floor(end + TimeDelta::seconds(59)) + pad;
    let minutes = (to - from).num_minutes();
    let period = if minutes <= MAX_POINTS {
        60
    } else if minutes <= MAX_POINTS * 5 {
        300
    } else {
        3600
    };
    Some((from, to, period))
}

/// `GET /console/api/insights`: the Insights with a record in the range (`start`, `end`,
/// `account`, `region`; `attr` with `EventName`, `EventSource` or `EventId`), newest first.
pub(crate) async fn list(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let (_, mut p) = parse(&uri, MAX_LIMIT)?;
    p.cursor = None;
    p.query.insights = true;
    p.query.validate().map_err(|e| ApiError::bad_request(format!("attr: {e}")))?;
    p.query.max_results = SCAN_PAGE.min(MAX_RECORDS);
    let mut insights = BTreeMap::new();
    let mut order = Vec::new();
    let (read, truncated) =
        read_all(&console, &p.query, MAX_RECORDS, |row| add_record(&mut insights, &mut order, row)).await?;
    let mut out: Vec<Insight> = order.into_iter().filter_map(|id| insights.remove(&id)).collect();
    for insight in &mut out {
        let Some((from, to, period)) = chart_window(insight) else { continue };
        let mut series = BTreeMap::new();
        let fields = [
            ("account", &insight.account),
            ("region", &insight.region),
            ("type", &insight.insight_type),
            ("source", &insight.event_source),
            ("name", &insight.event_name),
            ("error", &insight.error_code),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                series.insert(name, v.clone());
            }
        }
        series.insert("start", rfc3339(from));
        series.insert("end", rfc3339(to));
        series.insert("period", period.to_string());
        insight.series = series;
    }
    let mut query = describe(&p.query, None);
    query["dataset"] = json!("insights");
    Ok(json_response(&json!({"query": query, "insights": out, "records": read, "truncated": truncated})))
}

/// Hands every row of `query` to `each`, a page at a time, until `most` are read: how many were
/// read, and whether more were left unread.
async fn read_all(
    console: &Console,
    query: &LookupQuery,
    most: usize,
    mut each: impl FnMut(&Row<'_>),
) -> Result<(usize, bool), ApiError> {
    let (mut read, mut cursor) = (0, None);
    loop {
        let page = console.backend.rows(query, cursor.as_ref()).await.map_err(backend_error)?;
        page.events.iter().for_each(&mut each);
        read += page.events.len();
        match page.next {
            Some(next) if read < most => cursor = Some(next),
            Some(_) => return Ok((read, true)),
            None => return Ok((read, false)),
        }
    }
}

/// What the series endpoint was asked.
#[derive(Debug)]
struct SeriesRequest {
    account: String,
    region: String,
    metric: MetricQuery,
}

fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    params::one(pairs, name).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::bad_request(format!("{name}: required")))
}

fn instant(pairs: &[(String, String)], name: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = required(pairs, name)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| ApiError::bad_request(format!("{name}: {text:?} is not an RFC 3339 time (2024-03-01T12:00:00Z)")))
}

fn series_request(pairs: &[(String, String)]) -> Result<SeriesRequest, ApiError> {
    let account = required(pairs, "account")?.to_string();
    let region = required(pairs, "region")?.to_string();
    let insight_type = match required(pairs, "type")? {
        "ApiCallRateInsight" => InsightType::ApiCallRateInsight,
        "ApiErrorRateInsight" => InsightType::ApiErrorRateInsight,
        other => {
            return Err(ApiError::bad_request(format!(
                "type: {other:?} is not ApiCallRateInsight or ApiErrorRateInsight"
            )));
        }
    };
    let eventsource = required(pairs, "source")?.to_string();
    let eventname = required(pairs, "name")?.to_string();
    for (name, key, value) in [
        ("source", AttributeKey::EventSource, &eventsource),
        ("name", AttributeKey::EventName, &eventname),
        ("account", AttributeKey::AccountId, &account),
        ("region", AttributeKey::AwsRegion, &region),
    ] {
        lookup::check_attribute(key, value).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?;
    }
    let errorcode = params::one(pairs, "error").filter(|v| !v.is_empty()).map(str::to_string);
    if let Some(code) = &errorcode {
        lookup::check_attribute(AttributeKey::ErrorCode, code)
            .map_err(|e| ApiError::bad_request(format!("error: {e}")))?;
    }
    let start = instant(pairs, "start")?;
    let end = instant(pairs, "end")?;
    if start >= end {
        return Err(ApiError::bad_request(format!("start {} is not before end {}", rfc3339(start), rfc3339(end))));
    }
    if end - start > TimeDelta::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::bad_request(format!("end: a chart covers at most {MAX_WINDOW_DAYS} days")));
    }
    let period = match params::one(pairs, "period").filter(|v| !v.is_empty()) {
        None => 60,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if PERIODS.contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("period: {text:?} is not 60, 300 or 3600"))),
        },
    };
    let minutes = (end - start).num_seconds() / i64::from(period);
    if minutes > MAX_POINTS * 5 {
        return Err(ApiError::bad_request(format!(
            "period: {period} s over this range makes {minutes} points; choose a longer period (at most {} points)",
            MAX_POINTS * 5
        )));
    }
    let metric = MetricQuery {
        insight_type,
        eventsource,
        eventname,
        errorcode,
        start: start.timestamp_micros(),
        end: end.timestamp_micros(),
        period,
        fill_with_zeros: true,
    };
    metric.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(SeriesRequest { account, region, metric })
}

/// `GET /console/api/insights/series`: an Insight's API per period over `[start, end)`
/// (`account`, `region`, `type`, `source`, `name`, `error`, `start`, `end` in RFC 3339, `period`
/// 60, 300 or 3600 s), counted as the `metrics` dataset counts it.
pub(crate) async fn series(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let pairs = params::pairs(uri.query());
    let request = series_request(&pairs)?;
    let m = &request.metric;
    let start = DateTime::from_timestamp_micros(m.start).unwrap_or_default();
    let last = DateTime::from_timestamp_micros(m.end - 1).unwrap_or_default();
    let mut query = LookupQuery::new(start, last);
    query.attributes.push((AttributeKey::EventSource, m.eventsource.clone()));
    query.attributes.push((AttributeKey::EventName, m.eventname.clone()));
    if m.insight_type == InsightType::ApiCallRateInsight {
        query.attributes.push((AttributeKey::ReadOnly, "false".into()));
    }
    if let Some(code) = &m.errorcode {
        query.attributes.push((AttributeKey::ErrorCode, code.clone()));
    }
    query.accounts = vec![request.account.clone()];
    query.regions = vec![request.region.clone()];
    query.max_results = SCAN_PAGE;
    let mut metrics = Metrics::default();
    let (read, truncated) = read_all(&console, &query, MAX_SERIES_EVENTS, |row| {
        metrics.add_row(row);
    })
    .await?;
    let points: Vec<Value> = metric_data(&metrics, m)
        .into_iter()
        .map(|(t, n)| {
            let at = DateTime::from_timestamp_micros(t).unwrap_or_default();
            json!({"start": rfc3339(at), "count": n})
        })
        .collect();
    let mut described = describe(&query, None);
    described["insight_type"] = json!(m.insight_type.as_str());
    described["period_seconds"] = json!(m.period);
    Ok(json_response(&json!({
        "query": described,
        "period_seconds": m.period,
        "points": points,
        "events": read,
        "truncated": truncated,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Result<SeriesRequest, ApiError> {
        series_request(&params::pairs(Some(query)))
    }

    const OK: &str = "account=123456789012&region=us-east-1&type=ApiCallRateInsight&source=ec2.amazonaws.com\
                      &name=RunInstances&start=2024-03-09T10:00:00Z&end=2024-03-09T11:00:00Z";

    #[test]
    fn a_series_request_becomes_the_core_metric_query() {
        let r = request(OK).unwrap();
        assert_eq!(r.metric.period, 60);
        assert_eq!(r.metric.end - r.metric.start, 60 * MINUTE_MICROS);
        assert!(r.metric.fill_with_zeros);
        let r = request(&format!("{OK}&type=ApiErrorRateInsight&error=AccessDenied&period=300")).unwrap();
        assert_eq!(r.metric.errorcode.as_deref(), Some("AccessDenied"));
        assert_eq!(r.metric.period, 300);
    }

    #[test]
    fn bad_series_parameters_are_named() {
        for (query, name) in [
            ("", "account"),
            (&OK.replace("type=ApiCallRateInsight", "type=Nope") as &str, "type"),
            (&OK.replace("&name=RunInstances", ""), "name"),
            (&OK.replace("2024-03-09T10:00:00Z", "yesterday"), "start"),
            (&OK.replace("2024-03-09T11:00:00Z", "2024-03-09T09:00:00Z"), "start"),
            (&OK.replace("2024-03-09T11:00:00Z", "2024-06-09T09:00:00Z"), "end"),
            (&format!("{OK}&period=7"), "period"),
            (&OK.replace("2024-03-09T11:00:00Z", "2024-03-19T09:00:00Z"), "period"),
        ] {
            let e = request(query).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{query}");
            assert!(e.message.starts_with(name), "{query}: {}", e.message);
        }
    }
}
