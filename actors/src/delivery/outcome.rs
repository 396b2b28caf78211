//! Stage 4 of a delivery: what a try's result means (success, retryable, final), from
//! its HTTP status and `Retry-After`, or from the transport error when there was no
//! answer. Pure.

use std::error::Error as StdError;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest `client_error` text kept from a transport error, in characters.
const MAX_CLIENT_ERROR_CHARS: usize = 200;

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
    /// The request was not sent: it breaks a bound of the daemon's own (the encoded
    /// payload over `--max-delivery-bytes`). Final: another try would build the same.
    NotSent {
        /// Why, naming the bound.
        reason: String,
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
            Self::NotSent { .. } => None,
        }
    }

    /// The receiver's `Retry-After`, for a retryable answer that carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            Self::Success { .. } | Self::Final { .. } | Self::NotSent { .. } => None,
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
/// HTTP-date forms, read by the `httpdate` crate: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`, two-digit years 70-99 read as 19xx and 00-69 as
/// 20xx) and asctime (`Sun Nov  6 08:49:37 1994`, the day padded with a space or not). A
/// date must exist, name its own weekday and lie in 1970-9999. A date at or before `now`
/// gives a zero delay. Anything else gives `None`.
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

/// Parses an HTTP-date into seconds since the Unix epoch; `None` when malformed.
fn parse_http_date(value: &str) -> Option<u64> {
    let at = match httpdate::parse_http_date(value) {
        Ok(at) => at,
        Err(_) => httpdate::parse_http_date(&pad_asctime_day(value)?).ok()?,
    };
    at.duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs())
}

/// An asctime date whose day is not padded (`Sun Nov 6 08:49:37 1994`), padded as
/// `httpdate` reads it (`Sun Nov  6 08:49:37 1994`); `None` for anything else.
fn pad_asctime_day(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let unpadded = bytes.len() == 23
        && bytes[3] == b' '
        && bytes[7] == b' '
        && bytes[8].is_ascii_digit()
        && bytes[9] == b' ';
    unpadded.then(|| format!("{} {}", &value[..8], &value[8..]))
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
    /// The try failed on our side before any connection was attempted (out of file
    /// descriptors, the resolver down, a refused private address): it is retried, but
    /// it is not the receiver's failure and never counts towards auto-disable.
    pub local_fault: bool,
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
            local_fault: false,
        }
    }

    /// A delivery the daemon refused to send (see [`TryOutcome::NotSent`]): final, and not
    /// the receiver's failure.
    pub fn not_sent(reason: String) -> Self {
        TryResult {
            outcome: TryOutcome::NotSent { reason },
            response_code: None,
            response_body: None,
            client_error: None,
            latency_ms: 0,
            local_fault: true,
        }
    }

    /// A try that failed on our side before any connection (see [`TryResult::local_fault`]).
    pub fn local_fault(client_error: String, latency_ms: u64) -> Self {
        TryResult {
            local_fault: true,
            ..TryResult::no_answer(client_error, latency_ms)
        }
    }
}

/// Whether a transport error happened on our side before any connection was attempted:
/// the process is out of file descriptors (or memory for sockets), the resolver is
/// unreachable, or the resolver guard refused every address (see
/// [`uri_guard::is_local_resolver_fault`](crate::uri_guard::is_local_resolver_fault)).
/// A refused or reset connection, a timeout or an unknown name are the receiver's.
pub fn is_local_transport_fault(err: &reqwest::Error) -> bool {
    const LOCAL_ERRNOS: [i32; 4] = [
        23,  // ENFILE: the system is out of file descriptors
        24,  // EMFILE: the process is
        12,  // ENOMEM
        105, // ENOBUFS
    ];
    let mut current: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            if io_error
                .raw_os_error()
                .is_some_and(|code| LOCAL_ERRNOS.contains(&code))
            {
                return true;
            }
        }
        if crate::uri_guard::is_local_resolver_fault(error) {
            return true;
        }
        current = error.source();
    }
    false
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

#[cfg(test)]
mod tests;
