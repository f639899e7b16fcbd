//! A tiny AWS JSON 1.1 endpoint on 127.0.0.1 that answers chosen operations with fixed bodies —
//! for clients (the CloudTrail SDK's `ListPublicKeys`) whose service has no local emulator here.
//! Point a child process at it with `AWS_ENDPOINT_URL_<SERVICE>`; it records every request it
//! was sent, so a test can assert that the call was made, and in which Region.
//!
//! ```no_run
//! let keys = serde_json::json!({"PublicKeyList": []});
//! let endpoint = parquetrail_testkit::AwsJsonEndpoint::start([("ListPublicKeys", keys)]);
//! // AWS_ENDPOINT_URL_CLOUDTRAIL=endpoint.url() …
//! assert!(endpoint.requests().is_empty());
//! ```

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::http;

/// One request the endpoint answered.
#[derive(Debug, Clone)]
pub struct AwsJsonRequest {
    /// The operation: the part of `X-Amz-Target` after the dot.
    pub operation: String,
    /// The Region of the request's SigV4 credential scope (empty when unsigned).
    pub region: String,
    /// The JSON body sent.
    pub body: Value,
}

#[derive(Debug, Default)]
struct Shared {
    answers: HashMap<String, Value>,
    requests: Mutex<Vec<AwsJsonRequest>>,
    shutdown: AtomicBool,
    connections: http::Connections,
}

/// The endpoint; stopped when dropped.
#[derive(Debug)]
pub struct AwsJsonEndpoint {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl AwsJsonEndpoint {
    /// Starts an endpoint answering each named operation with its body (HTTP 200); any other
    /// operation gets the `UnknownOperationException` AWS sends.
    pub fn start(answers: impl IntoIterator<Item = (&'static str, Value)>) -> AwsJsonEndpoint {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the AWS JSON endpoint");
        let address = listener.local_addr().expect("a bound address");
        let shared = Arc::new(Shared {
            answers: answers.into_iter().map(|(op, body)| (op.to_owned(), body)).collect(),
            ..Shared::default()
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("aws-json-endpoint".to_owned())
            .spawn(move || {
                http::accept_loop(
                    listener,
                    accept_shared,
                    "aws-json-conn",
                    |s| s.shutdown.load(Ordering::SeqCst),
                    |s| &s.connections,
                    serve,
                )
            })
            .expect("spawning the accept loop");
        AwsJsonEndpoint { address, shared, accept: Some(accept) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The requests answered so far, in order.
    pub fn requests(&self) -> Vec<AwsJsonRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for AwsJsonEndpoint {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        http::stop(self.address, &mut self.accept, &self.shared.connections);
    }
}

fn serve(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let Some(head) = http::read_head(&mut reader)? else { return Ok(()) };
        if head.header_has_token("Expect", "100-continue") {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = http::read_request_body(&mut reader, &head)?;
        let operation = head.header("X-Amz-Target").and_then(|t| t.rsplit_once('.')).map(|(_, op)| op.to_owned());
        let operation = operation.unwrap_or_default();
        // `Credential=AKID/20240301/us-east-1/cloudtrail/aws4_request`
        let region = head
            .header("Authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or("")
            .to_owned();
        shared.requests.lock().unwrap().push(AwsJsonRequest {
            operation: operation.clone(),
            region,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let json = [("Content-Type", "application/x-amz-json-1.1")];
        match shared.answers.get(&operation) {
            Some(answer) => http::write_response(&mut writer, 200, "OK", &json, answer.to_string().as_bytes(), false)?,
            None => {
                let error = serde_json::json!({"__type": "UnknownOperationException", "message": operation});
                http::write_response(&mut writer, 400, "Bad Request", &json, error.to_string().as_bytes(), false)?
            }
        }
        if head.wants_close() {
            return Ok(());
        }
    }
}
