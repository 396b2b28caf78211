//! Delivery of one event to one webhook: the pure stages, and the one function that sends.
//!
//! This module owns, in the order a delivery goes through them:
//!
//! 1. [`build_payload`]: the event payload with `hook_event` set and the hook's
//!    `custom_data` merged over it (`kazoo-behaviour.md` 4.4);
//! 2. [`build_request`]: method, URL, content type and body for the hook's `http_verb`
//!    and `format` (5.1), using [`form_encode`](crate::form::form_encode) for `form-data` bodies and GET query
//!    strings;
//! 3. [`send_try`]: one HTTP try with the Piston headers and a whole-request timeout,
//!    reading at most a bounded prefix of the response body;
//! 4. [`classify_status`] / [`classify_transport_error`]: what a try's result means
//!    (success, retryable, final);
//! 5. [`retry_delay`]: how long to wait before the next try.
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
//!   `X-Account-ID`.
//! * `cluster_id` is not added to the payload.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::debug;
use url::Url;

use crate::form::form_encode_fields;

#[cfg(test)]
mod tests;

/// The `User-Agent` of every delivery: `piston-webhooks/<crate version>`.
pub const USER_AGENT: &str = concat!("piston-webhooks/", env!("CARGO_PKG_VERSION"));

/// Header naming the webhook (its id), as Kazoo sends it.
pub const HOOK_ID_HEADER: &str = "X-Hook-ID";

/// Header naming the hook owner's account, as Kazoo sends it. For an ancestor's
/// `include_subaccounts` hook this is the ancestor, not the account of the event.
pub const ACCOUNT_ID_HEADER: &str = "X-Account-ID";

/// Header carrying the event's id: the same for every hook and every retry, so receivers
/// can drop duplicates of an at-least-once delivery.
pub const EVENT_ID_HEADER: &str = "X-Event-ID";

/// Content type of `form-data` bodies.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Content type of `json` bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Longest wait [`retry_delay`] computes from the exponential backoff (before jitter),
/// unless the base delay itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// Longest wait a receiver's `Retry-After` can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Longest `client_error` text kept from a transport error, in characters.
const MAX_CLIENT_ERROR_CHARS: usize = 200;

/// Hook kinds whose `custom_data` holds the selection keys `type` and `action`, which are
/// therefore not merged into the payload.
const SELECTING_HOOK_KINDS: [&str; 2] = ["object", "notifications"];

/// The `custom_data` keys that select events for `object` / `notifications` hooks.
const SELECTION_KEYS: [&str; 2] = ["type", "action"];

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
}

/// The HTTP method of a hook (`http_verb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVerb {
    /// `get`: the payload goes in the query string.
    Get,
    /// `post`: the payload is the body.
    Post,
    /// `put`: the payload is the body.
    Put,
}

impl HttpVerb {
    /// The stored (and Kazoo) spelling: `get`, `post` or `put`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
        }
    }

    /// The `reqwest` method for this verb.
    pub fn as_method(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
        }
    }
}

impl FromStr for HttpVerb {
    type Err = DeliveryError;

    /// Parses `get`, `post` or `put`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Get, Self::Post, Self::Put]
            .into_iter()
            .find(|verb| verb.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DeliveryError::UnknownVerb(s.to_owned()))
    }
}

impl fmt::Display for HttpVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body format of a hook (`format`). Ignored for GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyFormat {
    /// `form-data`: `application/x-www-form-urlencoded`, nested keys as `a[b]=v`.
    #[serde(rename = "form-data")]
    FormData,
    /// `json`: `application/json`.
    #[serde(rename = "json")]
    Json,
}

impl BodyFormat {
    /// The stored (and Kazoo) spelling: `form-data` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FormData => "form-data",
            Self::Json => "json",
        }
    }
}

impl FromStr for BodyFormat {
    type Err = DeliveryError;

    /// Parses `form-data` or `json`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::FormData, Self::Json]
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DeliveryError::UnknownFormat(s.to_owned()))
    }
}

impl fmt::Display for BodyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds the payload sent for one event to one hook (`kazoo-behaviour.md` 4.4, master).
///
/// Starts from `event_payload`, sets `hook_event`, then merges `custom_data` shallowly:
/// each top-level `custom_data` key overwrites the payload key of the same name (nested
/// objects are replaced, not merged). For hooks of kind (`hook`) `object` and
/// `notifications`, the selection keys `type` and `action` of `custom_data` are not
/// merged, so the hook's selection does not clobber the event's own `type` / `action`.
/// As in Kazoo, `custom_data` is merged after `hook_event` is set and so may overwrite it.
/// Kazoo's `cluster_id` is not added.
///
/// The result borrows the event's payload rather than copying it: an event goes to many
/// hooks, and copying its whole object per try was a visible share of delivery CPU.
pub fn build_payload<'a>(
    event_payload: &'a Map<String, Value>,
    hook_event: &str,
    custom_data: Option<&'a Map<String, Value>>,
    hook_kind: &str,
) -> Payload<'a> {
    // The fields set over the event's, in key order; a later one replaces an earlier
    // one of the same key (custom_data after hook_event).
    let mut overrides: Vec<(&'a str, Cow<'a, Value>)> = Vec::new();
    if event_payload.get("hook_event").and_then(Value::as_str) != Some(hook_event) {
        overrides.push((
            "hook_event",
            Cow::Owned(Value::String(hook_event.to_owned())),
        ));
    }
    if let Some(custom) = custom_data {
        let skip_selection = SELECTING_HOOK_KINDS.contains(&hook_kind);
        for (key, value) in custom {
            if skip_selection && SELECTION_KEYS.contains(&key.as_str()) {
                continue;
            }
            overrides.retain(|(k, _)| *k != key.as_str());
            overrides.push((key.as_str(), Cow::Borrowed(value)));
        }
    }
    overrides.sort_by(|a, b| a.0.cmp(b.0));
    // Merge two key-sorted sequences; on equal keys the override wins.
    let mut fields = Vec::with_capacity(event_payload.len() + overrides.len());
    let mut base = event_payload.iter().peekable();
    let mut over = overrides.into_iter().peekable();
    loop {
        let take_base = match (base.peek(), over.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((bk, _)), Some((ok, _))) => match bk.as_str().cmp(ok) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => {
                    base.next();
                    false
                }
                std::cmp::Ordering::Greater => false,
            },
        };
        if take_base {
            if let Some((k, v)) = base.next() {
                fields.push((k.as_str(), Cow::Borrowed(v)));
            }
        } else if let Some(field) = over.next() {
            fields.push(field);
        }
    }
    Payload { fields }
}

/// The JSON object delivered for one event to one hook: its fields in key order (the
/// order of a `serde_json` map), mostly borrowed from the event. See [`build_payload`].
#[derive(Debug, Clone, PartialEq)]
pub struct Payload<'a> {
    fields: Vec<(&'a str, Cow<'a, Value>)>,
}

impl<'a> Payload<'a> {
    /// The fields, in key order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (*k, v.as_ref()))
    }

    /// The value of one field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| self.fields[i].1.as_ref())
    }

    /// An owned copy, as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.fields()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }
}

impl<'a> From<&'a Map<String, Value>> for Payload<'a> {
    fn from(map: &'a Map<String, Value>) -> Self {
        Payload {
            fields: map
                .iter()
                .map(|(k, v)| (k.as_str(), Cow::Borrowed(v)))
                .collect(),
        }
    }
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.fields())
    }
}

/// One HTTP request, ready to send (possibly several times: it is not consumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRequest {
    /// The method.
    pub method: HttpVerb,
    /// The absolute URL, with the payload as its query string for GET and without any
    /// fragment; parsed once here and handed to the client as is.
    pub url: Url,
    /// The `Content-Type` of the body: set for POST and PUT, `None` for GET.
    pub content_type: Option<&'static str>,
    /// The body; empty for GET, which sends none. Cheap to clone for each try.
    pub body: Bytes,
}

/// Builds the request for `payload` sent to `uri` with `verb` and `format`
/// (`kazoo-behaviour.md` 5.1, with the differences in the module documentation).
///
/// * `get`: no body; the form-encoded payload is the query string, joined with `?` when
///   `uri` has no (or an empty) query and with `&` when it has one. An empty payload adds
///   nothing. `format` is ignored.
/// * `post` / `put` with `form-data`: the form-encoded payload, as
///   `application/x-www-form-urlencoded`.
/// * `post` / `put` with `json`: the compact JSON of the payload, as `application/json`.
///
/// The fragment of `uri` (`#...`), which is never sent over HTTP, is dropped. The URL is
/// normalised by the `url` crate (lowercase scheme and host, `/` for an empty path, and
/// any character not allowed in a URL percent-encoded).
///
/// # Errors
///
/// [`DeliveryError::InvalidUri`] when `uri` is not an absolute URL with a host,
/// [`DeliveryError::UnsupportedScheme`] when its scheme is not `http` or `https`.
pub fn build_request<'a>(
    uri: &str,
    verb: HttpVerb,
    format: BodyFormat,
    payload: impl Into<Payload<'a>>,
) -> Result<DeliveryRequest, DeliveryError> {
    build_request_to(parse_target(uri)?, verb, format, payload)
}

/// The URL a hook's `uri` is delivered to: absolute `http` or `https` with a host, any
/// `#fragment` dropped. A webhook actor parses it once and reuses it for every try.
pub fn parse_target(uri: &str) -> Result<Url, DeliveryError> {
    let mut url = Url::parse(uri.trim()).map_err(|e| DeliveryError::InvalidUri(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DeliveryError::UnsupportedScheme(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DeliveryError::InvalidUri("missing host".to_owned()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// [`build_request`] to a URL already through [`parse_target`].
pub fn build_request_to<'a>(
    mut url: Url,
    verb: HttpVerb,
    format: BodyFormat,
    payload: impl Into<Payload<'a>>,
) -> Result<DeliveryRequest, DeliveryError> {
    let payload: Payload<'a> = payload.into();
    match verb {
        HttpVerb::Get => {
            let encoded = form_encode_fields(payload.fields());
            if !encoded.is_empty() {
                let query = match url.query().map(|q| q.trim_end_matches('&')) {
                    Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
                    _ => encoded,
                };
                url.set_query(Some(&query));
            }
            Ok(DeliveryRequest {
                method: verb,
                url,
                content_type: None,
                body: Bytes::new(),
            })
        }
        HttpVerb::Post | HttpVerb::Put => {
            let (content_type, body) = match format {
                BodyFormat::FormData => (
                    FORM_CONTENT_TYPE,
                    form_encode_fields(payload.fields()).into_bytes(),
                ),
                BodyFormat::Json => (
                    JSON_CONTENT_TYPE,
                    serde_json::to_vec(&payload).map_err(|e| DeliveryError::Json(e.to_string()))?,
                ),
            };
            Ok(DeliveryRequest {
                method: verb,
                url,
                content_type: Some(content_type),
                body: Bytes::from(body),
            })
        }
    }
}

/// What one try means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryOutcome {
    /// The receiver answered 2xx: the delivery is done.
    Success {
        /// The HTTP status.
        status: u16,
    },
    /// A transport error, a timeout, 408, 429 or 5xx: worth another try, if any are left.
    Retryable {
        /// The HTTP status, when the receiver answered.
        status: Option<u16>,
        /// What went wrong below HTTP, when the receiver did not answer.
        client_error: Option<String>,
        /// The receiver's `Retry-After`, when it sent one that parses.
        retry_after: Option<Duration>,
    },
    /// Any other status (1xx, 3xx, other 4xx, or outside 100..=599): the delivery failed
    /// and another try would not help.
    Final {
        /// The HTTP status.
        status: u16,
    },
}

impl TryOutcome {
    /// Whether the try succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }

    /// Whether the try failed in a way worth retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// The HTTP status, when the receiver answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Success { status } | Self::Final { status } => Some(*status),
            Self::Retryable { status, .. } => *status,
        }
    }

    /// The receiver's `Retry-After`, for a retryable answer that carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            Self::Success { .. } | Self::Final { .. } => None,
        }
    }
}

/// Classifies an HTTP status: 2xx is success; 408, 429 and 5xx are retryable, with the
/// `Retry-After` header value (if any) parsed by [`parse_retry_after`] against the current
/// time; everything else is a final failure.
pub fn classify_status(status: u16, retry_after_header: Option<&str>) -> TryOutcome {
    classify_status_at(status, retry_after_header, SystemTime::now())
}

/// [`classify_status`] with an explicit current time, for HTTP-date `Retry-After` values.
pub fn classify_status_at(
    status: u16,
    retry_after_header: Option<&str>,
    now: SystemTime,
) -> TryOutcome {
    match status {
        200..=299 => TryOutcome::Success { status },
        408 | 429 | 500..=599 => TryOutcome::Retryable {
            status: Some(status),
            client_error: None,
            retry_after: retry_after_header.and_then(|value| parse_retry_after(value, now)),
        },
        _ => TryOutcome::Final { status },
    }
}

/// Parses a `Retry-After` header value (RFC 9110 10.2.3) into a delay from `now`.
///
/// Accepts delay-seconds (`120`; a number too large for `u64` saturates) and the three
/// HTTP-date forms: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850
/// form (`Sunday, 06-Nov-94 08:49:37 GMT`, two-digit years 70-99 read as 19xx and 00-69 as
/// 20xx) and asctime (`Sun Nov  6 08:49:37 1994`). The weekday is not checked against the
/// date. A date at or before `now` gives a zero delay. Anything else gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = parse_http_date(value)?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(at))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP-date into seconds since the Unix epoch; `None` when malformed or
/// before 1970.
fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => (
            parse_number(day, 2)?,
            parse_month(month)?,
            parse_number(year, 4)?,
            *time,
        ),
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut fields = date.split('-');
            let day = parse_number(fields.next()?, 2)?;
            let month = parse_month(fields.next()?)?;
            let short_year = parse_number(fields.next()?, 2)?;
            if fields.next().is_some() {
                return None;
            }
            let year = if short_year < 70 {
                2000 + short_year
            } else {
                1900 + short_year
            };
            (day, month, year, *time)
        }
        // asctime: `Sun Nov  6 08:49:37 1994` (day padded with a space or not).
        [_weekday, month, day, time, year] => (
            parse_number_upto(day, 2)?,
            parse_month(month)?,
            parse_number(year, 4)?,
            *time,
        ),
        _ => return None,
    };
    let mut clock = time.split(':');
    let hour = parse_number(clock.next()?, 2)?;
    let minute = parse_number(clock.next()?, 2)?;
    let second = parse_number(clock.next()?, 2)?;
    if clock.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if year < 1970 || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Parses exactly `width` ASCII digits.
fn parse_number(text: &str, width: usize) -> Option<u64> {
    if text.len() != width {
        return None;
    }
    parse_number_upto(text, width)
}

/// Parses 1 to `width` ASCII digits.
fn parse_number_upto(text: &str, width: usize) -> Option<u64> {
    if text.is_empty() || text.len() > width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses a three-letter month name (case-sensitive, as HTTP-date requires) into 1..=12.
fn parse_month(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == text)
        .and_then(|index| u64::try_from(index + 1).ok())
}

fn is_leap_year(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date (year >= 1970, valid month and day).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    // Counting whole years then whole months is plenty fast for four-digit years and
    // obviously correct, unlike the closed-form civil-date formulas.
    let year_days: u64 = (1970..year)
        .map(|y| if is_leap_year(y) { 366 } else { 365 })
        .sum();
    let month_days: u64 = (1..month).map(|m| days_in_month(year, m)).sum();
    year_days + month_days + day - 1
}

/// The wait before retry number `try_number` (1 for the first retry, after the first
/// try failed).
///
/// * With a `retry_after` from the receiver, that value clamped to
///   `[base, MAX_RETRY_AFTER]` (1 hour): a receiver may slow us down, but not below our own
///   base nor beyond an hour; no jitter is added, as the receiver asked for a time.
/// * Otherwise exponential backoff with jitter: the ceiling is `base * 2^(try_number - 1)`,
///   capped at [`MAX_BACKOFF`] (10 minutes, or `base` if that is longer), and the wait is
///   drawn uniformly from `[ceiling / 2, ceiling]`. Keeping at least half the ceiling keeps
///   the growth visible while still spreading retries of many hooks that failed together.
///
/// `try_number` 0 is treated as 1. Deterministic for a seeded `rng`; never panics.
pub fn retry_delay<R: Rng + ?Sized>(
    base: Duration,
    try_number: u32,
    retry_after: Option<Duration>,
    rng: &mut R,
) -> Duration {
    if let Some(asked) = retry_after {
        return asked.max(base).min(MAX_RETRY_AFTER);
    }
    let cap = MAX_BACKOFF.max(base);
    let doublings = try_number.saturating_sub(1);
    let ceiling = base
        .checked_mul(2_u32.saturating_pow(doublings))
        .unwrap_or(cap)
        .min(cap);
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let floor_nanos = ceiling_nanos - ceiling_nanos / 2;
    Duration::from_nanos(rng.random_range(floor_nanos..=ceiling_nanos))
}

/// The identifying headers of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryHeaders<'a> {
    /// `X-Hook-ID`: the webhook's id.
    pub hook_id: &'a str,
    /// `X-Account-ID`: the hook owner's account id.
    pub account_id: &'a str,
    /// `X-Event-ID`: the event's id, the same for every hook and every retry.
    pub event_id: &'a str,
    /// `User-Agent`; normally [`USER_AGENT`].
    pub user_agent: &'a str,
}

impl<'a> DeliveryHeaders<'a> {
    /// Headers for the given ids, with the default [`USER_AGENT`].
    pub fn new(hook_id: &'a str, account_id: &'a str, event_id: &'a str) -> Self {
        Self {
            hook_id,
            account_id,
            event_id,
            user_agent: USER_AGENT,
        }
    }
}

/// Everything one try produced, for the attempt record and the retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryResult {
    /// What the try means.
    pub outcome: TryOutcome,
    /// The HTTP status, when the receiver answered.
    pub response_code: Option<u16>,
    /// At most the first `max_response_body` bytes of the response body, as lossy UTF-8;
    /// `None` when there was no answer, the body was empty, or the bound is 0.
    pub response_body: Option<String>,
    /// What went wrong below HTTP, when the receiver did not answer (see
    /// [`classify_transport_error`]).
    pub client_error: Option<String>,
    /// Wall time of the whole try, from sending to the end of the body read, in
    /// milliseconds.
    pub latency_ms: u64,
}

impl TryResult {
    /// A try that got no answer (transport error, or refused before connecting): worth
    /// another try, with `client_error` saying why.
    pub fn no_answer(client_error: String, latency_ms: u64) -> Self {
        TryResult {
            outcome: TryOutcome::Retryable {
                status: None,
                client_error: Some(client_error.clone()),
                retry_after: None,
            },
            response_code: None,
            response_body: None,
            client_error: Some(client_error),
            latency_ms,
        }
    }
}

/// Sends `req` once and reports what happened. Never fails: a transport error is a
/// [`TryOutcome::Retryable`] result with a `client_error`, and a receiver's 4xx/5xx is
/// data, not an error.
///
/// Sends `X-Hook-ID`, `X-Account-ID`, `X-Event-ID`, `User-Agent` (overriding any client
/// default) and, for POST/PUT, `Content-Type`. `timeout` bounds the whole try, from
/// connecting to the end of the response body. Reads at most `max_response_body` bytes of
/// the body and then stops reading (the rest is never buffered); a body read that fails
/// after the status arrived leaves the outcome as the status says.
///
/// What happens on redirects, proxies and private addresses is the `client`'s
/// configuration: build it with `redirect::Policy::none()` so a 3xx reaches
/// [`classify_status`] as a final failure rather than being followed.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(
        hook_id = headers.hook_id,
        account_id = headers.account_id,
        event_id = headers.event_id,
        method = req.method.as_str(),
    )
)]
pub async fn send_try(
    client: &reqwest::Client,
    req: &DeliveryRequest,
    headers: &DeliveryHeaders<'_>,
    timeout: Duration,
    max_response_body: usize,
) -> TryResult {
    let started = Instant::now();
    let mut builder = client
        .request(req.method.as_method(), req.url.clone())
        .timeout(timeout)
        .header(HOOK_ID_HEADER, headers.hook_id)
        .header(ACCOUNT_ID_HEADER, headers.account_id)
        .header(EVENT_ID_HEADER, headers.event_id)
        .header(reqwest::header::USER_AGENT, headers.user_agent);
    if let Some(content_type) = req.content_type {
        builder = builder.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if req.method != HttpVerb::Get {
        builder = builder.body(req.body.clone());
    }

    let response = match builder.send().await {
        Ok(response) => response,
        Err(err) => {
            let client_error = classify_transport_error(&err);
            debug!(error = %err, client_error = %client_error, "delivery try failed to get an answer");
            return TryResult::no_answer(client_error, elapsed_ms(started));
        }
    };

    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let outcome = classify_status(status, retry_after.as_deref());
    let response_body = read_body_bounded(response, max_response_body).await;
    let latency_ms = elapsed_ms(started);
    debug!(status, latency_ms, ?outcome, "delivery try answered");
    TryResult {
        outcome,
        response_code: Some(status),
        response_body,
        client_error: None,
        latency_ms,
    }
}

/// Reads at most `max` bytes of the body, chunk by chunk, and stops there.
async fn read_body_bounded(mut response: reqwest::Response, max: usize) -> Option<String> {
    if max == 0 {
        return None;
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max.saturating_sub(body.len());
                body.extend(chunk.iter().take(room));
                if body.len() >= max {
                    break;
                }
            }
            Ok(None) => break,
            Err(err) => {
                debug!(error = %err, "response body read failed; keeping what was read");
                break;
            }
        }
    }
    if body.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&body).into_owned())
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A short, stable description of a transport error, for the attempt's `client_error`.
///
/// In order of precedence: `timeout`; `connection refused`; `connection reset`;
/// `dns: <cause>` (name resolution failed, including a resolver that refuses an
/// address); `connect: <cause>` (other connect failures, TLS included); `redirect: <cause>`;
/// `body: <cause>`; `request: <cause>` (the request could not be built, e.g. a header
/// value with a control character); `http: <cause>` (anything else, such as the
/// connection closing before a response). `<cause>` is the innermost error message,
/// cut to 200 characters; the URL is never included.
pub fn classify_transport_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timeout".to_owned();
    }

    let mut io_kinds = Vec::new();
    let mut dns_cause = None;
    let mut innermost = None;
    let mut current: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            io_kinds.push(io_error.kind());
        }
        let message = error.to_string();
        // hyper-util's connector reports resolver failures as "dns error: <cause>".
        if dns_cause.is_none() && message.starts_with("dns error") {
            dns_cause = Some(
                error
                    .source()
                    .map_or_else(|| message.clone(), ToString::to_string),
            );
        }
        innermost = Some(message);
        current = error.source();
    }

    let short_names = [
        (io::ErrorKind::TimedOut, "timeout"),
        (io::ErrorKind::ConnectionRefused, "connection refused"),
        (io::ErrorKind::ConnectionReset, "connection reset"),
    ];
    if let Some((_, name)) = short_names.iter().find(|(kind, _)| io_kinds.contains(kind)) {
        return (*name).to_owned();
    }
    if let Some(cause) = dns_cause {
        return format!("dns: {}", shorten(&cause));
    }

    let cause = innermost.unwrap_or_else(|| "unknown error".to_owned());
    let kind = if err.is_connect() {
        "connect"
    } else if err.is_redirect() {
        "redirect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else if err.is_builder() {
        "request"
    } else {
        "http"
    };
    format!("{kind}: {}", shorten(&cause))
}

/// `text` cut to [`MAX_CLIENT_ERROR_CHARS`] characters (on a character boundary).
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(MAX_CLIENT_ERROR_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}
