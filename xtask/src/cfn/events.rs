//! Stack status and events: which state a stack is in, the progress of an operation as
//! CloudFormation reports it (one line per event, as it happens), and why a failed
//! operation failed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::aws::{Clients, SdkResultExt};

/// Resource type of the events about the stack itself.
const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

/// How often the events are polled.
const POLL: Duration = Duration::from_secs(1);

/// After this long without an event about the stack, its status alone says when it is done.
const QUIET_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInfo {
    /// The stack's ARN: it keeps naming the stack once deleted, the name does not.
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
}

/// Where a stack stands, for what `deploy` may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Never created, or deleted.
    Absent,
    /// Created by a change set that was never executed: holds nothing.
    Review,
    /// Its creation failed and was rolled back: holds nothing but retained resources, and
    /// CloudFormation only lets it be deleted.
    RolledBack,
    /// Settled: can be updated.
    Ready,
    /// An operation is running.
    Busy,
    /// A failure CloudFormation could not roll back: needs a person.
    Stuck,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "DELETE_COMPLETE" => Phase::Absent,
        "REVIEW_IN_PROGRESS" => Phase::Review,
        "ROLLBACK_COMPLETE" => Phase::RolledBack,
        s if s.ends_with("_IN_PROGRESS") => Phase::Busy,
        "CREATE_COMPLETE"
        | "UPDATE_COMPLETE"
        | "UPDATE_ROLLBACK_COMPLETE"
        | "IMPORT_COMPLETE"
        | "IMPORT_ROLLBACK_COMPLETE" => Phase::Ready,
        _ => Phase::Stuck,
    }
}

/// Whether an operation that ended in `status` did what was asked.
pub fn succeeded(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// The stack named `name` (or with ARN `name`), `None` if there is none.
pub async fn describe_stack(clients: &Clients, name: &str) -> anyhow::Result<Option<StackInfo>> {
    let out = match clients
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .with_aws_context(|| format!("while reading stack `{name}`"))
    {
        Ok(out) => out,
        // "Stack with id NAME does not exist": the one way CloudFormation says so (its code,
        // ValidationError, also means a malformed request).
        Err(err)
            if err.is("ValidationError")
                && err.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(None)
        }
        Err(err) => return Err(err.into()),
    };
    Ok(out.stacks().first().map(|stack| StackInfo {
        id: stack.stack_id().unwrap_or(name).to_owned(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: stack.stack_status_reason().map(str::to_owned),
    }))
}

/// One stack event, with what the progress and the failure report show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    /// The resource's own name or id (a bucket's name), once it has one.
    pub physical_id: Option<String>,
}

impl Event {
    pub fn is_stack(&self) -> bool {
        self.resource_type == STACK_TYPE
    }
}

/// The id of the stack's newest event: what an operation about to start comes after.
pub async fn newest_event(clients: &Clients, stack_id: &str) -> anyhow::Result<Option<String>> {
    let page = clients
        .cloudformation
        .describe_stack_events()
        .stack_name(stack_id)
        .send()
        .await
        .aws_context("while reading the stack's events")?;
    Ok(page
        .stack_events()
        .first()
        .and_then(|e| e.event_id())
        .map(str::to_owned))
}

/// Events newer than `after` not yet `seen`, oldest first. CloudFormation lists the newest
/// first: pages are read until an event already known.
async fn new_events(
    clients: &Clients,
    stack_id: &str,
    after: Option<&str>,
    seen: &HashSet<String>,
) -> anyhow::Result<Vec<Event>> {
    let mut out = Vec::new();
    let mut token = None;
    'pages: loop {
        let page = clients
            .cloudformation
            .describe_stack_events()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
            .aws_context("while reading the stack's events")?;
        for event in page.stack_events() {
            let id = event.event_id().unwrap_or_default();
            if Some(id) == after || seen.contains(id) {
                break 'pages;
            }
            out.push(Event {
                id: id.to_owned(),
                logical_id: event.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: event.resource_type().unwrap_or_default().to_owned(),
                status: event
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: event
                    .resource_status_reason()
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
                physical_id: event
                    .physical_resource_id()
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned),
            });
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// How an operation ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: String,
    pub reason: Option<String>,
    /// Every event of the operation, oldest first.
    pub events: Vec<Event>,
    /// Pre-deployment validation errors of a failed operation (a name already taken, …):
    /// `status` holds the validation's name, `reason` where and why.
    pub validation: Vec<Event>,
}

/// The validation errors of the stack's latest failed operation. CloudFormation checks some
/// things (names already taken, property values) before it provisions anything, and then
/// the stack's events only say to call DescribeEvents. Best effort: an error reading them
/// leaves the stack's own reason as the explanation.
async fn validation_errors(clients: &Clients, stack_id: &str) -> Vec<Event> {
    let Ok(out) = clients
        .cloudformation
        .describe_events()
        .stack_name(stack_id)
        .filters(
            aws_sdk_cloudformation::types::EventFilter::builder()
                .failed_events(true)
                .build(),
        )
        .send()
        .await
    else {
        return Vec::new();
    };
    let latest = out
        .operation_events()
        .iter()
        .max_by_key(|e| e.timestamp().map(|t| (t.secs(), t.subsec_nanos())))
        .and_then(|e| e.operation_id());
    out.operation_events()
        .iter()
        .filter(|e| e.operation_id() == latest && e.validation_name().is_some())
        .map(|e| Event {
            id: e.event_id().unwrap_or_default().to_owned(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: e.resource_type().unwrap_or_default().to_owned(),
            status: e.validation_name().unwrap_or_default().to_owned(),
            reason: Some(match (e.validation_path(), e.validation_status_reason()) {
                (Some(path), Some(reason)) => format!("{path}: {reason}"),
                (path, reason) => path.or(reason).unwrap_or_default().to_owned(),
            }),
            physical_id: None,
        })
        .collect()
}

/// Prints the stack's events after `after` on stderr as they come (`label` names a logical
/// id the way the plan does) until the operation ends; returns how it ended.
pub async fn watch(
    clients: &Clients,
    stack_id: &str,
    after: Option<String>,
    label: &dyn Fn(&str) -> String,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    let mut stack_event_seen = false;
    loop {
        let fresh = new_events(clients, stack_id, after.as_deref(), &seen).await?;
        let mut ended = None;
        for event in fresh {
            eprintln!("{}", progress_line(&event, started.elapsed(), label));
            seen.insert(event.id.clone());
            if event.is_stack() {
                stack_event_seen = true;
                if is_terminal(&event.status) {
                    ended = Some(event.status.clone());
                }
            }
            events.push(event);
        }
        let info = describe_stack(clients, stack_id).await?;
        let status = info.as_ref().map(|i| i.status.clone());
        // The stack's own final event is the end; its status alone only once the operation
        // has visibly started (right after a request, the previous status may still show).
        let quiet = !stack_event_seen && started.elapsed() > QUIET_LIMIT;
        let done = ended.or_else(|| {
            status
                .clone()
                .filter(|s| is_terminal(s) && (stack_event_seen || quiet))
        });
        if let Some(status) = done {
            let validation = if succeeded(&status) {
                Vec::new()
            } else {
                validation_errors(clients, stack_id).await
            };
            return Ok(Outcome {
                status,
                reason: info.and_then(|i| i.reason),
                events,
                validation,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn progress_line(event: &Event, elapsed: Duration, label: &dyn Fn(&str) -> String) -> String {
    let what = if event.is_stack() {
        format!("stack {}", event.logical_id)
    } else {
        label(&event.logical_id)
    };
    let reason = event
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "  [{:>6.1}s] {:<28} {what}{reason}",
        elapsed.as_secs_f64(),
        event.status
    )
}

/// The events that say why an operation failed: resources that failed for a reason of
/// their own, not because another one's failure cancelled them. When no resource failed
/// (a template CloudFormation refused), the stack's own failure events.
pub fn root_causes(events: &[Event]) -> Vec<&Event> {
    let cancelled = |reason: &str| {
        let reason = reason.to_ascii_lowercase();
        reason.contains("cancelled") || reason.contains("canceled")
    };
    let resources: Vec<&Event> = events
        .iter()
        .filter(|e| !e.is_stack() && e.status.ends_with("_FAILED"))
        .filter(|e| e.reason.as_deref().is_some_and(|r| !cancelled(r)))
        .collect();
    if !resources.is_empty() {
        return resources;
    }
    events
        .iter()
        .filter(|e| e.is_stack() && e.status.ends_with("_FAILED") && e.reason.is_some())
        .collect()
}

/// The error of a failed operation: its final status, and each root cause on a line.
pub fn failure_message(
    stack_name: &str,
    outcome: &Outcome,
    label: &dyn Fn(&str) -> String,
) -> String {
    let mut message = format!("stack `{stack_name}` ended {}", outcome.status);
    if outcome.status.contains("ROLLBACK") {
        message.push_str(" (the changes were rolled back)");
    }
    let causes = if outcome.validation.is_empty() {
        root_causes(&outcome.events)
    } else {
        outcome.validation.iter().collect()
    };
    if causes.is_empty() {
        if let Some(reason) = &outcome.reason {
            message.push_str(&format!(": {reason}"));
        }
    }
    let kept = kept_resources(&outcome.events);
    for cause in causes {
        let what = if cause.is_stack() {
            format!("stack {}", cause.logical_id)
        } else {
            format!("{} [{}]", label(&cause.logical_id), cause.resource_type)
        };
        message.push_str(&format!(
            "\n  {what}: {}: {}",
            cause.status,
            cause.reason.as_deref().unwrap_or_default()
        ));
    }
    if !kept.is_empty() {
        message.push_str("\n  kept by their DeletionPolicy, though the operation rolled back:");
        for event in kept {
            message.push_str(&format!(
                "\n    {} [{}] {}",
                label(&event.logical_id),
                event.resource_type,
                event.physical_id.as_deref().unwrap_or_default()
            ));
        }
    }
    message
}

/// The resources a rollback did not delete (`DELETE_SKIPPED`): what a failed operation left
/// in the account, which the person reading the error must know about. With
/// `RetainExceptOnCreate` only ones kept from before the operation appear here.
fn kept_resources(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| !e.is_stack() && e.status == "DELETE_SKIPPED")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(logical_id: &str, resource_type: &str, status: &str, reason: Option<&str>) -> Event {
        Event {
            id: format!("{logical_id}-{status}"),
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            status: status.into(),
            reason: reason.map(str::to_owned),
            physical_id: None,
        }
    }

    #[test]
    fn phases_say_what_deploy_may_do() {
        assert_eq!(phase("REVIEW_IN_PROGRESS"), Phase::Review);
        assert_eq!(phase("ROLLBACK_COMPLETE"), Phase::RolledBack);
        assert_eq!(phase("UPDATE_ROLLBACK_COMPLETE"), Phase::Ready);
        assert_eq!(phase("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"), Phase::Busy);
        assert_eq!(phase("UPDATE_ROLLBACK_FAILED"), Phase::Stuck);
        assert_eq!(phase("DELETE_COMPLETE"), Phase::Absent);
        assert!(succeeded("UPDATE_COMPLETE"));
        assert!(!succeeded("UPDATE_ROLLBACK_COMPLETE"));
    }

    #[test]
    fn the_root_cause_is_the_failure_that_was_not_a_cancellation() {
        let events = vec![
            event("demo-dev", STACK_TYPE, "CREATE_IN_PROGRESS", None),
            event(
                "DestinationBucket",
                "AWS::S3::Bucket",
                "CREATE_FAILED",
                Some("demo-dst already exists"),
            ),
            event(
                "StripRole",
                "AWS::IAM::Role",
                "CREATE_FAILED",
                Some("Resource creation cancelled"),
            ),
            event(
                "demo-dev",
                STACK_TYPE,
                "ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to create: [DestinationBucket, StripRole]."),
            ),
            event("demo-dev", STACK_TYPE, "ROLLBACK_COMPLETE", None),
        ];
        let causes: Vec<&str> = root_causes(&events)
            .iter()
            .map(|e| e.logical_id.as_str())
            .collect();
        assert_eq!(causes, vec!["DestinationBucket"]);
        let outcome = Outcome {
            status: "ROLLBACK_COMPLETE".into(),
            reason: None,
            events,
            validation: Vec::new(),
        };
        let label = |id: &str| format!("bucket.destination ({id})");
        assert_eq!(
            failure_message("demo-dev", &outcome, &label),
            "stack `demo-dev` ended ROLLBACK_COMPLETE (the changes were rolled back)\n  \
             bucket.destination (DestinationBucket) [AWS::S3::Bucket]: CREATE_FAILED: demo-dst already exists"
        );
    }

    #[test]
    fn validation_errors_explain_a_failure_before_provisioning() {
        let outcome = Outcome {
            status: "ROLLBACK_COMPLETE".into(),
            reason: None,
            events: vec![event(
                "demo-dev",
                STACK_TYPE,
                "CREATE_FAILED",
                Some("Validation failed with 1 error(s). Call DescribeEvents to retrieve the full list"),
            )],
            validation: vec![event(
                "DestinationBucket",
                "AWS::S3::Bucket",
                "NAME_CONFLICT_VALIDATION",
                Some("/Resources/DestinationBucket/Properties/BucketName: demo-dst already exists"),
            )],
        };
        let message = failure_message("demo-dev", &outcome, &|id: &str| id.to_owned());
        assert!(
            message.ends_with(
                "\n  DestinationBucket [AWS::S3::Bucket]: NAME_CONFLICT_VALIDATION: \
                 /Resources/DestinationBucket/Properties/BucketName: demo-dst already exists"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_rollback_says_what_it_kept() {
        let mut kept = event(
            "DestinationBucket",
            "AWS::S3::Bucket",
            "DELETE_SKIPPED",
            None,
        );
        kept.physical_id = Some("demo-dst".into());
        let outcome = Outcome {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            reason: None,
            events: vec![
                event(
                    "StripFunction",
                    "AWS::Lambda::Function",
                    "UPDATE_FAILED",
                    Some("Resource handler returned message: boom"),
                ),
                kept,
                event("SourceBucket", "AWS::S3::Bucket", "DELETE_COMPLETE", None),
            ],
            validation: Vec::new(),
        };
        let message = failure_message("demo-dev", &outcome, &|id: &str| id.to_owned());
        assert_eq!(
            message,
            "stack `demo-dev` ended UPDATE_ROLLBACK_COMPLETE (the changes were rolled back)\n  \
             StripFunction [AWS::Lambda::Function]: UPDATE_FAILED: Resource handler returned \
             message: boom\n  \
             kept by their DeletionPolicy, though the operation rolled back:\n    \
             DestinationBucket [AWS::S3::Bucket] demo-dst"
        );
    }

    #[test]
    fn without_a_failed_resource_the_stacks_reason_is_shown() {
        let outcome = Outcome {
            status: "UPDATE_ROLLBACK_COMPLETE".into(),
            reason: Some("Template error: unresolved".into()),
            events: vec![event(
                "demo-dev",
                STACK_TYPE,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                None,
            )],
            validation: Vec::new(),
        };
        let message = failure_message("demo-dev", &outcome, &|id: &str| id.to_owned());
        assert!(
            message.ends_with(": Template error: unresolved"),
            "{message}"
        );
    }
}
