//! The daily run over a lake built from the fixtures.

use lake::Lake;
use run_queries::{handle, RunQueriesDeps, RunQueriesError};
use std::time::Duration;
use test_support::TempLake;

#[tokio::test]
async fn the_daily_run_writes_every_result_maintains_every_table_and_summarises() {
    let fixture = TempLake::fixture().await;
    let dir = &fixture.dir;
    let deps = RunQueriesDeps {
        lake: fixture.lake.clone(),
        retention: Duration::from_secs(7 * 24 * 3600),
    };
    let report = handle(&deps).await.unwrap();
    assert_eq!(report.queries.queries.len(), 10);
    assert_eq!(
        deps.lake
            .count_rows("results/q1_popular_category_by_country")
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        deps.lake
            .count_rows("results/q3b_country_with_top_poster")
            .await
            .unwrap(),
        1
    );
    let tables: Vec<&str> = report.maintenance.iter().map(|m| m.table).collect();
    let mut expected = vec!["pin", "geo", "user", "quarantine"];
    expected.extend(lake::queries::QUERIES.iter().map(|q| q.name));
    assert_eq!(tables, expected);
    let pin = report.maintenance[0].report.as_ref().unwrap();
    assert_eq!((pin.rows_before, pin.rows_after), (9, 9));

    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("lake").join(&report.summary)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        summary["queries"]["queries"][0]["name"],
        "q1_popular_category_by_country"
    );
    assert_eq!(summary["queries"]["queries"][0]["rows"], 7);
    assert_eq!(summary["maintenance"][1]["table"], "geo");
}

#[tokio::test]
async fn a_failing_query_does_not_stop_the_others_and_the_run_fails_naming_it() {
    let fixture = TempLake::fixture().await;
    let dir = &fixture.dir;
    let deps = RunQueriesDeps {
        lake: fixture.lake.clone(),
        retention: Duration::from_secs(3600),
    };
    // q6's result location is blocked by a file: writing it fails.
    std::fs::create_dir_all(dir.path().join("lake/results")).unwrap();
    std::fs::write(
        dir.path().join("lake/results/q6_users_joined_per_year"),
        b"blocked",
    )
    .unwrap();
    let err = handle(&deps).await.unwrap_err();
    let RunQueriesError::Incomplete { failed, report, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(failed, &vec!["q6_users_joined_per_year".to_string()]);
    assert!(
        err.to_string()
            .starts_with("daily run incomplete, failed: q6_users_joined_per_year; see _runs/"),
        "{err}"
    );
    assert_eq!(
        deps.lake
            .count_rows("results/q7_median_followers_by_join_year")
            .await
            .unwrap(),
        2
    );
    assert!(report.maintenance.iter().all(|m| m.error.is_none()));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "RunQueries.Incomplete");
}

#[tokio::test]
async fn a_lake_that_cannot_be_opened_is_an_outage_not_a_partial_run() {
    let dir = tempfile::tempdir().unwrap();
    let deps = RunQueriesDeps {
        lake: Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap(),
        retention: Duration::from_secs(3600),
    };
    // The lake root's `pin` table location is a file: the tables cannot be created.
    std::fs::write(dir.path().join("lake/pin"), b"blocked").unwrap();
    let err = handle(&deps).await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "RunQueries.Unavailable");
    assert!(
        diagnostic.error_message.contains("pin"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn a_second_daily_run_vacuums_the_results_it_replaced() {
    let fixture = TempLake::fixture().await;
    let dir = &fixture.dir;
    let deps = RunQueriesDeps {
        lake: fixture.lake.clone(),
        retention: Duration::ZERO,
    };
    handle(&deps).await.unwrap();
    let report = handle(&deps).await.unwrap();
    let q1 = report
        .maintenance
        .iter()
        .find(|m| m.table == "q1_popular_category_by_country")
        .and_then(|m| m.report.as_ref())
        .unwrap();
    // The first run's file, replaced by the second run's overwrite, is gone; the rows stay.
    assert_eq!(q1.table, "results/q1_popular_category_by_country");
    assert_eq!((q1.files_vacuumed, q1.files_after), (1, 1));
    assert!(q1.checkpoint_version.is_some());
    let files = std::fs::read_dir(
        dir.path()
            .join("lake/results/q1_popular_category_by_country"),
    )
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "parquet")
    })
    .count();
    assert_eq!(files, 1);
    assert_eq!(
        deps.lake
            .count_rows("results/q1_popular_category_by_country")
            .await
            .unwrap(),
        7
    );
}
