//! Reading a delivered log file as CloudTrail writes it: gzip (possibly multi-member) or plain
//! JSON, holding `{"Records":[ … ]}`, handed out **one record at a time**.
//!
//! The largest files CloudTrail delivers are ~50 MB gzip, ~500 MB of JSON. Parsing them into one
//! `serde_json::Value` tree would cost gigabytes; instead [`RecordReader`] scans the envelope
//! incrementally and yields each record's exact bytes, borrowed from a buffer that holds one record
//! plus a read-ahead chunk. Each record is then parsed on its own ([`crate::record`]), so a record
//! whose text is invalid (a raw control character, say) is quarantined alone while structurally
//! broken files (a missing brace, a truncated stream) stop with the byte offset of the fault.
//!
//! ```
//! use parquetrail_core::log_file::RecordReader;
//! let json = br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#;
//! let mut reader = RecordReader::new(&json[..]).unwrap();
//! let mut names = Vec::new();
//! while let Some(record) = reader.next_record().unwrap() {
//!     names.push(String::from_utf8(record.text.to_vec()).unwrap());
//! }
//! assert_eq!(names, [r#"{"eventName":"A"}"#, r#"{"eventName":"B"}"#]);
//! ```

use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError};

use flate2::bufread::GzDecoder;
use sha2::{Digest as _, Sha256};

pub(crate) const CHUNK: usize = 256 * 1024;
/// Inflated chunks the inflate thread may have ready ahead of the parser (4 MiB, whatever the
/// input). With two, one large file on two cores used 1.60–1.64 cores; with eight or sixteen,
/// 1.70: the parser, the inflate thread and the encoders share two cores unevenly, and a short
/// queue leaves the inflate thread waiting while the parser cannot run (`BENCHMARKS.md`, "One
/// large file on two cores").
pub(crate) const READ_AHEAD_CHUNKS: usize = 16;
/// Nesting levels whose brackets are matched by kind; deeper ones are only counted.
const MAX_DEPTH: usize = 512;

/// One record's bytes, exactly as written in the file.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'b> {
    /// The record's JSON text; empty when the record was [`oversized`](Self::oversized).
    pub text: &'b [u8],
    /// Byte offset of the record in the decompressed file.
    pub offset: u64,
    /// Position of the record in the `Records` array (0-based).
    pub index: usize,
    /// Set when the record is larger than the reader's limit
    /// ([`RecordReader::set_max_record_bytes`]): its bytes were hashed and dropped as they were
    /// read, never held, so a crafted file cannot make memory grow with one huge value.
    pub oversized: Option<Oversized>,
}

/// A record too large to hold: what identifies its bytes in the decompressed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// Its length in bytes (it spans `offset .. offset + len`).
    pub len: u64,
    /// SHA-256 of exactly those bytes.
    pub sha256: [u8; 32],
}

/// How far a scanned value reaches.
enum Scanned {
    /// The value is `len` bytes from `start`, all in the buffer.
    Whole(usize),
    /// The value was longer than the limit: it is consumed (`start` is past it) and only its
    /// length and hash are known.
    Oversized(Oversized),
}

/// The part of an oversized value already hashed and dropped.
struct Skip {
    len: u64,
    hasher: Sha256,
}

/// The longest key of the top-level object worth reading (CloudTrail's is `Records`).
const MAX_KEY_BYTES: usize = 4096;

/// Why a file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("I/O error after byte {offset} of the decompressed stream: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("malformed JSON at byte {offset}: {reason}")]
    Json { offset: u64, reason: String },
}

impl ReadError {
    pub fn offset(&self) -> u64 {
        match self {
            ReadError::Io { offset, .. } | ReadError::Json { offset, .. } => *offset,
        }
    }
}

/// What the top-level object held besides records; tells digests and Config files apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// A `Records` key was present.
    pub has_records: bool,
    /// Other top-level keys, in order (at most 64 kept).
    pub other_keys: Vec<String>,
    /// Concatenated JSON documents seen (1 for a normal file).
    pub documents: usize,
}

impl Envelope {
    /// Content-based kind: a CloudTrail digest or an AWS Config file lack `Records` but have
    /// tell-tale keys.
    pub fn content_kind(&self) -> ContentKind {
        let has = |k: &str| self.other_keys.iter().any(|o| o == k);
        if self.has_records {
            ContentKind::Records
        } else if has("digestPublicKeyFingerprint") || has("logFiles") && has("digestStartTime") {
            ContentKind::Digest
        } else if has("configurationItems") || has("configSnapshotId") || has("configurationItem") {
            ContentKind::Config
        } else {
            ContentKind::Other
        }
    }
}

/// What the content of a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Records,
    Digest,
    Config,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    ObjectFirst,
    ObjectNext,
    RecordsFirst,
    RecordsNext,
    AfterObject,
    Done,
}

/// Streams the records of one log file. See the module docs.
pub struct RecordReader<'r> {
    src: Box<dyn Read + Send + 'r>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Absolute offset of `buf[0]` in the decompressed stream.
    base: u64,
    eof: bool,
    state: State,
    pending: usize,
    index: usize,
    envelope: Envelope,
    gzip: bool,
    /// SHA-256 of every decompressed byte read so far (see [`RecordReader::content_sha256`]).
    hasher: Sha256,
    /// Set once decompression moved to a thread of its own ([`RecordReader::read_ahead`]): where
    /// that thread leaves the content's SHA-256 at the end of the stream.
    ahead_digest: Option<Arc<Mutex<Option<[u8; 32]>>>>,
    /// The largest value held in memory; see [`RecordReader::set_max_record_bytes`].
    max_record: usize,
}

/// Calls [`RecordReader::stop_read_ahead`] when dropped, so that a scope whose closure returns
/// early or panics does not wait forever for an inflate thread blocked on a full channel.
#[derive(Debug)]
pub struct ReadAheadGuard<'a, 'r>(pub &'a mut RecordReader<'r>);

impl Drop for ReadAheadGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.stop_read_ahead();
    }
}

/// The reading end of [`RecordReader::read_ahead`]: inflated chunks, in order.
struct ReadAhead {
    queue: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.queue.recv() {
                Ok(Ok(chunk)) => (self.chunk, self.pos) = (chunk, 0),
                Ok(Err(e)) => return Err(e),
                // The inflate thread finished: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The members of a gzip file one after another, as gzip(1) reads them. NUL bytes after the last
/// member (padding to a tape or transfer block) end the stream, as gzip(1) accepts them; any other
/// bytes there must start another member, or reading fails with the fault's offset.
struct GzipMembers<R: BufRead>(Option<GzDecoder<R>>);

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.0.as_mut() else { return Ok(0) };
            let n = member.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            // The member ended: what follows it?
            let mut rest = self.0.take().expect("a member").into_inner();
            let padded = match rest.fill_buf()? {
                [] => return Ok(0),
                [0, ..] => true,
                _ => false,
            };
            if !padded {
                self.0 = Some(GzDecoder::new(rest));
                continue;
            }
            loop {
                let buf = rest.fill_buf()?;
                if buf.is_empty() {
                    return Ok(0);
                }
                let zeros = buf.iter().take_while(|&&b| b == 0).count();
                if zeros < buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bytes other than NUL padding after the last gzip member",
                    ));
                }
                rest.consume(zeros);
            }
        }
    }
}

/// A reader that fails once with the error it holds, then ends.
struct Failed(Option<io::Error>);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

impl std::fmt::Debug for RecordReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("offset", &self.offset())
            .field("state", &self.state)
            .field("index", &self.index)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl<'r> RecordReader<'r> {
    /// Wraps raw object bytes; gzip is recognised by its magic number, so `.json.gz` files, plain
    /// `.json` files and gzip files without an extension all work.
    pub fn new(mut reader: impl Read + Send + 'r) -> io::Result<Self> {
        // Read the two magic bytes explicitly: a slow stream may return them one at a time.
        let mut head = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let gzip = got == 2 && head == [0x1f, 0x8b];
        let buffered = BufReader::with_capacity(CHUNK, io::Cursor::new(head[..got].to_vec()).chain(reader));
        let src: Box<dyn Read + Send + 'r> =
            if gzip { Box::new(GzipMembers(Some(GzDecoder::new(buffered)))) } else { Box::new(buffered) };
        Ok(RecordReader {
            src,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            state: State::Start,
            pending: 0,
            index: 0,
            envelope: Envelope::default(),
            gzip,
            hasher: Sha256::new(),
            ahead_digest: None,
            max_record: usize::MAX,
        })
    }

    /// Records (and other top-level values) longer than `bytes` are not held: they are hashed
    /// and dropped as they stream past, and come back as [`RawRecord::oversized`]. Memory then
    /// stays within about twice this bound whatever the file holds.
    pub fn set_max_record_bytes(&mut self, bytes: usize) {
        self.max_record = bytes.max(1);
    }

    /// The bytes the reader's buffer holds room for (what a bounded read keeps in memory).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Whether the object holds no bytes at all (a zero-byte object, skipped by the converter).
    pub fn is_empty_input(&mut self) -> bool {
        if self.base == 0 && self.end == 0 && !self.eof {
            let _ = self.fill();
        }
        self.base == 0 && self.end == 0 && self.eof && !self.gzip
    }

    /// Moves decompression to a thread of `scope` from here on, so that inflating the rest of a
    /// gzip file overlaps with parsing and encoding its records (a large file then keeps two
    /// cores busy). Inflated chunks come back in order through a channel holding at most 16
    /// (`READ_AHEAD_CHUNKS`, 4 MiB), so memory stays bounded; errors come back with their kind and
    /// offset unchanged. Does nothing for plain JSON, where there is nothing to inflate, or when
    /// already done.
    pub fn read_ahead<'scope>(&mut self, scope: &'scope std::thread::Scope<'scope, '_>)
    where
        'r: 'scope,
    {
        if !self.gzip || self.eof || self.ahead_digest.is_some() {
            return;
        }
        let (chunks, queue) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD_CHUNKS);
        let mut src = std::mem::replace(&mut self.src, Box::new(io::empty()));
        // The hash moves with the decoder: the thread hashes what it inflates, and leaves the
        // digest here before it ends (before the channel closes, which is how the end is seen).
        let mut hasher = std::mem::take(&mut self.hasher);
        let digest = Arc::clone(self.ahead_digest.insert(Arc::default()));
        let spawned = std::thread::Builder::new().name("inflate".into()).spawn_scoped(scope, move || {
            loop {
                let mut chunk = vec![0; CHUNK];
                let read = loop {
                    match src.read(&mut chunk) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                let (last, sent) = match read {
                    Ok(0) => {
                        *digest.lock().unwrap_or_else(PoisonError::into_inner) = Some(hasher.finalize().into());
                        return;
                    }
                    Ok(n) => {
                        chunk.truncate(n);
                        hasher.update(&chunk);
                        (false, Ok(chunk))
                    }
                    Err(e) => (true, Err(e)),
                };
                // A send fails when the reader was dropped (the conversion stopped early).
                if chunks.send(sent).is_err() || last {
                    return;
                }
            }
        });
        self.src = match spawned {
            Ok(_) => Box::new(ReadAhead { queue, chunk: Vec::new(), pos: 0 }),
            // No thread to be had (the closure, and the stream with it, is gone): a retryable I/O
            // error at the current offset, not a corrupt file.
            Err(e) => Box::new(Failed(Some(io::Error::new(e.kind(), format!("cannot start the inflate thread: {e}"))))),
        };
    }

    /// Ends [`RecordReader::read_ahead`]'s thread: drops the receiving end, so a thread blocked on a
    /// full channel returns, which the scope needs before it can end. Reading on afterwards fails
    /// with an error rather than seeing a silently shortened stream. Call it before the scope
    /// ends, even when reading stopped early; [`ReadAheadGuard`] does so on unwinding too.
    pub fn stop_read_ahead(&mut self) {
        if self.ahead_digest.is_some() {
            self.src = if self.eof {
                Box::new(io::empty())
            } else {
                Box::new(Failed(Some(io::Error::other("the inflate thread was stopped"))))
            };
        }
    }

    /// Decompressed bytes consumed so far (all of them once [`Self::next_record`] returned `None`).
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// SHA-256 of the decompressed content, once the whole stream was read (after
    /// [`Self::next_record`] returned `None`); `None` before.
    ///
    /// This is the hash CloudTrail signs in its digest files (`logFiles[].hashValue` is the
    /// SHA-256 of each log file's *uncompressed* bytes), so an archive can be reconciled against
    /// the digests without reading the sources again. It is computed on the bytes as they are
    /// inflated — every byte exactly once, with no extra pass; after [`Self::read_ahead`], on the
    /// inflate thread, which keeps it off the thread that parses. sha2 picks the
    /// CPU's SHA extensions at run time (SHA-NI on x86-64, the ARMv8 crypto extensions on
    /// Graviton), where hashing runs several times faster than inflating; without them it costs
    /// roughly as much as the gzip inflate itself.
    pub fn content_sha256(&self) -> Option<[u8; 32]> {
        if !self.eof {
            return None;
        }
        if let Some(digest) = &self.ahead_digest {
            return *digest.lock().unwrap_or_else(PoisonError::into_inner);
        }
        Some(self.hasher.clone().finalize().into())
    }

    /// The envelope seen so far; complete once [`Self::next_record`] returned `None`.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The next record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, ReadError> {
        self.start += std::mem::take(&mut self.pending);
        loop {
            match self.state {
                State::Start => {
                    let Some(c) = self.peek_non_ws()? else {
                        if self.envelope.documents == 0 {
                            return Err(self.json_error("the file holds no JSON (empty after decompression)"));
                        }
                        self.state = State::Done;
                        continue;
                    };
                    if c != b'{' {
                        return Err(self.json_error(&format!(
                            "expected a JSON object {{\"Records\":[…]}}, found {}",
                            describe(c)
                        )));
                    }
                    self.start += 1;
                    self.envelope.documents += 1;
                    self.state = State::ObjectFirst;
                }
                State::ObjectFirst | State::ObjectNext => {
                    let mut c = self.expect_more("inside the top-level object")?;
                    if c == b'}' {
                        self.start += 1;
                        self.state = State::AfterObject;
                        continue;
                    }
                    if self.state == State::ObjectNext {
                        if c != b',' {
                            return Err(self.json_error(&format!(
                                "expected ',' or '}}' after a top-level value, found {}",
                                describe(c)
                            )));
                        }
                        self.start += 1;
                        c = self.expect_more("inside the top-level object")?;
                    }
                    if c != b'"' {
                        return Err(self.json_error(&format!("expected a key, found {}", describe(c))));
                    }
                    let Scanned::Whole(len) = self.scan_value(MAX_KEY_BYTES)? else {
                        return Err(self.json_error(&format!("a key longer than {MAX_KEY_BYTES} bytes")));
                    };
                    let key: String = serde_json::from_slice(&self.buf[self.start..self.start + len])
                        .map_err(|e| self.json_error(&format!("invalid key: {e}")))?;
                    self.start += len;
                    let c = self.expect_more("after a key")?;
                    if c != b':' {
                        return Err(self.json_error(&format!("expected ':' after key {key:?}, found {}", describe(c))));
                    }
                    self.start += 1;
                    let c = self.expect_more("after a key")?;
                    if key == "Records" && c == b'[' {
                        self.envelope.has_records = true;
                        self.start += 1;
                        self.state = State::RecordsFirst;
                    } else {
                        if key == "Records" && !self.starts_with_null() {
                            return Err(
                                self.json_error(&format!("\"Records\" is not an array (found {})", describe(c)))
                            );
                        }
                        if self.envelope.other_keys.len() < 64 {
                            self.envelope.other_keys.push(key);
                        }
                        // Not a record: skipped, also when it is larger than a record may be.
                        if let Scanned::Whole(len) = self.scan_value(self.max_record)? {
                            self.start += len;
                        }
                        self.state = State::ObjectNext;
                    }
                }
                State::RecordsFirst | State::RecordsNext => {
                    let mut c = self.expect_more("inside \"Records\"")?;
                    if c == b']' {
                        self.start += 1;
                        self.state = State::ObjectNext;
                        continue;
                    }
                    if self.state == State::RecordsNext {
                        if c != b',' {
                            return Err(
                                self.json_error(&format!("expected ',' or ']' between records, found {}", describe(c)))
                            );
                        }
                        self.start += 1;
                        c = self.expect_more("inside \"Records\"")?;
                    }
                    let _ = c;
                    let offset = self.offset();
                    let scanned = self.scan_value(self.max_record)?;
                    self.state = State::RecordsNext;
                    let index = self.index;
                    self.index += 1;
                    return Ok(Some(match scanned {
                        Scanned::Whole(len) => {
                            self.pending = len;
                            RawRecord { text: &self.buf[self.start..self.start + len], offset, index, oversized: None }
                        }
                        Scanned::Oversized(o) => RawRecord { text: &[], offset, index, oversized: Some(o) },
                    }));
                }
                State::AfterObject => match self.peek_non_ws()? {
                    // Concatenated documents (`cat a.json b.json`) are read as one stream.
                    Some(b'{') => self.state = State::Start,
                    Some(c) => {
                        return Err(
                            self.json_error(&format!("unexpected {} after the end of the JSON object", describe(c)))
                        );
                    }
                    None => self.state = State::Done,
                },
                State::Done => return Ok(None),
            }
        }
    }

    fn json_error(&self, reason: &str) -> ReadError {
        ReadError::Json { offset: self.offset(), reason: reason.to_string() }
    }

    fn starts_with_null(&mut self) -> bool {
        let _ = self.ensure(4);
        self.buf[self.start..self.end].starts_with(b"null")
    }

    fn expect_more(&mut self, context: &str) -> Result<u8, ReadError> {
        match self.peek_non_ws()? {
            Some(c) => Ok(c),
            None => Err(self.json_error(&format!("unexpected end of file {context} (truncated file?)"))),
        }
    }

    /// Skips JSON whitespace (and a byte-order mark at the very start); the next byte, unconsumed.
    fn peek_non_ws(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            while self.start < self.end {
                match self.buf[self.start] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.start += 1,
                    0xEF if self.base == 0 && self.start == 0 => {
                        self.ensure(3)?;
                        if self.buf[..self.end].starts_with(b"\xEF\xBB\xBF") {
                            self.start += 3;
                        } else {
                            return Ok(Some(0xEF));
                        }
                    }
                    c => return Ok(Some(c)),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Makes at least `n` bytes available after `start`, unless the stream ends first.
    fn ensure(&mut self, n: usize) -> Result<(), ReadError> {
        while self.end - self.start < n {
            if !self.fill()? {
                break;
            }
        }
        Ok(())
    }

    /// Reads more input, compacting or growing the buffer; false at end of stream.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 && (self.start == self.end || self.start >= self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    if self.ahead_digest.is_none() {
                        self.hasher.update(&self.buf[self.end..self.end + n]);
                    }
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(ReadError::Io { offset: self.base + self.end as u64, source }),
            }
        }
    }

    /// More input for a value scanned from `start` to `i` (exclusive): the new position of `i`
    /// (the buffer may have moved), and false at the end of the stream. Past `limit` bytes the
    /// value's bytes are hashed into `skip` and dropped from the buffer, which so stays bounded.
    fn refill(&mut self, i: usize, limit: usize, skip: &mut Option<Skip>) -> Result<(usize, bool), ReadError> {
        let held = i - self.start;
        if skip.is_some() || held > limit {
            let s = skip.get_or_insert_with(|| Skip { len: 0, hasher: Sha256::new() });
            s.hasher.update(&self.buf[self.start..i]);
            s.len += held as u64;
            self.start = i;
        }
        let rel = i - self.start;
        let more = self.fill()?;
        Ok((self.start + rel, more))
    }

    /// The value that ends at `i` (exclusive): whole, or, past `limit`, consumed and identified.
    fn scanned(&mut self, i: usize, limit: usize, skip: Option<Skip>) -> Scanned {
        let len = i - self.start;
        if skip.is_none() && len <= limit {
            return Scanned::Whole(len);
        }
        let mut s = skip.unwrap_or_else(|| Skip { len: 0, hasher: Sha256::new() });
        s.hasher.update(&self.buf[self.start..i]);
        s.len += len as u64;
        self.start = i;
        Scanned::Oversized(Oversized { len: s.len, sha256: s.hasher.finalize().into() })
    }

    /// The JSON value starting at `start` (which is not whitespace). Only the structure is
    /// checked here (strings, brackets); the value's own parser validates the rest.
    fn scan_value(&mut self, limit: usize) -> Result<Scanned, ReadError> {
        let first = self.buf[self.start];
        if !matches!(first, b'{' | b'[' | b'"') {
            return self.scan_scalar(limit);
        }
        let mut stack: Vec<u8> = Vec::with_capacity(16);
        // Levels below MAX_DEPTH are counted, not stacked: memory stays bounded, and such a
        // record still ends where its brackets balance, so it is quarantined (no JSON reader
        // we use parses it) and the file goes on.
        let mut deeper: u64 = 0;
        let mut skip = None;
        let mut i = self.start; // absolute index into buf; re-based after fills
        let mut in_string = false;
        loop {
            if i >= self.end {
                let (next, more) = self.refill(i, limit, &mut skip)?;
                if !more {
                    let read = (next - self.start) as u64 + skip.as_ref().map_or(0, |s| s.len);
                    return Err(self.json_error(&format!(
                        "unexpected end of file inside a value that starts here ({read} bytes read of it; truncated file?)"
                    )));
                }
                i = next;
                continue;
            }
            if in_string {
                match memchr::memchr2(b'"', b'\\', &self.buf[i..self.end]) {
                    None => i = self.end,
                    Some(j) => {
                        let at = i + j;
                        if self.buf[at] == b'\\' {
                            if at + 1 >= self.end {
                                // The escaped byte is not read yet: come back to the backslash.
                                let (next, more) = self.refill(at, limit, &mut skip)?;
                                if !more {
                                    return Err(self.json_error("unexpected end of file inside a string"));
                                }
                                i = next;
                                continue;
                            }
                            i = at + 2;
                        } else {
                            in_string = false;
                            i = at + 1;
                            if stack.is_empty() {
                                return Ok(self.scanned(i, limit, skip));
                            }
                        }
                    }
                }
                continue;
            }
            let b = self.buf[i];
            i += 1;
            match b {
                b'"' => in_string = true,
                b'{' | b'[' if stack.len() >= MAX_DEPTH => deeper += 1,
                b'}' | b']' if deeper > 0 => deeper -= 1,
                b'{' => stack.push(b'}'),
                b'[' => stack.push(b']'),
                b'}' | b']' => {
                    if stack.pop() != Some(b) {
                        let offset = self.base + (i - 1) as u64;
                        return Err(ReadError::Json {
                            offset,
                            reason: format!(
                                "mismatched '{}' (the value that starts at byte {} is not closed properly)",
                                b as char,
                                self.offset()
                            ),
                        });
                    }
                    if stack.is_empty() {
                        return Ok(self.scanned(i, limit, skip));
                    }
                }
                _ => {}
            }
        }
    }

    fn scan_scalar(&mut self, limit: usize) -> Result<Scanned, ReadError> {
        let mut skip = None;
        let mut i = self.start;
        loop {
            if i >= self.end {
                let (next, more) = self.refill(i, limit, &mut skip)?;
                if !more {
                    return Ok(self.scanned(next, limit, skip));
                }
                i = next;
                continue;
            }
            match self.buf[i] {
                b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' => return Ok(self.scanned(i, limit, skip)),
                b'{' | b'[' | b'"' | b':' => {
                    return Err(ReadError::Json {
                        offset: self.base + i as u64,
                        reason: format!("unexpected {} in a value", describe(self.buf[i])),
                    });
                }
                _ => i += 1,
            }
        }
    }
}

fn describe(c: u8) -> String {
    if c.is_ascii_graphic() { format!("'{}'", c as char) } else { format!("byte 0x{c:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    /// A reader that hands out at most `n` bytes per call, to drive every refill path.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(input: impl Read + Send) -> Result<(Vec<String>, Envelope), ReadError> {
        let mut r = RecordReader::new(input).unwrap();
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            assert_eq!(rec.index, out.len());
            out.push(String::from_utf8(rec.text.to_vec()).unwrap());
        }
        Ok((out, r.envelope().clone()))
    }

    const TRICKY: &str = r#"  {"Records" : [ {"a":"]}\"\\","b":[1,{"c":"{["}],"d":-1.5e3} ,
        {"e":null} , "not an object", 7, [1,2] ] , "extra": {"x":[1]} }  "#;

    #[test]
    fn splits_records_exactly_at_every_read_size() {
        let want = vec![
            r#"{"a":"]}\"\\","b":[1,{"c":"{["}],"d":-1.5e3}"#.to_string(),
            r#"{"e":null}"#.to_string(),
            r#""not an object""#.to_string(),
            "7".to_string(),
            "[1,2]".to_string(),
        ];
        for size in [1, 2, 3, 5, 7, 64, 1 << 20] {
            let (got, env) = read_all(Trickle(TRICKY.as_bytes(), size)).unwrap();
            assert_eq!(got, want, "read size {size}");
            assert!(env.has_records);
            assert_eq!(env.other_keys, ["extra"]);
            let gz = gzip(TRICKY.as_bytes());
            let (got, _) = read_all(Trickle(&gz, size)).unwrap();
            assert_eq!(got, want, "gzip, read size {size}");
        }
    }

    #[test]
    fn multi_member_gzip_split_inside_a_record() {
        let json = br#"{"Records":[{"eventName":"One"},{"eventName":"Two"}]}"#;
        let mut gz = gzip(&json[..20]);
        gz.extend(gzip(&json[20..]));
        let (got, _) = read_all(&gz[..]).unwrap();
        assert_eq!(got, [r#"{"eventName":"One"}"#, r#"{"eventName":"Two"}"#]);
    }

    #[test]
    fn records_larger_than_the_buffer() {
        let big = "x".repeat(3 * CHUNK + 17);
        let json = format!(r#"{{"Records":[{{"a":"{big}"}},{{"b":1}}]}}"#);
        let (got, _) = read_all(Trickle(json.as_bytes(), 4096)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), big.len() + 8);
        assert_eq!(got[1], r#"{"b":1}"#);
    }

    #[test]
    fn offsets_point_at_records_and_faults() {
        let json = br#"{"Records":[{"a":1}, {"b":2}]}"#;
        let mut r = RecordReader::new(&json[..]).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap().offset, 12);
        assert_eq!(r.next_record().unwrap().unwrap().offset, 21);
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.offset(), json.len() as u64);

        let cases: &[(&[u8], u64, &str)] = &[
            // A missing closing brace: detected where the brackets stop matching.
            (br#"{"Records":[{"a":{"b":1},{"c":2}]}"#, 32, "mismatched"),
            (br#"{"Records":[{"a":1}"#, 19, "end of file"),
            (br#"{"Records":[{"a":"unterminated"#, 12, "end of file"),
            (br#"{"Records":[{"a":1} {"b":2}]}"#, 20, "expected ','"),
            (br#"{"Records":{"a":1}}"#, 11, "not an array"),
            (br#"[{"a":1}]"#, 0, "expected a JSON object"),
            (br#"{"Records":[]} x"#, 15, "after the end"),
            (b"", 0, "no JSON"),
            (b"  \n ", 4, "no JSON"),
        ];
        for (input, offset, reason) in cases {
            let err = read_all(&input[..]).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.offset(), *offset, "{} -> {text}", String::from_utf8_lossy(input));
            assert!(text.contains(reason), "{} -> {text}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn corrupt_gzip_is_an_io_error_with_offset() {
        let json = format!(r#"{{"Records":[{}]}}"#, vec![r#"{"a":"0123456789"}"#; 5000].join(","));
        let mut gz = gzip(json.as_bytes());
        let mid = gz.len() / 2;
        gz.truncate(mid);
        let err = read_all(&gz[..]).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. } | ReadError::Json { .. }), "{err}");
        let mut gz = gzip(json.as_bytes());
        let at = gz.len() / 3;
        gz[at] ^= 0xff;
        gz[at + 1] ^= 0xff;
        let err = read_all(&gz[..]).unwrap_err();
        assert!(err.offset() < json.len() as u64, "{err}");
    }

    /// gzip(1) accepts NUL padding after the last member (tape blocks, uploaders padding to a
    /// block size), so we do too; anything else after a member must be another member.
    #[test]
    fn nul_padding_after_the_last_member_ends_the_stream() {
        let json = br#"{"Records":[{"a":1},{"b":2}]}"#;
        for pad in [1, 511, CHUNK + 3] {
            for input in
                [[gzip(json), vec![0; pad]].concat(), [gzip(&json[..12]), gzip(&json[12..]), vec![0; pad]].concat()]
            {
                let (got, _) = read_all(Trickle(&input, 1000)).unwrap_or_else(|e| panic!("{pad}: {e}"));
                assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#], "{pad}");
            }
        }
        for tail in [&b"\0\0junk"[..], b"junk", b"\x1f"] {
            let input = [gzip(json), tail.to_vec()].concat();
            let err = read_all(&input[..]).unwrap_err();
            assert!(matches!(err, ReadError::Io { .. }), "{tail:?}: {err}");
        }
    }

    #[test]
    fn content_kinds() {
        let digest = br#"{"awsAccountId":"1","digestStartTime":"t","digestPublicKeyFingerprint":"f","logFiles":[]}"#;
        let (records, env) = read_all(&digest[..]).unwrap();
        assert!(records.is_empty());
        assert_eq!(env.content_kind(), ContentKind::Digest);
        let config = br#"{"fileVersion":"1.0","configSnapshotId":"x","configurationItems":[{"a":1}]}"#;
        assert_eq!(read_all(&config[..]).unwrap().1.content_kind(), ContentKind::Config);
        let other = br#"{"hello":"world"}"#;
        assert_eq!(read_all(&other[..]).unwrap().1.content_kind(), ContentKind::Other);
        let null_records = br#"{"Records":null}"#;
        assert_eq!(read_all(&null_records[..]).unwrap().1.content_kind(), ContentKind::Other);
        let bom = b"\xEF\xBB\xBF{\"Records\":[{\"a\":1}]}";
        assert_eq!(read_all(&bom[..]).unwrap().0, [r#"{"a":1}"#]);
        let two = br#"{"Records":[{"a":1}]}{"Records":[{"b":2}]}"#;
        let (records, env) = read_all(&two[..]).unwrap();
        assert_eq!(records, [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(env.documents, 2);
    }

    /// The records, hash and error of a gzip stream are the same whether it is inflated on the
    /// reading thread or, from any record on, by [`RecordReader::read_ahead`]'s thread; a reader
    /// stopped early fails instead of ending.
    #[test]
    fn read_ahead_changes_nothing_but_the_thread() {
        fn read(input: &[u8], ahead_from: Option<usize>) -> (Vec<String>, Result<[u8; 32], String>) {
            std::thread::scope(|scope| {
                let mut r = RecordReader::new(Trickle(input, 4096)).unwrap();
                let guard = ReadAheadGuard(&mut r);
                let mut out = Vec::new();
                loop {
                    if ahead_from.is_some_and(|n| out.len() >= n) {
                        guard.0.read_ahead(scope);
                    }
                    match guard.0.next_record() {
                        Ok(Some(rec)) => out.push(String::from_utf8(rec.text.to_vec()).unwrap()),
                        Ok(None) => return (out, Ok(guard.0.content_sha256().unwrap())),
                        Err(e) => return (out, Err(e.to_string())),
                    }
                }
            })
        }
        let records: Vec<String> =
            (0..3000).map(|i| format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(i % 300))).collect();
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let (a, b) = json.as_bytes().split_at(json.len() / 2);
        let two_members = [gzip(a), gzip(b)].concat();
        let truncated = &two_members[..two_members.len() - 5000];
        for input in [&two_members[..], truncated] {
            let inline = read(input, None);
            for from in [0, 1, 1000, 2999] {
                assert_eq!(read(input, Some(from)), inline, "read-ahead from record {from}");
            }
        }
        assert_eq!(read(&two_members, None).0, records);
        assert!(read(truncated, Some(0)).1.is_err());

        let (got, res) = std::thread::scope(|scope| {
            let mut r = RecordReader::new(&two_members[..]).unwrap();
            r.read_ahead(scope);
            let first = r.next_record().unwrap().unwrap().text.to_vec();
            r.stop_read_ahead();
            let mut rest = 0;
            let res = loop {
                match r.next_record() {
                    Ok(Some(_)) => rest += 1,
                    Ok(None) => break Ok(rest),
                    Err(e) => break Err(e.to_string()),
                }
            };
            (first, res)
        });
        assert_eq!(String::from_utf8(got).unwrap(), records[0]);
        let error = res.expect_err("a stopped read-ahead does not pass for the end of the file");
        assert!(error.contains("stopped"), "{error}");
    }
}
