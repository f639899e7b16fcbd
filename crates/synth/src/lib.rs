//! Deterministic, realistic synthetic CloudTrail deliveries.
//!
//! `parquetrail-synth` writes what an S3 bucket receiving CloudTrail logs looks like: gzip files
//! of minified `{"Records":[…]}` under
//! `[prefix/]AWSLogs/[o-id/]<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz`,
//! plus `CloudTrail-Insight/` files. It drives the CLI's `generate` command, the README demo,
//! tests and benchmarks, so the data is shaped like production trails at the byte level:
//!
//! * 58 services and over 500 API names, weighted like busy accounts (S3/DynamoDB/Lambda data
//!   events, KMS and STS dominate); every identity type CloudTrail documents, including
//!   session contexts, `invokedBy`, `onBehalfOf`, `inScopeOf`, web-identity federation;
//! * errors (~7%: AccessDenied with the real message shape, throttling, not-found), TLS details,
//!   VPC endpoints, console sessions, `addendum`, shared event ids, resources arrays;
//! * free-form bodies with nested objects, arrays, integers, decimals (`1.50`) and exponents
//!   (`1e3`), escapes (`\"`, `\n`, `\u00e9`) and raw UTF-8, plus a few fields no schema knows
//!   yet (top-level `eventAnnotation`, `userIdentity.sessionContext.futureField`);
//! * heavy-tailed file sizes (most files hold a handful of records, a few hold thousands),
//!   event times up to 15 minutes before delivery (so files delivered just after midnight hold
//!   the previous day's events) and ~0.5% late records delivered hours or days after the fact.
//!
//! Everything is a pure function of [`TreeOptions`]: the same options give byte-identical files.
//! Records are built as JSON text rather than through `serde_json::Value`, because CloudTrail's
//! key order and number lexemes matter to the converters under test, and because text building
//! is what keeps generation at several hundred MB/s of JSON per core; gzip (level 6 by default,
//! see [`TreeOptions::gzip_level`]) runs on worker threads and is the usual bottleneck.
//!
//! # Example
//!
//! ```
//! use parquetrail_synth::{generate_files, write_tree, TreeOptions};
//!
//! let opts = TreeOptions { seed: 7, target_json_bytes: 300_000, ..TreeOptions::default() };
//!
//! // In memory…
//! let files: Vec<_> = generate_files(&opts).collect();
//! let json: u64 = files.iter().map(|f| f.json_bytes as u64).sum();
//! assert!(json >= 300_000);
//! assert!(files[0].key.starts_with("AWSLogs/"));
//!
//! // …or on disk, with identical content.
//! let dir = std::env::temp_dir().join(format!("synth-doc-{}", std::process::id()));
//! let summary = write_tree(&dir, &opts)?;
//! assert_eq!(summary.files, files.len());
//! assert_eq!(summary.json_bytes, json);
//! let first = dir.join(&summary.keys[0]);
//! assert!(first.is_file());
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod activity;
mod agent;
mod body;
mod catalog;
pub mod digest;
mod identity;
mod ids;
mod insight;
mod json;
mod names;
mod record;
mod time;
mod tree;

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};

pub use tree::SynthFiles;

/// What tree to generate. All fields have sensible defaults; see [`TreeOptions::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct TreeOptions {
    /// Seed for everything (account ids, schedule, records, file-name suffixes).
    pub seed: u64,
    /// Stop after the file that brings the uncompressed JSON total to at least this many bytes
    /// (open insights are then closed with one small `End` file each). `0` writes nothing.
    pub target_json_bytes: u64,
    /// Number of accounts (12-digit ids derived from the seed). Default 3.
    pub accounts: usize,
    /// Regions that deliver logs. Default `us-east-1`, `us-west-2`, `eu-west-1`; the first is
    /// the busiest.
    pub regions: Vec<String>,
    /// Organization trail: `Some("o-abc123def4")` gives `AWSLogs/<o-id>/<acct>/CloudTrail/…`.
    pub org_id: Option<String>,
    /// Trail prefix before `AWSLogs/` (leading/trailing `/` ignored; may contain `/`).
    pub prefix: Option<String>,
    /// First delivery time. Default 2024-03-01T00:00:00Z, so the first files already hold
    /// events from the previous day.
    pub start: DateTime<Utc>,
    /// Also write CloudTrail Insights files (`CloudTrail-Insight/`). Default true.
    pub insights: bool,
    /// Minutes between delivery rounds. CloudTrail delivers every 5 minutes (the default);
    /// raise it to spread a small tree over many days. File-name timestamps stay on 5-minute
    /// boundaries.
    pub interval_minutes: u32,
    /// gzip level (0-9) of the written files. Default 6, like common gzip writers.
    pub gzip_level: u32,
    /// Spread the tree over this many days from `start`, whatever its size: each round is spaced
    /// so that, at the JSON bytes per round seen so far, the target is reached at
    /// `start + span_days`, and `interval_minutes` is then ignored. Lookups and compaction over
    /// months of history need trees like that without the size deliveries every 5 minutes
    /// would take. `None` (the default): one round every `interval_minutes`.
    pub span_days: Option<u32>,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            seed: 0,
            target_json_bytes: 16 << 20,
            accounts: 3,
            regions: ["us-east-1", "us-west-2", "eu-west-1"].map(String::from).to_vec(),
            org_id: None,
            prefix: None,
            start: Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
            insights: true,
            interval_minutes: 5,
            gzip_level: 6,
            span_days: None,
        }
    }
}

/// What [`write_tree`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSummary {
    /// Files written (log and insight files).
    pub files: usize,
    /// Records in all files (including insight records).
    pub records: u64,
    /// Uncompressed JSON bytes of all files.
    pub json_bytes: u64,
    /// Compressed bytes on disk.
    pub gzip_bytes: u64,
    /// Insight files among `files`.
    pub insight_files: usize,
    /// Insight records among `records`.
    pub insight_records: u64,
    /// Account ids of the tree.
    pub accounts: Vec<String>,
    /// Regions of the tree.
    pub regions: Vec<String>,
    /// Keys written, relative to the tree root, `/`-separated, sorted.
    pub keys: Vec<String>,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthFile {
    /// Object key relative to the bucket root (`/`-separated).
    pub key: String,
    /// The gzip-compressed `{"Records":[…]}` bytes.
    pub gz: Vec<u8>,
    /// Records in the file.
    pub records: usize,
    /// Uncompressed size in bytes.
    pub json_bytes: usize,
    /// An Insights file (under `CloudTrail-Insight/`).
    pub insight: bool,
}

impl SynthFile {
    /// The uncompressed JSON text.
    pub fn json(&self) -> String {
        let mut s = String::with_capacity(self.json_bytes);
        flate2::read::GzDecoder::new(&self.gz[..]).read_to_string(&mut s).expect("synthetic gzip is valid UTF-8 JSON");
        s
    }
}

/// Generates the files of a tree in delivery order without touching disk; the content is
/// identical to what [`write_tree`] writes for the same options.
pub fn generate_files(opts: &TreeOptions) -> SynthFiles {
    SynthFiles::new(opts)
}

/// Writes the tree under `dir` (created if missing) and summarises it. Keys are relative to
/// `dir`, `/`-separated, exactly CloudTrail's layout.
pub fn write_tree(dir: &Path, opts: &TreeOptions) -> std::io::Result<TreeSummary> {
    let files = generate_files(opts);
    let mut s =
        TreeSummary { accounts: files.accounts().to_vec(), regions: opts.regions.clone(), ..TreeSummary::default() };
    for f in files {
        let path = f.key.split('/').fold(dir.to_path_buf(), |p, part| p.join(part));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.gz)?;
        s.files += 1;
        s.records += f.records as u64;
        s.json_bytes += f.json_bytes as u64;
        s.gzip_bytes += f.gz.len() as u64;
        if f.insight {
            s.insight_files += 1;
            s.insight_records += f.records as u64;
        }
        s.keys.push(f.key);
    }
    s.keys.sort();
    Ok(s)
}

/// Where and when [`record`] places a synthetic call.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordContext {
    /// Recipient account (`recipientAccountId`), 12 digits.
    pub account_id: String,
    /// `awsRegion`.
    pub region: String,
    /// `eventTime` (whole seconds are used).
    pub event_time: DateTime<Utc>,
    /// Other accounts of the organisation, for cross-account callers and roles; the first is
    /// used as the management account. May be empty.
    pub org_accounts: Vec<String>,
}

impl RecordContext {
    /// A context with no other accounts.
    pub fn new(account_id: impl Into<String>, region: impl Into<String>, event_time: DateTime<Utc>) -> Self {
        RecordContext { account_id: account_id.into(), region: region.into(), event_time, org_accounts: Vec::new() }
    }
}

/// Appends one synthetic record as minified JSON text (CloudTrail key order, number lexemes
/// and escapes preserved) to `out`.
pub fn record_json(rng: &mut fastrand::Rng, ctx: &RecordContext, out: &mut String) {
    let mut j = json::Json::with_capacity(2048);
    let c = body::Ctx {
        account: &ctx.account_id,
        account_hash: ids::hash_str(&ctx.account_id),
        region: &ctx.region,
        event_secs: ctx.event_time.timestamp(),
        peers: &ctx.org_accounts,
        mgmt_account: ctx.org_accounts.first().unwrap_or(&ctx.account_id),
    };
    record::RecordWriter::default().write(&mut j, rng, &c, record::Flags::default());
    out.push_str(&j.buf);
}

/// One synthetic record as a `serde_json::Value`.
///
/// Convenient for unit tests of other crates. Note that a `Value` sorts object keys and
/// normalises numbers (`1.50` → `1.5`); use [`record_json`] when bytes matter.
pub fn record(rng: &mut fastrand::Rng, ctx: &RecordContext) -> serde_json::Value {
    let mut s = String::with_capacity(2048);
    record_json(rng, ctx, &mut s);
    serde_json::from_str(&s).expect("synthetic record is valid JSON")
}

/// `n` records as JSON text, deterministic in `seed`: three accounts, the default regions,
/// event times a few seconds apart from 2024-03-01T00:00:00Z.
pub fn sample_records_json(seed: u64, n: usize) -> Vec<String> {
    let opts = TreeOptions::default();
    let accounts: Vec<String> = (0..3).map(|i| ids::account_id(seed, i)).collect();
    let mut rng = fastrand::Rng::with_seed(ids::mix2(seed, 0x5A3));
    let mut ctx = RecordContext {
        account_id: accounts[0].clone(),
        region: opts.regions[0].clone(),
        event_time: opts.start,
        org_accounts: accounts.clone(),
    };
    (0..n)
        .map(|i| {
            ctx.account_id.clone_from(&accounts[rng.usize(0..accounts.len())]);
            ctx.region.clone_from(&opts.regions[rng.usize(0..opts.regions.len())]);
            ctx.event_time = opts.start + chrono::Duration::seconds(i as i64 * 7);
            let mut s = String::with_capacity(2048);
            record_json(&mut rng, &ctx, &mut s);
            s
        })
        .collect()
}

/// `n` records as `serde_json::Value`s (see [`sample_records_json`] for the text form).
pub fn sample_records(seed: u64, n: usize) -> Vec<serde_json::Value> {
    sample_records_json(seed, n)
        .iter()
        .map(|s| serde_json::from_str(s).expect("synthetic record is valid JSON"))
        .collect()
}
