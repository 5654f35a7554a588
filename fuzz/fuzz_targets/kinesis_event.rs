//! stream-clean's Kinesis path. An input starting `{` is a whole event as JSON; any other is
//! records: its first line names the stream, and each further line is one record's data.
//! Decoding never panics, and every record becomes exactly one row or one quarantine entry
//! holding its exact data.
#![no_main]

use aws_lambda_events::event::kinesis::KinesisEvent;
use libfuzzer_sys::fuzz_target;
use pinpipe_fuzz::{first_line, Kept};

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        if let Ok(event) = serde_json::from_slice::<KinesisEvent>(data) {
            check(&event);
        }
        return;
    }
    let (stream, rest) = first_line(data);
    let stream = String::from_utf8_lossy(stream);
    let records: Vec<(String, String, Vec<u8>)> = rest
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(n, line)| (format!("4959{n:040}"), format!("key-{n}"), line.to_vec()))
        .collect();
    check(&stream_clean::kinesis_event(
        &stream,
        "shardId-000000000000",
        &records,
    ));
});

fn check(event: &KinesisEvent) {
    let (inputs, report) = stream_clean::clean_event(event);
    let sent: Vec<&[u8]> = event
        .records
        .iter()
        .map(|r| &r.kinesis.data.0[..])
        .collect();
    assert_eq!(report.counts.records_in, sent.len());
    Kept::of(&inputs).assert_each_record_once(sent.len(), &sent);
}
