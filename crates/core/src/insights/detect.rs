//! The detection model: per-minute series → episodes above or far below their baseline.
//!
//! For every minute `t` the model compares the count `x(t)` with what the same time of day looked
//! like on comparable days before it (see [`Model`] and `docs/INSIGHTS.md`):
//!
//! - the **sample** is the counts of the minutes within `window_minutes` of `t`'s time of day, on
//!   each of the `baseline_days` preceding days of the same kind (weekday or weekend; all days
//!   when fewer than two are of that kind) — this is how daily and weekly cycles are handled;
//! - `E` is the sample's mean and `S` its standard deviation, at least `sqrt(E)` (counts are
//!   noisy like a Poisson process even when the sample happens to be flat);
//! - a minute is **above** when `x ≥ min_rate`, `x > E + sigmas·S` and `x ≥ ratio·E`; it is
//!   **below** when `L`, the mean over the 5 minutes around the same time of day on the same
//!   days, and `E` are both at least `drop_min_rate`, each of those days' own 5-minute mean is at
//!   least half of it, and `x ≤ drop_ratio·min(E, L)`;
//! - flagged minutes of one direction less than `end_after_minutes` apart form an episode, which
//!   starts at its first flagged minute and ends after its last; it is kept when its volume
//!   (`Σ|x−E|` over its flagged minutes) reaches `min_events` (and, below, when it lasts
//!   `drop_min_minutes`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::metrics::{MINUTE_MICROS, Metrics, TopValues};

/// CloudTrail's two kinds of Insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InsightType {
    /// Write management events, per API, all outcomes together.
    ApiCallRateInsight,
    /// Read and write management events that returned an error, per API and error code.
    ApiErrorRateInsight,
}

impl InsightType {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
    }
}

/// Whether the rate went up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    Above,
    Below,
}

/// The series an Insight is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InsightKey {
    pub account: String,
    pub region: String,
    pub eventsource: String,
    pub eventname: String,
    pub insight_type: InsightType,
    /// The error code of an `ApiErrorRateInsight`.
    pub errorcode: Option<String>,
}

/// The model's knobs (each is a flag of `parquetrail insights`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Days of history compared with (at least 7, as CloudTrail's `baselineDuration`).
    pub baseline_days: u32,
    /// Half-width, in minutes, of the time-of-day window sampled on each comparable day.
    pub window_minutes: u32,
    /// How many standard deviations above the expected count a minute must be.
    pub sigmas: f64,
    /// How many times the expected count a minute must be.
    pub ratio: f64,
    /// Fewest events in a minute for it to be above (a floor for quiet APIs).
    pub min_rate: u64,
    /// Fewest events an episode must be away from its expected counts in total.
    pub min_events: u64,
    /// A minute is below when it has at most this fraction of the expected count…
    pub drop_ratio: f64,
    /// …and the expected count is at least this (drops of quiet APIs are noise).
    pub drop_min_rate: f64,
    /// Fewest minutes a drop must last.
    pub drop_min_minutes: u32,
    /// An episode ends after this many minutes without a flagged minute.
    pub end_after_minutes: u32,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            baseline_days: 7,
            window_minutes: 30,
            sigmas: 6.0,
            ratio: 3.0,
            min_rate: 3,
            min_events: 20,
            drop_ratio: 0.1,
            drop_min_rate: 5.0,
            drop_min_minutes: 5,
            end_after_minutes: 5,
        }
    }
}

impl Model {
    /// Checks the knobs, with a message a user can act on.
    pub fn validate(&self) -> Result<(), super::InvalidSetting> {
        use super::InvalidSetting;
        if self.baseline_days < 7 {
            return Err(InvalidSetting::BaselineDays(self.baseline_days));
        }
        if !(self.sigmas >= 0.0 && self.ratio >= 1.0) {
            return Err(InvalidSetting::Thresholds);
        }
        if !(0.0..1.0).contains(&self.drop_ratio) {
            return Err(InvalidSetting::DropRatio(self.drop_ratio));
        }
        if self.end_after_minutes == 0 {
            return Err(InvalidSetting::EndAfter);
        }
        Ok(())
    }

    fn baseline_minutes(&self) -> i64 {
        i64::from(self.baseline_days) * 1440
    }
}

/// One attribute's largest values: `(value, average per minute)`, largest first, at most 5.
pub type Ranked = Vec<(String, f64)>;

/// Attributions of one attribute during the episode and during its baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub insight: Ranked,
    pub baseline: Ranked,
}

/// An unusual episode of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub key: InsightKey,
    pub direction: Direction,
    /// First unusual minute (microseconds since the epoch).
    pub start: i64,
    /// The minute after the last unusual one; `None` while the episode is still going on at the
    /// end of the data.
    pub end: Option<i64>,
    /// Events in the first unusual minute.
    pub first_count: u64,
    /// Average events per minute over the episode (up to the end of the data while open).
    pub insight_average: f64,
    /// Average events per minute over the baseline (the `baseline_days` before `start`).
    pub baseline_average: f64,
    /// Minutes of baseline actually available (≥ 7 days).
    pub baseline_minutes: i64,
    /// Minutes of the episode (to the end of the data while open).
    pub insight_minutes: i64,
    pub user_arns: Attribution,
    pub user_agents: Attribution,
    pub error_codes: Attribution,
}

/// One series' minutes, as attributions need them.
#[derive(Debug, Clone, Default)]
struct Cell {
    count: u64,
    arns: TopValues,
    agents: TopValues,
    errors: TopValues,
}

/// Groups per-minute metrics into the series Insights look at.
fn insight_series(metrics: &Metrics) -> BTreeMap<InsightKey, BTreeMap<i64, Cell>> {
    let mut series: BTreeMap<InsightKey, BTreeMap<i64, Cell>> = BTreeMap::new();
    for (key, minute, cell) in metrics.iter() {
        if key.eventcategory != "Management" {
            continue;
        }
        let mut targets = Vec::with_capacity(2);
        if key.readonly == Some(false) {
            targets.push((InsightType::ApiCallRateInsight, None));
        }
        if let Some(code) = &key.errorcode {
            targets.push((InsightType::ApiErrorRateInsight, Some(code.clone())));
        }
        for (insight_type, errorcode) in targets {
            let ik = InsightKey {
                account: key.account.clone(),
                region: key.region.clone(),
                eventsource: key.eventsource.clone(),
                eventname: key.eventname.clone(),
                insight_type,
                errorcode,
            };
            let c = series.entry(ik).or_default().entry(minute).or_default();
            c.count += cell.count;
            c.arns.merge(&cell.identities);
            c.agents.merge(&cell.user_agents);
            c.errors.add(key.errorcode.as_deref().unwrap_or("null"), cell.count);
        }
    }
    series
}

/// Monday = 0 … Sunday = 6 of the day holding `minute`.
fn weekday(minute: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (minute.div_euclid(86_400_000_000) + 3).rem_euclid(7)
}

fn is_weekend(minute: i64) -> bool {
    weekday(minute) >= 5
}

/// Finds the episodes starting in `[since, until)` (microseconds; minutes are floored).
///
/// History is what `metrics` holds: give it at least `baseline_days` plus two days before `since`
/// (a day for the windows, a day to see episodes already going on at `since` from their start). A series is only judged from `baseline_days` after the first minute its account
/// and Region have any metrics, so a new archive raises nothing until it has a baseline.
pub fn detect(metrics: &Metrics, model: &Model, since: i64, until: i64) -> Vec<Episode> {
    let mut first: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut last: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (key, minute, _) in metrics.iter() {
        let k = (key.account.as_str(), key.region.as_str());
        first.entry(k).and_modify(|m| *m = (*m).min(minute)).or_insert(minute);
        last.entry(k).and_modify(|m| *m = (*m).max(minute)).or_insert(minute);
    }
    let mut episodes = Vec::new();
    for (key, cells) in insight_series(metrics) {
        let k = (key.account.as_str(), key.region.as_str());
        let history_start = first[&k];
        let data_end = last[&k] + MINUTE_MICROS;
        episodes.extend(detect_series(&key, &cells, model, since, until, history_start, data_end));
    }
    episodes.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
    episodes
}

/// Half-width of the near window a drop is judged against (see `expected` in `detect_series`).
const NEAR_MINUTES: i64 = 2;

/// How far before `since` episodes are followed (see [`detect`]).
const LOOKBACK_MINUTES: i64 = 1440;

struct Open {
    direction: Direction,
    start: usize,
    last: usize,
    volume: f64,
    flagged: u32,
}

#[allow(clippy::too_many_arguments)]
fn detect_series(
    key: &InsightKey,
    cells: &BTreeMap<i64, Cell>,
    model: &Model,
    since: i64,
    until: i64,
    history_start: i64,
    data_end: i64,
) -> Vec<Episode> {
    let floor = |t: i64| t.div_euclid(MINUTE_MICROS) * MINUTE_MICROS;
    let baseline = model.baseline_minutes();
    let w = i64::from(model.window_minutes);
    // Judging starts a day before `since` so an episode already going on at `since` is seen from
    // its real start (and then left out: it started before the range).
    let judge_from = (floor(since) - LOOKBACK_MINUTES * MINUTE_MICROS).max(history_start + baseline * MINUTE_MICROS);
    let judge_until = floor(until).min(data_end);
    if judge_from >= judge_until {
        return Vec::new();
    }
    // Dense counts from the earliest minute any sample can reach.
    let base = judge_from - (baseline + w) * MINUTE_MICROS;
    let n = ((judge_until - base) / MINUTE_MICROS) as usize;
    let mut x = vec![0u64; n];
    for (&m, c) in cells.range(base..judge_until) {
        x[((m - base) / MINUTE_MICROS) as usize] = c.count;
    }
    let mut p1 = vec![0f64; n + 1];
    let mut p2 = vec![0f64; n + 1];
    for i in 0..n {
        let v = x[i] as f64;
        p1[i + 1] = p1[i] + v;
        p2[i + 1] = p2[i] + v * v;
    }
    let hist_idx = ((history_start - base).max(0) / MINUTE_MICROS) as usize;
    // Returns (E, S, L, M): the sample's mean and spread; the mean over the few minutes around
    // the same time of day on the same days (what a drop must also fall below: a minute just
    // before a daily ramp-up is not a drop because the wide window reaches into the ramp); and the
    // lowest of those days' own near means (a drop needs the API busy at that time on every
    // comparable day, so one past burst does not make the next day's quiet look like a drop).
    let expected = |i: usize| -> (f64, f64, f64, f64) {
        let t = base + i as i64 * MINUTE_MICROS;
        let weekend = is_weekend(t);
        let days: Vec<i64> = (1..=i64::from(model.baseline_days)).collect();
        let alike: Vec<i64> =
            days.iter().copied().filter(|d| is_weekend(t - d * 1440 * MINUTE_MICROS) == weekend).collect();
        let days = if alike.len() >= 2 { alike } else { days };
        let (mut cnt, mut s1, mut s2) = (0f64, 0f64, 0f64);
        let (mut near_n, mut near_sum, mut near_min) = (0f64, 0f64, f64::INFINITY);
        let clip = |lo: i64, hi: i64| ((lo.max(hist_idx as i64).max(0) as usize), (hi.max(0) as usize).min(i));
        for d in days {
            let centre = i as i64 - d * 1440;
            let (lo, hi) = clip(centre - w, centre + w + 1);
            if lo >= hi {
                continue;
            }
            cnt += (hi - lo) as f64;
            s1 += p1[hi] - p1[lo];
            s2 += p2[hi] - p2[lo];
            let (lo, hi) = clip(centre - NEAR_MINUTES, centre + NEAR_MINUTES + 1);
            if lo < hi {
                near_n += (hi - lo) as f64;
                near_sum += p1[hi] - p1[lo];
                near_min = near_min.min((p1[hi] - p1[lo]) / (hi - lo) as f64);
            }
        }
        if cnt == 0.0 {
            return (0.0, 0.0, 0.0, 0.0);
        }
        let mean = s1 / cnt;
        let var = (s2 / cnt - mean * mean).max(0.0);
        if near_n == 0.0 {
            return (mean, var.sqrt().max(mean.sqrt()), 0.0, 0.0);
        }
        (mean, var.sqrt().max(mean.sqrt()), near_sum / near_n, near_min)
    };
    let first_i = ((judge_from - base) / MINUTE_MICROS) as usize;
    let gap = model.end_after_minutes as usize;
    let mut found: Vec<(Direction, usize, Option<usize>)> = Vec::new();
    let mut open: Option<Open> = None;
    let close = |o: &Open, found: &mut Vec<(Direction, usize, Option<usize>)>, ongoing: bool| {
        let keep = match o.direction {
            Direction::Above => o.volume >= model.min_events as f64,
            Direction::Below => o.volume >= model.min_events as f64 && o.flagged >= model.drop_min_minutes,
        };
        if keep {
            found.push((o.direction, o.start, if ongoing { None } else { Some(o.last + 1) }));
        }
    };
    for (i, &count) in x.iter().enumerate().skip(first_i) {
        let (e, s, low, lowest) = expected(i);
        let v = count as f64;
        let flag = if count >= model.min_rate && v > e + model.sigmas * s && v >= model.ratio * e {
            Some((Direction::Above, v - e))
        } else if e >= model.drop_min_rate
            && low >= model.drop_min_rate
            && lowest >= model.drop_min_rate / 2.0
            && v <= model.drop_ratio * low.min(e)
        {
            Some((Direction::Below, e - v))
        } else {
            None
        };
        if let Some(o) = &open
            && (i - o.last > gap || flag.is_some_and(|(d, _)| d != o.direction))
        {
            close(o, &mut found, false);
            open = None;
        }
        if let Some((direction, excess)) = flag {
            match &mut open {
                Some(o) => {
                    o.last = i;
                    o.volume += excess;
                    o.flagged += 1;
                }
                None => open = Some(Open { direction, start: i, last: i, volume: excess, flagged: 1 }),
            }
        }
    }
    if let Some(o) = &open {
        // Still going on when the data ends: report it without an end, so a later run closes it.
        let ongoing = n - o.last <= gap && judge_until >= data_end;
        close(o, &mut found, ongoing);
    }
    let minute_of = |i: usize| base + i as i64 * MINUTE_MICROS;
    found
        .into_iter()
        .filter(|(_, s, _)| minute_of(*s) >= floor(since))
        .map(|(direction, s, e)| {
            let start = minute_of(s);
            let end = e.map(minute_of);
            let insight_end = end.unwrap_or(judge_until);
            let baseline_from = (start - baseline * MINUTE_MICROS).max(history_start);
            let range = |from: i64, to: i64| cells.range(from..to);
            let minutes = |from: i64, to: i64| ((to - from) / MINUTE_MICROS).max(1);
            let count = |from: i64, to: i64| range(from, to).map(|(_, c)| c.count).sum::<u64>() as f64;
            let attribution = |pick: fn(&Cell) -> &TopValues| Attribution {
                insight: ranked(range(start, insight_end).map(|(_, c)| pick(c)), minutes(start, insight_end)),
                baseline: ranked(range(baseline_from, start).map(|(_, c)| pick(c)), minutes(baseline_from, start)),
            };
            Episode {
                key: key.clone(),
                direction,
                start,
                end,
                first_count: x[s],
                insight_average: count(start, insight_end) / minutes(start, insight_end) as f64,
                baseline_average: count(baseline_from, start) / minutes(baseline_from, start) as f64,
                baseline_minutes: minutes(baseline_from, start),
                insight_minutes: minutes(start, insight_end),
                user_arns: attribution(|c| &c.arns),
                user_agents: attribution(|c| &c.agents),
                error_codes: attribution(|c| &c.errors),
            }
        })
        .collect()
}

/// The five largest values of some tallies, as averages per minute over `minutes`.
fn ranked<'a>(tallies: impl Iterator<Item = &'a TopValues>, minutes: i64) -> Ranked {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for t in tallies {
        for v in &t.values {
            *sums.entry(v.value.as_str()).or_default() += v.count;
        }
    }
    let mut out: Vec<(String, u64)> = sums.into_iter().map(|(v, c)| (v.to_string(), c)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(5);
    out.into_iter().map(|(v, c)| (v, c as f64 / minutes as f64)).collect()
}
