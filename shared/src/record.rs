//! Raw records as they arrive: pin, geo and user JSON objects, read by key name.
//!
//! Keys may come in any order and unknown keys are ignored. A missing key (or a JSON `null`)
//! reads as `None`. Anything that cannot be read as the field's type is a [`RecordError`] that
//! names the field and says what was wrong, so the record can be rejected (ingest API) or
//! quarantined (cleaners) with a reason a person can act on.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
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

/// A raw post (`pinterest_data`), as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PinRecord {
    pub index: i64,
    pub unique_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub poster_name: Option<String>,
    /// Text such as `"10k"`, `"2M"`, `"940"` or `"User Info Error"`.
    pub follower_count: Option<String>,
    pub tag_list: Option<String>,
    pub is_image_or_video: Option<String>,
    pub image_src: Option<String>,
    pub downloaded: Option<i64>,
    pub save_location: Option<String>,
    pub category: Option<String>,
}

/// A raw geolocation record (`geolocation_data`), as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoRecord {
    pub ind: i64,
    pub timestamp: Option<DateTime<Utc>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country: Option<String>,
}

/// A raw user record (`user_data`), as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRecord {
    pub ind: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub age: Option<i64>,
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

impl PinRecord {
    /// Reads a pin record from a JSON object by key name.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, RecordError> {
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

impl GeoRecord {
    /// Reads a geolocation record from a JSON object by key name.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, RecordError> {
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

impl UserRecord {
    /// Reads a user record from a JSON object by key name.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, RecordError> {
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
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    fn string(&self, field: &'static str) -> Result<Option<String>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(field, "a string", other)),
        }
    }

    /// A text field that some sources send as a bare integer (`follower_count`).
    fn string_or_integer(&self, field: &'static str) -> Result<Option<String>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(other) => Err(wrong_type(field, "a string", other)),
        }
    }

    fn int(&self, field: &'static str) -> Result<Option<i64>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| RecordError::BadValue {
                field,
                reason: format!("must be a whole number that fits 64 bits, found {n}"),
            }),
            Some(Value::String(s)) => {
                parse_plain_integer(s)
                    .map(Some)
                    .ok_or_else(|| RecordError::BadValue {
                        field,
                        reason: format!("must be an integer, found the text {}", preview(s)),
                    })
            }
            Some(other) => Err(wrong_type(field, "an integer", other)),
        }
    }

    fn required_int(&self, field: &'static str) -> Result<i64, RecordError> {
        self.int(field)?.ok_or(RecordError::Missing { field })
    }

    fn number(&self, field: &'static str) -> Result<Option<f64>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| RecordError::BadValue {
                field,
                reason: format!("is not a finite number: {n}"),
            }),
            Some(other) => Err(wrong_type(field, "a number", other)),
        }
    }

    fn timestamp(&self, field: &'static str) -> Result<Option<DateTime<Utc>>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
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
            Some(other) => Err(wrong_type(field, "a timestamp string", other)),
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

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> RecordError {
    let found = match found {
        Value::String(s) => format!("the text {}", preview(s)),
        Value::Number(n) => format!("the number {n}"),
        other => json_type(other).to_string(),
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
