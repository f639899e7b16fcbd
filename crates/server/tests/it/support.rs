//! What the tests share: a small set of CloudTrail records, a reference backend over them, a
//! server started on a free loopback port, a raw HTTP client, and the external clients' binaries.

use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parquetrail_server::{
    AttributeKey, EventCategory, LookupBackend, LookupEvent, LookupPage, LookupQuery, Resource, Server, ServerConfig,
    serve,
};
pub use parquetrail_testkit::clients::{aws_cli, python_with_boto3};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The access key every client uses, and its secret.
pub const ACCESS_KEY_ID: &str = "AKIDPARQUETRAILTEST";
pub const SECRET_ACCESS_KEY: &str = "serve/test+secret";

/// 2024-03-01T00:00:00Z.
const BASE: i64 = 1_709_251_200;

/// Twenty-four records over two days, two Regions, two accounts, four identity types, read and
/// write events, resources, an error, two records at the same second, and two Insights events.
pub fn records() -> Vec<Value> {
    let identities = [
        json!({"type":"IAMUser","principalId":"AIDAALICE","arn":"arn:aws:iam::111122223333:user/alice",
               "accountId":"111122223333","accessKeyId":"AKIAALICE","userName":"alice"}),
        json!({"type":"AssumedRole","principalId":"AROADEPLOY:deploy-bot",
               "arn":"arn:aws:sts::111122223333:assumed-role/Deployer/deploy-bot","accountId":"111122223333",
               "accessKeyId":"ASIADEPLOY","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Deployer"}}}),
        json!({"type":"Root","principalId":"444455556666","arn":"arn:aws:iam::444455556666:root",
               "accountId":"444455556666","accessKeyId":"AKIAROOT"}),
        json!({"type":"AWSService","invokedBy":"ec2.amazonaws.com"}),
    ];
    let events = [
        ("ec2.amazonaws.com", "RunInstances", false, Some(("AWS::EC2::Instance", "i-0abc"))),
        ("ec2.amazonaws.com", "DescribeInstances", true, None),
        ("iam.amazonaws.com", "CreateUser", false, Some(("AWS::IAM::User", "bob"))),
        ("s3.amazonaws.com", "DeleteBucket", false, Some(("AWS::S3::Bucket", "logs-bucket"))),
        ("signin.amazonaws.com", "ConsoleLogin", false, None),
    ];
    let mut records = Vec::new();
    for i in 0..22_i64 {
        let identity = &identities[(i % 4) as usize];
        let (source, name, read_only, resource) = events[(i % 5) as usize];
        let region = if i % 3 == 2 { "eu-west-1" } else { "us-east-1" };
        let account = identity["accountId"].as_str().unwrap_or("111122223333");
        // Every 2.2 hours; records 7 and 8 share a second.
        let offset = if i == 8 { 7 * 7920 } else { i * 7920 };
        let mut record = json!({
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": time(BASE + offset),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": format!("198.51.100.{}", i % 3),
            "userAgent": "aws-cli/2.15",
            "requestParameters": null,
            "responseElements": null,
            "requestID": format!("req-{i}"),
            "eventID": format!("00000000-0000-4000-8000-{i:012}"),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
        });
        if let Some((kind, name)) = resource {
            record["resources"] = json!([{"accountId": account, "type": kind, "ARN": name}]);
        }
        if name == "DeleteBucket" {
            record["errorCode"] = json!("AccessDenied");
            record["errorMessage"] = json!("Access Denied");
        }
        records.push(record);
    }
    for (i, state) in ["Start", "End"].into_iter().enumerate() {
        records.push(json!({
            "eventVersion": "1.08",
            "eventTime": time(BASE + 3600 * (10 + i as i64)),
            "awsRegion": "us-east-1",
            "eventID": format!("11111111-0000-4000-8000-{i:012}"),
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "111122223333",
            "sharedEventID": "22222222-0000-4000-8000-000000000000",
            "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                               "insightType": "ApiCallRateInsight"},
            "eventCategory": "Insight",
        }));
    }
    records
}

fn time(epoch: i64) -> String {
    DateTime::from_timestamp(epoch, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A straightforward lookup over records in memory: the reference the server's answers are
/// checked against. Paging is by index; the cursor is the index of the next event.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    records: Arc<Vec<Value>>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend { records: Arc::new(records()) }
    }

    /// Every event matching `query` (its page size and cursor ignored), newest first.
    pub fn matching(&self, query: &LookupQuery) -> Vec<LookupEvent> {
        let mut events: Vec<(LookupEvent, &Value)> = self
            .records
            .iter()
            .filter(|r| (r["eventCategory"] == "Insight") == (query.category == EventCategory::Insights))
            .filter(|r| query.region.as_deref().is_none_or(|region| r["awsRegion"] == region))
            .map(|r| (event(r), r))
            .filter(|(e, _)| query.start.is_none_or(|start| e.event_time >= start))
            .filter(|(e, _)| query.end.is_none_or(|end| e.event_time <= end))
            .filter(|(e, r)| query.attributes.iter().all(|a| matches(e, r, a.key, &a.value)))
            .collect();
        events.sort_by(|(a, _), (b, _)| (b.event_time, &b.event_id).cmp(&(a.event_time, &a.event_id)));
        events.into_iter().map(|(e, _)| e).collect()
    }

    /// The IDs of [`MemoryBackend::matching`].
    pub fn ids(&self, query: &LookupQuery) -> Vec<String> {
        self.matching(query).into_iter().map(|e| e.event_id.expect("every record has an eventID")).collect()
    }
}

#[async_trait::async_trait]
impl LookupBackend for MemoryBackend {
    async fn lookup(&self, query: LookupQuery) -> parquetrail_server::Result<LookupPage> {
        let all = self.matching(&query);
        let from = match &query.cursor {
            None => 0,
            Some(cursor) => {
                cursor.parse::<usize>().map_err(|e| parquetrail_server::Error::InvalidCursor(e.to_string()))?
            }
        };
        let to = (from + query.max_results).min(all.len());
        let events = all.get(from..to).unwrap_or_default().to_vec();
        Ok(LookupPage { events, cursor: (to < all.len()).then(|| to.to_string()) })
    }
}

fn matches(event: &LookupEvent, record: &Value, key: AttributeKey, value: &str) -> bool {
    let field = |name: &str| record[name].as_str() == Some(value);
    match key {
        AttributeKey::EventId => event.event_id.as_deref() == Some(value),
        AttributeKey::EventName => event.event_name.as_deref() == Some(value),
        AttributeKey::ReadOnly => event.read_only.as_deref() == Some(value),
        AttributeKey::Username => event.username.as_deref() == Some(value),
        AttributeKey::ResourceType => event.resources.iter().any(|r| r.resource_type.as_deref() == Some(value)),
        AttributeKey::ResourceName => event.resources.iter().any(|r| r.resource_name.as_deref() == Some(value)),
        AttributeKey::EventSource => event.event_source.as_deref() == Some(value),
        AttributeKey::AccessKeyId => event.access_key_id.as_deref() == Some(value),
        AttributeKey::AccountId => field("recipientAccountId"),
        AttributeKey::AwsRegion => field("awsRegion"),
        AttributeKey::SourceIpAddress => field("sourceIPAddress"),
        AttributeKey::ErrorCode => field("errorCode"),
    }
}

/// A record as LookupEvents shows it. Username: the session name of an assumed role, `root`, an
/// IAM user's name, otherwise the invoking service.
fn event(record: &Value) -> LookupEvent {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let identity = &record["userIdentity"];
    let username = match identity["type"].as_str() {
        Some("AssumedRole") => identity["arn"].as_str().and_then(|arn| arn.rsplit('/').next()).map(str::to_string),
        Some("Root") => Some("root".to_string()),
        Some("IAMUser") => text(&identity["userName"]),
        _ => text(&identity["invokedBy"]),
    };
    let insight = &record["insightDetails"];
    LookupEvent {
        event_id: text(&record["eventID"]),
        event_name: text(&record["eventName"]).or_else(|| text(&insight["eventName"])),
        read_only: record["readOnly"].as_bool().map(|b| b.to_string()),
        access_key_id: text(&identity["accessKeyId"]),
        event_time: DateTime::parse_from_rfc3339(record["eventTime"].as_str().unwrap()).unwrap().with_timezone(&Utc),
        event_source: text(&record["eventSource"]).or_else(|| text(&insight["eventSource"])),
        username,
        resources: record["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Resource { resource_type: text(&r["type"]), resource_name: text(&r["ARN"]) })
            .collect(),
        cloud_trail_event: record.to_string(),
    }
}

/// A query with no conditions, as the server builds it from `{}` (for computing expectations).
pub fn query() -> LookupQuery {
    LookupQuery {
        attributes: vec![],
        start: None,
        end: None,
        category: EventCategory::Events,
        region: None,
        max_results: 50,
        cursor: None,
    }
}

/// A query with one attribute.
pub fn query_with(key: AttributeKey, value: &str, region: Option<&str>) -> LookupQuery {
    LookupQuery {
        attributes: vec![parquetrail_server::LookupAttribute { key, value: value.into() }],
        region: region.map(str::to_string),
        ..query()
    }
}

/// A server over [`MemoryBackend`] with `config` (on 127.0.0.1, a free port).
pub async fn start(config: ServerConfig) -> Server {
    serve(config, MemoryBackend::new()).await.expect("the server starts")
}

/// The default configuration.
pub fn config() -> ServerConfig {
    ServerConfig::default()
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The `__type` of an error body.
    pub fn error_type(&self) -> String {
        self.json()["__type"].as_str().unwrap_or_default().to_string()
    }
}

/// The headers of a well-formed unsigned LookupEvents request.
pub const LOOKUP_HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/x-amz-json-1.1"),
    ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
];

/// Sends one HTTP/1.1 POST / with exactly these headers and body, over a plain TCP connection.
pub async fn post(server: &Server, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    post_to(server.local_addr(), headers, body).await
}

/// [`post`] to an address.
pub async fn post_to(addr: std::net::SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request =
        format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write the head");
    // The server may answer (413) and close before reading all of a body it refuses.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head}"));
    RawResponse { status, head: head.to_string(), body: body.to_string() }
}

/// An AWS client child process signing with [`ACCESS_KEY_ID`] and `secret`.
pub fn client_command(binary: &std::path::Path, secret: &str, region: &str, home: &std::path::Path) -> Command {
    parquetrail_testkit::clients::client_command(binary, ACCESS_KEY_ID, secret, region, home)
}

/// Runs a child process off the runtime's threads (the server runs on them) and returns
/// (success, stdout, stderr).
pub async fn run(mut command: Command) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("the client runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
