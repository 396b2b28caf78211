use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use super::*;
use crate::delivery::{build_request, BodyFormat, TryOutcome, JSON_CONTENT_TYPE};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

/// What a one-shot test server saw: the request head (lowercased header names) and body.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

/// Serves exactly one connection on 127.0.0.1: reads one request, answers `response`
/// (written verbatim), and returns what it read.
async fn one_shot_server(response: Vec<u8>) -> (SocketAddr, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let seen = read_request(&mut socket).await;
        socket.write_all(&response).await.expect("write");
        socket.shutdown().await.ok();
        seen
    });
    (addr, handle)
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Seen {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = socket.read(&mut chunk).await.expect("read");
        assert!(n > 0, "client closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "client closed before the body ended");
        body.extend_from_slice(&chunk[..n]);
    }
    Seen {
        request_line,
        headers,
        body,
    }
}

fn http_response(status_line: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

const HEADERS: DeliveryHeaders<'static> = DeliveryHeaders {
    hook_id: "hook-1",
    account_id: "acct-1",
    event_id: "evt-1",
    user_agent: USER_AGENT,
    signature: None,
    custom: &[],
};

#[tokio::test]
async fn post_sends_headers_and_body_and_503_is_retryable() {
    let (addr, server) = one_shot_server(http_response(
        "503 Service Unavailable",
        "Retry-After: 7\r\n",
        "try later",
    ))
    .await;
    let payload = obj(json!({"call_id": "c 1", "n": 2}));
    let req = build_request(
        &format!("http://{addr}/hook"),
        HttpVerb::Post,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");

    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 1024).await;
    let seen = server.await.expect("server");

    assert_eq!(seen.request_line, "POST /hook HTTP/1.1");
    assert_eq!(seen.header("X-Hook-ID"), Some("hook-1"));
    assert_eq!(seen.header("X-Account-ID"), Some("acct-1"));
    assert_eq!(seen.header("X-Event-ID"), Some("evt-1"));
    assert_eq!(seen.header("User-Agent"), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("piston-webhooks/"));
    assert_eq!(
        seen.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.body, b"call_id=c+1&n=2".to_vec());

    assert_eq!(
        result.outcome,
        TryOutcome::Retryable {
            status: Some(503),
            client_error: None,
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    assert_eq!(result.response_code, Some(503));
    assert_eq!(result.response_body.as_deref(), Some("try later"));
    assert_eq!(result.client_error, None);
}

#[tokio::test]
async fn get_sends_query_and_no_body_and_200_is_success() {
    let (addr, server) = one_shot_server(http_response("200 OK", "", "")).await;
    let payload = obj(json!({"a": "x y", "o": {"k": "v"}}));
    let req = build_request(
        &format!("http://{addr}/h?t=1"),
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");

    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 1024).await;
    let seen = server.await.expect("server");

    assert_eq!(seen.request_line, "GET /h?t=1&a=x+y&o[k]=v HTTP/1.1");
    assert_eq!(seen.header("Content-Type"), None);
    assert!(seen.body.is_empty());
    assert_eq!(result.outcome, TryOutcome::Success { status: 200 });
    assert_eq!(result.response_code, Some(200));
    assert_eq!(result.response_body, None, "an empty body is no body");
}

#[tokio::test]
async fn put_json_content_type_and_final_404() {
    let (addr, server) = one_shot_server(http_response("404 Not Found", "", "nope")).await;
    let payload = obj(json!({"a": [1, 2]}));
    let req = build_request(
        &format!("http://{addr}/h"),
        HttpVerb::Put,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");

    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 1024).await;
    let seen = server.await.expect("server");

    assert_eq!(seen.request_line, "PUT /h HTTP/1.1");
    assert_eq!(seen.header("Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen.body).expect("json");
    assert_eq!(body, json!({"a": [1, 2]}));
    assert_eq!(result.outcome, TryOutcome::Final { status: 404 });
}

#[tokio::test]
async fn response_body_is_bounded() {
    let big = "é".repeat(5_000);
    let (addr, server) = one_shot_server(http_response("200 OK", "", &big)).await;
    let req = build_request(
        &format!("http://{addr}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");

    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 11).await;
    let _ = server.await;

    assert!(result.outcome.is_success());
    // 11 bytes: five whole "é" and half of the sixth, replaced by U+FFFD.
    assert_eq!(result.response_body.as_deref(), Some("ééééé\u{FFFD}"));
}

#[tokio::test]
async fn zero_body_bound_reads_nothing() {
    let (addr, server) = one_shot_server(http_response("201 Created", "", "body")).await;
    let req = build_request(
        &format!("http://{addr}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");
    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 0).await;
    let _ = server.await;
    assert_eq!(result.outcome, TryOutcome::Success { status: 201 });
    assert_eq!(result.response_body, None);
}

#[tokio::test]
async fn redirect_is_final_when_not_followed() {
    let (addr, server) = one_shot_server(http_response(
        "301 Moved Permanently",
        "Location: http://127.0.0.1:9/\r\n",
        "",
    ))
    .await;
    let req = build_request(
        &format!("http://{addr}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");
    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 64).await;
    let _ = server.await;
    assert_eq!(result.outcome, TryOutcome::Final { status: 301 });
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let req = build_request(
        &format!("http://127.0.0.1:{port}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");

    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 64).await;

    assert_eq!(result.client_error.as_deref(), Some("connection refused"));
    assert_eq!(
        result.outcome,
        TryOutcome::Retryable {
            status: None,
            client_error: Some("connection refused".to_owned()),
            retry_after: None,
        }
    );
    assert_eq!(result.response_code, None);
    assert_eq!(result.response_body, None);
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accept and read, but never answer; hold the socket until the test ends.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let _ = read_request(&mut socket).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let req = build_request(
        &format!("http://{addr}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");

    let started = std::time::Instant::now();
    let result = send_try(
        &test_client(),
        &req,
        &HEADERS,
        Duration::from_millis(200),
        64,
    )
    .await;
    server.abort();

    assert_eq!(result.client_error.as_deref(), Some("timeout"));
    assert!(result.outcome.is_retryable());
    assert_eq!(result.response_code, None);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout must apply"
    );
    assert!(result.latency_ms >= 150, "latency {}", result.latency_ms);
}

#[tokio::test]
async fn connection_closed_without_answer_is_retryable_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let _ = read_request(&mut socket).await;
        drop(socket);
    });
    let req = build_request(
        &format!("http://{addr}/"),
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");
    let result = send_try(&test_client(), &req, &HEADERS, Duration::from_secs(5), 64).await;
    let _ = server.await;
    assert!(result.outcome.is_retryable());
    let client_error = result.client_error.expect("client error");
    assert!(!client_error.is_empty());
    assert!(
        !client_error.contains(&addr.to_string()),
        "no url in {client_error}"
    );
}

#[tokio::test]
async fn invalid_header_value_is_a_request_error_not_a_panic() {
    let headers = DeliveryHeaders::new("hook\nbad", "acct", "evt");
    let req = DeliveryRequest {
        method: HttpVerb::Post,
        url: Url::parse("http://127.0.0.1:9/").expect("url"),
        content_type: Some(JSON_CONTENT_TYPE),
        body: Bytes::from_static(b"{}"),
    };
    let result = send_try(&test_client(), &req, &headers, Duration::from_secs(1), 64).await;
    assert!(result.outcome.is_retryable());
    let client_error = result.client_error.expect("client error");
    assert!(client_error.starts_with("request: "), "{client_error}");
}

/// A resolver that refuses every name, as a private-address guard would; no network use.
struct RefusingResolver;

impl reqwest::dns::Resolve for RefusingResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async { Err("refused private address".into()) })
    }
}

#[tokio::test]
async fn resolver_failure_is_a_dns_error() {
    let client = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(RefusingResolver))
        .build()
        .expect("client");
    let req = build_request(
        "http://hook.example/",
        HttpVerb::Post,
        BodyFormat::Json,
        &Map::new(),
    )
    .expect("request");
    let result = send_try(&client, &req, &HEADERS, Duration::from_secs(5), 64).await;
    assert_eq!(
        result.client_error.as_deref(),
        Some("dns: refused private address")
    );
    assert!(result.outcome.is_retryable());
}

#[tokio::test]
async fn signature_and_custom_headers_are_sent_and_the_get_query_is_what_was_signed() {
    use crate::delivery::CustomHeaders;
    use crate::signing::{SigningKeys, WebhookSecrets, DEFAULT_ROTATION_OVERLAP};

    let (addr, server) = one_shot_server(http_response("200 OK", "", "")).await;
    let payload = obj(json!({"a": "x y", "o": {"k": "v"}}));
    let req = build_request(
        &format!("http://{addr}/h?t=1"),
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.signed_content(), b"t=1&a=x+y&o[k]=v");
    let mut secrets = WebhookSecrets::default();
    secrets.set(
        eventlog::Secret::new("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        0,
    );
    let keys = SigningKeys::from_secrets(&secrets).expect("keys");
    let signature = keys.sign(
        "evt-1",
        1_800_000_000_000,
        req.signed_content(),
        DEFAULT_ROTATION_OVERLAP,
    );
    let custom =
        CustomHeaders::from_doc(Some(&json!({"Authorization": "Bearer t", "X-Tenant": "7"})));
    let headers = HEADERS
        .signed(Some(&signature))
        .with_custom(custom.as_slice());

    send_try(&test_client(), &req, &headers, Duration::from_secs(5), 1024).await;
    let seen = server.await.expect("server");

    assert_eq!(seen.request_line, "GET /h?t=1&a=x+y&o[k]=v HTTP/1.1");
    assert_eq!(seen.header("webhook-id"), Some("evt-1"));
    assert_eq!(seen.header("webhook-timestamp"), Some("1800000000"));
    assert_eq!(
        seen.header("webhook-signature"),
        Some(signature.signatures.as_str())
    );
    assert!(signature.signatures.starts_with("v1,"));
    assert_eq!(seen.header("Authorization"), Some("Bearer t"));
    assert_eq!(seen.header("X-Tenant"), Some("7"));
    assert_eq!(seen.header("X-Hook-ID"), Some("hook-1"));
}
