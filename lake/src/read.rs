//! Reading tables back: every active data file of a Delta table, as Arrow batches or as JSON
//! rows (timestamps as `YYYY-MM-DDTHH:MM:SSZ`, lists as arrays, nulls as `null`).
//!
//! Used by the runner's summary, by tests that check what landed, and by anyone who wants to
//! look at a table without a query engine.

use crate::table::{Lake, LakeError};
use chrono::{DateTime, SecondsFormat};
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use object_store::ObjectStoreExt;
use serde_json::{Map, Number, Value};

impl Lake {
    /// Every row of the table at `relative` (e.g. `pin`), as record batches. A location with no
    /// table gives no batches.
    pub async fn read_batches(&self, relative: &str) -> Result<Vec<RecordBatch>, LakeError> {
        let table = self.load(relative).await?;
        read_table(&table, relative).await
    }

    /// Every row of the table at `relative`, as JSON objects in column order.
    pub async fn read_rows(&self, relative: &str) -> Result<Vec<Map<String, Value>>, LakeError> {
        let batches = self.read_batches(relative).await?;
        Ok(batches.iter().flat_map(batch_to_rows).collect())
    }

    /// The number of rows in the table at `relative` (0 when there is no table).
    pub async fn count_rows(&self, relative: &str) -> Result<usize, LakeError> {
        let batches = self.read_batches(relative).await?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }
}

/// Reads every active data file of a loaded table.
pub async fn read_table(table: &DeltaTable, name: &str) -> Result<Vec<RecordBatch>, LakeError> {
    if table.version().is_none() {
        return Ok(Vec::new());
    }
    let read_err = |reason: String| LakeError::Read {
        table: name.to_string(),
        reason,
    };
    let store = table.object_store();
    let mut batches = Vec::new();
    let paths: Vec<deltalake::Path> = table
        .snapshot()
        .map_err(|e| LakeError::delta(name, e))?
        .log_data()
        .into_iter()
        .map(|add| add.object_store_path())
        .collect();
    for path in paths {
        let uri = path.to_string();
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| read_err(format!("{uri}: {e}")))?
            .bytes()
            .await
            .map_err(|e| read_err(format!("{uri}: {e}")))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| read_err(format!("{uri}: {e}")))?;
        for batch in reader {
            batches.push(batch.map_err(|e| read_err(format!("{uri}: {e}")))?);
        }
    }
    Ok(batches)
}

/// One batch as JSON objects, one per row, keys in column order.
pub fn batch_to_rows(batch: &RecordBatch) -> Vec<Map<String, Value>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|i| {
            schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| (field.name().clone(), cell(column.as_ref(), i)))
                .collect()
        })
        .collect()
}

/// One cell as JSON. Types the lake does not use are shown as their display text.
pub fn cell(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Float64 => Number::from_f64(array.as_primitive::<Float64Type>().value(i))
            .map_or(Value::Null, Value::Number),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(i)),
        DataType::Utf8View => Value::from(array.as_string_view().value(i)),
        DataType::Boolean => Value::from(array.as_boolean().value(i)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(i);
            DateTime::from_timestamp_micros(micros)
                .map(|t| Value::from(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
                .unwrap_or(Value::Null)
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(i);
            Value::Array((0..list.len()).map(|j| cell(list.as_ref(), j)).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(i);
            Value::Array((0..list.len()).map(|j| cell(list.as_ref(), j)).collect())
        }
        _ => {
            let formatter = deltalake::arrow::util::display::ArrayFormatter::try_new(
                array,
                &Default::default(),
            );
            formatter
                .map(|f| Value::from(f.value(i).to_string()))
                .unwrap_or(Value::Null)
        }
    }
}
