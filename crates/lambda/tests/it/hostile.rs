//! The hostile files of issue 15 through the Lambda's real handler on moto, in each trigger's
//! terms: a file no retry can change is quarantined and its message acknowledged (SQS), the
//! invocation succeeds (S3 event), or its task is a `PermanentFailure` (S3 Batch) — never a
//! retryable answer that would send it round until the DLQ. Redelivering the same batch gives the
//! same answer and adds no row. Expected rows come from the input the test writes.

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::handle;
use serde_json::{Value, json};

use crate::support::*;

const DAY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T";
const PADDED: &str = "0300Z_NulPaddedGzip00.json.gz";
const GARBAGE: &str = "0305Z_GarbageBytes000.json.gz";
const AMPLIFY: &str = "0310Z_TinyAmplifier00.json.gz";
const UNNAMEABLE: &str = "0315Z_UnnameableRegn.json.gz";
const PLAIN_TEXT: &str = "0320Z_PlainTextFile0.json.gz";

fn key(name: &str) -> String {
    format!("{DAY}{name}")
}

/// Ordinary records with event IDs `<tag>-<i>`.
fn records(tag: &str, n: usize, region: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"eventVersion": "1.09", "eventTime": "2024-03-01T03:00:00Z", "eventName": "Op",
                   "eventSource": "iam.amazonaws.com", "awsRegion": region, "eventID": format!("{tag}-{i}"),
                   "recipientAccountId": "111122223333"})
        })
        .collect()
}

fn envelope(records: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// The rows and quarantined records a file's input holds; `None` for a file quarantined whole.
type Expected = Option<(usize, usize)>;

/// The hostile objects, each with what its input holds.
fn hostile() -> Vec<(String, Vec<u8>, Expected)> {
    let amplify = 300_000;
    let mut unnameable = records("un", 3, "us-east-1");
    // 43 × `é` escapes to 258 bytes: no file name can hold it, so the record is quarantined.
    unnameable.push(records("bad", 1, &"é".repeat(43)).remove(0));
    vec![
        // NUL padding after the gzip stream, as gzip(1) accepts.
        (key(PADDED), [gzip(&envelope(records("pad", 4, "us-east-1"))), vec![0; 512]].concat(), Some((4, 0))),
        (key(GARBAGE), [&[0x1f, 0x8b][..], b"\x08\x00 not deflate at all"].concat(), None),
        (
            key(AMPLIFY),
            gzip(format!(r#"{{"Records":[{}]}}"#, vec!["1"; amplify].join(",")).as_bytes()),
            Some((0, amplify)),
        ),
        (key(UNNAMEABLE), gzip(&envelope(unnameable)), Some((3, 1))),
        (key(PLAIN_TEXT), b"hello, this is not CloudTrail".to_vec(), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_acknowledged_or_permanent_failures_in_every_trigger() {
    let Some(w) = world("hostile_files_are_acknowledged_or_permanent_failures_in_every_trigger").await else {
        return;
    };
    // The amplifier's 300,000 quarantined records are uploaded in parts.
    if !w.moto.supports_multipart("hostile_files_are_acknowledged_or_permanent_failures_in_every_trigger") {
        return;
    }
    let files = hostile();
    for (k, body, _) in &files {
        w.client.put_object().bucket(TRAIL).key(k).body(ByteStream::from(body.clone())).send().await.unwrap();
    }
    let keys: Vec<&str> = files.iter().map(|(k, _, _)| k.as_str()).chain([keys::CORRUPT]).collect();
    let app = w.app(&[]).await;

    // SQS: one message per file, and a good one; twice, as a redelivery would.
    let mut messages: Vec<(String, String)> =
        keys.iter().enumerate().map(|(i, k)| (format!("m-{i}"), s3_event(TRAIL, &[k]).to_string())).collect();
    messages.push(("m-good".into(), s3_event(TRAIL, &[keys::GOOD]).to_string()));
    let messages: Vec<(&str, String)> = messages.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
    let first = handle(&app, sqs_event(&messages)).await.unwrap();
    assert_eq!(first["batchItemFailures"], json!([]), "acknowledged, not redelivered: {first}");
    let rows_first = w.rows().await;
    let again = handle(&app, sqs_event(&messages)).await.unwrap();
    assert_eq!(again["batchItemFailures"], json!([]), "{again}");
    assert_eq!(w.rows().await, rows_first, "a redelivery adds no row");

    let from = |k: &str| rows_first.keys().filter(|(key, _)| key == k).count();
    assert_eq!(from(keys::GOOD), 20);
    let archive = w.objects(ARCHIVE).await;
    let file_markers: Vec<Value> = archive
        .iter()
        .filter(|(k, _)| k.starts_with("cloudtrail/quarantine/files/"))
        .map(|(_, v)| serde_json::from_slice(v).unwrap())
        .collect();
    for (k, _, expected) in &files {
        let marker = file_markers.iter().find(|m| m["source_key"] == k.as_str());
        match expected {
            None => {
                assert!(marker.is_some(), "{k} is quarantined whole: {file_markers:?}");
                assert_eq!(from(k), 0, "{k}");
            }
            Some((rows, quarantined)) => {
                assert!(marker.is_none(), "{k} converts: {marker:?}");
                assert_eq!(from(k), *rows, "{k}");
                let stem = k.rsplit('/').next().unwrap().trim_end_matches(".json.gz");
                let lines = quarantined_records(&archive, stem);
                // Past the quarantine cap, the last line names the rest by count.
                let counted: usize = lines.iter().map(|l| l["omitted"].as_u64().map_or(1, |n| n as usize)).sum();
                assert_eq!(counted, *quarantined, "{k}");
            }
        }
    }
    assert!(file_markers.iter().any(|m| m["source_key"] == keys::CORRUPT), "the truncated gzip");

    // A direct S3 notification of all of them: the invocation succeeds, so Lambda does not retry it.
    let direct = handle(&app, s3_event(TRAIL, &keys)).await;
    assert!(direct.is_ok(), "{direct:?}");
    assert_eq!(w.rows().await, rows_first);

    // S3 Batch: a file quarantined whole is a PermanentFailure naming its quarantine; a file
    // whose bad records were quarantined succeeded.
    let tasks: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"taskId": format!("t-{i}"), "s3Key": k, "s3VersionId": null, "s3Bucket": TRAIL}))
        .collect();
    let batch = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job"}, "tasks": tasks});
    let response = handle(&app, batch).await.unwrap();
    let results = response["results"].as_array().unwrap();
    for (i, k) in keys.iter().enumerate() {
        let whole = files.iter().find(|(f, _, _)| f == k).is_none_or(|(_, _, e)| e.is_none());
        let want = if whole { "PermanentFailure" } else { "Succeeded" };
        assert_eq!(results[i]["resultCode"], want, "{k}: {}", results[i]);
        if whole {
            assert!(results[i]["resultString"].as_str().unwrap().contains("quarantine"), "{}", results[i]);
        }
    }
    assert_eq!(w.rows().await, rows_first);
}
