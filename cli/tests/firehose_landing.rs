//! The batch route's Firehose landing when Firehose refuses entries, through the real AWS SDK
//! client against a Firehose endpoint on 127.0.0.1 that refuses what each test tells it to (the
//! local Firehose of the integration test never refuses anything).

use base64::Engine;
use bytes::Bytes;
use ingest_api::{FirehoseLanding, IngestDeps, MemoryStream};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Given the call's number and a record's line, the error code to refuse it with, if any.
type Refusal = dyn Fn(usize, &str) -> Option<&'static str> + Send + Sync;

/// Refuses the entries `refuse` picks (by attempt and record), accepts the rest, and keeps
/// every accepted record's bytes.
#[derive(Clone)]
struct FakeFirehose {
    refuse: Arc<Refusal>,
    calls: Arc<Mutex<usize>>,
    accepted: Arc<Mutex<Vec<String>>>,
}

async fn put_record_batch(
    axum::extract::State(fake): axum::extract::State<FakeFirehose>,
    headers: http::HeaderMap,
    body: Bytes,
) -> (http::StatusCode, String) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(target, "Firehose_20150804.PutRecordBatch");
    let request: Value = serde_json::from_slice(&body).unwrap();
    if request["DeliveryStreamName"] == "missing" {
        let body = json!({"__type": "ResourceNotFoundException", "message": "Firehose missing not found."});
        return (http::StatusCode::BAD_REQUEST, body.to_string());
    }
    let attempt = {
        let mut calls = fake.calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    let mut responses = Vec::new();
    let mut failed = 0;
    for record in request["Records"].as_array().unwrap() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(record["Data"].as_str().unwrap())
            .unwrap();
        let line = String::from_utf8(data).unwrap();
        match (fake.refuse)(attempt, &line) {
            Some(code) => {
                failed += 1;
                responses.push(json!({"ErrorCode": code, "ErrorMessage": "Slow down."}));
            }
            None => {
                fake.accepted.lock().unwrap().push(line);
                responses.push(json!({"RecordId": format!("r{attempt}")}));
            }
        }
    }
    let body = json!({"FailedPutCount": failed, "Encrypted": false, "RequestResponses": responses});
    (http::StatusCode::OK, body.to_string())
}

/// Starts the fake on a free loopback port; returns ingest deps whose batch route lands there.
async fn start(
    refuse: impl Fn(usize, &str) -> Option<&'static str> + Send + Sync + 'static,
    stream_name: &str,
) -> (IngestDeps, FakeFirehose) {
    let fake = FakeFirehose {
        refuse: Arc::new(refuse),
        calls: Arc::default(),
        accepted: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(put_record_batch)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version_latest()
        .endpoint_url(format!("http://{addr}"))
        .region(aws_sdk_firehose::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    let streams: BTreeMap<_, _> = shared::RecordType::ALL
        .into_iter()
        .map(|rt| (rt, stream_name.to_string()))
        .collect();
    let deps = IngestDeps {
        raw: Arc::new(FirehoseLanding::new(
            aws_sdk_firehose::Client::from_conf(config),
            streams,
        )),
        stream: Arc::new(MemoryStream::new()),
    };
    (deps, fake)
}

fn geo(ind: i64) -> Value {
    json!({"ind": ind, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"})
}

fn produce(n: i64) -> http::Request<Bytes> {
    let records: Vec<Value> = (1..=n).map(|i| json!({"value": geo(i)})).collect();
    http::Request::builder()
        .method("POST")
        .uri("/topics/0a5e6ec37a2f.geo")
        .header("content-type", "application/vnd.kafka.json.v2+json")
        .body(Bytes::from(json!({"records": records}).to_string()))
        .unwrap()
}

fn line(ind: i64) -> String {
    format!("{}\n", geo(ind))
}

#[tokio::test]
async fn refused_entries_are_resent_alone_and_the_request_answers_200_once_all_are_in() {
    // The first call refuses records 2 and 4; the second takes them.
    let (deps, fake) = start(
        |attempt, line| {
            let refused = line.contains("\"ind\":2,") || line.contains("\"ind\":4,");
            (attempt == 1 && refused).then_some("ServiceUnavailableException")
        },
        "raw-geo",
    )
    .await;
    let response = ingest_api::handle(produce(5), &deps).await;
    assert_eq!(response.status(), 200, "{}", response.body());
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["offsets"].as_array().unwrap().len(), 5);
    assert_eq!(*fake.calls.lock().unwrap(), 2);
    // Each record reached Firehose exactly once, as an NDJSON line.
    assert_eq!(
        *fake.accepted.lock().unwrap(),
        vec![line(1), line(3), line(5), line(2), line(4)]
    );
}

#[tokio::test]
async fn entries_still_refused_after_the_retries_answer_503_and_nothing_is_acknowledged() {
    let (deps, fake) = start(
        |_, line| {
            line.contains("\"ind\":3,")
                .then_some("ServiceUnavailableException")
        },
        "raw-geo",
    )
    .await;
    let response = ingest_api::handle(produce(3), &deps).await;
    assert_eq!(response.status(), 503, "{}", response.body());
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["error"], "unavailable");
    assert_eq!(
        body["message"],
        "Firehose delivery stream `raw-geo` is unavailable; 2 of 3 records were accepted and will land, the others were not: resend the whole request (the copies are counted once by the query views and removed by maintenance); retry after 5 s"
    );
    // The first call and three retries of the refused record; the others were sent once, and
    // will land: the client's retry makes whole-row duplicates that the views count once.
    assert_eq!(*fake.calls.lock().unwrap(), 4);
    assert_eq!(*fake.accepted.lock().unwrap(), vec![line(1), line(2)]);
}

#[tokio::test]
async fn a_missing_delivery_stream_is_a_configuration_error_not_a_retry() {
    let (deps, fake) = start(|_, _| None, "missing").await;
    let response = ingest_api::handle(produce(1), &deps).await;
    assert_eq!(response.status(), 500, "{}", response.body());
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["error"], "misconfigured");
    assert_eq!(
        body["message"],
        "Firehose delivery stream `missing` does not exist: check the DELIVERY_STREAM_* settings; nothing was landed, and retrying will not help until the deployment is fixed"
    );
    assert_eq!(*fake.calls.lock().unwrap(), 0);
    assert!(fake.accepted.lock().unwrap().is_empty());
}
