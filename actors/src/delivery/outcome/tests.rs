use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

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

#[test]
fn shorten_cuts_on_char_boundaries() {
    let long = "é".repeat(300);
    assert_eq!(shorten(&long).chars().count(), 200);
    assert_eq!(shorten("short"), "short");
}

#[test]
fn an_http_date_must_name_its_own_weekday() {
    assert_eq!(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_http_date("Monday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(parse_http_date("Mon Nov  6 08:49:37 1994"), None);
    assert_eq!(parse_http_date("Mon Nov 6 08:49:37 1994"), None);
}
