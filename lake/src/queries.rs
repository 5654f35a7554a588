//! The daily analytics (SPEC §8): ten SQL queries over whole-row-distinct views of the `pin`,
//! `geo` and `user` tables, run by DataFusion through delta-rs, with results written as Delta
//! tables under `results/<query name>/`.
//!
//! Each query is a plain SQL file in `lake/sql/` — readable, and runnable in Spark SQL or
//! DuckDB with at most dialect-level changes once the views of `views.sql` exist. One failing
//! query never stops the others.

use crate::schema::LakeTable;
use crate::table::{Lake, LakeError};
use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// One named analytics query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The result table's name, e.g. `q1_popular_category_by_country`.
    pub name: &'static str,
    /// The SQL text, over the views of [`VIEWS_SQL`].
    pub sql: &'static str,
}

/// The views every query reads: whole-row-distinct SPEC columns of the three tables, named
/// `pin`, `geo` and `users`, over the Delta tables registered as `raw_pin`, `raw_geo`, `raw_user`.
pub const VIEWS_SQL: &str = include_str!("../sql/views.sql");

macro_rules! query {
    ($name:literal) => {
        Query {
            name: $name,
            sql: include_str!(concat!("../sql/", $name, ".sql")),
        }
    };
}

/// Every query, in SPEC order.
pub const QUERIES: [Query; 10] = [
    query!("q1_popular_category_by_country"),
    query!("q2_posts_per_category_per_year"),
    query!("q2b_top_category_per_year"),
    query!("q3a_top_poster_by_country"),
    query!("q3b_country_with_top_poster"),
    query!("q4_popular_category_by_age_group"),
    query!("q5_median_followers_by_age_group"),
    query!("q6_users_joined_per_year"),
    query!("q7_median_followers_by_join_year"),
    query!("q8_median_followers_by_age_group_and_join_year"),
];

/// The query named `name`, if any.
pub fn query(name: &str) -> Option<Query> {
    QUERIES.iter().copied().find(|q| q.name == name)
}

/// Why a query could not run or its result could not be written.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The query failed to plan or run.
    #[error("query `{name}`: {source}")]
    DataFusion {
        /// The query's name (its SQL file's stem).
        name: String,
        /// What DataFusion said.
        #[source]
        source: Box<deltalake::datafusion::error::DataFusionError>,
    },
    /// The result table could not be written.
    #[error("writing results/{name}: {source}")]
    Write {
        /// The query's name; its result table is `results/<name>`.
        name: String,
        /// What delta-rs said.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
}

fn df_err(
    name: &str,
) -> impl FnOnce(deltalake::datafusion::error::DataFusionError) -> QueryError + '_ {
    move |source| QueryError::DataFusion {
        name: name.to_string(),
        source: Box::new(source),
    }
}

/// A query's rows and the schema they have (also when there are none).
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The query's name (its SQL file's stem).
    pub name: &'static str,
    /// The result's columns.
    pub schema: SchemaRef,
    /// The result's rows.
    pub batches: Vec<RecordBatch>,
    /// How long the query took, in milliseconds.
    pub elapsed_ms: u128,
}

impl QueryResult {
    /// How many rows the result has.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The rows as JSON objects, in result order.
    pub fn rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.batches
            .iter()
            .flat_map(crate::read::batch_to_rows)
            .collect()
    }
}

impl Lake {
    /// A DataFusion session with the lake's `pin`, `geo` and `user` tables registered as
    /// `raw_pin`, `raw_geo`, `raw_user` (empty when a table does not exist yet) and the
    /// distinct views of [`VIEWS_SQL`] created over them.
    pub async fn query_session(&self) -> Result<SessionContext, QueryError> {
        let ctx = SessionContext::new();
        for table in [LakeTable::Pin, LakeTable::Geo, LakeTable::User] {
            self.register_raw(&ctx, table, &format!("raw_{}", table.name()))
                .await?;
        }
        for statement in strip_comments(VIEWS_SQL)
            .split(';')
            .filter(|s| !s.trim().is_empty())
        {
            ctx.sql(statement).await.map_err(df_err("views"))?;
        }
        Ok(ctx)
    }

    /// Registers `table` in `ctx` as `name` (an empty table when it does not exist yet).
    pub async fn register_raw(
        &self,
        ctx: &SessionContext,
        table: LakeTable,
        name: &str,
    ) -> Result<(), QueryError> {
        let delta = self.load(table.name()).await?;
        let registered = if delta.version().is_some() {
            delta
                .update_datafusion_session(&ctx.state())
                .map_err(|e| LakeError::delta(table.name(), e))?;
            let provider = delta.table_provider().await.map_err(df_err(table.name()))?;
            ctx.register_table(name, provider)
        } else {
            let empty =
                MemTable::try_new(table.schema(), vec![vec![]]).map_err(df_err(table.name()))?;
            ctx.register_table(name, Arc::new(empty))
        };
        registered.map_err(df_err(table.name()))?;
        Ok(())
    }

    /// Runs one query in `ctx`.
    pub async fn run_query(
        &self,
        ctx: &SessionContext,
        query: Query,
    ) -> Result<QueryResult, QueryError> {
        let start = Instant::now();
        let df = ctx.sql(query.sql).await.map_err(df_err(query.name))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(df_err(query.name))?;
        Ok(QueryResult {
            name: query.name,
            schema,
            batches,
            elapsed_ms: start.elapsed().as_millis(),
        })
    }

    /// Writes a result as the Delta table `results/<name>/`, replacing the previous run's rows
    /// (earlier runs stay in the table's history).
    pub async fn write_result(&self, result: &QueryResult) -> Result<u64, QueryError> {
        let path = format!("results/{}", result.name);
        let table = self.load(&path).await?;
        let batches = if result.batches.is_empty() {
            vec![RecordBatch::new_empty(result.schema.clone())]
        } else {
            result.batches.clone()
        };
        let write_err = |source| QueryError::Write {
            name: result.name.to_string(),
            source: Box::new(source),
        };
        let written = table
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
            .await
            .map_err(write_err)?;
        Ok(written.version().unwrap_or_default())
    }
}

/// How one query went in a run.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOutcome {
    /// The query's name.
    pub name: &'static str,
    /// Rows in its result; `None` when it failed.
    pub rows: Option<usize>,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u128,
    /// The version of `results/<name>` it wrote, when it wrote one.
    pub result_version: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A whole run: every query's outcome, in order.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRun {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long the whole run took, in milliseconds.
    pub elapsed_ms: u128,
    /// Every query's outcome, in the order of `QUERIES`.
    pub queries: Vec<QueryOutcome>,
}

impl QueryRun {
    /// The names of the queries that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.queries
            .iter()
            .filter(|q| q.error.is_some())
            .map(|q| q.name)
            .collect()
    }
}

/// Runs `queries` and, with `write`, stores each result under `results/`. A query that fails
/// is recorded with its error and the others still run. Returns the results that succeeded.
pub async fn run_queries(
    lake: &Lake,
    queries: &[Query],
    write: bool,
) -> Result<(QueryRun, Vec<QueryResult>), QueryError> {
    let started_at = Utc::now();
    let start = Instant::now();
    let ctx = lake.query_session().await?;
    let mut outcomes = Vec::with_capacity(queries.len());
    let mut results = Vec::with_capacity(queries.len());
    for query in queries {
        let outcome = match lake.run_query(&ctx, *query).await {
            Ok(result) => {
                let version = if write {
                    lake.write_result(&result).await.map(Some)
                } else {
                    Ok(None)
                };
                let outcome = QueryOutcome {
                    name: query.name,
                    rows: Some(result.num_rows()),
                    elapsed_ms: result.elapsed_ms,
                    result_version: version.as_ref().ok().copied().flatten(),
                    error: version.err().map(|e| e.to_string()),
                };
                results.push(result);
                outcome
            }
            Err(e) => QueryOutcome {
                name: query.name,
                rows: None,
                elapsed_ms: 0,
                result_version: None,
                error: Some(e.to_string()),
            },
        };
        if let Some(error) = &outcome.error {
            tracing::error!(query = query.name, %error, "query failed");
        } else {
            tracing::info!(
                query = query.name,
                rows = outcome.rows,
                elapsed_ms = outcome.elapsed_ms as u64,
                "query done"
            );
        }
        outcomes.push(outcome);
    }
    Ok((
        QueryRun {
            started_at,
            elapsed_ms: start.elapsed().as_millis(),
            queries: outcomes,
        },
        results,
    ))
}

fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}
