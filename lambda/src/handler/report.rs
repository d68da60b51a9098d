//! What the function tells CloudWatch: JSON lines on stdout, which Lambda ships to
//! CloudWatch Logs.
//!
//! The line written for each stripped or failed object is at the same time a CloudWatch
//! Embedded Metric Format document (namespace `stripstack`: `ObjectsStripped`, `Failures`,
//! `BytesRemoved`), so CloudWatch extracts the metrics from the log itself and the function
//! makes no metrics API call. Plain `println!` rather than a tracing subscriber: one line
//! per call, nothing to initialise at start-up.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of the function's metrics.
const NAMESPACE: &str = "stripstack";

/// Metric values carried by one object's line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Metrics {
    pub objects_stripped: u64,
    pub failures: u64,
    pub bytes_removed: u64,
}

/// Writes an informational line.
pub(crate) fn info(event: &str, fields: Value) {
    emit("INFO", event, fields);
}

/// Writes a warning line.
pub(crate) fn warn(event: &str, fields: Value) {
    emit("WARN", event, fields);
}

/// Writes an error line.
pub(crate) fn error(event: &str, fields: Value) {
    emit("ERROR", event, fields);
}

fn emit(level: &str, event: &str, fields: Value) {
    println!("{}", line(level, event, fields));
}

/// Writes one object's line, carrying `metrics` in Embedded Metric Format.
/// `function_name` becomes the metrics' only dimension when known.
pub(crate) fn object(
    level: &str,
    event: &str,
    fields: Value,
    metrics: Metrics,
    function_name: Option<&str>,
) {
    println!(
        "{}",
        metric_line(level, event, fields, metrics, function_name, now_millis())
    );
}

fn line(level: &str, event: &str, fields: Value) -> Value {
    let mut map = Map::new();
    map.insert("level".into(), level.into());
    map.insert("event".into(), event.into());
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
    Value::Object(map)
}

fn metric_line(
    level: &str,
    event: &str,
    fields: Value,
    metrics: Metrics,
    function_name: Option<&str>,
    timestamp_ms: u64,
) -> Value {
    let mut value = line(level, event, fields);
    let dimensions: Vec<&str> = function_name.map(|_| "FunctionName").into_iter().collect();
    if let Value::Object(map) = &mut value {
        map.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimensions],
                    "Metrics": [
                        {"Name": "ObjectsStripped", "Unit": "Count"},
                        {"Name": "Failures", "Unit": "Count"},
                        {"Name": "BytesRemoved", "Unit": "Bytes"},
                    ],
                }],
            }),
        );
        if let Some(name) = function_name {
            map.insert("FunctionName".into(), name.into());
        }
        map.insert("ObjectsStripped".into(), metrics.objects_stripped.into());
        map.insert("Failures".into(), metrics.failures.into());
        map.insert("BytesRemoved".into(), metrics.bytes_removed.into());
    }
    value
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_line_is_an_emf_document() {
        let v = metric_line(
            "INFO",
            "stripped",
            json!({"key": "a b.jpg", "bytes_removed": 120}),
            Metrics {
                objects_stripped: 1,
                failures: 0,
                bytes_removed: 120,
            },
            Some("strip-fn"),
            1_700_000_000_000,
        );
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["event"], "stripped");
        assert_eq!(v["key"], "a b.jpg");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "stripstack");
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        // Every declared metric has a numeric value at the top level, as EMF requires.
        for m in directive["Metrics"].as_array().into_iter().flatten() {
            let name = m["Name"].as_str().unwrap_or_default();
            assert!(v[name].is_u64(), "{name} has a value");
        }
        assert_eq!(v["FunctionName"], "strip-fn");
        assert_eq!(v["BytesRemoved"], 120);
    }

    #[test]
    fn without_a_function_name_the_dimension_set_is_empty() {
        let v = metric_line("ERROR", "rejected", json!({}), Metrics::default(), None, 0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert!(v.get("FunctionName").is_none());
    }
}
