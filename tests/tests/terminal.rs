//! `cargo xtask …` in a real terminal (tmux), as a person sees it: the first command on a
//! fresh clone shows cargo's build progress at once, not minutes of silence (the alias runs
//! the `launcher` crate, which passes cargo's progress through), and a warm run shows the
//! command's own output and nothing of cargo's.
//!
//! Each test runs its own tmux server (`-L`, a private socket) with a clean environment, as a
//! login shell would have it: nothing of `cargo test`'s `CARGO_*` variables leaks in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server with one detached session of 160×40, killed on drop.
struct Terminal {
    socket: String,
}

impl Terminal {
    /// Starts `script` (bash) in a new terminal, from the workspace root, with a clean
    /// environment plus `env`.
    fn start(name: &str, script: &str, env: &[(&str, &Path)]) -> Terminal {
        let socket = stripstack_tests::unique(name);
        let mut command = Command::new("tmux");
        command.env_clear();
        for key in [
            "HOME",
            "PATH",
            "USER",
            "RUSTUP_HOME",
            "CARGO_HOME",
            "RUSTUP_TOOLCHAIN",
        ] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.env("TERM", "xterm-256color");
        for (key, value) in env {
            command.env(key, value);
        }
        let out = command
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "40",
                "-c",
            ])
            .arg(xtask::workspace::root())
            // The shell stays after the command, so what it printed can still be read.
            .args([
                "bash",
                "--norc",
                "--noprofile",
                "-c",
                &format!("{script}; sleep 3600"),
            ])
            .output()
            .expect("tmux runs (installed by .ci/run)");
        assert!(
            out.status.success(),
            "{}",
            stripstack_tests::output_text(&out)
        );
        Terminal { socket }
    }

    /// The visible pane, as text.
    fn screen(&self) -> String {
        let out = tmux(&self.socket, &["capture-pane", "-p", "-J"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Looks at the screen until `ready` says yes (returns the screen and how long it took)
    /// or `deadline` passes (panics with what the screen showed).
    fn wait_for(&self, deadline: Duration, ready: impl Fn(&str) -> bool) -> (String, Duration) {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return (screen, started.elapsed());
            }
            assert!(
                started.elapsed() < deadline,
                "after {deadline:?} the terminal shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn tmux(socket: &str, args: &[&str]) -> Output {
    Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output()
        .expect("tmux runs")
}

/// What cargo prints while it builds: its progress bar, or a line per crate.
fn shows_build_progress(screen: &str) -> bool {
    screen.contains("Building [") || screen.contains("Compiling ")
}

/// What the launcher says before cargo's first line when the deployer was never built.
const FIRST_BUILD: &str = "Building the deployer";

#[test]
fn the_first_command_on_a_cold_clone_shows_the_build_at_once() {
    // A target dir of its own with nothing in it: the deployer is not built, as on a fresh
    // clone. The build is stopped once its progress shows (the terminal is killed).
    let target: PathBuf = xtask::workspace::target_dir()
        .join("test-terminal")
        .join(stripstack_tests::unique("cold"));
    std::fs::create_dir_all(&target).unwrap();
    let terminal = Terminal::start(
        "cold",
        "cargo xtask validate",
        &[("CARGO_TARGET_DIR", target.as_path())],
    );
    let (_, said) = terminal.wait_for(Duration::from_secs(60), |s| s.contains(FIRST_BUILD));
    let (screen, after) = terminal.wait_for(Duration::from_secs(60), shows_build_progress);
    // Shown while compiling the SDK's dependency tree, long before the deployer could run.
    assert!(
        !screen.contains("ok: "),
        "the build had finished already:\n{screen}"
    );
    eprintln!("first line after {said:?}, cargo's progress after {after:?} more:\n{screen}");
    drop(terminal);
    let _ = std::fs::remove_dir_all(&target);
}

#[test]
fn a_warm_run_shows_the_commands_output_and_nothing_of_cargos() {
    // Built first, outside the terminal, as any earlier command would have.
    let out = stripstack_tests::xtask(&["validate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        stripstack_tests::output_text(&out)
    );

    let terminal = Terminal::start("warm", "cargo xtask validate; echo \"exit=$?\"", &[]);
    let (screen, _) =
        terminal.wait_for(Duration::from_secs(120), |screen| screen.contains("exit="));
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(screen.contains("ok: stacks/exif-pipeline.yaml"), "{screen}");
    for noise in [
        "Compiling",
        "Finished",
        "Running",
        "Building",
        "Blocking",
        FIRST_BUILD,
    ] {
        assert!(
            !screen.contains(noise),
            "`{noise}` on a warm run:\n{screen}"
        );
    }
}
