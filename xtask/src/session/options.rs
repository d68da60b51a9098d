//! What each command was asked to do, as plain data: the command line (`cli`) fills these
//! from its clap types, tests and the benchmark build them directly.

use std::path::PathBuf;

/// Which stack, environment and AWS account to work on.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetOptions {
    /// Environment declared in the stack file (`dev`, `prod`, `local`).
    pub env: String,
    /// Stack name (a file in `stacks/`) or a path; `None`: the only stack in `stacks/`.
    pub stack: Option<String>,
    /// AWS profile instead of the default credential chain.
    pub profile: Option<String>,
    /// Region instead of the stack's.
    pub region: Option<String>,
    /// Start the local emulator when the environment targets one that is not running.
    pub start_emulator: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PlanOptions {
    pub target: TargetOptions,
    pub json: bool,
    /// Exit 2 when there are changes.
    pub detailed_exitcode: bool,
    /// Save the plan here, for `deploy --plan`.
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DeployOptions {
    pub target: TargetOptions,
    /// Apply without asking.
    pub yes: bool,
    /// Apply exactly this saved plan.
    pub plan: Option<PathBuf>,
    pub force_unlock: bool,
    /// Watching (`--watch`): a plan of code updates only is applied without asking.
    pub watch: bool,
    /// What still needs a person's yes when `--yes` (or a saved plan) approves.
    pub require_approval: RequireApproval,
}

/// `--require-approval`, the CDK's: which changes an unattended run (`--yes`, a saved plan)
/// may not apply without a person's yes. Without `--yes`, deploy always asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RequireApproval {
    /// Nothing: `--yes` applies every change. The default, so that `--yes` means what it
    /// says (the README's first command deploys unattended); a pipeline opts into
    /// `broadening`.
    #[default]
    Never,
    /// Every change: `--yes` is not enough.
    AnyChange,
    /// A change that broadens access (the plan's security summary marks it).
    Broadening,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DestroyOptions {
    pub target: TargetOptions,
    pub yes: bool,
    pub force_unlock: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SynthOptions {
    pub target: TargetOptions,
    /// Resolve `${account}` with this id instead of asking STS (offline).
    pub account: Option<String>,
    pub json: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct DeployerPolicyOptions {
    pub target: TargetOptions,
    /// Resolve `${account}` with this id instead of asking STS (offline).
    pub account: Option<String>,
    /// For the CloudFormation engine too.
    pub cloudformation: bool,
    /// Which of the managed policies (1-based) to print, when one cannot hold every grant.
    pub part: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialsOptions {
    pub target: TargetOptions,
    /// Only this user (logical name).
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct OutputsOptions {
    pub target: TargetOptions,
    pub json: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct VerifyOptions {
    pub target: TargetOptions,
    /// Longest wait, in seconds, for the stripped copy of the test picture; `None`: what
    /// suits the environment (see `verify`).
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct BundleOptions {
    /// Workspace package to bundle.
    pub package: String,
    /// The stack file whose environment says what to build for (`--stack`).
    pub stack: Option<String>,
    /// The environment whose functions say what to build for; `None`: this machine.
    pub env: Option<String>,
    /// Build for this Lambda architecture whatever the stack says.
    pub arch: Option<crate::bundle::LambdaTarget>,
}
