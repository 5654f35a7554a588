//! Which raw objects an event names, and reading them from S3 or a local directory.

use crate::BatchCleanError;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use lake::QuarantineRow;
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{GetOptions, GetResult, GetResultPayload, ObjectStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use twox_hash::XxHash64;

/// Objects fetched concurrently per invocation.
pub(crate) const FETCH_CONCURRENCY: usize = 8;

/// A raw object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: String,
    /// The key, URL-decoded.
    pub key: String,
    /// The ETag the event reported, if any.
    pub etag: Option<String>,
    /// The size the event or listing reported, if any.
    pub size: Option<u64>,
}

/// A raw object's bytes as read, and the ETag its store gave, if that names the content.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The S3 ETag; `None` for a local object, whose identity is its content digest.
    pub etag: Option<String>,
    /// The object's bytes.
    pub bytes: Bytes,
}

impl Fetched {
    /// The object's identity, the `<etag>` of its app id: its S3 ETag or, for a local
    /// object, `xxh64-` and the XXH64 digest of its bytes in hex. The digest is taken
    /// here rather than while reading so that it runs on the cleaning threads, spread over the
    /// cores with the cleaning.
    pub fn identity(&self) -> String {
        match &self.etag {
            Some(etag) => etag.clone(),
            None => format!("xxh64-{:016x}", XxHash64::oneshot(0, &self.bytes)),
        }
    }

    /// For a local object, the app id earlier releases named it by: `s3:<key>@` and the MD5
    /// of its bytes.
    pub fn md5_app_id(&self, key: &str) -> String {
        format!("s3:{key}@{:x}", Md5::digest(&self.bytes))
    }
}

/// Where raw objects are read from, and how an object's identity (the `<etag>` of its app id)
/// is told.
#[derive(Debug, Clone)]
pub enum RawStores {
    /// One fixed store for every bucket: a local directory on the embedded default. Its ETags
    /// come from the file's inode, size and time, which change when the same bytes are copied
    /// or rewritten, so an object's identity is a digest of its bytes (as an S3 ETag names an
    /// object's content): a copied raw tree, or a file written again unchanged, is not ingested
    /// twice.
    Fixed(Arc<dyn ObjectStore>),
    /// S3, a client per bucket, built on first use from the AWS environment. An object named
    /// by an event with an ETag is read at that version (`If-Match`): if the key was overwritten
    /// since, the newer version's own event covers it and this one is skipped.
    S3(Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>),
}

impl RawStores {
    /// True for a local directory, whose objects are known by a digest of their bytes.
    pub fn is_local(&self) -> bool {
        matches!(self, RawStores::Fixed(_))
    }

    /// Reads every bucket from S3.
    pub fn s3() -> Self {
        RawStores::S3(Arc::default())
    }

    /// Reads every bucket's objects from one local directory.
    pub fn local_dir(dir: &std::path::Path) -> Result<Self, object_store::Error> {
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(RawStores::Fixed(Arc::new(store)))
    }

    fn store_for(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, BatchCleanError> {
        match self {
            RawStores::Fixed(store) => Ok(store.clone()),
            RawStores::S3(cache) => {
                let mut cache = cache
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(store) = cache.get(bucket) {
                    return Ok(store.clone());
                }
                let store: Arc<dyn ObjectStore> =
                    Arc::new(
                        s3_store(bucket).map_err(|source| BatchCleanError::RawStore {
                            bucket: bucket.to_string(),
                            source,
                        })?,
                    );
                cache.insert(bucket.to_string(), store.clone());
                Ok(store)
            }
        }
    }

    /// Reads one object, or `None` if it no longer exists (or, on S3, no longer is the version
    /// its event named).
    pub async fn fetch(&self, object: &ObjectRef) -> Result<Option<Fetched>, BatchCleanError> {
        let store = self.store_for(&object.bucket)?;
        let read_err = |source| BatchCleanError::Read {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            source,
        };
        let fixed = matches!(self, RawStores::Fixed(_));
        let options = GetOptions {
            if_match: object.etag.clone().filter(|_| !fixed).map(|e| quoted(&e)),
            ..GetOptions::default()
        };
        let result = match store.get_opts(&key_path(&object.key), options).await {
            Ok(r) => r,
            Err(e @ object_store::Error::NotFound { .. }) if names_missing_bucket(&e) => {
                return Err(BatchCleanError::MissingBucket {
                    bucket: object.bucket.clone(),
                    source: e,
                })
            }
            // The key is gone (deleted after its event): nothing to clean.
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(object_store::Error::Precondition { .. }) => {
                tracing::warn!(bucket = %object.bucket, key = %object.key, etag = ?object.etag,
                    "object was overwritten since its event; the newer version's event covers it");
                return Ok(None);
            }
            Err(e) => return Err(read_err(e)),
        };
        let meta_etag = result.meta.e_tag.clone();
        let bytes = body(result).await.map_err(read_err)?;
        let etag = (!fixed).then(|| {
            object
                .etag
                .clone()
                .or(meta_etag)
                .unwrap_or_default()
                .trim_matches('"')
                .to_string()
        });
        Ok(Some(Fetched { etag, bytes }))
    }

    /// Reads the objects, several at once, as a stream in their order: each object can be
    /// cleaned as soon as it is read, while the next ones are still being read.
    pub fn fetch_each<'a>(
        &'a self,
        objects: &'a [ObjectRef],
    ) -> impl futures::Stream<Item = Result<(ObjectRef, Option<Fetched>), BatchCleanError>> + 'a
    {
        futures::stream::iter(objects)
            .map(move |object| async move { Ok((object.clone(), self.fetch(object).await?)) })
            .buffered(FETCH_CONCURRENCY)
    }
}

/// The bytes of a GET. A local file is read straight into a buffer of its size: object_store
/// zeroes its buffer before reading into it, an extra pass over every byte of the object.
async fn body(result: GetResult) -> Result<Bytes, object_store::Error> {
    let range = result.range.clone();
    let (mut file, path) = match result.payload {
        GetResultPayload::File(file, path) => (file, path),
        payload => return GetResult { payload, ..result }.bytes().await,
    };
    let local = move |source: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("{}: {source}", path.display()).into(),
    };
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let len = range.end - range.start;
        let mut bytes = read_buffer(usize::try_from(len).unwrap_or_default());
        file.seek(SeekFrom::Start(range.start)).map_err(&local)?;
        file.take(len).read_to_end(&mut bytes).map_err(&local)?;
        if bytes.len() as u64 != len {
            return Err(local(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "read {} of {len} bytes: the file changed while it was read",
                    bytes.len()
                ),
            )));
        }
        Ok(Bytes::from(bytes))
    })
    .await
    .map_err(|e| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    })?
}

/// Buffers that held local objects already cleaned, for the next ones to be read into.
/// A fresh buffer the size of an object is mapped page by page as the read fills it, a page
/// fault per 4 KiB that cost more than the copy itself (4% of a batch's CPU time); a buffer used
/// before is mapped already. At most [`KEPT_BUFFER_BYTES`] in all are kept.
static READ_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The most bytes of buffers [`READ_BUFFERS`] keeps between objects.
const KEPT_BUFFER_BYTES: usize = 32 * 1024 * 1024;

fn read_buffers() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    READ_BUFFERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An empty buffer with room for `len` bytes, one kept from an earlier object if there is one.
fn read_buffer(len: usize) -> Vec<u8> {
    let mut buffer = read_buffers().pop().unwrap_or_default();
    buffer.clear();
    buffer.reserve(len);
    buffer
}

impl Drop for Fetched {
    /// Hands a local object's buffer on to the next object read, if nothing else holds it.
    fn drop(&mut self) {
        if self.etag.is_some() {
            return;
        }
        let Ok(bytes) = std::mem::take(&mut self.bytes).try_into_mut() else {
            return;
        };
        let buffer = Vec::from(bytes);
        let mut kept = read_buffers();
        let held: usize = kept.iter().map(Vec::capacity).sum();
        if buffer.capacity() > 0 && held + buffer.capacity() <= KEPT_BUFFER_BYTES {
            kept.push(buffer);
        }
    }
}

/// The NDJSON text of a raw object: gzip-compressed objects (a `.gz` key, or gzip's magic
/// bytes, as Firehose and the MSK Connect sink can write them) are decompressed, and a leading
/// UTF-8 byte-order mark is dropped so the first record parses. `Err` when a gzip stream is
/// corrupt.
pub fn decoded<'a>(key: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    use std::io::Read;
    const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let text: std::borrow::Cow<'a, [u8]> = if bytes.starts_with(&GZIP_MAGIC) || key.ends_with(".gz")
    {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| format!("object is not a readable gzip stream: {e}"))?;
        out.into()
    } else {
        bytes.into()
    };
    Ok(match text {
        std::borrow::Cow::Borrowed(b) => b.strip_prefix(BOM).unwrap_or(b).into(),
        std::borrow::Cow::Owned(mut b) => {
            if b.starts_with(BOM) {
                b.drain(..BOM.len());
            }
            b.into()
        }
    })
}

/// An S3 client for `bucket` from the AWS environment; a plain-http `AWS_ENDPOINT_URL` (a local
/// S3-compatible server) works without also setting `AWS_ALLOW_HTTP`.
pub fn s3_store(bucket: &str) -> Result<object_store::aws::AmazonS3, object_store::Error> {
    let builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if lambda_support::runtime::endpoint_is_plain_http() {
        builder.with_allow_http(true).build()
    } else {
        builder.build()
    }
}

/// The store path of an object key, taken literally: the key a listing or a (decoded) event
/// gives is the object's real name, so it must not be percent-encoded again (`#`, `%`, `?`,
/// non-ASCII). A key the path syntax cannot hold as it is (an empty segment) is encoded.
pub fn key_path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

/// True when S3 answered that the bucket itself, not the key, does not exist.
fn names_missing_bucket(e: &object_store::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("NoSuchBucket") {
            return true;
        }
        source = s.source();
    }
    false
}

/// An ETag as HTTP carries it, in double quotes.
fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// Decodes a key as S3 event notifications encode it (`+` for space, `%XX` escapes).
pub fn decode_event_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The objects an S3 event names (object-created records only).
pub fn in_s3_event(event: &S3Event) -> Vec<ObjectRef> {
    event
        .records
        .iter()
        .filter(|r| is_created(r))
        .filter_map(|r| {
            let bucket = r.s3.bucket.name.clone()?;
            let key = r.s3.object.key.as_deref()?;
            Some(ObjectRef {
                bucket,
                key: decode_event_key(key),
                etag: r.s3.object.e_tag.clone().filter(|e| !e.is_empty()),
                size: r.s3.object.size.and_then(|s| u64::try_from(s).ok()),
            })
        })
        .collect()
}

/// Whether a notification record is about an object created (a record naming no event is
/// taken as one).
fn is_created(record: &aws_lambda_events::event::s3::S3EventRecord) -> bool {
    record
        .event_name
        .as_deref()
        .is_none_or(|name| name.starts_with("ObjectCreated"))
}

/// The objects named by the S3 notifications in an SQS event's messages, and a quarantine row
/// for every message that is not an S3 notification (S3's test event is silently skipped).
pub fn in_sqs_event(event: &SqsEvent) -> (Vec<ObjectRef>, Vec<QuarantineRow>) {
    let mut objects = Vec::new();
    let mut unreadable = Vec::new();
    for message in &event.records {
        let body = message.body.as_deref().unwrap_or_default();
        let id = message.message_id.as_deref().unwrap_or("unknown");
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(body);
        match parsed {
            Ok(v) if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") => {}
            Ok(v) => match serde_json::from_value::<S3Event>(v) {
                Ok(s3) => {
                    let named = in_s3_event(&s3);
                    let created = s3.records.iter().filter(|r| is_created(r)).count();
                    // A notification that names no object, or an object-created record without
                    // its bucket or key, is kept whole: what it meant to name can be found
                    // from it, and nothing it named is skipped without a trace.
                    if s3.records.is_empty() || named.len() < created {
                        let error = if s3.records.is_empty() {
                            "the S3 notification has no records".to_string()
                        } else {
                            format!(
                                "{} of its {created} object-created records name no bucket or key",
                                created - named.len()
                            )
                        };
                        unreadable.push(unreadable_message(id, body, error));
                    }
                    objects.extend(named);
                }
                Err(e) => unreadable.push(unreadable_message(id, body, e.to_string())),
            },
            Err(e) => unreadable.push(unreadable_message(id, body, e.to_string())),
        }
    }
    (objects, unreadable)
}

fn unreadable_message(id: &str, body: &str, error: String) -> QuarantineRow {
    tracing::warn!(message_id = id, %error, "SQS message is not an S3 notification; quarantined");
    QuarantineRow {
        source: format!("sqs:{id}"),
        record_type: None,
        raw: body.to_string(),
        error: format!("SQS message is not an S3 event notification: {error}"),
        quarantined_at: Utc::now(),
    }
}

/// Characters S3 escapes in event keys: everything but unreserved characters and `/`.
const EVENT_KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'=');

/// An `ObjectCreated:Put` S3 event naming `objects`, shaped (and key-encoded) as S3 sends it.
/// Used by the local runner and tests to drive the same handler Lambda runs.
pub fn s3_put_event(objects: &[ObjectRef]) -> S3Event {
    let records: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            let key = percent_encoding::utf8_percent_encode(&o.key, EVENT_KEY_ESCAPES)
                .to_string()
                .replace("%20", "+");
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": Utc::now().to_rfc3339(),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "raw-landing",
                    "bucket": {"name": o.bucket, "ownerIdentity": {"principalId": "local"}, "arn": format!("arn:aws:s3:::{}", o.bucket)},
                    "object": {"key": key, "size": o.size.unwrap_or(0), "eTag": o.etag.clone().unwrap_or_default(), "sequencer": "0"}
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap_or_default()
}

/// Every object under `topics/` in `store`, as references in bucket `bucket`, sorted by key.
pub async fn list_landed(
    store: &dyn ObjectStore,
    bucket: &str,
) -> Result<Vec<ObjectRef>, BatchCleanError> {
    list_under(store, bucket, "topics").await
}

/// Every object under `prefix` in `store`, as references in bucket `bucket`, sorted by key.
pub async fn list_under(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectRef>, BatchCleanError> {
    let prefix = Path::from(prefix);
    let metas: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| BatchCleanError::Read {
            bucket: bucket.to_string(),
            key: prefix.to_string(),
            source,
        })?;
    let mut objects: Vec<ObjectRef> = metas
        .into_iter()
        .map(|m| ObjectRef {
            bucket: bucket.to_string(),
            key: m.location.to_string(),
            etag: m.e_tag.map(|e| e.trim_matches('"').to_string()),
            size: Some(m.size),
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn sqs_event(bodies: &[&str]) -> SqsEvent {
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| serde_json::json!({"messageId": format!("m{i}"), "body": body}))
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    /// Found by the `s3_sqs_event` fuzz target: a notification whose object-created record has
    /// no key (or which has no records) named nothing and was dropped without a trace.
    #[test]
    fn a_notification_naming_no_object_is_quarantined_whole_not_dropped() {
        let keyless = r#"{"Records": [{"eventTime": "2026-12-04T00:00:00Z", "userIdentity": {}, "requestParameters": {}, "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "raw"}, "object": {"kay": "topics/p.geo/a.json"}}}]}"#;
        let half = r#"{"Records": [{"eventTime": "2026-12-04T00:00:00Z", "userIdentity": {}, "requestParameters": {}, "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "raw"}, "object": {"key": "topics/p.geo/a.json"}}}, {"eventTime": "2026-12-04T00:00:00Z", "userIdentity": {}, "requestParameters": {}, "eventName": "ObjectCreated:Put", "s3": {"bucket": {}, "object": {"key": "topics/p.geo/b.json"}}}]}"#;
        let empty = r#"{"Records": []}"#;
        let removed = r#"{"Records": [{"eventTime": "2026-12-04T00:00:00Z", "userIdentity": {}, "requestParameters": {}, "eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "raw"}, "object": {}}}]}"#;
        let (objects, quarantined) = in_sqs_event(&sqs_event(&[keyless, half, empty, removed]));
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["topics/p.geo/a.json"]);
        let kept: Vec<(&str, &str)> = quarantined
            .iter()
            .map(|q| {
                let error = q
                    .error
                    .strip_prefix("SQS message is not an S3 event notification: ");
                (q.raw.as_str(), error.unwrap_or(&q.error))
            })
            .collect();
        assert_eq!(
            kept,
            [
                (
                    keyless,
                    "1 of its 1 object-created records name no bucket or key"
                ),
                (
                    half,
                    "1 of its 2 object-created records name no bucket or key"
                ),
                (empty, "the S3 notification has no records"),
            ]
        );
    }

    #[tokio::test]
    async fn a_local_file_reads_whole_or_in_part_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let text = b"{\"index\": 1}\n{\"index\": 2}\n";
        let path = Path::from("topics/p.pin/part-0.ndjson");
        store.put(&path, text.to_vec().into()).await.unwrap();

        let whole = store.get_opts(&path, GetOptions::default()).await.unwrap();
        assert!(matches!(whole.payload, GetResultPayload::File(..)));
        assert_eq!(body(whole).await.unwrap(), Bytes::from_static(text));

        let part = GetOptions {
            range: Some((13..25).into()),
            ..GetOptions::default()
        };
        let part = store.get_opts(&path, part).await.unwrap();
        assert_eq!(
            body(part).await.unwrap(),
            Bytes::from_static(b"{\"index\": 2}")
        );
    }

    #[tokio::test]
    async fn objects_read_one_after_another_each_read_as_exactly_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawStores::local_dir(dir.path()).unwrap();
        let texts: Vec<Vec<u8>> = [40_000, 3, 40_000, 17, 0, 1]
            .iter()
            .enumerate()
            .map(|(i, len)| (0..*len).map(|b| b"abcdefgh"[(b + i) % 8]).collect())
            .collect();
        for (i, text) in texts.iter().enumerate() {
            std::fs::create_dir_all(dir.path().join("topics/p.pin")).unwrap();
            std::fs::write(dir.path().join(format!("topics/p.pin/{i}")), text).unwrap();
        }
        // Each object is dropped before the next is read, so a buffer that held a longer one
        // may be read into again.
        for _ in 0..2 {
            for (i, text) in texts.iter().enumerate() {
                let object = ObjectRef {
                    bucket: "raw".into(),
                    key: format!("topics/p.pin/{i}"),
                    etag: None,
                    size: None,
                };
                let fetched = raw
                    .fetch(&object)
                    .await
                    .unwrap()
                    .expect("the object exists");
                assert_eq!(fetched.bytes.as_ref(), text.as_slice(), "object {i}");
                assert_eq!(fetched.etag, None);
            }
        }
    }
}
