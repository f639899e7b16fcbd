//! boto3's `lookup_events` paginator, in a small Python script.

use parquetrail_server::{AttributeKey, LookupQuery, Server};
use serde_json::{Value, json};

use crate::support::{
    MemoryBackend, SECRET_ACCESS_KEY, client_command, config, python_with_boto3, query, query_with, run, start,
};

/// Paginates (`mode` "paginate") or makes one call (`mode` "call"), printing JSON: the pages, the
/// events (ID, time, ReadOnly), or the error's code and boto3's exception class.
const SCRIPT: &str = r#"
import json, sys
import boto3
args = json.loads(sys.argv[1])
client = boto3.client("cloudtrail", endpoint_url=args["endpoint"])
out = {}
try:
    if args["mode"] == "paginate":
        pages = client.get_paginator("lookup_events").paginate(
            **args["params"], PaginationConfig={"PageSize": args["page_size"]})
        out["pages"], out["events"] = 0, []
        for page in pages:
            out["pages"] += 1
            for e in page["Events"]:
                out["events"].append({"EventId": e["EventId"], "EventTime": e["EventTime"].timestamp(),
                                      "ReadOnly": e.get("ReadOnly")})
    else:
        out["events"] = [e["EventId"] for e in client.lookup_events(**args["params"])["Events"]]
except client.exceptions.ClientError as e:
    out["code"] = e.response["Error"]["Code"]
    out["class"] = type(e).__name__
print(json.dumps(out))
"#;

/// Runs [`SCRIPT`] against `server`.
pub async fn boto3(python: &std::path::Path, server: &Server, secret: &str, args: Value) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut command = client_command(python, secret, "us-east-1", home.path());
    let mut args = args;
    args["endpoint"] = json!(server.url());
    command.args(["-c", SCRIPT, &args.to_string()]);
    let (ok, stdout, stderr) = run(command).await;
    assert!(ok, "the boto3 script failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boto3_paginator_returns_the_reference_set_and_order() {
    let Some(python) = python_with_boto3("the_boto3_paginator_returns_the_reference_set_and_order") else { return };
    let server = start(config()).await;
    let reference = MemoryBackend::new();

    let all = reference.matching(&LookupQuery { region: Some("us-east-1".into()), ..query() });
    let out = boto3(&python, &server, SECRET_ACCESS_KEY, json!({"mode":"paginate","params":{},"page_size":4})).await;
    let events = out["events"].as_array().unwrap();
    let ids: Vec<_> = events.iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    let expected: Vec<_> = all.iter().map(|e| e.event_id.as_deref().unwrap()).collect();
    assert_eq!(ids, expected);
    assert_eq!(out["pages"], json!(all.len().div_ceil(4)), "{out}");
    for (got, want) in events.iter().zip(&all) {
        assert_eq!(got["EventTime"].as_f64().unwrap(), want.event_time.timestamp() as f64);
        assert_eq!(got["ReadOnly"].as_str(), want.read_only.as_deref());
    }

    let params = json!({"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"alice"}],
                        "StartTime": 1_709_251_200, "EndTime": 1_709_424_000});
    let out =
        boto3(&python, &server, SECRET_ACCESS_KEY, json!({"mode":"paginate","params":params,"page_size":1})).await;
    let ids: Vec<_> = out["events"].as_array().unwrap().iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    let mut alice = query_with(AttributeKey::Username, "alice", Some("us-east-1"));
    alice.start = chrono::DateTime::from_timestamp(1_709_251_200, 0);
    alice.end = chrono::DateTime::from_timestamp(1_709_424_000, 0);
    assert_eq!(ids, reference.ids(&alice));
    assert!(ids.len() > 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_class_reaches_boto3_as_its_exception() {
    let Some(python) = python_with_boto3("each_error_class_reaches_boto3_as_its_exception") else { return };
    let server = start(config()).await;
    let cases = [
        (json!({"StartTime": 1_709_337_600, "EndTime": 1_709_251_200}), "InvalidTimeRangeException"),
        (json!({"MaxResults": 51}), "InvalidMaxResultsException"),
        (
            json!({"LookupAttributes":[{"AttributeKey":"Bogus","AttributeValue":"x"}]}),
            "InvalidLookupAttributesException",
        ),
        (json!({"EventCategory": "management"}), "InvalidEventCategoryException"),
        (json!({"NextToken": "not-a-token"}), "InvalidNextTokenException"),
    ];
    for (params, exception) in cases {
        let out = boto3(&python, &server, SECRET_ACCESS_KEY, json!({"mode":"call","params":params})).await;
        assert_eq!(
            (out["code"].as_str(), out["class"].as_str()),
            (Some(exception), Some(exception)),
            "{params}: {out}"
        );
    }
    server.shutdown().await.unwrap();
}
