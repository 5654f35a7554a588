//! run-queries: the daily run that replaces the original Airflow DAG (SPEC §8). It runs every
//! analytics query and writes each result as a Delta table under `results/`, then maintains
//! the `pin`, `geo`, `user` and `quarantine` tables (de-duplicate, compact, checkpoint,
//! vacuum) and the result tables (checkpoint, vacuum), and writes a JSON summary of the run to `_runs/` in the lake.
//!
//! One failing query or table does not stop the others; the run as a whole fails, naming them,
//! so the schedule's retry fires.

#![warn(missing_docs)]

use chrono::Utc;
use lake::maintenance::{MaintenanceError, MaintenanceReport};
use lake::queries::{run_queries, QueryError, QueryResult, QueryRun, QUERIES};
use lake::report::{ReportError, REPORT_PATH};
use lake::{Lake, LakeTable};
use serde::Serialize;
use std::time::Duration;

/// What the daily run needs.
#[derive(Debug, Clone)]
pub struct RunQueriesDeps {
    /// The lake the queries read and the results go to.
    pub lake: Lake,
    /// Vacuum retention: unreferenced files older than this are deleted.
    pub retention: Duration,
}

/// How maintenance of one table went.
#[derive(Debug, Clone, Serialize)]
pub struct TableMaintenance {
    /// The table.
    pub table: &'static str,
    /// What maintenance did, when it succeeded.
    pub report: Option<MaintenanceReport>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl TableMaintenance {
    fn of(table: &'static str, outcome: Result<MaintenanceReport, MaintenanceError>) -> Self {
        match outcome {
            Ok(report) => TableMaintenance {
                table,
                report: Some(report),
                error: None,
            },
            Err(e) => {
                tracing::error!(table, error = %e, "maintenance failed");
                TableMaintenance {
                    table,
                    report: None,
                    error: Some(e.to_string()),
                }
            }
        }
    }
}

/// The whole daily run, as written to `_runs/<start time>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    /// Every query's outcome.
    pub queries: QueryRun,
    /// Every table's maintenance.
    pub maintenance: Vec<TableMaintenance>,
    /// Where the summary was written, relative to the lake root.
    pub summary: String,
}

impl DailyReport {
    /// The queries and tables that failed.
    pub fn failures(&self) -> Vec<String> {
        let mut failed: Vec<String> = self
            .queries
            .failed()
            .iter()
            .map(|q| q.to_string())
            .collect();
        failed.extend(
            self.maintenance
                .iter()
                .filter(|m| m.error.is_some())
                .map(|m| format!("maintenance of {}", m.table)),
        );
        failed
    }

    /// The counts published as CloudWatch metrics for the run.
    pub fn metrics(&self) -> [(&'static str, u64); 3] {
        let duplicates_removed: usize = self
            .maintenance
            .iter()
            .filter_map(|m| m.report.as_ref())
            .map(|r| r.duplicates_removed)
            .sum();
        [
            ("Queries", self.queries.queries.len() as u64),
            ("Failures", self.failures().len() as u64),
            ("DuplicatesRemoved", duplicates_removed as u64),
        ]
    }
}

/// Why the daily run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunQueriesError {
    /// Some queries or tables failed; the others completed and the summary says which.
    #[error("daily run incomplete, failed: {}; see {summary} in the lake", failed.join(", "))]
    Incomplete {
        /// The queries and tables that failed.
        failed: Vec<String>,
        /// Where the summary was written, relative to the lake root.
        summary: String,
        /// The whole run.
        report: Box<DailyReport>,
    },
    /// The lake could not be opened at all.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The lake's tables could not be created.
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
}

impl RunQueriesError {
    /// The run's metrics: those of the incomplete run, or one failure when the lake could
    /// not be opened.
    pub fn metrics(&self) -> [(&'static str, u64); 3] {
        match self {
            RunQueriesError::Incomplete { report, .. } => report.metrics(),
            RunQueriesError::Query(_) | RunQueriesError::Lake(_) => {
                [("Queries", 0), ("Failures", 1), ("DuplicatesRemoved", 0)]
            }
        }
    }
}

impl RunQueriesError {
    /// The `errorType` Lambda reports, so an alarm can tell a partial run from an outage:
    /// `Incomplete` (some queries or tables failed, the rest completed; the summary in `_runs/`
    /// names them and the schedule's retry runs everything again), `Unavailable` (the lake could
    /// not be read or its tables created; nothing ran).
    pub fn error_type(&self) -> &'static str {
        match self {
            RunQueriesError::Incomplete { .. } => "Incomplete",
            RunQueriesError::Query(_) | RunQueriesError::Lake(_) => "Unavailable",
        }
    }
}

impl From<RunQueriesError> for lambda_runtime::Diagnostic {
    fn from(e: RunQueriesError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("RunQueries.{}", e.error_type()),
            error_message: e.to_string(),
        }
    }
}

/// Writes the report page of `results` and the lake's health to [`REPORT_PATH`].
async fn write_report(lake: &Lake, results: &[QueryResult]) -> Result<(), ReportError> {
    let page = lake.report(results).await?;
    lake.put_file(REPORT_PATH, page.into_bytes()).await?;
    Ok(())
}

/// Runs the queries, writes their results, maintains the tables, writes the summary and then
/// the report.
pub async fn handle(deps: &RunQueriesDeps) -> Result<DailyReport, RunQueriesError> {
    // Every table exists from the first run on, empty or not, for any reader.
    deps.lake.ensure_tables().await?;
    let (queries, results) = run_queries(&deps.lake, &QUERIES, true).await?;
    let mut maintenance = Vec::new();
    for table in LakeTable::ALL {
        let outcome = deps.lake.maintain(table, deps.retention).await;
        maintenance.push(TableMaintenance::of(table.name(), outcome));
    }
    // Each run overwrites the result tables: their superseded files are vacuumed too (those
    // whose write failed this run are already reported, and left as they are).
    let failed = queries.failed();
    for query in QUERIES.iter().filter(|q| !failed.contains(&q.name)) {
        let outcome = deps.lake.maintain_result(query.name, deps.retention).await;
        maintenance.push(TableMaintenance::of(query.name, outcome));
    }
    let summary = format!("_runs/{}.json", queries.started_at.format("%Y%m%dT%H%M%SZ"));
    let report = DailyReport {
        queries,
        maintenance,
        summary: summary.clone(),
    };
    match serde_json::to_vec_pretty(&report) {
        Ok(bytes) => {
            if let Err(e) = deps.lake.put_file(&summary, bytes).await {
                tracing::error!(error = %e, "writing the run summary failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "serialising the run summary failed"),
    }
    let mut failed = report.failures();
    // The report is drawn last, so its health section includes this run's summary.
    if let Err(e) = write_report(&deps.lake, &results).await {
        tracing::error!(error = %e, "writing the report failed");
        failed.push(format!("the report ({REPORT_PATH}): {e}"));
    }
    tracing::info!(summary = %summary, report = REPORT_PATH, failed = failed.len(), at = %Utc::now(), "daily run finished");
    if failed.is_empty() {
        Ok(report)
    } else {
        Err(RunQueriesError::Incomplete {
            failed,
            summary,
            report: Box::new(report),
        })
    }
}
