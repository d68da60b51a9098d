//! Section 4 (opt-in, `--cold-build`): a new user's first two commands, timed from a clean
//! clone on this machine, as the README gives them: `cargo xtask deploy --env local --yes`,
//! then what `cargo test --workspace` compiles (`--no-run`: running the tests is not a build
//! and is timed by the tests' own report). Twice: with the crates' sources already
//! downloaded (this machine's `CARGO_HOME`), and with the downloads included (an empty
//! `CARGO_HOME`). Minutes of every core, so opt-in.
//!
//! The clone is of `--cold-build-rev` (default `HEAD`: commit first), so an older revision
//! can be measured the same way for a before/after. Besides the wall time it reports the CPU
//! time of each command (every rustc, build script, pip and test process it waited for, from
//! `getrusage(RUSAGE_CHILDREN)`), which depends much less on what else the machine is doing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::report::{fmt_duration, Table};

/// Where CARGO_HOME comes from in a scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Downloads {
    /// This machine's: the crates' sources are there already.
    Excluded,
    /// An empty one: every crate is downloaded from crates.io.
    Included,
}

/// One command of a scenario.
struct Step {
    label: &'static str,
    args: &'static [&'static str],
    /// Whether it talks to the local emulator (the tests start their own).
    uses_emulator: bool,
}

const STEPS: [Step; 2] = [
    Step {
        // The README's command, run without a terminal: a first deploy broadens access, so
        // `--yes` alone would stop and ask (`--require-approval`).
        label: "1st: `cargo xtask deploy --env local --yes`",
        args: &[
            "xtask",
            "deploy",
            "--env",
            "local",
            "--yes",
            "--require-approval",
            "never",
        ],
        uses_emulator: true,
    },
    Step {
        label: "2nd: `cargo test --workspace`, compiling (`--no-run`)",
        args: &["test", "--workspace", "--no-run"],
        uses_emulator: false,
    },
];

/// The temporary clones and cargo homes; removed however the section ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Measured {
    downloads: Downloads,
    label: &'static str,
    wall: Duration,
    cpu: Duration,
}

pub fn measure(rev: &str) -> anyhow::Result<String> {
    let dir =
        TempDir(std::env::temp_dir().join(format!("stripstack-cold-build-{}", std::process::id())));
    let commit = resolve(rev)?;
    let mut measured = Vec::new();
    for downloads in [Downloads::Excluded, Downloads::Included] {
        let scenario = match downloads {
            Downloads::Excluded => "downloaded",
            Downloads::Included => "downloads",
        };
        let clone = dir.0.join(format!("clone-{scenario}"));
        clone_at(&commit, &clone)?;
        let cargo_home = (downloads == Downloads::Included).then(|| dir.0.join("cargo-home"));
        // The deploy starts its own emulator: on a free port, not the developer's 4566.
        let port = crate::emulator::free_port()?;
        let stopper = EmulatorStopper {
            clone: clone.clone(),
            port,
        };
        for step in &STEPS {
            eprintln!("bench: cold build, {}: {} …", scenario, step.label);
            let emulator = step.uses_emulator.then_some(port);
            let (wall, cpu) = run(step.args, &clone, cargo_home.as_deref(), emulator)?;
            measured.push(Measured {
                downloads,
                label: step.label,
                wall,
                cpu,
            });
        }
        drop(stopper);
    }
    Ok(render(&commit, &measured))
}

/// Stops the emulator a scenario's deploy started, however the scenario ends.
struct EmulatorStopper {
    clone: PathBuf,
    port: u16,
}

impl Drop for EmulatorStopper {
    fn drop(&mut self) {
        let state = self
            .clone
            .join("target")
            .join("ministack")
            .join(self.port.to_string());
        let _ = crate::emulator::Emulator::new(self.port, state).stop();
    }
}

/// The full commit id of `rev` in this repository.
fn resolve(rev: &str) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(crate::workspace::root())
        .args(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
        .output()
        .context("cannot run git")?;
    anyhow::ensure!(
        output.status.success(),
        "`{rev}` is not a commit of this repository"
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A clean clone of this repository at `commit`, as a new user has it.
fn clone_at(commit: &str, clone: &Path) -> anyhow::Result<()> {
    let root = crate::workspace::root();
    let git = |args: &[&std::ffi::OsStr], dir: &Path| -> anyhow::Result<()> {
        let status = Command::new("git")
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .context("cannot run git")?;
        anyhow::ensure!(status.success(), "git {args:?} failed ({status})");
        Ok(())
    };
    git(
        &[
            "clone".as_ref(),
            "--quiet".as_ref(),
            "--no-checkout".as_ref(),
            root.as_os_str(),
            clone.as_os_str(),
        ],
        &root,
    )?;
    git(
        &["checkout".as_ref(), "--quiet".as_ref(), commit.as_ref()],
        clone,
    )
}

/// Runs `cargo args` in the clone, as a user would (its own `target/`); returns the wall
/// and CPU time.
fn run(
    args: &[&str],
    clone: &Path,
    cargo_home: Option<&Path>,
    emulator_port: Option<u16>,
) -> anyhow::Result<(Duration, Duration)> {
    let mut command = crate::workspace::cargo();
    command
        .current_dir(clone)
        .args(args)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(home) = cargo_home {
        command.env("CARGO_HOME", home);
    }
    if let Some(port) = emulator_port {
        command.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    }
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = command.status().context("cannot run cargo")?;
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    anyhow::ensure!(
        status.success(),
        "`cargo {}` failed in the clean clone ({status})",
        args.join(" ")
    );
    Ok((wall, cpu))
}

/// User plus system CPU time of every child process waited for so far (and of their
/// descendants, which they waited for).
fn children_cpu() -> Duration {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn render(commit: &str, measured: &[Measured]) -> String {
    let mut table = Table::new(&["crates", "command", "wall", "CPU (user + sys)"]);
    for m in measured {
        table.row(vec![
            match m.downloads {
                Downloads::Excluded => "already downloaded".to_owned(),
                Downloads::Included => "downloaded too".to_owned(),
            },
            m.label.to_owned(),
            fmt_duration(m.wall),
            fmt_duration(m.cpu),
        ]);
    }
    format!(
        "{}\n\
         Commit `{}`, cloned into an empty directory; each command run there as the README \
         gives it, one after the other, with cargo's default parallelism (`target/` of the \
         clone; the deploy starts its own emulator, on a free port). \"Downloaded too\" runs \
         with an empty `CARGO_HOME`, so cargo fetches every crate from crates.io. Measured \
         once: a cold build is too expensive to repeat. The CPU time is the sum over every \
         process the command waited for; divided by the cores it estimates the wall time on \
         an idle machine.",
        table.to_markdown(),
        &commit[..commit.len().min(12)],
    )
}
