//! `pinpipe report`: the HTML report of a lake (every query's result as a chart and a table,
//! and the pipeline's health), written to a file or into the lake beside the results.

use crate::CliError;
use clap::Args;
use lake::queries::{run_queries, QUERIES};
use lake::report::REPORT_PATH;
use lake::Lake;
use std::path::PathBuf;

/// Options of `pinpipe report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Where to write the page (default: results/report.html in the lake).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Open the page in the default browser once written (a local file only).
    #[arg(long)]
    pub open: bool,
}

/// Where a report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A local file.
    File(PathBuf),
    /// `results/report.html` in a lake that is not a local directory.
    Lake(String),
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Written::File(path) => write!(f, "{}", path.display()),
            Written::Lake(url) => f.write_str(url),
        }
    }
}

/// Runs the queries (without writing their result tables) and writes the report.
pub async fn report(args: ReportArgs) -> Result<(), CliError> {
    let lake = Lake::open(&args.lake)?;
    let (run, results) = run_queries(&lake, &QUERIES, false).await?;
    let written = write_report(&lake, &results, args.out.as_deref()).await?;
    println!("report: {written}");
    let failed = run.failed();
    if !failed.is_empty() {
        eprintln!(
            "the report leaves out queries that failed: {}",
            failed.join(", ")
        );
    }
    if args.open {
        match &written {
            Written::File(path) => opener::open(path).map_err(|source| CliError::Open {
                path: path.clone(),
                source,
            })?,
            Written::Lake(url) => {
                return Err(CliError::Usage(format!(
                    "--open needs a local file: the report is at {url}; add --out FILE"
                )))
            }
        }
    }
    Ok(())
}

/// Renders the report for `results` and writes it to `out`, or beside the results in the lake.
pub async fn write_report(
    lake: &Lake,
    results: &[lake::queries::QueryResult],
    out: Option<&std::path::Path>,
) -> Result<Written, CliError> {
    let page = lake.report(results).await?;
    if let Some(path) = out {
        std::fs::write(path, page).map_err(CliError::io(path))?;
        return Ok(Written::File(path.to_path_buf()));
    }
    lake.put_file(REPORT_PATH, page.into_bytes()).await?;
    Ok(match lake.root().to_file_path() {
        Ok(dir) => Written::File(dir.join(REPORT_PATH)),
        Err(()) => Written::Lake(format!(
            "{}/{REPORT_PATH}",
            lake.root().as_str().trim_end_matches('/')
        )),
    })
}
