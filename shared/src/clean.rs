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
use std::borrow::Cow;
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
        self.view().hash(state);
    }
}

impl CleanGeo {
    /// The geolocation as a view of its text.
    pub fn view(&self) -> GeoView<'_> {
        GeoView {
            ind: self.ind,
            country: self.country.as_deref(),
            coordinates: self.coordinates,
            timestamp: self.timestamp,
        }
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

/// A cleaned row whose text borrows from the raw record it was cleaned from: what a
/// [`CleanRow`] holds, before (or instead of) copying it. Writers that copy the values straight
/// into columns take this, so a record's kept text is copied once.
#[derive(Debug, Clone, PartialEq)]
pub enum CleanView<'a> {
    /// A row of the `pin` table.
    Pin(PinView<'a>),
    /// A row of the `geo` table.
    Geo(GeoView<'a>),
    /// A row of the `user` table.
    User(UserView<'a>),
}

/// A [`CleanPin`] borrowing its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PinView<'a> {
    /// See [`CleanPin::ind`].
    pub ind: i64,
    /// See [`CleanPin::unique_id`].
    pub unique_id: Option<&'a str>,
    /// See [`CleanPin::title`].
    pub title: Option<&'a str>,
    /// See [`CleanPin::description`].
    pub description: Option<&'a str>,
    /// See [`CleanPin::follower_count`].
    pub follower_count: Option<i64>,
    /// See [`CleanPin::poster_name`].
    pub poster_name: Option<&'a str>,
    /// See [`CleanPin::tag_list`].
    pub tag_list: Option<&'a str>,
    /// See [`CleanPin::is_image_or_video`].
    pub is_image_or_video: Option<&'a str>,
    /// See [`CleanPin::image_src`].
    pub image_src: Option<&'a str>,
    /// See [`CleanPin::save_location`].
    pub save_location: Option<&'a str>,
    /// See [`CleanPin::category`].
    pub category: Option<&'a str>,
}

/// A [`CleanGeo`] borrowing its text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeoView<'a> {
    /// See [`CleanGeo::ind`].
    pub ind: i64,
    /// See [`CleanGeo::country`].
    pub country: Option<&'a str>,
    /// See [`CleanGeo::coordinates`].
    pub coordinates: Option<[Option<f64>; 2]>,
    /// See [`CleanGeo::timestamp`].
    pub timestamp: Option<DateTime<Utc>>,
}

/// A [`CleanUser`] borrowing its text where it can (a full name is joined, so owned).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserView<'a> {
    /// See [`CleanUser::ind`].
    pub ind: i64,
    /// See [`CleanUser::user_name`].
    pub user_name: Option<Cow<'a, str>>,
    /// See [`CleanUser::age`].
    pub age: Option<i64>,
    /// See [`CleanUser::date_joined`].
    pub date_joined: Option<DateTime<Utc>>,
}

// Whole-row equality for de-duplication: coordinates compare by their exact bits.
impl Eq for GeoView<'_> {}

impl Hash for GeoView<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ind.hash(state);
        self.country.hash(state);
        self.coordinates
            .map(|c| c.map(|x| x.map(f64::to_bits)))
            .hash(state);
        self.timestamp.hash(state);
    }
}

impl Hash for CleanView<'_> {
    /// Hashes as the equal [`CleanRow`] does not necessarily: views hash only with views.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            CleanView::Pin(p) => p.hash(state),
            CleanView::Geo(g) => g.hash(state),
            CleanView::User(u) => u.hash(state),
        }
    }
}

impl CleanView<'_> {
    /// The type of record this row came from (and the table it goes to).
    pub fn record_type(&self) -> RecordType {
        match self {
            CleanView::Pin(_) => RecordType::Pin,
            CleanView::Geo(_) => RecordType::Geo,
            CleanView::User(_) => RecordType::User,
        }
    }

    /// The row with its text copied.
    pub fn to_row(&self) -> CleanRow {
        match self {
            CleanView::Pin(p) => CleanRow::Pin(p.to_pin()),
            CleanView::Geo(g) => CleanRow::Geo(g.to_geo()),
            CleanView::User(u) => CleanRow::User(u.to_user()),
        }
    }
}

fn copied(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

impl PinView<'_> {
    /// The post with its text copied.
    pub fn to_pin(&self) -> CleanPin {
        CleanPin {
            ind: self.ind,
            unique_id: copied(self.unique_id),
            title: copied(self.title),
            description: copied(self.description),
            follower_count: self.follower_count,
            poster_name: copied(self.poster_name),
            tag_list: copied(self.tag_list),
            is_image_or_video: copied(self.is_image_or_video),
            image_src: copied(self.image_src),
            save_location: copied(self.save_location),
            category: copied(self.category),
        }
    }
}

impl GeoView<'_> {
    /// The geolocation with its text copied.
    pub fn to_geo(&self) -> CleanGeo {
        CleanGeo {
            ind: self.ind,
            country: copied(self.country),
            coordinates: self.coordinates,
            timestamp: self.timestamp,
        }
    }
}

impl UserView<'_> {
    /// The user with its text copied.
    pub fn to_user(&self) -> CleanUser {
        CleanUser {
            ind: self.ind,
            user_name: copied(self.user_name.as_deref()),
            age: self.age,
            date_joined: self.date_joined,
        }
    }
}

impl CleanRow {
    /// The row as a view of its text.
    pub fn view(&self) -> CleanView<'_> {
        match self {
            CleanRow::Pin(p) => CleanView::Pin(PinView {
                ind: p.ind,
                unique_id: p.unique_id.as_deref(),
                title: p.title.as_deref(),
                description: p.description.as_deref(),
                follower_count: p.follower_count,
                poster_name: p.poster_name.as_deref(),
                tag_list: p.tag_list.as_deref(),
                is_image_or_video: p.is_image_or_video.as_deref(),
                image_src: p.image_src.as_deref(),
                save_location: p.save_location.as_deref(),
                category: p.category.as_deref(),
            }),
            CleanRow::Geo(g) => CleanView::Geo(g.view()),
            CleanRow::User(u) => CleanView::User(UserView {
                ind: u.ind,
                user_name: u.user_name.as_deref().map(Cow::Borrowed),
                age: u.age,
                date_joined: u.date_joined,
            }),
        }
    }
}

/// Cleans one raw record given as JSON bytes.
pub fn clean_record(record_type: RecordType, bytes: &[u8]) -> Result<Cleaned, RecordError> {
    clean_record_with(record_type, bytes, Cleaned::copied)
}

/// [`clean_record`] for a record already known to be UTF-8 text (a line of an object checked
/// as a whole): the same result, without checking the text again.
pub fn clean_text(record_type: RecordType, text: &str) -> Result<Cleaned, RecordError> {
    clean_text_with(record_type, text, Cleaned::copied)
}

/// Cleans one raw record given as a parsed JSON value.
pub fn clean_value(record_type: RecordType, value: &Value) -> Result<Cleaned, RecordError> {
    clean_object(record_type, as_object(value)?, Cleaned::copied)
}

/// [`clean_record`], handing the cleaned row to `use_row` as a view of the raw record's text
/// (with its warnings) rather than copying it: the same rows, the same errors.
pub fn clean_record_with<R>(
    record_type: RecordType,
    bytes: &[u8],
    use_row: impl FnOnce(CleanView<'_>, Vec<QualityWarning>) -> R,
) -> Result<R, RecordError> {
    clean_object(
        record_type,
        &RawObject::parse_for(record_type, bytes)?,
        use_row,
    )
}

/// [`clean_text`], handing the cleaned row to `use_row` as a view, as [`clean_record_with`].
pub fn clean_text_with<R>(
    record_type: RecordType,
    text: &str,
    use_row: impl FnOnce(CleanView<'_>, Vec<QualityWarning>) -> R,
) -> Result<R, RecordError> {
    clean_object(
        record_type,
        &RawObject::parse_text_for(record_type, text)?,
        use_row,
    )
}

impl Cleaned {
    /// A row cleaned as a view (see [`clean_record_with`]), with its text copied: what
    /// [`clean_record`] gives.
    pub fn copied(view: CleanView<'_>, warnings: Vec<QualityWarning>) -> Cleaned {
        Cleaned {
            row: view.to_row(),
            warnings,
        }
    }
}

fn clean_object<R>(
    record_type: RecordType,
    obj: &impl JsonObject,
    use_row: impl FnOnce(CleanView<'_>, Vec<QualityWarning>) -> R,
) -> Result<R, RecordError> {
    Ok(match record_type {
        RecordType::Pin => {
            let (pin, warnings) = clean_pin_view(PinRecord::from_object(obj)?);
            use_row(CleanView::Pin(pin), warnings)
        }
        RecordType::Geo => use_row(
            CleanView::Geo(clean_geo_view(GeoRecord::from_object(obj)?)),
            Vec::new(),
        ),
        RecordType::User => use_row(
            CleanView::User(clean_user_view(UserRecord::from_object(obj)?)),
            Vec::new(),
        ),
    })
}

/// Cleans a post: empty values and sentinels become null, the follower count becomes a number,
/// the save location loses its prefix, `index` becomes `ind` and `downloaded` is dropped.
pub fn clean_pin(raw: PinRecord<'_>) -> (CleanPin, Vec<QualityWarning>) {
    let (view, warnings) = clean_pin_view(raw);
    (view.to_pin(), warnings)
}

/// [`clean_pin`] without copying the text kept.
pub fn clean_pin_view(raw: PinRecord<'_>) -> (PinView<'_>, Vec<QualityWarning>) {
    fn kept<'a>(v: Option<&'a str>, sentinels: &[&str]) -> Option<&'a str> {
        v.filter(|s| !EMPTY_VALUE_SENTINELS.contains(s) && !sentinels.contains(s))
    }
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
    let pin = PinView {
        ind: raw.index,
        unique_id: kept(raw.unique_id, &[]),
        title: kept(raw.title, &[NO_TITLE_SENTINEL]),
        description: kept(raw.description, &NO_DESCRIPTION_SENTINELS),
        follower_count,
        poster_name: kept(raw.poster_name, &[USER_INFO_ERROR_SENTINEL]),
        tag_list: kept(raw.tag_list, &[NO_TAGS_SENTINEL]),
        is_image_or_video: kept(raw.is_image_or_video, &[]),
        image_src: kept(raw.image_src, &[IMAGE_SRC_ERROR_SENTINEL]),
        save_location: kept(raw.save_location, &[])
            .map(|s| s.strip_prefix(SAVE_LOCATION_PREFIX).unwrap_or(s)),
        category: kept(raw.category, &[]),
    };
    (pin, warnings)
}

/// Cleans a geolocation: latitude and longitude become `coordinates`.
pub fn clean_geo(raw: GeoRecord<'_>) -> CleanGeo {
    clean_geo_view(raw).to_geo()
}

/// [`clean_geo`] without copying the text kept.
pub fn clean_geo_view(raw: GeoRecord<'_>) -> GeoView<'_> {
    let coordinates = match (raw.latitude, raw.longitude) {
        (None, None) => None,
        (lat, lon) => Some([lat, lon]),
    };
    GeoView {
        ind: raw.ind,
        country: raw.country,
        coordinates,
        timestamp: raw.timestamp,
    }
}

/// Cleans a user: first and last name become `user_name`.
pub fn clean_user(raw: UserRecord<'_>) -> CleanUser {
    clean_user_view(raw).to_user()
}

/// [`clean_user`] without copying the text kept (a full name is joined).
pub fn clean_user_view(raw: UserRecord<'_>) -> UserView<'_> {
    let user_name = match (raw.first_name, raw.last_name) {
        (Some(first), Some(last)) => Some(Cow::Owned(format!("{first} {last}"))),
        (Some(one), None) | (None, Some(one)) => Some(Cow::Borrowed(one)),
        (None, None) => None,
    };
    UserView {
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
