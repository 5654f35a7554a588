//! A commit large enough to be built and written as several files in parallel keeps every row
//! once, and each duplicate out.

use lake::{Input, Lake, LakeRow, Position};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_written_as_one_file_per_core_with_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let rows: Vec<LakeRow> = (0..60_001i64)
        .map(|ind| LakeRow {
            position: Position::from_int(ind + 1),
            source: "test".into(),
            row: shared::clean_record(
                shared::RecordType::User,
                format!(r#"{{"ind": {ind}, "first_name": "u{ind}", "age": 30}}"#).as_bytes(),
            )
            .unwrap()
            .row,
        })
        .collect();
    let report = lake
        .append(&[Input {
            app_id: "test:large".into(),
            rows,
            ..Input::default()
        }])
        .await
        .unwrap();
    assert_eq!(report.rows_written(), 60_001);

    let table = lake.load("user").await.unwrap();
    assert_eq!(table.version(), Some(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(table.get_file_uris().unwrap().count(), cores);
    let inds: BTreeSet<i64> = lake
        .read_rows("user")
        .await
        .unwrap()
        .iter()
        .map(|r| r["ind"].as_i64().unwrap())
        .collect();
    assert_eq!(inds, (0..60_001).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_spread_over_a_large_commit_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    // 60,000 rows, each of 30,000 distinct rows twice: once in each half of the commit, so the
    // copies are hashed on different cores.
    let rows: Vec<LakeRow> = (0..60_000i64)
        .map(|n| LakeRow {
            position: Position::from_int(n + 1),
            source: "test".into(),
            row: shared::clean_record(
                shared::RecordType::User,
                format!(r#"{{"ind": {}, "first_name": "u", "age": 30}}"#, n % 30_000).as_bytes(),
            )
            .unwrap()
            .row,
        })
        .collect();
    let report = lake
        .append(&[Input {
            app_id: "test:duplicates".into(),
            rows,
            ..Input::default()
        }])
        .await
        .unwrap();
    assert_eq!(
        (report.rows_written(), report.duplicates_skipped()),
        (30_000, 30_000)
    );
    let mut inds: Vec<i64> = lake
        .read_rows("user")
        .await
        .unwrap()
        .iter()
        .map(|r| r["ind"].as_i64().unwrap())
        .collect();
    inds.sort_unstable();
    assert_eq!(inds, (0..30_000).collect::<Vec<_>>());
}
