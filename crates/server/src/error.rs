//! The one error type of the server crate: starting a server, reading its credentials, and what a
//! backend may answer. Protocol errors sent to clients are responses, not errors: see `fault`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong starting the server or answering a lookup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving a non-loopback address without credentials would open the archive to the network.
    #[error(
        "refusing to listen on {addr} without credentials: anyone who can reach it could read the archive; \
         listen on a loopback address (127.0.0.1) or configure credentials so every request's SigV4 signature \
         is verified"
    )]
    OpenWithoutCredentials { addr: SocketAddr },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The credentials file could not be read.
    #[error("cannot read credentials file {path}: {source}")]
    CredentialsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The credentials text is not in the documented format (see `CredentialStore::parse`).
    #[error("{origin}: {reason}")]
    Credentials { origin: String, reason: String },
    /// The backend cannot continue from the cursor it was given (for example, the archive changed
    /// in a way the cursor cannot survive). Clients get `InvalidNextTokenException`.
    #[error("the lookup cannot continue from this cursor: {0}")]
    InvalidCursor(String),
    /// The backend does not answer this operation. Clients get `UnsupportedOperationException`.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The backend failed (I/O, storage, corrupt data). Clients get HTTP 500 `InternalFailure`.
    #[error("lookup failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server task failed or panicked.
    #[error("the server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
