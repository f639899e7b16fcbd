//! The generator's output, pinned: a fixed tree's content must not change by accident.
//!
//! Refactoring the record builders (their module layout, their writer calls) must leave every
//! byte they produce as it was, because every test and benchmark downstream relies on a seed
//! meaning the same tree. This test generates a fixed, seeded tree (several accounts, regions
//! and days, an organization trail under a prefix, Insights files) and a signed digest chain,
//! and compares a SHA-256 over every file's key and content with a value recorded earlier.
//!
//! The pinned values were first taken from the generator before `body.rs` was split into
//! per-service modules, and the split left them unchanged. They changed once since, deliberately:
//! CloudWatch metrics calls got their own bodies (they had fallen through to the generic one) and
//! resource types took CloudFormation's spelling; the rounds of a tree spread over days were
//! spaced with the estimate of rounds left rounded up, not down. They must change only with a deliberate change
//! of the generated output; when that happens, say so in the commit and update all three values
//! together.
//!
//! The content hashed is the inflated JSON, not the gzip stream: gzip bytes depend on the
//! compression library's version, which is not the generator's output.

use std::collections::BTreeSet;
use std::io::Read;

use chrono::{TimeZone, Utc};
use parquetrail_synth::digest::signed_trail;
use parquetrail_synth::{TreeOptions, generate_files};
use sha2::{Digest, Sha256};

/// SHA-256 (hex) over the pinned tree and digest chain; see [`tree_digest`].
const PINNED_SHA256: &str = "6580f9f8d3057b55717e2dfb92730e8adcd095bdb80b34a59ba148d6a91a7222";
/// Records in the pinned tree (log and insight records).
const PINNED_RECORDS: usize = 5256;
/// Distinct `(eventSource, eventName)` pairs in the pinned tree.
const PINNED_PAIRS: usize = 494;

fn pinned_options() -> TreeOptions {
    TreeOptions {
        seed: 0x5EED_2026,
        target_json_bytes: 8_000_000,
        accounts: 3,
        regions: ["us-east-1", "eu-west-1", "ap-southeast-2"].map(String::from).to_vec(),
        org_id: Some("o-pin9k2x7qa".into()),
        prefix: Some("pinned/trail".into()),
        start: Utc.with_ymd_and_hms(2024, 2, 28, 22, 0, 0).unwrap(),
        insights: true,
        interval_minutes: 5,
        gzip_level: 1,
        span_days: Some(4),
    }
}

fn inflate(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut out).expect("generated gzip is valid");
    out
}

/// Adds one `(key, content)` entry, each part length-prefixed so that no two different
/// sequences of entries hash the same.
fn add(h: &mut Sha256, key: &str, content: &[u8]) {
    h.update((key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update((content.len() as u64).to_le_bytes());
    h.update(content);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tree's files and the digest chain's logs and digests (with their signatures), in key
/// order, hashed; and the tree's record count and `(eventSource, eventName)` pairs.
fn tree_digest() -> (String, usize, BTreeSet<(String, String)>) {
    let mut files: Vec<(String, Vec<u8>)> =
        generate_files(&pinned_options()).map(|f| (f.key.clone(), inflate(&f.gz))).collect();
    files.sort();
    let mut h = Sha256::new();
    let (mut records, mut pairs) = (0, BTreeSet::new());
    for (key, json) in &files {
        add(&mut h, key, json);
        let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_else(|e| panic!("{key}: {e}"));
        for r in v["Records"].as_array().unwrap_or_else(|| panic!("{key}: no Records array")) {
            records += 1;
            // Insight records name the call inside `insightDetails`.
            let call = if r["insightDetails"].is_object() { &r["insightDetails"] } else { r };
            let field = |name: &str| call[name].as_str().unwrap_or_else(|| panic!("{key}: no {name}")).to_owned();
            pairs.insert((field("eventSource"), field("eventName")));
        }
    }
    let start = Utc.with_ymd_and_hms(2024, 3, 2, 0, 0, 0).unwrap();
    let (logs, digests) = signed_trail("pinned-bucket", 0x5EED_2027, start, 3);
    for (key, gz) in &logs {
        add(&mut h, key, &inflate(gz));
    }
    for d in &digests {
        add(&mut h, &d.key, &inflate(&d.gz));
        add(&mut h, &d.key, d.signature.as_bytes());
    }
    (hex(&h.finalize()), records, pairs)
}

#[test]
fn generated_tree_is_byte_identical_to_the_pinned_one() {
    let (sha, records, pairs) = tree_digest();
    let files = generate_files(&pinned_options()).count();
    // Counts first: they say more than a hash when something changed.
    assert_eq!(records, PINNED_RECORDS, "record count of the pinned tree ({files} files)");
    assert_eq!(pairs.len(), PINNED_PAIRS, "distinct (eventSource, eventName) pairs of the pinned tree");
    assert_eq!(sha, PINNED_SHA256, "content of the pinned tree ({files} files, {records} records)");
}

#[test]
fn pinned_tree_spans_accounts_regions_days_and_insights() {
    // The pin is only worth something if the tree exercises what it claims to.
    let opts = pinned_options();
    let files: Vec<_> = generate_files(&opts).collect();
    let part = |k: &str, i: usize| k.split('/').nth(i).unwrap_or_default().to_owned();
    // pinned/trail/AWSLogs/<org>/<acct>/<kind>/<region>/YYYY/MM/DD/<file>
    let accounts: BTreeSet<_> = files.iter().map(|f| part(&f.key, 4)).collect();
    let regions: BTreeSet<_> = files.iter().map(|f| part(&f.key, 6)).collect();
    let days: BTreeSet<_> = files.iter().map(|f| (7..10).map(|i| part(&f.key, i)).collect::<Vec<_>>()).collect();
    assert_eq!(accounts.len(), opts.accounts, "{accounts:?}");
    assert_eq!(regions, opts.regions.iter().cloned().collect(), "{regions:?}");
    assert!(days.len() >= 4, "{days:?}");
    assert!(files.iter().any(|f| f.insight), "some Insights files");
    let json: usize = files.iter().map(|f| f.json_bytes).sum();
    assert!((8_000_000..12_000_000).contains(&json), "{json} bytes of JSON");
}
