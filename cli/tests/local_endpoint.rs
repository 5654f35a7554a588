//! Pointing the tools at a local S3-compatible endpoint over plain http needs only
//! `AWS_ENDPOINT_URL`, as the README's "Invoking locally" says: no `AWS_ALLOW_HTTP` as well.

mod common;

use common::{expected_clean, fixture_lines, pinpipe, succeeded, OutputWithin};

#[test]
fn a_local_http_endpoint_works_without_aws_allow_http() {
    let endpoint = std::env::var("PINPIPE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("PINPIPE_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test.sh, which starts an S3-compatible server on 127.0.0.1")
    });
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let run = std::process::id();
    let (raw, lake) = (format!("raw-http-{run}"), format!("lake-http-{run}"));
    let body = fixture_lines("geo").join("\n") + "\n";
    let puts = [
        (format!("{endpoint}/{raw}"), String::new()),
        (format!("{endpoint}/{lake}"), String::new()),
        (
            format!("{endpoint}/{raw}/topics/p.geo/dt=2026-11-28/geo.ndjson"),
            body,
        ),
    ];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        for (url, body) in puts {
            let status = http.put(&url).body(body).send().await.unwrap().status();
            assert!(status.is_success(), "PUT {url}: {status}");
        }
    });

    let stdout = succeeded(
        &pinpipe()
            .args(["process", "--raw", &format!("s3://{raw}/topics")])
            .args(["--lake", &format!("s3://{lake}/lake")])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env_remove("AWS_ALLOW_HTTP")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output_within_limit(),
    );
    let rows = expected_clean("geo").len();
    assert!(
        stdout.contains(&format!(
            "batch-clean: 1 objects, {rows} records in → {rows} rows written"
        )),
        "{stdout}"
    );
}
