//! What the log stores: a [`Record`] (sequence, time, [`Event`]) and the versioned events.
//!
//! The on-disk format is an API. Events are encoded with rmp-serde as maps (field names
//! kept), so a field can be added later with `#[serde(default)]`; anything that changes
//! the meaning of an existing field needs a new [`RECORD_VERSION`] and an upcaster in the
//! decoder. This module never interprets events: that is the `actors` crate's `apply`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AccountId, EventId, WebhookId};

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
    /// An auth token was issued. Only its BLAKE3 hash is stored.
    TokenIssued {
        token_hash: String,
        account_id: AccountId,
        /// Unix seconds after which the token is refused.
        expires_at: u64,
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
    /// A webhook was deleted.
    WebhookDeleted {
        account_id: AccountId,
        webhook_id: WebhookId,
    },
    /// The bulk re-enable PATCH re-enabled these auto-disabled webhooks.
    WebhooksReenabled { webhook_ids: Vec<WebhookId> },
    /// A call event was accepted for delivery.
    EventAccepted {
        event_id: EventId,
        account_id: AccountId,
        hook_event: String,
        payload: Value,
    },
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
            Event::WebhookCreated { .. } => "webhook_created",
            Event::WebhookUpdated { .. } => "webhook_updated",
            Event::WebhookDeleted { .. } => "webhook_deleted",
            Event::WebhooksReenabled { .. } => "webhooks_reenabled",
            Event::EventAccepted { .. } => "event_accepted",
        }
    }
}
