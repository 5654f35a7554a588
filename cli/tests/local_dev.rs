//! The local developer experience: `pinpipe serve` with the original clients' requests,
//! `pinpipe emulate` against it, `pinpipe process` over the MSK Connect layout, and rows read
//! from a real PostgreSQL server.

mod common;

use common::serve::{post_batch, Serve};
use common::{
    expected_clean, fixture_lines, fixtures_dir, pinpipe, spec_rows, succeeded, OutputWithin,
};
use lake::Lake;
use serde_json::Value;
use std::time::{Duration, Instant};

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

/// `pinpipe process` of `raw` into `dir/lake`, which must succeed; its stdout.
fn process_into_lake(raw: &std::path::Path, dir: &std::path::Path) -> String {
    succeeded(
        &pinpipe()
            .args(["process", "--raw"])
            .arg(raw)
            .arg("--lake")
            .arg(dir.join("lake"))
            .output_within_limit(),
    )
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
    let process = || process_into_lake(&raw, dir.path());
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
        interval_ms: 100,
        ..pinpipe::serve::ServeArgs::local(
            dir.path().join("raw").display().to_string(),
            dir.path().join("lake").display().to_string(),
        )
    };
    let server = pinpipe::serve::start(&serve).await.unwrap();
    let args = pinpipe::emulate::EmulateArgs {
        url: format!("http://{}", server.addr),
        posts: None,
        path: pinpipe::local::IngestPath::Stream,
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

/// A backfill of 10,000 MSK Connect files (one record each, a third per topic) keeps three
/// bookkeeping entries per topic-partition (the README's `1 + 2r` with one range), and a
/// second run writes nothing.
#[test]
fn process_over_ten_thousand_msk_connect_files_keeps_bounded_bookkeeping() {
    const FILES: usize = 10_002;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("msk");
    for table in ["pin", "geo", "user"] {
        let topic = format!("0a5e6ec37a2f.{table}");
        let folder = raw.join("topics").join(&topic).join("partition=0");
        std::fs::create_dir_all(&folder).unwrap();
        let mut row: Value = serde_json::from_str(&fixture_lines(table)[0]).unwrap();
        let key = if table == "pin" { "index" } else { "ind" };
        for offset in 0..FILES / 3 {
            row[key] = serde_json::json!(offset);
            std::fs::write(
                folder.join(format!("{topic}+0+{offset:010}.json")),
                row.to_string(),
            )
            .unwrap();
        }
    }
    let process = || process_into_lake(&raw, dir.path());
    let first = process();
    assert!(first.contains("batch-clean: 10002 objects, 10002 records in → 10002 rows written, 0 quarantined, 0 duplicates, 0 already committed"), "{first}");
    let second = process();
    assert!(second.contains("batch-clean: 10002 objects, 10002 records in → 0 rows written, 0 quarantined, 0 duplicates, 10002 already committed"), "{second}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    for table in ["pin", "geo", "user"] {
        let inds = rt.block_on(common::sorted_inds(&lake, table));
        assert_eq!(inds, (0..(FILES / 3) as i64).collect::<Vec<_>>(), "{table}");
        let delta = rt.block_on(lake.load(table)).unwrap();
        let committed = rt
            .block_on(lake::committed::committed_transactions(&delta))
            .unwrap();
        assert_eq!(committed.len(), 3, "{table}: bookkeeping entries");
    }
}
