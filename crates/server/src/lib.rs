//! # parquetrail-server
//!
//! The read side over HTTP: CloudTrail's `LookupEvents` API (AWS JSON 1.1, SigV4) so that the AWS
//! CLI, boto3 and the AWS SDKs, pointed at `--endpoint-url`, look events up in a parquetrail
//! archive as they would in CloudTrail's Event history — beyond its 90 days.
//!
//! The server owns the protocol; the query engine plugs in behind one small trait,
//! [`LookupBackend`]: a validated [`LookupQuery`] in, a [`LookupPage`] out.
//!
//! - The wire: `POST /`, `Content-Type: application/x-amz-json-1.1`, `X-Amz-Target:
//!   com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents` (or the short
//!   `CloudTrail_20131101.LookupEvents`). Requests are validated as AWS validates them, and refused
//!   with AWS's exception names (`InvalidLookupAttributesException`, `InvalidTimeRangeException`,
//!   `InvalidNextTokenException`, `InvalidMaxResultsException`, `InvalidEventCategoryException`,
//!   `SerializationException`, `UnknownOperationException`: HTTP 400). Differences from AWS, on
//!   purpose (several attributes ANDed, four extension keys, no 90-day default window), are listed
//!   in `docs/SERVE.md`, with the credentials file format ([`CredentialStore::parse`]).
//! - `ListInsightsMetricData` (same route, its own `X-Amz-Target`): CloudTrail Insights' per-period
//!   series, a [`MetricDataQuery`] in, a [`MetricDataPage`] out ([`LookupBackend::metric_data`],
//!   `UnsupportedOperationException` for backends without metrics), validated and refused as
//!   its model says (`ValidationException`, `InvalidParameterException`).
//! - `NextToken` is the backend's cursor sealed with an HMAC to the request's parameters (all but
//!   `MaxResults`), so a token replayed with other parameters, or altered, is refused.
//! - Region scope: as at AWS, a request sees the Region of its SigV4 credential scope, unless the
//!   server serves all Regions ([`ServerConfig::all_regions`]).
//! - Security: loopback only, unless [`ServerConfig::credentials`] are set; then every request's
//!   SigV4 signature is recomputed with the AWS SDK's signer and compared (HTTP 403 with
//!   `MissingAuthenticationTokenException`, `UnrecognizedClientException`,
//!   `InvalidSignatureException` or `IncompleteSignatureException` otherwise). Bodies are limited
//!   (HTTP 413) and requests time out (HTTP 503).
//! - The web console: `GET /` serves Event history, event detail, compare, Insights and dashboards over the
//!   same backend ([`LookupBackend::rows`]), with JSON and CSV twins under `/console/api/`
//!   (`docs/CONSOLE.md`). On a non-loopback address it requires a [`ConsoleToken`].
//!
//! ```
//! use parquetrail_server::{LookupBackend, LookupPage, LookupQuery, ServerConfig, serve};
//!
//! struct Empty;
//! #[async_trait::async_trait]
//! impl LookupBackend for Empty {
//!     async fn lookup(&self, _query: LookupQuery) -> parquetrail_server::Result<LookupPage> {
//!         Ok(LookupPage::default())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> parquetrail_server::Result<()> {
//! let server = serve(ServerConfig::default(), Empty).await?; // 127.0.0.1, a free port
//! println!("aws cloudtrail lookup-events --endpoint-url {}", server.url());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod archive;
mod backend;
mod config;
mod console;
mod credentials;
mod error;
mod fault;
mod metric_data;
mod request;
mod server;
mod sigv4;
mod token;

pub use archive::ArchiveBackend;
pub use backend::{
    AttributeKey, EventCategory, InsightType, LookupAttribute, LookupBackend, LookupEvent, LookupPage, LookupQuery,
    MetricDataPage, MetricDataQuery, MetricDataType, Resource,
};
pub use config::ServerConfig;
pub use console::{ConsoleToken, write_events_csv};
pub use credentials::CredentialStore;
pub use error::{Error, Result};
pub use server::{Server, serve};
pub use token::TokenKey;
