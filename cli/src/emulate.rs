//! `pinpipe emulate`: the user-posting emulation, as a real HTTP client of the ingest API —
//! what the original Python emulators did. Each iteration takes the next post and sends its
//! pin, geo and user records to the batch route, the stream route, or both, with exactly the
//! original clients' bytes; then sleeps 0–1 s like the original (or paces at `--rate`).

use crate::db::Database;
use crate::generate::PostGenerator;
use crate::local::{progress, IngestPath};
use crate::posts::{self, Post};
use crate::wire::{kafka_body, kinesis_body};
use crate::CliError;
use clap::Args;
use rand::Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `pinpipe emulate`.
#[derive(Debug, Clone, Args)]
pub struct EmulateArgs {
    /// Base URL of the ingest API, with any stage prefix (e.g. https://abc.execute-api…/production).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Posts to send (default: until Ctrl-C, or until the rows run out).
    #[arg(long)]
    pub posts: Option<u64>,
    /// Which routes each record is sent to.
    #[arg(long, value_enum, default_value_t = IngestPath::Batch)]
    pub path: IngestPath,
    /// Posts per second (0: as fast as possible). Default: a random 0–1 s pause, like the original.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the post generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Read rows from DIR/pin.jsonl, geo.jsonl and user.jsonl instead of generating them.
    #[arg(long, value_name = "DIR", conflicts_with = "db_url")]
    pub from_dir: Option<PathBuf>,
    /// Read rows from a MySQL/PostgreSQL database (tables pinterest_data, geolocation_data,
    /// user_data), like the original RDS source.
    #[arg(long, env = "PINPIPE_DB_URL")]
    pub db_url: Option<String>,
    /// Topic prefix (the original used the user id).
    #[arg(long, default_value = "0a5e6ec37a2f")]
    pub prefix: String,
    /// API key of a deployed API, sent as `x-api-key`.
    #[arg(long, env = "PINPIPE_API_KEY")]
    pub api_key: Option<String>,
}

/// What an emulation sent and how the API answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmulateReport {
    /// Posts sent.
    pub posts: u64,
    /// Records sent (three per post and path).
    pub records: u64,
    /// Requests made.
    pub requests: u64,
    /// Answers by HTTP status; `0` counts requests that got no answer (connection errors).
    pub by_status: BTreeMap<u16, u64>,
}

impl EmulateReport {
    /// Requests answered `200`.
    pub fn accepted(&self) -> u64 {
        self.by_status.get(&200).copied().unwrap_or(0)
    }

    /// Requests not answered `200` (including those with no answer).
    pub fn rejected(&self) -> u64 {
        self.requests - self.accepted()
    }

    fn counts(&self) -> String {
        if self.by_status.is_empty() {
            return "no answers yet".into();
        }
        self.by_status
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("{n} × no answer")
                } else {
                    format!("{n} × {s}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

enum Source {
    Generated(Box<PostGenerator>),
    Rows(std::vec::IntoIter<Post>),
    Db(Database, u64),
}

impl Source {
    async fn next(&mut self) -> Result<Option<Post>, CliError> {
        match self {
            Source::Generated(g) => Ok(Some(
                g.next_post()
                    .records()
                    .map(|(t, v)| (t, v.clone()))
                    .into_iter()
                    .collect(),
            )),
            Source::Rows(rows) => Ok(rows.next()),
            Source::Db(db, k) => {
                let post = db.post(*k).await?;
                *k += 1;
                Ok(post)
            }
        }
    }
}

/// Posts emulated users' posts to the API and prints how it answered.
pub async fn emulate(args: EmulateArgs) -> Result<(), CliError> {
    println!(
        "pinpipe emulate: posting to {} ({} path)…",
        args.url,
        match args.path {
            IngestPath::Batch => "batch",
            IngestPath::Stream => "stream",
            IngestPath::Both => "batch and stream",
        }
    );
    let report = run(&args, true).await?;
    println!(
        "sent {} posts ({} records) in {} requests: {} accepted, {} rejected ({})",
        report.posts,
        report.records,
        report.requests,
        report.accepted(),
        report.rejected(),
        report.counts()
    );
    if report.rejected() > 0 {
        return Err(CliError::Rejected(report.rejected()));
    }
    Ok(())
}

/// Sends posts until `args.posts`, the end of the rows, or Ctrl-C (when `stop_on_ctrl_c`).
pub async fn run(args: &EmulateArgs, stop_on_ctrl_c: bool) -> Result<EmulateReport, CliError> {
    let mut source = if let Some(dir) = &args.from_dir {
        Source::Rows(posts::from_dir(dir)?.into_iter())
    } else if let Some(url) = &args.db_url {
        Source::Db(Database::connect(url).await?, 0)
    } else {
        Source::Generated(Box::new(PostGenerator::new(args.seed)))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(CliError::Http)?;
    let base = args.url.trim_end_matches('/').to_string();
    let bar = progress(args.posts.unwrap_or(0), "posting");
    let mut report = EmulateReport::default();
    let mut rng = rand::rng();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while args.posts.is_none_or(|n| report.posts < n) {
        let Some(post) = source.next().await? else {
            break;
        };
        for (record_type, row) in &post {
            report.records += 1;
            let mut requests = Vec::with_capacity(2);
            if args.path.batch() {
                requests.push(
                    client
                        .post(format!("{base}/topics/{}.{record_type}", args.prefix))
                        .header("Content-Type", "application/vnd.kafka.json.v2+json")
                        .body(kafka_body(row)),
                );
            }
            if args.path.stream() {
                let stream = format!("streaming-{}-{record_type}", args.prefix);
                requests.push(
                    client
                        .put(format!("{base}/streams/{stream}/record"))
                        .header("Content-Type", "application/json")
                        .body(kinesis_body(&stream, row)),
                );
            }
            for mut request in requests {
                if let Some(key) = &args.api_key {
                    request = request.header("x-api-key", key);
                }
                let status = match request.send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(e) => {
                        tracing::warn!(error = %e, "request failed");
                        0
                    }
                };
                report.requests += 1;
                *report.by_status.entry(status).or_default() += 1;
            }
        }
        report.posts += 1;
        bar.inc(1);
        bar.set_message(report.counts());
        let pause = match args.rate {
            Some(r) if r > 0.0 => Duration::from_secs_f64(1.0 / r),
            Some(_) => Duration::ZERO,
            None => Duration::from_secs_f64(rng.random_range(0.0..1.0)),
        };
        if stop_on_ctrl_c {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = &mut ctrl_c => break,
            }
        } else if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}
