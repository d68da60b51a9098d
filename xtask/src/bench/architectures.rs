//! Section 5: the Lambda per architecture. The host build the local emulator runs, and the
//! two Lambda builds `deploy` ships (x86_64 and arm64, cross-built with cargo-zigbuild
//! against glibc 2.34): binary and zip size, and cold start. A build for another CPU than
//! this machine's runs under qemu's user-mode emulation: its cold start is reported, marked
//! as emulated, and says nothing about the real thing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::lambda::{cold_start, Launch};
use super::report::{fmt_duration, fmt_size, median_duration, Table};
use super::Setup;
use crate::bundle::{BuildTarget, Bundle, LambdaTarget};

/// One row: a build and how its cold start was (or could not be) measured.
struct Row {
    target: BuildTarget,
    binary_bytes: u64,
    zip_bytes: u64,
    cold_start: Result<Duration, String>,
    how: String,
}

pub async fn measure(setup: &Setup, runs: usize) -> anyhow::Result<String> {
    let mut rows = vec![row(setup, &setup.bundle, &setup.bootstrap, runs).await];
    for target in LambdaTarget::ALL {
        let work = setup.work.clone();
        let (bundle, copy) = tokio::task::spawn_blocking(move || {
            super::build_copy(&work, BuildTarget::Lambda(target))
        })
        .await
        .context("the bundle task failed")??;
        rows.push(row(setup, &bundle, &copy, runs).await);
    }
    Ok(render(&rows, runs))
}

async fn row(setup: &Setup, bundle: &Bundle, binary: &Path, runs: usize) -> Row {
    let (launch, how) = match launcher(bundle.target, binary) {
        Ok(found) => found,
        Err(missing) => {
            return Row {
                target: bundle.target,
                binary_bytes: bundle.binary_bytes,
                zip_bytes: bundle.zip_bytes,
                cold_start: Err(missing.clone()),
                how: missing,
            }
        }
    };
    let mut times = Vec::new();
    let mut failure = None;
    for _ in 0..runs {
        match cold_start(setup, &launch).await {
            Ok(time) => times.push(time),
            Err(err) => {
                failure = Some(format!("{err:#}"));
                break;
            }
        }
    }
    let cold_start = match (median_duration(&times), failure) {
        (_, Some(failure)) => Err(failure),
        (Some(time), None) => Ok(time),
        (None, None) => Err("no run".to_owned()),
    };
    Row {
        target: bundle.target,
        binary_bytes: bundle.binary_bytes,
        zip_bytes: bundle.zip_bytes,
        cold_start,
        how,
    }
}

/// How to run a build of `target` here: directly when this machine's CPU runs it, else
/// under qemu with the target's glibc from Debian's cross packages.
fn launcher(target: BuildTarget, binary: &Path) -> Result<(Launch, String), String> {
    let arch = match target {
        BuildTarget::Host => return Ok((Launch::native(binary), "native".to_owned())),
        BuildTarget::Lambda(arch) if Some(arch) == LambdaTarget::host() => {
            return Ok((Launch::native(binary), "native".to_owned()))
        }
        BuildTarget::Lambda(arch) => arch,
    };
    let (qemu, sysroot, package) = match arch {
        LambdaTarget::Arm64 => (
            "qemu-aarch64",
            "/usr/aarch64-linux-gnu",
            "libc6-arm64-cross",
        ),
        LambdaTarget::X86_64 => ("qemu-x86_64", "/usr/x86_64-linux-gnu", "libc6-amd64-cross"),
    };
    let program = on_path(qemu).ok_or_else(|| {
        format!("not run: {qemu} is not installed (apt-get install qemu-user {package})")
    })?;
    if !Path::new(sysroot).is_dir() {
        return Err(format!(
            "not run: {sysroot} is missing (apt-get install {package})"
        ));
    }
    let launch = Launch {
        program,
        args: vec![
            OsString::from("-L"),
            OsString::from(sysroot),
            binary.as_os_str().to_owned(),
        ],
    };
    Ok((
        launch,
        format!("**emulated** (`{qemu} -L {sysroot}`): not comparable"),
    ))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn render(rows: &[Row], runs: usize) -> String {
    let mut table = Table::new(&["build", "binary", "zip", "cold start", "run"]);
    for row in rows {
        let build = match row.target {
            BuildTarget::Host => "host (`--env local`)".to_owned(),
            BuildTarget::Lambda(arch) => format!("Lambda {arch} (`{}`)", arch.zig_target()),
        };
        table.row(vec![
            build,
            fmt_size(row.binary_bytes),
            fmt_size(row.zip_bytes),
            row.cold_start
                .as_ref()
                .map_or("—".to_owned(), |d| fmt_duration(*d)),
            match &row.cold_start {
                Err(reason) if !reason.starts_with("not run") => {
                    format!("failed: {}", reason.lines().next().unwrap_or_default())
                }
                _ => row.how.clone(),
            },
        ]);
    }
    format!(
        "{}\n\
         The Lambda builds are what `cargo xtask bundle --arch x86_64|arm64` makes and \
         `deploy` ships: cross-built with cargo-zigbuild against glibc 2.34, checked (ELF for \
         the architecture, Amazon Linux 2023's libraries only), zipped deterministically; the \
         host build is what the local emulator runs. **Cold start** is from spawning the \
         process to its first request for an event against the fake Runtime API, as in \
         section 2 (median of {runs} fresh processes). A build for another CPU than this \
         machine's runs under qemu's user-mode emulation, which translates every instruction \
         on first use: that figure shows the binary starts and works, not how fast it starts \
         on Lambda — do not compare it with the native rows.",
        table.to_markdown()
    )
}
