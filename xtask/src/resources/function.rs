//! Lambda functions: runtime, handler, architecture, memory, timeout, environment, role and
//! tags. The code hash is compared once the bundle exists (`deploy` builds it).

use super::cloudformation::{prop, tag_list, Synthesis};
use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::{
    Address, ApplyCtx, Artifacts, Desired, Kind, Observed, Props, ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
/// What Lambda reports for a function created without an architecture.
const LAMBDA_DEFAULT_ARCHITECTURE: &str = "x86_64";

pub fn desired(stack: &ResolvedStack, artifacts: &Artifacts) -> Vec<Desired> {
    stack
        .functions
        .values()
        .map(|function| {
            let mut props = Props::new();
            props.insert("runtime".into(), json!(RUNTIME));
            props.insert("handler".into(), json!(HANDLER));
            props.insert("architecture".into(), json!(function.architecture.as_str()));
            props.insert("memory".into(), json!(function.memory));
            props.insert("timeout".into(), json!(function.timeout));
            props.insert("environment".into(), json!(function.environment));
            props.insert("role".into(), json!(function.role_arn));
            props.insert("tags".into(), json!(stack.tags));
            props.insert(
                "reserved_concurrency".into(),
                json!(function.reserved_concurrency),
            );
            if let Some(artifact) = artifacts.get(&function.package) {
                props.insert("code_sha256".into(), json!(artifact.code_sha256));
            }
            Desired {
                address: Address::new(Kind::Function, &function.logical),
                physical: function.name.clone(),
                props,
                // Its log group first: else Lambda makes one, with no retention, on the
                // first invocation.
                depends_on: vec![
                    Address::new(Kind::Role, &function.logical),
                    Address::new(Kind::LogGroup, &function.logical),
                ],
                retain: false,
            }
        })
        .collect()
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let out = match clients
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => return Ok(None),
        Err(err) => {
            return Err(
                AwsError::from_sdk(err, format!("while reading Lambda function `{name}`")).into(),
            )
        }
    };
    let Some(config) = out.configuration() else {
        return Ok(None);
    };
    let environment: serde_json::Map<String, Value> = config
        .environment()
        .and_then(|e| e.variables())
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .unwrap_or_default();
    let tags: serde_json::Map<String, Value> = out
        .tags()
        .map(|tags| tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .unwrap_or_default();
    let mut props = Props::new();
    props.insert(
        "runtime".into(),
        json!(config.runtime().map(|r| r.as_str())),
    );
    props.insert("handler".into(), json!(config.handler()));
    props.insert(
        "architecture".into(),
        json!(config
            .architectures()
            .first()
            .map(|a| a.as_str())
            .unwrap_or(LAMBDA_DEFAULT_ARCHITECTURE)),
    );
    props.insert("memory".into(), json!(config.memory_size()));
    props.insert("timeout".into(), json!(config.timeout()));
    props.insert("environment".into(), Value::Object(environment));
    props.insert("role".into(), json!(config.role()));
    props.insert("tags".into(), Value::Object(tags));
    props.insert("code_sha256".into(), json!(config.code_sha256()));
    props.insert(
        "reserved_concurrency".into(),
        json!(out
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions())),
    );
    Ok(Some(Observed {
        physical: name.to_owned(),
        props,
    }))
}

/// What one synchronous invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// `Unhandled` / `Handled` when the function failed (Lambda's `X-Amz-Function-Error`).
    pub function_error: Option<String>,
    /// The function's response (its error object when it failed).
    pub payload: String,
    /// The end of the function's log for this invocation (at most 4 KB, Lambda's tail).
    pub log_tail: Option<String>,
}

/// Invokes function `name` with `payload` and waits for its answer (`RequestResponse`),
/// with the tail of its log.
pub(crate) async fn invoke(
    clients: &Clients,
    name: &str,
    payload: &Value,
) -> anyhow::Result<Invocation> {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{InvocationType, LogType};
    use base64::Engine as _;
    let out = clients
        .lambda
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::RequestResponse)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .with_aws_context(|| format!("while invoking Lambda function `{name}`"))?;
    let log_tail = out
        .log_result()
        .and_then(|tail| base64::engine::general_purpose::STANDARD.decode(tail).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    Ok(Invocation {
        function_error: out.function_error().map(str::to_owned),
        payload: out
            .payload()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default(),
        log_tail,
    })
}

/// How long a function may take to become Active / finish an update.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn environment(props: &Props) -> aws_sdk_lambda::types::Environment {
    aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(
            super::string_map(props, "environment")
                .into_iter()
                .collect(),
        ))
        .build()
}

/// The declared architecture; code and architecture change together (UpdateFunctionCode).
fn architecture(props: &Props) -> aws_sdk_lambda::types::Architecture {
    aws_sdk_lambda::types::Architecture::from(
        props
            .get("architecture")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(LAMBDA_DEFAULT_ARCHITECTURE),
    )
}

fn as_i32(props: &Props, key: &str) -> Option<i32> {
    props.get(key)?.as_u64().and_then(|v| i32::try_from(v).ok())
}

/// Lambda's answer while a just-created role is not yet visible to it. Lambda has no code of
/// its own for this (it is an `InvalidParameterValueException`, like a truly invalid role), so
/// the message is the signal, as in terraform-provider-aws's Lambda create retry.
fn is_role_not_ready(err: &AwsError) -> bool {
    err.is("InvalidParameterValueException")
        && err
            .message()
            .is_some_and(|m| m.contains("cannot be assumed by Lambda"))
}

/// `on_wait` is told each time creation waits for IAM propagation (for progress output).
pub async fn create(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    artifact: &super::Artifact,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    use aws_sdk_lambda::types as t;
    let name = want.physical.as_str();
    let created = until_propagated(
        "the new IAM role to reach Lambda",
        on_wait,
        is_role_not_ready,
        || async {
            let sent = clients
                .lambda
                .create_function()
                .function_name(name)
                .runtime(t::Runtime::from(RUNTIME))
                .handler(HANDLER)
                .architectures(architecture(&want.props))
                .role(want.props["role"].as_str().unwrap_or_default())
                .set_memory_size(as_i32(&want.props, "memory"))
                .set_timeout(as_i32(&want.props, "timeout"))
                .environment(environment(&want.props))
                .code(
                    t::FunctionCode::builder()
                        .s3_bucket(&artifact.bucket)
                        .s3_key(&artifact.key)
                        .build(),
                )
                .set_tags(Some(
                    super::string_map(&want.props, "tags").into_iter().collect(),
                ))
                .send()
                .await
                .with_aws_context(|| format!("while creating Lambda function `{name}`"));
            match sent {
                Ok(_) => Ok(true),
                // Created by an interrupted run: converged below.
                Err(err) if err.is("ResourceConflictException") => Ok(false),
                Err(err) => Err(err.into()),
            }
        },
    )
    .await?;
    if !created {
        let have = read(clients, ctx, name).await?;
        if let Some(have) = &have {
            super::tags::check_regional(
                "Lambda function",
                (&ctx.stack, &ctx.env, &ctx.region),
                want,
                have,
            )?;
        }
        // Tags others put on it stay: only the keys the stack declares are compared here.
        let have = have.map(|have| super::tags::managed_view(want, have, &Settings::new()));
        return update(clients, ctx, want, have.as_ref(), Some(artifact)).await;
    }
    wait_settled(clients, name).await?;
    set_recursion_terminate(clients, name).await?;
    set_reserved_concurrency(clients, want, None).await
}

/// Reserves the declared concurrency, or returns the function to the account's unreserved
/// pool, when it differs from `have`'s.
async fn set_reserved_concurrency(
    clients: &Clients,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let reserved = as_i32(&want.props, "reserved_concurrency");
    let had = have.and_then(|have| as_i32(&have.props, "reserved_concurrency"));
    if reserved == had {
        return Ok(());
    }
    match reserved {
        Some(executions) => {
            clients
                .lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(executions)
                .send()
                .await
                .with_aws_context(|| {
                    format!("while reserving {executions} concurrent executions for `{name}`")
                })?;
        }
        None => {
            clients
                .lambda
                .delete_function_concurrency()
                .function_name(name)
                .send()
                .await
                .with_aws_context(|| {
                    format!("while returning `{name}` to the unreserved concurrency pool")
                })?;
        }
    }
    Ok(())
}

/// S3 → Lambda → S3 loops are stopped by Lambda itself when detected.
async fn set_recursion_terminate(clients: &Clients, name: &str) -> anyhow::Result<()> {
    clients
        .lambda
        .put_function_recursion_config()
        .function_name(name)
        .recursive_loop(aws_sdk_lambda::types::RecursiveLoop::Terminate)
        .send()
        .await
        .with_aws_context(|| format!("while setting the recursion-loop guard of `{name}`"))?;
    Ok(())
}

/// Waits until the function is `Active` and its last update done: Lambda refuses any change
/// meanwhile (`ResourceConflictException`), and a new function is `Pending` for a while.
pub async fn wait_settled(clients: &Clients, name: &str) -> anyhow::Result<()> {
    use aws_sdk_lambda::client::Waiters as _;
    use aws_smithy_types::error::display::DisplayErrorContext;
    clients
        .lambda
        .wait_until_function_active_v2()
        .function_name(name)
        .wait(SETTLE_TIMEOUT)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "Lambda function `{name}` did not become Active: {}",
                DisplayErrorContext(&e)
            )
        })?;
    clients
        .lambda
        .wait_until_function_updated_v2()
        .function_name(name)
        .wait(SETTLE_TIMEOUT)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the last update of Lambda function `{name}` did not finish: {}",
                DisplayErrorContext(&e)
            )
        })?;
    Ok(())
}

/// `have` holds only the tags the stack manages (`tags::managed_view`).
pub async fn update(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
    artifact: Option<&super::Artifact>,
) -> anyhow::Result<()> {
    use aws_sdk_lambda::types as t;
    let name = want.physical.as_str();
    let config_keys = [
        "runtime",
        "handler",
        "memory",
        "timeout",
        "environment",
        "role",
    ];
    if config_keys.iter().any(|k| super::differs(want, have, k)) {
        // Not only after: an update started by an earlier (interrupted) run may still run.
        wait_settled(clients, name).await?;
        clients
            .lambda
            .update_function_configuration()
            .function_name(name)
            .runtime(t::Runtime::from(RUNTIME))
            .handler(HANDLER)
            .role(want.props["role"].as_str().unwrap_or_default())
            .set_memory_size(as_i32(&want.props, "memory"))
            .set_timeout(as_i32(&want.props, "timeout"))
            .environment(environment(&want.props))
            .send()
            .await
            .with_aws_context(|| format!("while updating the configuration of `{name}`"))?;
        wait_settled(clients, name).await?;
    }
    let code_changed =
        super::differs(want, have, "code_sha256") || super::differs(want, have, "architecture");
    if let (true, Some(artifact)) = (code_changed, artifact) {
        wait_settled(clients, name).await?;
        clients
            .lambda
            .update_function_code()
            .function_name(name)
            .s3_bucket(&artifact.bucket)
            .s3_key(&artifact.key)
            .architectures(architecture(&want.props))
            .send()
            .await
            .with_aws_context(|| format!("while updating the code of `{name}`"))?;
        wait_settled(clients, name).await?;
    }
    set_reserved_concurrency(clients, want, have).await?;
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    let arn = format!(
        "arn:{}:lambda:{}:{}:function:{name}",
        crate::stack::partition(&ctx.region),
        ctx.region,
        ctx.account
    );
    if !tags.remove.is_empty() {
        clients
            .lambda
            .untag_resource()
            .resource(&arn)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging `{name}`"))?;
    }
    if !tags.set.is_empty() {
        clients
            .lambda
            .tag_resource()
            .resource(&arn)
            .set_tags(Some(tags.set.into_iter().collect()))
            .send()
            .await
            .with_aws_context(|| format!("while tagging `{name}`"))?;
    }
    Ok(())
}

pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    match clients
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting Lambda function `{name}`")).into())
        }
    }
}

/// The `function` kind: Lambda functions.
pub(crate) struct Function;

impl ResourceKind for Function {
    const NAME: &'static str = "function";
    const SERVICE: &'static str = "lambda";
    // The invoke permission and the trigger name the function.
    const DELETED_AFTER: &'static [Kind] = &[Kind::Permission, Kind::Notification];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::Lambda::Function", "Function"));

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let mut props = Props::new();
        props.insert("runtime".into(), p["Runtime"].clone());
        props.insert("handler".into(), p["Handler"].clone());
        props.insert("architecture".into(), p["Architectures"][0].clone());
        props.insert("memory".into(), p["MemorySize"].clone());
        props.insert("timeout".into(), p["Timeout"].clone());
        props.insert(
            "environment".into(),
            p["Environment"]["Variables"]
                .as_object()
                .map_or(serde_json::json!({}), |v| serde_json::json!(v)),
        );
        props.insert("role".into(), p["Role"].clone());
        props.insert("tags".into(), super::cloudformation::tags_of(p));
        props.insert(
            "reserved_concurrency".into(),
            p["ReservedConcurrentExecutions"].clone(),
        );
        if let Some(sha) = p["Code"]["S3Key"]
            .as_str()
            .and_then(super::cloudformation::code_sha256_of_key)
        {
            props.insert("code_sha256".into(), serde_json::json!(sha));
        }
        let name = p["FunctionName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    fn cloudformation_properties(
        want: &Desired,
        synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let package = synthesis
            .stack
            .functions
            .get(&want.address.name)
            .map(|f| f.package.clone())
            .unwrap_or_default();
        let code = synthesis.code(&package);
        let p = &want.props;
        let mut props = serde_json::json!({
            "FunctionName": want.physical,
            "Runtime": prop(p, "runtime"),
            "Handler": prop(p, "handler"),
            "Architectures": [prop(p, "architecture")],
            "MemorySize": prop(p, "memory"),
            "Timeout": prop(p, "timeout"),
            "Role": prop(p, "role"),
            "Code": code,
            // What the SDK engine sets after creating the function: S3 → Lambda → S3 loops stop.
            "RecursiveLoop": "Terminate",
            "Tags": tag_list(p),
        });
        if p.get("environment")
            .and_then(serde_json::Value::as_object)
            .is_some_and(|vars| !vars.is_empty())
        {
            props["Environment"] = serde_json::json!({ "Variables": p["environment"] });
        }
        if let Some(executions) = p.get("reserved_concurrency").filter(|v| !v.is_null()) {
            props["ReservedConcurrentExecutions"] = executions.clone();
        }
        Some(props)
    }

    const TAGGED: bool = true;

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let functions = || stack.functions.values();
        vec![
            Grant::new(
                "Functions",
                &[
                    "lambda:GetFunction*",
                    "lambda:CreateFunction",
                    "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration",
                    "lambda:DeleteFunction",
                    "lambda:TagResource",
                    "lambda:UntagResource",
                    "lambda:ListTags",
                    "lambda:PutFunctionRecursionConfig",
                    "lambda:PutFunctionConcurrency",
                    "lambda:DeleteFunctionConcurrency",
                ],
                functions().map(|f| f.arn.clone()).collect(),
            ),
            // CreateFunction passes the function's role: only that role, only to Lambda.
            Grant::new(
                "PassTheFunctionRolesToLambda",
                &["iam:PassRole"],
                functions().map(|f| f.role_arn.clone()).collect(),
            )
            .when(serde_json::json!({
                "StringEquals": { "iam:PassedToService": "lambda.amazonaws.com" }
            })),
        ]
    }

    fn desired(stack: &ResolvedStack, artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack, artifacts)
    }

    fn check_adoption(
        stack: &ResolvedStack,
        want: &Desired,
        have: &Observed,
    ) -> anyhow::Result<()> {
        super::tags::check_regional(
            "Lambda function",
            (&stack.stack, &stack.env, &stack.region),
            want,
            have,
        )
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
        let package = ctx
            .stack
            .functions
            .get(&want.address.name)
            .map(|f| f.package.as_str())
            .unwrap_or_default();
        match (have, ctx.artifacts.get(package)) {
            (None, Some(artifact)) => create(clients, &ctx.read, want, artifact, on_wait).await,
            (None, None) => anyhow::bail!(
                "function `{}` has no bundle: run `cargo xtask bundle` (deploy does it)",
                want.physical
            ),
            (Some(_), artifact) => update(clients, &ctx.read, want, have, artifact).await,
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

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation as op;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock::{self, assert_all_used};

    /// Row 9 for Lambda: UntagResource for the dropped key only; the foreign one stays.
    #[tokio::test]
    async fn a_dropped_tag_is_removed_and_a_foreign_one_left_alone() {
        let stack = crate::resources::fixtures::dev_stack();
        let want = desired(&stack, &Artifacts::new())
            .into_iter()
            .next()
            .expect("the strip function");
        let have = crate::resources::fixtures::with_dropped_and_foreign_tags(&want);
        let ctx = crate::resources::fixtures::dev_ctx();
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            mock::REGION,
            mock::ACCOUNT,
            want.physical
        );
        let untag = mock!(aws_sdk_lambda::Client::untag_resource)
            .match_requests(move |r| r.resource() == Some(arn.as_str()) && r.tag_keys() == ["team"])
            .then_output(|| op::untag_resource::UntagResourceOutput::builder().build());
        let clients = mock::clients(&[], &[&untag], &[]);
        update(&clients, &ctx, &want, Some(&have), None)
            .await
            .expect("converged");
        assert_all_used(&[&untag]);
    }

    /// Reserved concurrency: reserved when the stack declares it, released when it stops
    /// declaring it, and nothing is sent when Lambda already has it.
    #[tokio::test]
    async fn reserved_concurrency_is_put_released_or_left_alone() {
        let stack = crate::resources::fixtures::dev_stack();
        let unreserved = desired(&stack, &Artifacts::new())
            .into_iter()
            .next()
            .expect("the strip function");
        let mut reserved = unreserved.clone();
        reserved
            .props
            .insert("reserved_concurrency".into(), json!(5));
        let observed = |want: &Desired| Observed {
            physical: want.physical.clone(),
            props: want.props.clone(),
        };
        let put = mock!(aws_sdk_lambda::Client::put_function_concurrency)
            .match_requests(|r| r.reserved_concurrent_executions() == Some(5))
            .then_output(|| {
                op::put_function_concurrency::PutFunctionConcurrencyOutput::builder().build()
            });
        let release =
            mock!(aws_sdk_lambda::Client::delete_function_concurrency).then_output(|| {
                op::delete_function_concurrency::DeleteFunctionConcurrencyOutput::builder().build()
            });
        let clients = mock::clients(&[], &[&put, &release], &[]);
        set_reserved_concurrency(&clients, &reserved, Some(&observed(&unreserved)))
            .await
            .expect("reserved");
        set_reserved_concurrency(&clients, &unreserved, Some(&observed(&reserved)))
            .await
            .expect("released");
        // Already as wanted, and a new function without a reservation: no call (an
        // unanswered one would fail).
        set_reserved_concurrency(&clients, &reserved, Some(&observed(&reserved)))
            .await
            .expect("unchanged");
        set_reserved_concurrency(&clients, &unreserved, None)
            .await
            .expect("nothing to release");
        assert_all_used(&[&put, &release]);
    }
}
