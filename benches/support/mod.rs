//! Fixtures shared by the benches (each bench uses part of them): realistic call-event
//! payloads, a fixed mix of webhook documents, registries built by applying records (as
//! replay does), a daemon configuration parsed like the CLI's, and a minimal loopback
//! HTTP receiver that counts requests.
//!
//! Everything here contacts loopback only, and every loop is bounded (the receiver's
//! tasks end when it is dropped or its peer closes).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{Effect, Registry};
use eventlog::{AccountId, Event, EventId, Record, WebhookId};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A `channel_create` payload like Kazoo's (18 keys), for `account` and call `n`.
pub(crate) fn channel_create_payload(account: &AccountId, n: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "hook_event": "channel_create",
        "account_id": account.as_str(),
        "call_id": format!("bench-call-{n}"),
        "call_direction": "inbound",
        "caller_id_name": "ACME WIDGETS",
        "caller_id_number": "+14155550123",
        "callee_id_name": "Acme Main Line",
        "callee_id_number": "+14155550100",
        "from": "+14155550123@203.0.113.10",
        "to": "+14155550100@acme.sip.example.net",
        "request": "+14155550100@acme.sip.example.net",
        "inception": "+14155550100@acme.sip.example.net",
        "is_internal_leg": false,
        "local_resource_used": false,
        "emergency_resource_used": false,
        "call_forwarded": false,
        "reseller_id": "3982b8524a6e08830aaee43d22dc1590",
        "timestamp": "63931219201",
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// A `channel_destroy` payload like Kazoo's: 28 top-level keys, with nested
/// `custom_channel_vars` (and an object and a list inside it).
pub(crate) fn channel_destroy_payload(account: &AccountId, n: u64) -> Map<String, Value> {
    let custom_channel_vars = json!({
        "account_id": account.as_str(),
        "authorizing_id": "c9b37fb174eed0b2d30a4b6572d6ca63",
        "authorizing_type": "device",
        "bridge_id": "7c1d5e0a-3b92-4f6e-9a1d-2e8b5c4f9a11",
        "call_interaction_id": "63931219201-4ab1c2d3",
        "channel_authorized": true,
        "ecallmgr_node": "ecallmgr@fs1.acme.example.net",
        "global_resource": false,
        "owner_id": "afaebf94e9d73d04e0e661e9148e7d89",
        "realm": "acme.sip.example.net",
        "username": "user_reception 1001",
        "media_names": ["vm-greeting", "hold music/1"],
        "caller_screen": {"enabled": false, "name": "Front desk & co", "tags": ["vip", "support"]},
    });
    let Value::Object(mut map) = json!({
        "hook_event": "channel_destroy",
        "account_id": account.as_str(),
        "call_id": format!("e3a4b5c6-d7e8-4f90-a1b2-{n:012}"),
        "call_direction": "outbound",
        "caller_id_name": "ACME WIDGETS",
        "caller_id_number": "+14155550123",
        "callee_id_name": "Reception",
        "callee_id_number": "1001",
        "from": "+14155550123@acme.sip.example.net",
        "to": "reception1001@acme.sip.example.net",
        "request": "reception1001@acme.sip.example.net",
        "inception": "+14155550100@acme.sip.example.net",
        "is_internal_leg": false,
        "other_leg_call_id": "7c1d5e0a-3b92-4f6e-9a1d-2e8b5c4f9a11",
        "authorizing_id": "c9b37fb174eed0b2d30a4b6572d6ca63",
        "authorizing_type": "device",
        "owner_id": "afaebf94e9d73d04e0e661e9148e7d89",
        "local_resource_used": false,
        "emergency_resource_used": false,
        "call_forwarded": false,
        "reseller_id": "3982b8524a6e08830aaee43d22dc1590",
        "timestamp": "63931219252",
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_code": "sip:200",
        "duration_seconds": 50,
        "ringing_seconds": 5,
        "billing_seconds": 45,
    }) else {
        unreachable!("a JSON object literal")
    };
    map.insert("custom_channel_vars".to_owned(), custom_channel_vars);
    map
}

/// The hook kinds the mixed documents cycle through (with `all`).
const HOOK_KINDS: [&str; 8] = [
    "channel_create",
    "channel_answer",
    "channel_destroy",
    "all",
    "channel_bridge",
    "object",
    "notifications",
    "parking",
];

/// The `(http_verb, format)` pairs hooks cycle through.
const VERBS: [(&str, &str); 4] = [
    ("post", "json"),
    ("post", "form-data"),
    ("put", "json"),
    ("get", "form-data"),
];

/// A webhook document as the API stores it (defaults filled), from a fixed mix by
/// `slot`: every hook kind, every verb and format, modifiers on one hook in three (some
/// matching [`channel_create_payload`], some not), `include_subaccounts` on one in four,
/// `include_internal_legs: false` on one in five, and one in twenty disabled.
pub(crate) fn mixed_hook_doc(slot: u32, uri: &str) -> Value {
    let kind = HOOK_KINDS[slot as usize % HOOK_KINDS.len()];
    let (verb, format) = VERBS[slot as usize % VERBS.len()];
    let mut doc = json!({
        "name": format!("bench hook {slot}"),
        "uri": uri,
        "hook": kind,
        "http_verb": verb,
        "format": format,
        "retries": 2,
        "enabled": slot % 20 != 19,
        "include_internal_legs": !slot.is_multiple_of(5),
    });
    if slot % 4 == 1 {
        doc["include_subaccounts"] = Value::Bool(true);
    }
    if slot % 3 == 2 {
        doc["modifiers"] = match (slot / 3) % 3 {
            0 => json!({"call_direction": "inbound"}),
            1 => json!({"caller_id_number": ["+14155550123", "1001"]}),
            _ => {
                json!({"call_direction": ["inbound", "outbound"], "request": "2000@acme.sip.example.net"})
            }
        };
    }
    match kind {
        "object" => doc["custom_data"] = json!({"type": "user", "action": "doc_edited"}),
        "notifications" => doc["custom_data"] = json!({"type": "voicemail_new"}),
        _ => {}
    }
    doc
}

/// A webhook document that matches every [`channel_create_payload`] event: hooks
/// alternate `channel_create` and `all`, cycle through every verb and format, and one in
/// three has modifiers the event satisfies (the load test's mix).
pub(crate) fn matching_hook_doc(slot: u32, uri: &str) -> Value {
    let (verb, format) = VERBS[slot as usize % VERBS.len()];
    let mut doc = json!({
        "name": format!("bench hook {slot}"),
        "uri": uri,
        "hook": if slot.is_multiple_of(2) { "channel_create" } else { "all" },
        "http_verb": verb,
        "format": format,
        "retries": 2,
        "enabled": true,
        "include_internal_legs": true,
    });
    if slot % 3 == 2 {
        doc["modifiers"] = json!({"call_direction": ["inbound", "outbound"]});
    }
    doc
}

/// Builds a [`Registry`] the way replay does: by applying records in sequence order.
pub(crate) struct RegistryBuilder {
    registry: Registry,
    seq: u64,
    time_ms: u64,
}

impl RegistryBuilder {
    pub(crate) fn new() -> Self {
        RegistryBuilder {
            registry: Registry::new(),
            seq: 0,
            time_ms: 1_700_000_000_000,
        }
    }

    /// Applies `event` as the next record.
    pub(crate) fn apply(&mut self, event: Event) -> Vec<Effect> {
        self.seq += 1;
        self.time_ms += 1;
        self.registry.apply(&Record {
            seq: self.seq,
            time_ms: self.time_ms,
            event,
        })
    }

    /// Creates an account (the master when `parent` is `None`).
    pub(crate) fn account(&mut self, parent: Option<&AccountId>, name: &str) -> AccountId {
        let id = AccountId::generate();
        self.apply(account_created(&id, parent, name));
        id
    }

    /// Creates a webhook in `account`.
    pub(crate) fn webhook(&mut self, account: &AccountId, doc: Value) -> WebhookId {
        let id = WebhookId::generate();
        self.apply(Event::WebhookCreated {
            account_id: account.clone(),
            webhook_id: id.clone(),
            doc,
        });
        id
    }

    pub(crate) fn finish(self) -> Registry {
        self.registry
    }
}

/// The `AccountCreated` event of a new account.
pub(crate) fn account_created(id: &AccountId, parent: Option<&AccountId>, name: &str) -> Event {
    Event::AccountCreated {
        account_id: id.clone(),
        parent_id: parent.cloned(),
        api_key: hex_key(id),
        doc: json!({"name": name}),
    }
}

fn hex_key(id: &AccountId) -> String {
    format!("key-{id}")
}

/// An `EventAccepted` for a fresh event with `payload`.
pub(crate) fn event_accepted(account: &AccountId, payload: Map<String, Value>) -> Event {
    let hook_event = payload
        .get("hook_event")
        .and_then(Value::as_str)
        .unwrap_or("channel_create")
        .to_owned();
    Event::EventAccepted {
        event_id: EventId::generate(),
        account_id: account.clone(),
        hook_event,
        payload: Value::Object(payload),
    }
}

/// The daemon's configuration for a bench: parsed from command-line flags exactly as
/// `piston-webhooks serve` parses them (so new options get their defaults), on `dir`,
/// loopback targets allowed, quick retries, no auto-disable.
pub(crate) fn serve_config(dir: &Path, master_key: &str) -> piston_webhooks::ServeConfig {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: piston_webhooks::ServeConfig,
    }

    let dir = dir.to_string_lossy().into_owned();
    let cli = Cli::try_parse_from([
        "bench",
        "--data-dir",
        dir.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--master-api-key",
        master_key,
        "--allow-private-targets",
        "--retry-base-ms",
        "100",
        "--failure-threshold",
        "1000000",
    ])
    .expect("bench flags parse");
    cli.serve
}

/// A loopback HTTP/1.1 receiver that answers every request `200` with an empty body,
/// keeping connections alive, and counts the requests.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    count: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// The receiver's one answer.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// Longest request head the receiver reads before closing the connection.
const MAX_HEAD: usize = 64 * 1024;

impl Receiver {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub(crate) async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver on loopback");
        let addr = listener.local_addr().expect("receiver address");
        let count = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&count);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            // Ends when the receiver is dropped (the task is aborted, and with it the
            // connection tasks it owns) or the listener fails.
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve_connection(stream, Arc::clone(&counter)));
                while connections.try_join_next().is_some() {}
            }
        });
        Receiver { addr, count, task }
    }

    /// Requests answered so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// The URI of hook `slot` on this receiver.
    pub(crate) fn uri(&self, slot: u32) -> String {
        format!("http://{}/hook/{slot}", self.addr)
    }

    /// Waits until `target` requests were answered, polling every millisecond; panics
    /// with what arrived when `deadline` passes first.
    pub(crate) async fn wait_for(&self, target: u64, deadline: Instant) {
        while self.count() < target {
            assert!(
                Instant::now() < deadline,
                "deadline passed: {} of {target} requests arrived",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the requests of one connection until the peer closes it or sends something
/// this receiver does not read (a chunked body, an oversized head).
async fn serve_connection(mut stream: TcpStream, count: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Every complete request in the buffer (pipelining included).
        while let Some(head_end) = find(&buf, b"\r\n\r\n") {
            let Some(body_len) = body_length(&buf[..head_end]) else {
                return;
            };
            let total = head_end + 4 + body_len;
            if buf.len() < total {
                break;
            }
            buf.drain(..total);
            count.fetch_add(1, Ordering::AcqRel);
            if stream.write_all(RESPONSE).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_HEAD && find(&buf, b"\r\n\r\n").is_none() {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body length a request head announces: its `content-length` (0 without one);
/// `None` for a chunked body, which this receiver does not read.
fn body_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    let mut length = 0;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
    }
    Some(length)
}
