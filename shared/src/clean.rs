//! Cleaning: raw records into the typed rows stored in the lake (SPEC §5).
//!
//! This is the one implementation of the cleaning rules; batch-clean, stream-clean and the
//! ingest API's validation all call it, so a record is cleaned identically whichever path it
//! takes. A record either becomes a [`CleanRow`] (possibly with data-quality warnings, e.g. an
//! unreadable follower count that became null) or fails with the [`RecordError`] that sends it
//! to quarantine.

use crate::record::{
    as_object, GeoRecord, JsonObject, PinRecord, RawObject, RecordError, RecordType, UserRecord,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::hash::{Hash, Hasher};

/// `title` value meaning "no title".
pub const NO_TITLE_SENTINEL: &str = "No Title Data Available";
/// `description` values meaning "no description".
pub const NO_DESCRIPTION_SENTINELS: [&str; 2] = [
    "No description available Story format",
    "No description available",
];
/// `poster_name` and `follower_count` value meaning the poster could not be read.
pub const USER_INFO_ERROR_SENTINEL: &str = "User Info Error";
/// `tag_list` value meaning "no tags" (the phrase, comma-split letter by letter upstream).
pub const NO_TAGS_SENTINEL: &str = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
/// `image_src` value meaning the image could not be read.
pub const IMAGE_SRC_ERROR_SENTINEL: &str = "Image src error.";
/// Whole string values that mean "no value" in any pin text field.
pub const EMPTY_VALUE_SENTINELS: [&str; 4] = ["", " ", "NULL", "null"];
/// Prefix the original scraper put before every save location.
pub const SAVE_LOCATION_PREFIX: &str = "Local save in ";

/// A cleaned post: the `pin` table's columns, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CleanPin {
    /// The post's id, shared with its geo and user rows (`index` in the raw record).
    pub ind: i64,
    /// The scraper's id of the post.
    pub unique_id: Option<String>,
    /// Null when the raw title was empty or [`NO_TITLE_SENTINEL`].
    pub title: Option<String>,
    /// Null when the raw description was empty or one of [`NO_DESCRIPTION_SENTINELS`].
    pub description: Option<String>,
    /// `"10k"`, `"2M"` read as a number; null when unreadable (with a [`QualityWarning`]).
    pub follower_count: Option<i64>,
    /// Null when the raw value was [`USER_INFO_ERROR_SENTINEL`].
    pub poster_name: Option<String>,
    /// Comma-separated tags; null when the raw value was [`NO_TAGS_SENTINEL`].
    pub tag_list: Option<String>,
    /// `image`, `video` or `multi-video(story page format)`, as sent.
    pub is_image_or_video: Option<String>,
    /// Null when the raw value was [`IMAGE_SRC_ERROR_SENTINEL`].
    pub image_src: Option<String>,
    /// The path without [`SAVE_LOCATION_PREFIX`].
    pub save_location: Option<String>,
    /// One of the 13 categories of the original data set, as sent.
    pub category: Option<String>,
}

/// A cleaned geolocation: the `geo` table's columns, in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CleanGeo {
    /// The post's id (`ind` in the raw record).
    pub ind: i64,
    /// As sent.
    pub country: Option<String>,
    /// `[latitude, longitude]`; null when both are missing.
    pub coordinates: Option<[Option<f64>; 2]>,
    /// When the post was made, as a UTC instant (a raw value with no zone is read as UTC).
    pub timestamp: Option<DateTime<Utc>>,
}

/// A cleaned user: the `user` table's columns, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CleanUser {
    /// The post's id (`ind` in the raw record): a user row per post, not per person.
    pub ind: i64,
    /// `first_name last_name`, or whichever of the two is present.
    pub user_name: Option<String>,
    /// In years, as sent.
    pub age: Option<i64>,
    /// When the user joined, as a UTC instant.
    pub date_joined: Option<DateTime<Utc>>,
}

// Whole-row equality for de-duplication: coordinates compare by their exact bits.
impl Eq for CleanGeo {}

impl Hash for CleanGeo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ind.hash(state);
        self.country.hash(state);
        self.coordinates
            .map(|c| c.map(|x| x.map(f64::to_bits)))
            .hash(state);
        self.timestamp.hash(state);
    }
}

/// One cleaned row of any type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CleanRow {
    /// A row of the `pin` table.
    Pin(CleanPin),
    /// A row of the `geo` table.
    Geo(CleanGeo),
    /// A row of the `user` table.
    User(CleanUser),
}

impl CleanRow {
    /// The type of record this row came from (and the table it goes to).
    pub fn record_type(&self) -> RecordType {
        match self {
            CleanRow::Pin(_) => RecordType::Pin,
            CleanRow::Geo(_) => RecordType::Geo,
            CleanRow::User(_) => RecordType::User,
        }
    }
}

/// A data-quality problem that did not stop the record from being cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityWarning {
    /// The field whose value was replaced by null.
    pub field: &'static str,
    /// The value that could not be read.
    pub value: String,
}

/// A cleaned row and the data-quality warnings raised while cleaning it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The row for the lake.
    pub row: CleanRow,
    /// Values that became null because they could not be read.
    pub warnings: Vec<QualityWarning>,
}

/// Cleans one raw record given as JSON bytes.
pub fn clean_record(record_type: RecordType, bytes: &[u8]) -> Result<Cleaned, RecordError> {
    clean_object(record_type, &RawObject::parse_for(record_type, bytes)?)
}

/// [`clean_record`] for a record already known to be UTF-8 text (a line of an object checked
/// as a whole): the same result, without checking the text again.
pub fn clean_text(record_type: RecordType, text: &str) -> Result<Cleaned, RecordError> {
    clean_object(record_type, &RawObject::parse_text_for(record_type, text)?)
}

/// Cleans one raw record given as a parsed JSON value.
pub fn clean_value(record_type: RecordType, value: &Value) -> Result<Cleaned, RecordError> {
    clean_object(record_type, as_object(value)?)
}

fn clean_object(record_type: RecordType, obj: &impl JsonObject) -> Result<Cleaned, RecordError> {
    Ok(match record_type {
        RecordType::Pin => {
            let (pin, warnings) = clean_pin(PinRecord::from_object(obj)?);
            Cleaned {
                row: CleanRow::Pin(pin),
                warnings,
            }
        }
        RecordType::Geo => Cleaned {
            row: CleanRow::Geo(clean_geo(GeoRecord::from_object(obj)?)),
            warnings: Vec::new(),
        },
        RecordType::User => Cleaned {
            row: CleanRow::User(clean_user(UserRecord::from_object(obj)?)),
            warnings: Vec::new(),
        },
    })
}

/// Cleans a post: empty values and sentinels become null, the follower count becomes a number,
/// the save location loses its prefix, `index` becomes `ind` and `downloaded` is dropped.
pub fn clean_pin(raw: PinRecord<'_>) -> (CleanPin, Vec<QualityWarning>) {
    fn kept<'a>(v: Option<&'a str>, sentinels: &[&str]) -> Option<&'a str> {
        v.filter(|s| !EMPTY_VALUE_SENTINELS.contains(s) && !sentinels.contains(s))
    }
    let text = |v: Option<&str>, sentinels: &[&str]| kept(v, sentinels).map(str::to_string);
    let mut warnings = Vec::new();
    let follower_count =
        kept(raw.follower_count.as_deref(), &[USER_INFO_ERROR_SENTINEL]).and_then(|s| {
            let parsed = parse_follower_count(s);
            if parsed.is_none() {
                warnings.push(QualityWarning {
                    field: "follower_count",
                    value: s.to_string(),
                });
            }
            parsed
        });
    let pin = CleanPin {
        ind: raw.index,
        unique_id: text(raw.unique_id, &[]),
        title: text(raw.title, &[NO_TITLE_SENTINEL]),
        description: text(raw.description, &NO_DESCRIPTION_SENTINELS),
        follower_count,
        poster_name: text(raw.poster_name, &[USER_INFO_ERROR_SENTINEL]),
        tag_list: text(raw.tag_list, &[NO_TAGS_SENTINEL]),
        is_image_or_video: text(raw.is_image_or_video, &[]),
        image_src: text(raw.image_src, &[IMAGE_SRC_ERROR_SENTINEL]),
        save_location: kept(raw.save_location, &[]).map(|s| {
            s.strip_prefix(SAVE_LOCATION_PREFIX)
                .unwrap_or(s)
                .to_string()
        }),
        category: text(raw.category, &[]),
    };
    (pin, warnings)
}

/// Cleans a geolocation: latitude and longitude become `coordinates`.
pub fn clean_geo(raw: GeoRecord<'_>) -> CleanGeo {
    let coordinates = match (raw.latitude, raw.longitude) {
        (None, None) => None,
        (lat, lon) => Some([lat, lon]),
    };
    CleanGeo {
        ind: raw.ind,
        country: raw.country.map(str::to_string),
        coordinates,
        timestamp: raw.timestamp,
    }
}

/// Cleans a user: first and last name become `user_name`.
pub fn clean_user(raw: UserRecord<'_>) -> CleanUser {
    let user_name = match (raw.first_name, raw.last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    };
    CleanUser {
        ind: raw.ind,
        user_name,
        age: raw.age,
        date_joined: raw.date_joined,
    }
}

/// Reads a follower count such as `"940"`, `"10k"`, `"1.5M"` or `"2B"`.
///
/// A number with an optional decimal part and an optional `k`/`K` (thousand), `M`/`m`
/// (million) or `B`/`b` (billion) suffix; a fractional result is truncated. Anything else,
/// or a value too large for 64 bits, is `None`.
pub fn parse_follower_count(s: &str) -> Option<i64> {
    let (number, multiplier) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1_000i64),
        (i, 'm' | 'M') => (&s[..i], 1_000_000),
        (i, 'b' | 'B') => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return None,
        None => (number, ""),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut total = whole.parse::<i64>().ok()?.checked_mul(multiplier)?;
    // Exact decimal arithmetic for the fraction: "1.25M" is 1,250,000, never 1,249,999.
    let mut scale = multiplier;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        total = total.checked_add(i64::from(digit - b'0') * scale)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_counts() {
        let cases = [
            ("10k", Some(10_000)),
            ("892k", Some(892_000)),
            ("2M", Some(2_000_000)),
            ("1.5M", Some(1_500_000)),
            ("1.25m", Some(1_250_000)),
            ("3B", Some(3_000_000_000)),
            ("940", Some(940)),
            ("0", Some(0)),
            ("1.5", Some(1)),
            ("2.5K", Some(2_500)),
            ("User Info Error", None),
            ("", None),
            ("k", None),
            ("1.k", None),
            ("-5", None),
            ("10 k", None),
            ("99999999999B", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_follower_count(text), want, "{text:?}");
        }
    }

    #[test]
    fn pin_sentinels_and_empty_values_become_null() {
        let raw = br#"{"index": "7528", "unique_id": "u", "title": "No Title Data Available",
            "description": "No description available", "poster_name": "User Info Error",
            "follower_count": "User Info Error", "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
            "is_image_or_video": "NULL", "image_src": "Image src error.", "downloaded": 0,
            "save_location": "Local save in /data/travel", "category": " ", "extra": [1]}"#;
        let cleaned = clean_record(RecordType::Pin, raw).unwrap();
        assert_eq!(
            cleaned.row,
            CleanRow::Pin(CleanPin {
                ind: 7528,
                unique_id: Some("u".into()),
                title: None,
                description: None,
                follower_count: None,
                poster_name: None,
                tag_list: None,
                is_image_or_video: None,
                image_src: None,
                save_location: Some("/data/travel".into()),
                category: None,
            })
        );
        assert!(cleaned.warnings.is_empty());
    }

    #[test]
    fn unreadable_follower_count_is_a_warning_not_an_error() {
        let cleaned = clean_record(
            RecordType::Pin,
            br#"{"index": 1, "follower_count": "lots"}"#,
        )
        .unwrap();
        let CleanRow::Pin(pin) = cleaned.row else {
            panic!("expected a pin row")
        };
        assert_eq!(pin.follower_count, None);
        assert_eq!(
            cleaned.warnings,
            vec![QualityWarning {
                field: "follower_count",
                value: "lots".into()
            }]
        );
    }

    #[test]
    fn text_is_kept_verbatim() {
        let cleaned =
            clean_record(RecordType::Pin, br#"{"index": 1, "title": "  padded  "}"#).unwrap();
        let CleanRow::Pin(pin) = cleaned.row else {
            panic!("expected a pin row")
        };
        assert_eq!(pin.title.as_deref(), Some("  padded  "));
    }

    #[test]
    fn user_names_skip_missing_parts() {
        let name = |json: &[u8]| match clean_record(RecordType::User, json).unwrap().row {
            CleanRow::User(u) => u.user_name,
            other => panic!("expected a user row, got {other:?}"),
        };
        assert_eq!(
            name(br#"{"ind": 1, "first_name": "A", "last_name": "B"}"#),
            Some("A B".into())
        );
        assert_eq!(name(br#"{"ind": 1, "last_name": "B"}"#), Some("B".into()));
        assert_eq!(
            name(br#"{"ind": 1, "first_name": "A", "last_name": null}"#),
            Some("A".into())
        );
        assert_eq!(name(br#"{"ind": 1}"#), None);
    }

    #[test]
    fn geo_coordinates_keep_latitude_first() {
        let row = clean_record(
            RecordType::Geo,
            br#"{"country": "Albania", "longitude": -173.293, "ind": 7528, "latitude": -89.9787}"#,
        )
        .unwrap()
        .row;
        let CleanRow::Geo(geo) = row else {
            panic!("expected a geo row")
        };
        assert_eq!(geo.coordinates, Some([Some(-89.9787), Some(-173.293)]));
        assert_eq!(geo.timestamp, None);
    }

    #[test]
    fn records_that_cannot_be_cleaned() {
        let cases: [(RecordType, &[u8], &str); 6] = [
            (RecordType::Pin, b"not json", "not_json"),
            (RecordType::Pin, b"[]", "not_an_object"),
            (RecordType::Pin, br#"{"title": "x"}"#, "missing_field"),
            (
                RecordType::User,
                br#"{"ind": 1, "age": "twenty"}"#,
                "bad_value",
            ),
            (
                RecordType::Geo,
                br#"{"ind": 1, "timestamp": "28/08/2020"}"#,
                "bad_value",
            ),
            (
                RecordType::Geo,
                br#"{"ind": 1, "latitude": "north"}"#,
                "wrong_type",
            ),
        ];
        for (rt, raw, code) in cases {
            let err = clean_record(rt, raw).unwrap_err();
            assert_eq!(err.code(), code, "{}", String::from_utf8_lossy(raw));
        }
    }
}
