//! Every bad request in SPEC §3 gets its 4xx JSON error, nothing is landed, nothing panics.

use bytes::Bytes;
use ingest_api::{handle, IngestDeps, MemoryStream, RawLanding};
use object_store::ObjectStore;
use serde_json::{json, Value};
use std::sync::Arc;

const KAFKA: &str = "application/vnd.kafka.json.v2+json";

struct Api {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    deps: IngestDeps,
}

impl Api {
    fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("raw");
        let deps = IngestDeps {
            raw: Arc::new(RawLanding::local_dir(&root).unwrap()),
            stream: Arc::new(MemoryStream::new()),
        };
        Api {
            _dir: dir,
            root,
            deps,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> (u16, http::HeaderMap, Value) {
        let mut req = http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let response = handle(req.body(body.into()).unwrap(), &self.deps).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = serde_json::from_str(response.body())
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", response.body()));
        (status, headers, body)
    }

    async fn post(&self, path: &str, body: impl Into<Bytes>) -> (u16, Value) {
        let (status, _, body) = self.call("POST", path, Some(KAFKA), body).await;
        (status, body)
    }

    fn landed(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(&self.root)
    }
}

fn geo(ind: i64) -> Value {
    json!({"ind": ind, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"})
}

fn records(values: &[Value]) -> String {
    json!({"records": values.iter().map(|v| json!({"value": v})).collect::<Vec<_>>()}).to_string()
}

#[tokio::test]
async fn malformed_json() {
    let api = Api::new();
    let (status, body) = api.post("/topics/p.geo", "{\"records\": [").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "malformed_json");
    assert_eq!(
        body["message"],
        "request body is not valid JSON: EOF while parsing a list at line 1 column 13"
    );
    assert_eq!(body["details"], json!([]));
}

#[tokio::test]
async fn wrong_or_missing_content_type() {
    let api = Api::new();
    let (status, _, body) = api
        .call(
            "POST",
            "/topics/p.geo",
            Some("text/plain"),
            records(&[geo(1)]),
        )
        .await;
    assert_eq!(status, 415);
    assert_eq!(
        body,
        json!({"error": "unsupported_media_type",
               "message": "Content-Type `text/plain` is not accepted; use application/vnd.kafka.json.v2+json or application/vnd.kafka.v2+json or application/json",
               "details": []})
    );
    let (status, _, body) = api
        .call("POST", "/topics/p.geo", None, records(&[geo(1)]))
        .await;
    assert_eq!(status, 415);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Content-Type (none) is not accepted"));
    assert_eq!(api.landed(), 0);
}

#[tokio::test]
async fn unknown_topic_suffix_or_bad_topic_name() {
    let api = Api::new();
    let (status, body) = api
        .post("/topics/0a5e6ec37a2f.pins", records(&[geo(1)]))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown_topic");
    assert_eq!(body["message"], "`0a5e6ec37a2f.pins` does not end in a record type: expected <prefix>.pin, <prefix>.geo or <prefix>.user");
    let (status, body) = api.post("/topics/..", records(&[geo(1)])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_topic"))
    );
}

#[tokio::test]
async fn body_without_records() {
    let api = Api::new();
    for body in [
        r#"{"value": {}}"#,
        r#"[1, 2]"#,
        r#"{"records": {"value": 1}}"#,
    ] {
        let (status, got) = api.post("/topics/p.geo", body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(got["error"], "invalid_request");
        assert_eq!(
            got["message"],
            r#"body must be {"records": [{"value": <record>}, ...]}"#
        );
    }
    let (status, got) = api.post("/topics/p.geo", r#"{"records": []}"#).await;
    assert_eq!((status, got["error"].as_str()), (422, Some("no_records")));
}

#[tokio::test]
async fn one_invalid_record_rejects_the_request_and_names_each_bad_record() {
    let api = Api::new();
    let bad_ts = json!({"ind": 2, "timestamp": "yesterday", "latitude": 1.0, "longitude": 2.0, "country": "X"});
    let no_ind = json!({"timestamp": "2020-08-28 03:52:47", "country": "X"});
    let body = json!({"records": [
        {"value": geo(1)}, {"value": bad_ts}, {"key": "k"}, {"value": no_ind}, {"value": "a string"}, {"value": geo(5)}
    ]})
    .to_string();
    let (status, got) = api.post("/topics/p.geo", body).await;
    assert_eq!(status, 422);
    assert_eq!(
        got,
        json!({
            "error": "invalid_records",
            "message": "4 of 6 records rejected; nothing was landed: fix them and resend the request",
            "details": [
                {"record": 1, "field": "timestamp", "error": "bad_value",
                 "message": "`timestamp` must be a timestamp like \"2020-08-28 03:52:47\", found \"yesterday\""},
                {"record": 2, "error": "missing_value", "message": "each record must be an object with a \"value\""},
                {"record": 3, "field": "ind", "error": "missing_field", "message": "`ind` is required but missing or null"},
                {"record": 4, "field": null, "error": "not_an_object", "message": "record must be a JSON object, found a string"}
            ]
        })
    );
    assert_eq!(api.landed(), 0, "all or nothing");
}

#[tokio::test]
async fn oversized_body_record_and_count() {
    let api = Api::new();
    let big = "x".repeat(6 * 1024 * 1024 + 1);
    let (status, got) = api.post("/topics/p.geo", big).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (413, Some("body_too_large"))
    );
    assert_eq!(
        got["message"],
        "request body is 6291457 bytes; the limit is 6291456: split it into smaller requests"
    );

    let mut huge = geo(1);
    huge["country"] = Value::from("y".repeat(1024 * 1024));
    let (status, got) = api.post("/topics/p.geo", records(&[geo(0), huge])).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (413, Some("record_too_large"))
    );
    assert_eq!(got["details"][0]["record"], 1);
    assert_eq!(got["details"][0]["error"], "record_too_large");

    let many: Vec<Value> = (0..501).map(geo).collect();
    let (status, got) = api.post("/topics/p.geo", records(&many)).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (413, Some("too_many_records"))
    );
    assert_eq!(
        got["message"],
        "the request holds 501 records; the limit is 500: split it"
    );
    assert_eq!(api.landed(), 0);

    let (status, _) = api.post("/topics/p.geo", records(&many[..500])).await;
    assert_eq!(status, 200, "500 records is within the limit");
}

#[tokio::test]
async fn wrong_method_and_unknown_route() {
    let api = Api::new();
    let (status, headers, got) = api.call("GET", "/topics/p.geo", Some(KAFKA), "").await;
    assert_eq!(
        (status, got["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert!(headers.contains_key("allow"));
    let (status, _, got) = api.call("POST", "/nowhere", Some(KAFKA), "{}").await;
    assert_eq!(status, 404);
    assert_eq!(
        got,
        json!({"error": "not_found", "message": "no route for /nowhere: use POST /topics/<topic>, PUT /streams/<stream>/record(s) or GET /streams", "details": []})
    );
}

#[tokio::test]
async fn stage_prefix_is_tolerated() {
    let api = Api::new();
    let (status, got) = api
        .post("/production/topics/0a5e6ec37a2f.geo", records(&[geo(1)]))
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(api.landed(), 1);
}

#[tokio::test]
async fn raw_store_outage_is_503_with_retry_after_and_nothing_landed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    // The landing directory is a file: every put fails, as an unreachable bucket would.
    std::fs::write(&root, b"not a directory").unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::prefix::PrefixStore::new(store, "raw"));
    let deps = IngestDeps {
        raw: Arc::new(RawLanding::new(store)),
        stream: Arc::new(MemoryStream::new()),
    };
    let req = http::Request::builder()
        .method("POST")
        .uri("/topics/p.geo")
        .header("content-type", KAFKA)
        .body(Bytes::from(records(&[geo(1)])))
        .unwrap();
    let response = handle(req, &deps).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["error"], "unavailable");
    assert_eq!(
        body["message"],
        "the raw store is unavailable; nothing was written, retry after 5 s"
    );
}

#[tokio::test]
async fn garbage_never_panics_and_is_always_a_json_4xx() {
    let api = Api::new();
    let bodies: [&[u8]; 8] = [
        b"",
        b"\xff\xfe",
        b"null",
        b"{\"records\": null}",
        b"{\"records\": [null]}",
        b"{\"records\": [{\"value\": null}]}",
        b"{\"records\": [{\"value\": {\"ind\": 1e999}}]}",
        b"{\"records\": [{\"value\": {\"ind\": 99999999999999999999}}]}",
    ];
    for body in bodies {
        for path in [
            "/topics/p.pin",
            "/topics/p.geo",
            "/topics/p.user",
            "/topics/",
            "/",
            "/topics/p.pin/extra",
        ] {
            let (status, _, got) = api
                .call("POST", path, Some(KAFKA), Bytes::copy_from_slice(body))
                .await;
            assert!(
                (400..500).contains(&status),
                "{path} {body:?} -> {status} {got}"
            );
            assert!(
                got["error"].is_string() && got["message"].is_string() && got["details"].is_array()
            );
        }
    }
    assert_eq!(api.landed(), 0);
}

async fn put(api: &Api, path: &str, body: Value) -> (u16, Value) {
    let (status, _, got) = api
        .call("PUT", path, Some("application/json"), body.to_string())
        .await;
    (status, got)
}

#[tokio::test]
async fn stream_route_errors() {
    let api = Api::new();
    let ok = json!({"StreamName": "s", "Data": geo(1), "PartitionKey": "test"});
    let (status, got) = put(&api, "/streams/streaming-x-geos/record", ok.clone()).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (404, Some("unknown_stream"))
    );
    assert_eq!(got["message"], "`streaming-x-geos` does not end in a record type: expected streaming-<prefix>-pin, -geo or -user");

    let (status, got) = put(
        &api,
        "/streams/streaming-x-geo/record",
        json!({"Data": geo(1)}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(got["error"], "invalid_records");
    assert_eq!(
        got["details"],
        json!([{"record": 0, "error": "bad_partition_key", "message": "`PartitionKey` is required: a string of 1 to 256 characters"}])
    );

    let (status, got) = put(
        &api,
        "/streams/streaming-x-geo/record",
        json!({"Data": {"ind": "x"}, "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        got["details"][0]["message"],
        "`ind` must be an integer, found the text \"x\""
    );

    let (status, got) = put(
        &api,
        "/streams/streaming-x-geo/record",
        json!({"Data": "not base64!", "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(
        (status, got["details"][0]["error"].as_str()),
        (422, Some("bad_data"))
    );

    let (status, got) = put(&api, "/streams/streaming-x-geo/record", json!([1])).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (422, Some("invalid_request"))
    );

    let mut huge = geo(1);
    huge["country"] = Value::from("y".repeat(1024 * 1024));
    let (status, got) = put(
        &api,
        "/streams/streaming-x-geo/record",
        json!({"Data": huge, "PartitionKey": "k"}),
    )
    .await;
    assert_eq!(
        (status, got["error"].as_str()),
        (413, Some("record_too_large"))
    );

    let many: Vec<Value> = (0..501)
        .map(|i| json!({"data": geo(i), "partition-key": "k"}))
        .collect();
    let (status, got) = put(
        &api,
        "/streams/streaming-x-geo/records",
        json!({"records": many}),
    )
    .await;
    assert_eq!(
        (status, got["error"].as_str()),
        (413, Some("too_many_records"))
    );

    let (status, _, got) = api
        .call(
            "PUT",
            "/streams/streaming-x-geo/record",
            Some("text/plain"),
            ok.to_string(),
        )
        .await;
    assert_eq!(
        (status, got["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, _, got) = api
        .call(
            "PUT",
            "/streams/streaming-x-geo/record",
            Some("application/json"),
            "{",
        )
        .await;
    assert_eq!(
        (status, got["error"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, _, got) = api
        .call(
            "POST",
            "/streams/streaming-x-geo/record",
            Some("application/json"),
            ok.to_string(),
        )
        .await;
    assert_eq!(
        (status, got["message"].as_str()),
        (405, Some("POST is not allowed here; use PUT"))
    );
}

/// A real Kinesis client aimed at a closed port on this machine: every call fails to connect.
fn unreachable_kinesis() -> ingest_api::KinesisSink {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    ingest_api::KinesisSink::new(aws_sdk_kinesis::Client::from_conf(config))
}

#[tokio::test]
async fn kinesis_outage_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let deps = IngestDeps {
        raw: Arc::new(RawLanding::local_dir(&dir.path().join("raw")).unwrap()),
        stream: Arc::new(unreachable_kinesis()),
    };
    let body = json!({"StreamName": "s", "Data": geo(1), "PartitionKey": "test"}).to_string();
    for (method, path, body) in [
        ("PUT", "/streams/streaming-x-geo/record", body.clone()),
        (
            "PUT",
            "/streams/streaming-x-geo/records",
            json!({"records": [{"data": geo(1), "partition-key": "k"}]}).to_string(),
        ),
        ("GET", "/streams", String::new()),
        ("GET", "/streams/streaming-x-geo", String::new()),
    ] {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Bytes::from(body))
            .unwrap();
        let response = handle(req, &deps).await;
        assert_eq!(
            response.status(),
            503,
            "{method} {path}: {}",
            response.body()
        );
        assert_eq!(response.headers()["retry-after"], "5");
        let got: Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(
            got["message"],
            "the stream is unavailable; nothing was written, retry after 5 s"
        );
    }
}
