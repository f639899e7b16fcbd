//! `parquetrail insights`: CloudTrail Insights computed from the archive.
//!
//! Glue only: flags → the model's knobs, `parquetrail-ingest`'s [`insights`](mod@parquetrail_ingest::insights) for the metrics,
//! the detection and the writes, and the records printed as CloudTrail JSON Lines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use parquetrail_core::insights::detect::{Direction, Model};
use parquetrail_core::insights::record::insight_records;
use parquetrail_core::lookup::{Bound, parse_time};
use parquetrail_ingest::insights;
use parquetrail_ingest::s3::S3Settings;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    # Insights of the last day (needs 7 days of history before it), written to the archive:\n  \
    parquetrail insights ./archive --since 1d\n\n  \
    # One week of an S3 archive, printed only, with a more sensitive model:\n  \
    parquetrail insights s3://my-archive/cloudtrail --since 2024-03-01 --until 2024-03-07 --no-write --sigmas 4\n\n\
    What is compared: each minute's count of an API's write management events (ApiCallRateInsight), and of \
    management events that returned each error code (ApiErrorRateInsight), with the same time of day on the \
    comparable days (weekdays or weekend days) of the baseline before it. docs/INSIGHTS.md explains the model \
    and every knob below.\n\n\
    Output: the Insight records, CloudTrail's own JSON, one per line (Start, and End once the episode is over); \
    a summary on stderr. Records are also written to the archive's insights dataset (source_key \
    parquetrail-insights) unless --no-write; reruns replace them, never duplicate them.")]
pub struct InsightsArgs {
    /// The archive: a directory written by `parquetrail convert`, or s3://bucket[/prefix].
    pub archive: String,
    /// Earliest start of an Insight, inclusive (a date, RFC 3339 or a time ago like 1d; default 1d).
    #[arg(long, default_value = "1d")]
    pub since: String,
    /// Latest start of an Insight, exclusive (default: now).
    #[arg(long, default_value = "now")]
    pub until: String,
    /// Print the records without writing them to the archive.
    #[arg(long)]
    pub no_write: bool,
    /// Days of history each minute is compared with (at least 7).
    #[arg(long, default_value_t = Model::default().baseline_days)]
    pub baseline_days: u32,
    /// Half-width in minutes of the time-of-day window sampled on each comparable day.
    #[arg(long, default_value_t = Model::default().window_minutes)]
    pub window_minutes: u32,
    /// Standard deviations above the expected count for a minute to be unusual.
    #[arg(long, default_value_t = Model::default().sigmas)]
    pub sigmas: f64,
    /// Times the expected count for a minute to be unusual.
    #[arg(long, default_value_t = Model::default().ratio)]
    pub ratio: f64,
    /// Fewest events in a minute for it to be unusually high.
    #[arg(long, default_value_t = Model::default().min_rate)]
    pub min_rate: u64,
    /// Fewest events an episode must be away from the expected counts, in total.
    #[arg(long, default_value_t = Model::default().min_events)]
    pub min_events: u64,
    /// A minute is unusually low at or below this fraction of the expected count…
    #[arg(long, default_value_t = Model::default().drop_ratio)]
    pub drop_ratio: f64,
    /// …when the expected count is at least this many events a minute.
    #[arg(long, default_value_t = Model::default().drop_min_rate)]
    pub drop_min_rate: f64,
    /// Fewest minutes a drop must last.
    #[arg(long, default_value_t = Model::default().drop_min_minutes)]
    pub drop_min_minutes: u32,
    /// An episode ends after this many minutes without an unusual one.
    #[arg(long, default_value_t = Model::default().end_after_minutes)]
    pub end_after_minutes: u32,
}

impl InsightsArgs {
    fn model(&self) -> Model {
        Model {
            baseline_days: self.baseline_days,
            window_minutes: self.window_minutes,
            sigmas: self.sigmas,
            ratio: self.ratio,
            min_rate: self.min_rate,
            min_events: self.min_events,
            drop_ratio: self.drop_ratio,
            drop_min_rate: self.drop_min_rate,
            drop_min_minutes: self.drop_min_minutes,
            end_after_minutes: self.end_after_minutes,
        }
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn insights(args: &InsightsArgs) -> Result<ExitCode> {
    let now = Utc::now();
    let since = parse_time(&args.since, now, Bound::Start).context("--since")?;
    // `--until 2024-03-07` means up to the end of that day.
    let until = parse_time(&args.until, now, Bound::End).context("--until")? + chrono::Duration::microseconds(1);
    if since >= until {
        bail!("--since {} is not before --until {}", iso(since), iso(until));
    }
    let model = args.model();
    model.validate().map_err(|e| anyhow::anyhow!("invalid model: {e}"))?;
    let location = crate::archive_location(&args.archive)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let (episodes, report, written) = runtime.block_on(async {
        let s3 = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let storage = location.storage(&s3).await;
        let root = location.prefix().to_string();
        // Progress on a terminal: metrics are read (or rebuilt) one partition at a time.
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let tty = io::stderr().is_terminal();
        let progress = |dir: &str| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if tty {
                eprint!("\rmetrics: {n} partitions ({dir})\x1b[K");
            }
            true
        };
        let (since_us, until_us) = (since.timestamp_micros(), until.timestamp_micros());
        let found = insights::find_episodes(&storage, &root, &model, since_us, until_us, &progress).await;
        if tty {
            eprint!("\r\x1b[K");
        }
        let (episodes, report) = found.with_context(|| format!("computing Insights over {location}"))?;
        let written = if args.no_write {
            0
        } else {
            insights::write_insights(&storage, &root, &episodes, since_us, until_us)
                .await
                .with_context(|| format!("writing Insights to {location}"))?
        };
        anyhow::Ok((episodes, report, written))
    })?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut records = 0;
    for e in &episodes {
        for r in insight_records(e) {
            writeln!(out, "{r}")?;
            records += 1;
        }
    }
    out.flush()?;
    drop(out);
    eprintln!(
        "{} partitions of metrics ({} rebuilt from {} events), {} Insights ({} records) starting {} .. {}{}",
        report.partitions,
        report.rebuilt,
        report.events,
        episodes.len(),
        records,
        iso(since),
        iso(until),
        if args.no_write { String::new() } else { format!("; {written} insights partitions updated") }
    );
    for e in &episodes {
        let direction = match e.direction {
            Direction::Above => "above",
            Direction::Below => "below",
        };
        let start = DateTime::from_timestamp_micros(e.start).map(iso).unwrap_or_default();
        eprintln!(
            "  {start} {} {}/{} {} {}{} {direction} baseline: {:.2}/min vs {:.2}/min{}",
            e.key.account,
            e.key.region,
            e.key.eventsource,
            e.key.eventname,
            e.key.insight_type.as_str(),
            e.key.errorcode.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
            e.insight_average,
            e.baseline_average,
            if e.end.is_none() { " (ongoing)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
