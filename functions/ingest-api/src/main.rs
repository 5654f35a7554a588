//! Lambda entry point for the ingestion API: builds the landing and the stream client once,
//! then serves API Gateway requests with [`ingest_api::handle`].
//!
//! Configuration (environment):
//! - `RAW_LANDING`: `firehose` (the default), `direct` or `kafka`;
//! - with `firehose`: `DELIVERY_STREAM_PIN`, `DELIVERY_STREAM_GEO`, `DELIVERY_STREAM_USER`, the
//!   delivery streams of each record type;
//! - with `direct`: `RAW_BUCKET`, the bucket each request is written to as one object;
//! - with `kafka`: `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_SECURITY` (`plaintext`, `tls`,
//!   `sasl_scram_512` with `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`) and
//!   `KAFKA_PRODUCE_TIMEOUT_MS` (see [`ingest_api::KafkaConfig::from_env`]).
//!
//! Streams are named by the request path; the usual `AWS_*` variables configure the clients.

use ingest_api::{
    handle, FirehoseLanding, IngestDeps, KafkaConfig, KafkaLanding, KinesisSink, Landing,
    RawLanding,
};
use lambda_http::{run, service_fn, Body, Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::runtime::init_json_logs();
    let config = aws_config::load_from_env().await;
    let landing: Arc<dyn Landing> = match std::env::var("RAW_LANDING").as_deref() {
        Err(_) | Ok("firehose") => Arc::new(FirehoseLanding::new(
            aws_sdk_firehose::Client::new(&config),
            FirehoseLanding::streams_from_env()?,
        )),
        Ok("direct") => {
            let bucket = lambda_support::runtime::required_env(
                "RAW_BUCKET",
                "the raw landing bucket's name",
            )?;
            let mut store =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
            if lambda_support::runtime::endpoint_is_plain_http() {
                store = store.with_allow_http(true);
            }
            let store = store.build()?;
            Arc::new(RawLanding::new(Arc::new(store)))
        }
        Ok("kafka") => Arc::new(KafkaLanding::new(KafkaConfig::from_env()?)),
        Ok(other) => {
            return Err(
                format!("RAW_LANDING is `{other}`: set it to firehose, direct or kafka").into(),
            )
        }
    };
    let deps = IngestDeps {
        raw: landing,
        stream: Arc::new(KinesisSink::new(aws_sdk_kinesis::Client::new(&config))),
    };
    let deps = &deps;
    run(service_fn(move |req: Request| async move {
        let req = req.map(|body: Body| bytes::Bytes::copy_from_slice(body.as_ref()));
        let response = handle(req, deps).await;
        let status = response.status();
        lambda_support::metrics::emit(
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
