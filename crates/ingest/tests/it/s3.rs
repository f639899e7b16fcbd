//! Storage, sink and pipeline over real S3: the shared corpus under realistic keys, multipart
//! outputs, byte-identical re-runs, and injected transient faults retried without loss.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_core::convert::{Dataset, Options};
use parquetrail_core::sink::Sink;
use parquetrail_ingest::s3::{S3Sink, S3Storage};
use parquetrail_ingest::{Pipeline, Storage};
use parquetrail_testkit::{Fault, FaultPlan, MotoServer, corpus, gz_files};

async fn all_objects(client: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let storage = S3Storage::new(client.clone(), bucket);
    let mut out = BTreeMap::new();
    for meta in storage.list("").await.unwrap() {
        out.insert(meta.key.clone(), storage.read(&meta.key).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_on_s3_converts_reconciles_and_reruns_identically() {
    let test = "corpus_on_s3_converts_reconciles_and_reruns_identically";
    let Some(dir) = corpus(test) else { return };
    let Some(moto) = MotoServer::start(test) else { return };
    let client = moto.client().await;
    moto.create_bucket("trail").await;
    moto.create_bucket("archive").await;
    let local = gz_files(&dir);
    // Realistic keys: a trail prefix with a space and a plus, the org-trail layout as delivered,
    // and the edge cases beside them.
    let mut keys = Vec::new();
    for (rel, path) in &local {
        let key = if rel.starts_with("AWSLogs/") { format!("org trail+logs/{rel}") } else { format!("misc/{rel}") };
        client
            .put_object()
            .bucket("trail")
            .key(&key)
            .body(ByteStream::from(std::fs::read(path).unwrap()))
            .send()
            .await
            .unwrap();
        keys.push(key);
    }
    let source = S3Storage::new(client.clone(), "trail");
    let listed: Vec<String> = source.list("").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(listed.len(), keys.len());

    let archive: Arc<dyn Storage> = Arc::new(S3Storage::new(client.clone(), "archive"));
    let pipeline = Pipeline::new(archive, "lake", Options::default());
    let (mut records, mut rows, mut quarantined, mut skipped, mut failed) = (0, 0, 0, 0, Vec::new());
    let mut digests = Vec::new();
    for key in &keys {
        let outcome = pipeline.process(&source, key, None, None).await;
        let report = outcome.result.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(report.reconciles(), "{key}");
        records += report.records;
        rows += report.rows;
        quarantined += report.quarantined;
        skipped += report.skipped.is_some() as u32;
        digests.extend(report.outputs.iter().filter(|o| o.dataset == Dataset::Digests).map(|o| o.path.clone()));
        if let Some(f) = report.failure {
            failed.push((key.clone(), f));
        }
    }
    assert_eq!(skipped, 0, "digests are converted, not skipped");
    assert_eq!(digests.len(), 2, "the two digests: {digests:?}");
    assert!(digests.iter().all(|p| p.starts_with("digests/account=111122223333/region=us-east-2/date=2015-08-")));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.ends_with("SerializerTestFileBadJsonFormat.json.gz"));
    assert!(records > 3000 && records == rows + quarantined);

    // Outputs read back from S3: every row once, under the lake prefix.
    let first = all_objects(&client, "archive").await;
    let mut seen = 0u64;
    for (key, bytes) in &first {
        assert!(key.starts_with("lake/"), "{key}");
        if key.ends_with(".parquet") && !key.starts_with("lake/digests/") {
            seen += parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes.clone()), Some(key)).unwrap().len()
                as u64;
        }
    }
    assert_eq!(seen, rows);
    let marker = first.iter().find(|(k, _)| k.starts_with("lake/quarantine/files/")).unwrap();
    let marker: serde_json::Value = serde_json::from_slice(marker.1).unwrap();
    assert_eq!(marker["source_bucket"], "trail");
    assert!(marker["source_key"].as_str().unwrap().starts_with("misc/edge-cases/"));

    // Converting everything again leaves byte-identical objects.
    for key in &keys {
        pipeline.process(&source, key, None, None).await.result.unwrap();
    }
    assert!(all_objects(&client, "archive").await == first, "a re-run changed the archive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_outputs_stream_as_multipart_uploads_and_aborts_leave_nothing() {
    let Some(moto) = MotoServer::start("large_outputs_stream_as_multipart_uploads_and_aborts_leave_nothing") else {
        return;
    };
    if !moto.supports_multipart("large_outputs_stream_as_multipart_uploads_and_aborts_leave_nothing") {
        return;
    }
    let client = moto.client().await;
    moto.create_bucket("archive").await;
    let sink = S3Sink::new(client.clone(), "archive", "p").with_part_size(5 * 1024 * 1024);
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let written = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            let mut f = sink.create("big.bin").unwrap();
            for chunk in data.chunks(1 << 20) {
                f.write_all(chunk).unwrap();
            }
            f.commit().unwrap();
            // An output dropped before commit never becomes visible.
            let mut g = sink.create("dropped.bin").unwrap();
            g.write_all(&data[..6 * 1024 * 1024]).unwrap();
            drop(g);
        }
    });
    written.await.unwrap();
    let head = client.head_object().bucket("archive").key("p/big.bin").send().await.unwrap();
    assert!(head.e_tag().unwrap().contains("-3"), "a 3-part multipart upload: {:?}", head.e_tag());
    let back = S3Storage::new(client.clone(), "archive").read("p/big.bin").await.unwrap();
    assert!(back == data, "multipart object differs from what was written");
    // The dropped upload is aborted in the background (a drop never blocks): wait for the abort
    // itself, however long it takes, rather than for a fixed time.
    let abort_deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let uploads = client.list_multipart_uploads().bucket("archive").send().await.unwrap();
        if uploads.uploads().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < abort_deadline, "the dropped upload was never aborted");
        tokio::task::yield_now().await;
    }
    let keys: Vec<String> =
        S3Storage::new(client.clone(), "archive").list("").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["p/big.bin"]);
}

fn synthetic_log() -> Vec<u8> {
    let file = parquetrail_synth::generate_files(&parquetrail_synth::TreeOptions {
        seed: 5,
        target_json_bytes: 200_000,
        ..Default::default()
    })
    .next()
    .unwrap();
    file.gz
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_s3_errors_are_retried_without_loss() {
    let Some(moto) = MotoServer::start("transient_s3_errors_are_retried_without_loss") else { return };
    moto.create_bucket("trail").await;
    moto.create_bucket("archive").await;
    let direct = moto.client().await;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_abcdefghijklmnop.json.gz";
    direct.put_object().bucket("trail").key(key).body(ByteStream::from(synthetic_log())).send().await.unwrap();
    let clean = {
        let pipeline = Pipeline::new(Arc::new(S3Storage::new(direct.clone(), "archive")), "clean", Options::default());
        pipeline.process(&S3Storage::new(direct.clone(), "trail"), key, None, None).await.result.unwrap()
    };
    assert!(clean.rows > 0);

    // Throttled GETs and PUTs, and a 500 on a PUT: the SDK and the pipeline retry them.
    let proxy =
        moto.faulty_endpoint(
            FaultPlan::new()
                .fail("GET", "/trail/", Fault::SlowDown, 2)
                .fail("PUT", "/archive/", Fault::SlowDown, 2)
                .fail("PUT", "/archive/", Fault::InternalError, 1),
        );
    let client = proxy.client().await;
    let pipeline = Pipeline::new(Arc::new(S3Storage::new(client.clone(), "archive")), "faulty", Options::default())
        .with_retries(3, Duration::from_millis(10));
    let outcome = pipeline.process(&S3Storage::new(client.clone(), "trail"), key, None, None).await;
    let report = outcome.result.unwrap();
    assert!(proxy.injected() >= 5, "faults injected: {:?}", proxy.injections());
    assert_eq!((report.records, report.rows, report.quarantined), (clean.records, clean.rows, clean.quarantined));
    // Same objects as the clean run, byte for byte.
    let objects = all_objects(&direct, "archive").await;
    // Manifests name files by URI, so they are compared with the prefix taken out.
    let strip = |prefix: &str| -> BTreeMap<String, Vec<u8>> {
        let uri = format!("s3://archive/{prefix}");
        objects
            .iter()
            .filter_map(|(k, v)| {
                let k = k.strip_prefix(prefix)?;
                let v = if k.starts_with("manifests/") {
                    String::from_utf8(v.clone()).unwrap().replace(&uri, "").into_bytes()
                } else {
                    v.clone()
                };
                Some((k.to_string(), v))
            })
            .collect()
    };
    assert!(strip("clean/") == strip("faulty/"), "retries changed the outputs");

    // Failures that outlast every retry surface as retryable, naming the object.
    proxy.set_plan(FaultPlan::new().fail("GET", "/trail/", Fault::SlowDown, 1000));
    let outcome = pipeline.process(&S3Storage::new(client, "trail"), key, None, None).await;
    let err = outcome.result.unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains(key), "{err}");
    assert_eq!(outcome.attempts, 3);
}

/// S3 refusing a write as such (`400 KeyTooLongError`: a partition value too long for a key) is
/// permanent end to end: the object's outputs are not retried; the object is quarantined when
/// its marker can be written, and reported as not retryable when even that is refused, so no
/// queue redelivers it forever. The storage's own error is kept inside the sink's I/O error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_s3_write_errors_are_not_retried() {
    let test = "permanent_s3_write_errors_are_not_retried";
    let Some(moto) = MotoServer::start(test) else { return };
    moto.create_bucket("trail").await;
    moto.create_bucket("archive").await;
    let direct = moto.client().await;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_refusedrefused00.json.gz";
    direct.put_object().bucket("trail").key(key).body(ByteStream::from(synthetic_log())).send().await.unwrap();

    // Only the Parquet outputs are refused: the object is quarantined, after one attempt.
    let proxy = moto.faulty_endpoint(FaultPlan::new().fail_when("PUT *.parquet", Fault::KeyTooLong, 1000, |r| {
        r.method() == "PUT" && r.path().starts_with("/archive/") && r.path().ends_with(".parquet")
    }));
    let client = proxy.client().await;
    let archive = S3Storage::new(client.clone(), "archive");
    let pipeline =
        Pipeline::new(Arc::new(archive.clone()), "", Options::default()).with_retries(3, Duration::from_millis(10));
    let outcome = pipeline.process(&S3Storage::new(client.clone(), "trail"), key, None, None).await;
    assert_eq!(outcome.attempts, 1, "{:?}", outcome.result);
    let report = outcome.result.expect("quarantined, not failed");
    let failure = report.failure.expect("the whole object is quarantined");
    assert_eq!(failure.class, "unconvertible", "{failure:?}");
    assert!(failure.reason.contains("KeyTooLongError"), "{failure:?}");
    let injected = proxy.injections();
    assert!(!injected.is_empty() && injected.iter().all(|i| i.starts_with("KeyTooLongError PUT")), "{injected:?}");
    assert!(archive.read(&failure.quarantine_path).await.is_ok(), "the marker is in the archive");

    // Every write refused: not even the marker; reported as not retryable, not retried.
    proxy.set_plan(FaultPlan::new().fail("PUT", "/archive/", Fault::KeyTooLong, 1000));
    let outcome = pipeline.process(&S3Storage::new(client.clone(), "trail"), key, None, None).await;
    let err = outcome.result.expect_err("nothing can be written");
    assert!(!err.retryable, "{err}");
    assert_eq!(outcome.attempts, 1, "{err}");
    assert!(err.message.contains("KeyTooLongError") && err.message.contains(key), "{err}");

    // Through the sink alone, the storage's verdict is recoverable from the I/O error.
    let sink = S3Sink::new(client, "archive", "direct");
    let mut file = sink.create("x.parquet").unwrap();
    file.write_all(b"bytes").unwrap();
    let error = tokio::task::spawn_blocking(move || file.commit()).await.unwrap().expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    let storage = error.get_ref().and_then(|e| e.downcast_ref::<parquetrail_ingest::StorageError>());
    assert_eq!(storage.map(|e| e.kind), Some(parquetrail_ingest::storage::ErrorKind::Permanent), "{error:?}");
    assert!(!parquetrail_core::io_retryable(&error));
}
