//! The stream routes (SPEC §3, stream path), compatible with the API Gateway → Kinesis proxy
//! the original pipeline used:
//!
//! - `PUT /streams/{stream}/record`, body `{"StreamName", "Data", "PartitionKey"}` with `Data`
//!   the record object or a base64 string of its JSON; the path's stream wins;
//! - `PUT /streams/{stream}/records`, body `{"records": [{"data", "partition-key"}, …]}`,
//!   answered in the PutRecords shape;
//! - `GET /streams` and `GET /streams/{stream}`.
//!
//! Records are validated with `shared` before anything is put (all or nothing per request);
//! the Kinesis record's bytes are the record's JSON text.

use crate::error::{rejected, ApiError, Rejection};
use crate::limits::{check_record_count, MAX_RECORD_BYTES};
use crate::sink::{SinkError, StreamSummary};
use crate::topics::{check_content_type, parse_json};
use crate::IngestDeps;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use shared::route::record_type_of_stream;
use shared::RecordType;

/// Content types accepted on the stream routes.
pub const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/json", "application/x-amz-json-1.1"];

/// Longest partition key Kinesis accepts.
pub const MAX_PARTITION_KEY: usize = 256;

fn ok(body: Value) -> Result<Response<String>, ApiError> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

fn sink_error(e: SinkError) -> ApiError {
    match e {
        SinkError::NotFound(stream) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_stream",
            format!("stream `{stream}` does not exist: create it, or check the name"),
        ),
        SinkError::Unavailable(reason) => {
            tracing::error!(%reason, "stream unavailable");
            ApiError::unavailable("the stream")
        }
        SinkError::Invalid(reason) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the Kinesis request could not be built ({reason}); nothing was written, and retrying will not help"),
        ),
    }
}

fn stream_type(stream: &str) -> Result<RecordType, ApiError> {
    record_type_of_stream(stream)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_stream", e.to_string()))
}

fn field<'a>(obj: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n))
}

/// Checks one record (`Data` as an object, or a base64 string of its JSON) and returns its
/// Kinesis bytes and partition key, or the detail entry saying what is wrong.
fn prepare(
    i: usize,
    record_type: RecordType,
    entry: &Value,
    data_keys: &[&str],
    key_keys: &[&str],
) -> Result<(String, Bytes), Rejection> {
    let detail = |code: &str, message: String| Rejection::new(i, code, message);
    let data = field(entry, data_keys).ok_or_else(|| {
        detail(
            "missing_data",
            format!("each record needs a `{}`", data_keys[0]),
        )
    })?;
    let decoded;
    let value = match data {
        Value::String(s) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|_| {
                    detail(
                        "bad_data",
                        "a string `Data` must be base64 of the record's JSON".into(),
                    )
                })?;
            decoded = serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                detail("bad_data", format!("base64 `Data` does not hold JSON: {e}"))
            })?;
            &decoded
        }
        other => other,
    };
    if let Err(e) = shared::clean_value(record_type, value) {
        return Err(Rejection::invalid(i, &e));
    }
    let key = match field(entry, key_keys) {
        Some(Value::String(k)) if !k.is_empty() && k.chars().count() <= MAX_PARTITION_KEY => {
            k.clone()
        }
        _ => {
            return Err(detail(
                "bad_partition_key",
                format!(
                    "`{}` is required: a string of 1 to {MAX_PARTITION_KEY} characters",
                    key_keys[0]
                ),
            ))
        }
    };
    let bytes = serde_json::to_vec(value).map_err(|e| detail("unserialisable", e.to_string()))?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(Rejection::too_large(i, bytes.len(), MAX_RECORD_BYTES));
    }
    Ok((key, Bytes::from(bytes)))
}

/// `PUT /streams/{stream}/record`.
pub async fn put_record(
    stream: &str,
    headers: &HeaderMap,
    body: &[u8],
    deps: &IngestDeps,
) -> Result<Response<String>, ApiError> {
    check_content_type(headers, &ACCEPTED_CONTENT_TYPES)?;
    let record_type = stream_type(stream)?;
    let request = parse_json(body)?;
    if !request.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            r#"body must be {"StreamName": ..., "Data": <record>, "PartitionKey": "..."}"#,
        ));
    }
    let (key, data) = prepare(
        0,
        record_type,
        &request,
        &["Data", "data"],
        &["PartitionKey", "partition-key", "partitionKey"],
    )
    .map_err(|failure| rejected(1, vec![failure], "put"))?;
    let put = deps
        .stream
        .put_record(stream, &key, data)
        .await
        .map_err(sink_error)?;
    tracing::info!(stream, sequence = %put.sequence_number, "put stream record");
    ok(json!({"SequenceNumber": put.sequence_number, "ShardId": put.shard_id}))
}

/// `PUT /streams/{stream}/records`.
pub async fn put_records(
    stream: &str,
    headers: &HeaderMap,
    body: &[u8],
    deps: &IngestDeps,
) -> Result<Response<String>, ApiError> {
    check_content_type(headers, &ACCEPTED_CONTENT_TYPES)?;
    let record_type = stream_type(stream)?;
    let request = parse_json(body)?;
    let entries = field(&request, &["records", "Records"])
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                r#"body must be {"records": [{"data": <record>, "partition-key": "..."}, ...]}"#,
            )
        })?;
    check_record_count(entries.len())?;
    let mut prepared = Vec::with_capacity(entries.len());
    let mut failures = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match prepare(
            i,
            record_type,
            entry,
            &["data", "Data"],
            &["partition-key", "PartitionKey", "partitionKey"],
        ) {
            Ok(p) => prepared.push(p),
            Err(f) => failures.push(f),
        }
    }
    if !failures.is_empty() {
        return Err(rejected(entries.len(), failures, "put"));
    }
    let results = deps
        .stream
        .put_records(stream, prepared)
        .await
        .map_err(sink_error)?;
    let failed = results.iter().filter(|r| r.is_err()).count();
    let records: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(p) => json!({"SequenceNumber": p.sequence_number, "ShardId": p.shard_id}),
            Err(f) => json!({"ErrorCode": f.error_code, "ErrorMessage": f.error_message}),
        })
        .collect();
    tracing::info!(
        stream,
        records = records.len(),
        failed,
        "put stream records"
    );
    ok(json!({"FailedRecordCount": failed, "Records": records}))
}

/// `GET /streams`.
pub async fn list(deps: &IngestDeps) -> Result<Response<String>, ApiError> {
    let names = deps.stream.list_streams().await.map_err(sink_error)?;
    ok(json!({"StreamNames": names, "HasMoreStreams": false}))
}

/// `GET /streams/{stream}`.
pub async fn describe(stream: &str, deps: &IngestDeps) -> Result<Response<String>, ApiError> {
    let StreamSummary {
        name,
        arn,
        status,
        shards,
    } = deps
        .stream
        .describe_stream(stream)
        .await
        .map_err(sink_error)?;
    ok(json!({"StreamDescription": {
        "StreamName": name,
        "StreamARN": arn,
        "StreamStatus": status,
        "Shards": shards.iter().map(|s| json!({"ShardId": s})).collect::<Vec<_>>(),
        "HasMoreShards": false,
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_records_entry_build_error_is_answered_as_a_failure_not_a_retry() {
        let e = sink_error(SinkError::Invalid("partition_key was not specified".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "internal");
        assert_eq!(
            e.message,
            "the Kinesis request could not be built (partition_key was not specified); nothing was written, and retrying will not help"
        );
        // An outage still asks for a retry.
        let outage = sink_error(SinkError::Unavailable("timeout".into()));
        assert_eq!(outage.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
