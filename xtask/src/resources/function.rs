//! Lambda functions: runtime, handler, architecture, memory, timeout, environment, role and
//! tags. The code hash is compared once the bundle exists (`deploy` builds it).

use std::collections::BTreeMap;

use super::cloudformation::{always, tag_list, CheckovSkip, Synthesis};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::{changed, TypedProps};
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
/// What Lambda reports for a function created without an architecture.
const LAMBDA_DEFAULT_ARCHITECTURE: &str = "x86_64";

/// A function's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FunctionProps {
    /// [`RUNTIME`]; `None` (`null`): none (a container image).
    pub runtime: Option<String>,
    /// [`HANDLER`]; `None` (`null`): none.
    pub handler: Option<String>,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// MB.
    pub memory: Option<u32>,
    /// Seconds.
    pub timeout: Option<u32>,
    pub environment: BTreeMap<String, String>,
    /// The execution role's ARN.
    pub role: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The bundle's hash (base64 SHA-256, Lambda's `CodeSha256`); absent from the desired
    /// state until the bundle is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// `None` (`null`): the account's unreserved pool.
    pub reserved_concurrency: Option<u32>,
}

impl TypedProps for FunctionProps {}

/// What `UpdateFunctionConfiguration` writes, compared as one.
#[derive(PartialEq)]
struct Configuration<'a> {
    runtime: &'a Option<String>,
    handler: &'a Option<String>,
    memory: Option<u32>,
    timeout: Option<u32>,
    environment: &'a BTreeMap<String, String>,
    role: &'a Option<String>,
}

impl FunctionProps {
    fn configuration(&self) -> Configuration<'_> {
        Configuration {
            runtime: &self.runtime,
            handler: &self.handler,
            memory: self.memory,
            timeout: self.timeout,
            environment: &self.environment,
            role: &self.role,
        }
    }
}

pub fn desired(stack: &ResolvedStack, artifacts: &Artifacts) -> Vec<Desired> {
    stack
        .functions
        .values()
        .map(|function| Desired {
            address: Address::new(Kind::Function, &function.logical),
            physical: function.name.clone(),
            props: FunctionProps {
                runtime: Some(RUNTIME.to_owned()),
                handler: Some(HANDLER.to_owned()),
                architecture: function.architecture.as_str().to_owned(),
                memory: Some(function.memory),
                timeout: Some(function.timeout),
                environment: function.environment.clone(),
                role: Some(function.role_arn.clone()),
                tags: stack.tags.clone(),
                code_sha256: artifacts
                    .get(&function.package)
                    .map(|artifact| artifact.code_sha256.clone()),
                reserved_concurrency: function.reserved_concurrency,
            }
            .into_props(),
            // Its log group first: else Lambda makes one, with no retention, on the
            // first invocation.
            depends_on: vec![
                Address::new(Kind::Role, &function.logical),
                Address::new(Kind::LogGroup, &function.logical),
            ],
            retain: false,
        })
        .collect()
}

/// Whether the function sends the events it failed to a queue (checkov's CKV_AWS_116 asks
/// for a dead-letter queue).
fn has_on_failure_destination(stack: &ResolvedStack, want: &Desired) -> bool {
    stack
        .functions
        .get(&want.address.name)
        .and_then(|f| f.async_invoke.as_ref())
        .is_some_and(|invoke| invoke.on_failure.is_some())
}

/// Whether the function takes from the account's unreserved pool (CKV_AWS_115).
fn has_no_reserved_concurrency(_stack: &ResolvedStack, want: &Desired) -> bool {
    FunctionProps::of(&want.props).is_ok_and(|p| p.reserved_concurrency.is_none())
}

/// Whether the function has environment variables (CKV_AWS_173 looks at them only).
fn has_environment(_stack: &ResolvedStack, want: &Desired) -> bool {
    FunctionProps::of(&want.props).is_ok_and(|p| !p.environment.is_empty())
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
    let environment: BTreeMap<String, String> = config
        .environment()
        .and_then(|e| e.variables())
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let tags: BTreeMap<String, String> = out
        .tags()
        .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: FunctionProps {
            runtime: config.runtime().map(|r| r.as_str().to_owned()),
            handler: config.handler().map(str::to_owned),
            architecture: config
                .architectures()
                .first()
                .map(|a| a.as_str())
                .unwrap_or(LAMBDA_DEFAULT_ARCHITECTURE)
                .to_owned(),
            memory: count(config.memory_size()),
            timeout: count(config.timeout()),
            environment,
            role: config.role().map(str::to_owned),
            tags,
            code_sha256: config.code_sha256().map(str::to_owned),
            reserved_concurrency: count(
                out.concurrency()
                    .and_then(|c| c.reserved_concurrent_executions()),
            ),
        }
        .into_props(),
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

/// Queues an asynchronous invocation of function `name` with `payload` (`Event`): Lambda
/// answers 202 at once and runs it, with its retries and on-failure destination, as for S3.
pub(crate) async fn invoke_async(
    clients: &Clients,
    name: &str,
    payload: &Value,
) -> anyhow::Result<()> {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::InvocationType;
    clients
        .lambda
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .with_aws_context(|| format!("while invoking Lambda function `{name}`"))?;
    Ok(())
}

/// How long a function may take to become Active / finish an update.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn environment(props: &FunctionProps) -> aws_sdk_lambda::types::Environment {
    aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(props.environment.clone().into_iter().collect()))
        .build()
}

/// The declared architecture; code and architecture change together (UpdateFunctionCode).
fn architecture(props: &FunctionProps) -> aws_sdk_lambda::types::Architecture {
    aws_sdk_lambda::types::Architecture::from(props.architecture.as_str())
}

fn as_i32(value: Option<u32>) -> Option<i32> {
    value.and_then(|v| i32::try_from(v).ok())
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
    let props = FunctionProps::of(&want.props)?;
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
                .architectures(architecture(&props))
                .set_role(props.role.clone())
                .set_memory_size(as_i32(props.memory))
                .set_timeout(as_i32(props.timeout))
                .environment(environment(&props))
                .code(
                    t::FunctionCode::builder()
                        .s3_bucket(&artifact.bucket)
                        .s3_key(&artifact.key)
                        .build(),
                )
                .set_tags(Some(props.tags.clone().into_iter().collect()))
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
    let reserved = as_i32(FunctionProps::of(&want.props)?.reserved_concurrency);
    let had = match have {
        Some(have) => as_i32(FunctionProps::of(&have.props)?.reserved_concurrency),
        None => None,
    };
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
    let props = FunctionProps::of(&want.props)?;
    let observed = have.map(|h| FunctionProps::of(&h.props)).transpose()?;
    let observed = observed.as_ref();
    if changed(
        &props.configuration(),
        observed.map(FunctionProps::configuration).as_ref(),
    ) {
        // Not only after: an update started by an earlier (interrupted) run may still run.
        wait_settled(clients, name).await?;
        clients
            .lambda
            .update_function_configuration()
            .function_name(name)
            .runtime(t::Runtime::from(RUNTIME))
            .handler(HANDLER)
            .set_role(props.role.clone())
            .set_memory_size(as_i32(props.memory))
            .set_timeout(as_i32(props.timeout))
            .environment(environment(&props))
            .send()
            .await
            .with_aws_context(|| format!("while updating the configuration of `{name}`"))?;
        wait_settled(clients, name).await?;
    }
    let code_changed = changed(&props.code_sha256, observed.map(|h| &h.code_sha256))
        || changed(&props.architecture, observed.map(|h| &h.architecture));
    if let (true, Some(artifact)) = (code_changed, artifact) {
        wait_settled(clients, name).await?;
        clients
            .lambda
            .update_function_code()
            .function_name(name)
            .s3_bucket(&artifact.bucket)
            .s3_key(&artifact.key)
            .architectures(architecture(&props))
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

    const CHECKOV_SKIPS: &'static [CheckovSkip] = &[
        CheckovSkip {
            id: "CKV_AWS_116",
            reason: "An event that failed every try goes to the failures queue by Lambda's \
                     on-failure destination (the stack file's on_failure: an \
                     AWS::Lambda::EventInvokeConfig), whose record holds the event, the error, \
                     the condition and the number of attempts, and which cargo xtask failures \
                     shows and retries. A dead-letter queue as well would record each failure \
                     twice, the second time with less.",
            applies: has_on_failure_destination,
        },
        CheckovSkip {
            id: "CKV_AWS_117",
            reason: "The function calls only S3 and SQS, over TLS (its logs go through \
                     Lambda), and nothing private. In a VPC it would need an S3 gateway endpoint \
                     and, for SQS, a NAT gateway or an interface endpoint, billed by the hour, \
                     and gain no protection: what it may reach is its role's least-privilege \
                     policy.",
            applies: always,
        },
        CheckovSkip {
            id: "CKV_AWS_115",
            reason: "The stack file reserves no concurrency for it (reserved_concurrency): a \
                     reservation takes executions from every other function of the account, \
                     and Lambda refuses one that would leave fewer than 100 unreserved, so an \
                     account with a low quota cannot make one. Declare reserved_concurrency to \
                     cap the function: the check then passes and this skip is not written.",
            applies: has_no_reserved_concurrency,
        },
        CheckovSkip {
            id: "CKV_AWS_173",
            reason: "Lambda encrypts environment variables at rest with its AWS managed key; \
                     the check wants a customer managed key (KmsKeyArn). The variables hold \
                     names and settings (the destination bucket, the failures queue's URL, the \
                     renditions), not secrets: a secret belongs in a SecureString parameter \
                     (the stack file's parameters, with secure: true).",
            applies: has_environment,
        },
    ];

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let count = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        let props = FunctionProps {
            runtime: text(&p["Runtime"]),
            handler: text(&p["Handler"]),
            architecture: text(&p["Architectures"][0]).unwrap_or_default(),
            memory: count(&p["MemorySize"]),
            timeout: count(&p["Timeout"]),
            environment: serde_json::from_value(p["Environment"]["Variables"].clone())
                .unwrap_or_default(),
            role: text(&p["Role"]),
            tags: super::cloudformation::tag_map(p),
            reserved_concurrency: count(&p["ReservedConcurrentExecutions"]),
            code_sha256: p["Code"]["S3Key"]
                .as_str()
                .and_then(super::cloudformation::code_sha256_of_key),
        }
        .into_props();
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
        let p = FunctionProps::of(&want.props).ok()?;
        let mut properties = json!({
            "FunctionName": want.physical,
            "Runtime": p.runtime,
            "Handler": p.handler,
            "Architectures": [p.architecture],
            "MemorySize": p.memory,
            "Timeout": p.timeout,
            "Role": p.role,
            "Code": code,
            // What the SDK engine sets after creating the function: S3 → Lambda → S3 loops stop.
            "RecursiveLoop": "Terminate",
            "Tags": tag_list(&p.tags),
        });
        if !p.environment.is_empty() {
            properties["Environment"] = json!({ "Variables": p.environment });
        }
        if let Some(executions) = p.reserved_concurrency {
            properties["ReservedConcurrentExecutions"] = json!(executions);
        }
        Some(properties)
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
