//! Kazoo's call events, as they travel on RabbitMQ, turned into our events: pure
//! functions, no I/O.
//!
//! A Kazoo call event is a JSON object with hyphenated keys (`Event-Name`, `Call-ID`,
//! `Custom-Channel-Vars`, ...), published by `kapi_call:publish_event/1` to the topic
//! exchange `callevt` with the routing key `call.EVENT_NAME.CALL_ID` (the call id with
//! `.` encoded as `%2E`, so it is one topic word). The payloads follow Kazoo's
//! `webhooks_channel_util:base_hook_event/3` (channel events) and
//! `webhooks_parking:format/1` (park events); Kazoo 5's `webhooks_channel_events` adds
//! `CHANNEL_HOLD` / `CHANNEL_UNHOLD` with the same base payload. `docs/amqp.md` has the
//! whole table.

use serde_json::{Map, Value};

use eventlog::EventId;

use crate::ingest::{validate_event, EventProblem, IncomingEvent};

/// Kazoo's call-event exchange (`kz_amqp.hrl`: `EXCHANGE_CALLEVT`, type `topic`).
pub const CALL_EVENT_EXCHANGE: &str = "callevt";

/// The `Event-Name`s we consume; each is bound as `call.NAME.*`.
pub const EVENT_NAMES: [&str; 10] = [
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_DESTROY",
    "CHANNEL_DISCONNECTED",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "PARK_PARKED",
    "PARK_RETRIEVED",
    "PARK_ABANDONED",
];

/// The routing keys our queue is bound with: `call.EVENT_NAME.*` for each of
/// [`EVENT_NAMES`] (`kapi_call`'s `CALL_EVENT_ROUTING_KEY(Event, CallId)`).
pub fn routing_keys() -> Vec<String> {
    EVENT_NAMES
        .iter()
        .map(|name| format!("call.{name}.*"))
        .collect()
}

/// The `hook_event` a Kazoo `Event-Name` is delivered as, if we consume it.
pub fn hook_event_for(event_name: &str) -> Option<&'static str> {
    match event_name {
        "CHANNEL_CREATE" => Some("channel_create"),
        "CHANNEL_ANSWER" => Some("channel_answer"),
        "CHANNEL_BRIDGE" => Some("channel_bridge"),
        // webhooks_channel_util:hook_event_name/1
        "CHANNEL_DESTROY" | "CHANNEL_DISCONNECTED" => Some("channel_destroy"),
        // Kazoo 5's webhooks_channel_events:format_event/3.
        "CHANNEL_HOLD" => Some("channel_hold"),
        "CHANNEL_UNHOLD" => Some("channel_unhold"),
        "PARK_PARKED" | "PARK_RETRIEVED" | "PARK_ABANDONED" => Some("parking"),
        _ => None,
    }
}

/// What a well-formed message becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// An event to append (already through [`validate_event`]).
    Event(IncomingEvent),
    /// A well-formed event with no `Custom-Channel-Vars.Account-ID`: Kazoo drops it
    /// (it could look the number up; we cannot), and so do we.
    NoAccount {
        /// Its `Event-Name`.
        event_name: String,
    },
}

/// Why a message cannot be mapped; it goes to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotObject,
    #[error("no Event-Name")]
    NoEventName,
    #[error("unknown Event-Name {0:?}")]
    UnknownEventName(String),
    #[error("Event-Category is {0:?}, not \"call_event\"")]
    WrongCategory(String),
    #[error("no Call-ID")]
    NoCallId,
    #[error("mapped event is invalid: {}", describe(.0))]
    Invalid(Vec<EventProblem>),
}

fn describe(problems: &[EventProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{} {}", p.field, p.rule))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps one message body. `Ok(Mapped::Event)` carries a stable `event_id` (see
/// [`event_id_for`]) so a redelivered message is not delivered twice.
pub fn map_message(body: &[u8]) -> Result<Mapped, MappingError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| MappingError::NotJson(e.to_string()))?;
    let Value::Object(msg) = value else {
        return Err(MappingError::NotObject);
    };
    let event_name = match msg.get("Event-Name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(MappingError::NoEventName),
    };
    let Some(hook_event) = hook_event_for(&event_name) else {
        return Err(MappingError::UnknownEventName(event_name));
    };
    // kapi_call:event_v/1: `Event-Category` is "call_event" and `Call-ID` is present.
    match msg.get("Event-Category") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if c == "call_event" => {}
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(MappingError::WrongCategory(shown));
        }
    }
    if ne_binary(msg.get("Call-ID")).is_none() {
        return Err(MappingError::NoCallId);
    }
    let Some(account_id) = ccv(&msg, "Account-ID") else {
        return Ok(Mapped::NoAccount { event_name });
    };
    let mut payload = if hook_event == "parking" {
        parking_payload(&msg, &account_id)
    } else {
        channel_payload(&msg, hook_event, &account_id)
    };
    // The payload may carry a Kazoo key that normalizes to `event_id`; it is delivered
    // as Kazoo would, but is not the producer id `validate_event` would take it for.
    let foreign_event_id = payload.remove("event_id");
    let mut event = validate_event(Value::Object(payload)).map_err(MappingError::Invalid)?;
    if let Some(v) = foreign_event_id {
        event.payload.insert("event_id".into(), v);
    }
    event.event_id = Some(event_id_for(&msg, body));
    Ok(Mapped::Event(event))
}

/// A stable id for a message: from its `Msg-ID` (with `Event-Name` and `Call-ID`, so a
/// reused `Msg-ID` cannot hide another event) or, without one, from the body bytes. A
/// redelivery carries the same message, so it gets the same id and the ingest skips it.
pub fn event_id_for(msg: &Map<String, Value>, body: &[u8]) -> EventId {
    let mut hasher = blake3::Hasher::new();
    match ne_binary(msg.get("Msg-ID")) {
        Some(msg_id) => {
            hasher.update(b"msg-id\0");
            for part in [
                msg_id,
                ne_binary(msg.get("Event-Name")).unwrap_or_default(),
                ne_binary(msg.get("Call-ID")).unwrap_or_default(),
            ] {
                hasher.update(part.as_bytes());
                hasher.update(b"\0");
            }
        }
        None => {
            hasher.update(b"body\0");
            hasher.update(body);
        }
    }
    let hex = hasher.finalize().to_hex();
    let id = format!("kz-{}", &hex.as_str()[..40]);
    // 43 characters of [a-z0-9-]: always a valid id.
    EventId::parse(&id).unwrap_or_else(|_| EventId::generate())
}

/// The payload of a channel event (`webhooks_channel_util:base_hook_event/3` and
/// `format_event/3`). Keys whose value is undefined are omitted, as `kz_json:from_list`
/// does.
pub fn channel_payload(
    msg: &Map<String, Value>,
    hook_event: &str,
    account_id: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(key.to_owned(), v);
        }
    };
    let string = |s: Option<String>| s.map(Value::String);
    let was_global = is_true(ccv_value(msg, "Global-Resource"));
    put("hook_event", Some(Value::String(hook_event.to_owned())));
    put("account_id", Some(Value::String(account_id.to_owned())));
    put("authorizing_id", string(ccv(msg, "Authorizing-ID")));
    put("authorizing_type", string(ccv(msg, "Authorizing-Type")));
    put(
        "call_direction",
        string(ne_binary(msg.get("Call-Direction"))),
    );
    // kz_call_event:is_call_forwarded/1: only when the CCV is there.
    put(
        "call_forwarded",
        ccv(msg, "Call-Forward").map(|v| Value::Bool(is_true_str(&v))),
    );
    put("call_id", string(ne_binary(msg.get("Call-ID"))));
    put(
        "callee_id_name",
        string(ne_binary(msg.get("Callee-ID-Name"))),
    );
    put(
        "callee_id_number",
        string(ne_binary(msg.get("Callee-ID-Number"))),
    );
    put(
        "caller_id_name",
        string(ne_binary(msg.get("Caller-ID-Name"))),
    );
    put(
        "caller_id_number",
        string(ne_binary(msg.get("Caller-ID-Number"))),
    );
    // `custom_channel_vars` is omitted: Kazoo sends it only when system_config
    // `call_command.reserved_ccv_keys` is set, which it is not by default.
    put(
        "custom_application_vars",
        msg.get("Custom-Application-Vars")
            .filter(|v| v.is_object())
            .cloned(),
    );
    put(
        "emergency_resource_used",
        Some(Value::Bool(is_true(ccv_value(msg, "Emergency-Resource")))),
    );
    put("from", defined(msg.get("From")));
    put("inception", defined(msg.get("Inception")));
    put(
        "local_resource_id",
        if was_global {
            None
        } else {
            string(ccv(msg, "Resource-ID"))
        },
    );
    put("local_resource_used", Some(Value::Bool(!was_global)));
    put("is_internal_leg", Some(Value::Bool(is_internal_leg(msg))));
    put(
        "other_leg_call_id",
        string(ne_binary(msg.get("Other-Leg-Call-ID"))),
    );
    put("owner_id", string(ccv(msg, "Owner-ID")));
    put("request", defined(msg.get("Request")));
    // Kazoo looks the reseller up from the account; ecallmgr also sets it as a CCV.
    put("reseller_id", string(ccv(msg, "Reseller-ID")));
    put("timestamp", integer(msg.get("Timestamp")));
    put("to", defined(msg.get("To")));
    match hook_event {
        "channel_bridge" => {
            put("original_number", string(ccv(msg, "Original-Number")));
            put(
                "other_leg_destination_number",
                string(ne_binary(msg.get("Other-Leg-Destination-Number"))),
            );
        }
        "channel_destroy" => {
            put("hangup_cause", string(ne_binary(msg.get("Hangup-Cause"))));
            put("hangup_code", string(ne_binary(msg.get("Hangup-Code"))));
            put("duration_seconds", integer(msg.get("Duration-Seconds")));
            put("ringing_seconds", integer(msg.get("Ringing-Seconds")));
            put("billing_seconds", integer(msg.get("Billing-Seconds")));
        }
        _ => {}
    }
    out
}

/// The payload of a park event (`webhooks_parking:format/1`): the message with
/// `Account-ID` copied up from the channel variables, without the AMQP headers `Node`,
/// `Msg-ID`, `App-Version`, `App-Name`, `Event-Category` and `Custom-Channel-Vars`,
/// every key normalized (see [`normalize_key`]), nulls dropped; plus `hook_event`.
pub fn parking_payload(msg: &Map<String, Value>, account_id: &str) -> Map<String, Value> {
    const REMOVED: [&str; 6] = [
        "Node",
        "Msg-ID",
        "App-Version",
        "App-Name",
        "Event-Category",
        "Custom-Channel-Vars",
    ];
    let mut kept: Map<String, Value> = msg
        .iter()
        .filter(|(k, _)| !REMOVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kept.insert("Account-ID".into(), Value::String(account_id.to_owned()));
    let mut out = normalize_object(kept);
    out.insert("account_id".into(), Value::String(account_id.to_owned()));
    out.insert("hook_event".into(), Value::String("parking".into()));
    out
}

/// `kz_json:normalize_key/1`: lower case, `-` becomes `_`.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `kz_json:normalize_jobj/1`: normalize every key, nested objects too; drop nulls.
fn normalize_object(obj: Map<String, Value>) -> Map<String, Value> {
    obj.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (normalize_key(&k), normalize_value(v)))
        .collect()
}

fn normalize_value(value: Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(normalize_object(o)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_value).collect()),
        other => other,
    }
}

/// The internal-leg flag: `Channel-Is-Loopback` is true or the channel name starts
/// with `loopback/` (the two tests of `webhooks_channel_util:is_fireable_hook/2`, so
/// `include_internal_legs: false` filters what Kazoo's `include_loopback` does).
pub fn is_internal_leg(msg: &Map<String, Value>) -> bool {
    is_true(msg.get("Channel-Is-Loopback"))
        || msg
            .get("Channel-Name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.starts_with("loopback/"))
}

/// A channel variable as `kz_call_event:custom_channel_var/2` reads it.
fn ccv(msg: &Map<String, Value>, key: &str) -> Option<String> {
    ne_binary(ccv_value(msg, key))
}

fn ccv_value<'a>(msg: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    msg.get("Custom-Channel-Vars")
        .and_then(Value::as_object)
        .and_then(|ccvs| ccvs.get(key))
}

/// `kz_json:get_ne_binary_value/2`: a non-empty string; numbers and booleans as text.
fn ne_binary(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// `kz_json:get_integer_value/2`: integers, and numbers or numeric text made integer.
fn integer(value: Option<&Value>) -> Option<Value> {
    let n = match value? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })?
        }
        _ => return None,
    };
    Some(Value::from(n))
}

/// `kz_json:get_value/2` then `kz_json:from_list`: any value but null.
fn defined(value: Option<&Value>) -> Option<Value> {
    value.filter(|v| !v.is_null()).cloned()
}

/// `kz_term:is_true/1`: `true` or `"true"`.
fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => is_true_str(s),
        _ => false,
    }
}

fn is_true_str(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

#[cfg(test)]
mod tests;
