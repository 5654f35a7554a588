//! `pinpipe query` and `pinpipe maintain` as a user runs them.

mod common;

use common::{fixtures_dir, pinpipe, succeeded, OutputWithin};
use std::path::Path;
use std::process::Output;

fn pinpipe_on(args: &[&str], lake: &Path) -> Output {
    pinpipe()
        .args(args)
        .arg("--lake")
        .arg(lake)
        .output_within_limit()
}

fn fixture_lake(dir: &Path) -> std::path::PathBuf {
    let fixtures = fixtures_dir();
    let lake = dir.join("lake");
    succeeded(
        &pinpipe()
            .args(["run", "--from-dir"])
            .arg(&fixtures)
            .arg("--lake")
            .arg(&lake)
            .arg("--raw")
            .arg(dir.join("raw"))
            .output_within_limit(),
    );
    lake
}

#[test]
fn the_sql_of_every_query_is_printed_with_its_views() {
    let dir = tempfile::tempdir().unwrap();
    for q in lake::queries::QUERIES {
        let out = pinpipe_on(&["query", "--sql", q.name], &dir.path().join("lake"));
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.starts_with(lake::queries::VIEWS_SQL.trim_end()),
            "{}",
            q.name
        );
        assert!(
            stdout.ends_with(&format!("-- {}\n{}\n", q.name, q.sql.trim_end())),
            "{}",
            q.name
        );
    }
}

#[test]
fn query_prints_tables_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let lake = fixture_lake(dir.path());
    let out = pinpipe_on(&["query", "q3a_top_poster_by_country"], &lake);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\nq3a_top_poster_by_country (6 rows)
  country                  poster_name                      follower_count
  -----------------------  -------------------------------  --------------
  Albania                  NULL                             NULL
  Armenia                  Of Life & Lisa | Lifestyle Blog          124000
  Azerbaijan               Style Me Pretty                         6000000
  Cocos (Keeling) Islands  Ray Uyemura                                 437
  Colombia                 Consuelo Aguirre                              0
  Maldives                 Thrive Causemetics                        43000
"
    );
    let out = pinpipe_on(
        &[
            "query",
            "q6_users_joined_per_year",
            "q3b_country_with_top_poster",
            "--format",
            "csv",
        ],
        &lake,
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "# q6_users_joined_per_year\npost_year,number_users_joined\n2015,2\n2016,4\n\n# q3b_country_with_top_poster\ncountry,follower_count\nAzerbaijan,6000000\n"
    );
    let out = pinpipe_on(
        &[
            "query",
            "q7_median_followers_by_join_year",
            "--format",
            "json",
        ],
        &lake,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"q7_median_followers_by_join_year": [
            {"post_year": 2015, "median_follower_count": 0},
            {"post_year": 2016, "median_follower_count": 43000}
        ]})
    );
}

#[test]
fn an_unknown_query_name_lists_the_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = pinpipe_on(&["query", "q9"], &dir.path().join("lake"));
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage mistake exits 2, as clap's own"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: no query named `q9`; the queries are: q1_popular_category_by_country, "
        ),
        "{stderr}"
    );
}

#[test]
fn maintain_reports_each_table() {
    let dir = tempfile::tempdir().unwrap();
    let lake = fixture_lake(dir.path());
    let out = pinpipe_on(&["maintain"], &lake);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("pin         9 → 9 rows (0 duplicates removed)"),
        "{stdout}"
    );
    // The quarantine table exists, empty, from the first run on.
    assert!(
        stdout.contains("quarantine  0 → 0 rows (0 duplicates removed)"),
        "{stdout}"
    );
    // `run` wrote every query's result table; maintenance covers them too.
    assert!(
        stdout.contains("results/*   10 result tables checkpointed, 0 files vacuumed"),
        "{stdout}"
    );
}

/// A failure while running (here: the port is taken) exits 1, not 2, and says what to do.
#[test]
fn a_runtime_failure_exits_1_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = common::pinpipe()
        .args(["serve", "--host", "127.0.0.1", "--port", &port, "--lake"])
        .arg(dir.path().join("lake"))
        .arg("--raw")
        .arg(dir.path().join("raw"))
        .output_within_limit();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("error: cannot listen on 127.0.0.1:{port}: "))
            && stderr.contains("pick another --port or --host, or stop what is using it"),
        "{stderr}"
    );
}
