//! The load test's receiver: a lean hyper 1.x HTTP/1.1 server on loopback that
//! timestamps and counts every request.
//!
//! A delivery is identified by its `X-Event-ID` (`lt-TAG-N`, N the event's index in the
//! run; with `--via amqp` the `kz-…` id the daemon derives from the message, looked up
//! in [`Identity::derived_ids`]) and `X-Hook-ID` (mapped to the hook's index once setup
//! is done), so each request lands in one `(event, hook)` slot: how many times it was
//! answered 2xx, how many injected 500s it got, and when it was first answered 2xx.
//! Requests under `/baseline` are the baseline loop's and are only counted. Anything
//! else is "unidentified".
//!
//! `--receiver-error-rate` answers that share of requests 500, but at most `retries`
//! times per pair and never after a pair succeeded, so every failure it injects is one
//! the daemon's retries recover: a pair the daemon does deliver is never lost to the
//! injection, and the reconciliation can tell those expected retries from duplicates.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::Clock;

/// Number of independently locked parts of the pair table.
const SHARDS: usize = 64;

/// The hook index of a pair key.
pub(crate) fn hook_of(key: u64) -> u32 {
    // The low half, masked: always fits.
    u32::try_from(key & u64::from(u32::MAX)).unwrap_or(u32::MAX)
}

/// The key of an `(event index, hook index)` pair.
pub(crate) fn pair_key(event: u32, hook: u32) -> u64 {
    (u64::from(event) << 32) | u64::from(hook)
}

/// The event index of a pair key.
pub(crate) fn event_of(key: u64) -> u32 {
    // The high half of a u64 always fits.
    u32::try_from(key >> 32).unwrap_or(u32::MAX)
}

/// The lookup key of a `kz-` + 40 hex id the daemon derives from a Kazoo message: its
/// first 64 bits.
pub(crate) fn derived_key(event_id: &str) -> Option<u64> {
    let hex = event_id.strip_prefix("kz-")?.get(..16)?;
    u64::from_str_radix(hex, 16).ok()
}

/// What the receiver saw of one `(event, hook)` pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PairRecord {
    /// Requests answered 2xx.
    pub ok: u32,
    /// Requests answered 500 by `--receiver-error-rate`.
    pub injected_errors: u32,
    /// When the first 2xx answer's request arrived (µs on the run's clock).
    pub first_ok_us: u64,
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    pub delay: Duration,
    pub error_rate: f64,
    /// At most this many injected 500s per pair (the hooks' `retries`).
    pub max_injected_per_pair: u32,
}

/// Who is who, known once setup has created the hooks.
#[derive(Debug)]
pub(crate) struct Identity {
    /// `lt-TAG-`: the run's event id prefix.
    pub event_prefix: String,
    /// With `--via amqp`: [`derived_key`] of each event's delivered id → event index.
    pub derived_ids: Option<HashMap<u64, u32>>,
    pub events: u64,
    pub accounts: u32,
    /// Hook id → hook index.
    pub hooks: HashMap<String, u32>,
    /// Hook index → account index.
    pub hook_account: Vec<u32>,
}

/// The receiver's shared state: the pair table and live counters.
pub(crate) struct ReceiverState {
    clock: Clock,
    behaviour: Behaviour,
    identity: OnceLock<Identity>,
    shards: Vec<Mutex<HashMap<u64, PairRecord>>>,
    /// Every request, whatever it was.
    pub requests: AtomicU64,
    /// Pairs (of the event's own account) answered 2xx at least once.
    pub unique_ok: AtomicU64,
    /// Every 2xx answer to an identified delivery.
    pub ok_total: AtomicU64,
    /// Injected 500 answers.
    pub injected: AtomicU64,
    /// Requests that named no known event and hook.
    pub unidentified: AtomicU64,
    /// Requests of the baseline loop.
    pub baseline: AtomicU64,
}

impl ReceiverState {
    pub(crate) fn new(clock: Clock, behaviour: Behaviour) -> ReceiverState {
        ReceiverState {
            clock,
            behaviour,
            identity: OnceLock::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            requests: AtomicU64::new(0),
            unique_ok: AtomicU64::new(0),
            ok_total: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            unidentified: AtomicU64::new(0),
            baseline: AtomicU64::new(0),
        }
    }

    /// Sets who is who; only the first call counts.
    pub(crate) fn set_identity(&self, identity: Identity) {
        let _ = self.identity.set(identity);
    }

    /// Takes the pair table out (the receiver keeps counting, into an empty table).
    pub(crate) fn take_records(&self) -> HashMap<u64, PairRecord> {
        let mut all = HashMap::new();
        for shard in &self.shards {
            all.extend(std::mem::take(&mut *shard.lock()));
        }
        all
    }

    /// The pair a request names, and whether the hook is of the event's own account.
    fn pair_of(&self, headers: &HeaderMap) -> Option<(u64, bool)> {
        let identity = self.identity.get()?;
        let event_id = headers.get("x-event-id")?.to_str().ok()?;
        let hook_id = headers.get("x-hook-id")?.to_str().ok()?;
        let event: u64 = match &identity.derived_ids {
            Some(ids) => u64::from(*ids.get(&derived_key(event_id)?)?),
            None => event_id
                .strip_prefix(identity.event_prefix.as_str())?
                .parse()
                .ok()?,
        };
        if event >= identity.events {
            return None;
        }
        let event = u32::try_from(event).ok()?;
        let hook = *identity.hooks.get(hook_id)?;
        let hook_account = identity.hook_account.get(usize::try_from(hook).ok()?)?;
        let own_account = identity.accounts > 0 && event % identity.accounts == *hook_account;
        Some((pair_key(event, hook), own_account))
    }

    /// Records one identified request that arrived at `at_us`; returns the answer.
    fn record(&self, key: u64, own_account: bool, at_us: u64) -> StatusCode {
        let b = &self.behaviour;
        let inject = b.error_rate > 0.0 && rand::random::<f64>() < b.error_rate;
        let first = {
            let mut shard = self.shards[shard_of(key)].lock();
            let rec = shard.entry(key).or_default();
            if inject && rec.ok == 0 && rec.injected_errors < b.max_injected_per_pair {
                rec.injected_errors += 1;
                None
            } else {
                rec.ok = rec.ok.saturating_add(1);
                if rec.ok == 1 {
                    rec.first_ok_us = at_us;
                }
                Some(rec.ok == 1)
            }
        };
        match first {
            None => {
                self.injected.fetch_add(1, Ordering::Relaxed);
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Some(first) => {
                self.ok_total.fetch_add(1, Ordering::Relaxed);
                if first && own_account {
                    self.unique_ok.fetch_add(1, Ordering::Relaxed);
                }
                StatusCode::OK
            }
        }
    }
}

fn shard_of(key: u64) -> usize {
    let mixed = (key ^ (key >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top 6 bits: always below SHARDS (64).
    usize::try_from(mixed >> 58).unwrap_or(0) % SHARDS
}

/// A running receiver; stops (with its connections) when dropped.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `listen` and serves until the returned [`Receiver`] is dropped.
pub(crate) async fn start(
    listen: SocketAddr,
    state: Arc<ReceiverState>,
) -> std::io::Result<Receiver> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, state));
    Ok(Receiver { addr, task })
}

/// Accepts connections until aborted; the connection tasks live in a `JoinSet`, so
/// aborting this task closes them all.
async fn accept_loop(listener: TcpListener, state: Arc<ReceiverState>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "receiver cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "receiver connection ended with an error");
            }
        });
    }
}

async fn handle(state: &ReceiverState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let at_us = state.clock.now_us();
    state.requests.fetch_add(1, Ordering::Relaxed);
    let baseline = request.uri().path().starts_with("/baseline");
    let pair = if baseline {
        None
    } else {
        state.pair_of(request.headers())
    };
    // Read the whole body, as a real receiver would, so the connection can be reused.
    let _ = request.into_body().collect().await;
    let status = if baseline {
        state.baseline.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    } else if let Some((key, own_account)) = pair {
        state.record(key, own_account, at_us)
    } else {
        state.unidentified.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    };
    if !state.behaviour.delay.is_zero() {
        tokio::time::sleep(state.behaviour.delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests;
