//! A run that changes an environment: connected, with the state bucket ready and the
//! stack's lock held until it ends, whatever happens.

use std::process::ExitCode;

use super::TargetOptions;
use crate::aws::Clients;
use crate::engine::state::{ensure_state_bucket, state_bucket, Lock};
use crate::stack::ResolvedStack;

/// What a locked run works with: the resolved stack, clients for its resources, and
/// clients for state and lock (counted apart).
pub(crate) struct Locked {
    pub stack: ResolvedStack,
    pub clients: Clients,
    pub state_clients: Clients,
    pub bucket: String,
}

/// Connects, makes sure the state bucket exists and takes the stack's lock.
pub(crate) async fn open(
    target: &TargetOptions,
    operation: &str,
    force_unlock: bool,
) -> anyhow::Result<(Locked, Lock)> {
    let (stack, clients) = crate::session::connect(target).await?;
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
    let session = Locked {
        stack,
        clients,
        state_clients,
        bucket,
    };
    Ok((session, lock))
}

/// Runs `work` under the lock, stops at Ctrl-C (what was done is recorded in state), and
/// releases the lock whatever happened.
pub(crate) async fn run_locked(
    lock: Lock,
    operation: &str,
    work: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    release_after(lock, async {
        tokio::select! {
            // The work first: a run that has finished is not reported as interrupted.
            biased;
            result = work => result,
            _ = tokio::signal::ctrl_c() => Err(interrupted(operation)),
        }
    })
    .await
}

/// Runs `work`, which answers Ctrl-C itself (`deploy --watch`), under the lock, and releases
/// the lock whatever happened.
pub(crate) async fn release_after(
    lock: Lock,
    work: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let result = work.await;
    let released = lock.release().await;
    let code = result?;
    released?;
    Ok(code)
}

/// What a run stopped by Ctrl-C ends with.
pub(crate) fn interrupted(operation: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "interrupted: what was done is recorded in state; re-run {operation} to continue"
    )
}
