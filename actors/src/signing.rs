//! Signed deliveries (INTERFACE.md section 9): a webhook's secrets and the Standard
//! Webhooks v1 signature every try carries.
//!
//! Owns:
//!
//! * the secret format, `whsec_` + standard base64 (with padding) of 24 to 64 key bytes:
//!   [`generate_secret`] (32 random bytes), [`decode_secret`] (the one parser, for the API's
//!   validation and for signing);
//! * [`WebhookSecrets`], the registry's state of one webhook: its current secret and the
//!   one a rotation replaced, with the rotation's time (the log record's time, so replay
//!   rebuilds the same window);
//! * [`SigningKeys`], the keys decoded once per configuration ([`HmacKey`]: the keyed
//!   HMAC-SHA256 state is prepared once and cloned per message), and
//!   [`SigningKeys::sign`]: the headers of one try.
//!
//! The signature (Standard Webhooks v1): `webhook-id` is the event id (the same for every
//! try and every hook), `webhook-timestamp` the Unix seconds of the try, and
//! `webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{content}"))
//! where key is the secret's decoded bytes and content is exactly what the request
//! carries: the body bytes of a POST or PUT, or for a GET the query string as it is in
//! the request line, without the `?` (empty when there is none). It is computed over the
//! bytes already encoded, streamed into the HMAC without a copy. During the rotation
//! overlap after a rotation the header carries two signatures, space-separated, the new
//! secret's first.
//!
//! Must not: do I/O, read the clock (callers pass the time), or show a secret in a
//! `Debug` output ([`Secret`] and [`HmacKey`] print `[redacted]`).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use eventlog::Secret;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The prefix of every secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// Key bytes of a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The fewest key bytes a secret may have.
pub const MIN_SECRET_BYTES: usize = 24;

/// The most key bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;

/// Header carrying the event id that was signed.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";

/// Header carrying the Unix seconds that were signed.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";

/// Header carrying the signature(s).
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The default `--secret-rotation-overlap-secs`: for a day after a rotation, deliveries
/// carry both signatures.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(86_400);

/// Why a text is not a usable secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a secret starts with whsec_")]
    MissingPrefix,
    #[error("the part after whsec_ is not standard base64")]
    NotBase64,
    #[error("the key is {0} bytes; it must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}")]
    WrongLength(usize),
}

/// A new secret: `whsec_` + base64 of [`GENERATED_SECRET_BYTES`] random bytes.
pub fn generate_secret() -> Secret {
    let key: [u8; GENERATED_SECRET_BYTES] = rand::random();
    Secret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The key bytes of a secret: `whsec_` + standard base64 (padded) of 24 to 64 bytes.
pub fn decode_secret(text: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = text
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::MissingPrefix)?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| SecretError::NotBase64)?;
    if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        Ok(key)
    } else {
        Err(SecretError::WrongLength(key.len()))
    }
}

/// One webhook's secrets, as the registry keeps them (and snapshots store them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    /// The secret deliveries are signed with; `None` only for a webhook created before
    /// webhooks had secrets, until the start that gives it one.
    #[serde(default)]
    pub current: Option<Secret>,
    /// The secret the last rotation replaced.
    #[serde(default)]
    pub previous: Option<Secret>,
    /// Unix ms of that rotation (its record's time).
    #[serde(default)]
    pub rotated_ms: Option<u64>,
}

impl WebhookSecrets {
    /// A secret was set at `at_ms`: it becomes the current one, and the one it replaces
    /// (if any) the previous one, rotated at `at_ms`.
    pub fn set(&mut self, secret: Secret, at_ms: u64) {
        if let Some(replaced) = self.current.replace(secret) {
            self.previous = Some(replaced);
            self.rotated_ms = Some(at_ms);
        }
    }
}

/// An HMAC-SHA256 key, prepared once: each message starts from a clone of the keyed
/// state, so the key is not hashed again per message.
#[derive(Clone)]
pub struct HmacKey {
    keyed: Hmac<Sha256>,
    /// The key itself, only to compare keys (configurations) for equality.
    key: Vec<u8>,
}

impl HmacKey {
    /// Prepares `key` (any length: HMAC hashes a long key, pads a short one).
    pub fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length, so this cannot fail; an empty key is a key too.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        HmacKey {
            keyed,
            key: key.to_vec(),
        }
    }

    /// A fresh MAC over nothing yet, keyed with this key.
    pub fn start(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    /// The base64 (standard, padded) HMAC-SHA256 of the concatenation of `parts`.
    pub fn base64_mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.start();
        for part in parts {
            mac.update(part);
        }
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl PartialEq for HmacKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for HmacKey {}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

/// The keys one hook signs with, decoded from its [`WebhookSecrets`] once per
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    current: HmacKey,
    /// The replaced secret's key and the rotation's Unix ms.
    previous: Option<(HmacKey, u64)>,
}

/// The Standard Webhooks headers of one try (`webhook-id` is the event id, which the
/// caller has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `webhook-timestamp`: the Unix seconds that were signed.
    pub timestamp: String,
    /// `webhook-signature`: `v1,BASE64`, or two of them space-separated, new first.
    pub signatures: String,
}

impl SigningKeys {
    /// The keys of `secrets`; `None` when there is no current secret or it does not
    /// decode (the API never stores one that does not). A previous secret that does not
    /// decode is left out.
    pub fn from_secrets(secrets: &WebhookSecrets) -> Option<SigningKeys> {
        let key_of = |secret: &Secret| {
            decode_secret(secret.expose())
                .ok()
                .map(|k| HmacKey::new(&k))
        };
        let current = key_of(secrets.current.as_ref()?)?;
        let previous = match (&secrets.previous, secrets.rotated_ms) {
            (Some(previous), Some(at)) => key_of(previous).map(|key| (key, at)),
            _ => None,
        };
        Some(SigningKeys { current, previous })
    }

    /// Whether a try at `now_ms` also signs with the replaced secret: from the rotation
    /// until `overlap` after it (excluded).
    pub fn in_overlap(&self, now_ms: u64, overlap: Duration) -> bool {
        let overlap_ms = u64::try_from(overlap.as_millis()).unwrap_or(u64::MAX);
        self.previous
            .as_ref()
            .is_some_and(|(_, at)| now_ms < at.saturating_add(overlap_ms))
    }

    /// The headers of a try made at `now_ms` that sends `content` (the body, or a GET's
    /// query string) for event `msg_id`: signed with the current secret, and during the
    /// `overlap` after a rotation with the replaced one too (second).
    pub fn sign(&self, msg_id: &str, now_ms: u64, content: &[u8], overlap: Duration) -> Signature {
        let timestamp = (now_ms / 1000).to_string();
        let mut signatures = sign_v1(&self.current, msg_id, &timestamp, content);
        if self.in_overlap(now_ms, overlap) {
            if let Some((previous, _)) = &self.previous {
                signatures.push(' ');
                signatures.push_str(&sign_v1(previous, msg_id, &timestamp, content));
            }
        }
        Signature {
            timestamp,
            signatures,
        }
    }
}

/// `v1,` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{content}")).
pub fn sign_v1(key: &HmacKey, msg_id: &str, timestamp: &str, content: &[u8]) -> String {
    let mac = key.base64_mac(&[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", content]);
    format!("v1,{mac}")
}

#[cfg(test)]
mod tests;
