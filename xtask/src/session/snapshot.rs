//! Reading what exists: every declared and every recorded resource, in parallel.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Semaphore;

use crate::aws::Clients;
use crate::resources::{self, Address, Artifacts, Desired, Observed, ReadCtx};
use crate::stack::ResolvedStack;

/// Everything a deploy or destroy decides from: the desired and observed states and the
/// resources recorded in state but no longer declared.
pub(crate) struct Snapshot {
    pub desired: Vec<Desired>,
    pub observed: BTreeMap<Address, Option<Observed>>,
    pub orphans: Vec<(Address, Observed)>,
    /// Recorded in the state but read as absent: deleted by a run that died before it
    /// saved, by hand, or recorded by a run killed before it created them. Deploy and
    /// destroy forget them (a declared one is recorded again before it is created), as a
    /// Terraform refresh drops what no longer exists.
    pub gone: Vec<Address>,
    /// Declared, existing, not in the state, and not this stack's by its kind's adoption
    /// rule (its tags name another stack, env or region, or nobody), with why. Left out of
    /// `observed`: never touched. [`snapshot`] refuses to go on with any; `destroy` leaves
    /// them alone and says so.
    pub not_ours: Vec<(Address, String)>,
}

impl Snapshot {
    /// Drops the records of what [`Snapshot::gone`] lists from `state` (deploy and destroy;
    /// a plan leaves the state alone).
    pub fn forget_gone(&self, state: &mut crate::engine::state::State) {
        for address in &self.gone {
            state.remove(address);
        }
    }
}

/// Reads the current state of everything declared and everything recorded, and refuses to
/// go on when something declared exists that is not this stack's ([`Snapshot::not_ours`]).
pub(crate) async fn snapshot(
    clients: &Clients,
    stack: &ResolvedStack,
    artifacts: &Artifacts,
    state: &crate::engine::state::State,
) -> anyhow::Result<Snapshot> {
    let snap = snapshot_with_foreign(clients, stack, artifacts, state).await?;
    match snap.not_ours.as_slice() {
        [] => Ok(snap),
        [(_, why)] => anyhow::bail!("{why}"),
        several => anyhow::bail!(
            "{} resources of the stack exist already and are not its own:\n  {}",
            several.len(),
            several
                .iter()
                .map(|(address, why)| format!("{address}: {why}"))
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
    }
}

/// As [`snapshot`], with what is not this stack's listed in [`Snapshot::not_ours`] instead
/// of refused.
pub(crate) async fn snapshot_with_foreign(
    clients: &Clients,
    stack: &ResolvedStack,
    artifacts: &Artifacts,
    state: &crate::engine::state::State,
) -> anyhow::Result<Snapshot> {
    let ctx = crate::session::read_ctx(stack);
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
    let mut observed = crate::session::read_all(clients, &ctx, &desired).await?;
    let orphan_states = crate::session::read_all(clients, &ctx, &undeclared).await?;
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
    // it: its kind decides (bucket names are global, IAM names global to the account).
    let mut not_ours = Vec::new();
    for want in &desired {
        if state.get(&want.address).is_some() {
            continue;
        }
        let Some(Some(have)) = observed.get(&want.address) else {
            continue;
        };
        if let Err(err) = resources::check_adoption(stack, want, have) {
            not_ours.push((want.address.clone(), format!("{err:#}")));
            observed.remove(&want.address);
        }
    }
    // What the plan compares and converge starts from: the part the stack manages (the
    // tags it set, as its records say, and those it declares; not those others set).
    for want in &desired {
        let Some(slot) = observed.get_mut(&want.address) else {
            continue;
        };
        if let Some(have) = slot.take() {
            let recorded = state
                .get(&want.address)
                .map(|r| r.settings.clone())
                .unwrap_or_default();
            *slot = Some(resources::managed(want, have, &recorded));
        }
    }
    Ok(Snapshot {
        desired,
        observed,
        orphans,
        gone,
        not_ours,
    })
}

/// Reads every declared resource, and every resource the state records, in parallel and
/// diffs. Writes nothing (an absent state bucket is an empty state).
pub(crate) async fn compute_plan(
    stack: &ResolvedStack,
    clients: &Clients,
    artifacts: &resources::Artifacts,
) -> anyhow::Result<crate::plan::Plan> {
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    let store =
        crate::engine::state::StateStore::load(clients, &bucket, &stack.stack, &stack.env).await?;
    let snap = crate::session::snapshot(clients, stack, artifacts, &store.state).await?;
    Ok(crate::plan::diff(
        &stack.stack,
        &stack.env,
        &snap.desired,
        &snap.observed,
        &snap.orphans,
    ))
}

/// Bundles already built by `cargo xtask bundle` (plan never builds): their code hash is
/// compared with the deployed function's. Without one, the code is not compared.
pub(crate) fn existing_artifacts(stack: &ResolvedStack) -> resources::Artifacts {
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    // A stack whose packages cannot be built is refused by `deploy`; a plan just does not
    // compare their code.
    super::artifacts::build_targets(stack)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(package, target)| {
            let (hex, code_sha256) = crate::bundle::existing_for(&package, target)?;
            let key = format!("artifacts/{package}/{hex}.zip");
            Some((
                package,
                resources::Artifact {
                    bucket: bucket.clone(),
                    key,
                    code_sha256,
                },
            ))
        })
        .collect()
}

pub(crate) fn read_ctx(stack: &ResolvedStack) -> ReadCtx {
    ReadCtx {
        stack: stack.stack.clone(),
        env: stack.env.clone(),
        account: stack.account.clone(),
        region: stack.region.clone(),
    }
}

/// One task per resource: reads are independent, so their latencies overlap.
/// Reads in flight per AWS service: each throttles on its own (IAM's control plane most of
/// all), and a stack's reads are sent all at once otherwise.
const READS_PER_SERVICE: usize = 6;

pub(crate) async fn read_all(
    clients: &Clients,
    ctx: &ReadCtx,
    desired: &[Desired],
) -> anyhow::Result<BTreeMap<Address, Option<Observed>>> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut limits: BTreeMap<&str, Arc<Semaphore>> = BTreeMap::new();
    for want in desired {
        let (clients, ctx) = (clients.clone(), ctx.clone());
        let (address, physical) = (want.address.clone(), want.physical.clone());
        let limit = limits
            .entry(address.kind.service())
            .or_insert_with(|| Arc::new(Semaphore::new(READS_PER_SERVICE)))
            .clone();
        tasks.spawn(async move {
            // Closed never: the semaphore lives as long as the tasks.
            let _permit = limit.acquire_owned().await;
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
