//! Event ingest shared by every source (`POST /v2/events`, RabbitMQ): validate an
//! incoming event, drop producer retries of an event already accepted, and append the
//! rest durably in one group commit. Delivery starts from the log's commit hook.

use std::collections::HashSet;
use std::sync::Arc;

use eventlog::{AccountId, Event, EventId, EventLog, LogError};
use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use actors::Registry;

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
    registry: Arc<RwLock<Registry>>,
}

impl Ingest {
    pub fn new(log: EventLog, registry: Arc<RwLock<Registry>>) -> Self {
        Ingest { log, registry }
    }

    /// Appends the events in one durable batch, skipping those whose `event_id` was
    /// already accepted (or repeats within the batch). Returns how many were appended.
    /// When this returns `Ok`, every event is in the log, or was already.
    pub async fn accept(&self, events: Vec<IncomingEvent>) -> Result<usize, LogError> {
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut records = Vec::with_capacity(events.len());
        {
            let registry = self.registry.read();
            for event in events {
                let event_id = match event.event_id {
                    Some(id) => {
                        if registry.event_seen(&id) || !seen.insert(id.clone()) {
                            continue;
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
        let appended = records.len();
        self.log.append(records).await?;
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_event_keeps_its_whole_object_as_payload() {
        let e = validate_event(
            json!({"hook_event": "channel_create", "account_id": "0123456789abcdef0123456789abcdef",
            "event_id": "p-1", "call_id": "c"}),
        )
        .unwrap();
        assert_eq!(e.event_id.unwrap().as_str(), "p-1");
        assert_eq!(e.payload["call_id"], "c");
    }

    #[test]
    fn every_problem_is_named() {
        let problems =
            validate_event(json!({"hook_event": "all", "account_id": 5, "event_id": "bad id"}))
                .unwrap_err();
        let named: Vec<(&str, &str)> = problems.iter().map(|p| (p.field, p.rule)).collect();
        assert_eq!(
            named,
            vec![
                ("hook_event", "enum"),
                ("account_id", "type"),
                ("event_id", "wrong_format")
            ]
        );
        let problems = validate_event(json!([1])).unwrap_err();
        assert_eq!(problems[0].rule, "type");
        let problems = validate_event(json!({})).unwrap_err();
        assert_eq!(problems.len(), 2);
    }
}
