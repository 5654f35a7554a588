//! The benchmarks run end to end (their figures are read by people, not asserted): the peer
//! benchmark cleans every pin in every engine, the stream benchmark runs the Lambda binary, and
//! the queries benchmark runs every query in both engines with the same rows.

mod common;

use common::{pinpipe, succeeded, OutputWithin};

/// The interpreter with duckdb and polars that the test command installs.
fn test_python() -> String {
    std::env::var("PINPIPE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs duckdb and polars in a venv")
    })
}

#[test]
fn bench_peers_cleans_the_same_pins_in_pinpipe_duckdb_and_polars() {
    let python = test_python();
    let stdout = succeeded(
        &pinpipe()
            .args(["bench", "--peers", "--peer-pins", "3000", "--runs", "1"])
            .args(["--python", &python])
            .output_within_limit(),
    );
    for line in [
        "peers: the SPEC's pin cleaning of 3000 generated pins (3 objects,",
        "  pinpipe (batch-clean → Delta)",
        "  DuckDB (SQL → Parquet)",
        "  polars (lazy → Parquet)",
        "ratio: pinpipe takes ",
    ] {
        assert!(stdout.contains(line), "`{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("not run"), "{stdout}");
}

/// The stream benchmark also runs stream-clean's own Lambda binary through a local Runtime API
/// and reads its memory: the binary answers the invocation and writes every record.
#[test]
fn bench_stream_invokes_the_stream_clean_lambda_binary_once() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_pinpipe")).with_file_name("stream-clean");
    assert!(
        binary.is_file(),
        "{} is missing: run the workspace's tests (`cargo test --workspace`), which build it",
        binary.display()
    );
    let stdout = succeeded(
        &pinpipe()
            .args(["bench", "--only", "stream", "--stream-records", "500"])
            .output_within_limit(),
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stream-clean Lambda binary, one invocation: "))
        .unwrap_or_else(|| panic!("no Lambda binary figures in:\n{stdout}"));
    assert!(line.contains(" MB after start-up)"), "{line}");
}

/// The queries benchmark runs every query in DataFusion and in DuckDB over the same Parquet
/// files, and both engines return the same number of rows for each.
#[test]
fn bench_queries_runs_every_query_in_datafusion_and_duckdb_with_the_same_rows() {
    let python = test_python();
    let stdout = succeeded(
        &pinpipe()
            .args(["bench", "--only", "queries", "--query-posts", "2000"])
            .args(["--python", &python])
            .output_within_limit(),
    );
    assert!(stdout.contains("ratio: DataFusion takes "), "{stdout}");
    assert!(!stdout.contains("not run"), "{stdout}");
    assert!(!stdout.contains("row counts differ"), "{stdout}");
    for query in lake::queries::QUERIES.iter() {
        let line = format!("  {:<48} ", query.name);
        assert!(
            stdout.contains(&line),
            "no figures for {} in:\n{stdout}",
            query.name
        );
    }
}

/// The soak runs serve under load on both routes, prints a sample per second, and finds every
/// record answered 200 in the lake once.
#[test]
fn bench_soak_samples_serve_and_finds_every_acknowledged_record_once() {
    let stdout = succeeded(
        &pinpipe()
            .args(["bench", "--only", "soak", "--soak-seconds", "6"])
            .args(["--soak-rate", "100", "--soak-sample-seconds", "1"])
            .output_within_limit(),
    );
    let header = stdout
        .lines()
        .position(|l| l.trim_start().starts_with("time s"))
        .unwrap_or_else(|| panic!("no sample table in:\n{stdout}"));
    let samples: Vec<Vec<f64>> = stdout
        .lines()
        .skip(header + 1)
        .map_while(|l| {
            l.split_whitespace()
                .map(|w| w.parse::<f64>().ok())
                .collect::<Option<Vec<f64>>>()
        })
        .collect();
    assert!(samples.len() >= 4, "{stdout}");
    for sample in &samples {
        assert_eq!(sample.len(), 8, "{stdout}");
        // Memory and descriptors of the live server were read.
        assert!(sample[3] > 1.0 && sample[4] >= 3.0, "{stdout}");
    }
    let answered = samples.last().map_or(0.0, |s| s[1]);
    assert!(answered > 100.0, "the load ran: {stdout}");
    assert!(
        stdout.contains("(0 refused)") && stdout.contains("in the lake: every one, once\n"),
        "{stdout}"
    );
}
