//! How a server is started: one typed struct, checked by [`crate::serve`] before it binds.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::console::ConsoleToken;
use crate::credentials::CredentialStore;
use crate::token::TokenKey;

/// Everything a server needs besides its backend.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Port 0 picks a free port ([`crate::Server::url`] tells which). Any
    /// non-loopback address requires `credentials`: an archive is not served to a network unsigned.
    pub listen: SocketAddr,
    /// The access keys accepted. When set, every request must carry a valid SigV4 signature by one
    /// of them (HTTP 403 otherwise). When `None`, requests are not authenticated, which is allowed
    /// on loopback addresses only. Plain HTTP: put TLS in front when serving beyond the host.
    pub credentials: Option<CredentialStore>,
    /// Serve every Region to every request. Otherwise, as at AWS, a request sees only the Region of
    /// its SigV4 credential scope (an unsigned request, possible without credentials, is not scoped).
    pub all_regions: bool,
    /// The largest request body accepted, in bytes (HTTP 413 beyond). A LookupEvents request is a
    /// few hundred bytes; 64 KiB leaves room for several 2000-character attributes.
    pub body_limit: usize,
    /// How long one request may take, reading its body and the lookup included (HTTP 503 beyond).
    pub request_timeout: Duration,
    /// The key sealing `NextToken`s. `None`: a random key per start, so tokens end with the process;
    /// set one to keep them valid across restarts or across servers behind one address.
    pub token_key: Option<TokenKey>,
    /// Serve the web console at `GET /` (see [`crate::ConsoleToken`] for who may use it).
    pub console: bool,
    /// The token the console asks for. Required for the console on a non-loopback address (it
    /// is off there without one); when set on loopback, it is asked for there too.
    pub console_token: Option<ConsoleToken>,
}

impl Default for ServerConfig {
    /// Loopback on a free port, no credentials, Region-scoped, 64 KiB bodies, 30 s per request,
    /// the console on (without a token: loopback only).
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: None,
            all_regions: false,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            token_key: None,
            console: true,
            console_token: None,
        }
    }
}
