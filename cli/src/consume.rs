//! `pinpipe consume`: a Kafka consumer that cleans every `<prefix>.pin|geo|user` topic of a
//! cluster into the lake with the same handler Lambda runs on an MSK or self-managed Kafka
//! event source (`stream_clean::kafka::handle`), fed the same `KafkaEvent`s.
//!
//! Like Lambda's Kafka poller, it fetches a batch from every partition, hands it to the handler,
//! and moves its consumer offsets past the batch only once the handler returned — after the
//! Delta commit. The offsets are kept per consumer group in a local file, written whole
//! (temporary file, fsync, rename) after each batch. A crash between the Delta commit and that
//! write replays the batch, which the lake's `txn` offset ranges skip, so nothing is skipped
//! and nothing lands twice. A partition the group has no offset for is read from its start.

use crate::CliError;
use clap::Args;
use lake::Lake;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use serde::{Deserialize, Serialize};
use shared::route::record_type_of_topic;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stream_clean::kafka::{FailureMode, FetchedRecord};
use stream_clean::{StreamCleanDeps, StreamReport};
use tokio::sync::watch;

/// Options of `pinpipe consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// A broker to bootstrap from, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka: String,
    /// Lake root to clean into: a directory, file:// or s3:// URL.
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Consume only this deployment's topics, `<PREFIX>.pin|geo|user` (default: every topic
    /// named for a record type).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Consumer group: its offsets are kept apart from other groups'.
    #[arg(long, default_value = "pinpipe")]
    pub group: String,
    /// File the group's committed offsets are kept in (default: kafka-offsets-<group>.json
    /// beside a local lake directory, else in ./data).
    #[arg(long, value_name = "FILE")]
    pub offsets: Option<PathBuf>,
    /// Records after which a batch takes no more partitions (Lambda's largest Kafka batch is
    /// 10,000); a partition's fetch is taken whole, in record batches.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    /// How long a fetch waits for new records, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub wait_ms: u64,
    /// Stop once every partition is read to its end, instead of waiting for more.
    #[arg(long)]
    pub until_caught_up: bool,
}

/// The offsets a consumer group has committed: the next offset to read, per topic-partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOffsets {
    /// The group.
    pub group: String,
    /// `<topic>-<partition>` → the next offset to read.
    pub offsets: BTreeMap<String, i64>,
}

impl GroupOffsets {
    /// The offsets in `path`; none when the file does not exist yet.
    pub fn load(path: &Path, group: &str) -> Result<GroupOffsets, CliError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let offsets: GroupOffsets = serde_json::from_slice(&bytes).map_err(|e| {
                    CliError::Usage(format!(
                        "{}: not a consumer offsets file ({e}); remove it to read every partition from its start (the lake skips what it holds)",
                        path.display()
                    ))
                })?;
                if offsets.group != group {
                    return Err(CliError::Usage(format!(
                        "{} holds the offsets of group `{}`, not `{group}`: pass --offsets for another file",
                        path.display(),
                        offsets.group
                    )));
                }
                Ok(offsets)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GroupOffsets {
                group: group.to_string(),
                offsets: BTreeMap::new(),
            }),
            Err(e) => Err(CliError::io(path)(e)),
        }
    }

    /// Writes the offsets to `path` whole: a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        use std::io::Write as _;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(CliError::io(dir))?;
        }
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::Usage(format!("consumer offsets: {e}")))?;
        let mut file = std::fs::File::create(&tmp).map_err(CliError::io(&tmp))?;
        file.write_all(&bytes).map_err(CliError::io(&tmp))?;
        file.sync_all().map_err(CliError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(CliError::io(path))
    }
}

/// Most bytes one fetch takes from a partition (Lambda's Kafka batches are at most 6 MB).
const FETCH_BYTES: i32 = 4 * 1024 * 1024;

/// What one fetch asks a partition for: about `batch_size` records of half a kilobyte.
fn fetch_bytes(batch_size: usize) -> i32 {
    i32::try_from(batch_size.saturating_mul(512))
        .unwrap_or(FETCH_BYTES)
        .clamp(64 * 1024, FETCH_BYTES)
}

/// Failed attempts in a row after which a `--until-caught-up` run gives up (a long-running
/// consumer keeps retrying, as Lambda does).
const GIVE_UP_AFTER: u32 = 5;

/// A consumer of one cluster's pipeline topics.
pub struct Consumer {
    bootstrap: String,
    client: Client,
    partitions: HashMap<(String, i32), Arc<PartitionClient>>,
    offsets: GroupOffsets,
    offsets_path: PathBuf,
    deps: StreamCleanDeps,
    batch_size: usize,
    wait: Duration,
    prefix: Option<String>,
}

/// Where and how a [`Consumer`] reads.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// A broker to bootstrap from, `host:port`.
    pub bootstrap: String,
    /// The consumer group.
    pub group: String,
    /// The file its offsets are kept in.
    pub offsets: PathBuf,
    /// Only the topics `<prefix>.pin|geo|user`, if set.
    pub prefix: Option<String>,
    /// Most records per handler call.
    pub batch_size: usize,
    /// How long a fetch waits for new records.
    pub wait: Duration,
}

/// What one pass over the partitions did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Records handed to the handler.
    pub records: usize,
    /// What the handler did.
    pub report: StreamReport,
}

impl Consumer {
    /// Connects to the cluster and reads the group's committed offsets.
    pub async fn connect(config: ConsumerConfig, lake: Lake) -> Result<Consumer, CliError> {
        let client = connect(&config.bootstrap).await?;
        Ok(Consumer {
            client,
            partitions: HashMap::new(),
            offsets: GroupOffsets::load(&config.offsets, &config.group)?,
            offsets_path: config.offsets,
            bootstrap: config.bootstrap,
            deps: StreamCleanDeps { lake },
            batch_size: config.batch_size.max(1),
            wait: config.wait,
            prefix: config.prefix,
        })
    }

    /// The topic-partitions of the cluster's pipeline topics (those named for a record type).
    async fn topic_partitions(&mut self) -> Result<Vec<(String, i32)>, CliError> {
        let topics = self.client.list_topics().await.map_err(kafka_error)?;
        let mut out = Vec::new();
        for topic in topics {
            let ours = match &self.prefix {
                Some(prefix) => topic
                    .name
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| matches!(rest, ".pin" | ".geo" | ".user")),
                None => record_type_of_topic(&topic.name).is_ok(),
            };
            if !ours {
                continue;
            }
            for partition in topic.partitions {
                out.push((topic.name.clone(), partition));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn partition(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, CliError> {
        let key = (topic.to_string(), partition);
        if let Some(client) = self.partitions.get(&key) {
            return Ok(client.clone());
        }
        let client = Arc::new(
            self.client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .map_err(kafka_error)?,
        );
        self.partitions.insert(key, client.clone());
        Ok(client)
    }

    /// Fetches up to a batch from every partition, hands it to the handler as one `KafkaEvent`,
    /// and commits the group's offsets past it once the lake holds it. Returns what it did and
    /// whether every partition was read to its end.
    pub async fn pass(&mut self) -> Result<(Pass, bool), CliError> {
        let mut fetched: Vec<FetchedRecord> = Vec::new();
        let mut caught_up = true;
        let mut next: BTreeMap<String, i64> = BTreeMap::new();
        for (topic, partition) in self.topic_partitions().await? {
            if fetched.len() >= self.batch_size {
                caught_up = false;
                break;
            }
            let key = format!("{topic}-{partition}");
            let client = self.partition(&topic, partition).await?;
            let earliest = client
                .get_offset(OffsetAt::Earliest)
                .await
                .map_err(kafka_error)?;
            // Records below the log's start were deleted by retention: nothing left to read.
            let committed = self.offsets.offsets.get(&key).copied();
            if let Some(c) = committed.filter(|c| *c < earliest) {
                tracing::warn!(
                    topic, partition, committed = c, earliest,
                    "records {c}..{earliest} were deleted by the topic's retention before this group read them"
                );
            }
            let from = committed.unwrap_or(0).max(earliest);
            let latest = client
                .get_offset(OffsetAt::Latest)
                .await
                .map_err(kafka_error)?;
            if from >= latest {
                continue;
            }
            // Whole record batches only, as the broker returns them: a position inside a batch
            // is never committed, so the next fetch starts on a batch boundary. (Kafka answers a
            // fetch from inside a batch with the whole batch; some compatible brokers skip to
            // the next one, which would lose the batch's tail.)
            let (records, high_watermark) = client
                .fetch_records(
                    from,
                    1..fetch_bytes(self.batch_size),
                    self.wait.as_millis() as i32,
                )
                .await
                .map_err(kafka_error)?;
            let mut records = records.into_iter().filter(|r| r.offset >= from).peekable();
            if let Some(first) = records.peek().map(|r| r.offset).filter(|o| *o > from) {
                tracing::warn!(
                    topic, partition, from, first,
                    "the broker returned no records for offsets {from}..{first} (compacted away, transaction markers, or a fetch from inside a record batch)"
                );
            }
            let mut last = None;
            for r in records {
                last = Some(r.offset);
                fetched.push(FetchedRecord {
                    topic: topic.clone(),
                    partition,
                    offset: r.offset,
                    key: r.record.key,
                    value: r.record.value,
                    timestamp_ms: r.record.timestamp.timestamp_millis(),
                });
            }
            if let Some(last) = last {
                next.insert(key, last + 1);
                if last + 1 < high_watermark {
                    caught_up = false;
                }
            }
        }
        if fetched.is_empty() {
            return Ok((Pass::default(), caught_up));
        }
        let event =
            stream_clean::kafka::kafka_event("SelfManagedKafka", None, &self.bootstrap, &fetched)
                .map_err(|e| CliError::Usage(format!("building the Kafka event: {e}")))?;
        let outcome = stream_clean::kafka::handle(&event, &self.deps, FailureMode::FailInvocation)
            .await
            .map_err(|e| CliError::Kafka(e.to_string()))?;
        // Committed only now, after the Delta commit.
        self.offsets.offsets.extend(next);
        self.offsets.save(&self.offsets_path)?;
        Ok((
            Pass {
                records: fetched.len(),
                report: outcome.report,
            },
            caught_up,
        ))
    }

    /// Consumes until `stop` turns true (or, with `until_caught_up`, until every partition is
    /// read to its end), and returns what the handler did. A failed batch is retried, as Lambda
    /// retries it, after a pause.
    pub async fn run(
        &mut self,
        until_caught_up: bool,
        mut stop: watch::Receiver<bool>,
    ) -> Result<StreamReport, CliError> {
        let mut total = StreamReport::default();
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return Ok(total);
            }
            match self.pass().await {
                Ok((pass, caught_up)) => {
                    failures = 0;
                    total += &pass.report;
                    if pass.records > 0 {
                        tracing::info!(records = pass.records, "kafka batch consumed");
                    }
                    if caught_up && until_caught_up {
                        return Ok(total);
                    }
                    if caught_up {
                        tokio::select! {
                            _ = tokio::time::sleep(self.wait) => {}
                            _ = stop.wait_for(|s| *s) => {}
                        }
                    }
                }
                Err(e) if until_caught_up && failures + 1 >= GIVE_UP_AFTER => {
                    return Err(CliError::Kafka(format!(
                        "{e}; gave up after {GIVE_UP_AFTER} attempts: what was committed stays, and a rerun continues from the group's offsets"
                    )));
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "consuming failed; the batch is retried");
                    eprintln!("consume: {e}; retrying (offsets stay where the lake is)");
                    let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
            }
        }
    }
}

/// A client of the cluster `bootstrap` names.
pub async fn connect(bootstrap: &str) -> Result<Client, CliError> {
    let build = ClientBuilder::new(vec![bootstrap.to_string()])
        .client_id("pinpipe-consume")
        .backoff_config(rskafka::BackoffConfig {
            deadline: Some(Duration::from_secs(10)),
            ..Default::default()
        })
        .build();
    tokio::time::timeout(Duration::from_secs(15), build)
        .await
        .map_err(|_| {
            CliError::Kafka(format!(
                "no Kafka broker answered at {bootstrap} within 15 s: start one, or check --kafka"
            ))
        })?
        .map_err(|e| CliError::Kafka(format!("cannot connect to Kafka at {bootstrap}: {e}")))
}

fn kafka_error(e: rskafka::client::error::Error) -> CliError {
    CliError::Kafka(e.to_string())
}

/// The offsets file of `group` when none is given: beside a local lake directory (so a lake
/// and its consumers' offsets move together), else in ./data.
pub fn default_offsets_path(lake: &str, group: &str) -> PathBuf {
    let name = format!("kafka-offsets-{group}.json");
    let local = lake.strip_prefix("file://").unwrap_or(lake);
    if lake.contains("://") && !lake.starts_with("file://") {
        return Path::new("./data").join(name);
    }
    match Path::new(local).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// `pinpipe consume`: runs until Ctrl-C or SIGTERM (or until caught up).
pub async fn consume(args: ConsumeArgs) -> Result<(), CliError> {
    let stop = crate::serve::stop_signal()?;
    let lake = Lake::open(&args.lake)?;
    lake.ensure_tables().await?;
    let offsets = args
        .offsets
        .clone()
        .unwrap_or_else(|| default_offsets_path(&args.lake, &args.group));
    let config = ConsumerConfig {
        bootstrap: args.kafka.clone(),
        group: args.group.clone(),
        offsets: offsets.clone(),
        prefix: args.prefix.clone(),
        batch_size: args.batch_size,
        wait: Duration::from_millis(args.wait_ms.max(10)),
    };
    let mut consumer = Consumer::connect(config, lake).await?;
    println!(
        "pinpipe consume: group `{}` on {} → {} (offsets in {})",
        args.group,
        args.kafka,
        args.lake,
        offsets.display()
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let total = consumer.run(args.until_caught_up, stop_rx).await?;
    let c = &total.counts;
    println!(
        "stream-clean (Kafka): {} records in → {} rows written, {} quarantined, {} duplicates, {} already committed",
        c.records_in, c.rows_written, c.quarantined, c.duplicates_skipped, c.already_committed
    );
    Ok(())
}
