//! The columns of every table in the lake, in SPEC order, as Arrow schemas.
//!
//! Data tables carry two provenance columns after the SPEC columns: `_source` (the object key
//! or stream/shard/sequence number the row came from) and `_ingested_at`.

use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use shared::RecordType;
use std::sync::{Arc, LazyLock};

/// Every table the cleaners write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LakeTable {
    /// `pin`: posts.
    Pin,
    /// `geo`: where and when each post was made.
    Geo,
    /// `user`: who made it.
    User,
    /// `quarantine`: records that could not be cleaned, with their exact bytes and why.
    Quarantine,
}

impl LakeTable {
    /// All tables the cleaners write, in a fixed order.
    pub const ALL: [LakeTable; 4] = [
        LakeTable::Pin,
        LakeTable::Geo,
        LakeTable::User,
        LakeTable::Quarantine,
    ];

    /// The table's directory name under the lake root.
    pub fn name(self) -> &'static str {
        match self {
            LakeTable::Pin => "pin",
            LakeTable::Geo => "geo",
            LakeTable::User => "user",
            LakeTable::Quarantine => "quarantine",
        }
    }

    /// The table cleaned records of `record_type` go to.
    pub fn of(record_type: RecordType) -> LakeTable {
        match record_type {
            RecordType::Pin => LakeTable::Pin,
            RecordType::Geo => LakeTable::Geo,
            RecordType::User => LakeTable::User,
        }
    }

    /// The columns with few distinct values, which Parquet stores as a dictionary and indices.
    /// Every other column repeats little (ids, titles, descriptions, URLs, times), where
    /// building a dictionary only to give it up costs the writer time and saves no space.
    pub fn dictionary_columns(self) -> &'static [&'static str] {
        match self {
            LakeTable::Pin => &[
                "follower_count",
                "poster_name",
                "is_image_or_video",
                "save_location",
                "category",
                "_source",
                "_ingested_at",
            ],
            LakeTable::Geo => &["country", "_source", "_ingested_at"],
            LakeTable::User => &["age", "_source", "_ingested_at"],
            LakeTable::Quarantine => &["record_type", "error"],
        }
    }

    /// The columns of free text, which no reader filters by range: their Parquet files and
    /// Delta log keep no min/max statistics for them. Computing those compares every value
    /// with the running min and max (the image URLs share their first 30-odd bytes), a
    /// twentieth of a batch's CPU time, for bounds no query can use to skip a file.
    pub fn free_text_columns(self) -> &'static [&'static str] {
        match self {
            LakeTable::Pin => &["title", "description", "tag_list", "image_src"],
            LakeTable::Geo | LakeTable::User => &[],
            LakeTable::Quarantine => &["raw"],
        }
    }

    /// The table's Arrow schema: SPEC columns first, then provenance.
    pub fn schema(self) -> SchemaRef {
        match self {
            LakeTable::Pin => PIN_SCHEMA.clone(),
            LakeTable::Geo => GEO_SCHEMA.clone(),
            LakeTable::User => USER_SCHEMA.clone(),
            LakeTable::Quarantine => QUARANTINE_SCHEMA.clone(),
        }
    }

    /// The names of the SPEC columns (no provenance columns), in order.
    pub fn spec_columns(self) -> Vec<String> {
        let schema = self.schema();
        schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|name| !name.starts_with('_'))
            .collect()
    }
}

/// Timestamps are microseconds, UTC (Delta's `timestamp` type).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `coordinates`: a list of two doubles, latitude then longitude. The item field is named
/// `element`, as Delta (and Parquet's list convention) names it.
pub fn coordinates_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Float64, true)))
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn provenance() -> [Field; 2] {
    [
        Field::new("_source", DataType::Utf8, false),
        Field::new("_ingested_at", timestamp_type(), false),
    ]
}

static PIN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("ind", DataType::Int64, false),
        text("unique_id"),
        text("title"),
        text("description"),
        Field::new("follower_count", DataType::Int64, true),
        text("poster_name"),
        text("tag_list"),
        text("is_image_or_video"),
        text("image_src"),
        text("save_location"),
        text("category"),
    ];
    fields.extend(provenance());
    Arc::new(Schema::new(fields))
});

static GEO_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("ind", DataType::Int64, false),
        text("country"),
        Field::new("coordinates", coordinates_type(), true),
        Field::new("timestamp", timestamp_type(), true),
    ];
    fields.extend(provenance());
    Arc::new(Schema::new(fields))
});

static USER_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("ind", DataType::Int64, false),
        text("user_name"),
        Field::new("age", DataType::Int64, true),
        Field::new("date_joined", timestamp_type(), true),
    ];
    fields.extend(provenance());
    Arc::new(Schema::new(fields))
});

static QUARANTINE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        text("record_type"),
        Field::new("raw", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, false),
        Field::new("quarantined_at", timestamp_type(), false),
    ]))
});

/// Marks a quarantined record's `raw` as base64 of its bytes.
pub const RAW_BASE64_PREFIX: &str = "base64:";

impl QuarantineRow {
    /// A record's bytes as `raw` text, so it can be replayed exactly: UTF-8 stays as it is;
    /// anything else (and text that itself starts with `base64:`) is `base64:<bytes in base64>`.
    pub fn raw_text(bytes: &[u8]) -> String {
        use base64::Engine;
        match std::str::from_utf8(bytes) {
            Ok(text) if !text.starts_with(RAW_BASE64_PREFIX) => text.to_string(),
            _ => format!(
                "{RAW_BASE64_PREFIX}{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
        }
    }

    /// The record's original bytes, read back from `raw`.
    pub fn raw_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        self.raw
            .strip_prefix(RAW_BASE64_PREFIX)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_else(|| self.raw.as_bytes().to_vec())
    }
}

/// A record that could not be cleaned, kept with everything needed to fix and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuarantineRow {
    /// Where it came from: object key and line, or stream/shard/sequence number.
    pub source: String,
    /// The record type, when the source tells it.
    pub record_type: Option<RecordType>,
    /// The record's bytes, losslessly: the text itself when it is UTF-8, otherwise
    /// `base64:` and the bytes in base64 (see [`QuarantineRow::raw_text`]).
    pub raw: String,
    /// Why it could not be cleaned.
    pub error: String,
    /// When it was quarantined.
    pub quarantined_at: DateTime<Utc>,
}
