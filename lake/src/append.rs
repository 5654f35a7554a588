//! Exactly-once appends: one commit per table for a whole invocation's inputs.
//!
//! Every input (an S3 object, a Kinesis shard's slice of a batch) has an application id, and
//! each of its rows a [`Position`]. A commit records, in the same Delta commit as the rows, the
//! highest position written per app id as `txn` actions (see [`crate::position`]). Before writing, rows at or below the position
//! the table already holds for their app id are skipped, so replaying an input — a retried
//! Lambda, a repeated S3 notification, an overlapping Kinesis batch — adds nothing. Two
//! writers committing the same app id at once conflict in delta-rs' conflict checker; the loser
//! reloads, finds its rows committed, and skips them. Writers of different inputs never
//! conflict: delta-rs retries the commit on the new version, so no commit is lost.
//!
//! Within one commit, whole-row duplicates of the cleaned columns are written once.

use crate::batch::{data_batch, quarantine_batch, SourcedRow};
use crate::position::Position;
use crate::schema::{LakeTable, QuarantineRow};
use crate::table::{Lake, LakeError};
use chrono::Utc;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use shared::CleanRow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How many times a commit that lost a race on the same input is re-planned.
const MAX_REPLANS: usize = 8;

/// Delta-log lookups run at once while planning a commit. Each holds one of tokio's blocking
/// threads (512 by default) while delta-rs reads the log, and reading a local table needs another
/// blocking thread; with every thread holding a lookup, nothing reads the log and the append
/// hangs. Sixteen keeps the pool far from that and the log reads overlapped.
const LOOKUPS_AT_ONCE: usize = 16;

/// A cleaned row, where it came from, and its position within its input.
#[derive(Debug, Clone)]
pub struct LakeRow {
    pub position: Position,
    /// Shared by all the rows of one object on the batch path, so a row costs no copy of it.
    pub source: Arc<str>,
    pub row: CleanRow,
}

/// One input of an invocation: its rows and quarantined records, all under one app id.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Identifies the input in the Delta log (e.g. `s3:<key>@<etag>`, `kinesis:<stream>/<shard>`).
    pub app_id: String,
    pub rows: Vec<LakeRow>,
    /// Quarantined records with their positions.
    pub quarantine: Vec<(Position, QuarantineRow)>,
}

/// What one table's commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    /// The version committed, if anything was new.
    pub version: Option<u64>,
    /// Rows written.
    pub rows_written: usize,
    /// Rows equal to another row of the same commit, written once.
    pub duplicates_skipped: usize,
    /// Rows skipped because their input was already committed to this table.
    pub already_committed: usize,
}

/// What an append did, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub tables: BTreeMap<LakeTable, TableReport>,
}

impl AppendReport {
    /// Rows written to the data tables (not quarantine).
    pub fn rows_written(&self) -> usize {
        self.sum(|t, r| (t != LakeTable::Quarantine).then_some(r.rows_written))
    }

    /// Rows written to the quarantine table.
    pub fn quarantined(&self) -> usize {
        self.sum(|t, r| (t == LakeTable::Quarantine).then_some(r.rows_written))
    }

    /// Whole-row duplicates written once.
    pub fn duplicates_skipped(&self) -> usize {
        self.sum(|_, r| Some(r.duplicates_skipped))
    }

    /// Rows (and quarantine rows) skipped because they were committed before.
    pub fn already_committed(&self) -> usize {
        self.sum(|_, r| Some(r.already_committed))
    }

    fn sum(&self, f: impl Fn(LakeTable, &TableReport) -> Option<usize>) -> usize {
        self.tables.iter().filter_map(|(t, r)| f(*t, r)).sum()
    }
}

/// The counts every cleaning invocation reports, whichever path it serves. When the lake could
/// be written, `records_in = rows_written + duplicates_skipped + quarantined + already_committed`
/// (a replayed input counts as already committed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanCounts {
    pub records_in: usize,
    pub rows_written: usize,
    pub quarantined: usize,
    pub duplicates_skipped: usize,
    pub already_committed: usize,
    pub quality_warnings: usize,
}

impl CleanCounts {
    /// Adds what an append (or the committed part of a failed one) wrote.
    pub fn add_append(&mut self, append: &AppendReport) {
        self.rows_written += append.rows_written();
        self.quarantined += append.quarantined();
        self.duplicates_skipped += append.duplicates_skipped();
        self.already_committed += append.already_committed();
    }

    /// The counts published as CloudWatch metrics.
    pub fn metrics(&self) -> [(&'static str, u64); 5] {
        [
            ("RecordsIn", self.records_in as u64),
            ("RowsWritten", self.rows_written as u64),
            ("Quarantined", self.quarantined as u64),
            ("DuplicatesSkipped", self.duplicates_skipped as u64),
            ("AlreadyCommitted", self.already_committed as u64),
        ]
    }
}

impl std::ops::AddAssign<&CleanCounts> for CleanCounts {
    fn add_assign(&mut self, c: &CleanCounts) {
        self.records_in += c.records_in;
        self.rows_written += c.rows_written;
        self.quarantined += c.quarantined;
        self.duplicates_skipped += c.duplicates_skipped;
        self.already_committed += c.already_committed;
        self.quality_warnings += c.quality_warnings;
    }
}

/// One table's share of the inputs: per app id, its items for this table.
struct Share<'a, T> {
    app_id: &'a str,
    items: Vec<(Position, &'a T)>,
}

impl Lake {
    /// Appends the inputs' rows and quarantine rows, one commit per table, exactly once per
    /// (app id, position) per table. Tables are written one after the other (pin, geo, user,
    /// quarantine); on a failure the error says which were committed, and a retry of the same
    /// inputs completes the rest without writing anything twice.
    pub async fn append(&self, inputs: &[Input]) -> Result<AppendReport, AppendError> {
        let ingested_at = Utc::now();
        let mut report = AppendReport::default();
        for table in [LakeTable::Pin, LakeTable::Geo, LakeTable::User] {
            let shares: Vec<Share<'_, LakeRow>> = inputs
                .iter()
                .map(|input| Share {
                    app_id: &input.app_id,
                    items: input
                        .rows
                        .iter()
                        .filter(|r| LakeTable::of(r.row.record_type()) == table)
                        .map(|r| (r.position, r))
                        .collect(),
                })
                .filter(|s| !s.items.is_empty())
                .collect();
            if shares.is_empty() {
                continue;
            }
            let r = self
                .commit_share(table, &shares, |rows| {
                    let (unique, duplicates) = distinct_rows(rows);
                    let batch = data_batch(table, &unique, ingested_at).map_err(|source| {
                        LakeError::Arrow {
                            table: table.name().into(),
                            source,
                        }
                    })?;
                    Ok((batch, unique.len(), duplicates))
                })
                .await
                .map_err(|source| AppendError::new(&report, table, source))?;
            report.tables.insert(table, r);
        }
        let shares: Vec<Share<'_, QuarantineRow>> = inputs
            .iter()
            .map(|input| Share {
                app_id: &input.app_id,
                items: input.quarantine.iter().map(|(p, q)| (*p, q)).collect(),
            })
            .filter(|s| !s.items.is_empty())
            .collect();
        if !shares.is_empty() {
            let r = self
                .commit_share(LakeTable::Quarantine, &shares, |rows| {
                    let batch = quarantine_batch(rows).map_err(|source| LakeError::Arrow {
                        table: LakeTable::Quarantine.name().into(),
                        source,
                    })?;
                    Ok((batch, rows.len(), 0))
                })
                .await
                .map_err(|source| AppendError::new(&report, LakeTable::Quarantine, source))?;
            report.tables.insert(LakeTable::Quarantine, r);
        }
        Ok(report)
    }

    /// Commits the not-yet-committed items of `shares` to `table` in one commit, with a `txn`
    /// per app id, re-planning if a concurrent writer committed one of the same app ids.
    async fn commit_share<T>(
        &self,
        table: LakeTable,
        shares: &[Share<'_, T>],
        build: impl Fn(&[&T]) -> Result<(deltalake::arrow::array::RecordBatch, usize, usize), LakeError>,
    ) -> Result<TableReport, LakeError> {
        let name = table.name();
        let total: usize = shares.iter().map(|s| s.items.len()).sum();
        let mut attempt = 0;
        loop {
            let delta = self.table(table).await?;
            let mut pending: Vec<&T> = Vec::new();
            let mut txns = Vec::new();
            let now_ms = Utc::now().timestamp_millis();
            let lookups: Vec<_> = shares
                .iter()
                .map(|share| committed_position(&delta, share.app_id))
                .collect();
            let committed: Vec<Option<Position>> = futures::stream::iter(lookups)
                .buffered(LOOKUPS_AT_ONCE)
                .try_collect()
                .await?;
            for (share, committed) in shares.iter().zip(committed) {
                let new: Vec<(Position, &T)> = share
                    .items
                    .iter()
                    .filter(|(p, _)| committed.is_none_or(|c| *p > c))
                    .copied()
                    .collect();
                if let Some(high) = new.iter().map(|(p, _)| *p).max() {
                    // Never move a watermark backwards, even if items arrive out of order.
                    let high = committed.map_or(high, |c| c.max(high));
                    txns.extend(high.to_transactions(share.app_id, now_ms));
                    pending.extend(new.into_iter().map(|(_, item)| item));
                }
            }
            let already_committed = total - pending.len();
            if pending.is_empty() {
                tracing::info!(
                    table = name,
                    already_committed,
                    "inputs already committed; nothing to write"
                );
                return Ok(TableReport {
                    already_committed,
                    ..TableReport::default()
                });
            }
            let (batch, rows_written, duplicates_skipped) = build(&pending)?;
            match write_and_commit(&delta, batch, txns).await {
                Ok(version) => {
                    tracing::info!(
                        table = name,
                        version,
                        rows_written,
                        duplicates_skipped,
                        already_committed,
                        "committed"
                    );
                    return Ok(TableReport {
                        version: Some(version),
                        rows_written,
                        duplicates_skipped,
                        already_committed,
                    });
                }
                Err(e) if is_same_input_race(&e) && attempt < MAX_REPLANS => {
                    attempt += 1;
                    tracing::warn!(
                        table = name,
                        attempt,
                        "a concurrent writer committed the same input; re-planning"
                    );
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                }
                Err(e) => return Err(LakeError::delta(name, e)),
            }
        }
    }
}

/// The highest position committed to `table` for `app_id`, if any (and not yet expired).
pub async fn committed_position(
    table: &DeltaTable,
    app_id: &str,
) -> Result<Option<Position>, LakeError> {
    let name = table.table_url().to_string();
    let state = table.snapshot().map_err(|e| LakeError::delta(&name, e))?;
    let log_store = table.log_store();
    let version = |id: String| {
        let log_store = log_store.clone();
        let name = name.clone();
        async move {
            state
                .transaction_version(log_store.as_ref(), id)
                .await
                .map_err(|e| LakeError::delta(&name, e))
        }
    };
    let own = version(app_id.to_string()).await?;
    Position::from_transactions(app_id, own, version).await
}

/// An append that failed part-way: the tables committed before the failure, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("committing to `{}` failed: {source}", failed.name())]
pub struct AppendError {
    /// The tables committed before the failure (a retry skips their rows).
    pub committed: AppendReport,
    /// The table whose commit failed; the tables after it were not attempted.
    pub failed: LakeTable,
    #[source]
    pub source: LakeError,
}

impl AppendError {
    fn new(committed: &AppendReport, failed: LakeTable, source: LakeError) -> Self {
        AppendError {
            committed: committed.clone(),
            failed,
            source,
        }
    }

    /// True when `table`'s rows were committed before the failure.
    pub fn is_committed(&self, table: LakeTable) -> bool {
        self.committed.tables.contains_key(&table)
    }
}

/// Writes one batch as Parquet and commits it with the given `txn` actions.
async fn write_and_commit(
    table: &DeltaTable,
    batch: deltalake::arrow::array::RecordBatch,
    txns: Vec<Transaction>,
) -> Result<u64, DeltaTableError> {
    let mut writer = RecordBatchWriter::for_table(table)?;
    writer.write(batch).await?;
    let adds: Vec<Action> = writer.flush().await?.into_iter().map(Action::Add).collect();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    let finalized =
        CommitBuilder::from(CommitProperties::default().with_application_transactions(txns))
            .with_actions(adds)
            .build(Some(table.snapshot()?), table.log_store(), operation)
            .await?;
    Ok(finalized.version())
}

/// True when a commit failed because another writer committed one of the same app ids.
fn is_same_input_race(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction)
        }
    )
}

/// The distinct rows (first occurrence kept, in order) and how many duplicates were dropped.
fn distinct_rows<'a>(rows: &[&'a LakeRow]) -> (Vec<SourcedRow<'a>>, usize) {
    let mut seen: HashSet<&CleanRow> = HashSet::with_capacity(rows.len());
    let unique: Vec<SourcedRow<'a>> = rows
        .iter()
        .filter(|r| seen.insert(&r.row))
        .map(|r| SourcedRow {
            row: &r.row,
            source: &r.source,
        })
        .collect();
    let duplicates = rows.len() - unique.len();
    (unique, duplicates)
}
