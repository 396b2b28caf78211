//! Wall-clock helpers: Unix milliseconds, Kazoo's Gregorian seconds, ISO 8601 text.

/// Seconds between 0000-01-01 and 1970-01-01, as Kazoo counts them.
pub const GREGORIAN_OFFSET_SECS: u64 = 62_167_219_200;

/// Now, in Unix milliseconds (the event log's clock).
pub use eventlog::now_ms as now_unix_ms;

/// Unix milliseconds as Gregorian seconds.
pub fn gregorian_secs(unix_ms: u64) -> u64 {
    unix_ms / 1000 + GREGORIAN_OFFSET_SECS
}

/// Unix milliseconds as RFC 3339 UTC text with second precision.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gregorian_and_rfc3339_agree_with_known_values() {
        assert_eq!(gregorian_secs(0), 62_167_219_200);
        assert_eq!(gregorian_secs(1_500), 62_167_219_201);
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
    }
}
