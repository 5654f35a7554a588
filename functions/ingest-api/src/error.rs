//! The API's error answers: a status and a JSON body `{"error", "message", "details"}` that
//! says exactly what was wrong. Bad input is always a 4xx; only a downstream outage is a 503.

use http::{header, Response, StatusCode};
use serde_json::{json, Value};

/// How long a client should wait before retrying after a downstream outage, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_records`.
    pub code: &'static str,
    /// What was wrong and what to do, for a person.
    pub message: String,
    /// Per-record (or per-field) problems.
    pub details: Vec<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}: use POST /topics/<topic>, PUT /streams/<stream>/record(s) or GET /streams"),
        )
    }

    pub fn method_not_allowed(method: &http::Method, allowed: &str) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here; use {allowed}"),
        )
    }

    /// A downstream store or stream is unavailable: retry later.
    pub fn unavailable(what: &str) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} is unavailable; nothing was written, retry after {RETRY_AFTER_SECS} s"),
        )
    }

    /// A downstream store or stream failed part-way: `outcome` says what was written.
    pub fn unavailable_after(what: &str, outcome: String) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} is unavailable; {outcome}; retry after {RETRY_AFTER_SECS} s"),
        )
    }

    /// The HTTP response for this error.
    pub fn into_response(self) -> Response<String> {
        let body = json!({
            "error": self.code,
            "message": self.message,
            "details": self.details,
        });
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json");
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            builder = builder.header(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string());
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            builder = builder.header(header::ALLOW, "GET, POST, PUT");
        }
        builder
            .body(body.to_string())
            .unwrap_or_else(|_| Response::new(String::new()))
    }
}
