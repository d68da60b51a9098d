//! `cargo xtask deploy` and `destroy`: lock, bundle, plan, confirm, apply, verify, unlock.
//! Orchestration only: planning is `plan`, applying is `engine::apply`, SDK calls are in
//! `resources` and `engine::state`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;

use super::state::{ensure_state_bucket, state_bucket, Lock, StateStore};
use super::{Outcome, Progress};
use crate::aws::{describe, http_status, Clients};
use crate::cli::{DeployArgs, DestroyArgs};
use crate::plan::{self, Plan};
use crate::resources::{self, Address, ApplyCtx, Artifact, Artifacts, Desired, Kind, Observed};
use crate::stack::ResolvedStack;

/// A plan saved by `plan --out FILE`, applied exactly by `deploy --plan FILE`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedPlan {
    pub plan: Plan,
    pub artifacts: Artifacts,
}

/// Everything a deploy or destroy decides from: the desired and observed states and the
/// resources recorded in state but no longer declared.
pub struct Snapshot {
    pub desired: Vec<Desired>,
    pub observed: BTreeMap<Address, Option<Observed>>,
    pub orphans: Vec<(Address, Observed)>,
    /// Recorded in the state but read as absent: deleted by a run that died before it
    /// saved, by hand, or recorded by a run killed before it created them. Deploy and
    /// destroy forget them (a declared one is recorded again before it is created), as a
    /// Terraform refresh drops what no longer exists.
    pub gone: Vec<Address>,
}

impl Snapshot {
    /// Drops the records of what [`Snapshot::gone`] lists from `state` (deploy and destroy;
    /// a plan leaves the state alone).
    pub fn forget_gone(&self, state: &mut super::state::State) {
        for address in &self.gone {
            state.remove(address);
        }
    }
}

/// Reads the current state of everything declared and everything recorded.
pub async fn snapshot(
    clients: &Clients,
    stack: &ResolvedStack,
    artifacts: &Artifacts,
    state: &super::state::State,
) -> anyhow::Result<Snapshot> {
    let ctx = plan::command::read_ctx(stack);
    let desired = resources::desired_all(stack, artifacts);
    let undeclared: Vec<Desired> = state
        .resources
        .iter()
        .filter(|r| !desired.iter().any(|d| d.address == r.address))
        .map(|r| Desired {
            address: r.address.clone(),
            physical: r.physical.clone(),
            props: Default::default(),
            depends_on: Vec::new(),
            retain: r.retain,
        })
        .collect();
    let observed = plan::command::read_all(clients, &ctx, &desired).await?;
    let orphan_states = plan::command::read_all(clients, &ctx, &undeclared).await?;
    let gone = observed
        .iter()
        .chain(&orphan_states)
        .filter(|(address, have)| have.is_none() && state.get(address).is_some())
        .map(|(address, _)| address.clone())
        .collect();
    let orphans = orphan_states
        .into_iter()
        .filter_map(|(address, have)| Some((address, have?)))
        .collect();
    // A resource that exists but that our state does not know must be ours before we touch
    // it (bucket names are global: refuse a bucket that is not tagged for this stack/env).
    for want in &desired {
        if want.address.kind != Kind::Bucket || state.get(&want.address).is_some() {
            continue;
        }
        if let Some(Some(have)) = observed.get(&want.address) {
            let tags = resources::string_map(&have.props, "tags");
            let ours =
                tags.get("stack") == Some(&stack.stack) && tags.get("env") == Some(&stack.env);
            if !ours {
                anyhow::bail!(
                    "bucket `{}` already exists in this account and is not tagged for stack `{}` \
                     env `{}`: refusing to adopt it. Tag it (stack={}, env={}) to take it over, or \
                     choose another name",
                    want.physical,
                    stack.stack,
                    stack.env,
                    stack.stack,
                    stack.env
                );
            }
        }
    }
    Ok(Snapshot {
        desired,
        observed,
        orphans,
        gone,
    })
}

/// Builds every function's bundle and uploads it to the state bucket under its hash.
pub async fn bundle_and_upload(
    clients: &Clients,
    stack: &ResolvedStack,
    bucket: &str,
) -> anyhow::Result<Artifacts> {
    let mut packages: Vec<&str> = stack
        .functions
        .values()
        .map(|f| f.package.as_str())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    let mut artifacts = Artifacts::new();
    for package in packages {
        let owned = package.to_owned();
        let bundle = tokio::task::spawn_blocking(move || crate::bundle::build(&owned))
            .await
            .context("the bundle task failed")??;
        let artifact = Artifact {
            bucket: bucket.to_owned(),
            key: format!("artifacts/{package}/{}.zip", bundle.sha256_hex),
            code_sha256: bundle.code_sha256.clone(),
        };
        let uploaded = upload_if_missing(clients, &artifact, &bundle.zip_path).await?;
        eprintln!(
            "bundle {package}: {} bytes zipped, sha256 {}{}",
            bundle.zip_bytes,
            bundle.sha256_hex,
            if uploaded { "" } else { " (already uploaded)" }
        );
        artifacts.insert(package.to_owned(), artifact);
    }
    Ok(artifacts)
}

/// Uploads a bundle under its content address unless it is there already. Returns whether
/// it uploaded.
async fn upload_if_missing(
    clients: &Clients,
    artifact: &Artifact,
    zip_path: &std::path::Path,
) -> anyhow::Result<bool> {
    let (bucket, key) = (&artifact.bucket, &artifact.key);
    match clients
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => return Ok(false),
        Err(err) if http_status(&err) == Some(404) => {}
        Err(err) => anyhow::bail!("while looking for s3://{bucket}/{key}: {}", describe(&err)),
    }
    let body = aws_sdk_s3::primitives::ByteStream::from_path(zip_path)
        .await
        .with_context(|| format!("while reading {}", zip_path.display()))?;
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        // S3 refuses the upload if the file is no longer the zip that was hashed (another
        // bundle rewrote it meanwhile): the key must always name its content.
        .checksum_sha256(&artifact.code_sha256)
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("while uploading {}: {}", zip_path.display(), describe(&e)))?;
    Ok(true)
}

/// A saved plan names its bundles by hash: they must still be the ones on disk (or already
/// uploaded), so that the plan is applied exactly.
async fn ensure_saved_artifacts(clients: &Clients, artifacts: &Artifacts) -> anyhow::Result<()> {
    for (package, artifact) in artifacts {
        let zip_path = crate::bundle::zip_path(package);
        let on_disk = crate::bundle::existing(package).map(|(_, code_sha256)| code_sha256);
        if on_disk.as_deref() == Some(artifact.code_sha256.as_str()) {
            upload_if_missing(clients, artifact, &zip_path).await?;
            continue;
        }
        match clients
            .s3
            .head_object()
            .bucket(&artifact.bucket)
            .key(&artifact.key)
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if http_status(&err) == Some(404) => anyhow::bail!(
                "the `{package}` bundle this plan was made with is neither on disk nor uploaded: \
                 run `cargo xtask plan --out FILE` again"
            ),
            Err(err) => anyhow::bail!(
                "while looking for s3://{}/{}: {}",
                artifact.bucket,
                artifact.key,
                describe(&err)
            ),
        }
    }
    Ok(())
}

/// Asks on a TTY; refuses without one unless `--yes`.
pub fn confirm(question: &str, yes: bool, expected: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to change anything without confirmation: no terminal to ask on. Re-run with --yes");
    }
    eprint!("{question} ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}

/// Asks before a destroy (both engines); `false` (and says so) when the answer is no.
/// prod always asks, for its name: `--yes` alone is not enough to destroy production.
pub fn confirm_destroy(env: &str, yes: bool) -> anyhow::Result<bool> {
    let confirmed = if env == "prod" {
        confirm(
            &format!("Destroy env `{env}`? Type the env name to confirm:"),
            false,
            env,
        )?
    } else {
        confirm("Destroy these resources? Type `yes`:", yes, "yes")?
    };
    if !confirmed {
        eprintln!("Nothing destroyed.");
    }
    Ok(confirmed)
}

/// Tells what a destroy will do with a bucket and its contents (both engines).
pub async fn report_bucket_fate(
    clients: &Clients,
    bucket: &str,
    retain: bool,
    force_destroy: bool,
) -> anyhow::Result<()> {
    let (objects, versions) = resources::bucket::contents(clients, bucket).await?;
    let fate = if retain {
        "kept (retain: true)"
    } else if force_destroy {
        "emptied and deleted (force_destroy: true)"
    } else if versions > 0 {
        "kept: not empty and force_destroy is false"
    } else {
        "deleted"
    };
    eprintln!("  bucket {bucket}: {objects} objects, {versions} versions -> {fate}");
    Ok(())
}

/// Resource API calls, and how many of them changed something (state and lock
/// bookkeeping is not counted).
fn report_calls(clients: &Clients) {
    let writes: usize = clients.calls.writes().values().sum();
    eprintln!("{} API calls ({writes} writes)", clients.calls.total());
}

fn print_summary(
    verb: &str,
    outcome: &Outcome,
    unchanged: usize,
    progress: &Progress,
    clients: &Clients,
) {
    eprintln!(
        "\n{verb}: {} created, {} updated, {} replaced, {} deleted, {unchanged} unchanged in {:.1}s",
        outcome.created,
        outcome.updated,
        outcome.replaced,
        outcome.deleted,
        progress.elapsed().as_secs_f64(),
    );
    report_calls(clients);
    if !outcome.kept.is_empty() {
        eprintln!("kept:");
        for kept in &outcome.kept {
            eprintln!("  {kept}");
        }
    }
}

/// What a locked run works with: the resolved stack, clients for its resources, and
/// clients for state and lock (counted apart).
pub struct Session {
    pub stack: ResolvedStack,
    pub clients: Clients,
    pub state_clients: Clients,
    pub bucket: String,
}

/// Connects, makes sure the state bucket exists and takes the stack's lock.
async fn open(
    target: &crate::cli::TargetArgs,
    operation: &str,
    force_unlock: bool,
) -> anyhow::Result<(Session, Lock)> {
    let (stack, clients) = plan::command::connect(target).await?;
    let state_clients = clients.with_own_counter();
    let bucket = state_bucket(&stack.account, &stack.region);
    ensure_state_bucket(&state_clients, &bucket, &stack.region).await?;
    let lock = Lock::acquire(
        &state_clients,
        &bucket,
        &stack.stack,
        &stack.env,
        operation,
        force_unlock,
    )
    .await?;
    let session = Session {
        stack,
        clients,
        state_clients,
        bucket,
    };
    Ok((session, lock))
}

/// Runs `work` under the lock, stops at Ctrl-C (what was done is recorded in state), and
/// releases the lock whatever happened.
async fn run_locked(
    lock: Lock,
    operation: &str,
    work: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let result = tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
            "interrupted: what was done is recorded in state; re-run {operation} to continue"
        )),
    };
    let released = lock.release().await;
    let code = result?;
    released?;
    Ok(code)
}

pub async fn deploy(mut args: DeployArgs) -> anyhow::Result<ExitCode> {
    args.target.start_emulator = true;
    let (session, lock) = open(&args.target, "deploy", args.force_unlock).await?;
    let code = run_locked(lock, "deploy", deploy_locked(&args, &session)).await?;
    if code == ExitCode::SUCCESS {
        crate::outputs::print(&session.stack);
        eprintln!(
            "\nNext: `cargo xtask verify --env {}` uploads a picture and checks the pipeline end to end.",
            session.stack.env
        );
    }
    Ok(code)
}

async fn deploy_locked(args: &DeployArgs, session: &Session) -> anyhow::Result<ExitCode> {
    let Session {
        stack,
        clients,
        state_clients,
        bucket,
    } = session;
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
            ensure_saved_artifacts(state_clients, &saved.artifacts).await?;
            saved.artifacts.clone()
        }
        None => bundle_and_upload(state_clients, stack, bucket).await?,
    };
    let snap = snapshot(clients, stack, &artifacts, &store.state).await?;
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
    let color = std::io::stdout().is_terminal();
    print!("{}", plan::render::text(&plan, color));
    if plan.is_empty() {
        if !snap.gone.is_empty() {
            store.save().await?;
        }
        report_calls(clients);
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm(
        "Apply these changes? Type `yes`:",
        args.yes || saved.is_some(),
        "yes",
    )? {
        eprintln!("Nothing changed.");
        return Ok(ExitCode::from(1));
    }
    let store = Arc::new(Mutex::new(store));
    let ctx = ApplyCtx {
        read: plan::command::read_ctx(stack),
        stack: stack.clone(),
        artifacts: artifacts.clone(),
    };
    let outcome = super::apply(
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
    // Converged means: a fresh read finds nothing left to do.
    let state = store.lock().await.state.clone();
    let after = snapshot(clients, stack, &artifacts, &state).await?;
    let remaining = plan::diff(
        &stack.stack,
        &stack.env,
        &after.desired,
        &after.observed,
        &after.orphans,
    );
    print_summary("Deployed", &outcome, plan.unchanged, &progress, clients);
    let unconverged: Vec<&plan::Change> = remaining
        .changes
        .iter()
        .filter(|c| {
            !outcome
                .kept
                .iter()
                .any(|k| k.starts_with(&c.address.to_string()))
        })
        .collect();
    if !unconverged.is_empty() {
        eprintln!("warning: after applying, the cloud still differs from the stack:");
        for change in unconverged {
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

pub async fn destroy(args: DestroyArgs) -> anyhow::Result<ExitCode> {
    let (session, lock) = open(&args.target, "destroy", args.force_unlock).await?;
    run_locked(lock, "destroy", destroy_locked(&args, &session)).await
}

async fn destroy_locked(args: &DestroyArgs, session: &Session) -> anyhow::Result<ExitCode> {
    let Session {
        stack,
        clients,
        state_clients,
        bucket,
    } = session;
    let progress = Progress::default();
    let mut store = StateStore::load(state_clients, bucket, &stack.stack, &stack.env).await?;
    let snap = snapshot(clients, stack, &Artifacts::new(), &store.state).await?;
    snap.forget_gone(&mut store.state);
    // Everything that exists, declared or recorded, is deleted; retained resources are kept.
    let mut existing: Vec<(Address, Observed)> = snap
        .observed
        .iter()
        .filter_map(|(a, o)| Some((a.clone(), o.clone()?)))
        .collect();
    existing.extend(snap.orphans.iter().cloned());
    for want in &snap.desired {
        if let Some(record) = store.state.get(&want.address).cloned() {
            store.state.upsert(super::state::Record {
                retain: want.retain,
                ..record
            });
        } else if existing.iter().any(|(a, _)| a == &want.address) {
            store.state.upsert(super::state::Record {
                address: want.address.clone(),
                physical: want.physical.clone(),
                retain: want.retain,
                force_destroy: stack
                    .buckets
                    .get(&want.address.name)
                    .is_some_and(|b| want.address.kind == Kind::Bucket && b.force_destroy),
            });
        }
    }
    for (address, _) in &existing {
        if let (Kind::Bucket, Some(b)) = (address.kind, stack.buckets.get(&address.name)) {
            if let Some(record) = store.state.get(address).cloned() {
                store.state.upsert(super::state::Record {
                    force_destroy: b.force_destroy,
                    ..record
                });
            }
        }
    }
    let plan = plan::diff(&stack.stack, &stack.env, &[], &BTreeMap::new(), &existing);
    if plan.is_empty() {
        println!(
            "Nothing to destroy: stack `{}` env `{}` has no resources.",
            stack.stack, stack.env
        );
        store.save().await?;
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        plan::render::text(&plan, std::io::stdout().is_terminal())
    );
    for (address, have) in &existing {
        if address.kind == Kind::Bucket {
            let record = store.state.get(address);
            report_bucket_fate(
                clients,
                &have.physical,
                record.is_some_and(|r| r.retain),
                record.is_some_and(|r| r.force_destroy),
            )
            .await?;
        }
    }
    if !confirm_destroy(&stack.env, args.yes)? {
        return Ok(ExitCode::from(1));
    }
    store.save().await?;
    let store = Arc::new(Mutex::new(store));
    let ctx = ApplyCtx {
        read: plan::command::read_ctx(stack),
        stack: stack.clone(),
        artifacts: Artifacts::new(),
    };
    let outcome = super::apply(
        clients,
        &ctx,
        &plan,
        &[],
        &BTreeMap::new(),
        store.clone(),
        &progress,
    )
    .await?;
    store.lock().await.save().await?;
    print_summary("Destroyed", &outcome, 0, &progress, clients);
    Ok(ExitCode::SUCCESS)
}

/// The plan for `plan --out FILE`, with the artifacts it was computed for.
pub fn save_plan(path: &std::path::Path, plan: &Plan, artifacts: &Artifacts) -> anyhow::Result<()> {
    let saved = SavedPlan {
        plan: plan.clone(),
        artifacts: artifacts.clone(),
    };
    std::fs::write(path, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("while writing {}", path.display()))
}
