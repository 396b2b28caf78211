//! `log replay`: the records in log order, filtered, as readable lines or NDJSON.
//!
//! Time bounds select a contiguous run of the log (the log's times only go forward, so
//! this is the same as comparing each record, and `--until T` shows exactly the records
//! that `log state --at T` applies). `--account` and `--webhook` also match records that
//! name the webhook only through its owner (a bulk re-enable, an account deletion), so
//! with either the log is read from the start to learn the owners, whatever `--from` says.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::Ordering;

use eventlog::{AccountId, Event, EventLog, Record, WebhookId};
use serde_json::{Map, Value};

use super::progress::{with_progress, Plan};
use super::{format_ms, open_log, AuditError, ReplayArgs};

/// What every record's `kind` is today (`Event::kind`); other names are warned about.
pub const KNOWN_KINDS: &[&str] = &[
    "account_created",
    "account_updated",
    "account_deleted",
    "api_key_changed",
    "token_issued",
    "token_revoked",
    "webhook_created",
    "webhook_updated",
    "webhook_secret_set",
    "webhook_deleted",
    "webhooks_reenabled",
    "event_accepted",
    "delivery_attempted",
    "webhook_auto_disabled",
    "log_pruned",
];

/// Event fields that are secrets: never printed.
const SECRET_FIELDS: &[&str] = &["api_key", "token_hash", "secret"];

/// What a secret field reads in `--json` output.
pub const REDACTED: &str = "[redacted]";

/// Which records `log replay` prints.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// First sequence number printed (0 and 1 both mean the start).
    pub from: u64,
    /// Unix ms: start at the first record at or after it.
    pub since: Option<u64>,
    /// Unix ms: stop at the first record after it.
    pub until: Option<u64>,
    pub account: Option<AccountId>,
    pub webhook: Option<WebhookId>,
    /// Kinds to keep; empty keeps every kind.
    pub kinds: BTreeSet<String>,
}

impl Filter {
    /// The filter the command line asks for.
    pub fn from_args(args: &ReplayArgs) -> Filter {
        Filter {
            from: args.from,
            since: args.since,
            until: args.until,
            account: args.account.clone(),
            webhook: args.webhook.clone(),
            kinds: args
                .kind
                .iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Whether `event` passes the kind, account and webhook filters (not the bounds).
    fn matches(&self, event: &Event, owners: &Owners) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(event.kind()))
            && self
                .account
                .as_ref()
                .is_none_or(|a| concerns_account(event, a, owners))
            && self
                .webhook
                .as_ref()
                .is_none_or(|w| concerns_webhook(event, w, owners))
    }
}

/// The owner of every webhook created so far in the read.
type Owners = HashMap<WebhookId, AccountId>;

/// Runs `log replay`.
pub fn run(args: &ReplayArgs, out: &mut impl Write, progress: bool) -> Result<(), AuditError> {
    let log = open_log(&args.data_dir)?;
    replay_log(&log, &Filter::from_args(args), args.json, out, progress)
}

/// Writes the records of `log` that pass `filter` to `out`, in log order.
pub fn replay_log(
    log: &EventLog,
    filter: &Filter,
    json: bool,
    out: &mut impl Write,
    progress: bool,
) -> Result<(), AuditError> {
    for kind in &filter.kinds {
        if !KNOWN_KINDS.contains(&kind.as_str()) {
            tracing::warn!(kind = %kind, known = ?KNOWN_KINDS, "unknown record kind: no record will match it");
        }
    }
    let needs_owners = filter.account.is_some() || filter.webhook.is_some();
    let start = if needs_owners { 1 } else { filter.from.max(1) };
    let last = log.last_seq();
    let plan = Plan {
        visible: progress,
        total: Some(if last >= start { last - start + 1 } else { 0 }),
        label: "replaying",
    };
    with_progress(plan, |done| {
        let mut owners = Owners::new();
        let mut started = filter.since.is_none();
        for item in log.iter_from(start) {
            let record = item.map_err(AuditError::from_read)?;
            done.fetch_add(1, Ordering::Relaxed);
            if record.seq >= filter.from {
                if filter.until.is_some_and(|until| record.time_ms > until) {
                    break;
                }
                started = started || filter.since.is_some_and(|since| record.time_ms >= since);
            }
            let keep =
                record.seq >= filter.from && started && filter.matches(&record.event, &owners);
            if needs_owners {
                track_owner(&mut owners, &record.event);
            }
            if keep {
                write_record(out, &record, json)?;
            }
        }
        Ok(())
    })
}

/// Learns webhook owners from creations and deletions.
fn track_owner(owners: &mut Owners, event: &Event) {
    match event {
        Event::WebhookCreated {
            account_id,
            webhook_id,
            ..
        } => {
            owners
                .entry(webhook_id.clone())
                .or_insert_with(|| account_id.clone());
        }
        Event::WebhookDeleted {
            account_id,
            webhook_id,
        } => {
            if owners.get(webhook_id) == Some(account_id) {
                owners.remove(webhook_id);
            }
        }
        // Listed, not matched with `_`: a new kind that creates or deletes webhooks must
        // not compile until it is taught here.
        Event::AccountCreated { .. }
        | Event::AccountUpdated { .. }
        | Event::AccountDeleted { .. }
        | Event::ApiKeyChanged { .. }
        | Event::TokenIssued { .. }
        | Event::TokenRevoked { .. }
        | Event::WebhookUpdated { .. }
        | Event::WebhookSecretSet { .. }
        | Event::WebhooksReenabled { .. }
        | Event::EventAccepted { .. }
        | Event::DeliveryAttempted(_)
        | Event::WebhookAutoDisabled { .. }
        | Event::RedeliveryRequested { .. }
        | Event::RedeliveryAdvanced { .. }
        | Event::LogPruned { .. } => {}
    }
}

/// Whether `event` concerns `account`: names it, creates a child of it, is a delivery try
/// of one of its webhooks, or re-enables one of them. Every kind is listed (no `_` arm), so
/// a new kind does not compile until it is taught here.
fn concerns_account(event: &Event, account: &AccountId, owners: &Owners) -> bool {
    match event {
        Event::AccountCreated {
            account_id,
            parent_id,
            ..
        } => account_id == account || parent_id.as_ref() == Some(account),
        Event::AccountUpdated { account_id, .. }
        | Event::AccountDeleted { account_id }
        | Event::ApiKeyChanged { account_id, .. }
        | Event::TokenIssued { account_id, .. }
        | Event::TokenRevoked { account_id, .. }
        | Event::WebhookCreated { account_id, .. }
        | Event::WebhookUpdated { account_id, .. }
        | Event::WebhookSecretSet { account_id, .. }
        | Event::WebhookDeleted { account_id, .. }
        | Event::EventAccepted { account_id, .. }
        | Event::WebhookAutoDisabled { account_id, .. } => account_id == account,
        // The hook owner's account, and the account that asked.
        Event::RedeliveryRequested {
            account_id,
            requested_by,
            ..
        } => account_id == account || requested_by == account,
        Event::RedeliveryAdvanced { webhook_id, .. } => owners.get(webhook_id) == Some(account),
        // The hook owner's account.
        Event::DeliveryAttempted(attempt) => &attempt.account_id == account,
        Event::WebhooksReenabled { webhook_ids } => {
            webhook_ids.iter().any(|id| owners.get(id) == Some(account))
        }
        // The log's own checkpoint names no account.
        Event::LogPruned { .. } => false,
    }
}

/// Whether `event` concerns `webhook`: names it, or deletes the account that owns it.
/// Every kind is listed (no `_` arm), so a new kind does not compile until it is taught
/// here.
fn concerns_webhook(event: &Event, webhook: &WebhookId, owners: &Owners) -> bool {
    match event {
        Event::WebhookCreated { webhook_id, .. }
        | Event::WebhookUpdated { webhook_id, .. }
        | Event::WebhookSecretSet { webhook_id, .. }
        | Event::WebhookDeleted { webhook_id, .. }
        | Event::WebhookAutoDisabled { webhook_id, .. }
        | Event::RedeliveryRequested { webhook_id, .. }
        | Event::RedeliveryAdvanced { webhook_id, .. } => webhook_id == webhook,
        Event::WebhooksReenabled { webhook_ids } => webhook_ids.contains(webhook),
        Event::DeliveryAttempted(attempt) => &attempt.webhook_id == webhook,
        Event::AccountDeleted { account_id } => owners.get(webhook) == Some(account_id),
        // Matching decides an accepted event's webhooks when it is applied, not in the
        // record; the others name no webhook.
        Event::AccountCreated { .. }
        | Event::AccountUpdated { .. }
        | Event::ApiKeyChanged { .. }
        | Event::TokenIssued { .. }
        | Event::TokenRevoked { .. }
        | Event::EventAccepted { .. }
        | Event::LogPruned { .. } => false,
    }
}

fn write_record(out: &mut impl Write, record: &Record, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", json_line(record))
    } else {
        writeln!(out, "{}", human_line(record))
    }
}

/// One record as a one-line JSON object: `seq`, `time`, `time_ms`, `kind`, then the
/// event's fields by name (secrets redacted).
pub fn json_line(record: &Record) -> String {
    let mut line = format!(
        "{{\"seq\":{},\"time\":\"{}\",\"time_ms\":{},\"kind\":{}",
        record.seq,
        format_ms(record.time_ms),
        record.time_ms,
        Value::from(record.event.kind())
    );
    for (key, value) in event_fields(&record.event) {
        if !matches!(key.as_str(), "seq" | "time" | "time_ms" | "kind") {
            let _ = write!(line, ",{}:{value}", Value::String(key));
        }
    }
    line.push('}');
    line
}

/// The event's own fields (its serde map without the kind tag), secrets redacted.
pub fn event_fields(event: &Event) -> Map<String, Value> {
    let inner = match serde_json::to_value(event) {
        Ok(Value::Object(tagged)) if tagged.len() == 1 => tagged.into_iter().next().map(|(_, v)| v),
        Ok(_) => None,
        Err(e) => Some(Value::String(format!("unserializable event: {e}"))),
    };
    let mut fields = match inner {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => Map::new(),
        Some(other) => Map::from_iter([("event".to_owned(), other)]),
    };
    for key in SECRET_FIELDS {
        if let Some(value) = fields.get_mut(*key) {
            *value = Value::String(REDACTED.to_owned());
        }
    }
    if let Some(Value::Object(doc)) = fields.get_mut("doc") {
        redact_document(doc);
    }
    fields
}

/// Redacts the credentials a webhook document may hold: `security_settings.sha256_key`
/// and the values of `custom_request_headers` (an `Authorization` header, an API key);
/// the header names stay.
pub fn redact_document(doc: &mut Map<String, Value>) {
    if let Some(Value::Object(settings)) = doc.get_mut("security_settings") {
        if let Some(key) = settings.get_mut("sha256_key") {
            *key = Value::String(REDACTED.to_owned());
        }
    }
    if let Some(Value::Object(headers)) = doc.get_mut("custom_request_headers") {
        for value in headers.values_mut() {
            *value = Value::String(REDACTED.to_owned());
        }
    }
}

/// Fields shown first in a readable line, in this order; the rest follow by name.
const LEADING_FIELDS: &[&str] = &[
    "account_id",
    "parent_id",
    "webhook_id",
    "webhook_ids",
    "event_id",
    "event_seq",
];

/// Document fields shown in a readable line.
const DOC_FIELDS: &[&str] = &["name", "hook", "uri", "http_verb", "retries", "enabled"];

/// One record as a readable line:
/// `#42 2026-11-26T16:51:00.123Z webhook_created account=… webhook=… name="New Calls" …`.
pub fn human_line(record: &Record) -> String {
    let mut line = format!(
        "#{} {} {}",
        record.seq,
        format_ms(record.time_ms),
        record.event.kind()
    );
    let mut fields = event_fields(&record.event);
    // A token's expiry to the millisecond, when the record has it, says all its whole
    // seconds (rounded up) say.
    if fields.get("expires_at_ms").is_some_and(|ms| !ms.is_null()) {
        fields.remove("expires_at");
    }
    for key in LEADING_FIELDS {
        if let Some(value) = fields.get(*key) {
            push_field(&mut line, key, value);
        }
    }
    for (key, value) in &fields {
        if !LEADING_FIELDS.contains(&key.as_str()) {
            push_field(&mut line, key, value);
        }
    }
    line
}

fn push_field(line: &mut String, key: &str, value: &Value) {
    match key {
        // Secrets: not even their marker, in a line meant for reading.
        k if SECRET_FIELDS.contains(&k) => {}
        "doc" => {
            for field in DOC_FIELDS {
                if let Some(v) = value.get(*field) {
                    push(line, field, v);
                }
            }
        }
        "payload" => {
            if let Some(call_id) = value.get("call_id") {
                push(line, "call_id", call_id);
            }
        }
        // Bounded, but long: `--json` has it.
        "response_body" => {}
        "expires_at" => match value.as_u64() {
            Some(secs) => push_text(line, "expires", &format_ms(secs.saturating_mul(1000))),
            None => push(line, key, value),
        },
        "expires_at_ms" => match value.as_u64() {
            Some(ms) => push_text(line, "expires", &format_ms(ms)),
            None => push(line, key, value),
        },
        "next_try_at_ms" => match value.as_u64() {
            Some(ms) => push_text(line, "next_try", &format_ms(ms)),
            None => push(line, key, value),
        },
        "account_id" => push(line, "account", value),
        "parent_id" => push(line, "parent", value),
        "webhook_id" => push(line, "webhook", value),
        "webhook_ids" => push(line, "webhooks", value),
        "event_id" => push(line, "event", value),
        _ => push(line, key, value),
    }
}

/// ` name=value`, logfmt style; nothing for null.
fn push(line: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => push_text(line, name, s),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            push_text(line, name, &joined.join(","));
        }
        other => {
            let _ = write!(line, " {name}={other}");
        }
    }
}

fn push_text(line: &mut String, name: &str, text: &str) {
    let _ = write!(line, " {name}={}", quote(text));
}

/// `text` as is when it is one plain word, else quoted with escapes (so a record is
/// always one line).
fn quote(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | ',' | '@')
        });
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text:?}"))
    }
}
