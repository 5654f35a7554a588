//! Test helpers: the fixtures, a local raw landing + lake in a temp directory, and reading
//! tables back as rows comparable with `expected.json`.
#![allow(dead_code)]

use batch_clean::objects::{list_landed, s3_put_event};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use ingest_api::{IngestDeps, RawLanding};
use lake::Lake;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod serve;

pub const BUCKET: &str = "local-raw";

/// Object names a raw landing may hold that S3 event keys URL-encode (space, `+`, `%`, `#`,
/// `?`, `&`, `=`, non-ASCII).
pub const AWKWARD_NAMES: [&str; 7] = [
    "space here.ndjson",
    "plus+sign.ndjson",
    "100%.ndjson",
    "hash#1.ndjson",
    "what?.ndjson",
    "é ü 東京.ndjson",
    "a=b&c.ndjson",
];

/// The `pinpipe` binary, ready for its arguments.
pub fn pinpipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pinpipe"))
}

/// How long a `pinpipe` command in a test may take before it counts as hung.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Runs a command to its end like `Command::output`, but a command still running after
/// [`COMMAND_LIMIT`] is killed and fails the test with what it printed, instead of hanging the
/// whole test run.
pub trait OutputWithin {
    fn output_within_limit(&mut self) -> Output;
}

impl OutputWithin for Command {
    fn output_within_limit(&mut self) -> Output {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drained on their own threads so a chatty child never blocks on a full pipe.
        fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                pipe.read_to_end(&mut buf).unwrap();
                buf
            })
        }
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > COMMAND_LIMIT {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = out.join().unwrap();
        let stderr = err.join().unwrap();
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{self:?} still running after {COMMAND_LIMIT:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }
    }
}

/// The stdout of a run that must have succeeded; the test fails with both streams otherwise.
pub fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The project's fixture directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-sample")
}

/// The raw lines of a fixture file (`pin`, `geo` or `user`).
pub fn fixture_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.jsonl")))
        .unwrap_or_else(|e| panic!("fixture {name}.jsonl: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// `expected.json`.
pub fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A lake holding the fixture's rows, cleaned through batch-clean (one raw object per table).
pub async fn fixture_lake() -> Env {
    landed_fixture().await.0
}

/// [`fixture_lake`], and what batch-clean reported cleaning it.
pub async fn landed_fixture() -> (Env, BatchReport) {
    let env = Env::new();
    for table in ["pin", "geo", "user"] {
        let body = fixture_lines(table).join("\n") + "\n";
        env.put_raw(
            &format!("topics/0a5e6ec37a2f.{table}/partition=0/fixture.json"),
            &body,
        )
        .await;
    }
    let report = env.clean_landed().await;
    (env, report)
}

/// The expected cleaned rows of a table, sorted by `ind`.
pub fn expected_clean(table: &str) -> Vec<Value> {
    let mut rows = expected()["clean"][table].as_array().unwrap().clone();
    rows.sort_by_key(|r| r["ind"].as_i64());
    rows
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

/// The `ind` of every row of a table, sorted (duplicates kept, so a test can count them).
pub async fn sorted_inds(lake: &Lake, table: &str) -> Vec<i64> {
    let mut inds: Vec<i64> = lake
        .read_rows(table)
        .await
        .unwrap()
        .iter()
        .map(|r| r["ind"].as_i64().unwrap())
        .collect();
    inds.sort();
    inds
}

/// A table's rows with only the SPEC columns, sorted by `ind`.
pub async fn spec_rows(lake: &Lake, table: &str) -> Vec<Value> {
    let mut rows: Vec<Value> = lake
        .read_rows(table)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            Value::Object(
                row.into_iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .collect::<Map<_, _>>(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r["ind"].as_i64());
    rows
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
