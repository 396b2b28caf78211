//! Router supervision on the real stack: an event log on a temporary directory wired by
//! [`Projection`] (its commit hook applies records to the registry and hands effects to
//! the router, as in the daemon), webhook actors, and a loopback HTTP receiver.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{AccountId, Event, EventId, EventLog, WebhookId};
use parking_lot::Mutex;
use ractor::ActorRef;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{RestartPolicy, RouterMsg};
use crate::projection::{PendingResume, Projection, RouterHandle};
use crate::webhook::{DeliverySettings, WebhookMsg};

/// How long any condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(20);
/// Timeout of one call to the router, in milliseconds.
const CALL_MS: u64 = 2_000;

const MAX_RESTARTS: usize = 3;

fn policy() -> RestartPolicy {
    RestartPolicy {
        max_restarts: MAX_RESTARTS,
        window: Duration::from_secs(60),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    }
}

/// Polls `probe` every [`POLL`] until it yields a value, for at most [`DEADLINE`] (and a
/// bounded number of rounds); panics naming `what` otherwise.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let rounds = DEADLINE.as_millis() / POLL.as_millis() + 1;
    for _ in 0..rounds {
        if let Some(value) = probe().await {
            return value;
        }
        if started.elapsed() > DEADLINE {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out after {DEADLINE:?} waiting until {what}");
}

// ---------------------------------------------------------------------------------------
// A loopback receiver

/// The only answer of the receiver.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
/// Bounds of what the receiver reads of one request.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Answers every request `200 OK` and records its `X-Event-ID`, in arrival order.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    // A stuck client only costs its own bounded task.
                    let _ = tokio::time::timeout(DEADLINE, serve_one(stream, &log)).await;
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen,
            task,
        }
    }

    /// How many requests carried this event id.
    fn count(&self, event_id: &str) -> usize {
        self.seen.lock().iter().filter(|e| *e == event_id).count()
    }

    async fn wait_for(&self, event_id: &str) {
        eventually(&format!("the receiver got {event_id}"), || async move {
            (self.count(event_id) > 0).then_some(())
        })
        .await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head to `\r\n\r\n`, then `content-length` bytes), records it and
/// answers.
async fn serve_one(mut stream: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(());
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut content_length = 0usize;
    let mut event_id = String::new();
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("x-event-id") {
                value.clone_into(&mut event_id);
            }
        }
    }
    let want = content_length.min(MAX_BODY);
    let mut body = buf.len() - head_end;
    while body < want {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body += n;
    }
    seen.lock().push(event_id);
    stream.write_all(RESPONSE).await?;
    stream.shutdown().await
}

// ---------------------------------------------------------------------------------------
// The stack

/// The log and the projection, wired as the daemon wires them.
struct Stack {
    _dir: TempDir,
    log: EventLog,
    projection: Projection,
    master: AccountId,
    hook: WebhookId,
    /// The webhook actors' idle stop (long, unless a test shortens it).
    idle_stop: Duration,
}

impl Stack {
    fn open() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let projection = Projection::new();
        let log = projection.open_log(&dir.path().join("eventlog")).unwrap();
        Stack {
            _dir: dir,
            log,
            projection,
            master: AccountId::generate(),
            hook: WebhookId::generate(),
            idle_stop: Duration::from_secs(600),
        }
    }

    async fn append(&self, events: Vec<Event>) {
        self.log.append(events).await.unwrap();
    }

    /// Spawns the router and only then lets the commit hook reach it.
    async fn spawn_router(&self) -> RouterHandle {
        self.spawn_router_resuming(PendingResume::AtStart).await
    }

    /// [`Stack::spawn_router`], resuming the deliveries owed from before as `resume` says.
    async fn spawn_router_resuming(&self, resume: PendingResume) -> RouterHandle {
        let settings = DeliverySettings {
            retry_base: Duration::from_millis(20),
            request_timeout: Duration::from_secs(5),
            failure_threshold: 100,
            failure_window: Duration::from_secs(60),
            max_in_flight_per_hook: 4,
            max_in_flight_total: 64,
            max_response_body: 4096,
            max_delivery_bytes: 1024 * 1024,
            allow_private_targets: true,
            secret_rotation_overlap: Duration::from_secs(60),
            idle_stop: self.idle_stop,
        };
        self.projection
            .start_router(&self.log, settings, policy(), resume)
            .await
            .unwrap()
    }

    fn hook_doc(&self, url: &str, name: &str) -> Value {
        json!({
            "name": name,
            "hook": "channel_create",
            "uri": url,
            "http_verb": "post",
            "format": "json",
            "retries": 2,
            "enabled": true,
        })
    }

    /// The master account and one `channel_create` webhook to `url`.
    async fn create_hook(&self, url: &str) {
        self.append(vec![
            Event::AccountCreated {
                account_id: self.master.clone(),
                parent_id: None,
                api_key: "router-test-key".into(),
                doc: json!({"name": "Master Account"}),
            },
            Event::WebhookCreated {
                account_id: self.master.clone(),
                webhook_id: self.hook.clone(),
                doc: self.hook_doc(url, "router test"),
            },
        ])
        .await;
    }

    /// Accepts a `channel_create` event of the master account.
    async fn accept(&self, event_id: &str) {
        self.append(vec![Event::EventAccepted {
            event_id: EventId::parse(event_id).unwrap(),
            account_id: self.master.clone(),
            hook_event: "channel_create".into(),
            payload: json!({"call_id": format!("call-{event_id}"), "call_direction": "inbound"}),
        }])
        .await;
    }

    fn pending(&self) -> usize {
        self.projection
            .registry()
            .read()
            .pending_for(&self.hook)
            .len()
    }

    /// Waits until every delivery owed to the hook is finished (its attempt logged).
    async fn wait_settled(&self) {
        eventually("no delivery is pending", || async move {
            (self.pending() == 0).then_some(())
        })
        .await;
    }

    async fn shutdown(self, handle: RouterHandle) {
        let timeout = Duration::from_secs(5);
        let router = handle.router().unwrap();
        router.stop_children_and_wait(None, Some(timeout)).await;
        handle.stop(timeout).await;
        self.log.close().unwrap();
    }
}

async fn child_of(router: &ActorRef<RouterMsg>, hook: &WebhookId) -> Option<ActorRef<WebhookMsg>> {
    ractor::call_t!(router, RouterMsg::ChildOf, CALL_MS, hook.clone()).unwrap()
}

async fn restart_count(router: &ActorRef<RouterMsg>, hook: &WebhookId) -> usize {
    ractor::call_t!(router, RouterMsg::RestartCount, CALL_MS, hook.clone()).unwrap()
}

/// Fails `child` and waits until the router has restarted it for the `n`-th time.
async fn fail_and_wait_restart(
    router: &ActorRef<RouterMsg>,
    hook: &WebhookId,
    child: &ActorRef<WebhookMsg>,
    n: usize,
) -> ActorRef<WebhookMsg> {
    child
        .cast(WebhookMsg::InjectFault(format!("test {n}")))
        .unwrap();
    let old = child.get_id();
    eventually(
        &format!("restart {n} of the webhook actor"),
        || async move {
            if restart_count(router, hook).await != n {
                return None;
            }
            child_of(router, hook).await.filter(|c| c.get_id() != old)
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_webhook_actor_is_restarted_and_keeps_delivering() {
    let receiver = Receiver::start().await;
    let stack = Stack::open();
    let handle = stack.spawn_router().await;
    let router = handle.router().unwrap();
    stack.create_hook(&receiver.url).await;
    assert_eq!(
        child_of(&router, &stack.hook).await.map(|c| c.get_id()),
        None
    );

    stack.accept("ev-1").await;
    receiver.wait_for("ev-1").await;
    stack.wait_settled().await;
    let first = child_of(&router, &stack.hook)
        .await
        .expect("the hook's actor runs after a delivery");
    assert_eq!(restart_count(&router, &stack.hook).await, 0);

    let second = fail_and_wait_restart(&router, &stack.hook, &first, 1).await;
    assert_ne!(second.get_id(), first.get_id());
    assert_eq!(restart_count(&router, &stack.hook).await, 1);

    stack.accept("ev-2").await;
    receiver.wait_for("ev-2").await;
    stack.wait_settled().await;
    // Delivered once each: ev-1 was finished before the fault, so the new actor had
    // nothing to resume.
    assert_eq!((receiver.count("ev-1"), receiver.count("ev-2")), (1, 1));
    let current = child_of(&router, &stack.hook).await.unwrap();
    assert_eq!(current.get_id(), second.get_id());
    assert_eq!(restart_count(&router, &stack.hook).await, 1);
    stack.shutdown(handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_restarts_the_router_gives_up_until_the_hook_changes() {
    let receiver = Receiver::start().await;
    let stack = Stack::open();
    let handle = stack.spawn_router().await;
    let router = handle.router().unwrap();
    stack.create_hook(&receiver.url).await;
    stack.accept("ev-1").await;
    receiver.wait_for("ev-1").await;
    stack.wait_settled().await;

    let mut child = child_of(&router, &stack.hook).await.unwrap();
    for n in 1..=MAX_RESTARTS {
        child = fail_and_wait_restart(&router, &stack.hook, &child, n).await;
    }
    // One failure more than allowed within the window.
    child
        .cast(WebhookMsg::InjectFault("test: one too many".into()))
        .unwrap();
    let (router_ref, hook) = (&router, &stack.hook);
    eventually("the failed actor is gone", || async move {
        child_of(router_ref, hook).await.is_none().then_some(())
    })
    .await;

    // An event for the hook now stays pending: the Deliver effect reaches the router
    // before this call (same mailbox, cast before `append` returned) and starts nothing.
    stack.accept("ev-held").await;
    assert!(child_of(&router, &stack.hook).await.is_none());
    assert_eq!(stack.pending(), 1);
    // Stays down: no restart is scheduled. Observed over three times the longest backoff
    // (a restart would come within `max_backoff`).
    let observe = policy().max_backoff * 3;
    let started = Instant::now();
    for _ in 0..=observe.as_millis() / POLL.as_millis() {
        if started.elapsed() > observe {
            break;
        }
        assert!(child_of(&router, &stack.hook).await.is_none());
        assert_eq!(restart_count(&router, &stack.hook).await, MAX_RESTARTS);
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(receiver.count("ev-held"), 0);
    assert_eq!(stack.pending(), 1);

    // A configuration change lifts the give-up: the next delivery starts an actor, which
    // also resumes the delivery held meanwhile.
    stack
        .append(vec![Event::WebhookUpdated {
            account_id: stack.master.clone(),
            webhook_id: stack.hook.clone(),
            doc: stack.hook_doc(&receiver.url, "router test, changed"),
        }])
        .await;
    stack.accept("ev-after").await;
    receiver.wait_for("ev-after").await;
    receiver.wait_for("ev-held").await;
    stack.wait_settled().await;
    assert_eq!(
        (receiver.count("ev-held"), receiver.count("ev-after")),
        (1, 1)
    );
    assert!(child_of(&router, &stack.hook).await.is_some());
    // The count is of restarts made; the give-up made none.
    assert_eq!(restart_count(&router, &stack.hook).await, MAX_RESTARTS);
    stack.shutdown(handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_when_the_router_starts_are_resumed() {
    let receiver = Receiver::start().await;
    let stack = Stack::open();
    // No router yet: only the registry learns of the delivery (as after a replay).
    stack.create_hook(&receiver.url).await;
    stack.accept("ev-early").await;
    assert_eq!(stack.pending(), 1);
    assert_eq!(receiver.count("ev-early"), 0);

    let handle = stack.spawn_router().await;
    let router = handle.router().unwrap();
    receiver.wait_for("ev-early").await;
    stack.wait_settled().await;
    assert_eq!(receiver.count("ev-early"), 1);
    assert!(child_of(&router, &stack.hook).await.is_some());
    stack.shutdown(handle).await;
}

/// The daemon's way: deliveries owed from before the start wait until the API is up
/// (`resume_pending`), then go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_when_the_router_starts_go_once_resumed() {
    let receiver = Receiver::start().await;
    let stack = Stack::open();
    stack.create_hook(&receiver.url).await;
    stack.accept("ev-owed").await;
    assert_eq!(stack.pending(), 1);

    let handle = stack.spawn_router_resuming(PendingResume::WhenAsked).await;
    let router = handle.router().unwrap();
    assert!(
        child_of(&router, &stack.hook).await.is_none(),
        "not before asked"
    );
    handle.resume_pending();
    receiver.wait_for("ev-owed").await;
    stack.wait_settled().await;
    assert_eq!(receiver.count("ev-owed"), 1);
    stack.shutdown(handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_fails_is_restarted_and_deliveries_go_on() {
    let receiver = Receiver::start().await;
    let stack = Stack::open();
    let handle = stack.spawn_router().await;
    let first = handle.router().unwrap();
    stack.create_hook(&receiver.url).await;
    stack.accept("ev-1").await;
    receiver.wait_for("ev-1").await;
    stack.wait_settled().await;
    let old_child = child_of(&first, &stack.hook)
        .await
        .expect("the hook's actor");

    first
        .cast(RouterMsg::InjectFault("chaos drill".into()))
        .unwrap();
    let second = eventually("a new router runs", || {
        let current = handle.router();
        let first_id = first.get_id();
        async move { current.filter(|r| r.get_id() != first_id) }
    })
    .await;
    // The failed router's webhook actor was stopped: only the new router serves the hook.
    eventually("the old webhook actor stopped", || {
        let status = old_child.get_status();
        async move { (status == ractor::ActorStatus::Stopped).then_some(()) }
    })
    .await;

    stack.accept("ev-2").await;
    receiver.wait_for("ev-2").await;
    stack.wait_settled().await;
    assert_eq!((receiver.count("ev-1"), receiver.count("ev-2")), (1, 1));
    assert!(child_of(&second, &stack.hook).await.is_some());
    stack.shutdown(handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_webhook_actor_stops_and_a_new_one_takes_the_next_delivery() {
    let receiver = Receiver::start().await;
    let mut stack = Stack::open();
    stack.idle_stop = Duration::from_millis(200);
    let handle = stack.spawn_router().await;
    let router = handle.router().unwrap();
    stack.create_hook(&receiver.url).await;
    stack.accept("ev-1").await;
    receiver.wait_for("ev-1").await;
    stack.wait_settled().await;
    // Nothing owed: the actor stops by itself, and the router forgets it.
    eventually("the idle actor stopped", || {
        let router = router.clone();
        let hook = stack.hook.clone();
        async move { child_of(&router, &hook).await.is_none().then_some(()) }
    })
    .await;
    // The next delivery starts a new actor.
    stack.accept("ev-2").await;
    receiver.wait_for("ev-2").await;
    stack.wait_settled().await;
    assert_eq!((receiver.count("ev-1"), receiver.count("ev-2")), (1, 1));
    stack.shutdown(handle).await;
}
