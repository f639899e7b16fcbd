//! Per-minute metrics: one [`MetricRow`] per series ([`SeriesKey`]) and minute, with the count of
//! events and bounded tallies of who called ([`TopValues`]) for the attributions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::Row;

/// How many distinct values a [`TopValues`] keeps exactly per minute (the rest is counted in
/// `other`). Insight records attribute to the top 5; the margin absorbs churn.
pub const TOP_VALUES: usize = 16;

/// One value and how many events it accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// A bounded tally of values (user ARNs, user agents): at most [`TOP_VALUES`] entries plus the
/// count of events not attributed to any of them, so memory does not depend on the input.
///
/// When full, a new value evicts the entry with the smallest count (the oldest among equals) and
/// that entry's count moves to `other`. Counts are therefore exact for minutes with at most
/// [`TOP_VALUES`] distinct values, and lower bounds otherwise; `sum(counts) + other` is always the
/// number of events. A caller that dominates a minute is never evicted by one-off values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopValues {
    pub values: Vec<ValueCount>,
    pub other: u64,
}

impl TopValues {
    /// Counts `n` events of `value`.
    pub fn add(&mut self, value: &str, n: u64) {
        if let Some(v) = self.values.iter_mut().find(|v| v.value == value) {
            v.count += n;
            return;
        }
        if self.values.len() >= TOP_VALUES {
            // The first minimum is the oldest of the smallest: entries are appended in arrival order.
            let (i, _) = self.values.iter().enumerate().min_by_key(|(_, v)| v.count).expect("full");
            let evicted = self.values.remove(i);
            self.other += evicted.count;
        }
        self.values.push(ValueCount { value: value.to_string(), count: n });
    }

    /// Adds another tally (another delivery of the same minute), keeping the largest entries.
    pub fn merge(&mut self, other: &TopValues) {
        for v in &other.values {
            if let Some(mine) = self.values.iter_mut().find(|m| m.value == v.value) {
                mine.count += v.count;
            } else {
                self.values.push(v.clone());
            }
        }
        self.other += other.other;
        self.values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        for dropped in self.values.drain(TOP_VALUES.min(self.values.len())..) {
            self.other += dropped.count;
        }
    }

    /// The number of events tallied.
    pub fn total(&self) -> u64 {
        self.values.iter().map(|v| v.count).sum::<u64>() + self.other
    }
}

/// What a per-minute count is counted by: CloudTrail's own dimensions for Insights.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub account: String,
    pub region: String,
    pub eventsource: String,
    pub eventname: String,
    /// `None` for calls that succeeded.
    pub errorcode: Option<String>,
    /// `None` when the record does not say (some service events).
    pub readonly: Option<bool>,
    /// `Management`, `Data`, `NetworkActivity` (records before eventVersion 1.07 count as
    /// management events, as CloudTrail defines them).
    pub eventcategory: String,
}

/// The fields of one event that metrics count by: borrowed from a [`Row`] or from a projected
/// read of the archive (see [`super::table`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFields<'a> {
    /// `eventTime`, microseconds since the epoch.
    pub time: Option<i64>,
    pub recipient_account: Option<&'a str>,
    /// `userIdentity.accountId`, the account when `recipientAccountId` is absent.
    pub identity_account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub source: Option<&'a str>,
    pub name: Option<&'a str>,
    pub error_code: Option<&'a str>,
    /// `readOnly` as the archive stores it (`"true"`/`"false"`).
    pub read_only: Option<&'a str>,
    pub category: Option<&'a str>,
    pub management: Option<bool>,
    pub is_insight: bool,
    /// `userIdentity.arn`.
    pub arn: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<'a> EventFields<'a> {
    /// The fields of a row.
    pub fn of(row: &'a Row<'_>) -> EventFields<'a> {
        let identity = row.useridentity.as_ref();
        EventFields {
            time: row.eventtime_ts.or_else(|| row.event_time().ok().map(|t| t.timestamp_micros())),
            recipient_account: row.recipientaccountid.as_deref(),
            identity_account: identity.and_then(|u| u.accountid.as_deref()),
            region: row.awsregion.as_deref(),
            source: row.eventsource.as_deref(),
            name: row.eventname.as_deref(),
            error_code: row.errorcode.as_deref(),
            read_only: row.readonly.as_deref(),
            category: row.eventcategory.as_deref(),
            management: row.managementevent,
            is_insight: row.is_insight(),
            arn: identity.and_then(|u| u.arn.as_deref()),
            user_agent: row.useragent.as_deref(),
        }
    }
}

impl SeriesKey {
    /// The key of one event, or `None` for records that are not API activity (Insights records
    /// themselves, records without a Region, source or name).
    pub fn of(event: &EventFields<'_>) -> Option<SeriesKey> {
        if event.is_insight {
            return None;
        }
        let category = match event.category {
            Some(c) => c.to_string(),
            None if event.management == Some(false) => "Data".to_string(),
            None => "Management".to_string(),
        };
        Some(SeriesKey {
            account: event.recipient_account.or(event.identity_account).unwrap_or("unknown").to_string(),
            region: event.region?.to_string(),
            eventsource: event.source?.to_string(),
            eventname: event.name?.to_string(),
            errorcode: event.error_code.map(str::to_string),
            readonly: match event.read_only {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
            eventcategory: category,
        })
    }
}

/// One series' activity in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCell {
    pub count: u64,
    /// By `userIdentity.arn` (`"null"` when absent, as CloudTrail's attributions write it).
    pub identities: TopValues,
    /// By `userAgent`.
    pub user_agents: TopValues,
}

impl MinuteCell {
    fn merge(&mut self, other: &MinuteCell) {
        self.count += other.count;
        self.identities.merge(&other.identities);
        self.user_agents.merge(&other.user_agents);
    }
}

/// One row of the `metrics` dataset: a series, a minute and what happened in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRow {
    #[serde(flatten)]
    pub key: SeriesKey,
    /// Start of the minute, microseconds since the epoch (UTC).
    pub minute: i64,
    #[serde(flatten)]
    pub cell: MinuteCell,
}

/// Microseconds in a minute.
pub const MINUTE_MICROS: i64 = 60_000_000;

/// Per-minute metrics being built from events, or loaded from the `metrics` dataset.
///
/// Adding the same minute twice (another delivery, a late file) adds its counts; building from a
/// partition's complete set of events and replacing that partition's metrics is what makes reruns
/// idempotent (see `docs/INSIGHTS.md`).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    cells: BTreeMap<(SeriesKey, i64), MinuteCell>,
}

impl Metrics {
    /// Counts one row. Returns whether it was counted (see [`SeriesKey::of`]).
    pub fn add_row(&mut self, row: &Row<'_>) -> bool {
        self.add_event(&EventFields::of(row))
    }

    /// Counts one event. Returns whether it was counted (see [`SeriesKey::of`]).
    pub fn add_event(&mut self, event: &EventFields<'_>) -> bool {
        let (Some(key), Some(ts)) = (SeriesKey::of(event), event.time) else {
            return false;
        };
        let minute = ts.div_euclid(MINUTE_MICROS) * MINUTE_MICROS;
        let cell = self.cells.entry((key, minute)).or_default();
        cell.count += 1;
        cell.identities.add(event.arn.unwrap_or("null"), 1);
        cell.user_agents.add(event.user_agent.unwrap_or("null"), 1);
        true
    }

    /// Adds one stored row.
    pub fn add_metric(&mut self, row: &MetricRow) {
        self.cells.entry((row.key.clone(), row.minute)).or_default().merge(&row.cell);
    }

    /// Adds every minute of `other`.
    pub fn merge(&mut self, other: &Metrics) {
        for ((key, minute), cell) in &other.cells {
            self.cells.entry((key.clone(), *minute)).or_default().merge(cell);
        }
    }

    /// Number of (series, minute) cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Every cell, in (series, minute) order.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, i64, &MinuteCell)> {
        self.cells.iter().map(|((k, m), c)| (k, *m, c))
    }

    /// The rows of the `metrics` dataset, in (series, minute) order.
    pub fn rows(&self) -> Vec<MetricRow> {
        self.iter().map(|(key, minute, cell)| MetricRow { key: key.clone(), minute, cell: cell.clone() }).collect()
    }
}
