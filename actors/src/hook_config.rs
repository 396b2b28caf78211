//! A webhook's delivery configuration, read from its stored document once per
//! configuration (when its actor starts, and at each change the router hands it), so a
//! try looks no field up and parses nothing: target URL, verb, format, retries,
//! `custom_data` and kind are typed here.
//!
//! Reading is lenient, as delivery always was: the API validated the document when it
//! was stored, and a field that does not read falls back to Kazoo's default (`post`,
//! `form-data`, [`RetryPolicy::DEFAULT_RETRIES`]). A `uri` that no try can go to becomes
//! a [`TargetError`], which every try of the hook reports as its `client_error`, so the
//! hook fails its tries (and is eventually auto-disabled) instead of failing to start.
//! Must not: do I/O, or validate for the API.

use eventlog::{AccountId, WebhookId};
use serde_json::{Map, Value};
use url::Url;

use crate::delivery::{
    parse_target, BodyFormat, CustomHeaders, DeliveryError, HttpVerb, PayloadVersion, RetryPolicy,
};
use crate::registry::Webhook;
use crate::signing::{HmacKey, SigningKeys};
use crate::uri_guard::literal_host_is_forbidden;

/// Why no try can go to a hook's `uri`; its text is the attempt's `client_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute `http` or `https` URL with a host.
    #[error("malformed url: {0}")]
    Malformed(DeliveryError),
    /// A literal private or local address, and private targets are not allowed.
    #[error("refused: private or local address")]
    Refused,
}

/// What a try of one hook needs, typed once per configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    /// The webhook: its `X-Hook-ID`.
    pub id: WebhookId,
    /// Its owner: its `X-Account-ID`.
    pub account_id: AccountId,
    /// `name` as stored.
    pub name: Option<String>,
    /// `uri` as stored.
    pub uri: Option<String>,
    /// `hook` as stored: the event it listens to, or its kind (`object`, `all`, ...).
    pub hook: Option<String>,
    /// `http_verb` as stored (attempt records show it; empty when unset).
    pub http_verb: String,
    /// Where tries go: the `uri` parsed (any `#fragment` dropped) and checked by the
    /// SSRF guard, or why no try can go there.
    pub target: Result<Url, TargetError>,
    /// The method sent (`post` unless `http_verb` reads otherwise).
    pub verb: HttpVerb,
    /// The body format (`form-data` unless `format` reads otherwise).
    pub format: BodyFormat,
    /// Retries after the first try ([`RetryPolicy::retries`] of `retries`).
    pub retries: u32,
    /// `custom_data`, merged over every payload, when it is an object.
    pub custom_data: Option<Map<String, Value>>,
    /// `version`: the flat payload (`v1`, also when unset) or Kazoo 5's envelope (`v2`).
    pub version: PayloadVersion,
    /// `custom_request_headers`, those that follow the rules (the API refuses the rest).
    pub custom_headers: CustomHeaders,
    /// `security_settings.sha256_key`, the key of a `v2` body's `hmac` (unused by `v1`).
    pub sha256_key: Option<HmacKey>,
    /// The keys every try is signed with; `None` for a hook without a secret yet (a
    /// webhook created before secrets existed, until the start that gives it one).
    pub signing: Option<SigningKeys>,
}

impl HookConfig {
    /// Reads `webhook`'s document; `allow_private` is `--allow-private-targets`.
    pub fn new(webhook: &Webhook, allow_private: bool) -> Self {
        let doc = &webhook.doc;
        let text = |key: &str| doc.get(key).and_then(Value::as_str);
        let uri = text("uri");
        let target = match parse_target(uri.unwrap_or("")) {
            Err(e) => Err(TargetError::Malformed(e)),
            Ok(url) if !allow_private && literal_host_is_forbidden(&url) => {
                Err(TargetError::Refused)
            }
            Ok(url) => Ok(url),
        };
        HookConfig {
            id: webhook.id.clone(),
            account_id: webhook.account_id.clone(),
            name: text("name").map(str::to_owned),
            uri: uri.map(str::to_owned),
            hook: text("hook").map(str::to_owned),
            http_verb: text("http_verb").unwrap_or("").to_owned(),
            target,
            verb: text("http_verb")
                .and_then(|v| v.parse().ok())
                .unwrap_or(HttpVerb::Post),
            format: text("format")
                .and_then(|f| f.parse().ok())
                .unwrap_or(BodyFormat::FormData),
            retries: RetryPolicy::retries(doc.get("retries").and_then(Value::as_u64)),
            custom_data: doc.get("custom_data").and_then(Value::as_object).cloned(),
            version: text("version")
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            custom_headers: CustomHeaders::from_doc(doc.get("custom_request_headers")),
            sha256_key: doc
                .get("security_settings")
                .and_then(|s| s.get("sha256_key"))
                .and_then(Value::as_str)
                .filter(|key| !key.is_empty())
                .map(|key| HmacKey::new(key.as_bytes())),
            signing: SigningKeys::from_secrets(&webhook.secrets),
        }
    }

    /// `uri` as stored, empty when unset (attempt records show it).
    pub fn uri(&self) -> &str {
        self.uri.as_deref().unwrap_or("")
    }

    /// `hook` as stored, empty when unset (the payload rule reads it).
    pub fn kind(&self) -> &str {
        self.hook.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests;
