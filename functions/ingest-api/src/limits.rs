//! Request limits shared by every route: Lambda's payload limit, Kinesis' record limit and the
//! PutRecords count limit (SPEC §3).

use crate::error::ApiError;
use http::StatusCode;

/// Largest request body accepted: Lambda's 6 MB synchronous payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Largest single record accepted: Kinesis' 1 MiB record limit.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Most records accepted in one request: Kinesis PutRecords' limit.
pub const MAX_RECORDS: usize = 500;

/// `413 body_too_large` for a body over [`MAX_BODY_BYTES`].
pub fn check_body_size(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is {len} bytes; the limit is {MAX_BODY_BYTES}: split it into smaller requests"),
        ));
    }
    Ok(())
}

/// `422 no_records` for an empty request, `413 too_many_records` for more than [`MAX_RECORDS`].
pub fn check_record_count(n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_records",
            "the request holds no records; send at least one",
        ));
    }
    if n > MAX_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!("the request holds {n} records; the limit is {MAX_RECORDS}: split it"),
        ));
    }
    Ok(())
}
