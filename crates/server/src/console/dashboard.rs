//! Dashboards: one pass over a range's events (the same lookup as Event history, read a page at a
//! time and dropped), counted into widgets. Each widget says what it counts and carries, for every
//! bar, the attribute filters of the Event history view behind it.
//!
//! Memory is bounded whatever the archive holds: at most [`MAX_KEYS`] distinct values are counted
//! per widget (later ones go to `(other)`), the time series has at most [`MAX_POINTS`] buckets,
//! and at most [`MAX_SCAN`] events are read (the answer then says `truncated`).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use parquetrail_core::lookup;
use parquetrail_core::record::Row;
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{SCAN_PAGE, describe, time_of};
use super::params::{Params, rfc3339};
use super::{ApiError, Console};

/// Most events one dashboard reads.
pub(crate) const MAX_SCAN: usize = 1_000_000;
/// Most distinct values one widget counts.
pub(crate) const MAX_KEYS: usize = 10_000;
/// Most points of the events-over-time chart.
pub(crate) const MAX_POINTS: i64 = 60;
/// Bars a widget shows.
const TOP: usize = 10;
/// Bucket widths of the time series, in seconds: the smallest that keeps the chart within
/// [`MAX_POINTS`] is used.
const WIDTHS: [i64; 12] = [60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000, 31_536_000];
/// The range of a dashboard without `start`.
const DEFAULT_SPAN_DAYS: i64 = 7;

/// `eventName`s that change security groups.
const SECURITY_GROUP_EVENTS: [&str; 7] = [
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "ModifySecurityGroupRules",
];

/// Error codes that mean "not allowed".
const DENIED: [&str; 4] =
    ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"];

/// Counts of one widget, keyed by the bar's label and its Event history filters.
#[derive(Default)]
struct Counter {
    counts: HashMap<(String, Vec<(String, String)>), u64>,
    other: u64,
    total: u64,
}

impl Counter {
    fn add(&mut self, label: String, filters: Vec<(String, String)>) {
        self.total += 1;
        let key = (label, filters);
        if let Some(n) = self.counts.get_mut(&key) {
            *n += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(key, 1);
        } else {
            self.other += 1;
        }
    }

    fn bars(&self) -> Vec<Value> {
        let mut bars: Vec<_> = self.counts.iter().collect();
        bars.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.0.cmp(&b.0.0)));
        let mut out: Vec<Value> = bars
            .into_iter()
            .take(TOP)
            .map(|((label, filters), count)| {
                let attrs: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                json!({"label": label, "count": count, "attrs": attrs})
            })
            .collect();
        if self.other > 0 {
            out.push(json!({"label": "(other)", "count": self.other, "attrs": []}));
        }
        out
    }
}

fn kv(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

#[derive(Serialize)]
struct Widget {
    id: &'static str,
    title: &'static str,
    /// What the widget counts, in words.
    counts: &'static str,
    /// Filters every bar's Event history view has (besides its own).
    attrs: Vec<String>,
    total: u64,
    bars: Vec<Value>,
}

/// The widgets' counters, fed one row at a time.
#[derive(Default)]
struct Tally {
    events: Counter,
    top_events: Counter,
    top_sources: Counter,
    errors: Counter,
    denied: Counter,
    sign_ins: Counter,
    root: Counter,
    iam: Counter,
    security_groups: Counter,
    accounts: Counter,
    regions: Counter,
}

impl Tally {
    fn add(&mut self, row: &Row<'_>) {
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().unwrap_or("").to_string();
        let name = s(&row.eventname);
        let source = s(&row.eventsource);
        let user = lookup::username(row).unwrap_or_default();
        self.events.total += 1;
        self.top_events.add(name.clone(), vec![kv("EventName", &name)]);
        self.top_sources.add(source.clone(), vec![kv("EventSource", &source)]);
        if let Some(code) = row.errorcode.as_deref() {
            self.errors.add(format!("{user} · {code}"), vec![kv("Username", &user), kv("ErrorCode", code)]);
            if DENIED.contains(&code) {
                self.denied.add(format!("{user} · {code}"), vec![kv("Username", &user), kv("ErrorCode", code)]);
            }
        }
        if name == "ConsoleLogin" {
            let extra: Value =
                row.additionaleventdata.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
            let mfa = extra.get("MFAUsed").and_then(Value::as_str) == Some("Yes");
            let label = if mfa { "with MFA" } else { "without MFA" };
            self.sign_ins.add(format!("{label}: {user}"), vec![kv("EventName", "ConsoleLogin"), kv("Username", &user)]);
        }
        if row.useridentity.as_ref().and_then(|u| u.r#type.as_deref()) == Some("Root") {
            self.root.add(name.clone(), vec![kv("Username", "root"), kv("EventName", &name)]);
        }
        if source == "iam.amazonaws.com" && row.readonly.as_deref() == Some("false") {
            self.iam.add(name.clone(), vec![kv("EventSource", &source), kv("EventName", &name)]);
        }
        if SECURITY_GROUP_EVENTS.contains(&name.as_str()) {
            self.security_groups.add(name.clone(), vec![kv("EventName", &name)]);
        }
        let account = lookup::account(row).unwrap_or("").to_string();
        self.accounts.add(account.clone(), vec![kv("AccountId", &account)]);
        let region = s(&row.awsregion);
        self.regions.add(region.clone(), vec![kv("AwsRegion", &region)]);
    }

    fn widgets(&self) -> Vec<Widget> {
        let w = |id, title, counts, attrs: &[&str], c: &Counter| Widget {
            id,
            title,
            counts,
            attrs: attrs.iter().map(|a| a.to_string()).collect(),
            total: c.total,
            bars: c.bars(),
        };
        vec![
            w("top_events", "Top events", "events by EventName", &[], &self.top_events),
            w("top_sources", "Top event sources", "events by EventSource", &[], &self.top_sources),
            w(
                "errors",
                "Errors by principal",
                "events with an errorCode, by Username and ErrorCode",
                &[],
                &self.errors,
            ),
            w(
                "access_denied",
                "Access denied by principal",
                "events whose errorCode is AccessDenied, AccessDeniedException or (Client.)UnauthorizedOperation, by Username",
                &[],
                &self.denied,
            ),
            w(
                "console_sign_ins",
                "Console sign-ins",
                "ConsoleLogin events by additionalEventData.MFAUsed and Username",
                &[],
                &self.sign_ins,
            ),
            w("root_activity", "Root activity", "events of userIdentity.type Root, by EventName", &[], &self.root),
            w(
                "iam_changes",
                "IAM changes",
                "iam.amazonaws.com events with readOnly false, by EventName",
                &["ReadOnly=false"],
                &self.iam,
            ),
            w(
                "security_group_changes",
                "Security group changes",
                "security group create, delete, authorize, revoke and modify events, by EventName",
                &[],
                &self.security_groups,
            ),
            w("accounts", "Activity by account", "events by AccountId", &[], &self.accounts),
            w("regions", "Activity by Region", "events by AwsRegion", &[], &self.regions),
        ]
    }
}

/// The chart's window and bucket width: the range asked for (a week back from its end without a
/// start; up to now without an end), cut into at most [`MAX_POINTS`] buckets of a width from
/// [`WIDTHS`].
fn window(p: &Params, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, i64) {
    let end = p.query.end.min(now.max(p.query.start));
    let start =
        if p.query.start == DateTime::UNIX_EPOCH { end - TimeDelta::days(DEFAULT_SPAN_DAYS) } else { p.query.start };
    let span = (end - start).num_seconds().max(0);
    // Points: span / w + 1, at most MAX_POINTS.
    let width = WIDTHS.into_iter().find(|w| span / w < MAX_POINTS).unwrap_or(WIDTHS[WIDTHS.len() - 1]);
    (start, end, width)
}

/// The dashboard of `p`'s range and filters.
pub(crate) async fn summarise(console: &Console, p: &Params) -> Result<Value, ApiError> {
    let (start, end, width) = window(p, Utc::now());
    let mut p = p.clone();
    p.query.start = start;
    p.query.end = end;
    let points = ((end - start).num_seconds() / width + 1) as usize;
    let mut series = vec![0_u64; points];
    let mut tally = Tally::default();
    let mut scanned = 0;
    let mut truncated = false;
    loop {
        let (rows, next) = super::api::collect(console, &p, SCAN_PAGE).await?;
        for row in &rows {
            let offset = (time_of(row) - start).num_seconds() / width;
            if let Some(n) = usize::try_from(offset).ok().and_then(|i| series.get_mut(i)) {
                *n += 1;
            }
            tally.add(row);
        }
        scanned += rows.len();
        match next {
            None => break,
            Some(_) if scanned >= MAX_SCAN => {
                truncated = true;
                break;
            }
            Some(next) => p.cursor = Some(next),
        }
    }
    let series: Vec<Value> = series
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"start": rfc3339(start + TimeDelta::seconds(i as i64 * width)), "count": n}))
        .collect();
    let mut query = describe(&p.query, p.request_id.as_deref());
    query["page_size"] = json!(SCAN_PAGE);
    Ok(json!({
        "query": query,
        "events": tally.events.total,
        "truncated": truncated,
        "events_over_time": {"bucket_seconds": width, "points": series, "counts": "events by eventTime bucket"},
        "widgets": tally.widgets(),
    }))
}
