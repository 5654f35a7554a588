//! Object keys, topic and stream names, API paths and stream ARNs: any text. Parsing never
//! panics, and what a name is read as round-trips through the keys and ARNs built from it.
#![no_main]

use batch_clean::objects::decode_event_key;
use ingest_api::Route;
use libfuzzer_sys::fuzz_target;
use shared::route::{
    record_type_of_key, record_type_of_stream, record_type_of_topic, sink_file_of_key, topic_of_key,
};

fuzz_target!(|text: &str| {
    let _ = decode_event_key(text);
    let _ = Route::parse(text);
    let _ = record_type_of_key(text);
    if let Some(file) = sink_file_of_key(text) {
        assert_eq!(topic_of_key(text).ok(), Some(file.topic));
        assert!(file.start_offset >= 0);
    }
    if let Ok(record_type) = record_type_of_topic(text) {
        let key = format!("topics/{text}/dt=2026-12-04/a.ndjson");
        assert_eq!(topic_of_key(&key).ok(), Some(text));
        assert_eq!(record_type_of_key(&key).ok(), Some(record_type));
        let sink = format!("topics/{text}/partition=3/{text}+3+0000000007.json");
        let file = sink_file_of_key(&sink);
        assert_eq!(
            file.map(|f| (f.topic, f.partition, f.start_offset)),
            Some((text, 3, 7))
        );
        assert_eq!(
            Route::parse(&format!("/prod/topics/{text}")),
            Some(Route::Topic(text))
        );
    }
    if record_type_of_stream(text).is_ok() {
        let arn = format!("arn:aws:kinesis:eu-west-1:123456789012:stream/{text}");
        assert_eq!(stream_clean::stream_of(Some(&arn)), text);
        assert_eq!(
            Route::parse(&format!("/streams/{text}/records")),
            Some(Route::StreamRecords(text))
        );
    }
});
