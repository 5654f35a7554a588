//! Where stream records go: one small interface, [`StreamSink`], with Kinesis behind it when
//! deployed ([`KinesisSink`]) and an in-process stream on the embedded default
//! ([`MemoryStream`]), whose batches the local runner hands to stream-clean.

use async_trait::async_trait;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The record's sequence number in its shard.
    pub sequence_number: String,
    /// The shard it went to.
    pub shard_id: String,
}

/// A record of a PutRecords call that the stream refused (e.g. throttled); others may land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// Kinesis' code, e.g. `ProvisionedThroughputExceededException`.
    pub error_code: String,
    /// Kinesis' message.
    pub error_message: String,
}

/// A stream's description, as `GET /streams/{stream}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `ACTIVE`, `CREATING`, …
    pub status: String,
    /// Its shard ids.
    pub shards: Vec<String>,
}

/// Why a stream call failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The stream does not exist.
    #[error("stream `{0}` does not exist")]
    NotFound(String),
    /// The stream service could not be reached or refused the call; retry later.
    #[error("stream service unavailable: {0}")]
    Unavailable(String),
    /// The request to the stream could not be built: a retry cannot help.
    #[error("invalid stream request: {0}")]
    Invalid(String),
}

/// A Kinesis-like stream.
#[async_trait]
pub trait StreamSink: Send + Sync + std::fmt::Debug {
    /// Puts one record.
    async fn put_record(
        &self,
        stream: &str,
        partition_key: &str,
        data: Bytes,
    ) -> Result<PutResult, SinkError>;
    /// Puts several records; each lands or fails on its own.
    async fn put_records(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<Result<PutResult, RecordFailure>>, SinkError>;
    /// The names of the streams.
    async fn list_streams(&self) -> Result<Vec<String>, SinkError>;
    /// One stream's description.
    async fn describe_stream(&self, stream: &str) -> Result<StreamSummary, SinkError>;
}

/// Kinesis through the AWS SDK.
#[derive(Debug, Clone)]
pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
}

impl KinesisSink {
    /// A sink writing through this client (its endpoint and credentials decide where).
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        KinesisSink { client }
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    stream: &str,
    e: aws_sdk_kinesis::error::SdkError<E>,
) -> SinkError {
    match e.as_service_error().and_then(|s| s.code()) {
        Some("ResourceNotFoundException") => SinkError::NotFound(stream.to_string()),
        Some(code) => SinkError::Unavailable(format!(
            "{code}: {}",
            e.as_service_error().and_then(|s| s.message()).unwrap_or("")
        )),
        None => SinkError::Unavailable(format!("{e:?}")),
    }
}

#[async_trait]
impl StreamSink for KinesisSink {
    async fn put_record(
        &self,
        stream: &str,
        partition_key: &str,
        data: Bytes,
    ) -> Result<PutResult, SinkError> {
        let out = self
            .client
            .put_record()
            .stream_name(stream)
            .partition_key(partition_key)
            .data(Blob::new(data.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error(stream, e))?;
        Ok(PutResult {
            sequence_number: out.sequence_number().to_string(),
            shard_id: out.shard_id().to_string(),
        })
    }

    async fn put_records(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<Result<PutResult, RecordFailure>>, SinkError> {
        let entries = records
            .into_iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.to_vec()))
                    .build()
                    .map_err(|e| SinkError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(stream, e))?;
        Ok(out
            .records()
            .iter()
            .map(|r| match (r.sequence_number(), r.shard_id()) {
                (Some(seq), Some(shard)) if r.error_code().is_none() => Ok(PutResult {
                    sequence_number: seq.to_string(),
                    shard_id: shard.to_string(),
                }),
                _ => Err(RecordFailure {
                    error_code: r.error_code().unwrap_or("InternalFailure").to_string(),
                    error_message: r.error_message().unwrap_or("").to_string(),
                }),
            })
            .collect())
    }

    async fn list_streams(&self) -> Result<Vec<String>, SinkError> {
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .list_streams()
                .set_exclusive_start_stream_name(start.clone())
                .send()
                .await
                .map_err(|e| sdk_error("*", e))?;
            names.extend(out.stream_names().iter().cloned());
            if !out.has_more_streams() || out.stream_names().is_empty() {
                return Ok(names);
            }
            start = names.last().cloned();
        }
    }

    async fn describe_stream(&self, stream: &str) -> Result<StreamSummary, SinkError> {
        let out = self
            .client
            .describe_stream()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| sdk_error(stream, e))?;
        let d = out.stream_description().ok_or_else(|| {
            SinkError::Unavailable("DescribeStream returned no description".into())
        })?;
        Ok(StreamSummary {
            name: d.stream_name().to_string(),
            arn: d.stream_arn().to_string(),
            status: d.stream_status().as_str().to_string(),
            shards: d
                .shards()
                .iter()
                .map(|s| s.shard_id().to_string())
                .collect(),
        })
    }
}

/// One record held by a [`MemoryStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRecord {
    /// Its sequence number: 56 decimal digits, increasing across runs.
    pub sequence_number: String,
    /// The partition key it was put with.
    pub partition_key: String,
    /// The record's bytes, as put.
    pub data: Bytes,
}

/// The only shard of every in-process stream.
pub const MEMORY_SHARD: &str = "shardId-000000000000";

/// An in-process stream for the embedded default: streams are created on first put, each has
/// one shard, and sequence numbers are 56-digit decimals that increase across runs (they start
/// from the time the stream was made), like Kinesis'. [`MemoryStream::drain`] hands the records
/// over in order.
#[derive(Debug)]
pub struct MemoryStream {
    epoch_micros: i64,
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    counter: u64,
    pending: BTreeMap<String, Vec<MemoryRecord>>,
    known: BTreeMap<String, ()>,
}

impl Default for MemoryStream {
    fn default() -> Self {
        MemoryStream::new()
    }
}

impl MemoryStream {
    /// An empty in-process stream set; sequence numbers start from now.
    pub fn new() -> Self {
        MemoryStream {
            epoch_micros: chrono::Utc::now().timestamp_micros(),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts records on `stream` only if `log` accepts them first: `log` is handed the records
    /// with their sequence numbers (each above every one given before, in this process or an
    /// earlier one) and runs while no other record can be put, so a durable log in front of the
    /// stream holds them in stream order; when it fails, nothing is put.
    pub fn put_logged<E>(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
        log: impl FnOnce(&[MemoryRecord]) -> Result<(), E>,
    ) -> Result<Vec<PutResult>, E> {
        let mut state = self.lock();
        let start = state.counter;
        let records: Vec<MemoryRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, (partition_key, data))| MemoryRecord {
                sequence_number: format!("49{:020}{:034}", self.epoch_micros, start + 1 + i as u64),
                partition_key,
                data,
            })
            .collect();
        log(&records)?;
        state.counter += records.len() as u64;
        state.known.insert(stream.to_string(), ());
        let results = records
            .iter()
            .map(|r| PutResult {
                sequence_number: r.sequence_number.clone(),
                shard_id: MEMORY_SHARD.to_string(),
            })
            .collect();
        state
            .pending
            .entry(stream.to_string())
            .or_default()
            .extend(records);
        Ok(results)
    }

    /// Puts records an earlier process put (with their sequence numbers) back on `stream`,
    /// ahead of everything put since: how a durable log in front of the stream recovers.
    pub fn restore(&self, stream: &str, records: Vec<MemoryRecord>) {
        self.lock().known.insert(stream.to_string(), ());
        self.requeue(stream, records);
    }

    /// Takes up to `max` of the oldest records of each stream, in order.
    pub fn drain(&self, max: usize) -> Vec<(String, Vec<MemoryRecord>)> {
        let mut state = self.lock();
        let mut out = Vec::new();
        for (stream, records) in state.pending.iter_mut() {
            if records.is_empty() {
                continue;
            }
            let n = records.len().min(max.max(1));
            out.push((stream.clone(), records.drain(..n).collect()));
        }
        out
    }

    /// How many records wait to be drained.
    pub fn pending(&self) -> usize {
        self.lock().pending.values().map(Vec::len).sum()
    }

    /// Puts records back at the front of a stream (after a failed hand-over), keeping order.
    pub fn requeue(&self, stream: &str, records: Vec<MemoryRecord>) {
        let mut state = self.lock();
        let queue = state.pending.entry(stream.to_string()).or_default();
        let rest = std::mem::take(queue);
        queue.extend(records);
        queue.extend(rest);
    }
}

#[async_trait]
impl StreamSink for MemoryStream {
    async fn put_record(
        &self,
        stream: &str,
        partition_key: &str,
        data: Bytes,
    ) -> Result<PutResult, SinkError> {
        let no_log = |_: &[MemoryRecord]| Ok::<(), SinkError>(());
        let mut put = self.put_logged(stream, vec![(partition_key.to_string(), data)], no_log)?;
        put.pop()
            .ok_or_else(|| SinkError::Unavailable("the in-process stream took no record".into()))
    }

    async fn put_records(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<Result<PutResult, RecordFailure>>, SinkError> {
        let no_log = |_: &[MemoryRecord]| Ok::<(), SinkError>(());
        Ok(self
            .put_logged(stream, records, no_log)?
            .into_iter()
            .map(Ok)
            .collect())
    }

    async fn list_streams(&self) -> Result<Vec<String>, SinkError> {
        Ok(self.lock().known.keys().cloned().collect())
    }

    async fn describe_stream(&self, stream: &str) -> Result<StreamSummary, SinkError> {
        if !self.lock().known.contains_key(stream) {
            return Err(SinkError::NotFound(stream.to_string()));
        }
        Ok(StreamSummary {
            name: stream.to_string(),
            arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"),
            status: "ACTIVE".into(),
            shards: vec![MEMORY_SHARD.to_string()],
        })
    }
}
