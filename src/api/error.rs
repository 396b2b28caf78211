//! [`ApiError`]: every way a request can fail, rendered as the Crossbar error envelope.
//!
//! Input errors keep their status and are not logged; internal errors are logged inside
//! the request span and answered opaquely.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::fields::EnvelopeFields;
use crate::kazoo_errors::Errors;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("invalid credentials")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// An unknown id, or one that belongs to another account.
    #[error("bad identifier {0}")]
    BadIdentifier(String),
    #[error("no such route {0}")]
    RouteNotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Kazoo-shaped validation details: path -> rule -> detail.
    #[error("validation error")]
    Validation(Map<String, Value>),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body did not arrive within the body timeout.
    #[error("request body not received within {0:?}")]
    RequestTimeout(std::time::Duration),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A tenant limit of INTERFACE.md section 8 (depth, children, webhook count).
    #[error("{what} is limited to {limit} ({flag})")]
    LimitReached {
        what: &'static str,
        flag: &'static str,
        limit: usize,
    },
    /// A stored document over `--max-document-bytes`.
    #[error("document larger than {0} bytes")]
    DocumentTooLarge(usize),
    /// A request that is well-formed but refused, with a short message and details.
    #[error("{message}")]
    BadRequest { message: &'static str, data: Value },
    /// The event log could not take the change.
    #[error("datastore fault: {0}")]
    Storage(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::BadIdentifier(_) | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) | ApiError::InvalidJson(_) | ApiError::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::LimitReached { .. } => StatusCode::BAD_REQUEST,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) | ApiError::DocumentTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The envelope's `message` and `data`.
    fn message_and_data(self) -> (String, Value) {
        match self {
            ApiError::Unauthorized => (
                "invalid_credentials".into(),
                json!({"message": "invalid credentials"}),
            ),
            ApiError::Forbidden => ("forbidden".into(), json!({"message": "forbidden"})),
            ApiError::BadIdentifier(id) => (
                "bad_identifier".into(),
                json!({"message": "bad identifier", "cause": id}),
            ),
            ApiError::RouteNotFound(path) => (
                "not_found".into(),
                json!({"message": "no such route", "cause": path}),
            ),
            ApiError::MethodNotAllowed => (
                "method_not_allowed".into(),
                json!({"message": "method not allowed on this route"}),
            ),
            ApiError::Validation(details) => ("validation error".into(), Value::Object(details)),
            ApiError::InvalidJson(why) => (
                "invalid request body".into(),
                json!({"message": format!("request body is not valid JSON: {why}")}),
            ),
            ApiError::PayloadTooLarge(limit) => (
                "payload too large".into(),
                json!({"message": format!("request body is larger than {limit} bytes")}),
            ),
            ApiError::RequestTimeout(after) => (
                "request timeout".into(),
                json!({"message": format!("the request body did not arrive within {} s", after.as_secs())}),
            ),
            ApiError::LimitReached { what, flag, limit } => (
                "limit reached".into(),
                json!({
                    "message": format!("{what} is limited to {limit} ({flag})"),
                    "limit": flag,
                    "value": limit,
                }),
            ),
            ApiError::DocumentTooLarge(limit) => (
                "document too large".into(),
                json!({
                    "message": format!("the stored document would be larger than {limit} bytes (--max-document-bytes)"),
                    "limit": "--max-document-bytes",
                    "value": limit,
                }),
            ),
            ApiError::Conflict(why) => (
                "datastore_conflict".into(),
                json!({"message": "conflicting documents", "cause": why}),
            ),
            ApiError::BadRequest { message, data } => (message.into(), data),
            ApiError::Storage(why) => {
                tracing::error!(error = %why, "event log refused a change");
                (
                    "datastore_fault".into(),
                    json!({"message": "datastore fatal error"}),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, data) = self.message_and_data();
        let mut fields = Map::new();
        fields.insert("data".into(), data);
        fields.insert("status".into(), "error".into());
        fields.insert("error".into(), status.as_u16().to_string().into());
        fields.insert("message".into(), message.into());
        let mut response = status.into_response();
        response.extensions_mut().insert(EnvelopeFields(fields));
        response
    }
}

impl From<Errors> for ApiError {
    fn from(errors: Errors) -> Self {
        ApiError::Validation(errors.into_map())
    }
}

impl From<eventlog::LogError> for ApiError {
    fn from(e: eventlog::LogError) -> Self {
        ApiError::Storage(e.to_string())
    }
}
