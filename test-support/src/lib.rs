//! Set-up the workspace's tests share: the seed-sample fixtures and what cleaning them must give,
//! lakes in temporary directories filled through [`Lake::append`], and a time limit for child
//! processes so a hung command fails its test instead of the whole run.
//!
//! Only ever a dev-dependency. Panics are its way of failing a test, so it unwraps freely.

#![warn(missing_docs)]

use lake::{Input, Lake, LakeRow, Position};
use serde_json::{Map, Value};
use shared::RecordType;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The bucket name a local raw landing's objects are listed under (`pinpipe`'s too).
pub const RAW_BUCKET: &str = "local-raw";

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

/// The project's fixture directory: real rows of the original pipeline and `expected.json`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-sample")
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

/// The fixture as raw objects, one per record type: each key under the original pipeline's
/// topic (`topics/0a5e6ec37a2f.<type>/partition=0/fixture.json`) and its NDJSON body.
pub fn fixture_objects() -> Vec<(String, String)> {
    RecordType::ALL
        .into_iter()
        .map(|rt| {
            (
                format!("topics/0a5e6ec37a2f.{rt}/partition=0/fixture.json"),
                fixture_lines(&rt.to_string()).join("\n") + "\n",
            )
        })
        .collect()
}

/// `expected.json`: the cleaned rows and query results the fixtures must give.
pub fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The expected cleaned rows of a table, sorted by `ind`.
pub fn expected_clean(table: &str) -> Vec<Value> {
    let mut rows = expected()["clean"][table].as_array().unwrap().clone();
    rows.sort_by_key(|r| r["ind"].as_i64());
    rows
}

/// One input of raw lines of one record type, cleaned as the cleaners clean them: line `n` is
/// at position `n` (from 1) with source `<source>#line=<n>`. Every line must clean.
pub fn cleaned_input(
    record_type: RecordType,
    app_id: &str,
    source: &str,
    lines: &[impl AsRef<str>],
) -> Input {
    let rows = lines
        .iter()
        .enumerate()
        .map(|(i, line)| LakeRow {
            position: Position::from_int(i as i64 + 1),
            source: format!("{source}#line={}", i + 1).into(),
            row: shared::clean_record(record_type, line.as_ref().as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", line.as_ref()))
                .row,
        })
        .collect();
    Input {
        app_id: app_id.to_string(),
        rows,
        ..Input::default()
    }
}

/// A lake in a fresh temporary directory, removed when dropped.
pub struct TempLake {
    /// The temporary directory; the lake is its `lake/` subdirectory.
    pub dir: tempfile::TempDir,
    /// The lake.
    pub lake: Lake,
}

impl TempLake {
    /// An empty lake.
    pub fn new() -> TempLake {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        TempLake { dir, lake }
    }

    /// The lake's root directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// A lake holding the fixture's rows, one input per table.
    pub async fn fixture() -> TempLake {
        let lines = RecordType::ALL.map(|rt| (rt, fixture_lines(&rt.to_string())));
        TempLake::with_lines("fixture", &lines).await
    }

    /// A lake holding exactly these raw rows, one input per record type.
    pub async fn with(pins: &[Value], geos: &[Value], users: &[Value]) -> TempLake {
        let lines = [
            (RecordType::Pin, pins),
            (RecordType::Geo, geos),
            (RecordType::User, users),
        ]
        .map(|(rt, rows)| (rt, rows.iter().map(Value::to_string).collect::<Vec<_>>()));
        TempLake::with_lines("test", &lines).await
    }

    /// A lake holding the cleaned lines, one input per record type that has any (app id
    /// `<name>:<type>`, source `<name>/<type>`).
    async fn with_lines(name: &str, lines: &[(RecordType, Vec<String>)]) -> TempLake {
        let lake = TempLake::new();
        let inputs: Vec<Input> = lines
            .iter()
            .filter(|(_, lines)| !lines.is_empty())
            .map(|(rt, lines)| {
                cleaned_input(*rt, &format!("{name}:{rt}"), &format!("{name}/{rt}"), lines)
            })
            .collect();
        lake.lake.append(&inputs).await.unwrap();
        lake
    }
}

impl Default for TempLake {
    fn default() -> TempLake {
        TempLake::new()
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

/// Asserts the lake's pin, geo and user tables hold exactly the fixture's cleaned rows.
pub async fn assert_fixture_rows(lake: &Lake) {
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(lake, table).await,
            expected_clean(table),
            "{table}"
        );
    }
}

/// The quarantine table's (source, raw) pairs, sorted.
pub async fn quarantined(lake: &Lake) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sorted_rows(lake, "quarantine")
        .await
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (text("source"), text("raw"))
        })
        .collect();
    out.sort();
    out
}

/// A table's whole rows (provenance included), in a stable order.
pub async fn sorted_rows(lake: &Lake, table: &str) -> Vec<Map<String, Value>> {
    let mut rows = lake.read_rows(table).await.unwrap();
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap());
    rows
}

/// How long a child process in a test may take before it counts as hung.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Runs a command to its end like `Command::output`, but a command still running after
/// [`COMMAND_LIMIT`] is killed and fails the test with what it printed, instead of hanging the
/// whole test run.
pub trait OutputWithin {
    /// The command's output, or a failed test after [`COMMAND_LIMIT`].
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
