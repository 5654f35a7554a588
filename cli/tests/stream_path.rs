//! The stream path end to end: ingest API stream routes → in-process stream → stream-clean →
//! Delta tables, and the same rows whichever path a record takes.

mod common;

use bytes::Bytes;
use common::{expected_clean, fixture_lines, spec_rows, Env};
use serde_json::{json, Value};

/// The original stream client's request: `json.dumps({"StreamName": …, "Data": row,
/// "PartitionKey": "test"})` with `Content-Type: application/json`, under a stage prefix.
fn original_put(stream: &str, row: &Value) -> http::Request<Bytes> {
    http::Request::builder()
        .method("PUT")
        .uri(format!(
            "https://abc123.execute-api.us-east-1.amazonaws.com/production/streams/{stream}/record"
        ))
        .header("Content-Type", "application/json")
        .body(Bytes::from(pinpipe::wire::kinesis_body(stream, row)))
        .unwrap()
}

#[tokio::test]
async fn fixture_rows_through_the_stream_route_give_the_expected_rows() {
    let env = Env::new();
    for table in ["pin", "geo", "user"] {
        let stream = format!("streaming-0a5e6ec37a2f-{table}");
        for line in fixture_lines(table) {
            let row: Value = serde_json::from_str(&line).unwrap();
            let request = original_put(&stream, &row);
            if line.is_ascii() {
                let exact = format!("{{\"StreamName\": \"{stream}\", \"Data\": {line}, \"PartitionKey\": \"test\"}}");
                assert_eq!(std::str::from_utf8(request.body()).unwrap(), exact);
            }
            let (status, body) = env.call(request).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["ShardId"], "shardId-000000000000");
            assert_eq!(body["SequenceNumber"].as_str().unwrap().len(), 56);
            assert_eq!(body.as_object().unwrap().len(), 2);
        }
    }
    let report = env.flush_stream().await;
    assert_eq!(
        (
            report.counts.records_in,
            report.counts.rows_written,
            report.counts.quarantined
        ),
        (23, 23, 0)
    );
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(env.lake(), table).await,
            expected_clean(table),
            "table {table}"
        );
    }
    // Flushing again finds nothing new; the Kinesis sources are recorded per row.
    assert_eq!(env.flush_stream().await.counts.records_in, 0);
    let rows = env.lake().read_rows("geo").await.unwrap();
    assert!(rows[0]["_source"]
        .as_str()
        .unwrap()
        .starts_with("kinesis:streaming-0a5e6ec37a2f-geo/shardId-000000000000/49"));
}

#[tokio::test]
async fn both_paths_give_the_same_rows() {
    let env = Env::new();
    let posts = pinpipe::posts::from_dir(&common::fixtures_dir()).unwrap();
    let sent = common::post_all(
        &posts,
        "0a5e6ec37a2f",
        pinpipe::local::IngestPath::Both,
        &env.ingest(),
    )
    .await;
    assert_eq!(
        (sent.sent, sent.by_status.get(&200).copied()),
        (46, Some(46))
    );
    env.clean_landed().await;
    env.flush_stream().await;
    for table in ["pin", "geo", "user"] {
        let mut rows = spec_rows(env.lake(), table).await;
        assert_eq!(
            rows.len(),
            2 * expected_clean(table).len(),
            "each path stored its copy"
        );
        rows.dedup();
        assert_eq!(rows, expected_clean(table), "table {table}");
    }
}

#[tokio::test]
async fn base64_data_and_the_path_stream_winning() {
    use base64::Engine as _;
    let env = Env::new();
    let line = &fixture_lines("user")[0];
    let b64 = base64::engine::general_purpose::STANDARD.encode(line);
    let body =
        json!({"StreamName": "streaming-other-pin", "Data": b64, "PartitionKey": "k"}).to_string();
    let req = http::Request::builder()
        .method("PUT")
        .uri("/streams/streaming-0a5e6ec37a2f-user/record")
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap();
    let (status, got) = env.call(req).await;
    assert_eq!(status, 200, "{got}");
    let drained = env.stream.drain(10);
    assert_eq!(drained.len(), 1);
    assert_eq!(drained[0].0, "streaming-0a5e6ec37a2f-user");
    // The Kinesis record's bytes are the record's JSON text.
    let data: Value = serde_json::from_slice(&drained[0].1[0].data).unwrap();
    assert_eq!(data, serde_json::from_str::<Value>(line).unwrap());
}

#[tokio::test]
async fn put_records_list_and_describe() {
    let env = Env::new();
    let rows: Vec<Value> = fixture_lines("geo")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let body = json!({"records": rows.iter().map(|r| json!({"data": r, "partition-key": "p"})).collect::<Vec<_>>()}).to_string();
    let req = http::Request::builder()
        .method("PUT")
        .uri("/streams/streaming-0a5e6ec37a2f-geo/records")
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap();
    let (status, got) = env.call(req).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["FailedRecordCount"], 0);
    let records = got["Records"].as_array().unwrap();
    assert_eq!(records.len(), 7);
    assert!(records
        .iter()
        .all(|r| r["ShardId"] == "shardId-000000000000"));

    let get = |uri: &str| {
        http::Request::builder()
            .method("GET")
            .uri(uri)
            .body(Bytes::new())
            .unwrap()
    };
    let (status, got) = env.call(get("/production/streams")).await;
    assert_eq!(
        (status, got),
        (
            200,
            json!({"StreamNames": ["streaming-0a5e6ec37a2f-geo"], "HasMoreStreams": false})
        )
    );
    let (status, got) = env.call(get("/streams/streaming-0a5e6ec37a2f-geo")).await;
    assert_eq!(status, 200);
    assert_eq!(
        got,
        json!({"StreamDescription": {"StreamName": "streaming-0a5e6ec37a2f-geo",
            "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/streaming-0a5e6ec37a2f-geo",
            "StreamStatus": "ACTIVE", "Shards": [{"ShardId": "shardId-000000000000"}], "HasMoreShards": false}})
    );
    let (status, got) = env.call(get("/streams/streaming-nope-geo")).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (404, Some("unknown_stream"))
    );
    assert_eq!(env.flush_stream().await.counts.rows_written, 7);
}

/// When the lake cannot take one stream's batch, every stream's drained records stay pending
/// (none is dropped) and land once the lake is back.
#[tokio::test]
async fn serve_drops_stream_records_when_one_stream_fails_to_write() {
    let env = Env::new();
    for table in ["pin", "geo", "user"] {
        let stream = format!("streaming-0a5e6ec37a2f-{table}");
        let row: Value = serde_json::from_str(&fixture_lines(table)[0]).unwrap();
        let (status, body) = env.call(original_put(&stream, &row)).await;
        assert_eq!(status, 200, "{body}");
    }
    // The geo table's location is a file: its commit fails, as an unwritable store would.
    let geo = env.dir.path().join("lake").join("geo");
    std::fs::write(&geo, b"not a table").unwrap();
    let deps = stream_clean::StreamCleanDeps {
        lake: env.lake().clone(),
    };
    let failed = pinpipe::local::flush_stream(&env.stream, &deps, 10_000).await;
    assert!(failed.is_err());
    // geo is handed over first: pin's and user's drained batches must not be dropped.
    assert_eq!(env.stream.pending(), 3);
    std::fs::remove_file(&geo).unwrap();
    let report = env.flush_stream().await;
    assert_eq!(report.counts.rows_written, 3);
    for table in ["pin", "geo", "user"] {
        assert_eq!(env.lake().count_rows(table).await.unwrap(), 1, "{table}");
    }
}
