//! The YAML stack model: parsing (serde, `deny_unknown_fields`), environment overlays,
//! `${…}` interpolation, the dependency graph and offline validation. Pure: no AWS calls.

pub mod resolved;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use resolved::ResolvedStack;

/// Settings of one environment needed before anything else can be resolved
/// (the region and endpoint decide which AWS account we talk to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    pub region: String,
    pub endpoint: Option<String>,
}

/// A parsed, validated stack file (all environments).
#[derive(Debug, Clone)]
pub struct StackFile {
    pub path: PathBuf,
}

impl StackFile {
    /// Names of the declared environments, sorted.
    pub fn env_names(&self) -> Vec<String> {
        todo!("stack helper")
    }

    pub fn env_settings(&self, _env: &str) -> anyhow::Result<EnvSettings> {
        todo!("stack helper")
    }

    /// One environment, overlays merged and every `${…}` interpolated for `account`.
    pub fn resolve(&self, _env: &str, _account: &str) -> anyhow::Result<ResolvedStack> {
        todo!("stack helper")
    }
}

/// `stacks/NAME.yaml`, or the only stack in `stacks_dir` when `name` is `None`.
pub fn find_stack_file(_stacks_dir: &Path, _name: Option<&str>) -> anyhow::Result<PathBuf> {
    todo!("stack helper")
}

/// Parse and validate one stack file; errors name file:line:column.
pub fn load(_path: &Path) -> anyhow::Result<StackFile> {
    todo!("stack helper")
}

/// `cargo xtask validate`: every stack, every environment; prints diagnostics.
pub fn validate_command(_stacks_dir: &Path) -> anyhow::Result<ExitCode> {
    todo!("stack helper")
}
