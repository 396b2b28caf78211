//! The Crossbar response envelope.
//!
//! Handlers answer with a [`Reply`] or an `ApiError`; both leave their envelope fields in
//! the response's extensions, and the [`complete_envelope`] middleware adds what only the
//! request knows (`request_id`, `auth_token`) and what every answer carries (`timestamp`,
//! `node`, `version`, `revision`), then writes the JSON body.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::fields::{EnvelopeFields, PageInfo};
use super::state::AppState;
use crate::clock;
use crate::version::VERSION;

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    fields: Map<String, Value>,
    location: Option<String>,
}

impl Reply {
    /// 200 with `data`.
    pub(crate) fn ok(data: Value) -> Self {
        let mut fields = Map::new();
        fields.insert("data".into(), data);
        fields.insert("status".into(), "success".into());
        Reply {
            status: StatusCode::OK,
            fields,
            location: None,
        }
    }

    /// 201 with `data`.
    pub(crate) fn created(data: Value) -> Self {
        Reply {
            status: StatusCode::CREATED,
            ..Reply::ok(data)
        }
    }

    /// Any status with `data`.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds the paging fields of a listing.
    pub(crate) fn paged(mut self, page: PageInfo) -> Self {
        self.fields
            .insert("page_size".into(), page.page_size.into());
        if let Some(k) = page.start_key {
            self.fields.insert("start_key".into(), k.into());
        }
        if let Some(k) = page.next_start_key {
            self.fields.insert("next_start_key".into(), k.into());
        }
        self
    }

    /// Sets the envelope's `auth_token` (a newly issued token).
    pub(crate) fn with_auth_token(mut self, token: String) -> Self {
        self.fields.insert("auth_token".into(), token.into());
        self
    }

    /// Sets the `Location` header (a created resource).
    pub(crate) fn with_location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
            .extensions_mut()
            .insert(EnvelopeFields(self.fields));
        response
    }
}

/// Middleware: turns the handler's [`EnvelopeFields`] into the full JSON envelope.
pub(crate) async fn complete_envelope(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let caller_token = request
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = hex::encode(rand::random::<[u8; 16]>());
    let span = tracing::info_span!("request", %request_id, method = %request.method(), path = %request.uri().path());
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    let Some(EnvelopeFields(mut fields)) = response.extensions_mut().remove::<EnvelopeFields>()
    else {
        return response;
    };
    let data = fields.get("data").cloned().unwrap_or(Value::Null);
    fields
        .entry("revision")
        .or_insert_with(|| revision_of(&data).into());
    fields.insert("request_id".into(), request_id.clone().into());
    fields.insert(
        "timestamp".into(),
        clock::rfc3339(clock::now_unix_ms()).into(),
    );
    fields.insert("node".into(), state.node().into());
    fields.insert("version".into(), VERSION.into());
    if !fields.contains_key("auth_token") {
        fields.insert(
            "auth_token".into(),
            caller_token.map(Value::String).unwrap_or_else(|| "".into()),
        );
    }
    let body = serde_json::to_vec(&Value::Object(fields)).unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(body);
    response
}

/// A content hash of the answer's data, Crossbar's listing `revision`.
fn revision_of(data: &Value) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let hash = blake3::hash(&bytes);
    hash.to_hex()[..32].to_owned()
}
