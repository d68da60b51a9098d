//! `cargo xtask strip IN... [-o DIR]`: run the stripper on local files and print what it
//! removed. A thin shell around the `lambda` crate's library.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StripArgs {
    /// JPEG files to strip.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write stripped copies here (same file names). Without it, only the summary is printed.
    #[arg(short, long)]
    pub out_dir: Option<PathBuf>,
}

pub fn run(_args: StripArgs) -> anyhow::Result<ExitCode> {
    todo!("stripper helper")
}
