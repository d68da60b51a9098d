//! The local AWS emulator (MiniStack from PyPI, pinned): install into a virtualenv under
//! `target/`, start bound to 127.0.0.1 with IAM enforcement, health-check, stop exactly the
//! process group it started. Used by `cargo xtask emulator`, the `local` env and the tests.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone)]
pub struct Emulator {
    pub port: u16,
    /// Holds the pid file and the log of this emulator instance.
    pub state_dir: PathBuf,
}

impl Emulator {
    /// The shared local emulator on 127.0.0.1:4566.
    pub fn default_local() -> Self {
        todo!("emulator helper")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&self) -> anyhow::Result<()> {
        todo!("emulator helper")
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        todo!("emulator helper")
    }

    pub fn status(&self) -> anyhow::Result<ExitCode> {
        todo!("emulator helper")
    }
}
