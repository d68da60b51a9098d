//! Where things are: the repository root, `stacks/`, `target/`. Found from this crate's
//! manifest directory at build time, so `cargo xtask` works from any folder of the repo.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the workspace holding `xtask/`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `path` as a person at the workspace root would type it (unchanged when outside it).
pub fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

pub fn stacks_dir() -> PathBuf {
    root().join("stacks")
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}

/// Variables cargo sets for the program it runs (`cargo run`, `cargo test`): the running
/// crate's manifest, package and binary names, its scratch and output directories.
const RUNNING_CRATE_VARIABLES: [&str; 9] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];
const RUNNING_CRATE_PREFIXES: [&str; 2] = ["CARGO_PKG_", "CARGO_BIN_EXE_"];

/// A `cargo` command, run from the repository root, that builds exactly what a `cargo`
/// typed in a shell would reuse.
///
/// Why: `cargo xtask` and the tests run under cargo, which gives them the running crate's
/// variables (`CARGO_MANIFEST_DIR=…/xtask`, `…/tests`). Build scripts such as ring's declare
/// `rerun-if-env-changed` on some of them, so a nested cargo that inherits them sees a
/// "changed" environment and recompiles ring and everything above it (rustls, the whole
/// SDK) — and the next cargo from elsewhere recompiles it back. CI measured it: the tests'
/// `cargo xtask` calls and the bootstrap build alternated and the test run took 88 minutes.
pub fn cargo() -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(root());
    forget_running_crate(&mut command);
    command
}

/// The cargo that runs us (`CARGO`), else the one on `PATH`.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Removes the running crate's variables from what `command` inherits (see [`cargo`]), for
/// programs that run cargo themselves (cargo-zigbuild).
pub fn forget_running_crate(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if is_running_crate_variable(key) {
            command.env_remove(key);
        }
    }
}

fn is_running_crate_variable(key: &str) -> bool {
    RUNNING_CRATE_VARIABLES.contains(&key)
        || RUNNING_CRATE_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_cargo_does_not_inherit_the_running_crate() {
        // This test itself runs under cargo, which set these for it.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let command = cargo();
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        for key in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PKG_VERSION"] {
            assert!(removed.iter().any(|k| k == key), "{key} kept: {removed:?}");
        }
        // What a user's shell gives cargo is kept: its own location, home, target dir.
        for key in ["CARGO", "CARGO_HOME", "CARGO_TARGET_DIR", "PATH"] {
            assert!(!is_running_crate_variable(key), "{key}");
        }
        assert_eq!(command.get_current_dir(), Some(root().as_path()));
    }

    /// The launcher (`cargo xtask`'s first step, no dependencies) keeps its own copy of the
    /// lists: a variable only one of them forgot would rebuild the SDK on every switch.
    #[test]
    fn the_launcher_forgets_the_same_variables() {
        let launcher = std::fs::read_to_string(root().join("launcher/src/main.rs")).unwrap();
        let quoted = |list: &[&str]| {
            list.iter()
                .map(|k| format!("    \"{k}\",\n"))
                .collect::<String>()
        };
        let variables = format!(
            "const RUNNING_CRATE_VARIABLES: [&str; {}] = [\n{}];",
            RUNNING_CRATE_VARIABLES.len(),
            quoted(&RUNNING_CRATE_VARIABLES)
        );
        assert!(
            launcher.contains(&variables),
            "launcher/src/main.rs lacks:\n{variables}"
        );
        let prefixes = format!(
            "const RUNNING_CRATE_PREFIXES: [&str; {}] = [{}];",
            RUNNING_CRATE_PREFIXES.len(),
            RUNNING_CRATE_PREFIXES
                .map(|p| format!("\"{p}\""))
                .join(", ")
        );
        assert!(
            launcher.contains(&prefixes),
            "launcher/src/main.rs lacks:\n{prefixes}"
        );
    }
}
