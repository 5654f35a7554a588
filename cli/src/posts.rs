//! Where the runner's posts come from: the seeded generator, or JSONL files of raw rows.

use crate::generate::PostGenerator;
use serde_json::Value;
use shared::RecordType;
use std::path::Path;

/// One post: the records sent together (pin, geo, user — any may be absent with `--from-dir`).
pub type Post = Vec<(RecordType, Value)>;

/// `n` generated posts from `seed`.
pub fn generated(n: usize, seed: u64) -> Vec<Post> {
    PostGenerator::new(seed)
        .take(n)
        .map(|p| {
            p.records()
                .map(|(t, v)| (t, v.clone()))
                .into_iter()
                .collect()
        })
        .collect()
}

/// Why the rows of a directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PostsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not JSON.
    #[error("{path} line {line}: not a JSON value ({source}); fix or remove the line")]
    Json {
        /// The file.
        path: String,
        /// The line's number, from 1.
        line: usize,
        /// What the parser said.
        source: serde_json::Error,
    },
}

/// The rows of `dir/pin.jsonl`, `dir/geo.jsonl` and `dir/user.jsonl`, each once, in file order.
/// Row k of each file forms post k; a missing file means no rows of that type.
pub fn from_dir(dir: &Path) -> Result<Vec<Post>, PostsError> {
    let mut posts: Vec<Post> = Vec::new();
    for rt in RecordType::ALL {
        let path = dir.join(format!("{}.jsonl", rt.as_str()));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(PostsError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        for (k, (i, line)) in rows.enumerate() {
            let value = serde_json::from_str(line).map_err(|source| PostsError::Json {
                path: path.display().to_string(),
                line: i + 1,
                source,
            })?;
            if posts.len() <= k {
                posts.resize_with(k + 1, Vec::new);
            }
            posts[k].push((rt, value));
        }
    }
    Ok(posts)
}
