//! Lambda entry point for batch-clean: opens the lake once, then cleans the objects named by
//! each S3 or SQS event with [`batch_clean::handle_event`].
//!
//! Configuration (environment): `LAKE_URI` (required), e.g. `s3://my-lake-bucket/lake`.

use batch_clean::{handle_event, BatchCleanDeps, RawStores};
use lake::Lake;
use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::runtime::tune_allocator();
    lambda_support::runtime::init_json_logs();
    let deps = BatchCleanDeps {
        raw: RawStores::s3(),
        lake: Lake::open(&lambda_support::runtime::lake_uri()?)?,
    };
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Failures reach Lambda with an errorType saying whether a retry can help.
        let report = handle_event(event.payload, deps)
            .await
            .map_err(Diagnostic::from)?;
        lambda_support::metrics::emit("batch-clean", &report.metrics());
        Ok::<_, Diagnostic>(report)
    }))
    .await
}
