//! Request input: the Crossbar body (`{"data": ...}`) and the raw query string, and
//! [`read_whole_body`], the middleware that reads every request's body before routing.
//!
//! Every body is read whole, within `--max-body-bytes` and the body timeout, before any
//! handler runs, even one that needs no body (a GET that carries one, a route that does
//! not exist): a body left unread would make hyper close the keep-alive connection after
//! the answer. A body over the limit is still read (and dropped) up to [`DRAIN_BYTES`], so
//! the client reads its 413 instead of a reset; a body that stalls is answered 408.
//!
//! Bodies are parsed as JSON whatever the `Content-Type` says: the user's document sends
//! some with `curl -d` and no header, which curl labels form-urlencoded. Extraction never
//! rejects by itself; a handler asks for the data after it has authorised the caller, so
//! a caller outside the subtree learns 403 before anything about its body.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
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

/// How much of a body over the limit is read and dropped before the 413, so that the
/// client, still sending, reads the answer rather than a connection reset. Past it the
/// connection is closed after the answer.
pub(crate) const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// How request bodies are read: the limit and how long a body may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodySettings {
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}

/// Reads the whole body (see the module documentation), then hands the request on with
/// the bytes read.
pub(crate) async fn read_whole_body(
    State(settings): State<BodySettings>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(BodyLimit(settings.max_bytes));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = tokio::time::timeout(
        settings.timeout,
        read_bounded(body, settings.max_bytes, declared),
    );
    match read.await {
        Ok(Read::Whole(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Read::TooLarge { drained }) => {
            let mut response = ApiError::PayloadTooLarge(settings.max_bytes).into_response();
            if !drained {
                close_after(&mut response);
            }
            response
        }
        Ok(Read::Broken(why)) => {
            let mut response = ApiError::BadRequest {
                message: "invalid request body",
                data: serde_json::json!({"message": why}),
            }
            .into_response();
            close_after(&mut response);
            response
        }
        Err(_) => {
            let mut response = ApiError::RequestTimeout(settings.timeout).into_response();
            close_after(&mut response);
            response
        }
    }
}

/// The connection cannot be reused: part of the body may still be on its way.
fn close_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// How reading a body ended.
enum Read {
    Whole(Bytes),
    /// Over the limit; `drained` when the rest was read (and dropped) to its end.
    TooLarge {
        drained: bool,
    },
    Broken(String),
}

/// Reads `body` up to `max` bytes; past that, drains it up to [`DRAIN_BYTES`].
async fn read_bounded(body: Body, max: usize, declared: Option<u64>) -> Read {
    let mut stream = body.into_data_stream();
    let over_at_once = declared.is_some_and(|n| n > max as u64);
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Read::Broken(e.to_string()),
        };
        seen = seen.saturating_add(chunk.len());
        if over_at_once || seen > max {
            if seen > DRAIN_BYTES {
                return Read::TooLarge { drained: false };
            }
            kept = Vec::new();
            continue;
        }
        kept.extend_from_slice(&chunk);
    }
    if over_at_once || seen > max {
        return Read::TooLarge { drained: true };
    }
    Read::Whole(Bytes::from(kept))
}

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
