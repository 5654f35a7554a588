//! Raw records as they arrive: pin, geo and user JSON objects, read by key name.
//!
//! Keys may come in any order and unknown keys are ignored. A missing key (or a JSON `null`)
//! reads as `None`. Anything that cannot be read as the field's type is a [`RecordError`] that
//! names the field and says what was wrong, so the record can be rejected (ingest API) or
//! quarantined (cleaners) with a reason a person can act on.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

/// The three kinds of record the pipeline carries; each has its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// A post (`pinterest_data`).
    Pin,
    /// Where a post was made (`geolocation_data`).
    Geo,
    /// Who made a post (`user_data`).
    User,
}

impl RecordType {
    /// Every record type, in table order.
    pub const ALL: [RecordType; 3] = [RecordType::Pin, RecordType::Geo, RecordType::User];

    /// The suffix that names this type in topics and streams, and the name of its table.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Pin => "pin",
            RecordType::Geo => "geo",
            RecordType::User => "user",
        }
    }

    /// The record type named by `suffix` (`pin`, `geo` or `user`), if any.
    pub fn from_suffix(suffix: &str) -> Option<RecordType> {
        match suffix {
            "pin" => Some(RecordType::Pin),
            "geo" => Some(RecordType::Geo),
            "user" => Some(RecordType::User),
            _ => None,
        }
    }

    /// The name of the join key in this type's raw records (`index` for pin, `ind` otherwise).
    pub fn key_field(self) -> &'static str {
        match self {
            RecordType::Pin => "index",
            RecordType::Geo | RecordType::User => "ind",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a raw record cannot be read. Each variant names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not JSON at all.
    #[error("record is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is valid but is not an object (`{...}`).
    #[error("record must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A required field is absent or null.
    #[error("`{field}` is required but missing or null")]
    Missing {
        /// The missing field.
        field: &'static str,
    },
    /// A field holds a JSON value of the wrong type.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// The offending field.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
        /// What it held (JSON type, and the value when short).
        found: String,
    },
    /// A field has the right JSON type but a value that cannot be read.
    #[error("`{field}` {reason}")]
    BadValue {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl RecordError {
    /// A short, stable code for the error, for API error details and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::NotJson(_) => "not_json",
            RecordError::NotAnObject(_) => "not_an_object",
            RecordError::Missing { .. } => "missing_field",
            RecordError::WrongType { .. } => "wrong_type",
            RecordError::BadValue { .. } => "bad_value",
        }
    }

    /// The [`code`](RecordError::code) of an error known only by its message, as the
    /// quarantine table keeps it. The other reasons a record is quarantined get codes of their
    /// own: `unknown_type` (its record type could not be told), `not_s3_event` (an SQS message
    /// that is not an S3 notification), `unreadable_object` (a corrupt gzip object); any other
    /// message is `other`.
    pub fn code_of_message(message: &str) -> &'static str {
        const PREFIXES: [(&str, &str); 5] = [
            ("record is not valid JSON", "not_json"),
            ("record must be a JSON object", "not_an_object"),
            ("cannot tell the record type", "unknown_type"),
            (
                "SQS message is not an S3 event notification",
                "not_s3_event",
            ),
            ("object is not a readable gzip stream", "unreadable_object"),
        ];
        const BAD_VALUES: [&str; 4] = [
            " must be a whole number that fits 64 bits",
            " must be an integer, found the text",
            " must be a timestamp like",
            " is not a finite number",
        ];
        if let Some((_, code)) = PREFIXES.iter().find(|(p, _)| message.starts_with(p)) {
            return code;
        }
        // `field` and what is wrong with it.
        let Some(rest) = message
            .strip_prefix('`')
            .and_then(|m| m.split_once('`'))
            .map(|(_, rest)| rest)
        else {
            return "other";
        };
        if rest == " is required but missing or null" {
            "missing_field"
        } else if BAD_VALUES.iter().any(|r| rest.starts_with(r)) {
            "bad_value"
        } else if rest.starts_with(" must be ") {
            "wrong_type"
        } else {
            "other"
        }
    }

    /// The field the error is about, if it is about one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RecordError::NotJson(_) | RecordError::NotAnObject(_) => None,
            RecordError::Missing { field }
            | RecordError::WrongType { field, .. }
            | RecordError::BadValue { field, .. } => Some(field),
        }
    }
}

/// A raw post (`pinterest_data`), as sent; its text borrows from the parsed record, so only
/// what cleaning keeps is copied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PinRecord<'a> {
    /// The post's id, shared with its geo and user records.
    pub index: i64,
    /// The scraper's id of the post.
    pub unique_id: Option<&'a str>,
    /// The post's title, or a sentinel (see [`crate::clean`]).
    pub title: Option<&'a str>,
    /// The post's description, or a sentinel.
    pub description: Option<&'a str>,
    /// Who posted it, or `"User Info Error"`.
    pub poster_name: Option<&'a str>,
    /// Text such as `"10k"`, `"2M"`, `"940"` or `"User Info Error"`.
    pub follower_count: Option<Cow<'a, str>>,
    /// Comma-separated tags, or a sentinel.
    pub tag_list: Option<&'a str>,
    /// `image`, `video` or `multi-video(story page format)`.
    pub is_image_or_video: Option<&'a str>,
    /// The image's URL, or a sentinel.
    pub image_src: Option<&'a str>,
    /// Whether the scraper downloaded the image (0 or 1); dropped by cleaning.
    pub downloaded: Option<i64>,
    /// `Local save in <path>`.
    pub save_location: Option<&'a str>,
    /// One of the 13 categories.
    pub category: Option<&'a str>,
}

/// A raw geolocation record (`geolocation_data`), as sent, its text borrowed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoRecord<'a> {
    /// The post's id.
    pub ind: i64,
    /// When the post was made.
    pub timestamp: Option<DateTime<Utc>>,
    /// Degrees north.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
    /// Where the post was made.
    pub country: Option<&'a str>,
}

/// A raw user record (`user_data`), as sent, its text borrowed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRecord<'a> {
    /// The post's id (a user record per post).
    pub ind: i64,
    /// The poster's first name.
    pub first_name: Option<&'a str>,
    /// The poster's last name.
    pub last_name: Option<&'a str>,
    /// In years.
    pub age: Option<i64>,
    /// When the user joined.
    pub date_joined: Option<DateTime<Utc>>,
}

/// Parses JSON bytes into a JSON object, or says why they are not one.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, RecordError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RecordError::NotJson(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(RecordError::NotAnObject(json_type(&other))),
    }
}

/// Returns the JSON object inside `value`, or says why it is not one.
pub fn as_object(value: &Value) -> Result<&Map<String, Value>, RecordError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(RecordError::NotAnObject(json_type(other))),
    }
}

/// A field's JSON value, as far as the readers look into it: strings and numbers whole,
/// arrays and objects by their type only.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// `null`.
    Null,
    /// `true` or `false`; the readers only need to know it is not what they expect.
    Bool,
    /// A number, as JSON wrote it (integer or float).
    Number(Number),
    /// A string, escapes resolved.
    String(&'a str),
    /// An array; its contents are never read.
    Array,
    /// An object; its contents are never read.
    Object,
}

/// A JSON object whose fields can be read by key name. When a key appears more than once, the
/// last value counts (as `serde_json` reads it).
pub trait JsonObject {
    /// The value of `key`, if the object has it.
    fn field(&self, key: &str) -> Option<FieldValue<'_>>;
}

impl JsonObject for Map<String, Value> {
    fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        self.get(key).map(|value| match value {
            Value::Null => FieldValue::Null,
            Value::Bool(_) => FieldValue::Bool,
            Value::Number(n) => FieldValue::Number(n.clone()),
            Value::String(s) => FieldValue::String(s),
            Value::Array(_) => FieldValue::Array,
            Value::Object(_) => FieldValue::Object,
        })
    }
}

/// A raw record's top-level object, parsed straight from its bytes: keys and strings borrow
/// from the input unless they hold escapes, and nested arrays and objects are skipped. Reading
/// a record this way allocates a fraction of what building a [`Value`] does, which is most of
/// the cost of cleaning.
///
/// Parsed for a record type ([`RawObject::parse_for`]), the values of the keys its reader
/// looks up are kept in slots in the order of [`RecordType::keys`], so reading a field is an
/// index rather than a search of every key; other keys are kept in a list, so any key can
/// still be read.
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    keys: &'static [&'static str],
    /// The slot after the last one filled while parsing.
    next: usize,
    /// The slot after the last one read.
    read_next: std::cell::Cell<usize>,
    known: [Option<RawValue<'a>>; MAX_KEYS],
    others: Vec<(Cow<'a, str>, RawValue<'a>)>,
}

/// The most keys a record type's reader looks up.
const MAX_KEYS: usize = 12;

#[derive(Debug)]
enum RawValue<'a> {
    Null,
    Bool,
    Number(Number),
    String(Cow<'a, str>),
    Array,
    Object,
}

impl RecordType {
    /// The keys the reader of this type ([`PinRecord::from_object`] and the others) looks up.
    pub fn keys(self) -> &'static [&'static str] {
        const PIN: [&str; 12] = [
            "index",
            "unique_id",
            "title",
            "description",
            "poster_name",
            "follower_count",
            "tag_list",
            "is_image_or_video",
            "image_src",
            "downloaded",
            "save_location",
            "category",
        ];
        const GEO: [&str; 5] = ["ind", "timestamp", "latitude", "longitude", "country"];
        const USER: [&str; 5] = ["ind", "first_name", "last_name", "age", "date_joined"];
        match self {
            RecordType::Pin => &PIN,
            RecordType::Geo => &GEO,
            RecordType::User => &USER,
        }
    }
}

impl<'a> RawObject<'a> {
    /// Parses JSON bytes that must hold one object, or says why they do not. Errors are those
    /// of [`parse_object`], word for word.
    pub fn parse(bytes: &'a [u8]) -> Result<RawObject<'a>, RecordError> {
        RawObject::parse_keyed(bytes, &[])
    }

    /// [`RawObject::parse`] for a record of `record_type`, whose fields are then read by index.
    ///
    /// Bytes that are valid UTF-8 as a whole are checked once and read as text: reading them
    /// as bytes checks every string on its own, which cost more than the check of the whole.
    pub fn parse_for(
        record_type: RecordType,
        bytes: &'a [u8],
    ) -> Result<RawObject<'a>, RecordError> {
        RawObject::parse_keyed(bytes, record_type.keys())
    }

    /// [`RawObject::parse_for`] for JSON known to be UTF-8.
    pub fn parse_text_for(
        record_type: RecordType,
        text: &'a str,
    ) -> Result<RawObject<'a>, RecordError> {
        RawObject::parse_text_keyed(text, record_type.keys())
    }

    fn parse_keyed(
        bytes: &'a [u8],
        keys: &'static [&'static str],
    ) -> Result<RawObject<'a>, RecordError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => RawObject::parse_text_keyed(text, keys),
            Err(_) => RawObject::read(keys, &mut serde_json::Deserializer::from_slice(bytes)),
        }
    }

    fn parse_text_keyed(
        text: &'a str,
        keys: &'static [&'static str],
    ) -> Result<RawObject<'a>, RecordError> {
        RawObject::read(keys, &mut serde_json::Deserializer::from_str(text))
    }

    /// Reads one top-level JSON value, which must be an object, and checks that nothing
    /// follows it, as `serde_json::from_str` and `from_slice` do (so their errors are the
    /// same, word for word). The object is filled in place: it is as large as its slots, and
    /// handing it back through the parser's results moved it several times per record.
    fn read<R: serde_json::de::Read<'a>>(
        keys: &'static [&'static str],
        de: &mut serde_json::Deserializer<R>,
    ) -> Result<RawObject<'a>, RecordError> {
        let mut object = RawObject {
            keys,
            ..RawObject::default()
        };
        let top = de::DeserializeSeed::deserialize(
            RawVisitor {
                top: Some(&mut object),
            },
            &mut *de,
        )
        .and_then(|top| de.end().map(|()| top));
        match top {
            Ok(Visited::Top(None)) => Ok(object),
            Ok(Visited::Top(Some(kind))) => Err(RecordError::NotAnObject(kind)),
            Ok(Visited::Value(_)) => Err(RecordError::NotAnObject("a value")),
            Err(e) => Err(RecordError::NotJson(e.to_string())),
        }
    }

    /// Keeps `value` as the value of `key` (a later value of the same key replaces it). Keys
    /// mostly come in the order of the slots, so the slot after the last one filled is tried
    /// first.
    fn insert(&mut self, key: Cow<'a, str>, value: RawValue<'a>) {
        match slot_from(self.keys, self.next, &key) {
            Some(slot) => {
                self.known[slot] = Some(value);
                self.next = slot + 1;
            }
            None => self.others.push((key, value)),
        }
    }

    /// The slot of `key`, if it has one. The readers look keys up in the order of the slots,
    /// so the slot after the last one read is tried first.
    fn slot(&self, key: &str) -> Option<usize> {
        let slot = slot_from(self.keys, self.read_next.get(), key)?;
        self.read_next.set(slot + 1);
        Some(slot)
    }
}

/// The index of `key` in `keys`, trying `hint` first.
fn slot_from(keys: &[&str], hint: usize, key: &str) -> Option<usize> {
    match keys.get(hint) {
        Some(k) if *k == key => Some(hint),
        _ => keys.iter().position(|k| *k == key),
    }
}

impl JsonObject for RawObject<'_> {
    fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        let value = match self.slot(key) {
            Some(slot) => self.known[slot].as_ref(),
            None => self
                .others
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v),
        };
        value.map(|v| match v {
            RawValue::Null => FieldValue::Null,
            RawValue::Bool => FieldValue::Bool,
            RawValue::Number(n) => FieldValue::Number(n.clone()),
            RawValue::String(s) => FieldValue::String(s),
            RawValue::Array => FieldValue::Array,
            RawValue::Object => FieldValue::Object,
        })
    }
}

/// Reads one JSON value into a [`RawValue`] (`top: None`) or, at the top level, into the
/// object given (`top: Some`, its slots named).
struct RawVisitor<'o, 'a> {
    top: Option<&'o mut RawObject<'a>>,
}

/// What [`RawVisitor`] read: at the top level, nothing more when it was an object (it is in
/// the object given) or the JSON type found instead; below it, a field's value.
enum Visited<'a> {
    Top(Option<&'static str>),
    Value(RawValue<'a>),
}

impl RawVisitor<'_, '_> {
    fn scalar<'a>(&self, kind: &'static str, value: RawValue<'a>) -> Visited<'a> {
        if self.top.is_some() {
            Visited::Top(Some(kind))
        } else {
            Visited::Value(value)
        }
    }
}

impl<'de> Visitor<'de> for RawVisitor<'_, 'de> {
    type Value = Visited<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.scalar("null", RawValue::Null))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.scalar("a boolean", RawValue::Bool))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.scalar("a number", RawValue::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.scalar("a number", RawValue::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // JSON numbers are always finite; a non-finite one reads as null, as in `Value`.
        let value = Number::from_f64(v).map_or(RawValue::Null, RawValue::Number);
        Ok(self.scalar("a number", value))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.scalar("a string", RawValue::String(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.scalar("a string", RawValue::String(Cow::Owned(v.to_string()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(self.scalar("a string", RawValue::String(Cow::Owned(v))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.scalar("an array", RawValue::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(object) = self.top else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Visited::Value(RawValue::Object));
        };
        while let Some(RawKey(key)) = map.next_key()? {
            let value = match map.next_value_seed(RawVisitor { top: None })? {
                Visited::Value(v) => v,
                Visited::Top(_) => RawValue::Null,
            };
            object.insert(key, value);
        }
        Ok(Visited::Top(None))
    }
}

impl<'de> de::DeserializeSeed<'de> for RawVisitor<'_, 'de> {
    type Value = Visited<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct RawKey<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for RawKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawKey(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'a> PinRecord<'a> {
    /// Reads a pin record from a JSON object by key name.
    pub fn from_object(obj: &'a impl JsonObject) -> Result<Self, RecordError> {
        let f = Fields(obj);
        Ok(PinRecord {
            index: f.required_int("index")?,
            unique_id: f.string("unique_id")?,
            title: f.string("title")?,
            description: f.string("description")?,
            poster_name: f.string("poster_name")?,
            follower_count: f.string_or_integer("follower_count")?,
            tag_list: f.string("tag_list")?,
            is_image_or_video: f.string("is_image_or_video")?,
            image_src: f.string("image_src")?,
            downloaded: f.int("downloaded")?,
            save_location: f.string("save_location")?,
            category: f.string("category")?,
        })
    }
}

impl<'a> GeoRecord<'a> {
    /// Reads a geolocation record from a JSON object by key name.
    pub fn from_object(obj: &'a impl JsonObject) -> Result<Self, RecordError> {
        let f = Fields(obj);
        Ok(GeoRecord {
            ind: f.required_int("ind")?,
            timestamp: f.timestamp("timestamp")?,
            latitude: f.number("latitude")?,
            longitude: f.number("longitude")?,
            country: f.string("country")?,
        })
    }
}

impl<'a> UserRecord<'a> {
    /// Reads a user record from a JSON object by key name.
    pub fn from_object(obj: &'a impl JsonObject) -> Result<Self, RecordError> {
        let f = Fields(obj);
        Ok(UserRecord {
            ind: f.required_int("ind")?,
            first_name: f.string("first_name")?,
            last_name: f.string("last_name")?,
            age: f.int("age")?,
            date_joined: f.timestamp("date_joined")?,
        })
    }
}

/// Typed, by-name access to the fields of one raw JSON object.
struct Fields<'a, O: JsonObject + ?Sized>(&'a O);

impl<'a, O: JsonObject + ?Sized> Fields<'a, O> {
    fn get(&self, field: &str) -> Option<FieldValue<'a>> {
        self.0.field(field).filter(|v| *v != FieldValue::Null)
    }

    fn string(&self, field: &'static str) -> Result<Option<&'a str>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(FieldValue::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(field, "a string", &other)),
        }
    }

    /// A text field that some sources send as a bare integer (`follower_count`).
    fn string_or_integer(&self, field: &'static str) -> Result<Option<Cow<'a, str>>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(FieldValue::String(s)) => Ok(Some(Cow::Borrowed(s))),
            Some(FieldValue::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(Some(Cow::Owned(n.to_string())))
            }
            Some(other) => Err(wrong_type(field, "a string", &other)),
        }
    }

    fn int(&self, field: &'static str) -> Result<Option<i64>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(FieldValue::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| RecordError::BadValue {
                    field,
                    reason: format!("must be a whole number that fits 64 bits, found {n}"),
                })
            }
            Some(FieldValue::String(s)) => {
                parse_plain_integer(s)
                    .map(Some)
                    .ok_or_else(|| RecordError::BadValue {
                        field,
                        reason: format!("must be an integer, found the text {}", preview(s)),
                    })
            }
            Some(other) => Err(wrong_type(field, "an integer", &other)),
        }
    }

    fn required_int(&self, field: &'static str) -> Result<i64, RecordError> {
        self.int(field)?.ok_or(RecordError::Missing { field })
    }

    fn number(&self, field: &'static str) -> Result<Option<f64>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(FieldValue::Number(n)) => {
                n.as_f64().map(Some).ok_or_else(|| RecordError::BadValue {
                    field,
                    reason: format!("is not a finite number: {n}"),
                })
            }
            Some(other) => Err(wrong_type(field, "a number", &other)),
        }
    }

    fn timestamp(&self, field: &'static str) -> Result<Option<DateTime<Utc>>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(FieldValue::String(s)) => {
                parse_timestamp(s)
                    .map(Some)
                    .ok_or_else(|| RecordError::BadValue {
                        field,
                        reason: format!(
                            "must be a timestamp like \"2020-08-28 03:52:47\", found {}",
                            preview(s)
                        ),
                    })
            }
            Some(other) => Err(wrong_type(field, "a timestamp string", &other)),
        }
    }
}

/// Parses a plain integer held in text (`"7528"`, `"-3"`): optional sign, digits, nothing else.
pub fn parse_plain_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or `T` for the space), with optional fractional seconds and an
/// optional `Z` or numeric offset. A value with no zone is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let has_zone = s.ends_with(['Z', 'z'])
        || s.get(19..)
            .is_some_and(|rest| rest.contains('+') || rest.contains('-'));
    if has_zone {
        let normalised = s.replacen(' ', "T", 1);
        return DateTime::parse_from_rfc3339(&normalised)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .map(|naive| naive.and_utc())
}

fn wrong_type(field: &'static str, expected: &'static str, found: &FieldValue<'_>) -> RecordError {
    let found = match found {
        FieldValue::String(s) => format!("the text {}", preview(s)),
        FieldValue::Number(n) => format!("the number {n}"),
        FieldValue::Null => "null".to_string(),
        FieldValue::Bool => "a boolean".to_string(),
        FieldValue::Array => "an array".to_string(),
        FieldValue::Object => "an object".to_string(),
    };
    RecordError::WrongType {
        field,
        expected,
        found,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A quoted value, cut short so error messages stay readable.
fn preview(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_in_every_accepted_shape() {
        let want = Utc.with_ymd_and_hms(2020, 8, 28, 3, 52, 47).unwrap();
        for s in [
            "2020-08-28 03:52:47",
            "2020-08-28T03:52:47",
            "2020-08-28T03:52:47Z",
            "2020-08-28 03:52:47+00:00",
            "2020-08-28T05:52:47+02:00",
        ] {
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        let frac = parse_timestamp("2020-08-28 03:52:47.250").unwrap();
        assert_eq!(frac.timestamp_micros(), want.timestamp_micros() + 250_000);
        for bad in ["2020-08-28", "yesterday", "2020-13-01 00:00:00", ""] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_from_numbers_and_plain_text_only() {
        assert_eq!(parse_plain_integer("7528"), Some(7528));
        assert_eq!(parse_plain_integer("-3"), Some(-3));
        for bad in ["", "7.5", " 7", "7k", "0x10", "-"] {
            assert_eq!(parse_plain_integer(bad), None, "{bad}");
        }
        let obj = parse_object(br#"{"ind": "12", "age": 3.5}"#).unwrap();
        assert_eq!(Fields(&obj).int("ind"), Ok(Some(12)));
        assert_eq!(
            Fields(&obj).int("age").unwrap_err().to_string(),
            "`age` must be a whole number that fits 64 bits, found 3.5"
        );
    }

    #[test]
    fn reading_from_bytes_matches_reading_a_parsed_value_exactly() {
        let cases: [&[u8]; 16] = [
            br#"{"ind": 1, "first_name": "Ann", "last_name": "Lee", "age": 30, "date_joined": "2015-01-01 00:00:00"}"#,
            br#"{"ind": 1, "ind": 2, "age": "41"}"#,
            br#"{"i\u006ed": 7, "first_name": "caf\u00e9 \"q\"", "extra": {"a": [1, {"b": 2}]}}"#,
            br#"{"ind": 18446744073709551615}"#,
            br#"{"ind": -3, "age": 3.5}"#,
            br#"{"ind": 1, "age": [30]}"#,
            br#"{"ind": 1, "age": {"years": 30}}"#,
            br#"{"ind": 1, "age": true, "first_name": 5}"#,
            br#"{"ind": null}"#,
            br#"{"ind": 1e400}"#,
            br#"{"ind": 1,}"#,
            br#"{"ind": 1} trailing"#,
            b"[1, 2]",
            b"\"text\"",
            b"null",
            b"",
        ];
        // What a reader makes of a parsed object, as text: the records borrow from it.
        macro_rules! read {
            ($parsed:expr, $reader:ident) => {
                $parsed.map(|o| format!("{:?}", $reader::from_object(&o)))
            };
        }
        for bytes in cases {
            let via_value = read!(parse_object(bytes), UserRecord);
            let direct = read!(RawObject::parse(bytes), UserRecord);
            assert_eq!(direct, via_value, "{}", String::from_utf8_lossy(bytes));
            let keyed = read!(RawObject::parse_for(RecordType::User, bytes), UserRecord);
            assert_eq!(keyed, via_value, "{}", String::from_utf8_lossy(bytes));
        }
        let pin = br#"{"index": 5, "follower_count": 12000, "title": "t\n", "downloaded": "1"}"#;
        assert_eq!(
            read!(RawObject::parse(pin), PinRecord),
            read!(parse_object(pin), PinRecord)
        );
        let geo = br#"{"ind": 5, "latitude": -45.5, "longitude": 1e2, "timestamp": 17}"#;
        assert_eq!(
            read!(RawObject::parse(geo), GeoRecord),
            read!(parse_object(geo), GeoRecord)
        );
    }

    #[test]
    fn every_key_a_reader_looks_up_has_a_slot() {
        /// An object holding only the key field, that notes every key looked up.
        struct Recorder(&'static str, std::cell::RefCell<Vec<String>>);
        impl JsonObject for Recorder {
            fn field(&self, key: &str) -> Option<FieldValue<'_>> {
                self.1.borrow_mut().push(key.to_string());
                (key == self.0).then(|| FieldValue::Number(1.into()))
            }
        }
        for record_type in RecordType::ALL {
            let recorder = Recorder(record_type.key_field(), Default::default());
            let read = match record_type {
                RecordType::Pin => PinRecord::from_object(&recorder).map(drop),
                RecordType::Geo => GeoRecord::from_object(&recorder).map(drop),
                RecordType::User => UserRecord::from_object(&recorder).map(drop),
            };
            assert_eq!(read, Ok(()), "{record_type}");
            assert_eq!(*recorder.1.borrow(), record_type.keys(), "{record_type}");
            assert!(record_type.keys().len() <= MAX_KEYS);
            // A record with every key keeps them all in slots.
            let json = format!(
                "{{{}}}",
                record_type
                    .keys()
                    .iter()
                    .map(|k| format!("\"{k}\": null"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let obj = RawObject::parse_for(record_type, json.as_bytes()).unwrap();
            assert!(obj.others.is_empty(), "{record_type}: {:?}", obj.others);
        }
    }

    #[test]
    fn every_error_message_gives_back_its_code() {
        let bodies: [&[u8]; 12] = [
            b"{not json",
            b"[1]",
            br#"{"age": 1}"#,
            br#"{"ind": 1, "first_name": 5}"#,
            br#"{"ind": 1, "age": [1]}"#,
            br#"{"ind": 1, "age": 3.5}"#,
            br#"{"ind": 1, "age": "old"}"#,
            br#"{"ind": 1, "date_joined": "soon"}"#,
            br#"{"ind": 1, "date_joined": 5}"#,
            br#"{"ind": 18446744073709551615}"#,
            br#"{"ind": "x"}"#,
            br#"{"ind": true}"#,
        ];
        let mut codes = std::collections::BTreeSet::new();
        for body in bodies {
            let err = RawObject::parse(body)
                .and_then(|o| UserRecord::from_object(&o).map(drop))
                .unwrap_err();
            assert_eq!(
                RecordError::code_of_message(&err.to_string()),
                err.code(),
                "{err}"
            );
            codes.insert(err.code());
        }
        assert_eq!(codes.len(), 5, "every variant is covered: {codes:?}");
        let geo = RawObject::parse(br#"{"ind": 1, "latitude": "north"}"#)
            .and_then(|o| GeoRecord::from_object(&o).map(drop))
            .unwrap_err();
        assert_eq!(RecordError::code_of_message(&geo.to_string()), "wrong_type");
        assert_eq!(
            RecordError::code_of_message("cannot tell the record type: topic `x`"),
            "unknown_type"
        );
        assert_eq!(RecordError::code_of_message("disk on fire"), "other");
    }

    #[test]
    fn errors_name_the_field() {
        let obj = parse_object(br#"{"ind": 1, "age": "old"}"#).unwrap();
        let err = UserRecord::from_object(&obj).unwrap_err();
        assert_eq!(err.field(), Some("age"));
        assert_eq!(
            err.to_string(),
            "`age` must be an integer, found the text \"old\""
        );
        assert_eq!(
            parse_object(b"[1]").unwrap_err().to_string(),
            "record must be a JSON object, found an array"
        );
        let obj = parse_object(br#"{"index": null}"#).unwrap();
        assert_eq!(
            PinRecord::from_object(&obj).unwrap_err(),
            RecordError::Missing { field: "index" }
        );
    }
}
