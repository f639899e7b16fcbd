//! `parquetrail serve`: CloudTrail's `LookupEvents` API over the archive, so the AWS CLI, boto3
//! and the SDKs, pointed at it with `--endpoint-url`, look events up as in CloudTrail's Event
//! history. Glue only: flags → [`ServerConfig`], the archive reader → [`ArchiveBackend`].

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use parquetrail_ingest::Location;
use parquetrail_ingest::reader::ArchiveReader;
use parquetrail_ingest::s3::S3Settings;
use parquetrail_server::{ArchiveBackend, CredentialStore, ServerConfig, serve as start};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    # Serve an archive on this machine, then ask it what CloudTrail's Event history would answer:\n  \
    parquetrail serve ./archive --listen 127.0.0.1:8470\n  \
    aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:8470 --region us-east-1 \\\n      \
    --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteBucket\n\n  \
    # All Regions to every request, data events included, on a free port (the URL is printed):\n  \
    parquetrail serve s3://my-archive/cloudtrail --all-regions --include-data-events --listen 127.0.0.1:0\n\n  \
    # Beyond this machine: every request must be signed (SigV4) with a key of the file\n  \
    # (one `ACCESS_KEY_ID SECRET` per line, see docs/SERVE.md); put TLS in front:\n  \
    parquetrail serve ./archive --listen 0.0.0.0:8470 --credentials keys.txt\n\n\
    As at AWS, a request sees the Region of its signature's credential scope (the client's --region) \
    unless --all-regions is given. The server only reads the archive. Stop it with Ctrl-C.")]
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
    /// Archive reads in flight at once per request.
    #[arg(long, default_value_t = ArchiveReader::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let location = Location::parse(&args.archive).map_err(anyhow::Error::msg)?;
    if let Location::Local(path) = &location
        && !path.is_dir()
    {
        bail!("{}: no such archive directory", path.display());
    }
    let credentials = match &args.credentials {
        Some(path) => Some(CredentialStore::from_file(path)?),
        None => None,
    };
    let config =
        ServerConfig { listen: args.listen, credentials, all_regions: args.all_regions, ..ServerConfig::default() };
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
        let _ = writeln!(out, "parquetrail serve: LookupEvents for {location} at {url}");
        let _ = writeln!(out, "  aws cloudtrail lookup-events --endpoint-url {url} --region us-east-1");
        let _ = out.flush();
        drop(out);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        eprintln!("parquetrail serve: stopping (requests in flight finish)");
        server.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}
