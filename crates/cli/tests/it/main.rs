//! The `parquetrail` binary as a user runs it: exit codes, summaries, quarantine, round trips.

mod backfill;
mod compact;
mod console;
mod console_browser;
mod hostile;
mod insights;
mod lookup;
mod metric_data;
mod serve_clients;
mod shaping;
mod verify;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn parquetrail(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parquetrail")).args(args).current_dir(cwd).output().unwrap()
}

/// The binary with moto's endpoint and credentials, and no profile or session of the machine.
fn parquetrail_on_moto(args: &[&str], cwd: &Path, moto: &parquetrail_testkit::MotoServer) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parquetrail"))
        .args(args)
        .current_dir(cwd)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .envs(moto.env())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

#[test]
fn demo_generates_converts_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let out = parquetrail(&["demo", "--dir", "d", "--mb", "2"], dir.path());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("(reconciled)"), "{text}");
    assert!(text.contains("events: ") && text.contains("top events:") && text.contains("console logins:"), "{text}");
    let parquet = walk(&dir.path().join("d/archive/events")).iter().filter(|p| p.ends_with(".parquet")).count();
    assert!(parquet > 10, "{parquet} parquet files");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn convert_json_export_round_trip_and_idempotent_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(
        parquetrail(&["generate", "trail", "--mb", "2", "--seed", "3", "--org", "o-test12345"], cwd).status.success()
    );
    // The expected answer, from the generated files themselves.
    let input: Vec<Value> = walk(&cwd.join("trail"))
        .iter()
        .flat_map(|p| {
            let mut json = Vec::new();
            let file = std::fs::File::open(p).unwrap();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut json).unwrap();
            let envelope: Value = serde_json::from_slice(&json).unwrap();
            envelope["Records"].as_array().unwrap().clone()
        })
        .collect();
    let out = parquetrail(&["convert", "trail", "--out", "archive", "--json"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (summary["records"].as_u64(), summary["rows"].as_u64(), summary["quarantined"].as_u64()),
        (Some(input.len() as u64), Some(input.len() as u64), Some(0))
    );
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["reconciled"], true);

    // Everything back, in CloudTrail's own envelope: exactly the input's records.
    let out = parquetrail(&["export", "archive", "--format", "records", "--out", "all.json"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Value = serde_json::from_slice(&std::fs::read(cwd.join("all.json")).unwrap()).unwrap();
    let records = all["Records"].as_array().unwrap();
    let by_id = |records: &[Value]| -> BTreeMap<String, Value> {
        records.iter().map(|r| (r["eventID"].as_str().unwrap().to_string(), r.clone())).collect()
    };
    let (exported, expected) = (by_id(records), by_id(&input));
    assert_eq!((records.len(), exported.len()), (input.len(), expected.len()), "every record once");
    for (id, record) in &expected {
        assert_eq!(exported.get(id), Some(record), "{id}");
    }

    // A filtered export holds exactly the matching records.
    let want = input.iter().filter(|r| r["eventName"] == "AssumeRole").count();
    assert!(want > 0);
    let out =
        parquetrail(&["export", "archive", "--event-name", "AssumeRole", "--dataset", "events", "--out", "-"], cwd);
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), want);
    assert!(lines.iter().all(|r| r["eventName"] == "AssumeRole"));

    // Converting again rewrites the same objects with the same bytes: no duplicates.
    // The ledger is a journal of runs: each run adds one segment, and changes nothing else.
    let ledger = |cwd: &Path| walk(&cwd.join("archive/_ledger")).len();
    let outputs = |cwd: &Path| -> Vec<(String, Vec<u8>)> {
        walk(&cwd.join("archive"))
            .into_iter()
            .filter(|p| !p.contains("/_ledger/"))
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect()
    };
    let (before, segments) = (outputs(cwd), ledger(cwd));
    assert!(parquetrail(&["convert", "trail", "--out", "archive", "-j", "1"], cwd).status.success());
    let after = outputs(cwd);
    assert_eq!(before.len(), after.len());
    assert!(before == after, "a rerun changed the archive");
    assert_eq!(ledger(cwd), segments + 1);
}

#[test]
fn bad_input_is_quarantined_named_and_the_rest_proceeds() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let trail = cwd.join("trail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    let good = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","recipientAccountId":"111122223333","requestParameters":{"userName":"bob"},"responseElements":null},{"eventName":"NoTime"}]}"#;
    write(&trail.join("111122223333_CloudTrail_us-east-1_20240301T1000Z_good000000000000.json.gz"), &gzip(good));
    let mut truncated = gzip(good);
    truncated.truncate(truncated.len() / 2);
    write(&trail.join("111122223333_CloudTrail_us-east-1_20240301T1005Z_trunc00000000000.json.gz"), &truncated);
    write(
        &trail.join("111122223333_CloudTrail_us-east-1_20240301T1010Z_badjson000000000.json.gz"),
        &gzip(br#"{"Records":[{"a":1} {"b":2}]}"#),
    );
    write(&trail.join("111122223333_CloudTrail_us-east-1_20240301T1015Z_empty00000000000.json.gz"), b"");
    let digests = cwd.join("trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01");
    // A digest that is no digest is quarantined like a broken log file; a real one is converted.
    write(&digests.join("111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T110000Z.json.gz"), &gzip(b"{}"));
    write(
        &digests.join("111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T120000Z.json.gz"),
        &gzip(br#"{"awsAccountId":"111122223333","digestStartTime":"2024-03-01T11:00:00Z","digestEndTime":"2024-03-01T12:00:00Z","digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"ab","digestSignatureAlgorithm":"SHA256withRSA","previousDigestSignature":null,"logFiles":[]}"#),
    );
    let out = parquetrail(&["convert", "trail", "--out", "archive"], cwd);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED    3 file(s)"), "{text}");
    assert!(text.contains("digests   1 digest file(s), one row each in the digests dataset"), "{text}");
    assert!(text.contains("not a CloudTrail digest: invalid format: no digestPublicKeyFingerprint"), "{text}");
    assert!(text.contains("_trunc00000000000.json.gz") && text.contains("_badjson000000000.json.gz"), "{text}");
    assert!(text.contains("malformed JSON at byte 20"), "{text}");
    assert!(text.contains("records   2 = 1 rows + 1 quarantined  (reconciled)"), "{text}");

    let out = parquetrail(&["convert", "trail", "--out", "archive2", "--json"], cwd);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((s["converted"].as_u64(), s["failed"].as_u64(), s["skipped"].as_u64()), (Some(2), Some(3), Some(1)));
    assert_eq!(s["digests"].as_u64(), Some(1));
    assert_eq!((s["records"].as_u64(), s["rows"].as_u64(), s["quarantined"].as_u64()), (Some(2), Some(1), Some(1)));
    let reasons: Vec<&String> = s["skip_reasons"].as_object().unwrap().keys().collect();
    assert!(reasons.len() == 1 && reasons[0].contains("zero-byte"), "{reasons:?}");
    let summary = stdout(&parquetrail(&["summary", "archive2"], cwd));
    assert!(summary.contains("digests: 1 digest files"), "{summary}");
    // Each failed file has a quarantine object naming it; the unplaceable record keeps its raw text.
    for f in s["failures"].as_array().unwrap() {
        let q = cwd.join("archive2").join(f["quarantine_path"].as_str().unwrap());
        let marker: Value = serde_json::from_slice(&std::fs::read(q).unwrap()).unwrap();
        assert_eq!(marker["source_key"], f["key"]);
    }
    let q = &s["record_quarantines"][0];
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(cwd.join("archive2").join(q.as_str().unwrap())).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert_eq!(line["raw"], r#"{"eventName":"NoTime"}"#);
    assert_eq!(line["reason"], "record has no eventTime");
}

#[test]
fn help_teaches_and_usage_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let help = stdout(&parquetrail(&["--help"], dir.path()));
    for needle in ["demo", "convert", "export", "parquetrail convert ./AWSLogs --out ./archive"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let ddl = parquetrail(&["ddl", "--location", "s3://archive-bucket/lake", "--accounts", "111122223333"], dir.path());
    assert!(ddl.status.success());
    assert_eq!(stdout(&ddl).matches("CREATE EXTERNAL TABLE").count(), 3, "events, insights and digests tables");
    let out = parquetrail(&["ddl", "--location", "./local"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://"), "the error says what a location looks like");
    let out = parquetrail(&["convert", "nowhere", "--out", "a"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"), "the error names the missing path");
    let out = parquetrail(&["convert", ".", "--out", "a", "--compression", "gzip"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--compression"));
}

#[test]
fn converts_from_and_to_s3_through_the_standard_credential_chain() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let Some(moto) =
        parquetrail_testkit::MotoServer::start("converts_from_and_to_s3_through_the_standard_credential_chain")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "1", "--seed", "9"], cwd).status.success());
    let client = runtime.block_on(async {
        moto.create_bucket("trail-bucket").await;
        moto.create_bucket("archive-bucket").await;
        moto.client().await
    });
    let mut uploaded = 0;
    for path in walk(&cwd.join("trail")) {
        let key = format!("prefix with space/{}", path.split("/trail/").nth(1).unwrap());
        let body = std::fs::read(&path).unwrap();
        runtime.block_on(client.put_object().bucket("trail-bucket").key(key).body(body.into()).send()).unwrap();
        uploaded += 1;
    }
    let run = |args: &[&str]| parquetrail_on_moto(args, cwd, &moto);
    // S3 → S3.
    let out = run(&["convert", "s3://trail-bucket/prefix with space/", "--out", "s3://archive-bucket/lake", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s3: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s3["files"].as_u64(), Some(uploaded));
    assert_eq!(s3["reconciled"], true);
    // Local → local gives the same rows, and the same output names (keys from AWSLogs/ on).
    let out = parquetrail(&["convert", "trail", "--out", "archive", "--json"], cwd);
    let local: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s3["rows"], local["rows"]);
    let listed =
        runtime.block_on(client.list_objects_v2().bucket("archive-bucket").prefix("lake/events/").send()).unwrap();
    let mut s3_names: Vec<String> =
        listed.contents().iter().map(|o| o.key().unwrap().trim_start_matches("lake/").to_string()).collect();
    let mut local_names: Vec<String> = walk(&cwd.join("archive/events"))
        .into_iter()
        .map(|p| format!("events/{}", p.split("/archive/events/").nth(1).unwrap()))
        .collect();
    s3_names.sort();
    local_names.sort();
    assert!(!s3_names.is_empty() && s3_names.len() < 1000, "listing fits one page");
    assert_eq!(s3_names, local_names);
    // S3 → local summary works on what was written.
    let out = run(&["convert", "s3://trail-bucket/prefix with space/AWSLogs", "--out", "from-s3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&parquetrail(&["summary", "from-s3"], cwd)).contains("events: "));
}

#[test]
fn generate_spreads_a_tree_over_days_from_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let args =
        ["generate", "trail", "--mb", "2", "--seed", "4", "--start", "2023-12-30", "--days", "3", "--no-insights"];
    let out = parquetrail(&args, cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Keys end in …/CloudTrail/<region>/YYYY/MM/DD/<file>.
    let dates: std::collections::BTreeSet<String> = walk(&cwd.join("trail"))
        .iter()
        .map(|p| p.rsplit('/').skip(1).take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("-"))
        .collect();
    // Deliveries on every day from the start to its third day after (the last round may land on it).
    assert_eq!(dates.first().map(String::as_str), Some("2023-12-30"), "{dates:?}");
    let last = dates.last().unwrap();
    assert!(last.as_str() == "2024-01-01" || last.as_str() == "2024-01-02", "{dates:?}");
    assert!(dates.len() >= 3, "{} days: {dates:?}", dates.len());
    // Same flags, same bytes.
    assert!(parquetrail(&[&["generate", "again"][..], &args[2..]].concat(), cwd).status.success());
    let files = |root: &str| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = walk(&cwd.join(root))
            .into_iter()
            .map(|p| (p.split(&format!("/{root}/")).nth(1).unwrap().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(files("trail"), files("again"));
    assert!(!parquetrail(&["generate", "t", "--mb", "1", "--days", "0"], cwd).status.success());
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    // `parquetrail export … --out - | head` must not panic when head stops reading.
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "1"], cwd).status.success());
    assert!(parquetrail(&["convert", "trail", "--out", "archive"], cwd).status.success());
    for args in [&["export", "archive", "--out", "-"][..], &["summary", "archive"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parquetrail"))
            .args(args)
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
