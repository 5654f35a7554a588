//! A `pinpipe serve` child process and the original clients' requests to it.

use super::pinpipe;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `pinpipe serve` process on a free localhost port.
pub struct Serve {
    pub child: Child,
    pub url: String,
    pub stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    pub fn start(dir: &Path) -> Serve {
        Serve::start_with(dir, &["--interval-ms", "200", "--flush-ms", "300"])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = pinpipe()
            .args(["serve", "--port", "0"])
            .arg("--raw")
            .arg(dir.join("raw"))
            .arg("--lake")
            .arg(dir.join("lake"))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in the startup line: {line}"))
            .to_string();
        assert!(line.contains("batch records → spool"), "{line}");
        Serve { child, url, stdout }
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Ctrl-C, then everything it printed until it exited.
    pub fn stop(self) -> String {
        self.stop_with("-INT")
    }

    /// Sends `signal` (`-INT`, `-TERM`), then everything it printed until it exited.
    pub fn stop_with(mut self, signal: &str) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        assert!(status.success(), "{rest}");
        rest
    }
}

/// A geo record with the given `ind`.
pub fn geo_row(ind: i64) -> Value {
    serde_json::json!({"ind": ind, "timestamp": "2020-08-28 03:52:47",
        "latitude": -89.9787, "longitude": -173.293, "country": "Albania"})
}

/// The original batch client's request for one record of `topic`, to the server at `base`.
pub async fn post_batch(
    http: &reqwest::Client,
    base: &str,
    topic: &str,
    row: &Value,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/topics/{topic}"))
        .header("Content-Type", "application/vnd.kafka.json.v2+json")
        .body(pinpipe::wire::kafka_body(row))
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

/// Which of the API's routes a load client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Only the batch route (`POST /topics/…`).
    Batch,
    /// The batch and the stream route in turn (`PUT /streams/…/record`).
    Both,
}

/// The original stream client's request for one geo record, to the server at `base`.
pub async fn put_stream(
    http: &reqwest::Client,
    base: &str,
    row: &Value,
) -> reqwest::Result<reqwest::Response> {
    let stream = "streaming-0a5e6ec37a2f-geo";
    http.put(format!("{base}/streams/{stream}/record"))
        .header("Content-Type", "application/json")
        .body(pinpipe::wire::kinesis_body(stream, row))
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

/// One load client: posts one-record geo requests with its own `ind`s until the server stops
/// answering (or `limit` requests); returns (sent, acknowledged).
pub async fn post_until_refused(
    url: String,
    client: i64,
    limit: i64,
    routes: Routes,
) -> (Vec<i64>, Vec<i64>) {
    let http = reqwest::Client::new();
    let (mut sent, mut acked) = (Vec::new(), Vec::new());
    for n in 0..limit {
        let ind = client * 1_000_000 + n;
        sent.push(ind);
        let row = geo_row(ind);
        let answer = if routes == Routes::Both && n % 2 == 1 {
            put_stream(&http, &url, &row).await
        } else {
            post_batch(&http, &url, "0a5e6ec37a2f.geo", &row).await
        };
        match answer {
            Ok(r) if r.status() == 200 => acked.push(ind),
            _ => break,
        }
    }
    (sent, acked)
}
