//! The delivery tree: determinism, key layout, sizes, schedule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use parquetrail_synth::{SynthFile, TreeOptions, generate_files, write_tree};

use crate::common::{TARGET, big_options, big_tree};

/// A parsed object key.
#[derive(Debug, PartialEq)]
struct Key {
    prefix: String,
    org: Option<String>,
    account: String,
    insight: bool,
    region: String,
    date_path: String,
    /// File-name timestamp.
    stamp: DateTime<Utc>,
}

fn parse_key(key: &str) -> Key {
    let (prefix, rest) = key.split_once("AWSLogs/").unwrap_or_else(|| panic!("no AWSLogs/ in {key}"));
    let parts: Vec<&str> = rest.split('/').collect();
    let (org, parts) =
        if parts[0].starts_with("o-") { (Some(parts[0].to_owned()), &parts[1..]) } else { (None, &parts[..]) };
    assert_eq!(parts.len(), 7, "{key}");
    let [account, kind, region, y, m, d, name] = [parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]];
    assert!(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()), "{key}");
    assert!(!account.starts_with('0'), "{key}");
    let insight = match kind {
        "CloudTrail" => false,
        "CloudTrail-Insight" => true,
        _ => panic!("unexpected kind in {key}"),
    };
    // <acct>_<kind>_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz
    let stem = name.strip_suffix(".json.gz").unwrap_or_else(|| panic!("{key}"));
    let f: Vec<&str> = stem.split('_').collect();
    assert_eq!(f.len(), 5, "{key}");
    assert_eq!(f[0], account, "{key}");
    assert_eq!(f[1], kind, "{key}");
    assert_eq!(f[2], region, "{key}");
    assert_eq!(f[4].len(), 16, "{key}");
    assert!(f[4].bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    let stamp = NaiveDateTime::parse_from_str(f[3], "%Y%m%dT%H%MZ").unwrap_or_else(|e| panic!("{key}: {e}")).and_utc();
    assert_eq!(stamp.timestamp() % 300, 0, "5-minute granularity: {key}");
    assert_eq!(format!("{y}/{m}/{d}"), stamp.format("%Y/%m/%d").to_string(), "date path is the delivery date: {key}");
    Key {
        prefix: prefix.to_owned(),
        org,
        account: account.to_owned(),
        insight,
        region: region.to_owned(),
        date_path: format!("{y}/{m}/{d}"),
        stamp,
    }
}

fn event_time(r: &serde_json::Value) -> DateTime<Utc> {
    let s = r["eventTime"].as_str().expect("eventTime string");
    assert_eq!(s.len(), 20, "{s}");
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).with_timezone(&Utc)
}

fn small(seed: u64) -> TreeOptions {
    TreeOptions { seed, target_json_bytes: 2 << 20, ..TreeOptions::default() }
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a: Vec<SynthFile> = generate_files(&small(1)).collect();
    let b: Vec<SynthFile> = generate_files(&small(1)).collect();
    assert_eq!(a, b);
    let c: Vec<SynthFile> = generate_files(&small(2)).collect();
    assert_ne!(a[0].key, c[0].key);
    assert_ne!(a[0].gz, c[0].gz);
    let keys_a: BTreeSet<_> = a.iter().map(|f| &f.key).collect();
    let keys_c: BTreeSet<_> = c.iter().map(|f| &f.key).collect();
    assert!(keys_a.is_disjoint(&keys_c));
}

#[test]
fn write_tree_matches_generate_files() {
    let opts = TreeOptions {
        seed: 9,
        target_json_bytes: 600_000,
        prefix: Some("/trails/main/".into()),
        org_id: Some("o-abc123def4".into()),
        ..TreeOptions::default()
    };
    let dir = std::env::temp_dir().join(format!("parquetrail-synth-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let summary = write_tree(&dir, &opts).unwrap();
    let files: Vec<SynthFile> = generate_files(&opts).collect();
    assert_eq!(summary.files, files.len());
    assert_eq!(summary.records, files.iter().map(|f| f.records as u64).sum::<u64>());
    assert_eq!(summary.json_bytes, files.iter().map(|f| f.json_bytes as u64).sum::<u64>());
    assert_eq!(summary.gzip_bytes, files.iter().map(|f| f.gz.len() as u64).sum::<u64>());
    assert_eq!(summary.insight_files, files.iter().filter(|f| f.insight).count());
    assert!(summary.insight_files >= 1);
    assert_eq!(summary.regions, opts.regions);
    assert_eq!(summary.accounts.len(), 3);
    let mut keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    assert_eq!(summary.keys, keys);
    for f in &files {
        assert!(f.key.starts_with("trails/main/AWSLogs/o-abc123def4/"), "{}", f.key);
        let on_disk = std::fs::read(dir.join(&f.key)).unwrap();
        assert_eq!(on_disk, f.gz, "{}", f.key);
    }
    // Nothing but the tree under dir.
    let mut count = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                count += 1;
            }
        }
    }
    assert_eq!(count, files.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_layout_matches_records_and_options() {
    for (org, prefix, want_prefix) in [
        (None, None, ""),
        (Some("o-abc123def4"), None, ""),
        (None, Some("cloudtrail"), "cloudtrail/"),
        (Some("o-abc123def4"), Some("o-abc123def4/"), "o-abc123def4/"),
    ] {
        let opts = TreeOptions {
            seed: 3,
            target_json_bytes: 400_000,
            accounts: 2,
            regions: vec!["ap-southeast-2".into(), "us-east-1".into()],
            org_id: org.map(String::from),
            prefix: prefix.map(String::from),
            ..TreeOptions::default()
        };
        let files: Vec<SynthFile> = generate_files(&opts).collect();
        assert!(files.len() > 3);
        let mut accounts = BTreeSet::new();
        for f in &files {
            let k = parse_key(&f.key);
            assert_eq!(k.prefix, want_prefix, "{}", f.key);
            assert_eq!(k.org.as_deref(), org, "{}", f.key);
            assert_eq!(k.insight, f.insight, "{}", f.key);
            assert!(opts.regions.contains(&k.region), "{}", f.key);
            accounts.insert(k.account.clone());
            let v: serde_json::Value = serde_json::from_str(&f.json()).unwrap();
            let recs = v["Records"].as_array().unwrap();
            assert_eq!(recs.len(), f.records, "{}", f.key);
            for r in recs {
                assert_eq!(r["recipientAccountId"], k.account.as_str(), "{}", f.key);
                assert_eq!(r["awsRegion"], k.region.as_str(), "{}", f.key);
            }
        }
        assert_eq!(accounts.len(), 2, "both accounts deliver");
    }
}

#[test]
fn empty_options_write_nothing() {
    for opts in [
        TreeOptions { target_json_bytes: 0, ..TreeOptions::default() },
        TreeOptions { accounts: 0, ..TreeOptions::default() },
        TreeOptions { regions: vec![], ..TreeOptions::default() },
    ] {
        assert_eq!(generate_files(&opts).count(), 0, "{opts:?}");
    }
}

#[test]
fn insights_can_be_disabled() {
    let files: Vec<SynthFile> = generate_files(&TreeOptions { insights: false, ..small(6) }).collect();
    assert!(files.iter().all(|f| !f.insight && !f.key.contains("Insight")));
}

#[test]
fn interval_spreads_deliveries_over_days() {
    let opts = TreeOptions { seed: 8, target_json_bytes: 2 << 20, interval_minutes: 24 * 60, ..TreeOptions::default() };
    let days: BTreeSet<String> = generate_files(&opts).map(|f| parse_key(&f.key).date_path).collect();
    assert!(days.len() >= 3, "{days:?}");
}

#[test]
fn span_days_spreads_any_size_over_the_span() {
    let start = Utc.with_ymd_and_hms(2023, 11, 20, 0, 0, 0).unwrap();
    for (seed, target, days) in [(13u64, 2u64 << 20, 3u32), (14, 6 << 20, 5)] {
        let opts =
            TreeOptions { seed, target_json_bytes: target, start, span_days: Some(days), ..TreeOptions::default() };
        let files: Vec<SynthFile> = generate_files(&opts).collect();
        assert_eq!(files, generate_files(&opts).collect::<Vec<_>>(), "deterministic");
        let end = start + chrono::Duration::days(days.into());
        let stamps: Vec<DateTime<Utc>> = files.iter().map(|f| parse_key(&f.key).stamp).collect();
        let (first, last) = (*stamps.iter().min().unwrap(), *stamps.iter().max().unwrap());
        assert!(first < start + chrono::Duration::hours(1), "{seed}: first delivery {first}");
        // The last round falls near the end, never after it (+ one 5-minute delivery window).
        assert!(last <= end + chrono::Duration::minutes(5), "{seed}: last delivery {last} after {end}");
        assert!(last >= end - chrono::Duration::days(i64::from(days) / 10 + 1), "{seed}: last delivery {last}");
        // No holes: deliveries on nearly every day of the span.
        let dates: BTreeSet<String> = files.iter().map(|f| parse_key(&f.key).date_path).collect();
        assert!(dates.len() as u32 >= days, "{seed}: {} days with deliveries of {days}", dates.len());
        let total: u64 = files.iter().map(|f| f.json_bytes as u64).sum();
        assert!(total >= target, "{seed}: {total}");
    }
}

#[test]
fn target_size_is_honoured() {
    let tree = big_tree();
    let total: u64 = tree.iter().map(|p| p.file.json_bytes as u64).sum();
    let largest = tree.iter().map(|p| p.file.json_bytes as u64).max().unwrap();
    let insight: u64 = tree.iter().filter(|p| p.file.insight).map(|p| p.file.json_bytes as u64).sum();
    assert!(total >= TARGET, "{total} < {TARGET}");
    assert!(total < TARGET + largest + insight, "{total} overshoots");
    // Small targets too.
    for target in [1u64, 10_000, 150_000] {
        let files: Vec<SynthFile> =
            generate_files(&TreeOptions { target_json_bytes: target, insights: false, ..small(11) }).collect();
        let total: u64 = files.iter().map(|f| f.json_bytes as u64).sum();
        let largest = files.iter().map(|f| f.json_bytes as u64).max().unwrap();
        assert!(total >= target && total < target + largest, "{target}: {total}");
    }
}

#[test]
fn file_sizes_are_heavy_tailed() {
    let mut counts: Vec<usize> = big_tree().iter().filter(|p| !p.file.insight).map(|p| p.file.records).collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    let max = *counts.last().unwrap();
    let small_files = counts.iter().filter(|&&n| n <= 50).count();
    assert!(counts.len() >= 100, "{} files", counts.len());
    assert!(max >= 1000, "max {max}");
    assert!(max >= 50 * median, "max {max}, median {median}");
    assert!(small_files * 10 >= counts.len() * 7, "most files are small: {small_files} of {}", counts.len());
    assert_eq!(counts[0], 1);
}

#[test]
fn event_times_lag_deliveries_and_cross_midnight() {
    let mut cross_midnight = 0;
    let mut late = 0;
    let mut total = 0;
    for p in big_tree().iter().filter(|p| !p.file.insight) {
        let k = parse_key(&p.file.key);
        // The file is delivered within 5 minutes after its name's timestamp.
        let delivered_by = k.stamp + chrono::Duration::minutes(5);
        for r in &p.records {
            let t = event_time(r);
            assert!(t <= delivered_by, "{}: event after delivery", p.file.key);
            let lag = delivered_by - t;
            if lag > chrono::Duration::minutes(25) {
                late += 1;
                assert!(lag < chrono::Duration::days(4), "{}", p.file.key);
            }
            if t.format("%Y/%m/%d").to_string() < k.date_path {
                cross_midnight += 1;
            }
            total += 1;
        }
    }
    assert!(cross_midnight > 0, "some records precede their delivery date");
    // ~0.5% late deliveries.
    assert!(late * 1000 >= total * 2 && late * 1000 <= total * 10, "{late} of {total}");
    // The first delivery is at the start time.
    let first = parse_key(&big_tree()[0].file.key);
    assert_eq!(first.stamp, Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap());
}

#[test]
fn files_are_ordered_by_delivery_and_keys_unique() {
    let tree = big_tree();
    let mut keys = BTreeSet::new();
    let mut last = DateTime::<Utc>::MIN_UTC;
    for p in tree {
        assert!(keys.insert(p.file.key.clone()), "duplicate {}", p.file.key);
        let k = parse_key(&p.file.key);
        if !p.file.insight {
            assert!(k.stamp >= last, "{}", p.file.key);
            last = k.stamp;
        }
    }
    let opts = big_options();
    let regions: BTreeSet<String> = tree.iter().map(|p| parse_key(&p.file.key).region).collect();
    assert_eq!(regions, opts.regions.iter().cloned().collect());
}

#[test]
fn insight_files_pair_start_and_end() {
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in big_tree().iter().filter(|p| p.file.insight) {
        assert!(p.file.key.contains("/CloudTrail-Insight/"));
        for r in &p.records {
            let o = r.as_object().unwrap();
            assert!(!o.contains_key("userIdentity"));
            assert_eq!(r["eventType"], "AwsCloudTrailInsight");
            assert_eq!(r["eventCategory"], "Insight");
            let d = &r["insightDetails"];
            assert!(matches!(d["insightType"].as_str(), Some("ApiCallRateInsight" | "ApiErrorRateInsight")));
            assert!(d["eventSource"].as_str().unwrap().ends_with(".amazonaws.com"));
            assert!(d["insightContext"]["statistics"]["baseline"]["average"].is_number());
            assert!(d["insightContext"]["statistics"]["insight"]["average"].is_number());
            assert!(!d["insightContext"]["attributions"].as_array().unwrap().is_empty());
            if d["state"] == "End" {
                assert!(d["insightContext"]["statistics"]["insightDuration"].is_u64());
            }
            states
                .entry(r["sharedEventID"].as_str().unwrap().to_owned())
                .or_default()
                .push(d["state"].as_str().unwrap().to_owned());
        }
    }
    assert!(!states.is_empty(), "insight files exist");
    for (id, s) in states {
        assert_eq!(s, ["Start", "End"], "{id}");
    }
}
