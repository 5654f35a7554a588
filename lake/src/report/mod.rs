//! The report: every query's result as a chart and a table, and the pipeline's health, in one
//! self-contained HTML page.
//!
//! The daily run writes it next to the results (`results/report.html`) and `pinpipe report`
//! writes it on demand. Health is read from the lake itself: rows per table and per day (by
//! `_ingested_at`), quarantined records by error code with a sample of each, the batch path's
//! lag from landing to commit (the landing time is in every raw object's key), and the daily
//! runs' summaries under `_runs/` (timings, failures, duplicates removed by maintenance).

mod chart;
pub mod html;

pub use chart::{number, ChartError};

use crate::queries::{QueryError, QueryResult, QUERIES};
use crate::read::batch_to_rows;
use crate::{Lake, LakeError, LakeTable};
use chrono::{DateTime, NaiveDateTime, Utc};
use deltalake::datafusion::prelude::SessionContext;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where run-queries writes the report, relative to the lake root.
pub const REPORT_PATH: &str = "results/report.html";

/// The tables counted per day, in column order.
const DAY_TABLES: [&str; 4] = ["pin", "geo", "user", "quarantine"];

/// Why the report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A query could not run.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The lake could not be read.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
}

/// One query's result as the page shows it.
#[derive(Debug, Clone)]
pub struct ResultTable {
    /// The query's name (its SQL file's stem).
    pub name: &'static str,
    /// Its heading on the page.
    pub title: String,
    /// Its SQL, shown under the chart.
    pub sql: &'static str,
    /// The result's column names.
    pub columns: Vec<String>,
    /// The result's rows, as the page prints them.
    pub rows: Vec<Vec<Cell>>,
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL `NULL`.
    Null,
    /// Any integer or floating-point value.
    Number(f64),
    /// Anything else, as text.
    Text(String),
}

impl Cell {
    fn of(value: &Value) -> Cell {
        match value {
            Value::Null => Cell::Null,
            Value::Number(n) => n.as_f64().map_or(Cell::Null, Cell::Number),
            Value::String(s) => Cell::Text(s.clone()),
            other => Cell::Text(other.to_string()),
        }
    }

    /// The value as the table prints it.
    pub fn text(&self) -> String {
        match self {
            Cell::Null => "null".to_string(),
            Cell::Number(n) if n.fract() == 0.0 => format!("{n}"),
            Cell::Number(n) => format!("{n:.2}"),
            Cell::Text(s) => s.clone(),
        }
    }

    /// The table cell's class: numbers align right, nulls are dimmed.
    pub fn class(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Number(_) => "num",
            Cell::Text(_) => "text",
        }
    }
}

impl ResultTable {
    /// A query result, titled from the first line of its SQL's leading comment.
    pub fn of(result: &QueryResult) -> ResultTable {
        let sql = QUERIES
            .iter()
            .find(|q| q.name == result.name)
            .map_or("", |q| q.sql);
        let columns: Vec<String> = result
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let rows = result
            .rows()
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| Cell::of(row.get(c).unwrap_or(&Value::Null)))
                    .collect()
            })
            .collect();
        ResultTable {
            name: result.name,
            title: title_of(result.name, sql),
            sql,
            columns,
            rows,
        }
    }

    /// `q1`, `q2b`: the query's number.
    pub fn short_name(&self) -> &str {
        self.name.split('_').next().unwrap_or(self.name)
    }

    /// One bar per row: the last numeric column is the length, the other columns the label.
    pub fn bars(&self) -> Vec<chart::Bar> {
        let Some(value_col) = (0..self.columns.len())
            .rev()
            .find(|&c| self.rows.iter().any(|r| matches!(r[c], Cell::Number(_))))
        else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|row| chart::Bar {
                label: row
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| *c != value_col)
                    .map(|(_, cell)| cell.text())
                    .collect::<Vec<_>>()
                    .join(" · "),
                value: match row[value_col] {
                    Cell::Number(n) => Some(n),
                    _ => None,
                },
            })
            .collect()
    }
}

/// `q1: popular category by country` from `-- q1: the most popular category …`.
fn title_of(name: &str, sql: &str) -> String {
    let comment = sql
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("--"))
        .map(str::trim);
    match comment {
        Some(c) => {
            // The first sentence of the comment.
            let end = c.find(". ").unwrap_or(c.len());
            c[..end].trim_end_matches('.').to_string()
        }
        None => name.to_string(),
    }
}

/// Rows of each table on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRows {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Rows of each of [`DAY_TABLES`], in order.
    pub rows: [u64; 4],
}

impl DayRows {
    /// Rows of the data tables (quarantine left out).
    pub fn data_rows(&self) -> u64 {
        self.rows[..3].iter().sum()
    }
}

/// A table's size.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    /// The table, relative to the lake root.
    pub table: &'static str,
    /// Its row count.
    pub rows: u64,
}

/// Quarantined records of one error code.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineCode {
    /// The error's code (`RecordError::code_of_message`).
    pub code: &'static str,
    /// Records quarantined with it.
    pub count: u64,
    /// Where one of them came from.
    pub sample_source: String,
    /// That record's error message.
    pub sample_error: String,
    /// The sample record, cut to a few hundred characters.
    pub sample_raw: String,
}

/// Lag percentiles, in seconds, over rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    /// Rows the percentiles are over.
    pub rows: u64,
    /// Raw objects those rows came from.
    pub objects: u64,
    /// Median lag.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The longest lag.
    pub max: f64,
}

/// One query of the last daily run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    /// The query's name.
    pub name: String,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

/// One table's maintenance in the last daily run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMaintenance {
    /// The table.
    pub table: String,
    /// rows before, rows after, duplicates removed, files before, files after, files vacuumed.
    pub numbers: [u64; 6],
    /// Why its maintenance failed, if it did.
    pub error: Option<String>,
}

/// The last daily run, from its summary under `_runs/`.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    /// The summary's file name under `_runs/`.
    pub file: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// Each query's time.
    pub queries: Vec<RunQuery>,
    /// Each table's maintenance.
    pub maintenance: Vec<RunMaintenance>,
    /// The queries and tables that failed.
    pub failures: Vec<String>,
}

/// The pipeline's health, as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Each table's row count.
    pub tables: Vec<TableRows>,
    /// Rows landed per day and table.
    pub per_day: Vec<DayRows>,
    /// Quarantined records by error code.
    pub quarantine: Vec<QuarantineCode>,
    /// Landing-to-lake lag on the batch path; `None` when no row has a landing time.
    pub lag: Option<Lag>,
    /// Daily runs found under `_runs/`.
    pub runs: usize,
    /// Duplicates removed by maintenance over all those runs.
    pub duplicates_removed: u64,
    /// The last daily run, if there has been one.
    pub last_run: Option<LastRun>,
}

impl Lake {
    /// The report page for `results` (query results, e.g. those the daily run just wrote)
    /// and the lake's health now.
    pub async fn report(&self, results: &[QueryResult]) -> Result<String, ReportError> {
        let health = self.health().await?;
        let tables: Vec<ResultTable> = results.iter().map(ResultTable::of).collect();
        let now = Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        Ok(html::page(self.root().as_str(), &now, &health, &tables)?)
    }

    /// The pipeline's health, read from the lake.
    pub async fn health(&self) -> Result<Health, ReportError> {
        let ctx = self.query_session().await?;
        self.register_raw(&ctx, LakeTable::Quarantine, "raw_quarantine")
            .await?;

        let mut per_day: BTreeMap<String, [u64; 4]> = BTreeMap::new();
        let by_day = sql_rows(
            &ctx,
            "health: rows per day",
            "SELECT 0 AS t, CAST(CAST(_ingested_at AS DATE) AS VARCHAR) AS day, COUNT(*) AS n FROM raw_pin GROUP BY 2 \
             UNION ALL SELECT 1, CAST(CAST(_ingested_at AS DATE) AS VARCHAR), COUNT(*) FROM raw_geo GROUP BY 2 \
             UNION ALL SELECT 2, CAST(CAST(_ingested_at AS DATE) AS VARCHAR), COUNT(*) FROM raw_user GROUP BY 2 \
             UNION ALL SELECT 3, CAST(CAST(quarantined_at AS DATE) AS VARCHAR), COUNT(*) FROM raw_quarantine GROUP BY 2",
        )
        .await?;
        let mut totals = [0u64; 4];
        for row in &by_day {
            let (Some(t), Some(day), Some(n)) = (int(row, "t"), text(row, "day"), int(row, "n"))
            else {
                continue;
            };
            let t = (t as usize).min(3);
            per_day.entry(day.to_string()).or_default()[t] += n as u64;
            totals[t] += n as u64;
        }
        let tables = DAY_TABLES
            .iter()
            .zip(totals)
            .map(|(table, rows)| TableRows { table, rows })
            .collect();
        let per_day = per_day
            .into_iter()
            .map(|(day, rows)| DayRows { day, rows })
            .collect();

        let quarantine = quarantine_codes(
            &sql_rows(
                &ctx,
                "health: quarantine",
                "SELECT error, COUNT(*) AS n, MIN(source) AS source, MIN(raw) AS raw \
                 FROM raw_quarantine GROUP BY error",
            )
            .await?,
        );

        let lag = lag(&sql_rows(
            &ctx,
            "health: lag",
            "SELECT _source AS source, CAST(_ingested_at AS BIGINT) AS at_us, COUNT(*) AS n FROM ( \
                 SELECT _source, _ingested_at FROM raw_pin UNION ALL \
                 SELECT _source, _ingested_at FROM raw_geo UNION ALL \
                 SELECT _source, _ingested_at FROM raw_user) \
             WHERE _source NOT LIKE 'kinesis:%' GROUP BY 1, 2",
        )
        .await?);

        let (runs, duplicates_removed, last_run) = self.runs().await?;
        Ok(Health {
            tables,
            per_day,
            quarantine,
            lag,
            runs,
            duplicates_removed,
            last_run,
        })
    }

    /// The daily runs' summaries: how many, duplicates removed over all, and the last.
    async fn runs(&self) -> Result<(usize, u64, Option<LastRun>), LakeError> {
        let mut files = self.list_files("_runs/").await?;
        files.retain(|f| f.ends_with(".json"));
        files.sort();
        let mut duplicates = 0;
        let mut last = None;
        for (i, file) in files.iter().enumerate() {
            let Some(bytes) = self.get_file(file).await? else {
                continue;
            };
            let Ok(summary) = serde_json::from_slice::<Value>(&bytes) else {
                tracing::warn!(file, "run summary is not JSON; left out of the report");
                continue;
            };
            let maintenance = summary["maintenance"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            duplicates += maintenance
                .iter()
                .filter_map(|m| m["report"]["duplicates_removed"].as_u64())
                .sum::<u64>();
            if i + 1 == files.len() {
                last = Some(last_run(file, &summary, &maintenance));
            }
        }
        Ok((files.len(), duplicates, last))
    }
}

fn last_run(file: &str, summary: &Value, maintenance: &[Value]) -> LastRun {
    let queries = summary["queries"]["queries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut failures: Vec<String> = queries
        .iter()
        .filter_map(|q| {
            q["error"]
                .as_str()
                .map(|e| format!("{}: {e}", q["name"].as_str().unwrap_or("?")))
        })
        .collect();
    failures.extend(maintenance.iter().filter_map(|m| {
        m["error"]
            .as_str()
            .map(|e| format!("maintenance of {}: {e}", m["table"].as_str().unwrap_or("?")))
    }));
    LastRun {
        file: file.to_string(),
        started_at: summary["queries"]["started_at"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        elapsed_ms: summary["queries"]["elapsed_ms"].as_u64().unwrap_or(0),
        queries: queries
            .iter()
            .map(|q| RunQuery {
                name: q["name"].as_str().unwrap_or("?").to_string(),
                elapsed_ms: q["elapsed_ms"].as_u64().unwrap_or(0),
            })
            .collect(),
        maintenance: maintenance
            .iter()
            .map(|m| {
                let r = &m["report"];
                let n = |k: &str| r[k].as_u64().unwrap_or(0);
                RunMaintenance {
                    table: m["table"].as_str().unwrap_or("?").to_string(),
                    numbers: [
                        n("rows_before"),
                        n("rows_after"),
                        n("duplicates_removed"),
                        n("files_before"),
                        n("files_after"),
                        n("files_vacuumed"),
                    ],
                    error: m["error"].as_str().map(str::to_string),
                }
            })
            .collect(),
        failures,
    }
}

/// Quarantined records grouped by error code, most first, each with its first sample.
fn quarantine_codes(rows: &[Map<String, Value>]) -> Vec<QuarantineCode> {
    const RAW_CHARS: usize = 300;
    let mut codes: BTreeMap<&'static str, QuarantineCode> = BTreeMap::new();
    for row in rows {
        let error = text(row, "error").unwrap_or_default();
        let code = shared::RecordError::code_of_message(error);
        let n = int(row, "n").unwrap_or(0) as u64;
        let source = text(row, "source").unwrap_or_default();
        let entry = codes.entry(code).or_insert_with(|| QuarantineCode {
            code,
            count: 0,
            sample_source: source.to_string(),
            sample_error: error.to_string(),
            sample_raw: text(row, "raw")
                .unwrap_or_default()
                .chars()
                .take(RAW_CHARS)
                .collect(),
        });
        entry.count += n;
    }
    let mut codes: Vec<QuarantineCode> = codes.into_values().collect();
    codes.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(b.code)));
    codes
}

/// Percentiles of (commit time − landing time) over batch-path rows, from (source, commit
/// time, rows) groups; rows whose source names no landing time are left out.
fn lag(rows: &[Map<String, Value>]) -> Option<Lag> {
    let mut lags: Vec<(f64, u64)> = Vec::new();
    let mut objects = std::collections::BTreeSet::new();
    for row in rows {
        let (Some(source), Some(at_us), Some(n)) =
            (text(row, "source"), int(row, "at_us"), int(row, "n"))
        else {
            continue;
        };
        let Some(landed) = landing_time(source) else {
            continue;
        };
        let seconds = (at_us - landed.timestamp_micros()) as f64 / 1e6;
        lags.push((seconds.max(0.0), n as u64));
        objects.insert(source);
    }
    let total: u64 = lags.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    lags.sort_by(|a, b| a.0.total_cmp(&b.0));
    let percentile = |p: f64| {
        let rank = ((p * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (lag, n) in &lags {
            seen += n;
            if seen >= rank {
                return *lag;
            }
        }
        lags.last().map_or(0.0, |l| l.0)
    };
    Some(Lag {
        rows: total,
        objects: objects.len() as u64,
        p50: percentile(0.5),
        p90: percentile(0.9),
        p99: percentile(0.99),
        max: lags.last().map_or(0.0, |l| l.0),
    })
}

/// When a raw object landed, from its key: this pipeline's own names start with
/// `YYYYMMDDTHHMMSS.ffffffZ`; Firehose's hold `-YYYY-MM-DD-HH-MM-SS-`.
pub fn landing_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    let ours = name
        .find('Z')
        .and_then(|z| NaiveDateTime::parse_from_str(&name[..=z], "%Y%m%dT%H%M%S%.fZ").ok());
    ours.or_else(|| {
        // Firehose: <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>
        name.match_indices('-').find_map(|(i, _)| {
            let window = name.get(i + 1..i + 20)?;
            window
                .starts_with(|c: char| c.is_ascii_digit())
                .then_some(())?;
            NaiveDateTime::parse_from_str(window, "%Y-%m-%d-%H-%M-%S").ok()
        })
    })
    .map(|t| t.and_utc())
}

async fn sql_rows(
    ctx: &SessionContext,
    what: &str,
    sql: &str,
) -> Result<Vec<Map<String, Value>>, QueryError> {
    let err = |source| QueryError::DataFusion {
        name: what.to_string(),
        source: Box::new(source),
    };
    let batches = ctx
        .sql(sql)
        .await
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    Ok(batches.iter().flat_map(batch_to_rows).collect())
}

fn int(row: &Map<String, Value>, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_i64)
}

fn text<'a>(row: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_times_from_this_pipelines_keys_and_firehoses() {
        let ours = landing_time("topics/a.pin/dt=2026-11-28/20261128T190102.250000Z-abc.ndjson");
        assert_eq!(
            ours.map(|t| t.to_rfc3339()),
            Some("2026-11-28T19:01:02.250+00:00".to_string())
        );
        let firehose =
            landing_time("topics/a.pin/dt=2026-11-28/pin-stream-1-2026-11-28-19-01-02-9f8e.gz");
        assert_eq!(
            firehose.map(|t| t.to_rfc3339()),
            Some("2026-11-28T19:01:02+00:00".to_string())
        );
        assert_eq!(
            landing_time("topics/a.pin/partition=0/a.pin+0+0000000000.json"),
            None
        );
    }

    #[test]
    fn lag_percentiles_weigh_each_object_by_its_rows() {
        let row = |source: &str, at: &str, n: i64| {
            let at = DateTime::parse_from_rfc3339(at).unwrap().timestamp_micros();
            serde_json::json!({"source": source, "at_us": at, "n": n})
                .as_object()
                .cloned()
                .unwrap()
        };
        let key = |stamp: &str| format!("topics/a.pin/dt=2026-11-28/{stamp}-x.ndjson");
        let rows = [
            row(&key("20261128T190000.000000Z"), "2026-11-28T19:00:01Z", 98),
            row(&key("20261128T190000.000000Z"), "2026-11-28T19:00:30Z", 1),
            row(&key("20261128T180000.000000Z"), "2026-11-28T19:00:00Z", 1),
            row("kinesis:s/shard/1", "2026-11-28T19:00:00Z", 5),
        ];
        let lag = lag(&rows).unwrap();
        assert_eq!((lag.rows, lag.objects), (100, 2));
        assert_eq!(
            (lag.p50, lag.p90, lag.p99, lag.max),
            (1.0, 1.0, 30.0, 3600.0)
        );
    }
}
