//! The wire itself, byte for byte over a plain TCP connection: what no SDK would send.

use std::time::Duration;

use std::sync::Arc;

use parquetrail_server::{Error, LookupBackend, LookupPage, LookupQuery, ServerConfig, serve};
use serde_json::json;

use crate::support::{LOOKUP_HEADERS, MemoryBackend, config, post, post_to, query, start};

#[tokio::test]
async fn both_target_forms_answer_with_epoch_seconds_newest_first() {
    let server = start(config()).await;
    let expected = MemoryBackend::new().ids(&query());
    for target in
        ["com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", "CloudTrail_20131101.LookupEvents"]
    {
        let headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target)];
        let response = post(&server, &headers, b"{}").await;
        assert_eq!(response.status, 200, "{target}: {response:?}");
        assert!(
            response.head.to_ascii_lowercase().contains("content-type: application/x-amz-json-1.1"),
            "{response:?}"
        );
        assert!(response.head.to_ascii_lowercase().contains("x-amzn-requestid: "), "{response:?}");
        let page = response.json();
        let events = page["Events"].as_array().unwrap();
        let ids: Vec<_> = events.iter().map(|e| e["EventId"].as_str().unwrap()).collect();
        assert_eq!(ids, expected, "{target}");
        assert!(page.get("NextToken").is_none(), "one page holds every event: {page}");
        let first = &events[0];
        assert!(first["EventTime"].is_i64(), "epoch seconds: {first}");
        assert!(first["ReadOnly"].is_string(), "ReadOnly is a string: {first}");
        let record: serde_json::Value = serde_json::from_str(first["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(record["eventID"], first["EventId"]);
    }
    server.shutdown().await.unwrap();
}

/// (what, headers, body, HTTP status, `__type`)
type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);

/// Every error class over HTTP, with its status.
#[tokio::test]
async fn refusals_have_the_aws_error_shape() {
    let server = start(config()).await;
    let long = "x".repeat(2001);
    let cases: Vec<Refusal> = vec![
        ("malformed JSON", LOOKUP_HEADERS.to_vec(), "{\"MaxResults\":".into(), 400, "SerializationException"),
        ("wrong type", LOOKUP_HEADERS.to_vec(), r#"{"StartTime":"yesterday"}"#.into(), 400, "SerializationException"),
        (
            "unknown target",
            vec![LOOKUP_HEADERS[0], ("X-Amz-Target", "CloudTrail_20131101.DescribeTrails")],
            "{}".into(),
            400,
            "UnknownOperationException",
        ),
        ("no target", vec![LOOKUP_HEADERS[0]], "{}".into(), 400, "UnknownOperationException"),
        (
            "wrong content type",
            vec![("Content-Type", "application/json"), LOOKUP_HEADERS[1]],
            "{}".into(),
            400,
            "SerializationException",
        ),
        ("MaxResults 51", LOOKUP_HEADERS.to_vec(), r#"{"MaxResults":51}"#.into(), 400, "InvalidMaxResultsException"),
        ("MaxResults 0", LOOKUP_HEADERS.to_vec(), r#"{"MaxResults":0}"#.into(), 400, "InvalidMaxResultsException"),
        (
            "2001 chars",
            LOOKUP_HEADERS.to_vec(),
            json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":long}]}).to_string(),
            400,
            "InvalidLookupAttributesException",
        ),
        (
            "time range",
            LOOKUP_HEADERS.to_vec(),
            r#"{"StartTime":1709251200.5,"EndTime":1709251200.25}"#.into(),
            400,
            "InvalidTimeRangeException",
        ),
        (
            "category",
            LOOKUP_HEADERS.to_vec(),
            r#"{"EventCategory":"data"}"#.into(),
            400,
            "InvalidEventCategoryException",
        ),
        (
            "token",
            LOOKUP_HEADERS.to_vec(),
            r#"{"NextToken":"bm90IGEgdG9rZW4"}"#.into(),
            400,
            "InvalidNextTokenException",
        ),
    ];
    for (what, headers, body, status, error) in cases {
        let response = post(&server, &headers, body.as_bytes()).await;
        assert_eq!((response.status, response.error_type().as_str()), (status, error), "{what}: {response:?}");
        assert!(!response.json()["message"].as_str().unwrap_or_default().is_empty(), "{what}: a message");
    }
    // 2000 characters and MaxResults 1 are fine.
    let edge =
        json!({"MaxResults":1,"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"x".repeat(2000)}]});
    let response = post(&server, LOOKUP_HEADERS, edge.to_string().as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let server = start(ServerConfig { body_limit: 1024, ..config() }).await;
    let body = json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"x".repeat(2000)}]}).to_string();
    let response = post(&server, LOOKUP_HEADERS, body.as_bytes()).await;
    assert_eq!(
        (response.status, response.error_type().as_str()),
        (413, "RequestEntityTooLargeException"),
        "{response:?}"
    );
    assert!(response.json()["message"].as_str().unwrap().contains("1024 bytes"), "{response:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_paths_are_refused() {
    let server = start(config()).await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"POST /../archive HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
    assert!(raw.contains("UnknownOperationException"), "{raw}");
    server.shutdown().await.unwrap();
}

/// A backend that takes its time, or fails.
#[derive(Debug)]
enum Troubled {
    Slow,
    Broken,
    StaleCursor,
}

#[async_trait::async_trait]
impl LookupBackend for Troubled {
    async fn lookup(&self, _query: LookupQuery) -> parquetrail_server::Result<LookupPage> {
        match self {
            // Never answers: the server's timeout must.
            Troubled::Slow => std::future::pending().await,
            Troubled::Broken => Err(Error::Backend("disk on fire".into())),
            Troubled::StaleCursor => Err(Error::InvalidCursor("the archive was compacted".into())),
        }
    }
}

#[tokio::test]
async fn timeouts_and_backend_failures_have_the_error_shape() {
    let cases = [
        (Troubled::Slow, 503, "ServiceUnavailableException"),
        (Troubled::Broken, 500, "InternalFailure"),
        (Troubled::StaleCursor, 400, "InvalidNextTokenException"),
    ];
    for (backend, status, error) in cases {
        let what = format!("{backend:?}");
        let config = ServerConfig { request_timeout: Duration::from_millis(300), ..config() };
        let server = serve(config, backend).await.unwrap();
        let response = post(&server, LOOKUP_HEADERS, b"{}").await;
        assert_eq!((response.status, response.error_type().as_str()), (status, error), "{what}: {response:?}");
        assert!(!response.body.contains("disk on fire"), "backend errors stay in the server log: {response:?}");
        server.shutdown().await.unwrap();
    }
}

/// Says when a request has reached it, then answers only when told to: a request is in flight,
/// for sure, when the server is asked to stop.
#[derive(Debug, Clone, Default)]
struct Unhurried {
    reached: Arc<tokio::sync::Notify>,
    answer: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl LookupBackend for Unhurried {
    async fn lookup(&self, query: LookupQuery) -> parquetrail_server::Result<LookupPage> {
        self.reached.notify_one();
        self.answer.notified().await;
        MemoryBackend::new().lookup(query).await
    }
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_and_then_refuses_connections() {
    let backend = Unhurried::default();
    let server = serve(config(), backend.clone()).await.unwrap();
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move { post_to(addr, LOOKUP_HEADERS, b"{}").await });
    backend.reached.notified().await;
    let stopping = tokio::spawn(async move { server.shutdown().await });
    // The listener closes first; only then is the request in flight let go.
    let closed = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), closed).await.expect("shutdown closes the listener");
    assert!(!stopping.is_finished(), "shutdown waits for the request in flight");
    backend.answer.notify_one();
    let response = in_flight.await.unwrap();
    stopping.await.unwrap().unwrap();
    assert_eq!(response.status, 200, "the request in flight is answered: {response:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
}
