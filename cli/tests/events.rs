//! Every sample event in events/ — the files `sam local invoke -e` and
//! `cargo lambda invoke --data-file` take — fed to its function's handler.

mod common;

use common::Env;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(name))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// An API Gateway proxy event, through lambda_http as Lambda delivers it, to the API handler.
async fn api(env: &Env, name: &str) -> (u16, Value) {
    let request =
        lambda_http::request::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let request = request.map(|body| bytes::Bytes::copy_from_slice(body.as_ref()));
    env.call(request).await
}

#[tokio::test]
async fn every_event_file_drives_its_handler() {
    let env = Env::new();
    let mut covered = BTreeSet::new();
    let mut cover = |name: &str| covered.insert(name.to_string());

    // API Gateway proxy requests, one per route.
    let (status, body) = api(&env, "api-post-topic.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offsets"].as_array().unwrap().len(), 1);
    cover("api-post-topic.json");
    let (status, body) = api(&env, "api-put-stream-record.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ShardId"], "shardId-000000000000");
    cover("api-put-stream-record.json");
    let (status, body) = api(&env, "api-put-stream-records.json").await;
    assert_eq!(
        (status, body["FailedRecordCount"].as_u64()),
        (200, Some(0)),
        "{body}"
    );
    assert_eq!(body["Records"].as_array().unwrap().len(), 2);
    cover("api-put-stream-records.json");
    let (status, body) = api(&env, "api-get-streams.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["StreamNames"],
        serde_json::json!(["streaming-0a5e6ec37a2f-pin", "streaming-0a5e6ec37a2f-user"])
    );
    cover("api-get-streams.json");
    let (status, body) = api(&env, "api-get-stream.json").await;
    assert_eq!(
        (status, body["StreamDescription"]["StreamStatus"].as_str()),
        (200, Some("ACTIVE"))
    );
    cover("api-get-stream.json");

    // S3 put: the object it names (key URL-encoded in the event) is cleaned.
    let geo = common::fixture_lines("geo")[0].clone();
    env.put_raw(
        "topics/0a5e6ec37a2f.geo/partition=0/0a5e6ec37a2f.geo+0+0000000000.json",
        &geo,
    )
    .await;
    let s3: Value = serde_json::from_str(&read("s3-put.json")).unwrap();
    let report = batch_clean::handle_event(s3, &env.deps).await.unwrap();
    assert_eq!((report.objects, report.counts.rows_written), (1, 1));
    assert_eq!(
        report.metrics(),
        [
            ("Objects", 1),
            ("RecordsIn", 1),
            ("RowsWritten", 1),
            ("Quarantined", 0),
            ("DuplicatesSkipped", 0),
            ("AlreadyCommitted", 0)
        ]
    );
    cover("s3-put.json");
    // The same notification via SQS (plus S3's test event): already committed, nothing new.
    let sqs: Value = serde_json::from_str(&read("sqs-s3-put.json")).unwrap();
    let report = batch_clean::handle_event(sqs, &env.deps).await.unwrap();
    assert_eq!(
        (
            report.objects,
            report.counts.rows_written,
            report.counts.already_committed,
            report.counts.quarantined
        ),
        (1, 0, 1, 0)
    );
    assert_eq!(
        report.metrics(),
        [
            ("Objects", 1),
            ("RecordsIn", 1),
            ("RowsWritten", 0),
            ("Quarantined", 0),
            ("DuplicatesSkipped", 0),
            ("AlreadyCommitted", 1)
        ]
    );
    cover("sqs-s3-put.json");

    // A Kinesis batch from the three streams, one bad record among them.
    let kinesis: aws_lambda_events::event::kinesis::KinesisEvent =
        serde_json::from_str(&read("kinesis-batch.json")).unwrap();
    let outcome = stream_clean::handle(
        &kinesis,
        &stream_clean::StreamCleanDeps {
            lake: env.lake().clone(),
        },
    )
    .await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(
        (
            outcome.report.counts.rows_written,
            outcome.report.counts.quarantined
        ),
        (3, 1)
    );
    assert_eq!(
        outcome.report.metrics(),
        [
            ("RecordsIn", 4),
            ("RowsWritten", 3),
            ("Quarantined", 1),
            ("DuplicatesSkipped", 0),
            ("AlreadyCommitted", 0),
            ("ItemFailures", 0)
        ]
    );
    cover("kinesis-batch.json");

    // The daily schedule: the run completes over this lake.
    let _scheduled: aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> =
        serde_json::from_str(&read("scheduled.json")).unwrap();
    let daily = run_queries::RunQueriesDeps {
        lake: env.lake().clone(),
        retention: std::time::Duration::from_secs(3600),
    };
    let report = run_queries::handle(&daily).await.unwrap();
    assert_eq!(report.queries.queries.len(), 10);
    // The geo record came both from S3 and from Kinesis: maintenance keeps one of the two.
    assert_eq!(
        report.metrics(),
        [("Queries", 10), ("Failures", 0), ("DuplicatesRemoved", 1)]
    );
    assert_eq!(
        env.lake()
            .read_rows("results/q1_popular_category_by_country")
            .await
            .unwrap()[0]["category"],
        "mens-fashion"
    );
    cover("scheduled.json");

    // Kafka batches from MSK and from a self-managed cluster, into a lake of their own that
    // already holds the MSK Connect file of geo's offset 0: the Kafka record at that offset is
    // the same record, and lands once.
    let kafka = Env::new();
    kafka
        .put_raw(
            "topics/0a5e6ec37a2f.geo/partition=0/0a5e6ec37a2f.geo+0+0000000000.json",
            &geo,
        )
        .await;
    kafka.clean_landed().await;
    let deps = stream_clean::StreamCleanDeps {
        lake: kafka.lake().clone(),
    };
    let mode = stream_clean::kafka::FailureMode::FailInvocation;
    let msk: aws_lambda_events::event::kafka::KafkaEvent =
        serde_json::from_str(&read("msk.json")).unwrap();
    let outcome = stream_clean::kafka::handle(&msk, &deps, mode)
        .await
        .unwrap();
    let c = outcome.report.counts;
    assert_eq!(
        (c.records_in, c.rows_written, c.already_committed),
        (23, 22, 1)
    );
    cover("msk.json");
    let self_managed: aws_lambda_events::event::kafka::KafkaEvent =
        serde_json::from_str(&read("self-managed-kafka.json")).unwrap();
    let outcome = stream_clean::kafka::handle(&self_managed, &deps, mode)
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.report.counts.rows_written,
            outcome.report.counts.already_committed
        ),
        (0, 23)
    );
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            common::spec_rows(kafka.lake(), table).await,
            common::expected_clean(table),
            "{table}"
        );
    }
    cover("self-managed-kafka.json");

    let files: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, covered, "every events/ file is exercised here");
}
