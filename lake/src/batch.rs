//! Cleaned rows and quarantine rows into Arrow record batches, column by column.

use crate::position::Position;
use crate::schema::{coordinates_type, LakeTable, QuarantineRow};
use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    Array, ArrayRef, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder, UInt32Array,
};
use deltalake::arrow::compute::take_arrays;
use deltalake::arrow::datatypes::{DataType, Field};
use deltalake::arrow::error::ArrowError;
use shared::{CleanView, RecordType};
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A string column, its buffers sized from a first pass over the values: collecting grows them
/// by doubling, which copied a large batch's text twice more.
fn strings<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> ArrayRef {
    let bytes = values.clone().map(|v| v.map_or(0, str::len)).sum();
    let mut column = StringBuilder::with_capacity(values.size_hint().0, bytes);
    column.extend(values);
    Arc::new(column.finish())
}

fn times(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        values
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

/// The seed of the row hashes: fixed, so rows built apart (one object per thread) hash alike.
const ROW_HASH_SEED: u64 = 0x7069_6e70_6970_6531;

/// Cleaned rows of one data table, column by column, each with its position in its input and
/// a hash of its cleaned values: what a cleaner builds as it cleans (see [`ColumnsBuilder`]),
/// so a kept value is copied once, from the raw record straight into its column.
#[derive(Debug, Clone)]
pub struct CleanColumns {
    table: LakeTable,
    /// The table's columns but the last, `_ingested_at`, which is set when committed.
    columns: Vec<ArrayRef>,
    positions: Vec<Position>,
    hashes: Vec<u64>,
    /// Rows whose `_source` differs from the row's before (the first row's counts).
    source_changes: usize,
}

impl CleanColumns {
    /// The table the rows belong to.
    pub fn table(&self) -> LakeTable {
        self.table
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Each row's position in its input, in row order.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// Rows whose `_source` differs from the row's before: one per object on the batch path,
    /// one per record on the stream path.
    pub fn source_changes(&self) -> usize {
        self.source_changes
    }

    /// The hash of row `row`'s cleaned values (not its `_source`).
    pub(crate) fn hash(&self, row: usize) -> u64 {
        self.hashes[row]
    }

    /// True when row `a` of `self` and row `b` of `other` hold the same cleaned values
    /// (`_source` aside).
    pub(crate) fn same_values(&self, a: usize, other: &CleanColumns, b: usize) -> bool {
        let values = self.columns.len() - 1;
        self.table == other.table
            && self.columns[..values]
                .iter()
                .zip(&other.columns[..values])
                .all(|(x, y)| x.slice(a, 1).to_data() == y.slice(b, 1).to_data())
    }

    /// The rows `rows` (all of them when `None`) as a record batch of the table, with
    /// `_ingested_at` set to `ingested_at`.
    pub(crate) fn batch(
        &self,
        rows: Option<&[u32]>,
        ingested_at: DateTime<Utc>,
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns = match rows {
            None => self.columns.clone(),
            Some(rows) => {
                let indices = UInt32Array::from(rows.to_vec());
                take_arrays(&self.columns, &indices, None)?
            }
        };
        let len = rows.map_or(self.len(), <[u32]>::len);
        columns.push(Arc::new(
            TimestampMicrosecondArray::from_value(ingested_at.timestamp_micros(), len)
                .with_timezone("UTC"),
        ));
        RecordBatch::try_new(self.table.schema(), columns)
    }
}

/// Builds the [`CleanColumns`] of one data table row by row.
#[derive(Debug)]
pub struct ColumnsBuilder {
    record_type: RecordType,
    columns: TableColumns,
    source: StringBuilder,
    /// The input text the rows come from, in bytes (0: not known).
    text_bytes: usize,
    positions: Vec<Position>,
    hashes: Vec<u64>,
    hasher: foldhash::fast::FixedState,
    source_changes: usize,
}

#[derive(Debug)]
enum TableColumns {
    Pin {
        ind: Int64Builder,
        /// `unique_id`, `title`, `description`, then from `poster_name` to `category`.
        text: Box<[StringBuilder; 9]>,
        follower_count: Int64Builder,
    },
    Geo {
        ind: Int64Builder,
        country: StringBuilder,
        coordinates: ListBuilder<Float64Builder>,
        timestamp: TimestampMicrosecondBuilder,
    },
    User {
        ind: Int64Builder,
        user_name: StringBuilder,
        age: Int64Builder,
        date_joined: TimestampMicrosecondBuilder,
    },
}

fn time_builder(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

fn micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_micros())
}

/// The text columns of a record type's table (the last one `_source`), as [`TEXT_SHARES`]
/// numbers them.
const fn text_columns(record_type: RecordType) -> usize {
    match record_type {
        RecordType::Pin => 10,
        RecordType::Geo | RecordType::User => 2,
    }
}

/// Per record type and text column, the bytes the column's values took per 4 KiB of input
/// text in the last batch of rows built (0 until one was): a new builder reserves that
/// much, so a column's buffer is not grown (copied, and its new pages faulted in) two or
/// three times over while the rows are pushed. Only a size hint; a wrong one costs time, not
/// rows.
static TEXT_SHARES: [[AtomicU32; 10]; 3] = [const { [const { AtomicU32::new(0) }; 10] }; 3];

fn text_shares(record_type: RecordType) -> &'static [AtomicU32] {
    let shares = match record_type {
        RecordType::Pin => &TEXT_SHARES[0],
        RecordType::Geo => &TEXT_SHARES[1],
        RecordType::User => &TEXT_SHARES[2],
    };
    &shares[..text_columns(record_type)]
}

/// Room for column `column`'s values of `rows` rows from `text_bytes` bytes of input.
fn text_capacity(record_type: RecordType, column: usize, rows: usize, text_bytes: usize) -> usize {
    let learned = text_shares(record_type)
        .get(column)
        .map_or(0, |share| share.load(Ordering::Relaxed) as usize);
    let even_share = match record_type {
        RecordType::Pin => 9,
        RecordType::Geo | RecordType::User => 4,
    };
    let is_source = column + 1 == text_columns(record_type);
    reserve(learned, is_source, even_share, rows, text_bytes)
}

/// What a column reserves: `learned` bytes per 4 KiB of input, as the column took last time,
/// an eighth more; before any batch was built (`learned` 0), 32 bytes a row for the source
/// column and an even share of the input for the others. Never more than the input, or 64
/// bytes a row when that is more (the source column repeats its name on every row), so a batch
/// of many tiny records does not make the next, larger one reserve many times its size.
fn reserve(
    learned: usize,
    is_source: bool,
    even_share: usize,
    rows: usize,
    text_bytes: usize,
) -> usize {
    if learned == 0 {
        return match is_source {
            true => rows.saturating_mul(32),
            false => text_bytes / even_share.max(1),
        };
    }
    let most = text_bytes.max(rows.saturating_mul(64));
    let estimate = (text_bytes.saturating_mul(learned) / 4096).min(most);
    estimate + estimate / 8 + 64
}

/// Records what each text column of a finished batch took of its `text_bytes` of input.
fn learn_text_shares(record_type: RecordType, text_bytes: usize, taken: &[usize]) {
    if text_bytes < 4096 {
        return;
    }
    for (share, taken) in text_shares(record_type).iter().zip(taken) {
        let per_4k = taken.saturating_mul(4096) / text_bytes;
        share.store(
            u32::try_from(per_4k).unwrap_or(u32::MAX).max(1),
            Ordering::Relaxed,
        );
    }
}

impl ColumnsBuilder {
    /// A builder for the rows of `record_type`'s table, with room for about `rows` rows of
    /// `text_bytes` bytes of text in all.
    pub fn new(record_type: RecordType, rows: usize, text_bytes: usize) -> ColumnsBuilder {
        let strings = |column: usize| {
            StringBuilder::with_capacity(rows, text_capacity(record_type, column, rows, text_bytes))
        };
        let source = text_columns(record_type) - 1;
        let columns = match record_type {
            RecordType::Pin => TableColumns::Pin {
                ind: Int64Builder::with_capacity(rows),
                text: Box::new(std::array::from_fn(strings)),
                follower_count: Int64Builder::with_capacity(rows),
            },
            RecordType::Geo => {
                let item = match coordinates_type() {
                    DataType::List(item) => item,
                    _ => Arc::new(Field::new("element", DataType::Float64, true)),
                };
                TableColumns::Geo {
                    ind: Int64Builder::with_capacity(rows),
                    country: strings(0),
                    coordinates: ListBuilder::with_capacity(
                        Float64Builder::with_capacity(2 * rows),
                        rows,
                    )
                    .with_field(item),
                    timestamp: time_builder(rows),
                }
            }
            RecordType::User => TableColumns::User {
                ind: Int64Builder::with_capacity(rows),
                user_name: strings(0),
                age: Int64Builder::with_capacity(rows),
                date_joined: time_builder(rows),
            },
        };
        ColumnsBuilder {
            record_type,
            columns,
            source: strings(source),
            text_bytes,
            positions: Vec::with_capacity(rows),
            hashes: Vec::with_capacity(rows),
            hasher: foldhash::fast::FixedState::with_seed(ROW_HASH_SEED),
            source_changes: 0,
        }
    }

    /// The table the rows go to.
    pub fn table(&self) -> LakeTable {
        LakeTable::of(self.record_type)
    }

    /// The type of the records whose rows it holds.
    pub fn record_type(&self) -> RecordType {
        self.record_type
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Adds a cleaned row, its position in its input and where it came from (`_source`, given
    /// as the pieces it is joined from). A row of another table is a programming error
    /// upstream, reported rather than dropped.
    pub fn push(
        &mut self,
        position: Position,
        row: &CleanView<'_>,
        source: &[&str],
    ) -> Result<(), ArrowError> {
        match (&mut self.columns, row) {
            (
                TableColumns::Pin {
                    ind,
                    text,
                    follower_count,
                },
                CleanView::Pin(p),
            ) => {
                ind.append_value(p.ind);
                let values = [
                    p.unique_id,
                    p.title,
                    p.description,
                    p.poster_name,
                    p.tag_list,
                    p.is_image_or_video,
                    p.image_src,
                    p.save_location,
                    p.category,
                ];
                for (column, value) in text.iter_mut().zip(values) {
                    column.append_option(value);
                }
                follower_count.append_option(p.follower_count);
            }
            (
                TableColumns::Geo {
                    ind,
                    country,
                    coordinates,
                    timestamp,
                },
                CleanView::Geo(g),
            ) => {
                ind.append_value(g.ind);
                country.append_option(g.country);
                match g.coordinates {
                    Some(pair) => {
                        coordinates.values().extend(pair);
                        coordinates.append(true);
                    }
                    None => coordinates.append(false),
                }
                timestamp.append_option(micros(g.timestamp));
            }
            (
                TableColumns::User {
                    ind,
                    user_name,
                    age,
                    date_joined,
                },
                CleanView::User(u),
            ) => {
                ind.append_value(u.ind);
                user_name.append_option(u.user_name.as_deref());
                age.append_option(u.age);
                date_joined.append_option(micros(u.date_joined));
            }
            _ => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "a {} row among the rows of the {} table",
                    row.record_type().as_str(),
                    self.table().name()
                )))
            }
        }
        match source {
            [one] => self.source.append_value(one),
            pieces => {
                for piece in pieces {
                    // Writing to a builder's value buffer cannot fail.
                    let _ = self.source.write_str(piece);
                }
                self.source.append_value("");
            }
        }
        if let [.., a, b, c] = self.source.offsets_slice() {
            let values = self.source.values_slice();
            let span = |from: &i32, to: &i32| values.get(*from as usize..*to as usize);
            if span(a, b) != span(b, c) {
                self.source_changes += 1;
            }
        } else {
            self.source_changes += 1;
        }
        self.positions.push(position);
        self.hashes.push(self.hasher.hash_one(row));
        Ok(())
    }

    /// The rows added, column by column.
    pub fn finish(mut self) -> CleanColumns {
        let taken = |c: &StringBuilder| c.values_slice().len();
        let mut text_taken = match &self.columns {
            TableColumns::Pin { text, .. } => text.iter().map(taken).collect(),
            TableColumns::Geo { country, .. } => vec![taken(country)],
            TableColumns::User { user_name, .. } => vec![taken(user_name)],
        };
        text_taken.push(taken(&self.source));
        learn_text_shares(self.record_type, self.text_bytes, &text_taken);
        let mut columns: Vec<ArrayRef> = match &mut self.columns {
            TableColumns::Pin {
                ind,
                text,
                follower_count,
            } => {
                let mut text = text.iter_mut().map(|c| Arc::new(c.finish()) as ArrayRef);
                let mut columns: Vec<ArrayRef> = vec![Arc::new(ind.finish())];
                columns.extend(text.by_ref().take(3));
                columns.push(Arc::new(follower_count.finish()));
                columns.extend(text);
                columns
            }
            TableColumns::Geo {
                ind,
                country,
                coordinates,
                timestamp,
            } => vec![
                Arc::new(ind.finish()),
                Arc::new(country.finish()),
                Arc::new(coordinates.finish()),
                Arc::new(timestamp.finish()),
            ],
            TableColumns::User {
                ind,
                user_name,
                age,
                date_joined,
            } => vec![
                Arc::new(ind.finish()),
                Arc::new(user_name.finish()),
                Arc::new(age.finish()),
                Arc::new(date_joined.finish()),
            ],
        };
        columns.push(Arc::new(self.source.finish()));
        CleanColumns {
            table: self.table(),
            columns,
            positions: self.positions,
            hashes: self.hashes,
            source_changes: self.source_changes,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_reserves_its_last_share_of_the_input_an_eighth_more() {
        // Before any batch: an even share of the input, 32 bytes a row for the source.
        assert_eq!(reserve(0, false, 9, 1_000, 900_000), 100_000);
        assert_eq!(reserve(0, true, 9, 1_000, 900_000), 32_000);
        // A column that took half its input last time reserves half, an eighth more.
        assert_eq!(reserve(2048, false, 9, 1_000, 800_000), 450_064);
        // A source column that took ten times its input (many tiny records) reserves no more
        // than the larger of the input and 64 bytes a row.
        assert_eq!(reserve(40_960, true, 9, 1_000, 1_000_000), 1_125_064);
        assert_eq!(reserve(40_960, true, 9, 1_000, 8_000), 72_064);
    }
}
