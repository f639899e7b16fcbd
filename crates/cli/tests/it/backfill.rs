//! `parquetrail backfill` as a process: killed (SIGKILL) or interrupted (SIGINT) midway against a
//! real local S3 endpoint, then rerun: every row exactly once, and a further run does nothing.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parquetrail_synth::{TreeOptions, generate_files};
use serde_json::Value;

const OBJECTS: usize = 600;

fn spawn(moto: &parquetrail_testkit::MotoServer, dest: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_parquetrail"))
        .args(["backfill", "--source", "s3://trail/logs", "--dest", dest, "--org", "o-kill12345"])
        .args(["--concurrency", "2", "--checkpoint-objects", "25", "--checkpoint-seconds", "1"])
        .args(extra)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .envs(moto.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn objects(client: &aws_sdk_s3::Client, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pages = client.list_objects_v2().bucket("archive").prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let key = o.key().unwrap().to_string();
            let body = client.get_object().bucket("archive").key(&key).send().await.unwrap().body.collect().await;
            out.insert(key, body.unwrap().into_bytes().to_vec());
        }
    }
    out
}

/// Waits until the run has written at least `segments` ledger segments, and checks it is still
/// running (so what follows really interrupts it midway).
fn wait_for_segments(runtime: &tokio::runtime::Runtime, client: &aws_sdk_s3::Client, child: &mut Child, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = runtime
            .block_on(client.list_objects_v2().bucket("archive").prefix(format!("{prefix}/_ledger/")).send())
            .unwrap()
            .contents()
            .len();
        if n >= 2 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the backfill ended before it could be interrupted");
        assert!(Instant::now() < deadline, "no ledger segment after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.try_wait().unwrap().is_none(), "the backfill ended before it could be interrupted");
}

fn finish(moto: &parquetrail_testkit::MotoServer, dest: &str) -> Value {
    let out = spawn(moto, dest, &["--json"]).wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_backfill_killed_or_interrupted_midway_finishes_on_rerun_without_duplicates() {
    let test = "a_backfill_killed_or_interrupted_midway_finishes_on_rerun_without_duplicates";
    let Some(moto) = parquetrail_testkit::MotoServer::start(test) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = runtime.block_on(moto.client());
    let mut records = 0u64;
    runtime.block_on(async {
        moto.create_bucket("trail").await;
        moto.create_bucket("archive").await;
        let options = TreeOptions {
            seed: 5,
            target_json_bytes: u64::MAX,
            accounts: 2,
            org_id: Some("o-kill12345".into()),
            prefix: Some("logs".into()),
            interval_minutes: 30,
            gzip_level: 1,
            ..TreeOptions::default()
        };
        let mut puts = tokio::task::JoinSet::new();
        for file in generate_files(&options).take(OBJECTS) {
            records += file.records as u64;
            while puts.len() >= 16 {
                puts.join_next().await.unwrap().unwrap();
            }
            let put = client.put_object().bucket("trail").key(file.key).body(file.gz.into()).send();
            puts.spawn(async move { put.await.map(|_| ()).unwrap() });
        }
        while let Some(done) = puts.join_next().await {
            done.unwrap();
        }
    });

    for (signal, prefix) in [("KILL", "killed"), ("INT", "interrupted")] {
        let dest = format!("s3://archive/{prefix}");
        let mut child = spawn(&moto, &dest, &[]);
        wait_for_segments(&runtime, &client, &mut child, prefix);
        let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if signal == "INT" {
            // Ctrl-C: objects in flight finish, the ledger is written, the summary says so.
            assert_eq!(out.status.code(), Some(130), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("Interrupted after converting") && stdout.contains("Rerun"), "{stdout}");
        } else {
            assert_eq!(out.status.code(), None, "killed by a signal");
        }
        let before = runtime.block_on(objects(&client, &format!("{prefix}/_ledger/")));
        let done_before: usize =
            before.values().map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count()).sum();
        assert!(done_before > 0 && done_before < OBJECTS, "{signal}: {done_before} recorded before the rerun");

        let rerun = finish(&moto, &dest);
        assert_eq!(rerun["already_done"].as_u64(), Some(done_before as u64), "{signal}: {rerun}");
        assert_eq!(
            rerun["already_done"].as_u64().unwrap() + rerun["converted"].as_u64().unwrap(),
            OBJECTS as u64,
            "{signal}: {rerun}"
        );
        // Every row exactly once, read back from the archive.
        let archive = runtime.block_on(objects(&client, &format!("{prefix}/")));
        let mut rows = std::collections::BTreeSet::new();
        for (key, bytes) in archive.iter().filter(|(k, _)| k.ends_with(".parquet")) {
            for row in parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes.clone()), Some(key)).unwrap() {
                assert!(
                    rows.insert((row.source_key.to_string(), row.source_index)),
                    "{signal}: duplicate row in {key}"
                );
            }
        }
        assert_eq!(rows.len() as u64, records, "{signal}: no row missing");
        let leftovers: Vec<&String> = archive.keys().filter(|k| k.ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let again = finish(&moto, &dest);
        assert_eq!((again["converted"].as_u64(), again["already_done"].as_u64()), (Some(0), Some(OBJECTS as u64)));
    }
}
