use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{FUNCTION_ARN, Invocation, RuntimeEmulator, lambda_env};
use crate::http::{self, Head};

const WAIT: Duration = Duration::from_secs(5);

/// A hand-written Runtime API client on one keep-alive connection, like the runtime's pooled hyper client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: &str) -> Client {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&[u8]>, chunked: bool) {
        let mut request = format!("{method} /2018-06-01{path} HTTP/1.1\r\nHost: runtime\r\n").into_bytes();
        match body {
            Some(body) if chunked => {
                request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for piece in body.chunks(7) {
                    request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    request.extend_from_slice(piece);
                    request.extend_from_slice(b"\r\n");
                }
                request.extend_from_slice(b"0\r\n\r\n");
            }
            Some(body) => {
                request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                request.extend_from_slice(body);
            }
            None => request.extend_from_slice(b"\r\n"),
        }
        self.writer.write_all(&request).unwrap();
    }

    fn receive(&mut self, method: &str) -> (Head, Value) {
        let head = http::read_head(&mut self.reader).unwrap().expect("a response");
        let body = http::read_response_body(&mut self.reader, &head, method).unwrap();
        (head, serde_json::from_slice(&body).unwrap())
    }

    fn call(&mut self, method: &str, path: &str, body: Option<&[u8]>, chunked: bool) -> (Head, Value) {
        self.send(method, path, body, chunked);
        self.receive(method)
    }

    fn next(&mut self) -> (Head, Value) {
        self.call("GET", "/runtime/invocation/next", None, false)
    }
}

#[test]
fn serves_two_invocations_on_one_keep_alive_connection() {
    let emulator = RuntimeEmulator::start();
    let first_event = json!({"Records": [{"s3": {"object": {"key": "a.json.gz"}}}]});
    let first = emulator.invoke(first_event.clone());
    let second = emulator.invoke(json!({"n": 2}));
    assert_ne!(first, second);
    let mut client = Client::connect(&emulator.address());

    let (head, event) = client.next();
    assert_eq!(head.status(), 200);
    assert!(!head.wants_close());
    assert_eq!(event, first_event);
    assert_eq!(head.header("Lambda-Runtime-Aws-Request-Id"), Some(first.as_str()));
    assert_eq!(head.header("Lambda-Runtime-Invoked-Function-Arn"), Some(FUNCTION_ARN));
    assert_eq!(head.header("Content-Type"), Some("application/json"));
    assert!(head.header("Lambda-Runtime-Trace-Id").unwrap().starts_with("Root=1-"));
    let deadline: u128 = head.header("Lambda-Runtime-Deadline-Ms").unwrap().parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert!(deadline > now + 290_000 && deadline <= now + 300_000, "deadline {deadline} vs now {now}");

    let (head, _) =
        client.call("POST", &format!("/runtime/invocation/{first}/response"), Some(br#"{"converted":3}"#), false);
    assert_eq!(head.status(), 202);
    assert_eq!(emulator.wait(&first, WAIT), Ok(Invocation::Response(json!({"converted": 3}))));

    // Same connection again; this time the answer is an error with a chunked body.
    let (head, event) = client.next();
    assert_eq!(head.header("Lambda-Runtime-Aws-Request-Id"), Some(second.as_str()));
    assert_eq!(event, json!({"n": 2}));
    let error = br#"{"errorType":"S3Error","errorMessage":"access denied to the bucket"}"#;
    let (head, _) = client.call("POST", &format!("/runtime/invocation/{second}/error"), Some(error), true);
    assert_eq!(head.status(), 202);
    assert_eq!(
        emulator.wait(&second, WAIT),
        Ok(Invocation::Error(json!({"errorType": "S3Error", "errorMessage": "access denied to the bucket"})))
    );
    assert_eq!(emulator.init_error(), None);
}

#[test]
fn next_long_polls_until_an_invocation_is_queued() {
    let emulator = RuntimeEmulator::start();
    let address = emulator.address();
    let poller = std::thread::spawn(move || {
        let mut client = Client::connect(&address);
        let (head, event) = client.next();
        (head.header("Lambda-Runtime-Aws-Request-Id").unwrap().to_owned(), event)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!poller.is_finished(), "next must block while nothing is queued");
    let id = emulator.invoke(json!("late"));
    assert_eq!(poller.join().unwrap(), (id, json!("late")));
}

#[test]
fn an_invocation_is_not_lost_to_a_poller_that_hung_up() {
    let emulator = RuntimeEmulator::start();
    let mut gone = Client::connect(&emulator.address());
    gone.send("GET", "/runtime/invocation/next", None, false);
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    std::thread::sleep(Duration::from_millis(50));
    let id = emulator.invoke(json!({"k": 1}));
    let mut client = Client::connect(&emulator.address());
    let (head, event) = client.next();
    assert_eq!(head.header("Lambda-Runtime-Aws-Request-Id"), Some(id.as_str()));
    assert_eq!(event, json!({"k": 1}));
}

#[test]
fn init_errors_are_recorded_and_end_waiting() {
    let emulator = RuntimeEmulator::start();
    let id = emulator.invoke(json!({}));
    let mut client = Client::connect(&emulator.address());
    let report = br#"{"errorType":"Runtime.InitError","errorMessage":"no BUCKET"}"#;
    let (head, _) = client.call("POST", "/runtime/init/error", Some(report), false);
    assert_eq!(head.status(), 202);
    let expected = json!({"errorType": "Runtime.InitError", "errorMessage": "no BUCKET"});
    assert_eq!(emulator.init_error(), Some(expected));
    // The init error ends the wait (a timeout would answer "no answer … within"), without timing it.
    let err = emulator.wait(&id, Duration::from_secs(300)).unwrap_err();
    assert!(err.contains("init error") && err.contains("no BUCKET") && !err.contains("within"), "{err}");
}

#[test]
fn unknown_and_repeated_answers_are_rejected_and_wait_times_out() {
    let emulator = RuntimeEmulator::start();
    let mut client = Client::connect(&emulator.address());
    let (head, body) = client.call("POST", "/runtime/invocation/nope/response", Some(b"{}"), false);
    assert_eq!(head.status(), 400);
    assert_eq!(body["errorType"], "InvalidRequestID");
    let (head, _) = client.call("GET", "/runtime/unknown", None, false);
    assert_eq!(head.status(), 404);

    let id = emulator.invoke(json!(1));
    let err = emulator.wait(&id, Duration::from_millis(100)).unwrap_err();
    assert!(err.contains("never fetched"), "{err}");
    client.next();
    let err = emulator.wait(&id, Duration::from_millis(100)).unwrap_err();
    assert!(err.contains("did not answer"), "{err}");
    let path = format!("/runtime/invocation/{id}/response");
    assert_eq!(client.call("POST", &path, Some(b"\"done\""), false).0.status(), 202);
    assert_eq!(client.call("POST", &path, Some(b"\"again\""), false).0.status(), 400);
    assert_eq!(emulator.wait(&id, WAIT), Ok(Invocation::Response(json!("done"))));
}

#[test]
fn dropping_the_emulator_releases_a_blocked_poller() {
    let emulator = RuntimeEmulator::start();
    let mut client = Client::connect(&emulator.address());
    client.send("GET", "/runtime/invocation/next", None, false);
    std::thread::sleep(Duration::from_millis(100));
    drop(emulator);
    // The connection is closed rather than left hanging.
    assert!(http::read_head(&mut client.reader).unwrap().is_none());
}

#[test]
fn lambda_env_has_what_the_runtime_reads() {
    let env = lambda_env("parquetrail");
    let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("parquetrail"));
    assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("512"));
    assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
    assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/parquetrail"));
    assert!(get("AWS_LAMBDA_LOG_STREAM_NAME").is_some());
    let emulator = RuntimeEmulator::start();
    let full = emulator.env("parquetrail");
    assert!(full.contains(&("AWS_LAMBDA_RUNTIME_API".to_owned(), emulator.address())));
    assert_eq!(full.len(), env.len() + 1);
}
