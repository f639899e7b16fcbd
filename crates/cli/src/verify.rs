//! `parquetrail verify`: walk a trail's digest chains as `aws cloudtrail validate-logs` does,
//! hash every signed log file, and reconcile the archive's ledger with what was signed. The engine
//! is `parquetrail_ingest::verify`; this module is arguments, keys and the report.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use chrono::{DateTime, Utc};
use clap::Args;
use parquetrail_core::digest::{PublicKey, PublicKeys};
use parquetrail_ingest::s3::S3Settings;
use parquetrail_ingest::verify::{KeySource, KeysError, LogStatus, Report, Verify};
use parquetrail_ingest::{Location, Storage};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    parquetrail verify --source s3://trail-bucket --start 2024-03-01 --end 2024-03-31\n  \
    parquetrail verify --source s3://trail-bucket/prefix --archive s3://archive/cloudtrail --start 2024-03-01 --end 2024-03-31\n  \
    aws cloudtrail list-public-keys --region us-east-1 --start-time 2024-03-01T00:00:00Z > keys.json\n  \
    parquetrail verify --source s3://trail-bucket --public-keys keys.json --json\n\n\
    Every hour CloudTrail signs a digest file listing the SHA-256 of each log file it delivered, chained to the \
    digest before it. verify checks each digest's location, signature (RSA PKCS#1 v1.5 / SHA-256, key by fingerprint \
    from ListPublicKeys in the trail's home region, or --public-keys) and link to its predecessor, then hashes every \
    log file a valid digest lists. It reports each log file valid, INVALID (modified) or MISSING (deleted), each digest \
    that is invalid, and each GAP in a chain (a deleted digest, or logging or validation stopped).\n\n\
    With --archive it also reads the archive's ledger (<archive>/_ledger/, written by backfill) and reports which \
    archived files a valid digest covers, which were archived but are signed by nothing, which differ from what was \
    signed, and which signed files never reached the archive.\n\n\
    Dates are delivery dates (the YYYY/MM/DD in the key), inclusive; the digests of the following night are read too, \
    since they sign the last deliveries of the range.\n\n\
    Exit status: 0 when everything is proven, 1 when anything is not (or nothing was found), 2 for usage errors.")]
pub struct VerifyArgs {
    /// The trail: s3://bucket[/prefix] (the prefix is what comes before AWSLogs/), or a local copy.
    #[arg(long)]
    pub source: String,
    #[command(flatten)]
    pub trail: crate::TrailArgs,
    /// The archive whose ledger to reconcile: s3://bucket[/prefix] or a directory.
    #[arg(long)]
    pub archive: Option<String>,
    /// Public keys as `aws cloudtrail list-public-keys` prints them (JSON; one object or an array
    /// of them, one per home region), for offline use. Default: ListPublicKeys in each trail's
    /// home region.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<std::path::PathBuf>,
    /// Objects read at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// List every file, valid ones too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the whole report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Keys from CloudTrail's ListPublicKeys, in the home region asked for.
#[derive(Debug)]
struct CloudTrailKeys {
    config: aws_config::SdkConfig,
}

#[async_trait::async_trait]
impl KeySource for CloudTrailKeys {
    async fn public_keys(
        &self,
        home_region: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PublicKeys, KeysError> {
        use aws_sdk_cloudtrail::primitives::DateTime as SdkTime;
        let config = aws_sdk_cloudtrail::config::Builder::from(&self.config)
            .region(aws_config::Region::new(home_region.to_string()))
            .build();
        let client = aws_sdk_cloudtrail::Client::from_conf(config);
        let mut keys = PublicKeys::default();
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_public_keys()
                .start_time(SdkTime::from_secs(from.timestamp()))
                .end_time(SdkTime::from_secs(to.timestamp()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| KeysError::Fetch { what: "ListPublicKeys".into(), source: Box::new(e) })?;
            for listed in out.public_key_list() {
                let (Some(fingerprint), Some(value)) = (listed.fingerprint(), listed.value()) else { continue };
                let key = PublicKey::from_der(value.as_ref())
                    .map_err(|source| KeysError::Invalid { fingerprint: fingerprint.to_string(), source })?;
                keys.insert(fingerprint, key);
            }
            match out.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(keys),
            }
        }
    }
}

pub fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let selection = args.trail.selection()?;
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let source = crate::backfill::trail_root(Location::parse(&args.source)?);
    let archive = args.archive.as_deref().map(Location::parse).transpose()?;
    let file_keys = match &args.public_keys {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("--public-keys {}", path.display()))?;
            let keys =
                PublicKeys::from_list_json(&text).with_context(|| format!("--public-keys {}", path.display()))?;
            if keys.is_empty() {
                bail!("--public-keys {}: no keys in it", path.display());
            }
            Some(keys)
        }
        None => None,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let settings = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let keys: Arc<dyn KeySource> = match file_keys {
            Some(keys) => Arc::new(keys),
            None => Arc::new(CloudTrailKeys { config: aws_config::defaults(BehaviorVersion::latest()).load().await }),
        };
        let archive_storage: Option<(Arc<dyn Storage>, String)> = match &archive {
            Some(location) => Some((location.storage(&settings).await, location.prefix().to_string())),
            None => None,
        };
        let job = Verify {
            source: source.storage(&settings).await,
            source_prefix: source.prefix().to_string(),
            selection,
            keys,
            archive: archive_storage,
            concurrency: args.concurrency,
        };
        let report = job.run().await;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report, &source, archive.as_ref(), args.verbose)?;
        }
        Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

fn print_report(r: &Report, source: &Location, archive: Option<&Location>, verbose: bool) -> Result<()> {
    let c = &r.counts;
    outln!("Verified {source} against CloudTrail's digest files");
    outln!("  chains     {}", c.chains);
    for chain in &r.chains {
        outln!(
            "    {}: {} digest(s), {} valid, {} to {}",
            chain.id,
            chain.digests,
            chain.valid_digests,
            chain.first.as_deref().unwrap_or("?"),
            chain.last.as_deref().unwrap_or("?")
        );
    }
    outln!("  digests    {} ({} valid, {} INVALID), {} gap(s)", c.digests, c.valid_digests, c.invalid_digests, c.gaps);
    outln!(
        "  log files  {} signed ({} valid, {} INVALID, {} MISSING, {} unreadable)",
        c.log_files,
        c.valid_log_files,
        c.invalid_log_files,
        c.missing_log_files,
        c.unreadable_log_files
    );
    if let (Some(a), Some(location)) = (&r.archive, archive) {
        outln!(
            "  archive    {location}: {} covered, {} DIFFER, {} UNSIGNED, {} NOT ARCHIVED ({} ledger entries, {} in range)",
            a.covered,
            a.differs.len(),
            a.unsigned.len(),
            a.not_archived.len(),
            a.ledger_entries,
            a.considered
        );
    }
    let mut rows: Vec<(&str, &str, String)> = Vec::new();
    for d in &r.digests {
        if !d.valid || verbose {
            let status = if d.valid { "valid" } else { "INVALID" };
            rows.push((status, "digest", format!("{}  {}", d.key, d.reason.as_deref().unwrap_or(""))));
        }
    }
    for g in &r.gaps {
        let detail = match (&g.gap.missing, &g.gap.older) {
            (Some(missing), _) => format!("{}: {:?} digest {missing} (named by {})", g.chain, g.gap.kind, g.gap.newer),
            (None, Some(older)) => format!("{}: {:?} between {older} and {}", g.chain, g.gap.kind, g.gap.newer),
            (None, None) => format!("{}: {:?} before {}", g.chain, g.gap.kind, g.gap.newer),
        };
        rows.push(("GAP", "chain", detail));
    }
    for l in &r.log_files {
        let status = match l.status {
            LogStatus::Valid if !verbose => continue,
            LogStatus::Valid => "valid",
            LogStatus::Invalid => "INVALID",
            LogStatus::Missing => "MISSING",
            LogStatus::Error => "UNREADABLE",
        };
        let detail = match (&l.actual_sha256, &l.reason) {
            (Some(actual), _) if l.status == LogStatus::Invalid => {
                format!("{}  sha256 {actual}, signed {}", l.key, l.signed_sha256)
            }
            (_, Some(reason)) => format!("{}  {reason}", l.key),
            _ => l.key.clone(),
        };
        rows.push((status, "log", detail));
    }
    if let Some(a) = &r.archive {
        for (status, findings) in
            [("DIFFERS", &a.differs), ("UNSIGNED", &a.unsigned), ("NOT ARCHIVED", &a.not_archived)]
        {
            for f in findings.iter() {
                rows.push((status, "archive", f.key.clone()));
            }
        }
    }
    for f in &r.failures {
        rows.push(("FAILED", "read", f.clone()));
    }
    if !rows.is_empty() {
        outln!("");
        outln!("{:<13} {:<8} FILE / DETAIL", "STATUS", "KIND");
        for (status, kind, detail) in rows {
            outln!("{status:<13} {kind:<8} {detail}");
        }
    }
    outln!("");
    if r.valid {
        outln!("VALID: everything in range is what CloudTrail signed.");
    } else if c.digests == 0 && r.failures.is_empty() {
        outln!("NOT VALID: no digest files found in range (is log file validation enabled on the trail?).");
    } else {
        outln!("NOT VALID: see the findings above.");
    }
    Ok(())
}
