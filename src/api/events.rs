//! `POST /v2/events`: event ingest (master token only).
//!
//! A batch is validated whole: one bad event refuses the batch (400 naming the event's
//! index and field) and nothing is accepted. Otherwise every event is appended in one
//! durable group commit and only then answered 202 `{"accepted": N}`. An event whose
//! `event_id` was already accepted (a producer's retry) is acknowledged and counted but
//! not appended again.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use eventlog::{AccountId, Event, EventId};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::body::CrossbarBody;
use super::envelope::Reply;
use super::error::ApiError;
use super::validate::Errors;
use super::AppState;
use crate::catalog;

/// One event that passed validation.
struct ValidEvent {
    event_id: Option<EventId>,
    account_id: AccountId,
    hook_event: String,
    payload: Map<String, Value>,
}

/// `POST /v2/events` with `{"data": EVENT}` or `{"data": [EVENT, ...]}`.
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
            let mut errors = Errors::default();
            errors.wrong_type("data", "object or array of objects", &other);
            return Err(validation(errors));
        }
    };
    if events.is_empty() {
        return Err(ApiError::BadRequest {
            message: "no events",
            data: json!({"message": "data must hold at least one event"}),
        });
    }
    let total = events.len();
    let valid = validate_events(events, batch)?;
    let mut seen: HashSet<EventId> = HashSet::new();
    let mut records = Vec::with_capacity(valid.len());
    {
        let registry = state.registry();
        for event in valid {
            let event_id = match event.event_id {
                Some(id) => {
                    if registry.event_seen(&id) || !seen.insert(id.clone()) {
                        continue; // acknowledged, not delivered twice
                    }
                    id
                }
                None => EventId::generate(),
            };
            records.push(Event::EventAccepted {
                event_id,
                account_id: event.account_id,
                hook_event: event.hook_event,
                payload: Value::Object(event.payload),
            });
        }
    }
    state.commit(records).await?;
    Ok(Reply::ok(json!({ "accepted": total })).with_status(StatusCode::ACCEPTED))
}

fn validate_events(events: Vec<Value>, batch: bool) -> Result<Vec<ValidEvent>, ApiError> {
    let mut errors = Errors::default();
    let mut valid = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let path = |field: &str| {
            if batch {
                format!("{index}.{field}")
            } else {
                field.to_owned()
            }
        };
        let Value::Object(payload) = event else {
            let at = if batch {
                index.to_string()
            } else {
                "data".to_owned()
            };
            errors.wrong_type(&at, "object", &event);
            continue;
        };
        let hook_event = match payload.get("hook_event") {
            Some(Value::String(h)) if catalog::hook_ids().contains(&h.as_str()) => Some(h.clone()),
            Some(Value::String(h)) => {
                errors.not_in_enum(
                    &path("hook_event"),
                    catalog::hook_ids(),
                    &Value::String(h.clone()),
                );
                None
            }
            None | Some(Value::Null) => {
                errors.add(
                    &path("hook_event"),
                    "required",
                    json!({"message": "Field is required but missing"}),
                );
                None
            }
            Some(other) => {
                errors.wrong_type(&path("hook_event"), "string", other);
                None
            }
        };
        let account_id = match payload.get("account_id") {
            Some(Value::String(a)) => match AccountId::parse(a) {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add(&path("account_id"), "wrong_format", json!({"message": "Field is not in the correct format", "value": a, "format": "32 lowercase hex characters"}));
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.add(
                    &path("account_id"),
                    "required",
                    json!({"message": "Field is required but missing"}),
                );
                None
            }
            Some(other) => {
                errors.wrong_type(&path("account_id"), "string", other);
                None
            }
        };
        let event_id = match payload.get("event_id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(e)) => EventId::parse(e).map(Some).map_err(|_| {
                errors.add(&path("event_id"), "wrong_format", json!({"message": "Field is not in the correct format", "value": e, "format": "1 to 64 of [A-Za-z0-9_-]"}));
            }),
            Some(other) => {
                errors.wrong_type(&path("event_id"), "string", other);
                Err(())
            }
        };
        if let (Some(hook_event), Some(account_id), Ok(event_id)) =
            (hook_event, account_id, event_id)
        {
            valid.push(ValidEvent {
                event_id,
                account_id,
                hook_event,
                payload,
            });
        }
    }
    errors.into_result()?;
    Ok(valid)
}

fn validation(errors: Errors) -> ApiError {
    match errors.into_result() {
        Err(e) => e,
        Ok(()) => ApiError::Validation(Map::new()),
    }
}
