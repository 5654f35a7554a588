//! `pinpipe process`: batch-clean over everything already landed — a backfill. Reads a local
//! directory or an S3 prefix, in this pipeline's layout or the original MSK Connect layout
//! (`topics/<topic>/partition=0/<topic>+0+<offset>.json`). Idempotent: objects committed before
//! are recognised by the lake and skipped, so a second run writes nothing.

use crate::run::{progress, LOCAL_RAW_BUCKET};
use crate::CliError;
use batch_clean::objects::{s3_put_event, ObjectRef};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use clap::Args;
use lake::Lake;
use object_store::ObjectStore;
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct ProcessArgs {
    /// What to clean: a directory holding topics/…, or s3://bucket[/prefix] (default prefix topics/).
    #[arg(long, default_value = "./data/raw")]
    pub raw: String,
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Objects per batch-clean invocation.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
}

/// The store, bucket name and listing prefix a `--raw` value names.
fn source(raw: &str) -> Result<(Arc<dyn ObjectStore>, RawStores, String, String), CliError> {
    match raw.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = match prefix.trim_matches('/') {
                "" => "topics".to_string(),
                p => p.to_string(),
            };
            let store = batch_clean::objects::s3_store(bucket)?;
            Ok((Arc::new(store), RawStores::s3(), bucket.to_string(), prefix))
        }
        None => {
            let store: Arc<dyn ObjectStore> =
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(raw)?);
            Ok((
                store.clone(),
                RawStores::Fixed(store),
                LOCAL_RAW_BUCKET.to_string(),
                "topics".to_string(),
            ))
        }
    }
}

/// Every object under `prefix`, sorted by key.
pub async fn list(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectRef>, CliError> {
    Ok(batch_clean::objects::list_under(store, bucket, prefix).await?)
}

/// Runs batch-clean over `objects`, `batch_size` at a time, with a progress bar.
pub async fn clean_in_batches(
    deps: &BatchCleanDeps,
    objects: &[ObjectRef],
    batch_size: usize,
) -> Result<BatchReport, CliError> {
    let bar = progress(objects.len() as u64, "cleaning");
    let mut total = BatchReport::default();
    for chunk in objects.chunks(batch_size.max(1)) {
        let report = batch_clean::handle_s3(&s3_put_event(chunk), deps).await?;
        total += &report;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(total)
}

/// Cleans everything under `raw` into `lake`.
pub async fn process_raw(
    raw: &str,
    lake: &str,
    batch_size: usize,
) -> Result<BatchReport, CliError> {
    let (store, stores, bucket, prefix) = source(raw)?;
    let objects = list(store.as_ref(), &bucket, &prefix).await?;
    let deps = BatchCleanDeps {
        raw: stores,
        lake: Lake::open(lake)?,
    };
    clean_in_batches(&deps, &objects, batch_size).await
}

pub async fn process(args: ProcessArgs) -> Result<(), CliError> {
    println!("pinpipe process: {} → lake {}", args.raw, args.lake);
    let r = process_raw(&args.raw, &args.lake, args.batch_size).await?;
    println!(
        "batch-clean: {} objects, {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        r.objects, r.counts.records_in, r.counts.rows_written, r.counts.quarantined, r.counts.duplicates_skipped, r.counts.already_committed
    );
    Ok(())
}
