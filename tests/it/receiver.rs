//! `TestReceiver`: a real HTTP server on 127.0.0.1:0 that records every request it gets
//! and answers with a status (and delay) the test can change at any time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn query(&self) -> &str {
        self.uri.split_once('?').map_or("", |(_, q)| q)
    }
}

/// How the receiver answers a request.
#[derive(Clone)]
pub struct Behaviour {
    /// Statuses to answer in turn; when empty, `default_status`.
    pub scripted: VecDeque<u16>,
    pub default_status: u16,
    /// A delay for requests whose body or query contains this text.
    pub slow_when_contains: Option<(String, Duration)>,
    /// The next request whose body or query contains this text gets a 500.
    pub fail_once_when_contains: Option<String>,
}

#[derive(Clone)]
struct Shared {
    /// Requests that arrived (counted before any delay).
    arrived: Arc<std::sync::atomic::AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

/// A receiver running on loopback until dropped.
pub struct TestReceiver {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let shared = Shared {
            arrived: Arc::default(),
            received: Arc::new(Mutex::new(Vec::new())),
            behaviour: Arc::new(Mutex::new(Behaviour {
                scripted: VecDeque::new(),
                default_status: 200,
                slow_when_contains: None,
                fail_once_when_contains: None,
            })),
        };
        let app = axum::Router::new()
            .fallback(record)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestReceiver {
            url: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// Answers these statuses in turn, then `default`.
    pub fn script(&self, statuses: &[u16], default: u16) {
        let mut b = self.shared.behaviour.lock().unwrap();
        b.scripted = statuses.iter().copied().collect();
        b.default_status = default;
    }

    /// Delays requests whose body or query contains `needle`.
    pub fn slow_when_contains(&self, needle: &str, delay: Duration) {
        self.shared.behaviour.lock().unwrap().slow_when_contains = Some((needle.to_owned(), delay));
    }

    /// The next request containing `needle` gets a 500, whatever the script says.
    pub fn fail_once_when_contains(&self, needle: &str) {
        self.shared
            .behaviour
            .lock()
            .unwrap()
            .fail_once_when_contains = Some(needle.to_owned());
    }

    /// Requests that arrived so far, answered or not.
    pub fn arrived(&self) -> usize {
        self.shared
            .arrived
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (30 s at most); returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let got = crate::support::eventually(Duration::from_secs(30), || async {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await;
        got.unwrap_or_else(|| panic!("expected {n} requests, got {}", self.received().len()))
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    shared
        .arrived
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (status, delay) = {
        let mut b = shared.behaviour.lock().unwrap();
        let text = format!("{uri} {}", String::from_utf8_lossy(&body));
        let fail_now = b
            .fail_once_when_contains
            .as_ref()
            .is_some_and(|needle| text.contains(needle.as_str()));
        let status = if fail_now {
            b.fail_once_when_contains = None;
            500
        } else {
            b.scripted.pop_front().unwrap_or(b.default_status)
        };
        let delay = b
            .slow_when_contains
            .as_ref()
            .filter(|(needle, _)| text.contains(needle.as_str()))
            .map(|(_, d)| *d);
        (status, delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    shared.received.lock().unwrap().push(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
