//! What a table has committed: the latest `txn` version of every application id, read from the
//! Delta log in one pass.
//!
//! delta-rs answers one app id at a time, and an app id the log does not hold costs a replay of
//! the whole log (checkpoint and commits). Planning an append asks about every input of an
//! invocation, so asking one by one costs (inputs) × (log size). Reading every `txn` action once
//! per table per append keeps the cost at one log replay, whatever the number of inputs; a
//! [`crate::Lake`] that read a table's log before reads only the commits made since.
//!
//! The rules are the Delta protocol's, as delta-kernel applies them: the newest `txn` per app id
//! wins (commits newest first, then the checkpoint), and one whose `lastUpdated` is older than
//! the table's `delta.setTransactionRetentionDuration` counts as absent.

use crate::table::LakeError;
use delta_kernel::schema::{DataType, SchemaRef, StructField, StructType};
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::kernel::engine::arrow_data::ArrowEngineData;
use deltalake::{DeltaTable, DeltaTableError};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The latest unexpired `txn` version of every application id in a table's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedTransactions {
    versions: HashMap<String, i64>,
}

impl CommittedTransactions {
    /// The version committed for `app_id`, if any.
    pub fn version(&self, app_id: &str) -> Option<i64> {
        self.versions.get(app_id).copied()
    }

    /// Every application id the log holds.
    pub fn app_ids(&self) -> impl Iterator<Item = &str> {
        self.versions.keys().map(String::as_str)
    }

    /// How many application ids the log holds.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// True when the log holds no application ids.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

impl FromIterator<(String, i64)> for CommittedTransactions {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        CommittedTransactions {
            versions: iter.into_iter().collect(),
        }
    }
}

/// Only the `txn` column of the log is read.
static TXN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let txn = StructType::try_new([
        StructField::new("appId", DataType::STRING, false),
        StructField::new("version", DataType::LONG, false),
        StructField::new("lastUpdated", DataType::LONG, true),
    ])
    .map(|txn| StructField::new("txn", DataType::Struct(Box::new(txn)), true));
    match txn.and_then(|txn| StructType::try_new([txn])) {
        Ok(schema) => Arc::new(schema),
        // The field names are distinct constants: this cannot fail.
        Err(_) => Arc::new(StructType::new_unchecked([])),
    }
});

/// Every app id's newest `txn` action in a table's log up to one version, before the table's
/// transaction retention is applied: app id → (version, `lastUpdated`).
#[derive(Debug, Clone, Default)]
pub struct TxnLog {
    /// The table version read up to (inclusive).
    pub(crate) version: u64,
    latest: HashMap<String, (i64, Option<i64>)>,
}

impl TxnLog {
    /// Takes `txn`, from a commit newer than any read so far, as its app id's newest.
    fn add(&mut self, txn: deltalake::kernel::Transaction) {
        self.latest
            .insert(txn.app_id, (txn.version, txn.last_updated));
    }

    /// The app ids' versions, less those whose `lastUpdated` is older than `table`'s
    /// `delta.setTransactionRetentionDuration`.
    fn unexpired(&self, table: &DeltaTable) -> CommittedTransactions {
        let retention = table
            .snapshot()
            .ok()
            .and_then(|s| s.table_config().set_transaction_retention_duration);
        let expires_before =
            retention.map(|d| chrono::Utc::now().timestamp_millis() - d.as_millis() as i64);
        self.latest
            .iter()
            .filter(|(_, (_, updated))| !matches!((expires_before, updated), (Some(e), Some(u)) if *u <= e))
            .map(|(app_id, (version, _))| (app_id.clone(), *version))
            .collect()
    }
}

/// The latest unexpired `txn` version of every app id in `table`'s log, at the version loaded:
/// one replay of the log (its last checkpoint and the commits since).
pub async fn committed_transactions(
    table: &DeltaTable,
) -> Result<CommittedTransactions, LakeError> {
    Ok(read_txn_log(table).await?.unexpired(table))
}

impl crate::Lake {
    /// [`committed_transactions`] of the lake's table `name`, loaded as `table`: only the
    /// commits made since this handle last read the table's `txn` actions are read (on S3, a
    /// request per commit rather than a replay of the log from its last checkpoint). The log
    /// is replayed whole when it was not read before, or when a commit since is missing.
    pub(crate) async fn committed_transactions(
        &self,
        name: &str,
        table: &DeltaTable,
    ) -> Result<CommittedTransactions, LakeError> {
        let Some(version) = table.version() else {
            return Ok(CommittedTransactions::default());
        };
        // Taken out rather than copied (a table's log holds an entry per object of the last
        // days), and put back brought up to date.
        let cached = crate::table::lock(&self.txn_logs).remove(name);
        let (log, newer) = match cached {
            Some(log) if log.version == version => (log, None),
            Some(log) if log.version < version => match read_commits_since(table, log).await? {
                Some(log) => (log, None),
                None => (read_txn_log(table).await?, None),
            },
            // None read yet, or one read at a later version than `table`'s (kept as it is).
            newer => (read_txn_log(table).await?, newer),
        };
        let committed = log.unexpired(table);
        let keep = newer.unwrap_or(log);
        let mut logs = crate::table::lock(&self.txn_logs);
        if logs
            .get(name)
            .is_none_or(|known| known.version < keep.version)
        {
            logs.insert(name.to_string(), keep);
        }
        Ok(committed)
    }

    /// Adds the `txns` of this handle's own commit at `version` to the table's `txn` log as
    /// last read, when that log ends just before it (so no other writer's commit is skipped);
    /// otherwise the next read reads the commit as any other.
    pub(crate) fn remember_own_txns(
        &self,
        name: &str,
        version: u64,
        txns: Vec<deltalake::kernel::Transaction>,
    ) {
        let mut logs = crate::table::lock(&self.txn_logs);
        if let Some(log) = logs.get_mut(name).filter(|log| log.version + 1 == version) {
            txns.into_iter().for_each(|txn| log.add(txn));
            log.version = version;
        }
    }
}

/// `log` brought up to `table`'s version by reading the commits after it; `None` when one of
/// them is not in the log (cleaned up after a checkpoint, or the table recreated).
async fn read_commits_since(
    table: &DeltaTable,
    mut log: TxnLog,
) -> Result<Option<TxnLog>, LakeError> {
    let name = table.table_url().to_string();
    let Some(version) = table.version() else {
        return Ok(None);
    };
    for v in log.version + 1..=version {
        let commit = table
            .log_store()
            .read_commit_entry(v)
            .await
            .map_err(|e| LakeError::delta(&name, e))?;
        let Some(commit) = commit else {
            return Ok(None);
        };
        let actions =
            deltalake::logstore::get_actions(v, &commit).map_err(|e| LakeError::delta(&name, e))?;
        for action in actions {
            if let deltalake::kernel::Action::Txn(txn) = action {
                log.add(txn);
            }
        }
    }
    log.version = version;
    Ok(Some(log))
}

/// Every app id's newest `txn` in `table`'s log at the version loaded, by a replay of the log.
async fn read_txn_log(table: &DeltaTable) -> Result<TxnLog, LakeError> {
    let name = table.table_url().to_string();
    let Some(version) = table.version() else {
        return Ok(TxnLog::default());
    };
    let engine = table.log_store().engine(None);
    let root = table.table_url().clone();
    let read = move || -> Result<TxnLog, delta_kernel::Error> {
        let snapshot = delta_kernel::Snapshot::builder_for(root)
            .at_version(version)
            .build(engine.as_ref())?;
        let mut latest: HashMap<String, (i64, Option<i64>)> = HashMap::new();
        for batch in snapshot
            .log_segment()
            .read_actions(engine.as_ref(), TXN_SCHEMA.clone())?
        {
            let data = ArrowEngineData::try_from_engine_data(batch?.actions)?;
            collect_txns(data.record_batch(), &mut latest);
        }
        Ok(TxnLog { version, latest })
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| LakeError::delta(&name, DeltaTableError::Generic(e.to_string())))?
        .map_err(|e| LakeError::delta(&name, DeltaTableError::KernelError(e)))
}

/// Adds the batch's `txn` actions to `latest`, keeping an app id's first (newest) one.
fn collect_txns(
    batch: &deltalake::arrow::array::RecordBatch,
    latest: &mut HashMap<String, (i64, Option<i64>)>,
) {
    let Some(txn) = batch.column_by_name("txn").and_then(|c| c.as_struct_opt()) else {
        return;
    };
    let (Some(app_ids), Some(versions), Some(updated)) = (
        txn.column_by_name("appId")
            .and_then(|c| c.as_string_opt::<i32>()),
        txn.column_by_name("version")
            .and_then(|c| c.as_primitive_opt::<Int64Type>()),
        txn.column_by_name("lastUpdated")
            .and_then(|c| c.as_primitive_opt::<Int64Type>()),
    ) else {
        return;
    };
    for i in 0..txn.len() {
        if txn.is_null(i) || app_ids.is_null(i) || versions.is_null(i) {
            continue;
        }
        let last_updated = (!updated.is_null(i)).then(|| updated.value(i));
        latest
            .entry(app_ids.value(i).to_string())
            .or_insert((versions.value(i), last_updated));
    }
}
