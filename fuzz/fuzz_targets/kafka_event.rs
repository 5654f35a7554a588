//! stream-clean's Kafka path. An input starting `{` is a whole MSK or self-managed Kafka
//! event as JSON; any other is records: its first line names the topic, and each further line
//! is one record's value (an empty line a tombstone), offsets in line order. Decoding never
//! panics, and every record becomes exactly one row or one quarantine entry holding its exact
//! value.
#![no_main]

use aws_lambda_events::event::kafka::KafkaEvent;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use pinpipe_fuzz::{first_line, Kept};
use stream_clean::kafka::{kafka_event, FetchedRecord};

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        if let Ok(event) = serde_json::from_slice::<KafkaEvent>(data) {
            check(&event);
        }
        return;
    }
    let (topic, rest) = first_line(data);
    let topic = String::from_utf8_lossy(topic).into_owned();
    let records: Vec<FetchedRecord> = rest
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(n, line)| FetchedRecord {
            topic: topic.clone(),
            partition: 0,
            offset: n as i64,
            key: None,
            value: (!line.is_empty()).then(|| line.to_vec()),
            timestamp_ms: 0,
        })
        .collect();
    if let Ok(event) = kafka_event("aws:kafka", None, "127.0.0.1:9092", &records) {
        check(&event);
    }
});

/// A value as quarantine keeps it: its decoded bytes, or the text itself when it is not
/// base64; nothing for a tombstone.
fn sent_bytes(value: Option<&str>) -> Vec<u8> {
    match value {
        None => Vec::new(),
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|_| text.as_bytes().to_vec()),
    }
}

fn check(event: &KafkaEvent) {
    let (inputs, report) = stream_clean::kafka::clean_event(event);
    let sent: Vec<Vec<u8>> = event
        .records
        .values()
        .flatten()
        .map(|r| sent_bytes(r.value.as_deref()))
        .collect();
    let sent: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    assert_eq!(report.counts.records_in, sent.len());
    Kept::of(&inputs).assert_each_record_once(sent.len(), &sent);
}
