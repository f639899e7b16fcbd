//! `parquetrail compact` as a user runs it, on a local archive and on S3: partitions of many
//! small files become one file each, swapped in through their manifests; readers (who read what
//! the manifests list) see every record exactly once; a dry run writes nothing; a rerun finds
//! everything compact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::{parquetrail, parquetrail_on_moto, stdout, walk};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every partition manifest of a local archive: partition directory → the files it lists.
fn manifests(archive: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let root = archive.join("manifests");
    walk(&root)
        .into_iter()
        .filter(|p| p.ends_with("/symlink.txt"))
        .map(|p| {
            let dir =
                p.trim_start_matches(&format!("{}/", root.display())).trim_end_matches("/symlink.txt").to_string();
            let files = std::fs::read_to_string(&p).unwrap().lines().map(str::to_string).collect();
            (dir, files)
        })
        .collect()
}

/// The `eventid`s of every row readers see (the files the manifests list), with their counts.
fn visible_event_ids(archive: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for (dir, files) in manifests(archive) {
        assert!(!dir.starts_with("digests/"), "no digests in a generated trail");
        for file in files {
            let bytes = std::fs::read(archive.join(&file)).unwrap_or_else(|e| panic!("{file} is listed: {e}"));
            for row in parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes), Some(&file)).unwrap() {
                *ids.entry(row.eventid.unwrap().into_owned()).or_default() += 1;
            }
        }
    }
    ids
}

/// Every file of a directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// The `eventID`s of a gzipped CloudTrail log file.
fn log_event_ids(path: &Path) -> Vec<String> {
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut json).unwrap();
    let log: Value = serde_json::from_slice(&json).unwrap();
    log["Records"].as_array().unwrap().iter().map(|r| r["eventID"].as_str().unwrap().to_string()).collect()
}

/// A generated trail, one of whose deliveries CloudTrail delivered twice (under another name, as
/// at-least-once delivery does). Returns the `eventID`s of that delivery.
fn trail_with_a_duplicate_delivery(cwd: &Path) -> Vec<String> {
    assert!(parquetrail(&["generate", "trail", "--mb", "2", "--seed", "11"], cwd).status.success());
    let original = walk(&cwd.join("trail"))
        .into_iter()
        .find(|p| p.contains("/CloudTrail/") && p.ends_with(".json.gz"))
        .expect("an events delivery");
    let (stem, _) = original.rsplit_once('_').unwrap();
    std::fs::copy(&original, format!("{stem}_DuplicateDeliver.json.gz")).unwrap();
    log_event_ids(Path::new(&original))
}

#[test]
fn compact_swaps_small_files_for_one_per_partition_and_readers_see_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let archive = cwd.join("archive");
    let duplicated = trail_with_a_duplicate_delivery(cwd);
    // `convert` lists each delivery's files in its partitions' manifests, as the Lambda does.
    let out = parquetrail(&["convert", "trail", "--out", "archive", "-j", "2"], cwd);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let before_manifests = manifests(&archive);
    let before_ids = visible_event_ids(&archive);
    assert!(before_manifests.values().any(|files| files.len() >= 3), "some partitions have several small files");
    let compact = |extra: &[&str]| {
        let mut args = vec!["compact", "archive", "--older-than", "0s", "--grace", "0s"];
        args.extend(extra);
        parquetrail(&args, cwd)
    };

    // A dry run plans, and writes or deletes nothing.
    let before = snapshot(&archive);
    let out = compact(&["--dry-run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("planned") && text.contains("nothing written or deleted"), "{text}");
    assert!(snapshot(&archive) == before, "a dry run changed the archive");

    let out = compact(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let run: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let totals = &run["totals"];
    assert_eq!(run["failures"], Value::Array(vec![]), "{run}");
    let compacted: Vec<&Value> =
        run["partitions"].as_array().unwrap().iter().filter(|p| p["verdict"] == "compacted").collect();
    assert_eq!(totals["compacted"].as_u64(), Some(compacted.len() as u64));
    // Every partition here is one to compact: two or more small files, or a lone per-delivery file
    // (rewritten once so that it gets the compacted layout and a lookup index).
    let lone = before_manifests.values().filter(|f| f.len() == 1).count();
    assert_eq!(compacted.len(), before_manifests.len(), "every partition is compacted ({lone} lone files): {run}");
    assert_eq!(totals["partitions"].as_u64(), Some(before_manifests.len() as u64));

    // Each compacted partition's manifest lists exactly its compacted files, which are all that is
    // left in its directory: the small files are deleted (grace 0s).
    let after_manifests = manifests(&archive);
    for p in &compacted {
        let partition = p["partition"].as_str().unwrap();
        let listed = &after_manifests[partition];
        let on_disk: BTreeSet<String> = walk(&archive.join(partition))
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|f| f.trim_start_matches(&format!("{}/", archive.display())).to_string())
            .collect();
        assert_eq!(listed, &on_disk, "{partition}");
        assert_eq!(listed.len() as u64, p["files_after"].as_u64().unwrap(), "{partition}");
        assert!(listed.iter().all(|f| f.rsplit('/').next().unwrap().starts_with("compacted-")), "{listed:?}");
        for old in &before_manifests[partition] {
            assert!(!archive.join(old).exists(), "{old} was replaced but not deleted");
        }
        assert_eq!(p["deleted"].as_u64(), Some(before_manifests[partition].len() as u64), "{p}");
    }
    for (partition, files) in &before_manifests {
        if !compacted.iter().any(|p| p["partition"] == partition.as_str()) {
            assert_eq!(&after_manifests[partition], files, "{partition} was left alone");
        }
    }

    // Readers see the same records, the duplicate delivery's once.
    let mut expected = before_ids.clone();
    for id in &duplicated {
        let n = expected.get_mut(id).unwrap();
        assert_eq!(*n, 2, "{id} was read twice before compaction");
        *n = 1;
    }
    let after_ids = visible_event_ids(&archive);
    assert!(after_ids == expected, "the rows readers see changed beyond the duplicates");
    assert!(after_ids.values().all(|n| *n == 1));
    assert_eq!(totals["duplicates_removed"].as_u64(), Some(duplicated.len() as u64));
    assert_eq!(
        totals["rows_in"].as_u64().unwrap(),
        totals["rows_out"].as_u64().unwrap() + totals["duplicates_removed"].as_u64().unwrap()
    );

    // A rerun finds every partition already compact and changes nothing.
    let before = snapshot(&archive);
    let out = compact(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rerun: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(rerun["partitions"].as_array().unwrap().iter().all(|p| p["verdict"] == "already_compact"), "{rerun}");
    assert_eq!((rerun["totals"]["compacted"].as_u64(), rerun["totals"]["deleted"].as_u64()), (Some(0), Some(0)));
    let out = compact(&[]);
    assert!(
        stdout(&out).contains(&format!("Nothing to compact: {} partition(s)", before_manifests.len())),
        "{}",
        stdout(&out)
    );
    assert!(snapshot(&archive) == before, "a rerun changed the archive");
}

#[test]
fn compact_usage_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::create_dir(cwd.join("archive")).unwrap();
    let help = stdout(&parquetrail(&["compact", "--help"], cwd));
    for needle in ["never see a record twice", "--grace", "--older-than", "parquetrail compact ./archive --dry-run"] {
        assert!(help.contains(needle), "compact --help lacks {needle:?}:\n{help}");
    }
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--partition", "events/account=111122223333/date=2024-03-01"], &["--partition", "DATASET/account="]),
        (&["--partition", "events/account=1/region=r/date=2024-13-01"], &["is not a date"]),
        (&["--partition", "logs/account=1/region=r/date=2024-03-01"], &["not events, insights or digests"]),
        (&["--older-than", "soon"], &["--older-than", "30m"]),
        (&["--target-size", "big"], &["--target-size", "64MiB"]),
        (&["--since", "yesterday"], &["--since", "YYYY-MM-DD"]),
    ];
    for (args, needles) in cases {
        let out = parquetrail(&[&["compact", "archive"][..], args].concat(), cwd);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        for needle in needles {
            assert!(stderr(&out).contains(needle), "{args:?}: the error lacks {needle:?}: {}", stderr(&out));
        }
    }
    let out = parquetrail(&["compact", "nowhere"], cwd);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
    // A well-formed partition the archive does not have is a failure, named.
    let missing = "events/account=111122223333/region=us-east-1/date=2024-03-01";
    let out = parquetrail(&["compact", "archive", "--partition", missing], cwd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains(missing) && stdout(&out).contains("no manifest"), "{}", stdout(&out));
}

#[test]
fn compact_works_on_an_s3_archive() {
    let Some(moto) = parquetrail_testkit::MotoServer::start("compact_works_on_an_s3_archive") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    trail_with_a_duplicate_delivery(cwd);
    let client = runtime.block_on(async {
        moto.create_bucket("trail-bucket").await;
        moto.create_bucket("archive-bucket").await;
        moto.client().await
    });
    for path in walk(&cwd.join("trail")) {
        let key = path.split("/trail/").nth(1).unwrap().to_string();
        let body = std::fs::read(&path).unwrap();
        runtime.block_on(client.put_object().bucket("trail-bucket").key(key).body(body.into()).send()).unwrap();
    }
    let run = |args: &[&str]| parquetrail_on_moto(args, cwd, &moto);
    let out = run(&["convert", "s3://trail-bucket", "--out", "s3://archive-bucket/lake", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let converted: Value = serde_json::from_str(&stdout(&out)).unwrap();

    let out = run(&["compact", "s3://archive-bucket/lake", "--older-than", "0s", "--grace", "0s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let totals = &report["totals"];
    assert!(totals["compacted"].as_u64().unwrap() > 0 && totals["deleted"].as_u64().unwrap() > 0, "{totals}");
    assert_eq!(report["failures"], Value::Array(vec![]));

    // What the manifests list is exactly the data left, and holds every row once.
    let objects: BTreeMap<String, Vec<u8>> = runtime.block_on(async {
        let mut out = BTreeMap::new();
        let mut pages = client.list_objects_v2().bucket("archive-bucket").prefix("lake/").into_paginator().send();
        while let Some(page) = pages.next().await {
            for o in page.unwrap().contents() {
                let key = o.key().unwrap().to_string();
                let body = client.get_object().bucket("archive-bucket").key(&key).send().await.unwrap().body;
                out.insert(key, body.collect().await.unwrap().into_bytes().to_vec());
            }
        }
        out
    });
    let listed: BTreeSet<String> = objects
        .iter()
        .filter(|(k, _)| k.starts_with("lake/manifests/") && k.ends_with("/symlink.txt"))
        .flat_map(|(_, body)| String::from_utf8(body.clone()).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let data: BTreeSet<String> = objects
        .keys()
        .filter(|k| k.ends_with(".parquet") && !k.starts_with("lake/quarantine/"))
        .map(|k| format!("s3://archive-bucket/{k}"))
        .collect();
    assert_eq!(listed, data);
    let rows: usize = data
        .iter()
        .map(|uri| {
            let key = uri.trim_start_matches("s3://archive-bucket/");
            parquetrail_core::archive::read_rows(bytes::Bytes::from(objects[key].clone()), Some(key)).unwrap().len()
        })
        .sum();
    assert_eq!(rows as u64 + totals["duplicates_removed"].as_u64().unwrap(), converted["rows"].as_u64().unwrap());
    assert!(totals["duplicates_removed"].as_u64().unwrap() > 0);

    let out = run(&["compact", "s3://archive-bucket/lake", "--older-than", "0s", "--grace", "0s", "--json"]);
    let rerun: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rerun["totals"]["compacted"].as_u64(), Some(0), "{rerun}");
    assert_eq!(rerun["totals"]["already_compact"], totals["partitions"]);
}
