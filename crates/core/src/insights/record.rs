//! Episodes → CloudTrail-format Insight records: a `Start` and an `End` sharing `sharedEventID`.
//!
//! The shape follows the records CloudTrail delivers (`eventType: AwsCloudTrailInsight`, no
//! `userIdentity`, `insightDetails.insightContext.{statistics, attributions}`), in CloudTrail's key
//! order. Event IDs are UUID-shaped digests of what identifies the episode (account, Region, type,
//! source, name, error code, direction, first minute), so a rerun writes the same IDs and a later
//! run with more data replaces an episode's records instead of adding new ones.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::detect::{Attribution, Direction, Episode};

/// The `eventVersion` of the Insight records CloudTrail delivers.
pub const INSIGHT_EVENT_VERSION: &str = "1.07";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    event_time: String,
    aws_region: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    event_type: &'static str,
    recipient_account_id: &'a str,
    #[serde(rename = "sharedEventID")]
    shared_event_id: &'a str,
    insight_details: Details<'a>,
    event_category: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details<'a> {
    state: &'static str,
    event_source: &'a str,
    event_name: &'a str,
    insight_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    insight_context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    statistics: Statistics,
    attributions: Vec<AttributionOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    baseline: Average,
    insight: Average,
    insight_duration: i64,
    baseline_duration: i64,
}

#[derive(Serialize)]
struct Average {
    average: f64,
}

#[derive(Serialize)]
struct AttributionOut<'a> {
    attribute: &'static str,
    insight: Vec<ValueAverage<'a>>,
    baseline: Vec<ValueAverage<'a>>,
}

#[derive(Serialize)]
struct ValueAverage<'a> {
    value: &'a str,
    average: f64,
}

/// A UUID-shaped (8-4-4-4-12, version 8 "custom") digest of `parts`.
fn content_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn iso(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros).expect("minute in range").to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Rounds an average the way CloudTrail prints them (at most 10 significant digits), so values
/// read well and compare stably across runs.
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 10 - v.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

fn values(r: &[(String, f64)]) -> Vec<ValueAverage<'_>> {
    r.iter().map(|(value, average)| ValueAverage { value, average: round(*average) }).collect()
}

fn attribution<'a>(attribute: &'static str, a: &'a Attribution) -> AttributionOut<'a> {
    AttributionOut { attribute, insight: values(&a.insight), baseline: values(&a.baseline) }
}

/// The `sharedEventID` of an episode.
pub fn shared_event_id(e: &Episode) -> String {
    let direction = match e.direction {
        Direction::Above => "above",
        Direction::Below => "below",
    };
    content_id(&[
        "parquetrail-insight",
        &e.key.account,
        &e.key.region,
        e.key.insight_type.as_str(),
        &e.key.eventsource,
        &e.key.eventname,
        e.key.errorcode.as_deref().unwrap_or(""),
        direction,
        &e.start.to_string(),
    ])
}

/// The episode's records as CloudTrail JSON: `Start`, and `End` once the episode has ended.
///
/// `Start` carries the first unusual minute (`insight.average` is its count, `insightDuration` 1);
/// `End` carries the whole episode. Both carry the baseline and the attributions of the whole
/// episode known so far.
pub fn insight_records(e: &Episode) -> Vec<String> {
    let shared = shared_event_id(e);
    let mut out = Vec::with_capacity(2);
    let mut states: Vec<(&'static str, i64, f64, i64)> = vec![("Start", e.start, e.first_count as f64, 1)];
    if let Some(end) = e.end {
        states.push(("End", end, e.insight_average, e.insight_minutes));
    }
    for (state, time, average, duration) in states {
        let record = Record {
            event_version: INSIGHT_EVENT_VERSION,
            event_time: iso(time),
            aws_region: &e.key.region,
            event_id: content_id(&[&shared, state]),
            event_type: "AwsCloudTrailInsight",
            recipient_account_id: &e.key.account,
            shared_event_id: &shared,
            insight_details: Details {
                state,
                event_source: &e.key.eventsource,
                event_name: &e.key.eventname,
                insight_type: e.key.insight_type.as_str(),
                error_code: e.key.errorcode.as_deref(),
                insight_context: Context {
                    statistics: Statistics {
                        baseline: Average { average: round(e.baseline_average) },
                        insight: Average { average: round(average) },
                        insight_duration: duration,
                        baseline_duration: e.baseline_minutes,
                    },
                    attributions: vec![
                        attribution("userIdentityArn", &e.user_arns),
                        attribution("userAgent", &e.user_agents),
                        attribution("errorCode", &e.error_codes),
                    ],
                },
            },
            event_category: "Insight",
        };
        out.push(serde_json::to_string(&record).expect("plain data serializes"));
    }
    out
}
