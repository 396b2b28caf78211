//! Fan-out: from an accepted event to its deliveries.
//!
//! - `fanout/apply/{10,100}_hooks`: `Registry::apply` of one `EventAccepted` that
//!   matches 10 or 100 hooks, producing as many `Effect::Deliver` (no I/O). Throughput
//!   is deliveries/s; events/s is that divided by the hooks.
//! - `fanout/in_process/10_hooks`: the stack wired exactly as `Daemon::start` wires it
//!   (RocksDB log with the daemon's indexer, commit hook → `Registry::apply` →
//!   `RouterMsg::Effects`, router and webhook actors, the delivery HTTP client) against
//!   a minimal loopback receiver. One iteration appends 100 events (one durable append, as ingest does) that each match
//!   10 hooks, and waits until the receiver got the 1,000 requests and every attempt
//!   record is in the log (no delivery pending). Throughput is deliveries/s.
//! - `fanout/http_e2e/10_hooks`: the same through the real daemon (`Daemon::start` +
//!   `serve` on `127.0.0.1:0`): setup through the REST API, each iteration one
//!   `POST /v2/events` of 100 events over loopback, done when the receiver got the
//!   1,000 requests and `/healthz` shows no pending delivery.
//!
//! Every wait has a deadline; only loopback is contacted. Run: `cargo bench --bench fanout`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{PendingResume, Projection, Registry, RestartPolicy, RouterHandle, RouterMsg};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use eventlog::{AccountId, Event, EventLog, Record};
use parking_lot::RwLock;
use serde_json::{json, Value};

#[allow(dead_code)]
mod support;

use support::{
    account_created, channel_create_payload, event_accepted, matching_hook_doc, serve_config,
    Receiver, RegistryBuilder,
};

/// Events per iteration of the end-to-end benches.
const EVENTS: u64 = 100;

/// Hooks of the end-to-end benches (every event matches all of them).
const HOOKS: u32 = 10;

/// Longest an iteration of the end-to-end benches may take.
const ITERATION_DEADLINE: Duration = Duration::from_secs(60);

/// How many applies share one registry before it is replaced by a fresh clone (so the
/// pending map stays bounded: at most this many events × hooks).
const APPLIES_PER_REGISTRY: u64 = 256;

const MASTER_KEY: &str = "bench-master-key-0123456789abcdef";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout/apply");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for hooks in [10u32, 100] {
        let mut b = RegistryBuilder::new();
        let master = b.account(None, "Master Account");
        let account = b.account(Some(&master), "account");
        for slot in 0..hooks {
            b.webhook(
                &account,
                matching_hook_doc(slot, &format!("http://127.0.0.1:9/hook/{slot}")),
            );
        }
        let base = b.finish();
        let template = channel_create_payload(&account, 1);
        group.throughput(Throughput::Elements(u64::from(hooks)));
        group.bench_function(format!("{hooks}_hooks"), |bencher| {
            bencher.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(APPLIES_PER_REGISTRY);
                    let mut registry = base.clone();
                    let first = registry.last_seq() + 1;
                    let records: Vec<Record> = (0..n)
                        .map(|i| Record {
                            seq: first + i,
                            time_ms: 1_800_000_000_000 + i,
                            event: event_accepted(&account, template.clone()),
                        })
                        .collect();
                    let start = Instant::now();
                    for record in &records {
                        let effects = registry.apply(record);
                        debug_assert_eq!(effects.len(), hooks as usize);
                        black_box(effects);
                    }
                    total += start.elapsed();
                    done += n;
                }
                total
            });
        });
    }
    group.finish();
}

/// The delivery stack of `Daemon::start`, on a temp dir, without the HTTP API.
struct Stack {
    log: EventLog,
    registry: Arc<RwLock<Registry>>,
    router: RouterHandle,
    account: AccountId,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start(receiver: &Receiver) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = serve_config(dir.path(), MASTER_KEY);
        // Wired as the daemon is (actors::Projection): the log's commit hook feeds the
        // registry and, once it runs, the router.
        let projection = Projection::new();
        let log = projection
            .open_log(&dir.path().join("eventlog"))
            .expect("open the log");
        let master = AccountId::generate();
        let account = AccountId::generate();
        let mut setup = vec![
            account_created(&master, None, "Master Account"),
            account_created(&account, Some(&master), "bench account"),
        ];
        for slot in 0..HOOKS {
            setup.push(Event::WebhookCreated {
                account_id: account.clone(),
                webhook_id: eventlog::WebhookId::generate(),
                doc: matching_hook_doc(slot, &receiver.uri(slot)),
            });
        }
        log.append(setup).await.expect("setup records");
        let router = projection
            .start_router(
                &log,
                config.delivery_settings(),
                RestartPolicy::default(),
                PendingResume::AtStart,
            )
            .await
            .expect("start the router");
        let registry = Arc::clone(projection.registry());
        Stack {
            log,
            registry,
            router,
            account,
            _dir: dir,
        }
    }

    /// Waits (polling every millisecond) until no delivery is pending.
    async fn wait_idle(&self, deadline: Instant) {
        loop {
            let pending = self.registry.read().pending_count();
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "deadline passed with {pending} deliveries pending"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn stop(self) {
        if let Some(router) = self.router.router() {
            let _ = router
                .call(RouterMsg::Drain, Some(Duration::from_secs(10)))
                .await;
        }
        self.router.stop(Duration::from_secs(5)).await;
        self.log.close().expect("close the log");
    }
}

fn bench_in_process(c: &mut Criterion) {
    let rt = runtime();
    let receiver = rt.block_on(Receiver::start());
    let stack = rt.block_on(Stack::start(&receiver));
    let template = channel_create_payload(&stack.account, 0);
    let deliveries = EVENTS * u64::from(HOOKS);

    let mut group = c.benchmark_group("fanout/in_process");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(deliveries));
    let (seq_before, batches_before) = (stack.log.last_seq(), stack.log.batches_written());
    let mut call = 0u64;
    group.bench_function(format!("{HOOKS}_hooks"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let events: Vec<Event> = (0..EVENTS)
                        .map(|_| {
                            call += 1;
                            let mut payload = template.clone();
                            payload.insert("call_id".into(), json!(format!("bench-call-{call}")));
                            event_accepted(&stack.account, payload)
                        })
                        .collect();
                    let target = receiver.count() + deliveries;
                    let start = Instant::now();
                    let deadline = start + ITERATION_DEADLINE;
                    stack.log.append(events).await.expect("append the events");
                    receiver.wait_for(target, deadline).await;
                    stack.wait_idle(deadline).await;
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
    let records = stack.log.last_seq() - seq_before;
    let batches = (stack.log.batches_written() - batches_before).max(1);
    eprintln!(
        "fanout/in_process: {records} records ({call} events, the rest attempts) in {batches} \
         synced group commits ({:.1} per commit)",
        records as f64 / batches as f64
    );
    rt.block_on(stack.stop());
    drop(receiver);
}

/// A client of the daemon's API holding a master token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// Logs in with the master key; returns the client and the master account's id.
    async fn login(base: String) -> (Api, String) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("API client");
        let reply = send(
            http.put(format!("{base}/v2/api_auth")),
            json!({"data": {"api_key": MASTER_KEY}}),
            201,
        )
        .await;
        let token = reply["auth_token"]
            .as_str()
            .expect("auth_token in the login reply")
            .to_owned();
        let master = reply["data"]["account_id"]
            .as_str()
            .expect("account_id in the login reply")
            .to_owned();
        (Api { http, base, token }, master)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token)
    }

    async fn pending(&self) -> u64 {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("GET /healthz");
        let body: Value =
            serde_json::from_slice(&response.bytes().await.expect("healthz body")).expect("json");
        body["data"]["pending_deliveries"]
            .as_u64()
            .expect("pending_deliveries in /healthz")
    }
}

/// Sends a JSON request, checks the status, returns the reply.
async fn send(request: reqwest::RequestBuilder, body: Value, status: u16) -> Value {
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).expect("json body"))
        .send()
        .await
        .expect("API request");
    let got = response.status().as_u16();
    let bytes = response.bytes().await.expect("API reply");
    assert_eq!(
        got,
        status,
        "API answered {got}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).expect("API reply is JSON")
}

fn bench_http_e2e(c: &mut Criterion) {
    let rt = runtime();
    let receiver = rt.block_on(Receiver::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = serve_config(&dir.path().join("data"), MASTER_KEY);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (api, account, server) = rt.block_on(async {
        let daemon = piston_webhooks::Daemon::start(config)
            .await
            .expect("start the daemon");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API on loopback");
        let base = format!("http://{}", listener.local_addr().expect("API address"));
        let server = tokio::spawn(daemon.serve(listener, async {
            let _ = stop_rx.await;
        }));
        let (api, master) = Api::login(base).await;
        let reply = send(
            api.request(reqwest::Method::PUT, &format!("/v2/accounts/{master}")),
            json!({"data": {"name": "bench account"}}),
            201,
        )
        .await;
        let account = reply["data"]["id"]
            .as_str()
            .expect("id of the created account")
            .to_owned();
        for slot in 0..HOOKS {
            send(
                api.request(
                    reqwest::Method::PUT,
                    &format!("/v2/accounts/{account}/webhooks"),
                ),
                json!({"data": matching_hook_doc(slot, &receiver.uri(slot))}),
                201,
            )
            .await;
        }
        (api, account, server)
    });
    let deliveries = EVENTS * u64::from(HOOKS);

    let mut group = c.benchmark_group("fanout/http_e2e");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(deliveries));
    let mut call = 0u64;
    group.bench_function(format!("{HOOKS}_hooks"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let events: Vec<Value> = (0..EVENTS)
                        .map(|_| {
                            call += 1;
                            let mut payload = channel_create_payload_for(&account, call);
                            payload.insert("event_id".into(), json!(format!("bench-{call}")));
                            Value::Object(payload)
                        })
                        .collect();
                    let body = json!({ "data": events });
                    let target = receiver.count() + deliveries;
                    let start = Instant::now();
                    let deadline = start + ITERATION_DEADLINE;
                    send(api.request(reqwest::Method::POST, "/v2/events"), body, 202).await;
                    receiver.wait_for(target, deadline).await;
                    loop {
                        let pending = api.pending().await;
                        if pending == 0 {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "deadline passed with {pending} deliveries pending"
                        );
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
    let _ = stop_tx.send(());
    rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(30), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the daemon stopped with an error: {e}"),
            Ok(Err(e)) => panic!("the daemon task failed: {e}"),
            Err(_) => panic!("the daemon did not stop within 30 s"),
        }
    });
    drop(receiver);
}

/// A `channel_create` payload of the account with id `account` (text), call `n`.
fn channel_create_payload_for(account: &str, n: u64) -> serde_json::Map<String, Value> {
    let id = AccountId::parse(account).expect("account id");
    channel_create_payload(&id, n)
}

criterion_group!(benches, bench_apply, bench_in_process, bench_http_e2e);
criterion_main!(benches);
