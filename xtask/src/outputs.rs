//! `cargo xtask outputs` and `credentials`: what a deployed environment gives its users.
//! `credentials` is the one command that ever prints a secret, and only when asked.

use std::process::ExitCode;

use serde_json::json;

use crate::aws::{error_code, AwsError};
use crate::resources::user::{key_id_parameter, secret_parameter};
use crate::session::{CredentialsOptions, OutputsOptions};

pub(crate) async fn outputs(args: OutputsOptions) -> anyhow::Result<ExitCode> {
    let (stack, _clients) = crate::session::connect(&args.target).await?;
    let value = json!({
        "stack": stack.stack,
        "env": stack.env,
        "region": stack.region,
        "account": stack.account,
        "buckets": stack.buckets.values().map(|b| (b.logical.clone(), json!({"name": b.name, "arn": b.arn}))).collect::<serde_json::Map<_, _>>(),
        "functions": stack.functions.values().map(|f| (f.logical.clone(), json!({"name": f.name, "arn": f.arn, "role": f.role_arn}))).collect::<serde_json::Map<_, _>>(),
        "users": stack.users.values().map(|u| (u.logical.clone(), json!({"name": u.name, "arn": u.arn, "policy": u.policy_arn, "secret_parameter": if u.access_key { Some(u.secret_parameter.clone()) } else { None }}))).collect::<serde_json::Map<_, _>>(),
        "parameters": stack.parameters.keys().collect::<Vec<_>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    print(&stack);
    Ok(ExitCode::SUCCESS)
}

/// The outputs as text: what a user looks for after a deploy.
pub fn print(stack: &crate::stack::ResolvedStack) {
    println!(
        "\nOutputs: stack {} env {} (account {}, region {})",
        stack.stack, stack.env, stack.account, stack.region
    );
    for bucket in stack.buckets.values() {
        println!("  bucket   {:<12} {}", bucket.logical, bucket.name);
    }
    for function in stack.functions.values() {
        println!("  function {:<12} {}", function.logical, function.name);
    }
    for user in stack.users.values() {
        println!("  user     {:<12} {}", user.logical, user.name);
    }
    for name in stack.parameters.keys() {
        println!("  param    {name}");
    }
}

pub(crate) async fn credentials(args: CredentialsOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let ctx = crate::session::read_ctx(&stack);
    let users: Vec<_> = stack
        .users
        .values()
        .filter(|u| u.access_key && args.user.as_deref().is_none_or(|want| want == u.logical))
        .collect();
    if users.is_empty() {
        anyhow::bail!(
            "no user with an access key{}: users with `access_key: true` are {}",
            args.user
                .as_deref()
                .map(|u| format!(" named `{u}`"))
                .unwrap_or_default(),
            stack
                .users
                .values()
                .filter(|u| u.access_key)
                .map(|u| u.logical.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let env = stack.env.as_str();
    for user in users {
        let get = |name: String| {
            let ssm = clients.ssm.clone();
            async move {
                match ssm.get_parameter().name(&name).with_decryption(true).send().await {
                    Ok(out) => Ok(out.parameter.and_then(|p| p.value).unwrap_or_default()),
                    Err(err) if error_code(&err) == Some("ParameterNotFound") => anyhow::bail!(
                        "`{name}` does not exist: deploy the environment first (`cargo xtask deploy --env {}`)",
                        env
                    ),
                    Err(err) => Err(AwsError::from_sdk(err, format!("while reading `{name}`")).into()),
                }
            }
        };
        let id = get(key_id_parameter(&ctx, &user.logical)).await?;
        let secret = get(secret_parameter(&ctx, &user.logical)).await?;
        println!("[{}]", user.name);
        println!("aws_access_key_id = {id}");
        println!("aws_secret_access_key = {secret}");
        println!("region = {}", stack.region);
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
