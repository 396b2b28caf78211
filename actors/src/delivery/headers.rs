//! A hook's `custom_request_headers` (Kazoo 5): the rules a header must follow and the
//! typed headers a try sends. Pure.
//!
//! The rules, shared by the API's validation and by reading a stored document:
//!
//! * a name is an HTTP token (RFC 9110: letters, digits and ``!#$%&'*+-.^_`|~``) of at
//!   most [`MAX_HEADER_NAME_BYTES`], and not one the daemon sets itself
//!   ([`is_reserved_header`]: `Host`, `Content-Length`, `Content-Type`,
//!   `Transfer-Encoding`, `Connection`, `User-Agent`, `X-Hook-ID`, `X-Account-ID`,
//!   `X-Event-ID`, any `webhook-*`, and the other hop-by-hop headers that would change how
//!   the request is framed: `Keep-Alive`, `Upgrade`, `TE`, `Trailer`, `Expect`,
//!   `Proxy-Connection`), compared without case;
//! * a value is a string of at most [`MAX_HEADER_VALUE_BYTES`] without control characters
//!   (no CR or LF, so no header can be injected; a tab is allowed);
//! * a hook has at most [`MAX_CUSTOM_HEADERS`].
//!
//! Kazoo 5 checks none of this: it appends whatever the document holds to its own
//! headers, so a `Content-Type` there is sent twice.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

/// The most custom headers a hook may have.
pub const MAX_CUSTOM_HEADERS: usize = 32;

/// The longest custom header name, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 128;

/// The longest custom header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Headers a hook cannot set (lower case): the daemon sets them, or they change how the
/// request is framed.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
    "x-hook-id",
    "x-account-id",
    "x-event-id",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-connection",
];

/// Every header whose name starts with this (any case) is reserved: Standard Webhooks'
/// `webhook-id`, `webhook-timestamp`, `webhook-signature` and any later one.
pub const RESERVED_HEADER_PREFIX: &str = "webhook-";

/// Why a custom header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderRuleError {
    #[error("the daemon sets this header itself")]
    Reserved,
    #[error("not an HTTP header name")]
    InvalidName,
    #[error("header name longer than {MAX_HEADER_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("header value holds a control character")]
    ControlCharacter,
    #[error("header value longer than {MAX_HEADER_VALUE_BYTES} bytes")]
    ValueTooLong,
}

/// Whether the daemon sets `name` itself (see the module documentation).
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with(RESERVED_HEADER_PREFIX)
}

/// `name` as a header a hook may set.
pub fn check_header_name(name: &str) -> Result<HeaderName, HeaderRuleError> {
    if name.len() > MAX_HEADER_NAME_BYTES {
        return Err(HeaderRuleError::NameTooLong);
    }
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderRuleError::InvalidName)?;
    if is_reserved_header(name) {
        return Err(HeaderRuleError::Reserved);
    }
    Ok(header)
}

/// `value` as a custom header's value (kept out of `Debug` output: it may be a
/// credential).
pub fn check_header_value(value: &str) -> Result<HeaderValue, HeaderRuleError> {
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(HeaderRuleError::ValueTooLong);
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderRuleError::ControlCharacter);
    }
    let mut header =
        HeaderValue::from_bytes(value.as_bytes()).map_err(|_| HeaderRuleError::ControlCharacter)?;
    header.set_sensitive(true);
    Ok(header)
}

/// A hook's custom headers, typed once per configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders(Vec<(HeaderName, HeaderValue)>);

impl CustomHeaders {
    /// Reads a stored `custom_request_headers` leniently (the API validated it): headers
    /// that break a rule are left out, and at most [`MAX_CUSTOM_HEADERS`] are kept.
    pub fn from_doc(value: Option<&Value>) -> CustomHeaders {
        let Some(Value::Object(map)) = value else {
            return CustomHeaders::default();
        };
        let headers = map
            .iter()
            .filter_map(|(name, value)| {
                let name = check_header_name(name).ok()?;
                let value = check_header_value(value.as_str()?).ok()?;
                Some((name, value))
            })
            .take(MAX_CUSTOM_HEADERS)
            .collect();
        CustomHeaders(headers)
    }

    /// The headers, in the document's key order.
    pub fn as_slice(&self) -> &[(HeaderName, HeaderValue)] {
        &self.0
    }
}

#[cfg(test)]
mod tests;
