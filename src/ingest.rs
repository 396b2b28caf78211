//! Event ingest shared by every source (`POST /v2/events`, RabbitMQ): validate an
//! incoming event, drop producer retries of an event already accepted, and append the
//! rest durably in one group commit. Delivery starts from the log's commit hook.

use eventlog::{AccountId, Event, EventId, EventLog, LogError};
use prometheus_client::metrics::counter::Counter;
use serde_json::{Map, Value};

use crate::catalog;
use crate::kazoo_errors::Violation;

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
/// in Kazoo's validation shape (written by `kazoo_errors`, as the API's are).
#[derive(Debug, Clone, PartialEq)]
pub struct EventProblem {
    pub field: &'static str,
    pub rule: &'static str,
    pub detail: Value,
}

impl EventProblem {
    fn new(field: &'static str, violation: Violation) -> Self {
        EventProblem {
            field,
            rule: violation.rule,
            detail: violation.detail,
        }
    }
}

/// Validates one event: an object with a known `hook_event`, a well-formed
/// `account_id` and, when present, a well-formed `event_id`.
pub fn validate_event(value: Value) -> Result<IncomingEvent, Vec<EventProblem>> {
    let Value::Object(payload) = value else {
        return Err(vec![EventProblem::new(
            "",
            Violation::wrong_type("object", &value),
        )]);
    };
    let mut problems = Vec::new();
    let hook_event = string_field(&payload, "hook_event", Presence::Required, &mut problems)
        .and_then(|h| {
            if catalog::hook_ids().contains(&h) {
                Some(h.to_owned())
            } else {
                let violation = Violation::not_in_enum(catalog::hook_ids(), &h.into());
                problems.push(EventProblem::new("hook_event", violation));
                None
            }
        });
    let account_id = string_field(&payload, "account_id", Presence::Required, &mut problems)
        .and_then(|a| match AccountId::parse(a) {
            Ok(id) => Some(id),
            Err(_) => {
                let violation = Violation::wrong_format(a, "32 lowercase hex characters");
                problems.push(EventProblem::new("account_id", violation));
                None
            }
        });
    let event_id =
        string_field(&payload, "event_id", Presence::Optional, &mut problems).and_then(|e| {
            match EventId::parse(e) {
                Ok(id) => Some(id),
                Err(_) => {
                    let violation = Violation::wrong_format(e, "1 to 64 of [A-Za-z0-9_-]");
                    problems.push(EventProblem::new("event_id", violation));
                    None
                }
            }
        });
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

/// Whether an event field must be there.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Presence {
    Required,
    Optional,
}

/// An event field that must be a string when present (`null` counts as absent); a
/// missing required field or a wrong type is added to `problems`.
fn string_field<'a>(
    payload: &'a Map<String, Value>,
    field: &'static str,
    presence: Presence,
    problems: &mut Vec<EventProblem>,
) -> Option<&'a str> {
    match payload.get(field) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => {
            if presence == Presence::Required {
                problems.push(EventProblem::new(field, Violation::required()));
            }
            None
        }
        Some(other) => {
            problems.push(EventProblem::new(
                field,
                Violation::wrong_type("string", other),
            ));
            None
        }
    }
}

/// Appends validated events; shared by every ingest source.
#[derive(Clone)]
pub struct Ingest {
    log: EventLog,
    /// Counts the events appended (`piston_events_accepted_total` of this source).
    accepted: Counter,
}

impl Ingest {
    pub fn new(log: EventLog, accepted: Counter) -> Self {
        Ingest { log, accepted }
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
        let appended = self.log.append(records).await?.len();
        self.accepted.inc_by(appended as u64);
        Ok(appended)
    }
}

#[cfg(test)]
mod tests;
