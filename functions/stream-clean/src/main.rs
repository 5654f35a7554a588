//! Lambda entry point for stream-clean: opens the lake once, then cleans each Kinesis batch
//! with [`stream_clean::handle`], answering with partial-batch failures.
//!
//! Configuration (environment): `LAKE_URI` (required), e.g. `s3://my-lake-bucket/lake`.
//! The event source mapping must enable `ReportBatchItemFailures`.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lake::Lake;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use stream_clean::{handle, StreamCleanDeps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::runtime::tune_allocator();
    lambda_support::runtime::init_json_logs();
    let deps = StreamCleanDeps {
        lake: Lake::open(&lambda_support::runtime::lake_uri()?)?,
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let outcome = handle(&event.payload, deps).await;
            lambda_support::metrics::emit("stream-clean", &outcome.report.metrics());
            Ok::<KinesisEventResponse, Error>(outcome.response)
        },
    ))
    .await
}
