//! Kazoo's call events from a real RabbitMQ (127.0.0.1:5672, guest/guest): published to
//! `callevt` the way Kazoo's `kapi_call:publish_event/1` does, delivered to a real
//! receiver; malformed messages dead-lettered; nothing lost when the connection drops or
//! the daemon is killed with messages unacked.
//!
//! Every test uses its own queue names, so they run in parallel. Without a broker the
//! tests that need one fail under `CI=true` and elsewhere say loudly that they skip
//! ([`skip_or_fail_without`]); `rabbitmqctl`, which comes with the broker, failing is a
//! failure everywhere.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::{json, Value};

use crate::receiver::{Received, TestReceiver};
use crate::support::*;

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A name no other test (or run) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A publishing connection to the broker.
struct Bus {
    connection: Connection,
    channel: Channel,
}

impl Bus {
    /// Connects, or `None` when the broker is down and the test may skip (not under
    /// `CI=true`: there it fails, see [`skip_or_fail_without`]).
    async fn connect() -> Option<Bus> {
        let connect = Connection::connect(BROKER, ConnectionProperties::default());
        let connection = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(c)) => c,
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                skip_or_fail_without(
                    "RabbitMQ at 127.0.0.1:5672",
                    &format!(
                        "{why}; start it with `rabbitmq-server -detached` (.ci/run installs \
                         and starts it) and run the tests again"
                    ),
                );
                return None;
            }
        };
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        // `callevt` as Kazoo declares it, unless it is there already.
        let probe = connection.create_channel().await.unwrap();
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        if probe
            .exchange_declare(
                "callevt".into(),
                lapin::ExchangeKind::Topic,
                passive,
                FieldTable::default(),
            )
            .await
            .is_err()
        {
            connection
                .create_channel()
                .await
                .unwrap()
                .exchange_declare(
                    "callevt".into(),
                    lapin::ExchangeKind::Topic,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        Some(Bus {
            connection,
            channel,
        })
    }

    /// Publishes to `callevt` with Kazoo's routing key `call.EVENT_NAME.CALL_ID` (the
    /// call id `amqp_util:encode`d), persistent and mandatory, and waits for the
    /// broker's confirm that it was routed to a queue.
    async fn publish(&self, event_name: &str, call_id: &str, body: &[u8]) {
        let key = format!("call.{event_name}.{}", call_id.replace('.', "%2E"));
        let confirm = self
            .channel
            .basic_publish(
                "callevt".into(),
                key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(
            matches!(confirm, Confirmation::Ack(None)),
            "{key} was not routed to a queue: {confirm:?}"
        );
    }

    async fn publish_json(&self, msg: &Value) {
        let name = msg["Event-Name"].as_str().unwrap_or("CHANNEL_CREATE");
        let call_id = msg["Call-ID"].as_str().unwrap_or("none");
        self.publish(name, call_id, msg.to_string().as_bytes())
            .await;
    }

    /// Messages ready in `queue` (passive declare), `None` if it does not exist.
    async fn ready(&self, queue: &str) -> Option<(u32, u32)> {
        let channel = self.connection.create_channel().await.ok()?;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = channel.close(200, "ok".into()).await;
        Some((q.message_count(), q.consumer_count()))
    }

    /// Waits (30 s at most) until the daemon consumes from `queue`.
    async fn wait_for_consumer(&self, queue: &str) {
        let found = eventually(Duration::from_secs(30), || async {
            self.ready(queue)
                .await
                .filter(|(_, consumers)| *consumers > 0)
        })
        .await;
        assert!(found.is_some(), "the daemon never consumed from {queue}");
    }

    /// Takes every message in `queue` (acking them).
    async fn drain(&self, queue: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            match got {
                Some(m) => out.push(m.delivery.data),
                None => break,
            }
        }
        out
    }
}

/// Deletes a test's queues when dropped, also when the test fails: a leftover durable
/// queue bound to `callevt` would collect every later test's events. Declare it before
/// the daemon, so the daemon (which would declare them again) is gone first.
struct QueueGuard(Vec<String>);

impl QueueGuard {
    fn new(names: &[&str]) -> QueueGuard {
        QueueGuard(names.iter().map(|n| (*n).to_owned()).collect())
    }
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let connect = Connection::connect(BROKER, ConnectionProperties::default());
                let Ok(Ok(connection)) =
                    tokio::time::timeout(Duration::from_secs(10), connect).await
                else {
                    return;
                };
                if let Ok(channel) = connection.create_channel().await {
                    for name in &names {
                        let _ = channel
                            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                            .await;
                    }
                }
                let _ = connection.close(200, "ok".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The flags that point a daemon at the broker with these queues.
fn flags<'a>(queue: &'a str, dead: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut f = vec![
        "--allow-private-targets",
        "--retry-base-ms",
        "50",
        "--amqp-url",
        BROKER,
        "--amqp-queue",
        queue,
        "--amqp-dead-letter",
        dead,
    ];
    f.extend_from_slice(extra);
    f
}

/// A Kazoo call event as ecallmgr publishes it.
fn kazoo_event(name: &str, call_id: &str, account: &str, extra: Value) -> Value {
    let mut msg = json!({
        "Event-Category": "call_event",
        "Event-Name": name,
        "App-Name": "ecallmgr",
        "App-Version": "4.3.0",
        "Node": "ecallmgr@fs1.example.net",
        "Msg-ID": unique("msg"),
        "Call-ID": call_id,
        "Call-Direction": "inbound",
        "Caller-ID-Name": "ACME WIDGETS",
        "Caller-ID-Number": "+14155550123",
        "Callee-ID-Name": "Acme Main Line",
        "Callee-ID-Number": "+14155550100",
        "From": "+14155550123@203.0.113.10",
        "To": "+14155550100@acme.sip.example.net",
        "Request": "+14155550100@acme.sip.example.net",
        "Timestamp": 63931219252u64,
        "Custom-Channel-Vars": {
            "Account-ID": account,
            "Authorizing-ID": "c9b37fb174eed0b2d30a4b6572d6ca63",
            "Authorizing-Type": "device",
            "Owner-ID": "afaebf94e9d73d04e0e661e9148e7d89",
        },
    });
    if let (Value::Object(m), Value::Object(more)) = (&mut msg, extra) {
        m.extend(more);
    }
    msg
}

/// A daemon with a JSON `all` hook on the master account pointing at a receiver.
async fn setup(queue: &str, dead: &str, extra: &[&str]) -> (Daemon, String, TestReceiver) {
    let d = Daemon::start(&flags(queue, dead, extra));
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            json!({"name": "everything", "uri": format!("{}/kazoo", rx.url),
                   "hook": "all", "format": "json"}),
        )
        .await;
    (d, account, rx)
}

fn unique_event_ids(received: &[Received]) -> HashSet<String> {
    received
        .iter()
        .filter_map(|r| r.header("x-event-id").map(str::to_owned))
        .collect()
}

/// Waits until `n` distinct events were delivered (`timeout` at most).
async fn wait_unique(rx: &TestReceiver, n: usize, timeout: Duration) -> HashSet<String> {
    let got = eventually(timeout, || async {
        let ids = unique_event_ids(&rx.received());
        (ids.len() >= n).then_some(ids)
    })
    .await;
    got.unwrap_or_else(|| {
        panic!(
            "expected {n} distinct events, got {}",
            unique_event_ids(&rx.received()).len()
        )
    })
}

/// `rabbitmqctl` with a bound; its output. It comes with RabbitMQ, so when the broker
/// answers and it does not, the test fails: the checks that need it are never skipped.
#[track_caller]
fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `rabbitmqctl {}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`rabbitmqctl {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The broker's ids for the daemon's connections (named `piston-webhooks QUEUE`).
fn daemon_connections(queue: &str) -> Vec<String> {
    let listing = rabbitmqctl(&["-q", "list_connections", "pid", "client_properties"]);
    // 3.10 shows `{"connection_name","NAME"}`, older brokers `<<"NAME">>`.
    let name = format!("\"piston-webhooks {queue}\"");
    let (modern, older) = (format!("{name}}}"), format!("<<{name}>>"));
    listing
        .lines()
        .filter(|line| line.contains(&modern) || line.contains(&older))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `queue`'s messages ready and unacknowledged, as the broker counts them.
fn queue_counts(queue: &str) -> (u64, u64) {
    let listing = rabbitmqctl(&[
        "-q",
        "list_queues",
        "name",
        "messages_ready",
        "messages_unacknowledged",
    ]);
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("{queue}\t")))
        .unwrap_or_else(|| panic!("rabbitmqctl does not list {queue}: {listing}"));
    let count = |at: usize| -> u64 {
        line.split_whitespace()
            .nth(at)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count {at} in {line:?}"))
    };
    (count(1), count(2))
}

/// Waits (60 s at most) until `queue` holds nothing, ready or unacked: every message
/// published to it so far was taken and acked, so the daemon appended (or dropped, or
/// dead-lettered) each. With [`Daemon::wait_until_nothing_is_owed`] after it, what a
/// receiver got by then is all it will get of them.
async fn wait_until_consumed(queue: &str) {
    let empty = eventually(Duration::from_secs(60), || async {
        (queue_counts(queue) == (0, 0)).then_some(())
    })
    .await;
    assert!(empty.is_some(), "{queue} was not emptied within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_call_events_from_rabbitmq_are_delivered_with_kazoos_payloads() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let (queue, dead) = (unique("it-amqp-q"), unique("it-amqp-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    let (d, account, rx) = setup(&queue, &dead, &[]).await;
    bus.wait_for_consumer(&queue).await;

    let call = format!("{}.with-a-dot", unique("call"));
    bus.publish_json(&kazoo_event("CHANNEL_CREATE", &call, &account, json!({})))
        .await;
    bus.publish_json(&kazoo_event(
        "CHANNEL_ANSWER",
        &call,
        &account,
        json!({"Channel-Name": "loopback/2600-a"}),
    ))
    .await;
    bus.publish_json(&kazoo_event(
        "CHANNEL_DESTROY",
        &call,
        &account,
        json!({"Hangup-Cause": "NORMAL_CLEARING", "Hangup-Code": "sip:200",
               "Duration-Seconds": "51", "Ringing-Seconds": 6, "Billing-Seconds": 45}),
    ))
    .await;
    let park_call = unique("park");
    bus.publish_json(&json!({
        "Event-Category": "call_event", "Event-Name": "PARK_PARKED", "App-Name": "callflow",
        "App-Version": "4.3.0", "Node": "apps@kz1", "Msg-ID": unique("msg"),
        "Call-ID": park_call, "Parking-Slot": 1, "Caller-ID-Number": "+14155550123",
        "Custom-Channel-Vars": {"Account-ID": account},
    }))
    .await;
    // No account id: dropped (and acked), as Kazoo drops it.
    let mut orphan = kazoo_event("CHANNEL_CREATE", &unique("orphan"), &account, json!({}));
    orphan["Custom-Channel-Vars"] = json!({});
    bus.publish_json(&orphan).await;

    rx.wait_for(4).await;
    wait_until_consumed(&queue).await;
    d.wait_until_nothing_is_owed().await;
    let got = rx.received();
    assert_eq!(got.len(), 4, "the event without an account is dropped");
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    // One call's events arrive in order.
    let order: Vec<&str> = bodies
        .iter()
        .filter(|b| b["call_id"] == call.as_str())
        .map(|b| b["hook_event"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["channel_create", "channel_answer", "channel_destroy"]
    );
    let by_hook = |h: &str| bodies.iter().find(|b| b["hook_event"] == h).unwrap();
    let create = by_hook("channel_create");
    assert_eq!(create["account_id"], account.as_str());
    assert_eq!(create["call_direction"], "inbound");
    assert_eq!(create["caller_id_number"], "+14155550123");
    assert_eq!(create["callee_id_name"], "Acme Main Line");
    assert_eq!(create["authorizing_type"], "device");
    assert_eq!(create["owner_id"], "afaebf94e9d73d04e0e661e9148e7d89");
    assert_eq!(create["from"], "+14155550123@203.0.113.10");
    assert_eq!(create["timestamp"], 63931219252u64);
    assert_eq!(create["is_internal_leg"], false);
    assert_eq!(create["local_resource_used"], true);
    assert!(create.get("hangup_cause").is_none());
    assert!(create.get("Call-ID").is_none() && create.get("custom_channel_vars").is_none());
    assert_eq!(by_hook("channel_answer")["is_internal_leg"], true);
    let destroy = by_hook("channel_destroy");
    assert_eq!(destroy["hangup_cause"], "NORMAL_CLEARING");
    assert_eq!(destroy["hangup_code"], "sip:200");
    assert_eq!(destroy["duration_seconds"], 51);
    assert_eq!(destroy["billing_seconds"], 45);
    let park = by_hook("parking");
    assert_eq!(park["event_name"], "PARK_PARKED");
    assert_eq!(park["parking_slot"], 1);
    assert_eq!(park["call_id"], park_call.as_str());
    assert_eq!(park["account_id"], account.as_str());
    assert!(park.get("msg_id").is_none() && park.get("node").is_none());
    for r in &got {
        let id = r.header("x-event-id").unwrap();
        assert!(id.starts_with("kz-"), "{id}");
        assert_eq!(r.header("x-account-id"), Some(account.as_str()));
    }
    assert_eq!(unique_event_ids(&got).len(), 4);

    // The same message again (a producer retry or a redelivery) is not delivered twice.
    let again = kazoo_event(
        "CHANNEL_CREATE",
        &unique("dup"),
        &account,
        json!({"Msg-ID": "fixed-msg-id"}),
    );
    bus.publish_json(&again).await;
    bus.publish_json(&again).await;
    rx.wait_for(5).await;
    wait_until_consumed(&queue).await;
    d.wait_until_nothing_is_owed().await;
    assert_eq!(rx.received().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_5s_hold_and_unhold_events_are_delivered_in_call_order() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let (queue, dead) = (unique("it-amqp-hold-q"), unique("it-amqp-hold-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    let (d, account, rx) = setup(&queue, &dead, &[]).await;
    // Hooks for each of the two, besides the `all` hook of the setup.
    let master = d.master().await;
    let hold_rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            json!({"name": "holds", "uri": format!("{}/hold", hold_rx.url),
                   "hook": "channel_hold", "format": "json"}),
        )
        .await;
    bus.wait_for_consumer(&queue).await;

    let call = unique("held-call");
    for name in [
        "CHANNEL_ANSWER",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "CHANNEL_DESTROY",
    ] {
        bus.publish_json(&kazoo_event(name, &call, &account, json!({})))
            .await;
    }
    rx.wait_for(4).await;
    hold_rx.wait_for(1).await;
    wait_until_consumed(&queue).await;
    d.wait_until_nothing_is_owed().await;
    let bodies: Vec<Value> = rx.received().iter().map(Received::json).collect();
    let order: Vec<&str> = bodies
        .iter()
        .map(|b| b["hook_event"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "channel_answer",
            "channel_hold",
            "channel_unhold",
            "channel_destroy"
        ]
    );
    let hold = &bodies[1];
    assert_eq!(hold["call_id"], call.as_str());
    assert_eq!(hold["account_id"], account.as_str());
    assert_eq!(hold["caller_id_number"], "+14155550123");
    assert_eq!(hold["authorizing_type"], "device");
    assert!(hold.get("hangup_cause").is_none());
    let held = hold_rx.received();
    assert_eq!(held.len(), 1, "the hold hook gets the hold only");
    assert_eq!(held[0].json()["hook_event"], "channel_hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dead_lettered_and_the_stream_goes_on() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let (queue, dead) = (unique("it-amqp-q"), unique("it-amqp-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    let (_d, account, rx) = setup(&queue, &dead, &["--max-body-bytes", "4096"]).await;
    bus.wait_for_consumer(&queue).await;

    let call = unique("call");
    bus.publish("CHANNEL_CREATE", &call, b"this is not JSON")
        .await;
    let unknown = kazoo_event("CHANNEL_EXECUTE", &call, &account, json!({}));
    bus.publish("CHANNEL_CREATE", &call, unknown.to_string().as_bytes())
        .await;
    let bad_account = kazoo_event("CHANNEL_ANSWER", &call, "not-an-account", json!({}));
    bus.publish_json(&bad_account).await;
    let too_big = kazoo_event(
        "CHANNEL_ANSWER",
        &call,
        &account,
        json!({"Padding": "x".repeat(5000)}),
    );
    bus.publish_json(&too_big).await;
    bus.publish_json(&kazoo_event("CHANNEL_DESTROY", &call, &account, json!({})))
        .await;

    let got = rx.wait_for(1).await;
    assert_eq!(got[0].json()["hook_event"], "channel_destroy");
    let dead_bodies = eventually(Duration::from_secs(20), || async {
        bus.ready(&dead)
            .await
            .filter(|(n, _)| *n >= 4)
            .map(|(n, _)| n)
    })
    .await;
    assert_eq!(dead_bodies, Some(4), "four messages dead-lettered");
    // Rejected without requeue: nothing is held back in the main queue (other tests'
    // events pass through it too, as every test's queue is bound to `callevt`).
    let drained = eventually(Duration::from_secs(10), || async {
        bus.ready(&queue).await.filter(|(n, _)| *n == 0)
    })
    .await;
    assert!(drained.is_some(), "the main queue holds nothing back");
    let bodies = bus.drain(&dead).await;
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[0], b"this is not JSON");
    assert!(String::from_utf8_lossy(&bodies[1]).contains("CHANNEL_EXECUTE"));
    assert!(String::from_utf8_lossy(&bodies[2]).contains("not-an-account"));
    assert!(bodies[3].len() > 5000);
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_daemons_connection_mid_stream_loses_nothing() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let (queue, dead) = (unique("it-amqp-q"), unique("it-amqp-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    let (_d, account, rx) = setup(&queue, &dead, &[]).await;
    bus.wait_for_consumer(&queue).await;
    let before = daemon_connections(&queue);
    assert_eq!(before.len(), 1, "one daemon connection: {before:?}");

    const N: usize = 300;
    for i in 0..N / 2 {
        let call = format!("{queue}-{i}");
        bus.publish_json(&kazoo_event("CHANNEL_CREATE", &call, &account, json!({})))
            .await;
    }
    wait_unique(&rx, 10, Duration::from_secs(30)).await;
    // The broker drops the daemon's connection mid-stream...
    rabbitmqctl(&["close_connection", &before[0], "piston integration test"]);
    // ...and the rest is published while the daemon reconnects.
    for i in N / 2..N {
        let call = format!("{queue}-{i}");
        bus.publish_json(&kazoo_event("CHANNEL_CREATE", &call, &account, json!({})))
            .await;
    }
    let ids = wait_unique(&rx, N, Duration::from_secs(90)).await;
    assert_eq!(ids.len(), N);
    let after = daemon_connections(&queue);
    assert_eq!(after.len(), 1, "the daemon reconnected: {after:?}");
    assert_ne!(after, before, "a new connection");
    // Every call delivered, none invented.
    let calls: HashSet<String> = rx
        .received()
        .iter()
        .map(|r| r.json()["call_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(calls.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_unacked_messages_loses_nothing() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let (queue, dead) = (unique("it-amqp-q"), unique("it-amqp-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    let (d, account, rx) = setup(&queue, &dead, &[]).await;
    bus.wait_for_consumer(&queue).await;

    const N: usize = 400;
    let msgs: Vec<Value> = (0..N)
        .map(|i| {
            kazoo_event(
                "CHANNEL_CREATE",
                &format!("{queue}-{i}"),
                &account,
                json!({}),
            )
        })
        .collect();
    for m in &msgs[..50] {
        bus.publish_json(m).await;
    }
    wait_unique(&rx, 10, Duration::from_secs(30)).await;
    // Freeze the daemon: the broker keeps sending it what we publish (up to the
    // prefetch), so those messages are unacked when it dies.
    let pid = d.pid().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    for m in &msgs[50..] {
        bus.publish_json(m).await;
    }
    let (ready, unacked) = queue_counts(&queue);
    eprintln!("queue before kill -9: {ready} ready, {unacked} unacked");
    assert!(unacked > 0, "messages were unacked when the daemon died");
    let _d = d.crash_and_restart(&flags(&queue, &dead, &[]));
    let ids = wait_unique(&rx, N, Duration::from_secs(90)).await;
    assert_eq!(ids.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_http_ingest_work_while_rabbitmq_is_unreachable() {
    // Nothing listens on port 1: the consumer retries with backoff in the background.
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:1/%2f",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            json!({"name": "h", "uri": rx.url, "hook": "channel_create", "format": "json"}),
        )
        .await;
    master
        .send(
            "POST",
            "/v2/events",
            Some(
                json!({"data": {"hook_event": "channel_create", "account_id": account,
                                 "call_id": "http-while-amqp-down"}}),
            ),
        )
        .await
        .expect(202);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].json()["call_id"], "http-while-amqp-down");
    d.client().get("/healthz").await.expect(200);
}

#[test]
fn a_bad_amqp_configuration_is_refused_at_start() {
    for args in [
        &["--amqp-url", "http://not-amqp"][..],
        &[
            "--amqp-url",
            BROKER,
            "--amqp-queue",
            "same",
            "--amqp-dead-letter",
            "same",
        ],
        &["--amqp-url", BROKER, "--amqp-prefetch", "0"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_piston-webhooks"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("amqp"), "{args:?}: {err}");
        assert!(
            !err.contains("guest:guest"),
            "the password is not shown: {err}"
        );
    }
}

/// Ingest rate from AMQP: publishes N events while no daemon consumes, then times how
/// long a daemon takes to empty the queue. Run with
/// `cargo test --test it amqp_ingest_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn amqp_ingest_rate() {
    let Some(bus) = Bus::connect().await else {
        return;
    };
    let n: usize = std::env::var("PISTON_AMQP_RATE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (queue, dead) = (unique("it-amqp-rate"), unique("it-amqp-rate-dead"));
    let _cleanup = QueueGuard::new(&[&queue, &dead]);
    // Let a daemon declare and bind the queue, then stop it.
    let mut d = Daemon::start(&flags(&queue, &dead, &[]));
    bus.wait_for_consumer(&queue).await;
    let account = d.master().await.own_account().await;
    let before = last_seq(&d).await;
    d.stop();
    let started = Instant::now();
    let events: Vec<Value> = (0..n)
        .map(|i| kazoo_event("CHANNEL_CREATE", &format!("rate-{i}"), &account, json!({})))
        .collect();
    for chunk in events.chunks(500) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for m in chunk {
            let key = format!("call.CHANNEL_CREATE.{}", m["Call-ID"].as_str().unwrap());
            let confirm = bus
                .channel
                .basic_publish(
                    "callevt".into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    m.to_string().as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap();
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(_)));
        }
    }
    eprintln!("published {n} in {:?}", started.elapsed());
    // From the moment the restarted daemon serves until every event is in its log.
    let d2 = Daemon::start_in(&d.data_dir, &flags(&queue, &dead, &[]));
    let started = Instant::now();
    let target = before.map(|b| b + n as u64);
    let done = eventually(Duration::from_secs(600), || async {
        match target {
            Some(t) => (last_seq(&d2).await? >= t).then_some(()),
            // Without `last_seq` in /healthz: until the queue is empty (up to a
            // prefetch of events may still be in flight then).
            None => bus.ready(&queue).await.filter(|(r, _)| *r == 0).map(|_| ()),
        }
    })
    .await;
    assert!(done.is_some(), "the daemon took every event within 600 s");
    let took = started.elapsed();
    eprintln!(
        "AMQP ingest: {n} events appended in {took:?}: {:.0} events/s",
        n as f64 / took.as_secs_f64()
    );
    drop(d2);
}

/// The log's last sequence number, as `/healthz` reports it (if it does).
async fn last_seq(d: &Daemon) -> Option<u64> {
    d.client().get("/healthz").await.data()["last_seq"].as_u64()
}
