//! The registry's candidate index: each account's enabled webhooks by the `hook` kind
//! they listen to, with their matching rule read once ([`HookMatcher`]), so matching an
//! event looks only at the hooks of its kind (and `all`) with no lookup by id. Derived from
//! the webhooks, kept up to date by `Registry::apply` and rebuilt after a snapshot loads.

use std::collections::HashMap;
use std::sync::Arc;

use eventlog::WebhookId;
use serde_json::{Map, Value};

use super::Webhook;
use crate::matching::HookMatcher;

/// One account's enabled webhooks by `hook` kind, each list ordered by id.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Candidates {
    /// Every enabled hook of the account.
    own: HashMap<String, Vec<Candidate>>,
    /// Those that also take the events of descendant accounts (`include_subaccounts`).
    inherited: HashMap<String, Vec<Candidate>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    id: WebhookId,
    matcher: Arc<HookMatcher>,
}

impl Candidates {
    pub(super) fn remove(&mut self, id: &WebhookId) {
        for lists in [&mut self.own, &mut self.inherited] {
            for list in lists.values_mut() {
                list.retain(|c| &c.id != id);
            }
            lists.retain(|_, list| !list.is_empty());
        }
    }

    pub(super) fn insert(&mut self, hook: &Webhook) {
        let candidate = Candidate {
            id: hook.id.clone(),
            matcher: Arc::new(HookMatcher::compile(&hook.doc)),
        };
        let kind = candidate.matcher.hook.clone();
        if hook.include_subaccounts() {
            insert_sorted(
                self.inherited.entry(kind.clone()).or_default(),
                candidate.clone(),
            );
        }
        insert_sorted(self.own.entry(kind).or_default(), candidate);
    }

    /// The account's own hooks that accept the event, appended to `out` in id order
    /// (per kind).
    pub(super) fn own_accepting(
        &self,
        hook_event: &str,
        payload: &Map<String, Value>,
        out: &mut Vec<WebhookId>,
    ) {
        accepting(&self.own, hook_event, payload, out);
    }

    /// The same of the hooks that take descendants' events (`include_subaccounts`).
    pub(super) fn inherited_accepting(
        &self,
        hook_event: &str,
        payload: &Map<String, Value>,
        out: &mut Vec<WebhookId>,
    ) {
        accepting(&self.inherited, hook_event, payload, out);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.own.is_empty()
    }
}

fn insert_sorted(list: &mut Vec<Candidate>, candidate: Candidate) {
    let at = list.partition_point(|c| c.id < candidate.id);
    list.insert(at, candidate);
}

/// The ids of `lists`' hooks of `hook_event` (and of `all`) that accept the event.
fn accepting(
    lists: &HashMap<String, Vec<Candidate>>,
    hook_event: &str,
    payload: &Map<String, Value>,
    out: &mut Vec<WebhookId>,
) {
    let kinds: &[&str] = if hook_event == "all" {
        &["all"]
    } else {
        &[hook_event, "all"]
    };
    for kind in kinds {
        for candidate in lists.get(*kind).into_iter().flatten() {
            if candidate.matcher.accepts(hook_event, payload) {
                out.push(candidate.id.clone());
            }
        }
    }
}
