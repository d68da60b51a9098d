//! `cargo xtask plan`: load the stack, read the real state of every resource in parallel,
//! diff and render. Orchestration only: reads live in `resources`, the diff in `plan`.

use std::process::ExitCode;

use crate::cli::PlanArgs;

pub async fn run(_args: PlanArgs) -> anyhow::Result<ExitCode> {
    todo!()
}
