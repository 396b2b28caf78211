//! Stage 2 of a delivery: the HTTP request for a hook's `http_verb` and `format`
//! (method, URL, content type, body) carrying a [`Content`]: the payload (v1), or Kazoo
//! 5's v2 envelope of it ([`Envelope`]). Pure. The bytes a try is signed over are those
//! of the request as built here ([`DeliveryRequest::signed_content`]): nothing is
//! encoded again after it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use url::Url;

use super::{DeliveryError, Envelope, Payload};
use crate::form::form_encode_fields_within;

/// Content type of `form-data` bodies.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Content type of `json` bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json";

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

/// What a request carries, before it is encoded for the verb and format.
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'a> {
    /// The payload itself (`version` `v1`).
    Payload(Payload<'a>),
    /// The payload in Kazoo 5's envelope (`version` `v2`).
    Envelope(Envelope<'a>),
}

impl Content<'_> {
    /// The form encoding, `None` past `max_bytes`.
    fn form_encode_within(&self, max_bytes: usize) -> Option<String> {
        match self {
            Content::Payload(payload) => form_encode_fields_within(payload.fields(), max_bytes),
            Content::Envelope(envelope) => envelope.form_encode_within(max_bytes),
        }
    }
}

impl serde::Serialize for Content<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Payload(payload) => payload.serialize(serializer),
            Content::Envelope(envelope) => envelope.serialize(serializer),
        }
    }
}

impl<'a> From<Payload<'a>> for Content<'a> {
    fn from(payload: Payload<'a>) -> Self {
        Content::Payload(payload)
    }
}

impl<'a> From<&'a serde_json::Map<String, serde_json::Value>> for Content<'a> {
    fn from(map: &'a serde_json::Map<String, serde_json::Value>) -> Self {
        Content::Payload(Payload::from(map))
    }
}

impl<'a> From<Envelope<'a>> for Content<'a> {
    fn from(envelope: Envelope<'a>) -> Self {
        Content::Envelope(envelope)
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

impl DeliveryRequest {
    /// What a signature covers: the body of a POST or PUT, or for a GET the query string
    /// exactly as the request line carries it, without the `?` (empty when there is none).
    pub fn signed_content(&self) -> &[u8] {
        match self.method {
            HttpVerb::Get => self.url.query().unwrap_or("").as_bytes(),
            HttpVerb::Post | HttpVerb::Put => &self.body,
        }
    }
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
    payload: impl Into<Content<'a>>,
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
    url: Url,
    verb: HttpVerb,
    format: BodyFormat,
    payload: impl Into<Content<'a>>,
) -> Result<DeliveryRequest, DeliveryError> {
    build_request_within(url, verb, format, payload, usize::MAX)
}

/// [`build_request_to`] with a bound on what the payload encodes to: the body of a POST
/// or PUT, or the query string a GET adds (`--max-delivery-bytes`). Encoding stops as
/// soon as it passes the bound ([`DeliveryError::TooLarge`]), so an event that would
/// encode to gigabytes costs at most the bound.
pub fn build_request_within<'a>(
    mut url: Url,
    verb: HttpVerb,
    format: BodyFormat,
    payload: impl Into<Content<'a>>,
    max_bytes: usize,
) -> Result<DeliveryRequest, DeliveryError> {
    let payload: Content<'a> = payload.into();
    let too_large = || DeliveryError::TooLarge { max_bytes };
    match verb {
        HttpVerb::Get => {
            let encoded = payload
                .form_encode_within(max_bytes)
                .ok_or_else(too_large)?;
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
                    payload
                        .form_encode_within(max_bytes)
                        .ok_or_else(too_large)?
                        .into_bytes(),
                ),
                BodyFormat::Json => {
                    let mut body = BoundedBuffer {
                        bytes: Vec::new(),
                        max_bytes,
                    };
                    match serde_json::to_writer(&mut body, &payload) {
                        Ok(()) => (JSON_CONTENT_TYPE, body.bytes),
                        Err(e) if e.is_io() => return Err(too_large()),
                        Err(e) => return Err(DeliveryError::Json(e.to_string())),
                    }
                }
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

/// A byte buffer that refuses to grow past `max_bytes` (an I/O error, which stops the
/// JSON writer there).
struct BoundedBuffer {
    bytes: Vec<u8>,
    max_bytes: usize,
}

impl std::io::Write for BoundedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.max_bytes {
            return Err(std::io::Error::other("over the delivery size bound"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
