//! The connection bounds, against a real listener on loopback with short bounds.

use std::time::Duration;

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<io::Result<()>>,
}

async fn start(limits: ConnectionLimits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        served,
    }
}

/// Reads until the peer closes; the bytes read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection before the deadline");
    out
}

/// One GET / on `stream`; the status line.
async fn get_root(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("an answer before the deadline")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn limits(header_ms: u64, idle_ms: u64, max: usize) -> ConnectionLimits {
    ConnectionLimits {
        max_connections: max,
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
    }
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_closed() {
    let server = start(limits(200, 60_000, 16)).await;
    let mut half = TcpStream::connect(server.addr).await.expect("connect");
    half.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n")
        .await
        .expect("write");
    assert!(
        read_to_close(&mut half).await.is_empty(),
        "closed without an answer"
    );
}

#[tokio::test]
async fn an_idle_connection_outlives_the_head_bound_and_closes_at_the_idle_bound() {
    let server = start(limits(100, 3_000, 16)).await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_root(&mut conn).await, "HTTP/1.1 200 OK");
    // Well past the head bound, well before the idle bound: still usable.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_root(&mut conn).await, "HTTP/1.1 200 OK");
    // Then, left idle, it is closed.
    assert!(read_to_close(&mut conn).await.is_empty());
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let server = start(limits(60_000, 60_000, 2)).await;
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_root(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(get_root(&mut second).await, "HTTP/1.1 200 OK");
    // The kernel completes the third handshake, but the server does not take it.
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf))
            .await
            .is_err(),
        "no answer while two connections are open"
    );
    drop(first);
    let n = tokio::time::timeout(DEADLINE, third.read(&mut buf))
        .await
        .expect("answered once a slot is free")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let mut server = start(limits(60_000, 60_000, 16)).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_root(&mut idle).await, "HTTP/1.1 200 OK");
    let _ = server.stop.take().map(|s| s.send(()));
    assert!(read_to_close(&mut idle).await.is_empty());
    tokio::time::timeout(DEADLINE, server.served)
        .await
        .expect("serve returns once every connection ended")
        .expect("join")
        .expect("served");
}
