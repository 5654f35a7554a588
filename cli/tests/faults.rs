//! The fault-injection suite: `pinpipe serve` and `pinpipe process` killed, signalled, stalled
//! and cut off from their storage, each followed by exact lake contents — every acknowledged
//! record present, none twice. Bounded in count and time; all traffic stays on 127.0.0.1.

mod common;

use common::serve::{geo_row, post_batch, post_until_refused, put_stream, Routes, Serve};
use common::{pinpipe, sorted_inds, succeeded, OutputWithin};
use lake::Lake;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Asserts the lake's geo table holds every acknowledged `ind`, none twice, and nothing that
/// was never sent; at most `cut_off` more than acknowledged (requests whose answer a stop cut
/// off: the record landed but the client never heard so).
async fn assert_exact(lake: &Lake, sent: &[i64], acked: &[i64], cut_off: usize, printed: &str) {
    let inds = sorted_inds(lake, "geo").await;
    let distinct: BTreeSet<i64> = inds.iter().copied().collect();
    assert_eq!(inds.len(), distinct.len(), "no record twice\n{printed}");
    let missing: Vec<&i64> = acked.iter().filter(|i| !distinct.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?}\n{printed}"
    );
    let sent: BTreeSet<i64> = sent.iter().copied().collect();
    assert!(distinct.is_subset(&sent), "only what was sent");
    assert!(
        distinct.len() - acked.len() <= cut_off,
        "{} extra\n{printed}",
        distinct.len() - acked.len()
    );
}

/// Posts geo records `0..n` on the batch route and `100..100 + n` on the stream route, one per
/// request, each answered 200.
async fn post_on_both_routes(url: &str, n: i64) {
    let http = reqwest::Client::new();
    for ind in 0..n {
        let batch = post_batch(&http, url, "0a5e6ec37a2f.geo", &geo_row(ind))
            .await
            .unwrap();
        assert_eq!(batch.status(), 200);
        let put = put_stream(&http, url, &geo_row(100 + ind)).await.unwrap();
        assert_eq!(put.status(), 200);
    }
}

/// Runs eight load clients against `serve` until `stop` has stopped it; (sent, acknowledged).
async fn under_load(
    url: &str,
    routes: Routes,
    stop: impl FnOnce() + Send + 'static,
) -> (Vec<i64>, Vec<i64>) {
    let clients: Vec<_> = (1..=8)
        .map(|c| tokio::spawn(post_until_refused(url.to_string(), c, 2_000, routes)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::spawn_blocking(stop).await.unwrap();
    let (mut sent, mut acked) = (Vec::new(), Vec::new());
    for client in clients {
        let (s, a) = client.await.unwrap();
        sent.extend(s);
        acked.extend(a);
    }
    assert!(
        acked.len() > 50,
        "the load ran: {} acknowledged",
        acked.len()
    );
    assert!(acked.len() < 16_000, "the stop came mid-load");
    (sent, acked)
}

fn local_lake(dir: &Path) -> Lake {
    Lake::open(dir.join("lake").to_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_serve_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let pid = serve.child.id();
    // Both routes: batch records are in the spool, stream records in the stream log, on disk
    // before the 200.
    let (sent, acked) = under_load(&serve.url, Routes::Both, move || {
        assert!(std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    })
    .await;
    serve.kill();

    // Restart: the spool the killed process left is landed, and Ctrl-C cleans it all.
    let printed = Serve::start(dir.path()).stop();
    assert_exact(&local_lake(dir.path()), &sent, &acked, 8, &printed).await;
}

/// SIGTERM while eight clients post on both routes: serve stops accepting, and everything it
/// answered 200 for — spooled batch records and in-process stream records — is in the lake when
/// it exits, with no restart.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_lands_every_acknowledged_record_on_both_routes() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let url = serve.url.clone();
    let printed = Arc::new(std::sync::Mutex::new(String::new()));
    let printed_by_stop = printed.clone();
    let (sent, acked) = under_load(&url, Routes::Both, move || {
        *printed_by_stop.lock().unwrap() = serve.stop_with("-TERM");
    })
    .await;
    let printed = printed.lock().unwrap().clone();
    assert!(printed.contains("cleaning"), "{printed}");
    assert_exact(&local_lake(dir.path()), &sent, &acked, 8, &printed).await;
}

/// SIGTERM (what `kill`, systemd and containers send) stops serve like Ctrl-C: a client that
/// stalls mid-body gets 408 instead of holding the shutdown, and every acknowledged record, on
/// both paths, is in the lake afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn serve_has_no_timeouts_and_sigterm_exits_without_flushing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    // Nothing is flushed or cleaned before the stop: only the shutdown can land them.
    let serve = Serve::start_with(
        dir.path(),
        &[
            "--request-timeout-ms",
            "1000",
            "--flush-ms",
            "600000",
            "--interval-ms",
            "600000",
        ],
    );
    post_on_both_routes(&serve.url, 5).await;
    // A client that promises 1,000 bytes and sends one.
    let addr = serve.url.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /topics/0a5e6ec37a2f.geo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let printed = tokio::task::spawn_blocking(move || serve.stop_with("-TERM"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "{printed}");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let inds = sorted_inds(&local_lake(dir.path()), "geo").await;
    assert_eq!(
        inds,
        vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104],
        "{printed}"
    );
}

/// The lake refuses geo's commits through the whole shutdown: the in-process stream's records
/// (memory only) are not dropped but put in the spool, and land when serve starts again.
#[tokio::test(flavor = "multi_thread")]
async fn the_lake_refusing_writes_at_shutdown_loses_no_stream_record() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = ["--flush-ms", "600000", "--interval-ms", "600000"];
    let serve = Serve::start_with(dir.path(), &quiet);
    post_on_both_routes(&serve.url, 5).await;
    // geo's location becomes a file: every commit to it fails, as an unwritable store would.
    let geo = dir.path().join("lake").join("geo");
    let away = dir.path().join("lake").join("geo.away");
    std::fs::rename(&geo, &away).unwrap();
    std::fs::write(&geo, b"not a table").unwrap();
    let printed = tokio::task::spawn_blocking(move || serve.stop_with("-TERM"))
        .await
        .unwrap();
    std::fs::remove_file(&geo).unwrap();
    std::fs::rename(&away, &geo).unwrap();

    let restarted = Serve::start_with(dir.path(), &quiet).stop();
    let inds = sorted_inds(&local_lake(dir.path()), "geo").await;
    assert_eq!(
        inds,
        vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104],
        "{printed}\n{restarted}"
    );
    assert!(
        printed.contains("5 stream records could not be cleaned"),
        "{printed}"
    );
}

/// A backlog at shutdown can take minutes to clean: serve says what it is cleaning and how
/// far it got, on both paths, and still lands every acknowledged record.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_flush_at_shutdown_prints_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    // One object per record, nothing cleaned before the stop, four objects per invocation.
    let serve = Serve::start_with(
        dir.path(),
        &[
            "--flush-records",
            "1",
            "--interval-ms",
            "600000",
            "--batch-size",
            "4",
        ],
    );
    post_on_both_routes(&serve.url, 10).await;
    let printed = tokio::task::spawn_blocking(move || serve.stop_with("-TERM"))
        .await
        .unwrap();
    for line in [
        "cleaning 10 landed objects…",
        "  4/10 objects cleaned",
        "  8/10 objects cleaned",
        "  10/10 objects cleaned",
        "cleaning 10 stream records…",
    ] {
        assert!(printed.contains(line), "`{line}` in:\n{printed}");
    }
    let inds = sorted_inds(&local_lake(dir.path()), "geo").await;
    let expected: Vec<i64> = (0..10).chain(100..110).collect();
    assert_eq!(inds, expected, "{printed}");
}

/// A client that sends part of its declared body and then closes its side: the body cannot be
/// read, which is the client's problem (400, send it again), not an oversized body (413).
#[tokio::test(flavor = "multi_thread")]
async fn a_body_read_error_is_answered_as_a_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let addr = serve.url.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&addr).await.unwrap();
    client
        .write_all(b"POST /topics/0a5e6ec37a2f.geo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"records\":")
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body_unreadable"), "{answer}");
    let printed = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(
        sorted_inds(&local_lake(dir.path()), "geo").await.is_empty(),
        "{printed}"
    );
}

/// A raw tree of `objects` NDJSON objects of `per_object` geo records each, `ind`s 0.. in order.
fn geo_raw_tree(raw: &Path, objects: usize, per_object: usize) -> Vec<i64> {
    let folder = raw.join("topics/0a5e6ec37a2f.geo/dt=2026-11-28");
    std::fs::create_dir_all(&folder).unwrap();
    let mut inds = Vec::new();
    for o in 0..objects {
        let mut body = String::new();
        for r in 0..per_object {
            let ind = (o * per_object + r) as i64;
            body.push_str(&geo_row(ind).to_string());
            body.push('\n');
            inds.push(ind);
        }
        std::fs::write(folder.join(format!("part-{o:05}.ndjson")), body).unwrap();
    }
    inds
}

/// Output of a child that has exited (or been killed), both streams.
fn finished(mut child: Child) -> (bool, String) {
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status.success(), out)
}

/// `kill -9` of `process` at three points of a backfill, then a rerun to the end: each record
/// exactly once (every invocation commits its rows and its bookkeeping together).
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_process_then_a_rerun_lands_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let expected = geo_raw_tree(&raw, 60, 200);
    let process = || {
        let mut command = pinpipe();
        command
            .args(["process", "--batch-size", "2", "--raw"])
            .arg(&raw)
            .arg("--lake")
            .arg(dir.path().join("lake"));
        command
    };
    let mut interrupted = 0;
    for (round, after_ms) in [700u64, 1200, 1700].into_iter().enumerate() {
        let mut child = process()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms * (round as u64 + 1) / 2));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        let _ = finished(child);
    }
    assert!(interrupted > 0, "no kill came mid-run");
    let stdout = succeeded(&process().output_within_limit());
    let inds = sorted_inds(&local_lake(dir.path()), "geo").await;
    assert_eq!(inds.len(), expected.len(), "{stdout}");
    assert_eq!(inds, expected, "{stdout}");
}

/// A TCP proxy on 127.0.0.1 in front of the S3-compatible server, which the test can take
/// down (open connections are cut, new ones closed at once) and bring back.
struct Proxy {
    addr: String,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let (up, _) = watch::channel(true);
        let watcher = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = watcher.subscribe();
                if !*state.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { addr, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// How many commit files a `ListObjectsV2` request (`url`) lists.
async fn commits_listed(url: &str) -> usize {
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    body.matches(".json</Key>").count()
}

/// Creates `bucket` on the S3-compatible server.
async fn create_bucket(endpoint: &str, bucket: &str) {
    let status = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "create bucket: {status}");
}

/// `pinpipe process` from a local raw tree into an S3 lake at `root`, reached through
/// `endpoint`, with delta-rs storage options `storage` (retries) and backtraces on.
fn process_on_s3(raw: &Path, root: &str, endpoint: &str, storage: &str) -> std::process::Command {
    let mut command = pinpipe();
    command
        .arg("process")
        .arg("--raw")
        .arg(raw)
        .args(["--lake", root])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LAKE_STORAGE_OPTIONS", storage)
        .env("RUST_BACKTRACE", "1");
    command
}

/// The S3 lake at `root`, read straight from the server (not through a test's proxy).
fn s3_lake(root: &str, endpoint: &str) -> Lake {
    let options: HashMap<String, String> = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Lake::open_with_options(root, options).unwrap()
}

/// A failed backfill's output names the lake and says what to do.
fn assert_names_store_and_remedy(printed: &str, root: &str) {
    assert!(
        printed.contains(root),
        "the error names the store:\n{printed}"
    );
    assert!(
        printed.contains("run the same command again once the lake and raw store are reachable"),
        "and says what to do:\n{printed}"
    );
}

/// The S3-compatible server the test command started.
fn s3_endpoint() -> String {
    let endpoint = std::env::var("PINPIPE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test.sh, which starts an S3-compatible server on 127.0.0.1")
    });
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    endpoint
}

/// The S3 lake's storage is cut off mid-backfill: `process` exits 1 with an error that names
/// the store — no panic, no backtrace — and, with the storage back, a rerun leaves every record
/// exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn an_s3_outage_mid_process_fails_cleanly_and_a_rerun_is_exact() {
    let endpoint = s3_endpoint();
    let bucket = format!("lake-outage-{}", std::process::id());
    create_bucket(&endpoint, &bucket).await;
    let proxy = Proxy::start(endpoint.trim_start_matches("http://").to_string()).await;

    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let expected = geo_raw_tree(&raw, 40, 250);
    let root = format!("s3://{bucket}/lake");
    let process = || {
        let mut command = process_on_s3(&raw, &root, &proxy.addr, "max_retries=1,retry_timeout=2s");
        command.args(["--batch-size", "1"]);
        command
    };

    let child = process()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut off once a few of the forty invocations have committed, whatever their speed.
    let log = format!("{endpoint}/{bucket}?list-type=2&prefix=lake/geo/_delta_log/");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while commits_listed(&log).await < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.set_up(false);
    let (ok, printed) = tokio::task::spawn_blocking(move || finished(child))
        .await
        .unwrap();
    assert!(
        !ok,
        "the outage came after the backfill finished:\n{printed}"
    );
    assert!(!printed.contains("panicked"), "{printed}");
    assert!(!printed.contains("RUST_BACKTRACE"), "{printed}");
    assert_names_store_and_remedy(&printed, &root);

    proxy.set_up(true);
    let mut rerun = process();
    let stdout = tokio::task::spawn_blocking(move || succeeded(&rerun.output_within_limit()))
        .await
        .unwrap();
    let lake = s3_lake(&root, &endpoint);
    let inds = sorted_inds(&lake, "geo").await;
    assert_eq!(inds.len(), expected.len(), "{stdout}");
    assert_eq!(inds, expected, "{stdout}");
}

/// Forwards to `upstream`, but cuts any connection that sends a multipart-upload completion
/// (`POST …?uploadId=…`).
async fn completion_cutting_proxy(upstream: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if text
                            .lines()
                            .any(|l| l.starts_with("POST ") && l.contains("uploadId="))
                        {
                            return;
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
                up.abort();
            });
        }
    });
    addr
}

/// A pin object big enough that its Parquet file goes up as a multipart upload (over 5 MiB).
fn big_pin_object(raw: &Path, rows: u64) {
    let folder = raw.join("topics/0a5e6ec37a2f.pin/dt=2026-11-28");
    std::fs::create_dir_all(&folder).unwrap();
    let mut body = String::new();
    for i in 0..rows {
        // Text that does not compress, so the file really is that big.
        let noise: String = (0..20u64)
            .map(|k| {
                format!(
                    "{:016x}",
                    (i * 2_654_435_761 + k * 40_503).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                )
            })
            .collect();
        let row =
            serde_json::json!({"index": i, "unique_id": noise, "title": noise, "category": "art"});
        body.push_str(&row.to_string());
        body.push('\n');
    }
    std::fs::write(folder.join("big.ndjson"), body).unwrap();
}

/// The S3-compatible server refuses to complete a multipart upload: object_store and delta-rs
/// panic inside while cleaning up (and catch it). `process` must report the storage error and
/// what to do — not `thread … panicked` with a backtrace — and a rerun is exact.
#[tokio::test(flavor = "multi_thread")]
async fn storage_errors_print_panics_from_inside_delta_rs_and_object_store() {
    let endpoint = s3_endpoint();
    let bucket = format!("lake-multipart-{}", std::process::id());
    create_bucket(&endpoint, &bucket).await;
    let cutting =
        completion_cutting_proxy(endpoint.trim_start_matches("http://").to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    big_pin_object(&raw, 30_000);
    let root = format!("s3://{bucket}/lake");
    let process =
        |endpoint: &str| process_on_s3(&raw, &root, endpoint, "max_retries=0,retry_timeout=1s");
    let mut failing = process(&cutting);
    let out = tokio::task::spawn_blocking(move || failing.output_within_limit())
        .await
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{printed}");
    assert!(!printed.contains("panicked"), "{printed}");
    assert!(!printed.contains("stack backtrace"), "{printed}");
    assert_names_store_and_remedy(&printed, &root);

    let mut rerun = process(&endpoint);
    let stdout = tokio::task::spawn_blocking(move || succeeded(&rerun.output_within_limit()))
        .await
        .unwrap();
    let lake = s3_lake(&root, &endpoint);
    let inds = sorted_inds(&lake, "pin").await;
    assert_eq!(inds, (0..30_000).collect::<Vec<i64>>(), "{stdout}");
}
