//! The console's JSON (and CSV) endpoints. Each reads the archive through the backend with the
//! core's [`LookupQuery`] and reports the query it ran (and its Athena SQL twin), so a view can
//! be reproduced with `parquetrail lookup` or in Athena.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use parquetrail_core::lookup::{self, AttributeKey, Cursor, LookupQuery, Position, Resource};
use parquetrail_core::record::Row;
use serde::Serialize;
use serde_json::{Value, json};

use super::params::{self, MAX_DOWNLOAD, MAX_LIMIT, Params, REQUEST_ID, rfc3339};
use super::{ApiError, Console, dashboard};
use crate::Error;

/// Rows read per backend call while filtering on the request ID or summarising a range. Each call
/// finds the range's partitions again, so these reads go in large pages; one page of rows is what
/// such a request holds in memory.
pub(crate) const SCAN_PAGE: usize = 5000;
/// Rows one request with a request ID filter reads at most before it answers with what it has
/// (and a token to read on).
const REQUEST_ID_SCAN: usize = 50_000;

/// One event as the console's table shows it: CloudTrail's columns and the chooser's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Summary {
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_time: String,
    pub username: Option<String>,
    pub event_source: Option<String>,
    pub resources: Vec<Resource>,
    pub access_key_id: Option<String>,
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub error_code: Option<String>,
    pub source_ip_address: Option<String>,
    pub read_only: Option<String>,
    pub request_id: Option<String>,
}

pub(crate) fn summary(row: &Row<'_>) -> Summary {
    let event = lookup_view(row);
    let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
    Summary {
        event_id: s(&row.eventid),
        event_name: event.0,
        event_time: rfc3339(time_of(row)),
        username: lookup::username(row),
        event_source: event.1,
        resources: lookup::resources(row),
        access_key_id: row.useridentity.as_ref().and_then(|u| s(&u.accesskeyid)).filter(|k| !k.is_empty()),
        account_id: lookup::account(row).map(str::to_string),
        aws_region: s(&row.awsregion),
        error_code: s(&row.errorcode),
        source_ip_address: s(&row.sourceipaddress),
        read_only: s(&row.readonly),
        request_id: s(&row.requestid),
    }
}

/// Event name and source as Event history shows them (Insights events carry theirs in
/// `insightDetails`): the core's own reading, without serializing the record.
fn lookup_view(row: &Row<'_>) -> (Option<String>, Option<String>) {
    if row.eventname.is_some() || row.eventsource.is_some() {
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        return (s(&row.eventname), s(&row.eventsource));
    }
    let event = lookup::lookup_event(row);
    (event.event_name, event.event_source)
}

pub(crate) fn time_of(row: &Row<'_>) -> DateTime<Utc> {
    row.eventtime_ts
        .and_then(DateTime::from_timestamp_micros)
        .or_else(|| row.event_time().ok())
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The query a view ran, as its JSON reports it.
pub(crate) fn describe(query: &LookupQuery, request_id: Option<&str>) -> Value {
    let mut attributes: Vec<Value> =
        query.attributes.iter().map(|(k, v)| json!({"key": k.as_str(), "value": v})).collect();
    if let Some(id) = request_id {
        attributes.push(json!({"key": REQUEST_ID, "value": id}));
    }
    json!({
        "attributes": attributes,
        "start": rfc3339(query.start),
        "end": rfc3339(query.end),
        "accounts": query.accounts,
        "regions": query.regions,
        "page_size": query.max_results,
        "athena_sql": query.athena_sql("cloudtrail", ""),
    })
}

pub(crate) fn backend_error(error: Error) -> ApiError {
    match error {
        Error::InvalidCursor(why) => ApiError::bad_request(format!("next: {why}")),
        error => {
            tracing::error!(error = %error, "console lookup failed");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the lookup failed; the server's log has the cause",
            )
        }
    }
}

/// Up to `want` hits of `p` after its cursor, and where the next page starts.
pub(crate) async fn collect(
    console: &Console,
    p: &Params,
    want: usize,
) -> Result<(Vec<Row<'static>>, Option<Cursor>), ApiError> {
    let mut query = p.query.clone();
    let Some(request_id) = &p.request_id else {
        query.max_results = want;
        let page = console.backend.rows(&query, p.cursor.as_ref()).await.map_err(backend_error)?;
        return Ok((page.events, page.next));
    };
    query.max_results = SCAN_PAGE;
    let mut cursor = p.cursor.clone();
    let (mut hits, mut scanned) = (Vec::new(), 0);
    loop {
        let page = console.backend.rows(&query, cursor.as_ref()).await.map_err(backend_error)?;
        for row in page.events {
            scanned += 1;
            if row.requestid.as_deref() == Some(request_id.as_str()) {
                hits.push(row);
                if hits.len() == want {
                    let next = hits.last().map(|r| Cursor(Position::of(r)));
                    return Ok((hits, next));
                }
            }
        }
        match page.next {
            None => return Ok((hits, None)),
            Some(next) if scanned >= REQUEST_ID_SCAN => return Ok((hits, Some(next))),
            Some(next) => cursor = Some(next),
        }
    }
}

pub(crate) fn parse(uri: &Uri, max_limit: usize) -> Result<(Vec<(String, String)>, Params), ApiError> {
    let pairs = params::pairs(uri.query());
    let p = params::parse(&pairs, Utc::now(), max_limit)?;
    Ok((pairs, p))
}

pub(crate) fn json_response(value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /console/api/events`: one page of Event history.
pub(crate) async fn events(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let (_, p) = parse(&uri, MAX_LIMIT)?;
    let (rows, next) = collect(&console, &p, p.query.max_results).await?;
    let events: Vec<Summary> = rows.iter().map(summary).collect();
    Ok(json_response(&json!({
        "query": describe(&p.query, p.request_id.as_deref()),
        "events": events,
        "next": next.map(|c| p.next_token(&c)),
    })))
}

/// `GET /console/api/event?id=…`: the events of that `eventID` (one, unless copies were
/// delivered to several trails), each with its whole record.
pub(crate) async fn event(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let pairs = params::pairs(uri.query());
    let id = params::one(&pairs, "id").unwrap_or("");
    lookup::check_attribute(AttributeKey::EventId, id).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    let mut query = LookupQuery::new(DateTime::UNIX_EPOCH, DateTime::<Utc>::MAX_UTC);
    query.attributes.push((AttributeKey::EventId, id.to_string()));
    query.max_results = 10;
    let mut p = Params { query, request_id: None, cursor: None };
    let (mut rows, _) = collect(&console, &p, 10).await?;
    if rows.is_empty() {
        // An Insights event (the Insights page links to its Start and End records).
        p.query.insights = true;
        rows = collect(&console, &p, 10).await?.0;
    }
    let events: Vec<Value> = rows
        .iter()
        .map(|row| {
            let record: Value = serde_json::from_str(&row.to_json()).unwrap_or(Value::Null);
            json!({"summary": summary(row), "record": record})
        })
        .collect();
    if events.is_empty() {
        return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("no event has the ID {id:?}")));
    }
    Ok(json_response(&json!({"query": describe(&p.query, None), "events": events})))
}

/// The rows of a download: the query from its beginning, `limit` (default 1000) at most.
async fn download_rows(console: &Console, headers: &HeaderMap, uri: &Uri) -> Result<Vec<Row<'static>>, ApiError> {
    console.check(headers)?;
    let (pairs, mut p) = parse(uri, MAX_DOWNLOAD)?;
    if params::one(&pairs, "limit").is_none_or(str::is_empty) {
        p.query.max_results = MAX_LIMIT;
    }
    p.cursor = None;
    let want = p.query.max_results;
    Ok(collect(console, &p, want).await?.0)
}

fn attachment(content_type: &'static str, name: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The console's columns, as `parquetrail lookup --format csv` writes them.
const CSV_HEADER: [&str; 13] = [
    "Event time",
    "Event name",
    "User name",
    "Event source",
    "Resource type",
    "Resource name",
    "AWS access key",
    "AWS region",
    "Error code",
    "Source IP address",
    "Event ID",
    "Read-only",
    "Account ID",
];

/// Writes `rows` as CSV with the console's columns (those of `parquetrail lookup --format csv`
/// too), every cell guarded against spreadsheet formulas: a value starting with `= + - @`, a tab
/// or a carriage return gets a leading `'` ([`lookup::csv_safe`]).
pub fn write_events_csv(out: impl std::io::Write, rows: &[Row<'_>]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for row in rows {
        let e = summary(row);
        let joined = |f: fn(&Resource) -> Option<&str>| e.resources.iter().filter_map(f).collect::<Vec<_>>().join(", ");
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let cells = [
            e.event_time.clone(),
            s(&e.event_name),
            s(&e.username),
            s(&e.event_source),
            joined(|r| r.resource_type.as_deref()),
            joined(|r| r.resource_name.as_deref()),
            s(&e.access_key_id),
            s(&e.aws_region),
            s(&e.error_code),
            s(&e.source_ip_address),
            s(&e.event_id),
            s(&e.read_only),
            s(&e.account_id),
        ];
        w.write_record(cells.iter().map(|c| lookup::csv_safe(c).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// `GET /console/api/events.csv`: the result as CSV ([`write_events_csv`]).
pub(crate) async fn download_csv(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let rows = download_rows(&console, &headers, &uri).await?;
    let mut body = Vec::new();
    write_events_csv(&mut body, &rows)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(attachment("text/csv; charset=utf-8", "attachment; filename=\"events.csv\"", body))
}

/// `GET /console/api/events.json`: the result in `LookupEvents`' shape (`{"Events": [...]}`).
pub(crate) async fn download_json(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let rows = download_rows(&console, &headers, &uri).await?;
    let events: Vec<lookup::LookupEvent> = rows.iter().map(lookup::lookup_event).collect();
    let body = serde_json::to_string_pretty(&json!({ "Events": events }))
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(attachment("application/json", "attachment; filename=\"events.json\"", body))
}

/// `GET /console/api/meta`: the attribute keys, and the accounts and Regions of the archive (for
/// the pickers).
pub(crate) async fn meta(State(console): State<Console>, headers: HeaderMap) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let scopes = console.backend.scopes().await.map_err(backend_error)?;
    let accounts: BTreeSet<&str> = scopes.iter().map(|(a, _)| a.as_str()).collect();
    let regions: BTreeSet<&str> = scopes.iter().map(|(_, r)| r.as_str()).collect();
    let keys: Vec<&str> = AttributeKey::ALL.iter().map(|k| k.as_str()).chain([REQUEST_ID]).collect();
    Ok(json_response(&json!({"keys": keys, "accounts": accounts, "regions": regions})))
}

/// `GET /console/api/dashboard`: the summaries of a range (see [`dashboard`]).
pub(crate) async fn dashboard(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    console.check(&headers)?;
    let (_, mut p) = parse(&uri, MAX_LIMIT)?;
    p.cursor = None;
    let summary = dashboard::summarise(&console, &p).await?;
    Ok(json_response(&summary))
}
