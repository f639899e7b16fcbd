//! Shared helpers: locating the shared corpus and the Python readers, converting into a directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use parquetrail_core::convert::{FileReport, Options, convert};
use parquetrail_core::sink::MemorySink;

pub use parquetrail_testkit::{corpus, not_run, on_ci};

/// A Python interpreter that has duckdb and pyarrow (`PARQUETRAIL_PYTHON`, else `python3`).
pub fn python(test: &str) -> Option<String> {
    let python = std::env::var("PARQUETRAIL_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import duckdb, pyarrow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(python);
    }
    let why = format!(
        "{python} cannot import duckdb and pyarrow (pip install -r tests/readers/requirements.txt, or set PARQUETRAIL_PYTHON)"
    );
    assert!(!on_ci(), "{test}: {why}");
    not_run(test, &why);
    None
}

/// Every `.json.gz` file under `dir`, with its key (its path relative to `dir`).
pub fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    parquetrail_testkit::gz_files(dir)
}

/// Converts every file through the core into memory; returns the sink and the reports by key.
pub fn convert_all(files: &[(String, PathBuf)]) -> (MemorySink, BTreeMap<String, FileReport>) {
    let sink = MemorySink::default();
    let mut reports = BTreeMap::new();
    for (key, path) in files {
        let bytes = std::fs::read(path).unwrap();
        let report = convert(key, &bytes[..], &sink, &Options::default()).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(report.reconciles(), "{key}: {report:?}");
        reports.insert(key.clone(), report);
    }
    (sink, reports)
}

/// Writes a sink's outputs to a directory (for the Python readers).
pub fn materialize(sink: &MemorySink, dir: &Path) {
    for (path, bytes) in sink.files() {
        let dest = dir.join(&path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

/// Runs `tests/readers/read_archive.py` over an archive directory.
pub fn inspect(python: &str, archive: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("readers/read_archive.py");
    let out = Command::new(python).arg(script).arg(archive).output().unwrap();
    assert!(out.status.success(), "read_archive.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The number lexemes of a JSON text, as written, sorted (to check numbers survive exactly).
pub fn number_lexemes(json: &str) -> Vec<String> {
    let b = json.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                out.push(json[start..i].to_string());
            }
            _ => i += 1,
        }
    }
    out.sort();
    out
}
