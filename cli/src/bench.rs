//! `pinpipe bench`: batch-clean throughput from raw NDJSON bytes to committed Delta tables on
//! local disk, and stream-clean on one 10,000-record `KinesisEvent`, each next to a baseline
//! measured in the same run (decoding the same bytes as JSON and nothing else), so the figures
//! compare across machines as ratios.

use crate::generate::PostGenerator;
use crate::local::{progress, LOCAL_RAW_BUCKET};
use crate::CliError;
use batch_clean::objects::list_landed;
use batch_clean::{BatchCleanDeps, RawStores};
use clap::Args;
use lake::Lake;
use object_store::ObjectStoreExt;
use std::time::Instant;

/// Options of `pinpipe bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records to generate (a third each of pin, geo and user).
    #[arg(long, default_value_t = 201_000)]
    pub records: usize,
    /// Records per raw object.
    #[arg(long, default_value_t = 1_000)]
    pub per_object: usize,
    /// Objects per batch-clean invocation.
    #[arg(long, default_value_t = 50)]
    pub objects_per_invocation: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Records in the KinesisEvent handed to stream-clean.
    #[arg(long, default_value_t = 10_000)]
    pub stream_records: usize,
    /// Posts in the lake the queries run over.
    #[arg(long, default_value_t = 1_000_000)]
    pub query_posts: usize,
    /// Records posted through the batch route by the scale benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_records: usize,
    /// One-record objects in the smaller run of the objects benchmark (the larger has twice).
    #[arg(long, default_value_t = 16_000)]
    pub objects: usize,
    /// Python interpreter with the duckdb (and, for --peers, polars) package.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Compare batch cleaning with DuckDB and polars on the same NDJSON (`--only peers`).
    #[arg(long)]
    pub peers: bool,
    /// Pins cleaned by each engine in the peer comparison.
    #[arg(long, default_value_t = 200_000)]
    pub peer_pins: usize,
    /// Runs of each engine in the peer comparison, and of the stream-clean measurement (the
    /// median is shown).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// How long the soak runs, in seconds (`--only soak`).
    #[arg(long, default_value_t = 600)]
    pub soak_seconds: u64,
    /// Requests per second the soak sends, spread over both routes.
    #[arg(long, default_value_t = 300)]
    pub soak_rate: u32,
    /// Seconds between the soak's samples.
    #[arg(long, default_value_t = 30)]
    pub soak_sample_seconds: u64,
    /// Run only one of the benchmarks.
    #[arg(long, value_enum)]
    pub only: Option<Which>,
}

/// The benchmarks `--only` picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// batch-clean over generated raw objects, against decoding the same bytes.
    Batch,
    /// stream-clean over one Kinesis event, against decoding the same records.
    Stream,
    /// The daily queries over a lake of posts, against DuckDB on the same Parquet.
    Queries,
    /// The batch path end to end at scale, in tenths (see `bench_scale`).
    Scale,
    /// `process` over N and 2N one-record objects.
    Objects,
    /// Batch cleaning next to DuckDB and polars (needs them in `--python`); only when asked.
    Peers,
    /// `serve` under a steady load on both routes, its memory and descriptors watched; only
    /// when asked (ten minutes by default).
    Soak,
}

/// Runs the benchmarks asked for and prints their figures.
pub async fn bench(args: BenchArgs) -> Result<(), CliError> {
    println!(
        "build profile: {}",
        if cfg!(debug_assertions) {
            "dev (unoptimised; build with --profile bench-local for real figures)"
        } else {
            "optimised"
        }
    );
    let only = if args.peers {
        Some(Which::Peers)
    } else {
        args.only
    };
    let run = |which| only.is_none_or(|only| only == which);
    if run(Which::Batch) {
        bench_batch(&args).await?;
    }
    if run(Which::Stream) {
        bench_stream(&args).await?;
    }
    if run(Which::Queries) {
        bench_queries(&args).await?;
    }
    if run(Which::Objects) {
        crate::bench_scale::bench_objects(args.objects, args.seed).await?;
    }
    if run(Which::Scale) {
        crate::bench_scale::bench_scale(args.scale_records, args.seed).await?;
    }
    if only == Some(Which::Peers) {
        crate::bench_peers::bench_peers(
            args.peer_pins,
            args.per_object,
            args.runs,
            args.seed,
            &args.python,
        )
        .await?;
    }
    if only == Some(Which::Soak) {
        crate::bench_soak::bench_soak(args.soak_seconds, args.soak_rate, args.soak_sample_seconds)
            .await?;
    }
    Ok(())
}

/// Builds a lake of `query_posts` generated posts (cleaned with `shared`, appended in large
/// commits), times every query on DataFusion, then the same SQL on DuckDB over the same
/// Parquet files.
async fn bench_queries(args: &BenchArgs) -> Result<(), CliError> {
    use lake::{Input, LakeRow, Position};
    let dir = tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))?;
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap_or("lake"))?;
    println!(
        "\nqueries: building a lake of {} generated posts…",
        args.query_posts
    );
    let bar = crate::local::progress(args.query_posts as u64, "building");
    let mut generator = PostGenerator::new(args.seed);
    let chunk = 250_000;
    let mut done = 0;
    while done < args.query_posts {
        let n = chunk.min(args.query_posts - done);
        let mut rows = Vec::with_capacity(3 * n);
        for (i, post) in generator.by_ref().take(n).enumerate() {
            for (rt, value) in post.records() {
                if let Ok(c) = shared::clean_value(rt, value) {
                    rows.push(LakeRow {
                        // Rows at one position of one app id are one input item: each post
                        // needs its own, or only the chunk's first post would be written.
                        position: Position::from_int(i as i64 + 1),
                        source: "bench".into(),
                        row: c.row,
                    });
                }
            }
        }
        lake.append(&[Input {
            app_id: format!("bench:{done}"),
            rows,
            quarantine: Vec::new(),
            ..Input::default()
        }])
        .await
        .map_err(|e| CliError::Bench(e.to_string()))?;
        done += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let pins = lake.count_rows("pin").await?;
    if pins != args.query_posts {
        return Err(CliError::Bench(format!(
            "the benchmark lake holds {pins} pins, not the {} generated",
            args.query_posts
        )));
    }

    let start = Instant::now();
    let (run, results) = lake::queries::run_queries(&lake, &lake::queries::QUERIES, false).await?;
    let datafusion = start.elapsed().as_secs_f64();
    if !run.failed().is_empty() {
        return Err(CliError::Bench(format!(
            "queries failed: {}",
            run.failed().join(", ")
        )));
    }
    println!("DataFusion (delta-rs), all 10 queries: {datafusion:.2} s");

    // The same SQL in DuckDB over the same Parquet files.
    let mut tables = serde_json::Map::new();
    for table in ["pin", "geo", "user"] {
        let delta = lake.load(table).await?;
        let files: Vec<serde_json::Value> = delta
            .get_file_uris()
            .map_err(|e| CliError::Bench(e.to_string()))?
            .map(|uri| {
                serde_json::Value::from(uri.strip_prefix("file://").unwrap_or(&uri).to_string())
            })
            .collect();
        tables.insert(table.to_string(), serde_json::Value::Array(files));
    }
    let manifest = serde_json::json!({
        "tables": tables,
        "views": lake::queries::VIEWS_SQL,
        "queries": lake::queries::QUERIES.iter().map(|q| (q.name.to_string(), serde_json::Value::from(q.sql))).collect::<serde_json::Map<_, _>>(),
    });
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest.to_string())
        .map_err(|e| CliError::Bench(e.to_string()))?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/duckdb_queries.py");
    let output = std::process::Command::new(&args.python)
        .arg(&script)
        .arg(&manifest_path)
        .output();
    let duck: serde_json::Value = match output {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout)
            .map_err(|e| CliError::Bench(format!("duckdb output: {e}")))?,
        Ok(out) => {
            println!(
                "DuckDB: not run ({}); install it with `pip install duckdb`",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(());
        }
        Err(e) => {
            println!("DuckDB: not run ({}: {e})", args.python);
            return Ok(());
        }
    };
    let duck_total = duck["total_seconds"].as_f64().unwrap_or(f64::NAN);
    println!("DuckDB, same SQL over the same Parquet files: {duck_total:.2} s");
    println!(
        "ratio: DataFusion takes {:.2}× DuckDB's time",
        datafusion / duck_total
    );
    println!(
        "  {:<48} {:>8} {:>10} {:>10}",
        "query", "rows", "DataFusion", "DuckDB"
    );
    for (result, outcome) in results.iter().zip(&run.queries) {
        let d = &duck["queries"][result.name];
        let same = d["rows"].as_u64() == Some(result.num_rows() as u64);
        println!(
            "  {:<48} {:>8} {:>9.3}s {:>9.3}s{}",
            result.name,
            result.num_rows(),
            outcome.elapsed_ms as f64 / 1000.0,
            d["seconds"].as_f64().unwrap_or(f64::NAN),
            if same { "" } else { "  (row counts differ!)" }
        );
    }
    Ok(())
}

/// Decodes every non-empty line as JSON; returns (records decoded, seconds).
fn decode_baseline<'a>(lines: impl Iterator<Item = &'a [u8]>) -> (usize, f64) {
    let start = Instant::now();
    let decoded = lines
        .filter(|l| !l.is_empty())
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .count();
    (decoded, start.elapsed().as_secs_f64())
}

async fn bench_stream(args: &BenchArgs) -> Result<(), CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))?;
    let records: Vec<(String, String, Vec<u8>)> = PostGenerator::new(args.seed)
        .take(args.stream_records)
        .enumerate()
        .map(|(i, post)| {
            let data = serde_json::to_vec(&post.pin).unwrap_or_default();
            (
                format!("49{:020}{:034}", 1_764_000_000_000_000i64, i + 1),
                "test".to_string(),
                data,
            )
        })
        .collect();
    let bytes: usize = records.iter().map(|r| r.2.len()).sum();
    let runs = args.runs.max(1);
    println!(
        "\nstream-clean: one KinesisEvent of {} pin records, {:.1} MB of JSON, into an existing table (median of {runs} runs)",
        records.len(),
        bytes as f64 / 1e6
    );
    let deps = stream_clean::StreamCleanDeps {
        lake: Lake::open(dir.path().join("lake").to_str().unwrap_or("lake"))?,
    };
    // Measured as every invocation after the first runs: into a table that exists.
    deps.lake.table(lake::LakeTable::Pin).await?;

    // One call takes a tenth of a second, so a single measurement is mostly noise: each run
    // times the baseline and then a call with an event of its own (another shard, so nothing
    // counts as already committed), and the medians are compared.
    let (mut baselines, mut calls) = (Vec::new(), Vec::new());
    let (mut baseline_peak, mut measured_peak, mut added) = (0.0f64, 0.0f64, 0.0f64);
    for run in 0..runs {
        reset_peak_rss();
        let (decoded, baseline) = decode_baseline(records.iter().map(|r| r.2.as_slice()));
        baseline_peak = baseline_peak.max(peak_rss_mb());
        let shard = format!("shardId-{run:012}");
        let event = stream_clean::kinesis_event("streaming-bench-pin", &shard, &records);
        reset_peak_rss();
        let before = peak_rss_mb();
        let start = Instant::now();
        let outcome = stream_clean::handle(&event, &deps).await;
        calls.push(start.elapsed().as_secs_f64());
        baselines.push(baseline);
        measured_peak = measured_peak.max(peak_rss_mb());
        added = added.max(peak_rss_mb() - before);
        let r = outcome.report;
        if decoded != records.len() || r.counts.rows_written != records.len() {
            return Err(CliError::Bench(format!(
                "bench lost records: {} in, {} written",
                records.len(),
                r.counts.rows_written
            )));
        }
    }
    let (baseline, measured) = (median(&mut baselines), median(&mut calls));
    let mb = bytes as f64 / 1e6;
    let n = records.len() as f64;
    println!("baseline (JSON decode only): {baseline:.3} s  {:>10.0} records/s  {:>7.1} MB/s  peak RSS {baseline_peak:.0} MB", n / baseline, mb / baseline);
    println!("stream-clean → Delta commit: {measured:.3} s  {:>10.0} records/s  {:>7.1} MB/s  peak RSS {measured_peak:.0} MB ({added:+.0} MB over the process before the call)", n / measured, mb / measured);
    println!(
        "ratio: stream-clean takes {:.2}× the time of decoding alone",
        measured / baseline
    );
    let event =
        stream_clean::kinesis_event("streaming-bench-pin", "shardId-999999999999", &records);
    stream_lambda_binary(&event, records.len(), baseline).await
}

/// The middle value (the upper of the two middle ones for an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The same event through stream-clean's own Lambda binary, in a process of its own: the
/// memory Lambda would report for it.
async fn stream_lambda_binary(
    event: &impl serde::Serialize,
    records: usize,
    baseline: f64,
) -> Result<(), CliError> {
    let Some(binary) = crate::bench_lambda::binary_beside_pinpipe("stream-clean") else {
        println!(
            "stream-clean Lambda binary: not measured, it is not built next to this pinpipe; build it on its own (so it links no DataFusion, as deployed) with `cargo build --profile bench-local -p stream-clean`"
        );
        return Ok(());
    };
    let dir = tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))?;
    let lake = dir.path().join("lake");
    let lake_uri = lake.to_str().unwrap_or("lake");
    Lake::open(lake_uri)?.table(lake::LakeTable::Pin).await?;
    let event = serde_json::to_vec(event).map_err(|e| CliError::Bench(e.to_string()))?;
    let figures =
        crate::bench_lambda::invoke_once(&binary, &[("LAKE_URI", lake_uri)], event).await?;
    let written = Lake::open(lake_uri)?.count_rows("pin").await?;
    if written != records || figures.response.contains("\"itemIdentifier\"") {
        return Err(CliError::Bench(format!(
            "the Lambda binary wrote {written} of {records} records; it answered {}",
            figures.response
        )));
    }
    println!(
        "stream-clean Lambda binary, one invocation: {:.3} s ({:.2}× decoding alone, with the event's JSON and base64)  peak RSS {:.0} MB ({:.0} MB after start-up)",
        figures.seconds,
        figures.seconds / baseline,
        figures.peak_mib,
        figures.started_mib
    );
    Ok(())
}

/// The raw objects landed for the batch benchmark, and all their lines for the baseline.
#[derive(Default)]
struct Landed {
    objects: usize,
    total_bytes: usize,
    all_lines: Vec<u8>,
}

impl Landed {
    /// Puts one NDJSON object of `rt` records, named by the count of records so far.
    async fn put(
        &mut self,
        store: &object_store::local::LocalFileSystem,
        rt: shared::RecordType,
        count: usize,
        body: Vec<u8>,
    ) -> Result<(), CliError> {
        self.total_bytes += body.len();
        self.all_lines.extend_from_slice(&body);
        let key = format!("topics/bench.{rt}/partition=0/bench.{rt}+0+{count:010}.json");
        store
            .put(&object_store::path::Path::from(key), body.into())
            .await?;
        self.objects += 1;
        Ok(())
    }
}

async fn bench_batch(args: &BenchArgs) -> Result<(), CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))?;
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir_all(&raw_dir)
        .map_err(|e| CliError::Bench(format!("{}: {e}", raw_dir.display())))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(&raw_dir)?;

    // Land the raw records, one NDJSON object per `per_object` records of a type.
    let posts = args.records.div_ceil(3);
    let mut buffers: [Vec<u8>; 3] = Default::default();
    let mut counts = [0usize; 3];
    let mut landed = Landed::default();
    for post in PostGenerator::new(args.seed).take(posts) {
        for (i, (rt, value)) in post.records().into_iter().enumerate() {
            serde_json::to_writer(&mut buffers[i], value)
                .map_err(|e| CliError::Bench(e.to_string()))?;
            buffers[i].push(b'\n');
            counts[i] += 1;
            if counts[i] % args.per_object.max(1) == 0 {
                landed
                    .put(&store, rt, counts[i], std::mem::take(&mut buffers[i]))
                    .await?;
            }
        }
    }
    for (i, rt) in shared::RecordType::ALL.into_iter().enumerate() {
        if !buffers[i].is_empty() {
            landed
                .put(&store, rt, counts[i], std::mem::take(&mut buffers[i]))
                .await?;
        }
    }
    let Landed {
        objects,
        total_bytes,
        all_lines,
    } = landed;
    let records: usize = counts.iter().sum();
    println!(
        "\nbatch-clean: {records} records in {objects} objects, {:.1} MB of NDJSON",
        total_bytes as f64 / 1e6
    );

    // Baseline: decode every line as JSON, nothing else.
    reset_peak_rss();
    let (decoded, baseline) = decode_baseline(all_lines.split(|b| *b == b'\n'));
    let baseline_peak = peak_rss_mb();
    drop(all_lines);

    // Measured: batch-clean from the raw objects to committed Delta tables.
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap_or("lake"))?;
    let deps = BatchCleanDeps {
        raw: RawStores::local_dir(&raw_dir)?,
        lake,
    };
    let landed = list_landed(&store, LOCAL_RAW_BUCKET).await?;
    let bar = progress(landed.len() as u64, "cleaning");
    reset_peak_rss();
    let start = Instant::now();
    let mut written = 0usize;
    for chunk in landed.chunks(args.objects_per_invocation.max(1)) {
        let report =
            batch_clean::handle_s3(&batch_clean::objects::s3_put_event(chunk), &deps).await?;
        written += report.counts.rows_written
            + report.counts.duplicates_skipped
            + report.counts.quarantined;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let measured = start.elapsed().as_secs_f64();
    let measured_peak = peak_rss_mb();
    if written != records || decoded != records {
        return Err(CliError::Bench(format!(
            "bench lost records: {records} in, {written} accounted for"
        )));
    }

    let mb = total_bytes as f64 / 1e6;
    println!("baseline (JSON decode only): {baseline:.2} s  {:>10.0} records/s  {:>7.1} MB/s  peak RSS {baseline_peak:.0} MB", records as f64 / baseline, mb / baseline);
    println!("batch-clean → Delta commit:  {measured:.2} s  {:>10.0} records/s  {:>7.1} MB/s  peak RSS {measured_peak:.0} MB", records as f64 / measured, mb / measured);
    println!(
        "ratio: batch-clean takes {:.1}× the time of decoding alone ({} invocations of {} objects)",
        measured / baseline,
        landed.len().div_ceil(args.objects_per_invocation.max(1)),
        args.objects_per_invocation
    );
    Ok(())
}

/// Resets the kernel's peak-RSS counter for this process (Linux); elsewhere a no-op.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size since the last reset, in MiB (0 where unknown).
pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
