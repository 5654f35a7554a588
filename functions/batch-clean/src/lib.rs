//! batch-clean: raw objects named by S3 events (direct, or wrapped in SQS messages) into the
//! Delta lake (SPEC §4–§7).
//!
//! Each object is read, routed to a record type by its key (`topics/<topic>/…`, including the
//! original MSK Connect layout), cleaned line by line with `shared`, and appended with
//! [`lake::Lake::append`]: all objects of one invocation go in one commit per table, and
//! replaying the same event adds nothing. An object's records are kept exactly once under the
//! app id `s3:<key>@<etag>` (positions: line numbers); the files of the MSK Connect S3 sink,
//! one per few records, under their Kafka topic-partition `msk:<topic>+<partition>`
//! (positions: offsets, kept as a set so files may arrive in any order), so a backfill of a
//! million such files keeps a handful of `txn` entries rather than a million. Records that cannot be
//! cleaned go to the quarantine table; only infrastructure errors fail the invocation.

#![warn(missing_docs)]

pub mod objects;

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use futures::StreamExt;
use lake::{
    AppendError, Bookkeeping, CleanCounts, ColumnsBuilder, Input, Lake, LakeError, LakeTable,
    Position, QuarantineRow,
};
pub use objects::{Fetched, ObjectRef, RawStores};
use serde::Serialize;
use shared::route::{record_type_of_key, sink_file_of_key};
use shared::{CleanView, QualityWarning};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

/// What batch-clean needs: where raw objects are read from and the lake it writes.
#[derive(Debug, Clone)]
pub struct BatchCleanDeps {
    /// Where raw objects are read from.
    pub raw: RawStores,
    /// The lake the cleaned rows and quarantined records go to.
    pub lake: Lake,
}

/// Infrastructure errors: the invocation fails and is retried (the retry adds no duplicates).
#[derive(Debug, thiserror::Error)]
pub enum BatchCleanError {
    /// A raw object could not be read (storage unreachable, access denied).
    #[error("reading s3://{bucket}/{key}: {source}")]
    Read {
        /// The object's bucket.
        bucket: String,
        /// Its key.
        key: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// The bucket the event names does not exist: a retry will not help until it does.
    #[error("raw bucket `{bucket}` does not exist: check the bucket the notifications come from and batch-clean's access to it ({source})")]
    MissingBucket {
        /// The bucket.
        bucket: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// No store could be opened for the bucket (bad configuration or credentials).
    #[error("opening the raw store for bucket `{bucket}`: {source}")]
    RawStore {
        /// The bucket.
        bucket: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A commit failed; the tables committed before it are in the error, and a retry skips them.
    #[error(transparent)]
    Append(#[from] Box<AppendError>),
    /// The event is neither S3 nor SQS: a poison event, which no retry cleans.
    #[error("event is neither an S3 nor an SQS event: {0}")]
    UnknownEvent(String),
    /// Cleaning was cut short (the runtime shut down); nothing was committed, a retry redoes it.
    #[error("cleaning was interrupted before anything was committed: {0}")]
    Interrupted(String),
}

impl BatchCleanError {
    /// The `errorType` Lambda reports for this failure, so alarms and the dead-letter queue
    /// can tell a poison event from an outage: `PoisonEvent` (the event itself is unusable; a
    /// retry cannot help), `Misconfigured` (the deployment points at something that does not
    /// exist; fix it, then redrive), `Unavailable` (storage could not be reached; a retry
    /// completes the batch without duplicates).
    pub fn error_type(&self) -> &'static str {
        match self {
            BatchCleanError::UnknownEvent(_) => "PoisonEvent",
            BatchCleanError::MissingBucket { .. } | BatchCleanError::RawStore { .. } => {
                "Misconfigured"
            }
            BatchCleanError::Read { .. }
            | BatchCleanError::Lake(_)
            | BatchCleanError::Append(_)
            | BatchCleanError::Interrupted(_) => "Unavailable",
        }
    }
}

impl From<BatchCleanError> for lambda_runtime::Diagnostic {
    fn from(e: BatchCleanError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("BatchClean.{}", e.error_type()),
            error_message: e.to_string(),
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Raw objects read and cleaned.
    pub objects: usize,
    /// Objects the event named that were gone, or overwritten since the event (the newer version's
    /// event covers it): skipped.
    pub missing_objects: usize,
    /// What happened to their records.
    #[serde(flatten)]
    pub counts: CleanCounts,
}

impl std::ops::AddAssign<&BatchReport> for BatchReport {
    /// Adds another invocation's counts (for totals over several invocations).
    fn add_assign(&mut self, r: &BatchReport) {
        self.objects += r.objects;
        self.missing_objects += r.missing_objects;
        self.counts += &r.counts;
    }
}

impl BatchReport {
    /// The counts published as CloudWatch metrics for the invocation.
    pub fn metrics(&self) -> [(&'static str, u64); 6] {
        let [a, b, c, d, e] = self.counts.metrics();
        [("Objects", self.objects as u64), a, b, c, d, e]
    }
}

/// Handles an S3 event: cleans every object it names.
pub async fn handle_s3(
    event: &S3Event,
    deps: &BatchCleanDeps,
) -> Result<BatchReport, BatchCleanError> {
    clean_objects(&objects::in_s3_event(event), Vec::new(), deps).await
}

/// Handles an SQS event whose message bodies are S3 notifications. S3's test notification is
/// ignored; a body that is not an S3 notification is quarantined (source `sqs:<message id>`)
/// rather than retried for ever.
pub async fn handle_sqs(
    event: &SqsEvent,
    deps: &BatchCleanDeps,
) -> Result<BatchReport, BatchCleanError> {
    let (objects, unreadable) = objects::in_sqs_event(event);
    clean_objects(&objects, unreadable, deps).await
}

/// Handles any event Lambda may deliver to batch-clean (S3 or SQS), told apart by its records'
/// `eventSource`.
pub async fn handle_event(
    event: serde_json::Value,
    deps: &BatchCleanDeps,
) -> Result<BatchReport, BatchCleanError> {
    let source = event
        .pointer("/Records/0/eventSource")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    match source.as_str() {
        "aws:sqs" => {
            let e: SqsEvent = serde_json::from_value(event)
                .map_err(|e| BatchCleanError::UnknownEvent(e.to_string()))?;
            handle_sqs(&e, deps).await
        }
        "aws:s3" => {
            let e: S3Event = serde_json::from_value(event)
                .map_err(|e| BatchCleanError::UnknownEvent(e.to_string()))?;
            handle_s3(&e, deps).await
        }
        // An event with no records (e.g. an empty test event) has nothing to do.
        "" if event
            .get("Records")
            .and_then(|r| r.as_array())
            .is_some_and(|r| r.is_empty()) =>
        {
            Ok(BatchReport::default())
        }
        other => Err(BatchCleanError::UnknownEvent(format!(
            "eventSource `{other}`"
        ))),
    }
}

/// Reads, cleans and appends the objects, in one commit per table.
pub async fn clean_objects(
    objects: &[ObjectRef],
    extra_quarantine: Vec<QuarantineRow>,
    deps: &BatchCleanDeps,
) -> Result<BatchReport, BatchCleanError> {
    let md5_ids = deps.raw.is_local() && names_local_objects_by_md5(&deps.lake).await?;
    // The tables the objects' topics feed are created or brought up to date while the objects
    // are read and cleaned.
    let mut tables: Vec<LakeTable> = objects
        .iter()
        .filter_map(|o| record_type_of_key(&o.key).ok())
        .map(LakeTable::of)
        .collect();
    tables.sort_unstable_by_key(|t| t.name());
    tables.dedup();
    let prepared = tables
        .into_iter()
        .map(|table| {
            let lake = deps.lake.clone();
            tokio::spawn(async move { lake.prepare(table).await })
        })
        .collect::<Vec<_>>();
    tracing::debug!(objects = objects.len(), "fetching and cleaning");
    let (mut inputs, mut report) = fetch_and_clean(objects, &deps.raw, md5_ids).await?;
    tracing::debug!(records = report.counts.records_in, "cleaned; appending");
    // Nothing to report if one failed: the append then loads the table itself.
    futures::future::join_all(prepared).await;
    // Each unreadable message is its own input, so a redelivery (alone or with others) is
    // recognised as committed.
    report.counts.records_in += extra_quarantine.len();
    inputs.extend(extra_quarantine.into_iter().map(|q| Input {
        app_id: q.source.clone(),
        quarantine: vec![(Position::from_int(1), q)],
        ..Input::default()
    }));
    let append = deps.lake.append(&inputs).await.map_err(Box::new)?;
    report.counts.add_append(&append);
    tracing::info!(
        objects = report.objects,
        records_in = report.counts.records_in,
        rows_written = report.counts.rows_written,
        quarantined = report.counts.quarantined,
        duplicates_skipped = report.counts.duplicates_skipped,
        already_committed = report.counts.already_committed,
        "batch cleaned"
    );
    shared::parallel::drop_in_parts(inputs, shared::parallel::cores());
    Ok(report)
}

/// Reads and cleans the objects into lake inputs, in the objects' order. Parsing (and, for
/// local objects, their content digest) is the bulk of the work and each object is
/// independent, so one thread per core cleans objects as they are read, while the next ones
/// are still being read.
async fn fetch_and_clean(
    objects: &[ObjectRef],
    raw: &RawStores,
    md5_ids: bool,
) -> Result<(Vec<Input>, BatchReport), BatchCleanError> {
    type Cleaned = Vec<(usize, Option<Input>, BatchReport)>;
    // A few objects wait for a free thread, no more: reading is faster than cleaning, and a
    // reader running ahead would hold every object of the batch in memory at once, each in a
    // buffer of its own rather than one an object already cleaned left behind. Enough wait that
    // a thread done with one finds the next at once: the reads in flight only move on while
    // the reader is not waiting for room.
    let (send, receive) = tokio::sync::mpsc::channel::<(usize, ObjectRef, Option<Fetched>)>(
        objects::FETCH_CONCURRENCY,
    );
    let receive = Arc::new(Mutex::new(receive));
    // Threads of their own, started for the batch rather than taken from the runtime's blocking
    // pool: glibc gives each thread an arena of its own and hands an ended thread's arena, with
    // whatever was freed into it, to the next thread started. The batch's columns are freed into
    // the cleaning threads' arenas, so the next batch's cleaning threads find that memory
    // mapped already; a pool thread that cleans one batch may read files or encode the next,
    // leaving the freed columns to sit in its arena while the cleaning faults in fresh pages.
    let workers = (0..shared::parallel::cores())
        .map(|_| {
            let receive = Arc::clone(&receive);
            let (done, result) = tokio::sync::oneshot::channel::<Cleaned>();
            let worker = move || {
                let mut cleaned = Vec::new();
                loop {
                    let next = receive
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .blocking_recv();
                    // Every object was handed out (or reading one failed).
                    let Some((index, object, fetched)) = next else {
                        break;
                    };
                    let (input, report) = clean_fetched(&object, fetched, md5_ids);
                    cleaned.push((index, input, report));
                }
                // The receiver is only gone if the invocation itself was dropped.
                let _ = done.send(cleaned);
            };
            std::thread::Builder::new()
                .name("batch-clean".into())
                .spawn(worker)
                .map(|_| result)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BatchCleanError::Interrupted(format!("starting a cleaning thread: {e}")))?;
    let mut fetched = raw.fetch_each(objects).enumerate();
    let mut failed = None;
    while let Some((index, item)) = fetched.next().await {
        match item {
            Ok((object, read)) => {
                // Only fails if every worker stopped (the runtime is shutting down), which
                // joining them reports.
                if send.send((index, object, read)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(send);
    let mut cleaned: Cleaned = Vec::with_capacity(objects.len());
    for worker in workers {
        // Cleaning hit a bug and the thread stopped: nothing was committed.
        let run = worker.await.map_err(|_| {
            BatchCleanError::Interrupted("a cleaning thread stopped before it finished".into())
        })?;
        cleaned.extend(run);
    }
    if let Some(e) = failed {
        return Err(e);
    }
    cleaned.sort_unstable_by_key(|(index, _, _)| *index);
    let mut inputs = Vec::with_capacity(objects.len() + 1);
    let mut report = BatchReport::default();
    for (_, input, object_report) in cleaned {
        inputs.extend(input);
        report += &object_report;
    }
    Ok((inputs, report))
}

/// Cleans one object as read (`None`: it no longer exists). With `md5_ids`, a local object
/// also carries the app id earlier releases named it by.
fn clean_fetched(
    object: &ObjectRef,
    fetched: Option<Fetched>,
    md5_ids: bool,
) -> (Option<Input>, BatchReport) {
    let mut report = BatchReport::default();
    let Some(fetched) = fetched else {
        report.missing_objects += 1;
        tracing::warn!(bucket = %object.bucket, key = %object.key, "object no longer exists; skipped");
        return (None, report);
    };
    report.objects += 1;
    let etag = fetched.identity();
    let mut input = match objects::decoded(&object.key, &fetched.bytes) {
        Ok(text) => clean_object(object, &etag, &text, &mut report),
        Err(error) => {
            // Not readable as a whole (a corrupt gzip stream): kept as it is, to replay.
            report.counts.records_in += 1;
            unreadable_object(object, &etag, &fetched.bytes, error)
        }
    };
    if md5_ids && fetched.etag.is_none() && input.bookkeeping == Bookkeeping::Watermark {
        input.earlier_app_id = Some(fetched.md5_app_id(&object.key));
    }
    (Some(input), report)
}

/// Lakes (by root) known to hold, or not, app ids that name local objects by the MD5 of their
/// bytes, as releases before the XXH64 identity did. Asked once per lake per process: this
/// release never writes such an id, so a lake without one never gains one.
static MD5_NAMED_LAKES: LazyLock<Mutex<HashMap<String, bool>>> = LazyLock::new(Mutex::default);

/// True when `lake` names local objects by their MD5 (`s3:<key>@<32 hex digits>`, which is
/// also the form of an S3 ETag of a single PUT): their digests must then be taken too, so the
/// objects it holds are recognised.
async fn names_local_objects_by_md5(lake: &Lake) -> Result<bool, LakeError> {
    let root = lake.root().to_string();
    let cache = || {
        MD5_NAMED_LAKES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(held) = cache().get(&root) {
        return Ok(*held);
    }
    let held = lake.holds_app_id(is_md5_object_id).await?;
    cache().insert(root, held);
    Ok(held)
}

fn is_md5_object_id(app_id: &str) -> bool {
    app_id.starts_with("s3:")
        && app_id.rsplit_once('@').is_some_and(|(_, digest)| {
            digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// An object that could not be decoded at all, as one quarantined record holding its bytes.
fn unreadable_object(object: &ObjectRef, etag: &str, bytes: &[u8], error: String) -> Input {
    Input {
        app_id: format!("s3:{}@{}", object.key, etag),
        quarantine: vec![(
            Position::from_int(1),
            QuarantineRow {
                source: format!("s3://{}/{}", object.bucket, object.key),
                record_type: record_type_of_key(&object.key).ok(),
                raw: QuarantineRow::raw_text(bytes),
                error,
                quarantined_at: Utc::now(),
            },
        )],
        ..Input::default()
    }
}

/// The byte ranges of the lines of a text of `len` bytes whose newlines are at `newlines`
/// (ascending), without the newlines: the pieces `split('\n')` gives, the last one after the
/// last newline (empty when the text ends with one).
fn line_ranges(newlines: &[usize], len: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let ends = newlines.iter().copied().chain(std::iter::once(len));
    let starts = std::iter::once(0).chain(newlines.iter().map(|n| n + 1));
    starts.zip(ends).map(|(start, end)| start..end)
}

/// Cleans one object's records into an [`Input`] for the lake.
pub fn clean_object(
    object: &ObjectRef,
    etag: &str,
    bytes: &[u8],
    report: &mut BatchReport,
) -> Input {
    // A sink file's records sit at consecutive offsets of its topic-partition; any other
    // object's at its line numbers.
    let sink = sink_file_of_key(&object.key);
    let mut input = match &sink {
        Some(file) => Input {
            app_id: format!("msk:{}", file.topic_partition()),
            bookkeeping: Bookkeeping::Offsets,
            ..Input::default()
        },
        None => Input {
            app_id: format!("s3:{}@{}", object.key, etag),
            ..Input::default()
        },
    };
    let record_type = record_type_of_key(&object.key);
    // Where each line ends, found in one pass by memchr's SIMD search (a byte-by-byte count
    // of the newlines took 7% of a batch's CPU time, and `split`'s search as much again).
    let newlines: Vec<usize> = memchr::memchr_iter(b'\n', bytes).collect();
    // The cleaned rows go straight into columns: about one row per line, holding about as
    // much text as the object.
    let mut columns = record_type
        .as_ref()
        .map(|rt| ColumnsBuilder::new(*rt, newlines.len() + 1, bytes.len()))
        .map_err(|e| format!("cannot tell the record type: {e}"));
    let now = Utc::now();
    // Each line, and the line as text when the object is UTF-8: checked once for the whole
    // object rather than string by string in each line (a newline is a character boundary,
    // so each line of valid text is valid text).
    let text = std::str::from_utf8(bytes).ok();
    let lines = line_ranges(&newlines, bytes.len()).map(|range| {
        let line = bytes.get(range.clone()).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = text
            .and_then(|text| text.get(range))
            .map(|t| t.strip_suffix('\r').unwrap_or(t));
        (line, text)
    });
    let mut record = 0i64;
    for (n, (line, text)) in lines.enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        report.counts.records_in += 1;
        let line_no = n as i64 + 1;
        let position = match &sink {
            Some(file) => Position::from_int(file.start_offset.saturating_add(record)),
            None => Position::from_int(line_no),
        };
        record += 1;
        let cleaned = match &mut columns {
            Ok(columns) => {
                let rt = columns.record_type();
                let keep = |row: CleanView<'_>, warnings: Vec<QualityWarning>| {
                    columns
                        .push(position, &row, &[&object.key])
                        .map(|()| warnings.len())
                };
                match text {
                    Some(line) => shared::clean_text_with(rt, line, keep),
                    None => shared::clean_record_with(rt, line, keep),
                }
                .map_err(|e| e.to_string())
                .and_then(|kept| kept.map_err(|e| e.to_string()))
            }
            Err(e) => Err(e.clone()),
        };
        match cleaned {
            Ok(warnings) => report.counts.quality_warnings += warnings,
            Err(error) => input.quarantine.push((
                position,
                QuarantineRow {
                    source: format!("s3://{}/{}#line={line_no}", object.bucket, object.key),
                    record_type: record_type.as_ref().ok().copied(),
                    raw: QuarantineRow::raw_text(line),
                    error,
                    quarantined_at: now,
                },
            )),
        }
    }
    if let Ok(columns) = columns {
        if !columns.is_empty() {
            input.columns.push(columns.finish());
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ranges_are_the_pieces_split_gives() {
        for text in ["", "a", "a\n", "\n\n", "{\"a\":1}\r\n{}\n\n x", "\nlast"] {
            let newlines: Vec<usize> = memchr::memchr_iter(b'\n', text.as_bytes()).collect();
            let pieces: Vec<&str> = line_ranges(&newlines, text.len())
                .map(|range| &text[range])
                .collect();
            assert_eq!(pieces, text.split('\n').collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn lambda_errors_tell_a_poison_event_from_an_outage() {
        let poison: lambda_runtime::Diagnostic =
            BatchCleanError::UnknownEvent("eventSource `aws:dynamodb`".into()).into();
        assert_eq!(poison.error_type, "BatchClean.PoisonEvent");
        assert_eq!(
            poison.error_message,
            "event is neither an S3 nor an SQS event: eventSource `aws:dynamodb`"
        );
        let outage: lambda_runtime::Diagnostic = BatchCleanError::Read {
            bucket: "raw".into(),
            key: "topics/p.pin/x".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "connection refused".into(),
            },
        }
        .into();
        assert_eq!(outage.error_type, "BatchClean.Unavailable");
        let missing: lambda_runtime::Diagnostic = BatchCleanError::MissingBucket {
            bucket: "raw".into(),
            source: object_store::Error::NotFound {
                path: "x".into(),
                source: "NoSuchBucket".into(),
            },
        }
        .into();
        assert_eq!(missing.error_type, "BatchClean.Misconfigured");
    }
}
