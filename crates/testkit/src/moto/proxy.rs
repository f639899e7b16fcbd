//! A fault-injecting HTTP proxy in front of moto, for transient-error (retry) tests.
//!
//! moto's own control API (`/moto-api/...`: reset, seed, config, state transitions, recorder) has no way to make S3
//! requests fail, so this proxy does it: it forwards requests to moto, except that the first N requests matching a
//! rule are answered with an S3 error (`503 SlowDown`, `500 InternalError`, `412 PreconditionFailed`,
//! `400 KeyTooLongError`) without
//! reaching moto, or stalled: held without an answer, or answered with headers and then no body for a while.
//!
//! Every forwarded request is recorded with moto's answer ([`FaultyProxy::requests`]), so a test can count what a
//! client costs in S3 requests by kind ([`RequestCounts`]).
//!
//! One thread per client connection; client connections are kept alive (HTTP/1.1 with `Content-Length` or chunked
//! request bodies), each forwarded request uses a fresh upstream connection with `Connection: close`.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::{self, Connections, Head};

/// How long the proxy waits for moto before answering `502 Bad Gateway`.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy does with a request instead of forwarding it: an error answer, or a stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `503 Slow Down` with S3 error code `SlowDown` (S3's throttling answer).
    SlowDown,
    /// `500 Internal Server Error` with S3 error code `InternalError`.
    InternalError,
    /// `412 Precondition Failed` with S3 error code `PreconditionFailed`: a conditional write (`If-Match`,
    /// `If-None-Match`) refused, as if another writer had always just changed the object.
    PreconditionFailed,
    /// `400 Bad Request` with S3 error code `KeyTooLongError`: a request S3 refuses as such (a key over 1,024
    /// bytes), which no retry changes.
    KeyTooLong,
    /// A frozen endpoint: the request is read and then nothing is sent for this long (or until the client gives
    /// up and closes); then the connection is closed without an answer.
    Stall(Duration),
    /// A stalled body: the request is forwarded to moto, the answer's status line and headers are sent, and then
    /// no byte of its body for this long (or until the client gives up and closes); then the body follows.
    StallBody(Duration),
}

impl Fault {
    /// The HTTP status code of an error answer; `None` for a stall.
    pub fn status(self) -> Option<u16> {
        match self {
            Fault::SlowDown => Some(503),
            Fault::InternalError => Some(500),
            Fault::PreconditionFailed => Some(412),
            Fault::KeyTooLong => Some(400),
            Fault::Stall(_) | Fault::StallBody(_) => None,
        }
    }

    /// The S3 error code (`<Code>` of the body) of an error answer, or the name of a stall (`Stall`,
    /// `StallBody`), as [`FaultyProxy::injections`] lists it.
    pub fn code(self) -> &'static str {
        match self {
            Fault::SlowDown => "SlowDown",
            Fault::InternalError => "InternalError",
            Fault::PreconditionFailed => "PreconditionFailed",
            Fault::KeyTooLong => "KeyTooLongError",
            Fault::Stall(_) => "Stall",
            Fault::StallBody(_) => "StallBody",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Fault::SlowDown => "Slow Down",
            Fault::InternalError => "Internal Server Error",
            Fault::PreconditionFailed => "Precondition Failed",
            Fault::KeyTooLong => "Bad Request",
            Fault::Stall(_) | Fault::StallBody(_) => "",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Fault::SlowDown => "Please reduce your request rate.",
            Fault::InternalError => "We encountered an internal error. Please try again.",
            Fault::PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
            Fault::KeyTooLong => "Your key is too long",
            Fault::Stall(_) | Fault::StallBody(_) => "",
        }
    }

    /// The S3 XML error body, as S3 sends it.
    fn body(self, request_id: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>\
             <RequestId>{request_id}</RequestId></Error>",
            self.code(),
            self.message()
        )
    }
}

/// The parts of a request a [`FaultPlan`] rule can look at.
#[derive(Debug, Clone, Copy)]
pub struct FaultRequest<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
}

impl FaultRequest<'_> {
    /// The HTTP method, e.g. `PUT`.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The path as sent (still percent-encoded), e.g. `/bucket/some%20key`. With path-style addressing the first
    /// segment is the bucket.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The raw query string without `?`, e.g. `partNumber=2&uploadId=...` (empty if none).
    pub fn query(&self) -> &str {
        self.query
    }
}

type Matcher = Box<dyn Fn(&FaultRequest<'_>) -> bool + Send>;

struct Rule {
    description: String,
    fault: Fault,
    remaining: usize,
    matcher: Matcher,
}

/// Which requests a [`FaultyProxy`] answers with a [`Fault`] instead of forwarding them.
///
/// Rules are tried in order; the first matching rule that has faults left answers the request (and uses one up).
/// Requests no rule answers are forwarded.
///
/// ```
/// use parquetrail_testkit::moto::{Fault, FaultPlan};
/// // The first PUT into bucket "out" gets 503 SlowDown; the first two GETs of anything get 500 InternalError.
/// let plan = FaultPlan::new().fail("PUT", "/out/", Fault::SlowDown, 1).fail("GET", "/", Fault::InternalError, 2);
/// # let _ = plan;
/// ```
#[derive(Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers the first `times` requests whose method is `method` (case-insensitive; `*` for any) and whose path
    /// (percent-encoded, as sent) starts with `path_prefix` with `fault`.
    pub fn fail(self, method: &str, path_prefix: &str, fault: Fault, times: usize) -> Self {
        let description = format!("{method} {path_prefix}*");
        let (method, prefix) = (method.to_owned(), path_prefix.to_owned());
        self.fail_when(&description, fault, times, move |request| {
            (method == "*" || request.method().eq_ignore_ascii_case(&method)) && request.path().starts_with(&prefix)
        })
    }

    /// Answers the first `times` requests for which `matches` is true with `fault`. `description` names the rule in
    /// [`FaultyProxy::injections`] and `Debug` output.
    pub fn fail_when(
        mut self,
        description: &str,
        fault: Fault,
        times: usize,
        matches: impl Fn(&FaultRequest<'_>) -> bool + Send + 'static,
    ) -> Self {
        self.rules.push(Rule {
            description: description.to_owned(),
            fault,
            remaining: times,
            matcher: Box::new(matches),
        });
        self
    }

    /// The fault for `request`, if a rule with faults left matches; uses one up.
    fn take(&mut self, request: &FaultRequest<'_>) -> Option<Fault> {
        let rule = self.rules.iter_mut().find(|rule| rule.remaining > 0 && (rule.matcher)(request))?;
        rule.remaining -= 1;
        Some(rule.fault)
    }
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.rules
                    .iter()
                    .map(|rule| format!("{} -> {} ({} left)", rule.description, rule.fault.code(), rule.remaining)),
            )
            .finish()
    }
}

/// One request the proxy forwarded to moto, with moto's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    /// As sent (percent-encoded); with path-style addressing the first segment is the bucket.
    pub path: String,
    /// Without `?`; empty if none.
    pub query: String,
    /// moto's status code (502 when moto could not be reached).
    pub status: u16,
}

/// What an S3 request is, as billed: by method, with a GET of a bucket (no key) being a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    Get,
    Put,
    Head,
    /// `GET /bucket?list-type=2&…` and any other GET without a key (S3 bills them as LISTs).
    List,
    Delete,
    /// Multipart uploads' create and complete, multi-object delete.
    Post,
    Other,
}

impl Forwarded {
    pub fn kind(&self) -> RequestKind {
        let has_key = self.path.trim_start_matches('/').split_once('/').is_some_and(|(_, key)| !key.is_empty());
        match self.method.to_ascii_uppercase().as_str() {
            "GET" if has_key => RequestKind::Get,
            "GET" => RequestKind::List,
            "PUT" => RequestKind::Put,
            "HEAD" => RequestKind::Head,
            "DELETE" => RequestKind::Delete,
            "POST" => RequestKind::Post,
            _ => RequestKind::Other,
        }
    }

    /// A write refused as a concurrent update: `412 PreconditionFailed` (an `If-Match` or
    /// `If-None-Match` that no longer holds) or `409 ConditionalRequestConflict`.
    pub fn is_conflict(&self) -> bool {
        matches!(self.status, 409 | 412)
    }
}

impl fmt::Display for Forwarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = if self.query.is_empty() { String::new() } else { format!("?{}", self.query) };
        write!(f, "{} {}{query} -> {}", self.method, self.path, self.status)
    }
}

/// Forwarded requests counted by [`RequestKind`], and how many of them were conflicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: usize,
    pub put: usize,
    pub head: usize,
    pub list: usize,
    pub delete: usize,
    pub post: usize,
    pub other: usize,
    /// Of the above, those answered 412 or 409 ([`Forwarded::is_conflict`]): conditional writes to retry.
    pub conflicts: usize,
}

impl RequestCounts {
    pub fn of(requests: &[Forwarded]) -> RequestCounts {
        let mut counts = RequestCounts::default();
        for r in requests {
            let n = match r.kind() {
                RequestKind::Get => &mut counts.get,
                RequestKind::Put => &mut counts.put,
                RequestKind::Head => &mut counts.head,
                RequestKind::List => &mut counts.list,
                RequestKind::Delete => &mut counts.delete,
                RequestKind::Post => &mut counts.post,
                RequestKind::Other => &mut counts.other,
            };
            *n += 1;
            counts.conflicts += usize::from(r.is_conflict());
        }
        counts
    }

    /// Every request counted (conflicts are among them, not added).
    pub fn total(&self) -> usize {
        self.get + self.put + self.head + self.list + self.delete + self.post + self.other
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    plan: Mutex<FaultPlan>,
    injections: Mutex<Vec<String>>,
    forwarded: Mutex<Vec<Forwarded>>,
    shutdown: AtomicBool,
    connections: Connections,
}

/// A proxy in front of a [`MotoServer`](super::MotoServer) that injects faults according to a [`FaultPlan`].
/// Created by [`MotoServer::faulty_endpoint`](super::MotoServer::faulty_endpoint); dropping it stops it.
#[derive(Debug)]
pub struct FaultyProxy {
    endpoint: String,
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultyProxy {
    /// Starts a proxy on `127.0.0.1` with a random port, forwarding to `upstream`.
    pub(crate) fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultyProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the fault proxy's listener");
        let address = listener.local_addr().expect("the fault proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(plan),
            injections: Mutex::new(Vec::new()),
            forwarded: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            connections: Connections::default(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".to_owned())
            .spawn(move || {
                http::accept_loop(
                    listener,
                    accept_shared,
                    "fault-proxy-conn",
                    |s| s.shutdown.load(Ordering::SeqCst),
                    |s| &s.connections,
                    serve,
                )
            })
            .expect("spawning the fault proxy's thread");
        FaultyProxy { endpoint: format!("http://{address}"), address, shared, accept: Some(accept) }
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT`; use it instead of the moto endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many requests were answered with a fault so far.
    pub fn injected(&self) -> usize {
        self.shared.injections.lock().unwrap().len()
    }

    /// The requests answered with a fault so far, in order, as `CODE METHOD TARGET`, e.g.
    /// `SlowDown PUT /out/key.parquet?x-id=PutObject`.
    pub fn injections(&self) -> Vec<String> {
        self.shared.injections.lock().unwrap().clone()
    }

    /// How many requests were forwarded to moto so far.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.lock().unwrap().len()
    }

    /// The requests forwarded to moto so far, in the order they were answered.
    pub fn requests(&self) -> Vec<Forwarded> {
        self.shared.forwarded.lock().unwrap().clone()
    }

    /// The forwarded requests so far, counted by kind.
    pub fn counts(&self) -> RequestCounts {
        RequestCounts::of(&self.shared.forwarded.lock().unwrap())
    }

    /// Replaces the plan (faults left in the old one are discarded); counts are kept.
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.plan.lock().unwrap() = plan;
    }

    /// An S3 client that goes through the proxy; see [`client_for`](super::client_for).
    pub async fn client(&self) -> aws_sdk_s3::Client {
        super::client_for(&self.endpoint).await
    }

    /// Child-process environment that goes through the proxy; see [`env_for`](super::env_for).
    pub fn env(&self) -> Vec<(String, String)> {
        super::env_for(&self.endpoint)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        http::stop(self.address, &mut self.accept, &self.shared.connections);
    }
}

/// Serves one client connection until it closes.
fn serve(shared: &Shared, client: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    loop {
        let Some(head) = http::read_head(&mut reader)? else { return Ok(()) };
        if head.header_has_token("Expect", "100-continue") {
            // The Expect header is not forwarded, so the interim answer is ours to give.
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = http::read_request_body(&mut reader, &head)?;
        let close = head.wants_close();
        let request = FaultRequest { method: head.method(), path: head.path(), query: head.query() };
        let fault = shared.plan.lock().unwrap().take(&request);
        if let Some(fault) = fault {
            let request_id = {
                let mut injections = shared.injections.lock().unwrap();
                injections.push(format!("{} {} {}", fault.code(), head.method(), head.target()));
                format!("PARQUETRAILFAULT{}", injections.len())
            };
            match fault {
                Fault::Stall(duration) => {
                    hold(&writer, duration)?;
                    return Ok(());
                }
                Fault::StallBody(duration) => {
                    let response = match forward(shared.upstream, &head, &body) {
                        Ok((status, response)) => {
                            record(shared, &head, status);
                            response
                        }
                        Err(e) => {
                            record(shared, &head, 502);
                            return bad_gateway(&mut writer, &e);
                        }
                    };
                    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
                    writer.write_all(&response[..split])?;
                    writer.flush()?;
                    if !hold(&writer, duration)? {
                        return Ok(());
                    }
                    writer.write_all(&response[split..])?;
                    writer.flush()?;
                }
                _ => {
                    let headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id.as_str())];
                    http::write_response(
                        &mut writer,
                        fault.status().unwrap_or(500),
                        fault.reason(),
                        &headers,
                        fault.body(&request_id).as_bytes(),
                        close,
                    )?;
                }
            }
        } else {
            match forward(shared.upstream, &head, &body) {
                Ok((status, response)) => {
                    // Recorded before the client has the answer, so a client that has it sees it counted.
                    record(shared, &head, status);
                    writer.write_all(&response)?
                }
                Err(e) => {
                    record(shared, &head, 502);
                    return bad_gateway(&mut writer, &e);
                }
            }
            writer.flush()?;
        }
        if close {
            return Ok(());
        }
    }
}

fn record(shared: &Shared, head: &Head, status: u16) {
    let request =
        Forwarded { method: head.method().into(), path: head.path().into(), query: head.query().into(), status };
    shared.forwarded.lock().unwrap().push(request);
}

/// Answers `502 Bad Gateway` (moto could not be reached) and ends the connection.
fn bad_gateway(writer: &mut TcpStream, e: &io::Error) -> io::Result<()> {
    let message = format!("fault proxy: moto is unreachable: {e}");
    http::write_response(writer, 502, "Bad Gateway", &[], message.as_bytes(), true)
}

/// Sends nothing on `client` for `duration`, or until the client closes (or sends anything) or the proxy shuts
/// the connection down. Returns whether the whole duration passed with the client still there.
fn hold(client: &TcpStream, duration: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + duration;
    let mut byte = [0u8; 1];
    let held = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break true;
        }
        client.set_read_timeout(Some(left))?;
        match (&*client).read(&mut byte) {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Closed, shut down, or a byte the stalled exchange does not expect: the hold is over.
            _ => break false,
        }
    };
    client.set_read_timeout(None)?;
    Ok(held)
}

/// Hop-by-hop and framing headers, which the proxy sets itself.
fn is_hop_header(name: &str) -> bool {
    ["Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "TE", "Upgrade", "Expect", "Content-Length"]
        .iter()
        .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// Sends one request to `upstream` on a fresh connection and returns the response's status and the response
/// re-framed for the client: with a `Content-Length` body, and `Connection` headers removed.
fn forward(upstream: SocketAddr, request: &Head, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let stream = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    let had_body = request.header("Content-Length").is_some() || request.header("Transfer-Encoding").is_some();
    let mut out = format!("{}\r\n", request.start);
    for (name, value) in request.headers.iter().filter(|(name, _)| !is_hop_header(name)) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if had_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    (&stream).write_all(&out)?;
    (&stream).flush()?;

    let mut reader = BufReader::new(&stream);
    let head = loop {
        let head = http::read_head(&mut reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "moto closed without answering"))?;
        // Skip interim responses (there should be none: Expect is not forwarded).
        if !(100..200).contains(&head.status()) {
            break head;
        }
    };
    let response_body = http::read_response_body(&mut reader, &head, request.method())?;
    // HEAD, 204 and 304 answers have no body but their Content-Length (an object's size for HEAD) is meaningful.
    let bodyless = request.method().eq_ignore_ascii_case("HEAD") || matches!(head.status(), 204 | 304);
    let mut response = format!("{}\r\n", head.start);
    for (name, value) in &head.headers {
        let keep_length = bodyless && name.eq_ignore_ascii_case("Content-Length");
        if keep_length || !is_hop_header(name) {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !bodyless {
        response.push_str(&format!("Content-Length: {}\r\n", response_body.len()));
    }
    if request.wants_close() {
        response.push_str("Connection: close\r\n");
    }
    response.push_str("\r\n");
    let mut response = response.into_bytes();
    response.extend_from_slice(&response_body);
    Ok((head.status(), response))
}
