//! Any bytes stored as a log record: the decoder returns an error or a record, and a
//! record it returns re-encodes to a value that decodes to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = eventlog::decode_stored_record(1, data) {
        let again = eventlog::encode_stored_record(1, record.time_ms, &[0; 32], &record.event)
            .expect("a decoded event encodes");
        let back = eventlog::decode_stored_record(1, &again).expect("re-encoded record decodes");
        assert_eq!(back.event, record.event);
    }
});
