//! The clap command line and its dispatch. Owns argument shapes and exit codes; the work
//! itself lives in the module each command names.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about = "stripstack: deploy the S3 picture-sanitising pipeline")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check every stack file in every environment, offline.
    Validate,
    /// Show what `deploy` would change, comparing the stack with what really exists. Read-only.
    Plan(PlanArgs),
    /// Strip metadata from local JPEG files and print what was removed.
    Strip(crate::strip_cmd::StripArgs),
    /// Manage the local AWS emulator (MiniStack) used by the `local` environment.
    Emulator {
        #[command(subcommand)]
        action: EmulatorAction,
    },
}

/// Flags shared by every command that talks to AWS.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Environment declared in the stack file (`dev`, `prod`, `local`).
    #[arg(long, default_value = "dev")]
    pub env: String,
    /// Stack name (a file `stacks/NAME.yaml`); default: the only stack in `stacks/`.
    #[arg(long)]
    pub stack: Option<String>,
    /// AWS profile to use instead of the default credential chain.
    #[arg(long)]
    pub profile: Option<String>,
    /// Region to use instead of the stack's.
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
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
        Command::Validate => crate::stack::validate_command(&crate::workspace::stacks_dir()),
        Command::Plan(args) => runtime()?.block_on(crate::plan::command::run(args)),
        Command::Strip(args) => crate::strip_cmd::run(args),
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
