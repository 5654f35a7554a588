//! Lambda entry point for run-queries: on each scheduled EventBridge event, runs
//! [`run_queries::handle`] (queries, result tables, maintenance, run summary).
//!
//! Configuration (environment): `LAKE_URI` (required), e.g. `s3://my-lake-bucket/lake`;
//! `VACUUM_RETENTION_HOURS` (default 168, i.e. 7 days).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lake::Lake;
use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use run_queries::{handle, RunQueriesDeps};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::runtime::init_json_logs();
    let lake_uri = lambda_support::runtime::lake_uri()?;
    let hours: u64 = match std::env::var("VACUUM_RETENTION_HOURS") {
        Ok(v) => v.parse().map_err(|_| {
            format!("VACUUM_RETENTION_HOURS must be a whole number of hours, got `{v}`")
        })?,
        Err(_) => 168,
    };
    let deps = RunQueriesDeps {
        lake: Lake::open(&lake_uri)?,
        retention: Duration::from_secs(hours * 3600),
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            tracing::info!(scheduled_at = ?event.payload.time, "daily run starting");
            let result = handle(deps).await;
            let metrics = match &result {
                Ok(report) => report.metrics(),
                Err(e) => e.metrics(),
            };
            lambda_support::metrics::emit("run-queries", &metrics);
            // Failures reach Lambda with an errorType: a partial run or an outage.
            result.map_err(Diagnostic::from)
        },
    ))
    .await
}
