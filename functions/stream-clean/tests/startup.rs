//! The Lambda entry point fails fast, naming the missing configuration.

#[test]
fn without_lake_uri_it_exits_at_once_naming_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stream-clean"))
        .env_remove("LAKE_URI")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LAKE_URI is not set"), "{stderr}");
}
