//! The contract every registered kind keeps (`kind.rs`'s guarantees), checked on every
//! resource of the shipped stack through recorded SDK answers, kind by kind:
//!
//! - `read` of a resource that does not exist answers `Ok(None)`, whatever "not found" its
//!   service sends;
//! - `remove` of a resource already gone succeeds;
//! - `converge` with `have == want` sends no write;
//! - every operation those runs send is allowed by the kind's own `deployer_grants`, so the
//!   deployer policy cannot fall behind the code.
//!
//! The answers are a world where nothing exists, as each service says it (its protocol's
//! error shape and code), built from the request alone: the kinds send what they send.

use std::collections::{BTreeMap, BTreeSet};

use super::{Address, ApplyCtx, Artifact, Artifacts, Desired, Kind, Observed, ReadCtx, Removal};
use crate::aws::mock::{self, Answer, WorldRequest};
use crate::aws::Clients;
use crate::stack::ResolvedStack;

/// Nothing exists: every service's "not found", in its own protocol.
fn nothing_exists(request: &WorldRequest<'_>) -> Answer {
    let json = |code: &str| {
        (
            400,
            vec![],
            format!("{{\"__type\":\"{code}\",\"message\":\"mock: no such resource\"}}"),
        )
    };
    match request.service {
        // A HEAD has no body: S3 says 404 alone.
        "s3" if request.method == "HEAD" => (404, vec![], String::new()),
        "s3" => mock::s3_error(404, "NoSuchBucket").into_answer(),
        "iam" => mock::iam_error(404, "NoSuchEntity").into_answer(),
        "lambda" => (
            404,
            vec![("x-amzn-errortype", "ResourceNotFoundException".to_owned())],
            "{\"Type\":\"User\",\"message\":\"mock: no such resource\"}".to_owned(),
        ),
        "ssm" if request.target.ends_with(".DescribeParameters") => {
            (200, vec![], "{\"Parameters\":[]}".to_owned())
        }
        "ssm" => json("ParameterNotFound"),
        "logs" if request.target.ends_with(".DescribeLogGroups") => {
            (200, vec![], "{\"logGroups\":[]}".to_owned())
        }
        "logs" => json("ResourceNotFoundException"),
        // SQS speaks JSON and keeps its Query-era code in a header.
        "sqs" => {
            let (status, mut headers, body) = json("com.amazonaws.sqs#QueueDoesNotExist");
            headers.push((
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender".to_owned(),
            ));
            (status, headers, body)
        }
        other => panic!("no kind should call {other} here"),
    }
}

/// Every call fails: a converge that has nothing to do must not notice.
fn every_call_fails(_: &WorldRequest<'_>) -> Answer {
    (
        500,
        vec![],
        "{\"__type\":\"InternalFailure\",\"message\":\"mock: this call was not expected\"}"
            .to_owned(),
    )
}

trait IntoAnswer {
    fn into_answer(self) -> Answer;
}

impl IntoAnswer for (u16, Option<String>) {
    fn into_answer(self) -> Answer {
        (self.0, vec![], self.1.unwrap_or_default())
    }
}

/// The IAM action that authorises `Service.Operation` (as `ApiCalls` counts it): the
/// service's prefix and the operation's name, but where the action is named otherwise.
fn iam_action(call: &str) -> String {
    let (service, operation) = call.split_once('.').expect("Service.Operation");
    let prefix = match service.to_ascii_lowercase().replace(' ', "").as_str() {
        "s3" => "s3",
        "iam" => "iam",
        "lambda" => "lambda",
        "cloudwatchlogs" => "logs",
        "sqs" => "sqs",
        "ssm" => "ssm",
        "sts" => "sts",
        "s3control" => "s3",
        other => panic!("no IAM prefix known for service `{other}` ({call})"),
    };
    // S3's actions are not its operations' names (the Service Authorization Reference,
    // "Actions defined by Amazon S3"; each listed here is what the operation needs).
    let action = match (prefix, operation) {
        ("s3", "HeadBucket") => "ListBucket",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        ("s3", "ListObjectsV2") => "ListBucket",
        ("s3", "DeleteObjects") => "DeleteObject",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "GetBucketNotificationConfiguration") => "GetBucketNotification",
        ("s3", "PutBucketNotificationConfiguration") => "PutBucketNotification",
        ("s3", "GetBucketLifecycleConfiguration") => "GetLifecycleConfiguration",
        ("s3", "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle") => {
            "PutLifecycleConfiguration"
        }
        ("s3", "GetBucketEncryption") => "GetEncryptionConfiguration",
        ("s3", "PutBucketEncryption") => "PutEncryptionConfiguration",
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "DeleteBucketTagging") => "PutBucketTagging",
        ("s3", "GetBucketOwnershipControls") => "GetBucketOwnershipControls",
        ("ssm", "AddTagsToResource") => "AddTagsToResource",
        (_, operation) => operation,
    };
    format!("{prefix}:{action}")
}

/// Whether IAM action pattern `granted` (`s3:Get*`) matches `action`.
fn allows(granted: &str, action: &str) -> bool {
    match granted.strip_suffix('*') {
        Some(prefix) => action
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase()),
        None => granted.eq_ignore_ascii_case(action),
    }
}

fn ctx(stack: &ResolvedStack) -> ReadCtx {
    ReadCtx {
        stack: stack.stack.clone(),
        env: stack.env.clone(),
        account: stack.account.clone(),
        region: stack.region.clone(),
    }
}

fn the_stack() -> (ResolvedStack, Artifacts) {
    let stack = crate::stack::pipeline_in_every_env()
        .into_iter()
        .find(|s| s.env == "prod")
        .expect("a prod env");
    let artifacts = stack
        .functions
        .values()
        .map(|f| {
            let artifact = Artifact {
                bucket: "state".into(),
                key: "artifacts/x.zip".into(),
                code_sha256: "c2hhMjU2".into(),
            };
            (f.package.clone(), artifact)
        })
        .collect();
    (stack, artifacts)
}

/// The operations `clients` sent, `Service.Operation`.
fn sent(clients: &Clients) -> BTreeSet<String> {
    clients.calls.snapshot().into_keys().collect()
}

/// What one kind sent in the three runs, by run.
#[derive(Default)]
struct Sent {
    read: BTreeSet<String>,
    remove: BTreeSet<String>,
    converge: BTreeSet<String>,
}

async fn exercise(stack: &ResolvedStack, artifacts: &Artifacts, want: &Desired) -> Sent {
    let read_ctx = ctx(stack);
    let address: &Address = &want.address;

    let clients = mock::world(nothing_exists);
    let read = super::read(&clients, &read_ctx, address, &want.physical).await;
    assert!(
        matches!(read, Ok(None)),
        "{address}: read of a resource that does not exist must be Ok(None), got {read:?}"
    );
    let mut sent_by = Sent {
        read: sent(&clients),
        ..Sent::default()
    };

    let clients = mock::world(nothing_exists);
    let settings = super::settings(stack, address);
    let removed = super::remove(&clients, &read_ctx, address, &want.physical, &settings).await;
    assert!(
        matches!(removed, Ok(Removal::Deleted)),
        "{address}: remove of a resource already gone must succeed, got {removed:?}"
    );
    sent_by.remove = sent(&clients);

    let clients = mock::world(every_call_fails);
    let apply_ctx = ApplyCtx {
        read: read_ctx,
        stack: stack.clone(),
        artifacts: artifacts.clone(),
    };
    let have = Observed {
        physical: want.physical.clone(),
        props: want.props.clone(),
    };
    let converged = super::converge(&clients, &apply_ctx, want, Some(&have), &|_| {}).await;
    let writes = clients.calls.writes();
    assert!(
        writes.is_empty(),
        "{address}: converge with have == want must send no write, sent {writes:?}"
    );
    assert!(
        converged.is_ok(),
        "{address}: converge with nothing to do failed: {converged:?}"
    );
    sent_by.converge = sent(&clients);
    sent_by
}

#[tokio::test]
async fn every_kind_keeps_the_contract_and_its_grants_cover_its_calls() {
    let (stack, artifacts) = the_stack();
    let desired = super::desired_all(&stack, &artifacts);
    let mut rows: BTreeSet<(Kind, String, String)> = BTreeSet::new();
    let mut uncovered = Vec::new();
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for want in &desired {
        *by_kind.entry(want.address.kind).or_default() += 1;
        let kind = want.address.kind;
        let granted: Vec<&'static str> = kind
            .deployer_grants(&stack)
            .into_iter()
            .flat_map(|g| g.actions)
            .collect();
        let sent = exercise(&stack, &artifacts, want).await;
        for call in sent.read.iter().chain(&sent.remove).chain(&sent.converge) {
            let action = iam_action(call);
            if !granted.iter().any(|g| allows(g, &action)) {
                uncovered.push(format!("{}: {call} needs {action}", want.address));
            }
            rows.insert((kind, call.clone(), action));
        }
    }
    let missing: Vec<&Kind> = Kind::ALL
        .iter()
        .filter(|k| !by_kind.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "the shipped stack has no resource of {missing:?}: the contract is not checked for them"
    );
    assert!(
        uncovered.is_empty(),
        "operations the kinds send that their deployer grants do not allow:\n{}",
        uncovered.join("\n")
    );
    let table: Vec<String> = rows
        .iter()
        .map(|(kind, call, action)| format!("{:<14} {call:<50} {action}", kind.as_str()))
        .collect();
    insta::assert_snapshot!(table.join("\n"));
}
