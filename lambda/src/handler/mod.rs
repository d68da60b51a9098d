//! The S3-triggered strip Lambda: from an S3 notification to stripped copies in the
//! destination bucket (compiled with the `runtime` feature; `bin/bootstrap.rs` drives it).
//!
//! For each record: an `ObjectCreated` event streams the object (pinned to the event's
//! version, or to its ETag in an unversioned bucket) through the stripper into the
//! destination bucket under the same key; an `ObjectRemoved` event deletes the copy. The
//! source bucket is only ever read.
//!
//! Failures are sorted in two. *Permanent* ones (not a JPEG, corrupt, the object is gone,
//! access to the source key denied) are logged as one JSON line, nothing is written, and
//! the invocation succeeds, because Lambda's retries could not change the outcome.
//! Everything else (throttling, 5xx, timeouts, writes to the destination refused, and a
//! source object missing while its event is under five minutes old, which S3 may not show
//! yet: see `event::RECENT_EVENT`) fails the invocation, so Lambda's asynchronous retries
//! run and the failure shows in the function's error metrics and on-failure destination.
//!
//! The test message S3 sends when a notification configuration is set ([`TestEvent`]) is
//! logged and the invocation succeeds.
//!
//! An S3 Batch Operations job (`cargo xtask reconcile` above its threshold) sends tasks
//! instead ([`BatchEvent`], see `batch.rs`): each is an upload to strip, its source's ETag and
//! version read first, and is answered per task (`Succeeded`, `PermanentFailure` for a
//! refusal, `TemporaryFailure` for what S3 should retry).
//!
//! Every copy carries a stamp (`stamp::SourceStamp`) of the source object it was made from.
//! A HeadObject of the destination key before the work tells a duplicate or late event
//! (skipped) from a new upload, and the copy is committed with a condition on what that
//! HeadObject saw (`If-None-Match: *` / `If-Match`), so two invocations racing on one key
//! cannot leave the older picture in place.

mod batch;
mod classify;
mod event;
mod refusal;
mod renditions;
mod report;
mod stamp;
mod upload;

#[cfg(test)]
mod tests;

use std::time::{Instant, SystemTime};

use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::Client;
use serde_json::{json, Map, Value};

pub use self::batch::{BatchEvent, BatchResponse, ResultCode, TaskResult};
use self::classify::{classify, describe, ErrorClass};
use self::event::{parse_record, Action, ObjectEvent, RECENT_EVENT};
pub use self::event::{Notification, TestEvent};
pub use self::refusal::RefusalRecord;
pub use self::renditions::RenditionConfig;
use self::report::Metrics;
use self::stamp::SourceStamp;
use self::upload::{Destination, Precondition, WriteError, Written};
use crate::{StripError, StripOptions, Summary};

/// Why an upload whose copy is already of it (or of a newer one) is skipped.
const COPY_IS_CURRENT: &str = "the copy is already of this upload or a newer one";

/// How often one object is retried inline when another invocation changed its copy
/// between our HeadObject and our write. Beyond that the invocation fails and Lambda's own
/// retry takes over.
const CONFLICT_ATTEMPTS: u32 = 3;

/// The function's configuration, read once per container.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the stripped copies go (`DESTINATION_BUCKET`).
    pub destination_bucket: String,
    pub options: StripOptions,
    /// Size of a multipart upload part, and the largest copy written with one PutObject.
    pub part_size: usize,
    /// `AWS_LAMBDA_FUNCTION_NAME`: the dimension of the function's metrics.
    pub function_name: Option<String>,
    /// `FAILURE_QUEUE_URL`: where refusal records go (the stack's `on_failure` queue);
    /// `None`: refusals are only logged.
    pub failure_queue_url: Option<String>,
    /// `RENDITIONS`: resized copies to write beside each stripped original.
    pub renditions: Vec<RenditionConfig>,
    /// How many pixels renditions may decode (`RENDITION_MAX_PIXELS`, else sized for the
    /// function's memory).
    pub rendition_limits: crate::rendition::Limits,
}

/// The configuration cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("DESTINATION_BUCKET is not set: the function does not know where to write the stripped copies")]
    MissingDestination,
    #[error("RENDITIONS is not a list of renditions: {0}")]
    BadRenditions(String),
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let destination_bucket = lookup("DESTINATION_BUCKET")
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .ok_or(ConfigError::MissingDestination)?;
        Ok(Config {
            destination_bucket,
            options: StripOptions::default(),
            part_size: upload::DEFAULT_PART_SIZE,
            function_name: lookup("AWS_LAMBDA_FUNCTION_NAME").filter(|n| !n.is_empty()),
            failure_queue_url: lookup("FAILURE_QUEUE_URL")
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty()),
            renditions: renditions::parse(lookup("RENDITIONS").as_deref())
                .map_err(ConfigError::BadRenditions)?,
            rendition_limits: renditions::limits(
                lookup("RENDITION_MAX_PIXELS").as_deref(),
                lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
            ),
        })
    }
}

/// Why an invocation failed (and Lambda should retry it).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event comes from the destination bucket: writing would trigger the function
    /// again, forever. A deployment error; nothing was read or written.
    #[error(
        "refusing the event: it comes from bucket {bucket:?}, which is the destination bucket \
         (DESTINATION_BUCKET); writing there would re-trigger this function"
    )]
    Recursion { bucket: String },
    /// Some objects failed in a way a retry may fix; the others were handled.
    #[error("{failed} of {total} object(s) failed and should be retried; first error: {first}")]
    Retry {
        failed: usize,
        total: usize,
        first: String,
    },
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        let error_type = match err {
            HandlerError::Recursion { .. } => "Recursion",
            HandlerError::Retry { .. } => "Retry",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// What the function answers: nothing to an S3 notification (Lambda's asynchronous
/// invocation drops it), one result per task to a Batch Operations job.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Reply {
    None,
    Batch(BatchResponse),
}

/// Handles S3 events; built once per container.
pub struct Handler {
    s3: Client,
    /// Sends refusal records to `Config::failure_queue_url`.
    sqs: Option<aws_sdk_sqs::Client>,
    config: Config,
}

/// What became of one record.
#[derive(Debug)]
enum Outcome {
    Stripped {
        summary: Summary,
        written: Written,
        /// What the destination key held before: `absent`, `older_copy`, or `unreadable`
        /// when HeadObject was denied (then duplicates cannot be detected: worth a log).
        replaced: &'static str,
    },
    Deleted,
    /// Nothing to do, and that is fine (a duplicate, a late event, an event type this
    /// function does not act on).
    Skipped {
        why: &'static str,
    },
    /// A permanent failure: logged and recorded in the failures queue, nothing written, the
    /// invocation still succeeds.
    Rejected {
        reason: &'static str,
        error: String,
        /// Where in the object the stripper stopped.
        offset: Option<u64>,
        /// The object's size, once it was read.
        size: Option<u64>,
    },
    /// A failure worth retrying: the invocation fails.
    Failed {
        error: String,
    },
}

impl Outcome {
    /// A refusal before any byte of the picture was read (no offset, no size).
    fn refused(reason: &'static str, error: String) -> Self {
        Outcome::Rejected {
            reason,
            error,
            offset: None,
            size: None,
        }
    }
}

/// Why processing stopped before an outcome: a conflicting writer (worth an inline retry)
/// or a final outcome.
enum Stop {
    Conflict(String),
    Done(Outcome),
}

impl Stop {
    /// What stopped the work, for a person.
    fn message(self) -> String {
        match self {
            Stop::Conflict(error) | Stop::Done(Outcome::Failed { error }) => error,
            Stop::Done(other) => format!("{other:?}"),
        }
    }
}

/// What the destination key holds before the work.
enum Current {
    Absent,
    Copy {
        etag: Option<String>,
        stamp: SourceStamp,
    },
    /// HeadObject was denied (the role may lack s3:GetObject on the destination, or
    /// s3:ListBucket, without which S3 answers 403 for a missing key too).
    Unknown,
}

impl Handler {
    pub fn new(s3: Client, config: Config) -> Self {
        Handler {
            s3,
            sqs: None,
            config,
        }
    }

    /// Refusal records are sent with `sqs` to the configuration's `failure_queue_url`.
    pub fn with_failure_queue(mut self, sqs: aws_sdk_sqs::Client) -> Self {
        self.sqs = Some(sqs);
        self
    }

    /// Handles one invocation: S3 event records (an [`S3Event`] converts), S3's test
    /// message, which is logged and needs nothing else, or a Batch Operations job's tasks,
    /// which are answered.
    pub async fn handle(
        &self,
        notification: impl Into<Notification>,
    ) -> Result<Reply, HandlerError> {
        match notification.into() {
            Notification::Records(event) => self.handle_records(event).await.map(|()| Reply::None),
            Notification::Test(test) => {
                report::info("test_event", test_event_fields(&test));
                Ok(Reply::None)
            }
            Notification::Batch(event) => Ok(Reply::Batch(self.handle_batch(event).await)),
        }
    }

    async fn handle_records(&self, event: S3Event) -> Result<(), HandlerError> {
        let destination = &self.config.destination_bucket;
        // Checked for every record before any work, so a misrouted event writes nothing.
        if let Some(bucket) = event
            .records
            .iter()
            .filter_map(|r| r.s3.bucket.name.as_ref())
            .find(|b| *b == destination)
        {
            let err = HandlerError::Recursion {
                bucket: bucket.clone(),
            };
            report::error(
                "recursion_refused",
                json!({ "bucket": bucket, "error": err.to_string() }),
            );
            return Err(err);
        }
        let total = event.records.len();
        let mut failed = 0;
        let mut first = None;
        for record in &event.records {
            let started = Instant::now();
            let raw = (
                record.s3.bucket.name.as_ref(),
                record.s3.object.key.as_ref(),
            );
            let outcome = match parse_record(record) {
                Ok(object) => {
                    let outcome = self.process(&object).await;
                    self.finish(Some(&object), raw, object_fields(&object), outcome, started)
                        .await
                }
                Err(e) => {
                    let rejected = Outcome::refused("malformed_record", e.to_string());
                    let fields = json!({ "bucket": raw.0, "raw_key": raw.1 });
                    self.finish(None, raw, fields, rejected, started).await
                }
            };
            if let Outcome::Failed { error } = &outcome {
                failed += 1;
                first.get_or_insert_with(|| error.clone());
            }
        }
        match first {
            Some(first) => Err(HandlerError::Retry {
                failed,
                total,
                first,
            }),
            None => Ok(()),
        }
    }

    /// Handles the tasks of an S3 Batch Operations job: each object as an `ObjectCreated`
    /// event would be, answered `Succeeded`, `PermanentFailure` (refused, with the reason)
    /// or `TemporaryFailure` (worth S3's retry). The invocation itself succeeds: the
    /// answer is per task.
    async fn handle_batch(&self, event: BatchEvent) -> BatchResponse {
        let mut results = Vec::with_capacity(event.tasks.len());
        for task in &event.tasks {
            let started = Instant::now();
            let raw = (task.s3_bucket.as_ref(), task.s3_key.as_ref());
            let task_fields = json!({ "job_id": event.job.id, "task_id": task.task_id });
            let outcome = match task.object(SystemTime::now()) {
                Ok(mut object) => {
                    let outcome = self.batch_task(&mut object).await;
                    let mut fields = object_fields(&object);
                    extend(&mut fields, task_fields);
                    self.finish(Some(&object), raw, fields, outcome, started)
                        .await
                }
                Err(e) => {
                    let rejected = Outcome::refused("malformed_task", e.to_string());
                    let mut fields = json!({ "bucket": raw.0, "raw_key": raw.1 });
                    extend(&mut fields, task_fields);
                    self.finish(None, raw, fields, rejected, started).await
                }
            };
            let (result_code, text) = match &outcome {
                Outcome::Stripped { summary, .. } => (
                    ResultCode::Succeeded,
                    format!(
                        "stripped: {} bytes of metadata removed",
                        summary.bytes_removed
                    ),
                ),
                Outcome::Skipped { why } => (ResultCode::Succeeded, format!("skipped: {why}")),
                Outcome::Deleted => (ResultCode::Succeeded, "deleted".to_owned()),
                Outcome::Rejected { reason, error, .. } => {
                    (ResultCode::PermanentFailure, format!("{reason}: {error}"))
                }
                Outcome::Failed { error } => (ResultCode::TemporaryFailure, error.clone()),
            };
            results.push(TaskResult {
                task_id: task.task_id.clone(),
                result_code,
                result_string: batch::result_string(&text),
            });
        }
        BatchResponse::new(&event, results)
    }

    /// One batch task: the source's current ETag and version are read first (a task carries
    /// neither, and the stamp comparison needs them to tell a copy already made from this
    /// object), then the object is processed as an upload event's would be.
    async fn batch_task(&self, object: &mut ObjectEvent) -> Outcome {
        if object.bucket == self.config.destination_bucket {
            let error = HandlerError::Recursion {
                bucket: object.bucket.clone(),
            };
            return Outcome::refused("recursion_refused", error.to_string());
        }
        let head = self
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await;
        match head {
            Ok(head) => {
                object.etag = head
                    .e_tag
                    .as_deref()
                    .map(|e| event::trim_etag(e).to_owned());
                object.version_id = head.version_id.or(object.version_id.take());
                self.process(object).await
            }
            Err(e) => {
                let error = describe(&e);
                let rejected = |reason| Outcome::refused(reason, error.clone());
                match classify(&e) {
                    // Listed for the manifest, gone now: deleted since.
                    ErrorClass::NotFound => rejected("source_not_found"),
                    // Without s3:ListBucket on the source, a missing key answers 403 too.
                    ErrorClass::Denied => rejected("source_access_denied"),
                    ErrorClass::Rejected => rejected("source_request_rejected"),
                    ErrorClass::Conflict | ErrorClass::Transient => Outcome::Failed { error },
                }
            }
        }
    }

    /// After the work on one object: a refusal recorded, its renditions made or deleted,
    /// its log line written; the final outcome.
    async fn finish(
        &self,
        object: Option<&ObjectEvent>,
        raw: (Option<&String>, Option<&String>),
        mut fields: Value,
        outcome: Outcome,
        started: Instant,
    ) -> Outcome {
        let outcome = match outcome {
            Outcome::Rejected {
                reason,
                error,
                offset,
                size,
            } => {
                let refusal = self.refusal(
                    object,
                    raw,
                    reason.to_owned(),
                    error.clone(),
                    (offset, size),
                );
                match self.record_refusal(&refusal).await {
                    Ok(()) => Outcome::Rejected {
                        reason,
                        error,
                        offset,
                        size,
                    },
                    Err(send) => Outcome::Failed {
                        error: format!(
                            "{error}; and its refusal record could not be sent to the \
                             failures queue ({send}): failing so that Lambda keeps the event"
                        ),
                    },
                }
            }
            other => other,
        };
        let (outcome, rendition_fields) = match object {
            Some(object) => self.with_renditions(object, outcome).await,
            None => (outcome, None),
        };
        if let Some(renditions) = rendition_fields {
            extend(&mut fields, json!({ "renditions": renditions }));
        }
        self.report(fields, &outcome, started);
        outcome
    }

    /// The refusal record of `record` (parsed as `object` when it could be).
    fn refusal(
        &self,
        object: Option<&ObjectEvent>,
        (raw_bucket, raw_key): (Option<&String>, Option<&String>),
        reason: String,
        error: String,
        (offset, size): (Option<u64>, Option<u64>),
    ) -> RefusalRecord {
        RefusalRecord {
            kind: refusal::KIND,
            bucket: object.map(|o| o.bucket.clone()).or(raw_bucket.cloned()),
            key: object.map(|o| o.key.clone()).or(raw_key.cloned()),
            version_id: object.and_then(|o| o.version_id.clone()),
            etag: object.and_then(|o| o.etag.clone()),
            size,
            reason,
            error,
            offset,
            time_ms: report::now_millis(),
            event_time_ms: object.map(|o| millis(o.event_time)),
            function: self.config.function_name.clone(),
        }
    }

    /// After the original: its renditions made (for an upload whose copy was just written or
    /// already current) or deleted with it; what became of them, for the log line.
    async fn with_renditions(
        &self,
        object: &ObjectEvent,
        outcome: Outcome,
    ) -> (Outcome, Option<Value>) {
        if self.config.renditions.is_empty() {
            return (outcome, None);
        }
        match &outcome {
            Outcome::Stripped { .. } => {}
            Outcome::Skipped { why } if *why == COPY_IS_CURRENT => {}
            Outcome::Deleted => {
                let mut deleted = Vec::new();
                for config in &self.config.renditions {
                    let key = format!("{}{}", config.prefix, object.key);
                    match self.remove_key(object, &key).await {
                        Ok(Outcome::Deleted) => deleted.push(config.name.clone()),
                        Ok(_) => {}
                        Err(Stop::Conflict(error)) | Err(Stop::Done(Outcome::Failed { error })) => {
                            return (
                                Outcome::Failed {
                                    error: format!("deleting rendition `{key}`: {error}"),
                                },
                                None,
                            )
                        }
                        Err(Stop::Done(_)) => {}
                    }
                }
                return (outcome, Some(json!({ "deleted": deleted })));
            }
            _ => return (outcome, None),
        }
        match self.make_renditions(object).await {
            Ok(made) => {
                for refused in &made.refused {
                    let refusal = self.refusal(
                        Some(object),
                        (None, None),
                        format!("rendition-{}", refused.reason),
                        format!("rendition `{}`: {}", refused.name, refused.error),
                        (None, None),
                    );
                    if let Err(send) = self.record_refusal(&refusal).await {
                        return (
                            Outcome::Failed {
                                error: format!(
                                    "rendition `{}` refused ({}), and its record could not be \
                                     sent to the failures queue ({send})",
                                    refused.name, refused.reason
                                ),
                            },
                            Some(made.fields()),
                        );
                    }
                }
                (outcome, Some(made.fields()))
            }
            Err(renditions::Stop::SourceChanged) => (
                outcome,
                Some(
                    json!({ "skipped": "the source changed since the event; its own event makes them" }),
                ),
            ),
            Err(renditions::Stop::Retry(error)) => (
                Outcome::Failed {
                    error: format!("renditions: {error}"),
                },
                None,
            ),
        }
    }

    /// Sends `refusal` to the failures queue, when the function has one.
    async fn record_refusal(&self, refusal: &RefusalRecord) -> Result<(), String> {
        let (Some(sqs), Some(url)) = (&self.sqs, &self.config.failure_queue_url) else {
            return Ok(());
        };
        sqs.send_message()
            .queue_url(url)
            .message_body(refusal.body())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let e = aws_sdk_sqs::error::DisplayErrorContext(&e);
                e.to_string()
            })
    }

    async fn process(&self, object: &ObjectEvent) -> Outcome {
        let mut conflict = String::new();
        for _ in 0..CONFLICT_ATTEMPTS {
            let attempt = match object.action {
                Action::Strip => self.strip(object).await,
                Action::Remove => self.remove(object).await,
                Action::Ignore => {
                    return Outcome::Skipped {
                        why: "event type not handled",
                    }
                }
            };
            match attempt {
                Ok(outcome) | Err(Stop::Done(outcome)) => return outcome,
                // Another invocation changed the copy meanwhile: look again.
                Err(Stop::Conflict(error)) => conflict = error,
            }
        }
        Outcome::Failed {
            error: format!("the destination copy kept changing during {CONFLICT_ATTEMPTS} attempts; last: {conflict}"),
        }
    }

    /// Writes the stripped copy of the object an `ObjectCreated` event names.
    async fn strip(&self, object: &ObjectEvent) -> Result<Outcome, Stop> {
        let current = self.current_copy(&object.key).await?;
        let replaced = match &current {
            Current::Absent => "absent",
            Current::Copy { .. } => "older_copy",
            Current::Unknown => "unreadable",
        };
        let precondition = match &current {
            Current::Copy { stamp, .. } if stamp.covers(object) => {
                return Ok(Outcome::Skipped {
                    why: COPY_IS_CURRENT,
                });
            }
            Current::Copy {
                etag: Some(etag), ..
            } => Precondition::Matches(etag.clone()),
            Current::Absent => Precondition::Absent,
            Current::Copy { etag: None, .. } | Current::Unknown => Precondition::None,
        };

        let source = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            // Without a version, the ETag pins the object: if it was overwritten since the
            // event, S3 answers 412 and the newer upload's own event makes the copy.
            .set_if_match(
                object
                    .etag
                    .as_ref()
                    .filter(|_| object.version_id.is_none())
                    .map(|e| format!("\"{e}\"")),
            )
            .send()
            .await
            .map_err(|e| {
                let error = describe(&e);
                Stop::Done(match classify(&e) {
                    // A young upload may not be visible yet (RECENT_EVENT): not proof of
                    // a delete, so Lambda retries it.
                    ErrorClass::NotFound if object.is_recent(SystemTime::now()) => {
                        Outcome::Failed {
                            error: format!(
                                "{error}; the event is less than {} minutes old and S3 may \
                                 not show a new object yet (as after versioning is first \
                                 enabled on a bucket): worth a retry",
                                RECENT_EVENT.as_secs() / 60
                            ),
                        }
                    }
                    ErrorClass::NotFound => Outcome::refused("source_not_found", error),
                    ErrorClass::Denied => Outcome::refused("source_access_denied", error),
                    ErrorClass::Rejected => Outcome::refused("source_request_rejected", error),
                    ErrorClass::Conflict => Outcome::Skipped {
                        why: "the source was overwritten since the event",
                    },
                    ErrorClass::Transient => Outcome::Failed { error },
                })
            })?;

        let stamp = SourceStamp {
            etag: source
                .e_tag
                .as_deref()
                .map(|e| event::trim_etag(e).to_owned())
                .or_else(|| object.etag.clone()),
            version_id: source
                .version_id
                .clone()
                .or_else(|| object.version_id.clone()),
            sequencer: object.sequencer.clone(),
        };
        let size = source.content_length.and_then(|n| u64::try_from(n).ok());
        let size_hint = size.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        let destination = Destination {
            s3: &self.s3,
            bucket: &self.config.destination_bucket,
            key: &object.key,
            metadata: stamp.to_metadata(),
            precondition,
            part_size: self.config.part_size,
        };
        match upload::strip_into(destination, source.body, self.config.options, size_hint).await {
            Ok((summary, written)) => Ok(Outcome::Stripped {
                summary,
                written,
                replaced,
            }),
            Err(WriteError::Strip(e)) => Err(Stop::Done(Outcome::Rejected {
                reason: strip_reason(&e),
                error: e.to_string(),
                offset: e.offset(),
                size,
            })),
            Err(WriteError::S3 {
                class: ErrorClass::Conflict,
                message,
                ..
            }) => Err(Stop::Conflict(message)),
            // A refused or failed write to the destination, or a broken download: a retry
            // may succeed (or, for a denied write, succeed once the policy is fixed).
            Err(e @ (WriteError::S3 { .. } | WriteError::Read(_))) => {
                Err(Stop::Done(Outcome::Failed {
                    error: e.to_string(),
                }))
            }
        }
    }

    /// Deletes the copy of the object an `ObjectRemoved` event names, unless the copy shows
    /// a later upload or a version other than the one deleted.
    async fn remove(&self, object: &ObjectEvent) -> Result<Outcome, Stop> {
        self.remove_key(object, &object.key).await
    }

    /// Deletes `key` of the destination (the copy of `object`, or one of its renditions)
    /// under the same conditions.
    async fn remove_key(&self, object: &ObjectEvent, key: &str) -> Result<Outcome, Stop> {
        let if_match = match self.current_copy(key).await? {
            Current::Absent => {
                return Ok(Outcome::Skipped {
                    why: "no copy to delete",
                })
            }
            Current::Copy { stamp, .. } if stamp.is_newer_than(object) => {
                return Ok(Outcome::Skipped {
                    why: "the copy is of a later upload",
                });
            }
            Current::Copy { stamp, .. }
                if object.deletes_one_version()
                    && stamp.version_id.is_some()
                    && stamp.version_id != object.version_id =>
            {
                return Ok(Outcome::Skipped {
                    why: "a version other than the copied one was deleted",
                });
            }
            Current::Copy { etag, .. } => etag,
            // Cannot look: delete anyway, a deleted picture must not stay public.
            Current::Unknown => None,
        };
        self.s3
            .delete_object()
            .bucket(&self.config.destination_bucket)
            .key(key)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| match classify(&e) {
                ErrorClass::Conflict => Stop::Conflict(describe(&e)),
                ErrorClass::NotFound => Stop::Done(Outcome::Skipped {
                    why: "no copy to delete",
                }),
                _ => Stop::Done(Outcome::Failed {
                    error: describe(&e),
                }),
            })?;
        Ok(Outcome::Deleted)
    }

    /// Looks at the destination key.
    async fn current_copy(&self, key: &str) -> Result<Current, Stop> {
        match self
            .s3
            .head_object()
            .bucket(&self.config.destination_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Current::Copy {
                etag: head.e_tag,
                stamp: SourceStamp::from_metadata(head.metadata.as_ref()),
            }),
            Err(e) => match classify(&e) {
                ErrorClass::NotFound => Ok(Current::Absent),
                ErrorClass::Denied => Ok(Current::Unknown),
                _ => Err(Stop::Done(Outcome::Failed {
                    error: describe(&e),
                })),
            },
        }
    }

    /// Writes the record's line; stripped and failed objects carry metrics.
    fn report(&self, mut fields: Value, outcome: &Outcome, started: Instant) {
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Value::Object(map) = &mut fields {
            map.insert(
                "destination_bucket".into(),
                self.config.destination_bucket.clone().into(),
            );
            map.insert("duration_ms".into(), duration_ms.into());
        }
        let function_name = self.config.function_name.as_deref();
        match outcome {
            Outcome::Stripped {
                summary,
                written,
                replaced,
            } => {
                extend(&mut fields, summary_fields(summary, *written));
                extend(&mut fields, json!({ "replaced": replaced }));
                let metrics = Metrics {
                    objects_stripped: 1,
                    failures: 0,
                    bytes_removed: summary.bytes_removed,
                };
                report::object("INFO", "stripped", fields, metrics, function_name);
            }
            Outcome::Rejected {
                reason,
                error,
                offset,
                size,
            } => {
                extend(
                    &mut fields,
                    json!({
                        "reason": reason,
                        "error": error,
                        "offset": offset,
                        "size": size,
                        "written": false,
                        "recorded": self.config.failure_queue_url.is_some(),
                    }),
                );
                let metrics = Metrics {
                    failures: 1,
                    ..Metrics::default()
                };
                report::object("ERROR", "rejected", fields, metrics, function_name);
            }
            Outcome::Failed { error } => {
                extend(&mut fields, json!({ "error": error, "retry": true }));
                let metrics = Metrics {
                    failures: 1,
                    ..Metrics::default()
                };
                report::object("WARN", "failed", fields, metrics, function_name);
            }
            Outcome::Deleted => report::info("deleted", fields),
            Outcome::Skipped { why } => {
                extend(&mut fields, json!({ "why": why }));
                report::info("skipped", fields);
            }
        }
    }
}

/// The line about S3's test message: which bucket's configuration sent it, and when.
fn test_event_fields(test: &TestEvent) -> Value {
    json!({
        "bucket": test.bucket,
        "time": test.time,
        "request_id": test.request_id,
        "why": "S3 sends this message when a notification configuration is set; nothing to do",
    })
}

/// The identifying fields of every line about an object.
fn object_fields(object: &ObjectEvent) -> Value {
    json!({
        "event_name": object.event_name,
        "bucket": object.bucket,
        "key": object.key,
        "version_id": object.version_id,
        "etag": object.etag,
    })
}

fn summary_fields(summary: &Summary, written: Written) -> Value {
    let segments: Map<String, Value> = summary
        .removed
        .iter()
        .map(|r| (r.kind.to_string(), Value::from(r.count)))
        .collect();
    let (upload, parts) = match written {
        Written::Single => ("single", 1),
        Written::Multipart { parts } => ("multipart", parts),
    };
    json!({
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
        "bytes_removed": summary.bytes_removed,
        "trailer_bytes": summary.trailer_bytes,
        "segments_removed": segments,
        "orientation_kept": summary.orientation,
        "upload": upload,
        "parts": parts,
    })
}

fn extend(fields: &mut Value, more: Value) {
    if let (Value::Object(map), Value::Object(more)) = (fields, more) {
        map.extend(more);
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The log's `reason` for a picture the stripper refused.
fn strip_reason(err: &StripError) -> &'static str {
    match err {
        StripError::NotJpeg { .. } => "not_a_jpeg",
        _ => "corrupt_jpeg",
    }
}
