//! The `log-group` kind: each function's CloudWatch Logs group, `/aws/lambda/<function>`,
//! with the stack's retention (`functions.<name>.log_retention_days`) and tags.
//!
//! Why the deployer makes it: left to Lambda, the group is created on the function's first
//! invocation with no retention (its logs are kept, and billed, for ever) and outside the
//! stack, so `destroy` would leave it behind. Made before the function (the function depends
//! on it), deleted after it (while the function exists, its next invocation would create the
//! group again). The function's role only needs to write to it: `logs:CreateLogStream` and
//! `logs:PutLogEvents` on `…:log-group:/aws/lambda/<function>:*`.
//!
//! Adoption: a group of the function's name with none of stripstack's tags is the one Lambda
//! made for this function (a stack deployed before this kind existed, or a function that
//! logged before its group was made): it is taken over. One tagged for another stack, env or
//! region is refused.
//!
//! Concurrency: while the function runs, Lambda may be creating the same group; CloudWatch
//! Logs then answers `OperationAbortedException` ("A conflicting operation is currently in
//! progress against this resource. Please try again.") to CreateLogGroup or
//! PutRetentionPolicy (aws-cdk issues 15709 and 17546, terraform-aws-notify-slack issue 60).
//! Those calls are repeated, bounded and shown, for that error only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cloudformation::{always, tag_list, CheckovSkip, Synthesis};
use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::{changed, TypedProps};
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// The `log-group` kind.
pub(crate) struct LogGroup;

/// A log group's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LogGroupProps {
    /// Days lines are kept; `None` (`null`): for ever.
    pub retention_days: Option<u32>,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for LogGroupProps {}

/// A log group's ARN as CloudWatch Logs' tagging calls name it (no `:*`).
fn arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:logs:{region}:{account}:log-group:{name}")
}

fn ctx_arn(ctx: &ReadCtx, name: &str) -> String {
    arn(
        crate::stack::partition(&ctx.region),
        &ctx.region,
        &ctx.account,
        name,
    )
}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .functions
        .values()
        .map(|function| Desired {
            address: Address::new(Kind::LogGroup, &function.logical),
            physical: function.log_group.clone(),
            props: LogGroupProps {
                retention_days: Some(function.log_retention_days),
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: Vec::new(),
            retain: false,
        })
        .collect()
}

pub async fn read(
    clients: &Clients,
    ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    // DescribeLogGroups filters by prefix only: `/aws/lambda/f` also lists `/aws/lambda/f2`.
    let mut pages = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .into_paginator()
        .send();
    let mut retention = None;
    let mut found = false;
    while let Some(page) = pages.next().await {
        let page =
            page.with_aws_context(|| format!("while reading CloudWatch Logs group `{name}`"))?;
        if let Some(group) = page
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            retention = group.retention_in_days();
            found = true;
            break;
        }
    }
    if !found {
        return Ok(None);
    }
    let tags = clients
        .logs
        .list_tags_for_resource()
        .resource_arn(ctx_arn(ctx, name))
        .send()
        .await
        .with_aws_context(|| format!("while reading the tags of log group `{name}`"))?;
    let tags: BTreeMap<String, String> = tags
        .tags()
        .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: LogGroupProps {
            retention_days: retention.and_then(|days| u32::try_from(days).ok()),
            tags,
        }
        .into_props(),
    }))
}

/// What this kind waits out: another operation on the same group (Lambda creating it).
const CONFLICT: &str = "a conflicting CloudWatch Logs operation to finish";

fn is_conflict(err: &AwsError) -> bool {
    err.is("OperationAbortedException")
}

/// Creates the group when `have` is `None` (finding it already there is fine: Lambda, or an
/// interrupted run, made it), then brings its retention and the stack's tags to `want`.
pub async fn converge(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let props = LogGroupProps::of(&want.props)?;
    let mut have = have.cloned();
    if have.is_none() {
        let tags = &props.tags;
        let created = until_propagated(CONFLICT, on_wait, is_conflict, || async {
            clients
                .logs
                .create_log_group()
                .log_group_name(name)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
                .with_aws_context(|| format!("while creating log group `{name}`"))
                .map_err(anyhow::Error::from)
        })
        .await;
        match created {
            Ok(_) => {
                have = Some(Observed {
                    physical: name.to_owned(),
                    props: LogGroupProps {
                        retention_days: None,
                        ..props.clone()
                    }
                    .into_props(),
                });
            }
            Err(err)
                if AwsError::find(&err).is_some_and(|e| e.is("ResourceAlreadyExistsException")) =>
            {
                have = read(clients, ctx, name).await?;
                if let Some(found) = &have {
                    check_ours((&ctx.stack, &ctx.env, &ctx.region), want, found)?;
                }
            }
            Err(err) => return Err(err),
        }
    }
    let retention = props
        .retention_days
        .and_then(|days| i32::try_from(days).ok());
    let observed = have
        .as_ref()
        .map(|h| LogGroupProps::of(&h.props))
        .transpose()?;
    if changed(
        &props.retention_days,
        observed.as_ref().map(|h| &h.retention_days),
    ) {
        until_propagated(CONFLICT, on_wait, is_conflict, || async {
            match retention {
                Some(days) => clients
                    .logs
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(days)
                    .send()
                    .await
                    .map(|_| ())
                    .with_aws_context(|| {
                        format!("while setting the retention of log group `{name}`")
                    }),
                None => clients
                    .logs
                    .delete_retention_policy()
                    .log_group_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .with_aws_context(|| {
                        format!("while removing the retention of log group `{name}`")
                    }),
            }
            .map_err(anyhow::Error::from)
        })
        .await?;
    }
    let tags = super::tags::changes(&want.props, have.as_ref().map(|h| &h.props));
    let arn = ctx_arn(ctx, name);
    if !tags.remove.is_empty() {
        clients
            .logs
            .untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging log group `{name}`"))?;
    }
    if !tags.set.is_empty() {
        clients
            .logs
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags.set.into_iter().collect()))
            .send()
            .await
            .with_aws_context(|| format!("while tagging log group `{name}`"))?;
    }
    Ok(())
}

/// The group Lambda made for our function carries none of stripstack's tags: ours to take.
/// One tagged by stripstack must be tagged for this `(stack, env, region)`.
fn check_ours(
    (stack, env, region): (&str, &str, &str),
    want: &Desired,
    have: &Observed,
) -> anyhow::Result<()> {
    let tags = LogGroupProps::of(&have.props)?.tags;
    if ["stack", "env", "region"]
        .iter()
        .all(|key| !tags.contains_key(*key))
    {
        return Ok(());
    }
    super::tags::check_ours(
        "CloudWatch Logs group",
        &want.physical,
        &tags,
        stack,
        env,
        Some(region),
    )
}

/// One line of a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEvent {
    /// When it was logged, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub message: String,
    /// CloudWatch's id of the event (what tells a line seen twice by overlapping polls);
    /// `None` where the service gives none (the emulator).
    pub id: Option<String>,
    pub stream: Option<String>,
}

/// The lines of group `name` logged at or after `start_ms`, oldest first, following every
/// page (a page may be empty while more follow: only the absence of a next token ends it).
/// A group that does not exist yet (the function never ran) has no lines.
pub(crate) async fn events(
    clients: &Clients,
    name: &str,
    start_ms: u64,
) -> anyhow::Result<Vec<LogEvent>> {
    let mut pages = clients
        .logs
        .filter_log_events()
        .log_group_name(name)
        .start_time(i64::try_from(start_ms).unwrap_or(i64::MAX))
        .into_paginator()
        .send();
    let mut lines = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page.with_aws_context(|| format!("while reading log group `{name}`")) {
            Ok(page) => page,
            Err(err) if err.is("ResourceNotFoundException") => return Ok(Vec::new()),
            Err(err) => return Err(err.into()),
        };
        for event in page.events() {
            lines.push(LogEvent {
                timestamp_ms: event
                    .timestamp()
                    .and_then(|t| u64::try_from(t).ok())
                    .unwrap_or_default(),
                message: event.message().unwrap_or_default().trim_end().to_owned(),
                id: event.event_id().map(str::to_owned),
                stream: event.log_stream_name().map(str::to_owned),
            });
        }
    }
    lines.sort_by_key(|l| l.timestamp_ms);
    Ok(lines)
}

pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    match clients
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting log group `{name}`")).into())
        }
    }
}

impl ResourceKind for LogGroup {
    const NAME: &'static str = "log-group";
    const SERVICE: &'static str = "logs";
    // While the function exists, its next invocation would make the group again.
    const DELETED_AFTER: &'static [Kind] = &[Kind::Function];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::Logs::LogGroup", "LogGroup"));
    const CHECKOV_SKIPS: &'static [CheckovSkip] = &[CheckovSkip {
        id: "CKV_AWS_158",
        reason: "CloudWatch Logs encrypts every log group at rest; the check wants a customer \
                 managed KMS key (KmsKeyId), whose key policy must let the logs service use it. \
                 The function's lines hold object keys, sizes, timings and error reasons, never \
                 picture content or credentials.",
        applies: always,
    }];
    const TAGGED: bool = true;

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let props = LogGroupProps {
            retention_days: p["RetentionInDays"]
                .as_u64()
                .and_then(|days| u32::try_from(days).ok()),
            tags: super::cloudformation::tag_map(p),
        }
        .into_props();
        let name = p["LogGroupName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    fn cloudformation_properties(want: &Desired, _synthesis: &mut Synthesis<'_>) -> Option<Value> {
        let props = LogGroupProps::of(&want.props).ok()?;
        Some(json!({
            "LogGroupName": want.physical,
            "RetentionInDays": props.retention_days,
            "Tags": tag_list(&props.tags),
        }))
    }

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let partition = crate::stack::partition(&stack.region);
        let groups: Vec<String> = stack
            .functions
            .values()
            .flat_map(|f| {
                let group = arn(partition, &stack.region, &stack.account, &f.log_group);
                // Creating, deleting and retention name the group with `:*`; tagging
                // without.
                [format!("{group}:*"), group]
            })
            .collect();
        let any_group = if stack.functions.is_empty() {
            Vec::new()
        } else {
            vec![arn(partition, &stack.region, &stack.account, "*")]
        };
        vec![
            Grant::new(
                "FunctionLogGroups",
                &[
                    "logs:CreateLogGroup",
                    "logs:DeleteLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:DeleteRetentionPolicy",
                    "logs:TagResource",
                    "logs:UntagResource",
                    "logs:ListTagsForResource",
                ],
                groups,
            ),
            // DescribeLogGroups lists by prefix: it is authorized on every group.
            Grant::new("FindLogGroups", &["logs:DescribeLogGroups"], any_group),
        ]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    fn check_adoption(
        stack: &ResolvedStack,
        want: &Desired,
        have: &Observed,
    ) -> anyhow::Result<()> {
        check_ours((&stack.stack, &stack.env, &stack.region), want, have)
    }

    async fn read(
        clients: &Clients,
        ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
    ) -> anyhow::Result<Option<Observed>> {
        read(clients, ctx, physical).await
    }

    async fn converge(
        clients: &Clients,
        ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        converge(clients, &ctx.read, want, have, on_wait).await
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        delete(clients, physical).await?;
        Ok(Removal::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_cloudwatchlogs::operation as op;
    use aws_sdk_cloudwatchlogs::types::LogGroup as Group;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock::{self, assert_all_used, json_error};
    use crate::resources::fixtures::{dev_ctx, dev_stack};

    fn the_group() -> Desired {
        desired(&dev_stack())
            .into_iter()
            .next()
            .expect("a log group")
    }

    /// What Lambda made for the function: the group, no retention, no tags.
    fn lambdas_group(name: String) -> (aws_smithy_mocks::Rule, aws_smithy_mocks::Rule) {
        let described =
            mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(move || {
                op::describe_log_groups::DescribeLogGroupsOutput::builder()
                    .log_groups(Group::builder().log_group_name(&name).build())
                    .build()
            });
        let tags =
            mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource).then_output(|| {
                op::list_tags_for_resource::ListTagsForResourceOutput::builder().build()
            });
        (described, tags)
    }

    /// Lambda creating the group at the same moment (the function ran during the deploy):
    /// CreateLogGroup meets `OperationAbortedException`, is repeated and shown, then finds
    /// the group Lambda made, takes it over and gives it the stack's retention and tags.
    #[tokio::test]
    async fn a_group_lambda_is_creating_is_waited_for_then_taken_over() {
        let want = the_group();
        let (status, body) = json_error("OperationAbortedException");
        let create = mock!(aws_sdk_cloudwatchlogs::Client::create_log_group)
            .sequence()
            .http_status(status, body)
            .http_status(400, json_error("ResourceAlreadyExistsException").1)
            .build();
        let (described, listed) = lambdas_group(want.physical.clone());
        let retention = mock!(aws_sdk_cloudwatchlogs::Client::put_retention_policy)
            .match_requests(|r| r.retention_in_days() == Some(30))
            .then_output(|| op::put_retention_policy::PutRetentionPolicyOutput::builder().build());
        let tagged = mock!(aws_sdk_cloudwatchlogs::Client::tag_resource)
            .match_requests(|r| {
                r.tags()
                    .is_some_and(|t| t.get("stack").map(String::as_str) == Some("exif-pipeline"))
            })
            .then_output(|| op::tag_resource::TagResourceOutput::builder().build());
        let clients = mock::logs_clients(&[&create, &described, &listed, &retention, &tagged]);
        let waits = Mutex::new(Vec::new());
        let on_wait = |line: &str| waits.lock().unwrap().push(line.to_owned());
        converge(&clients, &dev_ctx(), &want, None, &on_wait)
            .await
            .expect("converged");
        assert_eq!(create.num_calls(), 2, "the conflict, then the group found");
        assert_all_used(&[&described, &listed, &retention, &tagged]);
        let waits = waits.into_inner().unwrap();
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert!(
            waits[0].contains("conflicting CloudWatch Logs operation")
                && waits[0].contains("OperationAbortedException"),
            "{waits:?}"
        );
    }

    /// A group of that name tagged for another stack is not the function's: refused, named.
    #[tokio::test]
    async fn a_group_tagged_for_another_stack_is_not_taken_over() {
        let want = the_group();
        let create = mock!(aws_sdk_cloudwatchlogs::Client::create_log_group)
            .sequence()
            .http_status(400, json_error("ResourceAlreadyExistsException").1)
            .build();
        let (described, _) = lambdas_group(want.physical.clone());
        let listed =
            mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource).then_output(|| {
                op::list_tags_for_resource::ListTagsForResourceOutput::builder()
                    .tags("stack", "someone-else")
                    .tags("env", "dev")
                    .build()
            });
        let clients = mock::logs_clients(&[&create, &described, &listed]);
        let err = converge(&clients, &dev_ctx(), &want, None, &|_| {})
            .await
            .expect_err("not ours");
        assert!(format!("{err:#}").contains("someone-else"), "{err:#}");
        assert_all_used(&[&create, &described, &listed]);
    }

    /// AccessDenied is not a conflict: it stops at once, nothing waited out.
    #[tokio::test]
    async fn access_denied_is_not_waited_out() {
        let want = the_group();
        let create = mock!(aws_sdk_cloudwatchlogs::Client::create_log_group)
            .sequence()
            .http_status(400, json_error("AccessDeniedException").1)
            .build();
        let clients = mock::logs_clients(&[&create]);
        let waited = Mutex::new(0);
        let err = converge(&clients, &dev_ctx(), &want, None, &|_| {
            *waited.lock().unwrap() += 1
        })
        .await
        .expect_err("refused");
        assert!(
            format!("{err:#}").contains("AccessDeniedException"),
            "{err:#}"
        );
        assert_eq!(*waited.lock().unwrap(), 0);
    }
}
