//! The raw record decoders and the cleaning: any bytes as a pin, geo or user record (the first
//! byte picks which: `p`, `g`, `u`). Cleaning never panics, and the three ways in (bytes, text,
//! a parsed JSON value) agree: the same row and warnings, or an error for all.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let record_type = pinpipe_fuzz::record_type(selector);
    let from_bytes = shared::clean_record(record_type, bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        assert_eq!(from_bytes, shared::clean_text(record_type, text));
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let from_value = shared::clean_value(record_type, &value);
        match (&from_bytes, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "bytes and parsed value clean differently"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("bytes clean to {a:?} but the parsed value to {b:?}"),
        }
    }
});
