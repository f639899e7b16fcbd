//! The shared corpus through the real handler: uploaded under realistic keys (a trail prefix with
//! a space and a plus, the org-trail layout as delivered, the edge cases beside it), announced as
//! one SQS batch of S3 notifications with form-encoded keys.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::handle;
use parquetrail_testkit::{MotoServer, corpus, gz_files};
use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_corpus_through_the_handler_reconciles_and_quarantines_edge_cases() {
    let test = "shared_corpus_through_the_handler_reconciles_and_quarantines_edge_cases";
    let Some(dir) = corpus(test) else { return };
    let Some(moto) = MotoServer::start(test) else { return };
    let client = moto.client().await;
    moto.create_bucket(TRAIL).await;
    moto.create_bucket(ARCHIVE).await;
    let local = gz_files(&dir);
    let mut keys = Vec::new();
    for (rel, path) in &local {
        let key =
            if rel.starts_with("AWSLogs/") { format!("cloud trail+prod/{rel}") } else { format!("uploads/{rel}") };
        client
            .put_object()
            .bucket(TRAIL)
            .key(&key)
            .body(ByteStream::from(std::fs::read(path).unwrap()))
            .send()
            .await
            .unwrap();
        keys.push(key);
    }
    let w = World { moto, client };
    let app = w.app(&[]).await;
    // SQS delivers at most 10 messages per batch; a notification may carry a few records.
    let mut message = 0;
    for chunk in keys.chunks(30) {
        let bodies: Vec<(String, String)> = chunk
            .chunks(3)
            .map(|c| {
                message += 1;
                (format!("m{message}"), s3_event(TRAIL, &c.iter().map(String::as_str).collect::<Vec<_>>()).to_string())
            })
            .collect();
        let bodies: Vec<(&str, String)> = bodies.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
        let response = handle(&app, sqs_event(&bodies)).await.unwrap();
        assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    }
    let archive = w.objects(ARCHIVE).await;
    let rows = w.rows().await;
    // Quarantine: the structurally broken edge case as a file, the unplaceable records with raw text.
    let markers: Vec<Value> = archive
        .iter()
        .filter(|(k, _)| k.starts_with("cloudtrail/quarantine/files/"))
        .map(|(_, v)| serde_json::from_slice(v).unwrap())
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert_eq!(markers[0]["source_bucket"], TRAIL);
    assert!(markers[0]["source_key"].as_str().unwrap().ends_with("SerializerTestFileBadJsonFormat.json.gz"));
    let mut quarantined = BTreeMap::new();
    for (k, v) in &archive {
        if k.starts_with("cloudtrail/quarantine/records/") {
            for line in String::from_utf8(v.clone()).unwrap().lines() {
                let q: Value = serde_json::from_str(line).unwrap();
                assert!(q["source_key"].as_str().unwrap().starts_with("uploads/edge-cases/"), "{q}");
                assert!(!q["raw"].as_str().unwrap().is_empty() && !q["reason"].as_str().unwrap().is_empty());
                quarantined
                    .insert((q["source_key"].as_str().unwrap().to_string(), q["record_index"].as_i64().unwrap()), q);
            }
        }
    }
    assert!(quarantined.len() >= 5, "{}", quarantined.len());
    // Every delivered record is a row exactly once, under its real (decoded) key.
    let delivered = rows.keys().filter(|(k, _)| k.starts_with("cloud trail+prod/AWSLogs/")).count();
    assert!(delivered >= 3000, "{delivered}");
    assert!(archive.keys().any(|k| k.starts_with("cloudtrail/insights/")));
    assert!(archive.keys().any(|k| k.starts_with("cloudtrail/events/account=111122223333/")));
    let digests: Vec<&String> = archive.keys().filter(|k| k.starts_with("cloudtrail/digests/")).collect();
    assert_eq!(digests.len(), 2, "the corpus's two digests, one row each: {digests:?}");

    // Counts reconcile with converting the same files in memory: no object lost or repeated on the
    // way through SQS, S3 and the pipeline.
    let (mut want_rows, mut want_quarantined) = (0u64, 0u64);
    for ((rel, path), key) in local.iter().zip(&keys) {
        let bytes = std::fs::read(path).unwrap();
        let sink = parquetrail_core::sink::MemorySink::default();
        let report = parquetrail_core::convert::convert(key, &bytes[..], &sink, &Default::default()).unwrap();
        assert!(report.reconciles(), "{rel}");
        want_rows += report.rows;
        want_quarantined += report.quarantined;
    }
    assert_eq!(rows.len() as u64, want_rows);
    assert_eq!(quarantined.len() as u64, want_quarantined);
}
