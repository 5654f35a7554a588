//! The Kafka landing of the batch route (`RAW_LANDING=kafka`): the REST proxy route produces
//! each request's records into the Kafka topic it names — Amazon MSK or any Kafka-compatible
//! cluster — as the original pipeline's REST proxy did, so the chain REST proxy → Kafka →
//! consumer (stream-clean's Kafka event source, or `pinpipe consume`) → lake exists whole.
//!
//! A request's records go to one partition (taken in turn across the topic's partitions) as one
//! record batch, produced with `acks=all`: the broker appends the batch whole or not at all,
//! and the route answers `200` — with the real partition and offsets — only once every
//! in-sync replica has it. A broker that refuses, or does not answer within the produce
//! timeout, is a `503`: nothing of the request was acknowledged (if the broker appended it after
//! all, the client's resend is a whole-row duplicate, counted once by the query views and
//! removed by maintenance).
//!
//! The connection is made on the first request, not at start-up, and kept for later ones.
//! rskafka is a small pure-Rust client: no librdkafka, so the function stays small.

use crate::landing::{Landed, Landing, LandingError, NdjsonRecords};
use async_trait::async_trait;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How the landing authenticates to the brokers.
#[derive(Clone, PartialEq, Eq)]
pub enum KafkaSecurity {
    /// No TLS, no authentication (a local broker; MSK's plaintext listener).
    Plaintext,
    /// TLS, no authentication (MSK's TLS listener without client auth).
    Tls,
    /// SASL/SCRAM over TLS (MSK's SCRAM listener, SHA-512), with a user name and password.
    ScramSha512 {
        /// The SCRAM user.
        username: String,
        /// Its password.
        password: String,
    },
}

impl std::fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KafkaSecurity::Plaintext => f.write_str("plaintext"),
            KafkaSecurity::Tls => f.write_str("tls"),
            // Never the password, in logs or errors.
            KafkaSecurity::ScramSha512 { username, .. } => {
                write!(f, "sasl_scram_512 (user {username})")
            }
        }
    }
}

/// Where and how the landing produces.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port` of one or more brokers.
    pub bootstrap_servers: Vec<String>,
    /// How to connect.
    pub security: KafkaSecurity,
    /// How long a produce may take before the request is answered `503`.
    pub produce_timeout: Duration,
    /// Create a topic the cluster does not have, with this many partitions (a local broker);
    /// `None` (deployed) answers a request to a missing topic with a configuration error.
    pub create_topics: Option<i32>,
}

impl KafkaConfig {
    /// The configuration in the environment: `KAFKA_BOOTSTRAP_SERVERS` (comma-separated
    /// `host:port`, required), `KAFKA_SECURITY` (`plaintext`, the default, `tls` or
    /// `sasl_scram_512`, which also takes `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`), and
    /// `KAFKA_PRODUCE_TIMEOUT_MS` (default 10000).
    pub fn from_env() -> Result<KafkaConfig, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let servers = var("KAFKA_BOOTSTRAP_SERVERS").ok_or(
            "KAFKA_BOOTSTRAP_SERVERS is not set: with RAW_LANDING=kafka, set it to the brokers' host:port list (for MSK, its bootstrap brokers string)",
        )?;
        let security = match var("KAFKA_SECURITY").as_deref().map(str::trim) {
            None | Some("plaintext") => KafkaSecurity::Plaintext,
            Some("tls") => KafkaSecurity::Tls,
            Some("sasl_scram_512") => KafkaSecurity::ScramSha512 {
                username: var("KAFKA_SASL_USERNAME")
                    .ok_or("KAFKA_SECURITY=sasl_scram_512 needs KAFKA_SASL_USERNAME")?,
                password: var("KAFKA_SASL_PASSWORD")
                    .ok_or("KAFKA_SECURITY=sasl_scram_512 needs KAFKA_SASL_PASSWORD")?,
            },
            Some(other) => {
                return Err(format!(
                    "KAFKA_SECURITY is `{other}`: set it to plaintext, tls or sasl_scram_512"
                ))
            }
        };
        let produce_timeout = match var("KAFKA_PRODUCE_TIMEOUT_MS") {
            None => Duration::from_secs(10),
            Some(ms) => Duration::from_millis(ms.trim().parse().map_err(|_| {
                format!("KAFKA_PRODUCE_TIMEOUT_MS is `{ms}`: set it to a number of milliseconds")
            })?),
        };
        Ok(KafkaConfig {
            bootstrap_servers: servers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            security,
            produce_timeout,
            create_topics: None,
        })
    }

    /// A plaintext connection to `bootstrap` (a local broker) that creates missing topics
    /// with `partitions` partitions.
    pub fn local(bootstrap: &str, partitions: i32) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: vec![bootstrap.to_string()],
            security: KafkaSecurity::Plaintext,
            produce_timeout: Duration::from_secs(10),
            create_topics: Some(partitions.max(1)),
        }
    }
}

/// Produces the batch route's records into Kafka (see the module documentation).
#[derive(Debug)]
pub struct KafkaLanding {
    config: KafkaConfig,
    client: OnceCell<Client>,
    /// Each topic's partitions, as the cluster last listed them.
    partitions: Mutex<HashMap<String, Vec<i32>>>,
    /// The next request's turn among a topic's partitions.
    turn: AtomicUsize,
}

impl KafkaLanding {
    /// A landing that connects to the cluster on its first request.
    pub fn new(config: KafkaConfig) -> Self {
        KafkaLanding {
            config,
            client: OnceCell::new(),
            partitions: Mutex::new(HashMap::new()),
            turn: AtomicUsize::new(0),
        }
    }

    fn what(&self) -> String {
        format!("Kafka ({})", self.config.bootstrap_servers.join(","))
    }

    async fn client(&self) -> Result<&Client, LandingError> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = ClientBuilder::new(self.config.bootstrap_servers.clone())
                    .client_id("pinpipe-ingest-api")
                    .backoff_config(rskafka::BackoffConfig {
                        deadline: Some(self.config.produce_timeout),
                        ..Default::default()
                    });
                match &self.config.security {
                    KafkaSecurity::Plaintext => {}
                    KafkaSecurity::Tls => builder = builder.tls_config(tls_config()?),
                    KafkaSecurity::ScramSha512 { username, password } => {
                        builder =
                            builder
                                .tls_config(tls_config()?)
                                .sasl_config(SaslConfig::ScramSha512(Credentials::new(
                                    username.clone(),
                                    password.clone(),
                                )));
                    }
                }
                tokio::time::timeout(self.config.produce_timeout, builder.build())
                    .await
                    .map_err(|_| LandingError::refused(&self.what(), "no broker answered in time"))?
                    .map_err(|e| LandingError::refused(&self.what(), e))
            })
            .await
    }

    /// The partitions of `topic`, as the cluster lists them now.
    async fn list_partitions(
        &self,
        client: &Client,
        topic: &str,
    ) -> Result<Vec<i32>, LandingError> {
        let topics = client
            .list_topics()
            .await
            .map_err(|e| LandingError::refused(&self.what(), e))?;
        let mut all = lock(&self.partitions);
        for t in topics {
            all.insert(t.name, t.partitions.into_iter().collect());
        }
        Ok(all.get(topic).cloned().unwrap_or_default())
    }

    /// The partition a request to `topic` goes to: the topic's partitions in turn.
    async fn partition_for(&self, client: &Client, topic: &str) -> Result<i32, LandingError> {
        let known = lock(&self.partitions).get(topic).cloned();
        let mut partitions = match known {
            Some(p) => p,
            None => self.list_partitions(client, topic).await?,
        };
        if let (true, Some(count)) = (partitions.is_empty(), self.config.create_topics) {
            let controller = client
                .controller_client()
                .map_err(|e| LandingError::refused(&self.what(), e))?;
            // Another request may have created it meanwhile: listed again either way.
            if let Err(e) = controller.create_topic(topic, count, 1, 5_000).await {
                tracing::debug!(topic, error = %e, "creating the topic");
            }
            partitions = self.list_partitions(client, topic).await?;
        }
        if partitions.is_empty() {
            return Err(LandingError::Misconfigured(format!(
                "topic `{topic}` does not exist on {}: create it (or enable auto.create.topics.enable)",
                self.what()
            )));
        }
        Ok(partitions[self.turn.fetch_add(1, Ordering::Relaxed) % partitions.len()])
    }
}

/// The lock's value, even if a thread panicked while holding it (the map stays usable).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// TLS with the system's root certificates (Lambda's, or the machine's).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, LandingError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A certificate the store cannot take is skipped; the others still verify.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(LandingError::Misconfigured(
            "no system root certificates were found for TLS to Kafka".to_string(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LandingError::Misconfigured(format!("TLS to Kafka: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[async_trait]
impl Landing for KafkaLanding {
    async fn land(&self, topic: &str, records: &NdjsonRecords) -> Result<Landed, LandingError> {
        let client = self.client().await?;
        let partition = self.partition_for(client, topic).await?;
        let timestamp = chrono::Utc::now();
        let batch: Vec<Record> = records
            .lines()
            .map(|line| Record {
                key: None,
                // The record's JSON text, without the NDJSON line's newline.
                value: Some(line.strip_suffix(b"\n").unwrap_or(&line).to_vec()),
                headers: BTreeMap::new(),
                timestamp,
            })
            .collect();
        let produce = async {
            let partition_client = client
                .partition_client(topic, partition, UnknownTopicHandling::Error)
                .await?;
            partition_client
                .produce(batch, Compression::NoCompression)
                .await
        };
        let offsets = tokio::time::timeout(self.config.produce_timeout, produce)
            .await
            .map_err(|_| {
                LandingError::refused(
                    &self.what(),
                    format!(
                        "the produce was not acknowledged within {} ms",
                        self.config.produce_timeout.as_millis()
                    ),
                )
            })?
            .map_err(|e| LandingError::refused(&self.what(), e))?;
        if offsets.len() != records.len() {
            return Err(LandingError::refused(
                &self.what(),
                format!(
                    "the broker acknowledged {} of {} records",
                    offsets.len(),
                    records.len()
                ),
            ));
        }
        Ok(Landed {
            location: format!("{topic}-{partition}@{}", offsets.first().unwrap_or(&0)),
            offsets: offsets.into_iter().map(|o| (partition, o)).collect(),
        })
    }
}
