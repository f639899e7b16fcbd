//! The HTTP service: one route, `POST /`, speaking AWS JSON 1.1 `LookupEvents` and
//! `ListInsightsMetricData`; a running [`Server`] handle with graceful shutdown.
//!
//! A request goes: body (size-limited) → signature (when credentials are configured) → target →
//! content type → JSON → validation → Region scope → NextToken → backend → page. Each refusal is a
//! [`Fault`] rendered in AWS's error shape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::{LookupBackend, LookupEvent, MetricDataQuery};
use crate::config::ServerConfig;
use crate::console::{self, Console};
use crate::credentials::CredentialStore;
use crate::fault::Fault;
use crate::token::TokenKey;
use crate::{Error, Result, metric_data, request, sigv4};

/// The media type of AWS JSON 1.1, in requests and responses.
pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The `X-Amz-Target` prefix of CloudTrail's operations; some older SDKs send only the part after it.
const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.";
/// The service part of a target, before the operation's name.
const SERVICE: &str = "CloudTrail_20131101.";

/// The operations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    LookupEvents,
    ListInsightsMetricData,
}

/// What every request handler shares.
struct App {
    backend: Arc<dyn LookupBackend>,
    console: Console,
    credentials: Option<CredentialStore>,
    all_regions: bool,
    token_key: TokenKey,
    body_limit: usize,
}

/// A running server. Dropping it starts a graceful shutdown without waiting for it; prefer
/// [`Server::shutdown`], which waits.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// The bound address (with the port chosen when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL clients use, such as `http://127.0.0.1:41234` (`--endpoint-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting connections, lets requests in flight finish, and waits until they have.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(Error::Serve),
                Err(join) => Err(Error::Serve(std::io::Error::other(join))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `config.listen` and serves `LookupEvents` over `backend` until [`Server::shutdown`].
///
/// Refuses ([`Error::OpenWithoutCredentials`]) a non-loopback address without credentials.
pub async fn serve(config: ServerConfig, backend: impl LookupBackend) -> Result<Server> {
    let open = !config.listen.ip().is_loopback();
    if open && config.credentials.as_ref().is_none_or(CredentialStore::is_empty) {
        return Err(Error::OpenWithoutCredentials { addr: config.listen });
    }
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| Error::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen, source })?;
    let app = router(config, Arc::new(backend));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "serving LookupEvents");
    Ok(Server { addr, url: format!("http://{addr}"), stop: Some(stop), task: Some(task) })
}

fn router(config: ServerConfig, backend: Arc<dyn LookupBackend>) -> Router {
    let timeout = config.request_timeout;
    let console = Console::new(backend.clone(), config.console_token, config.listen.ip().is_loopback(), config.console);
    let app = App {
        backend,
        console,
        credentials: config.credentials,
        all_regions: config.all_regions,
        token_key: config.token_key.unwrap_or_else(TokenKey::random),
        body_limit: config.body_limit,
    };
    Router::new()
        .route("/", post(api).get(console::index))
        .merge(console::routes())
        .fallback(|| async { Fault::not_found() })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::map_response(with_request_id))
        .layer(axum::middleware::map_response(console::with_security_headers))
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |_: tower::BoxError| async move { Fault::timeout(timeout) }))
                .timeout(timeout),
        )
        .with_state(Arc::new(app))
}

impl axum::extract::FromRef<Arc<App>> for Console {
    fn from_ref(app: &Arc<App>) -> Console {
        app.console.clone()
    }
}

/// Every response carries a request ID, as AWS's do (SDKs put it in their errors).
async fn with_request_id(mut response: Response) -> Response {
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(0x8000..0xc000),
        fastrand::u64(..1 << 48)
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

async fn api(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Fault> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Fault::payload_too_large(app.body_limit)
        } else {
            Fault::serialization(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })?;
    if let Some(store) = &app.credentials {
        let received = sigv4::Received { method: &method, uri: &uri, headers: &headers, body: &body };
        sigv4::verify(store, received, SystemTime::now())?;
    }
    let operation = operation(&headers)?;
    check_content_type(&headers)?;
    let region = if app.all_regions { None } else { sigv4::region_scope(&headers)? };
    match operation {
        Operation::LookupEvents => lookup_events(&app, &body, region).await,
        Operation::ListInsightsMetricData => list_insights_metric_data(&app, &body, region).await,
    }
}

async fn lookup_events(app: &App, body: &[u8], region: Option<String>) -> Result<Response, Fault> {
    let request::ParsedRequest { mut query, next_token } = request::parse(body)?;
    query.region = region;
    if let Some(token) = next_token {
        query.cursor = Some(app.token_key.open(&query, &token)?);
    }
    let max_results = query.max_results;
    let page = app.backend.lookup(query.clone()).await.map_err(backend_fault)?;
    if page.events.len() > max_results {
        tracing::error!(events = page.events.len(), max_results, "the backend returned more events than asked for");
        return Err(Fault::internal("the lookup returned more events than MaxResults"));
    }
    let next_token = page.cursor.map(|cursor| app.token_key.seal(&query, &cursor));
    Ok(page_response(&page.events, next_token.as_deref()))
}

async fn list_insights_metric_data(app: &App, body: &[u8], region: Option<String>) -> Result<Response, Fault> {
    let mut parsed = metric_data::parse(body, chrono::Utc::now())?;
    parsed.query.region = region;
    let fingerprint = parsed.fingerprint();
    // The operation's model has no InvalidNextTokenException: a bad token is an invalid parameter.
    if let Some(token) = &parsed.next_token {
        let cursor = app.token_key.open_from(&fingerprint, token).map_err(Fault::into_invalid_parameter)?;
        parsed.query.cursor = Some(cursor);
    }
    let query: MetricDataQuery = parsed.query;
    let page = app.backend.metric_data(query.clone()).await.map_err(|e| backend_fault(e).into_invalid_parameter())?;
    if page.points.len() > query.max_results {
        tracing::error!(
            points = page.points.len(),
            query.max_results,
            "the backend returned more points than asked for"
        );
        return Err(Fault::internal("the backend returned more data points than MaxResults"));
    }
    let next_token = page.cursor.as_ref().map(|cursor| app.token_key.seal_to(&fingerprint, cursor));
    let body = metric_data::response_body(&query, &page, next_token.as_deref());
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// A backend's error as clients see it; failures are logged, their cause kept from clients.
fn backend_fault(error: Error) -> Fault {
    match error {
        Error::InvalidCursor(why) => Fault::invalid_next_token(why),
        Error::Unsupported(why) => Fault::unsupported_operation(why),
        error => {
            tracing::error!(error = %error, "the backend failed");
            Fault::internal("the request failed; the server's log has the cause")
        }
    }
}

/// The operation `X-Amz-Target` names, in its full or short form.
fn operation(headers: &HeaderMap) -> Result<Operation, Fault> {
    let served = || format!("{TARGET_PREFIX}{SERVICE}LookupEvents and {TARGET_PREFIX}{SERVICE}ListInsightsMetricData");
    let target = match headers.get("x-amz-target").map(HeaderValue::to_str) {
        Some(Ok(target)) => target,
        _ => return Err(Fault::unknown_operation(format!("no X-Amz-Target header; this server serves {}", served()))),
    };
    match target.strip_prefix(TARGET_PREFIX).unwrap_or(target).strip_prefix(SERVICE) {
        Some("LookupEvents") => Ok(Operation::LookupEvents),
        Some("ListInsightsMetricData") => Ok(Operation::ListInsightsMetricData),
        _ => Err(Fault::unknown_operation(format!(
            "X-Amz-Target {target:?} is not an operation of this server; it serves {}",
            served()
        ))),
    }
}

/// `application/x-amz-json-1.1`, parameters (such as a charset) allowed.
fn check_content_type(headers: &HeaderMap) -> Result<(), Fault> {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = value.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case(CONTENT_TYPE) {
        Ok(())
    } else {
        Err(Fault::serialization(format!("Content-Type must be {CONTENT_TYPE}, not {value:?}")))
    }
}

fn page_response(events: &[LookupEvent], next_token: Option<&str>) -> Response {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page<'a> {
        events: &'a [LookupEvent],
        #[serde(skip_serializing_if = "Option::is_none")]
        next_token: Option<&'a str>,
    }
    match serde_json::to_string(&Page { events, next_token }) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => Fault::internal(format!("cannot encode the page: {e}")).into_response(),
    }
}
