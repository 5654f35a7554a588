//! Test helpers: the fixtures, a local raw landing + lake in a temp directory, and reading
//! tables back as rows comparable with `expected.json`.
#![allow(dead_code)]

use batch_clean::objects::{list_landed, s3_put_event};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use ingest_api::{IngestDeps, RawLanding};
use lake::Lake;
use serde_json::Value;
use std::process::Command;

pub mod serve;

// Each test file is its own crate and uses its own part of these.
#[allow(unused_imports)]
pub use test_support::{
    expected, expected_clean, fixture_lines, fixtures_dir, sorted_inds, spec_rows, succeeded,
    OutputWithin, AWKWARD_NAMES, COMMAND_LIMIT, RAW_BUCKET as BUCKET,
};

/// The `pinpipe` binary, ready for its arguments.
pub fn pinpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pinpipe"))
}

/// A lake holding the fixture's rows, cleaned through batch-clean (one raw object per table).
pub async fn fixture_lake() -> Env {
    landed_fixture().await.0
}

/// [`fixture_lake`], and what batch-clean reported cleaning it.
pub async fn landed_fixture() -> (Env, BatchReport) {
    let env = Env::new();
    for (key, body) in test_support::fixture_objects() {
        env.put_raw(&key, &body).await;
    }
    let report = env.clean_landed().await;
    (env, report)
}

/// A raw landing and a lake in a fresh temp directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub landing: RawLanding,
    pub deps: BatchCleanDeps,
    pub stream: std::sync::Arc<ingest_api::MemoryStream>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let landing = RawLanding::local_dir(&dir.path().join("raw")).unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        let deps = BatchCleanDeps {
            raw: RawStores::Fixed(landing.store().clone()),
            lake,
        };
        Env {
            dir,
            landing,
            deps,
            stream: std::sync::Arc::new(ingest_api::MemoryStream::new()),
        }
    }

    pub fn ingest(&self) -> IngestDeps {
        IngestDeps {
            raw: std::sync::Arc::new(self.landing.clone()),
            stream: self.stream.clone(),
        }
    }

    /// A request to the ingest API: its status and JSON body.
    pub async fn call(&self, request: http::Request<bytes::Bytes>) -> (u16, Value) {
        let response = ingest_api::handle(request, &self.ingest()).await;
        (
            response.status().as_u16(),
            serde_json::from_str(response.body()).unwrap(),
        )
    }

    /// Hands everything on the in-process stream to stream-clean.
    pub async fn flush_stream(&self) -> stream_clean::StreamReport {
        let deps = stream_clean::StreamCleanDeps {
            lake: self.deps.lake.clone(),
        };
        pinpipe::local::flush_stream(&self.stream, &deps, 10_000)
            .await
            .unwrap()
    }

    pub fn lake(&self) -> &Lake {
        &self.deps.lake
    }

    /// Writes `body` as a raw object at `key`.
    pub async fn put_raw(&self, key: &str, body: &str) {
        use object_store::ObjectStoreExt;
        self.landing
            .store()
            .put(
                &object_store::path::Path::from(key),
                body.to_string().into(),
            )
            .await
            .unwrap();
    }

    /// An S3 put event for everything landed so far.
    pub async fn landed_event(&self) -> aws_lambda_events::event::s3::S3Event {
        let objects = list_landed(self.landing.store().as_ref(), BUCKET)
            .await
            .unwrap();
        s3_put_event(&objects)
    }

    /// Runs batch-clean over everything landed so far, in one invocation.
    pub async fn clean_landed(&self) -> BatchReport {
        let event = self.landed_event().await;
        batch_clean::handle_s3(&event, &self.deps).await.unwrap()
    }
}

/// What posting through the API did.
#[derive(Debug, Default)]
pub struct PostReport {
    pub sent: usize,
    pub by_status: std::collections::BTreeMap<u16, usize>,
}

/// Sends every record of every post through the ingest API handler, as the original clients:
/// `POST /topics/<prefix>.<type>` for the batch path, `PUT /streams/streaming-<prefix>-<type>/record`
/// for the stream path.
pub async fn post_all(
    posts: &[pinpipe::posts::Post],
    prefix: &str,
    path: pinpipe::local::IngestPath,
    deps: &IngestDeps,
) -> PostReport {
    let mut report = PostReport::default();
    for post in posts {
        for (record_type, value) in post {
            let mut requests = Vec::with_capacity(2);
            if path.batch() {
                requests.push(
                    http::Request::builder()
                        .method(http::Method::POST)
                        .uri(format!("/topics/{prefix}.{record_type}"))
                        .header("content-type", "application/vnd.kafka.json.v2+json")
                        .body(bytes::Bytes::from(pinpipe::wire::kafka_body(value))),
                );
            }
            if path.stream() {
                let stream = format!("streaming-{prefix}-{record_type}");
                requests.push(
                    http::Request::builder()
                        .method(http::Method::PUT)
                        .uri(format!("/streams/{stream}/record"))
                        .header("content-type", "application/json")
                        .body(bytes::Bytes::from(pinpipe::wire::kinesis_body(
                            &stream, value,
                        ))),
                );
            }
            for request in requests {
                let status = match request {
                    Ok(req) => ingest_api::handle(req, deps).await.status(),
                    Err(_) => http::StatusCode::BAD_REQUEST,
                };
                report.sent += 1;
                *report.by_status.entry(status.as_u16()).or_default() += 1;
            }
        }
    }
    report
}
