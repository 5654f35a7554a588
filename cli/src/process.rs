//! `pinpipe process`: batch-clean over everything already landed — a backfill. Reads a local
//! directory or an S3 prefix, in this pipeline's layout or the original MSK Connect layout
//! (`topics/<topic>/partition=0/<topic>+0+<offset>.json`). Idempotent: objects committed before
//! are recognised by the lake and skipped, so a second run writes nothing.

use crate::local::{progress, LOCAL_RAW_BUCKET};
use crate::CliError;
use batch_clean::objects::{s3_put_event, ObjectRef};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use clap::Args;
use lake::Lake;
use object_store::ObjectStore;
use std::sync::Arc;

/// Objects per invocation of a backfill: as many as Lambda's largest SQS batch, so a backfill
/// of many small objects makes few commits (each commit replays the table's bookkeeping).
pub const PROCESS_BATCH_OBJECTS: usize = 10_000;
/// Bytes per invocation of a backfill, in MiB, so large objects do not all load at once.
pub const PROCESS_BATCH_MIB: u64 = 256;

/// Options of `pinpipe process`.
#[derive(Debug, Clone, Args)]
pub struct ProcessArgs {
    /// What to clean: a directory holding topics/…, or s3://bucket[/prefix] (default prefix topics/).
    #[arg(long, default_value = "./data/raw")]
    pub raw: String,
    /// Lake root: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Most objects per batch-clean invocation (Lambda's largest SQS batch is 10,000).
    #[arg(long, default_value_t = PROCESS_BATCH_OBJECTS)]
    pub batch_size: usize,
    /// Most bytes of raw objects per invocation, in MiB.
    #[arg(long, default_value_t = PROCESS_BATCH_MIB)]
    pub batch_mib: u64,
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

/// Splits `objects` into invocations of at most `max_objects` objects and `max_bytes` bytes
/// (an object larger than that goes alone).
pub fn batches(objects: &[ObjectRef], max_objects: usize, max_bytes: u64) -> Vec<&[ObjectRef]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, object) in objects.iter().enumerate() {
        let size = object.size.unwrap_or(0);
        let full = i - start >= max_objects.max(1) || (i > start && bytes + size > max_bytes);
        if full {
            out.push(&objects[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < objects.len() {
        out.push(&objects[start..]);
    }
    out
}

/// Runs batch-clean over `objects` in invocations of at most `batch_size` objects and
/// `batch_mib` MiB, with a progress bar.
pub async fn clean_in_batches(
    deps: &BatchCleanDeps,
    objects: &[ObjectRef],
    batch_size: usize,
    batch_mib: u64,
) -> Result<BatchReport, CliError> {
    let bar = progress(objects.len() as u64, "cleaning");
    let mut total = BatchReport::default();
    let mut done = 0;
    for chunk in batches(objects, batch_size, batch_mib.saturating_mul(1024 * 1024)) {
        let report = batch_clean::handle_s3(&s3_put_event(chunk), deps)
            .await
            .map_err(|source| {
                bar.abandon();
                CliError::Backfill {
                    done,
                    total: objects.len(),
                    source: Box::new(source),
                }
            })?;
        total += &report;
        done += chunk.len();
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
    batch_mib: u64,
) -> Result<BatchReport, CliError> {
    let (store, stores, bucket, prefix) = source(raw)?;
    let objects = batch_clean::objects::list_under(store.as_ref(), &bucket, &prefix).await?;
    let deps = BatchCleanDeps {
        raw: stores,
        lake: Lake::open(lake)?,
    };
    clean_in_batches(&deps, &objects, batch_size, batch_mib).await
}

/// Cleans everything landed under the source into the lake, with progress, exactly once.
pub async fn process(args: ProcessArgs) -> Result<(), CliError> {
    println!("pinpipe process: {} → lake {}", args.raw, args.lake);
    let r = process_raw(&args.raw, &args.lake, args.batch_size, args.batch_mib).await?;
    println!(
        "batch-clean: {} objects, {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        r.objects, r.counts.records_in, r.counts.rows_written, r.counts.quarantined, r.counts.duplicates_skipped, r.counts.already_committed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(sizes: &[u64]) -> Vec<ObjectRef> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| ObjectRef {
                bucket: "b".into(),
                key: format!("topics/p.pin/{i}"),
                etag: None,
                size: Some(*size),
            })
            .collect()
    }

    #[test]
    fn invocations_stay_within_the_object_and_byte_limits() {
        let lens = |b: Vec<&[ObjectRef]>| b.iter().map(|c| c.len()).collect::<Vec<_>>();
        let small = objects(&[1; 25]);
        assert_eq!(lens(batches(&small, 10, 1000)), vec![10, 10, 5]);
        // 4 + 4 fits 10 bytes, a third 4 does not; an object over the limit goes alone.
        let mixed = objects(&[4, 4, 4, 50, 1]);
        assert_eq!(lens(batches(&mixed, 100, 10)), vec![2, 1, 1, 1]);
        assert!(batches(&[], 10, 10).is_empty());
    }
}
