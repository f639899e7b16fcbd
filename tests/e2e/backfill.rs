//! Backfill against a real local S3 endpoint (moto): a generated multi-account, multi-region
//! organization trail of more than 5,000 objects under a trail prefix, then
//! 1. a date-range backfill converts exactly the objects in range (reconciled against the upload),
//!    log files into rows and signed digest files into `digests` rows with their signatures;
//! 2. a second run does no work;
//! 3. a run interrupted midway and rerun leaves every row exactly once;
//! 4. injected transient S3 errors (listing, GETs, PUTs) are retried without loss;
//! 5. the Batch Operations manifest, fed task by task through the real Lambda handler's Batch
//!    path, yields byte-identical outputs to the local backfill.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use chrono::NaiveDate;
use parquetrail_core::convert::Options;
use parquetrail_ingest::Storage;
use parquetrail_ingest::backfill::{Backfill, Progress, Report};
use parquetrail_ingest::ledger::{Checkpoint, Entry, Status};
use parquetrail_ingest::listing::{DatasetChoice, Selection};
use parquetrail_ingest::s3::{S3Limits, S3Settings, S3Storage};
use parquetrail_lambda::config::Config;
use parquetrail_lambda::handler::{App, handle};
use parquetrail_synth::digest::{ChainSpec, TestSigner, sign_chain};
use parquetrail_synth::{TreeOptions, generate_files};
use parquetrail_testkit::{Fault, FaultPlan, MotoServer};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const TRAIL: &str = "trail";
const ARCHIVE: &str = "archive";
const PREFIX: &str = "cloudtrail";
const ORG: &str = "o-e2etest0001";
const OBJECTS: usize = 5200;

/// One uploaded object: its records, its delivery date from the key, and for a digest file its
/// signature (its S3 metadata).
struct Uploaded {
    records: u64,
    date: NaiveDate,
    signature: Option<String>,
}

fn is_digest(key: &str) -> bool {
    key.contains("/CloudTrail-Digest/")
}

fn delivery_date(key: &str) -> NaiveDate {
    let parts: Vec<&str> = key.split('/').collect();
    let n = parts.len();
    NaiveDate::from_ymd_opt(parts[n - 4].parse().unwrap(), parts[n - 3].parse().unwrap(), parts[n - 2].parse().unwrap())
        .unwrap_or_else(|| panic!("no date in {key}"))
}

/// Generates and uploads the tree (concurrently); returns what was uploaded by key.
async fn upload(client: &aws_sdk_s3::Client) -> BTreeMap<String, Uploaded> {
    let options = TreeOptions {
        seed: 2024,
        target_json_bytes: u64::MAX,
        accounts: 4,
        regions: ["us-east-1", "eu-west-1", "ap-southeast-2"].map(String::from).to_vec(),
        org_id: Some(ORG.into()),
        prefix: Some(PREFIX.into()),
        interval_minutes: 60,
        gzip_level: 1,
        ..TreeOptions::default()
    };
    let mut uploaded = BTreeMap::new();
    let mut puts = JoinSet::new();
    // The log files the digests below sign: the first account's, in us-east-1 (inflated).
    let mut account_dir: Option<String> = None;
    let mut logs: Vec<(String, Vec<u8>)> = Vec::new();
    for file in generate_files(&options).take(OBJECTS) {
        let dir = account_dir.get_or_insert_with(|| file.key.split("/CloudTrail").next().unwrap().to_string());
        if file.key.starts_with(dir.as_str()) && file.key.contains("/CloudTrail/us-east-1/") {
            logs.push((file.key.clone(), parquetrail_core::digest::inflate(&file.gz[..], u64::MAX).unwrap()));
        }
        let (records, date) = (file.records as u64, delivery_date(&file.key));
        uploaded.insert(file.key.clone(), Uploaded { records, date, signature: None });
        while puts.len() >= 32 {
            puts.join_next().await.unwrap().unwrap();
        }
        let put = client.put_object().bucket(TRAIL).key(&file.key).body(ByteStream::from(file.gz)).send();
        puts.spawn(async move { put.await.map(|_| ()).unwrap() });
    }
    while let Some(done) = puts.join_next().await {
        done.unwrap();
    }
    // Signed digest chains of one account and region: two hours of the first day (before the
    // range) and three hours of the third (the range's first day), with the signature in the
    // objects' metadata as CloudTrail stores it.
    let account_dir = account_dir.unwrap();
    let account = account_dir.rsplit('/').next().unwrap().to_string();
    let days: Vec<NaiveDate> = uploaded.values().map(|u| u.date).collect::<BTreeSet<_>>().into_iter().collect();
    for (day, hours) in [(days[0], 2), (days[2], 3)] {
        let spec = ChainSpec {
            bucket: TRAIL.into(),
            prefix: Some(PREFIX.into()),
            org_id: Some(ORG.into()),
            account: account.clone(),
            region: "us-east-1".into(),
            trail: "org_trail".into(),
            home_region: "us-east-1".into(),
            start: day.and_hms_opt(0, 0, 0).unwrap().and_utc(),
            hours,
        };
        for d in sign_chain(&TestSigner::fixture(), &spec, &logs) {
            let mut put = client.put_object().bucket(TRAIL).key(&d.key).body(ByteStream::from(d.gz.clone()));
            for (name, value) in d.metadata() {
                put = put.metadata(name, value);
            }
            put.send().await.unwrap();
            let signature = Some(d.signature.clone());
            uploaded.insert(d.key.clone(), Uploaded { records: 0, date: delivery_date(&d.key), signature });
        }
    }
    // An object a backfill must never list: AWS Config's check file.
    let config = format!("{account_dir}/Config/ConfigWritabilityCheckFile");
    client.put_object().bucket(TRAIL).key(config).body(ByteStream::from(Vec::new())).send().await.unwrap();
    uploaded
}

fn job(source: Arc<dyn Storage>, dest: Arc<dyn Storage>, dest_prefix: &str, start: &str, end: &str) -> Backfill {
    let date = |d: &str| Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap());
    Backfill {
        source,
        source_prefix: PREFIX.into(),
        dest,
        dest_prefix: dest_prefix.into(),
        selection: Selection { start: date(start), end: date(end), org: Some(ORG.into()), ..Selection::default() },
        options: Options::default(),
        concurrency: 8,
        checkpoint: Checkpoint { objects: 100, interval: Duration::from_secs(2) },
    }
}

/// Every object under a prefix of the archive bucket, with its bytes, keyed relative to it.
async fn archive(storage: &S3Storage, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let listed = storage.list(&format!("{prefix}/")).await.unwrap();
    let mut reads = JoinSet::new();
    // Bounded: thousands of connections at once overflow moto's listen backlog (connect timeouts).
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    for meta in listed {
        let storage = storage.clone();
        let prefix = prefix.to_string();
        let permits = permits.clone();
        reads.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let mut body = storage.read(&meta.key).await.unwrap();
            let rel = meta.key[prefix.len() + 1..].to_string();
            if rel.starts_with("manifests/") {
                // Manifests name files by URI: make them relative, so archives compare across prefixes.
                let base = storage.uri(&format!("{prefix}/"));
                body = String::from_utf8(body).unwrap().replace(&base, "").into_bytes();
            }
            (rel, body)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = reads.join_next().await {
        let (k, v) = r.unwrap();
        out.insert(k, v);
    }
    out
}

/// Rows of every events and insights output, by (source key, record index): a duplicate row
/// fails the test.
fn rows(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<(String, i32), String> {
    let mut rows = BTreeMap::new();
    for (path, bytes) in files.iter().filter(|(p, _)| p.ends_with(".parquet") && !p.starts_with("digests/")) {
        for row in parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes.clone()), Some(path)).unwrap() {
            let id = (row.source_key.to_string(), row.source_index);
            assert!(rows.insert(id.clone(), path.clone()).is_none(), "duplicate row {id:?} in {path}");
        }
    }
    rows
}

fn ledger(files: &BTreeMap<String, Vec<u8>>) -> Vec<Entry> {
    files
        .iter()
        .filter(|(p, _)| p.starts_with("_ledger/"))
        .flat_map(|(_, body)| {
            String::from_utf8(body.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn datasets(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    assert_manifests_list_every_output(files);
    files
        .iter()
        .filter(|(p, _)| !p.starts_with("_ledger/") && !p.starts_with("manifests/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The manifests (what readers see) list exactly the archive's Parquet files, each once.
fn assert_manifests_list_every_output(files: &BTreeMap<String, Vec<u8>>) {
    let mut listed = Vec::new();
    for (path, body) in files.iter().filter(|(p, _)| p.starts_with("manifests/")) {
        assert!(path.ends_with("/symlink.txt"), "{path}");
        listed.extend(String::from_utf8(body.clone()).unwrap().lines().map(str::to_string));
    }
    listed.sort();
    let parquet: Vec<String> = files.keys().filter(|p| p.ends_with(".parquet")).cloned().collect();
    assert_eq!(listed, parquet, "manifests list every output exactly once");
}

/// The `digests` rows of an archive read back with pyarrow: signature by source key.
fn digest_signatures(python: &str, files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("digests/")) {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    let script = "import json, sys, pyarrow.dataset as ds\n\
                  t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()\n\
                  print(json.dumps([[r['source_key'], r['signature']] for r in t.to_pylist()]))";
    let read = std::process::Command::new(python)
        .args(["-c", script, &dir.path().join("digests").display().to_string()])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let rows: Vec<(String, String)> = serde_json::from_slice(&read.stdout).unwrap();
    let n = rows.len();
    let by_key: BTreeMap<String, String> = rows.into_iter().collect();
    assert_eq!(by_key.len(), n, "one row per digest");
    by_key
}

async fn run(job: &Backfill) -> Report {
    job.run(Arc::new(Progress::default()), CancellationToken::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_of_an_org_trail_is_exact_resumable_retried_and_matches_batch_operations() {
    let test = "backfill_of_an_org_trail_is_exact_resumable_retried_and_matches_batch_operations";
    let Some(moto) = MotoServer::start(test) else { return };
    let client = moto.client().await;
    moto.create_bucket(TRAIL).await;
    moto.create_bucket(ARCHIVE).await;
    let started = Instant::now();
    let uploaded = upload(&client).await;
    let days: BTreeSet<NaiveDate> = uploaded.values().map(|u| u.date).collect();
    eprintln!("uploaded {} objects over {} days in {:.1?}", uploaded.len(), days.len(), started.elapsed());
    assert!(uploaded.len() >= 5000 && days.len() >= 6, "{} objects, {} days", uploaded.len(), days.len());
    let day: Vec<NaiveDate> = days.into_iter().collect();
    // A range in the middle: whole days before and after it stay out.
    let (start, end) = (day[2], day[4]);
    let (start_s, end_s) = (start.to_string(), end.to_string());
    let in_range: BTreeMap<&String, &Uploaded> =
        uploaded.iter().filter(|(_, u)| u.date >= start && u.date <= end).collect();
    let in_range_records: u64 = in_range.values().map(|u| u.records).sum();
    assert!(in_range.len() > 100 && in_range.len() < uploaded.len() / 2, "{}", in_range.len());
    let in_range_digests: BTreeSet<String> = in_range.keys().filter(|k| is_digest(k)).map(|k| k.to_string()).collect();
    assert_eq!(in_range_digests.len(), 3, "the range's digests, not the first day's");

    let source: Arc<dyn Storage> = Arc::new(S3Storage::new(client.clone(), TRAIL));
    let archive_storage = S3Storage::new(client.clone(), ARCHIVE);
    let dest: Arc<dyn Storage> = Arc::new(archive_storage.clone());

    // 1. The range converts exactly the objects in range.
    let t = Instant::now();
    let first = run(&job(source.clone(), dest.clone(), "local", &start_s, &end_s)).await;
    eprintln!("backfill of {} objects: {:.1?}", first.totals.converted, t.elapsed());
    assert!(first.complete(), "{:?}", first.failures);
    assert_eq!(
        (first.listed, first.totals.converted, first.totals.skipped),
        (in_range.len() as u64, in_range.len() as u64, 0)
    );
    assert_eq!((first.totals.records, first.totals.rows), (in_range_records, in_range_records));
    assert_eq!(first.accounts.len(), 4);
    assert_eq!(first.regions.len(), 3);
    assert_eq!(first.orgs, [ORG]);
    // Only day prefixes in range were listed: 4 accounts × (events in 3 regions + insight regions
    // + digest regions) × 3 days at most.
    assert!(first.days <= 4 * 9 * 3, "{} day prefixes listed", first.days);
    let local = archive(&archive_storage, "local").await;
    let local_rows = rows(&local);
    assert_eq!(local_rows.len() as u64, in_range_records);
    let want_keys: BTreeSet<String> = in_range.keys().map(|k| k.to_string()).collect();
    let log_keys: BTreeSet<String> = want_keys.difference(&in_range_digests).cloned().collect();
    let row_keys: BTreeSet<String> = local_rows.keys().map(|(k, _)| k.clone()).collect();
    assert_eq!(row_keys, log_keys, "rows come from exactly the log files in range");
    let entries = ledger(&local);
    let ledgered: BTreeSet<String> = entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!((entries.len(), &ledgered), (in_range.len(), &want_keys), "one ledger entry per object");
    for e in &entries {
        assert_eq!(e.status, Status::Converted);
        assert!(e.etag.is_some() && e.sha256.as_ref().is_some_and(|h| h.len() == 64), "{e:?}");
        assert_eq!(e.records, uploaded[&e.key].records, "{}", e.key);
    }
    // Each digest in range is one `digests` file, with the signature from its object metadata.
    let digest_files: BTreeSet<&String> = local.keys().filter(|p| p.starts_with("digests/")).collect();
    assert_eq!(digest_files.len(), in_range_digests.len(), "{digest_files:?}");
    for e in entries.iter().filter(|e| is_digest(&e.key)) {
        assert!(e.outputs.len() == 1 && digest_files.contains(&e.outputs[0]), "{e:?}");
    }
    if let Some(python) = crate::support::python(test) {
        let signatures = digest_signatures(&python, &local);
        let want: BTreeMap<String, String> =
            in_range_digests.iter().map(|k| (k.clone(), uploaded[k].signature.clone().unwrap())).collect();
        assert_eq!(signatures, want, "one `digests` row per digest, signed as its object metadata says");
    }
    // The recorded hash is of the uncompressed content.
    let sample = &entries[0];
    let gz = source.read(&sample.key).await.unwrap();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut json).unwrap();
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(&json);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sample.sha256.as_deref(), Some(hex.as_str()));

    // 2. A second run does no work.
    let second = run(&job(source.clone(), dest.clone(), "local", &start_s, &end_s)).await;
    assert!(second.complete());
    assert_eq!(
        (second.totals.converted, second.already_done, second.ledger_segments_written),
        (0, in_range.len() as u64, 0)
    );
    assert_eq!(archive(&archive_storage, "local").await, local, "nothing rewritten");

    // 3. Interrupted midway (as Ctrl-C does), then rerun: every row exactly once.
    let resumed = job(source.clone(), dest.clone(), "resumed", &start_s, &end_s);
    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    let stop_at = (in_range.len() / 3) as u64;
    let stopper = {
        let (progress, cancel) = (progress.clone(), cancel.clone());
        tokio::spawn(async move {
            while progress.processed.load(Ordering::Relaxed) < stop_at {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cancel.cancel();
        })
    };
    let cut = resumed.run(progress, cancel).await.unwrap();
    stopper.await.unwrap();
    assert!(
        cut.interrupted && cut.totals.converted > 0 && (cut.totals.converted as usize) < in_range.len(),
        "{}",
        cut.totals.converted
    );
    let rest = run(&resumed).await;
    assert!(rest.complete());
    assert_eq!(rest.already_done, cut.totals.converted);
    assert_eq!(cut.totals.converted + rest.totals.converted, in_range.len() as u64);
    let resumed_files = archive(&archive_storage, "resumed").await;
    assert_eq!(rows(&resumed_files), local_rows, "no duplicate and no missing row");
    assert_eq!(datasets(&resumed_files), datasets(&local), "identical outputs");

    // 4. Transient S3 errors on listing, GETs and PUTs are retried without loss.
    let proxy = moto.faulty_endpoint(
        FaultPlan::new()
            .fail_when("LIST trail", Fault::SlowDown, 3, |r| r.method() == "GET" && r.query().contains("list-type"))
            .fail_when("GET trail object", Fault::SlowDown, 25, |r| {
                r.method() == "GET" && r.path().starts_with("/trail/") && !r.query().contains("list-type")
            })
            .fail("PUT", "/archive/", Fault::InternalError, 25),
    );
    let settings = S3Settings {
        endpoint_url: Some(proxy.endpoint().to_string()),
        force_path_style: Some(true),
        region: Some("us-east-1".into()),
        static_credentials: Some(("test".into(), "test".into())),
        limits: S3Limits::default(),
    };
    let faulty = settings.client().await;
    let one_day = start.to_string();
    let faulty_job = job(
        Arc::new(S3Storage::new(faulty.clone(), TRAIL)),
        Arc::new(S3Storage::new(faulty, ARCHIVE)),
        "faulty",
        &one_day,
        &one_day,
    );
    let retried = run(&faulty_job).await;
    assert!(retried.complete(), "{:?}", retried.failures);
    assert_eq!(proxy.injected(), 53, "{:?}", proxy.injections());
    let day_keys: BTreeSet<String> =
        in_range.iter().filter(|(_, u)| u.date == start).map(|(k, _)| k.to_string()).collect();
    assert_eq!(retried.totals.converted as usize, day_keys.len());
    let faulty_files = archive(&archive_storage, "faulty").await;
    let day_outputs: BTreeSet<String> =
        entries.iter().filter(|e| day_keys.contains(&e.key)).flat_map(|e| e.outputs.clone()).collect();
    let want: BTreeMap<String, Vec<u8>> = day_outputs.iter().map(|p| (p.clone(), local[p].clone())).collect();
    assert_eq!(datasets(&faulty_files), want, "retried outputs are exactly the clean run's");

    // 5. The Batch Operations manifest through the real Lambda handler, task by task.
    let batch = job(source.clone(), dest.clone(), "lambda", &one_day, &one_day);
    let manifest = batch.manifest(dest.clone(), "batch/manifest.csv", Arc::new(Progress::default())).await.unwrap();
    assert_eq!(manifest.objects as usize, day_keys.len());
    assert!(manifest.etag.is_some());
    let csv = String::from_utf8(archive_storage.read("batch/manifest.csv").await.unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), day_keys.len());
    let config =
        Config::from_vars([("PARQUETRAIL_DESTINATION".to_string(), "s3://archive/elsewhere".to_string())]).unwrap();
    let app = Arc::new(App::new(config, client.clone(), "parquetrail-backfill-test"));
    let mut tasks = JoinSet::new();
    for (i, line) in lines.iter().enumerate() {
        let (bucket, key) = line.split_once(',').unwrap();
        assert_eq!(bucket, TRAIL);
        let event = json!({
            "invocationSchemaVersion": "2.0", "invocationId": format!("inv-{i}"),
            "job": {"id": "job-1", "userArguments": {"destination": "s3://archive/lambda", "dataset": DatasetChoice::All.as_str()}},
            "tasks": [{"taskId": format!("task-{i}"), "s3Key": key, "s3VersionId": null, "s3Bucket": bucket}]
        });
        while tasks.len() >= 8 {
            tasks.join_next().await.unwrap().unwrap();
        }
        let app = app.clone();
        tasks.spawn(async move {
            let response = handle(&app, event).await.unwrap();
            assert_eq!(response["results"][0]["resultCode"], "Succeeded", "{response}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let lambda_files = archive(&archive_storage, "lambda").await;
    assert_eq!(datasets(&lambda_files), want, "the Batch Operations path writes byte-identical outputs");
    // The Lambda records each task in the archive's ledger too, with the hash the local run found.
    let local_hashes: BTreeMap<String, Option<String>> =
        ledger(&local).into_iter().map(|e| (e.key, e.sha256)).collect();
    let lambda_ledger = ledger(&lambda_files);
    assert_eq!(lambda_ledger.len(), lines.len(), "one ledger line per task");
    for entry in &lambda_ledger {
        assert!(entry.sha256.is_some(), "{}", entry.key);
        assert_eq!(local_hashes.get(&entry.key), Some(&entry.sha256), "{}", entry.key);
    }
    // So the same job again has nothing left to do: the ledger knows what the Lambda did.
    let again = batch.manifest(dest.clone(), "batch/manifest-2.csv", Arc::new(Progress::default())).await.unwrap();
    assert_eq!(again.objects, 0, "a second manifest after the job lists nothing");
    assert!(archive(&archive_storage, "elsewhere").await.is_empty(), "userArguments.destination was honoured");
    eprintln!("whole test: {:.1?}", started.elapsed());
}
