//! Event ingest shared by every source (`POST /v2/events`, RabbitMQ): validate an
//! incoming event, drop producer retries of an event already accepted, and append the
//! rest durably in one group commit. Delivery starts from the log's commit hook.

use eventlog::{AccountId, Event, EventId, EventLog, LogError};
use serde_json::{json, Map, Value};

use crate::catalog;

/// An event that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// The producer's id, if it gave one.
    pub event_id: Option<EventId>,
    pub account_id: AccountId,
    pub hook_event: String,
    /// The whole event object, delivered as the payload.
    pub payload: Map<String, Value>,
}

/// One thing wrong with an incoming event: the field, the rule it broke, and details
/// in Kazoo's validation shape.
#[derive(Debug, Clone, PartialEq)]
pub struct EventProblem {
    pub field: &'static str,
    pub rule: &'static str,
    pub detail: Value,
}

impl EventProblem {
    fn new(field: &'static str, rule: &'static str, detail: Value) -> Self {
        EventProblem {
            field,
            rule,
            detail,
        }
    }
}

/// Validates one event: an object with a known `hook_event`, a well-formed
/// `account_id` and, when present, a well-formed `event_id`.
pub fn validate_event(value: Value) -> Result<IncomingEvent, Vec<EventProblem>> {
    let Value::Object(payload) = value else {
        return Err(vec![EventProblem::new(
            "",
            "type",
            json!({"message": "Value did not match type(s): object", "target": "object", "value": value}),
        )]);
    };
    let mut problems = Vec::new();
    let hook_event = match payload.get("hook_event") {
        Some(Value::String(h)) if catalog::hook_ids().contains(&h.as_str()) => Some(h.clone()),
        Some(Value::String(h)) => {
            problems.push(EventProblem::new(
                "hook_event",
                "enum",
                json!({"message": "Value not found in enumerated list of values", "target": catalog::hook_ids(), "value": h}),
            ));
            None
        }
        None | Some(Value::Null) => {
            problems.push(EventProblem::new(
                "hook_event",
                "required",
                json!({"message": "Field is required but missing"}),
            ));
            None
        }
        Some(other) => {
            problems.push(EventProblem::new(
                "hook_event",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": other}),
            ));
            None
        }
    };
    let account_id = match payload.get("account_id") {
        Some(Value::String(a)) => match AccountId::parse(a) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(EventProblem::new(
                    "account_id",
                    "wrong_format",
                    json!({"message": "Field is not in the correct format", "value": a, "format": "32 lowercase hex characters"}),
                ));
                None
            }
        },
        None | Some(Value::Null) => {
            problems.push(EventProblem::new(
                "account_id",
                "required",
                json!({"message": "Field is required but missing"}),
            ));
            None
        }
        Some(other) => {
            problems.push(EventProblem::new(
                "account_id",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": other}),
            ));
            None
        }
    };
    let event_id = match payload.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) => match EventId::parse(e) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(EventProblem::new(
                    "event_id",
                    "wrong_format",
                    json!({"message": "Field is not in the correct format", "value": e, "format": "1 to 64 of [A-Za-z0-9_-]"}),
                ));
                None
            }
        },
        Some(other) => {
            problems.push(EventProblem::new(
                "event_id",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": other}),
            ));
            None
        }
    };
    match (hook_event, account_id) {
        (Some(hook_event), Some(account_id)) if problems.is_empty() => Ok(IncomingEvent {
            event_id,
            account_id,
            hook_event,
            payload,
        }),
        _ => Err(problems),
    }
}

/// Appends validated events; shared by every ingest source.
#[derive(Clone)]
pub struct Ingest {
    log: EventLog,
}

impl Ingest {
    pub fn new(log: EventLog) -> Self {
        Ingest { log }
    }

    /// Appends the events in one durable batch. The log's writer skips an event whose
    /// `event_id` is already in the log (or earlier in the batch): a producer's retry is
    /// acknowledged but not delivered twice. Returns how many were appended. When this
    /// returns `Ok`, every event is in the log, or already was.
    pub async fn accept(&self, events: Vec<IncomingEvent>) -> Result<usize, LogError> {
        let records = events
            .into_iter()
            .map(|event| Event::EventAccepted {
                event_id: event.event_id.unwrap_or_else(EventId::generate),
                account_id: event.account_id,
                hook_event: event.hook_event,
                payload: Value::Object(event.payload),
            })
            .collect();
        Ok(self.log.append(records).await?.len())
    }
}

#[cfg(test)]
mod tests;
