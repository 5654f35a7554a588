//! The local runner's building blocks: post sources, the original clients' wire format, and
//! the `run` pipeline. The `pinpipe` binary is a thin command-line front over them.

pub mod bench;
pub mod posts;
pub mod query;
pub mod run;
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
    #[error("batch-clean: {0}")]
    BatchClean(#[from] batch_clean::BatchCleanError),
    #[error("{0}")]
    Usage(String),
}
