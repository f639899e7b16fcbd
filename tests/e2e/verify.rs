//! `verify` against a real local S3 endpoint (moto): generated log files under real digest chains
//! signed with the test key exactly as CloudTrail signs them (signature in `x-amz-meta-signature`),
//! one bucket per case. An untouched chain verifies; a modified log file, a deleted log file, a
//! broken signature, a removed digest (gap) and an archive missing one file are each reported
//! precisely, and nothing else is. The digest examples of the shared corpus parse.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{NaiveDate, TimeZone, Utc};
use parquetrail_core::convert::Options;
use parquetrail_core::digest::{Digest, DigestKey, GapKind, PublicKeys, inflate, signing_string};
use parquetrail_ingest::Storage;
use parquetrail_ingest::backfill::{Backfill, Progress};
use parquetrail_ingest::ledger::Checkpoint;
use parquetrail_ingest::listing::Selection;
use parquetrail_ingest::s3::S3Storage;
use parquetrail_ingest::verify::{LogStatus, Report, Verify};
use parquetrail_synth::digest::{SignedDigest, TestSigner, signed_trail};
use parquetrail_testkit::MotoServer;
use tokio_util::sync::CancellationToken;

const HOURS: usize = 6;

/// The trail: log files of one account and region over six hours, and their signed chain.
struct Trail {
    logs: BTreeMap<String, Vec<u8>>,
    digests: Vec<SignedDigest>,
}

fn trail(bucket: &str) -> Trail {
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let (logs, digests) = signed_trail(bucket, 8, start, HOURS);
    let signed: usize = digests.iter().map(|d| d.log_files.len()).sum();
    assert_eq!(signed, logs.len(), "every log file is in exactly one digest");
    assert!(digests.iter().all(|d| !d.log_files.is_empty()), "every hour has deliveries");
    Trail { logs, digests }
}

async fn upload(client: &aws_sdk_s3::Client, bucket: &str, trail: &Trail, skip: &[&str]) {
    for (key, gz) in &trail.logs {
        if !skip.contains(&key.as_str()) {
            client.put_object().bucket(bucket).key(key).body(ByteStream::from(gz.clone())).send().await.unwrap();
        }
    }
    for d in &trail.digests {
        let mut put = client.put_object().bucket(bucket).key(&d.key).body(ByteStream::from(d.gz.clone()));
        for (name, value) in d.metadata() {
            put = put.metadata(name, value);
        }
        put.send().await.unwrap();
    }
}

/// How many objects the archive bucket holds under `prefix`.
async fn archived_outputs(client: &aws_sdk_s3::Client, prefix: &str) -> usize {
    let mut n = 0;
    let mut pages = client.list_objects_v2().bucket("archive").prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        n += page.unwrap().contents().len();
    }
    n
}

fn day() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2024, 3, 1)
}

async fn verify(client: &aws_sdk_s3::Client, bucket: &str, archive: Option<(&str, &str)>) -> Report {
    let keys = PublicKeys::from_list_json(TestSigner::fixture().public_keys_json(true).as_bytes()).unwrap();
    let job = Verify {
        source: Arc::new(S3Storage::new(client.clone(), bucket)),
        source_prefix: "ct".into(),
        selection: Selection { start: day(), end: day(), ..Selection::default() },
        keys: Arc::new(keys),
        archive: archive.map(|(b, p)| (Arc::new(S3Storage::new(client.clone(), b)) as Arc<dyn Storage>, p.to_string())),
        concurrency: 8,
    };
    job.run().await
}

/// The findings, as (what, key) pairs: everything that is not valid.
fn findings(r: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in r.digests.iter().filter(|d| !d.valid) {
        out.push((format!("digest invalid: {}", d.reason.clone().unwrap_or_default()), d.key.clone()));
    }
    for g in &r.gaps {
        out.push((format!("gap {:?}", g.gap.kind), g.gap.missing.clone().unwrap_or_else(|| g.gap.newer.clone())));
    }
    for l in r.log_files.iter().filter(|l| l.status != LogStatus::Valid) {
        out.push((format!("log {:?}", l.status), l.key.clone()));
    }
    if let Some(a) = &r.archive {
        for (what, list) in [("differs", &a.differs), ("unsigned", &a.unsigned), ("not archived", &a.not_archived)] {
            out.extend(list.iter().map(|f| (format!("archive {what}"), f.key.clone())));
        }
    }
    out.extend(r.failures.iter().map(|f| ("failure".to_string(), f.clone())));
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digest_chains_verify_and_each_tampering_is_reported_precisely() {
    let test = "digest_chains_verify_and_each_tampering_is_reported_precisely";
    let Some(moto) = MotoServer::start(test) else { return };
    let client = moto.client().await;

    // 1. Untouched: everything valid, and an archive backfilled from it is covered file by file.
    moto.create_bucket("trail-ok").await;
    moto.create_bucket("archive").await;
    let ok = trail("trail-ok");
    upload(&client, "trail-ok", &ok, &[]).await;
    let report = verify(&client, "trail-ok", None).await;
    assert_eq!(findings(&report), vec![]);
    assert!(report.valid);
    assert_eq!((report.counts.chains, report.counts.digests, report.counts.valid_digests), (1, HOURS, HOURS));
    assert_eq!((report.counts.log_files, report.counts.valid_log_files), (ok.logs.len(), ok.logs.len()));
    let backfill = |bucket: &str, prefix: &str| Backfill {
        source: Arc::new(S3Storage::new(client.clone(), bucket)),
        source_prefix: "ct".into(),
        dest: Arc::new(S3Storage::new(client.clone(), "archive")),
        dest_prefix: prefix.into(),
        selection: Selection { start: day(), end: day(), ..Selection::default() },
        options: Options::default(),
        concurrency: 4,
        checkpoint: Checkpoint { objects: 100, interval: Duration::from_secs(60) },
    };
    // The backfill converts the digests too (one `digests` row each); the reconciliation still
    // considers only the log files among the ledger's entries.
    let done = backfill("trail-ok", "ok").run(Arc::new(Progress::default()), CancellationToken::new()).await.unwrap();
    assert!(done.complete(), "{:?}", done.failures);
    assert_eq!((done.totals.converted as usize, done.totals.skipped), (ok.logs.len() + HOURS, 0));
    assert_eq!(done.totals.outputs as usize - HOURS, archived_outputs(&client, "ok/events/").await);
    assert_eq!(archived_outputs(&client, "ok/digests/").await, HOURS, "one `digests` file per digest");
    let report = verify(&client, "trail-ok", Some(("archive", "ok"))).await;
    assert_eq!(findings(&report), vec![]);
    let archive = report.archive.as_ref().unwrap();
    assert_eq!(archive.ledger_entries as usize, ok.logs.len() + HOURS);
    assert_eq!((archive.covered as usize, archive.considered as usize), (ok.logs.len(), ok.logs.len()));
    assert!(report.valid);

    let victim = |t: &Trail, hour: usize| t.digests[hour].log_files[0].clone();

    // 2. A modified log file: that file is invalid, nothing else.
    moto.create_bucket("trail-modified").await;
    let mut modified = trail("trail-modified");
    let changed = victim(&modified, 2);
    let json = String::from_utf8(inflate(&modified.logs[&changed][..], u64::MAX).unwrap()).unwrap();
    modified.logs.insert(changed.clone(), gzip(json.replacen("\"eventName\":\"", "\"eventName\":\"X", 1).as_bytes()));
    upload(&client, "trail-modified", &modified, &[]).await;
    let report = verify(&client, "trail-modified", None).await;
    assert_eq!(findings(&report), vec![("log Invalid".to_string(), changed.clone())]);
    assert!(!report.valid);

    // 3. A deleted log file: that file is missing, nothing else.
    moto.create_bucket("trail-deleted").await;
    let deleted = trail("trail-deleted");
    let gone = victim(&deleted, 4);
    upload(&client, "trail-deleted", &deleted, &[gone.as_str()]).await;
    let report = verify(&client, "trail-deleted", None).await;
    assert_eq!(findings(&report), vec![("log Missing".to_string(), gone)]);

    // 4. A broken signature on a digest mid-chain: that digest is invalid (the newer digest signed
    //    another signature for it), its log files are proven by nothing, the chain goes on.
    moto.create_bucket("trail-signature").await;
    let mut broken = trail("trail-signature");
    let sig = &mut broken.digests[3].signature;
    *sig = format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]);
    upload(&client, "trail-signature", &broken, &[]).await;
    let report = verify(&client, "trail-signature", None).await;
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.starts_with("digest invalid") && found[0].0.contains("signature"), "{found:?}");
    assert_eq!(found[0].1, broken.digests[3].key);
    assert_eq!(report.counts.log_files, broken.logs.len() - broken.digests[3].log_files.len());
    // The newest digest's signature broken: nothing vouches for it.
    moto.create_bucket("trail-newest").await;
    let mut newest = trail("trail-newest");
    let last = HOURS - 1;
    newest.digests[last].signature = newest.digests[last].signature.replace('a', "b").replace('1', "2");
    upload(&client, "trail-newest", &newest, &[]).await;
    let report = verify(&client, "trail-newest", None).await;
    assert_eq!(
        findings(&report),
        vec![("digest invalid: signature verification failed".to_string(), newest.digests[last].key.clone())]
    );

    // 5. A removed digest: a gap naming it; its log files are proven by nothing; nothing else.
    moto.create_bucket("trail-gap").await;
    let gap = trail("trail-gap");
    upload(&client, "trail-gap", &gap, &[]).await;
    client.delete_object().bucket("trail-gap").key(&gap.digests[2].key).send().await.unwrap();
    let report = verify(&client, "trail-gap", None).await;
    assert_eq!(findings(&report), vec![(format!("gap {:?}", GapKind::MissingDigest), gap.digests[2].key.clone())]);
    assert_eq!(report.gaps[0].gap.newer, gap.digests[3].key);
    assert_eq!(report.gaps[0].gap.older.as_deref(), Some(gap.digests[1].key.as_str()));
    assert_eq!(report.counts.log_files, gap.logs.len() - gap.digests[2].log_files.len());

    // 6. An archive missing one file: the bucket is fine, the archive is not, by exactly that file.
    moto.create_bucket("trail-archive").await;
    let late = trail("trail-archive");
    let unarchived = victim(&late, 1);
    upload(&client, "trail-archive", &late, &[unarchived.as_str()]).await;
    backfill("trail-archive", "partial").run(Arc::new(Progress::default()), CancellationToken::new()).await.unwrap();
    client
        .put_object()
        .bucket("trail-archive")
        .key(&unarchived)
        .body(ByteStream::from(late.logs[&unarchived].clone()))
        .send()
        .await
        .unwrap();
    let report = verify(&client, "trail-archive", Some(("archive", "partial"))).await;
    assert_eq!(findings(&report), vec![("archive not archived".to_string(), unarchived)]);
    assert_eq!(report.archive.as_ref().unwrap().covered as usize, late.logs.len() - 1);
    assert!(!report.valid);
}

#[test]
fn the_corpus_digest_examples_parse() {
    let test = "the_corpus_digest_examples_parse";
    let Some(corpus) = parquetrail_testkit::corpus(test) else { return };
    let digests: Vec<_> =
        parquetrail_testkit::gz_files(&corpus).into_iter().filter(|(k, _)| k.contains("/CloudTrail-Digest/")).collect();
    assert!(!digests.is_empty(), "the corpus has digest examples");
    for (key, path) in digests {
        let inflated = inflate(&std::fs::read(&path).unwrap()[..], u64::MAX).unwrap();
        let digest = Digest::parse(&inflated).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(digest.digest_s3_object.as_deref(), Some(key.as_str()), "stored at its own key");
        let parsed = DigestKey::parse(&key).unwrap_or_else(|| panic!("{key}: key does not parse"));
        assert_eq!(Some(parsed.chain.account.as_str()), digest.aws_account_id.as_deref(), "{key}");
        assert!(digest.end_time().is_some() && digest.start_time().is_some(), "{key}");
        assert!(digest.previous_digest_signature.is_some(), "{key}: the examples continue a chain");
        let signing = signing_string(&digest, &inflated);
        assert_eq!(signing.lines().count(), 4, "{key}");
        for f in &digest.log_files {
            assert_eq!(f.hash_value.as_deref().map(str::len), Some(64), "{key}");
        }
    }
}

/// Digest files converted through the S3 pipeline become the `digests` dataset: read back with
/// pyarrow, one row per digest with every log file it lists and its hash, the signature from the
/// object's metadata, and hashes that chain each digest to the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digests_convert_to_a_dataset_with_signatures_and_every_listed_log_file() {
    let test = "digests_convert_to_a_dataset_with_signatures_and_every_listed_log_file";
    let Some(python) = crate::support::python(test) else { return };
    let Some(moto) = MotoServer::start(test) else { return };
    let client = moto.client().await;
    moto.create_bucket("trail-digests").await;
    let chain = trail("trail-digests");
    upload(&client, "trail-digests", &chain, &[]).await;

    let out = tempfile::tempdir().unwrap();
    let dest: Arc<dyn Storage> = Arc::new(parquetrail_ingest::local::LocalStorage::new(out.path()));
    let pipeline = parquetrail_ingest::Pipeline::new(dest, "", Options::default());
    let source = S3Storage::new(client.clone(), "trail-digests");
    for d in &chain.digests {
        let report = pipeline.process(&source, &d.key, None, None).await.result.unwrap();
        assert_eq!(report.outputs.len(), 1, "{}: {report:?}", d.key);
        assert!(report.outputs[0].path.starts_with("digests/account="), "{:?}", report.outputs[0]);
    }

    let script = "import json, sys, pyarrow.dataset as ds\n\
                  t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()\n\
                  print(json.dumps(t.to_pylist(), default=str))";
    let read = std::process::Command::new(&python)
        .args(["-c", script, &out.path().join("digests").display().to_string()])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(rows.len(), chain.digests.len());
    let by_key: BTreeMap<&str, &serde_json::Value> =
        rows.iter().map(|r| (r["source_key"].as_str().unwrap(), r)).collect();
    let mut previous: Option<&str> = None;
    for d in &chain.digests {
        let row = by_key[d.key.as_str()];
        assert_eq!(row["signature"], d.signature.as_str(), "{}", d.key);
        assert_eq!(row["signature_algorithm"], "SHA256withRSA");
        assert_eq!(row["trail"], "management_trail");
        assert_eq!(row["sha256"], parquetrail_core::digest::hex(&parquetrail_core::digest::sha256(&d.json)));
        assert_eq!(row["previousdigesthashvalue"].as_str(), previous, "{}: chains to the digest before", d.key);
        previous = row["sha256"].as_str();
        let listed: BTreeMap<&str, &str> = row["logfiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["s3object"].as_str().unwrap(), f["hashvalue"].as_str().unwrap()))
            .collect();
        assert_eq!(listed.len(), d.log_files.len(), "{}", d.key);
        for key in &d.log_files {
            let want = parquetrail_core::digest::hex(&parquetrail_core::digest::sha256(
                &inflate(&chain.logs[key][..], u64::MAX).unwrap(),
            ));
            assert_eq!(listed.get(key.as_str()), Some(&want.as_str()), "{key} listed with its hash");
        }
    }
}

#[test]
fn the_corpus_digest_examples_convert_to_digests_rows() {
    use parquetrail_core::convert::{Dataset, convert};
    let test = "the_corpus_digest_examples_convert_to_digests_rows";
    let Some(corpus) = parquetrail_testkit::corpus(test) else { return };
    let digests: Vec<_> =
        parquetrail_testkit::gz_files(&corpus).into_iter().filter(|(k, _)| k.contains("/CloudTrail-Digest/")).collect();
    assert!(!digests.is_empty(), "the corpus has digest examples");
    for (key, path) in digests {
        let sink = parquetrail_core::sink::MemorySink::default();
        let report = convert(&key, &std::fs::read(&path).unwrap()[..], &sink, &Options::default()).unwrap();
        assert_eq!((report.skipped.as_ref(), report.failure.as_ref()), (None, None), "{key}");
        assert_eq!(report.outputs.len(), 1, "{key}");
        assert_eq!(report.outputs[0].dataset, Dataset::Digests);
        let stamp = key.rsplit('_').next().unwrap();
        let date = format!("{}-{}-{}", &stamp[..4], &stamp[4..6], &stamp[6..8]);
        assert_eq!(report.outputs[0].date, date, "{key}: partitioned by digestEndTime");
    }
}
