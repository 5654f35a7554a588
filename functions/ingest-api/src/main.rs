//! Lambda entry point for the ingestion API: builds the raw store once, then serves API
//! Gateway requests with [`ingest_api::handle`].
//!
//! Configuration (environment): `RAW_BUCKET` (required), the raw landing bucket. Streams are
//! named by the request path; the usual `AWS_*` variables configure the clients.

use ingest_api::{handle, IngestDeps, KinesisSink, RawLanding};
use lambda_http::{run, service_fn, Body, Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::runtime::init_json_logs();
    let bucket = shared::runtime::required_env("RAW_BUCKET", "the raw landing bucket's name")?;
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()?;
    let config = aws_config::load_from_env().await;
    let deps = IngestDeps {
        raw: RawLanding::new(Arc::new(store)),
        stream: Arc::new(KinesisSink::new(aws_sdk_kinesis::Client::new(&config))),
    };
    let deps = &deps;
    run(service_fn(move |req: Request| async move {
        let req = req.map(|body: Body| bytes::Bytes::copy_from_slice(body.as_ref()));
        let response = handle(req, deps).await;
        let status = response.status();
        shared::metrics::emit(
            "ingest-api",
            &[
                ("Requests", 1),
                ("Accepted", u64::from(status.is_success())),
                ("Rejected", u64::from(status.is_client_error())),
                ("Unavailable", u64::from(status.is_server_error())),
            ],
        );
        Ok::<_, Error>(response)
    }))
    .await
}
