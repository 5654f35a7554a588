//! batch-clean over a local raw landing: every record cleaned or quarantined, exactly once,
//! whatever the events' order, repeats and wrapping.

use batch_clean::objects::{list_landed, s3_put_event};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use lake::Lake;
use object_store::local::LocalFileSystem;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use std::sync::Arc;
use test_support::{
    expected_clean, fixture_lines, sorted_inds, spec_rows, AWKWARD_NAMES, RAW_BUCKET as BUCKET,
};

/// A raw landing and a lake in a fresh temporary directory.
struct Landing {
    dir: tempfile::TempDir,
    store: Arc<LocalFileSystem>,
    deps: BatchCleanDeps,
}

impl Landing {
    fn new() -> Landing {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("raw")).unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("raw")).unwrap());
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        let deps = BatchCleanDeps {
            raw: RawStores::Fixed(store.clone()),
            lake,
        };
        Landing { dir, store, deps }
    }

    /// The fixture's rows landed as one raw object per table, and cleaned.
    async fn fixture() -> (Landing, BatchReport) {
        let env = Landing::new();
        for (key, body) in test_support::fixture_objects() {
            env.put_raw(&key, &body).await;
        }
        let report = env.clean_landed().await;
        (env, report)
    }

    /// Writes `body` as a raw object at `key`.
    async fn put_raw(&self, key: &str, body: &str) {
        self.store
            .put(
                &object_store::path::Path::from(key),
                body.to_string().into(),
            )
            .await
            .unwrap();
    }

    /// An S3 put event for everything landed so far.
    async fn landed_event(&self) -> aws_lambda_events::event::s3::S3Event {
        let objects = list_landed(self.store.as_ref(), BUCKET).await.unwrap();
        s3_put_event(&objects)
    }

    /// Runs batch-clean over the landed fixture objects, which the lake already holds: nothing
    /// is written, and the tables hold the fixture's expected rows.
    async fn cleans_nothing_new_over_the_fixture(&self) {
        let report = self.clean_landed().await;
        assert_eq!(
            (report.counts.rows_written, report.counts.already_committed),
            (0, 23)
        );
        for table in ["pin", "geo", "user"] {
            assert_eq!(
                spec_rows(&self.deps.lake, table).await,
                expected_clean(table)
            );
        }
    }

    /// Runs batch-clean over everything landed so far, in one invocation.
    async fn clean_landed(&self) -> BatchReport {
        let event = self.landed_event().await;
        batch_clean::handle_s3(&event, &self.deps).await.unwrap()
    }
}

#[tokio::test]
async fn fixture_rows_cleaned_into_delta_match_expected() {
    let (env, report) = Landing::fixture().await;
    assert_eq!(report.counts.records_in, 9 + 7 + 7);
    assert_eq!(report.counts.rows_written, 23);
    assert_eq!(report.counts.quarantined, 0);
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(&env.deps.lake, table).await,
            expected_clean(table),
            "table {table}"
        );
    }
    // Column order and types are the SPEC's.
    let batches = env.deps.lake.read_batches("geo").await.unwrap();
    let schema = batches[0].schema();
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        columns,
        [
            "ind:Int64",
            "country:Utf8",
            "coordinates:List(Float64, field: 'element')",
            "timestamp:Timestamp(µs, \"UTC\")",
            "_source:Utf8",
            "_ingested_at:Timestamp(µs, \"UTC\")",
        ]
    );
}

#[tokio::test]
async fn replaying_the_same_s3_event_three_times_keeps_one_copy() {
    let env = Landing::new();
    env.put_raw(
        "topics/0a5e6ec37a2f.user/partition=0/users.json",
        &(fixture_lines("user").join("\n") + "\n"),
    )
    .await;
    let event = env.landed_event().await;
    let first = batch_clean::handle_s3(&event, &env.deps).await.unwrap();
    assert_eq!(first.counts.rows_written, 7);
    for _ in 0..2 {
        let again = batch_clean::handle_s3(&event, &env.deps).await.unwrap();
        assert_eq!(
            (again.counts.rows_written, again.counts.already_committed),
            (0, 7)
        );
    }
    assert_eq!(
        spec_rows(&env.deps.lake, "user").await,
        expected_clean("user")
    );
    // One data commit after the table's creation, whatever the replays.
    let table = env.deps.lake.load("user").await.unwrap();
    assert_eq!(table.version(), Some(1));
}

#[tokio::test]
async fn the_same_event_wrapped_in_sqs_is_also_exactly_once() {
    let env = Landing::new();
    env.put_raw(
        "topics/0a5e6ec37a2f.geo/partition=0/a file with spaces.json",
        &fixture_lines("geo")[0],
    )
    .await;
    let s3 = env.landed_event().await;
    let key = s3.records[0].s3.object.key.clone().unwrap();
    assert_eq!(
        key,
        "topics/0a5e6ec37a2f.geo/partition=0/a+file+with+spaces.json"
    );
    let sqs = json!({"Records": [
        {"messageId": "m-1", "eventSource": "aws:sqs", "body": serde_json::to_string(&s3).unwrap()},
        {"messageId": "m-2", "eventSource": "aws:sqs", "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}"},
        {"messageId": "m-3", "eventSource": "aws:sqs", "body": serde_json::to_string(&s3).unwrap()},
    ]});
    let report = batch_clean::handle_event(sqs.clone(), &env.deps)
        .await
        .unwrap();
    assert_eq!(
        (
            report.objects,
            report.counts.rows_written,
            report.counts.duplicates_skipped
        ),
        (2, 1, 1)
    );
    let again = batch_clean::handle_event(sqs, &env.deps).await.unwrap();
    assert_eq!(again.counts.rows_written, 0);
    assert_eq!(env.deps.lake.count_rows("geo").await.unwrap(), 1);
}

#[tokio::test]
async fn every_unreadable_sqs_message_is_quarantined_once() {
    let env = Landing::new();
    let message =
        |id: &str, body: &str| json!({"messageId": id, "eventSource": "aws:sqs", "body": body});
    let sqs = json!({"Records": [
        message("m-1", "not json at all"),
        message("m-2", "{\"Records\": 7}"),
        message("m-3", "[]"),
    ]});
    let report = batch_clean::handle_event(sqs.clone(), &env.deps)
        .await
        .unwrap();
    assert_eq!(
        (report.counts.records_in, report.counts.quarantined),
        (3, 3)
    );
    // Redelivered together, and one of them again on its own: nothing more is written.
    batch_clean::handle_event(sqs, &env.deps).await.unwrap();
    let one = json!({"Records": [message("m-2", "{\"Records\": 7}")]});
    batch_clean::handle_event(one, &env.deps).await.unwrap();
    let mut rows = env.deps.lake.read_rows("quarantine").await.unwrap();
    rows.sort_by_key(|r| r["source"].as_str().map(str::to_string));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap_or_default(),
                r["raw"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sqs:m-1", "not json at all"),
            ("sqs:m-2", "{\"Records\": 7}"),
            ("sqs:m-3", "[]")
        ]
    );
}

#[tokio::test]
async fn a_mixed_batch_commits_the_good_and_quarantines_the_bad() {
    let env = Landing::new();
    let good = fixture_lines("user");
    let body = [
        good[0].as_str(),
        r#"{"ind": 9001, "first_name": "Ann", "last_name": "Lee", "age": "twenty", "date_joined": "2015-01-01 00:00:00"}"#,
        good[1].as_str(),
        "this is not json",
        r#"{"first_name": "No", "last_name": "Ind", "age": 30}"#,
        r#"{"ind": 9002, "date_joined": "last tuesday"}"#,
        good[2].as_str(),
    ]
    .join("\n");
    env.put_raw("topics/0a5e6ec37a2f.user/partition=0/mixed.json", &body)
        .await;
    let report = env.clean_landed().await;
    assert_eq!(report.counts.records_in, 7);
    assert_eq!(
        (report.counts.rows_written, report.counts.quarantined),
        (3, 4)
    );
    assert_eq!(
        report.counts.records_in,
        report.counts.rows_written + report.counts.quarantined
    );
    assert_eq!(spec_rows(&env.deps.lake, "user").await.len(), 3);

    let mut quarantine = env.deps.lake.read_rows("quarantine").await.unwrap();
    quarantine.sort_by_key(|r| r["source"].as_str().map(str::to_string));
    let got: Vec<(String, String, String)> = quarantine
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["record_type"].as_str().unwrap().to_string(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let src =
        |n: u32| format!("s3://{BUCKET}/topics/0a5e6ec37a2f.user/partition=0/mixed.json#line={n}");
    assert_eq!(
        got,
        vec![
            (src(2), "user".into(), "`age` must be an integer, found the text \"twenty\"".into()),
            (src(4), "user".into(), "record is not valid JSON: expected ident at line 1 column 2".into()),
            (src(5), "user".into(), "`ind` is required but missing or null".into()),
            (src(6), "user".into(), "`date_joined` must be a timestamp like \"2020-08-28 03:52:47\", found \"last tuesday\"".into()),
        ]
    );
    assert_eq!(quarantine[1]["raw"], "this is not json");
    assert!(quarantine[0]["quarantined_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn an_object_under_an_unknown_topic_is_quarantined_not_dropped() {
    let env = Landing::new();
    env.put_raw(
        "topics/0a5e6ec37a2f.pins/partition=0/x.json",
        "{\"index\": 1}\n{\"index\": 2}\n",
    )
    .await;
    let report = env.clean_landed().await;
    assert_eq!(
        (
            report.counts.records_in,
            report.counts.rows_written,
            report.counts.quarantined
        ),
        (2, 0, 2)
    );
    let rows = env.deps.lake.read_rows("quarantine").await.unwrap();
    assert_eq!(rows[0]["record_type"], Value::Null);
    assert_eq!(
        rows[0]["error"],
        "cannot tell the record type: `0a5e6ec37a2f.pins` does not end in a record type: expected <prefix>.pin, <prefix>.geo or <prefix>.user"
    );
}

#[tokio::test]
async fn whole_row_duplicates_in_one_batch_are_written_once() {
    let env = Landing::new();
    let line = &fixture_lines("pin")[1];
    env.put_raw("topics/p.pin/a.json", &format!("{line}\n{line}\n{line}\n"))
        .await;
    let report = env.clean_landed().await;
    assert_eq!(
        (
            report.counts.records_in,
            report.counts.rows_written,
            report.counts.duplicates_skipped
        ),
        (3, 1, 2)
    );
}

/// One batch of many objects, on the multi-threaded runtime the Lambda and the CLI run on, and
/// the same batch again (as `pinpipe run` backfills what the API already cleaned). Each object is
/// looked up in the Delta log; more lookups at once than tokio's blocking pool has threads used
/// to deadlock reading a local table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_thousand_objects_is_cleaned_and_replayed() {
    const OBJECTS: usize = 1000;
    let env = Landing::new();
    for i in 0..OBJECTS {
        let row = json!({"ind": i, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": 2.5, "country": "Chile"});
        env.put_raw(
            &format!("topics/0a5e6ec37a2f.geo/partition=0/{i:04}.json"),
            &row.to_string(),
        )
        .await;
    }
    // The first run writes every object; the replay finds every one already committed.
    for expected in [(OBJECTS, OBJECTS, 0), (OBJECTS, 0, OBJECTS)] {
        let report = tokio::time::timeout(test_support::COMMAND_LIMIT, env.clean_landed())
            .await
            .expect("batch-clean hung");
        let c = &report.counts;
        assert_eq!(
            (report.objects, c.rows_written, c.already_committed),
            expected
        );
    }
    assert_eq!(env.deps.lake.count_rows("geo").await.unwrap(), OBJECTS);
}

/// MSK Connect sink files of one topic-partition, delivered shuffled over several invocations
/// (S3 events are unordered), some twice, land every record exactly once; the bookkeeping ends
/// as one offset range per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_files_delivered_shuffled_in_several_invocations_land_exactly_once() {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    const FILES: usize = 1500;
    let env = Landing::new();
    let topic = "0a5e6ec37a2f.geo";
    let mut objects = Vec::new();
    for offset in 0..FILES {
        let row = json!({"ind": offset, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": 2.5, "country": "Chile"});
        let key = format!("topics/{topic}/partition=0/{topic}+0+{offset:010}.json");
        env.put_raw(&key, &row.to_string()).await;
        objects.push(batch_clean::ObjectRef {
            bucket: BUCKET.into(),
            key,
            etag: None,
            size: None,
        });
    }
    let mut shuffled = objects.clone();
    shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    // A few files are announced twice, within an invocation and across invocations.
    shuffled.extend_from_slice(&objects[..5]);
    shuffled.insert(100, objects[3].clone());
    let mut written = 0;
    let mut repeated = 0;
    for invocation in shuffled.chunks(400) {
        let event = batch_clean::objects::s3_put_event(invocation);
        let report = batch_clean::handle_s3(&event, &env.deps).await.unwrap();
        written += report.counts.rows_written;
        repeated += report.counts.already_committed + report.counts.duplicates_skipped;
    }
    assert_eq!((written, repeated), (FILES, 6));
    let inds = sorted_inds(&env.deps.lake, "geo").await;
    assert_eq!(inds, (0..FILES as i64).collect::<Vec<_>>());

    let table = env.deps.lake.load("geo").await.unwrap();
    let committed = lake::committed::committed_transactions(&table)
        .await
        .unwrap();
    let ranges = lake::offsets::OffsetRanges::from_transactions(&format!("msk:{topic}+0"), |id| {
        committed.version(id)
    });
    assert_eq!(ranges.ranges(), &[(0, FILES as i64 - 1)]);

    // In offset order (as `process` lists them) a backfill keeps three entries per partition.
    let in_order = Landing::new();
    for object in &objects {
        let row = json!({"ind": 1, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": 2.5, "country": "Chile"});
        in_order.put_raw(&object.key, &row.to_string()).await;
    }
    for invocation in objects.chunks(400) {
        let event = batch_clean::objects::s3_put_event(invocation);
        batch_clean::handle_s3(&event, &in_order.deps)
            .await
            .unwrap();
    }
    let table = in_order.deps.lake.load("geo").await.unwrap();
    let committed = lake::committed::committed_transactions(&table)
        .await
        .unwrap();
    assert_eq!(committed.len(), 3);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A local object's identity is its bytes: a copy of the raw tree, or an object written again
/// unchanged, adds nothing to a lake that holds it.
#[tokio::test]
async fn process_re_ingests_unchanged_local_objects_whose_file_identity_changed() {
    let env = Landing::new();
    for table in ["pin", "geo", "user"] {
        env.put_raw(
            &format!("topics/0a5e6ec37a2f.{table}/dt=2026-11-28/{table}.ndjson"),
            &(fixture_lines(table).join("\n") + "\n"),
        )
        .await;
    }
    assert_eq!(env.clean_landed().await.counts.rows_written, 23);

    let copy = env.dir.path().join("raw2");
    copy_tree(&env.dir.path().join("raw"), &copy);
    let copied = batch_clean::BatchCleanDeps {
        raw: batch_clean::RawStores::local_dir(&copy).unwrap(),
        lake: env.deps.lake.clone(),
    };
    let objects = batch_clean::objects::list_landed(
        &object_store::local::LocalFileSystem::new_with_prefix(&copy).unwrap(),
        BUCKET,
    )
    .await
    .unwrap();
    let event = batch_clean::objects::s3_put_event(&objects);
    let report = batch_clean::handle_s3(&event, &copied).await.unwrap();
    assert_eq!(
        (report.counts.rows_written, report.counts.already_committed),
        (0, 23)
    );

    // The same bytes written again: a new inode and time, the same object.
    env.put_raw(
        "topics/0a5e6ec37a2f.geo/dt=2026-11-28/geo.ndjson",
        &(fixture_lines("geo").join("\n") + "\n"),
    )
    .await;
    env.cleans_nothing_new_over_the_fixture().await;
}

/// A lake written by an earlier release, which named a local object `s3:<key>@<MD5 of its
/// bytes>`: its objects are recognised, so running over the same landing again adds nothing,
/// and new objects still land.
#[tokio::test]
async fn a_lake_that_named_local_objects_by_their_md5_does_not_take_them_in_again() {
    use md5::{Digest, Md5};
    let env = Landing::new();
    let key = |table: &str| format!("topics/0a5e6ec37a2f.{table}/dt=2026-11-28/{table}.ndjson");
    let mut earlier = Vec::new();
    let mut report = BatchReport::default();
    for table in ["pin", "geo", "user"] {
        let body = fixture_lines(table).join("\n") + "\n";
        env.put_raw(&key(table), &body).await;
        let object = batch_clean::objects::ObjectRef {
            bucket: BUCKET.into(),
            key: key(table),
            etag: None,
            size: None,
        };
        let md5 = format!("{:x}", Md5::digest(body.as_bytes()));
        let input = batch_clean::clean_object(&object, &md5, body.as_bytes(), &mut report);
        assert_eq!(input.app_id, format!("s3:{}@{md5}", key(table)));
        earlier.push(input);
    }
    let written = env.deps.lake.append(&earlier).await.unwrap();
    assert_eq!(written.rows_written(), 23);

    env.cleans_nothing_new_over_the_fixture().await;

    // The same key with other bytes is another object (as an overwritten S3 object is): its
    // rows land, once.
    let mut lines = fixture_lines("user");
    let users = lines.len();
    lines.push(r#"{"ind": 999999, "first_name": "New", "last_name": "User", "age": 30, "date_joined": "2020-01-01T00:00:00"}"#.to_string());
    env.put_raw(&key("user"), &(lines.join("\n") + "\n")).await;
    let report = env.clean_landed().await;
    assert_eq!(
        (report.counts.rows_written, report.counts.already_committed),
        (users + 1, 23 - users)
    );
    assert!(sorted_inds(&env.deps.lake, "user").await.contains(&999999));
    let again = env.clean_landed().await;
    assert_eq!(
        (again.counts.rows_written, again.counts.already_committed),
        (0, 23 + 1)
    );
}

async fn put_bytes(env: &Landing, key: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    env.store
        .put(&object_store::path::Path::from(key), bytes.into())
        .await
        .unwrap();
}

/// A BOM no longer costs the first record, gzip objects are read, and a record that is not
/// UTF-8 (or an object that cannot be read at all) is quarantined with its exact bytes.
#[tokio::test]
async fn raw_objects_with_a_bom_or_gzip_lose_nothing_and_quarantine_keeps_exact_bytes() {
    let env = Landing::new();
    let mut with_bom = b"\xef\xbb\xbf".to_vec();
    with_bom.extend((fixture_lines("geo").join("\n") + "\n").as_bytes());
    put_bytes(&env, "topics/p.geo/dt=2026-11-28/bom.ndjson", with_bom).await;
    put_bytes(
        &env,
        "topics/p.pin/dt=2026-11-28/pins.ndjson.gz",
        gzipped_fixture("pin"),
    )
    .await;
    let bad_line = b"{\"ind\": 1, \"first_name\": \"\xff\xfe\", \"age\": \"x\"}".to_vec();
    let mut users = (fixture_lines("user").join("\n") + "\n").into_bytes();
    users.extend(&bad_line);
    put_bytes(&env, "topics/p.user/dt=2026-11-28/users.ndjson", users).await;
    let corrupt = vec![0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef];
    put_bytes(
        &env,
        "topics/p.user/dt=2026-11-28/broken.ndjson.gz",
        corrupt.clone(),
    )
    .await;

    let report = env.clean_landed().await;
    assert_eq!(
        (report.counts.rows_written, report.counts.quarantined),
        (23, 2)
    );
    for table in ["pin", "geo", "user"] {
        assert_eq!(
            spec_rows(&env.deps.lake, table).await,
            expected_clean(table),
            "{table}"
        );
    }
    let mut quarantined: Vec<(String, Vec<u8>)> = env
        .deps
        .lake
        .read_rows("quarantine")
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let row = lake::QuarantineRow {
                source: r["source"].as_str().unwrap().to_string(),
                record_type: None,
                raw: r["raw"].as_str().unwrap().to_string(),
                error: String::new(),
                quarantined_at: chrono::Utc::now(),
            };
            assert!(row.raw.starts_with("base64:"), "{}", row.raw);
            (row.source.clone(), row.raw_bytes())
        })
        .collect();
    quarantined.sort();
    assert_eq!(
        quarantined,
        vec![
            (
                "s3://local-raw/topics/p.user/dt=2026-11-28/broken.ndjson.gz".to_string(),
                corrupt
            ),
            (
                "s3://local-raw/topics/p.user/dt=2026-11-28/users.ndjson#line=8".to_string(),
                bad_line
            ),
        ]
    );
}

#[tokio::test]
async fn object_keys_with_non_ascii_hash_percent_or_question_mark_are_not_skipped() {
    use object_store::ObjectStoreExt;
    let env = Landing::new();
    for (i, name) in AWKWARD_NAMES.iter().enumerate() {
        let key = format!("topics/p.geo/dt=2026-11-28/{name}");
        let row = json!({"ind": i, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": 2.5, "country": "Chile"});
        env.store
            .put(
                &object_store::path::Path::parse(&key).unwrap(),
                format!("{row}\n").into(),
            )
            .await
            .unwrap();
    }
    let report = env.clean_landed().await;
    assert_eq!(
        (
            report.objects,
            report.missing_objects,
            report.counts.rows_written
        ),
        (AWKWARD_NAMES.len(), 0, AWKWARD_NAMES.len())
    );
    let sources: std::collections::BTreeSet<String> = env
        .deps
        .lake
        .read_rows("geo")
        .await
        .unwrap()
        .iter()
        .map(|r| r["_source"].as_str().unwrap().to_string())
        .collect();
    let expected: std::collections::BTreeSet<String> = AWKWARD_NAMES
        .iter()
        .map(|n| format!("topics/p.geo/dt=2026-11-28/{n}"))
        .collect();
    assert_eq!(sources, expected);
}

/// Raw objects a crash or a failed upload can leave: an empty object, an NDJSON object whose
/// last line was cut, a gzip object cut short. Every whole record is kept, the torn line is
/// quarantined as it is with its line named, and the unreadable gzip is quarantined whole with
/// its exact bytes: nothing vanishes, and a second run changes nothing.
#[tokio::test]
async fn empty_and_torn_raw_objects_keep_every_whole_record_and_name_the_torn_part() {
    let env = Landing::new();
    put_bytes(&env, "topics/p.pin/dt=2026-12-04/empty.ndjson", Vec::new()).await;
    let geo = fixture_lines("geo").join("\n");
    let cut = geo.len() - 20;
    let torn_line = geo.as_bytes()[geo.rfind('\n').unwrap() + 1..cut].to_vec();
    put_bytes(
        &env,
        "topics/p.geo/dt=2026-12-04/torn.ndjson",
        geo.as_bytes()[..cut].to_vec(),
    )
    .await;
    let gzip = gzipped_fixture("user");
    let cut_gzip = gzip[..gzip.len() / 2].to_vec();
    put_bytes(
        &env,
        "topics/p.user/dt=2026-12-04/torn.ndjson.gz",
        cut_gzip.clone(),
    )
    .await;

    let report = env.clean_landed().await;
    assert_eq!(
        (report.counts.rows_written, report.counts.quarantined),
        (6, 2)
    );
    // The whole lines are the geo table's rows: the fixture's expected rows but the torn one's.
    let torn_ind = serde_json::from_str::<Value>(fixture_lines("geo").last().unwrap()).unwrap()
        ["ind"]
        .as_i64()
        .unwrap();
    let expected_geo: Vec<Value> = expected_clean("geo")
        .into_iter()
        .filter(|row| row["ind"].as_i64() != Some(torn_ind))
        .collect();
    assert_eq!(spec_rows(&env.deps.lake, "geo").await, expected_geo);
    let quarantined: Vec<(String, String)> = test_support::quarantined(&env.deps.lake).await;
    assert_eq!(
        quarantined,
        vec![
            (
                "s3://local-raw/topics/p.geo/dt=2026-12-04/torn.ndjson#line=7".to_string(),
                lake::QuarantineRow::raw_text(&torn_line)
            ),
            (
                "s3://local-raw/topics/p.user/dt=2026-12-04/torn.ndjson.gz".to_string(),
                lake::QuarantineRow::raw_text(&cut_gzip)
            ),
        ]
    );
    let errors: Vec<String> = env
        .deps
        .lake
        .read_rows("quarantine")
        .await
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("not a readable gzip stream")),
        "{errors:?}"
    );

    let again = env.clean_landed().await;
    assert_eq!(
        (again.counts.rows_written, again.counts.quarantined),
        (0, 0)
    );
}

/// A fixture's records as one gzip NDJSON object.
fn gzipped_fixture(kind: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all((fixture_lines(kind).join("\n") + "\n").as_bytes())
        .unwrap();
    gzip.finish().unwrap()
}
