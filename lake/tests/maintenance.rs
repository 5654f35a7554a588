//! Table maintenance: compaction, de-duplication, checkpoint, vacuum.

use lake::maintenance::DEFAULT_RETENTION;
use lake::{Input, LakeRow, LakeTable, Position};
use shared::RecordType;
use test_support::{cleaned_input, sorted_rows, spec_rows, TempLake};

fn pin_input(n: i64) -> Input {
    let row = shared::clean_record(
        shared::RecordType::Pin,
        format!("{{\"index\": {n}, \"title\": \"post {n}\", \"follower_count\": \"{n}k\"}}")
            .as_bytes(),
    )
    .unwrap()
    .row;
    Input {
        app_id: format!("test:object-{n}"),
        rows: vec![LakeRow {
            position: Position::from_int(1),
            source: format!("object-{n}").into(),
            row,
        }],
        ..Input::default()
    }
}

/// A lake whose pin table holds versions 1 to `commits` of one pin each (appended through one
/// handle), and the table's `_delta_log` directory.
async fn single_pin_commits(commits: i64) -> (TempLake, std::path::PathBuf) {
    let env = TempLake::new();
    for n in 1..=commits {
        env.lake.append(&[pin_input(n)]).await.unwrap();
    }
    let log = env.dir.path().join("lake/pin/_delta_log");
    (env, log)
}

/// Appends do not rebuild the table's state after each commit, but the commit that Delta's
/// default `checkpointInterval` of 100 makes due still writes its checkpoint, and every row is
/// there once.
#[tokio::test]
async fn the_hundredth_version_appended_writes_a_checkpoint() {
    // Version 0 creates the table; appends 1 to 99 follow, one handle for them all.
    let (env, log) = single_pin_commits(99).await;
    assert!(log.join(format!("{:020}.checkpoint.parquet", 99)).exists());
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(last["version"], 99);
    // Only that one: version 98 was not due.
    let checkpoints = std::fs::read_dir(&log)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".checkpoint.parquet")
        })
        .count();
    assert_eq!(checkpoints, 1);

    // Another handle opens the table from the checkpoint, with every row once.
    let reopened = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    assert_eq!(reopened.load("pin").await.unwrap().version(), Some(99));
    assert_eq!(
        test_support::sorted_inds(&reopened, "pin").await,
        (1..=99).collect::<Vec<i64>>()
    );
    // The appending handle, which kept its state from before its last commits, goes on.
    let again = env
        .lake
        .append(&[pin_input(100), pin_input(99)])
        .await
        .unwrap();
    assert_eq!((again.rows_written(), again.already_committed()), (1, 1));
    assert_eq!(env.lake.load("pin").await.unwrap().version(), Some(100));
}

/// A checkpoint that cannot be written does not fail the commit it follows: the rows are in the
/// table, and the append says so.
#[tokio::test]
async fn a_checkpoint_that_cannot_be_written_leaves_its_commit_reported_as_committed() {
    let (env, log) = single_pin_commits(98).await;
    // A directory where the checkpoint of version 99 would go.
    let blocked = log.join(format!("{:020}.checkpoint.parquet", 99));
    std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();

    let report = env.lake.append(&[pin_input(99)]).await.unwrap();
    assert_eq!(report.tables[&LakeTable::Pin].version, Some(99));
    assert_eq!((report.rows_written(), report.already_committed()), (1, 0));
    assert!(!log.join("_last_checkpoint").exists());
    let reopened = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    assert_eq!(
        test_support::sorted_inds(&reopened, "pin").await,
        (1..=99).collect::<Vec<i64>>()
    );
}

#[tokio::test]
async fn fifty_single_row_commits_compact_and_open_from_the_checkpoint() {
    let env = TempLake::new();
    for n in 0..50 {
        env.lake.append(&[pin_input(n)]).await.unwrap();
    }
    let before = sorted_rows(&env.lake, "pin").await;
    assert_eq!(before.len(), 50);

    let report = env
        .lake
        .maintain(LakeTable::Pin, DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!(
        (
            report.files_before,
            report.rows_before,
            report.duplicates_removed
        ),
        (50, 50, 0)
    );
    assert!(report.files_after < 50, "{report:?}");
    assert_eq!(report.files_after, 1);
    assert_eq!(
        sorted_rows(&env.lake, "pin").await,
        before,
        "same rows, provenance included"
    );

    // Delete every JSON commit the checkpoint covers: the table must open from the checkpoint.
    let checkpoint = report.checkpoint_version.unwrap();
    let log = env.dir.path().join("lake/pin/_delta_log");
    assert!(log.join("_last_checkpoint").exists());
    for v in 0..=checkpoint {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).unwrap();
    }
    let reopened = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    assert_eq!(
        reopened.load("pin").await.unwrap().version(),
        Some(checkpoint)
    );
    let mut after: Vec<_> = reopened.read_rows("pin").await.unwrap();
    after.sort_by_key(|r| serde_json::to_string(r).unwrap());
    assert_eq!(after, before);
    // The exactly-once bookkeeping survived: replaying an input adds nothing.
    let replay = reopened.append(&[pin_input(7)]).await.unwrap();
    assert_eq!((replay.rows_written(), replay.already_committed()), (0, 1));
}

#[tokio::test]
async fn maintenance_drops_whole_row_duplicates_keeping_the_first_arrival() {
    let env = TempLake::new();
    // The same post delivered three times as different inputs (a resend, the other path).
    for copy in 0..3 {
        let mut input = pin_input(1);
        input.app_id = format!("test:copy-{copy}");
        input.rows[0].source = format!("copy-{copy}").into();
        env.lake.append(&[input]).await.unwrap();
    }
    env.lake.append(&[pin_input(2)]).await.unwrap();
    assert_eq!(env.lake.count_rows("pin").await.unwrap(), 4);

    let report = env
        .lake
        .maintain(LakeTable::Pin, DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!(
        (
            report.rows_before,
            report.rows_after,
            report.duplicates_removed
        ),
        (4, 2, 2)
    );
    let rows = sorted_rows(&env.lake, "pin").await;
    assert_eq!(rows.len(), 2);
    let kept = rows.iter().find(|r| r["ind"] == 1).unwrap();
    assert_eq!(kept["_source"], "copy-0");

    // Running it again finds nothing to do; a missing table is left alone.
    let again = env
        .lake
        .maintain(LakeTable::Pin, DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!(again.duplicates_removed, 0);
    let absent = env
        .lake
        .maintain(LakeTable::Geo, DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!(absent.version, None);
}

#[tokio::test]
async fn geo_rows_with_coordinates_deduplicate_too() {
    let env = TempLake::new();
    let line = r#"{"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"}"#;
    // Two deliveries, two invocations: each commit holds one copy.
    for object in ["a.json", "b.json"] {
        let input = cleaned_input(RecordType::Geo, object, object, &[line]);
        env.lake.append(&[input]).await.unwrap();
    }
    let report = env
        .lake
        .maintain(LakeTable::Geo, DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!((report.rows_before, report.rows_after), (2, 1));
    assert_eq!(
        spec_rows(&env.lake, "geo").await[0]["coordinates"],
        serde_json::json!([-89.9787, -173.293])
    );
}

/// The versions of the JSON commits in `table`'s `_delta_log`, in order.
fn logged_commits(env: &TempLake, table: &str) -> Vec<u64> {
    let log = env.dir.path().join("lake").join(table).join("_delta_log");
    let mut versions: Vec<u64> = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    versions.sort_unstable();
    versions
}

#[tokio::test]
async fn appends_leave_expired_log_files_to_maintenance() {
    let env = TempLake::new();
    for n in 0..3 {
        env.lake.append(&[pin_input(n)]).await.unwrap();
    }
    // A log retention of one second, and a checkpoint covering every commit so far: from then
    // on, delta-rs' own post-commit cleanup would delete those commits after any commit.
    let table = env.lake.load("pin").await.unwrap();
    let properties = [("delta.logRetentionDuration", "interval 1 second")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let table = table
        .set_tbl_properties()
        .with_properties(properties)
        .await
        .unwrap();
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .unwrap();
    let checkpointed = table.version().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));

    env.lake.append(&[pin_input(3)]).await.unwrap();
    let all: Vec<u64> = (0..=checkpointed + 1).collect();
    assert_eq!(
        logged_commits(&env, "pin"),
        all,
        "an append expires nothing"
    );

    env.lake
        .maintain(LakeTable::Pin, DEFAULT_RETENTION)
        .await
        .unwrap();
    // The commits before the checkpoint were older than the retention: gone.
    let kept = logged_commits(&env, "pin");
    assert_eq!(kept.first(), Some(&checkpointed), "{kept:?}");
    // The table still opens, with every row and its exactly-once bookkeeping.
    let reopened = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    assert_eq!(reopened.count_rows("pin").await.unwrap(), 4);
    let replay = reopened.append(&[pin_input(1)]).await.unwrap();
    assert_eq!((replay.rows_written(), replay.already_committed()), (0, 1));
}

/// A commit cut short (a crash or a full disk under a local lake): loading the table names the
/// file and says what to do, and once the file is moved away the table opens at the version
/// before it.
#[tokio::test]
async fn a_torn_commit_is_named_and_moving_it_away_opens_the_version_before() {
    let lake = test_support::TempLake::fixture().await;
    let log = lake.root().join("pin").join("_delta_log");
    let newest = (0..)
        .map(|v| log.join(format!("{v:020}.json")))
        .take_while(|p| p.exists())
        .last()
        .unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();

    let fresh = lake::Lake::open(lake.root().to_str().unwrap()).unwrap();
    let error = fresh.load("pin").await.unwrap_err();
    match &error {
        lake::LakeError::TornLog { table, file, .. } => {
            assert_eq!((table.as_str(), file), ("pin", &newest));
        }
        other => panic!("expected TornLog, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("move it out of _delta_log"), "{message}");

    std::fs::rename(&newest, lake.root().join("torn.json")).unwrap();
    let reopened = lake::Lake::open(lake.root().to_str().unwrap()).unwrap();
    let table = reopened.load("pin").await.unwrap();
    let version: u64 = newest
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(table.version(), Some(version - 1));
}

/// A checkpoint cut short: loading names it and what to do, and doing that (the commits it
/// stands for are still in the log) opens the table with every row.
#[tokio::test]
async fn a_torn_checkpoint_is_named_and_removing_it_reads_the_commits() {
    let env = TempLake::new();
    for n in 0..12 {
        env.lake.append(&[pin_input(n)]).await.unwrap();
    }
    let before = sorted_rows(&env.lake, "pin").await;
    let report = env
        .lake
        .maintain(LakeTable::Pin, DEFAULT_RETENTION)
        .await
        .unwrap();
    let version = report.checkpoint_version.unwrap();
    let log = env.dir.path().join("lake/pin/_delta_log");
    let checkpoint = log.join(format!("{version:020}.checkpoint.parquet"));
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();

    let fresh = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    let error = fresh.load("pin").await.unwrap_err();
    match &error {
        lake::LakeError::TornLog { table, file, .. } => {
            assert_eq!((table.as_str(), file), ("pin", &checkpoint));
        }
        other => panic!("expected TornLog, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("remove it and _last_checkpoint"),
        "{message}"
    );

    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::remove_file(log.join("_last_checkpoint")).unwrap();
    let reopened = lake::Lake::open(env.root().to_str().unwrap()).unwrap();
    assert_eq!(reopened.load("pin").await.unwrap().version(), Some(version));
    assert_eq!(sorted_rows(&reopened, "pin").await, before);
}
