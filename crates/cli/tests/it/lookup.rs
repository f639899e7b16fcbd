//! `parquetrail lookup` as a user runs it, checked against answers computed independently: straight
//! from the gzipped CloudTrail JSON the archive was converted from, with serde_json and the
//! documented rules (docs/LOOKUP.md), never with the archive reader. For every attribute key the
//! set and order of hits equal the reference; paging with NextToken gives the same list without
//! duplicates or gaps; time bounds are inclusive; answers are the same on S3 and after compaction.
//! The reference is shared with `serve_clients`, which checks `parquetrail serve` with real clients.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Output;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

use crate::{parquetrail, parquetrail_on_moto, stdout, walk};

/// One record of the input, with what the reference needs.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub(crate) record: Value,
    pub(crate) time: DateTime<Utc>,
    pub(crate) id: String,
    key: String,
    index: usize,
}

impl Expected {
    pub(crate) fn str(&self, pointer: &str) -> Option<&str> {
        self.record.pointer(pointer).and_then(Value::as_str)
    }

    /// Username by docs/LOOKUP.md, written again here over the raw JSON.
    pub(crate) fn username(&self) -> Option<String> {
        let u = self.record.get("userIdentity")?;
        let get = |k: &str| u.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        fn last(v: Option<&str>, sep: char) -> Option<&str> {
            v.and_then(|s| s.rsplit(sep).next()).filter(|s| !s.is_empty())
        }
        let name = match get("type") {
            Some("Root") => Some("root"),
            Some("IAMUser") => get("userName").or(last(get("arn"), '/')),
            Some("AssumedRole" | "Role" | "FederatedUser") => {
                last(get("arn"), '/').or(last(get("principalId"), ':')).or(get("userName"))
            }
            Some("AWSService") => get("invokedBy"),
            Some("AWSAccount") => get("userName").or(get("accountId")).or(get("principalId")),
            Some("IdentityCenterUser") => get("userName")
                .or(u.pointer("/onBehalfOf/userId").and_then(Value::as_str).filter(|s| !s.is_empty()))
                .or(get("principalId")),
            _ => last(get("arn"), '/').or(get("userName")).or(last(get("principalId"), ':')).or(get("invokedBy")),
        };
        name.map(str::to_string)
    }

    pub(crate) fn resources(&self, field: &str) -> Vec<String> {
        let list = self.record.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
        list.iter().filter_map(|r| r.get(field).and_then(Value::as_str).map(str::to_string)).collect()
    }

    fn account(&self) -> Option<&str> {
        self.str("/recipientAccountId").or(self.str("/userIdentity/accountId"))
    }

    fn is_data_event(&self) -> bool {
        match self.str("/eventCategory") {
            Some(c) => c != "Management" && c != "Insight",
            None => self.record.get("managementEvent") == Some(&Value::Bool(false)),
        }
    }

    /// The value CloudTrail's attribute `key` compares with; several for the resource keys.
    pub(crate) fn values(&self, key: &str) -> Vec<String> {
        let one = |v: Option<&str>| v.map(str::to_string).into_iter().collect();
        match key {
            "EventId" => one(self.str("/eventID")),
            "EventName" => one(self.str("/eventName").or(self.str("/insightDetails/eventName"))),
            "ReadOnly" => {
                self.record.get("readOnly").and_then(Value::as_bool).map(|b| b.to_string()).into_iter().collect()
            }
            "Username" => self.username().into_iter().collect(),
            "ResourceType" => self.resources("type"),
            "ResourceName" => self.resources("ARN"),
            "EventSource" => one(self.str("/eventSource").or(self.str("/insightDetails/eventSource"))),
            "AccessKeyId" => one(self.str("/userIdentity/accessKeyId")),
            "AccountId" => one(self.account()),
            "AwsRegion" => one(self.str("/awsRegion")),
            "SourceIpAddress" => one(self.str("/sourceIPAddress")),
            "ErrorCode" => one(self.str("/errorCode")),
            other => panic!("no reference for {other}"),
        }
    }
}

/// Every record of the trail's log files of one kind (`CloudTrail` or `CloudTrail-Insight`).
pub(crate) fn read_trail(trail: &Path, kind: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for path in walk(trail).into_iter().filter(|p| p.contains(&format!("/{kind}/")) && p.ends_with(".json.gz")) {
        let mut json = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_end(&mut json).unwrap();
        let log: Value = serde_json::from_slice(&json).unwrap();
        let key = format!("AWSLogs/{}", path.split("/AWSLogs/").nth(1).unwrap());
        for (index, record) in log["Records"].as_array().unwrap().iter().enumerate() {
            let time = DateTime::parse_from_rfc3339(record["eventTime"].as_str().unwrap()).unwrap().with_timezone(&Utc);
            let id = record["eventID"].as_str().unwrap().to_string();
            out.push(Expected { record: record.clone(), time, id, key: key.clone(), index });
        }
    }
    out
}

/// The reference answer: hits newest first, ties by eventID, then source key and index.
pub(crate) fn reference(all: &[Expected], filter: impl Fn(&Expected) -> bool, include_data: bool) -> Vec<&Expected> {
    let mut hits: Vec<&Expected> = all.iter().filter(|e| (include_data || !e.is_data_event()) && filter(e)).collect();
    hits.sort_by(|a, b| b.time.cmp(&a.time).then(a.id.cmp(&b.id)).then(a.key.cmp(&b.key)).then(a.index.cmp(&b.index)));
    hits
}

pub(crate) fn ids(hits: &[&Expected]) -> Vec<String> {
    hits.iter().map(|e| e.id.clone()).collect()
}

/// Runs `lookup --format json` and returns the events and the next token.
fn lookup_json(run: &dyn Fn(&[&str]) -> Output, args: &[&str]) -> (Vec<Value>, Option<String>) {
    let out = run(&[&["lookup"][..], args, &["--format", "json"]].concat());
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)));
    let events = v["Events"].as_array().unwrap().clone();
    (events, v.get("NextToken").and_then(Value::as_str).map(str::to_string))
}

/// Every page of a lookup, following NextToken.
fn lookup_all(run: &dyn Fn(&[&str]) -> Output, args: &[&str], page: usize) -> Vec<Value> {
    let size = page.to_string();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--max-results", &size]);
        if let Some(t) = &token {
            a.extend(["--next-token", t]);
        }
        let (events, next) = lookup_json(run, &a);
        assert!(events.len() <= page, "a page holds at most --max-results");
        assert!(next.is_none() || events.len() == page, "only a full page has a next one");
        out.extend(events);
        match next {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
    panic!("paging does not end: {args:?}");
}

pub(crate) fn event_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect()
}

/// A value of `key` that some but not all reference records have (the most common one under
/// half of them), so a lookup by it both keeps and drops records.
pub(crate) fn pick_value(all: &[Expected], key: &str) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in all.iter().filter(|e| !e.is_data_event()) {
        for v in e.values(key).into_iter().filter(|v| !v.is_empty()).collect::<BTreeSet<_>>() {
            *counts.entry(v).or_default() += 1;
        }
    }
    let half = all.len() / 2;
    // Under half when there is such a value; in a small set (Insights), the most common.
    let pick = |limit: usize| counts.iter().filter(|(_, n)| **n < limit).max_by_key(|(v, n)| (**n, (*v).clone()));
    let (value, n) =
        pick(half).or_else(|| pick(usize::MAX)).unwrap_or_else(|| panic!("no value of {key} in the trail"));
    let (value, n) = (value.clone(), *n);
    assert!(n >= 1, "{key}");
    value
}

pub(crate) const KEYS: [&str; 12] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
    "AccountId",
    "AwsRegion",
    "SourceIpAddress",
    "ErrorCode",
];

/// Checks every attribute key, the AND of two, paging and time bounds against the reference.
fn check_against_reference(run: &dyn Fn(&[&str]) -> Output, events: &[Expected], archive: &str) {
    let mut answers = Vec::new();
    for key in KEYS {
        let value = pick_value(events, key);
        let want = reference(events, |e| e.values(key).contains(&value), false);
        assert!(!want.is_empty(), "{key}={value}");
        let attribute = format!("{key}={value}");
        let got = lookup_all(run, &[archive, "--attribute", &attribute], 1000);
        assert_eq!(event_ids(&got), ids(&want), "{attribute}: set and order");
        answers.push((attribute, got));
    }
    // Two attributes AND together.
    let source = pick_value(events, "EventSource");
    let want =
        reference(events, |e| e.values("EventSource").contains(&source) && e.values("ReadOnly") == ["false"], false);
    let (a, b) = (format!("EventSource={source}"), "ReadOnly=false".to_string());
    let got = lookup_all(run, &[archive, "-a", &a, "-a", &b], 1000);
    assert_eq!(event_ids(&got), ids(&want), "{a} AND {b}");
    // Paging: small pages give the same list, no duplicates, no gaps.
    let everything = reference(events, |_| true, false);
    assert!(everything.len() > 100, "a trail worth paging: {}", everything.len());
    let paged = lookup_all(run, &[archive], 37);
    assert_eq!(event_ids(&paged), ids(&everything), "pages of 37 = the whole answer");
    let (_, first_token) = lookup_json(run, &[archive, "--max-results", "5", "-a", &answers[1].0]);
    let other =
        run(&["lookup", archive, "--next-token", first_token.as_deref().unwrap_or("x"), "-a", "EventName=Other"]);
    assert_eq!(other.status.code(), Some(2), "a token is bound to its parameters");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("other parameters"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    // Time bounds are inclusive: a window from one record's time to another's keeps both.
    let (newer, older) = (everything[everything.len() / 3], everything[everything.len() / 2]);
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let want = reference(events, |e| e.time >= older.time && e.time <= newer.time, false);
    let got = lookup_all(run, &[archive, "--start", &at(older.time), "--end", &at(newer.time)], 1000);
    assert_eq!(event_ids(&got), ids(&want), "window [{}, {}]", at(older.time), at(newer.time));
    assert!(want.iter().any(|e| e.time == older.time) && want.iter().any(|e| e.time == newer.time));
    let narrower = at(older.time + TimeDelta::seconds(1));
    let got = lookup_all(run, &[archive, "--start", &narrower, "--end", &at(newer.time)], 1000);
    assert!(event_ids(&got).iter().all(|id| *id != older.id), "--start after a record's time leaves it out");
    // Data events only with the switch.
    let with_data = reference(events, |_| true, true);
    if with_data.len() == everything.len() {
        eprintln!("NOT RUN: data-event switch check because the generated trail holds no data events");
    } else {
        let got = lookup_all(run, &[archive, "--include-data-events"], 1000);
        assert_eq!(event_ids(&got), ids(&with_data), "--include-data-events");
    }
}

/// Each hit carries its original record: equal to the input JSON, and byte for byte what
/// `export` writes for it.
fn check_records(cwd: &Path, events: &[Expected]) {
    let out = parquetrail(&["export", "archive", "--dataset", "events", "--out", "-"], cwd);
    assert!(out.status.success());
    let exported: BTreeMap<String, String> = stdout(&out)
        .lines()
        .map(|l| (serde_json::from_str::<Value>(l).unwrap()["eventID"].as_str().unwrap().to_string(), l.to_string()))
        .collect();
    let by_id: BTreeMap<&str, &Expected> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let run = |args: &[&str]| parquetrail(args, cwd);
    let got = lookup_all(&run, &["archive", "--include-data-events"], 1000);
    assert_eq!(got.len(), events.len());
    for e in &got {
        let id = e["EventId"].as_str().unwrap();
        let text = e["CloudTrailEvent"].as_str().unwrap();
        assert_eq!(text, exported[id], "{id}: CloudTrailEvent is what export writes");
        let original = by_id[id];
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), original.record, "{id}");
        assert_eq!(e["ReadOnly"], original.values("ReadOnly").first().map_or(Value::Null, |v| Value::from(v.as_str())));
        assert_eq!(e["EventTime"].as_f64().unwrap(), original.time.timestamp_micros() as f64 / 1e6, "{id}");
        assert_eq!(e["Username"].as_str().map(str::to_string), original.username(), "{id}");
        let names: Vec<&str> =
            e["Resources"].as_array().unwrap().iter().filter_map(|r| r["ResourceName"].as_str()).collect();
        assert_eq!(names, original.resources("ARN"), "{id}");
    }
}

#[test]
fn lookup_answers_equal_a_reference_computed_from_the_input_json() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "2", "--seed", "21"], cwd).status.success());
    let out = parquetrail(&["convert", "trail", "--out", "archive", "--row-group-rows", "64"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_trail(&cwd.join("trail"), "CloudTrail");
    let run = |args: &[&str]| parquetrail(args, cwd);
    check_against_reference(&run, &events, "archive");
    check_records(cwd, &events);

    // Insights events, from their own dataset.
    let insights = read_trail(&cwd.join("trail"), "CloudTrail-Insight");
    if insights.is_empty() {
        eprintln!("NOT RUN: insights lookup check because the generated trail holds no Insights events");
    } else {
        let name = pick_value(&insights, "EventName");
        let want = reference(&insights, |e| e.values("EventName").contains(&name), true);
        let got = lookup_all(&run, &["archive", "--insights", "-a", &format!("EventName={name}")], 1000);
        assert_eq!(event_ids(&got), ids(&want), "--insights EventName={name}");
        let out = run(&["lookup", "archive", "--insights", "-a", "Username=root"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("EventId, EventName or EventSource"));
    }

    // Partition pruning and early stop: one account and region, one newest page.
    let account = pick_value(&events, "AccountId");
    let out = run(&["lookup", "archive", "--account", &account, "--max-results", "3", "--format", "jsonl", "--stats"]);
    assert!(out.status.success());
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = reference(&events, |e| e.account() == Some(account.as_str()), false);
    assert_eq!(event_ids(&lines), ids(&want[..3]), "--account {account}");
    let stats = String::from_utf8_lossy(&out.stderr);
    let all_files = walk(&cwd.join("archive/events")).iter().filter(|p| p.ends_with(".parquet")).count();
    let files: usize = stats
        .split(" file(s)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(files > 0 && files < all_files, "--stats shows pruning: {files} of {all_files} files: {stats}");
}

#[test]
fn lookup_gives_the_same_answers_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "2", "--seed", "22"], cwd).status.success());
    assert!(parquetrail(&["convert", "trail", "--out", "archive"], cwd).status.success());
    let events = read_trail(&cwd.join("trail"), "CloudTrail");
    let run = |args: &[&str]| parquetrail(args, cwd);
    let queries: Vec<Vec<String>> = ["Username", "EventName", "ResourceName", "ErrorCode"]
        .iter()
        .map(|k| vec!["archive".to_string(), "-a".to_string(), format!("{k}={}", pick_value(&events, k))])
        .chain([vec!["archive".to_string()]])
        .collect();
    let answer = |q: &Vec<String>| {
        let args: Vec<&str> = q.iter().map(String::as_str).collect();
        lookup_all(&run, &args, 40)
    };
    let before: Vec<Vec<Value>> = queries.iter().map(answer).collect();
    let files_before = walk(&cwd.join("archive/events")).len();
    let out = parquetrail(&["compact", "archive", "--older-than", "0s", "--grace", "0s"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files_after = walk(&cwd.join("archive/events")).len();
    assert!(files_after < files_before, "compaction rewrote the archive: {files_before} → {files_after} files");
    for (q, want) in queries.iter().zip(&before) {
        assert!(!want.is_empty(), "{q:?}");
        assert_eq!(&answer(q), want, "{q:?}: same answer after compaction");
    }
    check_against_reference(&run, &events, "archive");
}

#[test]
fn lookup_reads_an_archive_in_s3_through_the_same_code() {
    let Some(moto) = parquetrail_testkit::MotoServer::start("lookup_reads_an_archive_in_s3_through_the_same_code")
    else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(moto.create_bucket("archive-bucket"));
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "1", "--seed", "23"], cwd).status.success());
    let run = |args: &[&str]| parquetrail_on_moto(args, cwd, &moto);
    let out = run(&["convert", "trail", "--out", "s3://archive-bucket/lake"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_trail(&cwd.join("trail"), "CloudTrail");
    check_against_reference(&run, &events, "s3://archive-bucket/lake");
}

#[test]
fn lookup_usage_errors_csv_guarding_and_sql() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let help = stdout(&parquetrail(&["lookup", "--help"], cwd));
    for needle in ["--attribute", "Username=", "--next-token", "--sql", "90d", "--include-data-events", "Examples:"] {
        assert!(help.contains(needle), "lookup --help lacks {needle:?}:\n{help}");
    }
    let trail = cwd.join("trail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    let record = |id: &str, name: &str, user: &str| {
        format!(
            r#"{{"eventVersion":"1.11","userIdentity":{{"type":"IAMUser","userName":"{user}","accountId":"111122223333"}},"eventTime":"2024-03-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"-1+2","requestParameters":null,"responseElements":null,"eventID":"{id}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#
        )
    };
    let json = format!(
        r#"{{"Records":[{},{}]}}"#,
        // The user name is JSON text here: `\"` is one quote.
        record("e1", "CreateUser", r#"=HYPERLINK(\"http://x\")"#),
        record("e2", "@SUM", "plain")
    );
    crate::write(
        &trail.join("111122223333_CloudTrail_us-east-1_20240301T1000Z_abcdefabcdefabcd.json.gz"),
        &crate::gzip(json.as_bytes()),
    );
    assert!(parquetrail(&["convert", "trail", "--out", "archive"], cwd).status.success());
    let out = parquetrail(&["lookup", "archive", "--format", "csv"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut csv = csv_reader(&out.stdout);
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let rows: Vec<Vec<String>> = csv.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "unguarded cell {cell:?} in {row:?}");
        }
    }
    let users: BTreeSet<&str> = rows.iter().map(|r| r[col("User name")].as_str()).collect();
    assert_eq!(users, BTreeSet::from(["'=HYPERLINK(\"http://x\")", "plain"]));
    assert!(rows.iter().all(|r| r[col("Source IP address")] == "'-1+2"));
    assert!(rows.iter().any(|r| r[col("Event name")] == "'@SUM"));

    // Usage errors name what is wrong.
    let cases: &[(&[&str], &str)] = &[
        (&["lookup", "archive", "-a", "UserName=x"], "valid keys: EventId, EventName, ReadOnly, Username"),
        (&["lookup", "archive", "-a", "EventName"], "KEY=VALUE"),
        (&["lookup", "archive", "--start", "2024-03-02", "--end", "2024-03-01"], "is after --end"),
        (&["lookup", "archive", "--start", "yesterday"], "90d"),
        (&["lookup", "archive", "--max-results", "0"], "at least 1"),
        (&["lookup", "archive", "--next-token", "nonsense"], "token"),
        (&["lookup", "nowhere"], "nowhere"),
    ];
    for (args, needle) in cases {
        let out = parquetrail(args, cwd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    }

    // --sql prints the query instead of reading anything.
    let out = parquetrail(
        &[
            "lookup",
            "no-such-archive",
            "-a",
            "Username=o'brien",
            "--start",
            "2024-01-01",
            "--sql",
            "--table-prefix",
            "org_",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = stdout(&out);
    assert!(
        sql.contains("FROM \"cloudtrail\".\"org_events\"") && sql.contains("'o''brien'") && sql.contains("LIMIT 50"),
        "{sql}"
    );
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::Reader::from_reader(bytes)
}
