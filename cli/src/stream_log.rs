//! The embedded default's in-process stream, made durable: a write-ahead log under the stream
//! routes, so `PUT /streams/…/record(s)` answers `200` only once its records are on disk, as
//! Kinesis answers only once its records are replicated.
//!
//! Every record put on the in-process stream is also appended, with its stream, sequence number
//! and partition key, as one line of the log's open segment, and the segment is flushed to disk
//! (`fdatasync`, one for all the requests written while the previous one ran) before the route
//! answers. The cleaner rotates the segment before each round; once a round has handed every
//! record to stream-clean and the lake committed them, the segments closed before it are
//! removed. Opening the log puts what an earlier process left in it back on the stream, ahead
//! of anything new and under its original sequence numbers, so stream-clean's per-shard
//! position skips what was committed before the crash and cleans the rest: each acknowledged
//! record lands once. A torn last line (a write cut short by the crash, never acknowledged) is
//! dropped.

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use ingest_api::sink::{PutResult, RecordFailure, SinkError, StreamSink, StreamSummary};
use ingest_api::MemoryStream;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One line of the log: a record as the in-process stream holds it.
#[derive(Debug, Serialize, Deserialize)]
struct LoggedRecord {
    stream: String,
    sequence_number: String,
    partition_key: String,
    /// The record's bytes, base64.
    data: String,
}

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("stream log {}: {source}", path.display())]
pub struct StreamLogError {
    /// The file or directory.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

fn log_error(path: &Path) -> impl FnOnce(std::io::Error) -> StreamLogError + '_ {
    move |source| StreamLogError {
        path: path.to_path_buf(),
        source,
    }
}

/// The open segment and the closed ones not yet known to be committed.
#[derive(Debug)]
struct LogState {
    next_segment: u64,
    open: PathBuf,
    file: std::fs::File,
    closed: Vec<PathBuf>,
    /// How many writes the log has taken (in any segment).
    written: u64,
    /// `written` when the open segment was opened.
    rotated_at: u64,
    /// Bytes in the open segment.
    bytes: u64,
}

/// The in-process stream with its write-ahead log (see the module documentation).
#[derive(Debug)]
pub struct DurableStream {
    memory: Arc<MemoryStream>,
    dir: PathBuf,
    state: Mutex<LogState>,
    /// How many writes are on disk: a request waits for a flush that started after its write,
    /// and one `fdatasync` serves every request written while the previous one ran.
    synced: tokio::sync::Mutex<u64>,
}

impl DurableStream {
    /// Opens the log in `dir` (created if missing) in front of `memory`, and puts the records
    /// an earlier process left in it back on `memory`, first. Returns how many it put back.
    pub fn open(
        dir: &Path,
        memory: Arc<MemoryStream>,
    ) -> Result<(DurableStream, usize), StreamLogError> {
        std::fs::create_dir_all(dir).map_err(log_error(dir))?;
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .map_err(log_error(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_suffix(".log")?.parse::<u64>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        segments.sort();
        let mut recovered: Vec<(String, Vec<ingest_api::sink::MemoryRecord>)> = Vec::new();
        let mut count = 0;
        for (_, path) in &segments {
            for (stream, entry) in read_segment(path)? {
                count += 1;
                match recovered.iter_mut().find(|(s, _)| *s == stream) {
                    Some((_, list)) => list.push(entry),
                    None => recovered.push((stream, vec![entry])),
                }
            }
        }
        for (stream, records) in recovered {
            memory.restore(&stream, records);
        }
        let next = segments.last().map_or(0, |(n, _)| n + 1);
        let open = segment_path(dir, next);
        let file = open_segment(&open)?;
        let bytes = file.metadata().map_err(log_error(&open))?.len();
        Ok((
            DurableStream {
                memory,
                dir: dir.to_path_buf(),
                state: Mutex::new(LogState {
                    next_segment: next + 1,
                    open,
                    file,
                    closed: segments.into_iter().map(|(_, p)| p).collect(),
                    written: 0,
                    rotated_at: 0,
                    bytes,
                }),
                synced: tokio::sync::Mutex::new(0),
            },
            count,
        ))
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The in-process stream the log stands in front of.
    pub fn memory(&self) -> &Arc<MemoryStream> {
        &self.memory
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the open segment and opens a new one: what was put before this call is in
    /// closed segments, which [`DurableStream::committed`] removes.
    pub fn rotate(&self) -> Result<(), StreamLogError> {
        let mut state = self.lock();
        if state.written == state.rotated_at {
            return Ok(());
        }
        // Everything in the segment closed here is on disk before it is closed.
        state.file.sync_data().map_err(log_error(&state.open))?;
        let path = segment_path(&self.dir, state.next_segment);
        let file = open_segment(&path)?;
        let old = std::mem::replace(&mut state.open, path);
        state.file = file;
        state.closed.push(old);
        state.next_segment += 1;
        state.rotated_at = state.written;
        state.bytes = 0;
        Ok(())
    }

    /// Removes the closed segments: every record in them is in the lake (the caller handed
    /// everything put before the last [`DurableStream::rotate`] to stream-clean, and the lake
    /// committed it).
    pub fn committed(&self) -> Result<(), StreamLogError> {
        let closed = std::mem::take(&mut self.lock().closed);
        for path in closed {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(log_error(&path)(e)),
            }
        }
        Ok(())
    }

    /// Puts the records on the stream and in the log, in one order, and returns once they are
    /// on disk.
    async fn put(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<PutResult>, SinkError> {
        let (results, seq) = {
            let mut state = self.lock();
            let results = self.memory.put_logged(stream, records, |records| {
                let mut lines = Vec::new();
                for r in records {
                    let line = LoggedRecord {
                        stream: stream.to_string(),
                        sequence_number: r.sequence_number.clone(),
                        partition_key: r.partition_key.clone(),
                        data: base64::engine::general_purpose::STANDARD.encode(&r.data),
                    };
                    serde_json::to_writer(&mut lines, &line).map_err(std::io::Error::other)?;
                    lines.push(b'\n');
                }
                if let Err(e) = state.file.write_all(&lines) {
                    // A line cut short would run into the next one: the segment is put back
                    // as it was, and the records go nowhere.
                    let _ = state.file.set_len(state.bytes);
                    return Err(e);
                }
                state.bytes += lines.len() as u64;
                Ok(())
            });
            let results = results.map_err(|e| {
                SinkError::Unavailable(format!(
                    "the stream log {} could not be written ({e}); the records were not acknowledged",
                    state.open.display()
                ))
            })?;
            state.written += 1;
            (results, state.written)
        };
        self.flush(seq).await?;
        Ok(results)
    }

    /// Returns once write number `seq` is on disk. A write in a segment closed since is on
    /// disk already (rotation flushes it); flushing the open one then costs one more flush.
    async fn flush(&self, seq: u64) -> Result<(), SinkError> {
        let mut synced = self.synced.lock().await;
        if *synced >= seq {
            return Ok(());
        }
        let (file, target, path) = {
            let state = self.lock();
            (state.file.try_clone(), state.written, state.open.clone())
        };
        let unavailable = |e: std::io::Error| {
            SinkError::Unavailable(format!(
                "the stream log {} could not be flushed to disk ({e}); the records were not acknowledged",
                path.display()
            ))
        };
        let file = file.map_err(unavailable)?;
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| SinkError::Unavailable(format!("the stream log: {e}")))?
            .map_err(unavailable)?;
        *synced = target;
        Ok(())
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.log"))
}

fn open_segment(path: &Path) -> Result<std::fs::File, StreamLogError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(log_error(path))
}

/// The records of a segment, each with its stream; a torn last line is dropped.
fn read_segment(
    path: &Path,
) -> Result<Vec<(String, ingest_api::sink::MemoryRecord)>, StreamLogError> {
    let bytes = std::fs::read(path).map_err(log_error(path))?;
    let mut out = Vec::new();
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[][..],
    };
    for line in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let read = serde_json::from_slice::<LoggedRecord>(line)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&r.data)
                    .map_err(|e| e.to_string())?;
                let record = ingest_api::sink::MemoryRecord {
                    sequence_number: r.sequence_number,
                    partition_key: r.partition_key,
                    data: Bytes::from(data),
                };
                Ok((r.stream, record))
            });
        match read {
            Ok(record) => out.push(record),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "a stream log line that cannot be read is skipped")
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl StreamSink for DurableStream {
    async fn put_record(
        &self,
        stream: &str,
        partition_key: &str,
        data: Bytes,
    ) -> Result<PutResult, SinkError> {
        let mut results = self
            .put(stream, vec![(partition_key.to_string(), data)])
            .await?;
        results
            .pop()
            .ok_or_else(|| SinkError::Unavailable("the stream log took no record".into()))
    }

    async fn put_records(
        &self,
        stream: &str,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<Result<PutResult, RecordFailure>>, SinkError> {
        Ok(self
            .put(stream, records)
            .await?
            .into_iter()
            .map(Ok)
            .collect())
    }

    async fn list_streams(&self) -> Result<Vec<String>, SinkError> {
        self.memory.list_streams().await
    }

    async fn describe_stream(&self, stream: &str) -> Result<StreamSummary, SinkError> {
        self.memory.describe_stream(stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(memory: &MemoryStream) -> Vec<(String, String, Vec<u8>)> {
        memory
            .drain(usize::MAX)
            .into_iter()
            .flat_map(|(stream, records)| {
                records
                    .into_iter()
                    .map(move |r| (stream.clone(), r.sequence_number, r.data.to_vec()))
            })
            .collect()
    }

    #[tokio::test]
    async fn what_a_killed_process_acknowledged_is_put_back_first_with_its_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Arc::new(MemoryStream::new());
        let (log, recovered) = DurableStream::open(dir.path(), memory.clone()).unwrap();
        assert_eq!(recovered, 0);
        let a = log
            .put_record("s-geo", "k", Bytes::from_static(b"{\"ind\":1}"))
            .await
            .unwrap();
        log.rotate().unwrap();
        let b = log
            .put_records(
                "s-geo",
                vec![("k".into(), Bytes::from_static(b"{\"ind\":2}"))],
            )
            .await
            .unwrap();
        let acknowledged = records(&memory);
        // The process dies here: nothing committed, nothing removed.
        drop(log);

        let again = Arc::new(MemoryStream::new());
        let (log, recovered) = DurableStream::open(dir.path(), again.clone()).unwrap();
        assert_eq!(recovered, 2);
        log.put_record("s-geo", "k", Bytes::from_static(b"{\"ind\":3}"))
            .await
            .unwrap();
        let after = records(&again);
        assert_eq!(after[..2], acknowledged[..]);
        assert_eq!(after[0].1, a.sequence_number);
        assert_eq!(after[1].1, b[0].as_ref().unwrap().sequence_number);
        // The new record comes after them, with a higher sequence number.
        assert_eq!(after[2].2, b"{\"ind\":3}");
        assert!(after[2].1 > after[1].1);
    }

    #[tokio::test]
    async fn segments_go_once_the_lake_holds_them_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Arc::new(MemoryStream::new());
        let (log, _) = DurableStream::open(dir.path(), memory.clone()).unwrap();
        log.put_record("s-pin", "k", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        log.rotate().unwrap();
        memory.drain(usize::MAX);
        log.committed().unwrap();
        log.put_record("s-pin", "k", Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        drop(log);
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "only the open segment is left");
        // A crash cut the last write short: that line was never acknowledged.
        let open = files[0].as_ref().unwrap().path();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&open)
            .unwrap();
        f.write_all(b"{\"stream\":\"s-pin\",\"seq").unwrap();
        let again = Arc::new(MemoryStream::new());
        let (_, recovered) = DurableStream::open(dir.path(), again.clone()).unwrap();
        assert_eq!(recovered, 1);
        assert_eq!(records(&again)[0].2, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_written_acknowledges_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Arc::new(MemoryStream::new());
        let (log, _) = DurableStream::open(dir.path(), memory.clone()).unwrap();
        log.put_record("s-pin", "k", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        // The next segment is on a full disk.
        std::os::unix::fs::symlink("/dev/full", segment_path(dir.path(), 1)).unwrap();
        log.rotate().unwrap();
        let refused = log
            .put_record("s-pin", "k", Bytes::from_static(b"{}"))
            .await;
        match refused {
            Err(SinkError::Unavailable(message)) => {
                assert!(message.contains("not acknowledged"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        // The refused record is not on the stream either: only the first one is.
        assert_eq!(memory.pending(), 1);
    }
}
