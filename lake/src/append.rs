//! Exactly-once appends: one commit per table for a whole invocation's inputs.
//!
//! Every input (an S3 object, a Kinesis shard's slice of a batch, an MSK Connect file) has an
//! application id, and each of its rows a [`Position`]. A commit records, in the same Delta
//! commit as the rows, what it wrote per app id as `txn` actions, in one of two ways
//! ([`Bookkeeping`]): the highest position (see [`crate::position`]) for inputs read in order,
//! or the set of committed offsets (see [`crate::offsets`]) for the files of a Kafka
//! topic-partition, which S3 announces in any order. Several inputs may share an app id (the
//! files of one partition); they are planned together. Before writing, rows the table already
//! holds are skipped, so replaying an input — a retried Lambda, a repeated S3 notification, an
//! overlapping Kinesis batch — adds nothing. What the table holds is read once per table per
//! commit ([`crate::committed`]), so planning costs one log replay whatever the number of
//! inputs. Two writers committing the same app id at once conflict in delta-rs' conflict
//! checker; the loser reloads, finds its rows committed, and skips them. Writers of different
//! inputs never conflict: delta-rs retries the commit on the new version, so no commit is lost.
//!
//! Within one commit, whole-row duplicates of the cleaned columns are written once.

use crate::batch::{quarantine_batch, CleanColumns, ColumnsBuilder};
use crate::committed::CommittedTransactions;
use crate::offsets::OffsetRanges;
use crate::position::Position;
use crate::schema::{LakeTable, QuarantineRow};
use crate::table::{Lake, LakeError};
use chrono::Utc;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Transaction};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::table::state::DeltaTableState;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use hashbrown::hash_table::{Entry, HashTable};
use shared::CleanRow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How many times a commit that lost a race on the same input is re-planned.
const MAX_REPLANS: usize = 8;

/// A cleaned row, where it came from, and its position within its input.
#[derive(Debug, Clone)]
pub struct LakeRow {
    /// Its place in its input: line number, Kafka offset or Kinesis sequence number.
    pub position: Position,
    /// Shared by all the rows of one object on the batch path, so a row costs no copy of it.
    pub source: Arc<str>,
    /// The cleaned record.
    pub row: CleanRow,
}

/// How the Delta log records what an app id has committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bookkeeping {
    /// The highest position written: items at or below it count as committed. For inputs read
    /// in order (the lines of one object, a Kinesis shard's sequence numbers).
    #[default]
    Watermark,
    /// The set of positions written, as ranges: an item counts as committed only if its own
    /// position was. For offsets that may arrive in any order (the files of one Kafka
    /// topic-partition); positions must fit an `i64`.
    Offsets,
}

/// One input of an invocation: its rows and quarantined records, all under one app id.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Identifies the input in the Delta log (e.g. `s3:<key>@<etag>`, `kinesis:<stream>/<shard>`,
    /// `msk:<topic>+<partition>`). Inputs of one invocation may share an app id.
    pub app_id: String,
    /// How the app id's progress is kept.
    pub bookkeeping: Bookkeeping,
    /// The cleaned rows, in any order.
    pub rows: Vec<LakeRow>,
    /// Cleaned rows already laid out column by column: how a cleaner that builds columns as it
    /// cleans hands them over. Appended as `rows` are, in this order.
    pub columns: Vec<CleanColumns>,
    /// Quarantined records with their positions.
    pub quarantine: Vec<(Position, QuarantineRow)>,
    /// The app id an earlier release named the same input by, if it named it differently: a
    /// table that holds nothing under `app_id` but holds this id counts what it holds as this
    /// input's (and what this input adds is recorded under `app_id`).
    pub earlier_app_id: Option<String>,
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
    /// One report per table the append touched.
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
    /// Records read.
    pub records_in: usize,
    /// Rows committed to the data tables.
    pub rows_written: usize,
    /// Records committed to the quarantine table.
    pub quarantined: usize,
    /// Rows equal to another row of the same commit, written once.
    pub duplicates_skipped: usize,
    /// Records skipped because their input was already committed.
    pub already_committed: usize,
    /// Data-quality warnings raised while cleaning: values it could not read (such as a
    /// `follower_count` of `"lots"`) were set to null and their records kept.
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
    earlier: Option<&'a str>,
    bookkeeping: Bookkeeping,
    items: Vec<(Position, T)>,
    /// For [`Bookkeeping::Offsets`]: every offset the input holds, whichever table its item
    /// goes to. A table committing the input records all of them, so the records that went to
    /// another table (a quarantined one among a partition's rows) leave no gap in its ranges.
    covered: Option<&'a OffsetRanges>,
}

/// Each input's items for one table (those `items` picks), as shares; inputs with none left out.
/// `covered` holds, per input, the offsets it covers (for inputs kept as offset sets).
fn shares<'a, T>(
    inputs: &'a [Input],
    covered: &'a [Option<OffsetRanges>],
    items: impl Fn(usize, &'a Input) -> Vec<(Position, T)>,
) -> Vec<Share<'a, T>> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| Share {
            app_id: &input.app_id,
            earlier: input.earlier_app_id.as_deref(),
            bookkeeping: input.bookkeeping,
            items: items(i, input),
            covered: covered.get(i).and_then(Option::as_ref),
        })
        .filter(|s| !s.items.is_empty())
        .collect()
}

/// Every offset an input kept as an offset set holds, in any of its tables (`None` for inputs
/// kept by watermark). Exact for any table: the items at an offset are the same record each
/// time it is delivered, so they always go to the same table, and a table that records an
/// offset its items do not use records only that there is nothing there for it.
fn covered_offsets(input: &Input, built: &[CleanColumns]) -> Option<OffsetRanges> {
    if input.bookkeeping != Bookkeeping::Offsets {
        return None;
    }
    let mut offsets: Vec<i64> = input
        .columns
        .iter()
        .chain(built)
        .flat_map(|c| c.positions().iter())
        .chain(input.rows.iter().map(|r| &r.position))
        .chain(input.quarantine.iter().map(|(p, _)| p))
        .map(|p| p.to_i64().unwrap_or(i64::MAX))
        .collect();
    offsets.sort_unstable();
    let mut ranges = OffsetRanges::default();
    // In ascending order each offset extends the last range or starts one after it.
    for offset in offsets {
        ranges.insert(offset);
    }
    Some(ranges)
}

/// A commit's data files, built: each file's record batches, the rows they hold, the
/// duplicates left out, and how the files are to be written.
struct Built {
    files: Vec<Vec<RecordBatch>>,
    rows: usize,
    duplicates: usize,
    properties: WriterProperties,
    /// No other commit of the append runs beside this one, so its files may be written on the
    /// calling thread.
    alone: bool,
}

/// What a commit writes: the items not committed yet and the `txn` actions recording them.
struct Plan<T> {
    pending: Vec<T>,
    txns: Vec<Transaction>,
    /// Items the table already holds.
    already_committed: usize,
    /// Items at a position another item of the same app id already took in this invocation
    /// (the same input delivered twice in one batch): written once.
    repeated: usize,
}

/// Decides which items of `shares` are new to a table holding `committed`, and the `txn`
/// actions that record them. Shares of the same app id are planned together.
fn plan<'a, T: Copy>(
    shares: &[Share<'a, T>],
    committed: &CommittedTransactions,
    now_ms: i64,
) -> Plan<T> {
    // Shares grouped by app id, in app id order; most app ids have one share.
    let mut by_app: BTreeMap<&str, Vec<&Share<'a, T>>> = BTreeMap::new();
    for share in shares {
        by_app.entry(share.app_id).or_default().push(share);
    }
    let mut out = Plan {
        pending: Vec::new(),
        txns: Vec::new(),
        already_committed: 0,
        repeated: 0,
    };
    let version = |id: &str| committed.version(id);
    for (app_id, group) in by_app {
        let items = || group.iter().flat_map(|s| s.items.iter().copied());
        let earlier = group.iter().find_map(|s| s.earlier);
        let count = group.iter().map(|s| s.items.len()).sum();
        match group[0].bookkeeping {
            Bookkeeping::Watermark => {
                let mark = Position::from_transactions(app_id, version)
                    .or_else(|| Position::from_transactions(earlier?, version));
                // Items in strictly rising order (an object's lines, a shard's records) cannot
                // repeat a position, so only items out of order are checked against a set.
                let rising = items().zip(items().skip(1)).all(|((a, _), (b, _))| a < b);
                let mut seen: FastSet<Position> = fast_set(if rising { 0 } else { count });
                let mut high: Option<Position> = None;
                for (p, item) in items() {
                    if mark.is_some_and(|c| p <= c) {
                        out.already_committed += 1;
                    } else if !rising && !seen.insert(p) {
                        out.repeated += 1;
                    } else {
                        high = high.max(Some(p));
                        out.pending.push(item);
                    }
                }
                if let Some(high) = high {
                    // Never move a watermark backwards, even if items arrive out of order.
                    let high = mark.map_or(high, |c| c.max(high));
                    out.txns.extend(high.to_transactions(app_id, now_ms));
                }
            }
            Bookkeeping::Offsets => {
                let mut seen: FastSet<Position> = fast_set(count);
                let mut ranges = OffsetRanges::from_transactions(app_id, version);
                for (p, item) in items() {
                    let offset = p.to_i64().unwrap_or(i64::MAX);
                    if ranges.contains(offset) {
                        out.already_committed += 1;
                    } else if !seen.insert(p) {
                        out.repeated += 1;
                    } else {
                        out.pending.push(item);
                    }
                }
                // `seen` holds exactly the positions taken into this commit; the commit also
                // records the offsets of the same inputs that other tables hold.
                if !seen.is_empty() {
                    for p in &seen {
                        ranges.insert(p.to_i64().unwrap_or(i64::MAX));
                    }
                    for covered in group.iter().filter_map(|s| s.covered) {
                        for (lo, hi) in covered.ranges() {
                            ranges.insert_range(*lo, *hi);
                        }
                    }
                    out.txns.extend(ranges.to_transactions(app_id, now_ms));
                }
            }
        }
    }
    out
}

impl Lake {
    /// True when any table of the lake has committed an app id that `matches` (one log replay
    /// per table): for telling whether an earlier release wrote the lake.
    pub async fn holds_app_id(&self, matches: impl Fn(&str) -> bool) -> Result<bool, LakeError> {
        for table in LakeTable::ALL {
            let delta = self.load(table.name()).await?;
            if delta.version().is_none() {
                continue;
            }
            if self
                .committed_transactions(table.name(), &delta)
                .await?
                .app_ids()
                .any(&matches)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends the inputs' rows and quarantine rows, one commit per table, exactly once per
    /// (app id, position) per table. The data tables (pin, geo, user) are committed
    /// concurrently, each in its own Delta log, and the quarantine table after them, once they
    /// all committed. On a failure the error says which tables were committed, and a retry of
    /// the same inputs completes the rest without writing anything twice.
    pub async fn append(&self, inputs: &[Input]) -> Result<AppendReport, AppendError> {
        let ingested_at = Utc::now();
        // Rows handed over one by one are laid out as columns first, as the cleaners that
        // build columns hand theirs over.
        let built: Vec<Vec<CleanColumns>> = inputs
            .iter()
            .map(|input| columns_of_rows(&input.rows))
            .collect::<Result<_, _>>()
            .map_err(|(table, source)| {
                AppendError::new(&AppendReport::default(), table, arrow_error(table, source))
            })?;
        let covered: Vec<Option<OffsetRanges>> = inputs
            .iter()
            .zip(&built)
            .map(|(input, built)| covered_offsets(input, built))
            .collect();
        let data: Vec<(LakeTable, Vec<Share<'_, RowRef<'_>>>)> =
            [LakeTable::Pin, LakeTable::Geo, LakeTable::User]
                .into_iter()
                .map(|table| {
                    let shares = shares(inputs, &covered, |i, input| {
                        input
                            .columns
                            .iter()
                            .chain(&built[i])
                            .filter(|c| c.table() == table)
                            .flat_map(|columns| {
                                columns
                                    .positions()
                                    .iter()
                                    .enumerate()
                                    .map(move |(row, p)| (*p, RowRef::new(columns, row)))
                            })
                            .collect()
                    });
                    (table, shares)
                })
                .filter(|(_, shares)| !shares.is_empty())
                .collect();
        let tables = data.len();
        let commits = data.iter().map(|(table, shares)| async move {
            let table = *table;
            let committed = self
                .commit_share(table, shares, |rows| {
                    let (unique, duplicates) = distinct_rows(rows);
                    let (files, sources_repeat) =
                        data_files(&unique, file_parts(unique.len(), tables), ingested_at)
                            .map_err(|source| arrow_error(table, source))?;
                    Ok(Built {
                        files,
                        rows: unique.len(),
                        duplicates,
                        properties: writer_properties(table, sources_repeat),
                        alone: tables == 1,
                    })
                })
                .await;
            (table, committed)
        });
        let mut report = AppendReport::default();
        let mut failed = None;
        // In table order, so the first failure reported is the same whichever finished first.
        for (table, committed) in futures::future::join_all(commits).await {
            match committed {
                Ok(r) => {
                    report.tables.insert(table, r);
                }
                Err(source) => {
                    failed.get_or_insert((table, source));
                }
            }
        }
        if let Some((table, source)) = failed {
            return Err(AppendError::new(&report, table, source));
        }
        let shares = shares(inputs, &covered, |_, input| {
            input.quarantine.iter().map(|(p, q)| (*p, q)).collect()
        });
        if !shares.is_empty() {
            let r = self
                .commit_share(LakeTable::Quarantine, &shares, |rows| {
                    let batch = quarantine_batch(rows)
                        .map_err(|source| arrow_error(LakeTable::Quarantine, source))?;
                    Ok(Built {
                        files: vec![vec![batch]],
                        rows: rows.len(),
                        duplicates: 0,
                        properties: writer_properties(LakeTable::Quarantine, false),
                        alone: true,
                    })
                })
                .await
                .map_err(|source| AppendError::new(&report, LakeTable::Quarantine, source))?;
            report.tables.insert(LakeTable::Quarantine, r);
        }
        Ok(report)
    }

    /// Commits the not-yet-committed items of `shares` to `table` in one commit, with a `txn`
    /// per app id, re-planning if a concurrent writer committed one of the same app ids.
    async fn commit_share<T: Copy>(
        &self,
        table: LakeTable,
        shares: &[Share<'_, T>],
        build: impl Fn(&[T]) -> Result<Built, LakeError>,
    ) -> Result<TableReport, LakeError> {
        let name = table.name();
        let mut attempt = 0;
        loop {
            let mut delta = self.table_for_append(table).await?;
            tracing::debug!(table = name, version = delta.version(), "table loaded");
            let committed = self.committed_transactions(name, &delta).await?;
            tracing::debug!(
                table = name,
                app_ids = committed.len(),
                "committed positions read"
            );
            let Plan {
                pending,
                txns,
                already_committed,
                repeated,
            } = plan(shares, &committed, Utc::now().timestamp_millis());
            if pending.is_empty() {
                tracing::info!(
                    table = name,
                    already_committed,
                    "inputs already committed; nothing to write"
                );
                return Ok(TableReport {
                    already_committed,
                    duplicates_skipped: repeated,
                    ..TableReport::default()
                });
            }
            let Built {
                files,
                rows: rows_written,
                duplicates,
                properties,
                alone,
            } = build(&pending)?;
            let duplicates_skipped = duplicates + repeated;
            tracing::debug!(
                table = name,
                rows = rows_written,
                files = files.len(),
                "planned and built; writing"
            );
            match write_and_commit(&delta, &properties, files, alone, txns.clone()).await {
                Ok((version, state)) => {
                    // The state after the commit when delta-rs computed it, or else the one
                    // before it, which the next load brings up to date; and the `txn`s the
                    // commit added, so the next append to this table reads none of them again.
                    if let Some(state) = state {
                        delta.state = Some(state);
                    }
                    self.remember(name, delta);
                    self.remember_own_txns(name, version, txns);
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

/// An append that failed part-way: the tables that were committed, and why one failed.
#[derive(Debug, thiserror::Error)]
#[error("committing to `{}` failed: {source}", failed.name())]
pub struct AppendError {
    /// The tables that were committed (a retry skips their rows).
    pub committed: AppendReport,
    /// The table whose commit failed (the first in table order, if several did). A data table's
    /// failure leaves the other data tables as they ended; quarantine is not attempted then.
    pub failed: LakeTable,
    /// The error of the failed table's commit.
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

/// Writes each file's batches as a Parquet file, all files at once (Parquet encoding and
/// compression are most of a commit's time), commits them with the given `txn` actions, and
/// returns the version committed, with the table's state at it when the commit computed that
/// (to write a checkpoint). A local table's files are written straight into its directory
/// ([`crate::datafile`]); any other table's through delta-rs' writer.
async fn write_and_commit(
    table: &DeltaTable,
    properties: &WriterProperties,
    files: Vec<Vec<RecordBatch>>,
    alone: bool,
    txns: Vec<Transaction>,
) -> Result<(u64, Option<DeltaTableState>), DeltaTableError> {
    let adds: Vec<Action> = match crate::datafile::local_dir(table) {
        // The calling thread writes a file itself and starts a thread for each other one. Run
        // on the blocking pool instead, a file's thread often waited for the core the caller
        // had just left (the scheduler queues a woken thread where its waker ran) while the
        // other core idled, and a commit's files were written one after another.
        Some(dir) if alone => write_local(&dir, &files, properties)?,
        // Beside the append's other commits: off the calling thread, which builds their files.
        Some(dir) => {
            let properties = properties.clone();
            tokio::task::spawn_blocking(move || write_local(&dir, &files, &properties))
                .await
                .map_err(|e| DeltaTableError::Generic(format!("writing a data file: {e}")))??
        }
        None => {
            let runtime = tokio::runtime::Handle::current();
            let mut writes = Vec::with_capacity(files.len());
            for batches in files {
                let mut writer =
                    RecordBatchWriter::for_table(table)?.with_writer_properties(properties.clone());
                let runtime = runtime.clone();
                // Each file on a thread of the blocking pool, so the files are encoded at once.
                writes.push(tokio::task::spawn_blocking(move || {
                    runtime.block_on(async move {
                        for batch in batches {
                            writer.write(batch).await?;
                        }
                        writer.flush().await
                    })
                }));
            }
            let mut adds = Vec::new();
            for write in writes {
                let written = write
                    .await
                    .map_err(|e| DeltaTableError::Generic(format!("writing a data file: {e}")))??;
                adds.extend(written.into_iter().map(Action::Add));
            }
            adds
        }
    };
    tracing::debug!(files = adds.len(), "data files written; committing");
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    let properties = without_log_cleanup().with_application_transactions(txns);
    let snapshot = table.snapshot()?;
    let committed = CommitBuilder::from(properties)
        .with_actions(adds)
        .build(Some(snapshot), table.log_store(), operation)
        .into_prepared_commit_future()
        .await?
        .await?;
    // What delta-rs runs after a commit rebuilds the table's state at the new version from the
    // list of all its files, a cost that grows with the table, to create a checkpoint every
    // `checkpointInterval` commits. Only a commit due a checkpoint runs it; after any other,
    // the next load reads the commit as it reads other writers' (which a stream's next batch
    // does while it cleans).
    let (version, interval) = (
        committed.version,
        snapshot.table_config().checkpoint_interval(),
    );
    if !(version + 1).is_multiple_of(interval.get()) {
        return Ok((version, None));
    }
    match committed.await {
        Ok(finalized) => Ok((version, Some(finalized.snapshot))),
        // The rows are committed: a missing checkpoint only makes the log longer to read until
        // the next one (the daily maintenance writes one).
        Err(e) => {
            tracing::warn!(version, error = %e, "committed, but the checkpoint due at this version was not written");
            Ok((version, None))
        }
    }
}

/// Writes each file's batches into the local table directory `dir`, all files at once: one on
/// the calling thread, each other one on a thread of its own.
fn write_local(
    dir: &std::path::Path,
    files: &[Vec<RecordBatch>],
    properties: &WriterProperties,
) -> Result<Vec<Action>, DeltaTableError> {
    shared::parallel::map_chunks(files, files.len(), |part| {
        part.iter()
            .map(|batches| crate::datafile::write(dir, batches, properties.clone()))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .map(|add| add.map(Action::Add))
    .collect()
}

/// Properties of this project's commits: no expired-log cleanup after the commit. delta-rs'
/// cleanup lists the whole `_delta_log` on every commit, a cost that grows with the log
/// (thousands of listed pages per commit on S3 for a busy stream over the 30 days of
/// retention); the daily maintenance expires old log files once, after its checkpoint.
pub(crate) fn without_log_cleanup() -> CommitProperties {
    CommitProperties::default().with_cleanup_expired_logs(Some(false))
}

/// How the data files of `table` are written: Snappy, as Spark and DuckDB write by default,
/// except for `unique_id`, whose random hex ids Snappy shrinks by a tenth at most; dictionaries
/// only for the columns with few distinct values (`_source` among them only when
/// `sources_repeat`: the rows of an object share theirs, a stream's records each have their
/// own); min/max statistics per row group (what Delta's file statistics and the readers'
/// pruning use) but not per page, which would compare every long text value again, and none
/// for free text ([`LakeTable::free_text_columns`]), which no reader prunes by; row groups
/// of 128 Ki rows, as DuckDB writes, so a reader can split a large file.
pub(crate) fn writer_properties(table: LakeTable, sources_repeat: bool) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("pinpipe {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(128 * 1024));
    if table == LakeTable::Pin {
        builder = builder
            .set_column_compression(ColumnPath::from("unique_id"), Compression::UNCOMPRESSED);
    }
    for column in table.free_text_columns() {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    for column in table.dictionary_columns() {
        if *column != "_source" || sources_repeat {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), true);
        }
    }
    builder.build()
}

/// Rows from which one commit's batch is written as several files in parallel.
const PARALLEL_WRITE_ROWS: usize = 50_000;

/// Rows from which the batch of a commit that is the append's only data commit (a Kinesis
/// batch of one stream) is written as several files in parallel: with no other table's commit
/// to run beside it, one file would leave every core but one idle while it is encoded.
const PARALLEL_WRITE_ROWS_ALONE: usize = 8_000;

/// How many files a commit of `rows` data rows writes, when `tables` data tables are committed
/// at once: one per core for a large commit, so its Arrow batches are built and encoded in
/// parallel; one for a small one, since many small files cost readers more than the parallel
/// work saves.
fn file_parts(rows: usize, tables: usize) -> usize {
    let threshold = if tables == 1 {
        PARALLEL_WRITE_ROWS_ALONE
    } else {
        PARALLEL_WRITE_ROWS
    };
    if rows >= threshold {
        shared::parallel::cores()
    } else {
        1
    }
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

/// A hash set for the per-batch position checks: they hash every item of every batch, and
/// SipHash's resistance to crafted collisions buys nothing here (a batch is hashed once, with a
/// per-process seed) while costing several percent of batch-clean's time.
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

fn fast_set<T>(capacity: usize) -> FastSet<T> {
    HashSet::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
}

fn arrow_error(table: LakeTable, source: deltalake::arrow::error::ArrowError) -> LakeError {
    LakeError::Arrow {
        table: table.name().into(),
        source,
    }
}

/// One row of some [`CleanColumns`].
#[derive(Debug, Clone, Copy)]
struct RowRef<'a> {
    columns: &'a CleanColumns,
    row: u32,
}

impl<'a> RowRef<'a> {
    fn new(columns: &'a CleanColumns, row: usize) -> Self {
        RowRef {
            columns,
            // A batch of more than 4 billion rows does not fit in memory first.
            row: u32::try_from(row).unwrap_or(u32::MAX),
        }
    }

    fn hash(&self) -> u64 {
        self.columns.hash(self.row as usize)
    }

    fn same_values(&self, other: &RowRef<'_>) -> bool {
        self.columns
            .same_values(self.row as usize, other.columns, other.row as usize)
    }
}

/// `rows` (of one input), column by column per table; an error names the table a row of
/// another type was found in.
fn columns_of_rows(
    rows: &[LakeRow],
) -> Result<Vec<CleanColumns>, (LakeTable, deltalake::arrow::error::ArrowError)> {
    let mut builders: Vec<ColumnsBuilder> = Vec::new();
    for row in rows {
        let record_type = row.row.record_type();
        let builder = match builders.iter().position(|b| b.record_type() == record_type) {
            Some(i) => &mut builders[i],
            None => {
                builders.push(ColumnsBuilder::new(record_type, rows.len(), 0));
                let last = builders.len() - 1;
                &mut builders[last]
            }
        };
        builder
            .push(row.position, &row.row.view(), &[&row.source])
            .map_err(|e| (LakeTable::of(record_type), e))?;
    }
    Ok(builders.into_iter().map(ColumnsBuilder::finish).collect())
}

/// Rows from which the duplicates of a commit are looked for on every core.
const PARALLEL_DISTINCT_ROWS: usize = 20_000;

/// The distinct rows (first occurrence kept, in order) and how many duplicates were dropped.
/// Rows were hashed as they were built; equal hashes are told apart by comparing the values.
/// Equal rows have equal hashes, so a large commit's rows are split by hash into one part per
/// core, each searched for its duplicates on a thread of its own.
fn distinct_rows<'a>(rows: &[RowRef<'a>]) -> (Vec<RowRef<'a>>, usize) {
    let parts = if rows.len() >= PARALLEL_DISTINCT_ROWS {
        shared::parallel::cores()
    } else {
        1
    };
    let part_ids: Vec<u64> = (0..parts as u64).collect();
    let repeats: Vec<Vec<usize>> = shared::parallel::map_chunks(&part_ids, parts, |ids| {
        ids.iter()
            .flat_map(|part| repeats_in_part(rows, *part, parts as u64))
            .collect()
    });
    let duplicates: usize = repeats.iter().map(Vec::len).sum();
    if duplicates == 0 {
        return (rows.to_vec(), 0);
    }
    let mut keep = vec![true; rows.len()];
    for i in repeats.into_iter().flatten() {
        keep[i] = false;
    }
    let unique = rows
        .iter()
        .zip(keep)
        .filter_map(|(row, keep)| keep.then_some(*row))
        .collect();
    (unique, duplicates)
}

/// The indexes of the rows of part `part` (of `parts`, by hash) that repeat an earlier row.
/// The part is taken from bits of the hash that the hash table's own probing does not use.
fn repeats_in_part(rows: &[RowRef<'_>], part: u64, parts: u64) -> Vec<usize> {
    let in_part = |hash: u64| (hash >> 40) % parts == part;
    // Each row seen with its whole hash: the table matches candidates on 7 bits of it, and
    // comparing the values of every such candidate cost more than the rest of the search.
    let mut seen: HashTable<(u64, usize)> =
        HashTable::with_capacity(rows.len() / parts as usize + 1);
    let mut repeats = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let hash = row.hash();
        if !in_part(hash) {
            continue;
        }
        let same = |(h, j): &(u64, usize)| *h == hash && rows[*j].same_values(row);
        match seen.entry(hash, same, |(h, _)| *h) {
            Entry::Occupied(_) => repeats.push(i),
            Entry::Vacant(slot) => {
                slot.insert((hash, i));
            }
        }
    }
    repeats
}

/// The record batches of `rows`, split into `parts` files of about equal rows, and whether
/// rows mostly share their `_source` with the row before. Consecutive rows of the same columns
/// make one batch; columns taken whole are shared, not copied, and a batch that straddles two
/// files is sliced, not copied.
fn data_files(
    rows: &[RowRef<'_>],
    parts: usize,
    ingested_at: chrono::DateTime<Utc>,
) -> Result<(Vec<Vec<RecordBatch>>, bool), deltalake::arrow::error::ArrowError> {
    let parts = parts.max(1);
    let per_file = rows.len().div_ceil(parts).max(1);
    let mut files: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut in_file = 0;
    let mut start = 0;
    // Sources changing from one row to the next, estimated from each run's share of its
    // columns' changes.
    let mut source_changes = 0;
    while start < rows.len() {
        let columns = rows[start].columns;
        let run = rows[start..]
            .iter()
            .take_while(|r| std::ptr::eq(r.columns, columns))
            .count();
        source_changes += columns.source_changes() * run / columns.len().max(1);
        let picked: Vec<u32> = rows[start..start + run].iter().map(|r| r.row).collect();
        let whole =
            run == columns.len() && picked.iter().enumerate().all(|(i, r)| *r as usize == i);
        let batch = columns.batch((!whole).then_some(picked.as_slice()), ingested_at)?;
        let mut offset = 0;
        while offset < run {
            if in_file >= per_file && files.len() < parts {
                files.push(Vec::new());
                in_file = 0;
            }
            let room = if files.len() < parts {
                per_file - in_file
            } else {
                run - offset
            };
            let take = room.min(run - offset);
            if let Some(file) = files.last_mut() {
                file.push(batch.slice(offset, take));
            }
            in_file += take;
            offset += take;
        }
        start += run;
    }
    Ok((files, source_changes * 4 < rows.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share<'a>(
        app_id: &'a str,
        bookkeeping: Bookkeeping,
        items: &'a [(i64, u32)],
    ) -> Share<'a, u32> {
        Share {
            app_id,
            earlier: None,
            bookkeeping,
            items: items
                .iter()
                .map(|(p, item)| (Position::from_int(*p), *item))
                .collect(),
            covered: None,
        }
    }

    fn committed_after(plan: &Plan<u32>) -> CommittedTransactions {
        plan.txns
            .iter()
            .map(|t| (t.app_id.clone(), t.version))
            .collect()
    }

    #[test]
    fn a_watermark_skips_what_is_at_or_below_it() {
        let items = [(1, 10), (2, 20), (3, 30)];
        let first = plan(
            &[share("s3:a@e", Bookkeeping::Watermark, &items[..2])],
            &CommittedTransactions::default(),
            0,
        );
        assert_eq!(
            (&first.pending, first.already_committed),
            (&vec![10, 20], 0)
        );
        let committed = committed_after(&first);
        assert_eq!(committed.version("s3:a@e"), Some(2));
        let again = plan(
            &[share("s3:a@e", Bookkeeping::Watermark, &items)],
            &committed,
            0,
        );
        assert_eq!((again.pending, again.already_committed), (vec![30], 2));
    }

    #[test]
    fn offsets_of_one_partition_in_any_order_and_any_grouping_land_once() {
        // Ten one-record files of one partition, delivered shuffled over four invocations, one
        // of them twice.
        let files: Vec<[(i64, u32); 1]> = (0..10).map(|o| [(o, o as u32)]).collect();
        let deliveries: [&[usize]; 4] = [&[7, 2], &[9, 0, 5, 5], &[2, 1, 8, 3], &[4, 6, 7, 0]];
        let mut committed = CommittedTransactions::default();
        let mut landed = Vec::new();
        for delivery in deliveries {
            let shares: Vec<_> = delivery
                .iter()
                .map(|f| share("msk:t.pin+0", Bookkeeping::Offsets, &files[*f]))
                .collect();
            let p = plan(&shares, &committed, 0);
            landed.extend(p.pending.iter().copied());
            // Everything not landed is either already committed or a repeat in this batch.
            assert_eq!(
                p.pending.len() + p.already_committed + p.repeated,
                delivery.len()
            );
            let mut all: Vec<(String, i64)> = committed_entries(&committed);
            all.extend(p.txns.iter().map(|t| (t.app_id.clone(), t.version)));
            committed = all.into_iter().collect();
        }
        landed.sort();
        assert_eq!(landed, (0..10).collect::<Vec<u32>>());
        // Bookkeeping ends as one range: the count and its two bounds.
        let ranges = OffsetRanges::from_transactions("msk:t.pin+0", |id| committed.version(id));
        assert_eq!(ranges.ranges(), &[(0, 9)]);
    }

    fn committed_entries(c: &CommittedTransactions) -> Vec<(String, i64)> {
        (0..64)
            .map(|i| format!("msk:t.pin+0#{i}"))
            .chain(["msk:t.pin+0".to_string()])
            .filter_map(|id| c.version(&id).map(|v| (id, v)))
            .collect()
    }

    #[test]
    fn inputs_of_different_app_ids_are_planned_apart() {
        let a = [(1, 1)];
        let b = [(1, 2)];
        let committed: CommittedTransactions = [("s3:a@e".to_string(), 1)].into_iter().collect();
        let p = plan(
            &[
                share("s3:a@e", Bookkeeping::Watermark, &a),
                share("s3:b@e", Bookkeeping::Watermark, &b),
            ],
            &committed,
            0,
        );
        assert_eq!(
            (p.pending, p.already_committed, p.txns.len()),
            (vec![2], 1, 1)
        );
    }
}
