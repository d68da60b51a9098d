//! Refusal records: what the function tells its failures queue (`FAILURE_QUEUE_URL`) about
//! an upload it refused (not a JPEG, corrupt, truncated, gone, unreadable), so that a refused
//! picture leaves a record someone can find (`cargo xtask failures`), not only a log line.
//!
//! The invocation still succeeds: a retry would refuse the same bytes again. But when the
//! record cannot be sent, the invocation fails, so Lambda's retries (and after them its
//! on-failure destination, the same queue) keep the event instead of losing it.
//!
//! Lambda's own on-failure records (events that failed every try) land in the same queue;
//! `kind: "refusal"` tells the two apart.

use serde::Serialize;

/// The `kind` of a refusal record in the failures queue.
pub const KIND: &str = crate::REFUSAL_KIND;

/// One refused upload. Field names are the queue's contract with `cargo xtask failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalRecord {
    /// Always [`KIND`].
    pub kind: &'static str,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// The object's size in bytes, when the function got as far as reading it.
    pub size: Option<u64>,
    /// Stable reason (`not_a_jpeg`, `corrupt_jpeg`, `source_not_found`, …).
    pub reason: String,
    /// The full error, for a person.
    pub error: String,
    /// The byte of the object where the stripper stopped, when it says.
    pub offset: Option<u64>,
    /// When the function refused it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// When S3 reported the upload (the event's `eventTime`), in milliseconds since the
    /// Unix epoch; `None` for a record the function could not parse.
    pub event_time_ms: Option<u64>,
    pub function: Option<String>,
}

impl RefusalRecord {
    /// The message body.
    pub fn body(&self) -> String {
        // Serialising plain strings and numbers cannot fail; an empty body would still be a
        // message someone sees.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_records_json() {
        let record = RefusalRecord {
            kind: KIND,
            bucket: Some("src".into()),
            key: Some("uploads/a b.jpg".into()),
            version_id: Some("v1".into()),
            etag: None,
            size: Some(1234),
            reason: "corrupt_jpeg".into(),
            error: "missing EOI".into(),
            offset: Some(1200),
            time_ms: 1_700_000_000_000,
            event_time_ms: Some(1_699_999_999_000),
            function: Some("strip".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&record.body()).expect("json");
        assert_eq!(v["kind"], "refusal");
        assert_eq!(v["key"], "uploads/a b.jpg");
        assert_eq!(v["offset"], 1200);
        assert_eq!(v["size"], 1234);
        assert_eq!(v["etag"], serde_json::Value::Null);
    }
}
