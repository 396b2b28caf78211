use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Verb and format parsing

#[test]
fn verbs_and_formats_parse_from_stored_strings() {
    assert_eq!("get".parse::<HttpVerb>(), Ok(HttpVerb::Get));
    assert_eq!("post".parse::<HttpVerb>(), Ok(HttpVerb::Post));
    assert_eq!("PUT".parse::<HttpVerb>(), Ok(HttpVerb::Put));
    assert_eq!(
        "delete".parse::<HttpVerb>(),
        Err(DeliveryError::UnknownVerb("delete".to_owned()))
    );
    assert_eq!("form-data".parse::<BodyFormat>(), Ok(BodyFormat::FormData));
    assert_eq!("json".parse::<BodyFormat>(), Ok(BodyFormat::Json));
    assert!("xml".parse::<BodyFormat>().is_err());
    for verb in [HttpVerb::Get, HttpVerb::Post, HttpVerb::Put] {
        assert_eq!(verb.as_str().parse::<HttpVerb>(), Ok(verb));
        assert_eq!(verb.to_string(), verb.as_str());
    }
    for format in [BodyFormat::FormData, BodyFormat::Json] {
        assert_eq!(format.as_str().parse::<BodyFormat>(), Ok(format));
    }
}

#[test]
fn verbs_and_formats_serialize_as_stored_strings() {
    assert_eq!(
        serde_json::to_value(HttpVerb::Post).ok(),
        Some(json!("post"))
    );
    assert_eq!(
        serde_json::to_value(BodyFormat::FormData).ok(),
        Some(json!("form-data"))
    );
    assert_eq!(
        serde_json::from_value::<BodyFormat>(json!("json")).ok(),
        Some(BodyFormat::Json)
    );
}

// ---------------------------------------------------------------------------------------
// build_payload

#[test]
fn payload_gets_hook_event() {
    let event = obj(json!({"call_id": "c1", "account_id": "a1"}));
    let payload = build_payload(&event, "channel_create", None, "channel_create");
    assert_eq!(
        Value::Object(payload.to_map()),
        json!({"call_id": "c1", "account_id": "a1", "hook_event": "channel_create"})
    );
}

#[test]
fn custom_data_merges_shallowly_and_overwrites() {
    let event = obj(json!({"call_id": "c1", "vars": {"a": 1, "b": 2}, "keep": true}));
    let custom = obj(json!({"vars": {"c": 3}, "extra": "x", "call_id": "mine"}));
    let payload = build_payload(&event, "channel_answer", Some(&custom), "channel_answer");
    assert_eq!(
        Value::Object(payload.to_map()),
        json!({
            "call_id": "mine",
            "vars": {"c": 3},
            "keep": true,
            "extra": "x",
            "hook_event": "channel_answer"
        })
    );
}

#[test]
fn custom_data_may_overwrite_hook_event_as_in_kazoo() {
    let event = obj(json!({}));
    let custom = obj(json!({"hook_event": "other"}));
    let payload = build_payload(&event, "parking", Some(&custom), "parking");
    assert_eq!(payload.get("hook_event"), Some(&json!("other")));
}

#[test]
fn object_and_notifications_hooks_do_not_merge_selection_keys() {
    let event = obj(json!({"type": "user", "action": "doc_edited", "id": "u1"}));
    let custom = obj(json!({"type": "all", "action": "all", "team": "blue"}));
    for kind in ["object", "notifications"] {
        let payload = build_payload(&event, "object", Some(&custom), kind);
        assert_eq!(payload.get("type"), Some(&json!("user")), "{kind}");
        assert_eq!(payload.get("action"), Some(&json!("doc_edited")), "{kind}");
        assert_eq!(payload.get("team"), Some(&json!("blue")), "{kind}");
    }
    // Other kinds (here `all`) merge every key.
    let payload = build_payload(&event, "object", Some(&custom), "all");
    assert_eq!(payload.get("type"), Some(&json!("all")));
    assert_eq!(payload.get("action"), Some(&json!("all")));
}

#[test]
fn selection_keys_absent_from_event_are_not_added() {
    let event = obj(json!({"event_name": "voicemail_new"}));
    let custom = obj(json!({"type": "voicemail_new"}));
    let payload = build_payload(&event, "notifications", Some(&custom), "notifications");
    assert!(payload.get("type").is_none());
}

// ---------------------------------------------------------------------------------------
// build_request

#[test]
fn get_appends_query_with_question_mark() {
    let payload = obj(json!({"a": "1 2", "b": true}));
    let req = build_request(
        "http://example.com/hook",
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Get);
    assert_eq!(req.url.as_str(), "http://example.com/hook?a=1+2&b=true");
    assert_eq!(req.content_type, None);
    assert!(req.body.is_empty());
}

#[test]
fn get_joins_existing_query_with_ampersand() {
    let payload = obj(json!({"a": "x"}));
    let req = build_request(
        "https://example.com/hook?token=abc",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?token=abc&a=x");

    let req = build_request(
        "https://example.com/hook?token=abc&",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?token=abc&a=x");

    // An empty query is no query.
    let req = build_request(
        "https://example.com/hook?",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?a=x");
}

#[test]
fn get_with_empty_payload_leaves_uri_alone() {
    let empty = Map::new();
    let req = build_request(
        "http://example.com/h?x=1",
        HttpVerb::Get,
        BodyFormat::FormData,
        &empty,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h?x=1");
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Get,
        BodyFormat::FormData,
        &empty,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn fragment_is_dropped() {
    let payload = obj(json!({"a": "x"}));
    let req = build_request(
        "http://example.com/h?q=1#frag",
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h?q=1&a=x");
    let req = build_request(
        "http://example.com/h#frag",
        HttpVerb::Post,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn post_form_data_is_urlencoded_body() {
    let payload = obj(json!({"a": {"b": "c d"}, "n": 1}));
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Post,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Post);
    assert_eq!(req.content_type, Some("application/x-www-form-urlencoded"));
    assert_eq!(&req.body[..], b"a[b]=c+d&n=1");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn put_json_is_json_body() {
    let payload = obj(json!({"a": {"b": [1, 2]}, "s": "x"}));
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Put,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Put);
    assert_eq!(req.content_type, Some("application/json"));
    let body: Value = serde_json::from_slice(&req.body).expect("json body");
    assert_eq!(body, json!({"a": {"b": [1, 2]}, "s": "x"}));
}

#[test]
fn bad_uris_are_refused() {
    let payload = Map::new();
    assert!(matches!(
        build_request("not a url", HttpVerb::Post, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
    assert!(matches!(
        build_request("ftp://example.com/", HttpVerb::Post, BodyFormat::Json, &payload),
        Err(DeliveryError::UnsupportedScheme(s)) if s == "ftp"
    ));
    assert!(matches!(
        build_request("http://", HttpVerb::Get, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
    assert!(matches!(
        build_request("", HttpVerb::Get, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Classification

#[test]
fn status_classification_table() {
    for status in [200, 201, 202, 204, 299] {
        assert_eq!(
            classify_status(status, None),
            TryOutcome::Success { status },
            "{status}"
        );
    }
    for status in [408, 429, 500, 502, 503, 504, 599] {
        let outcome = classify_status(status, None);
        assert!(outcome.is_retryable(), "{status}");
        assert_eq!(outcome.status(), Some(status));
        assert_eq!(outcome.retry_after(), None);
    }
    for status in [
        100, 101, 199, 300, 301, 302, 304, 400, 401, 403, 404, 405, 410, 422, 0, 600, 999,
    ] {
        assert_eq!(
            classify_status(status, None),
            TryOutcome::Final { status },
            "{status}"
        );
    }
}

#[test]
fn retryable_statuses_carry_retry_after() {
    assert_eq!(
        classify_status(503, Some("7")),
        TryOutcome::Retryable {
            status: Some(503),
            client_error: None,
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    assert_eq!(
        classify_status(429, Some("junk")).retry_after(),
        None,
        "an unparsable Retry-After is ignored"
    );
    // Non-retryable statuses ignore it.
    assert_eq!(classify_status(404, Some("7")).retry_after(), None);
    assert_eq!(classify_status(200, Some("7")).retry_after(), None);
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// 1994-11-06T08:49:37Z, the RFC's example date.
const RFC_EXAMPLE: u64 = 784_111_777;

#[test]
fn retry_after_delay_seconds() {
    let now = SystemTime::now();
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 5 ", now), Some(Duration::from_secs(5)));
    assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("99999999999999999999999", now),
        Some(Duration::from_secs(u64::MAX))
    );
    for bad in ["", " ", "-5", "1.5", "+3", "5s", "abc"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
}

#[test]
fn retry_after_http_dates() {
    let now = at(RFC_EXAMPLE - 30);
    let thirty = Some(Duration::from_secs(30));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        thirty
    );
    assert_eq!(
        parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
        thirty
    );
    assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), thirty);
    assert_eq!(parse_retry_after("Sun Nov 6 08:49:37 1994", now), thirty);
    // Past dates mean "now".
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(RFC_EXAMPLE + 100)),
        Some(Duration::ZERO)
    );
}

#[test]
fn http_date_calendar_is_right() {
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(RFC_EXAMPLE)
    );
    assert_eq!(
        parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
        Some(951_782_400)
    );
    assert_eq!(
        parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT"),
        Some(946_684_800)
    );
    assert_eq!(
        parse_http_date("Thu, 26 Nov 2026 16:51:00 GMT"),
        Some(1_795_711_860)
    );
    // RFC 850 two-digit years: 00-69 are 20xx.
    assert_eq!(
        parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT"),
        Some(946_684_800)
    );
}

#[test]
fn malformed_http_dates_are_rejected() {
    for bad in [
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 08:49:37:01 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Wed, 01 Jan 1969 00:00:00 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94-1 08:49:37 GMT",
        "Sun Nov 123 08:49:37 1994",
        "2026-11-26T16:51:00Z",
        "Sun, 06 Nov 1994 ０8:49:37 GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
        assert_eq!(parse_retry_after(bad, at(0)), None, "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------
// retry_delay

const BASE: Duration = Duration::from_millis(500);

#[test]
fn retry_delay_grows_exponentially_within_jitter_bounds() {
    let mut rng = StdRng::seed_from_u64(7);
    for try_number in 1..=8_u32 {
        let ceiling = BASE * 2_u32.pow(try_number - 1);
        for _ in 0..50 {
            let delay = retry_delay(BASE, try_number, None, &mut rng);
            assert!(
                delay <= ceiling,
                "try {try_number}: {delay:?} > {ceiling:?}"
            );
            assert!(
                delay >= ceiling / 2,
                "try {try_number}: {delay:?} < half of {ceiling:?}"
            );
        }
    }
}

#[test]
fn retry_delay_try_zero_is_first_retry() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20 {
        let delay = retry_delay(BASE, 0, None, &mut rng);
        assert!(delay >= BASE / 2 && delay <= BASE, "{delay:?}");
    }
}

#[test]
fn retry_delay_is_capped() {
    let mut rng = StdRng::seed_from_u64(3);
    for try_number in [12, 20, 31, 32, 33, 64, 1_000, u32::MAX] {
        let delay = retry_delay(BASE, try_number, None, &mut rng);
        assert!(delay <= MAX_BACKOFF, "{try_number}: {delay:?}");
        assert!(delay >= MAX_BACKOFF / 2, "{try_number}: {delay:?}");
    }
    // A base longer than the cap is not cut below itself.
    let long_base = Duration::from_secs(3_600);
    let delay = retry_delay(long_base, 5, None, &mut rng);
    assert!(delay <= long_base && delay >= long_base / 2, "{delay:?}");
    // Absurd bases do not overflow.
    let _ = retry_delay(Duration::MAX, u32::MAX, None, &mut rng);
}

#[test]
fn retry_delay_zero_base_is_zero() {
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(
        retry_delay(Duration::ZERO, 5, None, &mut rng),
        Duration::ZERO
    );
}

#[test]
fn retry_delay_jitters() {
    let mut rng = StdRng::seed_from_u64(11);
    let delays: std::collections::HashSet<Duration> = (0..20)
        .map(|_| retry_delay(BASE, 3, None, &mut rng))
        .collect();
    assert!(delays.len() > 10, "jitter should spread delays: {delays:?}");
}

#[test]
fn retry_delay_is_deterministic_for_a_seed() {
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (1..=6)
            .map(|n| retry_delay(BASE, n, None, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn retry_after_is_honoured_within_bounds() {
    let mut rng = StdRng::seed_from_u64(5);
    let thirty = Duration::from_secs(30);
    assert_eq!(retry_delay(BASE, 1, Some(thirty), &mut rng), thirty);
    // Even on a late retry whose backoff would be longer, the receiver's word counts.
    assert_eq!(retry_delay(BASE, 9, Some(thirty), &mut rng), thirty);
    // Never below our base...
    assert_eq!(retry_delay(BASE, 1, Some(Duration::ZERO), &mut rng), BASE);
    // ...nor beyond an hour.
    assert_eq!(
        retry_delay(BASE, 1, Some(Duration::from_secs(7_200)), &mut rng),
        MAX_RETRY_AFTER
    );
    assert_eq!(
        retry_delay(BASE, 1, Some(Duration::from_secs(u64::MAX)), &mut rng),
        MAX_RETRY_AFTER
    );
}

// ---------------------------------------------------------------------------------------
// send_try against a raw loopback server

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

#[test]
fn shorten_cuts_on_char_boundaries() {
    let long = "é".repeat(300);
    assert_eq!(shorten(&long).chars().count(), 200);
    assert_eq!(shorten("short"), "short");
}

/// The borrowed payload is exactly the copy-and-merge the payload rule describes, field
/// order included (JSON and form bodies follow it), over random events and custom data.
#[test]
fn borrowed_payload_matches_copy_and_merge() {
    use rand::Rng;
    fn reference(
        event: &Map<String, Value>,
        hook_event: &str,
        custom: Option<&Map<String, Value>>,
        kind: &str,
    ) -> Map<String, Value> {
        let mut out = event.clone();
        out.insert("hook_event".into(), json!(hook_event));
        for (k, v) in custom.into_iter().flatten() {
            if ["object", "notifications"].contains(&kind)
                && ["type", "action"].contains(&k.as_str())
            {
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
        out
    }
    const KEYS: &[&str] = &[
        "a",
        "action",
        "call_id",
        "hook_event",
        "type",
        "z",
        "",
        "Zed",
    ];
    let mut rng = StdRng::seed_from_u64(11);
    let random_map = |rng: &mut StdRng| -> Map<String, Value> {
        (0..rng.random_range(0..6))
            .map(|_| {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                (key.to_owned(), json!(rng.random_range(0..3)))
            })
            .collect()
    };
    for _ in 0..2_000 {
        let hook_event = ["channel_create", "parking"][rng.random_range(0..2)];
        let mut event = random_map(&mut rng);
        if rng.random_bool(0.5) {
            // As ingested events carry it: then nothing needs to be set over it.
            event.insert("hook_event".into(), json!(hook_event));
        }
        let custom = random_map(&mut rng);
        let custom = rng.random_bool(0.7).then_some(&custom);
        let kind = ["object", "notifications", "all", "parking"][rng.random_range(0..4)];
        let view = build_payload(&event, hook_event, custom, kind);
        let expected = reference(&event, hook_event, custom, kind);
        assert_eq!(view.to_map(), expected);
        assert_eq!(
            serde_json::to_string(&view).expect("json"),
            serde_json::to_string(&expected).expect("json")
        );
        assert_eq!(
            crate::form::form_encode_fields(view.fields()),
            crate::form::form_encode(&expected)
        );
        for key in KEYS {
            assert_eq!(view.get(key), expected.get(*key), "{key}");
        }
    }
}
