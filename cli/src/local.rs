//! What the local commands share: the local raw bucket's name, the ingest paths, progress
//! bars, and handing the in-process stream to stream-clean. `run` strings the commands
//! together; they depend on this module, never on `run`.

use crate::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use ingest_api::sink::MEMORY_SHARD;
use ingest_api::MemoryStream;
use stream_clean::{StreamCleanDeps, StreamReport};

/// Bucket name the local raw directory stands for in S3 events.
pub const LOCAL_RAW_BUCKET: &str = "local-raw";

/// The ingest paths a post can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IngestPath {
    /// The batch route (`POST /topics/…`), landed and cleaned by batch-clean.
    Batch,
    /// The stream route (`PUT /streams/…/record`), cleaned by stream-clean.
    Stream,
    /// Both routes, as the original clients did.
    Both,
}

impl IngestPath {
    /// Whether posts take the batch route.
    pub fn batch(self) -> bool {
        matches!(self, IngestPath::Batch | IngestPath::Both)
    }

    /// Whether posts take the stream route.
    pub fn stream(self) -> bool {
        matches!(self, IngestPath::Stream | IngestPath::Both)
    }
}

/// Records per `KinesisEvent` handed to stream-clean (Lambda's largest Kinesis batch).
pub const STREAM_BATCH: usize = 10_000;

/// Hands everything waiting on the in-process stream to stream-clean, as `KinesisEvent`s of up
/// to `batch` records per stream. Records stream-clean reports as failed, and every drained
/// batch not handed over yet, are put back, and the run stops with an error (the lake could not
/// be written); a later call hands them over again.
pub async fn flush_stream(
    stream: &MemoryStream,
    deps: &StreamCleanDeps,
    batch: usize,
) -> Result<StreamReport, CliError> {
    let bar = progress(stream.pending() as u64, "streaming");
    let mut total = StreamReport::default();
    loop {
        let drained = stream.drain(batch);
        if drained.is_empty() {
            break;
        }
        let mut drained = drained.into_iter();
        while let Some((name, records)) = drained.next() {
            let event_records: Vec<(String, String, Vec<u8>)> = records
                .iter()
                .map(|r| {
                    (
                        r.sequence_number.clone(),
                        r.partition_key.clone(),
                        r.data.to_vec(),
                    )
                })
                .collect();
            let event = stream_clean::kinesis_event(&name, MEMORY_SHARD, &event_records);
            let outcome = stream_clean::handle(&event, deps).await;
            total += &outcome.report;
            if let Some(first) = outcome
                .response
                .batch_item_failures
                .first()
                .and_then(|f| f.item_identifier.clone())
            {
                let from = records
                    .iter()
                    .position(|r| r.sequence_number == first)
                    .unwrap_or(0);
                let failed = records.len() - from;
                stream.requeue(&name, records.into_iter().skip(from).collect());
                // The other streams' drained batches were not handed over: put them back too.
                for (other, rest) in drained {
                    stream.requeue(&other, rest);
                }
                bar.finish_and_clear();
                return Err(CliError::StreamPending {
                    pending: failed,
                    stream: name,
                });
            }
            bar.inc(records.len() as u64);
        }
    }
    bar.finish_and_clear();
    Ok(total)
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}
