//! The projection: accounts, API keys, tokens and webhooks, rebuilt from the event log.
//!
//! [`Registry::apply`] is the single mutator. Live changes reach it through the log's
//! commit hook (append first, then apply, in log order) and start-up replay calls the same
//! function, so replaying a log always rebuilds exactly the state the daemon had. `apply`
//! is total: a record that no longer fits the state (say, a webhook for an account deleted
//! meanwhile) changes nothing rather than failing. This module does no I/O.
//!
//! The file runs past 500 lines because `apply` is one match over every event and the
//! read accessors below it are the projection's whole API: split up, the one mutator
//! would no longer read as one. Its serde layout is the snapshot format
//! ([`snapshot`](crate::snapshot)); the wiring that feeds it from the log is
//! [`projection`](crate::projection).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use eventlog::{AccountId, Attempt, AttemptResult, Event, EventId, Record, WebhookId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::redelivery::{Redelivery, MAX_REDELIVERIES_PER_HOOK};
use crate::signing::WebhookSecrets;
use candidates::Candidates;

/// Why a hook was auto-disabled, as Kazoo words it.
pub const AUTO_DISABLE_REASON: &str = "too many failed attempts";

/// How many recent failure times a webhook keeps for the auto-disable count; a
/// `--failure-threshold` above this can never be reached.
pub const MAX_RECENT_FAILURES: usize = 1024;

/// A call event accepted for delivery, kept in memory while a delivery of it is pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedEvent {
    /// Sequence of its `EventAccepted` record.
    pub seq: u64,
    pub event_id: EventId,
    pub account_id: AccountId,
    pub hook_event: String,
    pub payload: Map<String, Value>,
    /// Unix milliseconds of acceptance.
    pub accepted_ms: u64,
}

impl AcceptedEvent {
    /// The call the event belongs to.
    pub fn call_id(&self) -> Option<&str> {
        self.payload.get("call_id").and_then(Value::as_str)
    }

    /// What the event's deliveries to one hook are ordered by: its call (`call_id`), or
    /// for a document change (`object`) the document (`type` and `id`). Deliveries
    /// with the same key reach a hook in log order; others go concurrently.
    pub fn ordering_key(&self) -> Option<String> {
        if let Some(call) = self.call_id() {
            return Some(format!("call:{call}"));
        }
        if self.hook_event != "object" {
            return None;
        }
        let field = |key: &str| self.payload.get(key).and_then(Value::as_str);
        match (field("type"), field("id")) {
            (Some(kind), Some(id)) => Some(format!("object:{kind}:{id}")),
            _ => None,
        }
    }
}

/// One event still to be delivered to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingDelivery {
    pub event: Arc<AcceptedEvent>,
    pub webhook_id: WebhookId,
    /// Tries already made (and logged).
    pub tries_done: u32,
    /// When the next try may start (Unix ms); the acceptance time for a first try.
    pub next_try_at_ms: u64,
}

/// What a change means for the running actors. Each effect carries what changed, so
/// its receivers (the router, a webhook actor) act on it without reading the registry
/// back. Replay ignores effects: after replay the router starts from the registry itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new delivery to start.
    Deliver(PendingDelivery),
    /// A webhook was created or its configuration changed (edited, disabled, enabled,
    /// auto-disabled, re-enabled).
    HookChanged(Box<HookChange>),
    /// A webhook was deleted, alone or with its account; what it was owed is dropped.
    HookRemoved(WebhookId),
    /// A redelivery was asked for this webhook ([`Registry::redelivery_for`]).
    Redeliver(WebhookId),
}

/// A webhook as a change left it.
#[derive(Debug, Clone, PartialEq)]
pub struct HookChange {
    /// The webhook after the change: configuration, enabled, failure times.
    pub webhook: Webhook,
    /// Whether it still owes deliveries (an edit that keeps it enabled keeps them).
    pub owes_deliveries: bool,
    /// Sequence of the record that made the change: a webhook actor that loaded its
    /// hook from a registry at or past it already has this configuration (or a newer).
    pub seq: u64,
}

/// One account of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// The parent only: ancestors are found by walking up ([`Registry::ancestors`]), so a
    /// deep tree costs O(depth), not O(depth²). (Snapshots written when each account kept
    /// its whole `tree` still load: the old field is ignored.)
    pub parent_id: Option<AccountId>,
    pub api_key: String,
    /// The public document: `name` and any other field the client stored.
    pub doc: Map<String, Value>,
    pub children: BTreeSet<AccountId>,
    /// Unix milliseconds of creation and last change (from the log records).
    pub created_ms: u64,
    pub modified_ms: u64,
    /// Sequence of the record that holds the current document (creation or last
    /// update): retention may forget older updates (0 in snapshots written before this
    /// was kept: then none is forgotten).
    #[serde(default)]
    pub doc_seq: u64,
}

impl Account {
    /// The account's name.
    pub fn name(&self) -> &str {
        self.doc.get("name").and_then(Value::as_str).unwrap_or("")
    }
}

/// One webhook: its stored document and what the daemon adds to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub account_id: AccountId,
    /// The stored document with defaults filled (no `id`, no `disable_reason`).
    pub doc: Map<String, Value>,
    /// Set only by auto-disable; cleared when the hook is enabled again.
    pub disable_reason: Option<String>,
    /// Times (Unix ms) of the latest failed tries, oldest first, for auto-disable.
    pub recent_failures: VecDeque<u64>,
    pub created_ms: u64,
    pub modified_ms: u64,
    /// Sequence of the record that holds the current document (creation or last
    /// update; see [`Account::doc_seq`]).
    #[serde(default)]
    pub doc_seq: u64,
    /// Its signing secrets (never part of the document; snapshots keep them as they
    /// keep API keys). Empty in snapshots written before webhooks had secrets.
    #[serde(default)]
    pub secrets: WebhookSecrets,
}

impl Webhook {
    /// `include_subaccounts` as stored (absent means false).
    pub fn include_subaccounts(&self) -> bool {
        self.doc
            .get("include_subaccounts")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Failed tries at or after `since_ms`.
    pub fn failures_since(&self, since_ms: u64) -> usize {
        self.recent_failures
            .iter()
            .filter(|t| **t >= since_ms)
            .count()
    }

    /// `enabled` as stored; a missing key means enabled (Kazoo's summary rule).
    pub fn enabled(&self) -> bool {
        self.doc
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// The `hook` the webhook listens to (`channel_create`, ..., or `all`).
    pub fn hook(&self) -> &str {
        self.doc.get("hook").and_then(Value::as_str).unwrap_or("")
    }

    /// Auto-disabled: disabled by the daemon, not by hand (the bulk re-enable rule).
    pub fn auto_disabled(&self) -> bool {
        !self.enabled() && self.disable_reason.is_some()
    }
}

/// An issued auth token (only its hash is kept). Its two expiry fields are those of its
/// `TokenIssued` record (snapshots taken before `expires_at_ms` existed lack it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub account_id: AccountId,
    /// Unix seconds.
    pub expires_at: u64,
    /// Unix milliseconds, when the record had them.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

impl Token {
    /// Unix ms from which the token is refused.
    pub fn expiry_ms(&self) -> u64 {
        eventlog::token_expiry_ms(self.expires_at, self.expires_at_ms)
    }
}

/// Everything the API and the router read, rebuilt by [`Registry::apply`].
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    master: Option<AccountId>,
    accounts: HashMap<AccountId, Account>,
    api_keys: HashMap<String, AccountId>,
    tokens: HashMap<String, Token>,
    /// The unexpired tokens by expiry (Unix ms), so expired ones are forgotten in order at
    /// O(log n) each instead of a scan of every token per issue. Derived from `tokens`:
    /// not in snapshots, rebuilt by [`Registry::rebuild_derived`].
    #[serde(skip)]
    token_expiry: BTreeSet<(u64, String)>,
    /// Each account's tokens by expiry, oldest first (`--max-tokens-per-account`).
    #[serde(skip)]
    tokens_by_account: HashMap<AccountId, BTreeSet<(u64, String)>>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    webhooks_by_account: HashMap<AccountId, BTreeSet<WebhookId>>,
    /// The enabled webhooks of each account by the `hook` they listen to, with their
    /// matching rule read once: matching an event looks only at the hooks of its kind
    /// (and `all`), with no lookup by id. Derived from `webhooks`: not in snapshots,
    /// rebuilt by [`Registry::rebuild_derived`].
    #[serde(skip)]
    candidates: HashMap<AccountId, Candidates>,
    /// Deliveries not finished yet, by webhook then event sequence.
    pending: BTreeMap<(WebhookId, u64), PendingDelivery>,
    /// Resends and recovers not finished yet, each webhook's in the order asked.
    #[serde(default)]
    redeliveries: BTreeMap<WebhookId, VecDeque<Redelivery>>,
    last_seq: u64,
    /// `EventAccepted` records applied (replayed ones included), for `/healthz`.
    #[serde(default)]
    events_accepted: u64,
}

impl Registry {
    /// An empty registry (a fresh log).
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence of the last record applied.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Applies one committed record. The only way the registry changes. Returns what the
    /// change means for running actors.
    pub fn apply(&mut self, record: &Record) -> Vec<Effect> {
        if record.seq <= self.last_seq {
            // Already applied (a snapshot taken after this record): applying twice would
            // not be idempotent for every event, so skip.
            return Vec::new();
        }
        self.last_seq = record.seq;
        let now = record.time_ms;
        let mut effects = Vec::new();
        match &record.event {
            Event::AccountCreated {
                account_id,
                parent_id,
                api_key,
                doc,
            } => self.create_account(account_id, parent_id.as_ref(), api_key, doc, record),
            Event::AccountUpdated { account_id, doc } => {
                if let Some(account) = self.accounts.get_mut(account_id) {
                    account.doc = object_or_empty(doc);
                    account.modified_ms = now;
                    account.doc_seq = record.seq;
                }
            }
            Event::AccountDeleted { account_id } => {
                for id in self.delete_account(account_id) {
                    effects.push(Effect::HookRemoved(id));
                }
            }
            Event::ApiKeyChanged {
                account_id,
                api_key,
            } => {
                if let Some(account) = self.accounts.get_mut(account_id) {
                    self.api_keys.remove(&account.api_key);
                    account.api_key.clone_from(api_key);
                    self.api_keys.insert(api_key.clone(), account_id.clone());
                }
            }
            Event::TokenIssued {
                token_hash,
                account_id,
                expires_at,
                expires_at_ms,
            } => {
                // Forget expired tokens as time passes in the log, oldest first, so memory
                // holds only live tokens and replay forgets exactly as the live daemon did.
                self.forget_tokens_expired_at(now);
                let token = Token {
                    account_id: account_id.clone(),
                    expires_at: *expires_at,
                    expires_at_ms: *expires_at_ms,
                };
                self.insert_token(token_hash.clone(), token);
            }
            Event::TokenRevoked { token_hash, .. } => self.remove_token(token_hash),
            Event::WebhookCreated {
                account_id,
                webhook_id,
                doc,
            } => {
                if self.accounts.contains_key(account_id) && !self.webhooks.contains_key(webhook_id)
                {
                    self.webhooks.insert(
                        webhook_id.clone(),
                        Webhook {
                            id: webhook_id.clone(),
                            account_id: account_id.clone(),
                            doc: object_or_empty(doc),
                            disable_reason: None,
                            recent_failures: VecDeque::new(),
                            created_ms: now,
                            modified_ms: now,
                            doc_seq: record.seq,
                            secrets: WebhookSecrets::default(),
                        },
                    );
                    self.webhooks_by_account
                        .entry(account_id.clone())
                        .or_default()
                        .insert(webhook_id.clone());
                    effects.extend(self.hook_changed(webhook_id));
                }
            }
            Event::WebhookUpdated {
                account_id,
                webhook_id,
                doc,
            } => {
                if let Some(hook) = self.webhooks.get_mut(webhook_id) {
                    if &hook.account_id == account_id {
                        hook.doc = object_or_empty(doc);
                        hook.modified_ms = now;
                        hook.doc_seq = record.seq;
                        // Saving a hook as enabled clears the auto-disable reason (Kazoo's
                        // cb_webhooks rule).
                        let enabled = hook.enabled();
                        if enabled {
                            hook.disable_reason = None;
                        }
                        // A changed configuration starts the failure count afresh.
                        hook.recent_failures.clear();
                        if !enabled {
                            self.drop_pending(webhook_id);
                        }
                        effects.extend(self.hook_changed(webhook_id));
                    }
                }
            }
            Event::WebhookSecretSet {
                account_id,
                webhook_id,
                secret,
            } => {
                if let Some(hook) = self.webhooks.get_mut(webhook_id) {
                    if &hook.account_id == account_id {
                        // The document, the failure count and what the hook is owed stay
                        // as they are: only what tries are signed with changes.
                        hook.secrets.set(secret.clone(), now);
                        effects.extend(self.hook_changed(webhook_id));
                    }
                }
            }
            Event::WebhookDeleted {
                account_id,
                webhook_id,
            } => {
                if self.webhooks.get(webhook_id).map(|h| &h.account_id) == Some(account_id) {
                    self.remove_webhook(webhook_id);
                    effects.push(Effect::HookRemoved(webhook_id.clone()));
                }
            }
            Event::WebhooksReenabled { webhook_ids } => {
                for id in webhook_ids {
                    if let Some(hook) = self.webhooks.get_mut(id) {
                        hook.doc.insert("enabled".into(), Value::Bool(true));
                        hook.disable_reason = None;
                        hook.recent_failures.clear();
                        hook.modified_ms = now;
                        effects.extend(self.hook_changed(id));
                    }
                }
            }
            Event::EventAccepted {
                event_id,
                account_id,
                hook_event,
                payload,
            } => {
                self.events_accepted += 1;
                // No duplicate check here: the log's writer skips an event whose id is
                // already in the log (a unique key, see `index`), atomically.
                // Matched against the record's own payload: it is copied only for an
                // event that has deliveries to hold.
                let empty = Map::new();
                let matched = self.matching_hooks(
                    account_id,
                    hook_event,
                    payload.as_object().unwrap_or(&empty),
                );
                if matched.is_empty() {
                    return effects;
                }
                let payload = object_or_empty(payload);
                let event = Arc::new(AcceptedEvent {
                    seq: record.seq,
                    event_id: event_id.clone(),
                    account_id: account_id.clone(),
                    hook_event: hook_event.clone(),
                    payload,
                    accepted_ms: now,
                });
                for webhook_id in matched {
                    let delivery = PendingDelivery {
                        event: Arc::clone(&event),
                        webhook_id: webhook_id.clone(),
                        tries_done: 0,
                        next_try_at_ms: now,
                    };
                    self.pending
                        .insert((webhook_id, record.seq), delivery.clone());
                    effects.push(Effect::Deliver(delivery));
                }
            }
            Event::DeliveryAttempted(attempt) => self.record_attempt(now, attempt),
            Event::RedeliveryRequested {
                account_id,
                webhook_id,
                from_seq,
                until_seq,
                undelivered_only,
                events,
                ..
            } => {
                let owned = self
                    .webhooks
                    .get(webhook_id)
                    .is_some_and(|h| &h.account_id == account_id && h.enabled());
                let queued = self.redeliveries.get(webhook_id).map_or(0, VecDeque::len);
                if owned
                    && *events > 0
                    && from_seq <= until_seq
                    && queued < MAX_REDELIVERIES_PER_HOOK
                {
                    self.redeliveries
                        .entry(webhook_id.clone())
                        .or_default()
                        .push_back(Redelivery {
                            request_seq: record.seq,
                            next_seq: *from_seq,
                            until_seq: *until_seq,
                            undelivered_only: *undelivered_only,
                        });
                    effects.push(Effect::Redeliver(webhook_id.clone()));
                }
            }
            Event::RedeliveryAdvanced {
                webhook_id,
                request_seq,
                next_seq,
            } => self.advance_redelivery(webhook_id, *request_seq, *next_seq),
            Event::WebhookAutoDisabled {
                account_id,
                webhook_id,
                reason,
            } => {
                if let Some(hook) = self.webhooks.get_mut(webhook_id) {
                    if &hook.account_id == account_id {
                        hook.doc.insert("enabled".into(), Value::Bool(false));
                        hook.disable_reason = Some(reason.clone());
                        hook.recent_failures.clear();
                        hook.modified_ms = now;
                        self.drop_pending(webhook_id);
                        effects.extend(self.hook_changed(webhook_id));
                    }
                }
            }
            // Retention removed call events and attempts the registry no longer
            // refers to (the pruner keeps events with pending deliveries).
            Event::LogPruned { .. } => {}
        }
        effects
    }

    /// The effect of a change to an existing webhook: the webhook as it now is.
    /// Also brings the matching candidates up to date.
    fn hook_changed(&mut self, id: &WebhookId) -> Option<Effect> {
        let account = self.webhooks.get(id)?.account_id.clone();
        self.reindex_webhook(&account, id);
        let webhook = self.webhooks.get(id)?.clone();
        let owes_deliveries = self.has_pending(id);
        Some(Effect::HookChanged(Box::new(HookChange {
            webhook,
            owes_deliveries,
            seq: self.last_seq,
        })))
    }

    fn record_attempt(&mut self, now: u64, attempt: &Attempt) {
        // A fault on the daemon's side is not the receiver's failure.
        if attempt.result == AttemptResult::Failure && !attempt.local_fault {
            if let Some(hook) = self.webhooks.get_mut(&attempt.webhook_id) {
                if hook.recent_failures.len() == MAX_RECENT_FAILURES {
                    hook.recent_failures.pop_front();
                }
                hook.recent_failures.push_back(now);
            }
        }
        let key = (attempt.webhook_id.clone(), attempt.event_seq);
        match attempt.next_try_at_ms {
            Some(at) => {
                if let Some(pending) = self.pending.get_mut(&key) {
                    pending.tries_done += 1;
                    pending.next_try_at_ms = at;
                }
            }
            None => {
                self.pending.remove(&key);
            }
        }
    }

    fn advance_redelivery(&mut self, webhook_id: &WebhookId, request_seq: u64, next_seq: u64) {
        let Some(queue) = self.redeliveries.get_mut(webhook_id) else {
            return;
        };
        if let Some(at) = queue.iter().position(|r| r.request_seq == request_seq) {
            let redelivery = &mut queue[at];
            redelivery.next_seq = redelivery.next_seq.max(next_seq);
            if redelivery.next_seq > redelivery.until_seq {
                queue.remove(at);
            }
        }
        if queue.is_empty() {
            self.redeliveries.remove(webhook_id);
        }
    }

    /// Drops what a webhook is owed: its pending deliveries and its redeliveries (a
    /// disable or a deletion; a recover can ask for them again).
    fn drop_pending(&mut self, webhook_id: &WebhookId) {
        self.redeliveries.remove(webhook_id);
        let keys: Vec<_> = self
            .pending
            .range(pending_range(webhook_id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.pending.remove(&key);
        }
    }

    fn create_account(
        &mut self,
        id: &AccountId,
        parent_id: Option<&AccountId>,
        api_key: &str,
        doc: &Value,
        record: &Record,
    ) {
        if self.accounts.contains_key(id) {
            return;
        }
        match parent_id {
            None => {
                if self.master.is_some() {
                    return; // there is exactly one root
                }
                self.master = Some(id.clone());
            }
            Some(parent) => match self.accounts.get_mut(parent) {
                None => return,
                Some(p) => {
                    p.children.insert(id.clone());
                }
            },
        }
        self.api_keys.insert(api_key.to_owned(), id.clone());
        self.accounts.insert(
            id.clone(),
            Account {
                id: id.clone(),
                parent_id: parent_id.cloned(),
                api_key: api_key.to_owned(),
                doc: object_or_empty(doc),
                children: BTreeSet::new(),
                created_ms: record.time_ms,
                modified_ms: record.time_ms,
                doc_seq: record.seq,
            },
        );
    }

    /// Removes a leaf account and its webhooks; returns the removed webhooks.
    fn delete_account(&mut self, id: &AccountId) -> Vec<WebhookId> {
        let Some(account) = self.accounts.get(id) else {
            return Vec::new();
        };
        // The API refuses to delete an account with children or the master; a record
        // that says otherwise would orphan a subtree, so it changes nothing.
        if !account.children.is_empty() || account.parent_id.is_none() {
            return Vec::new();
        }
        let Some(account) = self.accounts.remove(id) else {
            return Vec::new();
        };
        self.api_keys.remove(&account.api_key);
        if let Some(parent) = account
            .parent_id
            .as_ref()
            .and_then(|p| self.accounts.get_mut(p))
        {
            parent.children.remove(id);
        }
        for (_, hash) in self.tokens_by_account.remove(id).unwrap_or_default() {
            if let Some(token) = self.tokens.remove(&hash) {
                self.token_expiry.remove(&(token.expiry_ms(), hash));
            }
        }
        let removed: Vec<WebhookId> = self
            .webhooks_by_account
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for hook_id in &removed {
            self.webhooks.remove(hook_id);
            self.drop_pending(hook_id);
        }
        self.candidates.remove(id);
        removed
    }

    fn remove_webhook(&mut self, id: &WebhookId) {
        if let Some(hook) = self.webhooks.remove(id) {
            if let Some(set) = self.webhooks_by_account.get_mut(&hook.account_id) {
                set.remove(id);
            }
            self.reindex_webhook(&hook.account_id, id);
        }
        self.drop_pending(id);
    }

    /// The enabled webhooks an event goes to: the account's own, then its ancestors'
    /// (root first) that include subaccounts, each filtered by its
    /// [`HookMatcher`](crate::matching::HookMatcher). Only the hooks of the event's kind and
    /// `all` are looked at, through the candidate index.
    pub fn matching_hooks(
        &self,
        account: &AccountId,
        hook_event: &str,
        payload: &Map<String, Value>,
    ) -> Vec<WebhookId> {
        let mut out = Vec::new();
        if !self.accounts.contains_key(account) {
            return out;
        }
        if let Some(own) = self.candidates.get(account) {
            own.own_accepting(hook_event, payload, &mut out);
        }
        let mut ancestors: Vec<&AccountId> = self.ancestors(account).collect();
        ancestors.reverse();
        for ancestor in ancestors {
            if let Some(theirs) = self.candidates.get(ancestor) {
                theirs.inherited_accepting(hook_event, payload, &mut out);
            }
        }
        out
    }

    /// Brings the candidate index up to date for one webhook after a change: out of it,
    /// then back in if it still exists and is enabled.
    fn reindex_webhook(&mut self, account: &AccountId, id: &WebhookId) {
        if let Some(candidates) = self.candidates.get_mut(account) {
            candidates.remove(id);
            if candidates.is_empty() {
                self.candidates.remove(account);
            }
        }
        if let Some(hook) = self.webhooks.get(id).filter(|h| h.enabled()) {
            self.candidates
                .entry(hook.account_id.clone())
                .or_default()
                .insert(hook);
        }
    }

    /// Whether a webhook has any delivery pending, or a redelivery not finished.
    pub fn has_pending(&self, webhook: &WebhookId) -> bool {
        self.pending.range(pending_range(webhook)).next().is_some()
            || self.redeliveries.contains_key(webhook)
    }

    /// The first of a webhook's unfinished redeliveries (the one its actor works on).
    pub fn redelivery_for(&self, webhook: &WebhookId) -> Option<&Redelivery> {
        self.redeliveries.get(webhook).and_then(VecDeque::front)
    }

    /// How many redeliveries a webhook has queued (at most [`MAX_REDELIVERIES_PER_HOOK`]).
    pub fn redeliveries_queued(&self, webhook: &WebhookId) -> usize {
        self.redeliveries.get(webhook).map_or(0, VecDeque::len)
    }

    /// The request records of every unfinished redelivery, and the lowest event sequence
    /// any of them still owes (retention keeps the events from there on).
    pub fn redelivery_pins(&self) -> (std::collections::HashSet<u64>, Option<u64>) {
        let all = self.redeliveries.values().flatten();
        let requests = all.clone().map(|r| r.request_seq).collect();
        (requests, all.map(|r| r.next_seq).min())
    }

    /// The pending deliveries of one webhook, in event order.
    pub fn pending_for(&self, webhook: &WebhookId) -> Vec<PendingDelivery> {
        self.pending
            .range(pending_range(webhook))
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The sequence of the record holding each live account's and webhook's current
    /// document: a document update below it is superseded (retention may forget it).
    pub fn current_document_seqs(&self) -> (HashMap<AccountId, u64>, HashMap<WebhookId, u64>) {
        let accounts = self
            .accounts
            .values()
            .map(|a| (a.id.clone(), a.doc_seq))
            .collect();
        let webhooks = self
            .webhooks
            .values()
            .map(|h| (h.id.clone(), h.doc_seq))
            .collect();
        (accounts, webhooks)
    }

    /// Sequences of the accepted events that still have a delivery pending (retention
    /// must keep their records).
    pub fn pending_event_seqs(&self) -> std::collections::HashSet<u64> {
        self.pending.keys().map(|(_, seq)| *seq).collect()
    }

    /// How many events were accepted into the log this registry was built from (since a
    /// snapshot written before this count existed, only those after it).
    pub fn events_accepted(&self) -> u64 {
        self.events_accepted
    }

    /// Number of deliveries not finished yet.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The master (root) account, once created.
    pub fn master(&self) -> Option<&Account> {
        self.master.as_ref().and_then(|id| self.accounts.get(id))
    }

    /// One account.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Number of accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The account an API key belongs to.
    pub fn account_by_api_key(&self, api_key: &str) -> Option<&Account> {
        self.api_keys
            .get(api_key)
            .and_then(|id| self.accounts.get(id))
    }

    /// The account a token (by hash) acts for, if the token is known, unexpired at
    /// `now_ms` (Unix milliseconds) and its account still exists.
    pub fn token_account(&self, token_hash: &str, now_ms: u64) -> Option<&Account> {
        let token = self.tokens.get(token_hash)?;
        if token.expiry_ms() <= now_ms {
            return None;
        }
        self.accounts.get(&token.account_id)
    }

    /// Whether `id` is `ancestor` or one of its descendants.
    pub fn is_in_subtree(&self, ancestor: &AccountId, id: &AccountId) -> bool {
        ancestor == id || self.ancestors(id).any(|a| a == ancestor)
    }

    /// The ancestors of an account, its parent first and the master last.
    pub fn ancestors<'a>(&'a self, id: &AccountId) -> impl Iterator<Item = &'a AccountId> {
        let mut next = self.accounts.get(id).and_then(|a| a.parent_id.as_ref());
        std::iter::from_fn(move || {
            let current = next?;
            next = self
                .accounts
                .get(current)
                .and_then(|a| a.parent_id.as_ref());
            Some(current)
        })
    }

    /// Direct children of an account.
    pub fn children(&self, id: &AccountId) -> Vec<&Account> {
        self.accounts
            .get(id)
            .map(|a| {
                a.children
                    .iter()
                    .filter_map(|c| self.accounts.get(c))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every descendant of an account (not the account itself), breadth first.
    pub fn descendants(&self, id: &AccountId) -> Vec<&Account> {
        let mut out = Vec::new();
        let mut queue: Vec<&AccountId> = vec![id];
        let mut i = 0;
        while i < queue.len() {
            let current = queue[i];
            i += 1;
            if let Some(account) = self.accounts.get(current) {
                for child in &account.children {
                    if let Some(c) = self.accounts.get(child) {
                        out.push(c);
                        queue.push(&c.id);
                    }
                }
            }
        }
        out
    }

    /// Levels between an account and the master account (the master is at 0).
    pub fn account_depth(&self, id: &AccountId) -> usize {
        self.ancestors(id).count()
    }

    /// How many webhooks an account owns.
    pub fn webhook_count(&self, account: &AccountId) -> usize {
        self.webhooks_by_account
            .get(account)
            .map_or(0, BTreeSet::len)
    }

    /// One webhook.
    pub fn webhook(&self, id: &WebhookId) -> Option<&Webhook> {
        self.webhooks.get(id)
    }

    /// An account's webhooks, ordered by id.
    pub fn webhooks_of(&self, account: &AccountId) -> impl DoubleEndedIterator<Item = &Webhook> {
        self.webhooks_by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| self.webhooks.get(id))
    }

    /// All webhooks, ordered by id.
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values()
    }

    /// Counts by state at most `limit` webhooks, in id order, from the one after `after`
    /// (from the first when `None`); returns the counts and where to go on from (`None`:
    /// none left). A caller can so count them all in bounded steps, releasing the lock
    /// between them.
    pub fn count_webhook_states(
        &self,
        after: Option<&WebhookId>,
        limit: usize,
    ) -> (WebhookStates, Option<WebhookId>) {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut counts = WebhookStates::default();
        let mut last = None;
        for (id, hook) in self
            .webhooks
            .range::<WebhookId, _>((from, Bound::Unbounded))
            .take(limit)
        {
            if hook.enabled() {
                counts.enabled += 1;
            } else if hook.auto_disabled() {
                counts.auto_disabled += 1;
            } else {
                counts.disabled += 1;
            }
            last = Some(id);
        }
        let more = last.filter(|id| {
            self.webhooks
                .range::<WebhookId, _>((Bound::Excluded(*id), Bound::Unbounded))
                .next()
                .is_some()
        });
        (counts, more.cloned())
    }

    /// The webhooks that have no signing secret yet (created before webhooks had them).
    pub fn webhooks_without_secret(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks
            .values()
            .filter(|h| h.secrets.current.is_none())
    }
}

/// Webhooks by state: enabled, disabled by hand, auto-disabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStates {
    pub enabled: u64,
    pub disabled: u64,
    pub auto_disabled: u64,
}

impl WebhookStates {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: WebhookStates) {
        self.enabled += other.enabled;
        self.disabled += other.disabled;
        self.auto_disabled += other.auto_disabled;
    }
}

/// Every pending key of one webhook.
fn pending_range(webhook: &WebhookId) -> std::ops::RangeInclusive<(WebhookId, u64)> {
    (webhook.clone(), 0)..=(webhook.clone(), u64::MAX)
}

fn object_or_empty(doc: &Value) -> Map<String, Value> {
    doc.as_object().cloned().unwrap_or_default()
}

mod candidates;
mod tokens;

#[cfg(test)]
mod tests;
