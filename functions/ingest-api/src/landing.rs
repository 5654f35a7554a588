//! The raw landing of the batch route: where accepted records go before the `200`.
//!
//! One interface, [`Landing`], with four implementations:
//! - [`crate::firehose::FirehoseLanding`] (deployed, the default): Amazon Data Firehose buffers
//!   the records and writes one NDJSON object per flush under `topics/<topic>/…` in the raw
//!   bucket, as the original pipeline's MSK Connect S3 sink did;
//! - a durable local spool with the same semantics on the embedded default (the local runner's
//!   `spool` module);
//! - [`RawLanding`]: one object per request, written directly (a single PUT). Simple, but every
//!   request then costs an S3 PUT, an S3 event, an SQS message and a GET, and an exactly-once
//!   entry in the lake: fine for a few requests a minute, not for production traffic;
//! - [`crate::kafka::KafkaLanding`]: the records produced into their Kafka topic (acks=all),
//!   for a pipeline whose spine is Amazon MSK or another Kafka cluster.
//!
//! A landing answers `Ok` only once every record is durably accepted; the route answers `200`
//! only then.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// The accepted records of one request, as NDJSON: each record's JSON text and a newline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NdjsonRecords {
    bytes: Bytes,
    /// Where each record's line ends (after its newline).
    ends: Vec<usize>,
}

impl NdjsonRecords {
    /// Records from their lines (each ending in a newline) and the offsets where they end.
    pub fn new(bytes: Bytes, ends: Vec<usize>) -> Self {
        NdjsonRecords { bytes, ends }
    }

    /// Records from JSON texts (no newlines inside, as `serde_json` writes them).
    pub fn from_texts<T: AsRef<[u8]>>(texts: &[T]) -> Self {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(texts.len());
        for text in texts {
            bytes.extend_from_slice(text.as_ref());
            bytes.push(b'\n');
            ends.push(bytes.len());
        }
        NdjsonRecords::new(Bytes::from(bytes), ends)
    }

    /// All the lines, as one NDJSON document.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each record's line, newline included (no copy).
    pub fn lines(&self) -> impl Iterator<Item = Bytes> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.bytes.slice(start..end))
    }
}

/// Where accepted records went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The object key, delivery stream, spool segment or topic-partition, for the log.
    pub location: String,
    /// Where each record now is in a Kafka log, as (partition, offset), in request order:
    /// given by the Kafka landing only (the others answer with landing-time offsets).
    pub offsets: Vec<(i32, i64)>,
}

/// Why records could not be landed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LandingError {
    /// The landing could not take (all of) the records now; a retry may succeed. `accepted`
    /// records were taken before it gave up (they will land; a retry sends them again).
    #[error("{what} is unavailable: {reason}")]
    Unavailable {
        /// The landing that refused (a delivery stream, the spool).
        what: String,
        /// What it said.
        reason: String,
        /// Records it took before it gave up.
        accepted: usize,
    },
    /// The landing is not set up for this topic or this deployment; a retry will not help.
    #[error("{0}")]
    Misconfigured(String),
    /// A record is larger than the landing takes.
    #[error("record {index} is {size} bytes; the landing takes at most {limit}")]
    RecordTooLarge {
        /// The record's position in the request (from 0).
        index: usize,
        /// Its size in bytes.
        size: usize,
        /// The largest the landing takes.
        limit: usize,
    },
}

impl LandingError {
    /// `what` refused the whole request (nothing was accepted) for `reason`.
    pub fn refused(what: &str, reason: impl std::fmt::Display) -> Self {
        LandingError::Unavailable {
            what: what.to_string(),
            reason: reason.to_string(),
            accepted: 0,
        }
    }
}

/// A raw landing for the batch route.
#[async_trait]
pub trait Landing: Send + Sync + std::fmt::Debug {
    /// Lands every record for `topic`; `Ok` only when every record is durably accepted.
    async fn land(&self, topic: &str, records: &NdjsonRecords) -> Result<Landed, LandingError>;
}

/// The direct landing: one NDJSON object per request, under
/// `topics/<topic>/dt=<date>/<time>-<uuid>.ndjson` in an object store (S3, or a local
/// directory). A single PUT lands the whole request or nothing.
#[derive(Debug, Clone)]
pub struct RawLanding {
    store: Arc<dyn ObjectStore>,
}

impl RawLanding {
    /// Lands into `store`, keys starting at its root with `topics/`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        RawLanding { store }
    }

    /// A landing in a local directory (created if missing).
    pub fn local_dir(dir: &std::path::Path) -> Result<Self, object_store::Error> {
        std::fs::create_dir_all(dir).map_err(|e| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(RawLanding::new(Arc::new(store)))
    }

    /// The store records land in.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key a request's records land under.
    pub fn key_for(topic: &str, at: DateTime<Utc>) -> Path {
        RawLanding::key_named(topic, at, &uuid::Uuid::new_v4().simple().to_string())
    }

    /// The key of an object of `topic` started at `at` and told apart by `unique`:
    /// `topics/<topic>/dt=<date>/<time>-<unique>.ndjson`.
    pub fn key_named(topic: &str, at: DateTime<Utc>, unique: &str) -> Path {
        Path::from(format!(
            "topics/{topic}/dt={}/{}-{unique}.ndjson",
            at.format("%Y-%m-%d"),
            at.format("%Y%m%dT%H%M%S%.6fZ"),
        ))
    }

    /// Writes `ndjson` as one object for `topic` and returns its key.
    pub async fn put(&self, topic: &str, ndjson: Bytes) -> Result<Path, object_store::Error> {
        let key = RawLanding::key_for(topic, Utc::now());
        self.store.put(&key, PutPayload::from(ndjson)).await?;
        Ok(key)
    }
}

#[async_trait]
impl Landing for RawLanding {
    async fn land(&self, topic: &str, records: &NdjsonRecords) -> Result<Landed, LandingError> {
        let key = self
            .put(topic, records.bytes().clone())
            .await
            .map_err(|e| LandingError::refused("the raw store", e))?;
        Ok(Landed {
            location: key.to_string(),
            offsets: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_records_with_their_newlines() {
        let records = NdjsonRecords::from_texts(&["{\"a\":1}", "{}", "{\"b\":[2]}"]);
        assert_eq!(records.len(), 3);
        assert_eq!(records.bytes().as_ref(), b"{\"a\":1}\n{}\n{\"b\":[2]}\n");
        let lines: Vec<Bytes> = records.lines().collect();
        assert_eq!(
            lines,
            vec![
                Bytes::from_static(b"{\"a\":1}\n"),
                Bytes::from_static(b"{}\n"),
                Bytes::from_static(b"{\"b\":[2]}\n")
            ]
        );
        assert!(NdjsonRecords::default().is_empty());
    }
}
