//! The one error type of the core, with the context an operator needs to act on it, the cause as
//! the library that failed reported it, and whether trying again can help.

use std::error::Error as StdError;
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
    #[error("{key}: cannot encode rows for {path}: {source}")]
    Encode {
        key: String,
        path: String,
        #[source]
        source: DataError,
    },
    /// Reading an archive's Parquet file failed.
    #[error("{path}: cannot read Parquet: {source}")]
    Archive {
        path: String,
        #[source]
        source: DataError,
    },
}

/// Why Arrow or Parquet data could not be made or read: the library's own error, kept whole, or
/// the model's check of a shape the libraries accepted.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Rows to or from Arrow arrays through their serde model.
    #[error(transparent)]
    Rows(#[from] serde_arrow::Error),
    /// The model's own check failed: data of a shape the libraries accept but the model does not
    /// read or write (a missing or mistyped column, a footer shorter than it says), or a writer
    /// used after it stopped.
    #[error("{0}")]
    Model(String),
}

impl DataError {
    /// What the model does not accept, described.
    pub fn model(reason: impl Into<String>) -> Self {
        DataError::Model(reason.into())
    }
}

impl Error {
    /// Whether retrying the same input could succeed. Content that cannot be parsed or encoded
    /// never will; a read or a write may, unless the storage refused the request itself (see
    /// [`io_retryable`]): a name it cannot take is refused again on every retry, and retrying it
    /// would hold the object (and its queue) forever.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Json { .. } | Error::Encode { .. } | Error::Archive { .. } => false,
            Error::Read { source, .. } => {
                !matches!(source.kind(), io::ErrorKind::UnexpectedEof) && io_retryable(source)
            }
            Error::Write { source, .. } => io_retryable(source),
        }
    }
}

/// Whether an I/O failure may pass on a retry. Failures of kind `InvalidInput`, `InvalidData`,
/// `InvalidFilename` or `Unsupported` will not: the request or its data is refused as such. An
/// error wrapping another (an adapter's storage error, a copy kept for later) is permanent when any
/// I/O error along the chain is; storage adapters give their permanent failures one of those
/// kinds. Everything else (throttling, timeouts, a full disk, missing permissions an operator can
/// grant) is worth retrying.
pub fn io_retryable(error: &io::Error) -> bool {
    let permanent = |kind| {
        matches!(
            kind,
            io::ErrorKind::InvalidInput
                | io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidFilename
                | io::ErrorKind::Unsupported
        )
    };
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        next = match e.downcast_ref::<io::Error>() {
            Some(io) if permanent(io.kind()) => return false,
            // `io::Error::source` skips the error it wraps; the wrapped one itself is what counts.
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    true
}

impl crate::encode::OutputError {
    /// The core's error for an output of `key` at `path`: a sink failure stays a [`Error::Write`]
    /// (retryable as its I/O error is), whatever layer reported it.
    pub fn into_error(self, key: &str, path: &str) -> Error {
        match self {
            crate::encode::OutputError::Sink(source) => Error::Write { key: key.into(), path: path.into(), source },
            crate::encode::OutputError::Encode(source) => Error::Encode { key: key.into(), path: path.into(), source },
        }
    }
}

/// A name or setting that is none of those accepted, as `FromStr` impls (and so command-line
/// flags and environment variables) report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} (expected {expected})")]
pub struct UnknownValue {
    /// What was being named: `compression`, `event category`, …
    pub what: &'static str,
    pub given: String,
    /// The values accepted.
    pub expected: &'static str,
}

impl UnknownValue {
    pub fn new(what: &'static str, given: impl Into<String>, expected: &'static str) -> Self {
        UnknownValue { what, given: given.into(), expected }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of I/O failure a sink or a source reports, alone and wrapped, with the verdict
    /// its meaning implies (not what the code happens to do).
    #[test]
    fn retryability_follows_the_io_failure() {
        #[derive(Debug, thiserror::Error)]
        #[error("storage: {0}")]
        struct Adapter(#[source] io::Error);
        let kinds = [
            (io::ErrorKind::Other, true),
            (io::ErrorKind::TimedOut, true),
            (io::ErrorKind::PermissionDenied, true),
            (io::ErrorKind::StorageFull, true),
            (io::ErrorKind::NotFound, true),
            (io::ErrorKind::InvalidInput, false),
            (io::ErrorKind::InvalidData, false),
            (io::ErrorKind::InvalidFilename, false),
            (io::ErrorKind::Unsupported, false),
        ];
        for (kind, retryable) in kinds {
            let plain = io::Error::new(kind, "x");
            assert_eq!(io_retryable(&plain), retryable, "{kind:?}");
            // Wrapped under a kind that says nothing (as a writer's copy of the sink's error is).
            let wrapped = io::Error::other(Adapter(io::Error::new(kind, "x")));
            assert_eq!(io_retryable(&wrapped), retryable, "wrapped {kind:?}");
            let nested = io::Error::other(io::Error::new(kind, "x"));
            assert_eq!(io_retryable(&nested), retryable, "nested {kind:?}");
            let write = Error::Write { key: "k".into(), path: "p".into(), source: io::Error::new(kind, "x") };
            assert_eq!(write.retryable(), retryable, "write {kind:?}");
        }
        let eof = Error::Read { key: "k".into(), offset: 3, source: io::ErrorKind::UnexpectedEof.into() };
        assert!(!eof.retryable(), "a truncated file stays truncated");
        let json = Error::Json { key: "k".into(), offset: 0, reason: "x".into() };
        assert!(!json.retryable());
    }

    /// The Parquet or Arrow error stays reachable as the source, not only as text.
    #[test]
    fn library_errors_stay_typed() {
        let parquet = parquet::errors::ParquetError::General("bad footer".into());
        let error = Error::Archive { path: "a.parquet".into(), source: parquet.into() };
        assert_eq!(error.to_string(), "a.parquet: cannot read Parquet: Parquet error: bad footer");
        let source = error.source().and_then(|s| s.downcast_ref::<DataError>());
        assert!(
            matches!(source, Some(DataError::Parquet(parquet::errors::ParquetError::General(m))) if m == "bad footer")
        );
        assert!(!error.retryable());
        let arrow = arrow_schema::ArrowError::SchemaError("no column".into());
        let error = Error::Encode { key: "k".into(), path: "p".into(), source: arrow.into() };
        let source = error.source().and_then(|s| s.downcast_ref::<DataError>());
        assert!(matches!(source, Some(DataError::Arrow(arrow_schema::ArrowError::SchemaError(_)))), "{error:?}");
    }
}
