//! `parquetrail backfill`: a trail's history for a date range into the archive, locally (this
//! machine converts, resumably) or on AWS's own fleet (an S3 Batch Operations job that invokes the
//! deployed Lambda once per object). The engine is `parquetrail_ingest::backfill`; this module is
//! arguments, progress, the plan and the summary.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parquetrail_core::convert::Options;
use parquetrail_ingest::backfill::{Backfill, Manifest, Plan, Progress, Report};
use parquetrail_ingest::ledger::{Checkpoint, run_id};
use parquetrail_ingest::listing::{DatasetChoice, Selection};
use parquetrail_ingest::location::join;
use parquetrail_ingest::s3::S3Settings;
use parquetrail_ingest::{Location, Storage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{ShapingArgs, TrailArgs, WriterArgs};

/// Stored (gzip) bytes of CloudTrail log files one core converts per second.
///
/// Measured with the **release** build on the benchmark tree (`parquetrail generate --mb 400
/// --seed 1`: 76.3 MB of gzip, 400 MB of JSON, 5,275 files with CloudTrail's heavy-tailed sizes),
/// outputs on tmpfs, on a 2-core x86-64 machine: `parquetrail convert` took 6.8-7.5 s of CPU time
/// (user + sys) with `--jobs 1` and 7.0-7.7 s with `--jobs 2` in most rounds (8.9 s in one with
/// the machine busy). The `--jobs 2` median, 7.5 s, is about 10.2 MB/s of gzip (53 MB/s of JSON)
/// per core, rounded down here (see `BENCHMARKS.md`, "Per-file system calls and the serial
/// tail"). Small deliveries dominate that figure (a fixed cost per Parquet output): estimates
/// err on the long side for trees of large files, and on the short side for outputs written to
/// a disk (an `fdatasync` per output).
pub const GZIP_BYTES_PER_CORE_SECOND: f64 = 10.0e6;

/// Lambda arm64 price per GB-second (us-east-1, first pricing tier), an assumption.
pub const LAMBDA_ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda price per request, an assumption.
pub const LAMBDA_USD_PER_REQUEST: f64 = 0.20 / 1e6;
/// S3 Batch Operations: per job and per object operation, an assumption.
pub const BATCH_USD_PER_JOB: f64 = 0.25;
pub const BATCH_USD_PER_OBJECT: f64 = 1.00 / 1e6;
/// Memory the estimate assumes the function has, and the vCPU share Lambda gives it (one full
/// vCPU at 1,769 MB).
const LAMBDA_MEMORY_GB: f64 = 1.0;
const LAMBDA_VCPU: f64 = 1024.0 / 1769.0;
/// Fixed time per invocation for the S3 round trips (one GET, one PUT per output), assumed.
const LAMBDA_SECONDS_PER_OBJECT: f64 = 0.15;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    parquetrail backfill --source s3://trail-bucket --dest s3://archive/cloudtrail --start 2024-01-01 --end 2024-03-31 --dry-run\n  \
    parquetrail backfill --source s3://trail-bucket --dest s3://archive/cloudtrail --start 2024-01-01 --end 2024-03-31\n  \
    parquetrail backfill --source ./trail --dest ./archive --org o-abc123def4 --accounts 111122223333 --regions us-east-1\n  \
    parquetrail backfill --source s3://trail-bucket --dest s3://archive/cloudtrail --start 2020-01-01 --via-batch-operations \\\n      \
    --function-arn arn:aws:lambda:us-east-1:111122223333:function:parquetrail --role-arn arn:aws:iam::111122223333:role/batch --account-id 111122223333 --submit\n\n\
    Dates are CloudTrail's delivery dates (the YYYY/MM/DD in the key), inclusive; rows land in the partitions of their own eventTime. \
    Only the day prefixes in range are listed. Every object done is recorded in <dest>/_ledger/ (JSON lines: key, ETag, size, \
    SHA-256 of the uncompressed content, records, outputs, time), so rerunning the same command after a crash or Ctrl-C \
    finishes the rest and a rerun after success does nothing. Outputs are named after their source object, so redone work \
    rewrites identical files: nothing is duplicated.\n\n\
    Exit status: 0 when everything in range is converted, 1 when some objects failed (named in the summary; rerun to retry), \
    130 when interrupted, 2 for usage errors.\n\n\
    --dry-run estimates assume: 7.4 MB/s of gzip per core (measured with a release build on many small files, so conservative); Lambda arm64 at \
    $0.0000133334 per GB-s and $0.20 per million requests with 1024 MB (0.58 vCPU) and 0.15 s of S3 round trips per object; \
    S3 Batch Operations at $0.25 per job and $1.00 per million objects. S3 request charges are not included.")]
pub struct BackfillArgs {
    /// The trail: s3://bucket[/prefix] or a directory; the prefix is what comes before AWSLogs/.
    #[arg(long)]
    pub source: String,
    /// The archive: s3://bucket[/prefix] or a directory.
    #[arg(long)]
    pub dest: String,
    #[command(flatten)]
    pub trail: TrailArgs,
    /// What to convert: events (`CloudTrail/`), insights (`CloudTrail-Insight/`), digests
    /// (`CloudTrail-Digest/`, into the `digests` dataset) or all three.
    #[arg(long, value_enum, default_value_t = BackfillDataset::All)]
    pub dataset: BackfillDataset,
    /// Objects converted at once (default: 4 per CPU, at most 64, when S3 is involved; one per CPU
    /// for local disk).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// List and print the plan (objects, bytes, estimated time and Lambda cost); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a ledger segment after this many objects...
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_objects: usize,
    /// ...or after this many seconds, whichever comes first.
    #[arg(long, default_value_t = 10)]
    pub checkpoint_seconds: u64,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do not convert here: write an S3 Batch Operations manifest for the range and print the
    /// CreateJob request that runs the deployed Lambda on every object.
    #[arg(long)]
    pub via_batch_operations: bool,
    /// Where to write the manifest (default: DEST/_batch/RUN/manifest.csv).
    #[arg(long, requires = "via_batch_operations")]
    pub manifest: Option<String>,
    /// Where the job writes its completion report (default: DEST/_batch/RUN/report).
    #[arg(long, requires = "via_batch_operations")]
    pub report: Option<String>,
    /// The deployed parquetrail Lambda's ARN.
    #[arg(long, requires = "via_batch_operations")]
    pub function_arn: Option<String>,
    /// The IAM role Batch Operations assumes (may invoke the function and read the manifest).
    #[arg(long, requires = "via_batch_operations")]
    pub role_arn: Option<String>,
    /// The account that owns the job.
    #[arg(long, requires = "via_batch_operations")]
    pub account_id: Option<String>,
    /// The job's priority.
    #[arg(long, default_value_t = 10, requires = "via_batch_operations")]
    pub priority: i32,
    /// Submit the job (CreateJob through the S3 Control API) instead of printing the request; it
    /// starts without a confirmation step.
    #[arg(long, requires = "via_batch_operations")]
    pub submit: bool,
    #[command(flatten)]
    pub writer: WriterArgs,
    #[command(flatten)]
    pub shaping: ShapingArgs,
}

/// A location's trail root: `…/AWSLogs` given by mistake means its parent.
pub(crate) fn trail_root(location: Location) -> Location {
    match location {
        Location::S3 { bucket, prefix } if prefix == "AWSLogs" || prefix.ends_with("/AWSLogs") => {
            let prefix = prefix.trim_end_matches("AWSLogs").trim_end_matches('/').to_string();
            Location::S3 { bucket, prefix }
        }
        Location::Local(path) if path.file_name().is_some_and(|n| n == "AWSLogs") => {
            Location::Local(path.parent().map(PathBuf::from).unwrap_or_default())
        }
        other => other,
    }
}

/// The datasets a backfill can list (`--dataset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackfillDataset {
    Events,
    Insights,
    Digests,
    All,
}

fn dataset(arg: BackfillDataset) -> DatasetChoice {
    match arg {
        BackfillDataset::Events => DatasetChoice::Events,
        BackfillDataset::Insights => DatasetChoice::Insights,
        BackfillDataset::Digests => DatasetChoice::Digests,
        BackfillDataset::All => DatasetChoice::All,
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn backfill(args: &BackfillArgs) -> Result<ExitCode> {
    let selection = Selection { dataset: dataset(args.dataset), ..args.trail.selection()? };
    if args.checkpoint_objects == 0 {
        bail!("--checkpoint-objects must be at least 1");
    }
    let source = trail_root(Location::parse(&args.source)?);
    let dest = Location::parse(&args.dest)?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let concurrency = match args.concurrency {
        Some(0) => bail!("--concurrency must be at least 1"),
        Some(n) => n,
        // Network-bound when S3 is involved: several objects in flight per core.
        None if source.is_s3() || dest.is_s3() => (cpus * 4).clamp(4, 64),
        None => cpus,
    };
    let writer = args.writer.settings()?;
    let shaping = args.shaping.shaping()?;
    if args.via_batch_operations && !shaping.is_empty() {
        bail!(
            "with --via-batch-operations the Lambda converts: set PARQUETRAIL_SHAPING on the function (docs/SHAPING.md) instead of shaping flags"
        );
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let settings = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let job = Backfill {
            source: source.storage(&settings).await,
            source_prefix: source.prefix().to_string(),
            dest: dest.storage(&settings).await,
            dest_prefix: dest.prefix().to_string(),
            selection,
            options: Options { writer, shaping, ..Options::default() },
            concurrency,
            checkpoint: Checkpoint {
                objects: args.checkpoint_objects,
                interval: Duration::from_secs(args.checkpoint_seconds.max(1)),
            },
        };
        if args.via_batch_operations {
            batch_operations(args, &job, &source, &dest, &settings).await
        } else if args.dry_run {
            dry_run(args, &job, &source, &dest, cpus).await
        } else {
            parquetrail_ingest::ledger::record_shaping(job.dest.as_ref(), &job.dest_prefix, &job.options.shaping)
                .await
                .with_context(|| format!("recording the shaping rules in {dest}"))?;
            run(args, &job, &source, &dest).await
        }
    })
}

/// Draws progress until `done` fires: a bar on a terminal, a plain line every 10 s otherwise.
fn watch(progress: Arc<Progress>, done: CancellationToken, what: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let terminal = io::stderr().is_terminal();
        let bar = if terminal {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let every = if terminal { Duration::from_millis(200) } else { Duration::from_secs(10) };
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tick.tick() => {}
            }
            let p = &progress;
            let listed = Progress::get(&p.listed);
            let total_bytes = Progress::get(&p.listed_bytes);
            let skipped_bytes = Progress::get(&p.already_done_bytes);
            let processed = Progress::get(&p.processed);
            let bytes = Progress::get(&p.processed_bytes);
            let listing = if p.listing_done.load(Ordering::Relaxed) { "" } else { "+ (listing)" };
            let msg = format!(
                "{processed}/{}{listing} objects, {} records{}{}",
                listed - Progress::get(&p.already_done),
                Progress::get(&p.records),
                match Progress::get(&p.already_done) {
                    0 => String::new(),
                    n => format!(", {n} already done"),
                },
                match Progress::get(&p.failed) {
                    0 => String::new(),
                    n => format!(", {n} FAILED"),
                },
            );
            if terminal {
                bar.set_length(total_bytes - skipped_bytes);
                bar.set_position(bytes);
                bar.set_message(msg);
            } else {
                let secs = started.elapsed().as_secs_f64();
                let rate = bytes as f64 / secs.max(0.001);
                let left = (total_bytes - skipped_bytes).saturating_sub(bytes) as f64;
                let eta = if rate > 0.0 && p.listing_done.load(Ordering::Relaxed) {
                    format!(", ETA {}", duration(left / rate))
                } else {
                    String::new()
                };
                eprintln!("{what}: {msg}, {:.2} MB/s{eta}, {} elapsed", rate / 1e6, duration(secs));
            }
        }
        bar.finish_and_clear();
    })
}

/// Ctrl-C: stop taking new objects, finish those in flight, write the ledger. A second Ctrl-C
/// exits at once (safe too: anything unrecorded is redone, identically, by the next run).
fn on_interrupt(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing the objects in flight and writing the ledger (Ctrl-C again to quit now)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

async fn run(args: &BackfillArgs, job: &Backfill, source: &Location, dest: &Location) -> Result<ExitCode> {
    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    on_interrupt(cancel.clone());
    let drawing = CancellationToken::new();
    let watcher = watch(progress.clone(), drawing.clone(), "backfill");
    let report = job.run(progress, cancel).await;
    drawing.cancel();
    let _ = watcher.await;
    let report = report.with_context(|| format!("backfill from {source} into {dest}"))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, source, dest)?;
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if !report.failures.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(r: &Report, source: &Location, dest: &Location) -> Result<()> {
    let rate = if r.seconds > 0.0 { r.totals.bytes_in as f64 / 1e6 / r.seconds } else { 0.0 };
    outln!(
        "{} {} of {} objects in range in {} ({:.1} MB/s stored, {:.0} MB/s of JSON)",
        if r.interrupted { "Interrupted after converting" } else { "Converted" },
        r.totals.converted,
        r.listed,
        duration(r.seconds),
        rate,
        if r.seconds > 0.0 { r.totals.json_bytes as f64 / 1e6 / r.seconds } else { 0.0 },
    );
    outln!(
        "  from      {source}: {} account(s), {} region(s){}, {} day prefix(es), {} list request(s)",
        r.accounts.len(),
        r.regions.len(),
        if r.orgs.is_empty() { String::new() } else { format!(", organization {}", r.orgs.join(", ")) },
        r.days,
        r.list_requests
    );
    outln!("  already   {} object(s) done by earlier runs (ledger), skipped", r.already_done);
    if r.totals.skipped > 0 {
        outln!("  skipped   {} object(s) that are neither log nor digest files", r.totals.skipped);
    }
    outln!(
        "  records   {} = {} rows + {} quarantined + {} filtered  {}",
        r.totals.records,
        r.totals.rows,
        r.totals.quarantined,
        r.totals.filtered,
        if r.totals.reconciles() { "(reconciled)" } else { "(DOES NOT RECONCILE)" }
    );
    outln!("  output    {} of Parquet in {} file(s) under {dest}", mb(r.totals.bytes_out), r.totals.outputs);
    outln!(
        "  ledger    {} segment(s) written under {}",
        r.ledger_segments_written,
        join(&dest.to_string(), "_ledger/")
    );
    if !r.failures.is_empty() {
        outln!("  FAILED    {} object(s) or prefix(es):", r.failures.len());
        for f in &r.failures {
            let hint = if f.retryable { " [rerun to retry]" } else { "" };
            outln!("    {}{hint}\n      {}", f.key, f.reason);
        }
    }
    if r.interrupted {
        outln!("  Rerun the same command to finish the rest.");
    }
    Ok(())
}

async fn dry_run(
    args: &BackfillArgs,
    job: &Backfill,
    source: &Location,
    dest: &Location,
    cpus: usize,
) -> Result<ExitCode> {
    let progress = Arc::new(Progress::default());
    let drawing = CancellationToken::new();
    let watcher = watch(progress.clone(), drawing.clone(), "listing");
    let plan = job.plan(progress).await;
    drawing.cancel();
    let _ = watcher.await;
    let plan = plan.with_context(|| format!("listing {source}"))?;
    let estimate = Estimate::of(&plan, job.concurrency.min(cpus));
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json!({ "plan": plan, "estimate": estimate }))?);
    } else {
        print_plan(&plan, &estimate, source, dest)?;
    }
    Ok(if plan.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Time and cost estimates of a plan, from the documented constants.
#[derive(Debug, serde::Serialize)]
struct Estimate {
    local_seconds: f64,
    local_cores: usize,
    lambda_gb_seconds: f64,
    lambda_usd: f64,
    batch_operations_usd: f64,
}

impl Estimate {
    fn of(plan: &Plan, cores: usize) -> Estimate {
        let local_seconds = plan.bytes as f64 / (GZIP_BYTES_PER_CORE_SECOND * cores.max(1) as f64);
        let lambda_seconds = plan.objects as f64 * LAMBDA_SECONDS_PER_OBJECT
            + plan.bytes as f64 / (GZIP_BYTES_PER_CORE_SECOND * LAMBDA_VCPU);
        let lambda_gb_seconds = lambda_seconds * LAMBDA_MEMORY_GB;
        Estimate {
            local_seconds,
            local_cores: cores.max(1),
            lambda_gb_seconds,
            lambda_usd: lambda_gb_seconds * LAMBDA_ARM64_USD_PER_GB_SECOND
                + plan.objects as f64 * LAMBDA_USD_PER_REQUEST,
            batch_operations_usd: BATCH_USD_PER_JOB + plan.objects as f64 * BATCH_USD_PER_OBJECT,
        }
    }
}

fn print_plan(plan: &Plan, e: &Estimate, source: &Location, dest: &Location) -> Result<()> {
    outln!("Plan (dry run, nothing written): {source} -> {dest}");
    outln!(
        "  found     {} account(s), {} region(s){}, {} day prefix(es) in range ({} list requests)",
        plan.accounts.len(),
        plan.regions.len(),
        if plan.orgs.is_empty() { String::new() } else { format!(", organization {}", plan.orgs.join(", ")) },
        plan.days,
        plan.list_requests
    );
    outln!("  in range  {} object(s), {}", plan.listed, mb(plan.listed_bytes));
    outln!("  done      {} object(s) already in the ledger", plan.already_done);
    outln!("  to do     {} object(s), {}", plan.objects, mb(plan.bytes));
    outln!(
        "  here      about {} on {} core(s) at {:.1} MB/s per core",
        duration(e.local_seconds),
        e.local_cores,
        GZIP_BYTES_PER_CORE_SECOND / 1e6
    );
    outln!(
        "  Lambda    about {:.0} GB-s, ${:.2} (arm64, 1024 MB) + ${:.2} S3 Batch Operations",
        e.lambda_gb_seconds,
        e.lambda_usd,
        e.batch_operations_usd
    );
    for f in &plan.failures {
        outln!("  FAILED to list {f}");
    }
    Ok(())
}

/// The `arn:<partition>:` of a function ARN (`aws`, `aws-cn`, `aws-us-gov`), `aws` otherwise.
fn partition(function_arn: Option<&str>) -> &str {
    function_arn.and_then(|a| a.strip_prefix("arn:")).and_then(|a| a.split(':').next()).unwrap_or("aws")
}

/// The CreateJob request, in the AWS CLI's `--cli-input-json` shape (the API's own field names).
#[allow(clippy::too_many_arguments)]
pub fn create_job_request(
    account_id: &str,
    function_arn: &str,
    role_arn: &str,
    manifest_bucket: &str,
    manifest_key: &str,
    manifest_etag: &str,
    report_bucket: &str,
    report_prefix: &str,
    destination: &str,
    dataset: &str,
    priority: i32,
    token: &str,
    description: &str,
) -> Value {
    let partition = partition(Some(function_arn));
    json!({
        "AccountId": account_id,
        "ConfirmationRequired": false,
        "Operation": {"LambdaInvoke": {
            "FunctionArn": function_arn,
            "InvocationSchemaVersion": "2.0",
            "UserArguments": {"destination": destination, "dataset": dataset}
        }},
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": format!("arn:{partition}:s3:::{manifest_bucket}/{manifest_key}"), "ETag": manifest_etag}
        },
        "Report": {
            "Bucket": format!("arn:{partition}:s3:::{report_bucket}"),
            "Prefix": report_prefix,
            "Format": "Report_CSV_20180820",
            "Enabled": true,
            "ReportScope": "AllTasks"
        },
        "Priority": priority,
        "RoleArn": role_arn,
        "ClientRequestToken": token,
        "Description": description
    })
}

async fn batch_operations(
    args: &BackfillArgs,
    job: &Backfill,
    source: &Location,
    dest: &Location,
    settings: &S3Settings,
) -> Result<ExitCode> {
    let Location::S3 { bucket: source_bucket, .. } = source else {
        bail!("--via-batch-operations needs an s3:// --source (Batch Operations reads the trail bucket)");
    };
    let Location::S3 { bucket: dest_bucket, prefix: dest_prefix } = dest else {
        bail!("--via-batch-operations needs an s3:// --dest (the Lambda writes to S3)");
    };
    if args.submit && (args.function_arn.is_none() || args.role_arn.is_none() || args.account_id.is_none()) {
        bail!("--submit needs --function-arn, --role-arn and --account-id");
    }
    let run = run_id();
    let batch_dir = join(dest_prefix, &format!("_batch/{run}"));
    let manifest_location = match &args.manifest {
        Some(m) => Location::parse(m)?,
        None => Location::S3 { bucket: dest_bucket.clone(), prefix: format!("{batch_dir}/manifest.csv") },
    };
    let Location::S3 { bucket: manifest_bucket, prefix: manifest_key } = &manifest_location else {
        bail!("--manifest must be an s3:// URL (Batch Operations reads it from S3)");
    };
    let (report_bucket, report_prefix) = match &args.report {
        Some(r) => match Location::parse(r)? {
            Location::S3 { bucket, prefix } => (bucket, prefix),
            Location::Local(_) => bail!("--report must be an s3:// URL"),
        },
        None => (dest_bucket.clone(), format!("{batch_dir}/report")),
    };
    let store: Arc<dyn Storage> = manifest_location.storage(settings).await;
    let progress = Arc::new(Progress::default());
    let drawing = CancellationToken::new();
    let watcher = watch(progress.clone(), drawing.clone(), "listing");
    let manifest = job.manifest(store, manifest_key, progress).await;
    drawing.cancel();
    let _ = watcher.await;
    let manifest: Manifest = manifest.with_context(|| format!("writing the manifest {manifest_location}"))?;
    let _ = source_bucket;
    outln!(
        "Wrote the manifest s3://{manifest_bucket}/{manifest_key}: {} object(s), {} (format S3BatchOperations_CSV_20180820, Bucket,Key)",
        manifest.objects,
        mb(manifest.bytes)
    );
    for f in &manifest.failures {
        outln!("  FAILED to list {f}");
    }
    if manifest.objects == 0 {
        outln!("Nothing to do: no object in range is missing from the archive's ledger.");
        return Ok(if manifest.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let request = create_job_request(
        args.account_id.as_deref().unwrap_or("ACCOUNT_ID"),
        args.function_arn.as_deref().unwrap_or("FUNCTION_ARN"),
        args.role_arn.as_deref().unwrap_or("ROLE_ARN"),
        manifest_bucket,
        manifest_key,
        manifest.etag.as_deref().map(|e| e.trim_matches('"')).unwrap_or("MANIFEST_ETAG"),
        &report_bucket,
        &report_prefix,
        &dest.to_string(),
        job.selection.dataset.as_str(),
        args.priority,
        &run,
        &format!("parquetrail backfill {run}"),
    );
    if args.submit {
        let id = crate::batch_job::submit(&request).await?;
        outln!("Submitted S3 Batch Operations job {id}.");
        outln!(
            "Follow it with: aws s3control describe-job --account-id {} --job-id {id}",
            args.account_id.as_deref().unwrap_or_default()
        );
    } else {
        outln!(
            "CreateJob request (save as create-job.json, then: aws s3control create-job --cli-input-json file://create-job.json):"
        );
        outln!("{}", serde_json::to_string_pretty(&request)?);
    }
    outln!(
        "The completion report lands under s3://{report_bucket}/{report_prefix}/job-<id>/results/ as CSV: \
         Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage. Rerunning this command lists only the \
         objects still missing from the archive's ledger."
    );
    Ok(if manifest.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_roots_and_partitions() {
        let cases = [
            ("s3://bkt/AWSLogs", "s3://bkt"),
            ("s3://bkt/x/AWSLogs/", "s3://bkt/x"),
            ("s3://bkt/x", "s3://bkt/x"),
            ("trail/AWSLogs", "trail"),
            ("trail", "trail"),
        ];
        for (given, want) in cases {
            assert_eq!(trail_root(Location::parse(given).unwrap()).to_string(), want, "{given}");
        }
        assert_eq!(partition(Some("arn:aws-cn:lambda:cn-north-1:1:function:f")), "aws-cn");
        assert_eq!(partition(None), "aws");
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(3725.0), "1h02m");
    }

    #[test]
    fn dataset_names_are_the_ones_the_lambda_parses() {
        for arg in BackfillDataset::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(dataset(*arg).as_str(), name, "{arg:?}");
            assert_eq!(name.parse::<DatasetChoice>(), Ok(dataset(*arg)), "{arg:?}");
        }
    }

    #[test]
    fn create_job_request_is_schema_2_with_user_arguments() {
        let r = create_job_request(
            "111122223333",
            "arn:aws:lambda:us-east-1:111122223333:function:parquetrail",
            "arn:aws:iam::111122223333:role/batch",
            "archive",
            "lake/_batch/r/manifest.csv",
            "abc",
            "archive",
            "lake/_batch/r/report",
            "s3://archive/lake",
            "events",
            10,
            "r",
            "d",
        );
        assert_eq!(r["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"], "2.0");
        assert_eq!(
            r["Operation"]["LambdaInvoke"]["UserArguments"],
            json!({"destination": "s3://archive/lake", "dataset": "events"})
        );
        assert_eq!(r["Manifest"]["Location"]["ObjectArn"], "arn:aws:s3:::archive/lake/_batch/r/manifest.csv");
        assert_eq!(r["Manifest"]["Spec"]["Fields"], json!(["Bucket", "Key"]));
        assert_eq!(r["Report"]["Bucket"], "arn:aws:s3:::archive");
        let plan = Plan { objects: 1_000_000, bytes: 10_000_000_000, ..Plan::default() };
        let e = Estimate::of(&plan, 2);
        assert!(e.lambda_usd > 1.0 && e.lambda_usd < 100.0, "{e:?}");
        assert!((e.batch_operations_usd - 1.25).abs() < 1e-9);
    }
}
