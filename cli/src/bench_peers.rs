//! `pinpipe bench --peers`: the SPEC's pin cleaning of the same generated NDJSON objects by
//! pinpipe (batch-clean → committed Delta tables, as `pinpipe process` runs it), DuckDB and
//! polars (`scripts/peer_clean.py`, → Parquet), timed in one run; prints each engine's median
//! wall and CPU time and peak memory, and pinpipe's ratios to each.

use crate::generate::PostGenerator;
use crate::local::LOCAL_RAW_BUCKET;
use crate::process::{clean_in_batches, PROCESS_BATCH_MIB, PROCESS_BATCH_OBJECTS};
use crate::CliError;
use batch_clean::objects::list_landed;
use batch_clean::{BatchCleanDeps, RawStores};
use lake::Lake;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One engine's figures for one run.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    wall: f64,
    cpu: f64,
    peak_mib: f64,
}

/// The medians of several runs' figures (each taken separately).
fn medians(runs: &[Figures]) -> Figures {
    let median = |f: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Figures {
        wall: median(|f| f.wall),
        cpu: median(|f| f.cpu),
        peak_mib: median(|f| f.peak_mib),
    }
}

/// CPU time (user + system, all threads) this process has used, in seconds (Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name; 100 ticks/s.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}

/// Writes `pins` generated pin records as NDJSON objects of `per_object` records each, in
/// this pipeline's raw layout; returns the files and their total size.
fn land_pins(
    raw: &Path,
    pins: usize,
    per_object: usize,
    seed: u64,
) -> Result<(Vec<PathBuf>, usize), CliError> {
    let folder = raw.join("topics/bench.pin/dt=2026-11-28");
    std::fs::create_dir_all(&folder)
        .map_err(|e| CliError::Bench(format!("{}: {e}", folder.display())))?;
    let (mut files, mut bytes, mut body) = (Vec::new(), 0, Vec::new());
    let mut flush = |body: &mut Vec<u8>, files: &mut Vec<PathBuf>| -> Result<(), CliError> {
        let path = folder.join(format!("part-{:05}.ndjson", files.len()));
        std::fs::write(&path, &body)
            .map_err(|e| CliError::Bench(format!("{}: {e}", path.display())))?;
        bytes += body.len();
        body.clear();
        files.push(path);
        Ok(())
    };
    for (i, post) in PostGenerator::new(seed).take(pins).enumerate() {
        serde_json::to_writer(&mut body, &post.pin).map_err(|e| CliError::Bench(e.to_string()))?;
        body.push(b'\n');
        if (i + 1) % per_object.max(1) == 0 {
            flush(&mut body, &mut files)?;
        }
    }
    if !body.is_empty() {
        flush(&mut body, &mut files)?;
    }
    Ok((files, bytes))
}

/// batch-clean over every landed object into a fresh lake, as `pinpipe process` runs it.
async fn run_pinpipe(raw: &Path, lake: &Path, pins: usize) -> Result<Figures, CliError> {
    let deps = BatchCleanDeps {
        raw: RawStores::local_dir(raw)?,
        lake: Lake::open(lake.to_str().unwrap_or("lake"))?,
    };
    let store = object_store::local::LocalFileSystem::new_with_prefix(raw)?;
    let objects = list_landed(&store, LOCAL_RAW_BUCKET).await?;
    crate::bench::reset_peak_rss();
    let (cpu, start) = (cpu_seconds(), Instant::now());
    let report =
        clean_in_batches(&deps, &objects, PROCESS_BATCH_OBJECTS, PROCESS_BATCH_MIB).await?;
    let figures = Figures {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        peak_mib: crate::bench::peak_rss_mb(),
    };
    let accounted = report.counts.rows_written + report.counts.duplicates_skipped;
    if accounted != pins || report.counts.quarantined != 0 {
        return Err(CliError::Bench(format!(
            "pinpipe cleaned {accounted} of {pins} pins ({} quarantined)",
            report.counts.quarantined
        )));
    }
    Ok(figures)
}

/// One peer engine's run of `scripts/peer_clean.py`; `None` (with the reason printed) when
/// the engine is not installed.
fn run_peer(
    python: &str,
    engine: &str,
    out: &Path,
    files: &[PathBuf],
    pins: usize,
) -> Result<Option<Figures>, CliError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peer_clean.py");
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(engine)
        .arg(out)
        .args(files)
        .output();
    let out = match output {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            println!(
                "{engine}: not run ({}); install it with `{python} -m pip install {engine}`",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(None);
        }
        Err(e) => {
            println!("{engine}: not run ({python}: {e})");
            return Ok(None);
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| CliError::Bench(format!("{engine} output: {e}")))?;
    let rows = v["rows"].as_u64().unwrap_or(0) as usize;
    if rows > pins || rows + pins / 100 < pins {
        return Err(CliError::Bench(format!(
            "{engine} wrote {rows} of {pins} rows"
        )));
    }
    let get = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Some(Figures {
        wall: get("wall_seconds"),
        cpu: get("cpu_seconds"),
        peak_mib: get("peak_mib"),
    }))
}

/// Has the kernel write out the files the engine before wrote, so each engine is timed from a
/// quiet disk: otherwise the kernel writes the last engine's output back (about 25 MB) on the
/// same two cores while the next one is timed. Best effort: where `sync` cannot run, the runs
/// are timed as they come.
fn flush_written_files() {
    let _ = std::process::Command::new("sync").status();
}

/// Runs pinpipe, DuckDB and polars `runs` times each, in turn, on the same objects, each from a
/// quiet disk.
pub async fn bench_peers(
    pins: usize,
    per_object: usize,
    runs: usize,
    seed: u64,
    python: &str,
) -> Result<(), CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Bench(format!("temp dir: {e}")))?;
    let raw = dir.path().join("raw");
    let (files, bytes) = land_pins(&raw, pins, per_object, seed)?;
    println!(
        "\npeers: the SPEC's pin cleaning of {pins} generated pins ({} objects, {:.1} MB of NDJSON), median of {runs} runs each",
        files.len(),
        bytes as f64 / 1e6
    );
    let engines = ["pinpipe", "duckdb", "polars"];
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); engines.len()];
    let mut missing = [false; 3];
    for run in 0..runs.max(1) {
        let lake = dir.path().join(format!("lake-{run}"));
        flush_written_files();
        figures[0].push(run_pinpipe(&raw, &lake, pins).await?);
        for (i, engine) in engines.iter().enumerate().skip(1) {
            if missing[i] {
                continue;
            }
            flush_written_files();
            let out = dir.path().join(format!("{engine}-{run}.parquet"));
            match run_peer(python, engine, &out, &files, pins)? {
                Some(f) => figures[i].push(f),
                None => missing[i] = true,
            }
        }
        let _ = std::fs::remove_dir_all(&lake);
    }
    println!(
        "  {:<34} {:>9} {:>9} {:>10}",
        "engine", "CPU s", "wall s", "peak MiB"
    );
    let what = [
        "pinpipe (batch-clean → Delta)",
        "DuckDB (SQL → Parquet)",
        "polars (lazy → Parquet)",
    ];
    let med: Vec<Option<Figures>> = figures
        .iter()
        .map(|runs| (!runs.is_empty()).then(|| medians(runs)))
        .collect();
    for (name, m) in what.iter().zip(&med) {
        if let Some(m) = m {
            println!(
                "  {:<34} {:>9.2} {:>9.2} {:>10.0}",
                name, m.cpu, m.wall, m.peak_mib
            );
        }
    }
    if let Some(ours) = med[0] {
        for (engine, theirs) in ["DuckDB", "polars"].iter().zip(&med[1..]) {
            if let Some(theirs) = theirs {
                println!(
                    "ratio: pinpipe takes {:.2}× {engine}'s wall time and {:.2}× its CPU time",
                    ours.wall / theirs.wall,
                    ours.cpu / theirs.cpu
                );
            }
        }
    }
    Ok(())
}
