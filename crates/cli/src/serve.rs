//! `parquetrail serve`: CloudTrail's `LookupEvents` and `ListInsightsMetricData` APIs over the
//! archive, so the AWS CLI, boto3 and the SDKs, pointed at it with `--endpoint-url`, look events
//! up as in CloudTrail's Event history and read Insights metrics from the archive's `metrics`
//! dataset. Glue only: flags → [`ServerConfig`], the archive reader → [`ArchiveBackend`].

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use parquetrail_ingest::reader::ArchiveReader;
use parquetrail_ingest::s3::S3Settings;
use parquetrail_server::{ArchiveBackend, ConsoleToken, CredentialStore, ServerConfig, serve as start};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    # Serve an archive on this machine, then ask it what CloudTrail's Event history would answer:\n  \
    parquetrail serve ./archive --listen 127.0.0.1:8470\n  \
    aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:8470 --region us-east-1 \\\n      \
    --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteBucket\n\n  \
    # An API's write calls per 5 minutes, as CloudTrail Insights charts them (metrics: docs/INSIGHTS.md):\n  \
    aws cloudtrail list-insights-metric-data --endpoint-url http://127.0.0.1:8470 --region us-east-1 \\\n      \
    --event-source ec2.amazonaws.com --event-name RunInstances --insight-type ApiCallRateInsight \\\n      \
    --period 300 --data-type FillWithZeros --start-time 2024-03-01T00:00:00Z --end-time 2024-03-02T00:00:00Z\n\n  \
    # All Regions to every request, data events included, on a free port (the URL is printed):\n  \
    parquetrail serve s3://my-archive/cloudtrail --all-regions --include-data-events --listen 127.0.0.1:0\n\n  \
    # Beyond this machine: every request must be signed (SigV4) with a key of the file\n  \
    # (one `ACCESS_KEY_ID SECRET` per line, see docs/SERVE.md); put TLS in front:\n  \
    parquetrail serve ./archive --listen 0.0.0.0:8470 --credentials keys.txt\n\n  \
    # The web console (Event history, event detail, compare, Insights, dashboards) is at the same URL in a\n  \
    # browser. Beyond this machine it asks for a token (at least 16 characters); put TLS in front:\n  \
    parquetrail serve ./archive --listen 0.0.0.0:8470 --credentials keys.txt --console-token-file console.txt\n\n\
    As at AWS, a request sees the Region of its signature's credential scope (the client's --region) \
    unless --all-regions is given. The console shows every Region. The server only reads the archive; it \
    speaks plain HTTP, so put TLS (a reverse proxy) in front of anything beyond this machine. Stop it with Ctrl-C.")]
pub struct ServeArgs {
    /// The archive: a directory written by `parquetrail convert`, or s3://bucket[/prefix].
    pub archive: String,
    /// Where to listen, ADDR:PORT. Port 0 picks a free one. Anything but a loopback address needs --credentials.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,
    /// Access keys whose SigV4 signatures are accepted (one `ACCESS_KEY_ID SECRET` per line); every
    /// request must then be signed by one of them.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Answer every request for every Region, not only its credential scope's.
    #[arg(long)]
    pub all_regions: bool,
    /// Include data events (S3 object reads, Lambda invokes, ...), which CloudTrail's Event history leaves out.
    #[arg(long)]
    pub include_data_events: bool,
    /// The token a browser must give to use the web console (required beyond loopback, where the
    /// console is off without one). Prefer --console-token-file: a command line is visible to other users.
    #[arg(long, value_name = "TOKEN")]
    pub console_token: Option<String>,
    /// A file holding the console token (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "console_token")]
    pub console_token_file: Option<PathBuf>,
    /// Serve only the APIs (LookupEvents, ListInsightsMetricData), not the web console.
    #[arg(long)]
    pub no_console: bool,
    /// Archive reads in flight at once per request.
    #[arg(long, default_value_t = ArchiveReader::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let location = crate::archive_location(&args.archive)?;
    let credentials = match &args.credentials {
        Some(path) => Some(CredentialStore::from_file(path)?),
        None => None,
    };
    let console_token = match (&args.console_token, &args.console_token_file) {
        (Some(token), _) => Some(ConsoleToken::new(token).map_err(anyhow::Error::msg).context("--console-token")?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the console token file {}", path.display()))?;
            let first = text.lines().next().unwrap_or("");
            Some(ConsoleToken::new(first).map_err(anyhow::Error::msg).with_context(|| path.display().to_string())?)
        }
        (None, None) => None,
    };
    let console_on = !args.no_console && (args.listen.ip().is_loopback() || console_token.is_some());
    let config = ServerConfig {
        listen: args.listen,
        credentials,
        all_regions: args.all_regions,
        console: !args.no_console,
        console_token,
        ..ServerConfig::default()
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let s3 = S3Settings::from_env().map_err(anyhow::Error::msg)?;
        let storage = location.storage(&s3).await;
        let reader = ArchiveReader::new(storage, location.prefix()).with_concurrency(args.concurrency.max(1));
        let server = start(config, ArchiveBackend::new(reader, args.include_data_events)).await?;
        let url = server.url();
        // A server keeps serving when whoever started it stops reading its output.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "parquetrail serve: LookupEvents and ListInsightsMetricData for {location} at {url}");
        let _ = writeln!(out, "  aws cloudtrail lookup-events --endpoint-url {url} --region us-east-1");
        if console_on {
            let _ = writeln!(out, "  web console: {url}/ in a browser");
        } else if !args.no_console {
            let _ = writeln!(out, "  web console: off (a network address needs --console-token-file)");
        }
        let _ = out.flush();
        drop(out);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        eprintln!("parquetrail serve: stopping (requests in flight finish)");
        server.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}
