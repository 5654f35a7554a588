//! `pinpipe bench --only soak`: `serve` under a steady mixed load on both routes for a fixed
//! time, watched from outside. It runs `pinpipe serve` as a child process on the embedded
//! default (what a user runs), posts one-record requests at a fixed rate — pins and half the
//! users on the batch route, geo records and the other users on the stream route — and samples
//! the process's resident memory and open file descriptors, the size of the spool and the
//! stream log, the rows in the lake and the lag (records answered 200 and not in the lake yet).
//! After Ctrl-C it checks that every record answered 200 is in the lake exactly once, and that
//! neither memory nor descriptors kept growing over the run's last two thirds.

use crate::generate::PostGenerator;
use crate::CliError;
use lake::Lake;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The topic and stream prefix the load uses (the original pipeline's user id).
const PREFIX: &str = "0a5e6ec37a2f";

/// Load clients; each sends its share of the rate, one request at a time.
const CLIENTS: usize = 16;

/// Growth over the run's last two thirds past which memory counts as growing without bound:
/// the last third's peak may exceed the middle third's by this share, plus [`RSS_SLACK_MB`].
const RSS_GROWTH: f64 = 0.5;
const RSS_SLACK_MB: f64 = 32.0;

/// Descriptors the last third may hold above the middle third's peak (connections come and go).
const FD_SLACK: usize = 32;

/// One sample of the running server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    acked: usize,
    rss_mb: f64,
    fds: usize,
    spool_kb: u64,
    rows: usize,
}

/// The records a run sent and had answered 200, per table.
#[derive(Debug, Default)]
struct Acked {
    pin: Vec<i64>,
    geo: Vec<i64>,
    user: Vec<i64>,
    refused: usize,
}

/// Runs the soak for `seconds` at `rate` requests per second, sampling every `sample_seconds`.
pub async fn bench_soak(seconds: u64, rate: u32, sample_seconds: u64) -> Result<(), CliError> {
    let bench = |what: &str, e: &dyn std::fmt::Display| CliError::Bench(format!("{what}: {e}"));
    let dir = tempfile::tempdir().map_err(|e| bench("temp dir", &e))?;
    let (raw, lake_dir) = (dir.path().join("raw"), dir.path().join("lake"));
    println!(
        "\nsoak: `pinpipe serve` for {seconds} s at {rate} requests/s ({CLIENTS} clients, one record each, batch and stream routes), sampled every {sample_seconds} s"
    );
    let (mut child, url) = start_serve(&raw, &lake_dir)?;
    let pid = child.id();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let answered = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, acked, answered) = (url.clone(), acked.clone(), answered.clone());
            let every = Duration::from_secs_f64(CLIENTS as f64 / f64::from(rate.max(1)));
            tokio::spawn(client(c, url, every, deadline, acked, answered))
        })
        .collect();

    let lake = Lake::open(&lake_dir.to_string_lossy())?;
    let start = Instant::now();
    let mut samples = Vec::new();
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>5} {:>10} {:>9} {:>7}",
        "time s", "answered", "req/s", "RSS MB", "fds", "spool KB", "rows", "lag"
    );
    let mut last: Option<Sample> = None;
    loop {
        let wait = Duration::from_secs(sample_seconds.max(1));
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(wait.min(deadline - now)).await;
        let sample = Sample {
            at: start.elapsed().as_secs_f64(),
            acked: answered.load(Ordering::Relaxed),
            rss_mb: rss_mb(pid).unwrap_or(0.0),
            fds: open_fds(pid).unwrap_or(0),
            spool_kb: (dir_bytes(&raw.join(".spool")) + dir_bytes(&raw.join(".stream"))) / 1024,
            rows: lake_rows(&lake).await,
        };
        let per_sec = match last {
            Some(l) if sample.at > l.at => (sample.acked - l.acked) as f64 / (sample.at - l.at),
            _ => sample.acked as f64 / sample.at.max(0.001),
        };
        println!(
            "{:>7.0} {:>9} {:>8.0} {:>8.1} {:>5} {:>10} {:>9} {:>7}",
            sample.at,
            sample.acked,
            per_sec,
            sample.rss_mb,
            sample.fds,
            sample.spool_kb,
            sample.rows,
            sample.acked.saturating_sub(sample.rows)
        );
        samples.push(sample);
        last = Some(sample);
    }
    for c in clients {
        c.await.map_err(|e| bench("a load client", &e))?;
    }
    let flushing = Instant::now();
    stop(&mut child)?;
    let flush_s = flushing.elapsed().as_secs_f64();

    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|p| p.into_inner()));
    let total = acked.pin.len() + acked.geo.len() + acked.user.len();
    let lake = Lake::open(&lake_dir.to_string_lossy())?;
    let mut problems = Vec::new();
    for (table, sent) in [
        ("pin", &acked.pin),
        ("geo", &acked.geo),
        ("user", &acked.user),
    ] {
        let inds: Vec<i64> = lake
            .read_rows(table)
            .await?
            .iter()
            .filter_map(|r| r.get("ind").and_then(Value::as_i64))
            .collect();
        let distinct: BTreeSet<i64> = inds.iter().copied().collect();
        if distinct.len() != inds.len() {
            problems.push(format!(
                "{table}: {} rows twice",
                inds.len() - distinct.len()
            ));
        }
        let missing = sent.iter().filter(|i| !distinct.contains(i)).count();
        if missing > 0 {
            problems.push(format!(
                "{table}: {missing} records answered 200 are missing"
            ));
        }
    }
    println!(
        "answered 200: {total} records ({} refused); after Ctrl-C the rest was cleaned in {flush_s:.1} s; in the lake: every one, once{}",
        acked.refused,
        if problems.is_empty() { "" } else { " — NOT SO" }
    );
    problems.extend(growth(&samples));
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        println!(
            "RSS {:.1} → {:.1} MB, descriptors {} → {}, peak lag {} records",
            first.rss_mb,
            last.rss_mb,
            first.fds,
            last.fds,
            samples
                .iter()
                .map(|s| s.acked.saturating_sub(s.rows))
                .max()
                .unwrap_or(0)
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Bench(format!("soak: {}", problems.join("; "))))
    }
}

/// What grew without bound: the last third of the samples against the middle third.
fn growth(samples: &[Sample]) -> Vec<String> {
    let third = samples.len() / 3;
    if third == 0 {
        return Vec::new();
    }
    let middle = &samples[third..2 * third];
    let end = &samples[2 * third..];
    let peak_rss = |s: &[Sample]| s.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
    let peak_fds = |s: &[Sample]| s.iter().map(|s| s.fds).max().unwrap_or(0);
    let mut problems = Vec::new();
    let (rss_middle, rss_end) = (peak_rss(middle), peak_rss(end));
    if rss_end > rss_middle * (1.0 + RSS_GROWTH) + RSS_SLACK_MB {
        problems.push(format!(
            "memory kept growing: peak RSS {rss_middle:.1} MB in the run's middle third, {rss_end:.1} MB in its last"
        ));
    }
    let (fds_middle, fds_end) = (peak_fds(middle), peak_fds(end));
    if fds_end > fds_middle + FD_SLACK {
        problems.push(format!(
            "descriptors kept growing: {fds_middle} open in the run's middle third, {fds_end} in its last"
        ));
    }
    problems
}

/// One load client: a post's pin on the batch route, its geo record on the stream route, its
/// user on either in turn; one request every `every`, until `deadline`.
async fn client(
    c: usize,
    url: String,
    every: Duration,
    deadline: Instant,
    acked: Arc<Mutex<Acked>>,
    answered: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::new();
    let posts = PostGenerator::new(c as u64);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'posts: for (n, mut post) in (0_i64..).zip(posts) {
        let ind = c as i64 * 1_000_000_000 + n;
        post.pin["index"] = ind.into();
        post.geo["ind"] = ind.into();
        post.user["ind"] = ind.into();
        for (table, record, stream) in [
            ("pin", &post.pin, false),
            ("geo", &post.geo, true),
            ("user", &post.user, ind % 2 == 0),
        ] {
            tick.tick().await;
            if Instant::now() >= deadline {
                break 'posts;
            }
            let request = if stream {
                let name = format!("streaming-{PREFIX}-{table}");
                http.put(format!("{url}/streams/{name}/record"))
                    .header("Content-Type", "application/json")
                    .body(crate::wire::kinesis_body(&name, record))
            } else {
                http.post(format!("{url}/topics/{PREFIX}.{table}"))
                    .header("Content-Type", "application/vnd.kafka.json.v2+json")
                    .body(crate::wire::kafka_body(record))
            };
            let ok = request
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            let mut acked = acked.lock().unwrap_or_else(|p| p.into_inner());
            if ok {
                match table {
                    "pin" => acked.pin.push(ind),
                    "geo" => acked.geo.push(ind),
                    _ => acked.user.push(ind),
                }
                answered.fetch_add(1, Ordering::Relaxed);
            } else {
                acked.refused += 1;
            }
        }
    }
}

/// Starts `pinpipe serve` (this same binary) on a free port; the process and its address.
fn start_serve(raw: &Path, lake: &Path) -> Result<(Child, String), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Bench(format!("cannot find this binary to run serve: {e}")))?;
    let mut child = Command::new(exe)
        .args(["serve", "--port", "0", "--raw"])
        .arg(raw)
        .arg("--lake")
        .arg(lake)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CliError::Bench(format!("cannot start serve: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| CliError::Bench("serve has no stdout".into()))?;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let _ = stdout.read_line(&mut line);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .map(str::to_string);
    let Some(url) = url else {
        let _ = child.kill();
        return Err(CliError::Bench(format!(
            "serve did not print its address: {line}"
        )));
    };
    // Keep reading what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Ok((child, url))
}

/// Ctrl-C, then waits for serve to clean what it holds and exit.
fn stop(child: &mut Child) -> Result<(), CliError> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status();
    if !sent.is_ok_and(|s| s.success()) {
        let _ = child.kill();
        return Err(CliError::Bench("could not send Ctrl-C to serve".into()));
    }
    let status = child
        .wait()
        .map_err(|e| CliError::Bench(format!("waiting for serve: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Bench(format!("serve exited with {status}")))
    }
}

/// The rows in the lake's three tables (0 for a table not there yet or being written).
async fn lake_rows(lake: &Lake) -> usize {
    let mut rows = 0;
    for table in ["pin", "geo", "user"] {
        rows += lake.count_rows(table).await.unwrap_or(0);
    }
    rows
}

/// Resident memory of process `pid`, in MB (Linux `/proc`).
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Open file descriptors of process `pid` (Linux `/proc`).
fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Bytes in the files under `dir` (0 when it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss_mb: f64, fds: usize) -> Sample {
        Sample {
            at: 0.0,
            acked: 0,
            rss_mb,
            fds,
            spool_kb: 0,
            rows: 0,
        }
    }

    #[test]
    fn steady_memory_passes_and_memory_that_keeps_growing_fails() {
        let steady: Vec<Sample> = [40.0, 60.0, 62.0, 61.0, 63.0, 62.0]
            .iter()
            .map(|&m| sample(m, 20))
            .collect();
        assert!(growth(&steady).is_empty());
        let leaking: Vec<Sample> = [40.0, 60.0, 80.0, 100.0, 150.0, 200.0]
            .iter()
            .map(|&m| sample(m, 20))
            .collect();
        let problems = growth(&leaking);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("memory kept growing"));
        let fds: Vec<Sample> = [20, 22, 24, 30, 60, 90]
            .iter()
            .map(|&n| sample(50.0, n))
            .collect();
        assert!(growth(&fds)[0].starts_with("descriptors kept growing"));
    }
}
