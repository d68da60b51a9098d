//! `cargo xtask failures`: what the stack's failures queues hold — events Lambda gave up on
//! after its retries (its on-failure records) and uploads the function refused (its refusal
//! records) — as a table or JSON, without consuming them; `--retry` re-runs the function on
//! the events that failed and deletes the records it handled; `--purge KEY|--all` drops
//! records once a person has looked at them.

use std::process::ExitCode;

use serde_json::{json, Value};

use crate::resources::function;
use crate::resources::queue::{self, Message};
use crate::session::{self, TargetOptions};
use crate::stack::ResolvedStack;

#[derive(Debug, Clone, Default)]
pub(crate) struct FailuresOptions {
    pub target: TargetOptions,
    pub json: bool,
    /// Re-invoke the function for the events that failed; delete the records it handled.
    pub retry: bool,
    /// Delete the records of this key.
    pub purge: Option<String>,
    /// Delete every record.
    pub purge_all: bool,
    /// Read at most this many records.
    pub limit: usize,
}

/// One record of a failures queue, parsed (pure).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// `failed` (Lambda's on-failure record: the event failed every try), `refused` (the
    /// function's refusal record) or `unknown` (a message neither wrote).
    pub kind: &'static str,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    /// Why: the refusal's reason, or Lambda's condition and the function's error type.
    pub reason: String,
    pub error: Option<String>,
    /// Invocations Lambda made (on-failure records).
    pub attempts: Option<u64>,
    /// The function that failed on it (on-failure records).
    pub function: Option<String>,
    /// The original event, to invoke the function with again (on-failure records).
    pub event: Option<Value>,
}

impl Record {
    pub(crate) fn parse(body: &str) -> Record {
        let unknown = || Record {
            kind: "unknown",
            bucket: None,
            key: None,
            version_id: None,
            reason: "not a stripstack or Lambda record".into(),
            error: Some(body.chars().take(200).collect()),
            attempts: None,
            function: None,
            event: None,
        };
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return unknown();
        };
        let text = |v: &Value| v.as_str().map(str::to_owned);
        if value["kind"] == lambda::REFUSAL_KIND {
            return Record {
                kind: "refused",
                bucket: text(&value["bucket"]),
                key: text(&value["key"]),
                version_id: text(&value["version_id"]),
                reason: text(&value["reason"]).unwrap_or_else(|| "refused".into()),
                error: text(&value["error"]),
                attempts: None,
                function: text(&value["function"]),
                event: None,
            };
        }
        let context = &value["requestContext"];
        if !context.is_object() {
            return unknown();
        }
        // The first S3 record of the event names the object (S3 sends one per event).
        let object = &value["requestPayload"]["Records"][0]["s3"];
        let condition = text(&context["condition"]).unwrap_or_else(|| "failed".into());
        let error_type = text(&value["responsePayload"]["errorType"]);
        Record {
            kind: "failed",
            bucket: text(&object["bucket"]["name"]),
            key: text(&object["object"]["key"]).map(|k| decode_key(&k)),
            version_id: text(&object["object"]["versionId"]),
            reason: match error_type {
                Some(error_type) => format!("{condition}: {error_type}"),
                None => condition,
            },
            error: text(&value["responsePayload"]["errorMessage"]),
            attempts: context["approximateInvokeCount"].as_u64(),
            function: text(&context["functionArn"]).map(|arn| function_name(&arn)),
            event: Some(value["requestPayload"].clone()).filter(Value::is_object),
        }
    }

    /// Whether `--retry` re-runs it: an event that failed (a refusal would be refused again).
    fn retryable(&self) -> bool {
        self.kind == "failed" && self.event.is_some()
    }
}

/// An S3 event's key is form-URL-encoded (`my+photo.jpg`).
fn decode_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// `arn:…:function:NAME[:QUALIFIER]` → `NAME`.
fn function_name(arn: &str) -> String {
    let after = arn.split_once(":function:").map_or(arn, |(_, rest)| rest);
    after.split(':').next().unwrap_or(after).to_owned()
}

/// The stack's failures queues: each function's `on_failure` queue, by physical name.
fn queues(stack: &ResolvedStack) -> Vec<String> {
    let mut names: Vec<String> = stack
        .functions
        .values()
        .filter_map(|f| stack.failure_queue(f))
        .map(|q| q.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

pub(crate) async fn run(options: FailuresOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&options.target).await?;
    let names = queues(&stack);
    if names.is_empty() {
        anyhow::bail!(
            "no function of stack `{}` has an `on_failure` queue: failed events are dropped \
             by Lambda (README: \"Failures\")",
            stack.stack
        );
    }
    let now = crate::utc::now_ms();
    let mut report = Vec::new();
    for name in &names {
        let (url, messages) = queue::peek(&clients, name, options.limit.max(1)).await?;
        let parsed: Vec<(&Message, Record)> = messages
            .iter()
            .map(|m| (m, Record::parse(&m.body)))
            .collect();
        let mut handled: Vec<&Message> = Vec::new();
        if options.purge_all || options.purge.is_some() {
            let chosen: Vec<&Message> = parsed
                .iter()
                .filter(|(_, r)| options.purge_all || r.key.as_deref() == options.purge.as_deref())
                .map(|(m, _)| *m)
                .collect();
            let deleted = queue::delete_messages(&clients, &url, &chosen).await?;
            eprintln!("{name}: purged {deleted} record(s)");
            handled = chosen;
        } else if options.retry {
            for (message, record) in parsed.iter().filter(|(_, r)| r.retryable()) {
                let Some(function) = record
                    .function
                    .as_deref()
                    .filter(|f| stack.functions.values().any(|s| s.name == *f))
                else {
                    eprintln!(
                        "{}: skipped, its function is not one of this stack's",
                        record.key.as_deref().unwrap_or("?")
                    );
                    continue;
                };
                let event = record.event.clone().unwrap_or(Value::Null);
                let invocation = function::invoke(&clients, function, &event).await?;
                let key = record.key.as_deref().unwrap_or("?");
                match invocation.function_error {
                    None => {
                        queue::delete_messages(&clients, &url, &[message]).await?;
                        eprintln!("{key}: retried, {function} succeeded; record deleted");
                        handled.push(message);
                    }
                    Some(error) => eprintln!(
                        "{key}: retried, {function} failed again ({error}: {}); record kept",
                        invocation.payload
                    ),
                }
            }
        }
        let left: Vec<&Message> = messages
            .iter()
            .filter(|m| !handled.iter().any(|h| h.id == m.id))
            .collect();
        queue::release(&clients, &url, &left).await?;
        for (message, record) in parsed {
            if left.iter().any(|m| m.id == message.id) {
                let age = message.sent_ms.map(|sent| now.saturating_sub(sent));
                report.push((name.clone(), message.id.clone(), record, age));
            }
        }
        if messages.len() >= options.limit {
            eprintln!(
                "{name}: showing the first {} records; --limit N shows more",
                options.limit
            );
        }
    }
    if options.json {
        let records: Vec<Value> = report
            .iter()
            .map(|(queue, id, r, age)| {
                json!({
                    "queue": queue,
                    "message_id": id,
                    "kind": r.kind,
                    "bucket": r.bucket,
                    "key": r.key,
                    "version_id": r.version_id,
                    "reason": r.reason,
                    "error": r.error,
                    "attempts": r.attempts,
                    "function": r.function,
                    "age_seconds": age.map(|a| a / 1000),
                    "retryable": r.retryable(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "records": records }))?
        );
    } else if report.is_empty() {
        println!("No failure records in {}.", names.join(", "));
    } else {
        let rows: Vec<[String; 5]> = report
            .iter()
            .map(|(_, _, r, age)| {
                [
                    r.key.clone().unwrap_or_else(|| "?".into()),
                    r.kind.to_owned(),
                    r.reason.clone(),
                    r.attempts.map_or_else(|| "-".into(), |a| a.to_string()),
                    age.map_or_else(|| "-".into(), crate::utc::age),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["KEY", "KIND", "REASON", "ATTEMPTS", "AGE"], &rows)
        );
        println!(
            "{} record(s). `--retry` re-runs the failed ones; `--purge KEY` or `--all` drops them.",
            report.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lambda's on-failure record, as the AWS documentation shows it (and the emulator sends
    /// a subset of it).
    #[test]
    fn an_on_failure_record_names_the_object_and_keeps_the_event() {
        let body = json!({
            "version": "1.0",
            "timestamp": "2019-11-14T18:16:05.568Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:eu-west-2:123456789012:function:exif-dev-strip:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"Records": [{"s3": {
                "bucket": {"name": "src"},
                "object": {"key": "uploads/my+photo%2B1.jpg", "versionId": "v1"}
            }}]},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "1 of 1 object(s) failed", "errorType": "Retry"}
        })
        .to_string();
        let record = Record::parse(&body);
        assert_eq!(record.kind, "failed");
        assert_eq!(record.key.as_deref(), Some("uploads/my photo+1.jpg"));
        assert_eq!(record.version_id.as_deref(), Some("v1"));
        assert_eq!(record.reason, "RetriesExhausted: Retry");
        assert_eq!(record.attempts, Some(3));
        assert_eq!(record.function.as_deref(), Some("exif-dev-strip"));
        assert!(record.retryable());
        assert_eq!(
            record
                .event
                .as_ref()
                .map(|e| e["Records"][0]["s3"]["bucket"]["name"].clone()),
            Some(json!("src"))
        );
    }

    #[test]
    fn a_refusal_record_is_not_retried() {
        let body = json!({
            "kind": "refusal", "bucket": "src", "key": "uploads/a.jpg", "version_id": null,
            "etag": "e", "size": 10, "reason": "not_a_jpeg", "error": "not a JPEG: PNG",
            "offset": 0, "time_ms": 1, "event_time_ms": 1, "function": "exif-dev-strip"
        })
        .to_string();
        let record = Record::parse(&body);
        assert_eq!(record.kind, "refused");
        assert_eq!(record.reason, "not_a_jpeg");
        assert_eq!(record.key.as_deref(), Some("uploads/a.jpg"));
        assert!(!record.retryable());
    }

    #[test]
    fn anything_else_is_shown_not_dropped() {
        for body in ["", "not json", "{\"a\":1}", "[1,2]"] {
            let record = Record::parse(body);
            assert_eq!(record.kind, "unknown", "{body}");
            assert!(!record.retryable());
        }
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let rows = [["uploads/a.jpg".to_owned(), "refused".to_owned()]];
        insta::assert_snapshot!(table(&["KEY", "KIND"], &rows), @r"
        KEY            KIND
        uploads/a.jpg  refused
        ");
    }
}
