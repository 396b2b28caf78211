//! The API's HTTP/1.1 server: the axum router on hyper connections, with the connection
//! limits a public endpoint needs (INTERFACE.md section 8).
//!
//! - At most `max_connections` connections are open; past that the listener is not
//!   polled, so new clients wait in the kernel's backlog instead of taking descriptors.
//! - A connection whose request head has started but is not complete within
//!   `header_timeout` is closed, and so is one idle (between requests, or before the
//!   first) for `idle_timeout`. hyper's own header timer counts from the end of the
//!   previous response, which would close idle connections at the header bound; a small
//!   watchdog per connection tells the two apart by watching the bytes read.
//! - On shutdown the listener closes, idle connections close at once, and requests in
//!   progress finish ([`serve`] returns when the last connection has ended; the caller
//!   bounds the wait).
//!
//! What it must not do: know routes, bodies or the envelope (request bodies, their limit
//! and their timeout are the API's own middleware, `api::body`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

#[cfg(test)]
mod tests;

/// How the API's connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most (`--max-connections`).
    pub max_connections: usize,
    /// A request head must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The contract's bounds (30 s for a head, 60 s idle) with `max_connections`.
    pub fn new(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: max_connections.max(1),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in
/// progress finish; returns once every connection has ended.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset before
                    // it was accepted: not fatal. Back off a little so an exhausted
                    // process does not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: having them all back means all ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Where a connection is between requests, as the watchdog sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress, no byte of the next one read yet.
    Idle { since: Instant },
    /// Bytes of a request head have come; the request has not reached the router yet.
    Head { since: Instant },
    /// The router has the request.
    Busy,
}

/// What the reading side and the service tell the watchdog.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock() = phase;
        self.changed.notify_one();
    }

    fn bytes_read(&self) {
        let mut phase = self.phase.lock();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn get(&self) -> Phase {
        *self.phase.lock()
    }
}

/// Serves one connection until the client closes it, it breaks a time bound, or shutdown
/// finds it idle.
async fn serve_connection(
    stream: TcpStream,
    app: axum::Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = WatchedService {
        app,
        activity: Arc::clone(&activity),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our watchdog keeps both bounds; hyper's own header timer would also cut idle
    // connections at the header bound.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = match activity.get() {
            Phase::Idle { since } => Some(since + limits.idle_timeout),
            Phase::Head { since } => Some(since + limits.header_timeout),
            Phase::Busy => None,
        };
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "API connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = expired => match activity.get() {
                Phase::Head { since } if since + limits.header_timeout <= Instant::now() => {
                    tracing::debug!("closing an API connection: request head not complete in time");
                    return;
                }
                Phase::Idle { since } if since + limits.idle_timeout <= Instant::now() => {
                    tracing::debug!("closing an idle API connection");
                    return;
                }
                _ => {}
            },
        }
    }
}

/// The TCP stream, telling the watchdog when bytes of a new request come in.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router, telling the watchdog when a request is in progress.
#[derive(Clone)]
struct WatchedService {
    app: axum::Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WatchedService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        self.activity.set(Phase::Busy);
        let app = self.app.clone();
        let activity = Arc::clone(&self.activity);
        Box::pin(async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            activity.set(Phase::Idle {
                since: Instant::now(),
            });
            response
        })
    }
}
