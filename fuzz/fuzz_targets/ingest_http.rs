//! The ingest API's handler: any request. The input is HTTP-like text: `METHOD PATH`, header
//! lines `Name: value`, a blank line, the body. The API never answers a 5xx to a request (its
//! stores here are in memory and always up), every answer is JSON, and an accepted request's
//! records were all landed or put, each one a record the cleaners keep as a row.
#![no_main]

use batch_clean::objects::ObjectRef;
use batch_clean::{clean_object, BatchReport};
use bytes::Bytes;
use futures_executor::block_on;
use ingest_api::{IngestDeps, MemoryStream, RawLanding, Route};
use libfuzzer_sys::fuzz_target;
use object_store::{memory::InMemory, ObjectStore, ObjectStoreExt};
use pinpipe_fuzz::first_line;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let (request_line, mut rest) = first_line(data);
    let request_line = String::from_utf8_lossy(request_line);
    let (method, path) = request_line
        .split_once(' ')
        .unwrap_or(("POST", &request_line));
    let mut builder = http::Request::builder().method(method).uri(path);
    loop {
        let (line, after) = first_line(rest);
        rest = after;
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
        else {
            break;
        };
        builder = builder.header(name.trim(), value.trim());
    }
    // A request no HTTP front end would pass on is not the handler's to answer.
    let Ok(request) = builder.body(Bytes::copy_from_slice(rest)) else {
        return;
    };
    let route = Route::parse(request.uri().path()).map(|r| format!("{r:?}"));
    let store = Arc::new(InMemory::new());
    let stream = Arc::new(MemoryStream::new());
    let deps = IngestDeps {
        raw: Arc::new(RawLanding::new(store.clone())),
        stream: stream.clone(),
    };
    let response = block_on(ingest_api::handle(request, &deps));
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{status} for {request_line:?}: {}",
        response.body()
    );
    let body: serde_json::Value = serde_json::from_str(response.body())
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {}", response.body()));
    if status.is_client_error() {
        assert!(body.get("error").is_some_and(|e| e.is_string()), "{body}");
        return;
    }
    let Some(route) = route else {
        panic!("{status} for a path no route serves");
    };
    if route.starts_with("Topic") {
        let landed = block_on(landed(&store));
        assert_eq!(landed.len(), 1, "one object per accepted request");
        let (key, bytes) = &landed[0];
        let offsets = body["offsets"].as_array().map_or(0, Vec::len);
        let object = ObjectRef {
            bucket: "raw".into(),
            key: key.clone(),
            etag: None,
            size: None,
        };
        let mut report = BatchReport::default();
        let input = clean_object(&object, "e", bytes, &mut report);
        assert_eq!(report.counts.records_in, offsets);
        assert!(input.quarantine.is_empty(), "{:?}", input.quarantine);
    } else if route.starts_with("StreamRecord") {
        for (name, records) in stream.drain(usize::MAX) {
            let record_type = shared::route::record_type_of_stream(&name).unwrap_or_else(|e| {
                panic!("records put on a stream the cleaners cannot read: {e}")
            });
            for record in records {
                stream_clean::clean_data(record_type, &record.data)
                    .unwrap_or_else(|e| panic!("an accepted record is not kept: {e}"));
            }
        }
    }
});

async fn landed(store: &InMemory) -> Vec<(String, Vec<u8>)> {
    use futures::TryStreamExt;
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap_or_default();
    let mut out = Vec::new();
    for meta in metas {
        if let Ok(got) = store.get(&meta.location).await {
            if let Ok(bytes) = got.bytes().await {
                out.push((meta.location.to_string(), bytes.to_vec()));
            }
        }
    }
    out
}
