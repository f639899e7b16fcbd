//! Where outputs go: a tiny trait the adapters implement (local disk in the CLI, S3 in the Lambda),
//! and an in-memory sink for tests.
//!
//! An output is written through [`SinkFile`] and becomes visible only on
//! [`SinkFile::commit`]; dropping it uncommitted discards it. The converter commits a file's outputs
//! only after the whole source file was read, so a file that fails halfway leaves nothing behind.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// One output being written.
pub trait SinkFile: Write + Send {
    /// Makes the output visible at its path (replacing any previous object there).
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A place outputs are written to, by relative path (`events/account=…/….parquet`).
pub trait Sink: Sync {
    fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>>;
}

/// Keeps outputs in memory (tests, and callers that upload them themselves).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemorySink {
    /// Paths of the committed outputs, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.files.lock().expect("sink lock").keys().cloned().collect()
    }

    /// The bytes of one committed output.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.files.lock().expect("sink lock").get(path).cloned()
    }

    /// All committed outputs.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.files.lock().expect("sink lock").clone()
    }
}

struct MemoryFile {
    path: String,
    data: Vec<u8>,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Write for MemoryFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SinkFile for MemoryFile {
    fn commit(self: Box<Self>) -> io::Result<()> {
        let MemoryFile { path, data, files } = *self;
        files.lock().expect("sink lock").insert(path, data);
        Ok(())
    }
}

impl Sink for MemorySink {
    fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>> {
        Ok(Box::new(MemoryFile { path: path.to_string(), data: Vec::new(), files: self.files.clone() }))
    }
}
