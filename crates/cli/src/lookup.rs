//! `parquetrail lookup`: CloudTrail's Event history over the archive, from a terminal or a script.
//!
//! Glue only: flags → [`LookupQuery`], the reader of `parquetrail-ingest` for the page, and the
//! core's [`lookup_event`] for each hit, printed as a table, the `LookupEvents` JSON shape,
//! JSON Lines or CSV.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use parquetrail_core::lookup::{self, Bound, LookupEvent, LookupQuery, lookup_event, parse_attribute, parse_time};
use parquetrail_ingest::reader::{ArchiveReader, ReadStats};
use parquetrail_ingest::s3::S3Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, as the console's Event history (the default on a terminal).
    Table,
    /// LookupEvents' response: {"Events":[...],"NextToken":...} (the default otherwise).
    Json,
    /// One LookupEvents event per line.
    Jsonl,
    /// The console's columns, cells guarded against spreadsheet formulas.
    Csv,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    # Who deleted that bucket, last year included (newest first):\n  \
    parquetrail lookup ./archive --attribute EventName=DeleteBucket --start 400d\n\n  \
    # What one role session did on one day, as JSON for a script:\n  \
    parquetrail lookup s3://my-archive/cloudtrail --attribute Username=alice-session \\\n      \
    --start 2024-03-01 --end 2024-03-01 --format json\n\n  \
    # Attributes AND together; our own keys go beyond CloudTrail's:\n  \
    parquetrail lookup ./archive -a EventSource=iam.amazonaws.com -a ErrorCode=AccessDenied --account 111122223333\n\n  \
    # The next page, with the token the previous page printed:\n  \
    parquetrail lookup ./archive -a EventName=ConsoleLogin --next-token <TOKEN>\n\n  \
    # Too large for one machine? The same lookup as Athena SQL over the `parquetrail ddl` tables:\n  \
    parquetrail lookup ./archive -a Username=root --start 2023-01-01 --sql\n\n\
    Attribute keys (case-sensitive, as CloudTrail spells them): EventId, EventName, ReadOnly, Username, \
    ResourceType, ResourceName, EventSource, AccessKeyId; and ours: AccountId, AwsRegion, SourceIpAddress, \
    ErrorCode. Username follows the rules of docs/LOOKUP.md (the session name for assumed roles, root, the \
    IAM user's name, ...).\n\n\
    Times: now, a date (2024-03-01: the whole day, as --start its first instant, as --end its last), \
    RFC 3339 (2024-03-01T12:00:00Z), or a time ago (90d, 12h, 30m). Both ends are inclusive.\n\n\
    Like CloudTrail's Event history, data events (S3 object reads, Lambda invokes, ...) are left out unless \
    --include-data-events is given.")]
pub struct LookupArgs {
    /// The archive: a directory written by `parquetrail convert`, or s3://bucket[/prefix].
    pub archive: String,
    /// KEY=VALUE: only events whose attribute KEY equals VALUE exactly (repeatable; all must hold).
    #[arg(long = "attribute", short = 'a', value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
    /// Earliest event time, inclusive (default: the archive's beginning).
    #[arg(long)]
    pub start: Option<String>,
    /// Latest event time, inclusive (default: no limit).
    #[arg(long)]
    pub end: Option<String>,
    /// Only this account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only this region (repeatable).
    #[arg(long)]
    pub region: Vec<String>,
    /// Events per page.
    #[arg(long, default_value_t = LookupQuery::DEFAULT_MAX_RESULTS)]
    pub max_results: usize,
    /// The page after the one that printed this token (same other flags).
    #[arg(long)]
    pub next_token: Option<String>,
    /// Look up Insights events (then only EventId, EventName and EventSource may be used).
    #[arg(long)]
    pub insights: bool,
    /// Include data and network activity events, which CloudTrail's Event history leaves out.
    #[arg(long)]
    pub include_data_events: bool,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Print what was read (files, requests, bytes) to standard error.
    #[arg(long)]
    pub stats: bool,
    /// Print the equivalent Athena query instead of running the lookup.
    #[arg(long)]
    pub sql: bool,
    /// Database of the tables, for --sql (as given to `parquetrail ddl --database`).
    #[arg(long, default_value = "cloudtrail")]
    pub database: String,
    /// Prefix of the table names, for --sql (as given to `parquetrail ddl --table-prefix`).
    #[arg(long, default_value = "")]
    pub table_prefix: String,
    /// Manifests and files fetched at once.
    #[arg(long, default_value_t = ArchiveReader::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

impl LookupArgs {
    /// The query these flags ask for, with relative times counted back from `now`.
    pub fn query(&self, now: DateTime<Utc>) -> Result<LookupQuery> {
        let start = match &self.start {
            Some(t) => parse_time(t, now, Bound::Start).context("--start")?,
            None => DateTime::UNIX_EPOCH,
        };
        let end = match &self.end {
            Some(t) => parse_time(t, now, Bound::End).context("--end")?,
            // Not "now": a NextToken is bound to the parameters, and "now" moves between pages.
            None => open_end(),
        };
        let mut query = LookupQuery::new(start, end);
        for a in &self.attributes {
            query.attributes.push(parse_attribute(a).context("--attribute")?);
        }
        query.accounts.clone_from(&self.account);
        query.regions.clone_from(&self.region);
        query.insights = self.insights;
        query.include_data_events = self.include_data_events;
        query.max_results = self.max_results;
        if query.start > query.end {
            bail!(
                "--start {} is after --end {}",
                query.start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                query.end.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
        query.validate().context("--max-results / --attribute")?;
        Ok(query)
    }
}

/// The end of a lookup without `--end`: the last instant of year 9999, which every engine
/// (and `--sql`'s date strings) can still represent.
fn open_end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn lookup(args: &LookupArgs) -> Result<ExitCode> {
    let query = args.query(Utc::now())?;
    if args.sql {
        outln!("{}", query.athena_sql(&args.database, &args.table_prefix));
        return Ok(ExitCode::SUCCESS);
    }
    let cursor = args.next_token.as_deref().map(|t| lookup::parse_next_token(&query, t)).transpose()?;
    let location = crate::archive_location(&args.archive)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let page = runtime.block_on(async {
        let s3 = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let storage = location.storage(&s3).await;
        let reader = ArchiveReader::new(storage, location.prefix()).with_concurrency(args.concurrency);
        reader.lookup(&query, cursor.as_ref()).await.with_context(|| format!("looking up in {location}"))
    })?;
    let events: Vec<LookupEvent> = page.events.iter().map(lookup_event).collect();
    let token = page.next.as_ref().map(|c| lookup::next_token(&query, c));
    let format =
        args.format.unwrap_or(if io::stdout().is_terminal() { OutputFormat::Table } else { OutputFormat::Json });
    let mut out = io::BufWriter::new(io::stdout().lock());
    match format {
        OutputFormat::Json => {
            #[derive(serde::Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Response<'a> {
                events: &'a [LookupEvent],
                #[serde(skip_serializing_if = "Option::is_none")]
                next_token: Option<&'a str>,
            }
            serde_json::to_writer_pretty(&mut out, &Response { events: &events, next_token: token.as_deref() })?;
            writeln!(out)?;
        }
        OutputFormat::Jsonl => {
            for e in &events {
                serde_json::to_writer(&mut out, e)?;
                writeln!(out)?;
            }
        }
        OutputFormat::Csv => write_csv(&mut out, &page.events)?,
        OutputFormat::Table => write_table(&mut out, &events)?,
    }
    out.flush()?;
    drop(out);
    if let Some(token) = &token
        && matches!(format, OutputFormat::Table | OutputFormat::Csv | OutputFormat::Jsonl)
    {
        eprintln!("More events: add --next-token {token}");
    }
    if args.stats {
        print_stats(&page.stats, events.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(s: &ReadStats, events: usize) {
    eprintln!(
        "{events} event(s); read {} partition(s), {} file(s), {} of {} row group(s), {} bytes in {} request(s); \
         {} file(s) ruled out by {} lookup index(es)",
        s.partitions, s.files, s.row_groups_read, s.row_groups, s.bytes, s.requests, s.files_skipped, s.indexes
    );
}

fn time(e: &LookupEvent) -> String {
    e.event_time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn joined(e: &LookupEvent, f: fn(&lookup::Resource) -> Option<&str>) -> String {
    e.resources.iter().filter_map(f).collect::<Vec<_>>().join(", ")
}

/// The console's columns, one event per row, cells guarded against spreadsheet formulas (the
/// web console's download writes the same).
fn write_csv(out: &mut impl Write, rows: &[parquetrail_core::record::Row<'_>]) -> Result<()> {
    parquetrail_server::write_events_csv(out, rows)?;
    Ok(())
}

/// Aligned columns; long cells are cut so a row fits a line.
pub fn write_table(out: &mut impl Write, events: &[LookupEvent]) -> Result<()> {
    const WIDTH: usize = 40;
    let header = ["Event time", "Event name", "User name", "Event source", "Resource type", "Resource name"];
    let rows: Vec<[String; 6]> = events
        .iter()
        .map(|e| {
            let s = |v: Option<&str>| v.unwrap_or("-").to_string();
            [
                time(e),
                s(e.event_name.as_deref()),
                s(e.username.as_deref()),
                s(e.event_source.as_deref()),
                joined(e, |r| r.resource_type.as_deref()),
                joined(e, |r| r.resource_name.as_deref()),
            ]
        })
        .map(|cells| {
            cells.map(|c| {
                let c = printable(&c);
                if c.chars().count() > WIDTH {
                    format!("{}…", c.chars().take(WIDTH - 1).collect::<String>())
                } else {
                    c
                }
            })
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for r in &rows {
        writeln!(out, "{}", line(&r.each_ref().map(String::as_str)))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no events)")?;
    }
    Ok(())
}

/// Control characters (a crafted value) would redraw the terminal: they are shown escaped.
fn printable(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    for c in cell.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
