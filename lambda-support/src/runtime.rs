//! What every Lambda entry point does at start-up: JSON logs, and configuration read from the
//! environment that fails fast with a message naming what is missing.

/// Structured JSON logs on stdout (CloudWatch), filtered by `RUST_LOG` (default `info`).
pub fn init_json_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    log_dependency_panics();
}

/// Sets up glibc's allocator for a process that cleans large batches on several threads: call it
/// first thing in `main`, before the work starts.
///
/// It turns off glibc's "fast bins" (`M_MXFAST` = 0), so a small freed chunk beyond the
/// per-thread cache is merged with its neighbours when it is freed, not kept apart until the
/// next large allocation merges every such chunk at once. A batch's invocation frees the
/// previous batch's hundred thousand small values (event fields, record text), and cleaning
/// starts with large allocations (a run's columns), so with fast bins the first thread to make
/// one spent 4–6 ms merging them while holding its arena's lock, and stream-clean's call took
/// 1.4–1.8× what it takes without (`pinpipe bench --only stream`). Small allocations are still
/// served from the per-thread cache first.
///
/// It also keeps freed memory for the next batch rather than handing it back to the kernel
/// (`M_TRIM_THRESHOLD`, and `M_MMAP_THRESHOLD` at glibc's own upper bound of 32 MiB, so a
/// batch's column buffers come from the heap rather than mappings of their own). Memory the
/// kernel hands out anew is mapped a page at a time as it is first written, and a batch writes
/// its cleaned columns and Parquet pages into a hundred megabytes or more of fresh memory: those
/// page faults were a sixth of batch-clean's CPU time. The process's resident memory stays at
/// the largest batch's peak, which a Lambda function's memory setting has to allow anyway.
/// Elsewhere than glibc this does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters, under glibc's own lock; it takes
    // no pointers.
    unsafe {
        libc::mallopt(libc::M_MXFAST, 0);
        libc::mallopt(libc::M_MMAP_THRESHOLD, KEPT_ALLOCATION_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEPT_FREE_BYTES);
    }
}

/// Allocations up to this size come from the heap, and are reused once freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEPT_ALLOCATION_BYTES: libc::c_int = 32 * 1024 * 1024;

/// Free memory at the top of a heap is handed back to the kernel only beyond this much.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEPT_FREE_BYTES: libc::c_int = 1024 * 1024 * 1024;

/// Reports a panic raised inside a dependency as one log line instead of a crash report.
///
/// delta-rs and object_store panic on some storage failures and catch the panic themselves
/// (e.g. aborting a multipart upload whose completion failed: `Already shut down`); the
/// operation then returns an ordinary error, which the caller reports. Rust's default hook
/// would still print `thread … panicked` and a backtrace first, as if the program had crashed.
/// Panics in this project's own code keep the default report.
pub fn log_dependency_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let Some(location) = info.location().filter(|l| is_dependency_source(l.file())) else {
            return default(info);
        };
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::warn!(
            panic = %message,
            at = %location,
            "a storage library failed internally; the operation's own error follows"
        );
    }));
}

/// Whether a source path belongs to a crate fetched by cargo (registry or git), not this
/// workspace.
fn is_dependency_source(file: &str) -> bool {
    let file = file.replace('\\', "/");
    file.contains("/registry/src/") || file.contains("/git/checkouts/")
}

/// True when `AWS_ENDPOINT_URL` names a plain `http://` endpoint (a local S3-compatible server,
/// as with `cargo lambda watch`): the S3 clients refuse http unless told, so they are told.
pub fn endpoint_is_plain_http() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| url.trim().starts_with("http://"))
}

/// The value of a required environment variable, or an error naming it and saying what to set.
pub fn required_env(name: &str, what: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: set it to {what}"))
}

/// `LAKE_URI`, the lake root every function but ingest-api reads and writes.
pub fn lake_uri() -> Result<String, String> {
    required_env("LAKE_URI", "the lake root, e.g. s3://my-lake-bucket/lake")
}

#[cfg(test)]
mod tests {
    use super::is_dependency_source;

    #[test]
    fn only_crates_fetched_by_cargo_count_as_dependencies() {
        assert!(is_dependency_source(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/object_store-0.13.2/src/buffered.rs"
        ));
        assert!(is_dependency_source(
            "/home/u/.cargo/git/checkouts/delta-rs-abc/1234/crates/core/src/lib.rs"
        ));
        assert!(!is_dependency_source("lake/src/append.rs"));
        assert!(!is_dependency_source("/work/main/cli/src/serve.rs"));
    }
}
