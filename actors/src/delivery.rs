//! Delivery of one event to one webhook: the pure stages, and the one function that sends.
//!
//! This module owns, in the order a delivery goes through them, one submodule each:
//!
//! 1. `payload`, [`build_payload`]: the event payload with `hook_event` set and the
//!    hook's `custom_data` merged over it (`kazoo-behaviour.md` 4.4);
//! 2. `request`, [`build_request`]: method, URL, content type and body for the hook's
//!    `http_verb` and `format` (5.1), using [`form_encode`](crate::form::form_encode)
//!    for `form-data` bodies and GET query strings; for a `version: "v2"` hook the
//!    payload goes in Kazoo 5's envelope first (`envelope`, [`Envelope`]);
//! 3. `send`, [`send_try`]: one HTTP try with the Piston headers, the hook's
//!    `custom_request_headers` (`headers`, [`CustomHeaders`]), the Standard Webhooks
//!    signature ([`crate::signing`]) and a whole-request timeout, reading at most a
//!    bounded prefix of the response body;
//! 4. `outcome`, [`classify_status`] / [`classify_transport_error`]: what a try's result
//!    means (success, retryable, final);
//! 5. `retry`, [`RetryPolicy`]: whether another try goes (the default and maximum
//!    retries) and how long to wait before it ([`retry_delay`]).
//!
//! What it must not do: hold any actor type or state, sleep, schedule, count failures,
//! or write records. Deciding whether a retry happens (tries left, hook still enabled),
//! scheduling it without blocking a mailbox, and logging the attempt belong to the webhook
//! actor; this module only answers "what to send", "what did that mean" and "how long to
//! wait". Everything except [`send_try`] is a pure function, testable without sockets.
//!
//! # Deliberate differences from Kazoo (INTERFACE.md section 7)
//!
//! * Success is any 2xx (Kazoo: exactly 200, or 201 for PUT).
//! * 408, 429, every 5xx and every transport error are retryable; Kazoo retries only
//!   transport errors, after a fixed 2 s sleep. Here the wait grows exponentially with
//!   jitter, and a `Retry-After` from the receiver is honoured within bounds.
//! * A GET joins the query string with `&` when the URI already has a query (Kazoo
//!   appends `?` unconditionally), and any `#fragment` is dropped.
//! * JSON bodies are compact, not pretty-printed; receivers parse both the same.
//! * Every try has a whole-request timeout (Kazoo has none).
//! * After 3 failed tries in a row a hook pauses for one retry base, then tries one
//!   delivery at a time until one succeeds (the webhook actor's breaker).
//! * `X-Event-ID` and a `User-Agent` are sent besides Kazoo's `X-Hook-ID` and
//!   `X-Account-ID`, and every try is signed (Standard Webhooks v1, [`crate::signing`]).
//! * `custom_request_headers` may not name a header the daemon sets itself
//!   (`headers`); Kazoo 5 sends them beside its own, duplicates and all.
//! * `cluster_id` is not added to the payload.

mod envelope;
mod headers;
mod outcome;
mod payload;
mod request;
mod retry;
mod send;

pub use envelope::{v2_hmac, Envelope, PayloadVersion};
pub use headers::{
    check_header_name, check_header_value, is_reserved_header, CustomHeaders, HeaderRuleError,
    MAX_CUSTOM_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, RESERVED_HEADERS,
    RESERVED_HEADER_PREFIX,
};
pub use outcome::{
    classify_status, classify_status_at, classify_transport_error, is_local_transport_fault,
    parse_retry_after, TryOutcome, TryResult,
};
pub use payload::{build_payload, Payload};
pub use request::{
    build_request, build_request_to, build_request_within, parse_target, BodyFormat, Content,
    DeliveryRequest, HttpVerb, FORM_CONTENT_TYPE, JSON_CONTENT_TYPE,
};
pub use retry::{retry_delay, RetryPolicy, MAX_BACKOFF, MAX_RECORD_RETRY_WAIT, MAX_RETRY_AFTER};
pub use send::{
    send_try, DeliveryHeaders, ACCOUNT_ID_HEADER, EVENT_ID_HEADER, HOOK_ID_HEADER, USER_AGENT,
};

/// Why a request cannot be built or a stored setting cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The stored `http_verb` is not `get`, `post` or `put`.
    #[error("unknown http verb {0:?}")]
    UnknownVerb(String),
    /// The stored `format` is not `form-data` or `json`.
    #[error("unknown body format {0:?}")]
    UnknownFormat(String),
    /// The hook's `uri` does not parse as an absolute URL with a host.
    #[error("invalid uri: {0}")]
    InvalidUri(String),
    /// The hook's `uri` is not `http` or `https`.
    #[error("unsupported uri scheme {0:?}")]
    UnsupportedScheme(String),
    /// The payload could not be written as JSON.
    #[error("cannot encode payload as json: {0}")]
    Json(String),
    /// The encoded payload (body, or GET query string) would be larger than
    /// `--max-delivery-bytes`.
    #[error("the encoded delivery is larger than --max-delivery-bytes ({max_bytes} bytes)")]
    TooLarge { max_bytes: usize },
}
