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
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
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
    let stderr = start(&[("RAW_LANDING", "kinesis")]);
    assert!(
        stderr.contains("RAW_LANDING is `kinesis`: set it to firehose, direct or kafka"),
        "{stderr}"
    );
}

#[test]
fn the_kafka_landing_without_brokers_exits_at_once_naming_them() {
    let stderr = start(&[("RAW_LANDING", "kafka")]);
    assert!(
        stderr.contains("KAFKA_BOOTSTRAP_SERVERS is not set"),
        "{stderr}"
    );
    let stderr = start(&[
        ("RAW_LANDING", "kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9"),
        ("KAFKA_SECURITY", "sasl_scram_512"),
    ]);
    assert!(
        stderr.contains("KAFKA_SECURITY=sasl_scram_512 needs KAFKA_SASL_USERNAME"),
        "{stderr}"
    );
}
