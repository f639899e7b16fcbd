//! Golden tests of normalized rows: hand-written records covering each identity shape, data and
//! management events, Insights, and future fields, snapshotted as the row the archive stores.

mod hostile;

use parquetrail_core::record::Row;

#[test]
fn normalized_rows_match_golden_snapshots() {
    let fixtures = include_str!("../fixtures/golden.jsonl");
    for (i, line) in fixtures.lines().enumerate() {
        let row = Row::parse(line.as_bytes(), "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/02/f.json.gz", i)
            .unwrap_or_else(|e| panic!("fixture {i}: {e}"));
        insta::assert_json_snapshot!(format!("row_{i}"), row);
        // And every golden record goes back to exactly its input.
        let a: serde_json::Value = serde_json::from_str(line).unwrap();
        let b: serde_json::Value = serde_json::from_str(&row.to_json()).unwrap();
        assert_eq!(a, b, "fixture {i}");
    }
}
