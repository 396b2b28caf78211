//! The audit commands against logs written here, with no daemon and no sockets.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use actors::Registry;
use eventlog::{
    AccountId, Attempt, AttemptResult, Event, EventId, EventLog, LogError, Record, WebhookId,
};
use serde_json::{json, Value};

use super::replay::{human_line, json_line, replay_log, Filter, REDACTED};
use super::state::{registry_at, View};
use super::verify::{summary_line, verify_log};
use super::*;

const MASTER_KEY: &str = "master-secret-key";
const CHILD_KEY: &str = "child-secret-key";
const TOKEN_HASH: &str = "0000token-hash-secret0000";

/// A small history: master M, child C, hook W1 of C (updated, re-enabled, tried), hook W2 of
/// M, a token of C, then C deleted.
struct History {
    _dir: tempfile::TempDir,
    log: EventLog,
    master: AccountId,
    child: AccountId,
    w1: WebhookId,
    w2: WebhookId,
}

fn history() -> History {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("eventlog"), None).unwrap();
    let master = AccountId::generate();
    let child = AccountId::generate();
    let w1 = WebhookId::generate();
    let w2 = WebhookId::generate();
    let hook_doc =
        |name: &str| json!({"name": name, "uri": "http://example.com/h", "hook": "channel_create"});
    let events = vec![
        // 1
        Event::AccountCreated {
            account_id: master.clone(),
            parent_id: None,
            api_key: MASTER_KEY.into(),
            doc: json!({"name": "Master Account"}),
        },
        // 2
        Event::AccountCreated {
            account_id: child.clone(),
            parent_id: Some(master.clone()),
            api_key: CHILD_KEY.into(),
            doc: json!({"name": "Child Co"}),
        },
        // 3
        Event::WebhookCreated {
            account_id: child.clone(),
            webhook_id: w1.clone(),
            doc: hook_doc("New Calls"),
        },
        // 4
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: w2.clone(),
            doc: hook_doc("master hook"),
        },
        // 5
        Event::WebhookUpdated {
            account_id: child.clone(),
            webhook_id: w1.clone(),
            doc: json!({"name": "Renamed\nline", "uri": "http://example.com/h", "hook": "channel_create", "enabled": false}),
        },
        // 6
        Event::WebhooksReenabled {
            webhook_ids: vec![w1.clone()],
        },
        // 7
        Event::DeliveryAttempted(Attempt {
            event_seq: 3,
            event_id: EventId::generate(),
            webhook_id: w1.clone(),
            account_id: child.clone(),
            hook_event: "channel_create".into(),
            uri: "http://example.com/h".into(),
            method: "post".into(),
            result: AttemptResult::Failure,
            reason: Some("bad response code".into()),
            client_error: None,
            response_code: Some(500),
            response_body: Some("oops".into()),
            retries_left: 1,
            latency_ms: 12,
            next_try_at_ms: Some(1_795_000_000_000),
            local_fault: false,
        }),
        // 8
        Event::TokenIssued {
            token_hash: TOKEN_HASH.into(),
            account_id: child.clone(),
            expires_at: 1_795_000_000,
            expires_at_ms: None,
        },
        // 9
        Event::AccountDeleted {
            account_id: child.clone(),
        },
    ];
    log.append_blocking(events).unwrap();
    History {
        _dir: dir,
        log,
        master,
        child,
        w1,
        w2,
    }
}

fn replay_text(log: &EventLog, filter: &Filter, json: bool) -> String {
    let mut out = Vec::new();
    replay_log(log, filter, json, &mut out, false).unwrap();
    String::from_utf8(out).unwrap()
}

fn seqs(log: &EventLog, filter: &Filter) -> Vec<u64> {
    replay_text(log, filter, true)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn times_parse_as_rfc3339_or_unix_seconds() {
    assert_eq!(parse_time("2026-11-18T11:06:40Z"), Ok(1_795_000_000_000));
    assert_eq!(parse_time("2026-11-18T11:06:40.25Z"), Ok(1_795_000_000_250));
    assert_eq!(
        parse_time("2026-11-18T12:06:40+01:00"),
        Ok(1_795_000_000_000)
    );
    assert_eq!(parse_time("1795000000"), Ok(1_795_000_000_000));
    assert_eq!(parse_time(" 1795000000.5 "), Ok(1_795_000_000_500));
    assert_eq!(parse_time("0"), Ok(0));
    for bad in [
        "",
        "yesterday",
        "1.2.3",
        ".5",
        "2026-11-18",
        "1969-12-31T23:59:59Z",
    ] {
        assert!(parse_time(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(format_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
}

#[test]
fn errors_name_the_bad_record_and_choose_the_exit_code() {
    let gap = LogError::Gap {
        expected: 4,
        found: 5,
    };
    assert_eq!(bad_seq(&gap), Some(4));
    assert_eq!(bad_seq(&LogError::ChainBroken { seq: 7 }), Some(7));
    assert_eq!(bad_seq(&LogError::Storage("io".into())), None);
    let damaged = AuditError::from_read(gap);
    assert_eq!(damaged.exit_code(), EXIT_DAMAGED);
    assert!(damaged.to_string().contains("record 4"), "{damaged}");
    assert_eq!(
        AuditError::from_read(LogError::Storage("io".into())).exit_code(),
        EXIT_DAMAGED
    );
    let missing = open_log(Path::new("/nonexistent/piston/data")).unwrap_err();
    assert_eq!(missing.exit_code(), EXIT_FAILED);
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

#[test]
fn replay_prints_every_record_in_order_without_secrets() {
    let h = history();
    let all = Filter::default();
    assert_eq!(seqs(&h.log, &all), (1..=9).collect::<Vec<_>>());

    let text = replay_text(&h.log, &all, true);
    for secret in [MASTER_KEY, CHILD_KEY, TOKEN_HASH] {
        assert!(!text.contains(secret), "{secret} printed");
    }
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "account_created");
    assert_eq!(first["account_id"], h.master.as_str());
    assert_eq!(first["api_key"], REDACTED);
    assert_eq!(first["doc"]["name"], "Master Account");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(first["time_ms"].as_u64().unwrap() > 0);
    // The envelope fields lead the line.
    assert!(text.starts_with("{\"seq\":1,\"time\":\""), "{text}");

    let human = replay_text(&h.log, &all, false);
    assert_eq!(human.lines().count(), 9);
    for secret in [MASTER_KEY, CHILD_KEY, TOKEN_HASH, REDACTED] {
        assert!(!human.contains(secret), "{secret} printed");
    }
    let line3 = human.lines().nth(2).unwrap();
    assert!(line3.starts_with("#3 "), "{line3}");
    assert!(
        line3.contains(&format!(
            "webhook_created account={} webhook={} name=\"New Calls\"",
            h.child, h.w1
        )),
        "{line3}"
    );
    // A newline inside a document stays escaped: one record, one line.
    let line5 = human.lines().nth(4).unwrap();
    assert!(line5.contains(r#"name="Renamed\nline""#), "{line5}");
    assert!(line5.contains("enabled=false"), "{line5}");
    let line7 = human.lines().nth(6).unwrap();
    assert!(
        line7.contains("result=failure") && line7.contains("response_code=500"),
        "{line7}"
    );
    assert!(
        line7.contains("next_try=2026-11-18T11:06:40.000Z"),
        "{line7}"
    );
    // A token record written before `expires_at_ms`: its whole second.
    let line8 = human.lines().nth(7).unwrap();
    assert!(
        line8.contains(" expires=2026-11-18T11:06:40.000Z"),
        "{line8}"
    );
}

#[test]
fn a_token_expiry_to_the_millisecond_is_shown_once() {
    let record = Record {
        seq: 1,
        time_ms: 1_795_000_000_000,
        event: Event::TokenIssued {
            token_hash: TOKEN_HASH.into(),
            account_id: AccountId::generate(),
            expires_at: 1_795_000_001,
            expires_at_ms: Some(1_795_000_000_250),
        },
    };
    let line = human_line(&record);
    assert!(line.contains(" expires=2026-11-18T11:06:40.250Z"), "{line}");
    assert_eq!(line.matches("expires").count(), 1, "{line}");
    let parsed: Value = serde_json::from_str(&json_line(&record)).unwrap();
    assert_eq!(parsed["expires_at"], 1_795_000_001);
    assert_eq!(parsed["expires_at_ms"], 1_795_000_000_250u64);
}

#[test]
fn replay_filters_by_kind_account_webhook_and_sequence() {
    let h = history();
    let kinds = |k: &[&str]| Filter {
        kinds: k.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &kinds(&["webhook_created"])), vec![3, 4]);
    assert_eq!(
        seqs(&h.log, &kinds(&["account_deleted", "token_issued"])),
        vec![8, 9]
    );
    assert_eq!(seqs(&h.log, &kinds(&["no_such_kind"])), Vec::<u64>::new());

    let account = |a: &AccountId| Filter {
        account: Some(a.clone()),
        ..Filter::default()
    };
    // The child: its creation, its hook's records (re-enable and attempt through the
    // owner), its token and deletion.
    assert_eq!(seqs(&h.log, &account(&h.child)), vec![2, 3, 5, 6, 7, 8, 9]);
    // The master: itself, its child's creation, its own hook.
    assert_eq!(seqs(&h.log, &account(&h.master)), vec![1, 2, 4]);

    let webhook = |w: &WebhookId| Filter {
        webhook: Some(w.clone()),
        ..Filter::default()
    };
    // W1: created, updated, re-enabled, tried, and gone with its account.
    assert_eq!(seqs(&h.log, &webhook(&h.w1)), vec![3, 5, 6, 7, 9]);
    assert_eq!(seqs(&h.log, &webhook(&h.w2)), vec![4]);

    let from = Filter {
        from: 6,
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &from), vec![6, 7, 8, 9]);
    // Owners are learnt before --from: the re-enable still belongs to the child.
    let from_child = Filter {
        from: 6,
        account: Some(h.child.clone()),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &from_child), vec![6, 7, 8, 9]);
    let combined = Filter {
        webhook: Some(h.w1.clone()),
        kinds: ["webhook_updated".to_owned()].into(),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &combined), vec![5]);

    let until_before = Filter {
        until: Some(0),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &until_before), Vec::<u64>::new());
    let since_after = Filter {
        since: Some(u64::MAX),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &since_after), Vec::<u64>::new());
    let window = Filter {
        since: Some(0),
        until: Some(u64::MAX),
        ..Filter::default()
    };
    assert_eq!(seqs(&h.log, &window).len(), 9);
}

#[test]
fn state_is_the_registry_the_daemon_would_rebuild() {
    let h = history();
    let at_end = registry_at(&h.log, u64::MAX, false).unwrap();
    let mut replayed = Registry::new();
    for record in h.log.iter_from(1) {
        replayed.apply(&record.unwrap());
    }
    assert_eq!(at_end, replayed);
    assert_eq!(at_end.last_seq(), 9);
    assert_eq!(registry_at(&h.log, 0, false).unwrap().last_seq(), 0);

    // Stop before the deletion by rebuilding from a registry at seq 8: the same view code.
    let mut before = Registry::new();
    for record in h.log.iter_from(1).take(8) {
        before.apply(&record.unwrap());
    }
    let view = View::collect(&before, None);
    let json = view.to_json(1_795_000_000_000, before.last_seq());
    assert_eq!(json["seq"], 8);
    assert_eq!(json["at"], "2026-11-18T11:06:40.000Z");
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["id"], h.master.as_str());
    assert_eq!(accounts[1]["parent_id"], h.master.as_str());
    assert_eq!(accounts[1]["name"], "Child Co");
    let hooks = json["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    let w1 = hooks.iter().find(|w| w["id"] == h.w1.as_str()).unwrap();
    assert_eq!(w1["account_id"], h.child.as_str());
    assert_eq!(w1["doc"]["name"], "Renamed\nline");
    assert_eq!(w1["enabled"], true, "re-enabled at seq 6");
    let text = json.to_string();
    for secret in [MASTER_KEY, CHILD_KEY, TOKEN_HASH] {
        assert!(!text.contains(secret), "{secret} printed");
    }

    // Only the child's subtree.
    let child_view = View::collect(&before, Some(&h.child));
    let json = child_view.to_json(0, 8);
    assert_eq!(json["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(json["webhooks"].as_array().unwrap().len(), 1);

    let mut tree = Vec::new();
    view.write_tree(&mut tree, 0, 8, None).unwrap();
    let tree = String::from_utf8(tree).unwrap();
    assert!(tree.contains("2 accounts, 2 webhooks"), "{tree}");
    assert!(
        tree.contains(&format!("\n  account {} \"Child Co\"", h.child)),
        "{tree}"
    );
    assert!(tree.contains(&format!("\n    webhook {} ", h.w1)), "{tree}");
    for secret in [MASTER_KEY, CHILD_KEY, TOKEN_HASH] {
        assert!(!tree.contains(secret), "{secret} printed");
    }

    // After the deletion the child and its hook are gone.
    let gone = View::collect(&at_end, Some(&h.child));
    assert!(gone.accounts.is_empty());
    let mut text = Vec::new();
    gone.write_tree(&mut text, 0, 9, Some(&h.child)).unwrap();
    assert!(String::from_utf8(text).unwrap().contains("did not exist"));
}

#[test]
fn verify_summarises_an_intact_log() {
    let h = history();
    let summary = verify_log(&h.log, false).unwrap();
    assert_eq!(summary.records, 9);
    let line = summary_line(&summary);
    assert!(
        line.starts_with("intact: 9 records, seq 1..9, last hash "),
        "{line}"
    );
    assert_eq!(summary.last_hash.len(), 64);

    let empty_dir = tempfile::tempdir().unwrap();
    let empty = EventLog::open(&empty_dir.path().join("eventlog"), None).unwrap();
    let summary = verify_log(&empty, false).unwrap();
    assert_eq!(summary_line(&summary), "intact: empty log (0 records)");
}

#[test]
fn human_and_json_lines_of_one_record_agree() {
    let h = history();
    let record = h.log.iter_from(2).next().unwrap().unwrap();
    let parsed: Value = serde_json::from_str(&json_line(&record)).unwrap();
    assert_eq!(parsed["seq"], 2);
    assert_eq!(parsed["parent_id"], h.master.as_str());
    let line = human_line(&record);
    assert!(
        line.contains(&format!("account={} parent={}", h.child, h.master)),
        "{line}"
    );
}

/// A webhook with a secret rotated once, custom headers and a v2 key: the outputs of
/// `log replay` (both forms) and `log state` (both forms) hold none of them.
#[test]
fn no_secret_or_credential_is_printed_by_replay_or_state() {
    const FIRST: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SECOND: &str = "whsec_q6urq6urq6urq6urq6urq6urq6urq6ur";
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("eventlog"), None).unwrap();
    let master = AccountId::generate();
    let hook = WebhookId::generate();
    let secret_set = |secret: &str| Event::WebhookSecretSet {
        account_id: master.clone(),
        webhook_id: hook.clone(),
        secret: eventlog::Secret::new(secret),
    };
    log.append_blocking(vec![
        Event::AccountCreated {
            account_id: master.clone(),
            parent_id: None,
            api_key: MASTER_KEY.into(),
            doc: json!({"name": "Master Account"}),
        },
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: hook.clone(),
            doc: json!({"name": "signed", "uri": "http://example.com/h", "hook": "all",
                        "version": "v2", "security_settings": {"sha256_key": "kazoo-v2-key"},
                        "custom_request_headers": {"Authorization": "Bearer header-token"}}),
        },
        secret_set(FIRST),
        secret_set(SECOND),
    ])
    .unwrap();
    let mut outputs = vec![
        replay_text(&log, &Filter::default(), true),
        replay_text(&log, &Filter::default(), false),
    ];
    let registry = registry_at(&log, u64::MAX, false).unwrap();
    let view = View::collect(&registry, None);
    outputs.push(serde_json::to_string(&view.to_json(u64::MAX, registry.last_seq())).unwrap());
    let mut tree = Vec::new();
    view.write_tree(&mut tree, u64::MAX, registry.last_seq(), None)
        .unwrap();
    outputs.push(String::from_utf8(tree).unwrap());
    for output in &outputs {
        for secret in [
            FIRST,
            SECOND,
            "AAECAwQF",
            "q6urq6ur",
            "kazoo-v2-key",
            "header-token",
            MASTER_KEY,
        ] {
            assert!(!output.contains(secret), "{secret} printed in:\n{output}");
        }
    }
    let json_lines = &outputs[0];
    assert_eq!(
        json_lines.matches("\"secret\":\"[redacted]\"").count(),
        2,
        "{json_lines}"
    );
    assert!(json_lines.contains("\"kind\":\"webhook_secret_set\""));
    assert!(
        json_lines.contains("\"Authorization\":\"[redacted]\""),
        "names stay: {json_lines}"
    );
    let state = &outputs[2];
    assert!(state.contains("\"secret\":\"[redacted]\""), "{state}");
    assert!(state.contains("\"secret_rotated\":\""), "{state}");
    assert!(
        outputs[3].contains("secret [redacted] rotated "),
        "{}",
        outputs[3]
    );
}
