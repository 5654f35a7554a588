//! The Kafka path against a real Kafka-compatible broker (Tansu, started by the test command
//! on 127.0.0.1; `PINPIPE_TEST_KAFKA` names it): the REST proxy route produces into Kafka with
//! acks=all, a consumer cleans the topics with stream-clean's Kafka handler, and the lake holds
//! exactly the records acknowledged — after a `kill -9` of the consumer mid-stream, a
//! redelivery, an overlapping window, and values no cleaner can read.
//!
//! Every test uses topics of its own prefix, so they share the broker.

mod common;

use common::pinpipe;
use pinpipe::consume::{Consumer, ConsumerConfig, GroupOffsets};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The broker the test command started; a missing one fails the test.
fn broker() -> String {
    let addr = std::env::var("PINPIPE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_KAFKA is not set: run the tests with scripts/test.sh, which starts a Kafka-compatible broker (Tansu) on 127.0.0.1")
    });
    if std::net::TcpStream::connect(&addr).is_err() {
        panic!("no Kafka broker answers at {addr} (PINPIPE_TEST_KAFKA): start one, or run scripts/test.sh");
    }
    addr
}

/// A topic prefix no other test uses.
fn prefix(test: &str) -> String {
    format!("{test}{}", uuid::Uuid::new_v4().simple())
}

/// A produce request of the REST proxy route, sent to the ingest API handler with a Kafka
/// landing: its status and body.
async fn produce(deps: &ingest_api::IngestDeps, topic: &str, values: &[Value]) -> (u16, Value) {
    let records: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
    let request = http::Request::post(format!("/topics/{topic}"))
        .header("content-type", "application/vnd.kafka.json.v2+json")
        .body(bytes::Bytes::from(
            json!({ "records": records }).to_string(),
        ))
        .unwrap();
    let response = ingest_api::handle(request, deps).await;
    (
        response.status().as_u16(),
        serde_json::from_str(response.body()).unwrap(),
    )
}

fn kafka_api(bootstrap: &str) -> ingest_api::IngestDeps {
    ingest_api::IngestDeps {
        raw: std::sync::Arc::new(ingest_api::KafkaLanding::new(
            ingest_api::KafkaConfig::local(bootstrap, 2),
        )),
        stream: std::sync::Arc::new(ingest_api::MemoryStream::new()),
    }
}

fn fixture_values(table: &str) -> Vec<Value> {
    common::fixture_lines(table)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lake_at(dir: &Path) -> lake::Lake {
    lake::Lake::open(dir.join("lake").to_str().unwrap()).unwrap()
}

fn consumer_config(bootstrap: &str, dir: &Path, prefix: &str) -> ConsumerConfig {
    ConsumerConfig {
        bootstrap: bootstrap.to_string(),
        group: "tests".to_string(),
        offsets: dir.join("offsets.json"),
        prefix: Some(prefix.to_string()),
        batch_size: 10_000,
        wait: Duration::from_millis(100),
    }
}

/// Consumes every partition of `prefix`'s topics to its end.
async fn consume_all(bootstrap: &str, dir: &Path, prefix: &str) -> stream_clean::StreamReport {
    let lake = lake_at(dir);
    lake.ensure_tables().await.unwrap();
    let mut consumer = Consumer::connect(consumer_config(bootstrap, dir, prefix), lake)
        .await
        .unwrap();
    let (_keep, stop) = watch::channel(false);
    consumer.run(true, stop).await.unwrap()
}

async fn assert_fixture_rows(dir: &Path) {
    test_support::assert_fixture_rows(&lake_at(dir)).await;
}

#[tokio::test]
async fn records_produced_through_the_api_are_consumed_into_the_lake_exactly() {
    let bootstrap = broker();
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("api");
    let api = kafka_api(&bootstrap);
    for table in ["pin", "geo", "user"] {
        let values = fixture_values(table);
        let (status, body) = produce(&api, &format!("{prefix}.{table}"), &values).await;
        assert_eq!(status, 200, "{body}");
        // The answer carries where the broker put each record: one partition per request,
        // consecutive offsets.
        let offsets = body["offsets"].as_array().unwrap();
        assert_eq!(offsets.len(), values.len());
        let partition = &offsets[0]["partition"];
        let first = offsets[0]["offset"].as_i64().unwrap();
        for (i, o) in offsets.iter().enumerate() {
            assert_eq!(
                (&o["partition"], o["offset"].as_i64()),
                (partition, Some(first + i as i64))
            );
            assert_eq!(o["error_code"], Value::Null);
        }
    }
    // A request with one bad record lands nothing, in Kafka either.
    let mut bad = fixture_values("geo");
    bad[3] = json!({"ind": "not a number"});
    let (status, body) = produce(&api, &format!("{prefix}.geo"), &bad).await;
    assert_eq!(status, 422, "{body}");

    let report = consume_all(&bootstrap, dir.path(), &prefix).await;
    assert_eq!(
        (report.counts.records_in, report.counts.rows_written),
        (23, 23)
    );
    assert_fixture_rows(dir.path()).await;
    // The group's offsets are past every record.
    let offsets = GroupOffsets::load(&dir.path().join("offsets.json"), "tests").unwrap();
    let consumed: i64 = offsets.offsets.values().sum();
    assert_eq!(consumed, 23);
}

#[tokio::test]
async fn serve_with_kafka_lands_what_it_acknowledged_when_stopped() {
    let bootstrap = broker();
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("serve");
    let args = pinpipe::serve::ServeArgs {
        interval_ms: 100,
        kafka: Some(bootstrap.clone()),
        kafka_partitions: 3,
        kafka_prefix: Some(prefix.clone()),
        ..pinpipe::serve::ServeArgs::local(
            dir.path().join("raw").display().to_string(),
            dir.path().join("lake").display().to_string(),
        )
    };
    let server = pinpipe::serve::start(&args).await.unwrap();
    assert!(
        server.description.contains("batch records → Kafka"),
        "{}",
        server.description
    );
    let client = reqwest::Client::new();
    for table in ["pin", "geo", "user"] {
        for value in fixture_values(table) {
            let response = client
                .post(format!("http://{}/topics/{prefix}.{table}", server.addr))
                .header("content-type", "application/vnd.kafka.json.v2+json")
                .body(json!({"records": [{"value": value}]}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    let totals = server.shutdown().await.unwrap();
    assert_eq!(totals.kafka.counts.rows_written, 23);
    assert_fixture_rows(dir.path()).await;
    // The consumer group's offsets are kept beside the lake.
    assert!(dir.path().join("kafka-offsets-pinpipe.json").exists());
}

/// Distinct pins `range`, one request of 100 per chunk.
async fn produce_pins(api: &ingest_api::IngestDeps, topic: &str, range: std::ops::Range<i64>) {
    let values: Vec<Value> = range
        .map(|i| {
            json!({"index": i, "unique_id": format!("u-{i}"), "title": format!("post {i}"),
                        "follower_count": "12k", "category": "travel"})
        })
        .collect();
    for chunk in values.chunks(100) {
        let (status, body) = produce(api, topic, chunk).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn a_consumer_killed_mid_stream_resumes_with_every_record_once() {
    let bootstrap = broker();
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("kill");
    let topic = format!("{prefix}.pin");
    let total = 6_000;
    produce_pins(&kafka_api(&bootstrap), &topic, 0..total).await;

    let consume = |extra: &[&str]| {
        pinpipe()
            .args([
                "consume", "--kafka", &bootstrap, "--prefix", &prefix, "--group", "tests",
            ])
            .arg("--lake")
            .arg(dir.path().join("lake"))
            .arg("--offsets")
            .arg(dir.path().join("offsets.json"))
            .args(["--batch-size", "250"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // kill -9 once some batches are committed and the rest are not.
    let mut child = consume(&[]);
    let lake = lake_at(dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let landed_before_kill = loop {
        let landed = lake.count_rows("pin").await.unwrap_or(0);
        if landed >= 500 {
            break landed;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer landed nothing in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = lake.count_rows("pin").await.unwrap();
    assert!(
        (500..total as usize).contains(&after_kill),
        "killed mid-stream: {landed_before_kill} then {after_kill} of {total} rows"
    );

    // Restarted, it reads from the offsets committed after the last Delta commit.
    let mut child = consume(&["--until-caught-up"]);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the restarted consumer failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the restarted consumer did not catch up in 180 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inds = common::sorted_inds(&lake, "pin").await;
    assert_eq!(inds, (0..total).collect::<Vec<_>>(), "every record once");
}

#[tokio::test]
async fn a_redelivered_and_an_overlapping_window_add_nothing() {
    let bootstrap = broker();
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("again");
    let api = kafka_api(&bootstrap);
    for table in ["geo", "user"] {
        let (status, _) = produce(&api, &format!("{prefix}.{table}"), &fixture_values(table)).await;
        assert_eq!(status, 200);
    }
    // Pins 0-2 to one partition of the pin topic, 3-5 to the other.
    let pins = fixture_values("pin");
    for chunk in pins[..6].chunks(3) {
        let (status, _) = produce(&api, &format!("{prefix}.pin"), chunk).await;
        assert_eq!(status, 200);
    }
    let first = consume_all(&bootstrap, dir.path(), &prefix).await;
    assert_eq!(first.counts.rows_written, 20);

    // The whole log delivered again (the group's offsets lost).
    let path = dir.path().join("offsets.json");
    std::fs::remove_file(&path).unwrap();
    let again = consume_all(&bootstrap, dir.path(), &prefix).await;
    assert_eq!(
        (again.counts.rows_written, again.counts.already_committed),
        (0, 20)
    );

    // New pins after the committed ones, delivered in a window that starts back at the
    // partition's first committed record: the old ones are skipped, the new ones land.
    let (status, body) = produce(&api, &format!("{prefix}.pin"), &pins[6..]).await;
    assert_eq!(status, 200);
    let partition = body["offsets"][0]["partition"].as_i64().unwrap();
    let mut offsets = GroupOffsets::load(&path, "tests").unwrap();
    offsets
        .offsets
        .insert(format!("{prefix}.pin-{partition}"), 0);
    offsets.save(&path).unwrap();
    let overlap = consume_all(&bootstrap, dir.path(), &prefix).await;
    let c = overlap.counts;
    assert_eq!(
        (c.records_in, c.rows_written, c.already_committed),
        (6, 3, 3)
    );
    assert_fixture_rows(dir.path()).await;
}

#[tokio::test]
async fn values_no_cleaner_can_read_are_quarantined_with_their_bytes() {
    let bootstrap = broker();
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("bad");
    let topic = format!("{prefix}.user");
    // Another producer writes straight to the topic, past the API's checks.
    let client = rskafka::client::ClientBuilder::new(vec![bootstrap.clone()])
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5_000)
        .await
        .unwrap();
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let values: [Option<&[u8]>; 4] = [
        Some(br#"{"ind": 1, "first_name": "Ada", "last_name": "Lovelace", "age": 36, "date_joined": "2015-10-24 11:23:51"}"#),
        Some(b"not json"),
        None,
        Some(br#"{"ind": 2, "age": "old"}"#),
    ];
    let records = values
        .iter()
        .map(|v| Record {
            key: None,
            value: v.map(<[u8]>::to_vec),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        })
        .collect();
    partition
        .produce(records, Compression::NoCompression)
        .await
        .unwrap();

    let report = consume_all(&bootstrap, dir.path(), &prefix).await;
    let c = report.counts;
    assert_eq!((c.records_in, c.rows_written, c.quarantined), (4, 1, 3));
    let lake = lake_at(dir.path());
    let quarantined = test_support::quarantined(&lake).await;
    assert_eq!(
        quarantined,
        vec![
            (format!("kafka:{topic}+0+1"), "not json".to_string()),
            (format!("kafka:{topic}+0+2"), String::new()),
            (
                format!("kafka:{topic}+0+3"),
                r#"{"ind": 2, "age": "old"}"#.to_string()
            ),
        ]
    );
}
