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

/// Sends a request head, gives the daemon a moment to answer before the body (a daemon
/// that answers early and then closes the connection is what this catches), then the
/// body and a second request on the same connection; returns the two answers' statuses
/// (fewer when the connection was closed).
async fn head_then_body_then_another(address: &str, head: &str, body: &[u8]) -> Vec<u16> {
    let mut s = TcpStream::connect(address).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    let mut early = Vec::new();
    let mut chunk = [0u8; 4096];
    // An early answer, if the daemon gives one before the body: read what comes in 200 ms.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut chunk)).await {
        early.extend_from_slice(&chunk[..n]);
    }
    // The body and the next request may meet a closed connection: that shows below.
    let _ = s.write_all(body).await;
    let _ = s
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    let mut all = early;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = String::from_utf8_lossy(&all);
            if text.matches("HTTP/1.1 ").count() >= 2 && text.contains("\"status\":\"ok\"") {
                break;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&all)
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| {
            String::from_utf8_lossy(&all)[at + 9..]
                .get(..3)
                .and_then(|code| code.parse().ok())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_its_answer_and_the_connection_survives_bodies_it_did_not_need() {
    let d = Daemon::start(&["--max-body-bytes", "65536"]);
    let address = addr(&d);
    let json_body = |size: usize| {
        let mut b = b"{\"data\":{}}".to_vec();
        b.resize(size, b' ');
        b
    };
    let small = json_body(100);
    let big = json_body(4 * 65536);
    let cases: Vec<(String, &[u8], u16)> = vec![
        // A GET carrying a body, a route that does not exist, a request refused before
        // its body matters (no token): each is answered, then the next request too.
        (
            format!(
                "GET /v2/webhooks HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                small.len()
            ),
            &small,
            200,
        ),
        (
            format!(
                "POST /v2/nowhere HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                small.len()
            ),
            &small,
            404,
        ),
        (
            format!(
                "GET /v2/accounts/abc HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                small.len()
            ),
            &small,
            401,
        ),
        // A body four times the limit: its 413 is read in full, and the connection goes on.
        (
            format!(
                "PUT /v2/api_auth HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                big.len()
            ),
            &big,
            413,
        ),
    ];
    for (head, body, want) in &cases {
        for round in 0..10 {
            let answers = head_then_body_then_another(&address, head, body).await;
            assert_eq!(
                answers,
                vec![*want, 200],
                "round {round} of {}: both requests answered on one connection",
                head.lines().next().unwrap_or("")
            );
        }
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
