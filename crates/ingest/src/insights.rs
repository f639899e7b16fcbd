//! Insights over an archive: the `metrics` dataset kept up to date from the `events` dataset, the
//! model run over it, and the computed Insight records written to the `insights` dataset.
//!
//! **Metrics.** Each `events` partition (`account=/region=/date=`) has one metrics file,
//! `metrics/account=A/region=R/date=D/metrics-<F>.parquet`, where `F` is a digest of the
//! partition's manifest (its live files). A late delivery or a compaction changes the manifest,
//! so `F` changes and the file is rebuilt from the partition's live files; an unchanged partition
//! is not read at all. Rebuilding writes the new file before deleting the old one, and readers
//! here read only the file matching the current manifest: reruns are idempotent, and nothing is
//! ever counted twice or missed (see `docs/INSIGHTS.md` for why this and not conversion or
//! compaction).
//!
//! **Computed Insights.** Each `insights` partition gets at most one file of computed records,
//! `computed-<H>.parquet` (`H` a digest of its content), swapped into the partition's manifest in
//! place of the previous one. Their `source_key` column is [`COMPUTED_SOURCE_KEY`]; Insights
//! delivered by CloudTrail have the key of their `CloudTrail-Insight` object there. Compaction
//! leaves computed files alone, so a rerun replaces them whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use parquetrail_core::convert::{Options, convert};
use parquetrail_core::insights::detect::{Episode, Model, detect};
use parquetrail_core::insights::metrics::Metrics;
use parquetrail_core::insights::record::insight_records;
use parquetrail_core::insights::table;
use parquetrail_core::sink::MemorySink;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::location::join;
use crate::manifest;
use crate::storage::{ErrorKind, Storage, StorageError};

/// The `source_key` of computed Insight records (CloudTrail's own have their object's key).
pub const COMPUTED_SOURCE_KEY: &str = "parquetrail-insights";
/// File name prefix of computed Insight files in the `insights` dataset.
pub const COMPUTED_PREFIX: &str = "computed-";
/// The metrics dataset's directory under the archive root.
pub const METRICS: &str = "metrics";

fn permanent(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(ErrorKind::Permanent, e.to_string())
}

fn hex16(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The date of a partition directory (`…/date=YYYY-MM-DD`).
fn date_of(dir: &str) -> Option<NaiveDate> {
    let value = dir.rsplit('/').find_map(|part| part.strip_prefix("date="))?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// What a metrics refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsReport {
    /// `events` partitions in the date range.
    pub partitions: usize,
    /// Partitions whose metrics were (re)built.
    pub rebuilt: usize,
    /// Events counted while rebuilding.
    pub events: u64,
    /// Metric rows loaded for detection.
    pub metric_rows: u64,
    /// Partitions not reached because the caller asked to stop (a deadline): their metrics are
    /// built by the next run, and no detection was made on partial metrics.
    pub remaining: usize,
}

/// Brings the metrics of every `events` partition dated `first..=last` up to date, then loads
/// them. `progress` is told each partition before it is handled and answers whether to go on:
/// `false` (a deadline near) stops there, with the partitions left counted in
/// [`MetricsReport::remaining`]; the ones done stay done, so the next run resumes.
pub async fn refresh_and_load(
    storage: &Arc<dyn Storage>,
    root: &str,
    first: NaiveDate,
    last: NaiveDate,
    progress: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(Metrics, MetricsReport), StorageError> {
    let mut report = MetricsReport::default();
    let mut metrics = Metrics::default();
    let dirs: Vec<String> = manifest::partitions(storage.as_ref(), root, "events")
        .await?
        .into_iter()
        .filter(|d| date_of(d).is_some_and(|date| date >= first && date <= last))
        .collect();
    report.partitions = dirs.len();
    for (i, dir) in dirs.iter().enumerate() {
        if !progress(dir) {
            report.remaining = report.partitions - i;
            break;
        }
        let dir = dir.clone();
        let live = manifest::read(storage.as_ref(), root, &dir).await?.files;
        let listing: String = live.iter().map(|f| format!("{f}\n")).collect();
        let name = format!("metrics-{}.parquet", hex16(listing.as_bytes()));
        let metrics_dir = format!("{METRICS}/{}", dir.strip_prefix("events/").unwrap_or(&dir));
        let key = join(root, &format!("{metrics_dir}/{name}"));
        let existing = storage.list(&join(root, &format!("{metrics_dir}/"))).await?;
        let body = match storage.read(&key).await {
            Ok(body) => body,
            Err(e) if e.kind == ErrorKind::NotFound => {
                let (body, events) = build_partition(storage, root, &live, &listing).await?;
                storage.put(&key, body.clone()).await?;
                report.rebuilt += 1;
                report.events += events;
                body
            }
            Err(e) => return Err(e),
        };
        for stale in existing.iter().filter(|o| o.key != key && o.key.ends_with(".parquet")) {
            storage.delete(&stale.key).await?;
        }
        let path = key.clone();
        let (part, rows) = tokio::task::spawn_blocking(move || {
            let mut part = Metrics::default();
            let rows = table::decode_metrics(bytes::Bytes::from(body), &path, &mut part);
            rows.map(|r| (part, r))
        })
        .await
        .map_err(permanent)?
        .map_err(permanent)?;
        report.metric_rows += rows;
        metrics.merge(&part);
    }
    Ok((metrics, report))
}

/// Counts the live files of one partition into a metrics file.
async fn build_partition(
    storage: &Arc<dyn Storage>,
    root: &str,
    live: &BTreeSet<String>,
    listing: &str,
) -> Result<(Vec<u8>, u64), StorageError> {
    let mut metrics = Metrics::default();
    let mut events = 0;
    for file in live {
        let key = join(root, file);
        let body = bytes::Bytes::from(storage.read(&key).await?);
        let (part, n) = tokio::task::spawn_blocking(move || {
            let mut part = Metrics::default();
            table::add_events_file(body, &key, &mut part).map(|n| (part, n))
        })
        .await
        .map_err(permanent)?
        .map_err(permanent)?;
        metrics.merge(&part);
        events += n;
    }
    let listing = listing.to_string();
    let body = tokio::task::spawn_blocking(move || {
        table::encode_metrics(&metrics.rows(), &[("parquetrail.sources", &listing)])
    })
    .await
    .map_err(permanent)?
    .map_err(permanent)?;
    Ok((body, events))
}

/// What an Insights run found and wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InsightsReport {
    pub metrics: MetricsReport,
    /// Episodes found in the range.
    pub episodes: usize,
    /// Insight records (Start and End) written.
    pub records: usize,
    /// `insights` partitions whose computed file changed.
    pub partitions_written: usize,
}

/// Runs the model over `[since, until)` (microseconds) and returns the episodes, with the
/// metrics report. Reads metrics from `baseline_days + 2` days before `since`. When `progress`
/// stops the metrics refresh ([`refresh_and_load`]), nothing is detected: no episodes, and
/// [`MetricsReport::remaining`] says how much is left.
pub async fn find_episodes(
    storage: &Arc<dyn Storage>,
    root: &str,
    model: &Model,
    since: i64,
    until: i64,
    progress: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(Vec<Episode>, MetricsReport), StorageError> {
    model.validate().map_err(permanent)?;
    let day = |t: i64| chrono::DateTime::from_timestamp_micros(t).map(|d| d.date_naive());
    let history = since.saturating_sub((i64::from(model.baseline_days) + 2) * 86_400_000_000);
    let (Some(first), Some(last)) = (day(history.max(0)), day(until.saturating_sub(1))) else {
        return Err(permanent("time range out of bounds"));
    };
    let (metrics, report) = refresh_and_load(storage, root, first, last, progress).await?;
    if report.remaining > 0 {
        return Ok((Vec::new(), report));
    }
    let episodes = tokio::task::spawn_blocking({
        let model = model.clone();
        move || detect(&metrics, &model, since, until)
    })
    .await
    .map_err(permanent)?;
    Ok((episodes, report))
}

/// The first minute (microseconds) of the episode a stored computed record belongs to: its
/// `eventTime` for a `Start`, less `insightDuration` minutes for an `End`.
fn episode_start(row: &parquetrail_core::record::Row<'_>) -> Option<i64> {
    let details: serde_json::Value = serde_json::from_str(row.insightdetails.as_deref()?).ok()?;
    let time = row.eventtime_ts?;
    match details["state"].as_str()? {
        "End" => {
            let minutes = details["insightContext"]["statistics"]["insightDuration"].as_i64()?;
            Some(time - minutes * 60_000_000)
        }
        _ => Some(time),
    }
}

/// Writes the records of `episodes` (those starting in `[since, until)`, microseconds) into the
/// `insights` dataset: per partition (account, Region, date of the record's `eventTime`), one
/// computed file replacing the previous one, for every partition dated in the range (so an
/// episode that disappeared is removed too). Stored computed records of episodes starting outside
/// the range are kept as they are. Returns the number of partitions whose file changed.
pub async fn write_insights(
    storage: &Arc<dyn Storage>,
    root: &str,
    episodes: &[Episode],
    since: i64,
    until: i64,
) -> Result<usize, StorageError> {
    let day = |t: i64| chrono::DateTime::from_timestamp_micros(t).map_or(NaiveDate::MIN, |d| d.date_naive());
    let days = (day(since), day(until.saturating_sub(1)));
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for dir in manifest::partitions(storage.as_ref(), root, "insights").await? {
        if date_of(&dir).is_some_and(|d| d >= days.0 && d <= days.1) {
            dirs.insert(dir);
        }
    }
    // Records as CloudTrail JSON, through the converter like any delivery: one output per
    // partition, since each (account, Region) is one input.
    let mut by_group: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in episodes {
        by_group.entry((e.key.account.clone(), e.key.region.clone())).or_default().extend(insight_records(e));
    }
    for dir in &dirs {
        let current = manifest::read(storage.as_ref(), root, dir).await?;
        for file in current.files.iter().filter(|f| f.rsplit('/').next().unwrap_or(f).starts_with(COMPUTED_PREFIX)) {
            let key = join(root, file);
            let body = bytes::Bytes::from(storage.read(&key).await?);
            let rows = tokio::task::spawn_blocking(move || parquetrail_core::archive::read_rows(body, Some(&key)))
                .await
                .map_err(permanent)?
                .map_err(permanent)?;
            for row in rows {
                if episode_start(&row).is_some_and(|start| start >= since && start < until) {
                    continue;
                }
                let account = row.recipientaccountid.as_deref().unwrap_or_default().to_string();
                let region = row.awsregion.as_deref().unwrap_or_default().to_string();
                by_group.entry((account, region)).or_default().push(row.to_json());
            }
        }
    }
    let written: BTreeMap<String, Vec<u8>> = tokio::task::spawn_blocking(move || {
        let sink = MemorySink::default();
        for ((account, region), records) in &by_group {
            let json = format!("{{\"Records\":[{}]}}", records.join(","));
            let key = format!("{COMPUTED_SOURCE_KEY}/{account}/{region}.json");
            convert(&key, json.as_bytes(), &sink, &Options::default())?;
        }
        Ok::<_, parquetrail_core::Error>(
            sink.paths()
                .into_iter()
                .map(|path| (manifest::partition_dir(&path).to_string(), sink.get(&path).unwrap_or_default()))
                .collect(),
        )
    })
    .await
    .map_err(permanent)?
    .map_err(permanent)?;
    dirs.extend(written.keys().cloned());
    let mut changed = 0;
    for dir in dirs {
        let new = written.get(&dir).map(|body| (format!("{dir}/{COMPUTED_PREFIX}{}.parquet", hex16(body)), body));
        loop {
            let current = manifest::read(storage.as_ref(), root, &dir).await?;
            let mut files: BTreeSet<String> = current
                .files
                .iter()
                .filter(|f| !f.rsplit('/').next().unwrap_or(f).starts_with(COMPUTED_PREFIX))
                .cloned()
                .collect();
            if let Some((path, body)) = &new {
                if current.files.contains(path) {
                    break;
                }
                storage.put(&join(root, path), (*body).clone()).await?;
                files.insert(path.clone());
            } else if files.len() == current.files.len() {
                break;
            }
            match manifest::swap(storage.as_ref(), root, &dir, &files, current.tag.as_deref()).await {
                Ok(_) => {
                    changed += 1;
                    for old in current.files.difference(&files) {
                        storage.delete(&join(root, old)).await?;
                    }
                    break;
                }
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}
