//! The clap command line and its dispatch. Owns argument shapes and exit codes; the work
//! itself lives in the module each command names.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::session;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "stripstack: deploy the S3 picture-sanitising pipeline"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check every stack file in every environment, offline (or only `--stack`).
    Validate(ValidateArgs),
    /// Write the stack file's JSON Schema to stacks/stack.schema.json (editors use it to
    /// complete and check keys).
    Schema {
        /// Only check that the committed schema is up to date (exit 1 if not).
        #[arg(long)]
        check: bool,
    },
    /// Show what `deploy` would change, comparing the stack with what really exists. Read-only.
    Plan(PlanArgs),
    /// Converge the environment to the stack: create, update and delete resources.
    Deploy(DeployArgs),
    /// Remove what the stack created (retained and non-empty buckets are kept).
    Destroy(DestroyArgs),
    /// Print the CloudFormation template (YAML) that `--engine cloudformation` deploys.
    Synth(SynthArgs),
    /// Build the Lambda's `bootstrap` for its target, check that Lambda can run it, and zip
    /// it; print its size and SHA-256.
    Bundle(BundleArgs),
    /// Print the least-privilege IAM policy (JSON) that whoever runs plan, deploy and destroy
    /// for this stack and env needs: every action the deployer calls, on the stack's
    /// resources only.
    DeployerPolicy(DeployerPolicyArgs),
    /// Print a credentials-file snippet for the stack's users (reads their SSM parameters).
    Credentials(CredentialsArgs),
    /// Print the stack's outputs: bucket names and ARNs, function, parameters, users.
    Outputs(OutputsArgs),
    /// Check a deployed environment end to end: a picture through the pipeline, the users'
    /// permissions and the configuration; exits non-zero when any check fails.
    Verify(VerifyArgs),
    /// Show the failure records of the stack's failures queues (events Lambda gave up on,
    /// uploads the function refused) without consuming them; re-run or drop them.
    Failures(FailuresArgs),
    /// Print a function's log lines, formatted (like `sls logs`).
    Logs(LogsArgs),
    /// Run the deployed function on one existing object of its source bucket and print its
    /// answer and the end of its log.
    Invoke(InvokeArgs),
    /// Find uploads whose stripped copy is missing or older (pictures there before the
    /// trigger, missed events) and run the function on them; `--dry-run` only counts.
    Reconcile(ReconcileArgs),
    /// Strip metadata from local JPEG files and print what was removed.
    Strip(crate::strip_cmd::StripArgs),
    /// Measure the stripper, the Lambda and the deployer (median of several runs, against a
    /// private emulator) and write the results to BENCHMARKS.md.
    Bench(crate::bench::BenchArgs),
    /// (For `bench`) make renditions of one picture in this process and print the median
    /// time and peak memory as JSON.
    #[command(hide = true)]
    BenchRender {
        input: std::path::PathBuf,
        edge: u32,
        quality: u8,
        runs: usize,
        out: std::path::PathBuf,
    },
    /// Manage the local AWS emulator (MiniStack) used by the `local` environment.
    Emulator {
        #[command(subcommand)]
        action: EmulatorAction,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only this stack: a name (a file `stacks/NAME.yaml`) or a path to a stack file;
    /// default: every stack in `stacks/`.
    #[arg(long)]
    pub stack: Option<String>,
}

/// Flags shared by every command that talks to AWS.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Environment declared in the stack file (`dev`, `prod`, `local`).
    #[arg(long, default_value = "dev")]
    pub env: String,
    /// Stack name (a file `stacks/NAME.yaml`) or path to a stack file; default: the only
    /// stack in `stacks/`.
    #[arg(long)]
    pub stack: Option<String>,
    /// AWS profile to use instead of the default credential chain.
    #[arg(long)]
    pub profile: Option<String>,
    /// Region to use instead of the stack's.
    #[arg(long)]
    pub region: Option<String>,
    /// Start the local emulator when the environment targets one that is not running
    /// (set by `deploy`, not a flag).
    #[arg(skip)]
    pub start_emulator: bool,
}

/// Which engine plans and applies the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Engine {
    /// Direct SDK calls, state and lock in S3: the fast path.
    #[default]
    Sdk,
    /// One CloudFormation stack `<stack>-<env>`: AWS holds the state, serialises
    /// deployments and rolls back a failed one.
    Cloudformation,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Plan with this engine (cloudformation: a change set, shown then deleted).
    #[arg(long, value_enum, default_value_t)]
    pub engine: Engine,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE, for `deploy --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Deploy with this engine (cloudformation: a change set, executed).
    #[arg(long, value_enum, default_value_t)]
    pub engine: Engine,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Apply exactly this saved plan (`plan --out FILE`); refuse if the cloud changed since.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Remove a lock left by a dead run before starting.
    #[arg(long)]
    pub force_unlock: bool,
    /// After deploying, follow the functions' logs and deploy again on every save of a
    /// function's source or the stack file, until Ctrl-C (a code-only change is applied
    /// without asking).
    #[arg(long, conflicts_with_all = ["plan", "engine"])]
    pub watch: bool,
    /// What `--yes` (or a saved plan) may not apply without a person's yes, as the CDK's
    /// flag: `never` (default) lets `--yes` apply everything, `broadening` asks when the plan
    /// widens access (and fails without a terminal), `any-change` always asks. Engine `sdk`
    /// only.
    #[arg(long, value_enum, default_value_t, value_name = "LEVEL")]
    pub require_approval: RequireApproval,
}

/// `--require-approval`: see `session::RequireApproval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RequireApproval {
    #[default]
    Never,
    AnyChange,
    Broadening,
}

impl From<RequireApproval> for session::RequireApproval {
    fn from(level: RequireApproval) -> Self {
        match level {
            RequireApproval::Never => session::RequireApproval::Never,
            RequireApproval::AnyChange => session::RequireApproval::AnyChange,
            RequireApproval::Broadening => session::RequireApproval::Broadening,
        }
    }
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Destroy with the engine that deployed (cloudformation: delete the stack).
    #[arg(long, value_enum, default_value_t)]
    pub engine: Engine,
    /// Destroy without asking (not for `prod`, which always asks for its name).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Remove a lock left by a dead run before starting.
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Resolve `${account}` with this account id instead of asking STS: works offline
    /// (e.g. `--account 123456789012` to lint the template in CI).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Print the template as JSON instead of YAML.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeployerPolicyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The engine the policy is for (cloudformation adds its change sets and stack).
    #[arg(long, value_enum, default_value_t)]
    pub engine: Engine,
    /// Resolve `${account}` with this account id instead of asking STS: works offline.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Print managed policy N of those the grants are split into when they exceed one
    /// managed policy's 6,144 characters (attach them all).
    #[arg(long, value_name = "N")]
    pub part: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only this user (logical name, e.g. `user-a`).
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FailuresArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Re-run the function on the events that failed; delete the records it then handled.
    #[arg(long, conflicts_with_all = ["purge", "all"])]
    pub retry: bool,
    /// Delete the records of this object key (after a person has looked at them).
    #[arg(long, value_name = "KEY", conflicts_with = "all")]
    pub purge: Option<String>,
    /// Delete every record.
    #[arg(long)]
    pub all: bool,
    /// Read at most this many records per queue.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The function (logical name); default: the stack's only function.
    #[arg(long)]
    pub function: Option<String>,
    /// How far back to start: `90s`, `15m`, `2h`, `1d`.
    #[arg(long, default_value = "15m", value_parser = crate::commands::logs::parse_since)]
    pub since: std::time::Duration,
    /// Keep printing new lines as they arrive (Ctrl-C ends).
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The object key in the function's source bucket (e.g. `uploads/photo.jpg`).
    #[arg(long)]
    pub key: String,
    /// The function (logical name); default: the stack's only function.
    #[arg(long)]
    pub function: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only keys under this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Count and show a sample; invoke nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Above this many objects to repair, start an S3 Batch Operations job instead of
    /// invoking the function from here.
    #[arg(long, value_name = "OBJECTS", default_value_t = crate::commands::reconcile::DEFAULT_BATCH_THRESHOLD)]
    pub batch_threshold: u64,
    /// Show the progress, failures and report of a Batch Operations job `reconcile` started.
    #[arg(long, value_name = "JOB_ID", conflicts_with_all = ["dry_run", "prefix"])]
    pub status: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Longest wait, in seconds, for the stripped copy of the test picture to appear
    /// (default: 60 on the local emulator, 300 on AWS, where a new notification
    /// configuration can take minutes to take effect).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorAction {
    /// Install MiniStack on first use and start it on 127.0.0.1:4566.
    Start,
    /// Stop the emulator this tool started (and the function processes it spawned).
    Stop,
    /// Say whether the emulator is running.
    Status,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => crate::commands::validate::run(args.stack.as_deref()),
        Command::Schema { check } => crate::commands::schema::run(check),
        Command::Plan(args) => match args.engine {
            Engine::Sdk => runtime()?.block_on(crate::commands::plan::run(args.into())),
            Engine::Cloudformation => runtime()?.block_on(crate::cfn::plan(args.into())),
        },
        Command::Deploy(args) => match args.engine {
            Engine::Sdk if args.watch => {
                runtime()?.block_on(crate::commands::watch::run(args.into()))
            }
            Engine::Sdk => runtime()?.block_on(crate::commands::deploy::run(args.into())),
            Engine::Cloudformation => runtime()?.block_on(crate::cfn::deploy(args.into())),
        },
        Command::Destroy(args) => match args.engine {
            Engine::Sdk => runtime()?.block_on(crate::commands::destroy::run(args.into())),
            Engine::Cloudformation => runtime()?.block_on(crate::cfn::destroy(args.into())),
        },
        Command::Synth(args) => runtime()?.block_on(crate::cfn::synth(args.into())),
        Command::Bundle(args) => crate::commands::bundle::run(args.into()),
        Command::DeployerPolicy(args) => {
            runtime()?.block_on(crate::commands::deployer_policy::run(args.into()))
        }
        Command::Credentials(args) => runtime()?.block_on(crate::outputs::credentials(args.into())),
        Command::Outputs(args) => runtime()?.block_on(crate::outputs::outputs(args.into())),
        Command::Verify(args) => runtime()?.block_on(crate::verify::run(args.into())),
        Command::Failures(args) => runtime()?.block_on(crate::commands::failures::run(
            crate::commands::failures::FailuresOptions {
                target: args.target.into(),
                json: args.json,
                retry: args.retry,
                purge: args.purge,
                purge_all: args.all,
                limit: args.limit,
            },
        )),
        Command::Logs(args) => runtime()?.block_on(crate::commands::logs::run(
            crate::commands::logs::LogsOptions {
                target: args.target.into(),
                function: args.function,
                since: args.since,
                follow: args.follow,
            },
        )),
        Command::Invoke(args) => runtime()?.block_on(crate::commands::invoke::run(
            crate::commands::invoke::InvokeOptions {
                target: args.target.into(),
                key: args.key,
                function: args.function,
            },
        )),
        Command::Reconcile(args) => runtime()?.block_on(crate::commands::reconcile::run(
            crate::commands::reconcile::ReconcileOptions {
                target: args.target.into(),
                prefix: args.prefix,
                dry_run: args.dry_run,
                json: args.json,
                batch_threshold: args.batch_threshold,
                status: args.status,
            },
        )),
        Command::Strip(args) => crate::strip_cmd::run(args),
        Command::Bench(args) => crate::bench::run(args),
        Command::BenchRender {
            input,
            edge,
            quality,
            runs,
            out,
        } => crate::bench::render_worker(&input, edge, quality, runs, &out)
            .map(|()| ExitCode::SUCCESS),
        Command::Emulator { action } => {
            let emulator = crate::emulator::Emulator::default_local();
            match action {
                EmulatorAction::Start => emulator.start().map(|_| ExitCode::SUCCESS),
                EmulatorAction::Stop => emulator.stop().map(|_| ExitCode::SUCCESS),
                EmulatorAction::Status => emulator.status(),
            }
        }
    }
}

impl From<TargetArgs> for session::TargetOptions {
    fn from(args: TargetArgs) -> Self {
        session::TargetOptions {
            env: args.env,
            stack: args.stack,
            profile: args.profile,
            region: args.region,
            start_emulator: args.start_emulator,
        }
    }
}

/// `cargo xtask bundle`: which package, built for what.
#[derive(Debug, Clone, Args)]
pub struct BundleArgs {
    /// Workspace package to bundle.
    #[arg(long, default_value = "lambda")]
    pub package: String,
    /// Stack name (a file `stacks/NAME.yaml`) or path to a stack file whose `--env` says
    /// what to build for; default: the only stack in `stacks/`.
    #[arg(long)]
    pub stack: Option<String>,
    /// Environment the bundle is for: `local` builds for this machine (the emulator runs
    /// the bootstrap as a local process); any other builds for Lambda.
    #[arg(long)]
    pub env: Option<String>,
    /// Lambda architecture to cross-build for, with glibc 2.34 (default: what the stack's
    /// functions of this package declare in `--env`; the host without `--env`).
    #[arg(long, value_enum)]
    pub arch: Option<crate::bundle::LambdaTarget>,
}

impl From<BundleArgs> for session::BundleOptions {
    fn from(args: BundleArgs) -> Self {
        session::BundleOptions {
            package: args.package,
            stack: args.stack,
            env: args.env,
            arch: args.arch,
        }
    }
}

impl From<PlanArgs> for session::PlanOptions {
    fn from(args: PlanArgs) -> Self {
        session::PlanOptions {
            target: args.target.into(),
            json: args.json,
            detailed_exitcode: args.detailed_exitcode,
            out: args.out,
        }
    }
}

impl From<DeployArgs> for session::DeployOptions {
    fn from(args: DeployArgs) -> Self {
        session::DeployOptions {
            target: args.target.into(),
            yes: args.yes,
            plan: args.plan,
            force_unlock: args.force_unlock,
            watch: args.watch,
            require_approval: args.require_approval.into(),
        }
    }
}

impl From<DestroyArgs> for session::DestroyOptions {
    fn from(args: DestroyArgs) -> Self {
        session::DestroyOptions {
            target: args.target.into(),
            yes: args.yes,
            force_unlock: args.force_unlock,
        }
    }
}

impl From<SynthArgs> for session::SynthOptions {
    fn from(args: SynthArgs) -> Self {
        session::SynthOptions {
            target: args.target.into(),
            account: args.account,
            json: args.json,
        }
    }
}

impl From<DeployerPolicyArgs> for session::DeployerPolicyOptions {
    fn from(args: DeployerPolicyArgs) -> Self {
        session::DeployerPolicyOptions {
            target: args.target.into(),
            account: args.account,
            cloudformation: args.engine == Engine::Cloudformation,
            part: args.part,
        }
    }
}

impl From<CredentialsArgs> for session::CredentialsOptions {
    fn from(args: CredentialsArgs) -> Self {
        session::CredentialsOptions {
            target: args.target.into(),
            user: args.user,
        }
    }
}

impl From<OutputsArgs> for session::OutputsOptions {
    fn from(args: OutputsArgs) -> Self {
        session::OutputsOptions {
            target: args.target.into(),
            json: args.json,
        }
    }
}

impl From<VerifyArgs> for session::VerifyOptions {
    fn from(args: VerifyArgs) -> Self {
        session::VerifyOptions {
            target: args.target.into(),
            timeout: args.timeout,
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
