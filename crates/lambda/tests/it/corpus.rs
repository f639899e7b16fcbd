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
    assert!(archive.keys().any(|k| k.starts_with("cloudtrail/insights/")));
    assert!(archive.keys().any(|k| k.starts_with("cloudtrail/events/account=111122223333/")));
    let digests: Vec<&String> = archive.keys().filter(|k| k.starts_with("cloudtrail/digests/")).collect();
    assert_eq!(digests.len(), 2, "the corpus's two digests, one row each: {digests:?}");

    // The expected answer from the files themselves (serde_json over each whole file, not our
    // reader): every record of a delivered file is a row exactly once, under its real (decoded)
    // key; every record of an edge case is a row or quarantined. A file the independent parser
    // rejects must be an edge case, and leaves a trace (quarantine), never silently nothing.
    for ((rel, path), key) in local.iter().zip(&keys) {
        let indexes: Vec<i32> = rows.keys().filter(|(k, _)| k == key).map(|(_, i)| *i).collect();
        let quarantined_of = quarantined.keys().filter(|(k, _)| k == key).count();
        let marker = markers.iter().any(|m| m["source_key"] == key.as_str());
        match independent_records(&gunzip(&std::fs::read(path).unwrap())) {
            Some(n) if rel.starts_with("AWSLogs/") => {
                assert_eq!(indexes, (0..n as i32).collect::<Vec<_>>(), "{rel}: each record a row, once");
                assert_eq!(quarantined_of, 0, "{rel}");
            }
            Some(n) => assert_eq!(indexes.len() + quarantined_of, n, "{rel}"),
            None => {
                assert!(rel.starts_with("edge-cases/"), "a delivered file the independent parser rejects: {rel}");
                assert!(marker || quarantined_of > 0, "{rel} left no trace");
            }
        }
    }
}

/// The records of a `{"Records":[…]}` file by serde_json; 0 for a digest (no `Records`); `None`
/// when the whole file is not valid JSON.
fn independent_records(json: &[u8]) -> Option<usize> {
    let v: Value = serde_json::from_slice(json).ok()?;
    Some(v.get("Records").and_then(Value::as_array).map_or(0, Vec::len))
}
