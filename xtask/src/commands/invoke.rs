//! `cargo xtask invoke`: runs the deployed function on one existing object of its source
//! bucket — a synthetic S3 `ObjectCreated:Put` event, invoked synchronously — and prints
//! what it answered and the end of its log: the way to re-process or debug one picture.

use std::process::ExitCode;

use serde_json::{json, Value};

use crate::resources::{bucket, function};
use crate::session::{self, TargetOptions};
use crate::stack::resolved::TriggerEvent;

#[derive(Debug, Clone, Default)]
pub(crate) struct InvokeOptions {
    pub target: TargetOptions,
    pub key: String,
    /// The function's logical name; `None`: the stack's only function.
    pub function: Option<String>,
}

/// The S3 notification S3 itself would send for `key` (pure): the key form-URL-encoded as
/// S3 writes it, the object's version and ETag pinning what is read.
pub(crate) fn s3_event(
    region: &str,
    bucket: &str,
    key: &str,
    object: &bucket::ObjectHead,
    now_ms: u64,
) -> Value {
    let encoded: String = key
        .split(' ')
        .map(|part| {
            percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/")
                .replace("%2E", ".")
                .replace("%2D", "-")
                .replace("%5F", "_")
        })
        .collect::<Vec<_>>()
        .join("+");
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": crate::utc::iso(now_ms),
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "stripstack-invoke" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "stripstack-invoke",
                "bucket": { "name": bucket, "arn": format!("arn:{}:s3:::{bucket}", crate::stack::partition(region)) },
                "object": {
                    "key": encoded,
                    "size": object.size,
                    "eTag": object.etag,
                    "versionId": object.version_id,
                },
            },
        }]
    })
}

pub(crate) async fn run(options: InvokeOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&options.target).await?;
    let function = super::chosen_function(&stack, options.function.as_deref())?;
    let source = function
        .triggers
        .iter()
        .find(|t| t.events.contains(&TriggerEvent::Created))
        .and_then(|t| stack.buckets.get(&t.bucket))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "function `{}` has no upload trigger: no source bucket",
                function.logical
            )
        })?;
    let object = bucket::head_object(&clients, &source.name, &options.key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no object `{}` in bucket {}", options.key, source.name))?;
    let event = s3_event(
        &stack.region,
        &source.name,
        &options.key,
        &object,
        crate::utc::now_ms(),
    );
    eprintln!(
        "invoking {} on s3://{}/{} ({} bytes, version {})",
        function.name,
        source.name,
        options.key,
        object.size,
        object.version_id.as_deref().unwrap_or("-")
    );
    let invocation = function::invoke(&clients, &function.name, &event).await?;
    if let Some(tail) = &invocation.log_tail {
        for line in tail.lines() {
            eprintln!("  | {line}");
        }
    }
    match invocation.function_error {
        None => {
            println!("ok: {}", invocation.payload);
            Ok(ExitCode::SUCCESS)
        }
        Some(error) => {
            println!("function error ({error}): {}", invocation.payload);
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_shaped_like_s3s() {
        let head = bucket::ObjectHead {
            size: 2048,
            etag: Some("abc".into()),
            version_id: Some("v1".into()),
        };
        let event = s3_event(
            "eu-west-2",
            "src",
            "uploads/my photo+1.jpg",
            &head,
            1_763_897_465_042,
        );
        let record = &event["Records"][0];
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["eventTime"], "2025-11-23T11:31:05.042Z");
        assert_eq!(record["s3"]["object"]["key"], "uploads/my+photo%2B1.jpg");
        assert_eq!(record["s3"]["object"]["versionId"], "v1");
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::src");
    }
}
