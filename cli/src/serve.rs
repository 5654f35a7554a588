//! `pinpipe serve`: the ingest API over HTTP on localhost, served by the same
//! `ingest_api::handle` Lambda runs.
//!
//! On the embedded default, batch records go to a durable spool that lands one object per flush
//! in a local raw directory (see [`crate::spool`]), and stream records go on an in-process
//! stream behind a write-ahead log (see [`crate::stream_log`]), each route answering `200` only
//! once its records are on disk; a background worker cleans both into the local lake as records arrive (landed
//! objects are picked up every `--interval`, in batches, and the stream is handed to
//! stream-clean as `KinesisEvent`s). With `--raw s3://…` and `--stream kinesis` the API lands in
//! S3 and puts on Kinesis (real, or local endpoints via `AWS_ENDPOINT_URL`) and leaves the
//! cleaning to the deployed functions. Ctrl-C stops accepting requests, then flushes the spool
//! and the pending cleaning, in that order, before exiting.

use crate::consume::{Consumer, ConsumerConfig};
use crate::local::{flush_stream, LOCAL_RAW_BUCKET};
use crate::spool::{LandingArgs, LandingKind, Spool};
use crate::stream_log::DurableStream;
use crate::CliError;
use batch_clean::objects::{list_landed, s3_put_event};
use batch_clean::{BatchCleanDeps, BatchReport, RawStores};
use clap::{Args, ValueEnum};
use http::StatusCode;
use ingest_api::error::ApiError;
use ingest_api::limits::MAX_BODY_BYTES;
use ingest_api::{
    IngestDeps, KafkaConfig, KafkaLanding, KinesisSink, Landing, MemoryStream, RawLanding,
};
use lake::Lake;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use stream_clean::{StreamCleanDeps, StreamReport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where stream records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamKind {
    /// An in-process stream cleaned into the local lake.
    Memory,
    /// Kinesis, through the AWS SDK and the usual AWS environment.
    Kinesis,
}

/// Options of `pinpipe serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (keep it on loopback unless you mean to expose it).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Raw landing: a directory, or s3://bucket[/prefix].
    #[arg(long, default_value = "./data/raw")]
    pub raw: String,
    /// Lake root the background cleaners write: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Where stream records go.
    #[arg(long, value_enum, default_value_t = StreamKind::Memory)]
    pub stream: StreamKind,
    /// How often landed objects and the in-process stream are cleaned, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Most objects cleaned per batch-clean invocation.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// How long a client may take to send a request's body (it is answered 408 after that),
    /// and how long Ctrl-C waits for requests in flight before closing them, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Where the batch route lands records.
    #[command(flatten)]
    pub landing: LandingArgs,
    /// Produce the batch route's records into this Kafka cluster (HOST:PORT) instead of the
    /// spool, acknowledged by every in-sync replica, and consume its pipeline topics into the
    /// lake (as the MSK event source does in a deployment).
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka: Option<String>,
    /// Partitions of a topic the Kafka landing creates because the cluster does not have it.
    #[arg(long, default_value_t = 2)]
    pub kafka_partitions: i32,
    /// The consumer group of `--kafka`'s consumer (its offsets are kept beside the lake).
    #[arg(long, default_value = "pinpipe")]
    pub kafka_group: String,
    /// Consume only the topics `<PREFIX>.pin|geo|user` (default: every topic named for a
    /// record type).
    #[arg(long, value_name = "PREFIX")]
    pub kafka_prefix: Option<String>,
    /// Directory of the in-process stream's write-ahead log (default: `.stream` inside a local
    /// --raw directory, else ./data/stream).
    #[arg(long, value_name = "DIR")]
    pub stream_log: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// The defaults of `pinpipe serve` on a free loopback port, landing in `raw` and cleaning
    /// into `lake`: what `run` and tests start.
    pub fn local(raw: String, lake: String) -> ServeArgs {
        ServeArgs {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            raw,
            lake,
            stream: StreamKind::Memory,
            interval_ms: 250,
            batch_size: 1000,
            request_timeout_ms: 30_000,
            landing: LandingArgs::default(),
            kafka: None,
            kafka_partitions: 2,
            kafka_group: "pinpipe".to_string(),
            kafka_prefix: None,
            stream_log: None,
        }
    }

    /// The directory of the in-process stream's write-ahead log.
    pub fn stream_log_dir(&self) -> std::path::PathBuf {
        match (&self.stream_log, self.raw.contains("://")) {
            (Some(dir), _) => dir.clone(),
            (None, false) => std::path::Path::new(&self.raw).join(".stream"),
            (None, true) => std::path::PathBuf::from("./data/stream"),
        }
    }
}

/// What the background cleaners did while the server ran.
#[derive(Debug, Clone, Default)]
pub struct CleanTotals {
    /// What batch-clean did.
    pub batch: BatchReport,
    /// What stream-clean did.
    pub stream: StreamReport,
    /// What stream-clean did with the Kafka consumer's batches.
    pub kafka: StreamReport,
}

/// The Kafka consumer's task, and how to tell it to stop.
type ConsumerTask = (
    watch::Sender<bool>,
    JoinHandle<Result<StreamReport, CliError>>,
);

/// A running server: its address, and how to stop it.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where each route's records go, for the start-up line.
    pub description: String,
    stop_server: watch::Sender<bool>,
    stop_worker: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<CleanTotals>,
    consumer: Option<ConsumerTask>,
    request_timeout: Duration,
}

impl RunningServer {
    /// Stops accepting requests and lets in-flight ones finish; then the worker flushes the
    /// spool and cleans what is pending, and this returns what the cleaners did. The worker is
    /// told only after the server has stopped, so nothing accepted arrives after its last round.
    pub async fn shutdown(mut self) -> Result<CleanTotals, CliError> {
        let _ = self.stop_server.send(true);
        // A request in flight has at most the request timeout to send its body; one that
        // still holds its connection after that (a stalled client) is closed.
        let grace = self.request_timeout + Duration::from_secs(2);
        let served = match tokio::time::timeout(grace, &mut self.server).await {
            Ok(served) => served,
            Err(_) => {
                eprintln!(
                    "requests still open {:.0} s after stopping: closing them",
                    grace.as_secs_f64()
                );
                self.server.abort();
                Ok(Ok(()))
            }
        };
        let _ = self.stop_worker.send(true);
        let mut totals = self.worker.await.map_err(|source| CliError::Task {
            task: "the cleaner",
            source,
        });
        if let Some((stop, consumer)) = self.consumer {
            let _ = stop.send(true);
            let consumed = consumer.await.map_err(|source| CliError::Task {
                task: "the Kafka consumer",
                source,
            });
            match (&mut totals, consumed) {
                (Ok(totals), Ok(Ok(kafka))) => totals.kafka = kafka,
                (_, Ok(Err(e))) | (_, Err(e)) => {
                    eprintln!("error: {e}: records not consumed stay in Kafka and are consumed when serve starts again")
                }
                (Err(_), Ok(Ok(_))) => {}
            }
        }
        match served {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(CliError::Server(e)),
            Err(source) => {
                return Err(CliError::Task {
                    task: "the server",
                    source,
                })
            }
        }
        totals
    }
}

/// The raw landing a `--raw` value names.
pub fn raw_landing(raw: &str) -> Result<(RawLanding, Option<std::path::PathBuf>), CliError> {
    match raw.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = batch_clean::objects::s3_store(bucket)?;
            let store: Arc<dyn object_store::ObjectStore> = if prefix.trim_matches('/').is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(
                    s3,
                    prefix.trim_matches('/'),
                ))
            };
            Ok((RawLanding::new(store), None))
        }
        None => {
            let dir = std::path::PathBuf::from(raw);
            Ok((RawLanding::local_dir(&dir)?, Some(dir)))
        }
    }
}

/// Starts the API and, on the embedded default, the background cleaners.
pub async fn start(args: &ServeArgs) -> Result<RunningServer, CliError> {
    let (target, local_raw) = raw_landing(&args.raw)?;
    let mut recovered = 0;
    let (landing, spool): (Arc<dyn Landing>, Option<Arc<Spool>>) =
        match (&args.kafka, args.landing.landing) {
            (Some(kafka), _) => (
                Arc::new(KafkaLanding::new(KafkaConfig::local(
                    kafka,
                    args.kafka_partitions,
                ))),
                None,
            ),
            (None, LandingKind::Spool) => {
                let dir = args.landing.spool_dir(&args.raw);
                let (spool, left) =
                    Spool::open(&dir, target.clone(), args.landing.limits()).await?;
                recovered = left.records;
                let spool = Arc::new(spool);
                (spool.clone(), Some(spool))
            }
            (None, LandingKind::Direct) => (Arc::new(target.clone()), None),
        };
    let memory = Arc::new(MemoryStream::new());
    let mut stream_recovered = 0;
    let (stream, durable): (Arc<dyn ingest_api::StreamSink>, Option<Arc<DurableStream>>) =
        match args.stream {
            StreamKind::Memory => {
                let (durable, recovered) =
                    DurableStream::open(&args.stream_log_dir(), memory.clone())?;
                stream_recovered = recovered;
                let durable = Arc::new(durable);
                (durable.clone(), Some(durable))
            }
            StreamKind::Kinesis => {
                let config = aws_config::load_from_env().await;
                (
                    Arc::new(KinesisSink::new(aws_sdk_kinesis::Client::new(&config))),
                    None,
                )
            }
        };
    let ingest = Arc::new(IngestDeps {
        raw: landing,
        stream,
    });
    let cleans_batch = local_raw.is_some();
    let cleans_stream = args.stream == StreamKind::Memory;
    let lake = if cleans_batch || cleans_stream || args.kafka.is_some() {
        let lake = Lake::open(&args.lake)?;
        lake.ensure_tables().await?;
        Some(lake)
    } else {
        None
    };

    // The consumer connects before the API listens, so an unreachable broker stops serve here.
    let consumer = match (&args.kafka, &lake) {
        (Some(kafka), Some(lake)) => {
            let config = ConsumerConfig {
                bootstrap: kafka.clone(),
                group: args.kafka_group.clone(),
                offsets: crate::consume::default_offsets_path(&args.lake, &args.kafka_group),
                prefix: args.kafka_prefix.clone(),
                batch_size: crate::local::STREAM_BATCH,
                wait: Duration::from_millis(args.interval_ms.clamp(10, 1000)),
            };
            let mut consumer = Consumer::connect(config, lake.clone()).await?;
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(async move {
                let mut total = consumer.run(false, stopped).await?;
                // What was produced before the API stopped is consumed before exiting; if the
                // lake refuses it, it stays in Kafka for the next start.
                let (_keep, never) = watch::channel(false);
                match tokio::time::timeout(KAFKA_DRAIN, consumer.run(true, never)).await {
                    Ok(drained) => total += &drained?,
                    Err(_) => eprintln!(
                        "Kafka records not consumed within {} s stay in Kafka; they are consumed when serve starts again",
                        KAFKA_DRAIN.as_secs()
                    ),
                }
                Ok(total)
            });
            Some((stop, task))
        }
        _ => None,
    };

    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .map_err(|e| CliError::Bind {
            addr: format!("{}:{}", args.host, args.port),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(CliError::Server)?;
    let (stop_server, mut server_stop) = watch::channel(false);
    let (stop_worker, worker_stop) = watch::channel(false);

    let request_timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    let app = axum::Router::new()
        .fallback(api)
        .with_state(Arc::new(ApiState {
            deps: ingest,
            request_timeout,
        }));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let worker = Worker {
        batch: lake
            .as_ref()
            .filter(|_| cleans_batch)
            .map(|lake| BatchCleanDeps {
                raw: RawStores::Fixed(target.store().clone()),
                lake: lake.clone(),
            }),
        stream: lake
            .as_ref()
            .filter(|_| cleans_stream)
            .zip(durable.clone())
            .map(|(lake, log)| (log, StreamCleanDeps { lake: lake.clone() })),
        batch_size: args.batch_size,
        spool: spool.clone(),
    };
    let worker =
        tokio::spawn(worker.run(Duration::from_millis(args.interval_ms.max(10)), worker_stop));

    let batch_to = match &local_raw {
        Some(dir) => format!(
            "raw directory {} (cleaned into {})",
            dir.display(),
            args.lake
        ),
        None => format!("{} (cleaned by the deployed batch-clean)", args.raw),
    };
    let batch_to = match (&spool, &args.kafka) {
        (_, Some(kafka)) => format!(
            "Kafka {kafka} (acks=all; consumed into {} by group `{}`)",
            args.lake, args.kafka_group
        ),
        (Some(spool), None) => format!(
            "spool {} (one object per {}) → {batch_to}",
            spool.dir().display(),
            spool.limits().describe()
        ),
        (None, None) => format!("one object per request → {batch_to}"),
    };
    let stream_to = match args.stream {
        StreamKind::Memory => format!(
            "in-process stream, logged in {} (cleaned into {})",
            args.stream_log_dir().display(),
            args.lake
        ),
        StreamKind::Kinesis => "Kinesis (cleaned by the deployed stream-clean)".to_string(),
    };
    let mut description = format!("batch records → {batch_to}; stream records → {stream_to}");
    if recovered > 0 {
        description.push_str(&format!(
            "; landed {recovered} records an earlier run left in the spool"
        ));
    }
    if stream_recovered > 0 {
        description.push_str(&format!(
            "; put back {stream_recovered} stream records an earlier run left in the stream log"
        ));
    }
    Ok(RunningServer {
        addr,
        description,
        stop_server,
        stop_worker,
        server,
        worker,
        consumer,
        request_timeout,
    })
}

/// What the HTTP front hands every request.
struct ApiState {
    deps: Arc<IngestDeps>,
    request_timeout: Duration,
}

/// Every request goes to the ingest API handler, exactly as behind API Gateway. A body not
/// received within the request timeout is answered 408, a body larger than Lambda's limit 413
/// (without reading the rest), one cut off by the client 400.
async fn api(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    req: axum::extract::Request,
) -> http::Response<axum::body::Body> {
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        state.request_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES + 1),
    )
    .await;
    let response = match read {
        Ok(Ok(bytes)) => {
            ingest_api::handle(http::Request::from_parts(parts, bytes), &state.deps).await
        }
        Ok(Err(e)) => {
            let too_large = e.into_inner().is::<http_body_util::LengthLimitError>();
            let error = if too_large {
                ingest_api::limits::check_body_size(MAX_BODY_BYTES + 1).err()
            } else {
                None
            };
            error
                .unwrap_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "body_unreadable",
                        "the request body ended before its declared length: send it again",
                    )
                })
                .into_response()
        }
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms: send it again",
                    state.request_timeout.as_millis()
                ),
            )
            .into_response();
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            response
        }
    };
    response.map(axum::body::Body::from)
}

struct Worker {
    batch: Option<BatchCleanDeps>,
    stream: Option<(Arc<DurableStream>, StreamCleanDeps)>,
    batch_size: usize,
    spool: Option<Arc<Spool>>,
}

impl Worker {
    async fn run(self, interval: Duration, mut stop: watch::Receiver<bool>) -> CleanTotals {
        let mut totals = CleanTotals::default();
        let mut cleaned: HashSet<String> = HashSet::new();
        loop {
            let stopped = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                r = stop.wait_for(|s| *s) => r.is_ok(),
            };
            let stopping = stopped || *stop.borrow();
            if let Some(spool) = &self.spool {
                if stopping {
                    let pending = spool.pending_records().await;
                    if pending > 0 {
                        println!("flushing {pending} spooled records…");
                    }
                }
                if let Err(e) = spool.flush(stopping).await {
                    tracing::error!(error = %e, "flushing the spool failed; its records stay on disk and land on the next flush or start");
                    if stopping {
                        eprintln!("error: {e}: the records stay in the spool and land when pinpipe serve or run starts again");
                    }
                }
            }
            self.round(&mut cleaned, &mut totals, stopping).await;
            if stopping {
                self.last_stream_round(&mut totals).await;
                return totals;
            }
        }
    }

    /// Cleans what landed since the last round and what waits on the stream. Errors are
    /// logged and retried next round; nothing is lost. On the last round (`stopping`) it says
    /// what it is doing, since a large backlog can take minutes.
    async fn round(&self, cleaned: &mut HashSet<String>, totals: &mut CleanTotals, stopping: bool) {
        if let Some(deps) = &self.batch {
            self.clean_landed(deps, cleaned, totals, stopping).await;
        }
        if !stopping {
            if let Some((log, deps)) = &self.stream {
                match clean_stream(log, deps).await {
                    Ok(r) => totals.stream += &r,
                    Err(e) => {
                        tracing::error!(error = %e, "stream-clean failed; retrying next round")
                    }
                }
            }
        }
    }

    /// batch-clean over the objects landed in the local raw directory since the last round.
    async fn clean_landed(
        &self,
        deps: &BatchCleanDeps,
        cleaned: &mut HashSet<String>,
        totals: &mut CleanTotals,
        stopping: bool,
    ) {
        let RawStores::Fixed(store) = &deps.raw else {
            return;
        };
        let objects = match list_landed(store.as_ref(), LOCAL_RAW_BUCKET).await {
            Ok(objects) => objects,
            Err(e) => {
                tracing::error!(error = %e, "listing the raw landing failed");
                return;
            }
        };
        let new: Vec<_> = objects
            .into_iter()
            .filter(|o| !cleaned.contains(&o.key))
            .collect();
        if stopping && !new.is_empty() {
            println!("cleaning {} landed objects…", new.len());
        }
        let mut done = 0;
        for chunk in new.chunks(self.batch_size.max(1)) {
            match batch_clean::handle_s3(&s3_put_event(chunk), deps).await {
                Ok(r) => {
                    totals.batch += &r;
                    cleaned.extend(chunk.iter().map(|o| o.key.clone()));
                    done += chunk.len();
                    if stopping && new.len() > chunk.len() {
                        println!("  {done}/{} objects cleaned", new.len());
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "batch-clean failed; retrying next round");
                    if stopping {
                        eprintln!("error: {e}: the objects stay in the raw landing; `pinpipe process` or the next serve cleans them");
                    }
                }
            }
        }
    }

    /// The last round hands what is on the in-process stream to stream-clean, trying a few
    /// times; records the lake still refuses stay in the stream's log on disk, and the next
    /// start puts them back on the stream.
    async fn last_stream_round(&self, totals: &mut CleanTotals) {
        let Some((log, deps)) = &self.stream else {
            return;
        };
        let memory = log.memory();
        let pending = memory.pending();
        if pending == 0 {
            return;
        }
        println!("cleaning {pending} stream records…");
        let mut last_error = None;
        for wait in LAST_ROUND_WAITS {
            tokio::time::sleep(wait).await;
            match clean_stream(log, deps).await {
                Ok(r) => {
                    totals.stream += &r;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stream-clean failed on the last round");
                    last_error = Some(e);
                }
            }
        }
        let reason = last_error.map(|e| e.to_string()).unwrap_or_default();
        let left = memory.pending();
        // They are on disk in the stream log already: the next start puts them back.
        println!(
            "{left} stream records could not be cleaned ({reason}); they stay in the stream log {} and are cleaned when pinpipe serve or run starts again",
            log.dir().display()
        );
    }
}

/// One round of the in-process stream: the log's open segment is closed, everything on the
/// stream handed to stream-clean, and once the lake holds it all the closed segments go.
async fn clean_stream(
    log: &DurableStream,
    deps: &StreamCleanDeps,
) -> Result<StreamReport, CliError> {
    log.rotate()?;
    let report = flush_stream(log.memory(), deps, crate::local::STREAM_BATCH).await?;
    log.committed()?;
    Ok(report)
}

/// How long stopping waits for the Kafka consumer to clean what was produced.
const KAFKA_DRAIN: Duration = Duration::from_secs(30);

/// The wait before each of the last round's three attempts at stream-clean.
const LAST_ROUND_WAITS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Waits for Ctrl-C or SIGTERM (what `kill`, systemd and container runtimes send). The
/// handlers are in place when this returns, so a signal that arrives before the future is
/// awaited is not lost.
pub(crate) fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handler = |kind| signal(kind).map_err(CliError::Server);
        let (mut interrupt, mut terminate) = (
            handler(SignalKind::interrupt())?,
            handler(SignalKind::terminate())?,
        );
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// `pinpipe serve`: runs until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let stop = stop_signal()?;
    let server = start(&args).await?;
    println!(
        "pinpipe serve: listening on http://{} — {}",
        server.addr, server.description
    );
    println!("(Ctrl-C or SIGTERM to stop; pending records are landed and cleaned before exit)");
    stop.await;
    println!("\nstopping: finishing requests and flushing pending records…");
    let totals = server.shutdown().await?;
    print_totals(&totals, crate::local::IngestPath::Both);
    Ok(())
}

/// Prints what the cleaners of the given paths did.
pub fn print_totals(t: &CleanTotals, path: crate::local::IngestPath) {
    let b = &t.batch;
    if path.batch() {
        println!(
        "batch-clean: {} objects, {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        b.objects, b.counts.records_in, b.counts.rows_written, b.counts.quarantined, b.counts.duplicates_skipped, b.counts.already_committed
    );
    }
    let k = &t.kafka;
    if k.counts.records_in > 0 {
        println!(
        "stream-clean (Kafka): {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        k.counts.records_in, k.counts.rows_written, k.counts.quarantined, k.counts.duplicates_skipped, k.counts.already_committed
    );
    }
    let s = &t.stream;
    if path.stream() {
        println!(
        "stream-clean: {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        s.counts.records_in, s.counts.rows_written, s.counts.quarantined, s.counts.duplicates_skipped, s.counts.already_committed
    );
    }
}
