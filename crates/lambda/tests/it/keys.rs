//! Keys that read differently decoded: with both `Amb+Plus+Key` and `Amb Plus Key` in the trail
//! bucket, every trigger shape converts exactly the object it names. Where AWS documents the key's
//! encoding (S3 event notifications, Batch schema 1.0) the decoded key is the one; where it does not
//! (EventBridge, Batch schema 2.0) the key as given is read first, and its decoded reading only when
//! no object has the key as given.

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::handle;
use serde_json::{Value, json};

use crate::support::*;

const DIR: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/";
const PLUS: &str = "111122223333_CloudTrail_us-east-1_20240301T0100Z_Amb+Plus+Key.json.gz";
const SPACE: &str = "111122223333_CloudTrail_us-east-1_20240301T0100Z_Amb Plus Key.json.gz";
/// Exists only under its decoded reading.
const ONLY_SPACE: &str = "111122223333_CloudTrail_us-east-1_20240301T0105Z_Only Space.json.gz";

fn eventbridge(key: &str) -> Value {
    json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2024-03-01T01:06:00Z", "region": "us-east-1", "resources": [format!("arn:aws:s3:::{TRAIL}")],
        "detail": {"version": "0", "bucket": {"name": TRAIL}, "object": {"key": key, "size": 10, "etag": "e", "sequencer": "1"},
                   "request-id": "r", "requester": "111122223333", "reason": "PutObject"}
    })
}

fn batch(version: &str, key: &str) -> Value {
    let task = if version == "1.0" {
        json!({"taskId": "t", "s3Key": key, "s3VersionId": null, "s3BucketArn": format!("arn:aws:s3:::{TRAIL}")})
    } else {
        json!({"taskId": "t", "s3Key": key, "s3VersionId": null, "s3Bucket": TRAIL})
    };
    json!({"invocationSchemaVersion": version, "invocationId": "i", "job": {"id": "j"}, "tasks": [task]})
}

fn cloudtrail_notice(key: &str) -> Value {
    json!({"s3Bucket": TRAIL, "s3ObjectKey": [key]})
}

/// The source keys of the rows in the archive's Parquet files under `prefix`.
async fn source_keys(w: &World, prefix: &str) -> BTreeSet<String> {
    let listed = w.client.list_objects_v2().bucket(ARCHIVE).prefix(prefix).send().await.unwrap();
    let mut keys = BTreeSet::new();
    for object in listed.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(".parquet")) {
        let body =
            w.client.get_object().bucket(ARCHIVE).key(object).send().await.unwrap().body.collect().await.unwrap();
        for row in parquetrail_core::archive::read_rows(body.into_bytes(), Some(object)).unwrap() {
            keys.insert(row.source_key.to_string());
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trigger_shape_converts_exactly_the_object_it_names() {
    let Some(w) = world("each_trigger_shape_converts_exactly_the_object_it_names").await else { return };
    // Different record counts, so a conversion of the wrong object would show in the rows too.
    for (name, records) in [(PLUS, 3), (SPACE, 4), (ONLY_SPACE, 5)] {
        let body = gzip(&log_file("111122223333", "us-east-1", "2024-03-01T00:59:00Z", records));
        let key = format!("{DIR}{name}");
        w.client.put_object().bucket(TRAIL).key(&key).body(ByteStream::from(body)).send().await.unwrap();
    }
    let (plus, space, only_space) = (format!("{DIR}{PLUS}"), format!("{DIR}{SPACE}"), format!("{DIR}{ONLY_SPACE}"));
    let sqs = |key: &str| sqs_event(&[("m", s3_event(TRAIL, &[key]).to_string())]);
    // (case, event, the one object it must convert)
    let cases: Vec<(&str, Value, &str)> = vec![
        // Documented form-encoding: decoded, and only decoded.
        ("s3-plus", s3_event(TRAIL, &[&plus]), &plus),
        ("s3-space", s3_event(TRAIL, &[&space]), &space),
        ("sqs-s3-plus", sqs(&plus), &plus),
        ("sqs-s3-space", sqs(&space), &space),
        ("batch1-plus", batch("1.0", &form_encode(&plus)), &plus),
        ("batch1-space", batch("1.0", &form_encode(&space)), &space),
        // Plain keys.
        ("cloudtrail-plus", cloudtrail_notice(&plus), &plus),
        ("cloudtrail-space", cloudtrail_notice(&space), &space),
        // Undocumented: the key as given, which exists, even though its decoded reading exists too.
        ("eventbridge-plain-plus", eventbridge(&plus), &plus),
        ("eventbridge-plain-space", eventbridge(&space), &space),
        ("batch2-plain-plus", batch("2.0", &plus), &plus),
        ("batch2-plain-space", batch("2.0", &space), &space),
        // Undocumented and encoded: no object has the key as given, so its decoded reading.
        ("eventbridge-encoded-plus", eventbridge(&form_encode(&plus)), &plus),
        ("eventbridge-encoded-only-space", eventbridge(&form_encode(&only_space)), &only_space),
        ("batch2-encoded-plus", batch("2.0", &form_encode(&plus)), &plus),
        ("batch2-encoded-only-space", batch("2.0", &form_encode(&only_space)), &only_space),
    ];
    for (case, event, want) in &cases {
        let app = w.app(&[("PARQUETRAIL_DESTINATION", &format!("s3://{ARCHIVE}/{case}"))]).await;
        let response = handle(&app, event.clone()).await.unwrap_or_else(|e| panic!("{case}: {e}; input: {event}"));
        if let Some(results) = response.get("results") {
            assert_eq!(results[0]["resultCode"], "Succeeded", "{case}: {response}; input: {event}");
        }
        let converted = source_keys(&w, &format!("{case}/events/")).await;
        assert_eq!(converted, BTreeSet::from([want.to_string()]), "{case}: {response}; input: {event}");
    }
}
