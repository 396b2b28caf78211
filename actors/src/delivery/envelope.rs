//! Stage 2, for hooks with `version: "v2"` (Kazoo 5): the payload wrapped in Kazoo 5's
//! envelope, `{"action":"event","name":HOOK_EVENT,"data":PAYLOAD,"timestamp":UNIX_SECONDS}`,
//! and with `security_settings.sha256_key` its `hmac`. Pure.
//!
//! `hmac` is the base64 (standard, padded) HMAC-SHA256, keyed with the bytes of the
//! `sha256_key` string as stored, of the decimal `timestamp` immediately followed by the
//! compact JSON of `data` with the keys of every object sorted (bytewise) — what a
//! receiver gets from `json.dumps(data, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` over the parsed body. The JSON is streamed into the HMAC, never
//! buffered. `timestamp` is the try's Unix seconds, the same as its `webhook-timestamp`.
//!
//! Where this differs from Kazoo 5 on purpose (`webhooks_util:maybe_augment_event/2`):
//! `name` is the `hook_event` (`channel_create`; Kazoo 5 sends its AMQP event name,
//! `CHANNEL_CREATE`) and `data` is the payload a v1 hook gets, `custom_data` merged into
//! it (Kazoo 5 sends the whole normalized AMQP event as `data` and merges `custom_data`
//! into the envelope's top level); Kazoo 5 reads the clock twice, so its `hmac` can be
//! over a second other than the `timestamp` it sends — here both are one value.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{DeliveryError, Payload};
use crate::form::FormEncoder;
use crate::signing::HmacKey;

/// A hook's `version`: which body it gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadVersion {
    /// `v1`: the flat payload (INTERFACE.md section 5).
    #[default]
    V1,
    /// `v2`: the payload in Kazoo 5's envelope ([`Envelope`]).
    V2,
}

impl PayloadVersion {
    /// The stored spelling: `v1` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl FromStr for PayloadVersion {
    type Err = ();

    /// Parses `v1` or `v2` (exactly: the API stores nothing else).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1" => Ok(Self::V1),
            "v2" => Ok(Self::V2),
            _ => Err(()),
        }
    }
}

impl fmt::Display for PayloadVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `action` of every v2 body.
const ACTION: &str = "event";

/// A v2 body: the payload in Kazoo 5's envelope. Serializes (and form-encodes) as
/// `action`, `name`, `data`, `timestamp`, then `hmac` when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    name: &'a str,
    data: Payload<'a>,
    timestamp: u64,
    hmac: Option<String>,
}

impl<'a> Envelope<'a> {
    /// The envelope of `data` for event `name` at `timestamp` (Unix seconds), with its
    /// `hmac` when the hook has a `sha256_key`.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Json`] if `data` cannot be written as JSON for the `hmac`.
    pub fn new(
        name: &'a str,
        data: Payload<'a>,
        timestamp: u64,
        sha256_key: Option<&HmacKey>,
    ) -> Result<Self, DeliveryError> {
        let hmac = sha256_key
            .map(|key| v2_hmac(key, timestamp, &data))
            .transpose()?;
        Ok(Envelope {
            name,
            data,
            timestamp,
            hmac,
        })
    }

    /// The `hmac` field, when the hook has a `sha256_key`.
    pub fn hmac(&self) -> Option<&str> {
        self.hmac.as_deref()
    }

    /// The form encoding (`action=event&name=…&data[k]=v&…`), `None` past `max_bytes`.
    pub(crate) fn form_encode_within(&self, max_bytes: usize) -> Option<String> {
        let mut encoder = FormEncoder::within(max_bytes);
        encoder
            .field("action", &Value::from(ACTION))
            .field("name", &Value::from(self.name))
            .object_field("data", self.data.fields())
            .field("timestamp", &Value::from(self.timestamp));
        if let Some(hmac) = &self.hmac {
            encoder.field("hmac", &Value::from(hmac.as_str()));
        }
        encoder.finish()
    }
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4 + usize::from(self.hmac.is_some())))?;
        map.serialize_entry("action", ACTION)?;
        map.serialize_entry("name", self.name)?;
        map.serialize_entry("data", &self.data)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        if let Some(hmac) = &self.hmac {
            map.serialize_entry("hmac", hmac)?;
        }
        map.end()
    }
}

/// The v2 `hmac` of `data` at `timestamp` (see the module documentation).
pub fn v2_hmac(key: &HmacKey, timestamp: u64, data: &Payload<'_>) -> Result<String, DeliveryError> {
    let mut mac = key.start();
    mac.update(timestamp.to_string().as_bytes());
    let fields: Vec<(&str, &Value)> = sorted(data.fields());
    serde_json::to_writer(MacWriter(&mut mac), &CanonicalFields(&fields))
        .map_err(|e| DeliveryError::Json(e.to_string()))?;
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Feeds what is written into a MAC.
struct MacWriter<'m, M: Mac>(&'m mut M);

impl<M: Mac> std::io::Write for MacWriter<'_, M> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An object's entries sorted by key (already sorted, as `serde_json`'s default map and
/// [`Payload`] are, costs one pass).
fn sorted<'v>(entries: impl Iterator<Item = (&'v str, &'v Value)>) -> Vec<(&'v str, &'v Value)> {
    let mut entries: Vec<(&str, &Value)> = entries.collect();
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

/// An object given by its sorted entries, each value written canonically.
struct CanonicalFields<'e, 'v>(&'e [(&'v str, &'v Value)]);

impl Serialize for CanonicalFields<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, &Canonical(value))?;
        }
        map.end()
    }
}

/// A value with the keys of every object in it sorted.
struct Canonical<'v>(&'v Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let entries = sorted(map.iter().map(|(k, v)| (k.as_str(), v)));
                CanonicalFields(&entries).serialize(serializer)
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Canonical(item))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests;
