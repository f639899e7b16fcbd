//! A local Lambda Runtime API emulator, so tests can run the *built* Lambda binary.
//!
//! Start a [`RuntimeEmulator`], run the binary with `AWS_LAMBDA_RUNTIME_API` set to [`RuntimeEmulator::address`]
//! (plus [`lambda_env`], or all of it at once with [`RuntimeEmulator::env`]), then [`invoke`](RuntimeEmulator::invoke)
//! and [`wait`](RuntimeEmulator::wait):
//!
//! ```no_run
//! use parquetrail_testkit::runtime::{Invocation, RuntimeEmulator};
//! let emulator = RuntimeEmulator::start();
//! let mut lambda = std::process::Command::new("path/to/the/lambda/binary")
//!     .envs(emulator.env("parquetrail"))
//!     .spawn()
//!     .unwrap();
//! let id = emulator.invoke(serde_json::json!({"Records": []}));
//! let answer = emulator.wait(&id, std::time::Duration::from_secs(30));
//! lambda.kill().unwrap();
//! assert!(matches!(answer, Ok(Invocation::Response(_))));
//! ```
//!
//! Implemented (under `/2018-06-01`): `GET /runtime/invocation/next` (long-polls until an invocation is queued),
//! `POST /runtime/invocation/{id}/response`, `POST /runtime/invocation/{id}/error` and `POST /runtime/init/error`.
//! Connections are HTTP/1.1 keep-alive, as the runtime client's connection pool expects.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::http::{self, Connections};

/// The function ARN reported for every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:parquetrail";
/// Time each invocation is given, reported in `Lambda-Runtime-Deadline-Ms`.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a long-polling `next` checks whether its client went away.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const PREFIX: &str = "/2018-06-01/runtime/";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function's response (the body of `POST /runtime/invocation/{id}/response`).
    Response(Value),
    /// The function's error report (the body of `POST /runtime/invocation/{id}/error`, normally
    /// `{"errorType": ..., "errorMessage": ...}`).
    Error(Value),
}

/// Environment of a Lambda function named `function_name`, except `AWS_LAMBDA_RUNTIME_API`:
/// `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512`, `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`,
/// `AWS_LAMBDA_LOG_STREAM_NAME` and `AWS_LAMBDA_LOG_GROUP_NAME`.
pub fn lambda_env(function_name: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "512".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "2026/01/01/[$LATEST]00000000000000000000000000000000".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), format!("/aws/lambda/{function_name}")),
    ]
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    /// Handed to the function, not answered yet.
    in_flight: HashSet<String>,
    results: HashMap<String, Invocation>,
    init_error: Option<Value>,
    next_id: u64,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    /// Distinguishes the request ids of emulators in the same process.
    instance: u64,
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
    connections: Connections,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A Lambda Runtime API on `127.0.0.1` with a random port, served by background threads until dropped.
#[derive(Debug)]
pub struct RuntimeEmulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl RuntimeEmulator {
    /// Binds `127.0.0.1:0` and serves the Runtime API in background threads.
    pub fn start() -> RuntimeEmulator {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the runtime emulator's listener");
        let address = listener.local_addr().expect("the runtime emulator's address");
        let shared = Arc::new(Shared {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            connections: Connections::default(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("runtime-emulator-accept".to_owned())
            .spawn(move || {
                http::accept_loop(
                    listener,
                    accept_shared,
                    "runtime-emulator-conn",
                    |s| s.lock().shutdown,
                    |s| &s.connections,
                    serve,
                )
            })
            .expect("spawning the runtime emulator's thread");
        RuntimeEmulator { address, shared, accept: Some(accept) }
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// [`lambda_env`] plus `AWS_LAMBDA_RUNTIME_API`: everything a Lambda binary needs to run against this emulator.
    pub fn env(&self, function_name: &str) -> Vec<(String, String)> {
        let mut env = lambda_env(function_name);
        env.push(("AWS_LAMBDA_RUNTIME_API".to_owned(), self.address()));
        env
    }

    /// Queues an invocation with `event` as its payload; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let mut state = self.shared.lock();
        state.next_id += 1;
        let id = format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), self.shared.instance, state.next_id);
        state.queue.push_back((id.clone(), event));
        self.shared.changed.notify_all();
        id
    }

    /// Waits up to `timeout` for the function's answer to `request_id`.
    ///
    /// Errs on timeout, and as soon as the function reports an init error (it will not answer then).
    pub fn wait(&self, request_id: &str, timeout: Duration) -> Result<Invocation, String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(result) = state.results.get(request_id) {
                return Ok(result.clone());
            }
            if let Some(init_error) = &state.init_error {
                return Err(format!("the function reported an init error instead of answering: {init_error}"));
            }
            let now = Instant::now();
            if now >= deadline {
                let status = if state.queue.iter().any(|(id, _)| id == request_id) {
                    "the function never fetched it"
                } else if state.in_flight.contains(request_id) {
                    "the function fetched it but did not answer"
                } else {
                    "no such invocation was queued"
                };
                return Err(format!("no answer to invocation {request_id} within {timeout:?}: {status}"));
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The init error the function reported (body of `POST /runtime/init/error`), if any.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.lock().init_error.clone()
    }
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        http::stop(self.address, &mut self.accept, &self.shared.connections);
    }
}

/// A response to write: status, reason, extra headers, JSON body.
struct Reply {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Reply {
    fn new(status: u16, reason: &'static str, body: Value) -> Reply {
        Reply { status, reason, headers: Vec::new(), body }
    }

    fn error(status: u16, reason: &'static str, error_type: &str, message: &str) -> Reply {
        Reply::new(status, reason, json!({"errorType": error_type, "errorMessage": message}))
    }
}

/// Serves one connection: requests in a loop (keep-alive) until the client closes it.
fn serve(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream.try_clone()?;
    loop {
        let Some(head) = http::read_head(&mut reader)? else { return Ok(()) };
        if head.header_has_token("Expect", "100-continue") {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = http::read_request_body(&mut reader, &head)?;
        let close = head.wants_close();
        let route = head.path().strip_prefix(PREFIX).map(|rest| rest.split('/').collect::<Vec<_>>());
        let reply = match (head.method(), route.as_deref()) {
            ("GET", Some(["invocation", "next"])) => {
                let Some((id, event)) = next_invocation(shared, &stream) else { return Ok(()) };
                let reply = next_reply(&id, event);
                if let Err(e) = send(&mut writer, &reply, close) {
                    // The function never got it: queue it again for the next poll.
                    let mut state = shared.lock();
                    state.in_flight.remove(&id);
                    state.queue.push_front((id, reply.body));
                    shared.changed.notify_all();
                    return Err(e);
                }
                if close {
                    return Ok(());
                }
                continue;
            }
            ("POST", Some(["invocation", id, outcome @ ("response" | "error")])) => {
                let value = json_or_text(&body);
                let result =
                    if *outcome == "response" { Invocation::Response(value) } else { Invocation::Error(value) };
                record(shared, id, result)
            }
            ("POST", Some(["init", "error"])) => {
                let mut state = shared.lock();
                state.init_error = Some(json_or_text(&body));
                shared.changed.notify_all();
                Reply::new(202, "Accepted", json!({"status": "OK"}))
            }
            _ => Reply::error(404, "Not Found", "NotFound", &format!("no route for {} {}", head.method(), head.path())),
        };
        send(&mut writer, &reply, close)?;
        if close {
            return Ok(());
        }
    }
}

/// Long-polls for the next queued invocation and marks it in flight. `None` when the emulator shuts down or the
/// client hangs up while waiting (so that no invocation is handed to a dead connection).
fn next_invocation(shared: &Shared, stream: &TcpStream) -> Option<(String, Value)> {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return None;
        }
        if !state.queue.is_empty() {
            // Checked before taking an invocation too: a client that already hung up must not get it.
            if hung_up(stream) {
                return None;
            }
            let (id, event) = state.queue.pop_front()?;
            state.in_flight.insert(id.clone());
            return Some((id, event));
        }
        state = shared.changed.wait_timeout(state, POLL_INTERVAL).unwrap_or_else(|e| e.into_inner()).0;
        if hung_up(stream) {
            return None;
        }
    }
}

/// Whether the peer closed the connection (a read would return end-of-stream), without consuming anything.
fn hung_up(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

fn next_reply(id: &str, event: Value) -> Reply {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let deadline = (now + INVOCATION_TIMEOUT).as_millis();
    let trace =
        format!("Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0", now.as_secs(), now.as_nanos(), now.as_micros());
    Reply {
        status: 200,
        reason: "OK",
        headers: vec![
            ("Lambda-Runtime-Aws-Request-Id", id.to_owned()),
            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
            ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_owned()),
            ("Lambda-Runtime-Trace-Id", trace),
        ],
        body: event,
    }
}

/// Records the answer to an in-flight invocation; answers for unknown or already answered ids are rejected, as the
/// real Runtime API does.
fn record(shared: &Shared, id: &str, result: Invocation) -> Reply {
    let mut state = shared.lock();
    if !state.in_flight.remove(id) {
        return Reply::error(400, "Bad Request", "InvalidRequestID", &format!("invocation {id} is not in flight"));
    }
    state.results.insert(id.to_owned(), result);
    shared.changed.notify_all();
    Reply::new(202, "Accepted", json!({"status": "OK"}))
}

/// The body as JSON, or as a JSON string if it is not JSON.
fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn send(writer: &mut TcpStream, reply: &Reply, close: bool) -> io::Result<()> {
    let body = serde_json::to_vec(&reply.body).map_err(io::Error::other)?;
    let mut headers: Vec<(&str, &str)> = reply.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    headers.push(("Content-Type", "application/json"));
    http::write_response(writer, reply.status, reply.reason, &headers, &body, close)
}

#[cfg(test)]
mod tests;
