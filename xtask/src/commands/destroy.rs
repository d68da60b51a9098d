//! `cargo xtask destroy`: lock, read, show what goes and what is kept, confirm, delete.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::engine::state::StateStore;
use crate::engine::Progress;
use crate::plan;
use crate::resources::{self, Address, ApplyCtx, Artifacts, Kind, Observed};
use crate::session::{self, DestroyOptions, Locked};

pub(crate) async fn run(args: DestroyOptions) -> anyhow::Result<ExitCode> {
    let (locked, lock) = session::open(&args.target, "destroy", args.force_unlock).await?;
    session::run_locked(lock, "destroy", destroy_locked(&args, &locked)).await
}

async fn destroy_locked(args: &DestroyOptions, locked: &Locked) -> anyhow::Result<ExitCode> {
    let Locked {
        stack,
        clients,
        state_clients,
        bucket,
    } = locked;
    let progress = Progress::default();
    let mut store = StateStore::load(state_clients, bucket, &stack.stack, &stack.env).await?;
    // What exists under the stack's names but is not its own (another region's IAM users of
    // the same env, say) is left alone, and said so.
    let snap =
        session::snapshot_with_foreign(clients, stack, &Artifacts::new(), &store.state).await?;
    snap.forget_gone(&mut store.state);
    for (address, why) in &snap.not_ours {
        eprintln!("Left alone: {address}: {why}");
    }
    // Everything that exists, declared or recorded, is deleted; retained resources are kept.
    let mut existing: Vec<(Address, Observed)> = snap
        .observed
        .iter()
        .filter_map(|(a, o)| Some((a.clone(), o.clone()?)))
        .collect();
    existing.extend(snap.orphans.iter().cloned());
    for want in &snap.desired {
        if let Some(record) = store.state.get(&want.address).cloned() {
            store.state.upsert(crate::engine::state::Record {
                retain: want.retain,
                ..record
            });
        } else if existing.iter().any(|(a, _)| a == &want.address) {
            store.state.upsert(crate::engine::state::Record {
                address: want.address.clone(),
                physical: want.physical.clone(),
                retain: want.retain,
                settings: resources::settings(stack, &want.address),
            });
        }
    }
    // Delete settings as the stack says now (a `force_destroy` set just before destroying).
    for (address, _) in &existing {
        if !snap.desired.iter().any(|d| &d.address == address) {
            continue;
        }
        if let Some(record) = store.state.get(address).cloned() {
            store.state.upsert(crate::engine::state::Record {
                settings: resources::settings(stack, address),
                ..record
            });
        }
    }
    let plan = plan::diff(&stack.stack, &stack.env, &[], &BTreeMap::new(), &existing);
    if plan.is_empty() {
        println!(
            "Nothing to destroy: stack `{}` env `{}` has no resources.",
            stack.stack, stack.env
        );
        store.save().await?;
        remove_batch_role(clients, stack).await?;
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        plan::render::text(&plan, crate::style::stdout_color())
    );
    for (address, have) in &existing {
        if address.kind == Kind::Bucket {
            let record = store.state.get(address);
            session::report_bucket_fate(
                clients,
                &have.physical,
                record.is_some_and(|r| r.retain),
                record.is_some_and(|r| resources::bucket::force_destroy(&r.settings)),
            )
            .await?;
        }
    }
    if !session::confirm_destroy(&stack.env, args.yes)? {
        return Ok(ExitCode::from(1));
    }
    store.save().await?;
    let store = Arc::new(Mutex::new(store));
    let ctx = ApplyCtx {
        read: crate::session::read_ctx(stack),
        stack: stack.clone(),
        artifacts: Artifacts::new(),
    };
    let outcome = crate::engine::apply(
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
    session::print_summary("Destroyed", &outcome, 0, &progress, clients);
    remove_batch_role(clients, stack).await?;
    Ok(ExitCode::SUCCESS)
}

/// The role `reconcile` made for S3 Batch Operations jobs, when there is one: not in the
/// state (no deploy made it), found by its name and removed only when its tags say it is
/// this stack's.
async fn remove_batch_role(
    clients: &crate::aws::Clients,
    stack: &crate::stack::resolved::ResolvedStack,
) -> anyhow::Result<()> {
    let ctx = session::read_ctx(stack);
    if resources::batch_job::remove_role(clients, &ctx).await? {
        println!(
            "Removed IAM role `{}` (made by `reconcile` for S3 Batch Operations).",
            resources::batch_job::role_name(&stack.stack, &stack.env)
        );
    }
    Ok(())
}
