//! The one response type for every refusal: AWS JSON 1.1's error shape,
//! `{"__type":"<Name>","message":"…"}` with the HTTP status AWS uses for it. SDKs map `__type` to
//! their exception types (`InvalidNextTokenException`, …), so the name is the contract.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A refusal, rendered as AWS renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Fault {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fault {
        Fault { status, code, message: message.into() }
    }

    /// The error name clients see in `__type` (for example `InvalidTimeRangeException`).
    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The message clients see.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid_lookup_attributes(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidLookupAttributesException", message)
    }

    pub(crate) fn invalid_time_range(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidTimeRangeException", message)
    }

    pub(crate) fn invalid_next_token(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidNextTokenException", message)
    }

    pub(crate) fn invalid_max_results(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidMaxResultsException", message)
    }

    pub(crate) fn invalid_event_category(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidEventCategoryException", message)
    }

    /// `ListInsightsMetricData`'s refusal of a combination of values (a period other than 60, 300
    /// or 3600, an error rate without an error code, a time range that is empty).
    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "InvalidParameterException", message)
    }

    /// An `InvalidNextTokenException` as `ListInsightsMetricData` words it (its model has no
    /// such exception: a bad token is an `InvalidParameterException`); any other fault unchanged.
    pub(crate) fn into_invalid_parameter(self) -> Fault {
        if self.code == "InvalidNextTokenException" { Fault::invalid_parameter(self.message) } else { self }
    }

    /// A member outside its modelled constraints (pattern, length, range, enum), in AWS's words:
    /// `1 validation error detected: Value 'x' at 'eventName' failed to satisfy constraint: …`.
    pub(crate) fn validation(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub(crate) fn unsupported_operation(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "UnsupportedOperationException", message)
    }

    /// The body is not JSON, or a member has the wrong JSON type.
    pub(crate) fn serialization(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    pub(crate) fn unknown_operation(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "UnknownOperationException", message)
    }

    pub(crate) fn payload_too_large(limit: usize) -> Fault {
        Fault::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("the request body is larger than this server's limit of {limit} bytes"),
        )
    }

    pub(crate) fn missing_authentication_token() -> Fault {
        Fault::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: this server verifies SigV4 signatures; sign the request",
        )
    }

    /// The Authorization header is present but not a complete SigV4 header.
    pub(crate) fn incomplete_signature(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::FORBIDDEN, "IncompleteSignatureException", message)
    }

    pub(crate) fn invalid_signature(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::FORBIDDEN, "InvalidSignatureException", message)
    }

    pub(crate) fn unrecognized_client() -> Fault {
        Fault::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid: unknown access key ID",
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", message)
    }

    /// SDKs retry 503s, which suits a lookup that ran out of time on a busy archive.
    pub(crate) fn timeout(after: std::time::Duration) -> Fault {
        Fault::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            format!("the request did not complete within {} s", after.as_secs_f64()),
        )
    }

    /// A path the server does not serve: says what it does serve, for a person who mistyped a URL
    /// as much as for an SDK pointed at the wrong endpoint.
    pub(crate) fn not_found() -> Fault {
        Fault::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "not found: this server answers the LookupEvents API (AWS JSON 1.1) at POST /, and the web console \
             (unless --no-console) at GET / with its views /events, /event, /compare, /dashboard and /insights, \
             and its data under /console/api/",
        )
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        tracing::debug!(status = self.status.as_u16(), error = self.code, message = %self.message, "refused");
        let body = serde_json::json!({ "__type": self.code, "message": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::server::CONTENT_TYPE));
        // Some SDKs read the error name from this header before the body.
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        response
    }
}
