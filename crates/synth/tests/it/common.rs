//! Shared fixtures: one ~20 MB tree generated once per test binary.

use std::sync::OnceLock;

use parquetrail_synth::{SynthFile, TreeOptions, generate_files};

/// Target size of the shared tree.
pub const TARGET: u64 = 20 << 20;

/// Options of the shared tree.
pub fn big_options() -> TreeOptions {
    TreeOptions { seed: 42, target_json_bytes: TARGET, ..TreeOptions::default() }
}

/// A parsed file of the shared tree.
#[derive(Debug)]
pub struct Parsed {
    pub file: SynthFile,
    pub text: String,
    pub records: Vec<serde_json::Value>,
}

/// The shared ~20 MB tree, generated and parsed once.
pub fn big_tree() -> &'static [Parsed] {
    static TREE: OnceLock<Vec<Parsed>> = OnceLock::new();
    TREE.get_or_init(|| {
        generate_files(&big_options())
            .map(|file| {
                let text = file.json();
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", file.key));
                let obj = v.as_object().expect("envelope is an object");
                assert_eq!(obj.len(), 1, "{}: envelope has only Records", file.key);
                let records = obj["Records"].as_array().expect("Records array").clone();
                Parsed { file, text, records }
            })
            .collect()
    })
}

/// Top-level keys of a JSON object, in text order (a tiny scanner, so the test does not depend
/// on map ordering features).
pub fn top_level_keys(json: &str) -> Vec<String> {
    let b = json.as_bytes();
    let (mut depth, mut i, mut keys) = (0usize, 0usize, Vec::new());
    let mut expect_key = false;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' => expect_key = depth == 1,
            b'"' => {
                let start = i + 1;
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if expect_key {
                    keys.push(json[start..i].to_owned());
                    expect_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

/// Splits the records of a file's text into one text per record.
pub fn record_texts(file_json: &str) -> Vec<&str> {
    let inner = &file_json["{\"Records\":[".len()..file_json.len() - 2];
    let ib = inner.as_bytes();
    let (mut depth, mut i, mut start, mut out) = (0usize, 0usize, 0usize, Vec::new());
    while i < ib.len() {
        match ib[i] {
            b'{' | b'[' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    out.push(&inner[start..=i]);
                }
            }
            b'"' => {
                i += 1;
                while ib[i] != b'"' {
                    i += if ib[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}
