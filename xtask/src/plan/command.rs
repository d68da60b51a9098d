//! `cargo xtask plan`: load the stack, read the real state of every resource in parallel,
//! diff and render. Orchestration only: reads live in `resources`, the diff in `plan`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::aws::{Clients, Target};
use crate::cli::{PlanArgs, TargetArgs};
use crate::resources::{self, Address, Desired, Observed, ReadCtx};
use crate::stack::ResolvedStack;

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (stack, clients) = connect(&args.target).await?;
    let artifacts = existing_artifacts(&stack);
    let plan = compute(&stack, &clients, &artifacts).await?;
    if let Some(path) = &args.out {
        crate::engine::deploy::save_plan(path, &plan, &artifacts)?;
        eprintln!(
            "plan saved to {}: apply it with `cargo xtask deploy --plan {}`",
            path.display(),
            path.display()
        );
    }
    if args.json {
        println!("{}", super::render::json(&plan));
    } else {
        print!(
            "{}",
            super::render::text(&plan, std::io::stdout().is_terminal())
        );
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The stack file `--stack` names (a path anywhere, `--stack ./my.yaml`, or a name in
/// `stacks/`), loaded and validated, its warnings shown, with the settings of `--env`.
pub fn load_stack_file(
    target: &TargetArgs,
) -> anyhow::Result<(crate::stack::StackFile, crate::stack::EnvSettings)> {
    let path = match target.stack.as_deref() {
        Some(name) if name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml") => {
            std::path::PathBuf::from(name)
        }
        name => crate::stack::find_stack_file(&crate::workspace::stacks_dir(), name)?,
    };
    let file = crate::stack::load(&path)?;
    if !file.warnings().is_empty() {
        eprint!("{}", file.render_warnings(std::io::stderr().is_terminal()));
    }
    let settings = file.env_settings(&target.env)?;
    Ok((file, settings))
}

/// Loads the stack file, connects to the environment's AWS (or emulator) and resolves the
/// stack for the account the credentials belong to.
pub async fn connect(target: &TargetArgs) -> anyhow::Result<(ResolvedStack, Clients)> {
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
    let mut stack = file.resolve(&target.env, &account)?;
    stack.region = aws_target.region;
    Ok((stack, clients))
}

/// Bundles already built by `cargo xtask bundle` (plan never builds): their code hash is
/// compared with the deployed function's. Without one, the code is not compared.
pub fn existing_artifacts(stack: &ResolvedStack) -> resources::Artifacts {
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    stack
        .functions
        .values()
        .filter_map(|f| {
            let (hex, code_sha256) = crate::bundle::existing(&f.package)?;
            Some((
                f.package.clone(),
                resources::Artifact {
                    bucket: bucket.clone(),
                    key: format!("artifacts/{}/{hex}.zip", f.package),
                    code_sha256,
                },
            ))
        })
        .collect()
}

/// Reads every declared resource, and every resource the state records, in parallel and
/// diffs. Writes nothing (an absent state bucket is an empty state).
pub async fn compute(
    stack: &ResolvedStack,
    clients: &Clients,
    artifacts: &resources::Artifacts,
) -> anyhow::Result<super::Plan> {
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    let store =
        crate::engine::state::StateStore::load(clients, &bucket, &stack.stack, &stack.env).await?;
    let snap = crate::engine::deploy::snapshot(clients, stack, artifacts, &store.state).await?;
    Ok(super::diff(
        &stack.stack,
        &stack.env,
        &snap.desired,
        &snap.observed,
        &snap.orphans,
    ))
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

pub fn read_ctx(stack: &ResolvedStack) -> ReadCtx {
    ReadCtx {
        stack: stack.stack.clone(),
        env: stack.env.clone(),
        account: stack.account.clone(),
        region: stack.region.clone(),
    }
}

/// One task per resource: reads are independent, so their latencies overlap.
pub async fn read_all(
    clients: &Clients,
    ctx: &ReadCtx,
    desired: &[Desired],
) -> anyhow::Result<BTreeMap<Address, Option<Observed>>> {
    let mut tasks = tokio::task::JoinSet::new();
    for want in desired {
        let (clients, ctx) = (clients.clone(), ctx.clone());
        let (address, physical) = (want.address.clone(), want.physical.clone());
        tasks.spawn(async move {
            let observed = resources::read(&clients, &ctx, &address, &physical).await;
            (address, observed)
        });
    }
    let mut observed = BTreeMap::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (address, result) = joined.context("a read task failed")?;
        match result {
            Ok(state) => {
                observed.insert(address, state);
            }
            Err(err) => errors.push(format!("{address}: {err:#}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        anyhow::bail!(
            "could not read the current state:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(observed)
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
