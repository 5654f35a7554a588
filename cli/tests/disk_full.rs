//! A full disk under `pinpipe serve`: the spool, the stream log and the local lake on a small
//! filesystem the test mounts (a 16 MiB tmpfs; the tests run as root, as CI does). While it
//! is full both routes answer `503` for what they cannot make durable, never `200`; once space
//! returns they answer `200` again by themselves, and the lake holds exactly the records
//! acknowledged, none twice.

mod common;

use common::serve::{geo_row, post_batch, put_stream, Serve};
use common::sorted_inds;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed: this test needs root (as the test command runs in CI)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with a ballast file until a write fails; returns its path.
    fn fill(&self) -> PathBuf {
        let ballast = self.path().join("ballast");
        let mut file = std::fs::File::create(&ballast).unwrap();
        for chunk in [64 * 1024, 4096, 512, 1] {
            let bytes = vec![0u8; chunk];
            while file
                .write_all(&bytes)
                .and_then(|()| file.sync_data())
                .is_ok()
            {}
        }
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[derive(Default)]
struct Answers {
    sent: Vec<i64>,
    acked: Vec<i64>,
    refused: [usize; 2],
}

/// Posts `n` records on each route, alternating, starting at `ind`: every answer is `200` or
/// `503`, and a `503` says when to retry.
async fn post(url: &str, from: i64, n: i64, answers: &mut Answers) {
    let http = reqwest::Client::new();
    for i in 0..n {
        for (route, ind) in [(0, from + 2 * i), (1, from + 2 * i + 1)] {
            answers.sent.push(ind);
            let response = if route == 0 {
                post_batch(&http, url, "0a5e6ec37a2f.geo", &geo_row(ind)).await
            } else {
                put_stream(&http, url, &geo_row(ind)).await
            }
            .unwrap();
            match response.status().as_u16() {
                200 => answers.acked.push(ind),
                503 => {
                    assert!(response.headers().contains_key("retry-after"));
                    answers.refused[route] += 1;
                }
                other => panic!("record {ind}: {other} {}", response.text().await.unwrap()),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_answered_503_and_once_space_returns_the_lake_holds_every_acknowledged_record(
) {
    let disk = SmallDisk::mount("16m");
    let serve = Serve::start_with(disk.path(), &["--interval-ms", "200", "--flush-ms", "300"]);
    let mut answers = Answers::default();
    post(&serve.url, 0, 20, &mut answers).await;
    assert_eq!(answers.acked.len(), 40, "with space, every record is taken");

    let ballast = disk.fill();
    post(&serve.url, 1_000, 100, &mut answers).await;
    assert!(
        answers.refused.iter().all(|n| *n > 0),
        "a full disk refuses both routes: {:?} refused",
        answers.refused
    );

    // Space returns: the routes take records again, with no restart.
    std::fs::remove_file(&ballast).unwrap();
    let before = answers.acked.len();
    post(&serve.url, 10_000, 20, &mut answers).await;
    assert_eq!(
        answers.acked.len() - before,
        40,
        "space returned, every record is taken"
    );

    let printed = serve.stop();
    let inds = sorted_inds(
        &lake::Lake::open(disk.path().join("lake").to_str().unwrap()).unwrap(),
        "geo",
    )
    .await;
    let landed: BTreeSet<i64> = inds.iter().copied().collect();
    assert_eq!(inds.len(), landed.len(), "no record twice\n{printed}");
    let acked: BTreeSet<i64> = answers.acked.iter().copied().collect();
    assert_eq!(landed, acked, "exactly what was acknowledged\n{printed}");
}
