//! The handler under S3 faults and poison objects: a storage failure while writing a large
//! (multipart) output is retried and then reported as retryable in every trigger's terms, never
//! acknowledged with nothing archived; a batch with poison messages lands its good messages in the
//! same invocation and quarantines the poison; a frozen endpoint is given up before the deadline.
//!
//! Expected counts come from the input JSON the tests write, never from the converter's report.

use std::net::TcpListener;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::{handle, handle_with_deadline};
use parquetrail_testkit::moto::{Fault, FaultPlan};
use serde_json::{Value, json};

use crate::support::*;

/// A log file of `n` records whose bodies are incompressible text (≈ 4 KB each), so its one
/// Parquet output is larger than a multipart part (8 MiB) at `n` ≥ 3,000.
fn large_log_file(key_tag: u64, n: usize) -> Vec<u8> {
    let mut noise = parquetrail_testkit::Noise::new(key_tag);
    let records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "eventVersion": "1.09", "eventTime": format!("2024-03-01T01:{:02}:00Z", i % 60),
                "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "us-east-1",
                "eventID": format!("big-{key_tag}-{i}"), "recipientAccountId": "111122223333",
                "requestParameters": {"key": noise.text(4000)}, "eventCategory": "Data", "readOnly": false
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

const BIG: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0105Z_LargeOutput00000.json.gz";
const BIG_RECORDS: usize = 3000;

/// Whether a CreateMultipartUpload (`POST …?uploads`) or UploadPart (`PUT …?partNumber=…`) request.
fn multipart(
    method: &'static str,
    query: &'static str,
) -> impl Fn(&parquetrail_testkit::moto::FaultRequest<'_>) -> bool {
    move |r| {
        r.method().eq_ignore_ascii_case(method) && r.query().contains(query) && r.path().starts_with("/archive-bucket/")
    }
}

/// Archive objects that came from `stem` (outputs, quarantine, ledger lines naming it).
async fn traces(w: &World, stem: &str) -> Vec<String> {
    let mut found: Vec<String> =
        w.objects(ARCHIVE).await.into_iter().filter(|(k, _)| k.contains(stem)).map(|(k, _)| k).collect();
    for (key, body) in w.objects(ARCHIVE).await {
        if key.contains("/_ledger/") && String::from_utf8_lossy(&body).contains(stem) {
            found.push(key);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_multipart_upload_is_retryable_in_every_trigger_and_redelivery_archives_it() {
    let Some(w) = world("a_failed_multipart_upload_is_retryable_in_every_trigger_and_redelivery_archives_it").await
    else {
        return;
    };
    if !w.moto.supports_multipart("a_failed_multipart_upload_is_retryable_in_every_trigger_and_redelivery_archives_it")
    {
        return;
    }
    let big = gzip(&large_log_file(1, BIG_RECORDS));
    w.client.put_object().bucket(TRAIL).key(BIG).body(ByteStream::from(big)).send().await.unwrap();
    // Every CreateMultipartUpload and UploadPart of the archive fails, after the SDK's retries too.
    let proxy = w.moto.faulty_endpoint(
        FaultPlan::new()
            .fail_when("CreateMultipartUpload", Fault::SlowDown, usize::MAX, multipart("POST", "uploads"))
            .fail_when("UploadPart", Fault::InternalError, usize::MAX, multipart("PUT", "partNumber=")),
    );
    let app = app_with(proxy.client().await, &[("PARQUETRAIL_CONCURRENCY", "4")]);
    let stem = "LargeOutput00000";

    // SQS: only the big object's message fails; the small one lands in the same invocation.
    let event = sqs_event(&[
        ("m-big", s3_event(TRAIL, &[BIG]).to_string()),
        ("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string()),
    ]);
    let response = handle(&app, event).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([{"itemIdentifier": "m-big"}]), "{response}");
    assert!(proxy.injected() > 0, "the multipart path was exercised");
    assert_eq!(w.rows().await.len(), 20, "GOOD's 20 placeable records, nothing of BIG");

    // S3 and EventBridge (async invokes): the invocation fails, so Lambda retries it.
    let err = handle(&app, s3_event(TRAIL, &[BIG])).await.unwrap_err();
    assert!(err.to_string().contains("will be retried") && err.to_string().contains(stem), "{err}");
    let eventbridge = json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2024-03-01T01:06:00Z", "region": "us-east-1", "resources": [],
        "detail": {"version": "0", "bucket": {"name": TRAIL}, "object": {"key": BIG, "size": 10, "etag": "e", "sequencer": "1"},
                   "request-id": "r", "requester": "111122223333", "reason": "PutObject"}
    });
    assert!(handle(&app, eventbridge).await.is_err());

    // Batch Operations: TemporaryFailure (the job retries it), never Succeeded or PermanentFailure.
    let batch = json!({
        "invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"},
        "tasks": [{"taskId": "t", "s3Key": BIG, "s3VersionId": null, "s3Bucket": TRAIL}]
    });
    let response = handle(&app, batch).await.unwrap();
    assert_eq!(response["results"][0]["resultCode"], "TemporaryFailure", "{response}");

    // Nothing of the file is visible, quarantined or ledgered: it is still to do.
    assert_eq!(traces(&w, stem).await, Vec::<String>::new());

    // The outage ends; the redelivered message archives every placeable record of the file.
    proxy.set_plan(FaultPlan::new());
    let response = handle(&app, sqs_event(&[("m-big", s3_event(TRAIL, &[BIG]).to_string())])).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let rows = w.rows().await;
    assert_eq!(rows.keys().filter(|(k, _)| k == BIG).count(), BIG_RECORDS);
    let output = w.objects(ARCHIVE).await.into_iter().find(|(k, _)| k.contains(stem) && k.ends_with(".parquet"));
    let (key, bytes) = output.expect("the big output");
    assert!(bytes.len() > 8 << 20, "{key} is {} bytes: the test needs a multipart upload", bytes.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_multipart_failure_is_absorbed_by_retries() {
    let Some(w) = world("a_transient_multipart_failure_is_absorbed_by_retries").await else { return };
    if !w.moto.supports_multipart("a_transient_multipart_failure_is_absorbed_by_retries") {
        return;
    }
    let big = gzip(&large_log_file(2, BIG_RECORDS));
    w.client.put_object().bucket(TRAIL).key(BIG).body(ByteStream::from(big)).send().await.unwrap();
    // More failures than one call's SDK attempts (3): the first pipeline attempt fails, the next succeeds.
    let proxy = w.moto.faulty_endpoint(FaultPlan::new().fail_when(
        "UploadPart",
        Fault::SlowDown,
        4,
        multipart("PUT", "partNumber="),
    ));
    let app = app_with(proxy.client().await, &[]);
    let response = handle(&app, s3_event(TRAIL, &[BIG])).await;
    assert!(response.is_ok(), "{response:?}");
    assert_eq!(proxy.injected(), 4);
    assert_eq!(w.rows().await.keys().filter(|(k, _)| k == BIG).count(), BIG_RECORDS);
}

const OVERSIZED: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0200Z_OversizedRecord0.json.gz";
const FAN_OUT: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0205Z_PartitionFanOut0.json.gz";
const BOMB: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T020000Z.json.gz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_quarantined_and_the_good_ones_land_in_the_same_invocation() {
    let Some(w) = world("poison_messages_are_quarantined_and_the_good_ones_land_in_the_same_invocation").await else {
        return;
    };
    let put = |key: &'static str, body: Vec<u8>| {
        w.client.put_object().bucket(TRAIL).key(key).body(ByteStream::from(body)).send()
    };
    // One 17 MiB record (over the 16 MiB default) between two ordinary ones.
    let huge =
        format!(r#"{{"eventTime":"2024-03-01T02:00:00Z","requestParameters":{{"x":"{}"}}}}"#, "x".repeat(17 << 20));
    let ordinary = r#"{"eventTime":"2024-03-01T02:00:01Z","eventName":"Ordinary","recipientAccountId":"111122223333"}"#;
    put(OVERSIZED, gzip(format!(r#"{{"Records":[{ordinary},{huge},{ordinary}]}}"#).as_bytes())).await.unwrap();
    // 1,000 records naming 1,000 accounts: 64 partitions open (the default limit), the rest quarantined.
    let fan_out: Vec<Value> = (0..1000)
        .map(|i| json!({"eventTime": "2024-03-01T02:05:00Z", "recipientAccountId": format!("{:012}", 100_000 + i), "awsRegion": "us-east-1"}))
        .collect();
    put(FAN_OUT, gzip(&serde_json::to_vec(&json!({ "Records": fan_out })).unwrap())).await.unwrap();
    // 64 MiB of spaces in a few hundred KB of gzip, posing as a digest (the limit is 32 MiB).
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        std::io::Write::write_all(&mut bomb, &vec![b' '; 1 << 20]).unwrap();
    }
    put(BOMB, bomb.finish().unwrap()).await.unwrap();

    let app = w.app(&[]).await;
    let event = sqs_event(&[
        ("m-oversized", s3_event(TRAIL, &[OVERSIZED]).to_string()),
        ("m-bomb", s3_event(TRAIL, &[BOMB]).to_string()),
        ("m-fan-out", s3_event(TRAIL, &[FAN_OUT]).to_string()),
        ("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string()),
    ]);
    let deadline = SystemTime::now() + Duration::from_secs(240);
    let response = handle_with_deadline(&app, event, Some(deadline)).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "poison is quarantined, not redelivered: {response}");

    let rows = w.rows().await;
    let from = |key: &str| rows.keys().filter(|(k, _)| k == key).count();
    assert_eq!(from(keys::GOOD), 20);
    assert_eq!(from(OVERSIZED), 2, "the records around the huge one");
    assert_eq!(from(FAN_OUT), 64);
    let archive = w.objects(ARCHIVE).await;
    let big = quarantined_records(&archive, "OversizedRecord0");
    assert_eq!(big.len(), 1);
    assert_eq!(big[0]["length"], huge.len() as u64, "{}", big[0]["reason"]);
    assert_eq!(big[0]["sha256"], sha256_hex(huge.as_bytes()));
    assert_eq!(quarantined_records(&archive, "PartitionFanOut0").len(), 1000 - 64);
    let marker = archive
        .iter()
        .filter(|(k, _)| k.starts_with("cloudtrail/quarantine/files/"))
        .map(|(_, v)| serde_json::from_slice::<Value>(v).unwrap())
        .find(|m| m["source_key"] == BOMB)
        .expect("the digest bomb is quarantined");
    assert!(marker["reason"].as_str().unwrap().contains("once inflated"), "{marker}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_endpoint_is_given_up_before_the_deadline() {
    // A listener that accepts connections and never answers: S3 frozen mid-request.
    let frozen = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", frozen.local_addr().unwrap());
    let app = app_with(parquetrail_testkit::moto::client_for(&endpoint).await, &[]);
    let deadline = SystemTime::now() + Duration::from_secs(8);
    let event = sqs_event(&[("m-frozen", s3_event(TRAIL, &[keys::GOOD]).to_string())]);
    // The safety net is far beyond the deadline: the assertion is that the answer came before it.
    let response = tokio::time::timeout(Duration::from_secs(120), handle_with_deadline(&app, event, Some(deadline)))
        .await
        .expect("the handler answered")
        .unwrap();
    assert!(SystemTime::now() < deadline, "answered after the invocation's deadline");
    assert_eq!(response["batchItemFailures"], json!([{"itemIdentifier": "m-frozen"}]), "{response}");
    drop(frozen);
}

/// A manifest write failing for a moment, longer than the S3 client's own retries, is tried again
/// as each object's listing was before a batch's outputs were listed together: the batch lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_manifest_failure_is_absorbed_by_retries() {
    let Some(w) = world("a_transient_manifest_failure_is_absorbed_by_retries").await else { return };
    let manifests = format!("/{ARCHIVE}/cloudtrail/manifests/");
    // The SDK's standard retry makes three attempts a request: the fourth failure outlasts them.
    let proxy = w.moto.faulty_endpoint(FaultPlan::new().fail("PUT", &manifests, Fault::InternalError, 4));
    let app = app_with(proxy.client().await, &[]);
    let response = handle(&app, sqs_event(&[("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string())])).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(proxy.injected(), 4);
    let archive = w.objects(ARCHIVE).await;
    assert!(archive.keys().any(|k| k.contains("/manifests/events/")), "{:?}", archive.keys());
    assert!(archive.keys().any(|k| k.contains("/_ledger/")), "{:?}", archive.keys());
}

/// Outputs written but their manifest's write hanging: the batch is still answered before the
/// deadline, the message comes back for a retry, and no ledger line says it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_manifest_write_is_given_up_before_the_deadline() {
    let Some(w) = world("a_hanging_manifest_write_is_given_up_before_the_deadline").await else { return };
    let manifests = format!("/{ARCHIVE}/cloudtrail/manifests/");
    let proxy = w.moto.faulty_endpoint(FaultPlan::new().fail_when(
        "PUT manifests",
        Fault::Stall(Duration::from_secs(90)),
        usize::MAX,
        move |r| r.method().eq_ignore_ascii_case("PUT") && r.path().starts_with(&manifests),
    ));
    let app = app_with(proxy.client().await, &[]);
    let deadline = SystemTime::now() + Duration::from_secs(12);
    let event = sqs_event(&[("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string())]);
    let response = tokio::time::timeout(Duration::from_secs(120), handle_with_deadline(&app, event, Some(deadline)))
        .await
        .expect("the handler answered")
        .unwrap();
    assert!(SystemTime::now() < deadline, "answered after the invocation's deadline");
    assert!(proxy.injected() > 0, "the manifest write was held");
    assert_eq!(response["batchItemFailures"], json!([{"itemIdentifier": "m-good"}]), "{response}");
    let archive = w.objects(ARCHIVE).await;
    assert!(archive.keys().any(|k| k.ends_with(".parquet")), "the outputs were written: {:?}", archive.keys());
    assert!(!archive.keys().any(|k| k.contains("/_ledger/") || k.contains("/manifests/")), "{:?}", archive.keys());
}

/// S3 refusing the archive's writes as such (`400 KeyTooLongError`, as for a partition value too
/// long for a key) is permanent in every trigger's terms: the object is quarantined when its
/// marker can be written, and reported as a permanent failure when nothing can be — never
/// redelivered to fail the same way until the DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_for_good_is_not_redelivered() {
    let Some(w) = world("a_write_refused_for_good_is_not_redelivered").await else { return };
    let archive_put = |r: &parquetrail_testkit::moto::FaultRequest<'_>| {
        r.method().eq_ignore_ascii_case("PUT") && r.path().starts_with(&format!("/{ARCHIVE}/"))
    };
    let proxy =
        w.moto.faulty_endpoint(FaultPlan::new().fail_when("PUT *.parquet", Fault::KeyTooLong, usize::MAX, move |r| {
            archive_put(r) && r.path().ends_with(".parquet")
        }));
    let app = app_with(proxy.client().await, &[]);
    let stem = "AbCdEfGhIjKlMnOp";

    // Only the Parquet outputs are refused: quarantined, acknowledged.
    let response = handle(&app, sqs_event(&[("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string())])).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert!(proxy.injected() > 0, "the refusal was exercised");
    assert!(w.rows().await.is_empty(), "no output was written");
    let archive = w.objects(ARCHIVE).await;
    let marker = archive.iter().find(|(k, _)| k.contains(stem) && !k.contains("/_ledger/") && k.ends_with(".json"));
    let (_, marker) = marker.unwrap_or_else(|| panic!("a quarantine marker: {:?}", archive.keys().collect::<Vec<_>>()));
    let marker: Value = serde_json::from_slice(marker).unwrap();
    assert!(marker.to_string().contains("KeyTooLongError"), "{marker}");

    // Every write refused, the marker too: a permanent failure, in SQS, S3 and Batch terms.
    proxy.set_plan(FaultPlan::new().fail_when("PUT archive", Fault::KeyTooLong, usize::MAX, archive_put));
    let response = handle(&app, sqs_event(&[("m-good", s3_event(TRAIL, &[keys::GOOD]).to_string())])).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "not redelivered: {response}");
    let response = handle(&app, s3_event(TRAIL, &[keys::GOOD])).await;
    assert!(response.is_ok(), "an async invoke is not retried: {response:?}");
    let batch = json!({
        "invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"},
        "tasks": [{"taskId": "t", "s3Key": keys::GOOD, "s3VersionId": null, "s3Bucket": TRAIL}]
    });
    let response = handle(&app, batch).await.unwrap();
    assert_eq!(response["results"][0]["resultCode"], "PermanentFailure", "{response}");
    assert!(response["results"][0]["resultString"].as_str().unwrap().contains("KeyTooLongError"), "{response}");
}
