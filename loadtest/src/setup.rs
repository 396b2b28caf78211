//! Setup: `--accounts` child accounts × `--hooks-per-account` webhooks through the REST
//! API, and the plan that says which hook must receive which event.
//!
//! Every generated event is a `channel_create` of one account (event `n` belongs to
//! account `n % accounts`), and every hook of that account matches it: hooks alternate
//! between `channel_create` and `all`, cycle through post-json, post-form-data,
//! put-json and get, and every third one carries `modifiers` that the events satisfy
//! (`call_direction` inbound or outbound). So the expected pairs are exactly
//! "event × every healthy hook of its account". Dead hooks (`--dead-hooks`) point at a
//! closed loopback port and are left out of the expectation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::api::Api;
use super::receiver::Identity;
use super::LoadtestError;

/// Tries after the first for every hook the load test creates.
pub(crate) const HOOK_RETRIES: u32 = 2;

/// Setup calls in flight at once.
const SETUP_CONCURRENCY: usize = 8;

/// How one hook is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HookSpec {
    pub http_verb: &'static str,
    pub format: &'static str,
    pub hook: &'static str,
    pub modifiers: bool,
}

/// The configuration of the hook in `slot` of an account: a fixed mix.
pub(crate) fn hook_spec(slot: u32) -> HookSpec {
    let (http_verb, format) = match slot % 4 {
        0 => ("post", "json"),
        1 => ("post", "form-data"),
        2 => ("put", "json"),
        _ => ("get", "form-data"),
    };
    HookSpec {
        http_verb,
        format,
        hook: if slot.is_multiple_of(2) {
            "channel_create"
        } else {
            "all"
        },
        modifiers: slot % 3 == 2,
    }
}

/// Whether the hook in `slot` of `account` is one of the `dead` hooks. Dead hooks are
/// spread over the accounts, taken from the last slots first.
pub(crate) fn is_dead(account: u32, slot: u32, accounts: u32, per_account: u32, dead: u32) -> bool {
    let from_last = u64::from(per_account.saturating_sub(1).saturating_sub(slot));
    from_last * u64::from(accounts) + u64::from(account) < u64::from(dead)
}

/// A webhook the load test created.
#[derive(Debug, Clone)]
pub(crate) struct PlannedHook {
    pub id: String,
    pub account: u32,
    pub dead: bool,
}

/// Accounts and hooks as created, and who must receive what.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The run's random tag, in every event id and account name.
    pub tag: String,
    pub accounts: Vec<String>,
    pub hooks: Vec<PlannedHook>,
    /// Per account, the indices of its healthy hooks.
    pub healthy_by_account: Vec<Vec<u32>>,
}

impl Plan {
    /// Builds the plan from created accounts and hooks.
    pub(crate) fn new(tag: String, accounts: Vec<String>, hooks: Vec<PlannedHook>) -> Plan {
        let mut healthy_by_account = vec![Vec::new(); accounts.len()];
        for (index, hook) in hooks.iter().enumerate() {
            if hook.dead {
                continue;
            }
            if let (Some(list), Ok(index)) = (
                healthy_by_account.get_mut(hook.account as usize),
                u32::try_from(index),
            ) {
                list.push(index);
            }
        }
        Plan {
            tag,
            accounts,
            hooks,
            healthy_by_account,
        }
    }

    /// The account index of event `n`.
    pub(crate) fn account_of(&self, event: u64) -> u32 {
        let accounts = self.accounts.len().max(1) as u64;
        // Below the number of accounts, which is a u32.
        u32::try_from(event % accounts).unwrap_or(0)
    }

    /// The account id of event `n` (empty if there is no account).
    pub(crate) fn account_id_of(&self, event: u64) -> &str {
        self.accounts
            .get(self.account_of(event) as usize)
            .map_or("", String::as_str)
    }

    /// The call direction of event `n`: alternately inbound and outbound, so hooks with
    /// a `call_direction` modifier listing both still match.
    pub(crate) fn direction_of(event: u64) -> &'static str {
        if event.is_multiple_of(2) {
            "inbound"
        } else {
            "outbound"
        }
    }

    /// The healthy hooks that must receive event `n`.
    pub(crate) fn expected_hooks(&self, event: u64) -> &[u32] {
        self.healthy_by_account
            .get(self.account_of(event) as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The id of event `n`.
    pub(crate) fn event_id(&self, event: u64) -> String {
        format!("{}{event}", self.event_prefix())
    }

    /// The prefix of this run's event ids.
    pub(crate) fn event_prefix(&self) -> String {
        format!("lt-{}-", self.tag)
    }

    /// The number of healthy hooks.
    pub(crate) fn healthy_hooks(&self) -> usize {
        self.hooks.iter().filter(|h| !h.dead).count()
    }

    /// Who is who, for the receiver.
    pub(crate) fn identity(&self, events: u64) -> Identity {
        Identity {
            event_prefix: self.event_prefix(),
            derived_ids: None,
            events,
            accounts: u32::try_from(self.accounts.len()).unwrap_or(u32::MAX),
            hooks: self
                .hooks
                .iter()
                .enumerate()
                .filter_map(|(i, h)| Some((h.id.clone(), u32::try_from(i).ok()?)))
                .collect(),
            hook_account: self.hooks.iter().map(|h| h.account).collect(),
        }
    }
}

/// What setup needs to know.
#[derive(Debug, Clone)]
pub(crate) struct SetupOptions {
    pub accounts: u32,
    pub hooks_per_account: u32,
    pub dead_hooks: u32,
    pub receiver: SocketAddr,
    /// A loopback port nothing listens on.
    pub dead_port: u16,
}

/// The document of the hook in `slot` of `account`.
pub(crate) fn hook_doc(opts: &SetupOptions, tag: &str, account: u32, slot: u32) -> Value {
    let spec = hook_spec(slot);
    let dead = is_dead(
        account,
        slot,
        opts.accounts,
        opts.hooks_per_account,
        opts.dead_hooks,
    );
    let uri = if dead {
        format!("http://127.0.0.1:{}/dead/{account}/{slot}", opts.dead_port)
    } else {
        format!("http://{}/lt/{account}/{slot}", opts.receiver)
    };
    let mut doc = json!({
        "name": format!("loadtest {tag} a{account} h{slot}"),
        "uri": uri,
        "http_verb": spec.http_verb,
        "format": spec.format,
        "hook": spec.hook,
        "retries": HOOK_RETRIES,
    });
    if spec.modifiers {
        doc["modifiers"] = json!({"call_direction": ["inbound", "outbound"]});
    }
    doc
}

/// Creates the accounts under `parent`, then their hooks; a few calls at a time.
pub(crate) async fn create(
    api: &Arc<Api>,
    parent: &str,
    opts: &SetupOptions,
    tag: &str,
) -> Result<Plan, LoadtestError> {
    let permits = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for account in 0..opts.accounts {
        let (api, permits, parent) = (Arc::clone(api), Arc::clone(&permits), parent.to_owned());
        let name = format!("loadtest {tag} account {account}");
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            (account, api.create_account(&parent, &name).await)
        });
    }
    let mut ids: HashMap<u32, String> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (account, created) = joined.map_err(|e| LoadtestError::Setup(e.to_string()))?;
        ids.insert(account, created?);
    }
    let accounts: Vec<String> = (0..opts.accounts)
        .map(|a| ids.remove(&a).unwrap_or_default())
        .collect();

    let mut tasks = JoinSet::new();
    for account in 0..opts.accounts {
        for slot in 0..opts.hooks_per_account {
            let (api, permits) = (Arc::clone(api), Arc::clone(&permits));
            let account_id = accounts[account as usize].clone();
            let doc = hook_doc(opts, tag, account, slot);
            tasks.spawn(async move {
                let _permit = permits.acquire().await;
                ((account, slot), api.create_webhook(&account_id, doc).await)
            });
        }
    }
    let mut hook_ids: HashMap<(u32, u32), String> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (at, created) = joined.map_err(|e| LoadtestError::Setup(e.to_string()))?;
        hook_ids.insert(at, created?);
    }
    let mut hooks = Vec::with_capacity(hook_ids.len());
    for account in 0..opts.accounts {
        for slot in 0..opts.hooks_per_account {
            hooks.push(PlannedHook {
                id: hook_ids.remove(&(account, slot)).unwrap_or_default(),
                account,
                dead: is_dead(
                    account,
                    slot,
                    opts.accounts,
                    opts.hooks_per_account,
                    opts.dead_hooks,
                ),
            });
        }
    }
    Ok(Plan::new(tag.to_owned(), accounts, hooks))
}

#[cfg(test)]
mod tests;
