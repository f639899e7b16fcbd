//! Scheduled compaction (`{"parquetrail":"compact"}`) against real S3 (moto): through the handler
//! and through the built binary under the Runtime API emulator. A partition fed by three deliveries
//! (one of them delivered twice) becomes one file, its manifest lists only that file, readers see
//! each record once, a redelivery after compaction stays unlisted, and a run out of time starts
//! nothing and says what remains.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::{handle, handle_with_deadline};
use parquetrail_testkit::{Invocation, RuntimeEmulator, lambda_env};
use serde_json::{Value, json};

use crate::support::*;

const PARTITION: &str = "events/account=111122223333/region=us-east-1/date=2024-03-01";
/// The GOOD delivery again, under another name: CloudTrail delivers at least once.
const DUPLICATE: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0105Z_DuplicateDeliver.json.gz";
/// Later events of the same partition, whose eventIDs repeat GOOD's but whose content differs.
const LATER: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0205Z_LaterDelivery000.json.gz";

/// Enough days back to reach the fixtures' March 2024.
fn lookback_days() -> u64 {
    let fixtures = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    (chrono::Utc::now().date_naive() - fixtures).num_days() as u64 + 1
}

fn compact_event() -> Value {
    json!({"parquetrail": "compact", "older_than": "0s", "grace": "0s", "lookback_days": lookback_days()})
}

/// The world, with the extra deliveries of [`PARTITION`] uploaded.
async fn world_with_deliveries(test: &str) -> Option<World> {
    let w = world(test).await?;
    let put =
        |key: &str, body: Vec<u8>| w.client.put_object().bucket(TRAIL).key(key).body(ByteStream::from(body)).send();
    put(DUPLICATE, gzip(&log_file("111122223333", "us-east-1", "2024-03-01T00:01:00Z", 20))).await.unwrap();
    put(LATER, gzip(&log_file("111122223333", "us-east-1", "2024-03-01T02:00:00Z", 4))).await.unwrap();
    Some(w)
}

impl World {
    /// The files a partition's manifest lists (archive keys).
    async fn manifest(&self, partition: &str) -> BTreeSet<String> {
        let key = format!("cloudtrail/manifests/{partition}/symlink.txt");
        let body = self.client.get_object().bucket(ARCHIVE).key(&key).send().await.unwrap().body.collect().await;
        let text = String::from_utf8(body.unwrap().into_bytes().to_vec()).unwrap();
        text.lines().map(|l| l.strip_prefix(&format!("s3://{ARCHIVE}/")).expect("an s3:// URI").to_string()).collect()
    }

    /// The Parquet objects under a partition's directory.
    async fn data(&self, partition: &str) -> BTreeSet<String> {
        let prefix = format!("cloudtrail/{partition}/");
        self.objects(ARCHIVE).await.into_keys().filter(|k| k.starts_with(&prefix) && k.ends_with(".parquet")).collect()
    }

    /// The `eventid`s (with their `eventtime`) of the rows the partition's manifest lists.
    async fn visible(&self, partition: &str) -> BTreeMap<(String, String), usize> {
        let objects = self.objects(ARCHIVE).await;
        let mut rows = BTreeMap::new();
        for key in self.manifest(partition).await {
            let bytes = bytes::Bytes::from(objects[&key].clone());
            for row in parquetrail_core::archive::read_rows(bytes, Some(&key)).unwrap() {
                let id = (row.eventid.unwrap().into_owned(), row.eventtime.unwrap().into_owned());
                *rows.entry(id).or_default() += 1;
            }
        }
        rows
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_compaction_merges_a_partition_and_readers_see_each_record_once() {
    let test = "scheduled_compaction_merges_a_partition_and_readers_see_each_record_once";
    let Some(w) = world_with_deliveries(test).await else { return };
    let app = w.app(&[]).await;
    handle(&app, s3_event(TRAIL, &[keys::GOOD, DUPLICATE, LATER, keys::SECOND])).await.unwrap();
    let small = w.manifest(PARTITION).await;
    assert_eq!(small.len(), 3, "one file per delivery: {small:?}");
    let before = w.visible(PARTITION).await;
    assert_eq!(before.values().sum::<usize>(), 44, "20 + 20 duplicates + 4");

    // The schedule's own event: a week back, so the fixtures' March 2024 is out of scope.
    let week = handle(&app, json!({"parquetrail": "compact", "older_than": "0s", "grace": "0s"})).await.unwrap();
    assert_eq!((week["partitions"].as_u64(), week["compacted"].as_u64()), (Some(0), Some(0)), "{week}");

    // Out of time: nothing is started, everything remains for the next run, and that is no error.
    let late = handle_with_deadline(&app, compact_event(), Some(SystemTime::now())).await.unwrap();
    let partitions = late["partitions"].as_u64().unwrap();
    assert!(partitions >= 2, "{late}");
    assert_eq!((late["compacted"].as_u64(), late["not_started"].as_u64()), (Some(0), Some(partitions)), "{late}");
    assert_eq!(late["failures"], json!([]));
    assert_eq!(w.manifest(PARTITION).await, small);

    // With time (the emulator's 5 minutes, say), the run compacts the partition.
    let deadline = SystemTime::now() + Duration::from_secs(300);
    let run = handle_with_deadline(&app, compact_event(), Some(deadline)).await.unwrap();
    // The other partitions hold one delivery each, which compaction rewrites once too (a lone
    // per-delivery file gets the compacted layout and a lookup index).
    let others = partitions - 1;
    assert_eq!(run["compacted"].as_u64(), Some(partitions), "{run}");
    assert_eq!(run["already_compact"].as_u64(), Some(0), "{run}");
    assert_eq!((run["not_started"].as_u64(), run["failures"].clone()), (Some(0), json!([])), "{run}");
    assert_eq!(
        (run["files_before"].as_u64(), run["files_after"].as_u64()),
        (Some(3 + others), Some(1 + others)),
        "{run}"
    );
    assert_eq!((run["duplicates_removed"].as_u64(), run["deleted"].as_u64()), (Some(20), Some(3 + others)), "{run}");
    assert_eq!(run["destination"], format!("s3://{ARCHIVE}/cloudtrail"));

    // The manifest lists exactly the compacted file, which is all the partition holds now; readers
    // see every record once: the duplicate delivery's rows are gone, rows that only share an
    // eventID with others are kept.
    let compacted = w.manifest(PARTITION).await;
    assert_eq!(compacted.len(), 1);
    assert!(compacted.iter().all(|k| k.rsplit('/').next().unwrap().starts_with("compacted-")), "{compacted:?}");
    assert_eq!(w.data(PARTITION).await, compacted, "the small files are deleted (grace 0s)");
    let after = w.visible(PARTITION).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    assert!(after.values().all(|n| *n == 1), "{after:?}");
    assert_eq!(after.len(), 24);
    w.rows().await; // no (source key, index) twice among the objects left

    // A redelivery of a compacted object rewrites its file, which the manifest refuses (its rows
    // are in the compacted file); the next run deletes it.
    handle(&app, s3_event(TRAIL, &[DUPLICATE])).await.unwrap();
    assert_eq!(w.manifest(PARTITION).await, compacted);
    assert_eq!(w.data(PARTITION).await.len(), 2);
    let again = handle(&app, compact_event()).await.unwrap();
    assert_eq!((again["compacted"].as_u64(), again["deleted"].as_u64()), (Some(0), Some(1)), "{again}");
    assert_eq!(again["already_compact"].as_u64(), Some(partitions));
    assert_eq!(w.data(PARTITION).await, compacted);
    assert_eq!(w.visible(PARTITION).await, after);

    // A malformed command fails the invocation, naming what is wrong.
    let e = handle(&app, json!({"parquetrail": "compact", "older_than_days": 1})).await.unwrap_err();
    assert!(e.0.contains("older_than_days") && e.0.contains("older_than, lookback_days"), "{}", e.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_binary_compacts_on_schedule() {
    let Some(w) = world_with_deliveries("built_binary_compacts_on_schedule").await else { return };
    let emulator = RuntimeEmulator::start();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_parquetrail-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", emulator.address())
        .envs(lambda_env("parquetrail"))
        .envs(w.moto.env())
        .env("PARQUETRAIL_DESTINATION", format!("s3://{ARCHIVE}/cloudtrail"))
        .env("PARQUETRAIL_COMPACT_TARGET_SIZE", "64MiB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Killed(child);
    let emulator = std::sync::Arc::new(emulator);
    let invoke = |event: Value| {
        let emulator = emulator.clone();
        tokio::task::spawn_blocking(move || {
            let id = emulator.invoke(event);
            emulator.wait(&id, Duration::from_secs(60)).unwrap()
        })
    };
    let converted = invoke(s3_event(TRAIL, &[keys::GOOD, DUPLICATE, LATER])).await.unwrap();
    assert!(matches!(converted, Invocation::Response(_)), "{converted:?}");
    assert_eq!(w.manifest(PARTITION).await.len(), 3);

    let answer = invoke(compact_event()).await.unwrap();
    let Invocation::Response(summary) = answer else { panic!("function error: {answer:?}") };
    assert_eq!(summary["compacted"], summary["partitions"], "every partition, lone deliveries too: {summary}");
    assert_eq!((summary["not_started"].as_u64(), summary["failures"].clone()), (Some(0), json!([])), "{summary}");
    assert_eq!(summary["duplicates_removed"], 20, "{summary}");
    let listed = w.manifest(PARTITION).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(w.data(PARTITION).await, listed);
    assert_eq!(w.visible(PARTITION).await.values().sum::<usize>(), 24);

    // An unknown command is an invocation error (the schedule retries it, then alarms).
    let answer = invoke(json!({"parquetrail": "vacuum"})).await.unwrap();
    let Invocation::Error(error) = answer else { panic!("expected an error: {answer:?}") };
    assert!(error.to_string().contains("unknown command"), "{error}");
}
