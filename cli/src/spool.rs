//! The embedded default's raw landing: a durable local spool with Firehose's semantics.
//!
//! Each topic has one open segment file in the spool directory. A request's records are appended
//! to it and flushed to disk (`fsync`) before the API answers `200`, so an acknowledged record
//! survives the process being killed. A segment is rotated into one raw object,
//! `topics/<topic>/dt=<date>/<time>-<id>.ndjson`, when it reaches `--flush-records` records or
//! `--flush-bytes` bytes, when it is `--flush-ms` old, and on shutdown; then its file is removed.
//!
//! Opening a spool lands whatever an earlier process left in it (the recovery after a crash).
//! The object's key is derived from the segment's file name, and a segment whose object already
//! exists (a crash between writing the object and removing the file) is only removed, so a
//! recovered segment is never landed twice. A torn last line (a write cut short by the crash,
//! never acknowledged) is dropped.

use bytes::Bytes;
use chrono::Utc;
use ingest_api::landing::{Landed, Landing, LandingError, NdjsonRecords};
use ingest_api::RawLanding;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the local API lands batch records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LandingKind {
    /// Through the durable spool: one object per flush, like Firehose (the default).
    Spool,
    /// One object per request, written before the answer: simple, but costly at scale.
    Direct,
}

/// The landing options `serve` and `run` share.
#[derive(Debug, Clone, clap::Args)]
pub struct LandingArgs {
    /// How accepted batch records are landed.
    #[arg(long, value_enum, default_value_t = LandingKind::Spool)]
    pub landing: LandingKind,
    /// Spool directory (default: `.spool` inside a local --raw directory, else ./data/spool).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Rotate a topic's spool into an object once it holds this many records.
    #[arg(long, default_value_t = FlushLimits::default().records)]
    pub flush_records: usize,
    /// … or this many bytes (Firehose's default buffer: 5 MiB).
    #[arg(long, default_value_t = FlushLimits::default().bytes)]
    pub flush_bytes: u64,
    /// … or when its oldest record is this many milliseconds old.
    #[arg(long, default_value_t = FlushLimits::default().interval.as_millis() as u64)]
    pub flush_ms: u64,
}

impl Default for LandingArgs {
    fn default() -> Self {
        let limits = FlushLimits::default();
        LandingArgs {
            landing: LandingKind::Spool,
            spool: None,
            flush_records: limits.records,
            flush_bytes: limits.bytes,
            flush_ms: limits.interval.as_millis() as u64,
        }
    }
}

impl LandingArgs {
    /// The flush limits the options set.
    pub fn limits(&self) -> FlushLimits {
        FlushLimits {
            records: self.flush_records.max(1),
            bytes: self.flush_bytes.max(1),
            interval: Duration::from_millis(self.flush_ms),
        }
    }

    /// The spool directory for a `--raw` value.
    pub fn spool_dir(&self, raw: &str) -> PathBuf {
        match (&self.spool, raw.contains("://")) {
            (Some(dir), _) => dir.clone(),
            (None, false) => Path::new(raw).join(".spool"),
            (None, true) => PathBuf::from("./data/spool"),
        }
    }
}

/// When a segment is rotated into an object: whichever limit it reaches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushLimits {
    /// Records in a segment.
    pub records: usize,
    /// Bytes in a segment.
    pub bytes: u64,
    /// Age of a segment's first record.
    pub interval: Duration,
}

impl Default for FlushLimits {
    /// Firehose's default buffering size (5 MiB) and the template's interval (60 s).
    fn default() -> Self {
        FlushLimits {
            records: 100_000,
            bytes: 5 * 1024 * 1024,
            interval: Duration::from_secs(60),
        }
    }
}

impl FlushLimits {
    /// The limits, as a person reads them.
    pub fn describe(&self) -> String {
        format!(
            "{} records, {:.1} MiB or {} s",
            self.records,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.interval.as_secs_f64()
        )
    }
}

/// Why the spool could not take or land records.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory could not be written or read.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A segment could not be landed as a raw object.
    #[error("landing {key}: {source}")]
    Land {
        /// The object's key.
        key: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One topic's open segment.
#[derive(Debug)]
struct Segment {
    topic: String,
    path: PathBuf,
    file: std::fs::File,
    records: usize,
    bytes: u64,
    opened: Instant,
    sync: Arc<GroupSync>,
}

/// Flushes a segment to disk for every request written since the last flush at once: a
/// request waits for a flush that started after its write, and one `fdatasync` serves all
/// the requests written while the previous one ran.
#[derive(Debug)]
struct GroupSync {
    file: std::fs::File,
    written: AtomicU64,
    synced: tokio::sync::Mutex<u64>,
}

impl GroupSync {
    /// Returns once everything written up to write number `seq` is on disk.
    async fn wait_for(self: &Arc<Self>, seq: u64) -> std::io::Result<()> {
        let mut synced = self.synced.lock().await;
        if *synced >= seq {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.file.sync_data())
            .await
            .map_err(std::io::Error::other)??;
        *synced = target;
        Ok(())
    }
}

/// What a flush landed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Raw objects written.
    pub objects: usize,
    /// Records in them.
    pub records: usize,
}

/// A durable spool in front of a raw landing.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    target: RawLanding,
    limits: FlushLimits,
    open: tokio::sync::Mutex<BTreeMap<String, Segment>>,
}

impl Spool {
    /// A spool in `dir` (created if missing) landing into `target`. Segments left by an earlier
    /// process are landed first; the result says how many.
    pub async fn open(
        dir: &Path,
        target: RawLanding,
        limits: FlushLimits,
    ) -> Result<(Spool, Flushed), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            target,
            limits,
            open: tokio::sync::Mutex::default(),
        };
        let mut recovered = Flushed::default();
        for (topic, path) in spool.segment_files()? {
            let records = spool.land_file(&topic, &path).await?;
            if records > 0 {
                recovered.objects += 1;
                recovered.records += records;
            }
        }
        Ok((spool, recovered))
    }

    /// The directory segments are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where flushed segments land.
    pub fn target(&self) -> &RawLanding {
        &self.target
    }

    /// The flush limits.
    pub fn limits(&self) -> FlushLimits {
        self.limits
    }

    /// Every segment file in the spool: `<dir>/<topic>/<name>.ndjson`, oldest first.
    fn segment_files(&self) -> Result<Vec<(String, PathBuf)>, SpoolError> {
        let mut files = Vec::new();
        for topic in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let topic = topic.map_err(io(&self.dir))?.path();
            if !topic.is_dir() {
                continue;
            }
            let Some(name) = topic
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            for file in std::fs::read_dir(&topic).map_err(io(&topic))? {
                let path = file.map_err(io(&topic))?.path();
                if path.extension().is_some_and(|e| e == "ndjson") {
                    files.push((name.clone(), path));
                }
            }
        }
        files.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(files)
    }

    /// The raw object a segment file lands as: `topics/<topic>/dt=<date>/<file name>`, the
    /// date taken from the name's leading `YYYYMMDD`.
    fn object_key(topic: &str, path: &Path) -> ObjectPath {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("segment.ndjson");
        let date = match (name.get(0..4), name.get(4..6), name.get(6..8)) {
            (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
            _ => Utc::now().format("%Y-%m-%d").to_string(),
        };
        ObjectPath::from(format!("topics/{topic}/dt={date}/{name}"))
    }

    /// Lands one segment file as its object and removes the file; how many records it held.
    async fn land_file(&self, topic: &str, path: &Path) -> Result<usize, SpoolError> {
        let mut bytes = std::fs::read(path).map_err(io(path))?;
        // A torn last line was never acknowledged: drop it.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(complete);
        let records = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        if records > 0 {
            let key = Spool::object_key(topic, path);
            let store = self.target.store();
            let land_err = |source| SpoolError::Land {
                key: key.to_string(),
                source,
            };
            match store.head(&key).await {
                // Landed before a crash kept the file: the object is this segment already.
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    store
                        .put(&key, PutPayload::from(Bytes::from(bytes)))
                        .await
                        .map_err(land_err)?;
                }
                Err(e) => return Err(land_err(e)),
            }
        }
        std::fs::remove_file(path).map_err(io(path))?;
        Ok(records)
    }

    /// Appends `records` to `topic`'s segment and returns once they are on disk; rotates the
    /// segment if it reached a size limit.
    pub async fn append(&self, topic: &str, records: &NdjsonRecords) -> Result<(), SpoolError> {
        let (sync, seq, path) = {
            let mut open = self.open.lock().await;
            if !open.contains_key(topic) {
                let segment = self.new_segment(topic)?;
                open.insert(topic.to_string(), segment);
            }
            let Some(segment) = open.get_mut(topic) else {
                return Ok(());
            };
            if let Err(e) = segment.file.write_all(records.bytes()) {
                // Leave no partial request behind: the client is told it failed and retries.
                let _ = segment.file.set_len(segment.bytes);
                return Err(io(&segment.path)(e));
            }
            segment.records += records.len();
            segment.bytes += records.bytes().len() as u64;
            let seq = segment.sync.written.fetch_add(1, Ordering::AcqRel) + 1;
            let written = (segment.sync.clone(), seq, segment.path.clone());
            if segment.records >= self.limits.records || segment.bytes >= self.limits.bytes {
                if let Some(full) = open.remove(topic) {
                    // Landing reads the file, so the object holds these records too. If it
                    // fails, the records are still safe in the file: the next flush lands it.
                    if let Err(e) = self.rotate(full).await {
                        tracing::warn!(error = %e, "landing a full spool segment failed; retrying at the next flush");
                    }
                }
            }
            written
        };
        sync.wait_for(seq).await.map_err(io(&path))
    }

    fn new_segment(&self, topic: &str) -> Result<Segment, SpoolError> {
        let folder = self.dir.join(topic);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let now = Utc::now();
        let path = folder.join(format!(
            "{}-{}.ndjson",
            now.format("%Y%m%dT%H%M%S%.6fZ"),
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        // Make the new file's name durable too, not only its contents.
        std::fs::File::open(&folder)
            .and_then(|d| d.sync_all())
            .map_err(io(&folder))?;
        let sync = Arc::new(GroupSync {
            file: file.try_clone().map_err(io(&path))?,
            written: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
        });
        Ok(Segment {
            topic: topic.to_string(),
            path,
            file,
            records: 0,
            bytes: 0,
            opened: Instant::now(),
            sync,
        })
    }

    async fn rotate(&self, segment: Segment) -> Result<usize, SpoolError> {
        let Segment {
            topic, path, file, ..
        } = segment;
        drop(file);
        self.land_file(&topic, &path).await
    }

    /// Rotates the segments older than the flush interval (every segment when `all`), and
    /// lands segments a failed flush left behind.
    pub async fn flush(&self, all: bool) -> Result<Flushed, SpoolError> {
        let mut open = self.open.lock().await;
        let due: Vec<String> = open
            .iter()
            .filter(|(_, s)| all || s.opened.elapsed() >= self.limits.interval)
            .map(|(topic, _)| topic.clone())
            .collect();
        let mut flushed = Flushed::default();
        for topic in due {
            if let Some(segment) = open.remove(&topic) {
                let records = self.rotate(segment).await?;
                if records > 0 {
                    flushed.objects += 1;
                    flushed.records += records;
                }
            }
        }
        // Segments whose landing failed earlier are on disk but no longer open.
        let open_paths: Vec<PathBuf> = open.values().map(|s| s.path.clone()).collect();
        for (topic, path) in self.segment_files()? {
            if !open_paths.contains(&path) {
                let records = self.land_file(&topic, &path).await?;
                if records > 0 {
                    flushed.objects += 1;
                    flushed.records += records;
                }
            }
        }
        Ok(flushed)
    }

    /// Records waiting in the spool.
    pub async fn pending_records(&self) -> usize {
        self.open.lock().await.values().map(|s| s.records).sum()
    }
}

#[async_trait::async_trait]
impl Landing for Spool {
    async fn land(&self, topic: &str, records: &NdjsonRecords) -> Result<Landed, LandingError> {
        self.append(topic, records)
            .await
            .map_err(|e| LandingError::refused("the local spool", e))?;
        Ok(Landed {
            location: format!("spool:{topic}"),
            offsets: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn spool(dir: &Path, limits: FlushLimits) -> (Spool, Flushed) {
        let target = RawLanding::local_dir(&dir.join("raw")).unwrap();
        Spool::open(&dir.join("spool"), target, limits)
            .await
            .unwrap()
    }

    fn landed(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let root = dir.join("raw");
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p.strip_prefix(&root).unwrap().display().to_string();
                    out.push((key, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn records_land_as_one_object_per_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = spool(dir.path(), FlushLimits::default()).await;
        for i in 0..3 {
            let records = NdjsonRecords::from_texts(&[format!("{{\"ind\":{i}}}")]);
            spool.append("p.geo", &records).await.unwrap();
        }
        spool
            .append("p.pin", &NdjsonRecords::from_texts(&["{\"index\":1}"]))
            .await
            .unwrap();
        assert!(
            landed(dir.path()).is_empty(),
            "nothing lands before a flush"
        );
        assert_eq!(spool.pending_records().await, 4);
        let flushed = spool.flush(true).await.unwrap();
        assert_eq!(
            flushed,
            Flushed {
                objects: 2,
                records: 4
            }
        );
        let objects = landed(dir.path());
        assert_eq!(objects.len(), 2);
        assert!(objects[0].0.starts_with("topics/p.geo/dt="), "{objects:?}");
        assert_eq!(objects[0].1, "{\"ind\":0}\n{\"ind\":1}\n{\"ind\":2}\n");
        assert_eq!(objects[1].1, "{\"index\":1}\n");
        assert_eq!(spool.flush(true).await.unwrap(), Flushed::default());
    }

    #[tokio::test]
    async fn a_segment_rotates_when_it_reaches_the_record_limit() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FlushLimits {
            records: 2,
            ..FlushLimits::default()
        };
        let (spool, _) = spool(dir.path(), limits).await;
        for i in 0..5 {
            let records = NdjsonRecords::from_texts(&[format!("{{\"ind\":{i}}}")]);
            spool.append("p.user", &records).await.unwrap();
        }
        assert_eq!(landed(dir.path()).len(), 2);
        assert_eq!(spool.pending_records().await, 1);
    }

    #[tokio::test]
    async fn a_crashed_spool_is_landed_once_on_the_next_start_without_its_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = spool(dir.path(), FlushLimits::default()).await;
        spool
            .append(
                "p.geo",
                &NdjsonRecords::from_texts(&["{\"ind\":1}", "{\"ind\":2}"]),
            )
            .await
            .unwrap();
        // The process dies here: no flush. A write that was cut short left half a line.
        let segment = spool.segment_files().unwrap()[0].1.clone();
        std::mem::forget(spool);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap()
            .write_all(b"{\"ind\":")
            .unwrap();
        let (_, recovered) = self::spool(dir.path(), FlushLimits::default()).await;
        assert_eq!(
            recovered,
            Flushed {
                objects: 1,
                records: 2
            }
        );
        let objects = landed(dir.path());
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].1, "{\"ind\":1}\n{\"ind\":2}\n");
        assert!(!segment.exists());

        // A crash after the object was written but before the file was removed: the next
        // start only removes the file.
        std::fs::create_dir_all(segment.parent().unwrap()).unwrap();
        std::fs::write(&segment, "{\"ind\":1}\n{\"ind\":2}\n").unwrap();
        let (_, recovered) = self::spool(dir.path(), FlushLimits::default()).await;
        assert_eq!(recovered.records, 2);
        assert_eq!(landed(dir.path()), objects);
        assert!(!segment.exists());
    }
}
