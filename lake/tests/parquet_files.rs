//! The data files are written for their readers: dictionaries only where values repeat, and
//! min/max statistics per row group (but for free text), which Delta's file statistics are
//! taken from.

use deltalake::parquet::basic::{Compression, Encoding};
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use lake::{Input, LakeRow, Position};
use shared::RecordType;
use test_support::{cleaned_input, TempLake};

/// The one Parquet file of `table`.
fn only_file(lake: &TempLake, table: &str) -> SerializedFileReader<std::fs::File> {
    let files: Vec<_> = std::fs::read_dir(lake.root().join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap()
}

#[tokio::test]
async fn pin_files_use_dictionaries_for_repeated_values_only_and_keep_statistics() {
    let lake = TempLake::new();
    let categories = ["art", "beauty", "travel"];
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            serde_json::json!({
                "index": i,
                "unique_id": format!("id-{i}"),
                "title": format!("title {i}"),
                "description": format!("a description that differs for every post: {i}"),
                "follower_count": "10k",
                "category": categories[i % 3],
            })
            .to_string()
        })
        .collect();
    let mut input = cleaned_input(RecordType::Pin, "test:pins", "pins.json", &lines);
    // As batch-clean keeps them: the rows of an object share its key as their source.
    for row in &mut input.rows {
        row.source = "pins.json".into();
    }
    lake.lake.append(&[input]).await.unwrap();

    let reader = only_file(&lake, "pin");
    let metadata = reader.metadata();
    assert!(metadata
        .file_metadata()
        .created_by()
        .is_some_and(|c| c.starts_with("pinpipe ")));
    assert_eq!(metadata.num_row_groups(), 1);
    let group = metadata.row_group(0);
    let column = |name: &str| {
        (0..group.num_columns())
            .map(|i| group.column(i))
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let dictionary = |name: &str| {
        column(name)
            .encodings()
            .any(|e| e == Encoding::RLE_DICTIONARY || e == Encoding::PLAIN_DICTIONARY)
    };
    for name in ["category", "follower_count", "_source", "_ingested_at"] {
        assert!(dictionary(name), "{name} should be dictionary-encoded");
    }
    for name in ["ind", "unique_id", "title", "description"] {
        assert!(!dictionary(name), "{name} should not be dictionary-encoded");
    }
    // Random ids are stored as they are; text that repeats itself is compressed.
    assert_eq!(column("unique_id").compression(), Compression::UNCOMPRESSED);
    for name in ["title", "description", "_source"] {
        assert_eq!(column(name).compression(), Compression::SNAPPY, "{name}");
    }
    let ind = column("ind").statistics().expect("min/max of ind");
    assert_eq!(
        (ind.min_bytes_opt(), ind.max_bytes_opt()),
        (
            Some(&0i64.to_le_bytes()[..]),
            Some(&2999i64.to_le_bytes()[..])
        )
    );
    // Free text keeps none: no reader filters it by range.
    for name in ["title", "description"] {
        assert!(column(name).statistics().is_none(), "{name} has statistics");
    }
    assert!(column("category").statistics().is_some());
    // Delta's own file statistics come from these.
    let log = std::fs::read_to_string(lake.root().join("pin/_delta_log/00000000000000000001.json"))
        .unwrap();
    let add = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|action| action.get("add").cloned())
        .expect("an add action");
    let stats: serde_json::Value =
        serde_json::from_str(add["stats"].as_str().expect("file statistics")).unwrap();
    assert_eq!(
        (
            &stats["numRecords"],
            &stats["minValues"]["ind"],
            &stats["maxValues"]["ind"]
        ),
        (
            &serde_json::json!(3000),
            &serde_json::json!(0),
            &serde_json::json!(2999)
        )
    );
    assert_eq!(stats["minValues"]["category"], "art");
    assert_eq!(stats["minValues"].get("description"), None);
}

#[tokio::test]
async fn a_source_per_row_is_not_dictionary_encoded() {
    // Stream records each carry their own source (stream, shard, sequence number): a
    // dictionary of them would be as large as the values.
    let lake = TempLake::new();
    let rows = (0..3000)
        .map(|i| LakeRow {
            position: Position::from_int(i + 1),
            source: format!("kinesis:s/shardId-000000000000/{}", 1000 + i).into(),
            row: shared::clean_record(
                RecordType::User,
                format!(
                    r#"{{"ind": {i}, "first_name": "u", "age": {}}}"#,
                    20 + i % 3
                )
                .as_bytes(),
            )
            .unwrap()
            .row,
        })
        .collect();
    let input = Input {
        app_id: "kinesis:s/shardId-000000000000".into(),
        rows,
        ..Input::default()
    };
    lake.lake.append(&[input]).await.unwrap();
    let reader = only_file(&lake, "user");
    let group = reader.metadata().row_group(0);
    let dictionary = |name: &str| {
        (0..group.num_columns())
            .map(|i| group.column(i))
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .encodings()
            .any(|e| e == Encoding::RLE_DICTIONARY || e == Encoding::PLAIN_DICTIONARY)
    };
    assert!(!dictionary("_source"));
    assert!(dictionary("age"));
}
