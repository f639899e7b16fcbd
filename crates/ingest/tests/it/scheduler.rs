//! The one compaction scheduler (`Compactor::schedule`) that `parquetrail compact`, the Lambda and
//! `Compactor::run` share: it stops starting partitions when told to (Ctrl-C, a deadline), counts
//! the rest as not started, tells progress after each partition, refuses named partitions no
//! manifest lists, and its totals add up to what went in.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use parquetrail_core::convert::{Dataset, Layout, Options, convert};
use parquetrail_core::sink::MemorySink;
use parquetrail_ingest::compaction::{Compactor, Control, Progress, Settings, Verdict};
use parquetrail_ingest::local::LocalStorage;
use parquetrail_ingest::manifest;
use parquetrail_ingest::storage::Storage;

const DAYS: [&str; 3] = ["2024-03-01", "2024-03-02", "2024-03-03"];

/// One delivery of `n` records on `day`, numbered from `first` (distinct event IDs).
fn delivery(day: &str, first: usize, n: usize) -> String {
    let records: Vec<String> = (first..first + n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.09","eventTime":"{day}T{:02}:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e-{i}","recipientAccountId":"111122223333"}}"#,
                i % 24,
                i % 60
            )
        })
        .collect();
    format!(r#"{{"Records":[{}]}}"#, records.join(","))
}

/// Three partitions of two deliveries each (3 + 2 records), written and listed in manifests as
/// conversion leaves them. Returns the partition directories and the records per partition.
async fn archive(storage: &dyn Storage) -> Vec<(Dataset, String)> {
    let mut partitions = Vec::new();
    for (d, day) in DAYS.iter().enumerate() {
        let mut paths = Vec::new();
        for (f, n) in [(0, 3), (1, 2)] {
            let compact_day = day.replace('-', "");
            let key = format!(
                "AWSLogs/111122223333/CloudTrail/us-east-1/{}/111122223333_CloudTrail_us-east-1_{compact_day}T000{f}Z_{d}{f}.json.gz",
                day.replace('-', "/")
            );
            let sink = MemorySink::default();
            convert(&key, delivery(day, d * 100 + f * 10, n).as_bytes(), &sink, &Options::default()).unwrap();
            for (path, bytes) in sink.files() {
                storage.put(&format!("archive/{path}"), bytes).await.unwrap();
                paths.push(path);
            }
        }
        manifest::add(storage, "archive", &paths).await.unwrap();
        partitions.push((Dataset::Events, format!("events/account=111122223333/region=us-east-1/date={day}")));
    }
    partitions
}

#[tokio::test]
async fn the_scheduler_stops_when_told_counts_the_rest_and_refuses_unknown_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
    let partitions = archive(storage.as_ref()).await;
    let settings = Settings { concurrency: 1, grace: std::time::Duration::ZERO, ..Settings::default() };
    let compactor = Compactor::new(storage.clone(), "archive", Layout::default(), settings);

    // Told to stop once two partitions have started: the third is not started, and says so.
    let started = AtomicUsize::new(0);
    let told = Mutex::new(Vec::new());
    let control = Control::default()
        .go_on_while(|| started.fetch_add(1, Ordering::SeqCst) < 2)
        .on_progress(|p: Progress| told.lock().unwrap().push(p));
    let report = compactor.schedule(partitions.clone(), control).await;
    let totals = report.totals();
    assert_eq!((totals.partitions, totals.compacted, totals.not_started, totals.failed), (3, 2, 1, 0), "{report:?}");
    assert_eq!((totals.files_before, totals.files_after), (4, 2), "two files became one in each: {totals:?}");
    assert_eq!((totals.rows_in, totals.rows_out), (10, 10), "3 + 2 records in each of two partitions: {totals:?}");
    let progress = told.lock().unwrap().clone();
    assert_eq!(
        progress,
        vec![Progress { done: 1, failed: 0, total: 3 }, Progress { done: 2, failed: 0, total: 3 }],
        "progress after each partition"
    );
    assert_eq!(
        report.partitions.iter().map(|p| p.partition.as_str()).collect::<Vec<_>>(),
        vec![partitions[0].1.as_str(), partitions[1].1.as_str()],
        "the partitions started are the first two, in order"
    );

    // The next run does the one left and finds the others compact.
    let report = compactor.schedule(partitions.clone(), Control::default()).await;
    let verdicts: Vec<&Verdict> = report.partitions.iter().map(|p| &p.verdict).collect();
    assert_eq!(verdicts, vec![&Verdict::AlreadyCompact, &Verdict::AlreadyCompact, &Verdict::Compacted]);
    assert_eq!(report.totals().not_started, 0);

    // A partition named by the user that no manifest lists is a failure, not "already compact";
    // unnamed (walked from the manifests) it would simply have nothing to do.
    let missing = vec![(Dataset::Events, "events/account=111122223333/region=us-east-1/date=2024-04-01".to_string())];
    let named = compactor.schedule(missing.clone(), Control::default().must_exist(true)).await;
    assert_eq!(named.failures.len(), 1, "{named:?}");
    assert!(named.failures[0].error.contains("no manifest"), "{}", named.failures[0].error);
    assert_eq!(named.totals().failed, 1);
    let walked = compactor.schedule(missing, Control::default()).await;
    assert_eq!((walked.failures.len(), walked.totals().already_compact), (0, 1), "{walked:?}");
}
