//! The local developer experience: `pinpipe serve` with the original clients' requests,
//! `pinpipe emulate` against it, `pinpipe process` over the MSK Connect layout, and rows read
//! from a real PostgreSQL server.

mod common;

use common::{
    expected_clean, fixture_lines, fixtures_dir, pinpipe, spec_rows, succeeded, OutputWithin,
};
use lake::Lake;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `pinpipe serve` process on a free localhost port.
struct Serve {
    child: Child,
    url: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        Serve::start_with(dir, &["--interval-ms", "200", "--flush-ms", "300"])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = pinpipe()
            .args(["serve", "--port", "0"])
            .arg("--raw")
            .arg(dir.join("raw"))
            .arg("--lake")
            .arg(dir.join("lake"))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in the startup line: {line}"))
            .to_string();
        assert!(line.contains("batch records → spool"), "{line}");
        Serve { child, url, stdout }
    }

    /// `kill -9`: no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Ctrl-C, then everything it printed until it exited.
    fn stop(self) -> String {
        self.stop_with("-INT")
    }

    /// Sends `signal` (`-INT`, `-TERM`), then everything it printed until it exited.
    fn stop_with(mut self, signal: &str) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        assert!(status.success(), "{rest}");
        rest
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_takes_the_original_clients_requests_on_both_routes() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let base = format!("{}/production", serve.url);
    let client = reqwest::Client::new();
    for table in ["pin", "geo", "user"] {
        let stream = format!("streaming-0a5e6ec37a2f-{table}");
        for line in fixture_lines(table) {
            let row: Value = serde_json::from_str(&line).unwrap();
            // Byte-exact copies of what the original Python clients send.
            let batch = post_batch(&client, &base, &format!("0a5e6ec37a2f.{table}"), &row)
                .await
                .unwrap();
            assert_eq!(batch.status(), 200);
            let body: Value = batch.json().await.unwrap();
            assert_eq!(body["offsets"][0]["error_code"], Value::Null);
            let streamed = client
                .put(format!("{base}/streams/{stream}/record"))
                .header("Content-Type", "application/json")
                .body(pinpipe::wire::kinesis_body(&stream, &row))
                .send()
                .await
                .unwrap();
            assert_eq!(streamed.status(), 200);
        }
    }
    // Records are cleaned as they arrive: wait for both copies of every row.
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lake.count_rows("user").await.unwrap() < 14
        || lake.count_rows("pin").await.unwrap() < 18
        || lake.count_rows("geo").await.unwrap() < 14
    {
        assert!(
            Instant::now() < deadline,
            "records were not cleaned in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let printed = serve.stop();
    assert!(
        printed.contains("objects, 23 records in → 23 rows written"),
        "{printed}"
    );
    assert!(
        printed.contains("stream-clean: 23 records in → 23 rows written"),
        "{printed}"
    );
    // Each row once, whatever path it came by: through the distinct views, and after maintenance.
    for table in ["pin", "geo", "user"] {
        let mut rows = spec_rows(&lake, table).await;
        rows.dedup();
        assert_eq!(rows, expected_clean(table), "{table}");
    }
    succeeded(
        &pinpipe()
            .args(["maintain", "--lake"])
            .arg(dir.path().join("lake"))
            .output_within_limit(),
    );
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(&lake, table).await,
            expected_clean(table),
            "{table} after maintenance"
        );
    }
}

#[test]
fn emulate_against_serve_is_all_accepted_and_the_lake_holds_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let stdout = succeeded(
        &pinpipe()
            .args([
                "emulate", "--posts", "200", "--rate", "0", "--seed", "11", "--url", &serve.url,
            ])
            .output_within_limit(),
    );
    assert!(
        stdout.contains(
            "sent 200 posts (600 records) in 600 requests: 600 accepted, 0 rejected (600 × 200)"
        ),
        "{stdout}"
    );
    let printed = serve.stop();
    assert!(
        printed.contains("objects, 600 records in → 600 rows written"),
        "{printed}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    for table in ["pin", "geo", "user"] {
        assert_eq!(rt.block_on(lake.count_rows(table)).unwrap(), 200, "{table}");
    }
    // Requests the API rejects are counted by status and fail the run.
    let bad = pinpipe()
        .args([
            "emulate",
            "--posts",
            "1",
            "--rate",
            "0",
            "--url",
            "http://127.0.0.1:9",
        ])
        .output_within_limit();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("0 accepted, 3 rejected (3 × no answer)"));
}

/// A geo record with the given `ind`.
fn geo_row(ind: i64) -> Value {
    serde_json::json!({"ind": ind, "timestamp": "2020-08-28 03:52:47",
        "latitude": -89.9787, "longitude": -173.293, "country": "Albania"})
}

/// The original batch client's request for one record of `topic`, to the server at `base`.
async fn post_batch(
    http: &reqwest::Client,
    base: &str,
    topic: &str,
    row: &Value,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/topics/{topic}"))
        .header("Content-Type", "application/vnd.kafka.json.v2+json")
        .body(pinpipe::wire::kafka_body(row))
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

/// One client of the kill test: posts one-record geo requests with its own `ind`s until the
/// server stops answering; returns (sent, acknowledged).
async fn post_until_refused(url: String, client: i64, limit: i64) -> (Vec<i64>, Vec<i64>) {
    let http = reqwest::Client::new();
    let (mut sent, mut acked) = (Vec::new(), Vec::new());
    for n in 0..limit {
        let ind = client * 1_000_000 + n;
        sent.push(ind);
        match post_batch(&http, &url, "0a5e6ec37a2f.geo", &geo_row(ind)).await {
            Ok(r) if r.status() == 200 => acked.push(ind),
            _ => break,
        }
    }
    (sent, acked)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_serve_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    // Eight clients, at most 2,000 requests each; the server is killed mid-load.
    let clients: Vec<_> = (1..=8)
        .map(|c| tokio::spawn(post_until_refused(serve.url.clone(), c, 2_000)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    serve.kill();
    let (mut sent, mut acked) = (Vec::new(), Vec::new());
    for client in clients {
        let (s, a) = client.await.unwrap();
        sent.extend(s);
        acked.extend(a);
    }
    assert!(
        acked.len() > 50,
        "the load ran: {} acknowledged",
        acked.len()
    );
    assert!(acked.len() < 16_000, "the kill came mid-load");

    // Restart: the spool the killed process left is landed, and Ctrl-C cleans it all.
    let printed = Serve::start(dir.path()).stop();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let inds = common::sorted_inds(&lake, "geo").await;
    let distinct: std::collections::BTreeSet<i64> = inds.iter().copied().collect();
    assert_eq!(inds.len(), distinct.len(), "no record twice");
    let missing: Vec<&i64> = acked.iter().filter(|i| !distinct.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?}\n{printed}"
    );
    // Beyond the acknowledged ones, only records whose answer the kill cut off (one per client).
    let sent: std::collections::BTreeSet<i64> = sent.into_iter().collect();
    assert!(distinct.is_subset(&sent));
    assert!(
        distinct.len() - acked.len() <= 8,
        "{} extra",
        distinct.len() - acked.len()
    );
}

/// SIGTERM (what `kill`, systemd and containers send) stops serve like Ctrl-C: a client that
/// stalls mid-body gets 408 instead of holding the shutdown, and every acknowledged record, on
/// both paths, is in the lake afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn serve_has_no_timeouts_and_sigterm_exits_without_flushing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    // Nothing is flushed or cleaned before the stop: only the shutdown can land them.
    let serve = Serve::start_with(
        dir.path(),
        &[
            "--request-timeout-ms",
            "1000",
            "--flush-ms",
            "600000",
            "--interval-ms",
            "600000",
        ],
    );
    let http = reqwest::Client::new();
    for ind in 0..5 {
        let row = geo_row(ind);
        let batch = post_batch(&http, &serve.url, "0a5e6ec37a2f.geo", &row)
            .await
            .unwrap();
        assert_eq!(batch.status(), 200);
        let stream = "streaming-0a5e6ec37a2f-geo";
        let mut row = row;
        row["ind"] = serde_json::json!(100 + ind);
        let put = http
            .put(format!("{}/streams/{stream}/record", serve.url))
            .header("Content-Type", "application/json")
            .body(pinpipe::wire::kinesis_body(stream, &row))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
    }
    // A client that promises 1,000 bytes and sends one.
    let addr = serve.url.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /topics/0a5e6ec37a2f.geo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let printed = tokio::task::spawn_blocking(move || serve.stop_with("-TERM"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "{printed}");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let inds = common::sorted_inds(&lake, "geo").await;
    assert_eq!(
        inds,
        vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104],
        "{printed}"
    );
}

#[test]
fn process_loads_the_msk_connect_layout_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("msk");
    let mut count = 0;
    for table in ["pin", "geo", "user"] {
        let topic = format!("0a5e6ec37a2f.{table}");
        let folder = raw.join("topics").join(&topic).join("partition=0");
        std::fs::create_dir_all(&folder).unwrap();
        for (offset, line) in fixture_lines(table).iter().enumerate() {
            // One compact JSON record per file, as the S3 sink wrote them.
            let compact =
                serde_json::to_string(&serde_json::from_str::<Value>(line).unwrap()).unwrap();
            std::fs::write(folder.join(format!("{topic}+0+{offset:010}.json")), compact).unwrap();
            count += 1;
        }
    }
    assert_eq!(count, 23);
    let process = || {
        succeeded(
            &pinpipe()
                .args(["process", "--raw"])
                .arg(&raw)
                .arg("--lake")
                .arg(dir.path().join("lake"))
                .output_within_limit(),
        )
    };
    assert!(process().contains("batch-clean: 23 objects, 23 records in → 23 rows written, 0 quarantined, 0 duplicates, 0 already committed"));
    assert!(process().contains("batch-clean: 23 objects, 23 records in → 0 rows written, 0 quarantined, 0 duplicates, 23 already committed"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            rt.block_on(spec_rows(&lake, table)),
            expected_clean(table),
            "{table}"
        );
    }
}

/// The PostgreSQL server the test command starts (scripts/test.sh).
fn postgres_url() -> String {
    std::env::var("PINPIPE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts a PostgreSQL server on 127.0.0.1")
    })
}

/// Creates the original source tables in a fresh schema and fills them with the fixture rows.
async fn load_fixture_database(url: &str, schema: &str) -> String {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for statement in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.pinterest_data (index INTEGER, unique_id TEXT, title TEXT, description TEXT, poster_name TEXT, follower_count TEXT, tag_list TEXT, is_image_or_video TEXT, image_src TEXT, downloaded INTEGER, save_location TEXT, category TEXT)"),
        format!("CREATE TABLE {schema}.geolocation_data (ind INTEGER, timestamp TIMESTAMP, latitude DOUBLE PRECISION, longitude DOUBLE PRECISION, country TEXT)"),
        format!("CREATE TABLE {schema}.user_data (ind INTEGER, first_name TEXT, last_name TEXT, age INTEGER, date_joined TIMESTAMP)"),
    ] {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    for (table, file) in [
        ("pinterest_data", "pin"),
        ("geolocation_data", "geo"),
        ("user_data", "user"),
    ] {
        for line in fixture_lines(file) {
            // json_populate_record maps each key to its column, absent keys to NULL.
            sqlx::query(&format!("INSERT INTO {schema}.{table} SELECT * FROM json_populate_record(NULL::{schema}.{table}, $1::json)"))
                .bind(line)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn rows_read_from_postgres_match_the_same_rows_from_jsonl() {
    let url = load_fixture_database(&postgres_url(), "pinpipe_db_read").await;
    let db = pinpipe::db::Database::connect(&url).await.unwrap();
    let from_files = pinpipe::posts::from_dir(&fixtures_dir()).unwrap();
    for (k, post) in from_files.iter().enumerate() {
        let from_db = db.post(k as u64).await.unwrap().unwrap();
        let files: Vec<(shared::RecordType, Value)> =
            post.iter().map(|(t, v)| (*t, without_nulls(v))).collect();
        let rows: Vec<(shared::RecordType, Value)> = from_db
            .iter()
            .map(|(t, v)| (*t, without_nulls(v)))
            .collect();
        assert_eq!(rows, files, "post {k}");
    }
    assert_eq!(
        db.post(from_files.len() as u64).await.unwrap(),
        None,
        "past the last row"
    );
}

#[tokio::test]
async fn emulating_from_postgres_fills_the_lake_with_the_expected_rows() {
    let url = load_fixture_database(&postgres_url(), "pinpipe_db_emulate").await;
    let dir = tempfile::tempdir().unwrap();
    let serve = pinpipe::serve::ServeArgs {
        host: std::net::IpAddr::from([127, 0, 0, 1]),
        port: 0,
        raw: dir.path().join("raw").display().to_string(),
        lake: dir.path().join("lake").display().to_string(),
        stream: pinpipe::serve::StreamKind::Memory,
        interval_ms: 100,
        batch_size: 1000,
        request_timeout_ms: 30_000,
        landing: Default::default(),
    };
    let server = pinpipe::serve::start(&serve).await.unwrap();
    let args = pinpipe::emulate::EmulateArgs {
        url: format!("http://{}", server.addr),
        posts: None,
        path: pinpipe::run::IngestPath::Stream,
        rate: Some(0.0),
        seed: 0,
        from_dir: None,
        db_url: Some(url),
        prefix: "0a5e6ec37a2f".into(),
        api_key: None,
    };
    let report = pinpipe::emulate::run(&args, false).await.unwrap();
    assert_eq!(
        (report.posts, report.requests, report.accepted()),
        (9, 23, 23)
    );
    server.shutdown().await.unwrap();
    let lake = Lake::open(&serve.lake).unwrap();
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(&lake, table).await,
            expected_clean(table),
            "{table}"
        );
    }
}
