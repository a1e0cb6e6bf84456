//! CloudWatch metrics as Embedded Metric Format lines on stdout: Lambda ships them to
//! CloudWatch Logs, which turns them into metrics with no API call on the hot path.

use std::io::Write;

use serde_json::json;

const NAMESPACE: &str = "seatcap";

/// Emits one count under the `seatcap` namespace, dimensioned by function name.
pub fn count(name: &str, value: usize) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
    let line = json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        "Function": function,
        name: value,
    });
    // A metric line that cannot be written is not worth failing an invocation for.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
