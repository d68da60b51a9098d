//! The local AWS emulator (MiniStack from PyPI, pinned): install into a virtualenv under
//! `target/`, start bound to 127.0.0.1 with IAM enforcement, health-check, stop exactly the
//! process group it started. Used by `cargo xtask emulator`, the `local` env and the tests.
//!
//! MiniStack runs `provided.al2023` bootstraps as child processes, and those can outlive the
//! server when it alone is signalled. So the server is started as the leader of a new session
//! (its pid is its process-group id) and everything that stops it signals the whole group.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The MiniStack release everything is tested against, installed with `pip` exactly.
pub const MINISTACK_VERSION: &str = "1.5.33";
/// The port of the shared local emulator (the stack file's `local` environment).
pub const DEFAULT_PORT: u16 = 4566;

/// A warm start answers in about a second; the first import of its modules takes longer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// MiniStack takes about two seconds to shut down cleanly after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// What fixes a Debian/Ubuntu machine without Python, its venv module or pip.
const PYTHON_FIX: &str = "apt-get install -y python3 python3-venv python3-pip";

#[derive(Debug, Clone)]
pub struct Emulator {
    pub port: u16,
    /// Holds the pid file and the log of this emulator instance.
    pub state_dir: PathBuf,
}

/// What `/_ministack/health` says about a running instance.
struct Health {
    version: String,
    auth: bool,
}

impl Emulator {
    /// The shared local emulator on 127.0.0.1:4566.
    pub fn default_local() -> Self {
        Self::local(DEFAULT_PORT)
    }

    /// A local emulator on 127.0.0.1:`port`, its state kept in `target/ministack/<port>`.
    pub fn local(port: u16) -> Self {
        let state_dir = crate::workspace::target_dir()
            .join("ministack")
            .join(port.to_string());
        Self::new(port, state_dir)
    }

    pub fn new(port: u16, state_dir: PathBuf) -> Self {
        Self { port, state_dir }
    }

    /// By IP, not `localhost`: with an IP the SDK's S3 client uses path-style addressing.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.state_dir.join("ministack.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("ministack.log")
    }

    /// Whether a MiniStack answers its health check on this port.
    pub fn is_healthy(&self) -> bool {
        self.health().is_some()
    }

    /// `cargo xtask emulator start`: start unless one already answers on this port.
    pub fn start(&self) -> anyhow::Result<()> {
        if let Some(health) = self.health() {
            println!(
                "MiniStack {} is already running at {}",
                health.version,
                self.endpoint()
            );
            if !health.auth {
                eprintln!(
                    "warning: it runs without AUTH=true, so IAM policies are not enforced; \
                     stop it and run `cargo xtask emulator start`"
                );
            }
            return Ok(());
        }
        let pid = self.launch()?;
        println!(
            "MiniStack {MINISTACK_VERSION} running at {} (pid {pid}, log {})",
            self.endpoint(),
            self.log_file().display()
        );
        Ok(())
    }

    /// Start a new instance on this port (installing MiniStack on first use) and wait until it
    /// is healthy. Fails when the port is taken. Returns the server's pid, which is also the id
    /// of its process group. The instance runs until [`Emulator::stop`].
    pub fn launch(&self) -> anyhow::Result<u32> {
        let (server, pid) = self.spawn_recorded(None)?;
        self.wait_until_healthy(server, pid)?;
        Ok(pid)
    }

    /// A guarded instance ([`Emulator::launch_guarded`]) on a free port of 127.0.0.1 other
    /// than [`DEFAULT_PORT`] (a developer's own emulator), keeping its state in `state_dir`:
    /// what the tests and the bench run against. Another process may take the free port
    /// before MiniStack binds it; then it tries another, three times.
    pub fn launch_on_free_port(state_dir: &Path) -> anyhow::Result<(Emulator, StopGuard)> {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let emulator = Emulator::new(free_port()?, state_dir.to_path_buf());
            match emulator.launch_guarded() {
                Ok(guard) => return Ok((emulator, guard)),
                Err(err) => failures.push(format!("{err:#}")),
            }
        }
        bail!(
            "cannot start MiniStack {MINISTACK_VERSION} on a free port:\n{}",
            failures.join("\n")
        )
    }

    /// Like [`Emulator::launch`], but the instance — with every function process it spawns —
    /// is stopped when the returned guard is dropped or this process exits, however it exits,
    /// even by SIGKILL, and even while it is still starting.
    pub fn launch_guarded(&self) -> anyhow::Result<StopGuard> {
        // The watchdog comes first and the server tells it its pid itself (see `detach`), so
        // there is no moment in which a server runs unwatched.
        let guard = self.spawn_watchdog()?;
        let (server, pid) = self.spawn_recorded(Some(guard.pipe.as_raw_fd()))?;
        self.wait_until_healthy(server, pid)?;
        Ok(guard)
    }

    /// Spawn the server on this port, which must be free, and record its pid.
    fn spawn_recorded(&self, watchdog: Option<RawFd>) -> anyhow::Result<(Child, u32)> {
        if TcpStream::connect_timeout(&self.socket_addr(), Duration::from_millis(500)).is_ok() {
            bail!(
                "127.0.0.1:{} is already in use by something that is not a healthy MiniStack",
                self.port
            );
        }
        let python = ensure_installed()?;
        fs::create_dir_all(&self.state_dir)
            .with_context(|| format!("cannot create {}", self.state_dir.display()))?;
        let server = self
            .spawn_server(&python, watchdog)
            .with_context(|| format!("cannot run {}", python.display()))?;
        let pid = server.id();
        if let Err(err) = fs::write(self.pid_file(), pid.to_string()) {
            abandon(server, pid);
            return Err(err).with_context(|| format!("cannot write {}", self.pid_file().display()));
        }
        Ok((server, pid))
    }

    /// Wait until the server answers; on failure, end its group and say why from its log.
    fn wait_until_healthy(&self, mut server: Child, pid: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while self.health().is_none() {
            let exited = server
                .try_wait()
                .context("cannot watch the MiniStack process")?;
            if exited.is_some() || Instant::now() >= deadline {
                abandon(server, pid);
                let _ = fs::remove_file(self.pid_file());
                let reason = match exited {
                    Some(status) => format!("exited during start-up ({status})"),
                    None => format!("did not answer within {}s", START_TIMEOUT.as_secs()),
                };
                bail!(
                    "MiniStack on 127.0.0.1:{} {reason}; the end of {}:\n{}",
                    self.port,
                    self.log_file().display(),
                    log_tail(&self.log_file())
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Reap the server when it exits, so it never lingers as a zombie of a long-lived
        // caller (a test binary); a zombie would also keep its process group "alive".
        std::thread::spawn(move || server.wait());
        Ok(())
    }

    /// `cargo xtask emulator stop`: end the recorded process group (the server and every
    /// function process it spawned): SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&self) -> anyhow::Result<()> {
        let Some(pid) = self.recorded_pid()? else {
            if self.is_healthy() {
                bail!(
                    "an emulator answers at {} but was not started by stripstack (no {}); \
                     stop it where it was started",
                    self.endpoint(),
                    self.pid_file().display()
                );
            }
            println!("MiniStack is not running at {}", self.endpoint());
            return Ok(());
        };
        stop_group(pid, STOP_GRACE)?;
        fs::remove_file(self.pid_file())
            .with_context(|| format!("cannot remove {}", self.pid_file().display()))?;
        println!("stopped MiniStack at {} (pid {pid})", self.endpoint());
        Ok(())
    }

    /// `cargo xtask emulator status`: exit 0 when running, 3 when stopped (as systemctl does).
    pub fn status(&self) -> anyhow::Result<ExitCode> {
        let pid = self.recorded_pid()?;
        match self.health() {
            Some(health) => {
                let owner = match pid {
                    Some(pid) => format!("pid {pid}"),
                    None => "not started by stripstack".to_string(),
                };
                let auth = if health.auth {
                    "IAM enforced"
                } else {
                    "IAM NOT enforced (no AUTH=true)"
                };
                println!(
                    "running: MiniStack {} at {} ({owner}; {auth})",
                    health.version,
                    self.endpoint()
                );
                Ok(ExitCode::SUCCESS)
            }
            None => {
                println!("stopped: nothing answers at {}", self.endpoint());
                if let Some(pid) = pid {
                    println!(
                        "  its process group {pid} is still alive; `cargo xtask emulator stop` ends it"
                    );
                }
                Ok(ExitCode::from(3))
            }
        }
    }

    /// A detached watchdog that stops the server's process group once end-of-file arrives on
    /// its stdin: a pipe whose only writer is this process, so the kernel closes it however
    /// the process ends, or when the guard holding it is dropped. The server itself writes its
    /// pid to the pipe first; end-of-file before a pid means no server was started.
    fn spawn_watchdog(&self) -> anyhow::Result<StopGuard> {
        // Grace: 100 polls of 0.1 s, like STOP_GRACE. The pid check keeps `kill -1` away.
        const WATCHDOG: &str = r#"
read -r pid || exit 0
case $pid in ''|*[!0-9]*|0|1) exit 1 ;; esac
cat >/dev/null
if kill -TERM -"$pid" 2>/dev/null; then
    i=0
    while [ "$i" -lt 100 ] && kill -0 -"$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    kill -KILL -"$pid" 2>/dev/null
fi
rm -f "$1"
"#;
        let mut command = Command::new("sh");
        command
            .args(["-c", WATCHDOG, "stripstack-emulator-watchdog"])
            .arg(self.pid_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own session: a Ctrl-C that kills the test run must not kill the watchdog too.
        detach(&mut command, None);
        let mut watchdog = command
            .spawn()
            .context("cannot start the emulator watchdog")?;
        let pipe = watchdog
            .stdin
            .take()
            .context("the emulator watchdog has no stdin pipe")?;
        // Reaped when it is done, in case the guard is dropped long before this process exits.
        std::thread::spawn(move || watchdog.wait());
        Ok(StopGuard { pipe })
    }

    fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn spawn_server(&self, python: &Path, watchdog: Option<RawFd>) -> io::Result<Child> {
        let tmp = self.state_dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        let log = File::create(self.log_file())?;
        let mut command = Command::new(python);
        command.args(["-m", "ministack"]);
        // The function processes inherit the server's environment: a developer's real AWS
        // credentials, profile or endpoints must not reach them.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|key| key.starts_with("AWS_")) {
                command.env_remove(key);
            }
        }
        command
            // MiniStack's default is every interface.
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", self.port.to_string())
            .env("AUTH", "true")
            // Handed to the function processes, so the Lambda calls this instance back.
            .env("AWS_ENDPOINT_URL", self.endpoint())
            // These listeners bind 0.0.0.0 whatever BIND_HOST says; nothing here uses them.
            .env("IOT_MTLS_ENABLED", "0")
            .env("SFTP_ENABLED", "0")
            // Its own pid file and the extracted function code stay in this instance's dir.
            .env("TMPDIR", &tmp)
            .current_dir(&self.state_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        detach(&mut command, watchdog);
        command.spawn()
    }

    /// The pid in the pid file, if the file exists and its process group may still be alive.
    /// A pid file whose pid now belongs to an unrelated process is stale and removed.
    fn recorded_pid(&self) -> anyhow::Result<Option<u32>> {
        let path = self.pid_file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let pid: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a pid; remove it", path.display()))?;
        check_group_id(pid)?;
        // The server may be gone while function processes of its group live on; those are
        // still ours to stop. A live process that is not MiniStack means the pid was reused.
        let stale = match fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) => !String::from_utf8_lossy(&cmdline).contains("ministack"),
            Err(_) => !group_alive(pid),
        };
        if stale {
            fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
            return Ok(None);
        }
        Ok(Some(pid))
    }

    /// `GET /_ministack/health` over plain HTTP/1.0; `None` unless MiniStack answers 200.
    fn health(&self) -> Option<Health> {
        let mut stream =
            TcpStream::connect_timeout(&self.socket_addr(), Duration::from_millis(500)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        stream
            .set_write_timeout(Some(Duration::from_secs(3)))
            .ok()?;
        let request = format!(
            "GET /_ministack/health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = Vec::new();
        // HTTP/1.0: the server closes the connection after the response.
        stream.take(1 << 20).read_to_end(&mut response).ok()?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.lines().next()?;
        if !(status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200")) {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(body).ok()?;
        body.get("services")?;
        Some(Health {
            version: body.get("version")?.as_str()?.to_string(),
            auth: body.get("auth").and_then(|auth| auth.as_str()) == Some("enabled"),
        })
    }
}

/// Keeps an emulator alive; see [`Emulator::launch_guarded`]. Dropping it stops the emulator.
pub struct StopGuard {
    /// Closing it (on drop, or when this process ends) tells the watchdog to stop the emulator.
    pipe: ChildStdin,
}

/// Install MiniStack into `target/ministack-venv` unless that exact version is already there,
/// and return the virtualenv's python.
pub fn ensure_installed() -> anyhow::Result<PathBuf> {
    let target = crate::workspace::target_dir();
    let venv = target.join("ministack-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join(format!("stripstack-ministack-{MINISTACK_VERSION}"));
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    // Test binaries and `cargo xtask` may all try this at the same moment.
    let _lock = lock_exclusive(&target.join("ministack-venv.lock"))?;
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    eprintln!(
        "installing MiniStack {MINISTACK_VERSION} into {} (first use)",
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv", "--clear"]).arg(&venv);
    run_setup(&mut create, "create a Python virtualenv")?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("ministack=={MINISTACK_VERSION}"));
    run_setup(&mut install, "install MiniStack with pip")?;
    File::create(&stamp).with_context(|| format!("cannot create {}", stamp.display()))?;
    Ok(python)
}

/// Run one install step; a failure says what to run to fix it.
pub(crate) fn run_setup(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = match command.stdin(Stdio::null()).output() {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            bail!("cannot {what}: python3 is not installed; fix: {PYTHON_FIX}")
        }
        Err(err) => return Err(err).with_context(|| format!("cannot {what}")),
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hint = if stderr.contains("ensurepip")
        || stderr.contains("No module named")
        || stdout.contains("ensurepip")
    {
        format!("Python's venv module or pip is missing; fix: {PYTHON_FIX}")
    } else {
        "see the output above (pip needs network access to PyPI)".to_string()
    };
    let printed: Vec<&str> = [stdout.trim_end(), stderr.trim_end()]
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect();
    bail!(
        "cannot {what} ({}):\n{}\n{hint}",
        output.status,
        printed.join("\n")
    )
}

/// An exclusive `flock` on `path`, held until the returned file is dropped.
pub(crate) fn lock_exclusive(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock only reads the descriptor number, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(file)
}

/// Best effort on the way to a start-up error: kill and reap the server (a zombie would keep
/// its group alive), then end whatever it spawned.
fn abandon(mut server: Child, pid: u32) {
    let _ = server.kill();
    let _ = server.wait();
    let _ = stop_group(pid, STOP_GRACE);
}

/// Make the child the leader of a new session, and so of a new process group whose id is its
/// pid, detached from the terminal: a Ctrl-C aimed at the caller does not reach it. With
/// `announce_to`, the child also writes its pid as a line to that descriptor before it execs
/// (the descriptor is close-on-exec, so the child keeps no copy of it).
fn detach(command: &mut Command, announce_to: Option<RawFd>) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (setsid, getpid, write) on stack memory; no allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(fd) = announce_to {
                let mut buffer = [0u8; 24];
                let line = pid_line(libc::getpid(), &mut buffer);
                let written = libc::write(fd, line.as_ptr().cast(), line.len());
                if usize::try_from(written) != Ok(line.len()) {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `pid` in decimal and a newline, formatted without allocating (for `detach`'s child).
fn pid_line(pid: libc::pid_t, buffer: &mut [u8; 24]) -> &[u8] {
    let mut start = buffer.len() - 1;
    buffer[start] = b'\n';
    let mut rest = pid.unsigned_abs();
    loop {
        start -= 1;
        // The remainder is below 10, so the cast cannot truncate.
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buffer[start..]
}

/// Refuse ids for which `kill(-id, …)` would hit this process's group or every process.
fn check_group_id(pid: u32) -> anyhow::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(id) if id > 1 => Ok(id),
        _ => bail!("refusing to signal process group {pid}"),
    }
}

/// Send `signal` to the process group; `false` when the group no longer exists.
fn signal_group(pid: u32, signal: libc::c_int) -> anyhow::Result<bool> {
    let group = check_group_id(pid)?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(-group, signal) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(false);
    }
    Err(err).with_context(|| format!("cannot signal process group {pid}"))
}

fn group_alive(pid: u32) -> bool {
    // Signal 0 checks existence; an error other than "no such group" still means it exists.
    signal_group(pid, 0).unwrap_or(true)
}

/// SIGTERM the group, wait up to `grace` for all of it to exit, then SIGKILL what is left.
fn stop_group(pid: u32, grace: Duration) -> anyhow::Result<()> {
    if !signal_group(pid, libc::SIGTERM)? {
        return Ok(());
    }
    if wait_group_gone(pid, grace) {
        return Ok(());
    }
    signal_group(pid, libc::SIGKILL)?;
    if wait_group_gone(pid, Duration::from_secs(5)) {
        return Ok(());
    }
    bail!("process group {pid} is still alive after SIGKILL")
}

fn wait_group_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while group_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// The last lines of a log, for error messages.
fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        }
        Err(err) => format!("(cannot read the log: {err})"),
    }
}

/// A port of 127.0.0.1 that nothing listens on right now, other than [`DEFAULT_PORT`].
pub fn free_port() -> anyhow::Result<u16> {
    loop {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        if port != DEFAULT_PORT {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pid_line;

    #[test]
    fn pid_line_is_the_decimal_pid_and_a_newline() {
        let mut buffer = [0u8; 24];
        assert_eq!(pid_line(7, &mut buffer), b"7\n");
        assert_eq!(pid_line(40213, &mut buffer), b"40213\n");
        assert_eq!(pid_line(i32::MAX, &mut buffer), b"2147483647\n");
    }
}
