//! What the log stores: a [`Record`] (sequence, time, [`Event`]) and the versioned events.
//!
//! The on-disk format is an API. Events are encoded with rmp-serde as maps (field names
//! kept), so a field can be added later with `#[serde(default)]`; anything that changes
//! the meaning of an existing field needs a new [`RECORD_VERSION`] and an upcaster in the
//! decoder. This module never interprets events: that is the `actors` crate's `apply`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AccountId, EventId, WebhookId};

/// A secret string kept in a record (a webhook's signing secret). Stored as the plain
/// string (serde transparent), but its `Debug` never shows it, so a record or a state
/// printed for a log line cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself: for the one place that must hand it out or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The version of the event encoding written by this build.
pub const RECORD_VERSION: u16 = 1;

/// One committed entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Position in the log: 1, 2, 3, ... with no gaps; key order is append order.
    pub seq: u64,
    /// Wall-clock time of the append, Unix milliseconds.
    pub time_ms: u64,
    /// What happened.
    pub event: Event,
}

/// Every state change of the daemon, named in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// An account was created. `doc` is its public document (`name`, extra fields).
    AccountCreated {
        account_id: AccountId,
        parent_id: Option<AccountId>,
        api_key: String,
        doc: Value,
    },
    /// An account's public document was replaced (`doc` is the whole new document).
    AccountUpdated { account_id: AccountId, doc: Value },
    /// An account and all its webhooks were deleted.
    AccountDeleted { account_id: AccountId },
    /// An account's API key was replaced (the master key given by flag at start).
    ApiKeyChanged {
        account_id: AccountId,
        api_key: String,
    },
    /// An auth token was issued. Only its BLAKE3 hash is stored. When it expires is
    /// [`token_expiry_ms`] of the two fields below.
    TokenIssued {
        token_hash: String,
        account_id: AccountId,
        /// Unix seconds: the token is refused from this second on. Records written before
        /// `expires_at_ms` existed have only this; newer ones write the expiry rounded up
        /// to a whole second here, for readers that know only this field.
        expires_at: u64,
        /// Unix milliseconds: the token is refused from this instant on. Absent (`None`)
        /// in records written before it was added.
        #[serde(default)]
        expires_at_ms: Option<u64>,
    },
    /// An auth token was revoked before it expired: its account reached
    /// `--max-tokens-per-account` and a newer token took its place. `expires_at_ms` is the
    /// token's own expiry, so retention can forget this record when it forgets the token's.
    TokenRevoked {
        token_hash: String,
        account_id: AccountId,
        expires_at_ms: u64,
    },
    /// A webhook was created with this stored document.
    WebhookCreated {
        account_id: AccountId,
        webhook_id: WebhookId,
        doc: Value,
    },
    /// A webhook's stored document was replaced (POST, PATCH, single re-enable).
    WebhookUpdated {
        account_id: AccountId,
        webhook_id: WebhookId,
        doc: Value,
    },
    /// A webhook's signing secret was set: with its creation (in the same append as
    /// `WebhookCreated`), by a rotation (`PUT …/secret`), or at start for a webhook
    /// created before webhooks had secrets. The secret it replaces stays valid for
    /// signing during the rotation overlap, counted from this record's time.
    WebhookSecretSet {
        account_id: AccountId,
        webhook_id: WebhookId,
        /// `whsec_` + base64 of the key bytes (Standard Webhooks).
        secret: Secret,
    },
    /// A webhook was deleted.
    WebhookDeleted {
        account_id: AccountId,
        webhook_id: WebhookId,
    },
    /// The bulk re-enable PATCH re-enabled these auto-disabled webhooks.
    WebhooksReenabled { webhook_ids: Vec<WebhookId> },
    /// A call event was accepted for delivery. The webhooks it goes to are those that
    /// match it in the state this record is applied to.
    EventAccepted {
        event_id: EventId,
        account_id: AccountId,
        hook_event: String,
        payload: Value,
    },
    /// One delivery try of an accepted event (by its `event_seq`) to one webhook.
    DeliveryAttempted(Attempt),
    /// An operator asked for events to be delivered to a webhook again: the accepted
    /// events with `from_seq <= seq <= until_seq` that the webhook matches (and, when
    /// `undelivered_only`, did not receive with success). A resend of one attempt's event
    /// (`attempt_seq`) has `from_seq == until_seq` and `undelivered_only: false`; a
    /// recover asks for the undelivered events of a time window (`since_ms`, `until_ms`).
    /// The webhook actor works through it in pages ([`Event::RedeliveryAdvanced`]).
    RedeliveryRequested {
        account_id: AccountId,
        webhook_id: WebhookId,
        /// The account whose credentials asked (the owner, or an ancestor of it).
        requested_by: AccountId,
        from_seq: u64,
        until_seq: u64,
        undelivered_only: bool,
        /// How many events the range held when it was asked for.
        events: u64,
        #[serde(default)]
        attempt_seq: Option<u64>,
        #[serde(default)]
        since_ms: Option<u64>,
        #[serde(default)]
        until_ms: Option<u64>,
    },
    /// Every event of a redelivery (the `RedeliveryRequested` at `request_seq`) below
    /// `next_seq` was delivered or finally failed; the rest of the range is still owed.
    RedeliveryAdvanced {
        webhook_id: WebhookId,
        request_seq: u64,
        next_seq: u64,
    },
    /// A webhook failed too often within the window and was disabled.
    WebhookAutoDisabled {
        account_id: AccountId,
        webhook_id: WebhookId,
        reason: String,
    },
    /// Records up to `cut_seq` were pruned: the removable ones among them were deleted and
    /// the others kept. Written by the log itself (`EventLog::prune`), never by a handler;
    /// it is the chained checkpoint that pins what the pruned region still holds (see the
    /// `store::codec` module documentation).
    LogPruned {
        /// The last sequence number of the pruned region.
        cut_seq: u64,
        /// The hash of record `cut_seq` as it was before the prune, lowercase hex.
        cut_hash: String,
        /// How many records with `seq <= cut_seq` remain after the prune (including those
        /// kept by earlier prunes).
        kept: u64,
        /// BLAKE3 over `seq_be8 || hash32` of every kept record with `seq <= cut_seq`, in
        /// seq order; lowercase hex.
        kept_digest: String,
        /// How many records this prune deleted.
        removed: u64,
    },
}

/// Whether a delivery try succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    Success,
    Failure,
}

/// One delivery try, as logged and as listed by the attempts API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Sequence of the `EventAccepted` record being delivered.
    pub event_seq: u64,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    /// The hook owner's account.
    pub account_id: AccountId,
    pub hook_event: String,
    pub uri: String,
    /// `get`, `post` or `put`.
    pub method: String,
    pub result: AttemptResult,
    /// Why it failed (`bad response code`, `http client error`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// Transport error (connection refused, timeout, dns, ...).
    #[serde(default)]
    pub client_error: Option<String>,
    #[serde(default)]
    pub response_code: Option<u16>,
    /// The start of the response body (bounded).
    #[serde(default)]
    pub response_body: Option<String>,
    /// Tries still allowed after this one.
    pub retries_left: u32,
    pub latency_ms: u64,
    /// When the next try is due (Unix ms); `None` when this delivery is finished.
    #[serde(default)]
    pub next_try_at_ms: Option<u64>,
    /// The try failed on the daemon's side before any connection (out of descriptors,
    /// resolver down, a refused private address): not the receiver's failure, so it does
    /// not count towards auto-disable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_fault: bool,
}

/// When a token of a `TokenIssued` record stops being valid, Unix ms: `expires_at_ms`
/// when the record has it, else the whole second `expires_at` of an older record (which
/// keeps its meaning: refused from that second on).
pub fn token_expiry_ms(expires_at: u64, expires_at_ms: Option<u64>) -> u64 {
    expires_at_ms.unwrap_or_else(|| expires_at.saturating_mul(1000))
}

impl Event {
    /// A short stable name for the event kind, as used by `log replay --kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AccountCreated { .. } => "account_created",
            Event::AccountUpdated { .. } => "account_updated",
            Event::AccountDeleted { .. } => "account_deleted",
            Event::ApiKeyChanged { .. } => "api_key_changed",
            Event::TokenIssued { .. } => "token_issued",
            Event::TokenRevoked { .. } => "token_revoked",
            Event::WebhookCreated { .. } => "webhook_created",
            Event::WebhookUpdated { .. } => "webhook_updated",
            Event::WebhookSecretSet { .. } => "webhook_secret_set",
            Event::WebhookDeleted { .. } => "webhook_deleted",
            Event::WebhooksReenabled { .. } => "webhooks_reenabled",
            Event::EventAccepted { .. } => "event_accepted",
            Event::DeliveryAttempted(_) => "delivery_attempted",
            Event::RedeliveryRequested { .. } => "redelivery_requested",
            Event::RedeliveryAdvanced { .. } => "redelivery_advanced",
            Event::WebhookAutoDisabled { .. } => "webhook_auto_disabled",
            Event::LogPruned { .. } => "log_pruned",
        }
    }
}

#[cfg(test)]
mod tests;
