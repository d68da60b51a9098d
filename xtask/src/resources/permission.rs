//! The resource-policy statement that lets S3 invoke a function for one bucket, scoped
//! with both `SourceArn` and `SourceAccount` (without the account, a bucket re-created
//! under the same name in another account could invoke us).

use super::cloudformation::Synthesis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::TypedProps;
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};

/// A permission statement's properties, as the plan compares them. Each is what the function's
/// resource policy holds (a string for ours; a statement edited by hand may hold a list, or
/// nothing: `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PermissionProps {
    /// `lambda:InvokeFunction`.
    pub action: Value,
    /// The service principal, `s3.amazonaws.com`.
    pub principal: Value,
    /// The bucket's ARN (`ArnLike` condition).
    pub source_arn: Value,
    /// The bucket owner's account (`StringEquals` condition).
    pub source_account: Value,
}

impl TypedProps for PermissionProps {}
use crate::aws::{error_code, AwsError, Clients};
use crate::stack::resolved::ResolvedStack;

/// Statement id for the permission of `bucket` (logical name).
pub fn statement_id(bucket: &str) -> String {
    format!("stripstack-s3-{bucket}")
}

/// The physical identity: `function-name/statement-id`.
pub fn physical(function: &str, sid: &str) -> String {
    format!("{function}/{sid}")
}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    let mut out = Vec::new();
    for function in stack.functions.values() {
        let mut buckets: Vec<&str> = function
            .triggers
            .iter()
            .map(|t| t.bucket.as_str())
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        for logical in buckets {
            let Some(bucket) = stack.buckets.get(logical) else {
                continue;
            };
            out.push(Desired {
                address: Address::new(Kind::Permission, format!("{}.{logical}", function.logical)),
                physical: physical(&function.name, &statement_id(logical)),
                props: PermissionProps {
                    action: json!("lambda:InvokeFunction"),
                    principal: json!("s3.amazonaws.com"),
                    source_arn: json!(bucket.arn),
                    source_account: json!(stack.account),
                }
                .into_props(),
                depends_on: vec![Address::new(Kind::Function, &function.logical)],
                retain: false,
            });
        }
    }
    out
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    physical: &str,
) -> anyhow::Result<Option<Observed>> {
    let Some((function, sid)) = physical.split_once('/') else {
        anyhow::bail!("malformed permission id `{physical}` (expected FUNCTION/STATEMENT-ID)");
    };
    let policy = match clients
        .lambda
        .get_policy()
        .function_name(function)
        .send()
        .await
    {
        Ok(out) => out.policy.unwrap_or_default(),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => return Ok(None),
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while reading the resource policy of Lambda function `{function}`"),
            )
            .into())
        }
    };
    let policy: Value = serde_json::from_str(&policy).map_err(|e| {
        anyhow::anyhow!("Lambda function `{function}` has an unreadable resource policy: {e}")
    })?;
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => Vec::new(),
    };
    let Some(statement) = statements.iter().find(|s| s["Sid"] == json!(sid)) else {
        return Ok(None);
    };
    let principal = match &statement["Principal"] {
        Value::String(p) => json!(p),
        other => other["Service"].clone(),
    };
    let condition = &statement["Condition"];
    Ok(Some(Observed {
        physical: physical.to_owned(),
        props: PermissionProps {
            action: statement["Action"].clone(),
            principal,
            source_arn: condition["ArnLike"]["AWS:SourceArn"].clone(),
            source_account: condition["StringEquals"]["AWS:SourceAccount"].clone(),
        }
        .into_props(),
    }))
}

pub async fn create(clients: &Clients, want: &Desired) -> anyhow::Result<()> {
    let Some((function, sid)) = want.physical.split_once('/') else {
        anyhow::bail!("malformed permission id `{}`", want.physical);
    };
    let props = PermissionProps::of(&want.props)?;
    let text = |value: &Value| value.as_str().map(str::to_owned);
    match clients
        .lambda
        .add_permission()
        .function_name(function)
        .statement_id(sid)
        .set_action(text(&props.action))
        .set_principal(text(&props.principal))
        .set_source_arn(text(&props.source_arn))
        .set_source_account(text(&props.source_account))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => Err(AwsError::from_sdk(
            err,
            format!("while allowing S3 to invoke `{function}` ({sid})"),
        )
        .into()),
    }
}

/// A permission statement cannot be edited: remove and add again.
pub async fn update(clients: &Clients, want: &Desired) -> anyhow::Result<()> {
    delete(clients, &want.physical).await?;
    create(clients, want).await
}

pub async fn delete(clients: &Clients, physical: &str) -> anyhow::Result<()> {
    let Some((function, sid)) = physical.split_once('/') else {
        anyhow::bail!("malformed permission id `{physical}`");
    };
    match clients
        .lambda
        .remove_permission()
        .function_name(function)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(()),
        Err(err) => Err(AwsError::from_sdk(
            err,
            format!("while removing permission `{sid}` from `{function}`"),
        )
        .into()),
    }
}

/// The `permission` kind: the statement that lets S3 invoke a function.
pub(crate) struct Permission;

impl ResourceKind for Permission {
    const NAME: &'static str = "permission";
    const SERVICE: &'static str = "lambda";
    // The trigger needs the permission (S3 validates it when the configuration is written).
    const DELETED_AFTER: &'static [Kind] = &[Kind::Notification];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::Lambda::Permission", "Permission"));

    /// One statement of the function's resource policy; its address is `function.bucket`.
    fn access(address: &Address, props: &super::Props) -> Vec<super::access::Access> {
        use super::access::{or_unchanged, Access, Statement};
        if props.is_empty() {
            return Vec::new();
        }
        let function = address.name.split('.').next().unwrap_or_default();
        Vec::from([Access::Statement(Statement {
            policy: "function permission",
            effect: "Allow".into(),
            actions: vec![or_unchanged(props.get("action"))],
            resources: vec![Address::new(Kind::Function, function).to_string()],
            principals: vec![props.get("principal").map_or_else(
                || or_unchanged(None),
                |p| format!("Service:{}", or_unchanged(Some(p))),
            )],
            conditions: vec![
                format!(
                    "ArnLike AWS:SourceArn = {}",
                    or_unchanged(props.get("source_arn"))
                ),
                format!(
                    "StringEquals AWS:SourceAccount = {}",
                    or_unchanged(props.get("source_account"))
                ),
            ],
        })])
    }

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let props = PermissionProps {
            action: p["Action"].clone(),
            principal: p["Principal"].clone(),
            source_arn: p["SourceArn"].clone(),
            source_account: p["SourceAccount"].clone(),
        }
        .into_props();
        let name = p["FunctionName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    /// CloudFormation names the statement itself (`<stack>-<LogicalId>-<random>`): the same
    /// function, another statement id.
    #[cfg(test)]
    fn cloudformation_comparable(want: &Desired) -> (String, super::Props) {
        let physical = want
            .physical
            .split_once('/')
            .map_or_else(|| want.physical.clone(), |(f, _)| f.to_owned());
        (physical, want.props.clone())
    }

    fn cloudformation_properties(
        want: &Desired,
        _synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let function_name = want
            .physical
            .split_once('/')
            .map(|(function, _)| function)
            .unwrap_or(&want.physical);
        let props = PermissionProps::of(&want.props).ok()?;
        Some(json!({
            "Action": props.action,
            "FunctionName": function_name,
            "Principal": props.principal,
            // The literal ARN (known from the bucket's name), not a reference to the bucket:
            // the bucket depends on this permission, so a reference would be a cycle.
            "SourceArn": props.source_arn,
            "SourceAccount": props.source_account,
        }))
    }

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        vec![Grant::new(
            "InvokePermissions",
            &[
                "lambda:GetPolicy",
                "lambda:AddPermission",
                "lambda:RemovePermission",
            ],
            stack.functions.values().map(|f| f.arn.clone()).collect(),
        )]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
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
        _ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        _on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        match have {
            None => create(clients, want).await,
            Some(have) if have.props == want.props => Ok(()),
            Some(_) => update(clients, want).await,
        }
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
