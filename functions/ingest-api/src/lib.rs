//! The ingestion API (SPEC §3): a Kafka REST proxy v2 compatible batch route that lands raw
//! records in the raw store.
//!
//! [`handle`] is a plain async function over an `http::Request` and its dependencies, so the
//! same code answers behind API Gateway (see `main.rs`), inside the local runner, and in tests.
//! It never panics on input: every bad request gets a 4xx JSON error ([`error::ApiError`]).

pub mod error;
pub mod landing;
pub mod limits;
pub mod topics;

use bytes::Bytes;
use error::ApiError;
use http::{Method, Request, Response};
pub use landing::RawLanding;

/// What the API writes to.
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// Where batch records land.
    pub raw: RawLanding,
}

/// A recognised route. Stage prefixes (`/production/topics/…`) are tolerated: routes are
/// matched on the end of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/topics/{topic}`
    Topic(&'a str),
}

impl<'a> Route<'a> {
    /// The route a path names, if any.
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [.., "topics", topic] => Some(Route::Topic(topic)),
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
    match Route::parse(path) {
        Some(Route::Topic(topic)) => {
            if req.method() != Method::POST {
                return Err(ApiError::method_not_allowed(req.method(), "POST"));
            }
            topics::produce(topic, req.headers(), req.body(), deps).await
        }
        None => Err(ApiError::not_found(path)),
    }
}
