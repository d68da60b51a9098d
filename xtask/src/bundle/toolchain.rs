//! What a cross build needs, installed on first use: `cargo-zigbuild` and `ziglang` (zig as
//! the C compiler and linker, with glibc 2.34's symbols) from PyPI, pinned, into a
//! virtualenv under `target/` (as the emulator is installed), and the Rust target from
//! rustup.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// The releases every cross build is made and tested with, installed with `pip` exactly.
pub const CARGO_ZIGBUILD_VERSION: &str = "0.24.1";
pub const ZIGLANG_VERSION: &str = "0.17.1";

/// What fixes a machine without rustup (a distribution's Rust has only the host's std).
const RUSTUP_FIX: &str = "install Rust with rustup (https://rustup.rs); a distribution's \
     packaged Rust cannot add targets";

/// A ready `cargo-zigbuild`, with the Python that runs zig (`python -m ziglang`).
#[derive(Debug, Clone)]
pub struct Zigbuild {
    venv: PathBuf,
}

impl Zigbuild {
    /// The `cargo-zigbuild` executable.
    pub fn program(&self) -> PathBuf {
        self.venv.join("bin").join("cargo-zigbuild")
    }

    /// `PATH` with the virtualenv's `bin` first: cargo-zigbuild runs zig as
    /// `python3 -m ziglang` when no `zig` is on the path, and must find the one installed
    /// next to it, not another Python.
    pub fn path_env(&self) -> anyhow::Result<OsString> {
        let mut paths = vec![self.venv.join("bin")];
        if let Some(existing) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&existing));
        }
        std::env::join_paths(paths).context("cannot build PATH for cargo-zigbuild")
    }
}

/// The virtualenv holding cargo-zigbuild and zig.
pub fn venv_dir() -> PathBuf {
    crate::workspace::target_dir().join("zigbuild-venv")
}

/// Installs cargo-zigbuild and ziglang on first use, and again when the pinned versions
/// change (a stamp file names the versions installed).
pub fn ensure_zigbuild() -> anyhow::Result<Zigbuild> {
    let target = crate::workspace::target_dir();
    let venv = venv_dir();
    let zigbuild = Zigbuild { venv: venv.clone() };
    let stamp = venv.join(format!(
        "stripstack-cargo-zigbuild-{CARGO_ZIGBUILD_VERSION}-ziglang-{ZIGLANG_VERSION}"
    ));
    let ready = || stamp.exists() && zigbuild.program().exists();
    if ready() {
        return Ok(zigbuild);
    }
    fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    // Test binaries and `cargo xtask` may all try this at the same moment.
    let _lock = crate::emulator::lock_exclusive(&target.join("zigbuild-venv.lock"))?;
    if ready() {
        return Ok(zigbuild);
    }
    eprintln!(
        "installing cargo-zigbuild {CARGO_ZIGBUILD_VERSION} and zig {ZIGLANG_VERSION} into {} \
         (first use, for cross builds of the Lambda)",
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv", "--clear"]).arg(&venv);
    crate::emulator::run_setup(&mut create, "create a Python virtualenv")?;
    let mut install = Command::new(venv.join("bin").join("python"));
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("cargo-zigbuild=={CARGO_ZIGBUILD_VERSION}"))
        .arg(format!("ziglang=={ZIGLANG_VERSION}"));
    crate::emulator::run_setup(&mut install, "install cargo-zigbuild and ziglang with pip")?;
    File::create(&stamp).with_context(|| format!("cannot create {}", stamp.display()))?;
    Ok(zigbuild)
}

/// `rustup target add triple` unless rustup lists it as installed already.
pub fn ensure_rust_target(triple: &str) -> anyhow::Result<()> {
    let listed = rustup(&["target", "list", "--installed"])?;
    if installed_targets(&listed).any(|t| t == triple) {
        return Ok(());
    }
    eprintln!("adding the Rust target {triple} (first use): rustup target add {triple}");
    rustup(&["target", "add", triple])
        .with_context(|| format!("cannot add the Rust target {triple}"))?;
    Ok(())
}

/// The targets `rustup target list --installed` prints, one a line.
fn installed_targets(listed: &str) -> impl Iterator<Item = &str> {
    listed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
}

/// Runs rustup for the toolchain cargo runs (`RUSTUP_TOOLCHAIN` is inherited); its stdout.
fn rustup(args: &[&str]) -> anyhow::Result<String> {
    let output = match Command::new("rustup")
        .args(args)
        .current_dir(crate::workspace::root())
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("cross-building the Lambda needs rustup, which is not on PATH: {RUSTUP_FIX}")
        }
        Err(err) => return Err(err).context("cannot run rustup"),
    };
    if !output.status.success() {
        bail!(
            "`rustup {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `CARGO_HOME` as cargo resolves it: where the registry's sources are unpacked.
pub fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rustups_list_of_installed_targets() {
        let listed = "x86_64-unknown-linux-gnu\naarch64-unknown-linux-gnu\n\n";
        let targets: Vec<&str> = installed_targets(listed).collect();
        assert_eq!(
            targets,
            ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
        );
        assert!(installed_targets("").next().is_none());
    }
}
