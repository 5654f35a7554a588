//! Table maintenance (SPEC §7, §8): the daily run rewrites each table without whole-row
//! duplicates of its SPEC columns (a record a client sent twice, or that came down both
//! paths), compacts small files, writes a checkpoint, deletes the log files the checkpoint
//! covers once they are older than the table's log retention (appends leave them, so a commit
//! never lists the whole log), and vacuums files no longer referenced once they are older than
//! the retention.
//!
//! Rewrites are ordinary Delta commits: readers see the table before or after, the `txn`
//! bookkeeping that makes appends exactly once is kept, and a concurrent append makes the
//! rewrite fail with a conflict (to be retried next run) rather than lose the append.

use crate::append::without_log_cleanup;
use crate::schema::LakeTable;
use crate::table::{Lake, LakeError};
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::operations::optimize::OptimizeType;
use deltalake::protocol::SaveMode;
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableError};
use serde::Serialize;
use std::time::Duration;

/// Default vacuum retention: files unreferenced for longer than this are deleted.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What maintenance did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// The table, relative to the lake root.
    pub table: String,
    /// Rows before de-duplication.
    pub rows_before: usize,
    /// Rows after it.
    pub rows_after: usize,
    /// Whole-row duplicates dropped (the first arrival of each row is kept).
    pub duplicates_removed: usize,
    /// Data files before compaction.
    pub files_before: usize,
    /// Data files after it.
    pub files_after: usize,
    /// The table's version after maintenance; `None` when the table does not exist.
    pub version: Option<u64>,
    /// The version the checkpoint was written at, if one was.
    pub checkpoint_version: Option<u64>,
    /// Files the vacuum deleted (only files older than the retention).
    pub files_vacuumed: usize,
}

/// Why maintenance of a table failed.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The table could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A Delta operation failed.
    #[error("maintaining `{table}` ({step}): {source}")]
    Delta {
        /// The table, relative to the lake root.
        table: String,
        /// The step that failed: compacting, checkpointing, expiring log files or vacuuming.
        step: &'static str,
        /// What delta-rs said.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// The query finding duplicates failed.
    #[error("maintaining `{table}` (finding duplicates): {source}")]
    DataFusion {
        /// The table, relative to the lake root.
        table: String,
        /// What DataFusion said.
        #[source]
        source: Box<deltalake::datafusion::error::DataFusionError>,
    },
}

fn active_files(table: &DeltaTable) -> usize {
    table
        .snapshot()
        .map(|s| s.log_data().into_iter().count())
        .unwrap_or(0)
}

impl Lake {
    /// Maintains one table: de-duplicates, compacts, checkpoints and vacuums it. A table that
    /// does not exist yet is left alone.
    pub async fn maintain(
        &self,
        table: LakeTable,
        retention: Duration,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let name = table.name();
        let delta = self.load(name).await?;
        let mut report = MaintenanceReport {
            table: name.to_string(),
            ..MaintenanceReport::default()
        };
        if delta.version().is_none() {
            return Ok(report);
        }
        report.files_before = active_files(&delta);
        let delta = deduplicate(delta, table, &mut report).await?;
        let delta = compact(delta, name).await?;
        checkpoint_and_vacuum(delta, name, retention, &mut report).await?;
        tracing::info!(table = name, ?report, "maintained");
        Ok(report)
    }

    /// Maintains the result table of query `name` (`results/<name>/`): each daily run
    /// overwrites it, so the superseded files are vacuumed once older than the retention,
    /// and the log is checkpointed. A result not written yet is left alone.
    pub async fn maintain_result(
        &self,
        name: &str,
        retention: Duration,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let path = format!("results/{name}");
        let delta = self.load(&path).await?;
        let mut report = MaintenanceReport {
            table: path.clone(),
            ..MaintenanceReport::default()
        };
        if delta.version().is_none() {
            return Ok(report);
        }
        report.files_before = active_files(&delta);
        checkpoint_and_vacuum(delta, &path, retention, &mut report).await?;
        tracing::info!(table = %path, ?report, "maintained");
        Ok(report)
    }
}

/// A failed Delta step of maintaining `table`.
fn delta_err(table: &str, step: &'static str) -> impl FnOnce(DeltaTableError) -> MaintenanceError {
    let table = table.to_string();
    move |source| MaintenanceError::Delta {
        table,
        step,
        source: Box::new(source),
    }
}

/// A failed query while maintaining `table`.
fn df_err(table: &str) -> impl FnOnce(DataFusionError) -> MaintenanceError {
    let table = table.to_string();
    move |source| MaintenanceError::DataFusion {
        table,
        source: Box::new(source),
    }
}

/// Whole-row duplicates of the SPEC columns are rewritten away, keeping each row's first
/// arrival; the exactly-once bookkeeping in the log is untouched.
async fn deduplicate(
    delta: DeltaTable,
    table: LakeTable,
    report: &mut MaintenanceReport,
) -> Result<DeltaTable, MaintenanceError> {
    let name = table.name();
    let ctx = SessionContext::new();
    delta
        .update_datafusion_session(&ctx.state())
        .map_err(delta_err(name, "reading"))?;
    let provider = delta.table_provider().await.map_err(df_err(name))?;
    ctx.register_table("t", provider).map_err(df_err(name))?;
    let spec = quoted(table.spec_columns().iter());
    let (rows, distinct) = row_counts(&ctx, &spec, name).await?;
    report.rows_before = rows;
    report.rows_after = rows;
    if distinct >= rows {
        return Ok(delta);
    }
    let batches = first_arrivals(&ctx, table, &spec).await?;
    let delta = delta
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_commit_properties(without_log_cleanup())
        .await
        .map_err(delta_err(name, "rewriting without duplicates"))?;
    report.rows_after = distinct;
    report.duplicates_removed = rows - distinct;
    Ok(delta)
}

/// `"a", "b", …`: column names quoted for SQL.
fn quoted<'a>(columns: impl Iterator<Item = &'a String>) -> String {
    columns
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of table `t` in `ctx`, and how many are distinct over the columns `spec`.
async fn row_counts(
    ctx: &SessionContext,
    spec: &str,
    name: &str,
) -> Result<(usize, usize), MaintenanceError> {
    let counts = ctx
        .sql(&format!("SELECT COUNT(*) AS n, (SELECT COUNT(*) FROM (SELECT DISTINCT {spec} FROM t) d) AS distinct_n FROM t"))
        .await
        .map_err(df_err(name))?
        .collect()
        .await
        .map_err(df_err(name))?;
    Ok(counts
        .first()
        .map(|b| {
            let row = crate::read::batch_to_rows(b)
                .into_iter()
                .next()
                .unwrap_or_default();
            let get = |k: &str| row.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            (get("n"), get("distinct_n"))
        })
        .unwrap_or((0, 0)))
}

/// Each distinct row of table `t` (over `spec`) at its first arrival, in the table's own types.
async fn first_arrivals(
    ctx: &SessionContext,
    table: LakeTable,
    spec: &str,
) -> Result<Vec<RecordBatch>, MaintenanceError> {
    let name = table.name();
    let order = if table == LakeTable::Quarantine {
        "\"quarantined_at\""
    } else {
        "\"_ingested_at\", \"_source\""
    };
    let schema = table.schema();
    let all = quoted(schema.fields().iter().map(|f| f.name()));
    let sql = format!(
        "SELECT {all} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {spec} ORDER BY {order}) AS first_arrival FROM t) ranked WHERE first_arrival = 1"
    );
    let batches: Vec<RecordBatch> = ctx
        .sql(&sql)
        .await
        .map_err(df_err(name))?
        .collect()
        .await
        .map_err(df_err(name))?;
    // The scan may hand strings back as views; write them in the table's own types.
    batches
        .into_iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| deltalake::arrow::compute::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(schema.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MaintenanceError::Delta {
            table: name.to_string(),
            step: "de-duplicating",
            source: Box::new(e.into()),
        })
}

/// Compacts the table's small files.
async fn compact(delta: DeltaTable, name: &str) -> Result<DeltaTable, MaintenanceError> {
    let (compacted, _metrics) = delta
        .optimize()
        .with_type(OptimizeType::Compact)
        // delta-rs' optimize commits with properties of its own (only our app metadata is
        // passed on), so its commit may still expire log files as delta-rs does by default.
        .await
        .map_err(delta_err(name, "compacting"))?;
    Ok(compacted)
}

/// The last steps of maintenance: checkpoint the log (which also drops expired exactly-once
/// bookkeeping), then vacuum files unreferenced for longer than `retention`.
async fn checkpoint_and_vacuum(
    delta: DeltaTable,
    name: &str,
    retention: Duration,
    report: &mut MaintenanceReport,
) -> Result<(), MaintenanceError> {
    let delta_err = |step: &'static str| {
        move |source| MaintenanceError::Delta {
            table: name.to_string(),
            step,
            source: Box::new(source),
        }
    };
    deltalake::checkpoints::create_checkpoint(&delta, None)
        .await
        .map_err(delta_err("checkpointing"))?;
    report.checkpoint_version = delta.version();
    // Appends leave expired log files alone (listing the log on every commit costs too much):
    // they go here, those older than the table's log retention (30 days unless
    // `delta.logRetentionDuration` says otherwise) that a checkpoint covers, unless the table
    // turned `delta.enableExpiredLogCleanup` off.
    let cleanup = delta
        .snapshot()
        .map(|s| s.table_config().enable_expired_log_cleanup())
        .unwrap_or(false);
    if cleanup {
        let expired = deltalake::checkpoints::cleanup_metadata(&delta, None)
            .await
            .map_err(delta_err("expiring log files"))?;
        tracing::debug!(table = name, expired, "expired log files deleted");
    }
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
    let (vacuumed, metrics) = delta
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .with_commit_properties(without_log_cleanup())
        .await
        .map_err(delta_err("vacuuming"))?;
    report.files_vacuumed = metrics.files_deleted.len();
    report.files_after = active_files(&vacuumed);
    report.version = vacuumed.version();
    Ok(())
}
