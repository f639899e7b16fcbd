//! Opt-in shaping through the built binary: `--drop-noise` and `--redact-secrets` drop and redact
//! exactly what their rules say, every run reconciles with drops among `filtered`, the counts are
//! per rule, and `export` says the archive was shaped. The expected archive is computed here from
//! the input records (serde_json values), not by our converter.

use serde_json::{Value, json};

use super::{gzip, parquetrail, stdout, write};

const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z_shape000000000.json.gz";

fn records() -> Vec<Value> {
    let base = |i: u32, source: &str, name: &str| {
        json!({"eventVersion": "1.09", "eventTime": format!("2024-03-01T10:00:{i:02}Z"), "eventSource": source,
               "eventName": name, "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
               "eventID": format!("shape-{i}"), "readOnly": true,
               "userIdentity": {"type": "IAMUser", "userName": "alice"}, "sourceIPAddress": "203.0.113.7"})
    };
    let mut service_kms = base(0, "kms.amazonaws.com", "Decrypt");
    service_kms["userIdentity"] = json!({"type": "AWSService", "invokedBy": "s3.amazonaws.com"});
    service_kms["sourceIPAddress"] = json!("s3.amazonaws.com");
    let user_kms = base(1, "kms.amazonaws.com", "Decrypt");
    let mut rds_polling = base(2, "rds.amazonaws.com", "DescribeDBInstances");
    rds_polling["userIdentity"] = json!({"type": "AWSService", "invokedBy": "monitoring.rds.amazonaws.com"});
    let mut assume = base(3, "sts.amazonaws.com", "AssumeRole");
    assume["readOnly"] = json!(false);
    assume["responseElements"] = json!({"credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": "Mar 1, 2024, 11:00:03 AM"}});
    let mut get = base(4, "s3.amazonaws.com", "GetObject");
    get["eventCategory"] = json!("Data");
    get["additionalEventData"] = json!({"bytesTransferredOut": 12.0, "x-amz-id-2": "hostIdEXAMPLE="});
    let plain = base(5, "iam.amazonaws.com", "ListUsers");
    vec![service_kms, user_kms, rds_polling, assume, get, plain]
}

fn exported(cwd: &std::path::Path, archive: &str) -> (Vec<Value>, String) {
    let out = parquetrail(&["export", archive, "--dataset", "events", "--out", "-"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rows: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    rows.sort_by_key(|r| r["eventID"].as_str().unwrap().to_string());
    (rows, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn noise_and_secrets_shape_the_archive_and_every_run_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let input = records();
    write(&cwd.join("trail").join(KEY), &gzip(json!({"Records": input}).to_string().as_bytes()));

    // Without flags: lossless, every record as delivered, and no note.
    let out = parquetrail(&["convert", "trail", "--out", "plain", "--json"], cwd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (rows, note) = exported(cwd, "plain");
    assert_eq!(rows, input);
    assert!(!note.contains("shaped"), "{note}");

    // With both sets.
    let out = parquetrail(&["convert", "trail", "--out", "shaped", "--drop-noise", "--redact-secrets", "--json"], cwd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((s["records"].as_u64(), s["rows"].as_u64(), s["filtered"].as_u64()), (Some(6), Some(4), Some(2)), "{s}");
    assert_eq!(s["reconciled"], true, "{s}");
    assert_eq!(
        s["shaped"],
        json!({"noise/kms-crypto-by-aws-service": 1, "noise/rds-describe-polling-by-aws-service": 1,
               "secrets/s3-extended-request-ids": 1, "secrets/session-tokens": 1})
    );
    // The reference: the input without the two service calls, the two secrets replaced.
    let mut expected: Vec<Value> = input
        .iter()
        .filter(|r| !(r["userIdentity"]["type"] == "AWSService" && r["readOnly"] == true))
        .cloned()
        .collect();
    for r in &mut expected {
        if let Some(token) = r.pointer_mut("/responseElements/credentials/sessionToken") {
            *token = json!("REDACTED");
        }
        if let Some(id) = r.pointer_mut("/additionalEventData/x-amz-id-2") {
            *id = json!("REDACTED");
        }
    }
    let (rows, note) = exported(cwd, "shaped");
    assert_eq!(rows, expected);
    assert!(note.contains("shaped when converted, by noise@1") && note.contains("secrets@1"), "{note}");
    assert!(note.contains("drops kms-crypto-by-aws-service") && note.contains("redacts session-tokens"), "{note}");

    // The human summary names the rules; a user's set with a mistake is refused before anything runs.
    let human = parquetrail(&["convert", "trail", "--out", "shaped", "--drop-noise"], cwd);
    assert!(stdout(&human).contains("shaped    noise/kms-crypto-by-aws-service: 1"), "{}", stdout(&human));
    write(&cwd.join("ours.json"), br#"{"name":"ours","version":1,"rules":[{"id":"x","action":"redact"}]}"#);
    let bad = parquetrail(&["convert", "trail", "--out", "other", "--shaping-rules", "ours.json"], cwd);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("a redact rule needs `keys`"), "{bad:?}");
    assert!(!cwd.join("other").exists(), "nothing is written before the rules are checked");
}
