//! The batch path end to end: the ingest API's batch route → raw landing → batch-clean → Delta
//! tables.

mod common;

use bytes::Bytes;
use common::{expected_clean, fixture_lines, spec_rows, Env};
use serde_json::{json, Value};

/// The original client's request for one row: `json.dumps({"records": [{"value": row}]})`
/// (Python's defaults: `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`).
fn original_request(topic: &str, row: &Value) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://abc123.execute-api.us-east-1.amazonaws.com/production/topics/{topic}"
        ))
        .header("Content-Type", "application/vnd.kafka.json.v2+json")
        .body(Bytes::from(pinpipe::wire::kafka_body(row)))
        .unwrap()
}

#[tokio::test]
async fn original_client_bytes_through_the_batch_route_give_the_same_rows() {
    let env = Env::new();
    let ingest = env.ingest();
    for table in ["pin", "geo", "user"] {
        for line in fixture_lines(table) {
            let value: Value = serde_json::from_str(&line).unwrap();
            let request = original_request(&format!("0a5e6ec37a2f.{table}"), &value);
            // The fixture lines were dumped by Python with the same separators; where they are
            // ASCII they are byte-identical to what the client puts inside its body.
            if line.is_ascii() {
                let body = format!("{{\"records\": [{{\"value\": {line}}}]}}");
                assert_eq!(std::str::from_utf8(request.body()).unwrap(), body);
            }

            let response = ingest_api::handle(request, &ingest).await;
            assert_eq!(response.status(), 200, "{}", response.body());
            assert_eq!(
                response.headers()["content-type"],
                "application/vnd.kafka.v2+json"
            );
            let body: Value = serde_json::from_str(response.body()).unwrap();
            let offset = body["offsets"][0]["offset"].clone();
            assert!(offset.is_i64());
            assert_eq!(
                body,
                json!({"offsets": [{"partition": 0, "offset": offset, "error_code": null, "error": null}],
                       "key_schema_id": null, "value_schema_id": null})
            );
        }
    }
    let landed = env.landed_event().await;
    assert_eq!(landed.records.len(), 23, "one object per request");
    let report = env.clean_landed().await;
    assert_eq!(
        (
            report.objects,
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
}

#[tokio::test]
async fn a_request_lands_as_one_ndjson_object() {
    let env = Env::new();
    let lines = fixture_lines("geo");
    let values: Vec<String> = lines
        .iter()
        .map(|l| format!("{{\"value\": {l}, \"key\": null, \"partition\": 0}}"))
        .collect();
    let request = http::Request::builder()
        .method("POST")
        .uri("/topics/0a5e6ec37a2f.geo")
        .header("content-type", "application/json; charset=utf-8")
        .body(Bytes::from(format!(
            "{{\"records\": [{}]}}",
            values.join(", ")
        )))
        .unwrap();
    let response = ingest_api::handle(request, &env.ingest()).await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["offsets"].as_array().unwrap().len(), 7);

    let event = env.landed_event().await;
    assert_eq!(event.records.len(), 1);
    let key = event.records[0].s3.object.key.clone().unwrap();
    assert!(key.starts_with("topics/0a5e6ec37a2f.geo/dt="), "{key}");
    let raw = std::fs::read_to_string(env.dir.path().join("raw").join(&key)).unwrap();
    let landed: Vec<Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(landed, sent);
}
