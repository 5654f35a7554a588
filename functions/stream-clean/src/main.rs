//! Lambda entry point for stream-clean: opens the lake once, then cleans each batch its event
//! source mappings deliver — Kinesis ([`stream_clean::handle`], answering partial-batch
//! failures) or Kafka from Amazon MSK or a self-managed cluster ([`stream_clean::kafka::handle`]).
//!
//! Configuration (environment):
//! - `LAKE_URI` (required), e.g. `s3://my-lake-bucket/lake`;
//! - `KAFKA_REPORT_BATCH_ITEM_FAILURES`: `true` only where the Kafka event source mappings run
//!   in provisioned mode with `ReportBatchItemFailures`; otherwise (the default) a failed lake
//!   write fails the invocation so Lambda retries the batch.
//!
//! The Kinesis event source mapping must enable `ReportBatchItemFailures`.

use lake::Lake;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use stream_clean::kafka::FailureMode;
use stream_clean::{handle_any, StreamCleanDeps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::runtime::tune_allocator();
    lambda_support::runtime::init_json_logs();
    let mode = FailureMode::from_setting(
        std::env::var("KAFKA_REPORT_BATCH_ITEM_FAILURES")
            .ok()
            .as_deref(),
    )?;
    let deps = StreamCleanDeps {
        lake: Lake::open(&lambda_support::runtime::lake_uri()?)?,
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let (response, report) = handle_any(event.payload, deps, mode).await?;
            lambda_support::metrics::emit("stream-clean", &report.metrics());
            Ok::<serde_json::Value, Error>(response)
        },
    ))
    .await
}
