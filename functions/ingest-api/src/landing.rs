//! The raw landing: accepted batch records, one NDJSON object per request, under
//! `topics/<topic>/dt=<date>/<time>-<uuid>.ndjson` in an object store (S3 when deployed, a
//! local directory on the embedded default). A single PUT lands the whole request or nothing.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// Where accepted batch records are landed.
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
        Path::from(format!(
            "topics/{topic}/dt={}/{}-{}.ndjson",
            at.format("%Y-%m-%d"),
            at.format("%Y%m%dT%H%M%S%.6fZ"),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// Writes `ndjson` as one object for `topic` and returns its key.
    pub async fn land(&self, topic: &str, ndjson: Bytes) -> Result<Path, object_store::Error> {
        let key = RawLanding::key_for(topic, Utc::now());
        self.store.put(&key, PutPayload::from(ndjson)).await?;
        Ok(key)
    }
}
