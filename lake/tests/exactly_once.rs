//! Exactly-once appends: an input replayed, the same row twice in one commit, and writers racing
//! on one table.

use lake::{Input, LakeRow, LakeTable};
use shared::RecordType;
use test_support::{cleaned_input, expected_clean, fixture_lines, spec_rows, TempLake};

fn fixture_input(rt: RecordType) -> Input {
    let lines = fixture_lines(&rt.to_string());
    cleaned_input(rt, "s3:users.json@etag-1", "users.json", &lines)
}

#[tokio::test]
async fn the_same_input_appended_three_times_is_written_once() {
    let lake = TempLake::new();
    let first = lake
        .lake
        .append(&[fixture_input(RecordType::User)])
        .await
        .unwrap();
    assert_eq!((first.rows_written(), first.already_committed()), (7, 0));
    for _ in 0..2 {
        let again = lake
            .lake
            .append(&[fixture_input(RecordType::User)])
            .await
            .unwrap();
        assert_eq!((again.rows_written(), again.already_committed()), (0, 7));
    }
    assert_eq!(spec_rows(&lake.lake, "user").await, expected_clean("user"));
    // One data commit after the table's creation, whatever the replays.
    assert_eq!(lake.lake.load("user").await.unwrap().version(), Some(1));
}

#[tokio::test]
async fn an_input_committed_in_part_adds_only_its_new_positions() {
    let lake = TempLake::new();
    let whole = fixture_input(RecordType::User);
    let mut head = whole.clone();
    head.rows.truncate(3);
    lake.lake.append(&[head]).await.unwrap();
    let rest = lake.lake.append(&[whole]).await.unwrap();
    assert_eq!((rest.rows_written(), rest.already_committed()), (4, 3));
    assert_eq!(spec_rows(&lake.lake, "user").await, expected_clean("user"));
}

#[tokio::test]
async fn whole_row_duplicates_in_one_input_are_written_once() {
    let lake = TempLake::new();
    let line = fixture_lines("pin")[1].clone();
    let input = cleaned_input(RecordType::Pin, "test:a", "a.json", &[&line, &line, &line]);
    let report = lake.lake.append(&[input]).await.unwrap();
    let pin = &report.tables[&LakeTable::Pin];
    assert_eq!((pin.rows_written, pin.duplicates_skipped), (1, 2));
    assert_eq!(lake.lake.count_rows("pin").await.unwrap(), 1);
}

#[tokio::test]
async fn eight_concurrent_appends_to_one_table_all_land() {
    let lake = TempLake::new();
    // Create the table first so the race is on appends, not creation.
    lake.lake.table(LakeTable::Pin).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8i64 {
        let lake = lake.lake.clone();
        tasks.push(tokio::spawn(async move {
            let rows = (0..25)
                .map(|i| LakeRow {
                    position: lake::Position::from_int(i + 1),
                    source: format!("writer-{writer}").into(),
                    row: shared::clean_record(
                        RecordType::Pin,
                        format!("{{\"index\": {}}}", writer * 1000 + i).as_bytes(),
                    )
                    .unwrap()
                    .row,
                })
                .collect();
            let input = Input {
                app_id: format!("test:writer-{writer}"),
                rows,
                ..Input::default()
            };
            lake.append(&[input]).await
        }));
    }
    for task in tasks {
        let report = task.await.unwrap().unwrap();
        assert_eq!(report.rows_written(), 25);
    }
    assert_eq!(lake.lake.count_rows("pin").await.unwrap(), 200);
    assert_eq!(lake.lake.load("pin").await.unwrap().version(), Some(8));
}

#[tokio::test]
async fn a_data_table_that_cannot_be_written_does_not_hold_back_the_others() {
    let lake = TempLake::new();
    let pin = fixture_lines("pin");
    let user = fixture_lines("user");
    let inputs = [
        cleaned_input(RecordType::Pin, "test:pins", "pins.json", &pin),
        cleaned_input(RecordType::User, "test:users", "users.json", &user),
    ];
    // The pin table's location is taken by a file, so its commit fails.
    std::fs::create_dir_all(lake.root()).unwrap();
    std::fs::write(lake.root().join("pin"), b"blocked").unwrap();
    let error = lake.lake.append(&inputs).await.unwrap_err();
    assert_eq!(error.failed, LakeTable::Pin);
    assert!(error.is_committed(LakeTable::User));
    assert_eq!(error.committed.rows_written(), 7);
    assert_eq!(spec_rows(&lake.lake, "user").await, expected_clean("user"));

    // Once the location is free, a retry of the same inputs writes pin and nothing twice.
    std::fs::remove_file(lake.root().join("pin")).unwrap();
    let retry = lake.lake.append(&inputs).await.unwrap();
    let pins = expected_clean("pin");
    assert_eq!(
        (retry.rows_written(), retry.already_committed()),
        (pins.len(), 7)
    );
    assert_eq!(spec_rows(&lake.lake, "pin").await, pins);
    assert_eq!(lake.lake.load("user").await.unwrap().version(), Some(1));
}

/// Positions 1 to `to` of app id `s3:users.json@etag-1`, as an input of the user fixture's
/// first `to` rows.
fn user_rows_up_to(to: usize) -> Input {
    let mut input = fixture_input(RecordType::User);
    input.rows.truncate(to);
    input
}

/// Two handles on one lake, as two warm Lambda instances, each keeping what it read: the first
/// commits positions 1–3 of an input; with `prepared`, it then brings its table up to date
/// ahead of its next append, as a cleaner does while it cleans; the other commits positions 4
/// and 5 of the same input; the first appends positions 1–7, and must not write 4 and 5 again.
async fn another_writer_commits_the_same_input_in_between(prepared: bool) {
    let lake = TempLake::new();
    let other = lake::Lake::open(lake.root().to_str().unwrap()).unwrap();
    let first = lake.lake.append(&[user_rows_up_to(3)]).await.unwrap();
    assert_eq!(first.rows_written(), 3);
    if prepared {
        lake.lake.prepare(LakeTable::User).await;
    }
    let second = other.append(&[user_rows_up_to(5)]).await.unwrap();
    assert_eq!((second.rows_written(), second.already_committed()), (2, 3));
    // The first handle read the log at version 1; the other's commit (version 2) holds
    // positions 4 and 5.
    let third = lake.lake.append(&[user_rows_up_to(7)]).await.unwrap();
    assert_eq!((third.rows_written(), third.already_committed()), (2, 5));
    assert_eq!(spec_rows(&lake.lake, "user").await, expected_clean("user"));
    assert_eq!(other.load("user").await.unwrap().version(), Some(3));
}

#[tokio::test]
async fn a_writer_sees_what_another_writer_committed_since_it_last_looked() {
    another_writer_commits_the_same_input_in_between(false).await;
}

#[tokio::test]
async fn a_table_prepared_before_another_writer_commits_the_same_input_gets_no_duplicate() {
    // The append, planned on the state read before the other commit, collides with it and is
    // planned again.
    another_writer_commits_the_same_input_in_between(true).await;
}

#[tokio::test]
async fn a_writer_whose_table_was_recreated_writes_to_the_new_table() {
    let lake = TempLake::new();
    for to in [3, 5] {
        lake.lake.append(&[user_rows_up_to(to)]).await.unwrap();
    }
    assert_eq!(lake.lake.load("user").await.unwrap().version(), Some(2));
    // The table is dropped and created again by another writer, whose log is shorter than the
    // one the first handle last read.
    std::fs::remove_dir_all(lake.root().join("user")).unwrap();
    let other = lake::Lake::open(lake.root().to_str().unwrap()).unwrap();
    other.append(&[user_rows_up_to(2)]).await.unwrap();
    assert_eq!(other.load("user").await.unwrap().version(), Some(1));
    // The first handle writes after the new table's last commit, and what that commit holds
    // counts as committed.
    let again = lake.lake.append(&[user_rows_up_to(7)]).await.unwrap();
    assert_eq!((again.rows_written(), again.already_committed()), (5, 2));
    assert_eq!(other.load("user").await.unwrap().version(), Some(2));
    assert_eq!(spec_rows(&other, "user").await, expected_clean("user"));
}

#[tokio::test]
async fn a_table_prepared_before_another_input_is_committed_keeps_both() {
    let lake = TempLake::new();
    let other = lake::Lake::open(lake.root().to_str().unwrap()).unwrap();
    lake.lake.append(&[user_rows_up_to(3)]).await.unwrap();
    lake.lake.prepare(LakeTable::User).await;
    // Another input (its own app id) lands after the prepared state was read.
    let lines = fixture_lines("user");
    let another = cleaned_input(
        RecordType::User,
        "test:another",
        "another.json",
        &lines[..1],
    );
    other.append(&[another]).await.unwrap();
    let last = lake.lake.append(&[user_rows_up_to(7)]).await.unwrap();
    assert_eq!((last.rows_written(), last.already_committed()), (4, 3));
    assert_eq!(lake.lake.count_rows("user").await.unwrap(), 8);
    assert_eq!(other.load("user").await.unwrap().version(), Some(3));
}

#[tokio::test]
async fn whole_row_duplicates_spread_over_a_large_input_are_written_once() {
    let lake = TempLake::new();
    let line: serde_json::Value = serde_json::from_str(&fixture_lines("pin")[1]).unwrap();
    let pin = |index: usize| {
        let mut pin = line.clone();
        pin["index"] = index.into();
        pin.to_string()
    };
    // 24,000 distinct pins; every third one comes again after all of them, and once more,
    // interleaved, at the end.
    let mut lines: Vec<String> = (0..24_000).map(pin).collect();
    lines.extend((0..24_000).step_by(3).map(pin));
    lines.extend((0..24_000).step_by(3).rev().map(pin));
    let input = cleaned_input(RecordType::Pin, "test:large", "large.json", &lines);
    let report = lake.lake.append(&[input]).await.unwrap();
    let pin = &report.tables[&LakeTable::Pin];
    assert_eq!((pin.rows_written, pin.duplicates_skipped), (24_000, 16_000));
    let rows = lake.lake.read_rows("pin").await.unwrap();
    // Each pin once, as its first occurrence (line `index + 1`) gave it.
    let mut kept: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ind"].as_i64().unwrap(),
                r["_source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kept.sort();
    let first: Vec<(i64, String)> = (0..24_000)
        .map(|i| (i, format!("large.json#line={}", i + 1)))
        .collect();
    assert_eq!(kept, first);
}

/// A topic-partition's records at `offsets`: a pin per offset, but those at `bad`, which are
/// quarantined, as a cleaner hands a Kafka batch over.
fn partition_input(offsets: std::ops::Range<i64>, bad: &[i64]) -> Input {
    let mut input = Input {
        app_id: "msk:0a5e6ec37a2f.pin+0".into(),
        bookkeeping: lake::Bookkeeping::Offsets,
        ..Input::default()
    };
    for offset in offsets {
        let position = lake::Position::from_int(offset);
        let source = format!("kafka:0a5e6ec37a2f.pin+0+{offset}");
        if bad.contains(&offset) {
            input.quarantine.push((
                position,
                lake::QuarantineRow {
                    source,
                    record_type: Some(RecordType::Pin),
                    raw: "not json".into(),
                    error: "not JSON".into(),
                    quarantined_at: chrono::Utc::now(),
                },
            ));
        } else {
            let line = format!("{{\"index\": {offset}, \"category\": \"travel\"}}");
            input.rows.push(LakeRow {
                position,
                source: source.into(),
                row: shared::clean_record(RecordType::Pin, line.as_bytes())
                    .unwrap()
                    .row,
            });
        }
    }
    input
}

#[tokio::test]
async fn a_partition_with_quarantined_records_keeps_one_offset_range_per_table() {
    let lake = TempLake::new();
    // Two consecutive batches of one partition, with bad records inside each, then a
    // redelivery of an overlapping window: each table keeps the partition as one range.
    lake.lake
        .append(&[partition_input(0..10, &[3, 7])])
        .await
        .unwrap();
    lake.lake
        .append(&[partition_input(10..20, &[12])])
        .await
        .unwrap();
    let again = lake
        .lake
        .append(&[partition_input(5..15, &[7, 12])])
        .await
        .unwrap();
    assert_eq!(
        (
            again.rows_written(),
            again.quarantined(),
            again.already_committed()
        ),
        (0, 0, 10)
    );
    for table in ["pin", "quarantine"] {
        let delta = lake.lake.load(table).await.unwrap();
        let committed = lake::committed::committed_transactions(&delta)
            .await
            .unwrap();
        let ranges =
            lake::offsets::OffsetRanges::from_transactions("msk:0a5e6ec37a2f.pin+0", |id| {
                committed.version(id)
            });
        assert_eq!(ranges.ranges(), &[(0, 19)], "{table}");
        assert_eq!(
            committed.len(),
            3,
            "{table}: one range is three txn entries"
        );
    }
    assert_eq!(lake.lake.count_rows("pin").await.unwrap(), 17);
    assert_eq!(lake.lake.count_rows("quarantine").await.unwrap(), 3);
}
