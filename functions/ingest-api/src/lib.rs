//! The ingestion API (SPEC §3): a Kafka REST proxy v2 compatible batch route that hands raw
//! records to a buffered landing (Firehose when deployed, see [`landing`]) or into Kafka
//! ([`kafka`]), and API Gateway → Kinesis compatible stream routes that put
//! records on a stream.
//!
//! [`handle`] is a plain async function over an `http::Request` and its dependencies, so the
//! same code answers behind API Gateway (see `main.rs`), inside the local runner, and in tests.
//! It never panics on input: every bad request gets a 4xx JSON error ([`error::ApiError`]).

#![warn(missing_docs)]

pub mod error;
pub mod firehose;
pub mod kafka;
pub mod landing;
pub mod limits;
pub mod sink;
pub mod streams;
pub mod topics;

use bytes::Bytes;
use error::ApiError;
pub use firehose::FirehoseLanding;
use http::{Method, Request, Response};
pub use kafka::{KafkaConfig, KafkaLanding};
pub use landing::{Landing, NdjsonRecords, RawLanding};
pub use sink::{KinesisSink, MemoryStream, StreamSink};
use std::sync::Arc;

/// What the API writes to.
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// Where batch records land.
    pub raw: Arc<dyn Landing>,
    /// Where stream records are put.
    pub stream: Arc<dyn StreamSink>,
}

/// A recognised route. Stage prefixes (`/production/topics/…`) are tolerated: routes are
/// matched on the end of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/topics/{topic}`
    Topic(&'a str),
    /// `/streams`
    Streams,
    /// `/streams/{stream}`
    Stream(&'a str),
    /// `/streams/{stream}/record`
    StreamRecord(&'a str),
    /// `/streams/{stream}/records`
    StreamRecords(&'a str),
}

impl<'a> Route<'a> {
    /// The route a path names, if any.
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [.., "topics", topic] => Some(Route::Topic(topic)),
            [.., "streams", stream, "record"] => Some(Route::StreamRecord(stream)),
            [.., "streams", stream, "records"] => Some(Route::StreamRecords(stream)),
            [.., "streams", stream] => Some(Route::Stream(stream)),
            [.., "streams"] => Some(Route::Streams),
            _ => None,
        }
    }
}

/// Answers one API request. Never fails: errors are answered as 4xx/503 JSON bodies.
pub async fn handle(req: Request<Bytes>, deps: &IngestDeps) -> Response<String> {
    match route(&req, deps).await {
        Ok(response) => response,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(status = %e.status, code = e.code, "request failed downstream");
            } else {
                tracing::info!(status = %e.status, code = e.code, message = %e.message, "request rejected");
            }
            e.into_response()
        }
    }
}

async fn route(req: &Request<Bytes>, deps: &IngestDeps) -> Result<Response<String>, ApiError> {
    limits::check_body_size(req.body().len())?;
    let path = req.uri().path();
    let route = Route::parse(path).ok_or_else(|| ApiError::not_found(path))?;
    let allowed = match route {
        Route::Topic(_) => Method::POST,
        Route::StreamRecord(_) | Route::StreamRecords(_) => Method::PUT,
        Route::Streams | Route::Stream(_) => Method::GET,
    };
    if req.method() != allowed {
        return Err(ApiError::method_not_allowed(req.method(), allowed.as_str()));
    }
    let (headers, body) = (req.headers(), req.body().as_ref());
    match route {
        Route::Topic(topic) => topics::produce(topic, headers, body, deps).await,
        Route::StreamRecord(stream) => streams::put_record(stream, headers, body, deps).await,
        Route::StreamRecords(stream) => streams::put_records(stream, headers, body, deps).await,
        Route::Streams => streams::list(deps).await,
        Route::Stream(stream) => streams::describe(stream, deps).await,
    }
}
