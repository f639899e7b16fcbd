//! `ListInsightsMetricData` as the AWS CLI (and boto3) ask `parquetrail serve` for it, over
//! generated activity with injected episodes: every answer equals a reference counted here from
//! the delivered JSON records (never from the archive's metrics), for each period and data type,
//! page by page; before and after `parquetrail insights` stored the metrics; scoped to the
//! request's Region; and bad parameters reach the CLI as AWS's exceptions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Output;

use chrono::{DateTime, Utc};
use parquetrail_testkit::clients::{aws_cli, aws_cli_service_error_status, client_command, python_with_boto3};
use serde_json::{Value, json};

use crate::serve_clients::Served;
use crate::{parquetrail, walk};

/// One delivered record, as the reference needs it.
struct Call {
    time: i64,
    region: String,
    source: String,
    name: String,
    read_only: Option<bool>,
    error_code: Option<String>,
    management: bool,
}

/// Every record of the trail's CloudTrail log files (not its Insight files), from their JSON.
fn delivered(trail: &Path) -> Vec<Call> {
    let mut calls = Vec::new();
    for path in walk(trail) {
        if !path.ends_with(".json.gz") || !path.contains("/CloudTrail/") {
            continue;
        }
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
        let file: Value = serde_json::from_str(&text).unwrap();
        for r in file["Records"].as_array().unwrap() {
            let time: DateTime<Utc> = r["eventTime"].as_str().unwrap().parse().unwrap();
            // CloudTrail's definition: a management event unless its category or flag says otherwise.
            let management = match r["eventCategory"].as_str() {
                Some(category) => category == "Management",
                None => r["managementEvent"].as_bool() != Some(false),
            };
            calls.push(Call {
                time: time.timestamp(),
                region: r["awsRegion"].as_str().unwrap().to_string(),
                source: r["eventSource"].as_str().unwrap().to_string(),
                name: r["eventName"].as_str().unwrap().to_string(),
                read_only: r["readOnly"].as_bool(),
                error_code: r["errorCode"].as_str().map(str::to_string),
                management,
            });
        }
    }
    calls
}

/// What one request asks, and the series CloudTrail's definition gives for it.
#[derive(Debug, Clone)]
struct Ask {
    region: &'static str,
    source: String,
    name: String,
    insight_type: &'static str,
    error_code: Option<String>,
    start: i64,
    end: i64,
    period: i64,
    fill: bool,
}

impl Ask {
    /// Events per period: write management calls (call rate) or management calls that returned
    /// the error code (error rate), of the Region, counted into periods aligned on the epoch;
    /// a period is in when it starts in [start, end).
    fn reference(&self, calls: &[Call]) -> Vec<(i64, f64)> {
        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        for c in calls {
            let wanted = c.management
                && c.region == self.region
                && c.source == self.source
                && c.name == self.name
                && match &self.error_code {
                    None => c.read_only == Some(false),
                    Some(code) => c.error_code.as_ref() == Some(code),
                };
            let bucket = c.time.div_euclid(self.period) * self.period;
            if wanted && bucket >= self.start && bucket < self.end {
                *counts.entry(bucket).or_default() += 1;
            }
        }
        if !self.fill {
            return counts.into_iter().map(|(t, n)| (t, n as f64)).collect();
        }
        (self.start..self.end)
            .step_by(self.period as usize)
            .map(|t| (t, counts.get(&t).copied().unwrap_or(0) as f64))
            .collect()
    }

    fn args(&self) -> Vec<String> {
        let iso = |t: i64| DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
        let mut args = vec![
            "--event-source".into(),
            self.source.clone(),
            "--event-name".into(),
            self.name.clone(),
            "--insight-type".into(),
            self.insight_type.into(),
            "--start-time".into(),
            iso(self.start),
            "--end-time".into(),
            iso(self.end),
            "--period".into(),
            self.period.to_string(),
            "--data-type".into(),
            if self.fill { "FillWithZeros" } else { "NonZeroData" }.into(),
        ];
        if let Some(code) = &self.error_code {
            args.extend(["--error-code".into(), code.clone()]);
        }
        args
    }
}

/// `aws cloudtrail list-insights-metric-data --endpoint-url URL --region REGION --output json ARGS…`.
fn cli(aws: &Path, url: &str, region: &str, args: &[String]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = client_command(aws, "AKIDMETRICS", "metrics-secret", region, home.path());
    command
        .args([
            "cloudtrail",
            "list-insights-metric-data",
            "--endpoint-url",
            url,
            "--region",
            region,
            "--output",
            "json",
        ])
        .args(args);
    command.output().unwrap()
}

/// A timestamp as the CLI prints it (ISO 8601, or epoch seconds with some configurations).
fn epoch(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap() as i64,
        Value::String(s) => DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp(),
        other => panic!("not a timestamp: {other}"),
    }
}

/// Every page of `ask`, `max_results` points at a time, following NextToken; checks each page's
/// echo of the series and its size. Returns the points and the number of pages.
fn fetch(aws: &Path, url: &str, ask: &Ask, max_results: Option<usize>) -> (Vec<(i64, f64)>, usize) {
    let mut points = Vec::new();
    let mut token: Option<String> = None;
    for page in 1.. {
        let mut args = ask.args();
        if let Some(n) = max_results {
            args.extend(["--max-results".into(), n.to_string()]);
        }
        if let Some(t) = &token {
            args.extend(["--next-token".into(), t.clone()]);
        }
        let out = cli(aws, url, ask.region, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{ask:?}: the AWS CLI failed: {stderr}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        assert_eq!(v["EventSource"], ask.source.as_str());
        assert_eq!(v["EventName"], ask.name.as_str());
        assert_eq!(v["InsightType"], ask.insight_type);
        assert_eq!(v["ErrorCode"].as_str(), ask.error_code.as_deref());
        let timestamps = v["Timestamps"].as_array().unwrap();
        let values = v["Values"].as_array().unwrap();
        assert_eq!(timestamps.len(), values.len(), "{v}");
        if let Some(n) = max_results {
            assert!(timestamps.len() <= n, "page {page} has {} points, MaxResults {n}", timestamps.len());
        }
        points.extend(timestamps.iter().map(epoch).zip(values.iter().map(|x| x.as_f64().unwrap())));
        token = v["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            return (points, page);
        }
    }
    unreachable!()
}

/// The first injected episode of `kind` in us-east-1.
fn injected(episodes: &[Value], insight_type: &str) -> Option<Value> {
    episodes.iter().find(|e| e["insightType"] == insight_type && e["region"] == "us-east-1").cloned()
}

#[test]
fn the_cli_gets_the_reference_series_for_each_period_and_data_type() {
    let test = "the_cli_gets_the_reference_series_for_each_period_and_data_type";
    let Some(aws) = aws_cli(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let generate = [
        "generate",
        "trail",
        "--activity-days",
        "10",
        "--episodes",
        "2",
        "--accounts",
        "1",
        "--regions",
        "us-east-1,eu-west-1",
        "--start",
        "2024-03-01",
        "--scale",
        "0.3",
        "--seed",
        "11",
    ];
    let out = parquetrail(&generate, cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = parquetrail(&["convert", "trail", "--out", "archive"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = delivered(&cwd.join("trail"));
    let episodes: Vec<Value> = std::fs::read_to_string(cwd.join("trail/injected-episodes.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // The series of an injected call-rate episode (or, if the seed drew none, of the busiest
    // write API) and of an injected error spike, over the episode's day, and the whole span.
    let day_of =
        |e: &Value| DateTime::parse_from_rfc3339(e["start"].as_str().unwrap()).unwrap().timestamp() / 86_400 * 86_400;
    let call = injected(&episodes, "ApiCallRateInsight").expect("the seed injects a call-rate episode");
    let error = injected(&episodes, "ApiErrorRateInsight").expect("the seed injects an error-rate episode");
    let span = (1_709_251_200, 1_709_251_200 + 10 * 86_400);
    let call_day = Ask {
        region: "us-east-1",
        source: call["eventSource"].as_str().unwrap().into(),
        name: call["eventName"].as_str().unwrap().into(),
        insight_type: "ApiCallRateInsight",
        error_code: None,
        start: day_of(&call),
        end: day_of(&call) + 86_400,
        period: 60,
        fill: true,
    };
    let error_span = Ask {
        region: "us-east-1",
        source: error["eventSource"].as_str().unwrap().into(),
        name: error["eventName"].as_str().unwrap().into(),
        insight_type: "ApiErrorRateInsight",
        error_code: Some(error["errorCode"].as_str().unwrap().into()),
        start: span.0,
        end: span.1,
        period: 3600,
        fill: false,
    };
    let asks = [
        call_day.clone(),
        Ask { fill: false, ..call_day.clone() },
        Ask { period: 300, ..call_day.clone() },
        Ask { period: 300, fill: false, start: span.0, end: span.1, ..call_day.clone() },
        Ask { period: 3600, start: span.0, end: span.1, ..call_day.clone() },
        error_span.clone(),
        Ask { fill: true, ..error_span.clone() },
        Ask { period: 60, start: day_of(&error), end: day_of(&error) + 86_400, ..error_span.clone() },
    ];
    for ask in &asks {
        let reference = ask.reference(&calls);
        assert!(reference.iter().any(|(_, n)| *n > 0.0), "{ask:?}: the reference has no events: a vacuous test");
    }

    // The server reads metrics without writing them: none are stored yet, so it counts them from
    // the events; `insights` then stores them, and the answers stay the same.
    for stored in [false, true] {
        if stored {
            let out = parquetrail(
                &["insights", "archive", "--since", "2024-03-10", "--until", "2024-03-10", "--no-write"],
                cwd,
            );
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let files = walk(&cwd.join("archive/metrics")).iter().filter(|p| p.ends_with(".parquet")).count();
            assert_eq!(files, 20, "one metrics file per account, Region and day");
        } else {
            assert!(!cwd.join("archive/metrics").exists());
        }
        let served = Served::start(cwd, "archive", &[], Vec::new());
        for ask in &asks {
            let (points, pages) = fetch(&aws, &served.url, ask, None);
            assert_eq!(pages, 1, "{ask:?}");
            assert_eq!(points, ask.reference(&calls), "{ask:?} (metrics stored: {stored})");
        }
        if !stored {
            assert!(!cwd.join("archive/metrics").exists(), "serve wrote metrics");
        }
    }

    let served = Served::start(cwd, "archive", &[], Vec::new());
    // Pages of --max-results points: 1440 one-minute points in three pages, then one at a time.
    let (points, pages) = fetch(&aws, &served.url, &call_day, Some(500));
    assert_eq!((points, pages), (call_day.reference(&calls), 3));
    let hours = Ask { period: 3600, fill: false, ..call_day.clone() };
    let reference = hours.reference(&calls);
    let (points, pages) = fetch(&aws, &served.url, &hours, Some(1));
    assert_eq!((points, pages), (reference.clone(), reference.len()));

    // A request signed for eu-west-1 sees eu-west-1's events only.
    let west = Ask { region: "eu-west-1", period: 3600, ..call_day.clone() };
    let (points, _) = fetch(&aws, &served.url, &west, None);
    assert_eq!(points, west.reference(&calls));
    assert_ne!(points, Ask { period: 3600, ..call_day.clone() }.reference(&calls), "the Regions differ");

    // Bad parameters: AWS's exception, the CLI's service-error status and the server's message.
    let status = aws_cli_service_error_status(&aws);
    let base = |extra: &[&str]| {
        let mut args: Vec<String> = ["--event-source", "ec2.amazonaws.com", "--event-name", "RunInstances"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cases: [(Vec<String>, &str, &str); 7] = [
        (
            base(&["--insight-type", "ApiCallRateInsight", "--period", "120"]),
            "InvalidParameterException",
            "Period must be 60, 300 or 3600",
        ),
        (base(&["--insight-type", "ApiErrorRateInsight"]), "InvalidParameterException", "ErrorCode is required"),
        (
            base(&[
                "--insight-type",
                "ApiCallRateInsight",
                "--start-time",
                "2024-03-02T00:00:00Z",
                "--end-time",
                "2024-03-01T00:00:00Z",
            ]),
            "InvalidParameterException",
            "must be before EndTime",
        ),
        (
            base(&["--insight-type", "ApiCallRateInsight", "--next-token", "not-a-token"]),
            "InvalidParameterException",
            "NextToken is not valid",
        ),
        (base(&["--insight-type", "ApiCallRate"]), "ValidationException", "Member must satisfy enum value set"),
        (
            base(&["--insight-type", "ApiCallRateInsight", "--max-results", "30000"]),
            "ValidationException",
            "less than or equal to 21600",
        ),
        (
            vec![
                "--event-source".into(),
                "ec2".into(),
                "--event-name".into(),
                "Run-Instances".into(),
                "--insight-type".into(),
                "ApiCallRateInsight".into(),
            ],
            "ValidationException",
            "2 validation errors detected: Value 'ec2' at 'eventSource'",
        ),
    ];
    for (args, exception, message) in cases {
        let out = cli(&aws, &served.url, "us-east-1", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        assert!(
            last.starts_with(&format!(
                "An error occurred ({exception}) when calling the ListInsightsMetricData operation: "
            )),
            "{args:?}: expected {exception}, the CLI said: {stderr}"
        );
        assert!(last.contains(message), "{args:?}: {last}");
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
    }

    // boto3, page by page through its own client, and its exception class for a bad period.
    let Some(python) = python_with_boto3(test) else { return };
    let five = Ask { period: 300, ..call_day.clone() };
    let script = r#"
import json, sys, boto3, datetime
url, ask = sys.argv[1], json.loads(sys.argv[2])
client = boto3.client("cloudtrail", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="AKIDMETRICS", aws_secret_access_key="metrics-secret")
params = dict(EventSource=ask["source"], EventName=ask["name"], InsightType="ApiCallRateInsight",
              StartTime=datetime.datetime.fromtimestamp(ask["start"], datetime.timezone.utc),
              EndTime=datetime.datetime.fromtimestamp(ask["end"], datetime.timezone.utc),
              Period=300, DataType="FillWithZeros", MaxResults=100)
points, token = [], None
while True:
    page = client.list_insights_metric_data(**params, **({"NextToken": token} if token else {}))
    points += [[int(t.timestamp()), v] for t, v in zip(page["Timestamps"], page["Values"])]
    token = page.get("NextToken")
    if not token:
        break
try:
    client.list_insights_metric_data(**dict(params, Period=600))
    caught = None
except client.exceptions.InvalidParameterException as e:
    caught = e.response["Error"]["Code"]
print(json.dumps({"points": points, "caught": caught}))
"#;
    let ask = json!({"source": five.source, "name": five.name, "start": five.start, "end": five.end});
    let out = std::process::Command::new(python)
        .args(["-c", script, &served.url, &ask.to_string()])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let points: Vec<(i64, f64)> =
        answer["points"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())).collect();
    assert_eq!(points, five.reference(&calls));
    assert_eq!(answer["caught"], "InvalidParameterException");
}
