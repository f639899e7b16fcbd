//! Compaction on a real S3 endpoint (moto): thousands of small files of one partition, with
//! CloudTrail's own duplicates and distinct records sharing an eventID, become one sorted file;
//! a reader polling the manifest throughout, with a writer adding late deliveries, never sees a
//! record twice or misses one; a crash injected at each step converges on rerun.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parquetrail_core::convert::{Dataset, Layout, Options, convert};
use parquetrail_core::sink::MemorySink;
use parquetrail_ingest::compaction::{Compactor, Settings, Verdict};
use parquetrail_ingest::manifest;
use parquetrail_ingest::s3::S3Storage;
use parquetrail_ingest::storage::Storage;
use parquetrail_testkit::{Fault, FaultPlan, MotoServer};
use tokio::task::JoinSet;

const BUCKET: &str = "archive";
const PART: &str = "events/account=111122223333/region=us-east-1/date=2024-03-01";

/// One record's JSON. `n` makes it unique; `variant` changes its content but not its eventID.
fn record(n: usize, event_id: &str, variant: &str) -> String {
    let (h, m, s) = ((n * 7) % 24, (n * 13) % 60, (n * 29) % 60);
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{u}","accountId":"111122223333"}},"eventTime":"2024-03-01T{h:02}:{m:02}:{s:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject{variant}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{ip}","userAgent":"test","requestParameters":{{"bucketName":"b","key":"k{n}"}},"responseElements":null,"requestID":"R{n}","eventID":"{event_id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data"}}"#,
        u = n % 17,
        ip = n % 250,
    )
}

/// A delivery file's CloudTrail key (the name carries a unique suffix, like CloudTrail's).
fn source_key(i: usize) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T{:02}{:02}Z_{i:016}.json.gz",
        (i / 12) % 24,
        (i % 12) * 5
    )
}

/// `files` deliveries of 3 records each, converted by the core: (path, Parquet bytes) per file,
/// and the records' identities (CloudTrail JSON) with how many copies went in.
struct Partition {
    files: Vec<(String, Vec<u8>)>,
    copies: BTreeMap<String, usize>,
}

fn partition(files: usize, first: usize, duplicates: usize, shared_ids: usize) -> Partition {
    let mut bodies: Vec<Vec<String>> = (0..files)
        .map(|i| (0..3).map(|j| record(first + i * 3 + j, &format!("e-{}", first + i * 3 + j), "")).collect())
        .collect();
    // CloudTrail delivering a record again, in another file: an exact copy.
    for d in 0..duplicates {
        let copy = bodies[d * 3][0].clone();
        bodies[files - 1 - d].push(copy);
    }
    // Distinct records that happen to share an eventID: both are real and both stay.
    for d in 0..shared_ids {
        let n = first + d * 3 + 1;
        bodies[(d * 5 + 2) % files].push(record(n + 1_000_000, &format!("e-{n}"), "Distinct"));
    }
    let mut out = Partition { files: Vec::new(), copies: BTreeMap::new() };
    for (i, records) in bodies.iter().enumerate() {
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let sink = MemorySink::default();
        let report = convert(&source_key(first + i), json.as_bytes(), &sink, &Options::default()).unwrap();
        assert_eq!(report.rows as usize, records.len());
        for (path, bytes) in sink.files() {
            assert!(path.starts_with(PART), "{path}");
            for row in parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes.clone()), Some(&path)).unwrap() {
                *out.copies.entry(row.to_json()).or_default() += 1;
            }
            out.files.push((path, bytes));
        }
    }
    out
}

/// Uploads the files under `root` and lists them all in the partition's manifest.
async fn upload(storage: &Arc<S3Storage>, root: &str, files: &[(String, Vec<u8>)]) {
    let mut puts = JoinSet::new();
    for (path, bytes) in files.iter().cloned() {
        let storage = storage.clone();
        let key = format!("{root}/{path}");
        puts.spawn(async move { storage.put(&key, bytes).await.unwrap() });
        while puts.len() >= 32 {
            puts.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = puts.join_next().await {
        r.unwrap();
    }
    let listed: BTreeSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let current = manifest::read(storage.as_ref(), root, PART).await.unwrap();
    let mut all = current.files.clone();
    all.extend(listed);
    manifest::swap(storage.as_ref(), root, PART, &all, current.tag.as_deref()).await.unwrap();
}

fn compactor(storage: Arc<dyn Storage>, root: &str, grace: Duration) -> Compactor {
    Compactor::new(storage, root, Layout::default(), Settings { grace, ..Settings::default() })
}

/// What a reader sees now: the manifest's files, read (files never change once written, so
/// they are cached by path), as identity → copies.
async fn snapshot(
    storage: &S3Storage,
    root: &str,
    cache: &mut BTreeMap<String, Vec<String>>,
) -> (BTreeSet<String>, BTreeMap<String, usize>) {
    let m = manifest::read(storage, root, PART).await.unwrap();
    let mut seen = BTreeMap::new();
    for path in &m.files {
        if !cache.contains_key(path) {
            let bytes = storage.read(&format!("{root}/{path}")).await.unwrap();
            let rows = parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes), Some(path)).unwrap();
            cache.insert(path.clone(), rows.iter().map(|r| r.to_json()).collect());
        }
        for id in &cache[path] {
            *seen.entry(id.clone()).or_insert(0usize) += 1;
        }
    }
    (m.files, seen)
}

/// Every object under `root`, with manifests made relative (comparable across roots).
async fn state(storage: &S3Storage, root: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let base = storage.uri(&format!("{root}/"));
    for o in storage.list(&format!("{root}/")).await.unwrap() {
        let mut body = storage.read(&o.key).await.unwrap();
        let rel = o.key[root.len() + 1..].to_string();
        if rel.starts_with("manifests/") {
            body = String::from_utf8(body).unwrap().replace(&base, "").into_bytes();
        }
        if rel.starts_with("_compaction/") && rel.ends_with(manifest::CONSUMED_FILE) {
            // Consumed lists carry the time of consumption: compare the paths only.
            let text = String::from_utf8(body).unwrap();
            let paths: Vec<String> =
                text.lines().map(|l| serde_json::from_str::<manifest::ConsumedEntry>(l).unwrap().path).collect();
            body = paths.join("\n").into_bytes();
        }
        out.insert(rel, body);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_small_files_compact_exactly_while_readers_and_late_writers_run() {
    let Some(moto) = MotoServer::start("thousands_of_small_files_compact_exactly_while_readers_and_late_writers_run")
    else {
        return;
    };
    moto.create_bucket(BUCKET).await;
    let storage = Arc::new(S3Storage::new(moto.client().await, BUCKET));
    let input = partition(2000, 0, 40, 25);
    let rows_in: usize = input.copies.values().sum();
    assert_eq!(rows_in, 2000 * 3 + 40 + 25);
    assert_eq!(input.copies.values().filter(|c| **c == 2).count(), 40, "40 records delivered twice");
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for j in input.copies.keys() {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        *ids.entry(v["eventID"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(ids.values().filter(|n| **n == 2).count(), 25, "25 eventIDs carried by two distinct records");
    upload(&storage, "live", &input.files).await;

    // Late deliveries to the same partition, published one by one while compaction runs.
    let late = partition(30, 100_000, 0, 0);
    let published = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (storage, published, done) = (storage.clone(), published.clone(), done.clone());
        let files = late.files.clone();
        tokio::spawn(async move {
            for (path, bytes) in files {
                storage.put(&format!("live/{path}"), bytes).await.unwrap();
                manifest::add(storage.as_ref(), "live", std::slice::from_ref(&path)).await.unwrap();
                published.fetch_add(1, Ordering::SeqCst);
                if done.load(Ordering::SeqCst) {
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    // A reader polling the partition: every snapshot holds each input record at least once and no
    // more often than it was delivered (a record CloudTrail delivered once: exactly once), and
    // every late record published before the poll began.
    let late_ids: Vec<Vec<String>> = late
        .files
        .iter()
        .map(|(p, b)| {
            parquetrail_core::archive::read_rows(bytes::Bytes::from(b.clone()), Some(p))
                .unwrap()
                .iter()
                .map(|r| r.to_json())
                .collect()
        })
        .collect();
    // The reader says when it has polled twice, so the compaction starts with polls before it.
    let (polled, polled_twice) = tokio::sync::oneshot::channel();
    let reader = {
        let (storage, published, done) = (storage.clone(), published.clone(), done.clone());
        let copies = input.copies.clone();
        let late_ids = late_ids.clone();
        let mut polled = Some(polled);
        tokio::spawn(async move {
            let mut cache = BTreeMap::new();
            let (mut polls, mut compacted_polls) = (0, 0);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let before = published.load(Ordering::SeqCst);
                let (files, seen) = snapshot(&storage, "live", &mut cache).await;
                for (id, n) in &copies {
                    let got = seen.get(id).copied().unwrap_or(0);
                    assert!(got >= 1 && got <= *n, "poll {polls}: a record seen {got}× (delivered {n}×)");
                }
                for ids in &late_ids[..before] {
                    for id in ids {
                        assert_eq!(seen.get(id), Some(&1), "poll {polls}: a published late record");
                    }
                }
                let known: usize = copies.len() + late_ids.iter().map(Vec::len).sum::<usize>();
                assert!(seen.len() <= known, "poll {polls}: rows from nowhere");
                polls += 1;
                if polls == 2 {
                    let _ = polled.take().map(|p| p.send(()));
                }
                if files.iter().any(|f| f.contains("/compacted-")) {
                    compacted_polls += 1;
                }
                if finished {
                    return (polls, compacted_polls);
                }
            }
        })
    };
    polled_twice.await.unwrap();
    let report = compactor(storage.clone(), "live", Duration::from_secs(3600)).partition(Dataset::Events, PART).await;
    let report = report.unwrap();
    writer.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let (polls, compacted_polls) = reader.await.unwrap();
    assert!(
        polls > 3 && compacted_polls >= 1,
        "the reader polled before and after the swap ({polls}, {compacted_polls})"
    );

    assert_eq!(report.verdict, Verdict::Compacted);
    assert!(report.files_before >= 2000, "{}", report.files_before);
    assert_eq!(report.duplicates_removed, 40);
    assert_eq!(report.rows_in, report.rows_out + report.duplicates_removed);
    assert_eq!(report.deleted, 0, "nothing deleted inside the grace period");
    // The manifest now: one compacted file, plus the late files the compaction did not see.
    let m = manifest::read(storage.as_ref(), "live", PART).await.unwrap();
    let compacted: Vec<&String> = m.files.iter().filter(|f| f.contains("/compacted-")).collect();
    assert_eq!(compacted.len(), 1, "one file of ≤ 128 MiB: {compacted:?}");
    let late_read = report.files_before - input.files.len();
    assert_eq!(
        m.files.len(),
        1 + late.files.len() - late_read,
        "the compacted file and every late file it did not read"
    );
    assert!(report.late_files <= late.files.len() - late_read);
    // The exact multiset: each distinct record once, the late ones too.
    let mut cache = BTreeMap::new();
    let (_, seen) = snapshot(&storage, "live", &mut cache).await;
    let mut want: BTreeMap<String, usize> = input.copies.keys().map(|k| (k.clone(), 1)).collect();
    for ids in &late_ids {
        for id in ids {
            want.insert(id.clone(), 1);
        }
    }
    assert_eq!(seen, want, "every record exactly once");
    // Sorted by event time.
    let bytes = storage.read(&format!("live/{}", compacted[0])).await.unwrap();
    let rows = parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes), None).unwrap();
    assert!(rows.windows(2).all(|w| w[0].eventtime_ts <= w[1].eventtime_ts), "rows sorted by eventTime");

    // After the grace period the small files go; readers' view does not change.
    let gc = compactor(storage.clone(), "live", Duration::ZERO).collect_garbage(PART).await.unwrap();
    assert!(gc >= 2000, "{gc}");
    let left: Vec<String> = storage.list(&format!("live/{PART}/")).await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(left.len(), m.files.len(), "only listed files remain: {left:?}");
    let (_, after_gc) = snapshot(&storage, "live", &mut BTreeMap::new()).await;
    assert_eq!(after_gc, want);

    // A redelivered, already compacted object cannot bring its file back.
    let (path, bytes) = input.files[7].clone();
    storage.put(&format!("live/{path}"), bytes).await.unwrap();
    let added = manifest::add(storage.as_ref(), "live", std::slice::from_ref(&path)).await.unwrap();
    assert_eq!(added.refused, vec![path]);
    let (_, again) = snapshot(&storage, "live", &mut BTreeMap::new()).await;
    assert_eq!(again, want, "no duplicate after a redelivery");

    // A second run finds nothing to do... except the late files, which it folds in.
    let second = compactor(storage.clone(), "live", Duration::ZERO).partition(Dataset::Events, PART).await.unwrap();
    let (_, final_view) = snapshot(&storage, "live", &mut BTreeMap::new()).await;
    assert_eq!(final_view, want);
    let m = manifest::read(storage.as_ref(), "live", PART).await.unwrap();
    assert_eq!(m.files.len(), 1, "{:?} {:?}", second.verdict, m.files);

    // A delivery's file that no manifest lists and no compaction consumed (an archive from
    // before manifests) is never collected; adopting lists it, once.
    let stray = partition(1, 900_000, 0, 0);
    let (path, bytes) = stray.files[0].clone();
    storage.put(&format!("live/{path}"), bytes).await.unwrap();
    assert_eq!(compactor(storage.clone(), "live", Duration::ZERO).collect_garbage(PART).await.unwrap(), 0);
    assert_eq!(manifest::adopt(storage.as_ref(), "live", "events").await.unwrap(), 1);
    assert_eq!(manifest::adopt(storage.as_ref(), "live", "events").await.unwrap(), 0, "adopting is idempotent");
    let (_, adopted) = snapshot(&storage, "live", &mut BTreeMap::new()).await;
    assert_eq!(adopted.len(), want.len() + 3, "the stray file's records are visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_converges_on_rerun() {
    let Some(moto) = MotoServer::start("a_crash_at_each_step_converges_on_rerun") else { return };
    moto.create_bucket(BUCKET).await;
    let direct = Arc::new(S3Storage::new(moto.client().await, BUCKET));
    let input = partition(150, 0, 10, 5);
    upload(&direct, "clean", &input.files).await;
    let clean = compactor(direct.clone(), "clean", Duration::ZERO).partition(Dataset::Events, PART).await.unwrap();
    assert_eq!((clean.verdict.clone(), clean.duplicates_removed), (Verdict::Compacted, 10));
    let want = state(&direct, "clean").await;
    assert_eq!(want.keys().filter(|k| k.ends_with(".parquet")).count(), 1, "{:?}", want.keys());

    // Each step's requests fail for good (every SDK retry too): the run stops there, as a crash
    // would, and a rerun on a healthy endpoint ends in exactly the clean state.
    type Step = (&'static str, fn(&parquetrail_testkit::moto::FaultRequest<'_>) -> bool);
    let steps: [Step; 4] = [
        ("writing outputs", |r| r.method() == "PUT" && r.path().contains("/compacted-")),
        ("recording consumed files", |r| r.method() == "PUT" && r.path().ends_with("consumed.jsonl")),
        ("swapping the manifest", |r| r.method() == "PUT" && r.path().ends_with("symlink.txt")),
        ("collecting garbage", |r| r.method() == "DELETE"),
    ];
    for (n, (step, matches)) in steps.into_iter().enumerate() {
        let root = format!("crash{n}");
        upload(&direct, &root, &input.files).await;
        let proxy = moto.faulty_endpoint(FaultPlan::new().fail_when(step, Fault::InternalError, 100_000, matches));
        let faulty = Arc::new(S3Storage::new(proxy.client().await, BUCKET));
        let crashed = compactor(faulty, &root, Duration::ZERO).partition(Dataset::Events, PART).await;
        assert!(crashed.is_err(), "{step}: the injected fault stops the run");
        assert!(proxy.injected() > 0, "{step}");
        // Whatever it left, readers see every record exactly as often as before or once.
        let (_, seen) = snapshot(&direct, &root, &mut BTreeMap::new()).await;
        for (id, copies) in &input.copies {
            let got = seen.get(id).copied().unwrap_or(0);
            assert!(got >= 1 && got <= *copies, "{step}: a record seen {got}×");
        }
        let rerun = compactor(direct.clone(), &root, Duration::ZERO).partition(Dataset::Events, PART).await.unwrap();
        assert!(matches!(rerun.verdict, Verdict::Compacted | Verdict::AlreadyCompact), "{step}: {:?}", rerun.verdict);
        assert_eq!(state(&direct, &root).await, want, "{step}: the rerun converges to the clean result");
    }

    // Two compactions of one partition at once: one wins, the other's outputs are the same
    // files (same inputs, same names), and readers see each record once.
    upload(&direct, "race", &input.files).await;
    let (one, two) = (
        compactor(direct.clone(), "race", Duration::from_secs(3600)),
        compactor(direct.clone(), "race", Duration::from_secs(3600)),
    );
    let (a, b) = tokio::join!(one.partition(Dataset::Events, PART), two.partition(Dataset::Events, PART));
    let verdicts = [a.unwrap().verdict, b.unwrap().verdict];
    assert!(verdicts.contains(&Verdict::Compacted), "{verdicts:?}");
    let (_, seen) = snapshot(&direct, "race", &mut BTreeMap::new()).await;
    assert!(seen.values().all(|n| *n == 1) && seen.len() == input.copies.len(), "one copy of each record");
}
