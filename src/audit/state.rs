//! `log state --at T`: the accounts and webhooks as they were at a moment.
//!
//! The records up to the first one after `T` go through [`Registry::apply`], the function
//! the daemon itself rebuilds its state with, so the answer is the state the daemon held
//! at `T` (the log's times only go forward, so that prefix is every record up to `T`).
//! API keys, token hashes and webhook secrets are not part of the output: a webhook shows
//! only that it has a secret and when it was last rotated, and its document's credentials
//! (`sha256_key`, custom header values) are redacted as `log replay` redacts them.

use std::io::Write;
use std::sync::atomic::Ordering;

use actors::{Account, Registry, Webhook};
use eventlog::{AccountId, EventLog};
use serde_json::{json, Value};

use super::progress::{with_progress, Plan};
use super::replay::{redact_document, REDACTED};
use super::{format_ms, open_log, AuditError, StateArgs};

/// Runs `log state`.
pub fn run(args: &StateArgs, out: &mut impl Write, progress: bool) -> Result<(), AuditError> {
    let log = open_log(&args.data_dir)?;
    let registry = registry_at(&log, args.at, progress)?;
    let view = View::collect(&registry, args.account.as_ref());
    if args.json {
        let text = serde_json::to_string_pretty(&view.to_json(args.at, registry.last_seq()))
            .map_err(std::io::Error::from)?;
        writeln!(out, "{text}")?;
    } else {
        view.write_tree(out, args.at, registry.last_seq(), args.account.as_ref())?;
    }
    Ok(())
}

/// The registry after applying every record up to the first one later than `at_ms`.
pub fn registry_at(log: &EventLog, at_ms: u64, progress: bool) -> Result<Registry, AuditError> {
    let plan = Plan {
        visible: progress,
        total: Some(log.last_seq()),
        label: "rebuilding the state",
    };
    with_progress(plan, |done| {
        let mut registry = Registry::new();
        for item in log.iter_from(1) {
            let record = item.map_err(AuditError::from_read)?;
            if record.time_ms > at_ms {
                break;
            }
            registry.apply(&record);
            done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(registry)
    })
}

/// The accounts to show, depth first from the root (children by id), each with its
/// depth, and their webhooks.
pub struct View<'a> {
    pub accounts: Vec<(&'a Account, usize)>,
    registry: &'a Registry,
}

impl<'a> View<'a> {
    /// `account` and its descendants, or the whole tree.
    pub fn collect(registry: &'a Registry, account: Option<&AccountId>) -> View<'a> {
        let root = match account {
            Some(id) => registry.account(id),
            None => registry.master(),
        };
        let mut accounts = Vec::new();
        let mut stack: Vec<(&Account, usize)> = root.into_iter().map(|a| (a, 0)).collect();
        while let Some((account, depth)) = stack.pop() {
            accounts.push((account, depth));
            let children = registry.children(&account.id);
            stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
        }
        View { accounts, registry }
    }

    fn webhooks_of(&self, account: &Account) -> impl Iterator<Item = &'a Webhook> {
        self.registry.webhooks_of(&account.id)
    }

    /// Number of webhooks shown.
    pub fn webhook_count(&self) -> usize {
        self.accounts
            .iter()
            .map(|(a, _)| self.webhooks_of(a).count())
            .sum()
    }

    /// `{"at", "at_ms", "seq", "accounts", "webhooks"}`.
    pub fn to_json(&self, at_ms: u64, seq: u64) -> Value {
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|(a, _)| account_json(self.registry, a))
            .collect();
        let webhooks: Vec<Value> = self
            .accounts
            .iter()
            .flat_map(|(a, _)| self.webhooks_of(a))
            .map(webhook_json)
            .collect();
        json!({
            "at": format_ms(at_ms),
            "at_ms": at_ms,
            "seq": seq,
            "accounts": accounts,
            "webhooks": webhooks,
        })
    }

    /// The indented tree: each account, its document, then its webhooks and children.
    pub fn write_tree(
        &self,
        out: &mut impl Write,
        at_ms: u64,
        seq: u64,
        account: Option<&AccountId>,
    ) -> std::io::Result<()> {
        let applied = if seq == 0 {
            "no record applied".to_owned()
        } else {
            format!("as of record #{seq}")
        };
        writeln!(
            out,
            "state at {} ({applied}): {}, {}",
            format_ms(at_ms),
            count(self.accounts.len(), "account"),
            count(self.webhook_count(), "webhook")
        )?;
        if self.accounts.is_empty() {
            match account {
                Some(id) => writeln!(out, "account {id} did not exist at that time")?,
                None => writeln!(out, "no account existed at that time")?,
            }
        }
        for (account, depth) in &self.accounts {
            let pad = "  ".repeat(*depth);
            write!(out, "{pad}account {} {:?}", account.id, account.name())?;
            if let Some(parent) = &account.parent_id {
                write!(out, " (parent {parent})")?;
            }
            writeln!(
                out,
                " created {} modified {}",
                format_ms(account.created_ms),
                format_ms(account.modified_ms)
            )?;
            writeln!(out, "{pad}  doc {}", Value::Object(account.doc.clone()))?;
            for hook in self.webhooks_of(account) {
                let status = match (&hook.disable_reason, hook.enabled()) {
                    (_, true) => "enabled".to_owned(),
                    (Some(reason), false) => format!("disabled ({reason})"),
                    (None, false) => "disabled".to_owned(),
                };
                let name = hook.doc.get("name").and_then(Value::as_str).unwrap_or("");
                writeln!(
                    out,
                    "{pad}  webhook {} {name:?} {status} created {} modified {}",
                    hook.id,
                    format_ms(hook.created_ms),
                    format_ms(hook.modified_ms)
                )?;
                writeln!(out, "{pad}    doc {}", Value::Object(shown_document(hook)))?;
                if hook.secrets.current.is_some() {
                    write!(out, "{pad}    secret {REDACTED}")?;
                    if let Some(rotated) = hook.secrets.rotated_ms {
                        write!(out, " rotated {}", format_ms(rotated))?;
                    }
                    writeln!(out)?;
                }
            }
        }
        Ok(())
    }
}

/// `1 account`, `2 accounts`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// An account without its API key.
fn account_json(registry: &Registry, account: &Account) -> Value {
    // Kazoo's `pvt_tree`: the ancestors, root first.
    let mut tree: Vec<&AccountId> = registry.ancestors(&account.id).collect();
    tree.reverse();
    json!({
        "id": account.id,
        "name": account.name(),
        "parent_id": account.parent_id,
        "tree": tree,
        "doc": account.doc,
        "created": format_ms(account.created_ms),
        "modified": format_ms(account.modified_ms),
    })
}

/// A webhook's document as `log state` shows it: credentials redacted.
fn shown_document(hook: &Webhook) -> serde_json::Map<String, Value> {
    let mut doc = hook.doc.clone();
    redact_document(&mut doc);
    doc
}

/// A webhook without its secrets: only whether it has one, and when it was rotated.
fn webhook_json(hook: &Webhook) -> Value {
    json!({
        "id": hook.id,
        "account_id": hook.account_id,
        "doc": shown_document(hook),
        "secret": hook.secrets.current.as_ref().map(|_| REDACTED),
        "secret_rotated": hook.secrets.rotated_ms.map(format_ms),
        "enabled": hook.enabled(),
        "disable_reason": hook.disable_reason,
        "created": format_ms(hook.created_ms),
        "modified": format_ms(hook.modified_ms),
    })
}
