//! Data files of a lake on the local file system, written straight into the table's directory.
//!
//! delta-rs' writer encodes a file into memory, copies it into an upload buffer and hands it to
//! the object store in parts, which for a local table means a staging file, a blocking task per
//! part and a rename: at the end of a large commit that took longer than the kernel's own copy,
//! on one core. Here the Parquet writer writes to the file itself, on the thread that encoded
//! it, and the `add` action carries the statistics delta-rs would have written for the same
//! file (the same per-column min, max and null count, in the same JSON).

use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::{Add, DataType, PrimitiveType};
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{LogicalType, TimeUnit};
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::file::statistics::Statistics;
use deltalake::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The directory of `table` when its data files can be written here: a table on the local file
/// system of the column types this lake writes (integers, text, UTC timestamps, lists), whose
/// configuration leaves the statistics columns at Delta's default (the first 32 columns, which
/// is every column of this lake's tables). Any other table is written by delta-rs.
pub(crate) fn local_dir(table: &DeltaTable) -> Option<PathBuf> {
    let url = table.table_url();
    if url.scheme() != "file" {
        return None;
    }
    let snapshot = table.snapshot().ok()?;
    let configuration = snapshot.metadata().configuration();
    let custom_stats = [
        "delta.dataSkippingNumIndexedCols",
        "delta.dataSkippingStatsColumns",
    ]
    .iter()
    .any(|key| configuration.contains_key(*key));
    let schema = snapshot.schema();
    let lake_types = schema.fields().all(|f| {
        matches!(
            f.data_type(),
            DataType::Primitive(
                PrimitiveType::Long | PrimitiveType::String | PrimitiveType::Timestamp
            ) | DataType::Array(_)
        )
    });
    if custom_stats || !lake_types || schema.fields().count() > 32 {
        return None;
    }
    url.to_file_path().ok()
}

/// Writes `batches` as one new Parquet file in the table directory `dir` and returns its `add`
/// action. A file that could not be written whole is removed.
pub(crate) fn write(
    dir: &Path,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> Result<Add, DeltaTableError> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Err(DeltaTableError::Generic("a data file needs rows".into()));
    };
    let name = format!("part-00000-{}-c000.snappy.parquet", uuid::Uuid::new_v4());
    let path = dir.join(&name);
    let written = (|| {
        let file = std::fs::File::create_new(&path)?;
        let mut writer = ArrowWriter::try_new(file, schema, Some(properties))?;
        for batch in batches {
            writer.write(batch)?;
        }
        let metadata = writer.finish()?;
        Ok::<_, DeltaTableError>((metadata, writer.bytes_written()))
    })();
    let (metadata, size) = match written {
        Ok(written) => written,
        Err(e) => {
            // Best effort: an unreferenced file is harmless (vacuum removes it), only untidy.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let modification_time = chrono::Utc::now().timestamp_millis();
    Ok(Add {
        path: name,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        partition_values: HashMap::new(),
        modification_time,
        data_change: true,
        stats: Some(serde_json::to_string(&stats(&metadata))?),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

/// A value of a column chunk's statistics, ordered as the column's values are.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Bound {
    Int64(i64),
    /// Microseconds since the epoch, UTC.
    TimestampMicros(i64),
    String(String),
}

impl Bound {
    /// The min (`min`) or max of `stats`, for the types [`local_dir`] lets through (a list's
    /// values have none).
    fn of(stats: &Statistics, logical: Option<&LogicalType>, min: bool) -> Option<Bound> {
        fn pick<T: Copy>(min: bool, lo: Option<&T>, hi: Option<&T>) -> Option<T> {
            if min { lo } else { hi }.copied()
        }
        Some(match (stats, logical) {
            (Statistics::Int64(s), Some(LogicalType::Timestamp(t)))
                if t.is_adjusted_to_u_t_c && t.unit == TimeUnit::MICROS =>
            {
                Bound::TimestampMicros(pick(min, s.min_opt(), s.max_opt())?)
            }
            (Statistics::Int64(s), None | Some(LogicalType::Integer(_))) => {
                Bound::Int64(pick(min, s.min_opt(), s.max_opt())?)
            }
            (Statistics::ByteArray(s), Some(LogicalType::String)) => {
                let bytes = if min {
                    s.min_bytes_opt()
                } else {
                    s.max_bytes_opt()
                }?;
                Bound::String(String::from_utf8(bytes.to_vec()).ok()?)
            }
            _ => return None,
        })
    }

    /// As Delta's statistics JSON writes it: timestamps to the millisecond, in UTC.
    fn into_json(self) -> Value {
        match self {
            Bound::Int64(v) => Value::from(v),
            Bound::TimestampMicros(v) => match chrono::DateTime::from_timestamp_micros(v) {
                Some(t) if t.timestamp_subsec_nanos() == 0 => {
                    Value::from(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                }
                Some(t) => Value::from(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
                None => Value::Null,
            },
            Bound::String(v) => Value::from(v),
        }
    }
}

/// The file's statistics over all its row groups: each column's min, max and null count (none
/// for the values inside lists).
fn stats(metadata: &ParquetMetaData) -> Stats {
    let mut stats = Stats {
        num_records: metadata.file_metadata().num_rows(),
        ..Stats::default()
    };
    let schema = metadata.file_metadata().schema_descr();
    for (index, column) in schema.columns().iter().enumerate() {
        if column.max_rep_level() > 0 {
            continue;
        }
        let logical = column.logical_type_ref();
        let mut seen = false;
        let (mut lo, mut hi, mut nulls): (Option<Bound>, Option<Bound>, u64) = (None, None, 0);
        for group in metadata.row_groups() {
            let Some(s) = group.column(index).statistics() else {
                continue;
            };
            seen = true;
            nulls += s.null_count_opt().unwrap_or_default();
            if s.min_bytes_opt().is_none() || s.max_bytes_opt().is_none() {
                continue;
            }
            if let Some(v) = Bound::of(s, logical, true) {
                lo = Some(match lo {
                    Some(l) if l < v => l,
                    _ => v,
                });
            }
            if let Some(v) = Bound::of(s, logical, false) {
                hi = Some(match hi {
                    Some(h) if h > v => h,
                    _ => v,
                });
            }
        }
        if !seen {
            continue;
        }
        // Top-level columns only: `local_dir` leaves tables with struct columns to delta-rs.
        let [name] = column.path().parts() else {
            continue;
        };
        let stat = ColumnCountStat::Value(i64::try_from(nulls).unwrap_or(i64::MAX));
        stats.null_count.insert(name.clone(), stat);
        if let Some(lo) = lo {
            let lo = ColumnValueStat::Value(lo.into_json());
            stats.min_values.insert(name.clone(), lo);
        }
        if let Some(hi) = hi {
            let hi = ColumnValueStat::Value(hi.into_json());
            stats.max_values.insert(name.clone(), hi);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::append::writer_properties;
    use crate::schema::{coordinates_type, LakeTable};
    use crate::table::Lake;
    use deltalake::arrow::array::{
        ArrayRef, Float64Builder, Int64Array, ListBuilder, StringArray, TimestampMicrosecondArray,
    };
    use deltalake::arrow::datatypes::{DataType, SchemaRef};
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};
    use std::sync::Arc;

    /// Three rows of `schema` with a null in every nullable column, text beyond ASCII, and
    /// timestamps with and without a fraction of a second.
    fn sample(schema: SchemaRef) -> RecordBatch {
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|field| {
                let null = field.is_nullable();
                let column: ArrayRef = match field.data_type() {
                    DataType::Int64 => Arc::new(Int64Array::from(vec![
                        Some(7),
                        Some(-3),
                        (!null).then_some(12),
                    ])),
                    DataType::Utf8 => Arc::new(StringArray::from(vec![
                        Some("beta"),
                        (!null).then_some("alpha"),
                        Some("Ωmega"),
                    ])),
                    DataType::Timestamp(_, _) => Arc::new(
                        TimestampMicrosecondArray::from(vec![
                            Some(1_700_000_000_123_456),
                            (!null).then_some(1_500_000_000_000_000),
                            Some(1_600_000_000_000_000),
                        ])
                        .with_timezone("UTC"),
                    ),
                    list if *list == coordinates_type() => {
                        let DataType::List(item) = list else {
                            unreachable!("coordinates are a list")
                        };
                        let mut builder =
                            ListBuilder::new(Float64Builder::new()).with_field(Arc::clone(item));
                        builder.append_value([Some(51.5), Some(-0.12)]);
                        builder.append_null();
                        builder.append_value([Some(-33.9), Some(151.2)]);
                        Arc::new(builder.finish())
                    }
                    other => panic!("no sample for {other}"),
                };
                column
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("sample columns fit the schema")
    }

    fn stats_json(add: &Add) -> Value {
        serde_json::from_str(add.stats.as_deref().expect("stats")).expect("stats are JSON")
    }

    #[tokio::test]
    async fn a_file_written_here_reads_back_whole_with_the_stats_delta_rs_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for table in LakeTable::ALL {
            let delta = lake.table(table).await.unwrap();
            let batch = sample(table.schema());
            let properties = writer_properties(table, true);
            let mut theirs = RecordBatchWriter::for_table(&delta)
                .unwrap()
                .with_writer_properties(properties.clone());
            theirs.write(batch.clone()).await.unwrap();
            let theirs = theirs.flush().await.unwrap();
            let local = local_dir(&delta).expect("a table on the local file system");
            let ours = write(&local, std::slice::from_ref(&batch), properties).unwrap();

            assert_eq!(
                stats_json(&ours),
                stats_json(&theirs[0]),
                "{}",
                table.name()
            );
            assert_eq!(stats_json(&ours)["numRecords"], 3);
            let file = local.join(&ours.path);
            assert_eq!(ours.size as u64, std::fs::metadata(&file).unwrap().len());
            assert!(ours.data_change && ours.partition_values.is_empty());
            if table == LakeTable::Geo {
                // Values inside a list have no file statistics.
                assert_eq!(stats_json(&ours)["nullCount"].get("coordinates"), None);
                assert_eq!(stats_json(&ours)["nullCount"]["country"], 1);
            }
            let read: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                    .unwrap()
                    .build()
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
            assert_eq!(read, vec![batch], "{}", table.name());
        }
        let pin = stats_json(
            &write(
                &local_dir(&lake.table(LakeTable::Pin).await.unwrap()).unwrap(),
                &[sample(LakeTable::Pin.schema())],
                writer_properties(LakeTable::Pin, true),
            )
            .unwrap(),
        );
        assert_eq!(pin["minValues"]["_ingested_at"], "2017-07-14T02:40:00Z");
        assert_eq!(pin["maxValues"]["_ingested_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(pin["minValues"]["poster_name"], "beta");
        assert_eq!(pin["maxValues"]["poster_name"], "Ωmega");
        // Free text has no statistics at all.
        for key in ["minValues", "maxValues", "nullCount"] {
            assert_eq!(pin[key].get("title"), None, "{key}");
            assert_eq!(pin[key].get("description"), None, "{key}");
        }
        assert_eq!(pin["nullCount"]["follower_count"], 1);
        assert_eq!(pin["nullCount"]["ind"], 0);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_written_whole_is_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let pin = sample(LakeTable::Pin.schema());
        let user = sample(LakeTable::User.schema());
        let properties = writer_properties(LakeTable::Pin, true);
        let e = write(dir.path(), &[pin, user], properties.clone()).unwrap_err();
        assert!(e.to_string().contains("Incompatible type"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("no such table");
        assert!(write(&missing, &[sample(LakeTable::Pin.schema())], properties).is_err());
    }
}
