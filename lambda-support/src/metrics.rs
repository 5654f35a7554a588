//! CloudWatch Embedded Metric Format: one JSON line per invocation that CloudWatch turns into
//! metrics (namespace `pinpipe`, dimension `Function`) with no agent or extra API calls.

use serde_json::{json, Map, Value};

/// The namespace every function's metrics are published under.
pub const NAMESPACE: &str = "pinpipe";

/// The EMF line for one invocation of `function` with the given counts, e.g.
/// `[("RecordsIn", 10), ("RowsWritten", 9), ("Quarantined", 1)]`.
pub fn emf_line(function: &str, counts: &[(&str, u64)], timestamp_ms: i64) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": counts.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("Function".into(), Value::from(function));
    for (name, value) in counts {
        line.insert((*name).into(), Value::from(*value));
    }
    Value::Object(line).to_string()
}

/// Prints the EMF line of one invocation to stdout, where Lambda hands it to CloudWatch.
pub fn emit(function: &str, counts: &[(&str, u64)]) {
    println!(
        "{}",
        emf_line(function, counts, chrono::Utc::now().timestamp_millis())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_metric_declarations_and_values() {
        let line = emf_line(
            "batch-clean",
            &[("RecordsIn", 10), ("Quarantined", 1)],
            1_764_150_000_000,
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "_aws": {"Timestamp": 1_764_150_000_000i64, "CloudWatchMetrics": [{
                    "Namespace": "pinpipe", "Dimensions": [["Function"]],
                    "Metrics": [{"Name": "RecordsIn", "Unit": "Count"}, {"Name": "Quarantined", "Unit": "Count"}]}]},
                "Function": "batch-clean", "RecordsIn": 10, "Quarantined": 1
            })
        );
    }
}
