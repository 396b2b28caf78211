//! Given these records, when this record, then this state. One file for all of
//! `apply`'s cases (hence its length), so that together they read as its specification.

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
    /// Applies one more record and returns its effects.
    fn when(&mut self, event: Event) -> Vec<Effect> {
        let record = Record {
            seq: self.next_seq,
            time_ms: time_of(self.next_seq),
            event,
        };
        self.next_seq += 1;
        self.registry.apply(&record)
    }
}

/// The fixed clock of [`Given`]: the time of the record with sequence `seq`.
fn time_of(seq: u64) -> u64 {
    1_000_000 + seq * 1000
}

fn id(n: u8) -> AccountId {
    AccountId::parse(&format!("{n:032x}")).unwrap()
}

fn hook_id(n: u8) -> WebhookId {
    WebhookId::parse(&format!("{:032x}", 0xf000_u32 + u32::from(n))).unwrap()
}

/// The effect of a change to hook `n`: the hook as the registry now holds it.
fn changed(g: &Given, n: u8) -> Effect {
    let webhook = g.registry.webhook(&hook_id(n)).unwrap().clone();
    let owes_deliveries = !g.registry.pending_for(&hook_id(n)).is_empty();
    Effect::HookChanged(Box::new(HookChange {
        webhook,
        owes_deliveries,
        seq: g.registry.last_seq(),
    }))
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
    assert_eq!(
        r.ancestors(&id(3)).collect::<Vec<_>>(),
        vec![&id(2), &id(1)]
    );
    assert_eq!(r.account_depth(&id(3)), 2);
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
            expires_at_ms: None,
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
    // Records written before `expires_at_ms`: the token is refused from the whole second
    // `expires_at` on, as it always was.
    let mut g = given(vec![account(1, None)]);
    g.when(Event::TokenIssued {
        token_hash: "old".into(),
        account_id: id(1),
        expires_at: 1, // long past at the next record's time
        expires_at_ms: None,
    });
    assert!(g.registry.token_account("old", 0).is_some());
    assert!(g.registry.token_account("old", 999).is_some());
    assert!(g.registry.token_account("old", 1_000).is_none());
    g.when(Event::TokenIssued {
        token_hash: "new".into(),
        account_id: id(1),
        expires_at: 10_000,
        expires_at_ms: None,
    });
    assert!(!g.registry.tokens.contains_key("old"));
    assert_eq!(g.registry.token_account("new", 5_000).unwrap().id, id(1));
}

#[test]
fn a_token_with_a_millisecond_expiry_is_valid_to_the_millisecond() {
    let mut g = given(vec![account(1, None)]);
    // Rounded up in `expires_at` for older readers; `expires_at_ms` is what counts.
    g.when(Event::TokenIssued {
        token_hash: "t".into(),
        account_id: id(1),
        expires_at: 3,
        expires_at_ms: Some(2_001),
    });
    assert!(g.registry.token_account("t", 2_000).is_some());
    assert!(g.registry.token_account("t", 2_001).is_none());
    assert!(g.registry.token_account("t", 2_999).is_none());
    // Pruned by the same rule (a seconds field that disagrees shows which one counts):
    // kept at a record 1 ms before its expiry, gone at the next one.
    let mut g = given(vec![account(1, None)]);
    g.when(Event::TokenIssued {
        token_hash: "t".into(),
        account_id: id(1),
        expires_at: time_of(3) / 1000,
        expires_at_ms: Some(time_of(3) + 1),
    });
    let forever = |hash: &str| Event::TokenIssued {
        token_hash: hash.into(),
        account_id: id(1),
        expires_at: u64::MAX,
        expires_at_ms: Some(u64::MAX),
    };
    g.when(forever("u"));
    assert!(
        g.registry.tokens.contains_key("t"),
        "kept before its expiry"
    );
    g.when(forever("v"));
    assert!(!g.registry.tokens.contains_key("t"), "pruned once past it");
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
fn webhook_states_are_counted_in_bounded_steps() {
    let g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all"})),
        webhook(2, 1, json!({"hook": "all", "enabled": false})),
        webhook(3, 1, json!({"hook": "all"})),
        webhook(4, 1, json!({"hook": "all"})),
        Event::WebhookAutoDisabled {
            account_id: id(1),
            webhook_id: hook_id(4),
            reason: AUTO_DISABLE_REASON.into(),
        },
        webhook(5, 1, json!({"hook": "all"})),
    ]);
    let whole = g.registry.count_webhook_states(None, usize::MAX);
    let expected = WebhookStates {
        enabled: 3,
        disabled: 1,
        auto_disabled: 1,
    };
    assert_eq!(whole, (expected, None));
    let mut total = WebhookStates::default();
    let mut after = None;
    let mut steps = 0;
    loop {
        let (counts, next) = g.registry.count_webhook_states(after.as_ref(), 2);
        total.add(counts);
        steps += 1;
        match next {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    assert_eq!((total, steps), (expected, 3));
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

// ---------------------------------------------------------------------------------------
// Deliveries: accepted events, attempts, disabling and removal

fn event_id(name: &str) -> EventId {
    EventId::parse(name).unwrap()
}

fn accepted(name: &str, account: u8, hook_event: &str) -> Event {
    Event::EventAccepted {
        event_id: event_id(name),
        account_id: id(account),
        hook_event: hook_event.into(),
        payload: json!({"call_id": format!("call-{name}")}),
    }
}

/// One try of the event accepted at `event_seq` to hook `hook`, owned by `owner`.
fn attempted(
    event_seq: u64,
    name: &str,
    hook: u8,
    owner: u8,
    result: AttemptResult,
    next_try_at_ms: Option<u64>,
) -> Event {
    Event::DeliveryAttempted(Attempt {
        event_seq,
        event_id: event_id(name),
        webhook_id: hook_id(hook),
        account_id: id(owner),
        hook_event: "channel_create".into(),
        uri: "http://example.com/hook".into(),
        method: "post".into(),
        result,
        reason: (result == AttemptResult::Failure).then(|| "bad response code".into()),
        client_error: None,
        response_code: Some(if result == AttemptResult::Success {
            200
        } else {
            500
        }),
        response_body: None,
        retries_left: u32::from(next_try_at_ms.is_some()),
        latency_ms: 5,
        next_try_at_ms,
        local_fault: false,
    })
}

/// The webhooks of the `Deliver` effects, in order (panics on any other effect).
fn delivered_to(effects: &[Effect]) -> Vec<WebhookId> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Deliver(d) => d.webhook_id.clone(),
            other => panic!("expected only deliveries, got {other:?}"),
        })
        .collect()
}

/// Master 1 with child 2 with child 3; one hook on 2 for `channel_create` and one `all`
/// hook on 1 that includes subaccounts.
fn small_tree() -> Given {
    given(vec![
        account(1, None),
        account(2, Some(1)),
        account(3, Some(2)),
        webhook(1, 2, json!({"hook": "channel_create", "enabled": true})),
        webhook(
            2,
            1,
            json!({"hook": "all", "include_subaccounts": true, "enabled": true}),
        ),
    ])
}

#[test]
fn an_accepted_event_is_delivered_to_exactly_the_matching_enabled_hooks() {
    let mut g = given(vec![
        account(1, None),
        account(2, Some(1)),
        account(3, Some(2)),
        // The event's own account: its hooks for the event or `all`, if enabled.
        webhook(1, 2, json!({"hook": "channel_create"})),
        webhook(2, 2, json!({"hook": "all", "enabled": true})),
        webhook(3, 2, json!({"hook": "channel_destroy"})),
        webhook(4, 2, json!({"hook": "channel_create", "enabled": false})),
        webhook(5, 2, json!({"hook": "all", "enabled": false})),
        // The ancestor: only hooks that include subaccounts, and never disabled ones.
        webhook(
            6,
            1,
            json!({"hook": "channel_create", "include_subaccounts": true}),
        ),
        webhook(7, 1, json!({"hook": "channel_create"})),
        webhook(
            8,
            1,
            json!({"hook": "channel_create", "include_subaccounts": false}),
        ),
        webhook(
            9,
            1,
            json!({"hook": "all", "include_subaccounts": true, "enabled": false}),
        ),
        webhook(
            10,
            1,
            json!({"hook": "channel_answer", "include_subaccounts": true}),
        ),
        // A descendant's hooks never see its ancestors' events.
        webhook(
            11,
            3,
            json!({"hook": "channel_create", "include_subaccounts": true}),
        ),
    ]);
    let seq = g.next_seq;
    let effects = g.when(accepted("ev-1", 2, "channel_create"));
    // Own hooks first (by id), then the ancestors' (root first).
    assert_eq!(
        delivered_to(&effects),
        vec![hook_id(1), hook_id(2), hook_id(6)]
    );
    for effect in &effects {
        let Effect::Deliver(d) = effect else {
            unreachable!()
        };
        assert_eq!(d.tries_done, 0);
        assert_eq!(d.next_try_at_ms, time_of(seq));
        assert_eq!(d.event.seq, seq);
        assert_eq!(d.event.event_id, event_id("ev-1"));
        assert_eq!(d.event.account_id, id(2));
        assert_eq!(d.event.hook_event, "channel_create");
        assert_eq!(d.event.accepted_ms, time_of(seq));
        assert_eq!(d.event.call_id(), Some("call-ev-1"));
        // Each effect is exactly the pending delivery the registry now holds.
        assert_eq!(g.registry.pending_for(&d.webhook_id), vec![d.clone()]);
    }
    assert_eq!(g.registry.pending_count(), 3);
    for n in [3, 4, 5, 7, 8, 9, 10, 11] {
        assert!(g.registry.pending_for(&hook_id(n)).is_empty(), "hook {n}");
    }

    // The ancestor's own event reaches its own hooks, subaccount flag or not.
    let effects = g.when(accepted("ev-2", 1, "channel_create"));
    assert_eq!(
        delivered_to(&effects),
        vec![hook_id(6), hook_id(7), hook_id(8)]
    );
    assert_eq!(g.registry.pending_count(), 6);
}

#[test]
fn an_event_of_an_unknown_account_or_without_matching_hooks_delivers_nothing() {
    let mut g = small_tree();
    assert_eq!(g.when(accepted("ev-1", 9, "channel_create")), vec![]);
    // Without the inherited `all` hook (which takes anything), nothing else matches.
    g.when(Event::WebhookDeleted {
        account_id: id(1),
        webhook_id: hook_id(2),
    });
    assert_eq!(g.when(accepted("ev-2", 2, "channel_destroy")), vec![]);
    assert_eq!(g.when(accepted("ev-3", 3, "channel_create")), vec![]);
    assert_eq!(g.registry.pending_count(), 0);
}

#[test]
fn an_attempt_with_a_next_try_keeps_the_delivery_pending_and_without_one_finishes_it() {
    let mut g = small_tree();
    let seq = g.next_seq;
    g.when(accepted("ev-1", 2, "channel_create"));
    let retry_at = 9_999_999;
    assert_eq!(
        g.when(attempted(
            seq,
            "ev-1",
            1,
            2,
            AttemptResult::Failure,
            Some(retry_at)
        )),
        vec![]
    );
    let pending = g.registry.pending_for(&hook_id(1));
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].tries_done, 1);
    assert_eq!(pending[0].next_try_at_ms, retry_at);
    g.when(attempted(
        seq,
        "ev-1",
        1,
        2,
        AttemptResult::Failure,
        Some(retry_at + 1),
    ));
    let pending = g.registry.pending_for(&hook_id(1));
    assert_eq!(
        (pending[0].tries_done, pending[0].next_try_at_ms),
        (2, retry_at + 1)
    );
    // The other hook's delivery of the same event is untouched.
    let other = g.registry.pending_for(&hook_id(2));
    assert_eq!(
        (other[0].tries_done, other[0].next_try_at_ms),
        (0, time_of(seq))
    );

    // The last try (success or not) finishes it.
    g.when(attempted(seq, "ev-1", 1, 2, AttemptResult::Success, None));
    assert!(g.registry.pending_for(&hook_id(1)).is_empty());
    g.when(attempted(seq, "ev-1", 2, 1, AttemptResult::Failure, None));
    assert!(g.registry.pending_for(&hook_id(2)).is_empty());
    assert_eq!(g.registry.pending_count(), 0);

    // A late attempt for a finished delivery does not bring it back.
    g.when(attempted(
        seq,
        "ev-1",
        1,
        2,
        AttemptResult::Failure,
        Some(retry_at),
    ));
    assert_eq!(g.registry.pending_count(), 0);
}

#[test]
fn failed_attempts_are_counted_by_their_record_time() {
    let mut g = small_tree();
    let ev_seq = g.next_seq;
    g.when(accepted("ev-1", 2, "channel_create"));
    // Hook 2 belongs to account 1 (inherited by 2's event): the attempt is the owner's.
    let fail_seq = g.next_seq;
    g.when(attempted(
        ev_seq,
        "ev-1",
        2,
        1,
        AttemptResult::Failure,
        Some(1),
    ));
    g.when(attempted(
        ev_seq,
        "ev-1",
        1,
        2,
        AttemptResult::Success,
        None,
    ));
    let fail2_seq = g.next_seq;
    g.when(attempted(
        ev_seq,
        "ev-1",
        2,
        1,
        AttemptResult::Failure,
        None,
    ));
    let r = &g.registry;
    // Failures are kept by their record time; successes are not failures.
    let failures: Vec<u64> = r
        .webhook(&hook_id(2))
        .unwrap()
        .recent_failures
        .iter()
        .copied()
        .collect();
    assert_eq!(failures, vec![time_of(fail_seq), time_of(fail2_seq)]);
    assert_eq!(
        r.webhook(&hook_id(2))
            .unwrap()
            .failures_since(time_of(fail2_seq)),
        1
    );
    assert!(r.webhook(&hook_id(1)).unwrap().recent_failures.is_empty());
}

#[test]
fn auto_disable_disables_sets_the_reason_and_clears_failures_and_pending() {
    let mut g = small_tree();
    let seq = g.next_seq;
    g.when(accepted("ev-1", 2, "channel_create"));
    g.when(accepted("ev-2", 2, "channel_create"));
    g.when(attempted(
        seq,
        "ev-1",
        1,
        2,
        AttemptResult::Failure,
        Some(1),
    ));
    assert_eq!(g.registry.pending_for(&hook_id(1)).len(), 2);
    assert_eq!(
        g.registry
            .webhook(&hook_id(1))
            .unwrap()
            .recent_failures
            .len(),
        1
    );

    // Naming another account changes nothing.
    assert_eq!(
        g.when(Event::WebhookAutoDisabled {
            account_id: id(1),
            webhook_id: hook_id(1),
            reason: AUTO_DISABLE_REASON.into(),
        }),
        vec![]
    );
    assert!(g.registry.webhook(&hook_id(1)).unwrap().enabled());

    let effects = g.when(Event::WebhookAutoDisabled {
        account_id: id(2),
        webhook_id: hook_id(1),
        reason: AUTO_DISABLE_REASON.into(),
    });
    assert_eq!(effects, vec![changed(&g, 1)]);
    let hook = g.registry.webhook(&hook_id(1)).unwrap();
    assert!(!hook.enabled() && hook.auto_disabled());
    assert_eq!(hook.disable_reason.as_deref(), Some(AUTO_DISABLE_REASON));
    assert!(hook.recent_failures.is_empty());
    assert!(g.registry.pending_for(&hook_id(1)).is_empty());
    // The other hook still owes both events.
    assert_eq!(g.registry.pending_for(&hook_id(2)).len(), 2);
    // A disabled hook gets no new deliveries.
    let effects = g.when(accepted("ev-3", 2, "channel_create"));
    assert_eq!(delivered_to(&effects), vec![hook_id(2)]);
}

#[test]
fn disabling_or_deleting_a_hook_drops_its_pending_deliveries() {
    let mut g = small_tree();
    g.when(accepted("ev-1", 2, "channel_create"));
    g.when(accepted("ev-2", 2, "channel_create"));
    assert_eq!(g.registry.pending_count(), 4);

    // A change that keeps the hook enabled keeps what it owes.
    let effects = g.when(Event::WebhookUpdated {
        account_id: id(2),
        webhook_id: hook_id(1),
        doc: json!({"hook": "channel_create", "enabled": true, "name": "renamed"}),
    });
    assert_eq!(effects, vec![changed(&g, 1)]);
    assert_eq!(g.registry.pending_for(&hook_id(1)).len(), 2);

    let effects = g.when(Event::WebhookUpdated {
        account_id: id(2),
        webhook_id: hook_id(1),
        doc: json!({"hook": "channel_create", "enabled": false}),
    });
    assert_eq!(effects, vec![changed(&g, 1)]);
    assert!(g.registry.pending_for(&hook_id(1)).is_empty());
    assert_eq!(g.registry.pending_for(&hook_id(2)).len(), 2);

    let effects = g.when(Event::WebhookDeleted {
        account_id: id(1),
        webhook_id: hook_id(2),
    });
    assert_eq!(effects, vec![Effect::HookRemoved(hook_id(2))]);
    assert!(g.registry.pending_for(&hook_id(2)).is_empty());
    assert_eq!(g.registry.pending_count(), 0);
}

#[test]
fn deleting_an_account_changes_each_of_its_hooks_and_drops_their_pending_deliveries() {
    let mut g = small_tree();
    g.when(webhook(3, 3, json!({"hook": "all"})));
    g.when(webhook(4, 3, json!({"hook": "channel_create"})));
    g.when(accepted("ev-1", 3, "channel_create"));
    // Account 3's two hooks and account 1's inherited `all` hook.
    assert_eq!(g.registry.pending_count(), 3);
    let effects = g.when(Event::AccountDeleted { account_id: id(3) });
    assert_eq!(
        effects,
        vec![
            Effect::HookRemoved(hook_id(3)),
            Effect::HookRemoved(hook_id(4))
        ]
    );
    assert!(g.registry.pending_for(&hook_id(3)).is_empty());
    assert!(g.registry.pending_for(&hook_id(4)).is_empty());
    // The ancestor's hook still owes the event (it was accepted while 3 existed).
    assert_eq!(g.registry.pending_for(&hook_id(2)).len(), 1);
    // Refused deletions (an account with children) change no hook.
    assert_eq!(g.when(Event::AccountDeleted { account_id: id(1) }), vec![]);
}

#[test]
fn replaying_deliveries_twice_rebuilds_the_same_registry_with_pending() {
    let events = vec![
        account(1, None),
        account(2, Some(1)),
        webhook(1, 2, json!({"hook": "channel_create"})),
        webhook(2, 1, json!({"hook": "all", "include_subaccounts": true})),
        webhook(3, 2, json!({"hook": "all"})),
        accepted("ev-1", 2, "channel_create"), // seq 6
        accepted("ev-2", 2, "channel_create"), // seq 7
        attempted(6, "ev-1", 1, 2, AttemptResult::Failure, Some(5_000_000)),
        attempted(6, "ev-1", 2, 1, AttemptResult::Success, None),
        attempted(7, "ev-2", 3, 2, AttemptResult::Failure, Some(6_000_000)),
        Event::WebhookAutoDisabled {
            account_id: id(2),
            webhook_id: hook_id(3),
            reason: AUTO_DISABLE_REASON.into(),
        },
        accepted("ev-3", 1, "channel_answer"),
    ];
    let a = given(events.clone());
    let b = given(events);
    assert_eq!(a.registry, b.registry);
    let r = &b.registry;
    // Hook 1 owes ev-1 (retry scheduled) and ev-2; hook 2 owes ev-2 and ev-3.
    assert_eq!(r.pending_count(), 4);
    let owed: Vec<(u64, u32, u64)> = r
        .pending_for(&hook_id(1))
        .iter()
        .map(|p| (p.event.seq, p.tries_done, p.next_try_at_ms))
        .collect();
    assert_eq!(owed, vec![(6, 1, 5_000_000), (7, 0, time_of(7))]);
    let owed: Vec<u64> = r
        .pending_for(&hook_id(2))
        .iter()
        .map(|p| p.event.seq)
        .collect();
    assert_eq!(owed, vec![7, 12]);
    assert!(r.pending_for(&hook_id(3)).is_empty());
    for hook in [1, 2, 3] {
        assert_eq!(
            a.registry.pending_for(&hook_id(hook)),
            r.pending_for(&hook_id(hook))
        );
    }
}

#[test]
fn deliveries_are_ordered_by_call_or_by_document() {
    let event = |hook_event: &str, payload: Value| AcceptedEvent {
        seq: 1,
        event_id: EventId::generate(),
        account_id: AccountId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        hook_event: hook_event.to_owned(),
        payload: payload.as_object().unwrap().clone(),
        accepted_ms: 0,
    };
    assert_eq!(
        event("channel_create", json!({"call_id": "c1"})).ordering_key(),
        Some("call:c1".to_owned())
    );
    assert_eq!(
        event(
            "object",
            json!({"type": "account", "id": "a1", "action": "doc_edited"})
        )
        .ordering_key(),
        Some("object:account:a1".to_owned())
    );
    // A document change without both fields, and other events without a call: none.
    assert_eq!(event("object", json!({"id": "a1"})).ordering_key(), None);
    assert_eq!(
        event("notifications", json!({"id": "a1", "type": "x"})).ordering_key(),
        None
    );
    assert_eq!(event("channel_create", json!({})).ordering_key(), None);
}

#[test]
fn issuing_tokens_forgets_the_expired_ones_and_revocation_removes_one() {
    let mut g = given(vec![account(1, None), account(2, Some(1))]);
    let issued = |hash: &str, account: u8, expires_at_ms: u64| Event::TokenIssued {
        token_hash: hash.into(),
        account_id: id(account),
        expires_at: expires_at_ms.div_ceil(1000),
        expires_at_ms: Some(expires_at_ms),
    };
    // Tokens that expire before the next records' times, then live ones.
    for n in 0..100 {
        g.when(issued(&format!("gone-{n}"), 2, 1 + n));
    }
    g.when(issued("live-1", 2, u64::MAX - 2));
    g.when(issued("live-2", 2, u64::MAX - 1));
    g.when(issued("other", 1, u64::MAX));
    assert_eq!(
        g.registry.token_count(),
        3,
        "only unexpired tokens stay in memory"
    );
    // One more for account 2 with a limit of 2 revokes its oldest live token.
    let now = time_of(200);
    assert_eq!(
        g.registry.tokens_to_revoke(&id(2), 2, now),
        vec![("live-1".to_owned(), u64::MAX - 2)]
    );
    assert!(g.registry.tokens_to_revoke(&id(1), 2, now).is_empty());
    g.when(Event::TokenRevoked {
        token_hash: "live-1".into(),
        account_id: id(2),
        expires_at_ms: u64::MAX - 2,
    });
    assert!(g.registry.token_account("live-1", now).is_none());
    assert!(g.registry.token_account("live-2", now).is_some());
    assert_eq!(g.registry.token_count(), 2);
    // The indexes are not in snapshots: they are rebuilt from the tokens.
    let copy = crate::snapshot::decode(&crate::snapshot::encode(&g.registry).unwrap()).unwrap();
    assert_eq!(copy, g.registry);
}

/// Matching as it was done before the candidate index: every hook of the account and its
/// ancestors looked at, the same rule per document. The index must agree with it.
fn matching_by_scan(
    r: &Registry,
    account: &AccountId,
    hook_event: &str,
    payload: &serde_json::Map<String, serde_json::Value>,
) -> Vec<WebhookId> {
    let mut accounts = vec![account.clone()];
    accounts.extend(r.ancestors(account).cloned());
    let mut out: Vec<WebhookId> = r
        .webhooks()
        .filter(|h| h.enabled())
        .filter(|h| {
            &h.account_id == account
                || (accounts.contains(&h.account_id) && h.include_subaccounts())
        })
        .filter(|h| crate::matching::hook_accepts(&h.doc, hook_event, payload))
        .map(|h| h.id.clone())
        .collect();
    out.sort();
    out
}

#[test]
fn the_candidate_index_matches_exactly_what_a_scan_of_every_hook_matches() {
    let kinds = [
        "channel_create",
        "channel_answer",
        "channel_destroy",
        "all",
        "object",
        "notifications",
    ];
    let mut events = vec![account(1, None), account(2, Some(1)), account(3, Some(2))];
    for n in 0..60u8 {
        let kind = kinds[usize::from(n) % kinds.len()];
        let mut doc = json!({"name": format!("h{n}"), "uri": "http://example.com/", "hook": kind,
                             "include_subaccounts": n % 3 == 0});
        if n % 4 == 0 {
            doc["modifiers"] = json!({"call_direction": ["inbound"]});
        }
        if n % 5 == 0 {
            doc["include_internal_legs"] = json!(false);
        }
        if kind == "object" {
            doc["custom_data"] = json!({"type": "account", "action": if n % 2 == 0 { "all" } else { "doc_created" }});
        }
        if kind == "notifications" {
            doc["custom_data"] = json!({"type": "all"});
        }
        events.push(webhook(n, 1 + n % 3, doc));
    }
    fn owner(n: u8) -> AccountId {
        id(1 + n % 3)
    }
    let mut g = given(events);
    // Changes after creation: disables, an update of the kind, a deletion, a re-enable.
    g.when(Event::WebhookUpdated {
        account_id: owner(7),
        webhook_id: hook_id(7),
        doc: json!({"name": "h7", "uri": "http://example.com/", "hook": "channel_answer", "enabled": false}),
    });
    g.when(Event::WebhookUpdated {
        account_id: owner(8),
        webhook_id: hook_id(8),
        doc: json!({"name": "h8", "uri": "http://example.com/", "hook": "channel_create", "include_subaccounts": true}),
    });
    g.when(Event::WebhookDeleted {
        account_id: owner(9),
        webhook_id: hook_id(9),
    });
    g.when(Event::WebhookAutoDisabled {
        account_id: owner(10),
        webhook_id: hook_id(10),
        reason: AUTO_DISABLE_REASON.into(),
    });
    g.when(Event::WebhooksReenabled {
        webhook_ids: vec![hook_id(10)],
    });
    let payloads = [
        json!({"call_direction": "inbound"}),
        json!({"call_direction": "outbound", "is_internal_leg": true}),
        json!({"type": "account", "action": "doc_created"}),
        json!({"event_name": "missed_call"}),
    ];
    let snapshot = crate::snapshot::decode(&crate::snapshot::encode(&g.registry).unwrap()).unwrap();
    for registry in [&g.registry, &snapshot] {
        for account in [id(1), id(2), id(3)] {
            for kind in [
                "channel_create",
                "channel_answer",
                "object",
                "notifications",
            ] {
                for payload in &payloads {
                    let payload = payload.as_object().unwrap();
                    let mut indexed = registry.matching_hooks(&account, kind, payload);
                    indexed.sort();
                    assert_eq!(
                        indexed,
                        matching_by_scan(registry, &account, kind, payload),
                        "{kind} in {account} with {payload:?}"
                    );
                }
            }
        }
    }
}

fn secret_set(hook: u8, owner: u8, secret: &str) -> Event {
    Event::WebhookSecretSet {
        account_id: id(owner),
        webhook_id: hook_id(hook),
        secret: eventlog::Secret::new(secret),
    }
}

const SECRET_A: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET_B: &str = "whsec_q6urq6urq6urq6urq6urq6urq6urq6ur";

#[test]
fn a_secret_set_with_the_creation_replaces_nothing() {
    let mut g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all"})),
    ]);
    let effects = g.when(secret_set(1, 1, SECRET_A));
    assert_eq!(
        effects,
        vec![changed(&g, 1)],
        "the actor signs with it from now on"
    );
    let secrets = &g.registry.webhook(&hook_id(1)).unwrap().secrets;
    assert_eq!(secrets.current, Some(eventlog::Secret::new(SECRET_A)));
    assert_eq!((&secrets.previous, secrets.rotated_ms), (&None, None));
    assert_eq!(g.registry.webhooks_without_secret().count(), 0);
}

#[test]
fn a_rotation_keeps_the_replaced_secret_with_the_records_time() {
    let mut g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all"})),
        secret_set(1, 1, SECRET_A),
    ]);
    let rotation_seq = g.next_seq;
    g.when(secret_set(1, 1, SECRET_B));
    let secrets = &g.registry.webhook(&hook_id(1)).unwrap().secrets;
    assert_eq!(secrets.current, Some(eventlog::Secret::new(SECRET_B)));
    assert_eq!(secrets.previous, Some(eventlog::Secret::new(SECRET_A)));
    assert_eq!(secrets.rotated_ms, Some(time_of(rotation_seq)));
}

#[test]
fn a_secret_change_keeps_the_document_the_failures_and_what_is_owed() {
    let mut g = small_tree();
    let ev_seq = g.next_seq;
    g.when(accepted("ev-1", 2, "channel_create"));
    g.when(attempted(
        ev_seq,
        "ev-1",
        1,
        2,
        AttemptResult::Failure,
        Some(1),
    ));
    let before = g.registry.webhook(&hook_id(1)).unwrap().clone();
    g.when(secret_set(1, 2, SECRET_A));
    let after = g.registry.webhook(&hook_id(1)).unwrap();
    assert_eq!(after.doc, before.doc);
    assert_eq!(after.doc_seq, before.doc_seq, "not a document update");
    assert_eq!(after.recent_failures, before.recent_failures);
    assert_eq!(g.registry.pending_for(&hook_id(1)).len(), 1);
}

#[test]
fn a_secret_for_another_accounts_or_an_unknown_hook_changes_nothing() {
    let mut g = small_tree();
    let before = g.registry.clone();
    assert!(
        g.when(secret_set(1, 1, SECRET_A)).is_empty(),
        "hook 1 is account 2's"
    );
    assert!(g.when(secret_set(9, 2, SECRET_A)).is_empty());
    assert_eq!(
        g.registry.webhook(&hook_id(1)).unwrap().secrets,
        before.webhook(&hook_id(1)).unwrap().secrets
    );
    let missing: Vec<WebhookId> = g
        .registry
        .webhooks_without_secret()
        .map(|h| h.id.clone())
        .collect();
    assert_eq!(missing, vec![hook_id(1), hook_id(2)]);
}

#[test]
fn secrets_survive_a_snapshot_and_never_show_in_debug_output() {
    let g = given(vec![
        account(1, None),
        webhook(1, 1, json!({"hook": "all"})),
        secret_set(1, 1, SECRET_A),
        secret_set(1, 1, SECRET_B),
    ]);
    let restored = crate::snapshot::decode(&crate::snapshot::encode(&g.registry).unwrap()).unwrap();
    assert_eq!(restored, g.registry);
    let shown = format!("{:?}", g.registry);
    assert!(!shown.contains("whsec_"), "{shown}");
}
