//! stream-clean's Kafka handler against a local lake: MSK and self-managed events of the
//! original's rows land exactly once per (topic, partition, offset), whatever is redelivered,
//! overlapped or reordered; bad values are quarantined with their exact bytes and position; a
//! failed write fails the invocation, or answers the partial-batch response.

use aws_lambda_events::event::kafka::KafkaEvent;
use lake::{Lake, LakeTable};
use serde_json::{json, Value};
use stream_clean::kafka::{handle, kafka_event, FailureMode, FetchedRecord, KafkaItemIdentifier};
use stream_clean::StreamCleanDeps;
use test_support::{assert_fixture_rows, fixture_lines, quarantined, sorted_rows};

const PIN: &str = "0a5e6ec37a2f.pin";

fn deps(dir: &tempfile::TempDir) -> StreamCleanDeps {
    StreamCleanDeps {
        lake: Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap(),
    }
}

fn event_file(name: &str) -> KafkaEvent {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The fixture's pins at `offsets` of partition 0 (pin `i` at offset `100 + i`, as in
/// events/msk.json).
fn pins_at(offsets: impl IntoIterator<Item = i64>) -> Vec<FetchedRecord> {
    let pins = fixture_lines("pin");
    offsets
        .into_iter()
        .map(|offset| FetchedRecord {
            topic: PIN.to_string(),
            partition: 0,
            offset,
            key: None,
            value: Some(pins[(offset - 100) as usize].clone().into_bytes()),
            timestamp_ms: 1_764_815_400_000,
        })
        .collect()
}

fn msk(records: &[FetchedRecord]) -> KafkaEvent {
    kafka_event("aws:kafka", None, "127.0.0.1:9092", records).unwrap()
}

#[tokio::test]
async fn an_msk_event_over_two_pin_partitions_lands_the_rows_once_however_it_is_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let event = event_file("msk.json");
    let first = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert!(first.response.batch_item_failures.is_empty());
    let c = first.report.counts;
    assert_eq!((c.records_in, c.rows_written, c.quarantined), (23, 23, 0));
    assert_fixture_rows(&deps.lake).await;

    // The same batch again, an overlapping window, and an earlier window after a later one.
    let again = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(
        (
            again.report.counts.rows_written,
            again.report.counts.already_committed
        ),
        (0, 23)
    );
    for window in [pins_at(102..105), pins_at(100..103)] {
        let r = handle(&msk(&window), &deps, FailureMode::FailInvocation)
            .await
            .unwrap();
        assert_eq!(
            (
                r.report.counts.rows_written,
                r.report.counts.already_committed
            ),
            (0, 3)
        );
    }
    assert_fixture_rows(&deps.lake).await;
    // Each row knows its topic, partition and offset.
    let sources: Vec<String> = sorted_rows(&deps.lake, "geo")
        .await
        .iter()
        .map(|r| r["_source"].as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = (0..7)
        .map(|o| format!("kafka:0a5e6ec37a2f.geo+0+{o}"))
        .collect();
    let mut got = sources.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn batches_out_of_order_skip_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    // The later offsets of partition 0 commit first; the earlier ones still land after.
    let later = handle(&msk(&pins_at(103..105)), &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(later.report.counts.rows_written, 2);
    let earlier = handle(&msk(&pins_at(100..104)), &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(
        (
            earlier.report.counts.rows_written,
            earlier.report.counts.already_committed
        ),
        (3, 1)
    );
    assert_eq!(deps.lake.count_rows("pin").await.unwrap(), 5);
}

#[tokio::test]
async fn a_self_managed_event_lands_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let event = event_file("self-managed-kafka.json");
    assert_eq!(event.event_source.as_deref(), Some("SelfManagedKafka"));
    let r = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(r.report.counts.rows_written, 23);
    assert_fixture_rows(&deps.lake).await;
}

#[tokio::test]
async fn bad_values_are_quarantined_with_their_bytes_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let mut event: Value = serde_json::to_value(msk(&pins_at(100..101))).unwrap();
    let bad = |offset: i64, value: Value| {
        json!({"topic": PIN, "partition": 0, "offset": offset, "timestamp": 0,
               "timestampType": "CREATE_TIME", "key": null, "value": value, "headers": []})
    };
    let records = event["records"]["0a5e6ec37a2f.pin-0"]
        .as_array_mut()
        .unwrap();
    // Not JSON; a tombstone; not base64; JSON without an index; bytes that are not UTF-8.
    records.push(bad(101, json!("bm90IGpzb24=")));
    records.push(bad(102, Value::Null));
    records.push(bad(103, json!("%%%")));
    records.push(bad(104, json!("eyJ0aXRsZSI6ICJubyBpbmRleCJ9")));
    records.push(bad(105, json!("/w==")));
    event["records"]["events.other-0"] = json!([{"topic": "events.other", "partition": 0,
        "offset": 9, "timestamp": 0, "timestampType": "CREATE_TIME", "key": null,
        "value": "eyJpbmQiOiAxfQ==", "headers": []}]);
    let event: KafkaEvent = serde_json::from_value(event).unwrap();
    let r = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    let c = r.report.counts;
    assert_eq!((c.records_in, c.rows_written, c.quarantined), (7, 1, 6));
    let quarantined = quarantined(&deps.lake).await;
    assert_eq!(
        quarantined,
        [
            ("kafka:0a5e6ec37a2f.pin+0+101", "not json"),
            ("kafka:0a5e6ec37a2f.pin+0+102", ""),
            ("kafka:0a5e6ec37a2f.pin+0+103", "%%%"),
            ("kafka:0a5e6ec37a2f.pin+0+104", "{\"title\": \"no index\"}"),
            ("kafka:0a5e6ec37a2f.pin+0+105", "base64:/w=="),
            ("kafka:events.other+0+9", "{\"ind\": 1}"),
        ]
        .map(|(s, r)| (s.to_string(), r.to_string()))
    );
    // A redelivery quarantines nothing twice.
    let again = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(
        (
            again.report.counts.quarantined,
            again.report.counts.already_committed
        ),
        (0, 7)
    );
    assert_eq!(deps.lake.count_rows("quarantine").await.unwrap(), 6);
}

#[tokio::test]
async fn a_failed_write_fails_the_invocation_or_names_each_partitions_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    // The pin table's location is taken by a file, so its commit fails; geo and user land.
    std::fs::create_dir_all(dir.path().join("lake")).unwrap();
    std::fs::write(dir.path().join("lake/pin"), b"blocked").unwrap();
    let event = event_file("msk.json");
    let error = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap_err();
    assert_eq!((error.retried, error.source.failed), (9, LakeTable::Pin));
    let partial = handle(&event, &deps, FailureMode::ReportBatchItemFailures)
        .await
        .unwrap();
    let mut failed: Vec<KafkaItemIdentifier> = partial
        .response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    failed.sort_by(|a, b| a.partition.cmp(&b.partition));
    assert_eq!(
        failed,
        [("0a5e6ec37a2f.pin-0", 100), ("0a5e6ec37a2f.pin-1", 57)].map(|(p, o)| {
            KafkaItemIdentifier {
                partition: p.to_string(),
                offset: o,
            }
        })
    );
    assert_eq!(
        serde_json::to_value(KafkaItemIdentifier {
            partition: "t-0".into(),
            offset: 5
        })
        .unwrap(),
        json!({"partition": "t-0", "offset": 5})
    );
    // Once the table can be written, the retry lands pin and nothing twice.
    std::fs::remove_file(dir.path().join("lake/pin")).unwrap();
    let retry = handle(&event, &deps, FailureMode::FailInvocation)
        .await
        .unwrap();
    assert_eq!(
        (
            retry.report.counts.rows_written,
            retry.report.counts.already_committed
        ),
        (9, 14)
    );
    assert_fixture_rows(&deps.lake).await;
}
