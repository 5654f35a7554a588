//! The local runner's building blocks: post sources (generator, JSONL, database), the original
//! clients' wire format, the API server (`serve`), the client (`emulate`), the backfill
//! (`process`), the local raw landing (`spool`), the queries, and `run`, which strings them together. The `pinpipe` binary is a
//! thin command-line front over them.

pub mod bench;
pub mod bench_peers;
pub mod bench_scale;
pub mod db;
pub mod emulate;
pub mod posts;
pub mod process;
pub mod query;
pub mod report;
pub mod run;
pub mod serve;
pub mod spool;
pub mod wire;

/// Errors the runner reports to the user before exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Posts(#[from] posts::PostsError),
    #[error("lake: {0}")]
    Lake(#[from] lake::LakeError),
    #[error("raw store: {0}")]
    RawStore(#[from] object_store::Error),
    #[error("queries: {0}")]
    Query(#[from] lake::queries::QueryError),
    #[error("report: {0}")]
    Report(#[from] lake::report::ReportError),
    #[error("batch-clean: {0}")]
    BatchClean(#[from] batch_clean::BatchCleanError),
    /// A backfill stopped part-way; what it committed stays, and a rerun skips it.
    #[error("batch-clean stopped after {done} of {total} objects: {source}\n  what was committed stays: run the same command again once the lake and raw store are reachable (committed objects are skipped, nothing lands twice)")]
    Backfill {
        done: usize,
        total: usize,
        #[source]
        source: Box<batch_clean::BatchCleanError>,
    },
    #[error("raw landing: {0}")]
    Spool(#[from] spool::SpoolError),
    #[error("source database: {0}")]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Usage(String),
}
