//! The on-disk format of events: fields added later read as their defaults in old records.

use serde::Serialize;

use super::*;

fn account() -> AccountId {
    AccountId::parse("0123456789abcdef0123456789abcdef").unwrap()
}

/// `TokenIssued` as builds before `expires_at_ms` wrote it.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum EventBeforeExpiresAtMs {
    TokenIssued {
        token_hash: String,
        account_id: AccountId,
        expires_at: u64,
    },
}

#[test]
fn an_old_token_record_reads_with_its_whole_second_expiry() {
    let old = rmp_serde::to_vec_named(&EventBeforeExpiresAtMs::TokenIssued {
        token_hash: "h".into(),
        account_id: account(),
        expires_at: 1_795_000_000,
    })
    .unwrap();
    let event: Event = rmp_serde::from_slice(&old).unwrap();
    let Event::TokenIssued {
        expires_at,
        expires_at_ms,
        ..
    } = event
    else {
        panic!("not a token: {event:?}");
    };
    assert_eq!(expires_at_ms, None);
    assert_eq!(
        token_expiry_ms(expires_at, expires_at_ms),
        1_795_000_000_000,
        "refused from the second it names on, as before"
    );
}

#[test]
fn a_new_token_record_keeps_its_millisecond_expiry() {
    let event = Event::TokenIssued {
        token_hash: "h".into(),
        account_id: account(),
        expires_at: 1_795_000_001,
        expires_at_ms: Some(1_795_000_000_250),
    };
    let decoded: Event = rmp_serde::from_slice(&rmp_serde::to_vec_named(&event).unwrap()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(
        token_expiry_ms(1_795_000_001, Some(1_795_000_000_250)),
        1_795_000_000_250
    );
}

#[test]
fn a_secret_is_stored_as_its_string_and_never_debug_printed() {
    let event = Event::WebhookSecretSet {
        account_id: account(),
        webhook_id: WebhookId::parse("00000000000000000000000000000001").unwrap(),
        secret: Secret::new("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"),
    };
    let bytes = rmp_serde::to_vec_named(&event).unwrap();
    let decoded: Event = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(event.kind(), "webhook_secret_set");
    let shown = format!("{event:?}");
    assert!(!shown.contains("whsec_"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    let Event::WebhookSecretSet { secret, .. } = decoded else {
        panic!("not a secret record");
    };
    assert_eq!(
        secret.expose(),
        "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    );
}
