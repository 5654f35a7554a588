//! The lake root and its Delta tables: where they live and how they are opened or created.
//!
//! A lake root is a local directory (`./lake`), a `file://` URL or an `s3://bucket/prefix` URL.
//! Tables are created on first use with the schemas of [`crate::schema`]; two writers creating
//! the same table at once both end up with the one table.

use crate::schema::LakeTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use url::Url;

/// How long the lake remembers which inputs it has committed (`txn` actions). A replay of the
/// same input within this window is recognised and skipped; older bookkeeping is dropped at
/// the next checkpoint, so it never grows without bound.
pub const TRANSACTION_RETENTION: &str = "interval 7 days";

/// Errors reaching or changing the lake. All of them are infrastructure errors: the input is
/// fine and the invocation should be retried.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake root is not a directory path, `file://` or `s3://` URL.
    #[error("lake root `{root}` is not usable: {reason}")]
    BadRoot {
        /// The root as given.
        root: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Delta operation failed (storage unreachable, commit conflict that did not resolve, …).
    #[error("Delta table `{table}`: {source}")]
    Delta {
        /// The table, relative to the lake root.
        table: String,
        /// What delta-rs said.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Building Arrow data failed.
    #[error("building Arrow data for `{table}`: {source}")]
    Arrow {
        /// The table the data was for.
        table: String,
        /// What Arrow said.
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    /// Reading a Parquet file of a table failed.
    #[error("reading a data file of `{table}`: {reason}")]
    Read {
        /// The table, relative to the lake root.
        table: String,
        /// What the Parquet reader said.
        reason: String,
    },
    /// A file of a local table's log is not whole: a write cut short by a crash or a full disk.
    #[error("Delta table `{table}`: {} is not a whole Delta log file ({reason}), so the table cannot be read past it.\n  {advice}", file.display())]
    TornLog {
        /// The table, relative to the lake root.
        table: String,
        /// The file that is not whole.
        file: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        advice: String,
    },
}

impl LakeError {
    pub(crate) fn delta(table: &str, source: DeltaTableError) -> Self {
        LakeError::Delta {
            table: table.to_string(),
            source: Box::new(source),
        }
    }
}

/// A lake root and the storage options used to reach it.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
    /// Tables this handle (or a clone of it) has loaded, as last loaded: loading one again
    /// reads only the commits made since, not its whole log from the last checkpoint (up to a
    /// hundred commit files, each a request on S3), and skips listing its log to see whether it
    /// exists.
    loaded: Arc<Mutex<HashMap<String, DeltaTable>>>,
    /// The `txn` actions of each table's log as last read, so that reading them again reads
    /// only the commits made since.
    pub(crate) txn_logs: Arc<Mutex<HashMap<String, crate::committed::TxnLog>>>,
    /// Tables brought up to date by [`Lake::prepare`], and when: the next append to one of
    /// them uses what was read then.
    prepared: Arc<Mutex<HashMap<String, Instant>>>,
}

/// How long after [`Lake::prepare`] the next append uses the table as prepared, without
/// reading its log again.
const PREPARED_FOR: Duration = Duration::from_secs(5);

static REGISTER_S3: Once = Once::new();

/// The map behind `mutex`, also when a thread panicked holding it (the maps are caches: at
/// worst an entry is stale, and a stale entry is brought up to date or dropped when used).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Environment variable with extra delta-rs storage options for an S3 lake, as
/// `key=value,key=value` — e.g. `max_retries=3,retry_timeout=20s` to give up on an unreachable
/// store sooner than delta-rs' default (10 retries within 3 minutes).
pub const STORAGE_OPTIONS_ENV: &str = "LAKE_STORAGE_OPTIONS";

/// `key=value,key=value` → pairs; an entry without `=` is an error naming it.
fn parse_storage_options(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.trim().to_string()))
            }
            _ => Err(format!(
                "{STORAGE_OPTIONS_ENV} entry `{entry}` is not key=value (e.g. max_retries=3)"
            )),
        })
        .collect()
}

impl Lake {
    /// A lake at `root`: a directory path (created if missing), `file://…` or `s3://bucket/…`.
    ///
    /// For S3, credentials and region come from the usual AWS environment; `AWS_ENDPOINT_URL`
    /// points it at an S3-compatible endpoint.
    pub fn open(root: &str) -> Result<Lake, LakeError> {
        Lake::open_with_options(root, HashMap::new())
    }

    /// As [`Lake::open`], with explicit delta-rs storage options (e.g. `AWS_ENDPOINT_URL`).
    pub fn open_with_options(
        root: &str,
        mut storage_options: HashMap<String, String>,
    ) -> Result<Lake, LakeError> {
        let bad = |reason: String| LakeError::BadRoot {
            root: root.to_string(),
            reason,
        };
        let url = if root.contains("://") {
            Url::parse(root).map_err(|e| bad(e.to_string()))?
        } else {
            let path = Path::new(root);
            std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create it: {e}")))?;
            let abs = std::fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|()| bad("not an absolute path".into()))?
        };
        match url.scheme() {
            "file" => {
                if let Ok(path) = url.to_file_path() {
                    std::fs::create_dir_all(&path)
                        .map_err(|e| bad(format!("cannot create it: {e}")))?;
                }
            }
            "s3" | "s3a" => {
                REGISTER_S3.call_once(|| deltalake::aws::register_handlers(None));
                if let Ok(extra) = std::env::var(STORAGE_OPTIONS_ENV) {
                    for (key, value) in parse_storage_options(&extra).map_err(bad)? {
                        storage_options.entry(key).or_insert(value);
                    }
                }
                // A local S3-compatible endpoint over plain http works from AWS_ENDPOINT_URL
                // alone; delta-rs refuses http unless told.
                if lambda_support::runtime::endpoint_is_plain_http() {
                    storage_options
                        .entry("AWS_ALLOW_HTTP".into())
                        .or_insert_with(|| "true".into());
                }
            }
            other => {
                return Err(bad(format!(
                    "unsupported scheme `{other}`: use a path, file:// or s3://"
                )))
            }
        }
        let mut root = url;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(Lake {
            root,
            storage_options,
            loaded: Arc::default(),
            txn_logs: Arc::default(),
            prepared: Arc::default(),
        })
    }

    /// The lake root, always ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The storage options passed to delta-rs.
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    /// The URL of the table at `relative` (e.g. `pin` or `results/q1_…`) under the root.
    pub fn table_url(&self, relative: &str) -> Result<Url, LakeError> {
        let url = self
            .root
            .join(&format!("{}/", relative.trim_matches('/')))
            .map_err(|e| LakeError::BadRoot {
                root: self.root.to_string(),
                reason: e.to_string(),
            })?;
        if url.scheme() == "file" {
            if let Ok(path) = url.to_file_path() {
                std::fs::create_dir_all(&path).map_err(|e| LakeError::BadRoot {
                    root: self.root.to_string(),
                    reason: format!("cannot create {}: {e}", path.display()),
                })?;
            }
        }
        Ok(url)
    }

    /// Loads the table at `relative` as it is now. A location holding no table yet gives an
    /// uninitialised handle (`version()` is `None`).
    ///
    /// A table loaded before is brought up to date from where it was, as a long-running Delta
    /// writer keeps its table: the commits since are read, nothing else. Should that fail (the
    /// table deleted, or recreated with a shorter log, so the commit it knew is gone), it is
    /// loaded afresh.
    pub async fn load(&self, relative: &str) -> Result<DeltaTable, LakeError> {
        let err = |e| LakeError::delta(relative, e);
        let cached = lock(&self.loaded).get(relative).cloned();
        if let Some(mut table) = cached {
            if table.update_incremental(None).await.is_ok() {
                self.remember(relative, table.clone());
                return Ok(table);
            }
            lock(&self.loaded).remove(relative);
            lock(&self.txn_logs).remove(relative);
        }
        let mut table = self.table_handle(relative)?;
        // Look before loading: loading an empty location makes the kernel log an error.
        if table.verify_deltatable_existence().await.map_err(err)? {
            if let Err(e) = table.load().await {
                return Err(self.torn_log(relative).unwrap_or_else(|| err(e)));
            }
            self.remember(relative, table.clone());
        }
        Ok(table)
    }

    /// The file of a local table's log that is not whole, if any, as the error that names it
    /// and says what to do: the newest commit first, then `_last_checkpoint`, then the
    /// checkpoints.
    fn torn_log(&self, relative: &str) -> Option<LakeError> {
        let log = self
            .table_url(relative)
            .ok()?
            .to_file_path()
            .ok()?
            .join("_delta_log");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&log)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort_by(|a, b| b.cmp(a));
        let torn = |file: std::path::PathBuf, reason: String, advice: String| LakeError::TornLog {
            table: relative.to_string(),
            file,
            reason,
            advice,
        };
        let json = files.iter().find_map(|file| {
            let name = file.file_name()?.to_str()?;
            if !(name.ends_with(".json") || name == "_last_checkpoint") {
                return None;
            }
            let bytes = std::fs::read(file).ok()?;
            let reason = if bytes.is_empty() {
                "it is empty".to_string()
            } else {
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .find_map(|l| serde_json::from_slice::<serde_json::Value>(l).err())
                    .map(|e| format!("a line is not JSON: {e}"))?
            };
            let advice = if name == "_last_checkpoint" {
                "Remove it: the log is then read from its checkpoints and commits.".to_string()
            } else {
                "If it is the newest commit, its writer never finished: move it out of _delta_log and the table opens at the version before it; then replay what that commit held (`pinpipe process` lands the raw objects again, exactly once).".to_string()
            };
            Some(torn(file.clone(), reason, advice))
        });
        json.or_else(|| {
            files.iter().find_map(|file| {
                let name = file.file_name()?.to_str()?;
                let version: u64 = name.strip_suffix(".checkpoint.parquet")?.parse().ok()?;
                let bytes = std::fs::read(file).ok()?;
                // A Parquet file starts and ends with its magic; a write cut short has no footer.
                if bytes.len() >= 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1") {
                    return None;
                }
                let commits_kept = (0..=version)
                    .all(|v| files.iter().any(|f| f.ends_with(format!("{v:020}.json"))));
                let advice = if commits_kept {
                    "Every commit it stands for is still in the log: remove it and _last_checkpoint, and the log is read from its commits.".to_string()
                } else {
                    "The commits it stands for were expired, so the table cannot be read without it: restore it from a copy (an S3 bucket's versioning, a backup), or move the table away and rebuild it from the raw objects with `pinpipe process`.".to_string()
                };
                Some(torn(
                    file.clone(),
                    format!("{} bytes with no Parquet footer: it was cut short", bytes.len()),
                    advice,
                ))
            })
        })
    }

    /// Keeps `table` as the state of the table at `relative` this handle knows (as loaded,
    /// created, or as it was before or after a commit of its own), so the next load reads only
    /// the commits after it.
    pub(crate) fn remember(&self, relative: &str, table: DeltaTable) {
        lock(&self.loaded).insert(relative.to_string(), table);
    }

    /// Brings what this handle knows of `table` (its state and the `txn` versions committed)
    /// up to date, for an append to it that follows within a few seconds to use as it is. A
    /// cleaner runs it while it cleans the batch it will append: reading a table's new commits
    /// takes a list and a read or more per table on S3, which would otherwise only start once
    /// the batch is cleaned. A table that does not exist yet is created now (a first batch's
    /// commit then starts from version 0 at once), and an error is left for the append to meet
    /// (and report) when it loads the table itself.
    ///
    /// Another writer may commit between the two: the append's commit then resolves as it does
    /// when one commits while it writes (a different input is appended after it; the same
    /// input is planned again from the table as it is then).
    pub async fn prepare(&self, table: LakeTable) {
        let name = table.name();
        let Ok(delta) = self.table(table).await else {
            return;
        };
        if self.committed_transactions(name, &delta).await.is_err() {
            return;
        }
        lock(&self.prepared).insert(name.to_string(), Instant::now());
    }

    /// `table` as an append should see it: as [`Lake::prepare`] left it, if that was within
    /// [`PREPARED_FOR`] (once), or else loaded (or created) now.
    pub(crate) async fn table_for_append(&self, table: LakeTable) -> Result<DeltaTable, LakeError> {
        let name = table.name();
        let prepared = lock(&self.prepared)
            .remove(name)
            .is_some_and(|at| at.elapsed() < PREPARED_FOR);
        if let Some(delta) = prepared
            .then(|| lock(&self.loaded).get(name).cloned())
            .flatten()
        {
            return Ok(delta);
        }
        self.table(table).await
    }

    /// An unloaded handle on the table at `relative`.
    fn table_handle(&self, relative: &str) -> Result<DeltaTable, LakeError> {
        let url = self.table_url(relative)?;
        let err = |e| LakeError::delta(relative, e);
        deltalake::DeltaTableBuilder::from_url(url)
            .map_err(err)?
            .with_storage_options(self.storage_options.clone())
            .build()
            .map_err(err)
    }

    /// The object store at the lake root, for plain files beside the tables.
    fn root_store(&self, relative: &str) -> Result<deltalake::logstore::ObjectStoreRef, LakeError> {
        let err = |e| LakeError::delta(relative, e);
        let root = deltalake::DeltaTableBuilder::from_url(self.root.clone())
            .map_err(err)?
            .with_storage_options(self.storage_options.clone())
            .build()
            .map_err(err)?;
        Ok(root.object_store())
    }

    /// Writes a plain file at `relative` under the lake root (e.g. a run summary).
    pub async fn put_file(&self, relative: &str, bytes: Vec<u8>) -> Result<(), LakeError> {
        use object_store::ObjectStoreExt;
        self.root_store(relative)?
            .put(&deltalake::Path::from(relative), bytes.into())
            .await
            .map_err(|e| LakeError::Read {
                table: relative.to_string(),
                reason: format!("writing: {e}"),
            })?;
        Ok(())
    }

    /// Reads the plain file at `relative` under the lake root; `None` when there is none.
    pub async fn get_file(&self, relative: &str) -> Result<Option<Vec<u8>>, LakeError> {
        use object_store::ObjectStoreExt;
        let read_err = |e: object_store::Error| LakeError::Read {
            table: relative.to_string(),
            reason: format!("reading: {e}"),
        };
        match self
            .root_store(relative)?
            .get(&deltalake::Path::from(relative))
            .await
        {
            Ok(found) => Ok(Some(found.bytes().await.map_err(read_err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }

    /// The plain files under `prefix` (e.g. `_runs/`), relative to the lake root.
    pub async fn list_files(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        use futures::TryStreamExt;
        let prefix_path = deltalake::Path::from(prefix);
        self.root_store(prefix)?
            .list(Some(&prefix_path))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| LakeError::Read {
                table: prefix.to_string(),
                reason: format!("listing: {e}"),
            })
    }

    /// Creates every table of [`LakeTable::ALL`] that does not exist yet, so each is a readable
    /// (if empty) Delta table: a reader opening `quarantine` before any record was quarantined
    /// finds a table, not an empty folder.
    pub async fn ensure_tables(&self) -> Result<(), LakeError> {
        for table in LakeTable::ALL {
            self.table(table).await?;
        }
        Ok(())
    }

    /// Loads one of the cleaners' tables, creating it with its schema if it does not exist.
    pub async fn table(&self, table: LakeTable) -> Result<DeltaTable, LakeError> {
        let name = table.name();
        let existing = self.load(name).await?;
        if existing.version().is_some() {
            return Ok(existing);
        }
        let schema: StructType = table
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| LakeError::delta(name, e.into()))?;
        let created = existing
            .create()
            .with_table_name(name)
            .with_columns(schema.fields().cloned())
            .with_configuration([(
                "delta.setTransactionRetentionDuration",
                Some(TRANSACTION_RETENTION),
            )])
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(t) => {
                self.remember(name, t.clone());
                Ok(t)
            }
            // Another writer created it between our look and our create: use theirs.
            Err(DeltaTableError::VersionAlreadyExists(_)) => {
                let t = self.load(name).await?;
                Ok(t)
            }
            Err(e) => Err(LakeError::delta(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{lock, parse_storage_options, Lake};
    use crate::{Input, LakeRow, LakeTable, Position};
    use shared::RecordType;

    #[tokio::test]
    async fn an_append_keeps_the_txns_its_commit_added_and_the_state_it_started_from() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let input = |app_id: &str| Input {
            app_id: app_id.to_string(),
            rows: vec![LakeRow {
                position: Position::from_int(1),
                source: app_id.into(),
                row: shared::clean_record(RecordType::Pin, br#"{"index": 1}"#)
                    .unwrap()
                    .row,
            }],
            ..Input::default()
        };
        for (app_id, version) in [("test:a", 1), ("test:b", 2)] {
            let report = lake.append(&[input(app_id)]).await.unwrap();
            assert_eq!(report.tables[&LakeTable::Pin].version, Some(version));
            // The state is not rebuilt after the commit (the next load reads the commit, with
            // any other writer's); its `txn`s are known without reading it again.
            let known = lock(&lake.loaded).get("pin").and_then(|t| t.version());
            assert_eq!(known, Some(version - 1));
            let txns_known = lock(&lake.txn_logs).get("pin").map(|log| log.version);
            assert_eq!(txns_known, Some(version));
        }
    }

    #[test]
    fn storage_options_from_the_environment_are_key_value_pairs() {
        assert_eq!(
            parse_storage_options(" max_retries=2, retry_timeout = 5s ,").unwrap(),
            vec![
                ("max_retries".to_string(), "2".to_string()),
                ("retry_timeout".to_string(), "5s".to_string())
            ]
        );
        assert_eq!(
            parse_storage_options("max_retries").unwrap_err(),
            "LAKE_STORAGE_OPTIONS entry `max_retries` is not key=value (e.g. max_retries=3)"
        );
    }
}
