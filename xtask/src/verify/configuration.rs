//! The configuration checks, read with the deployer's credentials: buckets private,
//! encrypted and versioned, their SSM parameters, the trigger, the function's role (its exact
//! inline policy; it cannot write to the source bucket), its log group's retention and where
//! its failed events go.

use super::*;
use crate::resources::bucket::BucketProps;
use crate::resources::invoke_config::InvokeConfigProps;
use crate::resources::log_group::LogGroupProps;
use crate::resources::notification::{Entry, NotificationProps};
use crate::resources::props::TypedProps;

pub(super) async fn configuration(deployed: &Deployed<'_>) -> Vec<Row> {
    let (source, destination, trigger, role_policy, role_probe, log_group, failed_events) = tokio::join!(
        bucket_rows(deployed, deployed.source),
        bucket_rows(deployed, deployed.destination),
        trigger_row(deployed),
        role_policy_row(deployed),
        role_cannot_write_source(deployed),
        log_group_row(deployed),
        failed_events_row(deployed),
    );
    let mut rows = source;
    rows.extend(destination);
    rows.extend([trigger, role_policy, role_probe, log_group, failed_events]);
    rows
}

/// The function's log group exists, with the stack's retention (logs not kept for ever).
async fn log_group_row(deployed: &Deployed<'_>) -> Row {
    let function = deployed.function;
    let check = format!("{} function: log retention", function.logical);
    let read = resources::log_group::read(deployed.clients, &deployed.ctx, &function.log_group)
        .await
        .and_then(|group| group.map(|g| LogGroupProps::of(&g.props)).transpose());
    match read {
        Ok(Some(group)) => {
            let days = group.retention_days;
            if days == Some(function.log_retention_days) {
                Row::pass(
                    check,
                    format!(
                        "{} keeps lines {} days",
                        function.log_group, function.log_retention_days
                    ),
                )
            } else {
                Row::fail(
                    check,
                    format!(
                        "{} keeps lines {}, the stack says {} days",
                        function.log_group,
                        days.map_or_else(|| "for ever".to_owned(), |d| format!("{d} days")),
                        function.log_retention_days
                    ),
                )
            }
        }
        Ok(None) => Row::fail(check, format!("{} does not exist", function.log_group)),
        Err(err) => Row::fail(check, format!("{err:#}")),
    }
}

/// An event that fails every try goes to the stack's failures queue, not nowhere.
async fn failed_events_row(deployed: &Deployed<'_>) -> Row {
    let function = deployed.function;
    let check = format!("{} function: failed events kept", function.logical);
    let Some(queue) = deployed.stack.failure_queue(function) else {
        return Row::fail(
            check,
            "no `on_failure` queue: Lambda drops an event after its retries",
        );
    };
    let read = resources::invoke_config::read(deployed.clients, &function.name)
        .await
        .and_then(|config| config.map(|c| InvokeConfigProps::of(&c.props)).transpose());
    match read {
        Ok(Some(config)) => {
            let destination = config.on_failure.as_deref();
            if destination == Some(queue.arn.as_str()) {
                Row::pass(
                    check,
                    format!(
                        "after {} retries, to queue {}",
                        config.retry_attempts, queue.name
                    ),
                )
            } else {
                Row::fail(
                    check,
                    format!(
                        "failed events go to {}, not to queue {}",
                        destination.unwrap_or("nowhere"),
                        queue.name
                    ),
                )
            }
        }
        Ok(None) => Row::fail(
            check,
            "no asynchronous invocation settings: failed events are dropped",
        ),
        Err(err) => Row::fail(check, format!("{err:#}")),
    }
}

/// Private, encrypted, versioned, and named by an SSM parameter.
async fn bucket_rows(deployed: &Deployed<'_>, bucket: &Bucket) -> Vec<Row> {
    let check = |what: &str| format!("{} bucket: {what}", bucket.logical);
    let mut rows =
        match resources::bucket::read(deployed.clients, &deployed.ctx, &bucket.name).await {
            Ok(Some(observed)) => {
                let props = match BucketProps::of(&observed.props) {
                    Ok(props) => props.protection,
                    Err(err) => return vec![Row::fail(check("readable"), format!("{err:#}"))],
                };
                let off = props.public_access_block.off();
                let private = if off.is_empty() {
                    Row::pass(
                        check("private"),
                        format!("{}: Block Public Access, all four settings on", bucket.name),
                    )
                } else {
                    Row::fail(
                        check("private"),
                        format!(
                            "{}: Block Public Access off: {}",
                            bucket.name,
                            off.join(", ")
                        ),
                    )
                };
                let encrypted = match &props.encryption {
                    Some(algorithm) => Row::pass(
                        check("encrypted"),
                        format!("default encryption {algorithm}"),
                    ),
                    None => Row::fail(check("encrypted"), "no default encryption"),
                };
                let versioned = if props.versioning {
                    Row::pass(check("versioned"), "versioning enabled")
                } else {
                    Row::fail(check("versioned"), "versioning is not enabled")
                };
                vec![private, encrypted, versioned]
            }
            Ok(None) => vec![Row::fail(
                check("exists"),
                format!(
                    "{} does not exist: deploy first (`cargo xtask deploy --env {}`)",
                    bucket.name, deployed.stack.env
                ),
            )],
            Err(err) => vec![Row::fail(check("readable"), format!("{err:#}"))],
        };
    rows.push(bucket_parameter_row(deployed, bucket).await);
    rows
}

/// Other tools find the buckets through SSM: some parameter of the stack must hold the name.
async fn bucket_parameter_row(deployed: &Deployed<'_>, bucket: &Bucket) -> Row {
    let check = format!("{} bucket: SSM parameter", bucket.logical);
    let declared: Vec<_> = deployed
        .stack
        .parameters
        .values()
        .filter(|p| p.value == bucket.name)
        .collect();
    if declared.is_empty() {
        return Row::fail(
            check,
            "no SSM parameter of the stack holds the bucket's name",
        );
    }
    let mut problems = Vec::new();
    for parameter in &declared {
        match ssm_value(deployed.clients, &parameter.name, parameter.secure).await {
            Ok(value) if value == bucket.name => {}
            // Bucket names are no secret: say what is there instead.
            Ok(value) => problems.push(format!("`{}` holds `{value}`", parameter.name)),
            Err(err) => problems.push(err),
        }
    }
    let names: Vec<String> = declared.iter().map(|p| format!("`{}`", p.name)).collect();
    Row::from_problems(
        check,
        problems,
        format!("{} = {}", names.join(", "), bucket.name),
    )
}

/// The bucket notification invokes the function for what the stack declares.
async fn trigger_row(deployed: &Deployed<'_>) -> Row {
    let check = format!("{} bucket: trigger", deployed.source.logical);
    // Compared without ids: the CloudFormation engine cannot choose them.
    let without_id = |entries: &[Entry]| -> Vec<Entry> {
        let mut entries: Vec<Entry> = entries
            .iter()
            .cloned()
            .map(|e| Entry { id: None, ..e })
            .collect();
        entries.sort_by_key(Entry::sort_key);
        entries
    };
    let want: Vec<Entry> = resources::notification::desired(deployed.stack)
        .into_iter()
        .find(|d| d.physical == deployed.source.name)
        .and_then(|d| NotificationProps::of(&d.props).ok())
        .map(|p| p.entries)
        .unwrap_or_default();
    let want = without_id(&want);
    let read =
        resources::notification::function_entries(deployed.clients, &deployed.source.name, false)
            .await;
    let read = read.map(|found| {
        found
            .filter(|entries| !entries.is_empty())
            .map(|entries| without_id(&entries))
    });
    match read {
        Ok(Some(have)) if want.iter().all(|w| have.contains(w)) => {
            let suffixes = if deployed.trigger.suffixes.is_empty() {
                String::new()
            } else {
                format!(" ending {}", deployed.trigger.suffixes.join(" "))
            };
            Row::pass(
                check,
                format!(
                    "`{}`…{suffixes} → {}",
                    deployed.trigger.prefix, deployed.function.name
                ),
            )
        }
        Ok(Some(_)) => Row::fail(
            check,
            "the notification configuration differs from the stack (`cargo xtask plan` shows how)",
        ),
        Ok(None) => Row::fail(
            check,
            format!(
                "no notification of {} invokes a function",
                deployed.source.name
            ),
        ),
        Err(err) => Row::fail(check, format!("{err:#}")),
    }
}

/// The role holds exactly the declared inline policy: no other inline or managed policy.
async fn role_policy_row(deployed: &Deployed<'_>) -> Row {
    let check = format!("{} role: declared policy only", deployed.function.logical);
    let iam = &deployed.clients.iam;
    let role = deployed.function.role_name.as_str();
    let (inline, attached, document) = tokio::join!(
        iam.list_role_policies().role_name(role).send(),
        iam.list_attached_role_policies().role_name(role).send(),
        iam.get_role_policy()
            .role_name(role)
            .policy_name(resources::role::INLINE_POLICY_NAME)
            .send(),
    );
    let mut problems = Vec::new();
    match inline {
        Ok(out) => {
            let others: Vec<&str> = out
                .policy_names()
                .iter()
                .map(String::as_str)
                .filter(|name| *name != resources::role::INLINE_POLICY_NAME)
                .collect();
            if !others.is_empty() {
                problems.push(format!("other inline policies: {}", others.join(", ")));
            }
        }
        Err(err) => problems.push(format!("ListRolePolicies: {}", describe(&err))),
    }
    match attached {
        Ok(out) => {
            let arns: Vec<&str> = out
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .collect();
            if !arns.is_empty() {
                problems.push(format!("managed policies attached: {}", arns.join(", ")));
            }
        }
        Err(err) => problems.push(format!("ListAttachedRolePolicies: {}", describe(&err))),
    }
    let declared = normalize_policy(&resources::statements_document(&deployed.function.allow));
    match document {
        Ok(out) => match parse_policy(out.policy_document()) {
            Ok(doc) if normalize_policy(&doc) == declared => {}
            Ok(_) => problems.push(format!(
                "inline policy `{}` differs from the stack's statements",
                resources::role::INLINE_POLICY_NAME
            )),
            Err(err) => problems.push(format!("unreadable inline policy: {err}")),
        },
        Err(err) => problems.push(format!(
            "GetRolePolicy `{}`: {}",
            resources::role::INLINE_POLICY_NAME,
            describe(&err)
        )),
    }
    Row::from_problems(
        check,
        problems,
        format!(
            "{}: inline policy `{}` = the {} declared statements, nothing else",
            role,
            resources::role::INLINE_POLICY_NAME,
            deployed.function.allow.len()
        ),
    )
}

/// Writes into A that the role must not be able to make.
const FORBIDDEN_IN_SOURCE: [&str; 2] = ["s3:PutObject", "s3:DeleteObject"];

/// The role cannot write into the bucket it reads from (a loop, or tampering with uploads).
/// Asked of IAM's policy simulator, which sees every policy of the role; a read the stack
/// grants serves as control that the simulator evaluates rather than denies everything. When
/// the simulator does not answer (or fails the control), the role's inline policy is
/// evaluated here (the row above checks that it is the only one).
async fn role_cannot_write_source(deployed: &Deployed<'_>) -> Row {
    let check = format!(
        "{} role: cannot write {} bucket",
        deployed.function.logical, deployed.source.logical
    );
    let object = format!("{}/x", deployed.source.arn);
    let control = "s3:GetObject";
    let control_expected = policy_allows(
        &resources::statements_document(&deployed.function.allow),
        control,
        &object,
    );
    let verdict = |allowed: Vec<&str>, how: String| {
        if allowed.is_empty() {
            Row::pass(
                check.clone(),
                format!(
                    "{} on {object}: denied ({how})",
                    FORBIDDEN_IN_SOURCE.join(", ")
                ),
            )
        } else {
            Row::fail(
                check.clone(),
                format!("allowed on {object}: {} ({how})", allowed.join(", ")),
            )
        }
    };

    let why_not_simulated = match simulate(deployed, &object, control).await {
        Ok(decisions) if decisions.get(control) == Some(&control_expected) => {
            let allowed = FORBIDDEN_IN_SOURCE
                .into_iter()
                .filter(|action| decisions.get(*action) != Some(&false))
                .collect();
            return verdict(
                allowed,
                format!(
                    "IAM SimulatePrincipalPolicy; control {control}: {}",
                    if control_expected {
                        "allowed"
                    } else {
                        "denied"
                    }
                ),
            );
        }
        Ok(_) => format!("it answered {control} unlike the declared statements"),
        Err(err) => err,
    };
    let document = deployed
        .clients
        .iam
        .get_role_policy()
        .role_name(&deployed.function.role_name)
        .policy_name(resources::role::INLINE_POLICY_NAME)
        .send()
        .await;
    match document {
        Ok(out) => match parse_policy(out.policy_document()) {
            Ok(doc) => {
                let allowed = FORBIDDEN_IN_SOURCE
                    .into_iter()
                    .filter(|action| policy_allows(&doc, action, &object))
                    .collect();
                verdict(
                    allowed,
                    format!(
                        "evaluated from inline policy `{}`; SimulatePrincipalPolicy: {why_not_simulated}",
                        resources::role::INLINE_POLICY_NAME
                    ),
                )
            }
            Err(err) => Row::fail(check, format!("unreadable inline policy: {err}")),
        },
        Err(err) => Row::fail(
            check,
            format!(
                "GetRolePolicy: {}; SimulatePrincipalPolicy: {why_not_simulated}",
                describe(&err)
            ),
        ),
    }
}

/// IAM's decision (allowed or not) for the forbidden actions and `control` on `resource`.
async fn simulate(
    deployed: &Deployed<'_>,
    resource: &str,
    control: &str,
) -> Result<BTreeMap<String, bool>, String> {
    let mut request = deployed
        .clients
        .iam
        .simulate_principal_policy()
        .policy_source_arn(&deployed.function.role_arn)
        .resource_arns(resource)
        .action_names(control);
    for action in FORBIDDEN_IN_SOURCE {
        request = request.action_names(action);
    }
    let out = request.send().await.map_err(|e| describe(&e))?;
    let decisions: BTreeMap<String, bool> = out
        .evaluation_results()
        .iter()
        .map(|r| {
            (
                r.eval_action_name().to_owned(),
                *r.eval_decision() == aws_sdk_iam::types::PolicyEvaluationDecisionType::Allowed,
            )
        })
        .collect();
    match FORBIDDEN_IN_SOURCE
        .into_iter()
        .chain([control])
        .find(|a| !decisions.contains_key(*a))
    {
        Some(missing) => Err(format!("no decision for {missing}")),
        None => Ok(decisions),
    }
}
