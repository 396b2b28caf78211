use std::net::SocketAddr;

use super::*;

#[test]
fn the_hook_mix_covers_every_verb_and_format_and_some_modifiers() {
    let specs: Vec<HookSpec> = (0..12).map(hook_spec).collect();
    for (verb, format) in [
        ("post", "json"),
        ("post", "form-data"),
        ("put", "json"),
        ("get", "form-data"),
    ] {
        assert!(specs
            .iter()
            .any(|s| s.http_verb == verb && s.format == format));
    }
    assert!(specs.iter().any(|s| s.hook == "all"));
    assert!(specs.iter().any(|s| s.hook == "channel_create"));
    assert_eq!(specs.iter().filter(|s| s.modifiers).count(), 4);
}

#[test]
fn dead_hooks_are_spread_over_accounts_from_the_last_slots() {
    // 3 accounts x 4 hooks, 4 dead: slot 3 of every account, then slot 2 of account 0.
    let dead: Vec<(u32, u32)> = (0..3)
        .flat_map(|a| (0..4).map(move |s| (a, s)))
        .filter(|&(a, s)| is_dead(a, s, 3, 4, 4))
        .collect();
    assert_eq!(dead, vec![(0, 2), (0, 3), (1, 3), (2, 3)]);
    assert!(!(0..4).any(|s| is_dead(0, s, 3, 4, 0)));
    assert_eq!(
        (0..3)
            .flat_map(|a| (0..4).map(move |s| (a, s)))
            .filter(|&(a, s)| is_dead(a, s, 3, 4, 12))
            .count(),
        12
    );
}

fn plan(accounts: usize, per_account: u32, dead: &[(u32, u32)]) -> Plan {
    let mut hooks = Vec::new();
    for a in 0..accounts as u32 {
        for s in 0..per_account {
            hooks.push(PlannedHook {
                id: format!("h{a}-{s}"),
                account: a,
                dead: dead.contains(&(a, s)),
            });
        }
    }
    Plan::new(
        "t".into(),
        (0..accounts).map(|a| format!("acct{a}")).collect(),
        hooks,
    )
}

#[test]
fn expected_hooks_are_the_healthy_hooks_of_the_events_account() {
    let p = plan(2, 3, &[(1, 2)]);
    assert_eq!(p.account_of(0), 0);
    assert_eq!(p.account_of(5), 1);
    assert_eq!(p.expected_hooks(4), &[0, 1, 2]);
    assert_eq!(p.expected_hooks(3), &[3, 4]);
    assert_eq!(p.healthy_hooks(), 5);
    assert_eq!(p.event_id(42), "lt-t-42");
}

#[test]
fn identity_maps_hook_ids_to_indices_and_accounts() {
    let p = plan(2, 2, &[]);
    let id = p.identity(10);
    assert_eq!(id.event_prefix, "lt-t-");
    assert_eq!(id.hooks.get("h1-0"), Some(&2));
    assert_eq!(id.hook_account, vec![0, 0, 1, 1]);
}

#[test]
fn hook_documents_point_at_the_receiver_or_the_closed_port() {
    let opts = SetupOptions {
        accounts: 1,
        hooks_per_account: 3,
        dead_hooks: 1,
        receiver: "127.0.0.1:4000".parse::<SocketAddr>().unwrap(),
        dead_port: 9,
    };
    let live = hook_doc(&opts, "t", 0, 0);
    assert_eq!(live["uri"], "http://127.0.0.1:4000/lt/0/0");
    assert_eq!(live["retries"], 2);
    assert_eq!(live["format"], "json");
    let dead = hook_doc(&opts, "t", 0, 2);
    assert_eq!(dead["uri"], "http://127.0.0.1:9/dead/0/2");
    assert_eq!(
        dead["modifiers"],
        serde_json::json!({"call_direction": ["inbound", "outbound"]})
    );
}
