//! `pinpipe query` and `pinpipe maintain`: the analytics queries and table maintenance against
//! a local or S3 lake, printed for people (aligned tables) or programs (JSON, CSV).

use crate::CliError;
use clap::{Args, ValueEnum};
use lake::maintenance::DEFAULT_RETENTION;
use lake::queries::{run_queries, Query, QueryResult, QUERIES, VIEWS_SQL};
use lake::{Lake, LakeTable};
use serde_json::Value;
use std::time::Duration;

/// How `pinpipe query` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, for reading.
    Table,
    /// One JSON object: each query's name and its rows.
    Json,
    /// CSV with a header row per query.
    Csv,
}

/// Options of `pinpipe query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Queries to run (default: all), e.g. q1_popular_category_by_country.
    pub names: Vec<String>,
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print the SQL of a query (with the views it reads) instead of running it.
    #[arg(long, value_name = "NAME")]
    pub sql: Option<String>,
    /// Also write each result as a Delta table under results/.
    #[arg(long)]
    pub write: bool,
}

/// Options of `pinpipe maintain`.
#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Vacuum retention in hours: unreferenced files older than this are deleted.
    #[arg(long, default_value_t = DEFAULT_RETENTION.as_secs() / 3600)]
    pub retention_hours: u64,
    /// Allow a retention under one hour (only when nothing is writing to the lake).
    #[arg(long)]
    pub force: bool,
}

/// Resolves query names, or says which names exist.
pub fn select(names: &[String]) -> Result<Vec<Query>, CliError> {
    if names.is_empty() {
        return Ok(QUERIES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            lake::queries::query(n).ok_or_else(|| {
                CliError::Usage(format!(
                    "no query named `{n}`; the queries are: {}",
                    QUERIES
                        .iter()
                        .map(|q| q.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .collect()
}

/// Runs the queries asked for and prints their results (or their SQL).
pub async fn query(args: QueryArgs) -> Result<(), CliError> {
    if let Some(name) = &args.sql {
        let q = select(std::slice::from_ref(name))?[0];
        println!(
            "{}\n-- {}\n{}",
            VIEWS_SQL.trim_end(),
            q.name,
            q.sql.trim_end()
        );
        return Ok(());
    }
    let queries = select(&args.names)?;
    let lake = Lake::open(&args.lake)?;
    let (run, results) = run_queries(&lake, &queries, args.write).await?;
    print_results(&results, args.format);
    let failed = run.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        for q in run.queries.iter().filter(|q| q.error.is_some()) {
            eprintln!("{}: {}", q.name, q.error.as_deref().unwrap_or_default());
        }
        Err(CliError::Failed {
            what: "queries",
            names: failed.iter().map(|n| n.to_string()).collect(),
        })
    }
}

/// Maintains every table of the lake and prints what was done.
pub async fn maintain(args: MaintainArgs) -> Result<(), CliError> {
    if args.retention_hours < 1 && !args.force {
        return Err(CliError::Usage(format!(
            "--retention-hours {} would vacuum files a cleaner has written but not committed yet, \
             losing their rows: use at least 1 (the default is {}), or add --force if nothing \
             writes to the lake now",
            args.retention_hours,
            DEFAULT_RETENTION.as_secs() / 3600
        )));
    }
    let lake = Lake::open(&args.lake)?;
    let retention = Duration::from_secs(args.retention_hours * 3600);
    let mut failed = Vec::new();
    for table in LakeTable::ALL {
        match lake.maintain(table, retention).await {
            Ok(r) if r.version.is_none() => println!("{:<11} no table yet", table.name()),
            Ok(r) => println!(
                "{:<11} {} → {} rows ({} duplicates removed), {} → {} files, checkpoint at v{}, {} files vacuumed",
                table.name(),
                r.rows_before,
                r.rows_after,
                r.duplicates_removed,
                r.files_before,
                r.files_after,
                r.checkpoint_version.unwrap_or_default(),
                r.files_vacuumed
            ),
            Err(e) => {
                eprintln!("{:<11} failed: {e}", table.name());
                failed.push(table.name());
            }
        }
    }
    // The daily run overwrites each result table: vacuum what it replaced.
    let (mut results, mut vacuumed) = (0, 0);
    for query in &lake::queries::QUERIES {
        match lake.maintain_result(query.name, retention).await {
            Ok(r) if r.version.is_none() => {}
            Ok(r) => {
                results += 1;
                vacuumed += r.files_vacuumed;
            }
            Err(e) => {
                eprintln!("{:<11} failed: {e}", query.name);
                failed.push(query.name);
            }
        }
    }
    println!(
        "{:<11} {results} result tables checkpointed, {vacuumed} files vacuumed",
        "results/*"
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed {
            what: "maintenance",
            names: failed.iter().map(|n| n.to_string()).collect(),
        })
    }
}

/// Prints results one after the other in `format`.
pub fn print_results(results: &[QueryResult], format: Format) {
    match format {
        Format::Json => {
            let all: serde_json::Map<String, Value> = results
                .iter()
                .map(|r| {
                    (
                        r.name.to_string(),
                        Value::Array(r.rows().into_iter().map(Value::Object).collect()),
                    )
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(all)).unwrap_or_default()
            );
        }
        Format::Csv => {
            for (i, r) in results.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("# {}", r.name);
                print!("{}", to_csv(r));
            }
        }
        Format::Table => {
            for r in results {
                println!("\n{} ({} rows)", r.name, r.num_rows());
                print!("{}", to_table(r));
            }
        }
    }
}

fn headers(r: &QueryResult) -> Vec<String> {
    r.schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An aligned text table; nulls shown as `NULL`, numbers right-aligned.
pub fn to_table(r: &QueryResult) -> String {
    let headers = headers(r);
    let rows: Vec<Vec<(String, bool)>> = r
        .rows()
        .iter()
        .map(|row| {
            headers
                .iter()
                .map(|h| match &row[h] {
                    Value::Null => ("NULL".to_string(), false),
                    v @ Value::Number(_) => (text(v), true),
                    v => (text(v), false),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].0.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<(String, bool)>| {
        let padded: Vec<String> = cells
            .into_iter()
            .zip(&widths)
            .map(|((c, right), w)| {
                if right {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| (h.clone(), false)).collect());
    out.push_str(&line(
        widths.iter().map(|w| ("-".repeat(*w), false)).collect(),
    ));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// RFC 4180 CSV with a header row; nulls are empty fields.
pub fn to_csv(r: &QueryResult) -> String {
    let quote = |s: String| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let headers = headers(r);
    let mut out = headers
        .iter()
        .cloned()
        .map(quote)
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for row in r.rows() {
        out.push_str(
            &headers
                .iter()
                .map(|h| quote(text(&row[h])))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}
