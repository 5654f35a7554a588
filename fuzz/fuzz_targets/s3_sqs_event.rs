//! batch-clean's event decoders: any JSON as an S3 event or an SQS event of S3 notifications.
//! Decoding never panics; every object-created record naming a bucket and key is one object to
//! clean; and every SQS message is S3's test event, names only complete records (objects to
//! clean, or events with nothing to clean such as an object removed), or is quarantined once
//! with its exact body.
#![no_main]

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use batch_clean::objects::{in_s3_event, in_sqs_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<S3Event>(data) {
        let created = event
            .records
            .iter()
            .filter(|r| {
                r.event_name
                    .as_deref()
                    .is_none_or(|n| n.starts_with("ObjectCreated"))
            })
            .filter(|r| r.s3.bucket.name.is_some() && r.s3.object.key.is_some())
            .count();
        assert_eq!(in_s3_event(&event).len(), created);
    }
    if let Ok(event) = serde_json::from_slice::<SqsEvent>(data) {
        for message in &event.records {
            let mut one = event.clone();
            one.records = vec![message.clone()];
            let (objects, quarantined) = in_sqs_event(&one);
            let body = message.body.as_deref().unwrap_or_default();
            let notification = serde_json::from_str::<S3Event>(body).ok();
            let test_event = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("Event").and_then(|e| e.as_str()).map(str::to_string))
                .is_some_and(|e| e == "s3:TestEvent");
            let incomplete = notification.as_ref().is_none_or(|n| {
                n.records.is_empty()
                    || n.records.iter().any(|r| {
                        r.event_name
                            .as_deref()
                            .is_none_or(|n| n.starts_with("ObjectCreated"))
                            && (r.s3.bucket.name.is_none() || r.s3.object.key.is_none())
                    })
            });
            if test_event {
                assert!(objects.is_empty() && quarantined.is_empty());
            } else if incomplete {
                assert_eq!(quarantined.len(), 1, "message {body:?} vanished");
                assert_eq!(quarantined[0].raw_bytes(), body.as_bytes());
            } else {
                assert!(quarantined.is_empty(), "{quarantined:?}");
            }
        }
    }
});
