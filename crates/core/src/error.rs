//! The one error type of the core, with the context an operator needs to act on it.

use std::io;

/// What went wrong converting one object. Every variant names the object (its key) so that a
/// message read in a log or a summary is actionable on its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes could not be read or inflated (truncated or corrupt gzip, I/O failure).
    #[error("{key}: cannot read the log file at byte {offset} of its JSON: {source}")]
    Read {
        key: String,
        /// Offset in the decompressed JSON stream where reading stopped.
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The JSON structure of the file is broken, so record boundaries cannot be trusted.
    #[error("{key}: malformed JSON at byte {offset} of the decompressed file: {reason}")]
    Json { key: String, offset: u64, reason: String },
    /// Writing an output object failed.
    #[error("{key}: cannot write output {path}: {source}")]
    Write {
        key: String,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Encoding a batch of rows to Arrow or Parquet failed.
    #[error("{key}: cannot encode rows for {path}: {reason}")]
    Encode { key: String, path: String, reason: String },
    /// Reading an archive's Parquet file failed.
    #[error("{path}: cannot read Parquet: {reason}")]
    Archive { path: String, reason: String },
}

impl Error {
    /// Whether retrying the same input could succeed (I/O) or never will (corrupt content).
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Json { .. } | Error::Encode { .. } | Error::Archive { .. } => true,
            Error::Read { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
            ),
            Error::Write { .. } => false,
        }
    }
}

impl crate::encode::OutputError {
    /// The core's error for an output of `key` at `path`: a sink failure stays a [`Error::Write`]
    /// (retryable), whatever layer reported it.
    pub fn into_error(self, key: &str, path: &str) -> Error {
        match self {
            crate::encode::OutputError::Sink(source) => Error::Write { key: key.into(), path: path.into(), source },
            crate::encode::OutputError::Encode(reason) => Error::Encode { key: key.into(), path: path.into(), reason },
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
