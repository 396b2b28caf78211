//! Token expiry as `PUT /v2/api_auth` issues it and the registry checks it.

use actors::Registry;
use eventlog::{AccountId, Event, Record};
use serde_json::json;

use super::*;

/// A registry holding one account and a token of it, issued at `issued_ms` for `ttl_secs`
/// the way `PUT /v2/api_auth` issues it.
fn with_token_issued_at(account: &AccountId, issued_ms: u64, ttl_secs: u64) -> Registry {
    let mut registry = Registry::new();
    registry.apply(&Record {
        seq: 1,
        time_ms: issued_ms - 10,
        event: Event::AccountCreated {
            account_id: account.clone(),
            parent_id: None,
            api_key: "key".into(),
            doc: json!({"name": "master"}),
        },
    });
    registry.apply(&Record {
        seq: 2,
        time_ms: issued_ms,
        event: token_issued(
            token_hash("the-token"),
            account.clone(),
            ttl_expiry_ms(issued_ms, ttl_secs),
        ),
    });
    registry
}

#[test]
fn a_token_issued_for_one_second_is_valid_for_that_whole_second() {
    let account = AccountId::generate();
    let hash = token_hash("the-token");
    // Issued anywhere within a second, just before the next whole one included (where
    // whole-second expiry left it 1 ms).
    for issued_ms in [
        1_795_000_000_000,
        1_795_000_000_001,
        1_795_000_000_500,
        1_795_000_000_999,
    ] {
        let registry = with_token_issued_at(&account, issued_ms, 1);
        for now_ms in [issued_ms, issued_ms + 1, issued_ms + 500, issued_ms + 999] {
            assert_eq!(
                registry.token_account(&hash, now_ms).map(|a| &a.id),
                Some(&account),
                "issued at {issued_ms} for 1 s, refused at {now_ms}"
            );
        }
        assert!(
            registry.token_account(&hash, issued_ms + 1000).is_none(),
            "issued at {issued_ms} for 1 s, still valid 1 s later"
        );
    }
}

#[test]
fn the_record_keeps_the_expiry_in_milliseconds_and_whole_seconds_rounded_up() {
    let account = AccountId::generate();
    let event = token_issued("h".into(), account.clone(), 1_795_000_000_001);
    assert_eq!(
        event,
        Event::TokenIssued {
            token_hash: "h".into(),
            account_id: account,
            expires_at: 1_795_000_001,
            expires_at_ms: Some(1_795_000_000_001),
        }
    );
    assert_eq!(ttl_expiry_ms(1_000, 3600), 3_601_000);
    assert_eq!(ttl_expiry_ms(u64::MAX - 5, 1), u64::MAX);
}
