//! `POST /v2/events`: event ingest over HTTP (master token only).
//!
//! A batch is validated whole: one bad event refuses the batch (400 naming the event's
//! index and field) and nothing is accepted. Otherwise every event is appended in one
//! durable group commit and only then answered 202 `{"accepted": N}`. An event whose
//! `event_id` was already accepted (a producer's retry) is acknowledged and counted but
//! not appended again.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::auth::Caller;
use super::body::CrossbarBody;
use super::envelope::Reply;
use super::error::ApiError;
use super::schemas;
use super::state::AppState;
use crate::ingest::{validate_event, IncomingEvent};
use crate::kazoo_errors::{Errors, Violation};

/// `POST /v2/events` with `{"data": EVENT}` or `{"data": [EVENT, ...]}`.
#[utoipa::path(
    post,
    path = "/v2/events",
    tag = "events",
    summary = "Accept call events for delivery (master token only)",
    description = "A batch is validated whole: one bad event refuses it (errors keyed \
        `INDEX.FIELD`). Accepted events are durable before the answer; an `event_id` \
        already accepted is counted but not appended again.",
    request_body = schemas::Request<schemas::EventBatch>,
    responses(
        (status = 202, description = "Every event accepted.", body = schemas::Envelope<schemas::Accepted>),
        (status = 403, description = "The caller is not the master account.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn ingest_events(
    State(state): State<AppState>,
    caller: Caller,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    if !caller.is_master {
        return Err(ApiError::Forbidden);
    }
    let (events, batch) = match body.data()? {
        Value::Array(items) => (items, true),
        Value::Object(map) => (vec![Value::Object(map)], false),
        other => {
            let violation = Violation::wrong_type("object or array of objects", &other);
            return Err(Errors::one("data", violation).into());
        }
    };
    if events.is_empty() {
        return Err(ApiError::BadRequest {
            message: "no events",
            data: json!({"message": "data must hold at least one event"}),
        });
    }
    let total = events.len();
    let valid = validate_all(events, batch)?;
    state.ingest().accept(valid).await?;
    Ok(Reply::ok(json!({ "accepted": total })).with_status(StatusCode::ACCEPTED))
}

/// Validates every event; all problems of all events are reported, keyed
/// `INDEX.FIELD` in a batch and `FIELD` for a single event.
fn validate_all(events: Vec<Value>, batch: bool) -> Result<Vec<IncomingEvent>, ApiError> {
    let mut errors = Errors::default();
    let mut valid = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        match validate_event(event) {
            Ok(e) => valid.push(e),
            Err(problems) => {
                for p in problems {
                    let path = match (batch, p.field.is_empty()) {
                        (true, true) => index.to_string(),
                        (true, false) => format!("{index}.{}", p.field),
                        (false, true) => "data".to_owned(),
                        (false, false) => p.field.to_owned(),
                    };
                    errors.add(&path, Violation::new(p.rule, p.detail));
                }
            }
        }
    }
    errors.into_result()?;
    Ok(valid)
}
