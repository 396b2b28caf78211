//! The API's connections under hostile clients (INTERFACE.md section 8): half-sent and
//! idle connections are closed on time and never starve others, every request gets its
//! answer (413 read in full, not a reset), and a keep-alive connection survives a body
//! its handler did not need.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Host and port of a daemon's base URL.
fn addr(d: &Daemon) -> String {
    d.base.trim_start_matches("http://").to_owned()
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some((status, head, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_their_413_and_unneeded_bodies_keep_the_connection() {
    let d = Daemon::start(&["--max-body-bytes", "65536"]);
    let address = addr(&d);
    let token = d.master().await.token.expect("token");
    // A body four times the limit, sent whole before reading: the client must read a
    // 413, never a reset, every time.
    let big = vec![b'x'; 4 * 65536];
    for round in 0..50 {
        let mut s = TcpStream::connect(&address).await.expect("connect");
        let head = format!(
            "POST /v2/events HTTP/1.1\r\nhost: t\r\nx-auth-token: {token}\r\ncontent-length: {}\r\n\r\n",
            big.len()
        );
        s.write_all(head.as_bytes()).await.expect("head");
        // The server may answer before the body is all sent; keep sending regardless.
        let _ = s.write_all(&big).await;
        let (status, _, body) =
            tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
                .await
                .expect("an answer in time")
                .unwrap_or_else(|| panic!("round {round}: connection closed without an answer"));
        assert_eq!(status, 413, "round {round}: {body}");
        assert!(body.contains("larger than 65536 bytes"), "{body}");
    }

    // A GET carrying a small body, and a request to no route with a body: both answered,
    // and the same connection serves the next request.
    let mut s = TcpStream::connect(&address).await.expect("connect");
    for (request, want) in [
        (
            "GET /v2/webhooks HTTP/1.1\r\nhost: t\r\ncontent-length: 11\r\n\r\n{\"a\": \"b\"}\n",
            200,
        ),
        (
            "POST /v2/nowhere HTTP/1.1\r\nhost: t\r\ncontent-length: 11\r\n\r\n{\"a\": \"b\"}\n",
            404,
        ),
        ("GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n", 200),
    ] {
        s.write_all(request.as_bytes()).await.expect("write");
        let (status, _, body) =
            tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
                .await
                .expect("an answer in time")
                .expect("the keep-alive connection is still open");
        assert_eq!(status, want, "{request}: {body}");
    }
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408() {
    let d = Daemon::start(&["--body-timeout-ms", "300"]);
    let mut s = TcpStream::connect(addr(&d)).await.expect("connect");
    s.write_all(b"PUT /v2/api_auth HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n{\"data\":")
        .await
        .expect("write");
    let (status, head, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(status, 408, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_idle_and_half_sent_connections_neither_starve_the_api_nor_linger() {
    // The test process needs the descriptors too.
    let _ = piston_webhooks::process_limits::raise_open_files_limit();
    let d = Daemon::start(&[]);
    let address = addr(&d);
    let mut held = Vec::new();
    for i in 0..1500 {
        let mut s = TcpStream::connect(&address).await.expect("connect");
        if i % 2 == 0 {
            s.write_all(b"GET /v2/webhooks HTTP/1.1\r\nhost: t\r\nx-half: ")
                .await
                .expect("half a head");
        }
        held.push(s);
    }
    // The API still answers, at once, while they are open.
    let master = d.master().await;
    let root = master.own_account().await;
    master.create_account(&root, "still served").await;
    d.client().get("/healthz").await.expect(200);

    // Every one of them is closed by the daemon: half-sent heads after 30 s, idle ones
    // after 60 s (generous deadline for a loaded machine).
    let closed = tokio::time::timeout(Duration::from_secs(150), async {
        for s in &mut held {
            let mut buf = [0u8; 64];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "some connections were still open after 150 s"
    );
    d.client().get("/healthz").await.expect(200);
}
