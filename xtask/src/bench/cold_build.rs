//! Section 4 (opt-in, `--cold-build`): cold `cargo build` of the xtask (dev profile, as
//! `cargo xtask` builds it) and of the Lambda's release `bootstrap`, each in an empty
//! temporary target directory, with the number of crates compiled. Minutes of every core.
//!
//! Besides the wall time it reports the CPU time of the whole build (every rustc and build
//! script, from `getrusage(RUSAGE_CHILDREN)`), which depends much less on what else the
//! machine is doing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::report::{fmt_duration, Table};

/// One build: its label and cargo arguments.
const BUILDS: [(&str, &[&str]); 2] = [
    (
        "xtask (dev profile, what `cargo xtask` builds)",
        &["build", "--package", "xtask"],
    ),
    (
        "Lambda `bootstrap` (release, what `cargo xtask bundle` builds)",
        &[
            "build",
            "--release",
            "--package",
            "lambda",
            "--bin",
            "bootstrap",
        ],
    ),
];

/// The temporary target directories; removed however the section ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Measured {
    label: &'static str,
    crates: usize,
    wall: Duration,
    cpu: Duration,
}

pub fn measure() -> anyhow::Result<String> {
    let dir =
        TempDir(std::env::temp_dir().join(format!("stripstack-cold-build-{}", std::process::id())));
    let mut measured = Vec::new();
    for (index, (label, args)) in BUILDS.iter().enumerate() {
        let target = dir.0.join(index.to_string());
        eprintln!("bench: cold build of {label} in {} …", target.display());
        let (crates, wall, cpu) = build(args, &target)?;
        measured.push(Measured {
            label,
            crates,
            wall,
            cpu,
        });
    }
    Ok(render(&measured))
}

/// Runs one cold build; returns the crates compiled, wall time and CPU time.
fn build(args: &[&str], target: &Path) -> anyhow::Result<(usize, Duration, Duration)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cpu_before = children_cpu();
    let started = Instant::now();
    let output = Command::new(&cargo)
        .current_dir(crate::workspace::root())
        .args(args)
        .arg("--message-format=json")
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        // Cargo's progress stays on the terminal; the JSON messages are counted.
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    anyhow::ensure!(
        output.status.success(),
        "`cargo {}` failed ({})",
        args.join(" "),
        output.status
    );
    Ok((
        count_crates(&String::from_utf8_lossy(&output.stdout)),
        wall,
        cpu,
    ))
}

/// The distinct packages cargo compiled, from its JSON messages (a package's build script
/// and library count once).
fn count_crates(messages: &str) -> usize {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] == false)
        .filter_map(|m| m["package_id"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .len()
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

fn render(measured: &[Measured]) -> String {
    let mut table = Table::new(&["cold build", "crates compiled", "wall", "CPU (user + sys)"]);
    for m in measured {
        table.row(vec![
            m.label.to_owned(),
            m.crates.to_string(),
            fmt_duration(m.wall),
            fmt_duration(m.cpu),
        ]);
    }
    format!(
        "{}\n\
         Each build starts from an empty `CARGO_TARGET_DIR` (the crates' sources already \
         downloaded), one build at a time, with cargo's default parallelism. Measured once: \
         a cold build is too expensive to repeat. The CPU time is the sum over every \
         compiler process; divided by the cores it estimates the wall time on an idle \
         machine.",
        table.to_markdown()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_compiled_package_once() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"a 1.0","fresh":false,"target":{"kind":["custom-build"]}}
{"reason":"build-script-executed","package_id":"a 1.0"}
{"reason":"compiler-artifact","package_id":"a 1.0","fresh":false,"target":{"kind":["lib"]}}
{"reason":"compiler-artifact","package_id":"b 2.0","fresh":false}
{"reason":"compiler-artifact","package_id":"c 3.0","fresh":true}
Compiling is on stderr, but a stray line must not count
{"reason":"build-finished","success":true}"#;
        assert_eq!(count_crates(messages), 2);
    }
}
