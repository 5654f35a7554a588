//! `pinpipe`: the pipeline's local runner. `pinpipe run` runs the whole pipeline on the
//! embedded default (local raw directory, local lake, in-process functions) and prints what
//! landed.

use pinpipe::{bench, consume, emulate, invoke, process, query, report, run, serve};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "pinpipe",
    version,
    about = "Run the Pinterest data pipeline locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate posts, send them through the ingest API, clean them into the lake, run the
    /// queries and print their results.
    Run(run::RunArgs),
    /// Serve the ingest API over HTTP on localhost, cleaning into the lake as records arrive.
    Serve(serve::ServeArgs),
    /// Post emulated users' posts to an ingest API, as the original emulators did.
    Emulate(emulate::EmulateArgs),
    /// Consume the pipeline's Kafka topics into the lake, as the MSK event source does.
    Consume(consume::ConsumeArgs),
    /// Run a function's handler once on a Lambda event file (Docker-free `sam local invoke`).
    Invoke(invoke::InvokeArgs),
    /// Clean everything already landed (a directory or S3 prefix) into the lake: a backfill.
    Process(process::ProcessArgs),
    /// Run the analytics queries on a lake and print their results (or their SQL).
    Query(query::QueryArgs),
    /// Maintain the lake's tables: drop duplicates, compact, checkpoint, vacuum.
    Maintain(query::MaintainArgs),
    /// Write the HTML report of a lake: every query's result as a chart, and the pipeline's health.
    Report(report::ReportArgs),
    /// Measure batch-clean throughput into a local lake against a JSON-decode baseline.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    lambda_support::runtime::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    lambda_support::runtime::log_dependency_panics();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Bench(args) => bench::bench(args).await,
            Command::Query(args) => query::query(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Emulate(args) => emulate::emulate(args).await,
            Command::Consume(args) => consume::consume(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::Process(args) => process::process(args).await,
            Command::Maintain(args) => query::maintain(args).await,
            Command::Report(args) => report::report(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
