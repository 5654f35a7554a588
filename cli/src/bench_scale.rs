//! The batch path at scale: how its cost per record behaves as history grows.
//!
//! - `scale`: records posted through the batch route's handler in small requests (1–5
//!   records, as clients send them), landed through the spool, and cleaned, in ten equal
//!   parts; the cost of each tenth shows whether it grows with what is already landed, and a
//!   full idempotent re-check of everything landed closes the run.
//! - `objects`: `process` over N and 2N one-record objects of the direct landing's layout; the
//!   CPU ratio shows whether the exactly-once bookkeeping stays linear.

use crate::generate::PostGenerator;
use crate::local::LOCAL_RAW_BUCKET;
use crate::spool::{FlushLimits, Spool};
use crate::CliError;
use batch_clean::objects::{list_landed, s3_put_event};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use bytes::Bytes;
use futures::StreamExt;
use ingest_api::{IngestDeps, MemoryStream, RawLanding};
use lake::Lake;
use object_store::ObjectStoreExt;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Requests the scale benchmark keeps in flight, like concurrent clients.
const CLIENTS: usize = 32;
/// Objects per batch-clean invocation (an SQS batch).
const OBJECTS_PER_INVOCATION: usize = 1000;

/// CPU time (user + system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

/// CPU and wall time of a piece of work.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    cpu: f64,
    wall: f64,
}

struct Meter {
    cpu: f64,
    wall: Instant,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            cpu: cpu_seconds(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> Cost {
        Cost {
            cpu: cpu_seconds() - self.cpu,
            wall: self.wall.elapsed().as_secs_f64(),
        }
    }
}

fn temp_dir() -> Result<tempfile::TempDir, CliError> {
    tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))
}

/// Bytes of a table's Delta log.
fn log_bytes(lake_dir: &Path, table: &str) -> u64 {
    std::fs::read_dir(lake_dir.join(table).join("_delta_log"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Cleans `objects` in invocations of [`OBJECTS_PER_INVOCATION`].
async fn clean(
    deps: &BatchCleanDeps,
    objects: &[batch_clean::ObjectRef],
) -> Result<BatchReport, CliError> {
    let mut total = BatchReport::default();
    for chunk in objects.chunks(OBJECTS_PER_INVOCATION) {
        total += &batch_clean::handle_s3(&s3_put_event(chunk), deps).await?;
    }
    Ok(total)
}

/// A produce request of `records` (all of one type), as a client sends it.
fn produce(topic: &str, records: &[serde_json::Value]) -> http::Request<Bytes> {
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|v| serde_json::json!({ "value": v }))
        .collect();
    let body = serde_json::json!({ "records": values }).to_string();
    let mut request = http::Request::new(Bytes::from(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::try_from(format!("/topics/{topic}")).unwrap_or_default();
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/vnd.kafka.json.v2+json"),
    );
    request
}

/// `records` posted in requests of 1–5, landed through the spool and cleaned, in tenths.
pub async fn bench_scale(records: usize, seed: u64) -> Result<(), CliError> {
    let dir = temp_dir()?;
    let raw_dir = dir.path().join("raw");
    let lake_dir = dir.path().join("lake");
    let target = RawLanding::local_dir(&raw_dir)?;
    let (spool, _) = Spool::open(
        &dir.path().join("spool"),
        target.clone(),
        FlushLimits::default(),
    )
    .await?;
    let spool = Arc::new(spool);
    let ingest = IngestDeps {
        raw: spool.clone(),
        stream: Arc::new(MemoryStream::new()),
    };
    let deps = BatchCleanDeps {
        raw: RawStores::Fixed(target.store().clone()),
        lake: Lake::open(lake_dir.to_str().unwrap_or("lake"))?,
    };
    println!(
        "\nscale: {records} records posted through the batch route in requests of 1–5 records \
         ({CLIENTS} at a time), landed through the spool (one object per {}), cleaned {} objects \
         per invocation; in tenths",
        FlushLimits::default().describe(),
        OBJECTS_PER_INVOCATION
    );
    println!(
        "  {:>5} {:>9} {:>8} {:>8} {:>8} {:>10}",
        "tenth", "records", "objects", "CPU s", "wall s", "CPU ratio"
    );

    let mut posts = PostGenerator::new(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut queues: [Vec<serde_json::Value>; 3] = Default::default();
    let mut cleaned: HashSet<String> = HashSet::new();
    let mut first_cpu = None;
    let mut landing_wall = 0.0;
    let mut posted = 0usize;
    let mut written = 0usize;
    for tenth in 1..=10 {
        let goal = records * tenth / 10;
        let mut requests = Vec::new();
        while posted < goal {
            let t = requests.len() % 3;
            let n = rng.random_range(1..=5usize).min(goal - posted);
            while queues[t].len() < n {
                let Some(post) = posts.next() else {
                    return Err(CliError::Bench("the post generator ran out".into()));
                };
                for (i, (_, value)) in post.records().into_iter().enumerate() {
                    queues[i].push(value.clone());
                }
            }
            let batch: Vec<serde_json::Value> = queues[t].drain(..n).collect();
            let topic = format!("bench.{}", shared::RecordType::ALL[t].as_str());
            requests.push(produce(&topic, &batch));
            posted += n;
        }
        let meter = Meter::start();
        let statuses: Vec<u16> = futures::stream::iter(requests)
            .map(|request| {
                let ingest = &ingest;
                async move { ingest_api::handle(request, ingest).await.status().as_u16() }
            })
            .buffer_unordered(CLIENTS)
            .collect()
            .await;
        if let Some(bad) = statuses.iter().find(|s| **s != 200) {
            return Err(CliError::Bench(format!("the batch route answered {bad}")));
        }
        spool.flush(true).await?;
        let new: Vec<_> = list_landed(target.store().as_ref(), LOCAL_RAW_BUCKET)
            .await?
            .into_iter()
            .filter(|o| !cleaned.contains(&o.key))
            .collect();
        let report = clean(&deps, &new).await?;
        let cost = meter.stop();
        cleaned.extend(new.iter().map(|o| o.key.clone()));
        written += report.counts.rows_written + report.counts.duplicates_skipped;
        landing_wall += cost.wall;
        let first = *first_cpu.get_or_insert(cost.cpu);
        println!(
            "  {tenth:>5} {:>9} {:>8} {:>8.2} {:>8.2} {:>9.2}×",
            report.counts.records_in,
            new.len(),
            cost.cpu,
            cost.wall,
            cost.cpu / first
        );
    }
    if written != records {
        return Err(CliError::Bench(format!(
            "bench lost records: {records} posted, {written} written"
        )));
    }

    let all = list_landed(target.store().as_ref(), LOCAL_RAW_BUCKET).await?;
    let meter = Meter::start();
    let recheck = clean(&deps, &all).await?;
    let recheck_cost = meter.stop();
    if recheck.counts.rows_written != 0 || recheck.counts.already_committed != records {
        return Err(CliError::Bench(format!(
            "the re-check wrote {} rows and found {} of {records} committed",
            recheck.counts.rows_written, recheck.counts.already_committed
        )));
    }
    println!(
        "  {records} records in {:.1} s: {:.0} records/s end to end; {} objects landed",
        landing_wall,
        records as f64 / landing_wall,
        all.len()
    );
    println!(
        "  Delta log: {}",
        ["pin", "geo", "user"]
            .iter()
            .map(|t| format!("{t} {:.1} KB", log_bytes(&lake_dir, t) as f64 / 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  idempotent re-check of all {} objects: {:.2} s wall, {:.2} s CPU ({:.2}× the time landing took)",
        all.len(),
        recheck_cost.wall,
        recheck_cost.cpu,
        recheck_cost.wall / landing_wall
    );
    Ok(())
}

/// `process` over `n` and `2n` one-record objects (a third each of pin, geo and user).
pub async fn bench_objects(n: usize, seed: u64) -> Result<(), CliError> {
    println!(
        "\nobjects: process over one-record objects of the direct landing's layout, fresh lake each"
    );
    println!(
        "  {:>8} {:>14} {:>10} {:>16}",
        "objects", "first pass CPU", "wall s", "second pass CPU"
    );
    let mut costs = Vec::new();
    for count in [n, 2 * n] {
        let dir = temp_dir()?;
        let raw_dir = dir.path().join("raw");
        let target = RawLanding::local_dir(&raw_dir)?;
        let mut landed = 0;
        'posts: for post in PostGenerator::new(seed) {
            for (rt, value) in post.records() {
                if landed == count {
                    break 'posts;
                }
                let line = format!("{value}\n");
                let key =
                    RawLanding::key_for(&format!("bench.{}", rt.as_str()), chrono::Utc::now());
                target.store().put(&key, line.into()).await?;
                landed += 1;
            }
        }
        let raw = raw_dir.display().to_string();
        let lake = dir.path().join("lake").display().to_string();
        // The first pass writes everything; the second finds everything committed.
        let mut passes = Vec::with_capacity(2);
        for _ in 0..2 {
            let meter = Meter::start();
            let report = crate::process::process_raw(
                &raw,
                &lake,
                crate::process::PROCESS_BATCH_OBJECTS,
                crate::process::PROCESS_BATCH_MIB,
            )
            .await?;
            passes.push((report, meter.stop()));
        }
        let [(first, first_cost), (second, second_cost)] = [passes.remove(0), passes.remove(0)];
        if first.counts.rows_written + first.counts.duplicates_skipped != count
            || second.counts.already_committed != count
        {
            return Err(CliError::Bench(format!(
                "bench lost records: {count} objects, {} rows written, {} found committed on the second pass",
                first.counts.rows_written, second.counts.already_committed
            )));
        }
        println!(
            "  {count:>8} {:>13.2}s {:>10.2} {:>15.2}s",
            first_cost.cpu, first_cost.wall, second_cost.cpu
        );
        costs.push(first_cost.cpu);
    }
    if let [small, large] = costs[..] {
        println!(
            "  ratio: {} objects cost {:.2}× the CPU of {n} (linear is 2×)",
            2 * n,
            large / small
        );
    }
    Ok(())
}
