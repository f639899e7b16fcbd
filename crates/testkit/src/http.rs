//! A minimal HTTP/1.1 reader and writer over blocking streams, shared by the fault-injecting proxy and the Lambda
//! Runtime API emulator.
//!
//! It understands exactly what those two need: a start line, headers, and bodies framed by `Content-Length` or
//! `Transfer-Encoding: chunked` (decoded; chunk extensions and trailers are discarded).

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Upper bound for a start line or a header line, and for the number of header lines.
const MAX_LINE: usize = 64 * 1024;
const MAX_HEADERS: usize = 256;

/// The start line and headers of a request or a response.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// `GET /path HTTP/1.1` or `HTTP/1.1 200 OK`, without the line ending.
    pub start: String,
    /// Header names and values in arrival order, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (`Connection`, `Transfer-Encoding`, ...) contains `token`.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Request method (first word of a request line).
    pub fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or("")
    }

    /// Request target (second word of a request line), e.g. `/bucket/key?partNumber=1`.
    pub fn target(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or("")
    }

    /// Request target without the query string.
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string of the request target, without `?` (empty when there is none).
    pub fn query(&self) -> &str {
        self.target().split_once('?').map_or("", |(_, query)| query)
    }

    /// HTTP version of a request line (`HTTP/1.1`), or of a status line.
    fn version(&self) -> &str {
        if self.start.starts_with("HTTP/") {
            self.start.split(' ').next().unwrap_or("")
        } else {
            self.start.rsplit(' ').next().unwrap_or("")
        }
    }

    /// Whether the sender wants the connection closed after this message.
    pub fn wants_close(&self) -> bool {
        if self.version().eq_ignore_ascii_case("HTTP/1.0") {
            !self.header_has_token("Connection", "keep-alive")
        } else {
            self.header_has_token("Connection", "close")
        }
    }

    /// Status code of a status line (0 if unparsable).
    pub fn status(&self) -> u16 {
        self.start.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn is_chunked(&self) -> bool {
        self.header_has_token("Transfer-Encoding", "chunked")
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        match self.header("Content-Length") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| invalid(format!("bad Content-Length {v:?}"))),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one CRLF- (or LF-) terminated line without its ending. `Ok(None)` at a clean end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_LINE {
            invalid("line too long".to_owned())
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a line")
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| invalid("line is not UTF-8".to_owned()))
}

/// Reads a message head. `Ok(None)` if the stream ends cleanly before the first byte (an idle keep-alive connection
/// being closed).
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    // RFC 9112 §2.2: ignore empty lines before a request line.
    let start = loop {
        match read_line(reader)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside the headers"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers".to_owned()));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid(format!("malformed header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head { start, headers }))
}

/// Reads (and decodes) the body of a request: chunked, `Content-Length`, or none.
pub(crate) fn read_request_body(reader: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    if head.is_chunked() {
        read_chunked(reader)
    } else if let Some(len) = head.content_length()? {
        read_exact_vec(reader, len)
    } else {
        Ok(Vec::new())
    }
}

/// Reads (and decodes) the body of a response to a request with method `request_method`: none for `HEAD`, 1xx, 204
/// and 304; chunked; `Content-Length`; otherwise everything up to the end of the stream.
pub(crate) fn read_response_body(reader: &mut impl BufRead, head: &Head, request_method: &str) -> io::Result<Vec<u8>> {
    let status = head.status();
    if request_method.eq_ignore_ascii_case("HEAD") || (100..200).contains(&status) || status == 204 || status == 304 {
        Ok(Vec::new())
    } else if head.is_chunked() {
        read_chunked(reader)
    } else if let Some(len) = head.content_length()? {
        read_exact_vec(reader, len)
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        Ok(body)
    }
}

fn read_exact_vec(reader: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let read = reader.by_ref().take(len as u64).read_to_end(&mut body)?;
    if read != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("body ended after {read} of {len} bytes")));
    }
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a chunked body");
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(eof)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailer section, up to an empty line.
            while !read_line(reader)?.ok_or_else(eof)?.is_empty() {}
            return Ok(body);
        }
        body.extend_from_slice(&read_exact_vec(reader, size)?);
        if !read_line(reader)?.ok_or_else(eof)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".to_owned()));
        }
    }
}

/// Writes a complete response with a `Content-Length` body. Adds `Connection: close` when `close` is set.
pub(crate) fn write_response(
    writer: &mut impl Write,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    writer.write_all(&bytes)?;
    writer.flush()
}

/// The open connections of a server, so that dropping the server can unblock the threads serving them.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl Connections {
    /// Registers a connection; returns its key for [`Connections::remove`].
    pub fn add(&self, stream: &TcpStream) -> io::Result<u64> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap().insert(key, stream.try_clone()?);
        Ok(key)
    }

    /// Forgets a connection whose serving thread has finished.
    pub fn remove(&self, key: u64) {
        self.open.lock().unwrap().remove(&key);
    }

    /// Shuts down every open connection: blocked reads return end-of-stream, writes fail.
    pub fn shutdown_all(&self) {
        for (_, stream) in self.open.lock().unwrap().drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A test server's thread-per-connection accept loop: each connection is served on a thread named
/// `name` by `serve`, registered in `connections` until it ends (an I/O error ends that
/// connection only); the loop returns at the first connection after `stopped` became true.
pub(crate) fn accept_loop<S: Send + Sync + 'static>(
    listener: TcpListener,
    shared: Arc<S>,
    name: &'static str,
    stopped: fn(&S) -> bool,
    connections: fn(&S) -> &Connections,
    serve: fn(&S, TcpStream) -> io::Result<()>,
) {
    for stream in listener.incoming() {
        if stopped(&shared) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(key) = connections(&shared).add(&stream) else { continue };
        let conn = Arc::clone(&shared);
        let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let _ = serve(&conn, stream);
            connections(&conn).remove(key);
        });
        if spawned.is_err() {
            connections(&shared).remove(key);
        }
    }
}

/// Stops a server whose stop flag is already set: wakes its [`accept_loop`] with a connection
/// of our own, waits for it, and unblocks every connection still open.
pub(crate) fn stop(address: SocketAddr, accept: &mut Option<JoinHandle<()>>, connections: &Connections) {
    let _ = TcpStream::connect(address);
    if let Some(accept) = accept.take() {
        let _ = accept.join();
    }
    connections.shutdown_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_content_length_and_chunked_requests_back_to_back() {
        let raw = "\r\nPOST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPUT /b HTTP/1.1\r\n\
                   transfer-encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        let mut reader = Cursor::new(raw.as_bytes());
        let first = read_head(&mut reader).unwrap().unwrap();
        assert_eq!((first.method(), first.path(), first.query()), ("POST", "/a", "x=1"));
        assert!(!first.wants_close());
        assert_eq!(read_request_body(&mut reader, &first).unwrap(), b"hello");
        let second = read_head(&mut reader).unwrap().unwrap();
        assert_eq!((second.method(), second.target(), second.query()), ("PUT", "/b", ""));
        assert!(second.wants_close());
        assert_eq!(read_request_body(&mut reader, &second).unwrap(), b"abcde");
        assert!(read_head(&mut reader).unwrap().is_none());
    }

    #[test]
    fn truncated_bodies_and_heads_are_errors() {
        let mut reader = Cursor::new(&b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort"[..]);
        let head = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(read_request_body(&mut reader, &head).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let mut reader = Cursor::new(&b"GET / HTTP/1.1\r\nHost: x\r\n"[..]);
        assert_eq!(read_head(&mut reader).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn response_bodies_follow_the_method_and_status() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        let head = read_head(&mut Cursor::new(&raw[..])).unwrap().unwrap();
        assert_eq!(head.status(), 200);
        assert!(read_response_body(&mut Cursor::new(&b""[..]), &head, "HEAD").unwrap().is_empty());
        let raw = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        let mut reader = Cursor::new(&raw[..]);
        let head = read_head(&mut reader).unwrap().unwrap();
        assert!(head.wants_close());
        assert_eq!(read_response_body(&mut reader, &head, "GET").unwrap(), b"until the end");
    }
}
