use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use super::{Fault, FaultPlan, FaultyProxy, Forwarded, MotoServer, RequestCounts, RequestKind};
use crate::http;

/// An upstream stand-in for moto: answers every request with its method, target, `Connection` header and body,
/// closing after each answer as moto does; records the raw heads it saw.
fn fake_upstream() -> (SocketAddr, Arc<Mutex<Vec<http::Head>>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_thread = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Ok(Some(head)) = http::read_head(&mut reader) else { continue };
            let body = http::read_request_body(&mut reader, &head).unwrap();
            let answer = format!(
                "{} {} conn={} body={}",
                head.method(),
                head.target(),
                head.header("Connection").unwrap_or("-"),
                String::from_utf8_lossy(&body)
            );
            let length = if head.method() == "HEAD" { "12345".to_owned() } else { answer.len().to_string() };
            let body = if head.method() == "HEAD" { "" } else { answer.as_str() };
            // No Content-Length on GET: the body ends with the connection, which the proxy must re-frame.
            let framing = if head.method() == "GET" { String::new() } else { format!("Content-Length: {length}\r\n") };
            let response = format!("HTTP/1.1 200 OK\r\nX-Upstream: yes\r\n{framing}Connection: close\r\n\r\n{body}");
            // Recorded before answering: the client sees the answer only after this, so the test
            // counts every request upstream received without racing this thread. A write the
            // proxy no longer reads (it may close first once it has what it needs) is not an error
            // of the proxy, and must not stop this fake server.
            seen_by_thread.lock().unwrap().push(head);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (address, seen)
}

fn roundtrip(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    request: &str,
    method: &str,
) -> (http::Head, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let head = http::read_head(reader).unwrap().expect("a response");
    let body = http::read_response_body(reader, &head, method).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn proxy_forwards_keeps_client_connections_alive_and_injects_planned_faults() {
    let (upstream, seen) = fake_upstream();
    let plan = FaultPlan::new().fail("PUT", "/bucket/", Fault::SlowDown, 1).fail_when(
        "uploads",
        Fault::InternalError,
        1,
        |r| r.method() == "POST" && r.query() == "uploads",
    );
    let proxy = FaultyProxy::start(upstream, plan);
    let mut stream = TcpStream::connect(proxy.endpoint().trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());

    // Injected: the first PUT under /bucket/, with the S3 error body; the connection stays open.
    let put = "PUT /bucket/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    let (head, body) = roundtrip(&mut stream, &mut reader, put, "PUT");
    assert_eq!(head.status(), 503);
    assert!(!head.wants_close());
    assert_eq!(head.header("Content-Type"), Some("application/xml"));
    assert!(body.contains("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"));
    // The retry goes through; the chunked body reaches upstream re-framed with a Content-Length.
    let chunked_put =
        "PUT /bucket/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
    let (head, body) = roundtrip(&mut stream, &mut reader, chunked_put, "PUT");
    assert_eq!((head.status(), head.header("X-Upstream")), (200, Some("yes")));
    assert_eq!(body, "PUT /bucket/k conn=close body=abc");
    // The second rule looks at the query string.
    let (head, body) = roundtrip(&mut stream, &mut reader, "POST /bucket/big?uploads HTTP/1.1\r\n\r\n", "POST");
    assert_eq!(head.status(), 500);
    assert!(body.contains("<Code>InternalError</Code>"));
    // A body that upstream ends by closing is re-framed, so the client connection survives.
    let (head, body) = roundtrip(&mut stream, &mut reader, "GET /bucket/k?x=1 HTTP/1.1\r\n\r\n", "GET");
    assert_eq!((head.status(), body.as_str()), (200, "GET /bucket/k?x=1 conn=close body="));
    assert_eq!(head.header("Content-Length"), Some(body.len().to_string().as_str()));
    // HEAD keeps the upstream Content-Length (an object's size) and has no body.
    let (head, body) = roundtrip(&mut stream, &mut reader, "HEAD /bucket/k HTTP/1.1\r\n\r\n", "HEAD");
    assert_eq!((head.header("Content-Length"), body.as_str()), (Some("12345"), ""));
    let (head, _) = roundtrip(
        &mut stream,
        &mut reader,
        "PUT /bucket/z HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "PUT",
    );
    assert!(head.wants_close());
    assert!(http::read_head(&mut reader).unwrap().is_none(), "closed after a Connection: close request");

    assert_eq!(proxy.injected(), 2);
    assert_eq!(proxy.injections(), ["SlowDown PUT /bucket/k", "InternalError POST /bucket/big?uploads"]);
    assert_eq!(proxy.forwarded(), 4);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|h| h.header("Transfer-Encoding").is_none() && h.header("Connection") == Some("close")));
}

#[test]
fn proxy_stalls_hold_requests_and_bodies() {
    let (upstream, seen) = fake_upstream();
    let long = Duration::from_secs(600);
    let plan = FaultPlan::new()
        .fail("GET", "/frozen/", Fault::Stall(long), 1)
        .fail("GET", "/brief/", Fault::Stall(Duration::from_millis(50)), 1)
        .fail("GET", "/slow/", Fault::StallBody(long), 1)
        .fail("PUT", "/slow/", Fault::StallBody(Duration::from_millis(50)), 1)
        .fail("PUT", "/cas/", Fault::PreconditionFailed, 1);
    let proxy = FaultyProxy::start(upstream, plan);
    let connect = || {
        let stream = TcpStream::connect(proxy.endpoint().trim_start_matches("http://")).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, reader)
    };
    // Stopping to wait is how a client finds a stall; the stall outlasts this wait by far.
    let nothing_within = |reader: &mut BufReader<TcpStream>| {
        reader.get_ref().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let err = std::io::Read::read(reader, &mut [0u8; 1]).expect_err("the proxy sent something");
        assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
        reader.get_ref().set_read_timeout(None).unwrap();
    };

    // A frozen endpoint sends nothing at all.
    let (mut frozen, mut frozen_reader) = connect();
    frozen.write_all(b"GET /frozen/k HTTP/1.1\r\n\r\n").unwrap();
    nothing_within(&mut frozen_reader);
    // A stall that ends closes the connection without an answer.
    let (mut brief, mut brief_reader) = connect();
    brief.write_all(b"GET /brief/k HTTP/1.1\r\n\r\n").unwrap();
    assert!(http::read_head(&mut brief_reader).unwrap().is_none(), "closed without an answer");
    // A stalled body: upstream's headers, then nothing.
    let (mut slow, mut slow_reader) = connect();
    slow.write_all(b"GET /slow/k HTTP/1.1\r\n\r\n").unwrap();
    let head = http::read_head(&mut slow_reader).unwrap().expect("the headers arrive");
    assert_eq!((head.status(), head.header("X-Upstream")), (200, Some("yes")));
    nothing_within(&mut slow_reader);
    // When the stall ends, the body follows.
    let (mut brief_body, mut brief_body_reader) = connect();
    let (head, body) =
        roundtrip(&mut brief_body, &mut brief_body_reader, "PUT /slow/b HTTP/1.1\r\nContent-Length: 1\r\n\r\nz", "PUT");
    assert_eq!((head.status(), body.as_str()), (200, "PUT /slow/b conn=close body=z"));
    // A refused conditional write.
    let (head, body) = roundtrip(
        &mut brief_body,
        &mut brief_body_reader,
        "PUT /cas/k HTTP/1.1\r\nIf-Match: \"x\"\r\nContent-Length: 0\r\n\r\n",
        "PUT",
    );
    assert_eq!(head.status(), 412);
    assert!(body.contains("<Code>PreconditionFailed</Code>"), "{body}");

    assert_eq!(
        proxy.injections(),
        [
            "Stall GET /frozen/k",
            "Stall GET /brief/k",
            "StallBody GET /slow/k",
            "StallBody PUT /slow/b",
            "PreconditionFailed PUT /cas/k"
        ]
    );
    // Stalled bodies come from upstream; stalled requests and error answers never reach it.
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Dropping the proxy ends the stalls still held (the clients see their connections closed).
    drop(proxy);
    assert!(http::read_head(&mut frozen_reader).unwrap().is_none());
}

#[test]
fn proxy_answers_bad_gateway_when_upstream_is_gone() {
    let upstream = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = FaultyProxy::start(upstream, FaultPlan::new());
    let mut stream = TcpStream::connect(proxy.endpoint().trim_start_matches("http://")).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (head, body) = roundtrip(&mut stream, &mut reader, "GET / HTTP/1.1\r\n\r\n", "GET");
    assert_eq!(head.status(), 502);
    assert!(body.contains("unreachable"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_is_a_working_s3_endpoint() {
    let Some(moto) = MotoServer::start("moto_is_a_working_s3_endpoint") else { return };
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let env = moto.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL_S3".to_owned(), moto.endpoint().to_owned())));
    assert!(env.contains(&("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned())));

    moto.create_bucket("trail").await;
    let s3 = moto.client().await;
    let key = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/x y.json.gz";
    s3.put_object().bucket("trail").key(key).body(ByteStream::from_static(b"payload")).send().await.unwrap();
    let listed = s3.list_objects_v2().bucket("trail").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key]);
    let got = s3.get_object().bucket("trail").key(key).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"payload");
    let missing = s3.get_object().bucket("trail").key("nope").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_retries_through_an_injected_slowdown() {
    let Some(moto) = MotoServer::start("sdk_retries_through_an_injected_slowdown") else { return };
    moto.create_bucket("out").await;
    let proxy = moto.faulty_endpoint(FaultPlan::new().fail("PUT", "/out/", Fault::SlowDown, 1));
    let s3 = proxy.client().await;
    let body = vec![7u8; 100_000];
    s3.put_object().bucket("out").key("part.parquet").body(ByteStream::from(body.clone())).send().await.unwrap();
    assert_eq!(proxy.injected(), 1);
    assert!(proxy.injections()[0].starts_with("SlowDown PUT /out/part.parquet"), "{:?}", proxy.injections());
    // The retried PUT reached moto: the object is there, read directly from moto.
    let got = moto.client().await.get_object().bucket("out").key("part.parquet").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice());
    // HEAD through the proxy reports the object's size.
    let head = s3.head_object().bucket("out").key("part.parquet").send().await.unwrap();
    assert_eq!(head.content_length(), Some(100_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_faults_exhaust_the_sdk_retries() {
    let Some(moto) = MotoServer::start("persistent_faults_exhaust_the_sdk_retries") else { return };
    moto.create_bucket("inbox").await;
    let proxy = moto.faulty_endpoint(FaultPlan::new().fail("GET", "/inbox/", Fault::InternalError, 100));
    let config = proxy
        .client()
        .await
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(10)))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let err = s3.get_object().bucket("inbox").key("k").send().await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"));
    assert_eq!(proxy.injected(), 3, "one attempt and two retries");
    assert_eq!(proxy.forwarded(), 0);
    // Replacing the plan stops the faults: now moto itself answers (the key does not exist).
    proxy.set_plan(FaultPlan::new());
    let err = s3.get_object().bucket("inbox").key("k").send().await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    assert_eq!((proxy.injected(), proxy.forwarded()), (3, 1));
}

/// Racing compare-and-swap appends on one key: with S3's atomic conditional writes every append
/// lands once. This pins the semantics the manifests need; moto's own race (its precondition
/// check and its store are not atomic) is narrow, and this test does not reliably expose it
/// without the harness's serialization.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn conditional_writes_are_atomic_compare_and_swap() {
    let Some(moto) = MotoServer::start("conditional_writes_are_atomic_compare_and_swap") else { return };
    moto.create_bucket("cas").await;
    let client = moto.client().await;
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..2 {
                loop {
                    let current = client.get_object().bucket("cas").key("register").send().await;
                    let (body, etag) = match current {
                        Ok(o) => {
                            let etag = o.e_tag().unwrap().to_string();
                            (o.body.collect().await.unwrap().into_bytes().to_vec(), Some(etag))
                        }
                        Err(_) => (Vec::new(), None),
                    };
                    let mut next = body;
                    next.extend(format!("{}\n", writer * 2 + round).bytes());
                    let put = client.put_object().bucket("cas").key("register").body(ByteStream::from(next));
                    let put = match &etag {
                        Some(tag) => put.if_match(tag),
                        None => put.if_none_match("*"),
                    };
                    match put.send().await {
                        Ok(_) => break,
                        Err(e) if matches!(e.code(), Some("PreconditionFailed" | "ConditionalRequestConflict")) => {
                            continue;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let body = client.get_object().bucket("cas").key("register").send().await.unwrap().body;
    let text = String::from_utf8(body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    let mut writers: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
    writers.sort_unstable();
    assert_eq!(writers, (0..32).collect::<Vec<_>>(), "every append exactly once");
}

/// The proxy counts what reached moto by kind, and tells a refused conditional write from a
/// write: each request below is one the SDK sends once (no faults, so no retries).
#[tokio::test(flavor = "multi_thread")]
async fn forwarded_requests_are_counted_by_kind() {
    let Some(moto) = MotoServer::start("forwarded_requests_are_counted_by_kind") else { return };
    moto.create_bucket("count").await;
    let proxy = moto.faulty_endpoint(FaultPlan::new());
    let s3 = proxy.client().await;
    let put = s3.put_object().bucket("count").key("dir/a").body(ByteStream::from_static(b"one")).send().await.unwrap();
    let stale = put.e_tag().unwrap().to_string();
    s3.put_object().bucket("count").key("dir/a").body(ByteStream::from_static(b"two")).send().await.unwrap();
    let refused =
        s3.put_object().bucket("count").key("dir/a").if_match(&stale).body(ByteStream::from_static(b"3")).send().await;
    assert_eq!(refused.unwrap_err().code(), Some("PreconditionFailed"));
    s3.get_object().bucket("count").key("dir/a").send().await.unwrap();
    s3.head_object().bucket("count").key("dir/a").send().await.unwrap();
    let listed = s3.list_objects_v2().bucket("count").prefix("dir/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
    s3.delete_object().bucket("count").key("dir/a").send().await.unwrap();

    let counts = proxy.counts();
    let want = RequestCounts { get: 1, put: 3, head: 1, list: 1, delete: 1, conflicts: 1, ..RequestCounts::default() };
    assert_eq!(counts, want, "{:#?}", proxy.requests());
    assert_eq!((counts.total(), proxy.forwarded()), (7, 7));
    let requests = proxy.requests();
    let kinds: Vec<RequestKind> = requests.iter().map(Forwarded::kind).collect();
    use RequestKind::*;
    assert_eq!(kinds, [Put, Put, Put, Get, Head, List, Delete]);
    assert_eq!((requests[2].status, requests[2].path.as_str()), (412, "/count/dir/a"));
    assert!(requests[5].query.contains("list-type=2"), "{}", requests[5]);
}
