//! Any bytes as an ingested event: parsing and validation never panic, and an accepted
//! event has a known hook and well-formed ids.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(event) = piston_webhooks::ingest::validate_event(value) {
        assert_eq!(event.payload["account_id"], event.account_id.as_str());
        assert_eq!(event.payload["hook_event"], event.hook_event.as_str());
    }
});
