//! Writes a synthetic event log for start-up measurements (BENCHMARKS.md):
//! `cargo run --release --example synth_log -- DATA_DIR RECORDS [ACCOUNTS [HOOKS_PER_ACCOUNT]]`
//! (defaults: 100 accounts × 10 webhooks).
//!
//! The history looks like production traffic: a master account, child accounts with
//! their webhooks, then accepted call events, each followed by the attempts that finish
//! its deliveries (so the registry ends with nothing pending, as on a healthy system).
//! Records go through the real log (hash chain, indexes), in synced batches.

use std::path::PathBuf;
use std::time::Instant;

use eventlog::{
    AccountId, Attempt, AttemptResult, Event, EventId, EventLog, OpenOptions, WebhookId,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: synth_log DATA_DIR RECORDS")?);
    let records: u64 = args
        .next()
        .ok_or("usage: synth_log DATA_DIR RECORDS")?
        .parse()?;
    let accounts: u32 = args.next().map_or(Ok(100), |a| a.parse())?;
    let hooks_per_account: u32 = args.next().map_or(Ok(10), |h| h.parse())?;
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("master-api-key"), "synth-master-key\n")?;
    let log = EventLog::open_with(
        &dir.join("eventlog"),
        OpenOptions {
            on_commit: None,
            indexer: Some(actors::index::indexer()),
            on_write: None,
            indexer_version: actors::index::INDEXER_VERSION,
        },
    )?;
    let started = Instant::now();
    let master = AccountId::generate();
    let mut batch = vec![Event::AccountCreated {
        account_id: master.clone(),
        parent_id: None,
        api_key: "synth-master-key".into(),
        doc: json!({"name": "Master Account"}),
    }];
    let mut hooks: Vec<(AccountId, Vec<WebhookId>)> = Vec::new();
    for a in 0..accounts {
        let account = AccountId::generate();
        batch.push(Event::AccountCreated {
            account_id: account.clone(),
            parent_id: Some(master.clone()),
            api_key: hex_key(a),
            doc: json!({"name": format!("account {a}")}),
        });
        let mut ids = Vec::new();
        for h in 0..hooks_per_account {
            let id = WebhookId::generate();
            batch.push(Event::WebhookCreated {
                account_id: account.clone(),
                webhook_id: id.clone(),
                doc: json!({"name": format!("hook {h}"), "uri": "http://receiver.example.com/h",
                            "hook": "channel_create", "http_verb": "post", "format": "json",
                            "retries": 2, "enabled": true, "include_internal_legs": true}),
            });
            ids.push(id);
        }
        hooks.push((account, ids));
    }
    let mut written = batch.len() as u64;
    for chunk in batch.chunks(4_000) {
        log.append_blocking(chunk.to_vec())?;
    }
    batch.clear();
    let mut n: u64 = 0;
    let mut seq = written;
    while written < records {
        let (account, ids) = &hooks[(n % hooks.len() as u64) as usize];
        let event_id = EventId::parse(&format!("synth-{n}"))?;
        seq += 1;
        let event_seq = seq;
        batch.push(Event::EventAccepted {
            event_id: event_id.clone(),
            account_id: account.clone(),
            hook_event: "channel_create".into(),
            payload: json!({"hook_event": "channel_create", "account_id": account.as_str(),
                            "call_id": format!("call-{n}"), "call_direction": "inbound",
                            "caller_id_number": "1001", "callee_id_number": "2002"}),
        });
        for id in ids {
            seq += 1;
            batch.push(Event::DeliveryAttempted(Attempt {
                event_seq,
                event_id: event_id.clone(),
                webhook_id: id.clone(),
                account_id: account.clone(),
                hook_event: "channel_create".into(),
                uri: "http://receiver.example.com/h".into(),
                method: "post".into(),
                result: AttemptResult::Success,
                reason: None,
                client_error: None,
                response_code: Some(200),
                response_body: None,
                retries_left: 2,
                latency_ms: 3,
                next_try_at_ms: None,
                local_fault: false,
            }));
        }
        written += 1 + ids.len() as u64;
        n += 1;
        if batch.len() >= 4_000 {
            log.append_blocking(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        log.append_blocking(batch)?;
    }
    log.close()?;
    eprintln!(
        "wrote {} records ({n} events) in {:.1} s",
        log.last_seq(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn hex_key(a: u32) -> String {
    format!("{a:064x}")
}
