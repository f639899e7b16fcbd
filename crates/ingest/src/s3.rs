//! S3 through aws-sdk-s3: client settings, [`S3Storage`], and a sink that streams multipart uploads.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use parquetrail_core::sink::{Sink, SinkFile};
use tokio::runtime::Handle;

use crate::idle::IdleTimeout;
use crate::location::join;
use crate::storage::{ErrorKind, ListPage, ObjectMeta, Opened, Storage, StorageError};

/// Multipart part size: S3's minimum is 5 MiB; 8 MiB keeps a Lambda's buffer small.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How to reach S3. Credentials and region come from the standard chain (environment, profile,
/// SSO, container or instance role); `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` point it at any
/// S3-compatible endpoint, which then gets path-style addressing unless told otherwise.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint override (otherwise aws-config's own resolution, which honours the variables above).
    pub endpoint_url: Option<String>,
    /// Path-style addressing; by default on exactly when an endpoint override is in effect.
    pub force_path_style: Option<bool>,
    /// Region override (otherwise the standard chain).
    pub region: Option<String>,
    /// Static credentials (access key, secret), for tests and S3-compatible servers.
    pub static_credentials: Option<(String, String)>,
    /// Timeouts and attempts per request; the default suits a Lambda ([`S3Limits::lambda`]).
    pub limits: S3Limits,
}

/// How long one S3 request may take and how often it is tried, so a stalled or frozen endpoint
/// fails (retryably) in bounded time instead of holding its caller until an outer deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Limits {
    /// Establishing a connection (the SDK's connect timeout).
    pub connect: Duration,
    /// The longest wait for the next byte from S3: from sending a request (its body included) to
    /// the first byte of the answer (the SDK's read timeout), and between two bytes of a streamed
    /// GET body (an idle timeout on the reader [`S3Storage::open`] returns, which the SDK's
    /// timeouts do not cover).
    pub read: Duration,
    /// One attempt of a request, up to its answer's headers (the SDK's operation attempt timeout).
    pub attempt: Duration,
    /// One request, all its attempts and backoffs included (the SDK's operation timeout).
    pub operation: Duration,
    /// Attempts per request (standard retry mode, jittered backoff from 100 ms); a timed-out
    /// attempt is retried like a throttled one.
    pub max_attempts: u32,
}

impl S3Limits {
    /// For the Lambda (300 s function timeout by default): in-region S3 connects in milliseconds
    /// and answers in well under a second, so connect 3 s, read 20 s (an 8 MiB part sent and
    /// answered at a tenth of Lambda's usual bandwidth), attempt 30 s, operation 60 s, 5 attempts.
    /// A frozen endpoint then fails a request in 60 s, and the pipeline's 3 attempts per object
    /// end within about 3 minutes, before the function's own timeout.
    pub const fn lambda() -> Self {
        S3Limits {
            connect: Duration::from_secs(3),
            read: Duration::from_secs(20),
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    /// For the CLI, which may run far from the bucket over a slower link and has no deadline of
    /// its own: connect 10 s, read 60 s, attempt 120 s, operation 300 s, 5 attempts.
    pub const fn cli() -> Self {
        S3Limits {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            attempt: Duration::from_secs(120),
            operation: Duration::from_secs(300),
            max_attempts: 5,
        }
    }

    /// The SDK's timeout configuration for these limits.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

impl Default for S3Limits {
    fn default() -> Self {
        S3Limits::lambda()
    }
}

impl S3Settings {
    /// Settings for the CLI from the environment: [`S3Limits::cli`], and
    /// `PARQUETRAIL_S3_PATH_STYLE=true|false` overrides the default addressing.
    pub fn from_env() -> Result<Self, parquetrail_core::UnknownValue> {
        let force_path_style = match std::env::var("PARQUETRAIL_S3_PATH_STYLE") {
            Ok(v) => Some(parse_bool(&v).ok_or_else(|| {
                parquetrail_core::UnknownValue::new("PARQUETRAIL_S3_PATH_STYLE value", v, "true or false")
            })?),
            Err(_) => None,
        };
        Ok(S3Settings { force_path_style, limits: S3Limits::cli(), ..S3Settings::default() })
    }

    fn endpoint_in_effect(&self) -> bool {
        self.endpoint_url.is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
    }

    /// Builds a client (once per process: clients are cheap to clone and share connections).
    pub async fn client(&self) -> Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some((key, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "parquetrail-static",
            ));
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(self.force_path_style.unwrap_or_else(|| self.endpoint_in_effect()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(self.limits.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .timeout_config(self.limits.timeout_config())
            .build();
        Client::from_conf(config)
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), as environment variables spell them.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Classifies an SDK error: what an operator (and Lambda's retry machinery) should do with it.
pub fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, status: Option<u16>) -> ErrorKind {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            match (code, status.unwrap_or(0)) {
                // Missing permissions or a missing bucket are fixed by an operator; keep the work
                // retryable so nothing is dropped meanwhile (checked before the generic 404).
                ("AccessDenied" | "NoSuchBucket" | "InvalidAccessKeyId" | "ExpiredToken", _) | (_, 403) => {
                    ErrorKind::Retryable
                }
                ("NoSuchKey" | "NotFound", _) | (_, 404) => ErrorKind::NotFound,
                // A conditional write lost its race (or another conditional write was in flight).
                ("PreconditionFailed" | "ConditionalRequestConflict", _) | (_, 412) => ErrorKind::Conflict,
                ("SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout" | "InternalError", _) => {
                    ErrorKind::Retryable
                }
                (_, s) if s >= 500 || s == 429 || s == 408 => ErrorKind::Retryable,
                _ => ErrorKind::Permanent,
            }
        }
        SdkError::ConstructionFailure(_) => ErrorKind::Permanent,
        _ => ErrorKind::Retryable,
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = classify(&err, status);
    let detail = match err.as_service_error() {
        Some(e) if e.code().is_some() || e.message().is_some() => {
            format!("{} ({})", e.code().unwrap_or("error"), e.message().unwrap_or("no message"))
        }
        // No code or message: the response itself was not understood; say all the SDK knows.
        _ => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)),
    };
    StorageError::new(kind, format!("{what}: {detail}"))
}

/// One S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// How long a streamed body may deliver nothing: the client's read timeout (see
    /// [`S3Limits::read`]), or that of [`S3Limits::lambda`] for a client configured without one.
    idle: Duration,
}

impl S3Storage {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        let idle = client.config().timeout_config().and_then(|t| t.read_timeout()).unwrap_or(S3Limits::lambda().read);
        S3Storage { client, bucket: bucket.into(), idle }
    }

    /// A streamed GET body that fails with [`std::io::ErrorKind::TimedOut`] when it stalls.
    fn body_reader(&self, body: ByteStream) -> IdleTimeout<impl tokio::io::AsyncRead + Send + Unpin + use<>> {
        IdleTimeout::new(body.into_async_read(), self.idle)
    }

    /// A whole body, read through the idle timeout: a stalled download fails instead of hanging.
    async fn collect(&self, what: &str, body: ByteStream) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut self.body_reader(body), &mut out)
            .await
            .map_err(|e| StorageError::new(ErrorKind::Retryable, format!("{what}: {e}")))?;
        Ok(out)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }

    async fn open(&self, key: &str, version_id: Option<&str>) -> Result<Opened, StorageError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        Ok(Opened {
            size: out.content_length().and_then(|n| u64::try_from(n).ok()),
            etag: out.e_tag().map(str::to_string),
            version_id: out.version_id().map(str::to_string),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
                .unwrap_or_default(),
            reader: Box::new(self.body_reader(out.body)),
        })
    }

    async fn read_tail(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StorageError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=-{}", n.max(1)))
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        // `bytes FIRST-LAST/SIZE`; without it (a store ignoring Range) the body is the whole object.
        let size = out.content_range().and_then(|r| r.rsplit('/').next()).and_then(|s| s.parse::<u64>().ok());
        let body = self.collect(&what, out.body).await?;
        match size {
            Some(size) => Ok((body, size)),
            None => {
                let size = body.len() as u64;
                Ok((body[size.saturating_sub(n) as usize..].to_vec(), size))
            }
        }
    }

    async fn read_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StorageError> {
        let what = format!("s3://{}/{key}", self.bucket);
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        let ranged = out.content_range().is_some();
        let body = self.collect(&what, out.body).await?;
        if ranged {
            Ok(body)
        } else {
            let end = (range.end as usize).min(body.len());
            Ok(body[(range.start as usize).min(end)..end].to_vec())
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(&format!("listing s3://{}/{prefix}", self.bucket), e))?;
            for object in page.contents() {
                out.push(ObjectMeta {
                    key: object.key().unwrap_or_default().to_string(),
                    size: object.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    etag: object.e_tag().map(str::to_string),
                    last_modified: object.last_modified().and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                });
            }
        }
        Ok(out)
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).delimiter("/").into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(&format!("listing s3://{}/{prefix} by /", self.bucket), e))?;
            out.extend(page.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_string));
        }
        out.sort();
        Ok(out)
    }

    async fn list_page(&self, prefix: &str, token: Option<&str>) -> Result<ListPage, StorageError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(token.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("listing s3://{}/{prefix}", self.bucket), e))?;
        let objects = page
            .contents()
            .iter()
            .map(|object| ObjectMeta {
                key: object.key().unwrap_or_default().to_string(),
                size: object.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                etag: object.e_tag().map(str::to_string),
                last_modified: object.last_modified().and_then(|t| std::time::SystemTime::try_from(*t).ok()),
            })
            .collect();
        let next = page.next_continuation_token().filter(|_| page.is_truncated() == Some(true)).map(str::to_string);
        Ok(ListPage { objects, next })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type(key))
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&format!("s3://{}/{key}", self.bucket), e))
    }

    async fn read_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = sdk_error(&what, e);
                return if e.kind == ErrorKind::NotFound { Ok(None) } else { Err(e) };
            }
        };
        let tag = out.e_tag().map(str::to_string).ok_or_else(|| {
            StorageError::new(
                ErrorKind::Permanent,
                format!("{what}: no ETag in the response (conditional writes need one)"),
            )
        })?;
        let body = self.collect(&what, out.body).await?;
        Ok(Some((body, tag)))
    }

    async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, StorageError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let request = self.client.put_object().bucket(&self.bucket).key(key).content_type(content_type(key));
        let request = match expected {
            Some(tag) => request.if_match(tag),
            None => request.if_none_match("*"),
        };
        match request.body(ByteStream::from(body)).send().await {
            Ok(out) => out
                .e_tag()
                .map(str::to_string)
                .ok_or_else(|| StorageError::new(ErrorKind::Permanent, format!("{what}: no ETag in the response"))),
            Err(e) => {
                let mut e = sdk_error(&what, e);
                // `If-Match` on an object deleted meanwhile answers 404: it changed, like a 412.
                if e.kind == ErrorKind::NotFound {
                    e.kind = ErrorKind::Conflict;
                }
                Err(e)
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error(&format!("s3://{}/{key}", self.bucket), e) {
                e if e.kind == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn sink(&self, prefix: &str) -> Arc<dyn Sink + Send + Sync> {
        Arc::new(S3Sink {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            prefix: prefix.to_string(),
            handle: Handle::current(),
            part_size: PART_SIZE,
        })
    }
}

/// A response body, whole; a connection dropped midway is worth retrying.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".parquet") {
        "application/vnd.apache.parquet"
    } else if key.ends_with(".jsonl") {
        "application/x-ndjson"
    } else if key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Writes outputs to S3 as they are produced: small outputs with one PUT at commit, larger ones as
/// a multipart upload whose parts leave as soon as they fill, so memory stays at one part. An
/// output dropped without commit aborts its upload; nothing becomes visible before commit.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    handle: Handle,
    part_size: usize,
}

impl S3Sink {
    /// A sink with a custom part size (at least 5 MiB in real S3), for tests of the multipart path.
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size;
        self
    }

    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        S3Sink { client, bucket: bucket.into(), prefix: prefix.into(), handle: Handle::current(), part_size: PART_SIZE }
    }
}

impl Sink for S3Sink {
    fn create(&self, path: &str) -> io::Result<Box<dyn SinkFile>> {
        Ok(Box::new(S3File {
            sink: self.clone(),
            key: join(&self.prefix, path),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            done: false,
        }))
    }
}

struct S3File {
    sink: S3Sink,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    done: bool,
}

impl S3File {
    fn what(&self) -> String {
        format!("s3://{}/{}", self.sink.bucket, self.key)
    }

    /// Sends the buffer as the next part (starting the upload first if needed).
    fn flush_part(&mut self) -> io::Result<()> {
        let s = &self.sink;
        if self.upload_id.is_none() {
            let out = s
                .handle
                .block_on(
                    s.client
                        .create_multipart_upload()
                        .bucket(&s.bucket)
                        .key(&self.key)
                        .content_type(content_type(&self.key))
                        .send(),
                )
                .map_err(|e| std::io::Error::from(sdk_error(&self.what(), e)))?;
            self.upload_id = out.upload_id().map(str::to_string);
        }
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = ByteStream::from(std::mem::take(&mut self.buf));
        let out = s
            .handle
            .block_on(
                s.client
                    .upload_part()
                    .bucket(&s.bucket)
                    .key(&self.key)
                    .set_upload_id(self.upload_id.clone())
                    .part_number(number)
                    .body(body)
                    .send(),
            )
            .map_err(|e| std::io::Error::from(sdk_error(&self.what(), e)))?;
        self.parts
            .push(CompletedPart::builder().set_e_tag(out.e_tag().map(str::to_string)).part_number(number).build());
        Ok(())
    }
}

impl Write for S3File {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.sink.part_size {
            self.flush_part()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SinkFile for S3File {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let s = self.sink.clone();
        if self.upload_id.is_none() {
            let body = ByteStream::from(std::mem::take(&mut self.buf));
            s.handle
                .block_on(
                    s.client
                        .put_object()
                        .bucket(&s.bucket)
                        .key(&self.key)
                        .content_type(content_type(&self.key))
                        .body(body)
                        .send(),
                )
                .map_err(|e| std::io::Error::from(sdk_error(&self.what(), e)))?;
        } else {
            if !self.buf.is_empty() {
                self.flush_part()?;
            }
            let upload = CompletedMultipartUpload::builder().set_parts(Some(self.parts.clone())).build();
            s.handle
                .block_on(
                    s.client
                        .complete_multipart_upload()
                        .bucket(&s.bucket)
                        .key(&self.key)
                        .set_upload_id(self.upload_id.clone())
                        .multipart_upload(upload)
                        .send(),
                )
                .map_err(|e| std::io::Error::from(sdk_error(&self.what(), e)))?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for S3File {
    fn drop(&mut self) {
        if let (false, Some(upload_id)) = (self.done, self.upload_id.take()) {
            // Never block in drop: abort in the background (a bucket lifecycle rule for
            // incomplete uploads is the backstop, see infra/).
            let request =
                self.sink.client.abort_multipart_upload().bucket(&self.sink.bucket).key(&self.key).upload_id(upload_id);
            self.sink.handle.spawn(async move {
                let _ = request.send().await;
            });
        }
    }
}
