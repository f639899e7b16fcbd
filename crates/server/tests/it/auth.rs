//! SigV4 verification with credentials configured, through every client; the listen-address rule;
//! the credentials file.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use parquetrail_server::{CredentialStore, Error, Server, ServerConfig, serve};
use serde_json::json;

use crate::awscli::lookup_events;
use crate::boto3::boto3;
use crate::sdk::client;
use crate::support::{
    ACCESS_KEY_ID, LOOKUP_HEADERS, MemoryBackend, RawResponse, SECRET_ACCESS_KEY, aws_cli, config, post,
    python_with_boto3, start,
};

fn store() -> CredentialStore {
    let mut store = CredentialStore::default();
    store.insert(ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    store.insert("AKIDOTHER", "another-secret");
    store
}

async fn signed_server() -> Server {
    start(ServerConfig { credentials: Some(store()), ..config() }).await
}

#[tokio::test]
async fn the_sdk_passes_with_the_right_secret_only() {
    let server = signed_server().await;
    let ok = client(&server, SECRET_ACCESS_KEY, "us-east-1").lookup_events().send().await.unwrap();
    assert!(!ok.events.unwrap().is_empty());

    let error = client(&server, "wrong", "us-east-1").lookup_events().send().await.unwrap_err().into_service_error();
    assert_eq!(error.code(), Some("InvalidSignatureException"), "{error:?}");

    let unknown = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .endpoint_url(server.url())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudtrail::config::Credentials::new("AKIDUNKNOWN", "x", None, None, "test"))
        .build();
    let error =
        aws_sdk_cloudtrail::Client::from_conf(unknown).lookup_events().send().await.unwrap_err().into_service_error();
    assert_eq!(error.code(), Some("UnrecognizedClientException"), "{error:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_passes_with_the_right_secret_only() {
    let Some(cli) = aws_cli("the_cli_passes_with_the_right_secret_only") else { return };
    let server = signed_server().await;
    let (ok, _, stderr) = lookup_events(&cli, &server, SECRET_ACCESS_KEY, "us-east-1", &["--page-size", "5"]).await;
    assert!(ok, "{stderr}");
    let cases: [(&str, &[&str], &str); 2] = [
        ("wrong-secret", &[], "InvalidSignatureException"),
        (SECRET_ACCESS_KEY, &["--no-sign-request"], "MissingAuthenticationTokenException"),
    ];
    for (secret, args, exception) in cases {
        let (ok, _, stderr) = lookup_events(&cli, &server, secret, "us-east-1", args).await;
        assert!(!ok && stderr.contains(&format!("({exception})")), "{args:?}: expected {exception}: {stderr}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_passes_with_the_right_secret_only() {
    let Some(python) = python_with_boto3("boto3_passes_with_the_right_secret_only") else { return };
    let server = signed_server().await;
    let out = boto3(&python, &server, SECRET_ACCESS_KEY, json!({"mode":"call","params":{"MaxResults":3}})).await;
    assert_eq!(out["events"].as_array().map(Vec::len), Some(3), "{out}");
    let out = boto3(&python, &server, "wrong-secret", json!({"mode":"call","params":{}})).await;
    assert_eq!(out["code"], "InvalidSignatureException", "{out}");
    server.shutdown().await.unwrap();
}

/// The headers of a `{}` request to `server` signed by the SDK's signer at `time` with `secret`,
/// for `service`.
fn signed_headers(
    server: &Server,
    secret: &str,
    time: SystemTime,
    target: &str,
    service: &str,
) -> Vec<(String, String)> {
    let host = server.local_addr().to_string();
    let headers = [("content-type", "application/x-amz-json-1.1"), ("host", host.as_str()), ("x-amz-target", target)];
    let identity = Credentials::new(ACCESS_KEY_ID, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new("POST", "/", headers.iter().copied(), SignableBody::Bytes(b"{}")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut all: Vec<(String, String)> =
        headers.iter().filter(|(n, _)| *n != "host").map(|(n, v)| (n.to_string(), v.to_string())).collect();
    all.extend(instructions.headers().map(|(n, v)| (n.to_string(), v.to_string())));
    all
}

/// Sends `{}` with `headers`.
async fn post_with(server: &Server, headers: &[(String, String)]) -> RawResponse {
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    post(server, &borrowed, b"{}").await
}

async fn signed_post(server: &Server, secret: &str, time: SystemTime, target: &str) -> RawResponse {
    post_with(server, &signed_headers(server, secret, time, target, "cloudtrail")).await
}

#[tokio::test]
async fn unsigned_expired_and_malformed_requests_get_403() {
    let server = signed_server().await;
    let now = SystemTime::now();
    let short = "CloudTrail_20131101.LookupEvents";
    let response = signed_post(&server, SECRET_ACCESS_KEY, now, short).await;
    assert_eq!(response.status, 200, "signed now, short target: {response:?}");

    let response = signed_post(&server, SECRET_ACCESS_KEY, now - Duration::from_secs(20 * 60), short).await;
    assert_eq!((response.status, response.error_type().as_str()), (403, "InvalidSignatureException"), "{response:?}");
    assert!(response.body.contains("Signature expired"), "{response:?}");

    let response = post(&server, LOOKUP_HEADERS, b"{}").await;
    assert_eq!((response.status, response.error_type().as_str()), (403, "MissingAuthenticationTokenException"));

    // Scoped to another service, or dated outside the credential scope's day.
    let headers = signed_headers(&server, SECRET_ACCESS_KEY, now, short, "s3");
    let response = post_with(&server, &headers).await;
    assert_eq!((response.status, response.error_type().as_str()), (403, "InvalidSignatureException"), "{response:?}");
    assert!(response.body.contains("correct service"), "{response:?}");
    let mut headers = signed_headers(&server, SECRET_ACCESS_KEY, now, short, "cloudtrail");
    for (name, value) in &mut headers {
        if name == "x-amz-date" {
            *value = format!("19990101{}", &value[8..]);
        }
    }
    let response = post_with(&server, &headers).await;
    assert_eq!((response.status, response.error_type().as_str()), (403, "InvalidSignatureException"), "{response:?}");
    assert!(response.body.contains("valid date"), "{response:?}");

    let mut headers = LOOKUP_HEADERS.to_vec();
    headers.push(("Authorization", "AWS4-HMAC-SHA256 Credential=nonsense"));
    let response = post(&server, &headers, b"{}").await;
    assert_eq!((response.status, response.error_type().as_str()), (403, "IncompleteSignatureException"));

    // Authentication comes before parsing: an unsigned malformed body is still a 403.
    let response = post(&server, LOOKUP_HEADERS, b"{not json").await;
    assert_eq!(response.status, 403, "{response:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_loopback_address_needs_credentials() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let listen: SocketAddr = listen.parse().unwrap();
        for credentials in [None, Some(CredentialStore::default())] {
            let config = ServerConfig { listen, credentials: credentials.clone(), ..config() };
            let error = serve(config, MemoryBackend::new()).await.unwrap_err();
            assert!(matches!(error, Error::OpenWithoutCredentials { .. }), "{listen} {credentials:?}: {error}");
            assert!(error.to_string().contains("without credentials"), "{error}");
        }
    }
    // IPv6 loopback is fine without credentials.
    let config = ServerConfig { listen: "[::1]:0".parse().unwrap(), ..config() };
    if let Ok(server) = serve(config, MemoryBackend::new()).await {
        assert!(server.url().starts_with("http://[::1]:"), "{}", server.url());
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_credentials_file_configures_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    std::fs::write(&path, format!("# keys for serve\n{ACCESS_KEY_ID} {SECRET_ACCESS_KEY}\n")).unwrap();
    let store = CredentialStore::from_file(&path).unwrap();
    assert_eq!(store.len(), 1);
    let server = start(ServerConfig { credentials: Some(store), ..config() }).await;
    client(&server, SECRET_ACCESS_KEY, "us-east-1").lookup_events().send().await.unwrap();
    server.shutdown().await.unwrap();

    std::fs::write(&path, "AKID\n").unwrap();
    let error = CredentialStore::from_file(&path).unwrap_err().to_string();
    assert!(error.contains("line 1: expected two fields"), "{error}");
    let error = CredentialStore::from_file(&dir.path().join("absent")).unwrap_err().to_string();
    assert!(error.starts_with("cannot read credentials file"), "{error}");
}
