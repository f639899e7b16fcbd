//! S3 that stalls or refuses, through the fault proxy in front of moto: every case fails with a
//! retryable error, bounded by the configured timeouts and attempt limits rather than by an outer
//! deadline. The tests assert the error and the number of attempts the proxy saw; their tokio
//! timeouts are only a safety net, far above the configured bounds.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_core::convert::Options;
use parquetrail_ingest::manifest::CONFLICT_ATTEMPTS;
use parquetrail_ingest::s3::{S3Limits, S3Settings, S3Storage};
use parquetrail_ingest::{Outcome, Pipeline};
use parquetrail_testkit::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use parquetrail_testkit::{Fault, FaultPlan, FaultyProxy, MotoServer};

const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_stalledstalled01.json.gz";

/// Limits small enough for a test: a 1 s read timeout, 2 attempts per request.
const LIMITS: S3Limits = S3Limits {
    connect: Duration::from_secs(1),
    read: Duration::from_secs(1),
    attempt: Duration::from_secs(5),
    operation: Duration::from_secs(10),
    max_attempts: 2,
};

/// How long a stall lasts: far beyond every configured timeout (the proxy stops holding as soon as
/// the client gives up and closes the connection).
const STALL: Duration = Duration::from_secs(600);

/// The safety net around each test, far above what the limits allow.
const NET: Duration = Duration::from_secs(120);

/// moto with a trail bucket holding one log file and an empty archive bucket.
async fn world(test: &str) -> Option<MotoServer> {
    let moto = MotoServer::start(test)?;
    moto.create_bucket("trail").await;
    moto.create_bucket("archive").await;
    let gz = parquetrail_synth::generate_files(&parquetrail_synth::TreeOptions {
        seed: 9,
        target_json_bytes: 50_000,
        ..Default::default()
    })
    .next()
    .unwrap()
    .gz;
    moto.client().await.put_object().bucket("trail").key(KEY).body(ByteStream::from(gz)).send().await.unwrap();
    Some(moto)
}

/// The production client construction ([`S3Settings::client`]) pointed at the proxy, with [`LIMITS`].
async fn client(proxy: &FaultyProxy) -> aws_sdk_s3::Client {
    S3Settings {
        endpoint_url: Some(proxy.endpoint().to_string()),
        force_path_style: Some(true),
        region: Some(REGION.to_string()),
        static_credentials: Some((ACCESS_KEY_ID.to_string(), SECRET_ACCESS_KEY.to_string())),
        limits: LIMITS,
    }
    .client()
    .await
}

/// Converts [`KEY`] from the trail bucket into the archive bucket, both through `proxy`, with 2
/// attempts per object.
async fn convert(proxy: &FaultyProxy) -> Outcome {
    let client = client(proxy).await;
    let pipeline = Pipeline::new(Arc::new(S3Storage::new(client.clone(), "archive")), "lake", Options::default())
        .with_retries(2, Duration::from_millis(10));
    let source = S3Storage::new(client, "trail");
    let run = pipeline.process(&source, KEY, None, None);
    tokio::time::timeout(NET, run).await.expect("the safety net: the configured timeouts did not bound the run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_body_stalls_fails_retryably_after_the_read_timeout() {
    let Some(moto) = world("a_get_whose_body_stalls_fails_retryably_after_the_read_timeout").await else { return };
    // Headers, then no byte of the body.
    let proxy = moto.faulty_endpoint(FaultPlan::new().fail("GET", "/trail/", Fault::StallBody(STALL), 100));
    let outcome = convert(&proxy).await;
    let err = outcome.result.as_ref().unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains(KEY) && err.message.contains("timed out"), "{err}");
    // Each attempt opened the object once and gave up on its body (the idle timeout, not a retry
    // by the SDK: the GET itself had succeeded).
    assert_eq!(outcome.attempts, 2);
    assert_eq!(proxy.injections().len(), 2, "{:?}", proxy.injections());
    assert!(proxy.injections().iter().all(|i| i.starts_with("StallBody GET /trail/")), "{:?}", proxy.injections());
    // Nothing was published.
    let archive = S3Storage::new(moto.client().await, "archive");
    assert_eq!(parquetrail_ingest::Storage::list(&archive, "").await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_endpoint_fails_retryably_within_the_attempt_limits() {
    let Some(moto) = world("a_frozen_endpoint_fails_retryably_within_the_attempt_limits").await else { return };
    // Requests are read and never answered.
    let proxy = moto.faulty_endpoint(FaultPlan::new().fail("GET", "/trail/", Fault::Stall(STALL), 100));
    let outcome = convert(&proxy).await;
    let err = outcome.result.as_ref().unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains(KEY) && err.message.to_lowercase().contains("timeout"), "{err}");
    // The SDK's 2 attempts per request, for each of the pipeline's 2 attempts: the bound is the
    // configured attempt limit, each attempt ended by the read timeout.
    assert_eq!(outcome.attempts, 2);
    assert_eq!(proxy.injections().len(), 4, "{:?}", proxy.injections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_write_refused_forever_gives_up_after_the_conflict_bound() {
    let Some(moto) = world("a_manifest_write_refused_forever_gives_up_after_the_conflict_bound").await else {
        return;
    };
    // Every conditional write of a manifest answered 412, as if another writer always won.
    let proxy =
        moto.faulty_endpoint(FaultPlan::new().fail_when("PUT manifests", Fault::PreconditionFailed, 10_000, |r| {
            r.method() == "PUT" && r.path().starts_with("/archive/lake/manifests/")
        }));
    let outcome = convert(&proxy).await;
    let err = outcome.result.as_ref().unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains("s3://archive/lake/manifests/") && err.message.contains("/symlink.txt"), "{err}");
    assert!(err.message.contains(&format!("gave up after {CONFLICT_ATTEMPTS} conditional writes")), "{err}");
    assert!(err.message.contains("PreconditionFailed"), "the last conflict is kept: {err}");
    // Each of the pipeline's 2 attempts stopped at the bound, on the first manifest it tried.
    assert_eq!(outcome.attempts, 2);
    assert_eq!(proxy.injections().len(), 2 * CONFLICT_ATTEMPTS as usize, "{:?}", proxy.injections());
}
