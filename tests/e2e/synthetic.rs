//! The synthetic trees the README's demo and the benchmarks use: converted, read back by DuckDB
//! with `hive_partitioning`, and exported back losslessly. These need no shared corpus.

use std::collections::BTreeSet;

use parquetrail_core::archive::read_rows;
use parquetrail_core::convert::{Options, convert};
use parquetrail_core::sink::MemorySink;
use parquetrail_synth::{TreeOptions, generate_files};
use serde_json::Value;

use crate::support::*;

fn tree(mb: u64, org: bool) -> TreeOptions {
    TreeOptions {
        seed: 7,
        target_json_bytes: mb * 1_000_000,
        org_id: org.then(|| "o-demo123abc".to_string()),
        ..TreeOptions::default()
    }
}

#[test]
fn synthetic_tree_round_trips_and_spans_partitions() {
    let sink = MemorySink::default();
    let mut inputs = Vec::new();
    let mut multi_partition_files = 0;
    let mut dates = BTreeSet::new();
    for file in generate_files(&tree(4, true)) {
        let report = convert(&file.key, &file.gz[..], &sink, &Options::default()).unwrap();
        assert!(report.reconciles() && report.quarantined == 0 && report.failure.is_none(), "{report:?}");
        assert_eq!(report.records as usize, file.records);
        let partitions: BTreeSet<_> = report.outputs.iter().map(|o| (&o.account, &o.region, &o.date)).collect();
        if partitions.len() > 1 {
            multi_partition_files += 1;
        }
        dates.extend(report.outputs.iter().map(|o| o.date.clone()));
        let env: Value = serde_json::from_str(&file.json()).unwrap();
        for (i, r) in env["Records"].as_array().unwrap().iter().enumerate() {
            inputs.push(((file.key.clone(), i as i32), r.clone()));
        }
    }
    assert!(multi_partition_files > 0, "some delivery must span midnight (several partitions)");
    assert!(dates.len() > 1);
    let mut rows = std::collections::BTreeMap::new();
    for (path, bytes) in sink.files() {
        for row in read_rows(bytes::Bytes::from(bytes), Some(&path)).unwrap() {
            // Each row sits in the partition of its own eventTime.
            let date = &row.eventtime.as_deref().unwrap()[..10];
            assert!(path.contains(&format!("/date={date}/")), "{path} holds a row of {date}");
            rows.insert((row.source_key.to_string(), row.source_index), row);
        }
    }
    assert_eq!(rows.len(), inputs.len());
    for (id, input) in &inputs {
        let back: Value = serde_json::from_str(&rows[id].to_json()).unwrap();
        assert_eq!(&back, input, "{id:?}");
    }
}

#[test]
fn demo_sized_archive_is_readable_by_duckdb_with_hive_partitioning() {
    let Some(python) = python("demo_sized_archive_is_readable_by_duckdb_with_hive_partitioning") else { return };
    let sink = MemorySink::default();
    let mut records = 0;
    let mut accounts = BTreeSet::new();
    for file in generate_files(&tree(2, true)) {
        convert(&file.key, &file.gz[..], &sink, &Options::default()).unwrap();
        // The generator's count, not the converter's: DuckDB must see every record written.
        records += file.records as u64;
        // The accounts of the event records, from the generated JSON itself.
        if !file.insight {
            let mut json = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&file.gz[..]), &mut json).unwrap();
            let envelope: Value = serde_json::from_slice(&json).unwrap();
            for record in envelope["Records"].as_array().unwrap() {
                let account = record["recipientAccountId"].as_str().or(record["userIdentity"]["accountId"].as_str());
                accounts.insert(account.unwrap().to_string());
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    materialize(&sink, dir.path());
    let seen = inspect(&python, dir.path());
    let duck: usize =
        ["events", "insights"].iter().map(|d| seen["duckdb"][d]["rows"].as_array().map_or(0, |r| r.len())).sum();
    assert_eq!(duck as u64, records);
    let py_accounts: BTreeSet<String> = seen["pyarrow"]["events"]["distinct_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(py_accounts, accounts);
    for r in seen["duckdb"]["events"]["rows"].as_array().unwrap() {
        // The hive `date` partition equals the day of the row's own eventTime.
        assert_eq!(&r[9].as_str().unwrap()[..10], r[2].as_str().unwrap());
    }
}
