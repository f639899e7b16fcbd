//! `parquetrail`: turn AWS CloudTrail log archives into a fast, queryable, Hive-partitioned
//! Parquet lake. See `parquetrail --help`.

/// Converting a tree opens thousands of small Parquet writers, each allocating and freeing many
/// short-lived buffers: mimalloc serves them faster than glibc (BENCHMARKS.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` that returns the write error (a closed pipe) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

mod backfill;
mod batch_job;
mod commands;
mod compact;
mod insights;
mod local;
mod lookup;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use parquetrail_core::encode::WriterSettings;
use parquetrail_ingest::listing::Selection;

#[derive(Debug, Parser)]
#[command(
    name = "parquetrail",
    version,
    about = "Turn AWS CloudTrail log archives into a fast, queryable, Hive-partitioned Parquet lake.",
    long_about = "Turn AWS CloudTrail log archives into a fast, queryable, Hive-partitioned Parquet lake.\n\n\
        CloudTrail delivers gzipped JSON files ({\"Records\":[...]}) every ~5 minutes per account and region. \
        parquetrail reads them as delivered, keeps every field (unknown ones too), and writes \
        events/account=<id>/region=<r>/date=YYYY-MM-DD/<source>.parquet, partitioned by each record's own eventTime. \
        Output names derive from the source object, so converting again never duplicates rows.\n\n\
        S3 is reached with the standard AWS credential chain and region; AWS_ENDPOINT_URL_S3 points it at any \
        S3-compatible endpoint (path-style addressing unless PARQUETRAIL_S3_PATH_STYLE=false).",
    after_help = "Try it without an AWS account:\n  parquetrail demo\n\n\
        Typical use:\n  parquetrail convert s3://my-trail-bucket/AWSLogs/o-abc123def4/ --out s3://my-archive/cloudtrail\n  aws s3 sync s3://my-trail-bucket/AWSLogs ./AWSLogs\n  parquetrail convert ./AWSLogs --out ./archive\n  parquetrail summary ./archive\n  parquetrail export ./archive --event-name ConsoleLogin --out logins.jsonl\n  parquetrail lookup ./archive --attribute Username=alice --start 400d"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a sample delivery tree, convert it and summarise the archive (no AWS needed).
    Demo(DemoArgs),
    /// Convert CloudTrail log files (files or directories) into a Parquet archive.
    Convert(ConvertArgs),
    /// Convert a trail's history for a date range, resumably (or as an S3 Batch Operations job).
    Backfill(backfill::BackfillArgs),
    /// Merge each partition's small files into a few large, sorted, deduplicated ones, swapped in
    /// through its manifest so readers never see a record twice.
    Compact(compact::CompactArgs),
    /// Prove a trail bucket, and the archive made from it, hold exactly what CloudTrail signed in its digest files.
    Verify(verify::VerifyArgs),
    /// Write a realistic synthetic CloudTrail delivery tree (for trying things, tests, benchmarks).
    Generate(GenerateArgs),
    /// Summarise what an archive holds: accounts, regions, time range, top events, errors, logins.
    Summary(SummaryArgs),
    /// Turn an archive (or a filtered part of it) back into CloudTrail JSON.
    Export(ExportArgs),
    /// Look events up as CloudTrail's Event history does (same attributes and answers), over the
    /// whole archive: newest first, a page at a time.
    Lookup(lookup::LookupArgs),
    /// Compute CloudTrail Insights (unusual API call and error rates) from the archive, in
    /// CloudTrail's own format, without paying per event.
    Insights(insights::InsightsArgs),
    /// Serve CloudTrail's LookupEvents API over the archive, for the AWS CLI, boto3 and the SDKs
    /// (`--endpoint-url`): Event history beyond 90 days, every account and Region.
    Serve(serve::ServeArgs),
    /// Print the Athena (or Spark) DDL for an archive: tables with partition projection, and a view with the official names.
    Ddl(DdlArgs),
    /// Print the column reference of the Parquet datasets (Markdown).
    Columns,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory for the sample tree (`trail/`) and the archive (`archive/`).
    #[arg(long, default_value = "parquetrail-demo")]
    pub dir: PathBuf,
    /// Size of the sample, in MB of uncompressed CloudTrail JSON.
    #[arg(long, default_value_t = 16)]
    pub mb: u64,
    /// Seed of the sample (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct WriterArgs {
    /// Parquet compression: zstd, zstd:LEVEL (1-22), snappy or none.
    #[arg(long, default_value = "zstd")]
    pub compression: String,
    /// Rows per Parquet row group (~40 MB of CloudTrail JSON at the default). Larger groups mean
    /// fewer of them for readers, and more memory while converting large files.
    #[arg(long, default_value_t = 32 * 1024)]
    pub row_group_rows: usize,
}

impl WriterArgs {
    /// The writer settings these flags ask for.
    pub fn settings(&self) -> anyhow::Result<WriterSettings> {
        let codec = self
            .compression
            .parse::<parquetrail_core::encode::Codec>()
            .map_err(|e| anyhow::anyhow!("--compression: {e}"))?;
        if self.row_group_rows == 0 {
            anyhow::bail!("--row-group-rows must be at least 1");
        }
        Ok(WriterSettings { codec, row_group_rows: self.row_group_rows, ..WriterSettings::default() })
    }
}

/// What to archive beyond what the trail recorded (opt-in; the archive is lossless without them).
#[derive(Debug, Args, Default)]
pub struct ShapingArgs {
    /// Drop known noise: KMS crypto calls and RDS Describe polling made by AWS services (the
    /// built-in rule set `noise`, versioned; `docs/SHAPING.md` lists its rules). Dropped records
    /// count as filtered, per rule.
    #[arg(long)]
    pub drop_noise: bool,
    /// Redact secrets that leak into records: session tokens in STS responses, S3's x-amz-id-2
    /// (the built-in set `secrets`). Values become "REDACTED"; redactions are counted per rule.
    #[arg(long)]
    pub redact_secrets: bool,
    /// A rule set of your own, as JSON (same form as the built-in ones; `docs/SHAPING.md`).
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub shaping_rules: Vec<PathBuf>,
}

impl ShapingArgs {
    /// The rule sets these flags ask for, checked.
    pub fn shaping(&self) -> anyhow::Result<parquetrail_core::shaping::Shaping> {
        use parquetrail_core::shaping::Shaping;
        let mut sets = Vec::new();
        for (on, name) in [(self.drop_noise, "noise"), (self.redact_secrets, "secrets")] {
            if on {
                sets.push(Shaping::builtin(name)?);
            }
        }
        for path in &self.shaping_rules {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--shaping-rules {}: {e}", path.display()))?;
            sets.push(
                Shaping::parse_set(&text).map_err(|e| anyhow::anyhow!("--shaping-rules {}: {e}", path.display()))?,
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for set in &sets {
            if !names.insert(set.name.clone()) {
                anyhow::bail!("two rule sets are named {:?}: give yours a name of its own", set.name);
            }
        }
        Ok(Shaping { sets })
    }
}

/// Which part of a trail to walk (`backfill`, `verify`): delivery dates and what is under `AWSLogs/`.
#[derive(Debug, Args)]
pub struct TrailArgs {
    /// First delivery date, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub start: Option<String>,
    /// Last delivery date, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub end: Option<String>,
    /// Only these accounts, comma-separated (default: every account found).
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Only these regions, comma-separated (default: every region found).
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Only this organization trail (o-…); default: every organization and account trail found.
    #[arg(long)]
    pub org: Option<String>,
}

impl TrailArgs {
    /// The listing selection these flags ask for (every dataset; callers narrow it).
    pub fn selection(&self) -> anyhow::Result<Selection> {
        let date = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<NaiveDate>> {
            value
                .as_deref()
                .map(|v| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .with_context(|| format!("{flag}: expected YYYY-MM-DD, got {v:?}"))
                })
                .transpose()
        };
        let names = |v: &[String]| v.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
        let selection = Selection {
            start: date("--start", &self.start)?,
            end: date("--end", &self.end)?,
            accounts: names(&self.accounts),
            regions: names(&self.regions),
            org: self.org.clone(),
            ..Selection::default()
        };
        if let (Some(s), Some(e)) = (selection.start, selection.end)
            && s > e
        {
            anyhow::bail!("--start {s} is after --end {e}");
        }
        if let Some(org) = &selection.org {
            check_org(org)?;
        }
        Ok(selection)
    }
}

/// An AWS Organizations ID as CloudTrail writes it in keys (`o-` and letters or digits).
pub fn check_org(org: &str) -> anyhow::Result<()> {
    if !org.starts_with("o-") || org.len() < 4 || !org[2..].chars().all(|c| c.is_ascii_alphanumeric()) {
        anyhow::bail!("--org must look like o-abc123def4, got {org:?}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Log files or directories (walked recursively), or s3://bucket[/prefix] (every object under
    /// it). Gzip and plain JSON are both read.
    #[arg(required = true, value_name = "SRC")]
    pub sources: Vec<String>,
    /// Archive to write: a directory (created if missing) or s3://bucket[/prefix]. Existing outputs
    /// are overwritten in place with identical bytes.
    #[arg(long, short)]
    pub out: String,
    /// Files converted in parallel (default: one per CPU).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Print the final summary as JSON on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub writer: WriterArgs,
    #[command(flatten)]
    pub shaping: ShapingArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write the tree into (keys as CloudTrail lays them out under AWSLogs/).
    pub dir: PathBuf,
    /// Size, in MB of uncompressed JSON.
    #[arg(long, default_value_t = 16)]
    pub mb: u64,
    /// Seed (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of accounts.
    #[arg(long, default_value_t = 3)]
    pub accounts: usize,
    /// Regions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,us-west-2,eu-west-1")]
    pub regions: Vec<String>,
    /// Lay the tree out as an organization trail with this ID (e.g. o-abc123def4).
    #[arg(long)]
    pub org: Option<String>,
    /// Trail key prefix before AWSLogs/.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Do not write CloudTrail-Insight files.
    #[arg(long)]
    pub no_insights: bool,
    /// First delivery day, YYYY-MM-DD (the first files also hold events of the day before).
    #[arg(long, default_value = "2024-03-01")]
    pub start: NaiveDate,
    /// Spread the tree over this many days from --start, whatever --mb is (default: a delivery
    /// round every 5 minutes, so the span follows from the size: about a week per GB).
    #[arg(long)]
    pub days: Option<u32>,
    /// Write activity for testing Insights instead: DAYS days from --start of realistic background
    /// (daily and weekly cycles, bursty services, many identities) with injected episodes
    /// (call-rate bursts, error spikes, drops to zero), listed in --episodes-file. Uses --seed,
    /// --accounts and --regions; ignores --mb.
    #[arg(long, value_name = "DAYS")]
    pub activity_days: Option<u32>,
    /// With --activity-days: episodes injected per account and Region, one a day from day 8.
    #[arg(long, default_value_t = 3)]
    pub episodes: usize,
    /// With --activity-days: where to list the injected episodes, one JSON object per line
    /// (default: DIR/injected-episodes.ndjson, which `convert DIR` skips).
    #[arg(long)]
    pub episodes_file: Option<PathBuf>,
    /// With --activity-days: multiplies every background rate (1: about 14,000 events a day per
    /// account and Region).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    Events,
    Insights,
    All,
}

impl DatasetArg {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            DatasetArg::Events => &["events"],
            DatasetArg::Insights => &["insights"],
            DatasetArg::All => &["events", "insights"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Amazon Athena: partitions found by projection.
    Athena,
    /// Apache Spark SQL with Hive support (EMR, Glue jobs, local): partitions registered by MSCK REPAIR TABLE.
    Spark,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  parquetrail ddl --location s3://my-archive/cloudtrail --accounts 111122223333,444455556666 > tables.sql\n\n\
    Run the statements in Athena. Partitions are found by projection, so new days, accounts and regions need no crawler. \
    Without --accounts, queries must name the account (WHERE account = '111122223333').\n\n\
    The view cloudtrail_logs is the events table plus the official Athena CloudTrail table's `timestamp` column \
    (yyyy/MM/dd), so queries written for AWS's documented table run unchanged. Filter on `date` (yyyy-MM-dd) when you can: \
    it is the column partitions are projected from.\n\n\
    Spark (a local archive, EMR, Glue):\n  parquetrail ddl --engine spark --location file:/data/archive > tables.sql"
)]
pub struct DdlArgs {
    /// The archive's root, as given to `convert --out` or PARQUETRAIL_DESTINATION (s3://bucket[/prefix];
    /// with --engine spark also s3a://, file:/ or hdfs://).
    #[arg(long)]
    pub location: String,
    /// The engine the statements are written for.
    #[arg(long, value_enum, default_value_t = EngineArg::Athena)]
    pub engine: EngineArg,
    #[arg(long, default_value = "cloudtrail")]
    pub database: String,
    /// Prefix of the table names: with "org_", the tables are org_events, org_insights and org_cloudtrail_logs.
    #[arg(long, default_value = "")]
    pub table_prefix: String,
    /// Accounts to enumerate, comma-separated (default: injected, named in each query).
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Regions to enumerate, comma-separated (default: every commercial and GovCloud region).
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// First day of the date projection (YYYY-MM-DD).
    #[arg(long, default_value = "2020-01-01")]
    pub since: String,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Archive directory written by `parquetrail convert`.
    pub archive: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One record per line.
    Jsonl,
    /// CloudTrail's {"Records":[...]} envelope.
    Records,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Archive directory written by `parquetrail convert`.
    pub archive: PathBuf,
    /// Output file, or - for standard output.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
    pub format: FormatArg,
    #[arg(long, value_enum, default_value_t = DatasetArg::All)]
    pub dataset: DatasetArg,
    /// Only these accounts (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only these regions (repeatable).
    #[arg(long)]
    pub region: Vec<String>,
    /// Events at or after this date or time (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Events before this date or time (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only these event names (repeatable), e.g. ConsoleLogin.
    #[arg(long)]
    pub event_name: Vec<String>,
    /// Only these event sources (repeatable), e.g. iam.amazonaws.com.
    #[arg(long)]
    pub event_source: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::demo(&args),
        Command::Convert(args) => {
            no_huge_pages();
            commands::convert(&args)
        }
        Command::Backfill(args) => backfill::backfill(&args),
        Command::Compact(args) => compact::compact(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Generate(args) => commands::generate(&args),
        Command::Summary(args) => commands::summary(&args),
        Command::Export(args) => commands::export(&args),
        Command::Lookup(args) => {
            no_huge_pages();
            lookup::lookup(&args)
        }
        Command::Insights(args) => insights::insights(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Ddl(args) => commands::ddl(&args),
        Command::Columns => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(parquetrail_core::schema::columns_markdown().as_bytes())
                .map(|_| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(code) => code,
        // The reader went away (`| head`): stop quietly, as Unix tools do.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// No transparent huge pages for this process. mimalloc asks for them on its segments, and the
/// kernel then zeroes 2 MiB at each first touch:
/// - a `lookup` lives a fraction of a second and touches a few MB; on a one-day lookup the
///   zeroing was 70% of the process's CPU time (BENCHMARKS.md, "After the page reads");
/// - a `convert` frees segments and touches new ones from file to file; on the 400 MB tree,
///   without huge pages `-j2` took 5-6% less wall time and `-j1` 1-4%, with about 40% less
///   system time and 20% less peak RSS, in four interleaved rounds of each (BENCHMARKS.md,
///   "Per-file system calls and the serial tail").
///
/// `serve` keeps them (a long-lived process reusing its memory; not measured).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // A kernel without the setting has nothing to turn off: the command runs the same.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// The archive a reading command was given: `s3://bucket/prefix`, or a local directory that must
/// exist (a typo would otherwise read as an empty archive).
fn archive_location(arg: &str) -> anyhow::Result<parquetrail_ingest::Location> {
    use parquetrail_ingest::Location;
    let location = Location::parse(arg)?;
    if let Location::Local(path) = &location
        && !path.is_dir()
    {
        anyhow::bail!("{}: no such archive directory", path.display());
    }
    Ok(location)
}
