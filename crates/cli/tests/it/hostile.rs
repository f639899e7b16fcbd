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

/// A small tmpfs mounted for one test, unmounted when dropped: a real full disk (ENOSPC) for the
/// built binary. Mounting needs root; without it the test says NOT RUN (and fails on CI).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(test: &str, dir: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = format!("a tmpfs could not be mounted (this needs root): {other:?}");
                assert!(!parquetrail_testkit::on_ci(), "{test}: {why}");
                parquetrail_testkit::not_run(test, &why);
                None
            }
        }
    }

    /// Gives the disk more room (`size=…` or `nr_inodes=…`), keeping what it holds.
    fn grow(&self, options: &str) {
        let o = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every path under `dir`, directories included.
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(entries(&p));
        }
        out.push(p);
    }
    out
}

fn hidden_leftovers(dir: &Path) -> Vec<std::path::PathBuf> {
    entries(dir).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect()
}

/// A log file for day `day` of March 2024 whose records carry `kb` KiB of noise each, so its
/// Parquet output does not compress away.
fn noisy_log_file(tag: &str, day: u32, n: usize, kb: usize) -> Vec<u8> {
    let mut noise = parquetrail_testkit::Noise::new(u64::from(day));
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-{day:02}T10:00:{i:02}Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"{tag}-{i}","requestParameters":{{"noise":"{}"}}}}"#,
                noise.text(kb << 10)
            )
        })
        .collect();
    gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
}

/// Disk full while writing outputs: the files that did not fit fail (retryable, exit 2, the
/// reason names the full disk), no hidden `.tmp` file is left, the summary's committed rows are
/// what the archive holds — exactly the rows of the files reported converted — and a rerun once
/// there is room converts the rest, every record once.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_files_that_did_not_fit_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (files, per_file) = (6u32, 40usize);
    let mut want_by_key = BTreeMap::new();
    for day in 1..=files {
        let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/{day:02}/f{day}.json.gz");
        write(&cwd.join("trail").join(&key), &noisy_log_file(&format!("d{day}"), day, per_file, 4));
        want_by_key.insert(key, ids(&format!("d{day}"), per_file));
    }
    // Room for some of the outputs (each about three quarters of its 160 KiB of noise), not all.
    let Some(disk) = Tmpfs::mount("disk full while writing outputs", &cwd.join("archive"), "size=320k") else {
        return;
    };
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(2), "{s}");
    assert!(hidden_leftovers(&cwd.join("archive")).is_empty(), "{:?}", hidden_leftovers(&cwd.join("archive")));
    let failures = s["failures"].as_array().unwrap();
    let failed_keys: Vec<&str> = failures.iter().filter_map(|f| f["key"].as_str()).collect();
    let failed_files: Vec<&str> = failed_keys.iter().copied().filter(|k| want_by_key.contains_key(*k)).collect();
    assert!(!failed_files.is_empty() && failed_files.len() < files as usize, "{s}");
    for f in failures {
        assert_eq!(f["retryable"], true, "{f}");
        assert!(f["reason"].as_str().unwrap().contains("No space left on device"), "{f}");
    }
    let landed: Vec<String> = want_by_key
        .iter()
        .filter(|(k, _)| !failed_files.contains(&k.as_str()))
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    assert_eq!(s["converted"].as_u64(), Some(u64::from(files) - failed_files.len() as u64), "{s}");
    assert_eq!(s["committed_rows"].as_u64(), Some(landed.len() as u64), "{s}");
    // The manifests may or may not have fit: read the partitions' files directly, as a reader
    // of an archive without manifests does.
    if failed_keys.contains(&"manifests") {
        std::fs::remove_dir_all(cwd.join("archive/manifests")).unwrap();
    }
    assert_eq!(archived_ids(cwd, "archive"), once(landed));

    disk.grow("size=8m");
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!((code, &s["reconciled"]), (Some(0), &Value::Bool(true)), "{s}");
    assert!(hidden_leftovers(&cwd.join("archive")).is_empty());
    assert_eq!(archived_ids(cwd, "archive"), once(want_by_key.into_values().flatten()));
}

/// Disk full (no inodes left) just after the outputs are committed: the manifest write fails, the
/// summary — with `--json` — says which rows were committed and that the manifests were not
/// written (exit 2), no hidden file is left, and the next run, with room again, lists the outputs.
#[cfg(target_os = "linux")]
#[test]
fn a_disk_full_at_the_manifest_write_is_reported_and_the_next_run_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail").join(DAY).join(NAME), &log_file("m", 3));
    // How many inodes the outputs take (the partition directories and the file), learnt from a
    // run on an ordinary disk: the tmpfs gets exactly those and its root, so the outputs commit
    // and the first directory of the manifests does not fit.
    let (code, probe) = convert_json(cwd, &["trail", "--out", "probe"]);
    assert_eq!(code, Some(0), "{probe}");
    let outputs = entries(&cwd.join("probe/events")).len() + 1;
    let Some(disk) =
        Tmpfs::mount("disk full at the manifest write", &cwd.join("archive"), &format!("nr_inodes={}", outputs + 1))
    else {
        return;
    };
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(2), "{s}");
    assert_eq!(
        (s["converted"].as_u64(), s["rows"].as_u64(), s["committed_rows"].as_u64()),
        (Some(1), Some(3), Some(3))
    );
    let manifests = s["failures"].as_array().unwrap().iter().find(|f| f["key"] == "manifests").expect("named");
    let reason = manifests["reason"].as_str().unwrap();
    assert!(reason.contains("No space left on device") && reason.contains("until a rerun lists them"), "{reason}");
    assert_eq!(manifests["retryable"], true);
    assert!(hidden_leftovers(&cwd.join("archive")).is_empty(), "{:?}", hidden_leftovers(&cwd.join("archive")));
    assert!(!cwd.join("archive/manifests/events").exists());

    disk.grow("nr_inodes=1000");
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!((code, &s["reconciled"]), (Some(0), &Value::Bool(true)), "{s}");
    let listed: Vec<String> = walk(&cwd.join("archive/manifests/events"))
        .iter()
        .filter(|p| p.ends_with("/symlink.txt"))
        .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let outputs: Vec<String> = walk(&cwd.join("archive/events"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(outputs[0].ends_with(&listed[0]), "{listed:?} lists {outputs:?}");
    assert_eq!(archived_ids(cwd, "archive"), once(ids("m", 3)));
}

/// A run killed mid-write leaves hidden temporary files naming its process. The next run that
/// writes to those directories removes them (the process is gone); a live writer's file is left
/// alone; listings never show them.
#[cfg(target_os = "linux")]
#[test]
fn temporary_files_of_a_killed_run_are_reclaimed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail").join(DAY).join(NAME), &log_file("k", 2));
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(0), "{s}");
    // A process killed in the middle of its writes: its id is no longer in use.
    let mut killed = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    killed.kill().unwrap();
    killed.wait().unwrap();
    let output_dir = Path::new(&walk(&cwd.join("archive/events"))[0]).parent().unwrap().to_path_buf();
    let manifest_dir = Path::new(&walk(&cwd.join("archive/manifests/events"))[0]).parent().unwrap().to_path_buf();
    let stale = [
        output_dir.join(format!(".x.parquet.{}-0.tmp", killed.id())),
        manifest_dir.join(format!(".symlink.txt.{}-1.tmp", killed.id())),
    ];
    let live = output_dir.join(format!(".y.parquet.{}-0.tmp", std::process::id()));
    for p in stale.iter().chain([&live]) {
        std::fs::write(p, b"PAR1 half written").unwrap();
    }
    // The next run delivers one more file to that day, so it writes both directories again.
    let later = NAME.replace("1000Z", "1005Z");
    write(&cwd.join("trail").join(DAY).join(later), &log_file("l", 3));
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!((code, &s["reconciled"]), (Some(0), &Value::Bool(true)), "{s}");
    assert_eq!(hidden_leftovers(&cwd.join("archive")), vec![live], "only the live writer's file is left");
    assert_eq!(archived_ids(cwd, "archive"), once(ids("k", 2).into_iter().chain(ids("l", 3))));
}

/// An archive inside the source tree (`convert trail --out trail/archive`) used to be read back as
/// input on every later run, its quarantine growing each time. The archive is not walked: every
/// run reads exactly the log files, and the rows are the input's.
#[test]
fn an_archive_inside_the_source_tree_is_not_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail").join(DAY).join(NAME), &log_file("in", 3));
    // One bad record, so the archive holds a quarantine too.
    let other = NAME.replace("1000Z", "1005Z");
    write(&cwd.join("trail").join(DAY).join(other), &gzip(br#"{"Records":[{"eventName":"NoTime"}]}"#));
    for run in 0..2 {
        let (code, s) = convert_json(cwd, &["trail", "--out", "trail/archive"]);
        assert_eq!(code, Some(1), "run {run}: {s}");
        assert_eq!(
            (s["files"].as_u64(), s["records"].as_u64(), s["rows"].as_u64(), s["quarantined"].as_u64()),
            (Some(2), Some(4), Some(3), Some(1)),
            "run {run}: {s}"
        );
    }
    assert_eq!(archived_ids(cwd, "trail/archive"), once(ids("in", 3)));
}

/// `backfill` walks only the trail's own layout (`AWSLogs/<account>/CloudTrail/<Region>/<date>/`),
/// so an archive written inside the source tree is never listed as input: two runs read the same
/// records, and the second finds everything done.
#[test]
fn a_backfill_into_its_own_source_tree_does_not_read_the_archive_back() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write(&cwd.join("trail").join(DAY).join(NAME), &log_file("in", 3));
    let other = NAME.replace("1000Z", "1005Z");
    write(&cwd.join("trail").join(DAY).join(other), &gzip(br#"{"Records":[{"eventName":"NoTime"}]}"#));
    let mut reports = Vec::new();
    for _ in 0..2 {
        let out = parquetrail(&["backfill", "--source", "trail", "--dest", "trail/archive", "--json"], cwd);
        let report: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        reports.push(report);
    }
    assert_eq!(
        (reports[0]["records"].as_u64(), reports[0]["rows"].as_u64(), reports[0]["quarantined"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{}",
        reports[0]
    );
    assert_eq!(reports[1]["records"].as_u64(), Some(0), "the rerun converts nothing new: {}", reports[1]);
    assert_eq!(archived_ids(cwd, "trail/archive"), once(ids("in", 3)));
    let quarantines = walk(&cwd.join("trail/archive/quarantine"));
    assert_eq!(quarantines.len(), 1, "{quarantines:?}");
}

/// A record giving a key twice (`eventName`, and `type` inside `userIdentity`) is converted with
/// the value any JSON reader takes (the last), counted in the summary, and reconciles; the
/// reference is the input read by serde_json's own `Value`.
#[test]
fn repeated_keys_are_counted_and_converted_as_json_readers_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let repeated = r#"{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:00Z","eventName":"DeleteTrail","userIdentity":{"type":"Root","type":"IAMUser"},"eventName":"CreateUser","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"dup-0"}"#;
    let plain = r#"{"eventVersion":"1.08","eventTime":"2024-03-01T10:00:01Z","eventName":"CreateUser","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"dup-1"}"#;
    write(&cwd.join("trail").join(DAY).join(NAME), &gzip(format!(r#"{{"Records":[{repeated},{plain}]}}"#).as_bytes()));
    let (code, s) = convert_json(cwd, &["trail", "--out", "archive"]);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(
        (s["records"].as_u64(), s["rows"].as_u64(), s["duplicate_keys"].as_u64()),
        (Some(2), Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(s["reconciled"], true, "{s}");
    let human = parquetrail(&["convert", "trail", "--out", "archive2"], cwd);
    assert!(stdout(&human).contains("repeated  1 record(s) with a key given twice"), "{}", stdout(&human));
    let out = parquetrail(&["export", "archive", "--dataset", "events", "--out", "-"], cwd);
    let exported: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reference: Vec<Value> = [repeated, plain].iter().map(|r| serde_json::from_str(r).unwrap()).collect();
    assert_eq!(exported, reference);
}

/// `convert` runs without transparent huge pages (mimalloc's segments would otherwise be zeroed
/// 2 MiB at a time on every first touch; BENCHMARKS.md, "Per-file system calls and the serial
/// tail"). The source is a named pipe: opening its writing end returns once `convert` has opened
/// it to read, so the process is seen mid-run without waiting on a clock.
#[cfg(target_os = "linux")]
#[test]
fn convert_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let fifo = cwd.join("pipe.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo: {made}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_parquetrail"))
        .args(["convert", "pipe.json", "--out", "archive", "--json"])
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    std::io::Write::write_all(&mut writer, br#"{"Records":[{"eventTime":"2024-03-01T00:00:00Z","eventID":"a"}]}"#)
        .unwrap();
    drop(writer);
    let output = child.wait_with_output().unwrap();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((output.status.code(), summary["rows"].as_u64()), (Some(0), Some(1)), "{summary}");
    match thp {
        Some(line) => assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}"),
        None => {
            let why = "this kernel's /proc/PID/status has no THP_enabled line (Linux 5.0 and later have it)";
            assert!(!parquetrail_testkit::on_ci(), "{why}");
            parquetrail_testkit::not_run("convert_runs_without_transparent_huge_pages", why);
        }
    }
}
