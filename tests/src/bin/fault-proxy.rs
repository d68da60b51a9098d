//! The harness's fault proxy (`stripstack_tests::fault_proxy`) as a process of its own, for
//! `cargo xtask bench` (section 3's run under AWS-like faults): the proxy belongs to the
//! tests, not to the product, so the bench starts this binary instead of linking it.
//!
//! ```text
//! fault-proxy --upstream http://127.0.0.1:PORT --seed N
//! ```
//!
//! Starts [`FaultConfig::aws_like`]`(N)` in front of `upstream` (a loopback emulator) and
//! prints `listening http://127.0.0.1:PORT` once it accepts connections. Then, for every line
//! read on stdin, prints what it has done so far as one JSON object (`requests`, `retried`:
//! the errors it injected, and `classes`: each fault class of [`FaultStats::classes`] with
//! its count); it stops at the end of stdin.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;

use stripstack_tests::fault_proxy::{FaultConfig, FaultProxy, FaultStats};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fault-proxy: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let (upstream, seed) = parse(std::env::args().skip(1))?;
    let proxy = FaultProxy::start(&upstream, FaultConfig::aws_like(seed))
        .map_err(|err| format!("cannot start: {err}"))?;
    let mut stdout = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|err| format!("cannot write to stdout: {err}"))
    };
    say(format!("listening {}", proxy.endpoint()))?;
    for line in std::io::stdin().lock().lines() {
        line.map_err(|err| format!("cannot read stdin: {err}"))?;
        say(counts(&proxy.stats()).to_string())?;
    }
    Ok(())
}

/// The counts `cargo xtask bench` reads: requests, the errors injected (the retries they
/// forced), and every fault class in the proxy's order.
fn counts(stats: &FaultStats) -> serde_json::Value {
    serde_json::json!({
        "requests": stats.requests,
        "retried": stats.injected_errors(),
        "classes": stats.classes(),
    })
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, u64), String> {
    const USAGE: &str = "usage: fault-proxy --upstream http://127.0.0.1:PORT --seed N";
    let (mut upstream, mut seed) = (None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--upstream" => upstream = Some(value),
            "--seed" => {
                seed = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--seed {value:?} is not a number; {USAGE}"))?,
                )
            }
            _ => return Err(format!("unknown argument {flag:?}; {USAGE}")),
        }
    }
    match (upstream, seed) {
        (Some(upstream), Some(seed)) => Ok((upstream, seed)),
        _ => Err(USAGE.to_owned()),
    }
}
