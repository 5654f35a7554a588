//! What `sam build` ships: SAM runs `cargo lambda build --release --arm64 --bin <Binary>` in
//! each function's `CodeUri`. Run from the workspace root, cargo would unify features across
//! every default member and link DataFusion (the CLI's `queries` feature) into the cleaners; so
//! each function's `CodeUri` must be its own crate, and what cargo resolves there is checked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each function's (Binary, CodeUri) in template.yaml.
fn functions() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let mut out = Vec::new();
    let mut binary = None;
    for line in template.lines().map(str::trim) {
        if let Some(b) = line.strip_prefix("Binary:") {
            binary = Some(b.trim().to_string());
        }
        if let Some(uri) = line.strip_prefix("CodeUri:") {
            if let Some(b) = binary.take() {
                out.push((b, uri.trim().to_string()));
            }
        }
    }
    out
}

/// The crates `cargo tree` resolves for normal builds when run where SAM runs cargo-lambda.
fn crates_resolved_in(dir: &Path) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn sam_build_ships_datafusion_inside_batch_clean_and_stream_clean() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let functions = functions();
    let names: Vec<&str> = functions.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        names,
        ["ingest-api", "batch-clean", "stream-clean", "run-queries"]
    );
    for (binary, code_uri) in &functions {
        let dir = root.join(code_uri);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{binary}: CodeUri {code_uri} holds no Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{binary}: CodeUri {code_uri} is not its crate"
        );
        let crates = crates_resolved_in(&dir);
        let has = |name: &str| crates.iter().any(|c| c == name);
        assert!(has(binary.as_str()), "{binary}: {crates:?}");
        match binary.as_str() {
            "ingest-api" => {
                for heavy in ["deltalake", "datafusion", "arrow", "parquet"] {
                    assert!(!has(heavy), "ingest-api would ship {heavy}");
                }
            }
            "batch-clean" | "stream-clean" => {
                assert!(has("deltalake"));
                assert!(!has("datafusion"), "{binary} would ship DataFusion");
            }
            _ => assert!(has("datafusion")),
        }
    }
}
