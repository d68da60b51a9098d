//! The application layer, below the commands: connecting to an environment, loading the
//! stack file, reading everything, bundling and uploading, asking for confirmation, taking
//! the lock and reporting. Commands (`commands/`, `cfn`, `verify`, `outputs`) are small
//! `run` functions over these; nothing here knows clap, and nothing below it (`engine`,
//! `plan`, `resources`, `stack`) imports it.

mod artifacts;
mod connect;
mod locked;
mod options;
mod prompt;
mod report;
mod snapshot;

pub(crate) use artifacts::{
    build_targets, bundle_and_upload, ensure_saved_artifacts, prebuild, save_plan, Prebuild,
    SavedPlan,
};
pub(crate) use connect::{connect, load_stack_file, resolve, stack_file_path};
pub(crate) use locked::{interrupted, open, release_after, run_locked, Locked};
pub(crate) use options::{
    BundleOptions, CredentialsOptions, DeployOptions, DeployerPolicyOptions, DestroyOptions,
    OutputsOptions, PlanOptions, RequireApproval, SynthOptions, TargetOptions, VerifyOptions,
};
pub(crate) use prompt::{approve, confirm, confirm_destroy};
pub(crate) use report::{print_summary, report_bucket_fate, report_calls};
pub(crate) use snapshot::{
    compute_plan, existing_artifacts, read_all, read_ctx, snapshot, snapshot_with_foreign,
};
