//! Golden tests of normalized rows: hand-written records covering each identity shape, data and
//! management events, Insights, and future fields, snapshotted as the row the archive stores.

mod export;
mod hostile;

use std::sync::{Mutex, MutexGuard};

use peak_alloc::PeakAlloc;

/// Counts the bytes this test binary holds, so a test can bound what converting one input costs
/// ([`peak_while`]). Every thread counts (the converter inflates on a thread of its own), so the
/// tests of this binary take [`exclusive`] and run one at a time.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// Holds the binary to one test at a time, so [`peak_while`] sees only its own allocations.
fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` and returns its result with the most bytes held at once meanwhile, above what was
/// held when it started. Call it under [`exclusive`].
fn peak_while<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let out = f();
    (out, ALLOCATOR.peak_usage().saturating_sub(start))
}

use parquetrail_core::record::Row;

#[test]
fn normalized_rows_match_golden_snapshots() {
    let _one_at_a_time = exclusive();
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
