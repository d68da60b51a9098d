//! `cargo xtask …` starts here (the alias in `.cargo/config.toml`), and only to fix one thing:
//! `cargo run --quiet` hides cargo's progress, so the first command on a fresh clone was
//! silent for the minutes the deployer takes to compile, while a plain `cargo run` prints
//! `Finished …` and `Running …` on every warm run.
//!
//! So this launcher (no dependencies: it compiles in about a second) runs
//! `cargo build --package xtask` itself with cargo's output passed through — the progress
//! bar where the terminal shows one, every `Compiling …` line — except the lone `Finished …`
//! line of a build with nothing to do, which it drops; then it becomes the deployer (`exec`),
//! with the same arguments, so signals and the exit code are the deployer's own.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the launcher lives in the workspace")
        .to_path_buf();
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.clone());
    let deployer = deployer(&root, &cwd, std::env::var_os("CARGO_TARGET_DIR"));
    if !deployer.exists() {
        // Said before cargo's first line: cargo needs a moment to read the lock file.
        eprintln!(
            "    Building the deployer (`cargo xtask`, once per clone: it compiles the AWS SDK, \
             about 6 minutes on 2 cores)"
        );
    }
    match build(&root) {
        Ok(true) => {}
        Ok(false) => return ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: cannot run cargo to build the deployer: {err}");
            return ExitCode::FAILURE;
        }
    }
    run(&deployer)
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds the deployer; `Ok(false)` when cargo failed (it said why).
fn build(root: &Path) -> std::io::Result<bool> {
    let mut command = Command::new(cargo());
    forget_running_crate(&mut command);
    command
        .args(["build", "--package", "xtask", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if std::io::stderr().is_terminal() {
        // Cargo draws its progress bar only on a terminal; its stderr is a pipe here, so the
        // bar is asked for, at the terminal's width, and the colours the terminal would get.
        command.env("CARGO_TERM_PROGRESS_WHEN", "always");
        command.env("CARGO_TERM_PROGRESS_WIDTH", terminal_width().to_string());
        if std::env::var_os("CARGO_TERM_COLOR").is_none() && std::env::var_os("NO_COLOR").is_none()
        {
            command.env("CARGO_TERM_COLOR", "always");
        }
    }
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped");
    pass_through_unless_fresh(stderr, &mut std::io::stderr())?;
    Ok(child.wait()?.success())
}

/// Copies cargo's output as it comes, but holds its first line back until it is complete:
/// a build with nothing to do says only `Finished …`, and that line is dropped.
fn pass_through_unless_fresh(
    from: impl std::io::Read,
    to: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(from);
    let mut first = Vec::new();
    reader.read_until(b'\n', &mut first)?;
    if !is_fresh_build_line(&first) {
        to.write_all(&first)?;
        to.flush()?;
    }
    let mut chunk = [0u8; 4096];
    loop {
        // Unbuffered from here: a progress bar redraws its line without ever ending it.
        let read = reader.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        to.write_all(&chunk[..read])?;
        to.flush()?;
    }
}

/// `    Finished `dev` profile [unoptimized] target(s) in 0.21s`, in colour or not.
fn is_fresh_build_line(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let plain = strip_ansi(&text);
    plain.trim_start().starts_with("Finished ") && plain.ends_with('\n')
}

fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences (`ESC [ … letter`) are the only ones cargo writes.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `COLUMNS` when the shell exports it, else what `stty` says of the terminal, else 80.
fn terminal_width() -> u16 {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    from_env
        .or_else(|| {
            let tty = std::fs::File::open("/dev/tty").ok()?;
            let out = Command::new("stty").arg("size").stdin(tty).output().ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            text.split_whitespace().nth(1)?.parse().ok()
        })
        .filter(|&width: &u16| width >= 20)
        .unwrap_or(80)
}

/// Where cargo put the deployer, given `CARGO_TARGET_DIR` (which cargo reads relative to the
/// current directory).
fn deployer(root: &Path, cwd: &Path, target_dir: Option<OsString>) -> PathBuf {
    let target = target_dir
        .map(PathBuf::from)
        .map(|dir| cwd.join(dir))
        .unwrap_or_else(|| root.join("target"));
    target
        .join("debug")
        .join(format!("xtask{}", std::env::consts::EXE_SUFFIX))
}

/// Variables cargo sets for the program it runs: the launcher's own manifest, package and
/// binary names (the same list as `xtask::workspace`'s, which a tidy test keeps in step).
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

/// Removes the launcher's package variables from what `command` inherits. The build needs
/// it most: ring's build script reruns when `CARGO_MANIFEST_DIR` changes, so a cargo that
/// inherited the launcher's would recompile ring and the whole SDK above it, and the next
/// cargo typed in a shell would recompile them back. The deployer must not take the
/// launcher's names for its own either.
fn forget_running_crate(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if RUNNING_CRATE_VARIABLES.contains(&key)
            || RUNNING_CRATE_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            command.env_remove(key);
        }
    }
}

/// Becomes the deployer, with the arguments `cargo xtask` was given.
fn run(deployer: &Path) -> ExitCode {
    let mut command = Command::new(deployer);
    command.args(std::env::args_os().skip(1));
    forget_running_crate(&mut command);
    exec(command)
}

#[cfg(unix)]
fn exec(mut command: Command) -> ExitCode {
    use std::os::unix::process::CommandExt as _;
    let err = command.exec();
    eprintln!("error: cannot start the deployer: {err}");
    ExitCode::FAILURE
}

#[cfg(not(unix))]
fn exec(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("error: cannot start the deployer: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(output: &str) -> String {
        let mut to = Vec::new();
        pass_through_unless_fresh(output.as_bytes(), &mut to).unwrap();
        String::from_utf8(to).unwrap()
    }

    #[test]
    fn a_build_with_nothing_to_do_prints_nothing() {
        assert_eq!(
            passed("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.21s\n"),
            ""
        );
        assert_eq!(
            passed("\u{1b}[1m\u{1b}[92m    Finished\u{1b}[0m `dev` profile target(s) in 0.2s\n"),
            ""
        );
    }

    #[test]
    fn a_real_build_is_shown_whole() {
        let output = "   Compiling lambda v0.1.0\n\r    Building [==>  ] 3/9: lambda\r    Finished `dev` profile in 9s\n";
        assert_eq!(passed(output), output);
        let warning = "warning: unused manifest key\n    Finished `dev` profile in 0.2s\n";
        assert_eq!(passed(warning), warning);
    }

    #[test]
    fn the_deployer_is_where_cargo_builds_it() {
        let exe = format!("xtask{}", std::env::consts::EXE_SUFFIX);
        let root = Path::new("/repo");
        let cwd = Path::new("/repo/lambda");
        assert_eq!(
            deployer(root, cwd, None),
            Path::new("/repo/target/debug").join(&exe)
        );
        assert_eq!(
            deployer(root, cwd, Some("/cache/t".into())),
            Path::new("/cache/t/debug").join(&exe)
        );
        // Relative to where cargo was started, as cargo reads it.
        assert_eq!(
            deployer(root, cwd, Some("t2".into())),
            Path::new("/repo/lambda/t2/debug").join(&exe)
        );
    }
}
