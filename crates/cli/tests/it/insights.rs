//! `parquetrail insights` as a user runs it: generated activity with injected episodes (the
//! generator's own list is the expected answer), converted, analysed; reruns, a late delivery and
//! a compaction change nothing; the records have the shape of those CloudTrail delivers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{gzip, parquetrail, stdout, walk, write};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(args: &[&str], cwd: &Path) -> Output {
    let out = parquetrail(args, cwd);
    assert!(out.status.success(), "parquetrail {args:?}\n{}\n{}", stdout(&out), stderr(&out));
    out
}

fn records(out: &Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The `value`s of one attribution of a record, in order.
fn attribution<'a>(record: &'a Value, attribute: &str, side: &str) -> Vec<&'a str> {
    record["insightDetails"]["insightContext"]["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == attribute)
        .map(|a| a[side].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// Rows of the `insights` dataset as its manifests list them (a replaced file stays on disk for
/// the grace period, unlisted), read by DuckDB: (eventid, source_key), sorted. `None` (and NOT
/// RUN) without DuckDB.
fn insight_rows(test: &str, archive: &Path) -> Option<Vec<(String, String)>> {
    let python = parquetrail_testkit::clients::python_with_duckdb(test)?;
    let listed: Vec<String> = walk(&archive.join("manifests/insights"))
        .iter()
        .flat_map(|manifest| std::fs::read_to_string(manifest).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|path| archive.join(path).to_string_lossy().into_owned())
        .collect();
    let script = "import duckdb, json, sys\n\
        files = json.loads(sys.argv[1])\n\
        rows = duckdb.read_parquet(files).project('eventid, source_key').order('eventid').fetchall() if files else []\n\
        print(json.dumps(rows))";
    let files = serde_json::to_string(&listed).unwrap();
    let out = Command::new(python).args(["-c", script, &files]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    Some(rows)
}

#[test]
fn every_injected_episode_is_found_and_reruns_late_data_and_compaction_change_nothing() {
    let test = "every_injected_episode_is_found";
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    run(
        &[
            "generate",
            "trail",
            "--activity-days",
            "14",
            "--episodes",
            "6",
            "--accounts",
            "1",
            "--regions",
            "us-east-1",
            "--start",
            "2024-03-01",
            "--seed",
            "5",
        ],
        cwd,
    );
    let injected: Vec<Value> = std::fs::read_to_string(cwd.join("trail/injected-episodes.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(injected.len(), 6);
    run(&["convert", "trail", "--out", "archive"], cwd);
    let args = ["insights", "archive", "--since", "2024-03-08", "--until", "2024-03-14"];
    let first = run(&args, cwd);
    let found = records(&first);
    let starts: Vec<&Value> = found.iter().filter(|r| r["insightDetails"]["state"] == "Start").collect();
    for e in &injected {
        let start = time(&e["start"]);
        let hit = starts.iter().find(|r| {
            let d = &r["insightDetails"];
            d["eventSource"] == e["eventSource"]
                && d["eventName"] == e["eventName"]
                && d["insightType"] == e["insightType"]
                && d.get("errorCode").unwrap_or(&Value::Null) == &e["errorCode"]
                && (time(&r["eventTime"]) - start).num_seconds().abs() <= 300
        });
        let hit = hit.unwrap_or_else(|| panic!("not found: {e}\nfound: {}", stdout(&first)));
        let stats = &hit["insightDetails"]["insightContext"]["statistics"];
        if let Some(identity) = e["identity"].as_str() {
            assert_eq!(attribution(hit, "userIdentityArn", "insight").first(), Some(&identity), "{e}\n{hit}");
            assert!(stats["insight"]["average"].as_f64() > stats["baseline"]["average"].as_f64(), "{hit}");
        } else {
            assert!(stats["insight"]["average"].as_f64() < stats["baseline"]["average"].as_f64(), "{hit}");
        }
        assert!(stats["baselineDuration"].as_i64().unwrap() >= 10_080, "{hit}");
        // Its End record follows, with the same sharedEventID and the episode's length.
        let end = found
            .iter()
            .find(|r| r["sharedEventID"] == hit["sharedEventID"] && r["insightDetails"]["state"] == "End")
            .unwrap_or_else(|| panic!("no End for {hit}"));
        let minutes = end["insightDetails"]["insightContext"]["statistics"]["insightDuration"].as_i64().unwrap();
        assert!((minutes - e["minutes"].as_i64().unwrap()).abs() <= 5, "{e}\n{end}");
    }
    assert!(starts.len() <= injected.len() + 1, "at most one Insight beyond the injected ones: {}", stdout(&first));

    let ids: BTreeSet<String> = found.iter().map(|r| r["eventID"].as_str().unwrap().to_string()).collect();
    let stored = insight_rows(test, &cwd.join("archive"));
    if let Some(rows) = &stored {
        let computed: BTreeSet<String> =
            rows.iter().filter(|(_, key)| key.starts_with("parquetrail-insights/")).map(|(id, _)| id.clone()).collect();
        assert_eq!(rows.len(), ids.len(), "each record stored once");
        assert_eq!(computed, ids);
    }

    // `export --dataset insights` and `lookup --insights` return them.
    let exported = run(&["export", "archive", "--dataset", "insights", "--out", "-"], cwd);
    let exported: BTreeSet<String> =
        records(&exported).iter().map(|r| r["eventID"].as_str().unwrap().to_string()).collect();
    assert_eq!(exported, ids);
    let looked = run(&["lookup", "archive", "--insights", "--start", "2024-03-01", "--format", "jsonl"], cwd);
    let looked: BTreeSet<String> =
        records(&looked).iter().map(|r| r["EventId"].as_str().unwrap().to_string()).collect();
    assert_eq!(looked, ids);

    // A rerun finds the same records and writes nothing.
    let insights_files = |cwd: &Path| -> Vec<String> { walk(&cwd.join("archive/insights")) };
    let before = insights_files(cwd);
    let again = run(&args, cwd);
    assert_eq!(stdout(&again), stdout(&first));
    assert!(stderr(&again).contains("(0 rebuilt from 0 events)"), "{}", stderr(&again));
    assert_eq!(insights_files(cwd), before);

    // A run over a narrower range rewrites only that range's Insights: records of episodes that
    // started before it stay stored as they were.
    let narrow = run(&["insights", "archive", "--since", "2024-03-12", "--until", "2024-03-14"], cwd);
    assert!(records(&narrow).len() < found.len(), "{}", stdout(&narrow));
    if let Some(rows) = insight_rows(test, &cwd.join("archive")) {
        assert_eq!(Some(rows), stored, "a narrower run keeps the records outside its range");
    }

    // A late delivery for day 10: that partition's metrics are rebuilt, the answer is unchanged.
    let account = injected[0]["account"].as_str().unwrap();
    let late = format!(
        r#"{{"Records":[{{"eventVersion":"1.09","eventTime":"2024-03-10T12:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","recipientAccountId":"{account}","readOnly":true,"eventCategory":"Management","managementEvent":true,"eventType":"AwsApiCall","eventID":"late-0001","userIdentity":{{"arn":"arn:aws:iam::{account}:user/late"}}}}]}}"#
    );
    let key = format!(
        "AWSLogs/{account}/CloudTrail/us-east-1/2024/03/12/{account}_CloudTrail_us-east-1_20240312T0000Z_lateLATElateLATE.json.gz"
    );
    write(&cwd.join("late").join(&key), &gzip(late.as_bytes()));
    run(&["convert", "late", "--out", "archive"], cwd);
    let after_late = run(&args, cwd);
    assert!(stderr(&after_late).contains("(1 rebuilt from "), "{}", stderr(&after_late));
    assert_eq!(stdout(&after_late), stdout(&first));

    // Compaction rewrites every events partition: metrics follow, the answer is unchanged, and
    // the computed Insights are neither compacted away nor duplicated.
    run(&["compact", "archive"], cwd);
    let after_compaction = run(&args, cwd);
    assert!(!stderr(&after_compaction).contains("(0 rebuilt"), "{}", stderr(&after_compaction));
    assert_eq!(stdout(&after_compaction), stdout(&first));
    if let Some(rows) = insight_rows(test, &cwd.join("archive")) {
        assert_eq!(Some(rows), stored);
    }
}

#[test]
fn a_quiet_month_raises_at_most_one_insight_per_account_and_region() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    run(
        &[
            "generate",
            "trail",
            "--activity-days",
            "30",
            "--episodes",
            "0",
            "--accounts",
            "1",
            "--regions",
            "us-east-1",
            "--start",
            "2024-01-01",
            "--seed",
            "11",
        ],
        cwd,
    );
    run(&["convert", "trail", "--out", "archive"], cwd);
    let out = run(&["insights", "archive", "--since", "2024-01-01", "--until", "2024-01-30", "--no-write"], cwd);
    let mut per_place: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records(&out).iter().filter(|r| r["insightDetails"]["state"] == "Start") {
        let place =
            (r["recipientAccountId"].as_str().unwrap().to_string(), r["awsRegion"].as_str().unwrap().to_string());
        *per_place.entry(place).or_default() += 1;
    }
    assert!(per_place.values().all(|n| *n <= 1), "{per_place:?}\n{}", stdout(&out));
    assert!(!cwd.join("archive/insights").exists(), "--no-write writes nothing");
}

/// The JSON type of a value, for shape comparisons.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every path of a record with the type found there (array items under `[]`).
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    out.insert(path.to_string(), kind(v));
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| shape(x, &format!("{path}.{k}"), out)),
        Value::Array(items) => items.iter().for_each(|x| shape(x, &format!("{path}[]"), out)),
        _ => {}
    }
}

#[test]
fn records_match_the_insight_records_cloudtrail_delivers_field_by_field() {
    use parquetrail_core::insights::detect::{Model, detect};
    use parquetrail_core::insights::metrics::{MetricRow, Metrics, MinuteCell, SeriesKey};
    use parquetrail_core::insights::record::insight_records;
    let Some(corpus) = parquetrail_testkit::corpus("records_match_the_insight_records_cloudtrail_delivers") else {
        return;
    };
    let real: Vec<Value> = parquetrail_testkit::gz_files(&corpus)
        .into_iter()
        .filter(|(key, _)| key.contains("/CloudTrail-Insight/"))
        .flat_map(|(_, path)| {
            let mut json = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()),
                &mut json,
            )
            .unwrap();
            serde_json::from_slice::<Value>(&json).unwrap()["Records"].as_array().unwrap().clone()
        })
        .collect();
    assert!(real.iter().any(|r| r["insightDetails"]["state"] == "Start"), "the corpus holds Insight records");
    assert!(real.iter().any(|r| r["insightDetails"]["state"] == "End"));

    // A write API called twice a minute for 8 days, then 40 times a minute for 5 minutes.
    let key = SeriesKey {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        eventsource: "ssm.amazonaws.com".into(),
        eventname: "UpdateInstanceInformation".into(),
        errorcode: None,
        readonly: Some(false),
        eventcategory: "Management".into(),
    };
    let t0 = 1_704_067_200_000_000i64;
    let mut metrics = Metrics::default();
    for i in 0..9 * 1440 {
        let burst = (8 * 1440 + 600..8 * 1440 + 605).contains(&i);
        let mut cell = MinuteCell { count: if burst { 40 } else { 2 }, ..Default::default() };
        let who = if burst {
            "arn:aws:sts::123456789012:assumed-role/Burst"
        } else {
            "arn:aws:sts::123456789012:assumed-role/Agent"
        };
        cell.identities.add(who, cell.count);
        cell.user_agents.add("ssm-agent", cell.count);
        metrics.add_metric(&MetricRow { key: key.clone(), minute: t0 + i * 60_000_000, cell });
    }
    let episodes = detect(&metrics, &Model::default(), t0, t0 + 9 * 1440 * 60_000_000);
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let ours: Vec<Value> = insight_records(&episodes[0]).iter().map(|r| serde_json::from_str(r).unwrap()).collect();

    for theirs in &real {
        let state = theirs["insightDetails"]["state"].as_str().unwrap();
        let mine = ours.iter().find(|r| r["insightDetails"]["state"] == state).unwrap();
        // Same top-level fields, in the same order, and the same constants.
        let keys = |r: &Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(mine), keys(theirs), "top-level fields of a {state} record");
        for field in ["eventVersion", "eventType", "eventCategory"] {
            assert_eq!(mine[field], theirs[field], "{field}");
        }
        for field in ["eventTime", "awsRegion", "eventID", "recipientAccountId", "sharedEventID"] {
            assert_eq!(kind(&mine[field]), kind(&theirs[field]), "{field}");
        }
        for r in [mine, theirs] {
            let t = r["eventTime"].as_str().unwrap();
            assert!(t.len() == 20 && t.ends_with(":00Z"), "eventTime on a minute: {t}");
            assert_eq!(r["eventID"].as_str().unwrap().len(), 36, "UUID-shaped eventID");
        }
        // Every path CloudTrail's record has, ours has, with the same type.
        let (mut theirs_shape, mut mine_shape) = (BTreeMap::new(), BTreeMap::new());
        shape(theirs, "", &mut theirs_shape);
        shape(mine, "", &mut mine_shape);
        for (path, kind) in &theirs_shape {
            assert_eq!(mine_shape.get(path), Some(kind), "{path} in a {state} record\nours: {mine}\ntheirs: {theirs}");
        }
        // Same attributes, in the same order; the errorCode of a call-rate Insight is "null".
        let attributes = |r: &Value| -> Vec<String> {
            r["insightDetails"]["insightContext"]["attributions"]
                .as_array()
                .map(|a| a.iter().map(|x| x["attribute"].as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        if !attributes(theirs).is_empty() {
            assert_eq!(attributes(mine), attributes(theirs));
            assert_eq!(attribution(mine, "errorCode", "insight"), attribution(theirs, "errorCode", "insight"));
        }
    }
}
