//! `parquetrail compact`: merge each partition's small per-delivery files into a few large,
//! sorted, deduplicated ones, swapped in through the partition's manifest. The engine is
//! `parquetrail_ingest::compaction`; this module is arguments, the partition loop (progress,
//! Ctrl-C) and the report.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parquetrail_core::compact::CompactOptions;
use parquetrail_core::convert::{Dataset, Layout};
use parquetrail_ingest::compaction::{
    Compactor, Control, Failure, PartitionReport, Progress, Report, Scope, Settings, Totals, Verdict, parse_duration,
    parse_size,
};
use parquetrail_ingest::location::join;
use parquetrail_ingest::manifest::MANIFESTS;
use parquetrail_ingest::s3::S3Settings;
use parquetrail_ingest::{Location, Storage};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::WriterArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    parquetrail compact ./archive --dry-run\n  \
    parquetrail compact s3://my-archive/cloudtrail --since 2024-03-01\n  \
    parquetrail compact ./archive --partition events/account=111122223333/region=us-east-1/date=2024-03-01\n\n\
    Every CloudTrail delivery (one every ~5 minutes per account and region) becomes its own small Parquet file, \
    so a day's partition holds hundreds of files of a few KB, and query engines pay per file. compact rewrites \
    the files of each partition as a few large ones (--target-size), sorted by event time, with records \
    CloudTrail delivered twice written once, in the same format the archive was written with (--compression, \
    --row-group-rows).\n\n\
    Readers never see a record twice, or miss one: a partition's files are the ones its manifest \
    (manifests/DATASET/account=…/region=…/date=…/symlink.txt, what the tables of `parquetrail ddl` read) lists, \
    and the manifest switches from the small files to the compacted ones in one conditional write. A delivery \
    converted meanwhile is kept beside the compacted files. The replaced files stay for the grace period \
    (--grace, default 1h) so that queries planned on the previous manifest can finish; the first run after that \
    deletes them. Tools that list the directories instead of reading the manifests see the replaced files too \
    until then: with no query running against a local archive, --grace 0s deletes them at once. Only partitions \
    whose day ended at least --older-than ago are compacted, so late deliveries have landed. Runs can be \
    interrupted (Ctrl-C, a crash) and repeated at any time: a rerun redoes the same work with the same result.\n\n\
    Exit status: 0 when every partition in scope is compacted or already compact, 1 when some failed (named \
    in the summary; rerun to retry), 130 when interrupted, 2 for usage errors.")]
pub struct CompactArgs {
    /// The archive: a directory or s3://bucket[/prefix], as written by `backfill --dest`, `convert
    /// --out` or the Lambda.
    #[arg(value_name = "ARCHIVE")]
    pub archive: String,
    /// Which datasets to compact.
    #[arg(long, value_enum, default_value_t = CompactDataset::All)]
    pub dataset: CompactDataset,
    /// Only this partition directory (repeatable), e.g.
    /// events/account=111122223333/region=us-east-1/date=2024-03-01; replaces --older-than and --since.
    #[arg(long, value_name = "DIR")]
    pub partition: Vec<String>,
    /// Only partitions whose day ended at least this long ago (UTC): 30m, 6h, 1d, 0s.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration, conflicts_with = "partition")]
    pub older_than: Duration,
    /// Only partitions dated on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "partition")]
    pub since: Option<String>,
    /// Size of each compacted file: 64MiB, 1GiB, or bytes.
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = parse_size)]
    pub target_size: u64,
    /// Memory for the rows of one partition being sorted; larger partitions are sorted in chunks
    /// of this size. Peak memory is about this times --concurrency.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub memory: u64,
    /// How long replaced files stay readable after the manifest stops listing them.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Partitions compacted at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Say which partitions would be compacted; write and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// First list, in their partitions' manifests, the data files no manifest lists yet: needed
    /// once for an archive written before manifests existed (it lists the whole dataset).
    #[arg(long, conflicts_with = "dry_run")]
    pub adopt: bool,
    /// List every partition in the table, already compact ones too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the whole report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub writer: WriterArgs,
}

/// The datasets `--dataset` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompactDataset {
    Events,
    Insights,
    Digests,
    All,
}

impl CompactDataset {
    fn datasets(self) -> Vec<Dataset> {
        match self {
            CompactDataset::Events => vec![Dataset::Events],
            CompactDataset::Insights => vec![Dataset::Insights],
            CompactDataset::Digests => vec![Dataset::Digests],
            CompactDataset::All => vec![Dataset::Events, Dataset::Insights, Dataset::Digests],
        }
    }
}

/// A duration as the flags take it (`1h`, `90m`, `0s`).
fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Checks a `--partition` value: `DATASET/account=…/region=…/date=YYYY-MM-DD`, dataset one of
/// the layout's. Returns the partition without a trailing `/` and its dataset.
fn check_partition(text: &str, layout: &Layout) -> Result<(Dataset, String)> {
    let dir = text.trim().trim_matches('/');
    let shape = "expected DATASET/account=ID/region=REGION/date=YYYY-MM-DD, e.g. \
        events/account=111122223333/region=us-east-1/date=2024-03-01 (relative to the archive)";
    let parts: Vec<&str> = dir.split('/').collect();
    let [dataset, account, region, date] = parts[..] else {
        bail!("--partition {text:?}: {shape}");
    };
    let dataset = [Dataset::Events, Dataset::Insights, Dataset::Digests]
        .into_iter()
        .find(|d| layout.prefix(*d) == dataset)
        .with_context(|| format!("--partition {text:?}: {dataset:?} is not events, insights or digests; {shape}"))?;
    let value = |segment: &str, name: &str| -> Result<()> {
        match segment.strip_prefix(name).and_then(|s| s.strip_prefix('=')) {
            Some(v) if !v.is_empty() => Ok(()),
            _ => bail!("--partition {text:?}: {segment:?} is not {name}=…; {shape}"),
        }
    };
    value(account, "account")?;
    value(region, "region")?;
    value(date, "date")?;
    let day = &date["date=".len()..];
    if NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
        bail!("--partition {text:?}: {day:?} is not a date (YYYY-MM-DD); {shape}");
    }
    Ok((dataset, dir.to_string()))
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Run<'a> {
    archive: String,
    dry_run: bool,
    interrupted: bool,
    totals: &'a Totals,
    partitions: &'a [PartitionReport],
    failures: &'a [Failure],
}

pub fn compact(args: &CompactArgs) -> Result<ExitCode> {
    let layout = Layout::default();
    let location = crate::archive_location(&args.archive)?;
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let mut scope = Scope {
        datasets: args.dataset.datasets(),
        older_than: Some(args.older_than),
        since: args
            .since
            .as_deref()
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .with_context(|| format!("--since: expected YYYY-MM-DD, got {v:?}"))
            })
            .transpose()?,
        partitions: Vec::new(),
    };
    for text in &args.partition {
        let (dataset, dir) = check_partition(text, &layout)?;
        if !scope.datasets.contains(&dataset) {
            bail!(
                "--partition {text:?} is not in --dataset {}",
                args.dataset.to_possible_value().expect("named").get_name()
            );
        }
        if !scope.partitions.contains(&dir) {
            scope.partitions.push(dir);
        }
    }
    let settings = Settings {
        options: CompactOptions {
            target_bytes: args.target_size,
            memory_budget: usize::try_from(args.memory).unwrap_or(usize::MAX),
            settings: args.writer.settings()?,
        },
        grace: args.grace,
        concurrency: args.concurrency,
        dry_run: args.dry_run,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let s3 = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let storage = location.storage(&s3).await;
        let root = location.prefix().to_string();
        if args.adopt {
            for dataset in &scope.datasets {
                let prefix = layout.prefix(*dataset);
                let added = parquetrail_ingest::manifest::adopt(storage.as_ref(), &root, prefix)
                    .await
                    .with_context(|| format!("adopting the {prefix} files of {location}"))?;
                eprintln!("Adopted {added} {prefix} file(s) no manifest listed.");
            }
        }
        let compactor = Compactor::new(storage.clone(), root.clone(), layout.clone(), settings);
        let spinner = progress(None);
        spinner.set_message("listing partitions");
        let partitions = compactor.partitions(&scope).await;
        spinner.finish_and_clear();
        let partitions = partitions.with_context(|| format!("listing the partitions of {location}"))?;
        if scope.partitions.is_empty() {
            warn_unlisted(storage.as_ref(), &root, &layout, &scope, &partitions, &location).await;
        }
        let cancel = CancellationToken::new();
        on_interrupt(cancel.clone());
        let report = run(&compactor, partitions, !scope.partitions.is_empty(), &cancel).await;
        let totals = report.totals();
        let interrupted = cancel.is_cancelled();
        if args.json {
            let run = Run {
                archive: location.to_string(),
                dry_run: args.dry_run,
                interrupted,
                totals: &totals,
                partitions: &report.partitions,
                failures: &report.failures,
            };
            outln!("{}", serde_json::to_string_pretty(&run)?);
        } else {
            print_report(args, &location, &report, &totals, interrupted)?;
        }
        Ok(if interrupted {
            ExitCode::from(130)
        } else if !report.failures.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// A bar on a terminal (a spinner without a length), nothing otherwise.
fn progress(length: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    let template = if length.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} partitions ETA {eta} {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {msg}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Compacts the partitions with progress (a bar on a terminal, a line every 10 s otherwise); stops
/// starting new ones once `cancel` fires.
async fn run(
    compactor: &Compactor,
    partitions: Vec<(Dataset, String)>,
    named: bool,
    cancel: &CancellationToken,
) -> Report {
    let bar = progress(Some(partitions.len() as u64));
    let started = Instant::now();
    let mut last_line = Instant::now();
    let control =
        Control::default().must_exist(named).go_on_while(|| !cancel.is_cancelled()).on_progress(|p: Progress| {
            bar.set_position(p.done as u64);
            bar.set_message(match p.failed {
                0 => String::new(),
                n => format!("{n} FAILED"),
            });
            if bar.is_hidden() && last_line.elapsed() >= Duration::from_secs(10) {
                last_line = Instant::now();
                eprintln!(
                    "compact: {}/{} partitions, {} failed, {:.0}s elapsed",
                    p.done,
                    p.total,
                    p.failed,
                    started.elapsed().as_secs_f64()
                );
            }
        });
    let report = compactor.schedule(partitions, control).await;
    bar.finish_and_clear();
    report
}

/// Says so when a dataset holds data but no manifests: compaction only sees partitions whose files
/// a manifest lists.
async fn warn_unlisted(
    storage: &dyn Storage,
    root: &str,
    layout: &Layout,
    scope: &Scope,
    found: &[(Dataset, String)],
    location: &Location,
) {
    for dataset in &scope.datasets {
        if found.iter().any(|(d, _)| d == dataset) {
            continue;
        }
        let prefix = layout.prefix(*dataset);
        let data = storage.list_prefixes(&join(root, &format!("{prefix}/"))).await.unwrap_or_default();
        let manifests = storage.list_prefixes(&join(root, &format!("{MANIFESTS}/{prefix}/"))).await.unwrap_or_default();
        if !data.is_empty() && manifests.is_empty() {
            eprintln!(
                "warning: {location} holds {prefix} data but no partition manifests ({}): compaction, like the \
                 tables of `parquetrail ddl`, only sees files a manifest lists. An archive written before manifests \
                 needs its files listed once: run again with --adopt.",
                join(&location.to_string(), &format!("{MANIFESTS}/{prefix}/")),
            );
        }
    }
}

/// Ctrl-C: stop starting partitions, finish those in flight. A second Ctrl-C exits at once (safe
/// too: an interrupted partition is left as it was, or compacted, never half of each).
fn on_interrupt(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing the partitions in flight (Ctrl-C again to quit now)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e6)
}

fn verdict(v: &Verdict) -> &'static str {
    match v {
        Verdict::Compacted => "compacted",
        Verdict::AlreadyCompact => "already compact",
        Verdict::Planned => "planned",
        Verdict::LostRace => "lost race",
    }
}

fn print_report(args: &CompactArgs, location: &Location, report: &Report, t: &Totals, interrupted: bool) -> Result<()> {
    let scope = if args.partition.is_empty() {
        format!(
            "days ended at least {} ago{}",
            show_duration(args.older_than),
            args.since.as_deref().map(|s| format!(", from {s}")).unwrap_or_default()
        )
    } else {
        "the partitions named".to_string()
    };
    outln!(
        "{} {location}: {} partition(s) in scope ({scope}){}",
        if args.dry_run { "Compaction plan for" } else { "Compaction of" },
        t.partitions,
        if args.dry_run { ", dry run: nothing written or deleted" } else { "" }
    );
    let (reports, failures) = (&report.partitions, &report.failures);
    let shown: Vec<&PartitionReport> =
        reports.iter().filter(|p| args.verbose || p.verdict != Verdict::AlreadyCompact || p.deleted > 0).collect();
    if !shown.is_empty() || !failures.is_empty() {
        let width = shown
            .iter()
            .map(|p| p.partition.len())
            .chain(failures.iter().map(|f| f.partition.len()))
            .max()
            .unwrap_or(0);
        outln!("");
        outln!(
            "{:<width$}  {:<15}  {:>9}  {:>15}  {:>6}  {:>4}  {:>7}",
            "PARTITION",
            "VERDICT",
            "FILES",
            "MB",
            "DUPS",
            "LATE",
            "DELETED"
        );
        for p in shown {
            let (files, bytes) = match p.verdict {
                Verdict::Compacted => (
                    format!("{} → {}", p.files_before, p.files_after),
                    format!("{} → {}", mb(p.bytes_before), mb(p.bytes_after)),
                ),
                Verdict::Planned => (format!("{} → ?", p.files_before), format!("{} → ?", mb(p.bytes_before))),
                _ => (p.files_before.to_string(), mb(p.bytes_before)),
            };
            outln!(
                "{:<width$}  {:<15}  {files:>9}  {bytes:>15}  {:>6}  {:>4}  {:>7}",
                p.partition,
                verdict(&p.verdict),
                p.duplicates_removed,
                p.late_files,
                p.deleted
            );
        }
        for f in failures {
            outln!("{:<width$}  {:<15}  (below)", f.partition, "FAILED");
        }
        outln!("");
    }
    if args.dry_run {
        outln!(
            "Would compact {} of {} partition(s): {} file(s), {} MB; {} already compact.",
            t.planned,
            t.partitions,
            t.files_before,
            mb(t.bytes_before),
            t.already_compact
        );
    } else if t.compacted == 0 && failures.is_empty() && !interrupted {
        outln!("Nothing to compact: {} partition(s) in scope, {} already compact.", t.partitions, t.already_compact);
    } else {
        outln!(
            "Compacted {} of {} partition(s): {} → {} file(s), {} → {} MB, {} duplicate(s) removed; {} already compact.",
            t.compacted,
            t.partitions,
            t.files_before,
            t.files_after,
            mb(t.bytes_before),
            mb(t.bytes_after),
            t.duplicates_removed,
            t.already_compact
        );
    }
    if t.lost_race > 0 {
        outln!("  {} partition(s) were compacted meanwhile by another run; its result stands.", t.lost_race);
    }
    if !args.dry_run {
        outln!("  {} replaced file(s) deleted.", t.deleted);
        if t.compacted > 0 && !args.grace.is_zero() {
            outln!(
                "  The files replaced now stay readable for {} (--grace), for queries already under way; a run after that deletes them.",
                show_duration(args.grace)
            );
        }
    }
    if !failures.is_empty() {
        outln!("  FAILED    {} partition(s):", failures.len());
        for f in failures {
            outln!("    {}\n      {}", f.partition, f.error);
        }
        outln!("  Rerun to retry: partitions already compacted are left as they are.");
    }
    if interrupted {
        outln!("  Interrupted: {} partition(s) not started. Rerun the same command to finish them.", t.not_started);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [("0", 0), ("0s", 0), ("30m", 1800), ("6h", 21_600), ("1d", 86_400), ("1h30m", 5400), (" 90s ", 90)];
        for (text, secs) in ok {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for bad in ["", "1", "h", "1x", "-1h", "1.5h", "1 h", "99999999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("30m"), "{bad}: {e}");
        }
        for secs in [0, 59, 60, 3600, 5400, 86_400] {
            assert_eq!(parse_duration(&show_duration(Duration::from_secs(secs))), Ok(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn sizes() {
        let ok = [("64MiB", 64 << 20), ("1GiB", 1 << 30), ("128mib", 128 << 20), ("1000", 1000), ("2 MB", 2_000_000)];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MiB", "1.5GiB", "12 parsecs", "0", "0MiB", "99999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions() {
        let layout = Layout::default();
        let ok = [
            ("events/account=111122223333/region=us-east-1/date=2024-03-01", Dataset::Events),
            ("/insights/account=1/region=r/date=2024-02-29/", Dataset::Insights),
            ("digests/account=__HIVE_DEFAULT_PARTITION__/region=a%2Fb/date=2024-03-01", Dataset::Digests),
        ];
        for (text, dataset) in ok {
            let (d, dir) = check_partition(text, &layout).unwrap();
            assert_eq!(d, dataset, "{text}");
            assert_eq!(dir, text.trim_matches('/'), "{text}");
        }
        for bad in [
            "events/account=1/date=2024-03-01",
            "logs/account=1/region=r/date=2024-03-01",
            "events/account=/region=r/date=2024-03-01",
            "events/region=r/account=1/date=2024-03-01",
            "events/account=1/region=r/date=2024-02-30",
            "events/account=1/region=r/date=2024-03-01/x.parquet",
        ] {
            let e = check_partition(bad, &layout).unwrap_err().to_string();
            assert!(e.contains("--partition") && e.contains("DATASET/account="), "{bad}: {e}");
        }
    }
}
