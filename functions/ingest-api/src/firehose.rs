//! The deployed raw landing: Amazon Data Firehose, one Direct PUT delivery stream per record
//! type, each writing to `topics/<prefix>.<type>/…` in the raw bucket.
//!
//! Firehose buffers records and writes one object per flush (size or time, whichever comes
//! first), so the batch path costs one S3 PUT, event, SQS message and GET per flush rather than
//! per request. Each record is sent as its JSON text and a newline, so a delivered object is
//! NDJSON.
//!
//! A request's records go in `PutRecordBatch` calls of at most 500 records and 4 MiB. Entries
//! Firehose refuses (throttling, a transient fault) are retried, alone, with backoff within
//! the request; the route answers `200` only when every record was accepted. If some still fail,
//! the answer is `503`: records Firehose already accepted will land, and the client's retry
//! sends them again. Those copies are whole-row duplicates, which the query views count once and
//! the daily maintenance removes (SPEC §7).

use crate::landing::{Landed, Landing, LandingError, NdjsonRecords};
use async_trait::async_trait;
use aws_sdk_firehose::error::ProvideErrorMetadata;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use bytes::Bytes;
use shared::route::record_type_of_topic;
use shared::RecordType;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most records in one `PutRecordBatch` call.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes in one `PutRecordBatch` call (4 MiB).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Largest record Firehose takes (1,000 KiB, before base64).
pub const MAX_FIREHOSE_RECORD_BYTES: usize = 1000 * 1024;
/// Waits before re-sending refused entries; after the last, the request answers 503.
const RETRY_BACKOFF_MS: [u64; 3] = [100, 300, 900];

/// Firehose delivery streams by record type.
#[derive(Debug, Clone)]
pub struct FirehoseLanding {
    client: aws_sdk_firehose::Client,
    streams: BTreeMap<RecordType, String>,
}

impl FirehoseLanding {
    /// Lands each record type's records in its delivery stream.
    pub fn new(client: aws_sdk_firehose::Client, streams: BTreeMap<RecordType, String>) -> Self {
        FirehoseLanding { client, streams }
    }

    /// The delivery streams named by `DELIVERY_STREAM_PIN`, `DELIVERY_STREAM_GEO` and
    /// `DELIVERY_STREAM_USER`; an error names the first one missing.
    pub fn streams_from_env() -> Result<BTreeMap<RecordType, String>, String> {
        RecordType::ALL
            .into_iter()
            .map(|rt| {
                let var = format!("DELIVERY_STREAM_{}", rt.as_str().to_ascii_uppercase());
                let what = format!("the Firehose delivery stream for {} records", rt.as_str());
                lambda_support::runtime::required_env(&var, &what).map(|name| (rt, name))
            })
            .collect()
    }

    fn unavailable(stream: &str, reason: impl Into<String>, accepted: usize) -> LandingError {
        LandingError::Unavailable {
            what: format!("Firehose delivery stream `{stream}`"),
            reason: reason.into(),
            accepted,
        }
    }

    /// Sends one call's entries, re-sending refused ones; `Ok` when all were accepted.
    /// `accepted` counts the records Firehose took, also when it fails.
    async fn put_batch(
        &self,
        stream: &str,
        lines: Vec<Bytes>,
        accepted: &mut usize,
    ) -> Result<(), LandingError> {
        let mut pending = lines;
        for attempt in 0..=RETRY_BACKOFF_MS.len() {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS[attempt - 1])).await;
            }
            let records = pending
                .iter()
                .map(|line| Record::builder().data(Blob::new(line.to_vec())).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    LandingError::Misconfigured(format!("building a Firehose record: {e}"))
                })?;
            let sent = self
                .client
                .put_record_batch()
                .delivery_stream_name(stream)
                .set_records(Some(records))
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => match e.as_service_error().and_then(|s| s.code()) {
                    Some("ResourceNotFoundException") => {
                        return Err(LandingError::Misconfigured(format!(
                            "Firehose delivery stream `{stream}` does not exist: check the DELIVERY_STREAM_* settings"
                        )))
                    }
                    Some("InvalidArgumentException") => {
                        return Err(LandingError::Misconfigured(format!(
                            "Firehose refused the request to `{stream}`: {}",
                            e.as_service_error().and_then(|s| s.message()).unwrap_or("")
                        )))
                    }
                    Some(code) => {
                        tracing::warn!(stream, code, attempt, "PutRecordBatch failed");
                        if attempt == RETRY_BACKOFF_MS.len() {
                            return Err(Self::unavailable(stream, code, *accepted));
                        }
                        continue;
                    }
                    None => {
                        tracing::warn!(stream, error = %e, attempt, "PutRecordBatch failed");
                        if attempt == RETRY_BACKOFF_MS.len() {
                            return Err(Self::unavailable(stream, e.to_string(), *accepted));
                        }
                        continue;
                    }
                },
            };
            if out.failed_put_count() == 0 {
                *accepted += pending.len();
                return Ok(());
            }
            let responses = out.request_responses();
            if responses.len() != pending.len() {
                return Err(Self::unavailable(
                    stream,
                    format!(
                        "PutRecordBatch answered {} entries for {} records",
                        responses.len(),
                        pending.len()
                    ),
                    *accepted,
                ));
            }
            let sent = pending.len();
            let refused: Vec<Bytes> = pending
                .into_iter()
                .zip(responses)
                .filter(|(_, r)| r.error_code().is_some())
                .map(|(line, _)| line)
                .collect();
            *accepted += sent - refused.len();
            tracing::warn!(
                stream,
                refused = refused.len(),
                attempt,
                code = responses.iter().find_map(|r| r.error_code()).unwrap_or(""),
                "Firehose refused some records; re-sending them"
            );
            pending = refused;
        }
        Err(Self::unavailable(
            stream,
            format!(
                "{} records still refused after {} attempts",
                pending.len(),
                RETRY_BACKOFF_MS.len() + 1
            ),
            *accepted,
        ))
    }
}

/// Splits lines into `PutRecordBatch` calls within the count and byte limits.
pub fn split_into_calls(lines: impl IntoIterator<Item = Bytes>) -> Vec<Vec<Bytes>> {
    let mut calls: Vec<Vec<Bytes>> = Vec::new();
    let mut bytes = 0;
    for line in lines {
        let full = calls.last().is_none_or(|call| {
            call.len() == MAX_BATCH_RECORDS || bytes + line.len() > MAX_BATCH_BYTES
        });
        if full {
            calls.push(Vec::new());
            bytes = 0;
        }
        bytes += line.len();
        if let Some(call) = calls.last_mut() {
            call.push(line);
        }
    }
    calls
}

#[async_trait]
impl Landing for FirehoseLanding {
    async fn land(&self, topic: &str, records: &NdjsonRecords) -> Result<Landed, LandingError> {
        let record_type =
            record_type_of_topic(topic).map_err(|e| LandingError::Misconfigured(e.to_string()))?;
        let stream = self.streams.get(&record_type).ok_or_else(|| {
            LandingError::Misconfigured(format!(
                "no Firehose delivery stream is configured for {} records",
                record_type.as_str()
            ))
        })?;
        if let Some((index, line)) = records
            .lines()
            .enumerate()
            .find(|(_, l)| l.len() > MAX_FIREHOSE_RECORD_BYTES)
        {
            return Err(LandingError::RecordTooLarge {
                index,
                size: line.len(),
                limit: MAX_FIREHOSE_RECORD_BYTES,
            });
        }
        let mut accepted = 0;
        for call in split_into_calls(records.lines()) {
            self.put_batch(stream, call, &mut accepted).await?;
        }
        Ok(Landed {
            location: format!("firehose:{stream}"),
            offsets: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_stay_within_the_count_and_byte_limits() {
        let small = (0..1201).map(|_| Bytes::from_static(b"{}\n"));
        let sizes: Vec<usize> = split_into_calls(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 201]);
        let big = (0..9).map(|_| Bytes::from(vec![b'x'; 1000 * 1024]));
        let calls = split_into_calls(big);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 1]
        );
        assert!(calls
            .iter()
            .all(|c| c.iter().map(Bytes::len).sum::<usize>() <= MAX_BATCH_BYTES));
        assert!(split_into_calls(Vec::new()).is_empty());
    }
}
