//! A commit large enough to be built and written as several files in parallel keeps every row
//! once, and each duplicate out.

use lake::{AppendReport, ColumnsBuilder, Input, LakeRow, Position};
use test_support::{sorted_inds, TempLake};

/// `n` rows of `record_type`, the row at position `p` read from `record(p - 1)`.
fn rows(record_type: shared::RecordType, n: i64, record: impl Fn(i64) -> String) -> Vec<LakeRow> {
    (0..n)
        .map(|i| LakeRow {
            position: Position::from_int(i + 1),
            source: "test".into(),
            row: shared::clean_record(record_type, record(i).as_bytes())
                .unwrap()
                .row,
        })
        .collect()
}

/// Appends `n` user rows, the row at position `p` read from `record(p - 1)`, as one input.
async fn append_users(lake: &TempLake, n: i64, record: impl Fn(i64) -> String) -> AppendReport {
    let input = Input {
        app_id: "test:large".into(),
        rows: rows(shared::RecordType::User, n, record),
        ..Input::default()
    };
    lake.lake.append(&[input]).await.unwrap()
}

/// The user table holds one file per core and the users `0..n`, each once.
async fn assert_one_file_per_core_with_users(lake: &TempLake, n: i64) {
    let table = lake.lake.load("user").await.unwrap();
    assert_eq!(
        table.get_file_uris().unwrap().count(),
        shared::parallel::cores()
    );
    assert_eq!(
        sorted_inds(&lake.lake, "user").await,
        (0..n).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_written_as_one_file_per_core_with_every_row_once() {
    let lake = TempLake::new();
    let report = append_users(&lake, 60_001, |ind| {
        format!(r#"{{"ind": {ind}, "first_name": "u{ind}", "age": 30}}"#)
    })
    .await;
    assert_eq!(report.rows_written(), 60_001);

    let table = lake.lake.load("user").await.unwrap();
    assert_eq!(table.version(), Some(1));
    let cores = shared::parallel::cores();
    assert_eq!(table.get_file_uris().unwrap().count(), cores);
    assert_eq!(
        sorted_inds(&lake.lake, "user").await,
        (0..60_001).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_spread_over_a_large_commit_are_written_once() {
    let lake = TempLake::new();
    // 60,000 rows, each of 30,000 distinct rows twice: once in each half of the commit, so the
    // copies are hashed on different cores.
    let report = append_users(&lake, 60_000, |i| {
        format!(r#"{{"ind": {}, "first_name": "u", "age": 30}}"#, i % 30_000)
    })
    .await;
    assert_eq!(
        (report.rows_written(), report.duplicates_skipped()),
        (30_000, 30_000)
    );
    assert_eq!(
        sorted_inds(&lake.lake, "user").await,
        (0..30_000).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_table_of_an_append_is_written_on_every_core_from_fewer_rows() {
    // 10,000 rows of one table (a Kinesis batch of one stream): nothing else is being
    // committed, so the batch is split over the cores.
    let lake = TempLake::new();
    let report = append_users(&lake, 10_000, |ind| {
        format!(r#"{{"ind": {ind}, "first_name": "u{ind}", "age": 30}}"#)
    })
    .await;
    assert_eq!(report.rows_written(), 10_000);
    assert_one_file_per_core_with_users(&lake, 10_000).await;

    // The same number of rows over two tables written side by side: one file each.
    let lake = TempLake::new();
    let input = Input {
        app_id: "test:two".into(),
        rows: [shared::RecordType::User, shared::RecordType::Geo]
            .into_iter()
            .flat_map(|t| rows(t, 10_000, |i| format!(r#"{{"ind": {i}}}"#)))
            .collect(),
        ..Input::default()
    };
    let report = lake.lake.append(&[input]).await.unwrap();
    assert_eq!(report.rows_written(), 20_000);
    for table in ["user", "geo"] {
        let table = lake.lake.load(table).await.unwrap();
        assert_eq!(table.get_file_uris().unwrap().count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_handed_over_as_columns_and_one_by_one_are_one_set_of_rows() {
    // Two inputs of the same 20,000 user records: one built as columns while cleaning (in two
    // runs, as two cores build them), one as rows. Each row is written once, from the first
    // input, and split over the cores' files.
    let lake = TempLake::new();
    let record = |i: i64| format!(r#"{{"ind": {i}, "first_name": "u{i}", "age": 30}}"#);
    let runs = [0..12_000i64, 12_000..20_000].map(|run| {
        let mut columns = ColumnsBuilder::new(shared::RecordType::User, 0, 0);
        for i in run {
            shared::clean_text_with(shared::RecordType::User, &record(i), |row, _| {
                columns.push(Position::from_int(i + 1), &row, &["columns"])
            })
            .unwrap()
            .unwrap();
        }
        columns.finish()
    });
    let built = Input {
        app_id: "test:a-columns".into(),
        columns: runs.to_vec(),
        ..Input::default()
    };
    let one_by_one = Input {
        app_id: "test:b-rows".into(),
        rows: rows(shared::RecordType::User, 20_000, record),
        ..Input::default()
    };
    let report = lake.lake.append(&[one_by_one, built]).await.unwrap();
    assert_eq!(
        (report.rows_written(), report.duplicates_skipped()),
        (20_000, 20_000)
    );
    assert_one_file_per_core_with_users(&lake, 20_000).await;
    // The input first in app id order keeps its rows.
    let rows = lake.lake.read_rows("user").await.unwrap();
    assert!(rows.iter().all(|r| r["_source"] == "columns"));
}
