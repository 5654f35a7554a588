//! `pinpipe invoke`: every file in events/ through its function's real handler, as the
//! `pinpipe` binary runs it, with the JSON response Lambda would return; a redelivered and an
//! overlapping Kafka window leave exactly the input's rows; a failing handler exits non-zero
//! with Lambda's error document.

mod common;

use common::pinpipe;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// `pinpipe invoke <function> --event <file>` on the lake and raw directory under `dir`: the
/// exit status and the response printed.
fn invoke(dir: &Path, function: &str, event: &Path, extra: &[&str]) -> (bool, Value) {
    let output = pinpipe()
        .args(["invoke", function, "--event"])
        .arg(event)
        .arg("--lake")
        .arg(dir.join("lake"))
        .arg("--raw")
        .arg(dir.join("raw"))
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let response = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{function} {}: not one JSON response ({e}): {stdout}\nstderr: {}",
            event.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), response)
}

fn event(name: &str) -> PathBuf {
    events_dir().join(name)
}

/// An API Gateway proxy response: its status and its body as JSON.
fn proxy(response: &Value) -> (u64, Value) {
    assert_eq!(response["isBase64Encoded"], false, "{response}");
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response["statusCode"].as_u64().unwrap(), body)
}

#[test]
fn every_event_file_runs_through_pinpipe_invoke() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut covered = BTreeSet::new();

    let (ok, r) = invoke(d, "ingest-api", &event("api-post-topic.json"), &[]);
    let (status, body) = proxy(&r);
    assert!(ok);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        r["multiValueHeaders"]["content-type"],
        json!(["application/vnd.kafka.v2+json"])
    );
    assert_eq!(body["offsets"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&body["key_schema_id"], &body["value_schema_id"]),
        (&Value::Null, &Value::Null)
    );
    covered.insert("api-post-topic.json");

    let (_, r) = invoke(d, "ingest-api", &event("api-put-stream-record.json"), &[]);
    let (status, body) = proxy(&r);
    assert_eq!(
        (status, &body["ShardId"]),
        (200, &json!("shardId-000000000000"))
    );
    assert_eq!(body["SequenceNumber"].as_str().unwrap().len(), 56);
    covered.insert("api-put-stream-record.json");

    let (_, r) = invoke(d, "ingest-api", &event("api-put-stream-records.json"), &[]);
    let (status, body) = proxy(&r);
    assert_eq!((status, &body["FailedRecordCount"]), (200, &json!(0)));
    assert_eq!(body["Records"].as_array().unwrap().len(), 2);
    covered.insert("api-put-stream-records.json");

    // The in-process stream holds only what one invocation puts.
    let (_, r) = invoke(d, "ingest-api", &event("api-get-streams.json"), &[]);
    assert_eq!(
        proxy(&r),
        (200, json!({"StreamNames": [], "HasMoreStreams": false}))
    );
    covered.insert("api-get-streams.json");
    let (ok, r) = invoke(d, "ingest-api", &event("api-get-stream.json"), &[]);
    let (status, body) = proxy(&r);
    assert!(ok, "a 404 is the handler's answer, not a failure");
    assert_eq!((status, &body["error"]), (404, &json!("unknown_stream")));
    covered.insert("api-get-stream.json");

    // The S3 put names an MSK Connect file; the SQS-wrapped one the same object.
    let key = "topics/0a5e6ec37a2f.geo/partition=0/0a5e6ec37a2f.geo+0+0000000000.json";
    let object = d.join("raw").join(key);
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, &common::fixture_lines("geo")[0]).unwrap();
    let (ok, r) = invoke(d, "batch-clean", &event("s3-put.json"), &[]);
    assert!(ok, "{r}");
    assert_eq!(
        (&r["objects"], &r["rows_written"], &r["records_in"]),
        (&json!(1), &json!(1), &json!(1))
    );
    covered.insert("s3-put.json");
    let (ok, r) = invoke(d, "batch-clean", &event("sqs-s3-put.json"), &[]);
    assert!(ok, "{r}");
    assert_eq!(
        (&r["rows_written"], &r["already_committed"]),
        (&json!(0), &json!(1))
    );
    covered.insert("sqs-s3-put.json");

    for name in ["kinesis-batch.json", "msk.json", "self-managed-kafka.json"] {
        let (ok, r) = invoke(d, "stream-clean", &event(name), &[]);
        assert!(ok, "{name}: {r}");
        assert_eq!(r, json!({"batchItemFailures": []}), "{name}");
        covered.insert(name);
    }

    let (ok, r) = invoke(d, "run-queries", &event("scheduled.json"), &[]);
    assert!(ok, "{r}");
    assert!(r["queries"].is_array() || r["queries"].is_object(), "{r}");
    covered.insert("scheduled.json");

    let all: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let covered: BTreeSet<String> = covered.into_iter().map(String::from).collect();
    assert_eq!(covered, all, "every file in events/ is invoked");
}

/// `events/msk.json` cut to the records of `keep` offsets per topic-partition key.
fn window(keep: &[(&str, std::ops::Range<i64>)]) -> Value {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(event("msk.json")).unwrap()).unwrap();
    let records = event["records"].as_object_mut().unwrap();
    records.retain(|key, _| keep.iter().any(|(k, _)| k == key));
    for (key, offsets) in keep {
        let list = records[*key].as_array_mut().unwrap();
        list.retain(|r| offsets.contains(&r["offset"].as_i64().unwrap()));
    }
    event
}

async fn assert_fixture_rows(dir: &Path) {
    let lake = lake::Lake::open(dir.join("lake").to_str().unwrap()).unwrap();
    test_support::assert_fixture_rows(&lake).await;
}

#[tokio::test]
async fn kafka_events_then_an_overlapping_redelivery_leave_exactly_the_input_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, r) = invoke(dir.path(), "stream-clean", &event("msk.json"), &[]);
    assert!(ok && r == json!({"batchItemFailures": []}), "{r}");
    // Lambda redelivers a window overlapping what landed: two pin partitions and geo.
    let overlap = dir.path().join("overlap.json");
    let window = window(&[
        ("0a5e6ec37a2f.pin-0", 102..105),
        ("0a5e6ec37a2f.pin-1", 57..61),
        ("0a5e6ec37a2f.geo-0", 3..7),
    ]);
    std::fs::write(&overlap, window.to_string()).unwrap();
    let (ok, r) = invoke(dir.path(), "stream-clean", &overlap, &[]);
    assert!(ok && r == json!({"batchItemFailures": []}), "{r}");
    assert_fixture_rows(dir.path()).await;

    // The self-managed event, into a lake of its own, the same.
    let other = tempfile::tempdir().unwrap();
    let (ok, r) = invoke(
        other.path(),
        "stream-clean",
        &event("self-managed-kafka.json"),
        &[],
    );
    assert!(ok && r == json!({"batchItemFailures": []}), "{r}");
    assert_fixture_rows(other.path()).await;
}

#[test]
fn a_failing_handler_prints_lambdas_error_document_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // The pin table's location is taken by a file: the Kafka write fails.
    std::fs::create_dir_all(dir.path().join("lake")).unwrap();
    std::fs::write(dir.path().join("lake/pin"), b"blocked").unwrap();
    let (ok, r) = invoke(dir.path(), "stream-clean", &event("msk.json"), &[]);
    assert!(!ok);
    assert_eq!(r["errorType"], "KafkaCleanError", "{r}");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("retried by Lambda"),
        "{r}"
    );
    // With ReportBatchItemFailures, the partial-batch answer instead: each pin partition from
    // its first record.
    let (ok, r) = invoke(
        dir.path(),
        "stream-clean",
        &event("msk.json"),
        &["--kafka-report-batch-item-failures"],
    );
    assert!(ok, "{r}");
    let mut failures: Vec<Value> = r["batchItemFailures"].as_array().unwrap().clone();
    failures.sort_by_key(|f| {
        f["itemIdentifier"]["partition"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(
        failures,
        vec![
            json!({"itemIdentifier": {"partition": "0a5e6ec37a2f.pin-0", "offset": 100}}),
            json!({"itemIdentifier": {"partition": "0a5e6ec37a2f.pin-1", "offset": 57}}),
        ]
    );
    // An event of another function is a usage error, not a handler failure.
    let output = pinpipe()
        .args(["invoke", "stream-clean", "--event"])
        .arg(event("scheduled.json"))
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a Kinesis or Kafka event"));
}
