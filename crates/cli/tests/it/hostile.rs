//! Hostile and colliding input through the built binary: sources that map to one output name,
//! a quarantine that would amplify its input, and the exit codes the README promises.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{gzip, parquetrail, stdout, walk, write};

const DAY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01";
const NAME: &str = "111122223333_CloudTrail_us-east-1_20240301T1000Z_same00000000000.json.gz";

/// A log file of `n` records with event IDs `<tag>-0`, `<tag>-1`, …
fn log_file(tag: &str, n: usize) -> Vec<u8> {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:{i:02}Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"{tag}-{i}"}}"#
            )
        })
        .collect();
    gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
}

fn ids(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

/// The event IDs the archive holds, read back through `export` (which reads through manifests),
/// with how often each occurs.
fn archived_ids(cwd: &Path, archive: &str) -> BTreeMap<String, usize> {
    let out = parquetrail(&["export", archive, "--dataset", "events", "--out", "-"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut found = BTreeMap::new();
    for line in stdout(&out).lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        *found.entry(record["eventID"].as_str().unwrap().to_string()).or_default() += 1;
    }
    found
}

fn once(ids: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    ids.into_iter().map(|id| (id, 1)).collect()
}

fn convert_json(cwd: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = parquetrail(&[&["convert"], args, &["--json"]].concat(), cwd);
    let summary = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), summary)
}

/// The archive's files, except the ledger (a journal of runs, one new segment per run).
fn archive_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .filter(|p| !p.contains("/_ledger/"))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

/// The same `AWSLogs/…` key under two prefixes of one tree, with different content, used to map
/// to one output name: one overwrote the other and the summary still said "reconciled". Both
/// land, a third prefix holding a byte-identical copy is converted once, and a rerun rewrites the
/// same objects.
#[test]
fn the_same_key_under_two_prefixes_keeps_both_files_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail/a").join(DAY).join(NAME), &log_file("a", 2));
    write(&cwd.join("trail/b").join(DAY).join(NAME), &log_file("b", 3));
    write(&cwd.join("trail/c").join(DAY).join(NAME), &log_file("a", 2));
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!((s["records"].as_u64(), s["rows"].as_u64(), s["committed_rows"].as_u64()), (Some(5), Some(5), Some(5)));
    assert_eq!(s["reconciled"], true, "{s}");
    assert_eq!((s["converted"].as_u64(), s["skipped"].as_u64()), (Some(2), Some(1)), "{s}");
    assert_eq!(s["renamed"].as_array().unwrap().len(), 1, "{s}");
    let reason = s["skip_reasons"].as_object().unwrap().keys().next().unwrap().clone();
    // Which of the two copies is converted depends on their identities' hashes, never on timing.
    let names_a_copy = reason.contains("trail/a/AWSLogs") || reason.contains("trail/c/AWSLogs");
    assert!(reason.contains("the same content as") && names_a_copy, "{reason}");
    let want = once(ids("a", 2).into_iter().chain(ids("b", 3)));
    assert_eq!(archived_ids(cwd, "archive"), want);

    // Rerun: the same names and bytes, nothing duplicated.
    let before = archive_files(&cwd.join("archive"));
    let (code, again) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!((code, &again["reconciled"]), (Some(0), &Value::Bool(true)), "{again}");
    assert!(archive_files(&cwd.join("archive")) == before, "a rerun changed the archive");
    assert_eq!(archived_ids(cwd, "archive"), want);
}

/// Across runs: the second prefix converted in a later run finds the first one's claim in the
/// ledger and takes names of its own; converting the first again, or a copy of it from yet another
/// place, rewrites the first one's outputs rather than adding rows.
#[test]
fn a_later_run_with_the_same_key_does_not_overwrite_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail/a").join(DAY).join(NAME), &log_file("a", 2));
    write(&cwd.join("trail/b").join(DAY).join(NAME), &log_file("b", 3));
    write(&cwd.join("copy").join(DAY).join(NAME), &log_file("a", 2));
    let want = once(ids("a", 2).into_iter().chain(ids("b", 3)));
    let (code, first) = convert_json(cwd, &["trail/a", "--out", "archive"]);
    assert_eq!((code, first["rows"].as_u64()), (Some(0), Some(2)), "{first}");
    assert!(first["renamed"].as_array().unwrap().is_empty(), "the first owner keeps the plain names");
    let (code, second) = convert_json(cwd, &["trail/b", "--out", "archive"]);
    assert_eq!((code, second["rows"].as_u64(), &second["reconciled"]), (Some(0), Some(3), &Value::Bool(true)));
    assert_eq!(second["renamed"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(archived_ids(cwd, "archive"), want);
    for source in ["trail/a", "copy", "trail/b"] {
        let (code, again) = convert_json(cwd, &[source, "--out", "archive"]);
        assert_eq!((code, &again["reconciled"]), (Some(0), &Value::Bool(true)), "{source}: {again}");
        assert_eq!(archived_ids(cwd, "archive"), want, "after converting {source} again");
    }
}

/// Two file names that are not UTF-8 and decode to the same text name one key; their rows both
/// land.
#[cfg(unix)]
#[test]
fn file_names_that_decode_alike_keep_both_files_rows() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let day = cwd.join("trail").join(DAY);
    write(&day.join(std::ffi::OsStr::from_bytes(b"x\xff.json.gz")), &log_file("ff", 2));
    write(&day.join(std::ffi::OsStr::from_bytes(b"x\xfe.json.gz")), &log_file("fe", 3));
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(
        (s["rows"].as_u64(), s["committed_rows"].as_u64(), &s["reconciled"]),
        (Some(5), Some(5), &Value::Bool(true))
    );
    assert_eq!(archived_ids(cwd, "archive"), once(ids("ff", 2).into_iter().chain(ids("fe", 3))));
}

/// A 4 KB gzip of `[1,1,1,…]` (half a million records, none placeable) used to write hundreds of MB of
/// quarantine and exit 0. The quarantine stops at the documented cap (16 MiB), its last line
/// names the rest by reference, everything is counted, and the exit code says input was
/// quarantined.
#[test]
fn a_tiny_file_cannot_amplify_into_a_huge_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let n = 500_000;
    let json = format!(r#"{{"Records":[{}]}}"#, vec!["1"; n].join(","));
    let gz = gzip(json.as_bytes());
    assert!(gz.len() < 8 << 10, "{} bytes", gz.len());
    write(&cwd.join("trail").join(DAY).join(NAME), &gz);
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(1), "{s}");
    assert_eq!(
        (s["records"].as_u64(), s["quarantined"].as_u64(), s["rows"].as_u64()),
        (Some(n as u64), Some(n as u64), Some(0))
    );
    assert_eq!(s["reconciled"], true);
    let path = cwd.join("archive").join(s["record_quarantines"][0].as_str().unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= (16 << 20) + 1024, "the quarantine holds {size} bytes");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (last, copied) = (lines.last().unwrap(), lines.len() - 1);
    assert!(copied > 1000, "{copied} lines copied before the cap");
    assert_eq!(last["omitted"].as_u64(), Some((n - copied) as u64), "{last}");
    assert_eq!(last["record_index"].as_u64(), Some(copied as u64), "{last}");
    assert_eq!(lines[copied - 1]["raw"], "1");
}

/// The README's exit codes: 0 when everything converted, 1 when records (not only whole files)
/// were quarantined, 2 when an output could not be written — with the summary still printed and
/// the failure named as retryable.
#[test]
fn exit_codes_match_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("good").join(DAY).join(NAME), &log_file("g", 2));
    let (code, s) = convert_json(cwd, &["good", "--out", "archive0"]);
    assert_eq!((code, s["rows"].as_u64()), (Some(0), Some(2)), "{s}");

    let one_bad = br#"{"Records":[{"eventTime":"2024-03-01T10:00:00Z","eventID":"ok"},{"eventName":"NoTime"}]}"#;
    write(&cwd.join("one-bad").join(DAY).join(NAME), &gzip(one_bad));
    let (code, s) = convert_json(cwd, &["one-bad", "--out", "archive1"]);
    assert_eq!((s["failed"].as_u64(), s["rows"].as_u64(), s["quarantined"].as_u64()), (Some(0), Some(1), Some(1)));
    assert_eq!(code, Some(1), "a quarantined record exits 1: {s}");

    // `events` is a regular file where the dataset's directory must go: every write under it fails.
    write(&cwd.join("archive2/events"), b"not a directory");
    let (code, s) = convert_json(cwd, &["good", "--out", "archive2"]);
    assert_eq!(code, Some(2), "an output write error exits 2: {s}");
    assert_eq!((s["failed"].as_u64(), s["rows"].as_u64()), (Some(1), Some(0)), "{s}");
    let failure = &s["failures"][0];
    assert_eq!(failure["retryable"], true, "{failure}");
    assert!(failure["reason"].as_str().unwrap().contains("cannot write output events/"), "{failure}");
}

/// `backfill` checks the ledger the same way: a second trail prefix backfilled into the same
/// archive used to overwrite the first one's outputs; now both files' rows are there, and the
/// second one's ledger line says it was named apart.
#[test]
fn a_backfill_of_another_prefix_does_not_overwrite_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail/a").join(DAY).join(NAME), &log_file("a", 2));
    write(&cwd.join("trail/b").join(DAY).join(NAME), &log_file("b", 3));
    for (source, rows) in [("trail/a", 2), ("trail/b", 3)] {
        let out = parquetrail(&["backfill", "--source", source, "--dest", "archive", "--json"], cwd);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["rows"].as_u64(), Some(rows), "{report}");
    }
    assert_eq!(archived_ids(cwd, "archive"), once(ids("a", 2).into_iter().chain(ids("b", 3))));
    let lines: Vec<Value> = walk(&cwd.join("archive/_ledger"))
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.iter().filter(|l| l["distinct"] == true).count(), 1, "{lines:?}");
}

/// An unreadable subdirectory used to abort the whole run with "Permission denied" and no path.
/// It is named, counted as failed (retryable: exit 2), and the rest of the tree converts. As root
/// the binary runs without the capabilities that bypass permissions, so the mode counts.
#[cfg(unix)]
#[test]
fn an_unreadable_subdirectory_is_named_and_the_rest_converts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail/ok").join(DAY).join(NAME), &log_file("ok", 2));
    let locked = cwd.join("trail/locked").join(DAY);
    write(&locked.join(NAME), &log_file("locked", 1));
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = if root {
        let mut c = std::process::Command::new("setpriv");
        let caps = "-dac_override,-dac_read_search";
        c.args(["--inh-caps", caps, "--bounding-set", caps, env!("CARGO_BIN_EXE_parquetrail")]);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_parquetrail"))
    };
    let out = command.args(["convert", "trail", "--out", "archive", "--json"]).current_dir(cwd).output().unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{s}");
    assert_eq!((s["converted"].as_u64(), s["failed"].as_u64(), s["rows"].as_u64()), (Some(1), Some(1), Some(2)), "{s}");
    let failure = &s["failures"][0];
    assert!(
        failure["key"].as_str().unwrap().ends_with("trail/locked/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01"),
        "{failure}"
    );
    assert!(failure["reason"].as_str().unwrap().contains("Permission denied"), "{failure}");
    assert_eq!(failure["retryable"], true);
    assert_eq!(archived_ids(cwd, "archive"), once(ids("ok", 2)));
}

/// A manifest that cannot be written used to end the run without any summary, even with `--json`,
/// leaving committed outputs unlisted. The summary is printed, names the manifests as not written
/// (exit 2), and a rerun lists the outputs.
#[test]
fn a_failed_manifest_write_is_reported_and_repaired_by_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail").join(DAY).join(NAME), &log_file("m", 2));
    write(&cwd.join("archive/manifests"), b"a file where the manifests directory must go");
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(2), "{s}");
    assert_eq!((s["converted"].as_u64(), s["committed_rows"].as_u64()), (Some(1), Some(2)), "{s}");
    let failure = &s["failures"][0];
    assert_eq!((failure["key"].as_str(), &failure["retryable"]), (Some("manifests"), &Value::Bool(true)), "{s}");
    assert!(failure["reason"].as_str().unwrap().contains("until a rerun lists them"), "{failure}");
    assert!(walk(&cwd.join("archive")).iter().all(|p| !p.ends_with(".tmp")), "no hidden leftovers");

    std::fs::remove_file(cwd.join("archive/manifests")).unwrap();
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(0), "{s}");
    let manifests: Vec<String> =
        walk(&cwd.join("archive/manifests/events")).into_iter().filter(|p| p.ends_with("/symlink.txt")).collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let listed = std::fs::read_to_string(&manifests[0]).unwrap();
    let outputs: Vec<String> = walk(&cwd.join("archive/events"));
    assert_eq!(outputs.len(), 1);
    assert!(outputs[0].ends_with(listed.trim()), "{listed} lists {outputs:?}");
}
