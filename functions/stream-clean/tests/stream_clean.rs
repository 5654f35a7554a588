//! stream-clean against a local lake: exactly once per record, quarantine without blocking,
//! item failures only for lake failures.

use aws_lambda_events::event::kinesis::KinesisEvent;
use lake::{Lake, LakeTable};
use serde_json::json;
use stream_clean::{handle, kinesis_event, StreamCleanDeps};

const PIN_STREAM: &str = "streaming-0a5e6ec37a2f-pin";
const SHARD: &str = "shardId-000000000000";

/// A realistic 56-digit sequence number; consecutive ones differ by about 2^80, far above
/// the low 18 digits, as real Kinesis sequence numbers do.
fn seq(i: u64) -> String {
    let low = 10u128.pow(36) + u128::from(i) * 1_208_925_819_614_629_174_706_176;
    format!("4959033827149025660{low:037}")
}

fn deps(dir: &tempfile::TempDir) -> StreamCleanDeps {
    StreamCleanDeps {
        lake: Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap(),
    }
}

/// Pin records `range` as (sequence, partition key, JSON bytes), each a distinct post, every
/// `bad_every`-th one not cleanable.
fn pin_records(
    range: std::ops::Range<u64>,
    bad_every: Option<u64>,
) -> Vec<(String, String, Vec<u8>)> {
    range
        .map(|i| {
            let data = match bad_every {
                Some(k) if i % k == k - 1 => br#"{"title": "no index here"}"#.to_vec(),
                _ => serde_json::to_vec(&json!({
                    "index": i, "unique_id": format!("u-{i}"), "title": format!("post {i}"),
                    "follower_count": format!("{}k", i % 90 + 1), "category": "travel",
                    "save_location": "Local save in /data/travel",
                }))
                .unwrap(),
            };
            (seq(i), "test".to_string(), data)
        })
        .collect()
}

fn event(records: &[(String, String, Vec<u8>)]) -> KinesisEvent {
    kinesis_event(PIN_STREAM, SHARD, records)
}

#[test]
fn generated_sequence_numbers_are_realistic_and_increasing() {
    let all: Vec<String> = (0..1000).map(seq).collect();
    assert!(all.iter().all(|s| s.len() == 56));
    let positions: Vec<lake::Position> = all
        .iter()
        .map(|s| lake::Position::from_decimal(s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn ten_thousand_records_with_one_percent_bad_in_one_commit_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let records = pin_records(0..10_000, Some(100));
    let outcome = handle(&event(&records), &deps).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    let r = &outcome.report;
    assert_eq!(
        (
            r.counts.records_in,
            r.counts.rows_written,
            r.counts.quarantined,
            r.item_failures
        ),
        (10_000, 9_900, 100, 0)
    );
    assert_eq!(deps.lake.count_rows("pin").await.unwrap(), 9_900);
    assert_eq!(deps.lake.count_rows("quarantine").await.unwrap(), 100);
    for table in ["pin", "quarantine"] {
        assert_eq!(
            deps.lake.load(table).await.unwrap().version(),
            Some(1),
            "{table}: created, then one commit"
        );
    }
    let q = deps.lake.read_rows("quarantine").await.unwrap();
    let first = q
        .iter()
        .find(|r| r["source"] == format!("kinesis:{PIN_STREAM}/{SHARD}/{}", seq(99)))
        .unwrap();
    assert_eq!(first["record_type"], "pin");
    assert_eq!(first["error"], "`index` is required but missing or null");
    assert_eq!(first["raw"], r#"{"title": "no index here"}"#);
}

#[tokio::test]
async fn redelivered_and_overlapping_batches_add_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let first = event(&pin_records(0..100, Some(10)));
    for delivery in 0..3 {
        let outcome = handle(&first, &deps).await;
        assert!(outcome.response.batch_item_failures.is_empty());
        let r = &outcome.report;
        if delivery == 0 {
            assert_eq!(
                (
                    r.counts.rows_written,
                    r.counts.quarantined,
                    r.counts.already_committed
                ),
                (90, 10, 0)
            );
        } else {
            assert_eq!(
                (
                    r.counts.rows_written,
                    r.counts.quarantined,
                    r.counts.already_committed
                ),
                (0, 0, 100)
            );
        }
    }
    // Records 50..150: the first half was committed above.
    let overlap = handle(&event(&pin_records(50..150, Some(10))), &deps).await;
    let r = &overlap.report;
    assert_eq!(
        (
            r.counts.rows_written,
            r.counts.quarantined,
            r.counts.already_committed
        ),
        (45, 5, 50)
    );
    assert_eq!(deps.lake.count_rows("pin").await.unwrap(), 135);
    assert_eq!(deps.lake.count_rows("quarantine").await.unwrap(), 15);
    let mut inds = test_support::sorted_inds(&deps.lake, "pin").await;
    inds.dedup();
    assert_eq!(inds.len(), 135, "no row twice");
}

#[tokio::test]
async fn a_lake_failure_mid_batch_fails_from_the_first_uncommitted_record_and_the_retry_completes()
{
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    // pin and quarantine records on one shard, user records on another stream.
    let pins = pin_records(0..20, Some(5));
    let users: Vec<(String, String, Vec<u8>)> = (0..10u64)
        .map(|i| (seq(i), "test".into(), serde_json::to_vec(&json!({"ind": i, "first_name": "A", "last_name": "B", "age": 30, "date_joined": "2016-01-01 00:00:00"})).unwrap()))
        .collect();
    let mut mixed = event(&pins);
    mixed.records.extend(
        kinesis_event(
            "streaming-0a5e6ec37a2f-user",
            "shardId-000000000001",
            &users,
        )
        .records,
    );

    // The user table's location is blocked by a file: its commit fails after pin's.
    std::fs::write(dir.path().join("lake").join("user"), b"blocked").unwrap();
    let failed = handle(&mixed, &deps).await;
    let ids: Vec<String> = failed
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    // pin committed, so the pin shard's first uncommitted record is its first quarantined one;
    // the user shard failed from its first record.
    assert_eq!(ids, vec![seq(4), seq(0)]);
    assert_eq!(deps.lake.count_rows("pin").await.unwrap(), 16);
    assert_eq!(deps.lake.count_rows("quarantine").await.unwrap(), 0);

    // Lambda retries each shard from its failed record, with everything after it.
    std::fs::remove_file(dir.path().join("lake").join("user")).unwrap();
    let mut retry = event(&pins[4..]);
    retry.records.extend(
        kinesis_event(
            "streaming-0a5e6ec37a2f-user",
            "shardId-000000000001",
            &users,
        )
        .records,
    );
    let done = handle(&retry, &deps).await;
    assert!(done.response.batch_item_failures.is_empty());
    assert_eq!(
        (
            done.report.counts.rows_written,
            done.report.counts.quarantined,
            done.report.counts.already_committed
        ),
        (10, 4, 12)
    );
    assert_eq!(deps.lake.count_rows("pin").await.unwrap(), 16);
    assert_eq!(deps.lake.count_rows("user").await.unwrap(), 10);
    assert_eq!(deps.lake.count_rows("quarantine").await.unwrap(), 4);
    assert_eq!(
        deps.lake.load("pin").await.unwrap().version(),
        Some(1),
        "pin was not written again"
    );
    let _ = LakeTable::Pin;
}

#[tokio::test]
async fn base64_encoded_json_and_unknown_streams() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&dir);
    let geo = br#"{"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"}"#;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(geo)
        .into_bytes();
    let quoted = format!("\"{}\"", String::from_utf8(b64.clone()).unwrap()).into_bytes();
    let records = vec![
        (seq(1), "k".into(), geo.to_vec()),
        (seq(2), "k".into(), b64),
        (seq(3), "k".into(), quoted),
    ];
    let outcome = handle(&kinesis_event("streaming-x-geo", SHARD, &records), &deps).await;
    assert_eq!(
        (
            outcome.report.counts.rows_written,
            outcome.report.counts.duplicates_skipped
        ),
        (1, 2)
    );

    let odd = handle(&kinesis_event("clickstream", SHARD, &records[..1]), &deps).await;
    assert!(
        odd.response.batch_item_failures.is_empty(),
        "bad data never blocks a shard"
    );
    assert_eq!(odd.report.counts.quarantined, 1);
    let q = deps.lake.read_rows("quarantine").await.unwrap();
    assert_eq!(q[0]["error"], "cannot tell the record type: `clickstream` does not end in a record type: expected streaming-<prefix>-pin, -geo or -user");
}
