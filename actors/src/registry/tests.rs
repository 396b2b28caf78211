//! Given these records, when this record, then this state.

use serde_json::json;

use super::*;

/// Builds a registry by applying events in order, with seqs 1.. and a fixed clock.
struct Given {
    registry: Registry,
    next_seq: u64,
}

fn given(events: Vec<Event>) -> Given {
    let mut g = Given {
        registry: Registry::new(),
        next_seq: 1,
    };
    for e in events {
        g.when(e);
    }
    g
}

impl Given {
    fn when(&mut self, event: Event) -> &mut Self {
        let record = Record {
            seq: self.next_seq,
            time_ms: 1_000_000 + self.next_seq * 1000,
            event,
        };
        self.next_seq += 1;
        self.registry.apply(&record);
        self
    }
}

fn id(n: u8) -> AccountId {
    AccountId::parse(&format!("{n:032x}")).unwrap()
}

fn hook_id(n: u8) -> WebhookId {
    WebhookId::parse(&format!("{:032x}", 0xf000_u32 + u32::from(n))).unwrap()
}

fn account(n: u8, parent: Option<u8>) -> Event {
    Event::AccountCreated {
        account_id: id(n),
        parent_id: parent.map(id),
        api_key: format!("key{n}"),
        doc: json!({"name": format!("acct {n}")}),
    }
}

fn webhook(n: u8, owner: u8, doc: serde_json::Value) -> Event {
    Event::WebhookCreated {
        account_id: id(owner),
        webhook_id: hook_id(n),
        doc,
    }
}

#[test]
fn accounts_form_a_tree_with_ancestors_root_first() {
    let g = given(vec![
        account(1, None),
        account(2, Some(1)),
        account(3, Some(2)),
    ]);
    let r = &g.registry;
    assert_eq!(r.master().unwrap().id, id(1));
    assert_eq!(r.account(&id(3)).unwrap().tree, vec![id(1), id(2)]);
    assert!(r.is_in_subtree(&id(1), &id(3)));
    assert!(r.is_in_subtree(&id(2), &id(2)));
    assert!(!r.is_in_subtree(&id(3), &id(2)));
    let d: Vec<_> = r.descendants(&id(1)).iter().map(|a| a.id.clone()).collect();
    assert_eq!(d, vec![id(2), id(3)]);
    assert_eq!(r.children(&id(1)).len(), 1);
    assert_eq!(r.account_by_api_key("key3").unwrap().id, id(3));
}

#[test]
fn a_second_root_or_an_orphan_is_ignored() {
    let g = given(vec![
        account(1, None),
        account(2, None),
        account(3, Some(9)),
    ]);
    assert_eq!(g.registry.account_count(), 1);
}

#[test]
fn deleting_an_account_removes_its_webhooks_tokens_and_key() {
    let mut g = given(vec![
        account(1, None),
        account(2, Some(1)),
        webhook(1, 2, json!({"hook": "all"})),
        Event::TokenIssued {
            token_hash: "h".into(),
            account_id: id(2),
            expires_at: u64::MAX,
        },
    ]);
    g.when(Event::AccountDeleted { account_id: id(2) });
    let r = &g.registry;
    assert!(r.account(&id(2)).is_none());
    assert!(r.webhook(&hook_id(1)).is_none());
    assert!(r.token_account("h", 0).is_none());
    assert!(r.account_by_api_key("key2").is_none());
    assert!(r.children(&id(1)).is_empty());
}

#[test]
fn an_account_with_children_or_the_master_is_not_deleted() {
    let mut g = given(vec![
        account(1, None),
        account(2, Some(1)),
        account(3, Some(2)),
    ]);
    g.when(Event::AccountDeleted { account_id: id(2) });
    g.when(Event::AccountDeleted { account_id: id(1) });
    assert_eq!(g.registry.account_count(), 3);
}

#[test]
fn tokens_expire_and_are_pruned_by_log_time() {
    let mut g = given(vec![account(1, None)]);
    g.when(Event::TokenIssued {
        token_hash: "old".into(),
        account_id: id(1),
        expires_at: 1, // long past at the next record's time
    });
    assert!(g.registry.token_account("old", 0).is_some());
    assert!(g.registry.token_account("old", 1).is_none());
    g.when(Event::TokenIssued {
        token_hash: "new".into(),
        account_id: id(1),
        expires_at: 10_000,
    });
    assert!(!g.registry.tokens.contains_key("old"));
    assert_eq!(g.registry.token_account("new", 5).unwrap().id, id(1));
}

#[test]
fn webhooks_need_an_existing_account_and_stay_in_it() {
    let mut g = given(vec![account(1, None), account(2, Some(1))]);
    g.when(webhook(1, 9, json!({"hook": "all"})));
    assert!(g.registry.webhook(&hook_id(1)).is_none());
    g.when(webhook(1, 2, json!({"hook": "all", "name": "a"})));
    // An update or delete naming another account does not touch it.
    g.when(Event::WebhookUpdated {
        account_id: id(1),
        webhook_id: hook_id(1),
        doc: json!({"hook": "object"}),
    });
    g.when(Event::WebhookDeleted {
        account_id: id(1),
        webhook_id: hook_id(1),
    });
    let hook = g.registry.webhook(&hook_id(1)).unwrap();
    assert_eq!(hook.hook(), "all");
    assert_eq!(g.registry.webhooks_of(&id(2)).count(), 1);
    g.when(Event::WebhookDeleted {
        account_id: id(2),
        webhook_id: hook_id(1),
    });
    assert_eq!(g.registry.webhooks_of(&id(2)).count(), 0);
}

#[test]
fn saving_a_hook_enabled_clears_the_disable_reason() {
    let mut g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all", "enabled": true})),
    ]);
    g.registry
        .webhooks
        .get_mut(&hook_id(1))
        .unwrap()
        .disable_reason = Some(AUTO_DISABLE_REASON.into());
    g.when(Event::WebhookUpdated {
        account_id: id(1),
        webhook_id: hook_id(1),
        doc: json!({"hook": "all", "enabled": false}),
    });
    assert!(g.registry.webhook(&hook_id(1)).unwrap().auto_disabled());
    g.when(Event::WebhookUpdated {
        account_id: id(1),
        webhook_id: hook_id(1),
        doc: json!({"hook": "all", "enabled": true}),
    });
    let hook = g.registry.webhook(&hook_id(1)).unwrap();
    assert!(hook.enabled());
    assert_eq!(hook.disable_reason, None);
}

#[test]
fn bulk_reenable_enables_and_clears() {
    let mut g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all", "enabled": false})),
    ]);
    g.registry
        .webhooks
        .get_mut(&hook_id(1))
        .unwrap()
        .disable_reason = Some(AUTO_DISABLE_REASON.into());
    g.when(Event::WebhooksReenabled {
        webhook_ids: vec![hook_id(1)],
    });
    let hook = g.registry.webhook(&hook_id(1)).unwrap();
    assert!(hook.enabled() && hook.disable_reason.is_none());
}

#[test]
fn replaying_the_same_records_rebuilds_the_same_state_and_old_seqs_are_skipped() {
    let events = vec![
        account(1, None),
        account(2, Some(1)),
        webhook(1, 2, json!({"hook": "all"})),
        Event::ApiKeyChanged {
            account_id: id(1),
            api_key: "rotated".into(),
        },
    ];
    let a = given(events.clone());
    let mut b = given(events);
    assert_eq!(a.registry, b.registry);
    assert_eq!(b.registry.account_by_api_key("rotated").unwrap().id, id(1));
    assert!(b.registry.account_by_api_key("key1").is_none());
    // A record at or below the last applied seq changes nothing.
    let before = b.registry.clone();
    b.registry.apply(&Record {
        seq: 2,
        time_ms: 0,
        event: Event::AccountDeleted { account_id: id(2) },
    });
    assert_eq!(before, b.registry);
}
