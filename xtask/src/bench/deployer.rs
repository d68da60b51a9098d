//! Section 3: the deployer. Wall time and AWS API calls of `deploy` from empty, a no-op
//! `plan`, a no-op `deploy`, a code-only change and `destroy` of `stacks/exif-pipeline.yaml`
//! in env `local`, run as a user runs them (`cargo xtask …` as a child process) against the
//! bench's emulator — once directly, once with a round trip of latency added to every
//! request by [`super::proxy`], to show what running requests in parallel buys on a real
//! network.
//!
//! Every deploy starts with the bundle step, a `cargo build` of the Lambda. On a
//! shared machine that step measures other people's builds (and waits for their lock on the
//! target directory), so here the deploys run with `CARGO=true` and a private
//! `CARGO_TARGET_DIR` holding the already built binary: the bundle step zips it, hashes it
//! and uploads it as usual, only the compiler is not asked. What cargo's check costs when
//! nothing changed is measured on its own. The code-only change is that binary with a few
//! bytes appended (ELF ignores them, the zip's hash changes): a new build as far as Lambda
//! can tell.
//!
//! Then `deploy` from empty and `destroy` again, through a proxy that behaves like real AWS
//! on a bad day ([`faults`]).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::Command;

mod faults;

use super::proxy::LatencyProxy;
use super::report::{self, fmt_duration, median_count, median_duration, Table};
use super::Setup;

/// Longest wait for one deployer command (a deploy takes seconds to tens of seconds).
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// The steps of one cycle, in order.
pub(super) const STEPS: [Step; 5] = [
    Step {
        label: "deploy, from empty",
        args: &["deploy", "--yes", "--require-approval", "never"],
        code_change: false,
        under_faults: true,
    },
    Step {
        label: "plan, no changes",
        args: &["plan", "--detailed-exitcode"],
        code_change: false,
        under_faults: false,
    },
    Step {
        label: "deploy, no changes",
        args: &["deploy", "--yes", "--require-approval", "never"],
        code_change: false,
        under_faults: false,
    },
    Step {
        label: "deploy, code-only change",
        args: &["deploy", "--yes", "--require-approval", "never"],
        code_change: true,
        under_faults: false,
    },
    Step {
        label: "destroy",
        args: &["destroy", "--yes"],
        code_change: false,
        under_faults: true,
    },
];

pub(super) struct Step {
    pub label: &'static str,
    pub args: &'static [&'static str],
    /// Deploy a different build of the function (else the original one).
    pub code_change: bool,
    /// Also measured through the fault proxy ([`faults`]).
    pub under_faults: bool,
}

/// One run of one step.
struct Sample {
    wall: Duration,
    requests: usize,
    api_calls: Option<(usize, usize)>,
    changes: Option<String>,
}

/// Where the deployer commands find their stack, binary and private target directory.
pub(super) struct Cycle<'a> {
    pub setup: &'a Setup,
    pub stack: &'a Path,
    pub target: &'a Path,
}

pub async fn measure(setup: &Setup, runs: usize, latency: Duration) -> anyhow::Result<String> {
    let stack = crate::workspace::stacks_dir().join("exif-pipeline.yaml");
    let target = setup.work.join("deploy-target");
    // Where the bundle step looks for the host build (`bundle::binary_path_for`).
    let profile_dir = target.join("debug");
    std::fs::create_dir_all(&profile_dir)
        .with_context(|| format!("cannot create {}", profile_dir.display()))?;
    let cycle = Cycle {
        setup,
        stack: &stack,
        target: &target,
    };
    let cargo_check = cargo_check(runs.min(3)).await?;
    let packaging = packaging(setup, runs.min(3)).await?;
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], setup.emulator.port));
    // samples[mode][step]: mode 0 direct (through the proxy without delay), mode 1 delayed.
    let mut samples: [Vec<Vec<Sample>>; 2] = Default::default();
    for series in &mut samples {
        series.resize_with(STEPS.len(), Vec::new);
    }
    for run in 0..runs {
        // Alternate the two modes, so a change in the machine's load affects both.
        for (mode, round_trip) in [Duration::ZERO, latency].into_iter().enumerate() {
            let proxy = LatencyProxy::start(upstream, round_trip).await?;
            for (index, step) in STEPS.iter().enumerate() {
                let sample = cycle
                    .run(step, &proxy, &format!("{run}-{mode}"))
                    .await
                    .with_context(|| {
                        format!("{} (run {}, +{round_trip:?})", step.label, run + 1)
                    })?;
                samples[mode][index].push(sample);
            }
        }
    }
    let under_faults = faults::measure(&cycle, &setup.emulator.endpoint(), runs).await?;
    Ok(format!(
        "{}\n\n{}",
        render(
            &samples,
            latency,
            Overheads {
                cargo_check,
                packaging,
            },
            runs,
        ),
        under_faults.render()
    ))
}

/// The parts of every deploy that are not AWS calls, measured on their own.
struct Overheads {
    /// The bundle step's `cargo build` of the Lambda with nothing to rebuild (left out of the
    /// table).
    cargo_check: Option<Duration>,
    /// Packaging the built binary (included in the table's deploys): a new build (checked,
    /// zipped, hashed) and an unchanged one (checked, its zip reused and hashed).
    packaging: Packaging,
}

impl Cycle<'_> {
    async fn run(&self, step: &Step, proxy: &LatencyProxy, build: &str) -> anyhow::Result<Sample> {
        proxy.take_requests();
        let (wall, stderr, _) = self.execute(step, &proxy.endpoint(), build).await?;
        Ok(Sample {
            wall,
            requests: proxy.take_requests(),
            api_calls: report::api_calls(&stderr),
            changes: report::changes(&stderr),
        })
    }

    /// Runs `step` against the AWS endpoint `endpoint`; its wall time and what it printed
    /// on stderr and stdout, or why it failed.
    pub(super) async fn execute(
        &self,
        step: &Step,
        endpoint: &str,
        build: &str,
    ) -> anyhow::Result<(Duration, String, String)> {
        self.install_build(step.code_change.then_some(build))?;
        let mut command = Command::new(
            // The running xtask's own image, even if a concurrent build has replaced the file
            // since it started: every step runs the same deployer.
            "/proc/self/exe",
        );
        command
            .args(step.args)
            .arg("--env")
            .arg("local")
            .arg("--stack")
            .arg(self.stack);
        // Nothing of the developer's AWS set-up may mix in.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|key| key.starts_with("AWS_")) {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", super::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", super::SECRET_KEY)
            .env("CARGO", "true")
            .env("CARGO_TARGET_DIR", self.target)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let output = tokio::time::timeout(STEP_TIMEOUT, command.output())
            .await
            .with_context(|| format!("did not finish within {}s", STEP_TIMEOUT.as_secs()))?
            .context("cannot run the xtask")?;
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            // `plan --detailed-exitcode` exits 2 when something would change: after a deploy,
            // that is a deployer bug worth stopping for.
            anyhow::bail!(
                "`cargo xtask {}` failed ({}):\n{}\n{}",
                step.args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                stderr
            );
        }
        Ok((
            wall,
            stderr,
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ))
    }

    /// Puts the function's build where the bundle step looks: the original binary, or it
    /// with `variant` appended (a different build with the same behaviour).
    fn install_build(&self, variant: Option<&str>) -> anyhow::Result<()> {
        let path = self.target.join("debug").join("bootstrap");
        let mut binary = std::fs::read(&self.setup.bootstrap)
            .with_context(|| format!("cannot read {}", self.setup.bootstrap.display()))?;
        if let Some(variant) = variant {
            binary.extend_from_slice(format!("\nstripstack-bench-build-{variant}\n").as_bytes());
        }
        std::fs::write(&path, binary).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// What the bundle step spends after cargo: the GLIBC check, the deterministic zip and its
/// SHA-256, with the deployer's own code (this process is the same build as the deployer).
struct Packaging {
    new_build: Option<Duration>,
    unchanged_build: Option<Duration>,
}

async fn packaging(setup: &Setup, runs: usize) -> anyhow::Result<Packaging> {
    let zip = setup.work.join("packaging-check.zip");
    let package = || {
        let (binary, zip) = (setup.bootstrap.clone(), zip.clone());
        async move {
            let started = Instant::now();
            tokio::task::spawn_blocking(move || {
                crate::bundle::package_binary(
                    "lambda",
                    crate::bundle::BuildTarget::Host,
                    &binary,
                    &zip,
                )
            })
            .await
            .context("the packaging task failed")??;
            anyhow::Ok(started.elapsed())
        }
    };
    let (mut new_build, mut unchanged_build) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        match std::fs::remove_file(&zip) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove {}", zip.display()))
            }
        }
        new_build.push(package().await?);
        unchanged_build.push(package().await?);
    }
    Ok(Packaging {
        new_build: median_duration(&new_build),
        unchanged_build: median_duration(&unchanged_build),
    })
}

/// What each real deploy's bundle step costs when nothing changed: its `cargo build` of the
/// Lambda for the emulator, fresh.
async fn cargo_check(runs: usize) -> anyhow::Result<Option<Duration>> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let (command, shown) =
            crate::bundle::build_command("lambda", crate::bundle::BuildTarget::Host)?;
        let mut command = Command::from(command);
        let started = Instant::now();
        let status = command
            .current_dir(crate::workspace::root())
            .arg("--quiet")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .context("cannot run cargo")?;
        anyhow::ensure!(status.success(), "`{shown}` failed ({status})");
        times.push(started.elapsed());
    }
    Ok(median_duration(&times))
}

fn render(
    samples: &[Vec<Vec<Sample>>; 2],
    latency: Duration,
    overheads: Overheads,
    runs: usize,
) -> String {
    let rtt_ms = latency.as_millis();
    let plus = format!("wall, +{rtt_ms} ms RTT");
    let serial = format!("requests × {rtt_ms} ms");
    let mut table = Table::new(&[
        "step",
        "changes",
        "API calls (writes)",
        "HTTP requests",
        "wall",
        &plus,
        "added by latency",
        &serial,
    ]);
    for (index, step) in STEPS.iter().enumerate() {
        let direct = &samples[0][index];
        let delayed = &samples[1][index];
        let wall = median_duration(&direct.iter().map(|s| s.wall).collect::<Vec<_>>());
        let wall_delayed = median_duration(&delayed.iter().map(|s| s.wall).collect::<Vec<_>>());
        let requests = median_count(&direct.iter().map(|s| s.requests).collect::<Vec<_>>());
        let calls = direct
            .iter()
            .filter_map(|s| s.api_calls)
            .map(|(calls, writes)| format!("{calls} ({writes})"))
            .next_back()
            .unwrap_or_else(|| "—".to_owned());
        let changes = direct
            .iter()
            .filter_map(|s| s.changes.clone())
            .next_back()
            .unwrap_or_else(|| "none".to_owned());
        let added = match (wall, wall_delayed) {
            (Some(a), Some(b)) => fmt_duration(b.saturating_sub(a)),
            _ => "—".to_owned(),
        };
        table.row(vec![
            step.label.to_owned(),
            changes,
            calls,
            requests.map_or("—".to_owned(), |r| r.to_string()),
            wall.map_or("—".to_owned(), fmt_duration),
            wall_delayed.map_or("—".to_owned(), fmt_duration),
            added,
            requests.map_or("—".to_owned(), |r| {
                fmt_duration(latency * u32::try_from(r).unwrap_or(u32::MAX))
            }),
        ]);
    }
    let check = overheads.cargo_check.map_or("—".to_owned(), fmt_duration);
    let fmt = |d: Option<Duration>| d.map_or("—".to_owned(), fmt_duration);
    let (new_build, unchanged_build) = (
        fmt(overheads.packaging.new_build),
        fmt(overheads.packaging.unchanged_build),
    );
    format!(
        "{}\n\
         `stacks/exif-pipeline.yaml` in env `local` (2 buckets, 2 parameters, 2 users with \
         their policies and access keys, the role, the function and its log group, its invoke \
         permission, its failures queue and invoke configuration, and the bucket notification), \
         each step run as `cargo xtask STEP --env \
         local` against \
         the bench's emulator; median of {runs} cycles per column. Each cycle runs the \
         steps in the order of the table; \"from empty\" means none of the stack's resources \
         exist (the state bucket, made once per account and region, does after the first \
         cycle).\n\n\
         - **API calls (writes)**: what the deployer prints (`N API calls (M writes)`): the \
         calls that read and change resources; state, lock and bundle bookkeeping are not \
         counted there. `plan` does not print it.\n\
         - **HTTP requests**: everything the command sent, counted by the proxy in front \
         of the emulator: the API calls plus STS, the emulator health check, the state \
         document, the lock and the bundle upload.\n\
         - **wall, +{rtt_ms} ms RTT**: the same cycle with every request delayed by a \
         {rtt_ms} ms round trip (and every new connection by one more, for the TCP \
         handshake) by a proxy on 127.0.0.1 (`xtask/src/bench/proxy.rs`). **added by \
         latency** is the difference; **requests × {rtt_ms} ms** is what the latency would \
         add if the requests were made one after another. Where the added time is far \
         below it, the deployer's parallel reads and dependency-ordered parallel writes \
         are paying off.\n\
         - Each deploy also runs `cargo build -p lambda -p workspace-hack` first (the bundle \
         step). With nothing to rebuild it took **{check}** here (median of {check_runs}); \
         it is left out of the table: the bench's deploys zip a pre-built binary \
         (`CARGO=true` and a private `CARGO_TARGET_DIR`) so that other builds on the \
         machine cannot distort them. The rest of the bundle step is in the table: checking, \
         zipping and hashing a new build took **{new_build}**, and **{unchanged_build}** for \
         an unchanged one, whose zip is reused (medians of {check_runs}; the xtask is a dev \
         build). The code-only change deploys that binary \
         with a few bytes appended: a new zip hash, so an upload and `UpdateFunctionCode`.",
        table.to_markdown(),
        check_runs = runs.clamp(1, 3),
    )
}
