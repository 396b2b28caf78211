//! Request input: the Crossbar body (`{"data": ...}`) and the raw query string.
//!
//! Bodies are parsed as JSON whatever the `Content-Type` says: the user's document sends
//! some with `curl -d` and no header, which curl labels form-urlencoded. Extraction never
//! rejects by itself; a handler asks for the data after it has authorised the caller, so
//! a caller outside the subtree learns 403 before anything about its body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The parsed request body, or why it could not be parsed.
pub(crate) struct CrossbarBody(Result<Value, ApiError>);

impl CrossbarBody {
    /// The envelope's `data` (an empty object when the body or the key is absent).
    pub(crate) fn data(self) -> Result<Value, ApiError> {
        self.0
    }
}

impl<S: Send + Sync> FromRequest<S> for CrossbarBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(usize::MAX, |l| l.0);
        let parsed = match Bytes::from_request(request, state).await {
            Ok(bytes) => parse_envelope(&bytes),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(limit))
            }
            Err(rejection) => Err(ApiError::BadRequest {
                message: "invalid request body",
                data: serde_json::json!({"message": rejection.body_text()}),
            }),
        };
        Ok(CrossbarBody(parsed))
    }
}

/// The configured body limit, put in the request extensions so errors can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// Parses `{"data": ...}`; an empty body is an empty `data` object.
pub(crate) fn parse_envelope(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    match value {
        Value::Object(mut envelope) => Ok(envelope
            .remove("data")
            .unwrap_or_else(|| Value::Object(Map::new()))),
        _ => Err(ApiError::BadRequest {
            message: "invalid request body",
            data: serde_json::json!({
                "message": "request body must be a JSON object: {\"data\": {...}}"
            }),
        }),
    }
}

/// The query string as ordered key/value pairs.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueryPairs(pub(crate) Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(QueryPairs(pairs))
    }
}

#[cfg(test)]
mod tests;
