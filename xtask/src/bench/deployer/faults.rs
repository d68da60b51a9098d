//! Section 3's run under AWS-like faults: `deploy` from empty and `destroy` through the test
//! harness's fault proxy (`tests/src/fault_proxy.rs`, issue 13), which throttles 20 % of
//! requests with each service's own error, fails 3 % with 5xx and, for 3 s after each
//! create, answers as real AWS does while it propagates (NoSuchBucket, IAM NoSuchEntity, a
//! role Lambda cannot assume yet, a notification S3 cannot validate yet, a function still
//! Pending or updating, stale reads). One cycle per seed, seeds 1 to `runs`.
//!
//! The proxy is the harness's, not the product's: it is built and started as the tests
//! crate's `fault-proxy` binary, which prints its counts when asked. Every error it injects
//! is one the deployer had to retry (or wait out) for the step to succeed, so its counts per
//! fault class are the retries each class caused.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::super::report::{fmt_duration, median_count, median_duration, Table};
use super::{Cycle, STEPS};

/// How long the proxy may take to start or to answer for its counts.
const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy counted (the `fault-proxy` binary's answer): requests, the errors it
/// injected (each one the deployer had to retry), and every fault class in the proxy's
/// order, waited-out ones (rewritten function states, stale reads) included.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Counts {
    requests: u64,
    retried: u64,
    classes: Vec<(String, u64)>,
}

impl Counts {
    /// What was counted since `earlier`.
    fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            requests: self.requests.saturating_sub(earlier.requests),
            retried: self.retried.saturating_sub(earlier.retried),
            classes: self
                .classes
                .iter()
                .map(|(class, now)| {
                    let then = earlier
                        .classes
                        .iter()
                        .find(|(c, _)| c == class)
                        .map_or(0, |(_, n)| *n);
                    (class.clone(), now.saturating_sub(then))
                })
                .collect(),
        }
    }
}

/// One step of one seed's cycle.
pub(super) struct FaultSample {
    wall: Duration,
    counts: Counts,
}

/// The steps measured under faults, each with its samples (one per seed).
pub(super) struct FaultRuns(Vec<(&'static str, Vec<FaultSample>)>);

pub(super) async fn measure(
    cycle: &Cycle<'_>,
    upstream: &str,
    runs: usize,
) -> anyhow::Result<FaultRuns> {
    let program = build_proxy().await?;
    let steps: Vec<_> = STEPS.iter().filter(|step| step.under_faults).collect();
    let mut samples: Vec<Vec<FaultSample>> = steps.iter().map(|_| Vec::new()).collect();
    for seed in 1..=u64::try_from(runs.max(1)).unwrap_or(1) {
        let mut proxy = FaultProxyProcess::start(&program, upstream, seed).await?;
        for (index, step) in steps.iter().enumerate() {
            let before = proxy.counts().await?;
            let (wall, _, _) = cycle
                .execute(step, &proxy.endpoint, &format!("faults-{seed}"))
                .await
                .with_context(|| format!("{} under faults (seed {seed})", step.label))?;
            let counts = proxy.counts().await?.since(&before);
            samples[index].push(FaultSample { wall, counts });
        }
    }
    Ok(FaultRuns(
        steps.iter().map(|step| step.label).zip(samples).collect(),
    ))
}

/// Builds the harness's `fault-proxy` (a dev build, sharing what the tests compiled).
async fn build_proxy() -> anyhow::Result<PathBuf> {
    let mut command = Command::from(crate::workspace::cargo());
    let status = command
        .args([
            "build",
            "--quiet",
            "--package",
            "stripstack-tests",
            "--bin",
            "fault-proxy",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run cargo")?;
    anyhow::ensure!(
        status.success(),
        "`cargo build -p stripstack-tests --bin fault-proxy` failed ({status})"
    );
    Ok(crate::workspace::target_dir()
        .join("debug")
        .join("fault-proxy"))
}

/// A running `fault-proxy`; killed when dropped.
struct FaultProxyProcess {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    endpoint: String,
}

impl FaultProxyProcess {
    async fn start(program: &Path, upstream: &str, seed: u64) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .args(["--upstream", upstream, "--seed", &seed.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdin = child.stdin.take().context("the proxy's stdin")?;
        let stdout = child.stdout.take().context("the proxy's stdout")?;
        let mut proxy = FaultProxyProcess {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            endpoint: String::new(),
        };
        let first = proxy.next_line().await?;
        proxy.endpoint = first
            .strip_prefix("listening ")
            .with_context(|| format!("the fault proxy said {first:?}, not where it listens"))?
            .to_owned();
        Ok(proxy)
    }

    async fn counts(&mut self) -> anyhow::Result<Counts> {
        self.stdin
            .write_all(b"counts\n")
            .await
            .context("cannot ask the fault proxy")?;
        self.stdin
            .flush()
            .await
            .context("cannot ask the fault proxy")?;
        let line = self.next_line().await?;
        serde_json::from_str(&line).with_context(|| format!("the fault proxy said {line:?}"))
    }

    async fn next_line(&mut self) -> anyhow::Result<String> {
        tokio::time::timeout(PROXY_TIMEOUT, self.stdout.next_line())
            .await
            .context("the fault proxy did not answer")?
            .context("cannot read the fault proxy")?
            .context("the fault proxy stopped")
    }
}

impl FaultRuns {
    /// The table and its notes, below the deployer's main table.
    pub(super) fn render(&self) -> String {
        let seeds = self.0.first().map_or(0, |(_, samples)| samples.len());
        let mut table = Table::new(&[
            "step, under AWS-like faults",
            "wall",
            "slowest",
            "HTTP requests",
            "errors retried",
        ]);
        let mut by_class = Vec::new();
        for (label, samples) in &self.0 {
            let walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
            let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            let requests: Vec<usize> = samples.iter().map(|s| count(s.counts.requests)).collect();
            let retried: Vec<usize> = samples.iter().map(|s| count(s.counts.retried)).collect();
            let dash = || "—".to_owned();
            table.row(vec![
                (*label).to_owned(),
                median_duration(&walls).map_or_else(dash, fmt_duration),
                walls.iter().max().copied().map_or_else(dash, fmt_duration),
                median_count(&requests).map_or_else(dash, |r| r.to_string()),
                median_count(&retried).map_or_else(dash, |r| r.to_string()),
            ]);
            let names = samples
                .first()
                .map(|s| &s.counts.classes[..])
                .unwrap_or(&[]);
            let classes: Vec<String> = names
                .iter()
                .enumerate()
                .filter_map(|(i, (class, _))| {
                    let total: u64 = samples
                        .iter()
                        .filter_map(|s| s.counts.classes.get(i).map(|(_, n)| n))
                        .sum();
                    (total > 0).then(|| format!("{total} {class}"))
                })
                .collect();
            let classes = if classes.is_empty() {
                "none".to_owned()
            } else {
                classes.join(", ")
            };
            by_class.push(format!("- {label}: {classes}"));
        }
        format!(
            "{}\n\
             The same `deploy` from empty and `destroy` through the test harness's fault \
             proxy (`tests/src/fault_proxy.rs`): 20 % of requests throttled with each \
             service's own error, 3 % answered 500 or 503, and for 3 s after each create the \
             answers of real AWS while it propagates. One cycle per seed (1 to {seeds}); \
             **wall** and the counts are medians, **slowest** the worst seed. **errors \
             retried** counts the errors the proxy injected, each of which the deployer \
             retried or waited out for the step to succeed. By fault class, all seeds \
             together:\n\n{}",
            table.to_markdown(),
            by_class.join("\n"),
        )
    }
}
