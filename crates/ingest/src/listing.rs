//! Finding a trail's log files for a date range without scanning the bucket.
//!
//! CloudTrail lays its objects out as
//! `[prefix/]AWSLogs/[o-id/]<account>/<CloudTrail|CloudTrail-Insight|CloudTrail-Digest>/<region>/YYYY/MM/DD/<file>`.
//! A trail bucket holding years of an organization's history has millions of objects; listing all
//! of them to pick one month is what makes naive backfills take hours (and what the crawler that
//! "never finishes" does). So the layout is walked with delimiter listings — one request per
//! level: organizations and accounts under `AWSLogs/`, regions under each account's `CloudTrail/`,
//! then years, months and days — and only the **day prefixes in range** are listed object by
//! object, page by page (1,000 keys at a time), into a bounded channel. Memory stays at a page
//! plus the channel however large the bucket; Config and other services' prefixes are never
//! listed at all, nor digests unless the dataset includes them.
//!
//! Dates are the delivery dates in the key (`YYYY/MM/DD/`), not event times: a file delivered
//! at 00:04 holds events of the previous evening. A range therefore selects whole deliveries;
//! the rows land in the partitions of their own `eventTime` as always.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use parquetrail_core::convert::{Category, EventFilter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::location::join;
use crate::storage::{ObjectMeta, Storage, StorageError};

/// Which dataset a backfill (or a Batch Operations job's `dataset` argument) converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatasetChoice {
    /// Events only: the `CloudTrail/` prefixes.
    Events,
    /// CloudTrail Insights only: the `CloudTrail-Insight/` prefixes.
    Insights,
    /// Digest files only: the `CloudTrail-Digest/` prefixes, into the `digests` dataset.
    Digests,
    /// All three.
    #[default]
    All,
}

/// A dataset name that is none of [`DatasetChoice`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not events, insights, digests or all")]
pub struct UnknownDataset(pub String);

impl FromStr for DatasetChoice {
    type Err = UnknownDataset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "events" => Ok(DatasetChoice::Events),
            "insights" => Ok(DatasetChoice::Insights),
            "digests" => Ok(DatasetChoice::Digests),
            "all" => Ok(DatasetChoice::All),
            other => Err(UnknownDataset(other.to_string())),
        }
    }
}

impl DatasetChoice {
    /// The name used on the command line and in Batch Operations `userArguments`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetChoice::Events => "events",
            DatasetChoice::Insights => "insights",
            DatasetChoice::Digests => "digests",
            DatasetChoice::All => "all",
        }
    }

    /// The key segments (after the account) that hold this dataset's files.
    pub fn dirs(self) -> &'static [&'static str] {
        match self {
            DatasetChoice::Events => &["CloudTrail"],
            DatasetChoice::Insights => &["CloudTrail-Insight"],
            DatasetChoice::Digests => &["CloudTrail-Digest"],
            DatasetChoice::All => &["CloudTrail", "CloudTrail-Insight", "CloudTrail-Digest"],
        }
    }

    /// The record filter that keeps this dataset. The Lambda's Batch path and the local
    /// backfill both use it, so both write byte-identical outputs. A digest file becomes its
    /// `digests` row whatever the filter (it has no records to filter), so `digests` keeps all.
    pub fn filter(self) -> EventFilter {
        let categories = match self {
            DatasetChoice::All | DatasetChoice::Digests => return EventFilter::default(),
            DatasetChoice::Events => [Category::Management, Category::Data, Category::NetworkActivity].into(),
            DatasetChoice::Insights => [Category::Insight].into(),
        };
        EventFilter { categories, ..EventFilter::default() }
    }
}

/// Which part of a trail to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// First delivery date, inclusive (`None`: from the first).
    pub start: Option<NaiveDate>,
    /// Last delivery date, inclusive (`None`: to the last).
    pub end: Option<NaiveDate>,
    /// Only these accounts (empty: all found).
    pub accounts: BTreeSet<String>,
    /// Only these regions (empty: all found).
    pub regions: BTreeSet<String>,
    /// Only this organization's trail (`o-…`); `None`: every organization and every
    /// account-level trail found under `AWSLogs/`.
    pub org: Option<String>,
    pub dataset: DatasetChoice,
}

impl Selection {
    fn wants_year(&self, year: i32) -> bool {
        self.start.is_none_or(|s| year >= s.year()) && self.end.is_none_or(|e| year <= e.year())
    }

    fn wants_month(&self, year: i32, month: u32) -> bool {
        self.start.is_none_or(|s| (year, month) >= (s.year(), s.month()))
            && self.end.is_none_or(|e| (year, month) <= (e.year(), e.month()))
    }

    fn wants_day(&self, date: NaiveDate) -> bool {
        self.start.is_none_or(|s| date >= s) && self.end.is_none_or(|e| date <= e)
    }
}

/// What the walk found and did, for the plan and the final summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    pub orgs: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub regions: BTreeSet<String>,
    /// Day prefixes listed object by object.
    pub days: u64,
    /// Objects sent.
    pub objects: u64,
    /// Delimiter and page requests made.
    pub requests: u64,
    /// Prefixes that could not be listed (after retries): their objects were not seen, so a
    /// run that has any is incomplete and must say so.
    pub failures: Vec<ListFailure>,
}

/// A prefix that could not be listed, and the storage's failure. Shown (and serialized) as
/// `LOCATION/PREFIX: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}/{prefix}: {source}")]
pub struct ListFailure {
    /// The storage, as it describes itself (`s3://bucket`, a directory).
    pub location: String,
    pub prefix: String,
    #[source]
    pub source: StorageError,
}

impl ListFailure {
    /// The prefix with its storage: what a report names.
    pub fn uri(&self) -> String {
        format!("{}/{}", self.location, self.prefix)
    }

    /// Whether a rerun may list it ([`crate::error::storage_retryable`]).
    pub fn retryable(&self) -> bool {
        crate::error::storage_retryable(&self.source)
    }
}

impl serde::Serialize for ListFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How many times a listing (or verification) request is tried before it is reported as failed
/// (the SDK retries each attempt again with backoff).
const LIST_ATTEMPTS: u32 = 3;

/// Runs a storage call until it succeeds, fails permanently, or failed retryably
/// [`LIST_ATTEMPTS`] times, with exponential backoff between attempts.
pub(crate) async fn retry<T, F, Fut>(mut call: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if e.is_retryable() && attempt < LIST_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            other => return other,
        }
    }
}

/// The last path segment of a common prefix (`a/b/c/` → `c`).
fn segment(prefix: &str) -> &str {
    prefix.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_org(s: &str) -> bool {
    s.len() > 2 && s.starts_with("o-") && s[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Walks the trail under `root` (`[prefix]`, the part before `AWSLogs/`) and sends every object
/// of every selected day prefix to `tx`, in key order per prefix. Stops early, without error,
/// when `cancel` fires or the receiver is dropped.
pub async fn list_objects(
    storage: &dyn Storage,
    root: &str,
    selection: &Selection,
    tx: mpsc::Sender<ObjectMeta>,
    cancel: CancellationToken,
) -> Discovered {
    list_kinds(storage, root, selection, selection.dataset.dirs(), tx, cancel).await
}

/// [`list_objects`] of other kinds of CloudTrail prefix than the selection's dataset:
/// `&["CloudTrail-Digest"]` lists the digest files of the range (`verify`).
pub async fn list_kinds(
    storage: &dyn Storage,
    root: &str,
    selection: &Selection,
    kinds: &[&str],
    tx: mpsc::Sender<ObjectMeta>,
    cancel: CancellationToken,
) -> Discovered {
    let mut walk = Walk { storage, selection, kinds, tx, cancel, found: Discovered::default() };
    walk.run(root).await;
    walk.found
}

struct Walk<'a> {
    storage: &'a dyn Storage,
    selection: &'a Selection,
    kinds: &'a [&'a str],
    tx: mpsc::Sender<ObjectMeta>,
    cancel: CancellationToken,
    found: Discovered,
}

impl Walk<'_> {
    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.tx.is_closed()
    }

    /// Records that `prefix` could not be listed.
    fn fail(&mut self, prefix: &str, source: StorageError) {
        let failure = ListFailure { location: self.storage.describe(), prefix: prefix.to_string(), source };
        self.found.failures.push(failure);
    }

    /// The common prefixes under `prefix`, or none (recorded as a failure).
    async fn dirs(&mut self, prefix: &str) -> Vec<String> {
        self.found.requests += 1;
        match retry(|| self.storage.list_prefixes(prefix)).await {
            Ok(dirs) => dirs,
            Err(e) => {
                tracing::error!(prefix, error = %e, "listing failed");
                self.fail(prefix, e);
                Vec::new()
            }
        }
    }

    async fn run(&mut self, root: &str) {
        let logs = format!("{}/", join(root, "AWSLogs"));
        let mut accounts = Vec::new();
        for dir in self.dirs(&logs).await {
            let name = segment(&dir).to_string();
            if is_account(&name) && self.selection.org.is_none() {
                accounts.push(dir);
            } else if is_org(&name) && self.selection.org.as_ref().is_none_or(|o| *o == name) {
                self.found.orgs.insert(name);
                accounts.extend(self.dirs(&dir).await.into_iter().filter(|d| is_account(segment(d))));
            }
        }
        if let Some(org) = &self.selection.org
            && !self.found.orgs.contains(org)
        {
            tracing::warn!(org, under = logs, "organization not found");
        }
        for account in accounts {
            let id = segment(&account).to_string();
            if !self.selection.accounts.is_empty() && !self.selection.accounts.contains(&id) {
                continue;
            }
            self.found.accounts.insert(id);
            for kind in self.kinds {
                for region in self.dirs(&format!("{account}{kind}/")).await {
                    let name = segment(&region).to_string();
                    if !self.selection.regions.is_empty() && !self.selection.regions.contains(&name) {
                        continue;
                    }
                    self.found.regions.insert(name);
                    self.dates(&region).await;
                    if self.stopped() {
                        return;
                    }
                }
            }
        }
    }

    /// Years, months and days under a region prefix, pruned to the range at each level.
    async fn dates(&mut self, region: &str) {
        let number = |d: &str, len: usize| {
            let s = segment(d);
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
        };
        for year_dir in self.dirs(region).await {
            let Some(year) = number(&year_dir, 4).map(|y| y as i32) else { continue };
            if !self.selection.wants_year(year) {
                continue;
            }
            for month_dir in self.dirs(&year_dir).await {
                let Some(month) = number(&month_dir, 2) else { continue };
                if !self.selection.wants_month(year, month) {
                    continue;
                }
                for day_dir in self.dirs(&month_dir).await {
                    let Some(date) = number(&day_dir, 2).and_then(|d| NaiveDate::from_ymd_opt(year, month, d)) else {
                        continue;
                    };
                    if self.selection.wants_day(date) {
                        self.day(&day_dir).await;
                    }
                    if self.stopped() {
                        return;
                    }
                }
            }
        }
    }

    /// Every object of one day prefix, page by page.
    async fn day(&mut self, prefix: &str) {
        self.found.days += 1;
        let mut token: Option<String> = None;
        loop {
            self.found.requests += 1;
            let page = match retry(|| self.storage.list_page(prefix, token.as_deref())).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(prefix, error = %e, "listing failed");
                    self.fail(prefix, e);
                    return;
                }
            };
            for object in page.objects {
                if self.stopped() || self.tx.send(object).await.is_err() {
                    return;
                }
                self.found.objects += 1;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_prune_years_months_and_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let sel = Selection { start: Some(d("2023-12-30")), end: Some(d("2024-02-02")), ..Selection::default() };
        for (year, want) in [(2022, false), (2023, true), (2024, true), (2025, false)] {
            assert_eq!(sel.wants_year(year), want, "{year}");
        }
        for (ym, want) in
            [((2023, 11), false), ((2023, 12), true), ((2024, 1), true), ((2024, 2), true), ((2024, 3), false)]
        {
            assert_eq!(sel.wants_month(ym.0, ym.1), want, "{ym:?}");
        }
        for (day, want) in [("2023-12-29", false), ("2023-12-30", true), ("2024-02-02", true), ("2024-02-03", false)] {
            assert_eq!(sel.wants_day(d(day)), want, "{day}");
        }
        let open = Selection::default();
        assert!(open.wants_year(1999) && open.wants_month(2100, 1) && open.wants_day(d("2000-01-01")));
        assert!(is_account("123456789012") && !is_account("12345678901") && !is_account("o-abc123def4"));
        assert!(is_org("o-abc123def4") && !is_org("o-") && !is_org("123456789012"));
        assert_eq!(segment("a/AWSLogs/o-x/"), "o-x");
        assert!("bogus".parse::<DatasetChoice>().is_err());
    }

    #[test]
    fn dataset_choices_list_their_prefixes_and_filter_records() {
        let cases: [(&str, DatasetChoice, &[&str], bool); 4] = [
            ("events", DatasetChoice::Events, &["CloudTrail"], false),
            ("insights", DatasetChoice::Insights, &["CloudTrail-Insight"], false),
            ("digests", DatasetChoice::Digests, &["CloudTrail-Digest"], true),
            ("all", DatasetChoice::All, &["CloudTrail", "CloudTrail-Insight", "CloudTrail-Digest"], true),
        ];
        for (name, choice, dirs, keeps_all) in cases {
            assert_eq!(name.parse::<DatasetChoice>(), Ok(choice), "{name}");
            assert_eq!(choice.as_str(), name, "{name}");
            assert_eq!(choice.dirs(), dirs, "{name}");
            assert_eq!(choice.filter().keeps_all(), keeps_all, "{name}");
        }
        assert_eq!(DatasetChoice::default(), DatasetChoice::All);
    }
}
