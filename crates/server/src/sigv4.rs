//! SigV4 on the receiving end: the Region a request is scoped to, and, when the server has
//! credentials, whether the request was signed with one of them.
//!
//! Verification recomputes the signature with the AWS SDK's own signer (`aws-sigv4`) over the
//! received method, path, query, body and exactly the headers the client listed in
//! `SignedHeaders`, at the client's own `X-Amz-Date`, with the stored secret of the client's access
//! key; then compares in constant time. Reusing the SDK's signer means canonicalisation (header
//! value trimming, path normalisation, double encoding) is the one the clients use, not a second
//! implementation that could drift from it.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri, header};
use chrono::NaiveDateTime;
use subtle::ConstantTimeEq;

use crate::credentials::CredentialStore;
use crate::fault::Fault;

/// The signing name of CloudTrail: a credential scope must name it.
const SERVICE: &str = "cloudtrail";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's `X-Amz-Date` may be from the server's clock, either way (AWS's limit).
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
const X_AMZ_DATE: &str = "x-amz-date";

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
    /// SignedHeaders=a;b, Signature=hex`.
    pub(crate) fn parse(value: &'a str) -> Result<Authorization<'a>, Fault> {
        let incomplete = |what: &str| {
            Fault::incomplete_signature(format!(
                "the Authorization header is not a complete {ALGORITHM} signature: {what}"
            ))
        };
        let Some(rest) = value.strip_prefix(ALGORITHM).and_then(|r| r.strip_prefix(' ')) else {
            return Err(incomplete("it must start with AWS4-HMAC-SHA256 (SigV4)"));
        };
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let credential = credential.ok_or_else(|| incomplete("no Credential="))?;
        let signed_headers = signed_headers.ok_or_else(|| incomplete("no SignedHeaders="))?;
        let signature = signature.ok_or_else(|| incomplete("no Signature="))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
            return Err(incomplete("Credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request"));
        };
        if access_key_id.is_empty() {
            return Err(incomplete("the access key ID is empty"));
        }
        if region.is_empty()
            || region.len() > 64
            || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(incomplete("the Region of the credential scope is not a Region name"));
        }
        Ok(Authorization {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed_headers.split(';').collect(),
            signature,
        })
    }
}

/// The Region of the request's credential scope, if it carries an `Authorization` header.
pub(crate) fn region_scope(headers: &HeaderMap) -> Result<Option<String>, Fault> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| Fault::incomplete_signature("the Authorization header is not ASCII"))?;
    Ok(Some(Authorization::parse(value)?.region.to_string()))
}

/// The request as received, borrowed for verification.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Checks that `request` is signed with a key of `store`, at a time within [`MAX_SKEW`] of `now`.
pub(crate) fn verify(store: &CredentialStore, request: Received<'_>, now: SystemTime) -> Result<(), Fault> {
    let Some(value) = request.headers.get(header::AUTHORIZATION) else {
        return Err(Fault::missing_authentication_token());
    };
    let value = value.to_str().map_err(|_| Fault::incomplete_signature("the Authorization header is not ASCII"))?;
    let auth = Authorization::parse(value)?;
    if auth.service != SERVICE {
        return Err(Fault::invalid_signature(format!(
            "Credential should be scoped to correct service: '{SERVICE}', not '{}'",
            auth.service
        )));
    }
    let Some(secret) = store.secret(auth.access_key_id) else {
        return Err(Fault::unrecognized_client());
    };
    let signed_at = signed_at(request.headers, &auth)?;
    check_skew(signed_at, now)?;
    for required in ["host", X_AMZ_DATE] {
        if !auth.signed_headers.contains(&required) {
            return Err(Fault::invalid_signature(format!("SignedHeaders must include {required}")));
        }
    }

    // Exactly the signed headers, every value of each, as received.
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let mut values = request.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(Fault::invalid_signature(format!("the signed header {name} is not in the request")));
        }
        for value in values {
            let value = value
                .to_str()
                .map_err(|_| Fault::invalid_signature(format!("the signed header {name} is not visible ASCII")))?;
            headers.push((*name, value));
        }
    }

    let expected = signature(&auth, secret, signed_at, request, headers)?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(Fault::invalid_signature(
            "The request signature we calculated does not match the signature you provided. Check your AWS \
             Secret Access Key and signing method.",
        ))
    }
}

/// The signature the client should have sent, by the SDK's signer.
fn signature(
    auth: &Authorization<'_>,
    secret: &str,
    signed_at: SystemTime,
    request: Received<'_>,
    headers: Vec<(&str, &str)>,
) -> Result<String, Fault> {
    let cannot = |e: &dyn std::fmt::Display| Fault::invalid_signature(format!("cannot verify the signature: {e}"));
    let identity = Credentials::new(auth.access_key_id, secret, None, None, "parquetrail-server").into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client listed (the default leaves out user-agent and others).
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| cannot(&e))?
        .into();
    let path_and_query = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let signable = SignableRequest::new(
        request.method.as_str(),
        path_and_query,
        headers.into_iter(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| cannot(&e))?;
    let (_, signature) = sign(signable, &params).map_err(|e| cannot(&e))?.into_parts();
    Ok(signature)
}

/// The request's `X-Amz-Date`, which must fall on the credential scope's date.
fn signed_at(headers: &HeaderMap, auth: &Authorization<'_>) -> Result<SystemTime, Fault> {
    let Some(value) = headers.get(X_AMZ_DATE).and_then(|v| v.to_str().ok()) else {
        return Err(Fault::incomplete_signature("Authorization header requires the existence of an X-Amz-Date header"));
    };
    let time = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ").map_err(|_| {
        Fault::incomplete_signature(format!("X-Amz-Date {value:?} is not in the form YYYYMMDDTHHMMSSZ"))
    })?;
    if !value.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(Fault::invalid_signature(format!(
            "Credential should be scoped to a valid date: the scope says {} but X-Amz-Date is {value}",
            auth.date
        )));
    }
    Ok(SystemTime::from(time.and_utc()))
}

fn check_skew(signed_at: SystemTime, now: SystemTime) -> Result<(), Fault> {
    let minutes = MAX_SKEW.as_secs() / 60;
    match now.duration_since(signed_at) {
        Ok(age) if age > MAX_SKEW => Err(Fault::invalid_signature(format!(
            "Signature expired: the request was signed {} s ago, more than {minutes} minutes",
            age.as_secs()
        ))),
        Err(ahead) if ahead.duration() > MAX_SKEW => Err(Fault::invalid_signature(format!(
            "Signature not yet current: the request is dated {} s in the future, more than {minutes} minutes",
            ahead.duration().as_secs()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_headers() {
        let value = "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/cloudtrail/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, Signature=abc123";
        let auth = Authorization::parse(value).unwrap();
        assert_eq!(
            auth,
            Authorization {
                access_key_id: "AKID",
                date: "20240101",
                region: "eu-west-1",
                service: "cloudtrail",
                signed_headers: vec!["content-type", "host", "x-amz-date"],
                signature: "abc123",
            }
        );
        let bad = [
            "Bearer abc",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/cloudtrail, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/../cloudtrail/aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host",
        ];
        for value in bad {
            let fault = Authorization::parse(value).unwrap_err();
            assert_eq!(fault.code(), "IncompleteSignatureException", "{value}");
        }
    }

    #[test]
    fn skew_is_limited_both_ways() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let minute = Duration::from_secs(60);
        assert!(check_skew(now - 15 * minute, now).is_ok());
        assert!(check_skew(now + 15 * minute, now).is_ok());
        assert!(check_skew(now - 16 * minute, now).is_err());
        assert!(check_skew(now + 16 * minute, now).is_err());
    }
}
