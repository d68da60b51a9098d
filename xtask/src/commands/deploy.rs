//! `cargo xtask deploy`: lock, bundle, plan, confirm, apply, re-read, unlock.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;

use crate::engine::state::StateStore;
use crate::engine::Progress;
use crate::plan;
use crate::resources::ApplyCtx;
use crate::session::{self, DeployOptions, Locked, SavedPlan};

pub(crate) async fn run(mut args: DeployOptions) -> anyhow::Result<ExitCode> {
    args.target.start_emulator = true;
    // A saved plan names its bundles; otherwise the compiler starts now, beside connecting.
    let prebuilt = match args.plan {
        Some(_) => None,
        None => Some(session::prebuild(&args.target)?),
    };
    let (locked, lock) = session::open(&args.target, "deploy", args.force_unlock).await?;
    let code = session::run_locked(lock, "deploy", deploy_locked(&args, &locked, prebuilt)).await?;
    if code == ExitCode::SUCCESS {
        crate::outputs::print(&locked.stack);
        eprintln!(
            "\nNext: `cargo xtask verify --env {}` uploads a picture and checks the pipeline end to end.",
            locked.stack.env
        );
    }
    Ok(code)
}

/// How long the re-read after applying may wait for AWS's reads to catch up with its writes.
const CONVERGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) async fn deploy_locked(
    args: &DeployOptions,
    locked: &Locked,
    prebuilt: Option<session::Prebuild>,
) -> anyhow::Result<ExitCode> {
    let Locked {
        stack,
        clients,
        state_clients,
        bucket,
    } = locked;
    let progress = Progress::default();
    let mut store = StateStore::load(state_clients, bucket, &stack.stack, &stack.env).await?;
    let saved: Option<SavedPlan> = match &args.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading the saved plan {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a saved plan", path.display()))?,
            )
        }
        None => None,
    };
    let artifacts = match &saved {
        Some(saved) => {
            session::ensure_saved_artifacts(state_clients, stack, &saved.artifacts).await?;
            saved.artifacts.clone()
        }
        None => session::bundle_and_upload(state_clients, stack, bucket, prebuilt).await?,
    };
    let snap = session::snapshot(clients, stack, &artifacts, &store.state).await?;
    snap.forget_gone(&mut store.state);
    let plan = plan::diff(
        &stack.stack,
        &stack.env,
        &snap.desired,
        &snap.observed,
        &snap.orphans,
    );
    if let Some(saved) = &saved {
        // Compared as JSON, the form the plan was saved in (a JSON `null` property value
        // reads back as "absent").
        let as_json = |change: &plan::Change| serde_json::to_value(change).unwrap_or_default();
        let saved_changes: Vec<_> = saved.plan.changes.iter().map(as_json).collect();
        let fresh_changes: Vec<_> = plan.changes.iter().map(as_json).collect();
        if saved_changes != fresh_changes || saved.plan.unchanged != plan.unchanged {
            let mut differing: Vec<String> = plan
                .changes
                .iter()
                .filter(|c| !saved_changes.contains(&as_json(c)))
                .chain(
                    saved
                        .plan
                        .changes
                        .iter()
                        .filter(|c| !fresh_changes.contains(&as_json(c))),
                )
                .map(|c| c.address.to_string())
                .collect();
            differing.sort();
            differing.dedup();
            anyhow::bail!(
                "the cloud (or the stack file) changed since this plan was saved (differs at: {}): \
                 run `cargo xtask plan --out FILE` again",
                if differing.is_empty() { "unchanged resources".to_owned() } else { differing.join(", ") }
            );
        }
    }
    let color = crate::style::stdout_color();
    print!("{}", plan::render::text(&plan, color));
    if plan.is_empty() {
        if !snap.gone.is_empty() {
            store.save().await?;
        }
        session::report_calls(clients);
        return Ok(ExitCode::SUCCESS);
    }
    if !session::approve(
        "Apply these changes? Type `yes`:",
        args.yes || saved.is_some() || (args.watch && plan.is_code_only()),
        args.require_approval,
        plan.broadens_access(),
    )? {
        eprintln!("Nothing changed.");
        return Ok(ExitCode::from(1));
    }
    let store = Arc::new(Mutex::new(store));
    let ctx = ApplyCtx {
        read: crate::session::read_ctx(stack),
        stack: stack.clone(),
        artifacts: artifacts.clone(),
    };
    let outcome = crate::engine::apply(
        clients,
        &ctx,
        &plan,
        &snap.desired,
        &snap.observed,
        store.clone(),
        &progress,
    )
    .await?;
    store.lock().await.save().await?;
    // Converged means: a fresh read finds nothing left to do. AWS's reads lag its writes
    // (lifecycle rules, tags, policies), so a difference counts only if it outlasts
    // CONVERGE_DEADLINE of re-reading.
    let state = store.lock().await.state.clone();
    let started = std::time::Instant::now();
    let mut attempt = 1;
    let unconverged = loop {
        let after = session::snapshot(clients, stack, &artifacts, &state).await?;
        let remaining = plan::diff(
            &stack.stack,
            &stack.env,
            &after.desired,
            &after.observed,
            &after.orphans,
        );
        let unconverged: Vec<plan::Change> = remaining
            .changes
            .into_iter()
            .filter(|c| {
                !outcome
                    .kept
                    .iter()
                    .any(|k| k.starts_with(&c.address.to_string()))
            })
            .collect();
        let delay = std::time::Duration::from_secs(1 << attempt.min(4))
            .mul_f64(0.5 + fastrand::f64() / 2.0);
        if unconverged.is_empty() || started.elapsed() + delay > CONVERGE_DEADLINE {
            break unconverged;
        }
        let addresses: Vec<String> = unconverged.iter().map(|c| c.address.to_string()).collect();
        eprintln!(
            "  waiting for AWS to show the changes to {} (attempt {})",
            addresses.join(", "),
            attempt + 1
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    };
    session::print_summary("Deployed", &outcome, plan.unchanged, &progress, clients);
    if !unconverged.is_empty() {
        eprintln!("warning: after applying, the cloud still differs from the stack:");
        for change in &unconverged {
            let props: Vec<&str> = change.properties.iter().map(|p| p.name.as_str()).collect();
            eprintln!(
                "  {} ({:?}): {}",
                change.address,
                change.action,
                props.join(", ")
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
