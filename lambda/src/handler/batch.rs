//! S3 Batch Operations' `LambdaInvoke` events (invocation schemas 1.0 and 2.0) and the
//! answer S3 expects back: one result per task, `Succeeded`, `PermanentFailure` or
//! `TemporaryFailure`. Pure: the work itself is the S3-event path's (`Handler::process`).
//!
//! The shapes are the S3 user guide's ("Invoke AWS Lambda function",
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html>):
//! schema 1.0 names the bucket by ARN (`s3BucketArn`), 2.0 by name (`s3Bucket`) and adds the
//! job's `userArguments`. Keys arrive URL-encoded, as the CSV manifest holds them.
//!
//! S3 retries a `TemporaryFailure` and never a `PermanentFailure`, so the classification
//! is the S3-event path's: a refused picture (not a JPEG, corrupt, the object gone) is
//! permanent, with its reason in the job's completion report; throttling and 5xx are
//! temporary.

use serde::{Deserialize, Serialize};

use super::event::{decode_key, Action, ObjectEvent};

/// What a Batch Operations job sends the function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEvent {
    pub(crate) invocation_schema_version: String,
    pub(crate) invocation_id: String,
    #[serde(default)]
    pub(crate) job: BatchJob,
    pub(crate) tasks: Vec<BatchTask>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchJob {
    #[serde(default)]
    pub id: Option<String>,
}

/// One object of the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchTask {
    pub task_id: String,
    #[serde(default)]
    pub s3_key: Option<String>,
    #[serde(default)]
    pub s3_version_id: Option<String>,
    /// Schema 2.0.
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// Schema 1.0.
    #[serde(default)]
    pub s3_bucket_arn: Option<String>,
}

/// The `eventName` of the log lines and refusal records of a batch task.
pub(crate) const EVENT_NAME: &str = "BatchOperations:LambdaInvoke";

/// A task this function cannot act on at all: permanent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TaskError {
    #[error("the task names no bucket (neither s3Bucket nor s3BucketArn)")]
    MissingBucket,
    #[error("the task's s3BucketArn {0:?} is not an S3 bucket ARN")]
    BadBucketArn(String),
    #[error("the task names no object key")]
    MissingKey,
    #[error("the object key {raw:?} is not valid URL-encoded UTF-8")]
    BadKey { raw: String },
}

impl BatchTask {
    /// The object the task names, to strip. Its ETag is not in the task: the handler reads
    /// it (and the version) from the source before the work, which is what makes a task
    /// for an object whose copy is already current a no-op.
    pub(crate) fn object(&self, now: std::time::SystemTime) -> Result<ObjectEvent, TaskError> {
        let bucket = match (&self.s3_bucket, &self.s3_bucket_arn) {
            (Some(name), _) if !name.is_empty() => name.clone(),
            (_, Some(arn)) => arn
                .split_once(":::")
                .filter(|(head, name)| head.starts_with("arn:") && !name.is_empty())
                .map(|(_, name)| name.to_owned())
                .ok_or_else(|| TaskError::BadBucketArn(arn.clone()))?,
            _ => return Err(TaskError::MissingBucket),
        };
        let raw = self
            .s3_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or(TaskError::MissingKey)?;
        let key = decode_key(raw).ok_or_else(|| TaskError::BadKey {
            raw: raw.to_owned(),
        })?;
        Ok(ObjectEvent {
            event_name: EVENT_NAME.to_owned(),
            action: Action::Strip,
            bucket,
            key,
            version_id: self
                .s3_version_id
                .clone()
                .filter(|v| !v.is_empty() && v != "null"),
            etag: None,
            sequencer: None,
            // A task is made now; a source missing at this point was deleted since the
            // manifest was written (the handler reads it first, see `Handler::batch_task`).
            event_time: now,
        })
    }
}

/// How a task ended, as S3 Batch Operations reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResultCode {
    Succeeded,
    /// S3 retries the task.
    TemporaryFailure,
    /// S3 records the failure in the report and moves on.
    PermanentFailure,
}

/// One task's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: ResultCode,
    /// Goes to the completion report: what was done, or why not.
    pub result_string: String,
}

/// The function's answer to a [`BatchEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub invocation_schema_version: String,
    /// A task whose answer is missing did not run: S3 must not count it done.
    pub treat_missing_keys_as: ResultCode,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

impl BatchResponse {
    pub(crate) fn new(event: &BatchEvent, results: Vec<TaskResult>) -> Self {
        BatchResponse {
            invocation_schema_version: event.invocation_schema_version.clone(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: event.invocation_id.clone(),
            results,
        }
    }
}

/// The report's result string is a CSV field S3 keeps; long error chains are cut.
pub(crate) fn result_string(text: &str) -> String {
    const MAX: usize = 1024;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: serde_json::Value) -> BatchEvent {
        serde_json::from_value(value).expect("a batch event")
    }

    #[test]
    fn reads_both_schemas() {
        let now = std::time::UNIX_EPOCH;
        // The Lambda developer guide's example (schema 1.0).
        let v1 = event(json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "job": { "id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce" },
            "tasks": [{ "taskId": "dGFza2lkZ29lc2hlcmUK", "s3Key": "customerImage1.jpg",
                        "s3VersionId": "1", "s3BucketArn": "arn:aws:s3:::amzn-s3-demo-bucket" }]
        }));
        let object = v1.tasks[0].object(now).expect("valid");
        assert_eq!(object.bucket, "amzn-s3-demo-bucket");
        assert_eq!(object.key, "customerImage1.jpg");
        assert_eq!(object.version_id.as_deref(), Some("1"));
        assert_eq!(object.action, Action::Strip);
        assert_eq!(
            v1.job.id.as_deref(),
            Some("f3cc4f60-61f6-4a2b-8a21-d07600c373ce")
        );

        let v2 = event(json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "abc",
            "job": { "id": "j", "userArguments": { "k": "v" } },
            "tasks": [{ "taskId": "t", "s3Key": "uploads/my%20photo%2B1.jpg",
                        "s3VersionId": null, "s3Bucket": "src" }]
        }));
        let object = v2.tasks[0].object(now).expect("valid");
        assert_eq!(object.bucket, "src");
        assert_eq!(object.key, "uploads/my photo+1.jpg");
        assert_eq!(object.version_id, None);
    }

    #[test]
    fn refuses_tasks_it_cannot_act_on() {
        let task = |value| serde_json::from_value::<BatchTask>(value).expect("a task");
        let now = std::time::UNIX_EPOCH;
        assert_eq!(
            task(json!({"taskId": "t", "s3Key": "k"})).object(now),
            Err(TaskError::MissingBucket)
        );
        assert_eq!(
            task(json!({"taskId": "t", "s3Key": "k", "s3BucketArn": "bucket"})).object(now),
            Err(TaskError::BadBucketArn("bucket".into()))
        );
        assert_eq!(
            task(json!({"taskId": "t", "s3Bucket": "b"})).object(now),
            Err(TaskError::MissingKey)
        );
        assert_eq!(
            task(json!({"taskId": "t", "s3Bucket": "b", "s3Key": "bad%FF"})).object(now),
            Err(TaskError::BadKey {
                raw: "bad%FF".into()
            })
        );
    }

    #[test]
    fn answers_in_s3s_shape() {
        let event = event(json!({
            "invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "j"},
            "tasks": []
        }));
        let response = BatchResponse::new(
            &event,
            vec![TaskResult {
                task_id: "t".into(),
                result_code: ResultCode::TemporaryFailure,
                result_string: "SlowDown".into(),
            }],
        );
        assert_eq!(
            serde_json::to_value(&response).expect("serialises"),
            json!({
                "invocationSchemaVersion": "2.0",
                "treatMissingKeysAs": "PermanentFailure",
                "invocationId": "inv",
                "results": [{ "taskId": "t", "resultCode": "TemporaryFailure",
                              "resultString": "SlowDown" }]
            })
        );
    }

    #[test]
    fn long_result_strings_are_cut_on_a_character() {
        let long = "é".repeat(600);
        let cut = result_string(&long);
        assert!(cut.len() <= 1024 + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(result_string("short"), "short");
    }
}
