//! Form encoding of a webhook payload, after Kazoo's `kz_http_util:json_to_querystring`.
//!
//! This module owns one pure function, [`form_encode`], that turns a JSON object into an
//! `application/x-www-form-urlencoded` string: the body of a `form-data` POST/PUT and the
//! query string of a GET; and [`FormEncoder`], the same field by field (for bodies whose
//! fields are held apart). It does no I/O and knows nothing of hooks, actors or HTTP.
//!
//! # Rules (`kazoo-behaviour.md` 5.3)
//!
//! * Scalars: `key=value`. Booleans are `true` / `false`; numbers are written as
//!   `serde_json` prints them (`42`, `-1.5`, `1e100`).
//! * Nested objects: `parent[child]=value`, deeper levels repeating the pattern
//!   (`a[b][c]=v`).
//! * Lists of scalars: `key[]=v1&key[]=v2`, the members in list order.
//! * Values are URL-encoded in the "legacy" form: a space becomes `+`, the bytes
//!   `A-Z a-z 0-9 . - ~ _` are kept, every other byte of the UTF-8 encoding becomes `%XX`
//!   with uppercase hex.
//! * Pairs appear in the map's iteration order (sorted by key with `serde_json`'s default
//!   `BTreeMap`), then depth first.
//!
//! # Choices where Kazoo has no rule, and deliberate differences
//!
//! * **`null`** is sent as the key with an empty value (`key=`), so the receiver still
//!   sees that the field exists. Kazoo has no clause for it.
//! * **Empty objects and empty lists** produce no pair at all: there is no value to send,
//!   and a `key=` would make a receiver read a scalar where the JSON had a container.
//! * **Lists holding an object or a list** are written with explicit indexes,
//!   `key[0][x]=1&key[0][y]=2&key[1][x]=3`, for every member of that list (scalar members
//!   included). The bare `key[][x]=1&key[][y]=2` form is ambiguous: PHP reads it as two
//!   list members, Rails as one. Lists of scalars keep Kazoo's `key[]=v` form.
//! * **Keys are encoded minimally.** Kazoo does not encode keys at all, which lets a key
//!   holding `&` or `=` inject extra pairs. Here the characters that would break the pair
//!   structure are percent-encoded in keys: `&`, `=`, `%`, `+`, `#`, ASCII control
//!   characters, and space (written `+`, as form decoders read it back as a space). Every
//!   other key character, `[` and `]` included, is written as is, so the ordinary keys
//!   Kazoo sends (`call_id`, `Caller-ID-Name`, ...) come out byte for byte the same.

use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// Encodes `payload` as an `application/x-www-form-urlencoded` string.
///
/// See the module documentation for the rules. An empty map gives an empty string. The
/// function never fails and never panics, whatever the input.
pub fn form_encode(payload: &Map<String, Value>) -> String {
    form_encode_fields(payload.iter().map(|(key, value)| (key.as_str(), value)))
}

/// [`form_encode`] of an object given as its fields, in the order given.
pub fn form_encode_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a Value)>) -> String {
    form_encode_fields_within(fields, usize::MAX).unwrap_or_default()
}

/// [`form_encode_fields`], given up as soon as the encoding passes `max_bytes` (`None`):
/// a payload whose encoding would be huge (one long key over a long list repeats the key
/// per member) costs at most `max_bytes` to find out.
pub fn form_encode_fields_within<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Value)>,
    max_bytes: usize,
) -> Option<String> {
    let mut encoder = FormEncoder::within(max_bytes);
    for (key, value) in fields {
        encoder.field(key, value);
    }
    encoder.finish()
}

/// Writes an object field by field, so a caller can nest fields it holds apart (Kazoo 5's
/// v2 body puts the payload's fields under `data`) without building that object first.
/// Gives up (`finish` is `None`) as soon as the encoding passes `max_bytes`.
#[derive(Debug)]
pub struct FormEncoder {
    out: String,
    max_bytes: usize,
    fits: bool,
}

impl FormEncoder {
    /// An encoder that stops past `max_bytes`.
    pub fn within(max_bytes: usize) -> FormEncoder {
        FormEncoder {
            out: String::new(),
            max_bytes,
            fits: true,
        }
    }

    /// Writes the pairs of one field.
    pub fn field(&mut self, key: &str, value: &Value) -> &mut Self {
        if self.fits {
            let mut name = String::with_capacity(key.len());
            encode_key_into(&mut name, key);
            self.fits = encode_pairs(&mut self.out, &mut name, value, self.max_bytes);
        }
        self
    }

    /// Writes a field whose value is the object made of `fields` (`key[child]=v`, ...).
    pub fn object_field<'a>(
        &mut self,
        key: &str,
        fields: impl Iterator<Item = (&'a str, &'a Value)>,
    ) -> &mut Self {
        let mut name = String::with_capacity(key.len() + 16);
        encode_key_into(&mut name, key);
        let base = name.len();
        for (child, value) in fields {
            if !self.fits {
                break;
            }
            name.push('[');
            encode_key_into(&mut name, child);
            name.push(']');
            self.fits = encode_pairs(&mut self.out, &mut name, value, self.max_bytes);
            name.truncate(base);
        }
        self
    }

    /// The encoding, or `None` when it passed the bound.
    pub fn finish(self) -> Option<String> {
        self.fits.then_some(self.out)
    }
}

/// Writes the pairs for `value` under the (already encoded) field `name`; `false` as soon
/// as `out` passes `max_bytes`.
///
/// `name` is used as a scratch buffer: it is extended for each child and truncated back,
/// so deep payloads do not allocate a fresh name per field.
fn encode_pairs(out: &mut String, name: &mut String, value: &Value, max_bytes: usize) -> bool {
    match value {
        Value::Object(map) => {
            let base = name.len();
            for (key, child) in map {
                name.push('[');
                encode_key_into(name, key);
                name.push(']');
                let fits = encode_pairs(out, name, child, max_bytes);
                name.truncate(base);
                if !fits {
                    return false;
                }
            }
            true
        }
        Value::Array(items) => {
            let base = name.len();
            let indexed = items
                .iter()
                .any(|item| matches!(item, Value::Object(_) | Value::Array(_)));
            for (index, item) in items.iter().enumerate() {
                if indexed {
                    name.push('[');
                    name.push_str(&index.to_string());
                    name.push(']');
                } else {
                    name.push_str("[]");
                }
                let fits = encode_pairs(out, name, item, max_bytes);
                name.truncate(base);
                if !fits {
                    return false;
                }
            }
            true
        }
        Value::Null => push_pair(out, name, "", max_bytes),
        Value::Bool(true) => push_pair(out, name, "true", max_bytes),
        Value::Bool(false) => push_pair(out, name, "false", max_bytes),
        Value::Number(number) => push_pair(out, name, &number.to_string(), max_bytes),
        Value::String(text) => push_pair(out, name, text, max_bytes),
    }
}

/// Appends `name=encoded(value)`, preceded by `&` unless it is the first pair; `false`
/// when `out` is then longer than `max_bytes`. The name alone is checked before it is
/// copied, so one pair costs at most its own size past the bound.
fn push_pair(out: &mut String, name: &str, value: &str, max_bytes: usize) -> bool {
    if out.len().saturating_add(name.len()) > max_bytes {
        return false;
    }
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    encode_value_into(out, value);
    out.len() <= max_bytes
}

/// Appends `value` in the legacy form encoding: space as `+`, `A-Z a-z 0-9 . - ~ _` kept,
/// every other UTF-8 byte as `%XX` (uppercase hex).
fn encode_value_into(out: &mut String, value: &str) {
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'~' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => push_percent(out, byte),
        }
    }
}

/// Appends `key` with only the structure-breaking characters encoded (see the module
/// documentation): `&`, `=`, `%`, `+`, `#`, ASCII controls as `%XX`, space as `+`.
fn encode_key_into(out: &mut String, key: &str) {
    for ch in key.chars() {
        match ch {
            ' ' => out.push('+'),
            '&' | '=' | '%' | '+' | '#' => push_percent(out, ch as u8),
            c if c.is_ascii_control() => push_percent(out, c as u8),
            c => out.push(c),
        }
    }
}

/// Appends `%XX` for `byte`, with uppercase hex digits.
fn push_percent(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0F)]));
}
