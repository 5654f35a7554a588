//! stream-clean: Kinesis batches (here) and Kafka batches ([`kafka`]) into the Delta lake
//! (SPEC §4–§7, stream path).
//!
//! Each record's data is the JSON text of a raw record (a client that base64-encoded the JSON
//! itself is tolerated). The record type comes from the stream name in the event source ARN
//! (`…:stream/streaming-<prefix>-pin`). Records are cleaned with `shared`, and the whole batch
//! is appended with [`lake::Lake::append`]: one commit per table, whole-row duplicates written
//! once, and each shard's progress kept in the Delta log as the exact sequence number last
//! committed (app id `kinesis:<stream>/<shard>`), so a redelivered or overlapping batch adds
//! nothing. Bad records are quarantined and never block a shard; `batchItemFailures` are
//! returned only when the lake could not be written, from each shard's first record that did
//! not land.

#![warn(missing_docs)]

pub mod kafka;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use lake::{
    AppendError, CleanColumns, CleanCounts, ColumnsBuilder, Input, Lake, LakeTable, Position,
    QuarantineRow,
};
use serde::Serialize;
use shared::route::record_type_of_stream;
use shared::{CleanView, Cleaned, QualityWarning, RecordError, RecordType};

/// What stream-clean needs: the lake it writes.
#[derive(Debug, Clone)]
pub struct StreamCleanDeps {
    /// The lake the cleaned rows and quarantined records go to.
    pub lake: Lake,
}

/// What one invocation did. The counts add up (see [`CleanCounts`]) when the lake could be
/// written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamReport {
    /// What happened to the records.
    #[serde(flatten)]
    pub counts: CleanCounts,
    /// Records handed back to Lambda for retry (lake failures only).
    pub item_failures: usize,
}

impl std::ops::AddAssign<&StreamReport> for StreamReport {
    /// Adds another invocation's counts (for totals over several invocations).
    fn add_assign(&mut self, r: &StreamReport) {
        self.counts += &r.counts;
        self.item_failures += r.item_failures;
    }
}

impl StreamReport {
    /// Logs what the invocation did with a batch from `source` (kinesis, kafka).
    pub fn log(&self, source: &'static str) {
        tracing::info!(
            source,
            records_in = self.counts.records_in,
            rows_written = self.counts.rows_written,
            quarantined = self.counts.quarantined,
            duplicates_skipped = self.counts.duplicates_skipped,
            already_committed = self.counts.already_committed,
            item_failures = self.item_failures,
            "stream batch cleaned"
        );
    }

    /// The counts published as CloudWatch metrics for the invocation.
    pub fn metrics(&self) -> [(&'static str, u64); 6] {
        let [a, b, c, d, e] = self.counts.metrics();
        [a, b, c, d, e, ("ItemFailures", self.item_failures as u64)]
    }
}

/// The Lambda response (partial-batch failures) and what the invocation did.
#[derive(Debug, Clone, Default)]
pub struct StreamOutcome {
    /// The records Lambda must retry (`batchItemFailures`).
    pub response: KinesisEventResponse,
    /// What the invocation did.
    pub report: StreamReport,
}

/// Where a record came from.
struct Origin<'a> {
    stream: &'a str,
    shard: &'a str,
    sequence: &'a str,
    /// The record before it in its run came from the same stream and shard.
    same_shard_as_previous: bool,
}

/// For one shard's records of the batch, in delivery order: the table each one goes to, and
/// its sequence number.
pub type Targets<'a> = Vec<(LakeTable, &'a str)>;

/// Cleans one Kinesis batch into the lake. Never fails: infrastructure errors become item
/// failures so Lambda retries from the first record that did not land.
pub async fn handle(event: &KinesisEvent, deps: &StreamCleanDeps) -> StreamOutcome {
    // The table the batch's stream feeds is created or brought up to date while the batch is
    // cleaned.
    let prepared = data_table(event).map(|table| {
        let lake = deps.lake.clone();
        tokio::spawn(async move { lake.prepare(table).await })
    });
    tracing::debug!(records = event.records.len(), "cleaning");
    let (inputs, targets, mut report) = plan(event);
    tracing::debug!(records = report.counts.records_in, "cleaned; appending");
    if let Some(prepared) = prepared {
        // Nothing to report if it failed: the append then loads the table itself.
        let _ = prepared.await;
    }
    let mut response = KinesisEventResponse::default();
    match deps.lake.append(&inputs).await {
        Ok(append) => {
            report.counts.add_append(&append);
        }
        Err(e) => {
            tracing::error!(error = %e, "lake write failed; returning item failures for retry");
            let (failed, handed_back) = failures(&targets, &e);
            report.item_failures += handed_back;
            response.set_failures(failed.into_iter().map(str::to_string).collect::<Vec<_>>());
            report.counts.add_append(&e.committed);
        }
    }
    report.log("kinesis");
    StreamOutcome { response, report }
}

/// Why an event was not cleaned.
#[derive(Debug, thiserror::Error)]
pub enum StreamEventError {
    /// The payload is neither a Kinesis nor a Kafka event.
    #[error("the event is not a Kinesis or Kafka event ({0}): stream-clean takes the batches of a Kinesis, Amazon MSK or self-managed Kafka event source mapping")]
    NotAnEvent(String),
    /// A Kafka batch could not be written; Lambda retries it.
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaCleanError),
}

/// Cleans whichever batch an event source mapping delivered — Kinesis, or Kafka from MSK
/// (`aws:kafka`) or a self-managed cluster (`SelfManagedKafka`) — and returns the response
/// Lambda expects for it, as JSON, with what the invocation did. A Kinesis lake failure is
/// answered with item failures; a Kafka one as `mode` says.
pub async fn handle_any(
    event: serde_json::Value,
    deps: &StreamCleanDeps,
    mode: kafka::FailureMode,
) -> Result<(serde_json::Value, StreamReport), StreamEventError> {
    let source = event.get("eventSource").and_then(serde_json::Value::as_str);
    let not_an_event = |e: serde_json::Error| StreamEventError::NotAnEvent(e.to_string());
    if matches!(source, Some("aws:kafka" | "SelfManagedKafka")) {
        let event: aws_lambda_events::event::kafka::KafkaEvent =
            serde_json::from_value(event).map_err(not_an_event)?;
        let outcome = kafka::handle(&event, deps, mode).await?;
        let response = serde_json::to_value(&outcome.response).map_err(not_an_event)?;
        return Ok((response, outcome.report));
    }
    if event.get("Records").is_none() {
        return Err(StreamEventError::NotAnEvent(
            "it has neither `Records` nor an `eventSource` of aws:kafka or SelfManagedKafka"
                .to_string(),
        ));
    }
    let event: KinesisEvent = serde_json::from_value(event).map_err(not_an_event)?;
    let outcome = handle(&event, deps).await;
    let response = serde_json::to_value(&outcome.response).map_err(not_an_event)?;
    Ok((response, outcome.report))
}

/// Cleans a batch's records into the lake inputs [`handle`] appends (one per shard), without
/// writing anything: each record becomes one row in its input's columns or one quarantine entry.
pub fn clean_event(event: &KinesisEvent) -> (Vec<Input>, StreamReport) {
    let (inputs, _, report) = plan(event);
    (inputs, report)
}

/// Cleans a batch's records into one lake input per shard (stream, shard id), and records
/// alongside each input where each of its records goes, in delivery order.
fn plan(event: &KinesisEvent) -> (Vec<Input>, Vec<Targets<'_>>, StreamReport) {
    let mut report = StreamReport::default();
    let mut shards: Vec<(&str, &str)> = Vec::new();
    let mut inputs: Vec<Input> = Vec::new();
    let mut targets: Vec<Targets<'_>> = Vec::new();
    let records = &event.records;
    let mut slice = 0;
    let mut columns: Vec<(ShardKey<'_>, CleanColumns)> = Vec::new();
    for (n, (origin, kept)) in clean_records(records, Utc::now())
        .into_iter()
        .flat_map(|run| {
            columns.extend(run.columns);
            run.kept
        })
        .enumerate()
    {
        report.counts.records_in += 1;
        if !origin.same_shard_as_previous || inputs.is_empty() {
            let shard = (origin.stream, origin.shard);
            slice = match shards.iter().position(|s| *s == shard) {
                Some(i) => i,
                None => {
                    shards.push(shard);
                    inputs.push(Input {
                        app_id: format!("kinesis:{}/{}", origin.stream, origin.shard),
                        ..Input::default()
                    });
                    // A batch is almost always one shard's: room for the rest of it.
                    targets.push(Vec::with_capacity(records.len() - n));
                    inputs.len() - 1
                }
            };
        }
        let (input, targets) = (&mut inputs[slice], &mut targets[slice]);
        match kept {
            Kept::Row { table, warnings } => {
                report.counts.quality_warnings += warnings;
                targets.push((table, origin.sequence));
            }
            Kept::Quarantined(position, row) => {
                targets.push((LakeTable::Quarantine, origin.sequence));
                input.quarantine.push((position, row));
            }
        }
    }
    // Each run's columns, in the runs' order, go to their shard's input.
    for (shard, built) in columns {
        if let Some(i) = shards.iter().position(|s| *s == shard) {
            inputs[i].columns.push(built);
        }
    }
    (inputs, targets, report)
}

/// A stream and one of its shards.
type ShardKey<'a> = (&'a str, &'a str);

/// Where a cleaned record is kept.
enum Kept {
    /// In its data table (its values in the columns of its run), with the number of
    /// data-quality warnings cleaning raised.
    Row { table: LakeTable, warnings: usize },
    /// In quarantine, at its position in its shard.
    Quarantined(Position, QuarantineRow),
}

/// One run of a batch's records, cleaned: where each record is kept, and the columns of the
/// rows kept, per shard and table.
struct CleanedRun<'a> {
    kept: Vec<(Origin<'a>, Kept)>,
    columns: Vec<(ShardKey<'a>, CleanColumns)>,
}

/// Records in a batch from which its cleaning is spread over the cores: below it, starting
/// threads costs more than it saves.
const PARALLEL_RECORDS: usize = 2_000;

/// Cleans each record into the row that keeps it, with where it came from, in the records'
/// order (one run of them per core); kept values go straight into columns. Cleaning is most of
/// an invocation's work and each record is independent, so a large batch is cleaned on every
/// core; what is read of a record's metadata (its stream and shard) is compared with the
/// record before it there too, while it is in that core's cache, so gathering the runs costs
/// no second look at each record.
fn clean_records(records: &[KinesisEventRecord], now: DateTime<Utc>) -> Vec<CleanedRun<'_>> {
    let parts = if records.len() >= PARALLEL_RECORDS {
        shared::parallel::cores()
    } else {
        1
    };
    shared::parallel::map_chunks(records, parts, |run| {
        // A batch comes from one stream: its name and record type are read from the first
        // record's ARN and reused while the ARN stays the same.
        let mut last: Option<(Option<&str>, &str, Result<RecordType, String>)> = None;
        let mut previous_shard: Option<(&str, &str)> = None;
        let mut kept = Vec::with_capacity(run.len());
        let text_bytes = run.iter().map(|r| r.kinesis.data.0.len()).sum();
        let mut builders: Vec<(ShardKey<'_>, ColumnsBuilder)> = Vec::new();
        let mut current = 0;
        for record in run {
            let arn = record.event_source_arn.as_deref();
            let (stream, record_type) = match &last {
                Some((a, stream, rt)) if *a == arn => (*stream, rt.clone()),
                _ => {
                    let stream = stream_of(arn);
                    let rt = record_type_of_stream(stream).map_err(|e| e.to_string());
                    last = Some((arn, stream, rt.clone()));
                    (stream, rt)
                }
            };
            let shard = shard_of(record);
            let same_shard_as_previous = previous_shard == Some((stream, shard));
            previous_shard = Some((stream, shard));
            let origin = Origin {
                stream,
                shard,
                sequence: record.kinesis.sequence_number.as_str(),
                same_shard_as_previous,
            };
            let columns = match record_type {
                Ok(rt) => {
                    let fits = |(key, b): &(ShardKey<'_>, ColumnsBuilder)| {
                        *key == (stream, shard) && b.record_type() == rt
                    };
                    if !builders.get(current).is_some_and(fits) {
                        current = builders.iter().position(fits).unwrap_or_else(|| {
                            let columns = ColumnsBuilder::new(rt, run.len(), text_bytes);
                            builders.push(((stream, shard), columns));
                            builders.len() - 1
                        });
                    }
                    // `current` is a builder's index: found, or the one just pushed.
                    Ok(&mut builders[current].1)
                }
                Err(e) => Err(e),
            };
            let row = clean_one(record, &origin, columns, now);
            kept.push((origin, row));
        }
        CleanedRun {
            kept,
            columns: builders
                .into_iter()
                .map(|(key, b)| (key, b.finish()))
                .collect(),
        }
    })
}

/// Cleans one record from `origin` into `columns`, those of its shard and its stream's record
/// type (or why its stream's record type is not known).
fn clean_one(
    record: &KinesisEventRecord,
    origin: &Origin<'_>,
    columns: Result<&mut ColumnsBuilder, String>,
    now: DateTime<Utc>,
) -> Kept {
    let position = Position::from_decimal(origin.sequence).unwrap_or_else(|| {
        tracing::warn!(
            sequence = origin.sequence,
            "sequence number is not a decimal; using 0"
        );
        Position::default()
    });
    let source = [
        "kinesis:",
        origin.stream,
        "/",
        origin.shard,
        "/",
        origin.sequence,
    ];
    let data = &record.kinesis.data.0;
    let record_type = columns.as_ref().ok().map(|c| c.record_type());
    let cleaned = match columns {
        Err(e) => Err(format!("cannot tell the record type: {e}")),
        Ok(columns) => {
            let table = columns.table();
            clean_data_with(columns.record_type(), data, |row, warnings| {
                columns
                    .push(position, &row, &source)
                    .map(|()| (table, warnings.len()))
            })
            .map_err(|e| e.to_string())
            .and_then(|kept| kept.map_err(|e| e.to_string()))
        }
    };
    match cleaned {
        Ok((table, warnings)) => Kept::Row { table, warnings },
        Err(error) => Kept::Quarantined(
            position,
            QuarantineRow {
                source: source.concat(),
                record_type,
                raw: QuarantineRow::raw_text(data),
                error,
                quarantined_at: now,
            },
        ),
    }
}

/// The partial-batch rule, for a lake write that failed part-way: Lambda retries each shard
/// from the lowest sequence number reported, so report, per shard, the first record (in
/// delivery order) whose table was not committed. Records after it that did land are skipped on
/// the retry by their shard's committed position. Returns those sequence numbers and how many
/// records they hand back.
pub fn failures<'a>(targets: &[Targets<'a>], error: &AppendError) -> (Vec<&'a str>, usize) {
    let mut failed = Vec::new();
    let mut handed_back = 0;
    for shard in targets {
        if let Some(first) = shard
            .iter()
            .position(|(table, _)| !error.is_committed(*table))
        {
            failed.push(shard[first].1);
            handed_back += shard.len() - first;
        }
    }
    (failed, handed_back)
}

/// The data table the batch's records go to, from its first record's stream (a batch comes
/// from one stream); `None` when the stream's record type cannot be told.
fn data_table(event: &KinesisEvent) -> Option<LakeTable> {
    let arn = event.records.first()?.event_source_arn.as_deref();
    record_type_of_stream(stream_of(arn))
        .ok()
        .map(LakeTable::of)
}

/// The stream an event source ARN names (`…:stream/<name>`).
pub fn stream_of(arn: Option<&str>) -> &str {
    arn.and_then(|arn| arn.rsplit_once(":stream/").map(|(_, name)| name))
        .unwrap_or("unknown-stream")
}

/// The shard a record came from: its event id is `<shard id>:<sequence number>`.
fn shard_of(record: &KinesisEventRecord) -> &str {
    record
        .event_id
        .as_deref()
        .and_then(|id| id.split_once(':').map(|(shard, _)| shard))
        .unwrap_or("unknown-shard")
}

/// Cleans a record's data: the JSON object itself or, when a client base64-encoded the JSON
/// before putting it (as bare text or as a JSON string), the decoded object. The data is read
/// once when it is JSON; only data that is not a JSON object is tried as base64, and when that
/// fails too the error is the one about the data as sent.
pub fn clean_data(record_type: RecordType, data: &[u8]) -> Result<Cleaned, RecordError> {
    clean_data_with(record_type, data, Cleaned::copied)
}

/// [`clean_data`], handing the cleaned row to `use_row` as a view of the record's text rather
/// than copying it.
pub fn clean_data_with<R>(
    record_type: RecordType,
    data: &[u8],
    mut use_row: impl FnMut(CleanView<'_>, Vec<QualityWarning>) -> R,
) -> Result<R, RecordError> {
    match shared::clean_record_with(record_type, data, &mut use_row) {
        Err(e @ (RecordError::NotJson(_) | RecordError::NotAnObject(_))) => {
            match base64_object(data) {
                Some(decoded) => shared::clean_record_with(record_type, &decoded, use_row),
                None => Err(e),
            }
        }
        cleaned => cleaned,
    }
}

/// The bytes of a JSON object base64-encoded in `data` (bare, or as a JSON string), if any.
fn base64_object(data: &[u8]) -> Option<Vec<u8>> {
    let text = match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from_utf8_lossy(data).trim().to_string(),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()?;
    shared::RawObject::parse(&decoded)
        .is_ok()
        .then_some(decoded)
}

/// A `KinesisEvent` for records of one stream and shard, shaped as Lambda delivers it (base64
/// data, event ids, ARNs). Used by the local runner's in-process stream and by tests.
pub fn kinesis_event(
    stream: &str,
    shard: &str,
    records: &[(String, String, Vec<u8>)],
) -> KinesisEvent {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(sequence, partition_key, data)| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": Utc::now().timestamp_millis() as f64 / 1000.0
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/stream-clean",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake::{AppendReport, LakeError, TableReport};

    /// A write that committed `committed` and then failed on `failed`.
    fn failed_after(committed: &[LakeTable], failed: LakeTable) -> AppendError {
        let mut report = AppendReport::default();
        for table in committed {
            report.tables.insert(*table, TableReport::default());
        }
        AppendError {
            committed: report,
            failed,
            source: LakeError::BadRoot {
                root: "test".into(),
                reason: "the write failed".into(),
            },
        }
    }

    #[test]
    fn each_shard_is_handed_back_from_its_first_record_in_a_table_not_committed() {
        use LakeTable::{Geo, Pin, Quarantine, User};
        let targets: Vec<Targets<'_>> = vec![
            // pin and geo landed; the shard's first user record is the retry point.
            vec![(Pin, "1"), (User, "2"), (Geo, "3"), (User, "4")],
            // Everything in this shard landed.
            vec![(Pin, "10"), (Geo, "11")],
            // A quarantined record first: quarantine is written last, so not committed.
            vec![(Quarantine, "20"), (Pin, "21")],
        ];
        let error = failed_after(&[Pin, Geo], User);
        assert_eq!(failures(&targets, &error), (vec!["2", "20"], 3 + 2));
        // Nothing committed: every shard from its first record.
        let error = failed_after(&[], Pin);
        assert_eq!(failures(&targets, &error), (vec!["1", "10", "20"], 8));
        // No shards, nothing to hand back.
        assert_eq!(failures(&[], &error), (vec![], 0));
    }
}
