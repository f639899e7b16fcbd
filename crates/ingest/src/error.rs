//! The one error type of the ingest crate: what failed for one object, the cause as typed as the
//! layer below reported it, and the one verdict — [`Error::retryable`] — that the Lambda, the CLI
//! and backfill reports all act on.

use crate::storage::{ErrorKind, StorageError};

/// Why one object was not converted (and published, and recorded).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object is not in its storage (deleted since it was announced, or never written).
    #[error("{location}/{key}: object not found (deleted since announced?): {source}")]
    NotFound {
        /// Where it was looked for: `s3://bucket` or a directory.
        location: String,
        key: String,
        #[source]
        source: StorageError,
    },
    /// A storage request failed (its message names the object).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A local file could not be opened.
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The core could not read the object or write its outputs.
    #[error(transparent)]
    Convert(#[from] parquetrail_core::Error),
    /// The conversion's blocking task did not finish (the runtime shut down under it).
    #[error("{key}: conversion task failed: {source}")]
    Task {
        key: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The object could not be converted, and its quarantine marker could not be written either.
    #[error("{key}: quarantining it: {source}")]
    Quarantine {
        key: String,
        #[source]
        source: Box<Error>,
    },
    /// The outputs are written but could not be listed in their partitions' manifests.
    #[error("{key}: listing outputs in the manifest: {source}")]
    Publish {
        key: String,
        #[source]
        source: StorageError,
    },
    /// The outputs are written and listed, but what the archive records of them (`what`: the
    /// ledger line, the shaping rules) could not be.
    #[error("outputs written, but {what} could not be: {source}")]
    Record {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    /// The object was still converting when the invocation had to answer; nothing of it is
    /// visible, and it is redone on redelivery.
    #[error("{uri}: not finished before the invocation's deadline (after {seconds:.1} s); it will be retried")]
    Deadline { uri: String, seconds: f64 },
}

impl Error {
    /// Whether the same object may succeed on a later attempt: throttling, 5xx, timeouts, a full
    /// disk, missing permissions (an operator grants them; nothing is dropped meanwhile), a lost
    /// race, a deadline. Not: an object that is gone, a request the storage refuses as such (a
    /// key too long, an invalid argument), content the core cannot read or encode.
    pub fn retryable(&self) -> bool {
        match self {
            Error::NotFound { .. } => false,
            Error::Storage(e) | Error::Publish { source: e, .. } | Error::Record { source: e, .. } => {
                storage_retryable(e)
            }
            Error::File { source, .. } => parquetrail_core::io_retryable(source),
            Error::Convert(e) => e.retryable(),
            Error::Quarantine { source, .. } => source.retryable(),
            Error::Task { .. } | Error::Deadline { .. } => true,
        }
    }
}

/// A storage failure worth retrying: a retryable one, or a conditional write that lost a race
/// (the next attempt reads again and decides again).
pub fn storage_retryable(e: &StorageError) -> bool {
    matches!(e.kind, ErrorKind::Retryable | ErrorKind::Conflict)
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each storage verdict, in every variant that carries one, and the core's verdict passed on.
    #[test]
    fn retryability_follows_the_cause() {
        let storage = |kind| StorageError::new(kind, "s3://b/k: x");
        for (kind, retryable) in [
            (ErrorKind::Retryable, true),
            (ErrorKind::Conflict, true),
            (ErrorKind::Permanent, false),
            (ErrorKind::NotFound, false),
        ] {
            assert_eq!(Error::Storage(storage(kind)).retryable(), retryable, "{kind:?}");
            let publish = Error::Publish { key: "k".into(), source: storage(kind) };
            assert_eq!(publish.retryable(), retryable, "publish {kind:?}");
            let record = Error::Record { what: "the ledger line", source: storage(kind) };
            assert_eq!(record.retryable(), retryable, "record {kind:?}");
        }
        let gone = Error::NotFound { location: "s3://b".into(), key: "k".into(), source: storage(ErrorKind::NotFound) };
        assert!(!gone.retryable());
        assert_eq!(gone.to_string(), "s3://b/k: object not found (deleted since announced?): s3://b/k: x");
        let write = |kind| parquetrail_core::Error::Write {
            key: "k".into(),
            path: "p".into(),
            source: std::io::Error::new(kind, "x"),
        };
        let refused = Error::Convert(write(std::io::ErrorKind::InvalidFilename));
        assert!(!refused.retryable());
        assert!(!Error::Quarantine { key: "k".into(), source: Box::new(refused) }.retryable());
        let full = Error::Convert(write(std::io::ErrorKind::StorageFull));
        assert!(full.retryable());
        assert!(Error::Quarantine { key: "k".into(), source: Box::new(full) }.retryable());
        assert!(Error::Deadline { uri: "s3://b/k".into(), seconds: 1.0 }.retryable());
    }
}
