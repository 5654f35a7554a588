//! Cleaned rows and quarantine rows into Arrow record batches, column by column.

use crate::schema::{coordinates_type, LakeTable, QuarantineRow};
use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    ArrayRef, Float64Builder, Int64Array, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Field};
use deltalake::arrow::error::ArrowError;
use shared::{CleanGeo, CleanPin, CleanRow, CleanUser};
use std::sync::Arc;

/// A cleaned row with its provenance, ready for a data table.
pub struct SourcedRow<'a> {
    /// The cleaned record.
    pub row: &'a CleanRow,
    /// Where it came from (`_source`).
    pub source: &'a str,
}

/// A string column, its buffers sized from a first pass over the values: collecting grows them
/// by doubling, which copied a large batch's text twice more.
fn strings<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> ArrayRef {
    let bytes = values.clone().map(|v| v.map_or(0, str::len)).sum();
    let mut column = StringBuilder::with_capacity(values.size_hint().0, bytes);
    column.extend(values);
    Arc::new(column.finish())
}

/// `N` string columns of `rows`, filled row by row: a row's strings sit together in memory, so
/// reading each row once keeps them in cache, where filling one column at a time walked the
/// whole batch's heap once per column. Buffers are sized first, from the strings' lengths.
fn text_columns<'a, R, const N: usize>(
    rows: &[&'a R],
    fields: impl Fn(&'a R) -> [Option<&'a str>; N],
) -> [ArrayRef; N] {
    let mut bytes = [0usize; N];
    for row in rows {
        for (total, field) in bytes.iter_mut().zip(fields(row)) {
            *total += field.map_or(0, str::len);
        }
    }
    let mut columns = bytes.map(|b| StringBuilder::with_capacity(rows.len(), b));
    for row in rows {
        for (column, field) in columns.iter_mut().zip(fields(row)) {
            column.append_option(field);
        }
    }
    columns.map(|mut c| Arc::new(c.finish()) as ArrayRef)
}

fn ints(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<Int64Array>())
}

fn times(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        values
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

/// Builds the record batch for `table` from rows that all belong to it.
///
/// Rows of another type are a programming error upstream and are reported as an Arrow error
/// rather than silently dropped.
pub fn data_batch(
    table: LakeTable,
    rows: &[SourcedRow<'_>],
    ingested_at: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let wrong = || {
        ArrowError::InvalidArgumentError(format!(
            "row of another type in the {} batch",
            table.name()
        ))
    };
    let mut columns: Vec<ArrayRef> = match table {
        LakeTable::Pin => {
            let pins: Vec<&CleanPin> = rows
                .iter()
                .map(|r| match r.row {
                    CleanRow::Pin(p) => Ok(p),
                    _ => Err(wrong()),
                })
                .collect::<Result<_, _>>()?;
            let [unique_id, title, description, poster_name, tag_list, is_image_or_video, image_src, save_location, category] =
                text_columns(&pins, |p: &CleanPin| {
                    [
                        p.unique_id.as_deref(),
                        p.title.as_deref(),
                        p.description.as_deref(),
                        p.poster_name.as_deref(),
                        p.tag_list.as_deref(),
                        p.is_image_or_video.as_deref(),
                        p.image_src.as_deref(),
                        p.save_location.as_deref(),
                        p.category.as_deref(),
                    ]
                });
            vec![
                ints(pins.iter().map(|p| Some(p.ind))),
                unique_id,
                title,
                description,
                ints(pins.iter().map(|p| p.follower_count)),
                poster_name,
                tag_list,
                is_image_or_video,
                image_src,
                save_location,
                category,
            ]
        }
        LakeTable::Geo => {
            let geos: Vec<&CleanGeo> = rows
                .iter()
                .map(|r| match r.row {
                    CleanRow::Geo(g) => Ok(g),
                    _ => Err(wrong()),
                })
                .collect::<Result<_, _>>()?;
            let DataType::List(item) = coordinates_type() else {
                return Err(ArrowError::SchemaError("coordinates must be a list".into()));
            };
            let mut coordinates = ListBuilder::with_capacity(Float64Builder::new(), geos.len())
                .with_field(Arc::<Field>::clone(&item));
            for g in &geos {
                match g.coordinates {
                    Some(pair) => {
                        coordinates.values().extend(pair);
                        coordinates.append(true);
                    }
                    None => coordinates.append(false),
                }
            }
            vec![
                ints(geos.iter().map(|g| Some(g.ind))),
                strings(geos.iter().map(|g| g.country.as_deref())),
                Arc::new(coordinates.finish()),
                times(geos.iter().map(|g| g.timestamp)),
            ]
        }
        LakeTable::User => {
            let users: Vec<&CleanUser> = rows
                .iter()
                .map(|r| match r.row {
                    CleanRow::User(u) => Ok(u),
                    _ => Err(wrong()),
                })
                .collect::<Result<_, _>>()?;
            vec![
                ints(users.iter().map(|u| Some(u.ind))),
                strings(users.iter().map(|u| u.user_name.as_deref())),
                ints(users.iter().map(|u| u.age)),
                times(users.iter().map(|u| u.date_joined)),
            ]
        }
        LakeTable::Quarantine => return Err(wrong()),
    };
    columns.push(strings(rows.iter().map(|r| Some(r.source))));
    columns.push(times(rows.iter().map(|_| Some(ingested_at))));
    RecordBatch::try_new(table.schema(), columns)
}

/// Builds the quarantine table's record batch.
pub fn quarantine_batch(rows: &[&QuarantineRow]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        LakeTable::Quarantine.schema(),
        vec![
            strings(rows.iter().map(|q| Some(q.source.as_str()))),
            strings(rows.iter().map(|q| q.record_type.map(|t| t.as_str()))),
            strings(rows.iter().map(|q| Some(q.raw.as_str()))),
            strings(rows.iter().map(|q| Some(q.error.as_str()))),
            times(rows.iter().map(|q| Some(q.quarantined_at))),
        ],
    )
}
