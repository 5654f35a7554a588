//! `pinpipe run` as a user runs it: a real process on a fresh directory, then the tables it
//! left opened again from this (another) process through delta-rs.

mod common;

use common::{pinpipe, succeeded, OutputWithin};
use lake::Lake;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

/// Runs `pinpipe run <args>` with its lake in `dir/lake` and its raw store in `dir/raw`.
fn pinpipe_run<S: AsRef<OsStr>>(dir: &Path, args: impl IntoIterator<Item = S>) -> Output {
    pinpipe()
        .arg("run")
        .args(args)
        .arg("--lake")
        .arg(dir.join("lake"))
        .arg("--raw")
        .arg(dir.join("raw"))
        .output_within_limit()
}

/// The README's first command exactly: `pinpipe run` with its defaults (1000 generated posts,
/// `./data/raw`, `./data/lake`) in a fresh directory.
#[tokio::test]
async fn pinpipe_run_with_its_defaults_prints_its_summary_and_leaves_readable_delta_tables() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("data").join("lake");
    let stdout = succeeded(
        &pinpipe()
            .arg("run")
            .current_dir(dir.path())
            .output_within_limit(),
    );
    for line in [
        "ingest API: 3000 requests, 3000 × 200",
        // The spool lands each topic's records as one object when the run stops.
        "batch-clean: 3 objects, 3000 records in → 3000 rows written, 0 quarantined",
        // The backfill finds every landed object already cleaned.
        "process: 3 objects checked, 0 new rows written",
        "  pin            1000 rows",
        "  geo            1000 rows",
        "  user           1000 rows",
        "  quarantine        0 rows",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    // An empty quarantine is still a Delta table any reader can open.
    assert!(lake_dir
        .join("quarantine/_delta_log/00000000000000000000.json")
        .exists());

    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    for table in ["pin", "geo", "user"] {
        assert!(
            lake.load(table).await.unwrap().version() >= Some(1),
            "{table}"
        );
        assert_eq!(lake.count_rows(table).await.unwrap(), 1000, "{table}");
        // The commits record every object they cleaned as an application transaction: one
        // object per topic, not one per request.
        let mut txns = 0;
        for entry in std::fs::read_dir(lake_dir.join(table).join("_delta_log")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                txns += std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .filter(|l| l.starts_with("{\"txn\""))
                    .count();
            }
        }
        assert_eq!(txns, 1, "{table}");
    }
    assert!(
        stdout.contains("\nq3b_country_with_top_poster (1 rows)"),
        "every query result is printed:\n{stdout}"
    );
    assert_eq!(
        lake.count_rows("results/q6_users_joined_per_year")
            .await
            .unwrap(),
        3
    );
    // The run ends by saying where its report is; the page is there.
    let report = lake_dir.join("results").join("report.html");
    assert!(
        stdout
            .trim_end()
            .ends_with(&format!("report: {}", report.display())),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("id=\"q8_median_followers_by_age_group_and_join_year\""));
    let pins = lake.read_rows("pin").await.unwrap();
    assert!(
        pins.iter()
            .any(|r| r["follower_count"].is_null() && r["title"].is_null()),
        "all-errors rows present"
    );
}

#[test]
fn bad_from_dir_rows_fail_with_a_message_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("geo.jsonl"), "{\"ind\": 1}\n{oops\n").unwrap();
    let output = pinpipe_run(
        dir.path(),
        [OsStr::new("--from-dir"), dir.path().as_os_str()],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("geo.jsonl line 2: not a JSON value"),
        "{stderr}"
    );
}

#[test]
fn from_dir_posts_the_fixture_rows() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-sample");
    let stdout = succeeded(&pinpipe_run(
        dir.path(),
        [OsStr::new("--from-dir"), fixtures.as_os_str()],
    ));
    assert!(
        stdout.contains("ingest API: 23 requests, 23 × 200"),
        "{stdout}"
    );
    assert!(stdout.contains("  pin               9 rows"), "{stdout}");
}

#[test]
fn pinpipe_run_down_both_paths_reports_what_each_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = succeeded(&pinpipe_run(
        dir.path(),
        ["--posts", "40", "--path", "both"],
    ));
    assert!(
        stdout.contains("ingest API: 240 requests, 240 × 200"),
        "{stdout}"
    );
    assert!(
        stdout.contains("batch-clean: 3 objects, 120 records in → 120 rows written, 0 quarantined"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stream-clean: 120 records in → 120 rows written, 0 quarantined"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  pin              80 rows"),
        "each path stored its copy until maintenance:\n{stdout}"
    );
}
