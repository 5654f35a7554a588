//! The local runner's building blocks: post sources (generator, JSONL, database), the original
//! clients' wire format, the API server (`serve`), the client (`emulate`), the backfill
//! (`process`), the local raw landing (`spool`), the queries, and `run`, which strings them together. The `pinpipe` binary is a
//! thin command-line front over them.

#![warn(missing_docs)]

pub mod bench;
pub mod bench_lambda;
pub mod bench_peers;
pub mod bench_scale;
pub mod bench_soak;
pub mod consume;
pub mod db;
pub mod emulate;
pub mod generate;
pub mod invoke;
pub mod local;
pub mod posts;
pub mod process;
pub mod query;
pub mod report;
pub mod run;
pub mod serve;
pub mod spool;
pub mod stream_log;
pub mod wire;

/// Errors the runner reports to the user before exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A directory of posts could not be read.
    #[error(transparent)]
    Posts(#[from] posts::PostsError),
    /// The lake could not be opened or written.
    #[error("lake: {0}")]
    Lake(#[from] lake::LakeError),
    /// The raw landing could not be listed or read.
    #[error("raw store: {0}")]
    RawStore(#[from] object_store::Error),
    /// A query could not run.
    #[error("queries: {0}")]
    Query(#[from] lake::queries::QueryError),
    /// The report could not be built.
    #[error("report: {0}")]
    Report(#[from] lake::report::ReportError),
    /// batch-clean failed.
    #[error("batch-clean: {0}")]
    BatchClean(#[from] batch_clean::BatchCleanError),
    /// A backfill stopped part-way; what it committed stays, and a rerun skips it.
    #[error("batch-clean stopped after {done} of {total} objects: {source}\n  what was committed stays: run the same command again once the lake and raw store are reachable (committed objects are skipped, nothing lands twice)")]
    Backfill {
        /// Objects committed before it stopped.
        done: usize,
        /// Objects it was given.
        total: usize,
        /// Why it stopped.
        #[source]
        source: Box<batch_clean::BatchCleanError>,
    },
    /// The in-process stream's write-ahead log could not be opened.
    #[error(transparent)]
    StreamLog(#[from] stream_log::StreamLogError),
    /// The local raw landing failed.
    #[error("raw landing: {0}")]
    Spool(#[from] spool::SpoolError),
    /// The source database could not be read.
    #[error("source database: {0}")]
    Db(#[from] db::DbError),
    /// A mistake on the command line (an unknown query, an unsafe option): exits 2, as clap
    /// does for the mistakes it catches itself.
    #[error("{0}")]
    Usage(String),
    /// A local file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// `serve` could not listen on its address.
    #[error("cannot listen on {addr}: {source}\n  pick another --port or --host, or stop what is using it")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// `serve` could not install its Ctrl-C/SIGTERM handlers, or its server failed.
    #[error("server: {0}")]
    Server(#[source] std::io::Error),
    /// A task of the command stopped without finishing (a bug, or the runtime shutting down).
    #[error("{task} stopped before finishing: {source}")]
    Task {
        /// What the task was doing.
        task: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// stream-clean could not write the lake; the records wait on the in-process stream.
    #[error("stream-clean could not write the lake: {pending} records of {stream} are still pending (see the log above); they are handed over again once the lake is writable")]
    StreamPending {
        /// Records still waiting.
        pending: usize,
        /// The stream they are on.
        stream: String,
    },
    /// The Kafka cluster could not be reached or read, or a Kafka batch could not be cleaned.
    #[error("kafka: {0}")]
    Kafka(String),
    /// `pinpipe invoke`: the event file is not the function's event, or the handler failed.
    #[error("{0}")]
    Invoke(String),
    /// The ingest API did not accept every request `emulate` sent.
    #[error("{0} requests were not accepted (see the log above)")]
    Rejected(u64),
    /// Some queries or tables failed; the others completed.
    #[error("{what} failed: {}", names.join(", "))]
    Failed {
        /// What failed: queries, or table maintenance.
        what: &'static str,
        /// Their names.
        names: Vec<String>,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    /// The report was written but no browser could be opened on it.
    #[error(
        "the report is written, but no browser could be opened ({source}); open {path} yourself"
    )]
    Open {
        /// The report.
        path: std::path::PathBuf,
        /// What the opener said.
        #[source]
        source: opener::OpenError,
    },
    /// A benchmark's own check failed (records lost, a peer engine missing), or it could not
    /// set up its data.
    #[error("benchmark: {0}")]
    Bench(String),
}

impl CliError {
    /// The process exit code: 2 for a usage mistake (as clap), 1 for anything that failed
    /// while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }
}
