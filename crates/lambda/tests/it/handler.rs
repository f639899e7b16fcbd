//! Every trigger shape through `handler::handle` against real S3 (moto).

use parquetrail_lambda::handler::handle;
use serde_json::{Value, json};

use crate::support::*;

/// Rows expected per announced log file: all records but the one without eventTime.
fn expected_rows(key: &str) -> usize {
    match key {
        k if k == keys::GOOD => 20,
        k if k == keys::SPACED => 5,
        k if k == keys::SECOND => 7,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_notification_converts_decodes_keys_and_is_idempotent() {
    let Some(w) = world("s3_notification_converts_decodes_keys_and_is_idempotent").await else { return };
    let app = w.app(&[]).await;
    let event = s3_event(TRAIL, &[keys::GOOD, keys::SPACED]);
    let response = handle(&app, event.clone()).await.unwrap();
    let objects = response["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2, "{response}");
    for o in objects {
        let key = o["key"].as_str().unwrap();
        assert_eq!(o["rows"].as_u64().unwrap() as usize, expected_rows(key), "{o}");
        // records = rows + quarantined
        assert_eq!(o["records"].as_u64(), Some(o["rows"].as_u64().unwrap() + o["quarantined"].as_u64().unwrap()));
    }
    // The form-encoded key with a space, '+' and '%' was decoded to the real key.
    assert_eq!(objects[1]["key"], keys::SPACED);
    let rows = w.rows().await;
    assert_eq!(rows.len(), 25);
    let archive = w.objects(ARCHIVE).await;
    assert!(
        archive
            .keys()
            .any(|k| k.starts_with("cloudtrail/events/account=111122223333/region=eu-west-1/date=2024-03-02/"))
    );
    assert!(
        archive
            .keys()
            .any(|k| k.starts_with("cloudtrail/events/account=111122223333/region=eu-west-1/date=2024-03-01/"))
    );
    assert_eq!(archive.keys().filter(|k| k.starts_with("cloudtrail/quarantine/records/")).count(), 2);

    // Each object has its ledger line (the invocation's objects share one segment), with the SHA-256 of its inflated content (what CloudTrail's
    // digests sign), so `parquetrail verify --archive` reconciles a Lambda-fed archive.
    let sources = w.objects(TRAIL).await;
    let ledger = |archive: &std::collections::BTreeMap<String, Vec<u8>>| -> Vec<Value> {
        archive
            .iter()
            .filter(|(k, _)| k.starts_with("cloudtrail/_ledger/lambda-") && k.ends_with(".jsonl"))
            .flat_map(|(_, body)| {
                String::from_utf8_lossy(body).lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>()
            })
            .collect()
    };
    let lines = ledger(&archive);
    assert_eq!(lines.len(), 2, "one ledger line per object: {lines:?}");
    for line in &lines {
        let key = line["key"].as_str().unwrap();
        let inflated = gunzip(&sources[key]);
        assert_eq!(line["sha256"].as_str().unwrap(), sha256_hex(&inflated), "{key}");
        assert_eq!(line["status"], "converted");
        assert_eq!(line["rows"].as_u64().unwrap() as usize, expected_rows(key));
        assert!(!line["outputs"].as_array().unwrap().is_empty());
    }

    // A retry, a duplicate and two concurrent duplicates leave exactly the same outputs, and
    // still one ledger line per object (only its time may change).
    handle(&app, event.clone()).await.unwrap();
    let (a, b) = tokio::join!(handle(&app, event.clone()), handle(&app, event));
    a.unwrap();
    b.unwrap();
    let again = w.objects(ARCHIVE).await;
    let outputs = |a: &std::collections::BTreeMap<String, Vec<u8>>| {
        a.iter()
            .filter(|(k, _)| !k.starts_with("cloudtrail/_ledger/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outputs(&again), outputs(&archive), "re-invocations changed the archive");
    assert_eq!(ledger(&again).len(), 2);
    assert_eq!(w.rows().await.len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_reports_exactly_the_bad_messages() {
    let Some(w) = world("sqs_batch_reports_exactly_the_bad_messages").await else { return };
    let app = w.app(&[]).await;
    let cloudtrail_notice = json!({"s3Bucket": TRAIL, "s3ObjectKey": [keys::GOOD, keys::SECOND]});
    let event = sqs_event(&[
        ("m-s3", s3_event(TRAIL, &[keys::SPACED]).to_string()),
        ("m-sns", sns_envelope(&s3_event(TRAIL, &[keys::GOOD]))),
        ("m-cloudtrail", sns_envelope(&cloudtrail_notice)),
        ("m-raw-cloudtrail", cloudtrail_notice.to_string()),
        ("m-garbage", "this is not a notification".to_string()),
        ("m-test", json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": TRAIL}).to_string()),
        // Permanent problems are quarantined or reported, and acknowledged.
        ("m-corrupt", s3_event(TRAIL, &[keys::CORRUPT, keys::BAD_JSON, keys::DIGEST]).to_string()),
        ("m-missing", s3_event(TRAIL, &[keys::MISSING]).to_string()),
        // A bucket that does not exist (yet): retryable, so redelivered rather than dropped.
        ("m-nobucket", s3_event("no-such-bucket-here", &[keys::GOOD]).to_string()),
    ]);
    let response = handle(&app, event).await.unwrap();
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, ["m-garbage", "m-nobucket"], "{response}");

    let archive = w.objects(ARCHIVE).await;
    // Both broken files have quarantine objects naming bucket, key and reason.
    for key in [keys::CORRUPT, keys::BAD_JSON] {
        let marker = archive
            .iter()
            .filter(|(k, _)| k.starts_with("cloudtrail/quarantine/files/"))
            .map(|(_, v)| serde_json::from_slice::<Value>(v).unwrap())
            .find(|m| m["source_key"] == key)
            .unwrap_or_else(|| panic!("no quarantine object for {key}"));
        assert_eq!(marker["source_bucket"], TRAIL);
        assert!(!marker["reason"].as_str().unwrap().is_empty());
    }
    assert!(!archive.keys().any(|k| k.contains("CorruptGzip") && k.ends_with(".parquet")), "no partial output");
    assert_eq!(w.rows().await.len(), 32, "GOOD, SPACED and SECOND converted once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_sns_test_event_and_unknown_shapes() {
    let Some(w) = world("eventbridge_sns_test_event_and_unknown_shapes").await else { return };
    let app = w.app(&[]).await;
    let eventbridge = json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2024-03-01T00:06:00Z", "region": "us-east-1", "resources": [format!("arn:aws:s3:::{TRAIL}")],
        "detail": {"version": "0", "bucket": {"name": TRAIL}, "object": {"key": keys::SECOND, "size": 10, "etag": "e", "sequencer": "1"},
                   "request-id": "r", "requester": "111122223333", "reason": "PutObject"}
    });
    let response = handle(&app, eventbridge).await.unwrap();
    assert_eq!(response["objects"][0]["rows"], 7, "{response}");

    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:t:s",
        "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:111122223333:t", "Subject": null,
                "Message": json!({"s3Bucket": TRAIL, "s3ObjectKey": [keys::GOOD]}).to_string(), "Timestamp": "2024-03-01T00:06:00.000Z"}}]});
    let response = handle(&app, sns).await.unwrap();
    assert_eq!(response["objects"][0]["rows"], 20, "{response}");

    let test_event =
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-01T00:00:00Z", "Bucket": TRAIL});
    assert_eq!(handle(&app, test_event).await.unwrap(), json!({"ignored": "s3:TestEvent"}));

    let unknown = json!({"hello": "world"});
    let err = handle(&app, unknown).await.unwrap_err();
    assert!(err.to_string().contains("unrecognised"), "{err}");

    // A direct invocation whose object fails transiently fails the invocation, so Lambda retries.
    let err = handle(&app, s3_event("no-such-bucket-here", &[keys::GOOD])).await.unwrap_err();
    assert!(err.to_string().contains("will be retried"), "{err}");
    assert_eq!(w.rows().await.len(), 27);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_operations_answer_per_task_result_codes() {
    let Some(w) = world("batch_operations_answer_per_task_result_codes").await else { return };
    let app = w.app(&[]).await;
    let task = |id: &str, key: &str| json!({"taskId": id, "s3Key": form_encode(key), "s3VersionId": null, "s3BucketArn": format!("arn:aws:s3:::{TRAIL}")});
    let v1 = json!({
        "invocationSchemaVersion": "1.0", "invocationId": "inv-1", "job": {"id": "job-1"},
        "tasks": [task("t-good", keys::SPACED)]
    });
    let response = handle(&app, v1).await.unwrap();
    assert_eq!(response["invocationSchemaVersion"], "1.0");
    assert_eq!(response["invocationId"], "inv-1");
    assert_eq!(response["treatMissingKeysAs"], "PermanentFailure");
    assert_eq!(response["results"][0]["taskId"], "t-good");
    assert_eq!(response["results"][0]["resultCode"], "Succeeded", "{response}");

    let task2 = |id: &str, bucket: &str, key: &str| json!({"taskId": id, "s3Key": key, "s3VersionId": null, "s3Bucket": bucket});
    let v2 = json!({
        "invocationSchemaVersion": "2.0", "invocationId": "inv-2",
        "job": {"id": "job-2", "userArguments": {"destination": format!("s3://{ARCHIVE}/backfill"), "dataset": "events"}},
        "tasks": [
            task2("t-1", TRAIL, keys::GOOD),
            task2("t-2", TRAIL, keys::CORRUPT),
            task2("t-3", TRAIL, keys::MISSING),
            task2("t-4", "no-such-bucket-here", keys::GOOD),
            task2("t-5", TRAIL, keys::DIGEST),
        ]
    });
    let response = handle(&app, v2).await.unwrap();
    let codes: Vec<(&str, &str)> = response["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["taskId"].as_str().unwrap(), r["resultCode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("t-1", "Succeeded"),
            ("t-2", "PermanentFailure"),
            ("t-3", "PermanentFailure"),
            ("t-4", "TemporaryFailure"),
            ("t-5", "Succeeded")
        ],
        "{response}"
    );
    assert!(response["results"][1]["resultString"].as_str().unwrap().contains("quarantine"), "{response}");
    let archive = w.objects(ARCHIVE).await;
    assert!(
        archive.keys().any(|k| k.starts_with("backfill/events/account=111122223333/")),
        "userArguments.destination used"
    );
    assert!(
        archive
            .keys()
            .any(|k| k.starts_with("backfill/digests/account=111122223333/region=us-east-1/date=2024-03-01/")),
        "the digest is a row of `digests`"
    );

    let bad_args = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv-3",
        "job": {"id": "job-3", "userArguments": {"destinaton": "s3://x"}}, "tasks": [task2("t-1", TRAIL, keys::GOOD)]});
    let response = handle(&app, bad_args).await.unwrap();
    assert_eq!(response["results"][0]["resultCode"], "PermanentFailure");
    assert!(response["results"][0]["resultString"].as_str().unwrap().contains("destinaton"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_filters_apply_and_reconcile() {
    let Some(w) = world("event_filters_apply_and_reconcile").await else { return };
    let app = w.app(&[("PARQUETRAIL_EXCLUDE_EVENT_SOURCES", "iam.amazonaws.com")]).await;
    let response = handle(&app, s3_event(TRAIL, &[keys::GOOD])).await.unwrap();
    let o = &response["objects"][0];
    assert_eq!(
        (o["records"].as_u64(), o["rows"].as_u64(), o["filtered"].as_u64(), o["quarantined"].as_u64()),
        (Some(21), Some(0), Some(20), Some(1))
    );
}

/// With `PARQUETRAIL_SHAPING=noise` and a rule set of the user's own, the rules' drops count as
/// filtered (the object still reconciles) and the archive records which sets shaped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_drops_count_as_filtered_and_the_archive_records_the_rules() {
    let Some(w) = world("shaping_drops_count_as_filtered_and_the_archive_records_the_rules").await else { return };
    let ours = r#"{"name":"ours","version":2,"rules":[{"id":"no-iam","action":"drop","match":{"eventSource":["iam.amazonaws.com"]}}]}"#;
    let app = w.app(&[("PARQUETRAIL_SHAPING", "noise"), ("PARQUETRAIL_SHAPING_RULES", ours)]).await;
    let response = handle(&app, s3_event(TRAIL, &[keys::GOOD])).await.unwrap();
    let o = &response["objects"][0];
    assert_eq!(
        (o["records"].as_u64(), o["rows"].as_u64(), o["filtered"].as_u64(), o["quarantined"].as_u64()),
        (Some(21), Some(0), Some(20), Some(1)),
        "{o}"
    );
    assert_eq!(o["shaped"], json!({"ours/no-iam": 20}), "every drop is counted under its rule");
    let recorded: Vec<String> =
        w.objects(ARCHIVE).await.into_keys().filter(|k| k.starts_with("cloudtrail/_shaping/")).collect();
    assert_eq!(recorded, ["cloudtrail/_shaping/noise@1.json", "cloudtrail/_shaping/ours@2.json"]);
}
