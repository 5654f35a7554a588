//! Which record type a topic, a stream or a raw object key carries (SPEC §3, §4).
//!
//! Topics are `<prefix>.pin|geo|user`, streams `streaming-<prefix>-pin|geo|user`; the prefix is
//! free. Raw objects live under `topics/<topic>/…`, both in this pipeline's own landing layout
//! and in the original MSK Connect S3 sink layout
//! (`topics/<topic>/partition=0/<topic>+0+<offset>.json`), so either can be backfilled.

use crate::record::RecordType;

/// Longest topic or stream name accepted (Kafka's topic limit; Kinesis allows 128).
pub const MAX_NAME_LEN: usize = 249;

/// Why a topic, stream or key does not name a record type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The name has characters outside `[A-Za-z0-9._-]`, or is empty or too long.
    #[error("`{name}` is not a valid name: use 1 to 249 characters from A-Z a-z 0-9 . _ -")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The name is well formed but does not end in a known record type.
    #[error("`{name}` does not end in a record type: expected {expected}")]
    UnknownSuffix {
        /// The name as given.
        name: String,
        /// The suffixes that name a record type.
        expected: &'static str,
    },
    /// The object key is not under `topics/<topic>/`.
    #[error("object key `{key}` is not under topics/<topic>/")]
    NotUnderTopics {
        /// The key as given.
        key: String,
    },
}

/// Checks a topic or stream name is safe to use as a path segment and a Kafka/Kinesis name.
fn check_name(name: &str) -> Result<(), RouteError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RouteError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// The record type of a topic named `<prefix>.pin`, `<prefix>.geo` or `<prefix>.user`.
pub fn record_type_of_topic(topic: &str) -> Result<RecordType, RouteError> {
    check_name(topic)?;
    topic
        .rsplit_once('.')
        .and_then(|(_, suffix)| RecordType::from_suffix(suffix))
        .ok_or_else(|| RouteError::UnknownSuffix {
            name: topic.to_string(),
            expected: "<prefix>.pin, <prefix>.geo or <prefix>.user",
        })
}

/// The record type of a stream named `streaming-<prefix>-pin` (or `-geo`, `-user`).
pub fn record_type_of_stream(stream: &str) -> Result<RecordType, RouteError> {
    check_name(stream)?;
    stream
        .rsplit_once('-')
        .and_then(|(_, suffix)| RecordType::from_suffix(suffix))
        .ok_or_else(|| RouteError::UnknownSuffix {
            name: stream.to_string(),
            expected: "streaming-<prefix>-pin, -geo or -user",
        })
}

/// The topic an object key belongs to: the segment after `topics/`.
pub fn topic_of_key(key: &str) -> Result<&str, RouteError> {
    let mut segments = key.split('/');
    while let Some(segment) = segments.next() {
        if segment == "topics" {
            if let Some(topic) = segments.next().filter(|t| !t.is_empty()) {
                return Ok(topic);
            }
        }
    }
    Err(RouteError::NotUnderTopics {
        key: key.to_string(),
    })
}

/// The record type of the records in the object at `key`.
pub fn record_type_of_key(key: &str) -> Result<RecordType, RouteError> {
    record_type_of_topic(topic_of_key(key)?)
}

/// Where an object written by the MSK Connect S3 sink sits in its topic: the file
/// `<topic>+<partition>+<start offset>.<ext>` holds the records at offsets start, start+1, …
/// of one Kafka topic-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFile<'a> {
    /// The Kafka topic.
    pub topic: &'a str,
    /// The topic's partition.
    pub partition: u32,
    /// The offset of the file's first record.
    pub start_offset: i64,
}

impl SinkFile<'_> {
    /// The topic-partition the file belongs to, e.g. `0a5e6ec37a2f.pin+0`.
    pub fn topic_partition(&self) -> String {
        format!("{}+{}", self.topic, self.partition)
    }
}

/// The MSK Connect S3 sink position of the object at `key`, if its file name has the sink's
/// form and names the topic of its folder.
pub fn sink_file_of_key(key: &str) -> Option<SinkFile<'_>> {
    let topic = topic_of_key(key).ok()?;
    let file = key.rsplit('/').next()?;
    // The topic contains dots itself, so it is matched whole before the extension is cut.
    let (partition, rest) = file
        .strip_prefix(topic)?
        .strip_prefix('+')?
        .split_once('+')?;
    let offset = rest.split('.').next()?;
    if partition.is_empty() || offset.is_empty() {
        return None;
    }
    Some(SinkFile {
        topic,
        partition: partition.parse().ok()?,
        start_offset: offset.parse().ok().filter(|o: &i64| *o >= 0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_files() {
        assert_eq!(
            sink_file_of_key(
                "topics/0a5e6ec37a2f.geo/partition=0/0a5e6ec37a2f.geo+0+0000000042.json"
            ),
            Some(SinkFile {
                topic: "0a5e6ec37a2f.geo",
                partition: 0,
                start_offset: 42
            })
        );
        assert_eq!(
            sink_file_of_key("backup/topics/a.b.pin/partition=3/a.b.pin+3+0000012345.json.gz")
                .map(|f| (f.topic_partition(), f.start_offset)),
            Some(("a.b.pin+3".to_string(), 12345))
        );
        for not_sink in [
            "topics/p.user/dt=2026-11-26/1764000000000000-x.ndjson",
            "topics/p.user/partition=0/users.json",
            "topics/p.user/partition=0/q.user+0+0000000001.json",
            "topics/p.user/partition=0/p.user+x+0000000001.json",
            "topics/p.user/partition=0/p.user+0+-1.json",
            "topics/p.user/partition=0/p.user+0+.json",
        ] {
            assert_eq!(sink_file_of_key(not_sink), None, "{not_sink}");
        }
    }

    #[test]
    fn topics() {
        assert_eq!(
            record_type_of_topic("0a5e6ec37a2f.pin"),
            Ok(RecordType::Pin)
        );
        assert_eq!(
            record_type_of_topic("0a5e6ec37a2f.geo"),
            Ok(RecordType::Geo)
        );
        assert_eq!(record_type_of_topic("a.b.user"), Ok(RecordType::User));
        assert!(matches!(
            record_type_of_topic("0a5e6ec37a2f.pins"),
            Err(RouteError::UnknownSuffix { .. })
        ));
        assert!(matches!(
            record_type_of_topic("pin"),
            Err(RouteError::UnknownSuffix { .. })
        ));
        for bad in ["", "..", "a/b.pin", "a b.pin", &"x".repeat(250)] {
            assert!(
                matches!(
                    record_type_of_topic(bad),
                    Err(RouteError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn streams() {
        assert_eq!(
            record_type_of_stream("streaming-0a5e6ec37a2f-pin"),
            Ok(RecordType::Pin)
        );
        assert_eq!(
            record_type_of_stream("streaming-0a5e6ec37a2f-user"),
            Ok(RecordType::User)
        );
        assert!(record_type_of_stream("streaming-0a5e6ec37a2f.pin").is_err());
    }

    #[test]
    fn keys_in_both_layouts() {
        assert_eq!(
            record_type_of_key(
                "topics/0a5e6ec37a2f.geo/partition=0/0a5e6ec37a2f.geo+0+0000000042.json"
            ),
            Ok(RecordType::Geo)
        );
        assert_eq!(
            record_type_of_key("raw/topics/p.user/dt=2026-11-26/1764000000000000-x.ndjson"),
            Ok(RecordType::User)
        );
        assert!(matches!(
            record_type_of_key("uploads/p.pin/x.json"),
            Err(RouteError::NotUnderTopics { .. })
        ));
    }
}
