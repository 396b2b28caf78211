//! The projection: accounts, API keys, tokens and webhooks, rebuilt from the event log.
//!
//! [`Registry::apply`] is the single mutator. Live changes reach it through the log's
//! commit hook (append first, then apply, in log order) and start-up replay calls the same
//! function, so replaying a log always rebuilds exactly the state the daemon had. `apply`
//! is total: a record that no longer fits the state (say, a webhook for an account deleted
//! meanwhile) changes nothing rather than failing. This module does no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use eventlog::{AccountId, Event, Record, WebhookId};
use serde_json::{Map, Value};

/// Why a hook was auto-disabled, as Kazoo words it.
pub const AUTO_DISABLE_REASON: &str = "too many failed attempts";

/// One account of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub parent_id: Option<AccountId>,
    /// Ancestors, root first (Kazoo's `pvt_tree`).
    pub tree: Vec<AccountId>,
    pub api_key: String,
    /// The public document: `name` and any other field the client stored.
    pub doc: Map<String, Value>,
    pub children: BTreeSet<AccountId>,
    /// Unix milliseconds of creation and last change (from the log records).
    pub created_ms: u64,
    pub modified_ms: u64,
}

impl Account {
    /// The account's name.
    pub fn name(&self) -> &str {
        self.doc.get("name").and_then(Value::as_str).unwrap_or("")
    }
}

/// One webhook: its stored document and what the daemon adds to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub account_id: AccountId,
    /// The stored document with defaults filled (no `id`, no `disable_reason`).
    pub doc: Map<String, Value>,
    /// Set only by auto-disable; cleared when the hook is enabled again.
    pub disable_reason: Option<String>,
    pub created_ms: u64,
    pub modified_ms: u64,
}

impl Webhook {
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

/// An issued auth token (only its hash is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub account_id: AccountId,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Everything the API and the router read, rebuilt by [`Registry::apply`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Registry {
    master: Option<AccountId>,
    accounts: HashMap<AccountId, Account>,
    api_keys: HashMap<String, AccountId>,
    tokens: HashMap<String, Token>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    webhooks_by_account: HashMap<AccountId, BTreeSet<WebhookId>>,
    last_seq: u64,
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

    /// Applies one committed record. The only way the registry changes.
    pub fn apply(&mut self, record: &Record) {
        if record.seq <= self.last_seq {
            // Already applied (a snapshot taken after this record): applying twice would
            // not be idempotent for every event, so skip.
            return;
        }
        self.last_seq = record.seq;
        let now = record.time_ms;
        match &record.event {
            Event::AccountCreated {
                account_id,
                parent_id,
                api_key,
                doc,
            } => self.create_account(account_id, parent_id.as_ref(), api_key, doc, now),
            Event::AccountUpdated { account_id, doc } => {
                if let Some(account) = self.accounts.get_mut(account_id) {
                    account.doc = object_or_empty(doc);
                    account.modified_ms = now;
                }
            }
            Event::AccountDeleted { account_id } => self.delete_account(account_id),
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
            } => {
                // Forget expired tokens as time passes in the log, so the map stays small
                // and replay prunes exactly as the live daemon did.
                let now_secs = now / 1000;
                self.tokens.retain(|_, t| t.expires_at > now_secs);
                self.tokens.insert(
                    token_hash.clone(),
                    Token {
                        account_id: account_id.clone(),
                        expires_at: *expires_at,
                    },
                );
            }
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
                            created_ms: now,
                            modified_ms: now,
                        },
                    );
                    self.webhooks_by_account
                        .entry(account_id.clone())
                        .or_default()
                        .insert(webhook_id.clone());
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
                        // Saving a hook as enabled clears the auto-disable reason (Kazoo's
                        // cb_webhooks rule).
                        if hook.enabled() {
                            hook.disable_reason = None;
                        }
                    }
                }
            }
            Event::WebhookDeleted {
                account_id,
                webhook_id,
            } => {
                if self.webhooks.get(webhook_id).map(|h| &h.account_id) == Some(account_id) {
                    self.remove_webhook(webhook_id);
                }
            }
            Event::WebhooksReenabled { webhook_ids } => {
                for id in webhook_ids {
                    if let Some(hook) = self.webhooks.get_mut(id) {
                        hook.doc.insert("enabled".into(), Value::Bool(true));
                        hook.disable_reason = None;
                        hook.modified_ms = now;
                    }
                }
            }
            Event::EventAccepted { .. } => {}
        }
    }

    fn create_account(
        &mut self,
        id: &AccountId,
        parent_id: Option<&AccountId>,
        api_key: &str,
        doc: &Value,
        now: u64,
    ) {
        if self.accounts.contains_key(id) {
            return;
        }
        let tree = match parent_id {
            None => {
                if self.master.is_some() {
                    return; // there is exactly one root
                }
                self.master = Some(id.clone());
                Vec::new()
            }
            Some(parent) => match self.accounts.get_mut(parent) {
                None => return,
                Some(p) => {
                    p.children.insert(id.clone());
                    let mut tree = p.tree.clone();
                    tree.push(parent.clone());
                    tree
                }
            },
        };
        self.api_keys.insert(api_key.to_owned(), id.clone());
        self.accounts.insert(
            id.clone(),
            Account {
                id: id.clone(),
                parent_id: parent_id.cloned(),
                tree,
                api_key: api_key.to_owned(),
                doc: object_or_empty(doc),
                children: BTreeSet::new(),
                created_ms: now,
                modified_ms: now,
            },
        );
    }

    fn delete_account(&mut self, id: &AccountId) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        // The API refuses to delete an account with children or the master; a record
        // that says otherwise would orphan a subtree, so it changes nothing.
        if !account.children.is_empty() || account.parent_id.is_none() {
            return;
        }
        let Some(account) = self.accounts.remove(id) else {
            return;
        };
        self.api_keys.remove(&account.api_key);
        if let Some(parent) = account
            .parent_id
            .as_ref()
            .and_then(|p| self.accounts.get_mut(p))
        {
            parent.children.remove(id);
        }
        self.tokens.retain(|_, t| &t.account_id != id);
        for hook_id in self.webhooks_by_account.remove(id).unwrap_or_default() {
            self.webhooks.remove(&hook_id);
        }
    }

    fn remove_webhook(&mut self, id: &WebhookId) {
        if let Some(hook) = self.webhooks.remove(id) {
            if let Some(set) = self.webhooks_by_account.get_mut(&hook.account_id) {
                set.remove(id);
            }
        }
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
    /// `now_secs` and its account still exists.
    pub fn token_account(&self, token_hash: &str, now_secs: u64) -> Option<&Account> {
        let token = self.tokens.get(token_hash)?;
        if token.expires_at <= now_secs {
            return None;
        }
        self.accounts.get(&token.account_id)
    }

    /// Whether `id` is `ancestor` or one of its descendants.
    pub fn is_in_subtree(&self, ancestor: &AccountId, id: &AccountId) -> bool {
        ancestor == id
            || self
                .accounts
                .get(id)
                .is_some_and(|a| a.tree.contains(ancestor))
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

    /// One webhook.
    pub fn webhook(&self, id: &WebhookId) -> Option<&Webhook> {
        self.webhooks.get(id)
    }

    /// An account's webhooks, ordered by id.
    pub fn webhooks_of(&self, account: &AccountId) -> impl Iterator<Item = &Webhook> {
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
}

fn object_or_empty(doc: &Value) -> Map<String, Value> {
    doc.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests;
