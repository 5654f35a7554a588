//! `pinpipe maintain`: what it refuses.

mod common;

/// A retention under an hour could vacuum files a cleaner has written but not committed yet:
/// refused unless forced.
#[test]
fn maintain_with_retention_hours_0_on_a_live_lake_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let refused = common::pinpipe()
        .args(["maintain", "--retention-hours", "0", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "a usage mistake");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "--retention-hours 0 would vacuum files a cleaner has written but not committed yet"
        ),
        "{stderr}"
    );
    common::succeeded(
        &common::pinpipe()
            .args(["maintain", "--retention-hours", "0", "--force", "--lake"])
            .arg(&lake)
            .output()
            .unwrap(),
    );
}
