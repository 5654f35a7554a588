//! `pinpipe run`: the whole pipeline on the embedded default — posts through the ingest API's
//! handler (in-process, with the original clients' exact request bytes) down the batch path
//! (the durable spool, one raw object per flush in a local directory, then batch-clean), the stream path (an in-process stream
//! whose batches reach stream-clean as real `KinesisEvent`s), or both, into Delta tables in a
//! local lake — then a summary of what each table holds.

use crate::local::IngestPath;
use crate::CliError;
use clap::Args;
use lake::{Lake, LakeTable};
use std::path::PathBuf;

/// Options of `pinpipe run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// How many posts (pin + geo + user each) to generate.
    #[arg(long, default_value_t = 1000)]
    pub posts: usize,
    /// Seed of the post generator: the same seed gives the same posts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Directory where the API lands raw batch records.
    #[arg(long, default_value = "./data/raw")]
    pub raw: PathBuf,
    /// Post the rows of DIR/pin.jsonl, DIR/geo.jsonl and DIR/user.jsonl instead of generated ones.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Topic prefix (the original used the user id, e.g. 0a5e6ec37a2f).
    #[arg(long, default_value = "0a5e6ec37a2f")]
    pub prefix: String,
    /// Objects cleaned per batch-clean invocation (like an SQS batch).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Which path posts take: the batch route, the stream route, or both (as the original ran
    /// its two emulators side by side).
    #[arg(long, value_enum, default_value_t = IngestPath::Batch)]
    pub path: IngestPath,
    /// Where the batch route lands records.
    #[command(flatten)]
    pub landing: crate::spool::LandingArgs,
    /// Send the batch route's records through this Kafka cluster (HOST:PORT) and consume them
    /// into the lake: the original's REST proxy → Kafka → consumer chain.
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka: Option<String>,
}

/// Runs the whole pipeline locally and prints the query results and the report's path.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let path_name = match args.path {
        IngestPath::Batch => "batch",
        IngestPath::Stream => "stream",
        IngestPath::Both => "batch and stream",
    };
    // 1. Serve the API on a free localhost port, cleaning into the lake as records arrive.
    let serve = crate::serve::ServeArgs {
        batch_size: args.batch_size,
        landing: args.landing.clone(),
        kafka: args.kafka.clone(),
        kafka_prefix: Some(args.prefix.clone()),
        ..crate::serve::ServeArgs::local(args.raw.display().to_string(), args.lake.clone())
    };
    let server = crate::serve::start(&serve).await?;
    let posts = match &args.from_dir {
        Some(_) => "the rows of --from-dir".to_string(),
        None => format!("{} generated posts", args.posts),
    };
    println!(
        "pinpipe run: {posts} → ingest API at http://{} ({path_name} path)\n  {}",
        server.addr, server.description
    );

    // 2. Emulate users posting, over real HTTP, as fast as the API answers.
    let emulate = crate::emulate::EmulateArgs {
        url: format!("http://{}", server.addr),
        posts: args.from_dir.is_none().then_some(args.posts as u64),
        path: args.path,
        rate: Some(0.0),
        seed: args.seed,
        from_dir: args.from_dir.clone(),
        db_url: None,
        prefix: args.prefix.clone(),
        api_key: None,
    };
    let sent = crate::emulate::run(&emulate, false).await;
    // 3. Stop serving; the cleaners flush what is pending.
    let totals = server.shutdown().await?;
    let sent = sent?;
    println!(
        "ingest API: {} requests, {}",
        sent.requests,
        sent.by_status
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    crate::serve::print_totals(&totals, args.path);
    // 4. Backfill anything landed but not cleaned (from earlier runs too); idempotent.
    if args.path.batch() {
        let r = crate::process::process_raw(
            &args.raw.display().to_string(),
            &args.lake,
            crate::process::PROCESS_BATCH_OBJECTS,
            crate::process::PROCESS_BATCH_MIB,
        )
        .await?;
        println!(
            "process: {} objects checked, {} new rows written",
            r.objects,
            r.counts.rows_written + r.counts.quarantined
        );
    }
    // 5. Query and print.
    let lake = Lake::open(&args.lake)?;
    print_lake_summary(&lake).await?;
    let (run, results) = lake::queries::run_queries(&lake, &lake::queries::QUERIES, true).await?;
    println!(
        "\nqueries ({} ms; results written under {}results/):",
        run.elapsed_ms,
        lake.root()
    );
    crate::query::print_results(&results, crate::query::Format::Table);
    let written = crate::report::write_report(&lake, &results, None).await?;
    println!("\nreport: {written}");
    let failed = run.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed {
            what: "queries",
            names: failed.iter().map(|n| n.to_string()).collect(),
        })
    }
}

/// Prints each table's row count and its first few rows.
pub async fn print_lake_summary(lake: &Lake) -> Result<(), CliError> {
    println!("\nlake {}:", lake.root());
    for table in LakeTable::ALL {
        let rows = lake.read_rows(table.name()).await?;
        println!("  {:<11} {:>7} rows", table.name(), rows.len());
    }
    for table in [LakeTable::Pin, LakeTable::Geo, LakeTable::User] {
        let rows = lake.read_rows(table.name()).await?;
        if rows.is_empty() {
            continue;
        }
        println!(
            "\n{} (first {} of {}):",
            table.name(),
            rows.len().min(3),
            rows.len()
        );
        for row in rows.iter().take(3) {
            let spec: serde_json::Map<String, serde_json::Value> = row
                .iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            println!("  {}", serde_json::Value::Object(spec));
        }
    }
    Ok(())
}
