//! `pinpipe invoke <function> --event FILE`: one Lambda invocation of a function's real handler,
//! in this process, on an event file — the Docker-free counterpart of `sam local invoke -e`.
//!
//! The event is read as Lambda delivers it to the function (API Gateway proxy request, S3 or
//! SQS notification, Kinesis or Kafka batch, EventBridge schedule), handed to the same handler
//! the function's `main.rs` runs, against the local lake and raw directory (or S3, with
//! `s3://` and the usual AWS environment), and the handler's response is printed as the JSON
//! Lambda would return. A handler that fails prints Lambda's error document
//! (`{"errorType": …, "errorMessage": …}`) and exits non-zero.

use crate::serve::StreamKind;
use crate::CliError;
use batch_clean::{BatchCleanDeps, RawStores};
use clap::{Args, ValueEnum};
use ingest_api::{IngestDeps, MemoryStream};
use lake::Lake;
use lambda_http::Service as _;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stream_clean::kafka::FailureMode;
use stream_clean::StreamCleanDeps;

/// The functions of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    /// The ingestion API (API Gateway proxy events).
    IngestApi,
    /// The batch cleaner (S3 notifications, directly or through SQS).
    BatchClean,
    /// The stream cleaner (Kinesis batches; Kafka batches from MSK or a self-managed cluster).
    StreamClean,
    /// The daily run (an EventBridge schedule event).
    RunQueries,
}

/// Options of `pinpipe invoke`.
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// The function whose handler runs.
    #[arg(value_enum)]
    pub function: Function,
    /// The Lambda event, as a JSON file (see events/).
    #[arg(long, short = 'e', value_name = "FILE")]
    pub event: PathBuf,
    /// Lake root: a directory, file:// or s3:// URL (the function's LAKE_URI).
    #[arg(long, default_value = "./data/lake")]
    pub lake: String,
    /// Raw landing: a directory (every bucket of an S3 event reads from it), or s3:// to read
    /// the buckets events name. ingest-api lands batch records here, one object per request
    /// (RAW_LANDING=direct).
    #[arg(long, default_value = "./data/raw")]
    pub raw: String,
    /// ingest-api: where stream records go — an in-process stream that holds only what this
    /// invocation puts and is cleaned into the lake right after, or Kinesis (the AWS
    /// environment; a local endpoint with AWS_ENDPOINT_URL).
    #[arg(long, value_enum, default_value_t = StreamKind::Memory)]
    pub stream: StreamKind,
    /// stream-clean: answer a failed Kafka write with the partial-batch response
    /// (KAFKA_REPORT_BATCH_ITEM_FAILURES=true) instead of failing the invocation.
    #[arg(long)]
    pub kafka_report_batch_item_failures: bool,
    /// run-queries: how old an unreferenced file must be before vacuum removes it, in hours
    /// (VACUUM_RETENTION_HOURS).
    #[arg(long, default_value_t = 168)]
    pub vacuum_retention_hours: u64,
}

/// What an invocation returned: Lambda's response, or its error document.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The handler's response.
    Response(Value),
    /// The handler failed: `errorType` and `errorMessage`, as Lambda reports them.
    Failed(Value),
}

/// Lambda's error document for a failure of type `error_type`.
fn failed(error_type: &str, message: impl std::fmt::Display) -> Invocation {
    Invocation::Failed(serde_json::json!({
        "errorType": error_type,
        "errorMessage": message.to_string(),
    }))
}

fn diagnostic(d: lambda_runtime::Diagnostic) -> Invocation {
    failed(&d.error_type, d.error_message)
}

/// Runs the function's handler once on `event`. An event that is not JSON, or not the
/// function's, is a usage error; a handler failure is an [`Invocation::Failed`].
pub async fn invoke(args: &InvokeArgs, event: &str) -> Result<Invocation, CliError> {
    let json: Value = serde_json::from_str(event)
        .map_err(|e| CliError::Invoke(format!("{}: not JSON: {e}", args.event.display())))?;
    match args.function {
        Function::IngestApi => invoke_api(args, event).await,
        Function::BatchClean => {
            let deps = BatchCleanDeps {
                raw: raw_stores(&args.raw)?,
                lake: Lake::open(&args.lake)?,
            };
            Ok(match batch_clean::handle_event(json, &deps).await {
                Ok(report) => Invocation::Response(to_json(&report)?),
                Err(e) => diagnostic(e.into()),
            })
        }
        Function::StreamClean => {
            let deps = StreamCleanDeps {
                lake: Lake::open(&args.lake)?,
            };
            let mode = if args.kafka_report_batch_item_failures {
                FailureMode::ReportBatchItemFailures
            } else {
                FailureMode::FailInvocation
            };
            Ok(match stream_clean::handle_any(json, &deps, mode).await {
                Ok((response, _)) => Invocation::Response(response),
                Err(e @ stream_clean::StreamEventError::NotAnEvent(_)) => {
                    return Err(CliError::Invoke(format!("{}: {e}", args.event.display())))
                }
                Err(e) => failed("KafkaCleanError", e),
            })
        }
        Function::RunQueries => {
            serde_json::from_value::<
                aws_lambda_events::event::eventbridge::EventBridgeEvent<Value>,
            >(json)
            .map_err(|e| {
                CliError::Invoke(format!(
                    "{}: not an EventBridge event: {e}",
                    args.event.display()
                ))
            })?;
            let deps = run_queries::RunQueriesDeps {
                lake: Lake::open(&args.lake)?,
                retention: Duration::from_secs(args.vacuum_retention_hours * 3600),
            };
            Ok(match run_queries::handle(&deps).await {
                Ok(report) => Invocation::Response(to_json(&report)?),
                Err(e) => diagnostic(e.into()),
            })
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, CliError> {
    serde_json::to_value(value).map_err(|e| CliError::Invoke(format!("the response: {e}")))
}

/// Where batch-clean reads the objects an event names.
fn raw_stores(raw: &str) -> Result<RawStores, CliError> {
    if raw.starts_with("s3://") {
        return Ok(RawStores::s3());
    }
    std::fs::create_dir_all(raw).map_err(CliError::io(raw))?;
    Ok(RawStores::Fixed(Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(raw)?,
    )))
}

/// An API Gateway proxy request through lambda_http, exactly as the Lambda runtime hands it to
/// the function and turns its answer into the proxy response. Records put on a stream go on an
/// in-process stream and are cleaned into the lake right after, as stream-clean would.
async fn invoke_api(args: &InvokeArgs, event: &str) -> Result<Invocation, CliError> {
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_str(event).map_err(|e| {
            CliError::Invoke(format!(
                "{}: not an API Gateway proxy request: {e}",
                args.event.display()
            ))
        })?;
    let (landing, _) = crate::serve::raw_landing(&args.raw)?;
    let memory = Arc::new(MemoryStream::new());
    let stream: Arc<dyn ingest_api::StreamSink> = match args.stream {
        StreamKind::Memory => memory.clone(),
        StreamKind::Kinesis => {
            let config = aws_config::load_from_env().await;
            Arc::new(ingest_api::KinesisSink::new(aws_sdk_kinesis::Client::new(
                &config,
            )))
        }
    };
    let deps = Arc::new(IngestDeps {
        raw: Arc::new(landing),
        stream,
    });
    let service = {
        let deps = deps.clone();
        lambda_http::service_fn(move |req: lambda_http::Request| {
            let deps = deps.clone();
            async move {
                let req = req.map(|body| bytes::Bytes::copy_from_slice(body.as_ref()));
                Ok::<_, lambda_http::Error>(ingest_api::handle(req, &deps).await)
            }
        })
    };
    let mut adapter = lambda_http::Adapter::from(service);
    let event = lambda_http::LambdaEvent::new(request, lambda_http::Context::default());
    let response = match adapter.call(event).await {
        Ok(response) => to_json(&response)?,
        Err(e) => return Ok(failed("lambda_http::Error", e)),
    };
    if memory.pending() > 0 {
        let lake = Lake::open(&args.lake)?;
        lake.ensure_tables().await?;
        let report = crate::local::flush_stream(
            &memory,
            &StreamCleanDeps { lake },
            crate::local::STREAM_BATCH,
        )
        .await?;
        eprintln!(
            "stream records cleaned into {}: {} rows written, {} quarantined",
            args.lake, report.counts.rows_written, report.counts.quarantined
        );
    }
    Ok(Invocation::Response(response))
}

/// `pinpipe invoke`: prints the response (or Lambda's error document) and fails when the
/// handler did.
pub async fn run(args: InvokeArgs) -> Result<(), CliError> {
    let event = std::fs::read_to_string(&args.event).map_err(CliError::io(&args.event))?;
    match invoke(&args, &event).await? {
        Invocation::Response(response) => {
            println!("{response}");
            Ok(())
        }
        Invocation::Failed(error) => {
            println!("{error}");
            Err(CliError::Invoke(format!(
                "{:?} failed: {}",
                args.function,
                error["errorMessage"].as_str().unwrap_or_default()
            )))
        }
    }
}
