//! Insights over an archive: the `metrics` dataset kept up to date from the `events` dataset, the
//! model run over it, and the computed Insight records written to the `insights` dataset.
//!
//! **Metrics.** Each `events` partition (`account=/region=/date=`) has one metrics file,
//! `metrics/account=A/region=R/date=D/metrics-<F>.parquet`, where `F` is a digest of the
//! partition's manifest (its live files). A late delivery or a compaction changes the manifest,
//! so `F` changes and the file is rebuilt from the partition's live files; an unchanged partition
//! is not read at all. Rebuilding writes the new file; the old one stays for [`GRACE`] (a reader
//! may have computed its name a moment earlier) and a later run deletes it. Readers read only the
//! file matching the current manifest: reruns are idempotent, and nothing is ever counted twice or
//! missed (see `docs/INSIGHTS.md` for why this and not conversion or compaction). A server reads
//! them with [`load_metrics`], which writes nothing.
//!
//! **Computed Insights.** Each `insights` partition gets at most one file of computed records,
//! `computed-<H>.parquet` (`H` a digest of its content), swapped into the partition's manifest in
//! place of the previous one, which is recorded as consumed and deleted by compaction's garbage
//! collection after [`GRACE`]. Their `source_key` column is [`COMPUTED_SOURCE_KEY`]; Insights
//! delivered by CloudTrail have the key of their `CloudTrail-Insight` object there. Compaction
//! does not merge computed files, so a rerun replaces them whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::NaiveDate;
use futures_util::StreamExt;
use parquetrail_core::convert::Layout;
use parquetrail_core::convert::{Options, convert};
use parquetrail_core::insights::detect::{Episode, Model, detect};
use parquetrail_core::insights::metrics::Metrics;
use parquetrail_core::insights::record::insight_records;
use parquetrail_core::insights::table;
use parquetrail_core::sink::MemorySink;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compaction::{Compactor, Settings};
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

/// How long a replaced file (a computed Insights file, a metrics file) stays after it stops being
/// current: compaction's default grace period, longer than any query planned on the previous
/// manifest runs. Deletion happens at a later run, once the grace period is over.
pub const GRACE: Duration = Duration::from_secs(3600);

/// Brings the metrics of every `events` partition dated `first..=last` up to date, then loads
/// them. `progress` is told each partition before it is handled and answers whether to go on:
/// `false` (a deadline near) stops there, with the partitions left counted in
/// [`MetricsReport::remaining`]; the ones done stay done, so the next run resumes. Metrics files
/// replaced more than [`GRACE`] ago are deleted.
pub async fn refresh_and_load(
    storage: &Arc<dyn Storage>,
    root: &str,
    first: NaiveDate,
    last: NaiveDate,
    progress: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(Metrics, MetricsReport), StorageError> {
    refresh_and_load_with_grace(storage, root, first, last, progress, GRACE).await
}

/// [`refresh_and_load`] with another grace period for replaced metrics files.
pub async fn refresh_and_load_with_grace(
    storage: &Arc<dyn Storage>,
    root: &str,
    first: NaiveDate,
    last: NaiveDate,
    progress: &(dyn Fn(&str) -> bool + Sync),
    grace: Duration,
) -> Result<(Metrics, MetricsReport), StorageError> {
    let mut report = MetricsReport::default();
    let mut metrics = Metrics::default();
    let dirs = metric_partitions(storage, root, first, last, None).await?;
    report.partitions = dirs.len();
    for (i, dir) in dirs.iter().enumerate() {
        if !progress(dir) {
            report.remaining = report.partitions - i;
            break;
        }
        let loaded = partition_metrics(storage, root, dir, Some(grace)).await?;
        report.rebuilt += usize::from(loaded.built.is_some());
        report.events += loaded.built.unwrap_or(0);
        report.metric_rows += loaded.rows;
        metrics.merge(&loaded.metrics);
    }
    Ok((metrics, report))
}

/// Reads the metrics of the `events` partitions dated `first..=last` (of one Region when
/// `region` is given) without writing anything: what a server answering `ListInsightsMetricData`
/// does. A partition whose metrics file is missing or older than its manifest (no Insights run
/// since its last delivery) has its metrics counted from its events, in memory; the next
/// Insights run stores them. Up to `concurrency` partitions are read at once.
pub async fn load_metrics(
    storage: &Arc<dyn Storage>,
    root: &str,
    first: NaiveDate,
    last: NaiveDate,
    region: Option<&str>,
    concurrency: usize,
) -> Result<(Metrics, MetricsReport), StorageError> {
    let dirs = metric_partitions(storage, root, first, last, region).await?;
    let mut report = MetricsReport { partitions: dirs.len(), ..MetricsReport::default() };
    let mut metrics = Metrics::default();
    // Owned per partition, so the stream's futures are `Send` whatever the caller borrows.
    let mut loads = futures_util::stream::iter(dirs)
        .map(|dir| {
            let (storage, root) = (storage.clone(), root.to_string());
            async move { partition_metrics(&storage, &root, &dir, None).await }
        })
        .buffered(concurrency.max(1));
    while let Some(loaded) = loads.next().await {
        let loaded = loaded?;
        report.rebuilt += usize::from(loaded.built.is_some());
        report.events += loaded.built.unwrap_or(0);
        report.metric_rows += loaded.rows;
        metrics.merge(&loaded.metrics);
    }
    Ok((metrics, report))
}

/// The `events` partitions (with a manifest) dated `first..=last`, of `region` only when given.
async fn metric_partitions(
    storage: &Arc<dyn Storage>,
    root: &str,
    first: NaiveDate,
    last: NaiveDate,
    region: Option<&str>,
) -> Result<Vec<String>, StorageError> {
    let in_region =
        |dir: &str| region.is_none_or(|r| dir.split('/').any(|part| part.strip_prefix("region=") == Some(r)));
    Ok(manifest::partitions(storage.as_ref(), root, "events")
        .await?
        .into_iter()
        .filter(|d| date_of(d).is_some_and(|date| date >= first && date <= last) && in_region(d))
        .collect())
}

/// One partition's metrics, and how they were had.
struct PartitionMetrics {
    metrics: Metrics,
    /// `Some(events)` when counted from the partition's events rather than read from its file.
    built: Option<u64>,
    rows: u64,
}

/// The metrics of one `events` partition as of its current manifest: its metrics file when up to
/// date; otherwise counted from its live files and, when `store` gives a grace period, written,
/// with the metrics files it replaced more than that long ago deleted.
async fn partition_metrics(
    storage: &Arc<dyn Storage>,
    root: &str,
    dir: &str,
    store: Option<Duration>,
) -> Result<PartitionMetrics, StorageError> {
    let live = manifest::read(storage.as_ref(), root, dir).await?.files;
    let listing: String = live.iter().map(|f| format!("{f}\n")).collect();
    let name = format!("metrics-{}.parquet", hex16(listing.as_bytes()));
    let metrics_dir = format!("{METRICS}/{}", dir.strip_prefix("events/").unwrap_or(dir));
    let key = join(root, &format!("{metrics_dir}/{name}"));
    let loaded = match storage.read(&key).await {
        Ok(body) => {
            let path = key.clone();
            let (metrics, rows) = tokio::task::spawn_blocking(move || {
                let mut part = Metrics::default();
                let rows = table::decode_metrics(bytes::Bytes::from(body), &path, &mut part);
                rows.map(|r| (part, r))
            })
            .await
            .map_err(permanent)?
            .map_err(permanent)?;
            PartitionMetrics { metrics, built: None, rows }
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            let (metrics, events) = build_partition(storage, root, &live).await?;
            if store.is_some() {
                storage.put(&key, encode_partition(&metrics, &listing).await?).await?;
            }
            PartitionMetrics { rows: metrics.len() as u64, metrics, built: Some(events) }
        }
        Err(e) => return Err(e),
    };
    if let Some(grace) = store {
        let existing = storage.list(&join(root, &format!("{metrics_dir}/"))).await?;
        for stale in replaced_long_ago(&existing, &key, grace, SystemTime::now()) {
            storage.delete(stale).await?;
        }
    }
    Ok(loaded)
}

/// The metrics files of one directory (`objects`) that can go: not `current`, and replaced more
/// than `grace` before `now`. A metrics directory has no manifest saying when a file stopped
/// being current, but a file written after it (from a newer manifest) bounds that time: the
/// manifest had changed before the newer file was built. So a file goes once some file newer
/// than it is itself older than `grace`. Files without a modification time are kept.
fn replaced_long_ago<'a>(
    objects: &'a [crate::storage::ObjectMeta],
    current: &str,
    grace: Duration,
    now: SystemTime,
) -> Vec<&'a str> {
    let written: Vec<(&str, SystemTime)> = objects
        .iter()
        .filter(|o| o.key.ends_with(".parquet"))
        .filter_map(|o| Some((o.key.as_str(), o.last_modified?)))
        .collect();
    written
        .iter()
        .filter(|(key, at)| {
            *key != current
                && written
                    .iter()
                    .any(|(_, newer)| newer > at && now.duration_since(*newer).unwrap_or_default() >= grace)
        })
        .map(|(key, _)| *key)
        .collect()
}

/// Counts the live files of one partition: its metrics and the number of events counted.
async fn build_partition(
    storage: &Arc<dyn Storage>,
    root: &str,
    live: &BTreeSet<String>,
) -> Result<(Metrics, u64), StorageError> {
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
    Ok((metrics, events))
}

/// A partition's metrics file, saying in its footer which files it was counted from.
async fn encode_partition(metrics: &Metrics, listing: &str) -> Result<Vec<u8>, StorageError> {
    let rows = metrics.rows();
    let listing = listing.to_string();
    tokio::task::spawn_blocking(move || table::encode_metrics(&rows, &[("parquetrail.sources", &listing)]))
        .await
        .map_err(permanent)?
        .map_err(permanent)
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
///
/// A replaced file is recorded as consumed (as compaction records its inputs) before the swap,
/// and deleted by garbage collection once [`GRACE`] has passed: a query that read the previous
/// manifest a moment earlier can still read it.
pub async fn write_insights(
    storage: &Arc<dyn Storage>,
    root: &str,
    episodes: &[Episode],
    since: i64,
    until: i64,
) -> Result<usize, StorageError> {
    write_insights_with_grace(storage, root, episodes, since, until, GRACE).await
}

/// [`write_insights`] with another grace period for replaced files.
pub async fn write_insights_with_grace(
    storage: &Arc<dyn Storage>,
    root: &str,
    episodes: &[Episode],
    since: i64,
    until: i64,
    grace: Duration,
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
            let replaced: BTreeSet<String> = current.files.difference(&files).cloned().collect();
            if !replaced.is_empty() {
                manifest::mark_consumed(storage.as_ref(), root, &dir, &replaced, chrono::Utc::now().timestamp())
                    .await?;
            }
            match manifest::swap(storage.as_ref(), root, &dir, &files, current.tag.as_deref()).await {
                Ok(_) => {
                    changed += 1;
                    break;
                }
                Err(e) if e.kind == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        // Files this run or an earlier one replaced, once their grace period is over.
        let settings = Settings { grace, ..Settings::default() };
        Compactor::new(storage.clone(), root, Layout::default(), settings).collect_garbage(&dir).await?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use parquetrail_core::insights::detect::{Attribution, Direction, InsightKey, InsightType};

    use super::*;
    use crate::local::LocalStorage;

    /// 2024-03-01T00:00:00Z, microseconds.
    const DAY: i64 = 1_709_251_200_000_000;
    const MINUTE: i64 = 60_000_000;
    const PARTITION: &str = "events/account=111122223333/region=us-east-1/date=2024-03-01";

    fn archive() -> (tempfile::TempDir, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        (dir, storage)
    }

    fn episode(average: f64) -> Episode {
        Episode {
            key: InsightKey {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                eventsource: "ec2.amazonaws.com".into(),
                eventname: "RunInstances".into(),
                insight_type: InsightType::ApiCallRateInsight,
                errorcode: None,
            },
            direction: Direction::Above,
            start: DAY + 600 * MINUTE,
            end: Some(DAY + 610 * MINUTE),
            first_count: 40,
            insight_average: average,
            baseline_average: 1.0,
            baseline_minutes: 7 * 1440,
            insight_minutes: 10,
            user_arns: Attribution::default(),
            user_agents: Attribution::default(),
            error_codes: Attribution::default(),
        }
    }

    /// Whether every file of `files` (paths relative to the archive) can still be read as Parquet.
    async fn readable(storage: &Arc<dyn Storage>, files: &BTreeSet<String>) -> bool {
        for file in files {
            match storage.read(file).await {
                Ok(body) => {
                    parquetrail_core::archive::read_rows(bytes::Bytes::from(body), Some(file)).unwrap();
                }
                Err(e) if e.kind == ErrorKind::NotFound => return false,
                Err(e) => panic!("{file}: {e}"),
            }
        }
        true
    }

    #[tokio::test]
    async fn a_replaced_computed_file_stays_readable_until_the_grace_period_is_over() {
        let (_dir, storage) = archive();
        let grace = Duration::from_secs(2);
        let (since, until) = (DAY, DAY + 1440 * MINUTE);
        write_insights_with_grace(&storage, "", &[episode(50.0)], since, until, grace).await.unwrap();
        let dirs = manifest::partitions(storage.as_ref(), "", "insights").await.unwrap();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        // A reader plans its query on this manifest…
        let old = manifest::read(storage.as_ref(), "", &dirs[0]).await.unwrap().files;
        assert_eq!(old.len(), 1);

        // …and a rerun with late data replaces the file right after.
        let changed = write_insights_with_grace(&storage, "", &[episode(80.0)], since, until, grace).await.unwrap();
        assert_eq!(changed, 1);
        let new = manifest::read(storage.as_ref(), "", &dirs[0]).await.unwrap().files;
        assert!(old.is_disjoint(&new), "old {old:?}, new {new:?}");
        assert!(readable(&storage, &old).await, "the replaced file must stay readable during the grace period");
        let consumed = manifest::read_consumed(storage.as_ref(), "", &dirs[0]).await.unwrap();
        assert!(old.iter().all(|f| consumed.entries.contains_key(f)), "{consumed:?}");

        // Consumed times are whole seconds: wait past the grace period, then any later run collects it.
        tokio::time::sleep(grace + Duration::from_millis(1100)).await;
        let changed = write_insights_with_grace(&storage, "", &[episode(80.0)], since, until, grace).await.unwrap();
        assert_eq!(changed, 0, "the same episodes again change nothing");
        assert!(!readable(&storage, &old).await, "garbage collection removes the replaced file after the grace period");
        assert!(readable(&storage, &new).await);
    }

    /// Converts one delivery of `n` write calls in minute `minute` into the test partition, and
    /// lists it in the manifest.
    async fn deliver(storage: &Arc<dyn Storage>, delivery: usize, minute: usize, n: usize) {
        let records: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","accountId":"111122223333"}},"eventTime":"2024-03-01T{:02}:{:02}:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","userAgent":"test","requestParameters":null,"responseElements":null,"requestID":"R{delivery}-{i}","eventID":"e-{delivery}-{i}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#,
                    minute / 60,
                    minute % 60,
                    i % 60
                )
            })
            .collect();
        let json = format!("{{\"Records\":[{}]}}", records.join(","));
        let key = format!(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1200Z_{delivery:016}.json.gz"
        );
        let sink = MemorySink::default();
        convert(&key, json.as_bytes(), &sink, &Options::default()).unwrap();
        let paths = sink.paths();
        for path in &paths {
            assert!(path.starts_with(PARTITION), "{path}");
            storage.put(path, sink.get(path).unwrap()).await.unwrap();
        }
        manifest::add(storage.as_ref(), "", &paths).await.unwrap();
    }

    fn calls(metrics: &Metrics) -> u64 {
        metrics.iter().map(|(_, _, cell)| cell.count).sum()
    }

    async fn metrics_files(storage: &Arc<dyn Storage>) -> BTreeSet<String> {
        let listed = storage.list(&format!("{METRICS}/")).await.unwrap();
        listed.into_iter().map(|o| o.key).filter(|k| k.ends_with(".parquet")).collect()
    }

    #[tokio::test]
    async fn replaced_metrics_stay_readable_until_the_grace_period_is_over_and_the_server_writes_none() {
        let (_dir, storage) = archive();
        let grace = Duration::from_secs(2);
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let go_on = |_: &str| true;
        deliver(&storage, 1, 600, 5).await;
        let (metrics, report) = refresh_and_load_with_grace(&storage, "", day, day, &go_on, grace).await.unwrap();
        assert_eq!((calls(&metrics), report.rebuilt, report.events), (5, 1, 5));
        let old = metrics_files(&storage).await;
        assert_eq!(old.len(), 1);

        // A late delivery: the next run builds a new file; the old one stays for readers that read
        // the previous manifest.
        deliver(&storage, 2, 601, 3).await;
        let (metrics, report) = refresh_and_load_with_grace(&storage, "", day, day, &go_on, grace).await.unwrap();
        assert_eq!((calls(&metrics), report.rebuilt), (8, 1));
        let both = metrics_files(&storage).await;
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(old.is_subset(&both));
        let mut read_back = Metrics::default();
        let old_key = old.first().unwrap();
        let body = storage.read(old_key).await.unwrap();
        table::decode_metrics(bytes::Bytes::from(body), old_key, &mut read_back).unwrap();
        assert_eq!(calls(&read_back), 5, "the replaced file is still readable");

        // Read-only loading (the server) counts a newer delivery from the events, writes nothing.
        deliver(&storage, 3, 602, 4).await;
        let (metrics, report) = load_metrics(&storage, "", day, day, Some("us-east-1"), 4).await.unwrap();
        assert_eq!((calls(&metrics), report.rebuilt, report.events), (12, 1, 12));
        assert_eq!(metrics_files(&storage).await, both, "loading metrics writes nothing");
        let (metrics, report) = load_metrics(&storage, "", day, day, Some("eu-west-1"), 4).await.unwrap();
        assert_eq!((calls(&metrics), report.partitions), (0, 0), "another Region's partitions are not read");

        // After the grace period, the run that finds the metrics replaced deletes the old files.
        tokio::time::sleep(grace + Duration::from_millis(200)).await;
        let (metrics, _) = refresh_and_load_with_grace(&storage, "", day, day, &go_on, grace).await.unwrap();
        assert_eq!(calls(&metrics), 12);
        let now = metrics_files(&storage).await;
        assert_eq!(now.len(), 2, "the file just built and the one it replaced: {now:?}");
        assert!(now.is_disjoint(&old), "the file replaced more than the grace period ago is gone: {now:?}");
    }
}
