//! `POST /topics/{topic}`: the Kafka REST proxy v2 produce request (SPEC §3, batch path).
//!
//! Request: `{"records": [{"value": <record>, "key"?: …, "partition"?: …}, …]}` with
//! `Content-Type: application/vnd.kafka.json.v2+json` (or `application/json`). Every record is
//! validated with `shared`'s cleaning checks; one bad record rejects the whole request (422,
//! naming each bad record) and nothing is landed. Accepted records go to the landing as NDJSON
//! lines; once it has them all, the answer is Confluent's `{"offsets": […], "key_schema_id": null, "value_schema_id": null}`.

use crate::error::{rejected, ApiError, Rejection};
use crate::landing::{LandingError, NdjsonRecords};
use crate::limits::{check_record_count, MAX_RECORD_BYTES};
use crate::IngestDeps;
use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use shared::route::record_type_of_topic;

/// Content types accepted on the batch route (parameters such as `charset` are ignored).
pub const ACCEPTED_CONTENT_TYPES: [&str; 3] = [
    "application/vnd.kafka.json.v2+json",
    "application/vnd.kafka.v2+json",
    "application/json",
];

/// The content type of the success answer, as the Confluent REST proxy sends it.
pub const KAFKA_RESPONSE_CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// Handles one produce request for `topic`.
pub async fn produce(
    topic: &str,
    headers: &HeaderMap,
    body: &[u8],
    deps: &IngestDeps,
) -> Result<Response<String>, ApiError> {
    check_content_type(headers, &ACCEPTED_CONTENT_TYPES)?;
    let record_type = record_type_of_topic(topic)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_topic", e.to_string()))?;
    let request: Value = parse_json(body)?;
    let records = request
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                r#"body must be {"records": [{"value": <record>}, ...]}"#,
            )
        })?;
    check_record_count(records.len())?;

    let mut lines = Vec::with_capacity(body.len());
    let mut ends = Vec::with_capacity(records.len());
    let mut rejections = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let Some(value) = record.get("value") else {
            rejections.push(Rejection::new(
                i,
                "missing_value",
                r#"each record must be an object with a "value""#,
            ));
            continue;
        };
        if let Err(e) = shared::clean_value(record_type, value) {
            rejections.push(Rejection::invalid(i, &e));
            continue;
        }
        let start = lines.len();
        if let Err(e) = serde_json::to_writer(&mut lines, value) {
            rejections.push(Rejection::new(i, "unserialisable", e.to_string()));
            continue;
        }
        let size = lines.len() - start;
        if size > MAX_RECORD_BYTES {
            rejections.push(Rejection::too_large(i, size, MAX_RECORD_BYTES));
        }
        lines.push(b'\n');
        ends.push(lines.len());
    }
    if !rejections.is_empty() {
        return Err(rejected(records.len(), rejections, "landed"));
    }

    let ndjson = NdjsonRecords::new(Bytes::from(lines), ends);
    let landed = deps.raw.land(topic, &ndjson).await.map_err(|e| {
        tracing::error!(error = %e, topic, "landing raw records failed");
        match e {
            LandingError::Unavailable { what, accepted: 0, .. } => ApiError::unavailable(&what),
            LandingError::Unavailable { what, accepted, .. } => ApiError::unavailable_after(
                &what,
                format!(
                    "{accepted} of {} records were accepted and will land, the others were not: resend the whole request (the copies are counted once by the query views and removed by maintenance)",
                    records.len()
                ),
            ),
            LandingError::Misconfigured(message) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "misconfigured",
                format!("{message}; nothing was landed, and retrying will not help until the deployment is fixed"),
            ),
            LandingError::RecordTooLarge { index, size, limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "record_too_large",
                format!("1 of {} records rejected; nothing was landed: fix it and resend the request", records.len()),
            )
            .with_details(vec![json!({"record": index, "error": "record_too_large",
                "message": format!("record is {size} bytes; the landing takes at most {limit}")})]),
        }
    })?;
    tracing::info!(topic, records = records.len(), location = %landed.location, "landed batch records");

    // Offsets: where the Kafka landing put each record; for the other landings, the landing
    // time in microseconds plus the record's position, so they increase across requests (they
    // identify the landing, not a Kafka log position to seek to).
    let offsets: Vec<Value> = if landed.offsets.len() == records.len() {
        landed
            .offsets
            .iter()
            .map(|(partition, offset)| json!({"partition": partition, "offset": offset, "error_code": null, "error": null}))
            .collect()
    } else {
        let base = chrono::Utc::now().timestamp_micros();
        (0..records.len())
            .map(|i| json!({"partition": 0, "offset": base + i as i64, "error_code": null, "error": null}))
            .collect()
    };
    let body = json!({"offsets": offsets, "key_schema_id": null, "value_schema_id": null});
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, KAFKA_RESPONSE_CONTENT_TYPE)
        .body(body.to_string())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Rejects a request whose `Content-Type` is missing or not one of `accepted`.
pub fn check_content_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match given {
        Some(ct) if accepted.contains(&ct.as_str()) => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {} is not accepted; use {}",
                other.map_or_else(|| "(none)".to_string(), |c| format!("`{c}`")),
                accepted.join(" or ")
            ),
        )),
    }
}

/// Parses a request body as JSON, or answers 400 saying where it is malformed.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {e}"),
        )
    })
}
