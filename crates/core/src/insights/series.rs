//! The per-period series behind an Insight, as CloudTrail's `ListInsightsMetricData` returns it:
//! counts of the Insight's events per `Period` (60, 300 or 3600 seconds), from the metrics.

use std::collections::BTreeMap;

use super::detect::InsightType;
use super::metrics::{MINUTE_MICROS, Metrics};

/// The periods `ListInsightsMetricData` accepts, in seconds.
pub const PERIODS: [u32; 3] = [60, 300, 3600];

/// What series to return (`ListInsightsMetricData`'s inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub insight_type: InsightType,
    pub eventsource: String,
    pub eventname: String,
    /// The error code of an `ApiErrorRateInsight` series; all error codes when `None`.
    pub errorcode: Option<String>,
    /// First instant, inclusive (microseconds since the epoch).
    pub start: i64,
    /// Last instant, exclusive.
    pub end: i64,
    /// Seconds per data point: one of [`PERIODS`].
    pub period: u32,
    /// `FillWithZeros`: every period of the range; otherwise (`NonZeroData`) only periods with
    /// events.
    pub fill_with_zeros: bool,
}

impl MetricQuery {
    /// Checks the period and the range, with a message a client can act on.
    pub fn validate(&self) -> Result<(), super::InvalidSetting> {
        if !PERIODS.contains(&self.period) {
            return Err(super::InvalidSetting::Period(self.period));
        }
        if self.start >= self.end {
            return Err(super::InvalidSetting::Range);
        }
        Ok(())
    }
}

/// The data points of `query` over `metrics` (every account and Region `metrics` holds, summed),
/// oldest first: `(period start in microseconds, events)`. Periods are aligned to multiples of
/// the period since the epoch; a period is included when it starts in `[start, end)`.
pub fn metric_data(metrics: &Metrics, query: &MetricQuery) -> Vec<(i64, f64)> {
    let period = i64::from(query.period) * 1_000_000;
    let first = query.start.div_euclid(period) * period + if query.start.rem_euclid(period) == 0 { 0 } else { period };
    let mut sums: BTreeMap<i64, u64> = BTreeMap::new();
    for (key, minute, cell) in metrics.iter() {
        let wanted = key.eventcategory == "Management"
            && key.eventsource == query.eventsource
            && key.eventname == query.eventname
            && match query.insight_type {
                InsightType::ApiCallRateInsight => key.readonly == Some(false),
                InsightType::ApiErrorRateInsight => {
                    key.errorcode.is_some() && (query.errorcode.is_none() || key.errorcode == query.errorcode)
                }
            };
        let bucket = minute.div_euclid(period) * period;
        if wanted && bucket >= first && bucket < query.end {
            *sums.entry(bucket).or_default() += cell.count;
        }
    }
    if !query.fill_with_zeros {
        return sums.into_iter().filter(|(_, n)| *n > 0).map(|(t, n)| (t, n as f64)).collect();
    }
    let mut out = Vec::new();
    let mut t = first;
    while t < query.end {
        out.push((t, sums.get(&t).copied().unwrap_or(0) as f64));
        t += period;
    }
    debug_assert!(MINUTE_MICROS <= period);
    out
}
