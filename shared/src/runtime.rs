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
