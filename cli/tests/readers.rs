//! The readers users already have — the `deltalake` Python package and polars — open every
//! table a `pinpipe run` leaves (pin, geo, user, an empty quarantine, every result), with the
//! row counts delta-rs reports and the SPEC's column types.

mod common;

use common::{pinpipe, succeeded, OutputWithin};
use lake::Lake;
use serde_json::Value;

/// Opens each table with deltalake and with polars; prints, per table, both row counts and the
/// polars dtype of each column.
const READ_WITH_PYTHON: &str = r#"
import json, sys
import polars as pl
from deltalake import DeltaTable
out = {}
for name in sys.argv[2:]:
    path = f"{sys.argv[1]}/{name}"
    arrow = DeltaTable(path).to_pyarrow_table()
    frame = pl.read_delta(path)
    out[name] = {"deltalake_rows": arrow.num_rows, "polars_rows": frame.height,
                 "types": {c: str(t) for c, t in frame.schema.items()}}
print(json.dumps(out))
"#;

#[tokio::test]
async fn deltalake_and_polars_open_every_table_of_a_run_with_its_types() {
    let python = std::env::var("PINPIPE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs deltalake and polars in a venv")
    });
    let dir = tempfile::tempdir().unwrap();
    succeeded(
        &pinpipe()
            .args(["run", "--posts", "200"])
            .current_dir(dir.path())
            .output_within_limit(),
    );
    let root = dir.path().join("data/lake");
    let mut tables: Vec<String> = ["pin", "geo", "user", "quarantine"]
        .map(String::from)
        .to_vec();
    tables.extend(
        lake::queries::QUERIES
            .iter()
            .map(|q| format!("results/{}", q.name)),
    );
    let stdout = succeeded(
        &std::process::Command::new(&python)
            .arg("-c")
            .arg(READ_WITH_PYTHON)
            .arg(&root)
            .args(&tables)
            .output_within_limit(),
    );
    let read: Value = serde_json::from_str(&stdout).unwrap();
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    for table in &tables {
        let rows = lake.count_rows(table).await.unwrap() as u64;
        assert_eq!(read[table]["deltalake_rows"], rows, "{table}");
        assert_eq!(read[table]["polars_rows"], rows, "{table}");
    }
    assert_eq!(read["pin"]["polars_rows"], 200);
    assert_eq!(read["quarantine"]["polars_rows"], 0);
    let utc = "Datetime(time_unit='us', time_zone='UTC')";
    for (table, column, dtype) in [
        ("pin", "ind", "Int64"),
        ("pin", "follower_count", "Int64"),
        ("pin", "unique_id", "String"),
        ("geo", "coordinates", "List(Float64)"),
        ("geo", "timestamp", utc),
        ("user", "age", "Int64"),
        ("user", "date_joined", utc),
        ("quarantine", "quarantined_at", utc),
        (
            "results/q1_popular_category_by_country",
            "category_count",
            "Int64",
        ),
    ] {
        assert_eq!(
            read[table]["types"][column], dtype,
            "{table}.{column}: {}",
            read[table]["types"]
        );
    }
}
