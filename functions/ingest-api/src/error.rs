//! The API's error answers: a status and a JSON body `{"error", "message", "details"}` that
//! says exactly what was wrong. Bad input is always a 4xx; only a downstream outage is a 503.

use http::{header, Response, StatusCode};
use serde_json::{json, Value};

/// How long a client should wait before retrying after a downstream outage, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_records`.
    pub code: &'static str,
    /// What was wrong and what to do, for a person.
    pub message: String,
    /// Per-record (or per-field) problems.
    pub details: Vec<Value>,
}

impl ApiError {
    /// An error answer with no per-record details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds per-record (or per-field) problems.
    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    /// `404 not_found` for a path no route serves, listing the routes there are.
    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}: use POST /topics/<topic>, PUT /streams/<stream>/record(s) or GET /streams"),
        )
    }

    /// `405 method_not_allowed`, naming the method the route takes.
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

/// One record of a request that cannot be taken: an entry of the error's `details`. Both
/// routes reject records the same way, and a request with any rejected record is refused whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    too_large: bool,
    detail: Value,
}

impl Rejection {
    /// Record `record` cannot be used, for the reason `code`.
    pub fn new(record: usize, code: &str, message: impl Into<String>) -> Rejection {
        Rejection {
            too_large: false,
            detail: json!({"record": record, "error": code, "message": message.into()}),
        }
    }

    /// Record `record` does not clean (SPEC §5): the detail names the field.
    pub fn invalid(record: usize, e: &shared::RecordError) -> Rejection {
        Rejection {
            too_large: false,
            detail: json!({"record": record, "field": e.field(), "error": e.code(), "message": e.to_string()}),
        }
    }

    /// Record `record` is `size` bytes, over the per-record limit `limit`.
    pub fn too_large(record: usize, size: usize, limit: usize) -> Rejection {
        Rejection {
            too_large: true,
            detail: json!({"record": record, "error": "record_too_large",
                "message": format!("record is {size} bytes; the limit is {limit}")}),
        }
    }
}

/// The error refusing a request of `total` records because of `rejections`: 413 when any record
/// is too large, 422 otherwise. `nothing_was` says what did not happen (`landed`, `put`).
pub fn rejected(total: usize, rejections: Vec<Rejection>, nothing_was: &str) -> ApiError {
    let (status, code) = if rejections.iter().any(|r| r.too_large) {
        (StatusCode::PAYLOAD_TOO_LARGE, "record_too_large")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_records")
    };
    ApiError::new(
        status,
        code,
        format!(
            "{} of {total} records rejected; nothing was {nothing_was}: fix them and resend the request",
            rejections.len()
        ),
    )
    .with_details(rejections.into_iter().map(|r| r.detail).collect())
}
