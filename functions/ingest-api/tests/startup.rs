//! The Lambda entry point fails fast, naming the missing configuration.

fn start(env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ingest-api"));
    command
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_REGION", "us-east-1");
    for var in [
        "RAW_BUCKET",
        "RAW_LANDING",
        "DELIVERY_STREAM_PIN",
        "DELIVERY_STREAM_GEO",
        "DELIVERY_STREAM_USER",
    ] {
        command.env_remove(var);
    }
    let output = command.envs(env.iter().copied()).output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn without_delivery_streams_it_exits_at_once_naming_the_first_missing() {
    let stderr = start(&[]);
    assert!(
        stderr.contains("DELIVERY_STREAM_PIN is not set"),
        "{stderr}"
    );
    let stderr = start(&[("DELIVERY_STREAM_PIN", "p"), ("DELIVERY_STREAM_GEO", "g")]);
    assert!(
        stderr.contains("DELIVERY_STREAM_USER is not set"),
        "{stderr}"
    );
}

#[test]
fn the_direct_landing_without_raw_bucket_exits_at_once_naming_it() {
    let stderr = start(&[("RAW_LANDING", "direct")]);
    assert!(stderr.contains("RAW_BUCKET is not set"), "{stderr}");
}

#[test]
fn an_unknown_landing_is_named() {
    let stderr = start(&[("RAW_LANDING", "kafka")]);
    assert!(
        stderr.contains("RAW_LANDING is `kafka`: set it to firehose or direct"),
        "{stderr}"
    );
}
