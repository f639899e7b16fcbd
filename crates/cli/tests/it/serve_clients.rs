//! `parquetrail serve` as real clients use it: the AWS CLI, boto3 and the Rust `aws-sdk-cloudtrail`,
//! unchanged but for their endpoint, against a served archive, local or in (moto) S3. Answers equal
//! the reference computed from the input JSON (`lookup`'s, never the archive reader's); each of
//! LookupEvents' five error classes reaches each client as its own exception type; with
//! `--credentials`, a wrong secret or a missing signature gets AWS's error shape and HTTP 403.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudtrail::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsError;
use aws_sdk_cloudtrail::operation::lookup_events::builders::LookupEventsFluentBuilder;
use aws_sdk_cloudtrail::primitives::DateTime as SdkTime;
use aws_sdk_cloudtrail::types::{Event, EventCategory, LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};
use parquetrail_testkit::clients::{aws_cli, aws_cli_service_error_status, client_command, python_with_boto3};
use serde_json::{Value, json};

use crate::lookup::{Expected, KEYS, event_ids, ids, pick_value, read_trail, reference};
use crate::{parquetrail, parquetrail_on_moto};

/// The access key every client signs with, and its secret (the one the credentials file holds
/// where a test verifies signatures).
const ACCESS_KEY_ID: &str = "AKIDSERVE";
const SECRET: &str = "serve/secret+key";

/// `parquetrail serve ARCHIVE --listen 127.0.0.1:0 …` and the URL it printed; stopped with the
/// test, whatever happens.
pub(crate) struct Served {
    child: Child,
    pub(crate) url: String,
    /// Held open so that the server's stdout stays a pipe with a reader.
    stdout: std::io::BufReader<ChildStdout>,
}

impl Served {
    pub(crate) fn start(cwd: &Path, archive: &str, args: &[&str], env: Vec<(String, String)>) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parquetrail"))
            .args(["serve", archive, "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(cwd)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut served = Served { child, url: String::new(), stdout };
        // The first line names the URL; a server that fails to start closes stdout instead.
        let mut first = String::new();
        served.stdout.read_line(&mut first).unwrap();
        let url = first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:"));
        served.url = url.unwrap_or_else(|| panic!("serve printed no URL: {first:?}")).to_string();
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A trail generated from `seed` and converted into `cwd/archive`; its records, for the reference.
fn local_archive(cwd: &Path, seed: &str) -> Vec<Expected> {
    assert!(parquetrail(&["generate", "trail", "--mb", "1", "--seed", seed], cwd).status.success());
    let out = parquetrail(&["convert", "trail", "--out", "archive"], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    read_trail(&cwd.join("trail"), "CloudTrail")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// The Rust SDK's client of `url` in `region`, signing with `secret`, or not signing at all.
fn sdk_client(url: &str, secret: Option<&str>, region: &str) -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(region.to_string()));
    let config = match secret {
        Some(secret) => config.credentials_provider(Credentials::new(ACCESS_KEY_ID, secret, None, None, "test")),
        None => config.allow_no_auth(),
    };
    aws_sdk_cloudtrail::Client::from_conf(config.build())
}

fn attribute(key: &str, value: &str) -> LookupAttribute {
    LookupAttribute::builder().attribute_key(LookupAttributeKey::from(key)).attribute_value(value).build().unwrap()
}

/// Every event of a lookup through the SDK's paginator, `page_size` a page.
async fn sdk_events(request: LookupEventsFluentBuilder, page_size: i32) -> Vec<Event> {
    let pages = request.into_paginator().page_size(page_size).items().send();
    pages.collect::<Result<Vec<_>, _>>().await.unwrap_or_else(|e| panic!("{}", DisplayErrorContext(&e)))
}

fn sdk_ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone().expect("an EventId")).collect()
}

fn sdk_time(time: DateTime<Utc>) -> SdkTime {
    SdkTime::from_secs_and_nanos(time.timestamp(), time.timestamp_subsec_nanos())
}

/// The SDK's typed variant of a LookupEvents error, by its exception's name.
fn variant(error: &LookupEventsError) -> &'static str {
    match error {
        LookupEventsError::InvalidEventCategoryException(_) => "InvalidEventCategoryException",
        LookupEventsError::InvalidLookupAttributesException(_) => "InvalidLookupAttributesException",
        LookupEventsError::InvalidMaxResultsException(_) => "InvalidMaxResultsException",
        LookupEventsError::InvalidNextTokenException(_) => "InvalidNextTokenException",
        LookupEventsError::InvalidTimeRangeException(_) => "InvalidTimeRangeException",
        _ => "another error",
    }
}

/// Sends `request`, which must fail: (HTTP status, `__type` the SDK read, its typed variant, message).
async fn sdk_refusal(request: LookupEventsFluentBuilder) -> (Option<u16>, Option<String>, &'static str, String) {
    let error = request.send().await.expect_err("a refusal");
    let status = error.raw_response().map(|r| r.status().as_u16());
    let error = error.into_service_error();
    (status, error.code().map(str::to_string), variant(&error), error.message().unwrap_or_default().to_string())
}

/// `aws cloudtrail lookup-events --endpoint-url URL --output json ARGS…`, signing with `secret`
/// in `region`.
fn cli_lookup(cli: &Path, url: &str, secret: &str, region: &str, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = client_command(cli, ACCESS_KEY_ID, secret, region, home.path());
    command.args(["cloudtrail", "lookup-events", "--endpoint-url", url, "--output", "json"]).args(args);
    command.output().unwrap()
}

/// The events the CLI printed (it follows NextToken itself), and its own NextToken.
fn cli_events(out: &Output) -> (Vec<Value>, Option<String>) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the AWS CLI failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (v["Events"].as_array().unwrap().clone(), v["NextToken"].as_str().map(str::to_string))
}

/// Checks a refusal by the AWS CLI run with `--debug`: its exit status, the exception it names,
/// the HTTP status on the wire and AWS's JSON error shape in the body it read.
fn assert_cli_refusal(cli: &Path, out: &Output, exception: &str, status: u16, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(
        last.starts_with(&format!("An error occurred ({exception}) when calling the LookupEvents operation: ")),
        "{what}: expected {exception}, the CLI said: {last}"
    );
    assert_eq!(out.status.code(), Some(aws_cli_service_error_status(cli)), "{what}: {last}");
    assert!(stderr.contains(&format!("\"POST / HTTP/1.1\" {status} ")), "{what}: HTTP {status}: {stderr}");
    assert!(stderr.contains(&format!("{{\"__type\":\"{exception}\",\"message\":\"")), "{what}: body: {stderr}");
}

/// Runs each call of `calls` with boto3 against `url` (signing with `secret`), in one Python
/// process. A call is `{"params": {…}}`, with `"page_size"` to go through the paginator,
/// `"unsigned": true` to send no signature, `"exception"` to name the `client.exceptions` class it
/// should raise. Each answer is `{"ids": […]}` or the error: code, message, HTTP status, and
/// `caught_as`, the expected class when `except client.exceptions.<it>` catches the error.
fn boto3(python: &Path, url: &str, secret: &str, region: &str, calls: Vec<Value>) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
import boto3, botocore
from botocore.config import Config
spec = json.loads(sys.argv[1])
answers = []
def error(e, caught_as):
    return {"code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"], "caught_as": caught_as}
for call in spec["calls"]:
    config = Config(signature_version=botocore.UNSIGNED) if call.get("unsigned") else None
    client = boto3.client("cloudtrail", endpoint_url=spec["endpoint"], config=config)
    # `except ()` catches nothing: a call that expects no error.
    expected = getattr(client.exceptions, call["exception"]) if "exception" in call else ()
    try:
        if "page_size" in call:
            pages = client.get_paginator("lookup_events").paginate(
                **call["params"], PaginationConfig={"PageSize": call["page_size"]})
            events = [e for page in pages for e in page["Events"]]
        else:
            events = client.lookup_events(**call["params"])["Events"]
        answers.append({"ids": [e["EventId"] for e in events]})
    except expected as e:
        answers.append(error(e, call["exception"]))
    except client.exceptions.ClientError as e:
        answers.append(error(e, type(e).__name__))
print(json.dumps(answers))
"#;
    let home = tempfile::tempdir().unwrap();
    let spec = json!({"endpoint": url, "calls": calls});
    let mut command = client_command(python, ACCESS_KEY_ID, secret, region, home.path());
    let out = command.args(["-c", SCRIPT, &spec.to_string()]).output().unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), spec["calls"].as_array().unwrap().len());
    answers
}

fn boto3_ids(answer: &Value) -> Vec<String> {
    let ids = answer["ids"].as_array().unwrap_or_else(|| panic!("boto3 got no events: {answer}"));
    ids.iter().map(|id| id.as_str().unwrap().to_string()).collect()
}

/// Every field of an event the SDK decoded equals what the input record says.
fn assert_event_fields(got: &Event, want: &Expected) {
    let id = &want.id;
    let first = |key: &str| want.values(key).into_iter().next();
    assert_eq!(got.event_id.as_deref(), Some(id.as_str()));
    assert_eq!(got.event_name, first("EventName"), "{id}");
    assert_eq!(got.event_source, first("EventSource"), "{id}");
    assert_eq!(got.read_only, first("ReadOnly"), "{id}");
    let access_key = want.str("/userIdentity/accessKeyId").filter(|k| !k.is_empty());
    assert_eq!(got.access_key_id.as_deref(), access_key, "{id}");
    assert_eq!(got.username, want.username(), "{id}");
    let time = got.event_time.expect("an EventTime");
    let micros = (f64::from(time.subsec_nanos()) / 1e3).round() as i64;
    assert_eq!(time.secs() * 1_000_000 + micros, want.time.timestamp_micros(), "{id}: EventTime");
    let types: Vec<String> = got.resources().iter().filter_map(|r| r.resource_type.clone()).collect();
    let names: Vec<String> = got.resources().iter().filter_map(|r| r.resource_name.clone()).collect();
    assert_eq!((types, names), (want.resources("type"), want.resources("ARN")), "{id}: Resources");
    let record: Value = serde_json::from_str(got.cloud_trail_event.as_deref().expect("a CloudTrailEvent")).unwrap();
    assert_eq!(record, want.record, "{id}: CloudTrailEvent is the input record");
}

/// The Rust SDK's paginator against `url` (a server of every Region): for every attribute key the
/// reference's set and order, 25 events a page so that most answers span several NextTokens; the
/// whole archive with every field of every event; a window whose inclusive bounds are two events'
/// times.
fn check_sdk(url: &str, events: &[Expected], archive: &str) {
    let client = sdk_client(url, Some(SECRET), "us-east-1");
    block_on(async {
        for key in KEYS {
            let value = pick_value(events, key);
            let want = reference(events, |e| e.values(key).contains(&value), false);
            let got = sdk_events(client.lookup_events().lookup_attributes(attribute(key, &value)), 25).await;
            assert_eq!(sdk_ids(&got), ids(&want), "{archive}: SDK, {key}={value}: set and order");
        }
        let everything = reference(events, |_| true, false);
        let got = sdk_events(client.lookup_events(), 50).await;
        assert_eq!(sdk_ids(&got), ids(&everything), "{archive}: SDK, every management event");
        for (got, want) in got.iter().zip(&everything) {
            assert_event_fields(got, want);
        }
        let (newer, older) = (everything[everything.len() / 3], everything[everything.len() / 2]);
        let want = reference(events, |e| e.time >= older.time && e.time <= newer.time, false);
        assert!(want.iter().any(|e| e.id == older.id) && want.iter().any(|e| e.id == newer.id));
        let window = client.lookup_events().start_time(sdk_time(older.time)).end_time(sdk_time(newer.time));
        assert_eq!(sdk_ids(&sdk_events(window, 25).await), ids(&want), "{archive}: SDK, inclusive window");
    });
}

/// One unsigned LookupEvents call with `body` over a plain TCP connection: (HTTP status, body).
fn post_lookup(url: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: CloudTrail_20131101.LookupEvents\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{body}").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {response}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

/// The wire itself, written again from the input records: CloudTrail's PascalCase names,
/// `EventTime` epoch seconds as a JSON number (an integer when whole), `ReadOnly` a string,
/// `Resources` from the record's own array, a field the record lacks left out, nothing else.
fn check_wire(url: &str, everything: &[&Expected], archive: &str) {
    let (status, page) = post_lookup(url, r#"{"MaxResults":50}"#);
    assert_eq!(status, 200, "{archive}: {page}");
    assert!(page["NextToken"].is_string(), "{archive}: a full page has a NextToken");
    let got = page["Events"].as_array().unwrap();
    assert_eq!(event_ids(got), ids(&everything[..50]), "{archive}: the first page");
    for (event, want) in got.iter().zip(everything) {
        let mut expected = serde_json::Map::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                expected.insert(name.to_string(), Value::String(v));
            }
        };
        let first = |key: &str| want.values(key).into_iter().next();
        put("EventId", Some(want.id.clone()));
        put("EventName", first("EventName"));
        put("ReadOnly", first("ReadOnly"));
        put("AccessKeyId", want.str("/userIdentity/accessKeyId").filter(|k| !k.is_empty()).map(str::to_string));
        put("EventSource", first("EventSource"));
        put("Username", want.username());
        let micros = want.time.timestamp_micros();
        let time = if micros % 1_000_000 == 0 { json!(micros / 1_000_000) } else { json!(micros as f64 / 1e6) };
        expected.insert("EventTime".into(), time);
        let resources = want.record["resources"].as_array().into_iter().flatten().filter_map(|r| {
            let mut resource = serde_json::Map::new();
            if let Some(kind) = r["type"].as_str() {
                resource.insert("ResourceType".into(), json!(kind));
            }
            if let Some(name) = r["ARN"].as_str().or(r["ARNPrefix"].as_str()) {
                resource.insert("ResourceName".into(), json!(name));
            }
            (!resource.is_empty()).then_some(Value::Object(resource))
        });
        expected.insert("Resources".into(), Value::Array(resources.collect()));
        let mut event = event.as_object().unwrap().clone();
        let record = event.remove("CloudTrailEvent").unwrap_or_else(|| panic!("{}: no CloudTrailEvent", want.id));
        assert_eq!(serde_json::from_str::<Value>(record.as_str().unwrap()).unwrap(), want.record, "{}", want.id);
        assert_eq!(event, expected, "{archive}: {}: the event on the wire", want.id);
    }
}

/// `parquetrail serve` over `archive` answers the real AWS CLI — auto-paginating through NextToken
/// at 20 events a page — the Rust SDK's paginator and boto3's with the reference's set and order
/// for every attribute key, and each hit's CloudTrailEvent is its input record.
fn check_serve(test: &str, cwd: &Path, archive: &str, env: Vec<(String, String)>) {
    let events = read_trail(&cwd.join("trail"), "CloudTrail");
    let served = Served::start(cwd, archive, &["--all-regions"], env);
    let url = served.url.as_str();
    let everything = reference(&events, |_| true, false);
    check_wire(url, &everything, archive);
    check_sdk(url, &events, archive);

    if let Some(cli) = aws_cli(test) {
        let lookup = |attribute: Option<(&str, &str)>| -> Vec<Value> {
            let mut args = vec!["--page-size".to_string(), "20".to_string()];
            if let Some((key, value)) = attribute {
                args.extend(["--lookup-attributes".to_string(), format!("AttributeKey={key},AttributeValue={value}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli_events(&cli_lookup(&cli, url, SECRET, "us-east-1", &args)).0
        };
        for key in KEYS {
            let value = pick_value(&events, key);
            let want = reference(&events, |e| e.values(key).contains(&value), false);
            let got = lookup(Some((key, &value)));
            assert_eq!(event_ids(&got), ids(&want), "{archive}: CLI, {key}={value}: set and order");
        }
        let got = lookup(None);
        assert_eq!(event_ids(&got), ids(&everything), "{archive}: CLI, every management event, page after page");
        let by_id: BTreeMap<&str, &Expected> = events.iter().map(|e| (e.id.as_str(), e)).collect();
        for e in &got {
            let id = e["EventId"].as_str().unwrap();
            let record: Value = serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            assert_eq!(record, by_id[id].record, "{id}");
            assert_eq!(e["Username"].as_str().map(str::to_string), by_id[id].username(), "{id}");
        }
    }

    // boto3's paginator, 50 a page (AWS's maximum), over the whole archive.
    if let Some(python) = python_with_boto3(test) {
        let answers = boto3(&python, url, SECRET, "us-east-1", vec![json!({"params": {}, "page_size": 50})]);
        assert_eq!(boto3_ids(&answers[0]), ids(&everything), "{archive}: boto3's paginator");
    }
    drop(served);
}

#[test]
fn serve_answers_real_clients_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    local_archive(cwd, "5");
    check_serve("serve_answers_real_clients_as_the_reference_does", cwd, "archive", Vec::new());
}

#[test]
fn serve_answers_from_an_archive_in_s3() {
    let test = "serve_answers_from_an_archive_in_s3";
    let Some(moto) = parquetrail_testkit::MotoServer::start(test) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(moto.create_bucket("archive-bucket"));
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    assert!(parquetrail(&["generate", "trail", "--mb", "1", "--seed", "29"], cwd).status.success());
    let out = parquetrail_on_moto(&["convert", "trail", "--out", "s3://archive-bucket/lake"], cwd, &moto);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_serve(test, cwd, "s3://archive-bucket/lake", moto.env());
}

/// The five error classes of LookupEvents, each reaching the Rust SDK as its typed variant of
/// `LookupEventsError`, boto3 as `client.exceptions.<it>` and the AWS CLI by name with its
/// service-error exit status; HTTP 400 each time. The NextToken is a real one, replayed with
/// other parameters.
#[test]
fn serve_errors_reach_each_client_as_its_exception_type() {
    let test = "serve_errors_reach_each_client_as_its_exception_type";
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let events = local_archive(cwd, "31");
    let everything = reference(&events, |_| true, false);
    let name = pick_value(&events, "EventName");
    let served = Served::start(cwd, "archive", &["--all-regions"], Vec::new());
    let url = served.url.as_str();
    // 2024-03-02 and 2024-03-01, the wrong way round.
    let (later, earlier) = (1_709_337_600, 1_709_251_200);

    let client = sdk_client(url, Some(SECRET), "us-east-1");
    let token = block_on(async {
        let page = client.lookup_events().max_results(2).send().await.unwrap();
        assert_eq!(sdk_ids(page.events()), ids(&everything[..2]));
        let token = page.next_token.expect("more than two events");
        // The token is good with the parameters it was made for, whatever the page size.
        let next = client.lookup_events().max_results(3).next_token(&token).send().await.unwrap();
        assert_eq!(sdk_ids(next.events()), ids(&everything[2..5]));
        let cases = [
            (
                "InvalidTimeRangeException",
                client.lookup_events().start_time(SdkTime::from_secs(later)).end_time(SdkTime::from_secs(earlier)),
            ),
            ("InvalidMaxResultsException", client.lookup_events().max_results(51)),
            ("InvalidLookupAttributesException", client.lookup_events().lookup_attributes(attribute("Bogus", "x"))),
            ("InvalidEventCategoryException", client.lookup_events().event_category(EventCategory::from("management"))),
            (
                "InvalidNextTokenException",
                client.lookup_events().lookup_attributes(attribute("EventName", &name)).next_token(&token),
            ),
        ];
        for (exception, request) in cases {
            let (status, code, variant, message) = sdk_refusal(request).await;
            assert_eq!((status, code.as_deref(), variant), (Some(400), Some(exception), exception), "SDK");
            assert!(!message.is_empty(), "{exception}: a message");
        }
        token
    });

    if let Some(python) = python_with_boto3(test) {
        let eventname = json!([{"AttributeKey": "EventName", "AttributeValue": name}]);
        let cases = [
            ("InvalidTimeRangeException", json!({"StartTime": later, "EndTime": earlier})),
            ("InvalidMaxResultsException", json!({"MaxResults": 51})),
            (
                "InvalidLookupAttributesException",
                json!({"LookupAttributes": [{"AttributeKey": "Bogus", "AttributeValue": "x"}]}),
            ),
            ("InvalidEventCategoryException", json!({"EventCategory": "management"})),
            ("InvalidNextTokenException", json!({"LookupAttributes": eventname, "NextToken": token})),
        ];
        let mut calls = vec![json!({"params": {"MaxResults": 3, "NextToken": token}})];
        calls.extend(cases.iter().map(|(exception, params)| json!({"params": params, "exception": exception})));
        let answers = boto3(&python, url, SECRET, "us-east-1", calls);
        assert_eq!(boto3_ids(&answers[0]), ids(&everything[2..5]), "boto3 continues from the token");
        for ((exception, params), answer) in cases.iter().zip(&answers[1..]) {
            let got = (answer["code"].as_str(), answer["caught_as"].as_str(), answer["status"].as_u64());
            assert_eq!(got, (Some(*exception), Some(*exception), Some(400)), "boto3, {params}: {answer}");
            assert!(!answer["message"].as_str().unwrap_or_default().is_empty(), "{answer}");
        }
    }

    if let Some(cli) = aws_cli(test) {
        // The CLI's own NextToken, replayed with another attribute. It stops at a page's end, so its
        // token wraps the server's (within a page it would only say how many events to skip).
        let args = ["--max-items", "2", "--page-size", "2"];
        let (first, cli_token) = cli_events(&cli_lookup(&cli, url, SECRET, "us-east-1", &args));
        assert_eq!(event_ids(&first), ids(&everything[..2]));
        let cli_token = cli_token.expect("the CLI prints a NextToken when it stops early");
        let eventname = format!("AttributeKey=EventName,AttributeValue={name}");
        let cases: [(&str, &[&str]); 5] = [
            (
                "InvalidTimeRangeException",
                &["--start-time", "2024-03-02T00:00:00Z", "--end-time", "2024-03-01T00:00:00Z"],
            ),
            ("InvalidMaxResultsException", &["--page-size", "51"]),
            ("InvalidLookupAttributesException", &["--lookup-attributes", "AttributeKey=Bogus,AttributeValue=x"]),
            ("InvalidEventCategoryException", &["--event-category", "management"]),
            (
                "InvalidNextTokenException",
                &["--starting-token", cli_token.as_str(), "--lookup-attributes", eventname.as_str()],
            ),
        ];
        for (exception, args) in cases {
            let out = cli_lookup(&cli, url, SECRET, "us-east-1", &[&["--debug"][..], args].concat());
            assert_cli_refusal(&cli, &out, exception, 400, &format!("CLI {args:?}"));
        }
    }
    drop(served);
}

/// `serve --credentials FILE`: the real clients signing with the file's secret get their Region's
/// events (the Region of the signature's scope, as at AWS), page after page; with a wrong secret
/// each gets HTTP 403 and `InvalidSignatureException` in AWS's error shape; without a signature,
/// HTTP 403 and `MissingAuthenticationTokenException`.
#[test]
fn serve_with_credentials_verifies_every_clients_signature() {
    let test = "serve_with_credentials_verifies_every_clients_signature";
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let events = local_archive(cwd, "37");
    let keys = format!("# who may look events up\n{ACCESS_KEY_ID}  {SECRET}\nAKIDOTHER another-secret\n");
    std::fs::write(cwd.join("keys.txt"), keys).unwrap();
    let served = Served::start(cwd, "archive", &["--credentials", "keys.txt"], Vec::new());
    let url = served.url.as_str();
    let region = pick_value(&events, "AwsRegion");
    let want = reference(&events, |e| e.str("/awsRegion") == Some(region.as_str()), false);
    let everything = reference(&events, |_| true, false);
    assert!(want.len() > 50 && want.len() < everything.len(), "{region}: {} of {}", want.len(), everything.len());
    let wrong = "not-the-secret";

    block_on(async {
        let got = sdk_events(sdk_client(url, Some(SECRET), &region).lookup_events(), 50).await;
        assert_eq!(sdk_ids(&got), ids(&want), "SDK, the right secret: {region}'s events");
        let refusals = [
            (sdk_client(url, Some(wrong), &region), "InvalidSignatureException"),
            (sdk_client(url, None, &region), "MissingAuthenticationTokenException"),
        ];
        for (client, exception) in refusals {
            let (status, code, variant, message) = sdk_refusal(client.lookup_events()).await;
            assert_eq!((status, code.as_deref(), variant), (Some(403), Some(exception), "another error"), "SDK");
            assert!(!message.is_empty(), "{exception}: a message");
        }
    });

    if let Some(python) = python_with_boto3(test) {
        let answers = boto3(&python, url, SECRET, &region, vec![json!({"params": {}, "page_size": 50})]);
        assert_eq!(boto3_ids(&answers[0]), ids(&want), "boto3, the right secret: {region}'s events");
        let calls = vec![json!({"params": {}})];
        let wrong_secret = &boto3(&python, url, wrong, &region, calls)[0];
        let unsigned = &boto3(&python, url, SECRET, &region, vec![json!({"params": {}, "unsigned": true})])[0];
        for (answer, exception) in
            [(wrong_secret, "InvalidSignatureException"), (unsigned, "MissingAuthenticationTokenException")]
        {
            assert_eq!((answer["code"].as_str(), answer["status"].as_u64()), (Some(exception), Some(403)), "{answer}");
            assert!(!answer["message"].as_str().unwrap_or_default().is_empty(), "{answer}");
        }
    }

    if let Some(cli) = aws_cli(test) {
        let (got, _) = cli_events(&cli_lookup(&cli, url, SECRET, &region, &["--page-size", "50"]));
        assert_eq!(event_ids(&got), ids(&want), "CLI, the right secret: {region}'s events");
        let out = cli_lookup(&cli, url, wrong, &region, &["--debug"]);
        assert_cli_refusal(&cli, &out, "InvalidSignatureException", 403, "CLI, a wrong secret");
        let out = cli_lookup(&cli, url, SECRET, &region, &["--debug", "--no-sign-request"]);
        assert_cli_refusal(&cli, &out, "MissingAuthenticationTokenException", 403, "CLI, no signature");
    }
    drop(served);
}
