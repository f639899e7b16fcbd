//! The web console: CloudTrail's Event history, event detail, compare, dashboards and Insights over the
//! archive, served by the same server at `/` (`GET`; `POST /` stays `LookupEvents`).
//!
//! Datasette is the model: every view is a URL, and the data behind it has a JSON twin under
//! `/console/api/` (and a CSV one for event lists). The page is plain HTML, CSS and JavaScript
//! embedded in the binary; it renders every value from a record as text and runs under a strict
//! Content-Security-Policy (no inline script, nothing from elsewhere).
//!
//! Access: like the API, a loopback address is served without authentication; anything else
//! requires a console token ([`ConsoleToken`]), sent as the `parquetrail_console` cookie (set by
//! the sign-in form) or as `Authorization: Bearer <token>`, and compared in constant time. Plain
//! HTTP: put TLS in front when serving beyond the host.

mod api;

pub use api::write_events_csv;
mod dashboard;
mod insights;
mod params;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::backend::LookupBackend;

/// The cookie the sign-in form sets.
const COOKIE: &str = "parquetrail_console";

/// The shared secret a browser presents to use the console on a non-loopback address.
#[derive(Clone)]
pub struct ConsoleToken(String);

impl ConsoleToken {
    /// Shortest token accepted: a guessable token on a network address is no protection.
    pub const MIN_LEN: usize = 16;

    /// A token of at least [`Self::MIN_LEN`] characters, surrounding whitespace removed
    /// (so a token file may end with a newline). Cookie-safe: printable ASCII without `;`, `,`,
    /// quotes, backslashes or spaces.
    pub fn new(token: &str) -> Result<ConsoleToken, String> {
        let token = token.trim();
        if token.chars().count() < Self::MIN_LEN {
            return Err(format!("a console token must be at least {} characters long", Self::MIN_LEN));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\')) {
            return Err("a console token may hold printable ASCII only, without spaces, ';', ',', '\"' or '\\'".into());
        }
        Ok(ConsoleToken(token.to_string()))
    }

    /// Whether `given` is this token, in time independent of where they differ (both are hashed
    /// first, so their lengths do not show either).
    fn matches(&self, given: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(given.as_bytes());
        a.ct_eq(&b).into()
    }
}

impl std::fmt::Debug for ConsoleToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleToken(<redacted>)")
    }
}

/// What the console's handlers share (cheap to clone: one per request).
#[derive(Clone)]
pub(crate) struct Console {
    backend: Arc<dyn LookupBackend>,
    token: Option<ConsoleToken>,
    /// Why the console is off (a network address without a token); `None` when it is served.
    off: Option<String>,
}

impl Console {
    pub(crate) fn new(
        backend: Arc<dyn LookupBackend>,
        token: Option<ConsoleToken>,
        loopback: bool,
        enabled: bool,
    ) -> Console {
        let off = if !enabled {
            Some("the console is off (--no-console); the LookupEvents API is served at POST /".to_string())
        } else if !loopback && token.is_none() {
            Some(
                "the console is off: this server listens on a network address and no console token was configured \
                 (--console-token or --console-token-file); the LookupEvents API is not affected"
                    .to_string(),
            )
        } else {
            None
        };
        Console { backend, token, off }
    }

    /// Whether the request may use the console: always on loopback without a token, else with it.
    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(why) = &self.off {
            return Err(ApiError::new(StatusCode::NOT_FOUND, why.clone()));
        }
        let Some(token) = &self.token else {
            // Without a token the console trusts the machine, so it must be this machine's browser
            // asking this machine: a page elsewhere that rebinds its own name to 127.0.0.1 sends its
            // own name as Host, and is refused (DNS rebinding).
            return match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                Some(host) if is_loopback_host(host) => Ok(()),
                _ => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "without a console token, the console answers requests to a loopback name only \
                     (127.0.0.1, localhost, [::1]); configure --console-token-file to serve other names",
                )),
            };
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value);
        match bearer.or(cookie) {
            Some(given) if token.matches(given) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "the console token is not valid")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the console requires a token: sign in at / or send Authorization: Bearer <token>",
            )),
        }
    }
}

/// Whether a `Host` header names this machine's loopback interface (with or without a port).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A refusal of the console's API: the status and `{"error": "<message>"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const LOGIN_HTML: &str = include_str!("../../assets/login.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The Content-Security-Policy of every response: scripts, styles and data from this server only,
/// no inline script, no plugins, no framing, forms posting only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console's routes, for the server's router (whose state gives the [`Console`]).
pub(crate) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Console: axum::extract::FromRef<S>,
{
    let page = || get(index);
    Router::new()
        .route("/events", page())
        .route("/event", page())
        .route("/compare", page())
        .route("/dashboard", page())
        .route("/insights", page())
        .route("/console/login", post(login))
        .route("/console/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/console/assets/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/console/api/meta", get(api::meta))
        .route("/console/api/events", get(api::events))
        .route("/console/api/events.csv", get(api::download_csv))
        .route("/console/api/events.json", get(api::download_json))
        .route("/console/api/event", get(api::event))
        .route("/console/api/dashboard", get(api::dashboard))
        .route("/console/api/insights", get(insights::list))
        .route("/console/api/insights/series", get(insights::series))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// `GET /` and the page's other views: the page, or the sign-in form when a token is needed.
pub(crate) async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.check(&headers) {
        Ok(()) => html(StatusCode::OK, INDEX_HTML),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => html(StatusCode::UNAUTHORIZED, LOGIN_HTML),
        Err(e) => e.into_response(),
    }
}

/// `POST /console/login` (a form with `token`): sets the cookie and goes to the page.
async fn login(State(console): State<Console>, body: Bytes) -> Response {
    let given = form_urlencoded::parse(&body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    match (&console.token, given) {
        (Some(token), Some(given)) if console.off.is_none() && token.matches(given.trim()) => {
            let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", given.trim());
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        (None, _) if console.off.is_none() => (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
        _ => html(StatusCode::UNAUTHORIZED, LOGIN_HTML),
    }
}

/// Adds the browser-side protections to every response (harmless to API clients).
pub(crate) async fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Empty;

    #[async_trait::async_trait]
    impl LookupBackend for Empty {
        async fn lookup(&self, _query: crate::LookupQuery) -> crate::Result<crate::LookupPage> {
            Ok(crate::LookupPage::default())
        }
    }

    #[test]
    fn the_console_is_off_beyond_loopback_without_a_token() {
        let backend: Arc<dyn LookupBackend> = Arc::new(Empty);
        let status = |console: &Console, headers: &HeaderMap| console.check(headers).err().map(|e| e.status);
        let none = HeaderMap::new();
        let mut local = HeaderMap::new();
        local.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8470"));
        assert_eq!(status(&Console::new(backend.clone(), None, false, true), &none), Some(StatusCode::NOT_FOUND));
        assert_eq!(status(&Console::new(backend.clone(), None, true, true), &local), None);
        assert_eq!(status(&Console::new(backend.clone(), None, true, true), &none), Some(StatusCode::FORBIDDEN));
        assert_eq!(status(&Console::new(backend.clone(), None, true, false), &none), Some(StatusCode::NOT_FOUND));
        let token = ConsoleToken::new("0123456789abcdef").unwrap();
        let guarded = Console::new(backend, Some(token), false, true);
        assert_eq!(status(&guarded, &none), Some(StatusCode::UNAUTHORIZED));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 0123456789abcdef"));
        assert_eq!(status(&guarded, &bearer), None);
        let mut cookie = HeaderMap::new();
        cookie.insert(header::COOKIE, HeaderValue::from_static("a=b; parquetrail_console=0123456789abcdeg"));
        assert_eq!(status(&guarded, &cookie), Some(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn only_loopback_names_are_this_machine() {
        for host in ["127.0.0.1", "127.0.0.1:8470", "localhost:1", "LOCALHOST", "[::1]:8470", "[::1]", "127.1.2.3:9"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8470", "10.0.0.1:8470", "localhost.evil.example", "[::2]:1", "", "127.0.0.1.nip.io"]
        {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn tokens_are_checked_whole_and_kept_out_of_debug_output() {
        let token = ConsoleToken::new("  correct-horse-battery-staple\n").unwrap();
        assert!(token.matches("correct-horse-battery-staple"));
        assert!(!token.matches("correct-horse-battery-stapl"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("horse"));
        assert!(ConsoleToken::new("short").is_err());
        assert!(ConsoleToken::new("has a space in the middle").is_err());
        assert!(ConsoleToken::new("semi;colon-is-not-cookie-safe").is_err());
    }
}
