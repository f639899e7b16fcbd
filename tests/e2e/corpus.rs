//! The shared corpus of real-format CloudTrail deliveries: every record is either a row that an
//! independent reader sees in the right partition and that exports back equal to its input, or a
//! quarantined record with its raw text; every file is converted, skipped with a reason, or
//! quarantined with its offset.

use std::collections::BTreeMap;
use std::io::Read;

use parquetrail_core::archive::{ExportFormat, Exporter, read_rows};
use parquetrail_core::record::Row;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::support::*;

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

/// Each record's raw text, parsed independently of our reader (serde_json over the whole file),
/// and the files that parser rejects (named, never silently left out).
fn input_records(files: &[(String, std::path::PathBuf)]) -> (BTreeMap<(String, i32), String>, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "Records")]
        records: Vec<Box<RawValue>>,
    }
    let mut out = BTreeMap::new();
    let mut rejected = Vec::new();
    for (key, path) in files {
        let json = gunzip(path);
        match serde_json::from_slice::<Envelope>(&json) {
            Ok(env) => {
                for (i, r) in env.records.into_iter().enumerate() {
                    out.insert((key.clone(), i as i32), r.get().to_string());
                }
            }
            // A digest is one JSON object without `Records`: no records, not a rejection.
            Err(_) if serde_json::from_slice::<Value>(&json).is_ok_and(|v| v.get("Records").is_none()) => {}
            Err(_) => rejected.push(key.clone()),
        }
    }
    (out, rejected)
}

/// The files the corpus's SOURCES.md lists (the first column of its tables), so that the test
/// knows the corpus is whole without a count copied from it.
fn documented_files(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("the corpus documents its files");
    sources
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|p| p.ends_with(".json.gz"))
        .map(str::to_string)
        .collect()
}

fn all_rows(sink: &parquetrail_core::sink::MemorySink) -> BTreeMap<(String, i32), Row<'static>> {
    let mut rows = BTreeMap::new();
    for (path, bytes) in sink.files() {
        if path.ends_with(".parquet") && !path.starts_with("digests/") {
            for row in read_rows(bytes::Bytes::from(bytes), Some(&path)).unwrap() {
                let id = (row.source_key.to_string(), row.source_index);
                assert!(rows.insert(id.clone(), row).is_none(), "row {id:?} written twice");
            }
        }
    }
    rows
}

fn quarantined(sink: &parquetrail_core::sink::MemorySink) -> BTreeMap<(String, i32), Value> {
    let mut out = BTreeMap::new();
    for (path, bytes) in sink.files() {
        if path.starts_with("quarantine/records/") {
            for line in String::from_utf8(bytes).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let id = (v["source_key"].as_str().unwrap().to_string(), v["record_index"].as_i64().unwrap() as i32);
                out.insert(id, v);
            }
        }
    }
    out
}

#[test]
fn corpus_converts_reconciles_and_exports_losslessly() {
    let Some(dir) = corpus("corpus_converts_reconciles_and_exports_losslessly") else { return };
    let files = files_under(&dir);
    let present: std::collections::BTreeSet<String> = files.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(present, documented_files(&dir), "the corpus holds exactly the files SOURCES.md lists");
    let (sink, reports) = convert_all(&files);
    let (inputs, rejected) = input_records(&files);
    let rows = all_rows(&sink);
    let quarantine = quarantined(&sink);

    // Files: nothing skipped, the two digests one `digests` row each, the structurally broken file
    // quarantined with its offset.
    let skipped: Vec<&str> = reports.values().filter(|r| r.skipped.is_some()).map(|r| r.key.as_str()).collect();
    assert_eq!(skipped, Vec::<&str>::new());
    let digests: Vec<&str> = reports
        .values()
        .flat_map(|r| &r.outputs)
        .filter(|o| o.dataset == parquetrail_core::convert::Dataset::Digests)
        .map(|o| o.path.as_str())
        .collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert!(digests.iter().all(|p| p.starts_with("digests/account=111122223333/region=us-east-2/")), "{digests:?}");
    let failed: Vec<_> = reports.values().filter_map(|r| r.failure.as_ref().map(|f| (r.key.as_str(), f))).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.ends_with("SerializerTestFileBadJsonFormat.json.gz"));
    assert!(failed[0].1.offset > 0 && failed[0].1.reason.contains("malformed JSON"), "{:?}", failed[0].1);
    assert!(sink.get(&failed[0].1.quarantine_path).is_some(), "file quarantine object written");

    // Reconciliation over the whole run.
    let records: u64 = reports.values().map(|r| r.records).sum();
    let quarantined_n: u64 = reports.values().map(|r| r.quarantined).sum();
    assert_eq!(records, rows.len() as u64 + quarantined_n);
    assert_eq!(quarantine.len() as u64, quarantined_n);

    // Every record of the delivery tree becomes a row, and comes back equal, numbers as written.
    let mut checked = 0;
    for (id, raw) in &inputs {
        match rows.get(id) {
            Some(row) => {
                let back = row.to_json();
                let a: Value = serde_json::from_str(raw).unwrap();
                let b: Value = serde_json::from_str(&back).unwrap_or_else(|e| panic!("{id:?}: {e}\n{back}"));
                assert_eq!(a, b, "{id:?} does not round-trip\ninput:  {raw}\noutput: {back}");
                assert_eq!(number_lexemes(raw), number_lexemes(&back), "{id:?}: numbers changed");
                checked += 1;
            }
            None => {
                let q = quarantine.get(id).unwrap_or_else(|| panic!("{id:?} is neither a row nor quarantined"));
                assert!(id.0.starts_with("edge-cases/"), "a delivered record was quarantined: {id:?} {q}");
                assert_eq!(q["raw"].as_str().unwrap(), raw, "quarantine keeps the raw text");
                assert!(!q["reason"].as_str().unwrap().is_empty());
            }
        }
    }
    let delivered = inputs.keys().filter(|(k, _)| k.starts_with("AWSLogs/")).count();
    assert!(delivered > 0 && checked >= delivered, "checked {checked} of {delivered}");
    // A file the independent parser rejects is an edge case, and left a trace: a file quarantine
    // or quarantined records. None is silently left out of the comparison above.
    for key in &rejected {
        assert!(key.starts_with("edge-cases/"), "a delivered file the independent parser rejects: {key}");
        let report = &reports[key];
        assert!(report.failure.is_some() || report.quarantined > 0, "{key} left no trace: {report:?}");
    }

    // The record with a raw control character could not be parsed as a whole file above; it is
    // quarantined alone with its exact text, the rest of its file proceeds.
    let control = quarantine
        .iter()
        .find(|((k, _), _)| k.ends_with("cloudtrail-log-file-examples-block0.json.gz"))
        .expect("the control-character record is quarantined");
    let file = files.iter().find(|(k, _)| k == &control.0.0).unwrap();
    let text = String::from_utf8(gunzip(&file.1)).unwrap();
    assert!(text.contains(control.1["raw"].as_str().unwrap()), "quarantined raw text is verbatim");
    assert!(control.1["reason"].as_str().unwrap().contains("control character"));

    // Export in CloudTrail's own envelope parses back with every row.
    let mut exporter = Exporter::new(Vec::new(), ExportFormat::Records).unwrap();
    for row in rows.values() {
        exporter.write(row).unwrap();
    }
    let (bytes, n) = exporter.finish().unwrap();
    let env: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(env["Records"].as_array().unwrap().len() as u64, n);
    assert_eq!(n, rows.len() as u64);
}

/// Where the record should land, computed from its JSON independently of the converter.
fn expected_partition(key: &str, record: &Value) -> (String, String, String, String) {
    let key_account = {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.iter().position(|p| *p == "AWSLogs") {
            Some(i) if parts[i + 1].starts_with("o-") => parts[i + 2].to_string(),
            Some(i) => parts[i + 1].to_string(),
            None => String::new(),
        }
    };
    let s = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let account =
        s(&record["recipientAccountId"]).or_else(|| s(&record["userIdentity"]["accountId"])).unwrap_or(key_account);
    let region = s(&record["awsRegion"]).unwrap_or_default();
    let date = record["eventTime"].as_str().unwrap()[..10].to_string();
    let dataset = if record["eventType"] == "AwsCloudTrailInsight" { "insights" } else { "events" };
    (dataset.to_string(), account, region, date)
}

#[test]
fn corpus_read_back_by_duckdb_and_pyarrow() {
    let Some(dir) = corpus("corpus_read_back_by_duckdb_and_pyarrow") else { return };
    let Some(python) = python("corpus_read_back_by_duckdb_and_pyarrow") else { return };
    let files = files_under(&dir.join("AWSLogs"));
    let files: Vec<_> = files.into_iter().map(|(k, p)| (format!("AWSLogs/{k}"), p)).collect();
    let (sink, _) = convert_all(&files);
    let archive = tempfile::tempdir().unwrap();
    materialize(&sink, archive.path());
    let seen = inspect(&python, archive.path());

    let (inputs, rejected) = input_records(&files);
    assert_eq!(rejected, Vec::<String>::new(), "every delivered file parses independently");
    let mut expected = Vec::new();
    for ((key, index), raw) in inputs {
        let v: Value = serde_json::from_str(&raw).unwrap();
        let (dataset, account, region, date) = expected_partition(&key, &v);
        let eventid = v["eventID"].as_str().map(str::to_string);
        expected.push((dataset, account, region, date, key, index as i64, eventid));
    }
    expected.sort();
    let mut got = Vec::new();
    for dataset in ["events", "insights"] {
        for r in seen["duckdb"][dataset]["rows"].as_array().unwrap() {
            let r = r.as_array().unwrap();
            let s = |i: usize| r[i].as_str().unwrap().to_string();
            got.push((
                dataset.to_string(),
                s(0),
                s(1),
                s(2),
                s(3),
                r[4].as_i64().unwrap(),
                r[5].as_str().map(str::to_string),
            ));
            // The timestamp column agrees with the eventTime string.
            let ts = chrono::DateTime::parse_from_rfc3339(r[9].as_str().unwrap()).unwrap().timestamp_micros();
            assert_eq!(r[8].as_i64(), Some(ts), "{r:?}");
        }
        let types = &seen["duckdb"][dataset]["types"];
        assert_eq!(types["eventtime_ts"], "TIMESTAMP WITH TIME ZONE");
        assert!(
            types["useridentity"].as_str().unwrap().starts_with("STRUCT(\"type\" VARCHAR"),
            "{}",
            types["useridentity"]
        );
        let py = &seen["pyarrow"][dataset];
        assert_eq!(py["readonly_type"], "string");
        assert_eq!(py["managementevent_type"], "bool");
        assert_eq!(py["eventtime_ts_type"], "timestamp[us, tz=UTC]");
    }
    got.sort();
    assert_eq!(got.len(), expected.len(), "DuckDB sees a different number of rows");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "DuckDB row differs from the input record");
    }
    let py_rows =
        seen["pyarrow"]["events"]["rows"].as_u64().unwrap() + seen["pyarrow"]["insights"]["rows"].as_u64().unwrap();
    assert_eq!(py_rows as usize, expected.len(), "pyarrow sees a different number of rows");
    // Insights went to their own dataset; nested identity fields are addressable by DuckDB.
    assert!(seen["duckdb"]["insights"]["rows"].as_array().unwrap().len() >= 3);
    let issuer_arns = seen["duckdb"]["events"]["rows"].as_array().unwrap().iter().filter(|r| r[7].is_string()).count();
    assert!(issuer_arns >= 90, "sessionIssuer.arn values visible: {issuer_arns}");
}

#[test]
fn converting_again_writes_identical_bytes() {
    let Some(dir) = corpus("converting_again_writes_identical_bytes") else { return };
    let files = files_under(&dir);
    let (first, _) = convert_all(&files);
    let (second, _) = convert_all(&files);
    assert_eq!(first.files(), second.files());
}
