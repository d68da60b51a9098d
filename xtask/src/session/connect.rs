//! Loading the stack file and connecting to the environment's AWS account (or emulator).

use anyhow::Context as _;

use super::TargetOptions;
use crate::aws::{Clients, Target};
use crate::stack::ResolvedStack;

/// The stack file `--stack` names (a path anywhere, `--stack ./my.yaml`, or a name in
/// `stacks/`), loaded and validated, its warnings shown, with the settings of `--env`.
pub(crate) fn load_stack_file(
    target: &TargetOptions,
) -> anyhow::Result<(crate::stack::StackFile, crate::stack::EnvSettings)> {
    let file = crate::stack::load(&stack_file_path(target.stack.as_deref())?)?;
    if !file.warnings().is_empty() {
        eprint!("{}", file.render_warnings(crate::style::stderr_color()));
    }
    let settings = file.env_settings(&target.env)?;
    Ok((file, settings))
}

/// The file `--stack` names: a path (`./my.yaml`, `stacks/x.yml`) or a name in `stacks/`;
/// without `--stack`, the only stack in `stacks/`.
pub(crate) fn stack_file_path(stack: Option<&str>) -> anyhow::Result<std::path::PathBuf> {
    match stack {
        Some(name) if name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml") => {
            Ok(std::path::PathBuf::from(name))
        }
        name => crate::stack::find_stack_file(&crate::workspace::stacks_dir(), name),
    }
}

/// Loads the stack file, connects to the environment's AWS (or emulator) and resolves the
/// stack for the account the credentials belong to.
pub(crate) async fn connect(target: &TargetOptions) -> anyhow::Result<(ResolvedStack, Clients)> {
    let (file, settings) = load_stack_file(target)?;
    // The standard AWS_ENDPOINT_URL wins over the stack's endpoint, so `--env local` can
    // target an emulator on another port.
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty())
        .or(settings.endpoint);
    let aws_target = Target {
        region: target.region.clone().unwrap_or(settings.region),
        endpoint,
        profile: target.profile.clone(),
    };
    if target.start_emulator {
        if let Some(port) = aws_target.endpoint.as_deref().and_then(local_emulator_port) {
            let emulator = crate::emulator::Emulator::local(port);
            if !emulator.is_healthy() {
                eprintln!(
                    "Starting the local AWS emulator on {} …",
                    emulator.endpoint()
                );
                tokio::task::spawn_blocking(move || emulator.start())
                    .await
                    .context("the emulator start task failed")??;
            }
        }
    }
    let clients = Clients::connect(&aws_target).await;
    let account = clients
        .account_id()
        .await
        .with_context(|| match &aws_target.endpoint {
            Some(endpoint) => format!(
                "environment `{}` targets {endpoint}: is the emulator running? \
             (`cargo xtask emulator start`)",
                target.env
            ),
            None => format!(
                "environment `{}` targets AWS region {}",
                target.env, aws_target.region
            ),
        })?;
    // Resolved in the region we talk to, so every ARN (the trigger's function, the log
    // statements) names it: `--region` must not leave the file's region in them.
    let stack = file.resolve_in(&target.env, &account, Some(&aws_target.region))?;
    Ok((stack, clients))
}

/// The stack resolved for `account` without asking AWS, or, without one, for the account
/// STS says the credentials belong to. `what` names what needs the account (for the error
/// without credentials).
pub(crate) async fn resolve(
    target: &TargetOptions,
    account: Option<&str>,
    what: &str,
) -> anyhow::Result<ResolvedStack> {
    match account {
        Some(account) => {
            let (file, _) = load_stack_file(target)?;
            file.resolve_in(&target.env, account, target.region.as_deref())
        }
        None => Ok(connect(target)
            .await
            .with_context(|| {
                format!(
                    "{what} needs the AWS account (`${{account}}`): pass --account ID to do \
                     without credentials"
                )
            })?
            .0),
    }
}

/// The port of an endpoint on this machine (`http://127.0.0.1:4566`): an emulator we may start.
fn local_emulator_port(endpoint: &str) -> Option<u16> {
    let rest = endpoint.strip_prefix("http://")?;
    let (host, port) = rest.trim_end_matches('/').split_once(':')?;
    if host != "127.0.0.1" && host != "localhost" {
        return None;
    }
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::local_emulator_port;

    #[test]
    fn only_loopback_endpoints_are_emulators_we_start() {
        assert_eq!(local_emulator_port("http://127.0.0.1:4566"), Some(4566));
        assert_eq!(local_emulator_port("http://localhost:4570/"), Some(4570));
        assert_eq!(
            local_emulator_port("https://s3.eu-west-2.amazonaws.com"),
            None
        );
        assert_eq!(local_emulator_port("http://10.0.0.5:4566"), None);
    }
}
