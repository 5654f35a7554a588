//! The functions against real local AWS-compatible endpoints (moto's server on 127.0.0.1,
//! started by scripts/test.sh), through the real clients: object_store and delta-rs for S3,
//! the AWS SDK for Firehose and Kinesis. The ingest API hands batch records to Firehose
//! delivery streams (which write the objects to S3) and puts stream records on Kinesis;
//! batch-clean reads the objects and writes Delta tables to S3 (conditional-put commits);
//! stream-clean cleans records read back with GetRecords; run-queries reads the S3 lake and
//! writes its results there.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use bytes::Bytes;
use common::{expected, expected_clean, fixture_lines};
use ingest_api::{FirehoseLanding, IngestDeps, KinesisSink};
use lake::Lake;
use object_store::ObjectStoreExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The local endpoint the test command started; the test fails when there is none.
fn endpoint() -> String {
    let endpoint = std::env::var("PINPIPE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test.sh, which starts an S3/Kinesis-compatible server on 127.0.0.1")
    });
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "local endpoints only: {endpoint}"
    );
    endpoint
}

fn configure_environment(endpoint: &str) {
    // Everything reads the usual AWS environment, as it does in Lambda.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
}

async fn create_bucket(endpoint: &str, bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "creating bucket {bucket}: {}",
        response.status()
    );
}

async fn create_stream(kinesis: &aws_sdk_kinesis::Client, name: &str) {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    for _ in 0..50 {
        let d = kinesis
            .describe_stream()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        if d.stream_description().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// A Direct PUT delivery stream writing to `topics/<topic>/` in `bucket`, as template.yaml
/// declares them.
async fn create_delivery_stream(
    firehose: &aws_sdk_firehose::Client,
    name: &str,
    bucket: &str,
    topic: &str,
) {
    use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/firehose-raw-landing")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix(format!("topics/{topic}/"))
        .error_output_prefix("firehose-errors/")
        .build()
        .unwrap();
    firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .unwrap();
}

/// A fresh raw bucket and lake bucket named after `what` and this run, and an S3 client for
/// the raw bucket.
async fn fresh_buckets(what: &str) -> (String, String, object_store::aws::AmazonS3) {
    let endpoint = endpoint();
    configure_environment(&endpoint);
    let run = std::process::id();
    let (raw_bucket, lake_bucket) = (format!("raw-{what}-{run}"), format!("lake-{what}-{run}"));
    create_bucket(&endpoint, &raw_bucket).await;
    create_bucket(&endpoint, &lake_bucket).await;
    let raw_store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&raw_bucket)
        .build()
        .unwrap();
    (raw_bucket, lake_bucket, raw_store)
}

fn request(method: &str, uri: &str, content_type: &str, body: Vec<u8>) -> http::Request<Bytes> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Bytes::from(body))
        .unwrap()
}

async fn distinct_spec_rows(lake: &Lake, table: &str) -> Vec<Value> {
    let mut rows = common::spec_rows(lake, table).await;
    rows.dedup();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_functions_on_local_s3_and_kinesis() {
    let endpoint = endpoint();
    configure_environment(&endpoint);
    let run = format!("{}", std::process::id());
    let (raw_bucket, lake_bucket) = (format!("raw-{run}"), format!("lake-{run}"));
    create_bucket(&endpoint, &raw_bucket).await;
    create_bucket(&endpoint, &lake_bucket).await;
    let config = aws_config::load_from_env().await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    for t in ["pin", "geo", "user"] {
        create_stream(&kinesis, &format!("streaming-{run}-{t}")).await;
    }

    let firehose = aws_sdk_firehose::Client::new(&config);
    let mut delivery_streams = std::collections::BTreeMap::new();
    for rt in shared::RecordType::ALL {
        let name = format!("raw-{run}-{}", rt.as_str());
        create_delivery_stream(
            &firehose,
            &name,
            &raw_bucket,
            &format!("{run}.{}", rt.as_str()),
        )
        .await;
        delivery_streams.insert(rt, name);
    }

    // ingest-api: the batch route hands records to Firehose, which writes them to S3; the
    // stream route puts on Kinesis.
    let deps = IngestDeps {
        raw: Arc::new(FirehoseLanding::new(firehose.clone(), delivery_streams)),
        stream: Arc::new(KinesisSink::new(kinesis.clone())),
    };
    for t in ["pin", "geo", "user"] {
        let stream = format!("streaming-{run}-{t}");
        for line in fixture_lines(t) {
            let row: Value = serde_json::from_str(&line).unwrap();
            let batch = ingest_api::handle(
                request(
                    "POST",
                    &format!("/production/topics/{run}.{t}"),
                    "application/vnd.kafka.json.v2+json",
                    pinpipe::wire::kafka_body(&row),
                ),
                &deps,
            )
            .await;
            assert_eq!(batch.status(), 200, "{}", batch.body());
            let put = ingest_api::handle(
                request(
                    "PUT",
                    &format!("/production/streams/{stream}/record"),
                    "application/json",
                    pinpipe::wire::kinesis_body(&stream, &row),
                ),
                &deps,
            )
            .await;
            assert_eq!(put.status(), 200, "{}", put.body());
            let body: Value = serde_json::from_str(put.body()).unwrap();
            assert!(body["ShardId"].as_str().unwrap().starts_with("shardId-"));
        }
    }
    let listed = ingest_api::handle(
        request("GET", "/streams", "application/json", Vec::new()),
        &deps,
    )
    .await;
    let names: Value = serde_json::from_str(listed.body()).unwrap();
    assert!(names["StreamNames"]
        .as_array()
        .unwrap()
        .contains(&Value::from(format!("streaming-{run}-geo"))));

    // batch-clean: the objects Firehose wrote → Delta tables on S3.
    let lake = Lake::open(&format!("s3://{lake_bucket}/lake")).unwrap();
    let raw_store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&raw_bucket)
        .build()
        .unwrap();
    let landed = batch_clean::objects::list_under(&raw_store, &raw_bucket, "topics")
        .await
        .unwrap();
    // The local Firehose flushes every PutRecordBatch call at once: one object per request.
    assert_eq!(landed.len(), 23, "{landed:?}");
    for object in &landed {
        assert!(
            object.key.starts_with(&format!("topics/{run}.")),
            "{}",
            object.key
        );
        let body = raw_store
            .get(&object_store::path::Path::from(object.key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(body.ends_with(b"}\n"), "NDJSON lines: {body:?}");
    }
    let batch_deps = batch_clean::BatchCleanDeps {
        raw: batch_clean::RawStores::s3(),
        lake: lake.clone(),
    };
    let event = batch_clean::objects::s3_put_event(&landed);
    let report = batch_clean::handle_s3(&event, &batch_deps).await.unwrap();
    assert_eq!(
        (
            report.objects,
            report.counts.rows_written,
            report.counts.quarantined
        ),
        (23, 23, 0)
    );
    assert_eq!(
        batch_clean::handle_s3(&event, &batch_deps)
            .await
            .unwrap()
            .counts
            .already_committed,
        23,
        "a replay adds nothing"
    );
    for t in ["pin", "geo", "user"] {
        assert_eq!(
            common::spec_rows(&lake, t).await,
            expected_clean(t),
            "{t} from batch-clean"
        );
    }

    // stream-clean: records read back with GetRecords, shaped as a KinesisEvent.
    let stream_deps = stream_clean::StreamCleanDeps { lake: lake.clone() };
    for t in ["pin", "geo", "user"] {
        let stream = format!("streaming-{run}-{t}");
        let shards = kinesis
            .list_shards()
            .stream_name(&stream)
            .send()
            .await
            .unwrap();
        let shard = shards.shards()[0].shard_id().to_string();
        let iterator = kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(&shard)
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let got = kinesis
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        let records: Vec<(String, String, Vec<u8>)> = got
            .records()
            .iter()
            .map(|r| {
                (
                    r.sequence_number().to_string(),
                    r.partition_key().unwrap_or_default().to_string(),
                    Blob::as_ref(r.data()).to_vec(),
                )
            })
            .collect();
        assert_eq!(records.len(), fixture_lines(t).len());
        let event = stream_clean::kinesis_event(&stream, &shard, &records);
        let outcome = stream_clean::handle(&event, &stream_deps).await;
        assert!(outcome.response.batch_item_failures.is_empty());
        assert_eq!(outcome.report.counts.rows_written, records.len());
        assert_eq!(
            stream_clean::handle(&event, &stream_deps)
                .await
                .report
                .counts
                .already_committed,
            records.len()
        );
        assert_eq!(
            lake.count_rows(t).await.unwrap(),
            2 * records.len(),
            "{t}: each path's copy"
        );
        assert_eq!(
            distinct_spec_rows(&lake, t).await,
            expected_clean(t),
            "{t} through the distinct view"
        );
    }

    // run-queries: reads the S3 lake, writes the results there, maintains the tables.
    let daily = run_queries::RunQueriesDeps {
        lake: lake.clone(),
        retention: Duration::from_secs(7 * 24 * 3600),
    };
    let report = run_queries::handle(&daily).await.unwrap();
    assert_eq!(
        report.maintenance[0]
            .report
            .as_ref()
            .unwrap()
            .duplicates_removed,
        9
    );
    let expected = expected();
    for q in lake::queries::QUERIES {
        let rows: Vec<Value> = lake
            .read_rows(&format!("results/{}", q.name))
            .await
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect();
        assert_eq!(
            Value::Array(rows),
            expected["queries"][q.name],
            "results/{} on S3",
            q.name
        );
    }
    for t in ["pin", "geo", "user"] {
        assert_eq!(
            common::spec_rows(&lake, t).await,
            expected_clean(t),
            "{t} after maintenance on S3"
        );
    }

    // The report, written beside the results, read back from S3: a chart per query, and the
    // health section naming the summary of the run that wrote it.
    use object_store::ObjectStoreExt;
    let lake_store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&lake_bucket)
        .build()
        .unwrap();
    let page = lake_store
        .get(&object_store::path::Path::from("lake/results/report.html"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for q in lake::queries::QUERIES {
        let section = &page[page.find(&format!("id=\"{}\"", q.name)).unwrap()..];
        assert!(section.contains("<svg"), "{}: no chart", q.name);
    }
    assert!(page.contains("Azerbaijan"), "q3b's country");
    assert!(page.contains(&report.summary), "{}", report.summary);
    assert!(page.contains("Every query and table maintenance succeeded."));
}

/// An object whose key was overwritten after its event is read at the version the event named:
/// the old event lands nothing (the new version's event covers it), the new one its own rows.
#[tokio::test(flavor = "multi_thread")]
async fn an_overwritten_key_is_read_at_the_version_its_event_names() {
    let (raw_bucket, lake_bucket, raw_store) = fresh_buckets("ow").await;
    let key = "topics/p.geo/dt=2026-11-28/object.ndjson";
    let geo = |ind: i64| {
        format!("{{\"ind\": {ind}, \"timestamp\": \"2020-01-01 00:00:00\", \"latitude\": 1.5, \"longitude\": 2.5, \"country\": \"Chile\"}}\n")
    };
    let mut versions = Vec::new();
    for ind in [1, 2] {
        raw_store
            .put(&object_store::path::Path::from(key), geo(ind).into())
            .await
            .unwrap();
        let listed = batch_clean::objects::list_under(&raw_store, &raw_bucket, "topics")
            .await
            .unwrap();
        versions.push(listed[0].clone());
    }
    assert_ne!(versions[0].etag, versions[1].etag);
    let deps = batch_clean::BatchCleanDeps {
        raw: batch_clean::RawStores::s3(),
        lake: Lake::open(&format!("s3://{lake_bucket}/lake")).unwrap(),
    };
    let old = batch_clean::objects::s3_put_event(&versions[..1]);
    let report = batch_clean::handle_s3(&old, &deps).await.unwrap();
    assert_eq!(
        (
            report.objects,
            report.missing_objects,
            report.counts.rows_written
        ),
        (0, 1, 0)
    );
    let new = batch_clean::objects::s3_put_event(&versions[1..]);
    let report = batch_clean::handle_s3(&new, &deps).await.unwrap();
    assert_eq!((report.objects, report.counts.rows_written), (1, 1));
    let inds: Vec<Value> = common::spec_rows(&deps.lake, "geo")
        .await
        .iter()
        .map(|r| r["ind"].clone())
        .collect();
    assert_eq!(inds, vec![Value::from(2)]);
}

/// Keys with characters S3 event notifications URL-encode are read and cleaned on S3 too,
/// from a listing (`process`) and from S3-encoded events alike.
#[tokio::test(flavor = "multi_thread")]
async fn awkward_object_keys_on_s3_are_not_skipped() {
    let (raw_bucket, lake_bucket, raw_store) = fresh_buckets("keys").await;
    for (i, name) in common::AWKWARD_NAMES.iter().enumerate() {
        let key = format!("topics/p.geo/dt=2026-11-28/{name}");
        let row = format!("{{\"ind\": {i}, \"timestamp\": \"2020-01-01 00:00:00\", \"latitude\": 1.5, \"longitude\": 2.5, \"country\": \"Chile\"}}\n");
        raw_store
            .put(&object_store::path::Path::parse(&key).unwrap(), row.into())
            .await
            .unwrap();
    }
    let listed = batch_clean::objects::list_under(&raw_store, &raw_bucket, "topics")
        .await
        .unwrap();
    let deps = batch_clean::BatchCleanDeps {
        raw: batch_clean::RawStores::s3(),
        lake: Lake::open(&format!("s3://{lake_bucket}/lake")).unwrap(),
    };
    let event = batch_clean::objects::s3_put_event(&listed);
    let report = batch_clean::handle_s3(&event, &deps).await.unwrap();
    let n = common::AWKWARD_NAMES.len();
    assert_eq!(
        (
            report.objects,
            report.missing_objects,
            report.counts.rows_written
        ),
        (n, 0, n)
    );
}

/// A bucket that does not exist is a deployment or infrastructure fault, not a vanished
/// object: the invocation fails (Lambda retries, then the dead-letter queue) instead of
/// reporting success.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_raw_bucket_is_reported_as_success() {
    let endpoint = endpoint();
    configure_environment(&endpoint);
    let run = format!("{}", std::process::id());
    let lake_bucket = format!("lake-nobucket-{run}");
    create_bucket(&endpoint, &lake_bucket).await;
    let deps = batch_clean::BatchCleanDeps {
        raw: batch_clean::RawStores::s3(),
        lake: Lake::open(&format!("s3://{lake_bucket}/lake")).unwrap(),
    };
    let object = batch_clean::ObjectRef {
        bucket: format!("no-such-bucket-{run}"),
        key: "topics/p.geo/dt=2026-11-28/x.ndjson".into(),
        etag: None,
        size: None,
    };
    let event = batch_clean::objects::s3_put_event(&[object]);
    let error = batch_clean::handle_s3(&event, &deps).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("bucket `no-such-bucket-{run}` does not exist")),
        "{error}"
    );
}
