//! `parquetrail verify` as a user runs it, against a trail in moto signed with the test key as
//! CloudTrail signs it: exit 0 only when everything is proven, 1 when anything is not, 2 for
//! usage errors; keys from `--public-keys`, or by default from ListPublicKeys in the trail's home
//! Region (answered by testkit's AWS JSON endpoint). Expected counts come from the generator.

use chrono::{TimeZone, Utc};
use parquetrail_synth::digest::TestSigner;
use parquetrail_testkit::{AwsJsonEndpoint, MotoServer};
use serde_json::{Value, json};

use super::{gzip, stdout};

const HOURS: usize = 3;

/// ListPublicKeys as CloudTrail answers it on the wire: the test key, timestamps in epoch seconds.
fn wire_keys(cli_json: &str) -> Value {
    let mut keys: Value = serde_json::from_str(cli_json).unwrap();
    for key in keys["PublicKeyList"].as_array_mut().unwrap() {
        for field in ["ValidityStartTime", "ValidityEndTime"] {
            let at = chrono::DateTime::parse_from_rfc3339(key[field].as_str().unwrap()).unwrap();
            key[field] = json!(at.timestamp());
        }
    }
    keys
}

#[test]
fn verify_exits_0_only_when_everything_is_proven() {
    let Some(moto) = MotoServer::start("verify_exits_0_only_when_everything_is_proven") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = runtime.block_on(moto.client());
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let (logs, digests) = parquetrail_synth::digest::signed_trail("trail-bucket", 5, start, HOURS);
    assert_eq!(digests.iter().map(|d| d.log_files.len()).sum::<usize>(), logs.len(), "every log file is signed");
    runtime.block_on(async {
        moto.create_bucket("trail-bucket").await;
        for (key, gz) in &logs {
            client.put_object().bucket("trail-bucket").key(key).body(gz.clone().into()).send().await.unwrap();
        }
        for d in &digests {
            let mut put = client.put_object().bucket("trail-bucket").key(&d.key).body(d.gz.clone().into());
            for (name, value) in d.metadata() {
                put = put.metadata(name, value);
            }
            put.send().await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let signer = TestSigner::fixture();
    std::fs::write(cwd.join("keys.json"), signer.public_keys_json(true)).unwrap();
    let endpoint = AwsJsonEndpoint::start([("ListPublicKeys", wire_keys(&signer.public_keys_json(true)))]);
    let no_keys = AwsJsonEndpoint::start([("ListPublicKeys", json!({"PublicKeyList": []}))]);
    let verify_day = |day: &str, extra: &[&str], keys: Option<&AwsJsonEndpoint>| {
        let range = ["--source", "s3://trail-bucket/ct", "--start", day, "--end", day, "--json"];
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_parquetrail"));
        command.arg("verify").args(range).args(extra).current_dir(cwd).env_remove("AWS_PROFILE");
        command.envs(moto.env());
        // Anything the SDK sends to CloudTrail goes to a local endpoint, never elsewhere.
        command.env("AWS_ENDPOINT_URL_CLOUDTRAIL", keys.unwrap_or(&no_keys).url());
        let out = command.output().unwrap();
        let report: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report)
    };
    let verify = |extra: &[&str], keys: Option<&AwsJsonEndpoint>| verify_day("2024-03-01", extra, keys);
    let proven = |report: &Value| {
        let c = &report["counts"];
        (c["digests"].as_u64(), c["valid_digests"].as_u64(), c["log_files"].as_u64(), c["valid_log_files"].as_u64())
    };
    let all = (Some(HOURS as u64), Some(HOURS as u64), Some(logs.len() as u64), Some(logs.len() as u64));

    // Keys from a file, as `aws cloudtrail list-public-keys` prints them.
    let (code, report) = verify(&["--public-keys", "keys.json"], None);
    assert_eq!((code, proven(&report)), (Some(0), all), "{report}");
    assert!(no_keys.requests().is_empty(), "--public-keys asks CloudTrail nothing");

    // By default, ListPublicKeys in the trail's home Region.
    let (code, report) = verify(&[], Some(&endpoint));
    assert_eq!((code, proven(&report)), (Some(0), all), "{report}");
    let asked = endpoint.requests();
    assert!(!asked.is_empty() && asked.iter().all(|r| r.operation == "ListPublicKeys" && r.region == "us-east-1"));

    // A key CloudTrail does not list: no digest is proven, so exit 1.
    let (code, report) = verify(&[], None);
    assert_eq!((code, report["counts"]["valid_digests"].as_u64()), (Some(1), Some(0)), "{report}");
    assert!(!no_keys.requests().is_empty());

    // A range without digests proves nothing: exit 1.
    let (code, report) = verify_day("2024-04-01", &["--public-keys", "keys.json"], None);
    assert_eq!((code, report["counts"]["digests"].as_u64()), (Some(1), Some(0)), "{report}");

    // One modified log file: exit 1, and exactly that file is invalid.
    let victim = digests[1].log_files[0].clone();
    let changed = gzip(b"{\"Records\":[]}");
    runtime.block_on(client.put_object().bucket("trail-bucket").key(&victim).body(changed.into()).send()).unwrap();
    let (code, report) = verify(&["--public-keys", "keys.json"], None);
    assert_eq!(code, Some(1), "{report}");
    let invalid: Vec<&str> = report["log_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] != "valid")
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(invalid, [victim.as_str()], "{report}");

    // Usage errors exit 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_parquetrail"))
        .args(["verify", "--source", "s3://trail-bucket/ct", "--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
