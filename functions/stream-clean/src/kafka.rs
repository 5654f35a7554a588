//! Kafka batches into the Delta lake (SPEC §4 "Kafka", §5–§7): the `KafkaEvent` Lambda delivers
//! from Amazon MSK (`aws:kafka`) and from self-managed Kafka (`SelfManagedKafka`).
//!
//! Records come grouped by topic-partition (`<topic>-<partition>`), each value base64-encoded;
//! the value is the JSON text of a raw record, the record type is the topic's suffix
//! (`<prefix>.pin|geo|user`). Each record is cleaned with `shared`; one that cannot be (not
//! JSON, a null value, a value that is not base64, a topic of no known record type) is
//! quarantined with its exact bytes and its topic, partition and offset
//! (`kafka:<topic>+<partition>+<offset>`).
//!
//! Exactly once per (topic, partition, offset): every topic-partition is one input under
//! `msk:<topic>+<partition>`, the app id the MSK Connect S3 sink's files of the same partition
//! use in batch-clean, kept as the set of committed offsets (as ranges, see
//! [`lake::offsets`]) in the same Delta commit as the rows. A redelivered batch, an
//! overlapping window or batches out of order add nothing and skip nothing, and a record that
//! reached the lake both through MSK Connect's files and through this consumer lands once.
//!
//! A failed lake write fails the invocation ([`FailureMode::FailInvocation`], the default), so
//! Lambda retries the whole batch and the retry adds only what did not land. With an event
//! source mapping in provisioned mode with `ReportBatchItemFailures`
//! ([`FailureMode::ReportBatchItemFailures`]), the answer is the partial-batch response
//! instead: per topic-partition, the first record (by offset) whose table was not committed.

use crate::{clean_data_with, StreamCleanDeps, StreamReport};
use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use lake::{AppendError, Bookkeeping, ColumnsBuilder, Input, LakeTable, Position, QuarantineRow};
use serde::{Deserialize, Serialize};
use shared::route::record_type_of_topic;
use shared::RecordType;
use std::collections::BTreeMap;

/// How a failed lake write is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Fail the invocation: Lambda retries the whole batch (the retry skips what landed). Right
    /// for every event source mapping; the only safe answer where `ReportBatchItemFailures` is
    /// off, since Lambda then takes any response as success and commits the batch's offsets.
    #[default]
    FailInvocation,
    /// Answer the partial-batch response: only for a mapping in provisioned mode with
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    ReportBatchItemFailures,
}

impl FailureMode {
    /// The mode a `KAFKA_REPORT_BATCH_ITEM_FAILURES` setting names (`true` or `false`, unset is
    /// `false`).
    pub fn from_setting(value: Option<&str>) -> Result<FailureMode, String> {
        match value.map(str::trim) {
            None | Some("") | Some("false") => Ok(FailureMode::FailInvocation),
            Some("true") => Ok(FailureMode::ReportBatchItemFailures),
            Some(other) => Err(format!(
                "KAFKA_REPORT_BATCH_ITEM_FAILURES is `{other}`: set it to true (only with ReportBatchItemFailures on the event source mapping) or false"
            )),
        }
    }
}

/// The partial-batch response of a Kafka event source mapping (aws_lambda_events has none):
/// `{"batchItemFailures": [{"itemIdentifier": {"partition": "<topic>-<partition>", "offset": N}}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaEventResponse {
    /// The first record to retry in each topic-partition that did not land whole.
    pub batch_item_failures: Vec<KafkaBatchItemFailure>,
}

/// One record Lambda must retry from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBatchItemFailure {
    /// Which record.
    pub item_identifier: KafkaItemIdentifier,
}

/// A record of a Kafka batch: its topic-partition key and its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaItemIdentifier {
    /// `<topic>-<partition>`, the key the batch groups the record under.
    pub partition: String,
    /// The record's offset.
    pub offset: i64,
}

/// What one Kafka invocation did, and its answer.
#[derive(Debug, Clone, Default)]
pub struct KafkaOutcome {
    /// The partial-batch response (empty unless the lake failed in
    /// [`FailureMode::ReportBatchItemFailures`]).
    pub response: KafkaEventResponse,
    /// What the invocation did.
    pub report: StreamReport,
}

/// The lake could not be written: the invocation fails and Lambda retries the batch.
#[derive(Debug, thiserror::Error)]
#[error("the lake could not be written ({source}); {retried} records of the batch are retried by Lambda, and the retry adds only what did not land")]
pub struct KafkaCleanError {
    /// Records the retry hands back.
    pub retried: usize,
    /// What the invocation did before it failed.
    pub report: StreamReport,
    /// Why the write failed.
    #[source]
    pub source: AppendError,
}

/// One topic-partition's records of the batch, in offset order.
struct PartitionSlice<'a> {
    key: &'a str,
    topic: &'a str,
    partition: i64,
    records: Vec<&'a KafkaRecord>,
}

/// Cleans one Kafka batch into the lake, exactly once per (topic, partition, offset).
pub async fn handle(
    event: &KafkaEvent,
    deps: &StreamCleanDeps,
    mode: FailureMode,
) -> Result<KafkaOutcome, KafkaCleanError> {
    let slices = slices(event);
    // The tables the batch's topics feed are brought up to date while the batch is cleaned.
    let prepared: Vec<_> = data_tables(&slices)
        .into_iter()
        .map(|table| {
            let lake = deps.lake.clone();
            tokio::spawn(async move { lake.prepare(table).await })
        })
        .collect();
    let now = Utc::now();
    let mut report = StreamReport::default();
    let mut inputs = Vec::with_capacity(slices.len());
    // Per slice, each record's table and offset, in offset order.
    let mut targets: Vec<Vec<(LakeTable, i64)>> = Vec::with_capacity(slices.len());
    for slice in &slices {
        let (input, kept) = clean_slice(slice, now, &mut report);
        inputs.push(input);
        targets.push(kept);
    }
    for prepared in prepared {
        // Nothing to report if it failed: the append then loads the table itself.
        let _ = prepared.await;
    }
    match deps.lake.append(&inputs).await {
        Ok(append) => {
            report.counts.add_append(&append);
            report.log("kafka");
            Ok(KafkaOutcome {
                response: KafkaEventResponse::default(),
                report,
            })
        }
        Err(e) => {
            report.counts.add_append(&e.committed);
            let failures: Vec<(KafkaItemIdentifier, usize)> = slices
                .iter()
                .zip(&targets)
                .filter_map(|(slice, kept)| {
                    let first = kept.iter().position(|(table, _)| !e.is_committed(*table))?;
                    Some((
                        KafkaItemIdentifier {
                            partition: slice.key.to_string(),
                            offset: kept[first].1,
                        },
                        kept.len() - first,
                    ))
                })
                .collect();
            let retried: usize = failures.iter().map(|(_, n)| n).sum();
            report.item_failures += retried;
            tracing::error!(error = %e, retried, "lake write failed; the batch is retried");
            report.log("kafka");
            match mode {
                FailureMode::FailInvocation => Err(KafkaCleanError {
                    retried,
                    report,
                    source: e,
                }),
                FailureMode::ReportBatchItemFailures => Ok(KafkaOutcome {
                    response: KafkaEventResponse {
                        batch_item_failures: failures
                            .into_iter()
                            .map(|(item_identifier, _)| KafkaBatchItemFailure { item_identifier })
                            .collect(),
                    },
                    report,
                }),
            }
        }
    }
}

/// Cleans a batch's records into the lake inputs [`handle`] appends (one per
/// topic-partition), without writing anything: each record becomes one row in its input's
/// columns or one quarantine entry.
pub fn clean_event(event: &KafkaEvent) -> (Vec<Input>, StreamReport) {
    let now = Utc::now();
    let mut report = StreamReport::default();
    let inputs = slices(event)
        .iter()
        .map(|slice| clean_slice(slice, now, &mut report).0)
        .collect();
    (inputs, report)
}

/// The batch's topic-partitions in key order, each one's records by offset. A record names its
/// topic and partition itself; the group key is the fallback.
fn slices(event: &KafkaEvent) -> Vec<PartitionSlice<'_>> {
    let mut by_key: BTreeMap<(&str, i64), PartitionSlice<'_>> = BTreeMap::new();
    for (key, records) in &event.records {
        for record in records {
            let topic = record
                .topic
                .as_deref()
                .or_else(|| key.rsplit_once('-').map(|(topic, _)| topic))
                .unwrap_or(key.as_str());
            by_key
                .entry((topic, record.partition))
                .or_insert_with(|| PartitionSlice {
                    key,
                    topic,
                    partition: record.partition,
                    records: Vec::new(),
                })
                .records
                .push(record);
        }
    }
    let mut slices: Vec<_> = by_key.into_values().collect();
    for slice in &mut slices {
        slice.records.sort_by_key(|r| r.offset);
    }
    slices
}

/// The data tables the batch's topics feed.
fn data_tables(slices: &[PartitionSlice<'_>]) -> Vec<LakeTable> {
    let mut tables: Vec<LakeTable> = slices
        .iter()
        .filter_map(|s| record_type_of_topic(s.topic).ok().map(LakeTable::of))
        .collect();
    tables.sort();
    tables.dedup();
    tables
}

/// The app id of a topic-partition, shared with the MSK Connect files of batch-clean.
pub fn app_id(topic: &str, partition: i64) -> String {
    format!("msk:{topic}+{partition}")
}

/// Cleans one topic-partition's records into its lake input; returns it with each record's
/// table and offset.
fn clean_slice(
    slice: &PartitionSlice<'_>,
    now: DateTime<Utc>,
    report: &mut StreamReport,
) -> (Input, Vec<(LakeTable, i64)>) {
    let record_type = record_type_of_topic(slice.topic).map_err(|e| e.to_string());
    let mut input = Input {
        app_id: app_id(slice.topic, slice.partition),
        bookkeeping: Bookkeeping::Offsets,
        ..Input::default()
    };
    let text_bytes = slice
        .records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, String::len))
        .sum();
    let mut columns = record_type
        .as_ref()
        .ok()
        .map(|rt| ColumnsBuilder::new(*rt, slice.records.len(), text_bytes));
    let mut kept = Vec::with_capacity(slice.records.len());
    let partition = slice.partition.to_string();
    for record in &slice.records {
        report.counts.records_in += 1;
        let offset = record.offset.to_string();
        let source = ["kafka:", slice.topic, "+", &partition, "+", &offset];
        let position = Position::from_int(record.offset);
        let cleaned = clean_value(
            record,
            record_type.as_ref(),
            columns.as_mut(),
            position,
            &source,
        );
        match cleaned {
            Ok(warnings) => {
                report.counts.quality_warnings += warnings;
                if let Ok(rt) = &record_type {
                    kept.push((LakeTable::of(*rt), record.offset));
                }
            }
            Err((raw, error)) => {
                kept.push((LakeTable::Quarantine, record.offset));
                input.quarantine.push((
                    position,
                    QuarantineRow {
                        source: source.concat(),
                        record_type: record_type.as_ref().ok().copied(),
                        raw,
                        error,
                        quarantined_at: now,
                    },
                ));
            }
        }
    }
    if let Some(columns) = columns.filter(|c| !c.is_empty()) {
        input.columns.push(columns.finish());
    }
    (input, kept)
}

/// Cleans one record's value into `columns`; the data-quality warnings it raised, or the raw
/// text to quarantine and why.
fn clean_value(
    record: &KafkaRecord,
    record_type: Result<&RecordType, &String>,
    columns: Option<&mut ColumnsBuilder>,
    position: Position,
    source: &[&str],
) -> Result<usize, (String, String)> {
    let Some(value) = record.value.as_deref() else {
        return Err((
            String::new(),
            "the record has no value (a null value or a tombstone)".to_string(),
        ));
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| (value.to_string(), format!("the value is not base64: {e}")))?;
    let raw = || QuarantineRow::raw_text(&data);
    let (rt, columns) = match (record_type, columns) {
        (Ok(rt), Some(columns)) => (*rt, columns),
        (Err(e), _) => return Err((raw(), format!("cannot tell the record type: {e}"))),
        (Ok(_), None) => return Err((raw(), "cannot tell the record type".to_string())),
    };
    clean_data_with(rt, &data, |row, warnings| {
        columns
            .push(position, &row, source)
            .map(|()| warnings.len())
    })
    .map_err(|e| (raw(), e.to_string()))?
    .map_err(|e| (raw(), e.to_string()))
}

/// A record as a Kafka consumer fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its value (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
    /// Its timestamp, in milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// A `KafkaEvent` shaped as Lambda delivers it from `event_source` (`aws:kafka` or
/// `SelfManagedKafka`): each record under its `<topic>-<partition>` key, key and value base64.
/// Used by the local consumer and by tests.
pub fn kafka_event(
    event_source: &str,
    source_arn: Option<&str>,
    bootstrap_servers: &str,
    records: &[FetchedRecord],
) -> Result<KafkaEvent, serde_json::Error> {
    let b64 = |b: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    let mut grouped: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for r in records {
        grouped
            .entry(format!("{}-{}", r.topic, r.partition))
            .or_default()
            .push(serde_json::json!({
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp_ms,
                "timestampType": "CREATE_TIME",
                "key": r.key.as_ref().map(b64),
                "value": r.value.as_ref().map(b64),
                "headers": []
            }));
    }
    let mut event = serde_json::json!({
        "eventSource": event_source,
        "bootstrapServers": bootstrap_servers,
        "records": grouped,
    });
    if let Some(arn) = source_arn {
        event["eventSourceArn"] = serde_json::Value::from(arn);
    }
    serde_json::from_value(event)
}
