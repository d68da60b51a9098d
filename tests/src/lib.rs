//! Shared harness for integration tests: one private MiniStack per test binary, unique
//! resource names per test, and SDK clients pointed at the emulator.
//!
//! The emulator starts on first use, on a free port of 127.0.0.1, with its state under
//! `target/ministack-tests/<binary>-<pid>/` (its log is `ministack.log` there), and is shared
//! by every test of the binary — so tests must use [`unique`] names and never reset it. It is
//! stopped, with every function process it spawned, when the test process exits, however it
//! exits (see [`xtask::emulator::Emulator::launch_guarded`]). Without python3, venv or pip the
//! first test panics with the command that fixes it; nothing is ever skipped.
//!
//! ```no_run
//! # async fn example() {
//! let bucket = stripstack_tests::unique("photos");
//! let s3 = stripstack_tests::s3(); // in REGION, us-east-1: no location constraint needed
//! s3.create_bucket().bucket(&bucket).send().await.unwrap();
//! // `cargo xtask` as a child process, pointed at the same emulator:
//! let output = stripstack_tests::xtask(&["plan", "--env", "local"]).output().unwrap();
//! # }
//! ```

pub mod fault_proxy;
pub mod schema;
mod test_stack;

pub use test_stack::TestStack;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use xtask::emulator::{Emulator, StopGuard};

/// The region the harness's clients use unless a test asks for another ([`config_in`]).
/// MiniStack keeps buckets and functions per region, like AWS: test stacks declare this
/// region, and tests of `stacks/exif-pipeline.yaml` (eu-west-2) use `config_in`.
pub const REGION: &str = "us-east-1";
/// MiniStack's admin credentials: they act as the account root and bypass IAM checks.
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";
/// The account id MiniStack answers for its admin credentials.
pub const ACCOUNT: &str = "000000000000";

struct Running {
    emulator: Emulator,
    /// Never dropped (it lives in a static): the emulator stops when the process exits.
    _guard: StopGuard,
}

/// The emulator of this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    // The error is kept too, so that every test fails at once with the same message instead
    // of each retrying a start that cannot work.
    static RUNNING: OnceLock<Result<Running, String>> = OnceLock::new();
    match RUNNING.get_or_init(start) {
        Ok(running) => &running.emulator,
        Err(message) => panic!("{message}"),
    }
}

/// `http://127.0.0.1:PORT` of this binary's emulator.
pub fn endpoint() -> String {
    emulator().endpoint()
}

/// The environment that points an AWS tool run as a child process (`cargo xtask`, the AWS
/// CLI) at this binary's emulator with the admin credentials.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_string()),
        ("AWS_REGION", REGION.to_string()),
    ]
}

/// A name no other test of any binary will use: `<prefix>-<pid>-<time>-<counter>`,
/// lowercase letters, digits and hyphens, so valid for buckets, IAM and SSM alike.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let name = format!(
        "{}-{}-{}-{}",
        prefix.trim_matches('-'),
        std::process::id(),
        seconds % 1_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    assert!(
        name.len() <= 63,
        "unique({prefix:?}) is too long for a bucket name: {name}"
    );
    name
}

/// The `CreateBucketConfiguration` for a bucket in [`REGION`]: none for us-east-1, the one
/// region S3 refuses as a location constraint.
pub fn bucket_location() -> Option<aws_sdk_s3::types::CreateBucketConfiguration> {
    (REGION != "us-east-1").then(|| {
        aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(REGION.into())
            .build()
    })
}

/// SDK configuration for this binary's emulator in [`REGION`].
pub fn config() -> SdkConfig {
    config_in(REGION)
}

/// SDK configuration for this binary's emulator in `region`.
pub fn config_in(region: &str) -> SdkConfig {
    sdk_config(&endpoint(), region)
}

/// SDK configuration for the emulator at `endpoint` with the admin credentials. Built by hand
/// rather than loaded, so nothing from the developer's environment or `~/.aws` can redirect
/// the tests.
pub fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "harness");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

pub fn s3() -> aws_sdk_s3::Client {
    s3_with(&config())
}

/// An S3 client from any configuration (another emulator, a user's credentials), path-style.
pub fn s3_with(config: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub fn iam() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&config())
}

pub fn sts() -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&config())
}

pub fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&config())
}

pub fn lambda() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&config())
}

pub fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&config())
}

pub fn logs() -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&config())
}

/// A second emulator, private to one test, for tests that must stop or wipe it. It stops when
/// the guard is dropped (or the process exits).
pub fn private_emulator(name: &str) -> (Emulator, StopGuard) {
    let state_dir = runs_dir().join(format!("{}-{}", unique(name), std::process::id()));
    launch_on_free_port(&state_dir).unwrap_or_else(|message| panic!("{message}"))
}

fn start() -> Result<Running, String> {
    let runs = runs_dir();
    remove_dead_runs(&runs);
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "tests".to_string());
    let state_dir = runs.join(format!("{binary}-{}", std::process::id()));
    let (emulator, guard) = launch_on_free_port(&state_dir)?;
    Ok(Running {
        emulator,
        _guard: guard,
    })
}

/// Where every test emulator keeps its state: one directory per emulator, named `…-<pid>`
/// after the test process that owns it.
fn runs_dir() -> PathBuf {
    xtask::workspace::target_dir().join("ministack-tests")
}

fn launch_on_free_port(state_dir: &Path) -> Result<(Emulator, StopGuard), String> {
    let version = xtask::emulator::MINISTACK_VERSION;
    xtask::emulator::ensure_installed().map_err(|err| {
        format!("cannot install the test emulator (MiniStack {version}): {err:#}")
    })?;
    Emulator::launch_on_free_port(state_dir)
        .map_err(|err| format!("cannot start a test emulator: {err:#}"))
}

/// Remove the state of earlier test runs whose process has exited. Each run keeps its state
/// until then, so a failed run's `ministack.log` can be read afterwards.
fn remove_dead_runs(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                // Best effort: a directory another run is still deleting is not our problem.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// `cargo xtask ARGS…` pointed at this binary's emulator, run from the repository root.
pub fn xtask(args: &[&str]) -> Command {
    // Built as a shell's cargo would build it, so the tests reuse what `cargo xtask` and the
    // bootstrap build compiled (see `xtask::workspace::cargo`).
    let mut command = xtask::workspace::cargo();
    // Nothing from the developer's AWS set-up (profile, session token, endpoints) may mix in.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|key| key.starts_with("AWS_")) {
            command.env_remove(key);
        }
    }
    command.arg("xtask").args(args).envs(aws_env());
    command
}

/// What a command did, for assertion messages: its status, stdout and stderr.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stack file of a test's own under `target/test-stacks/`, uniquely named, driven in env
/// `local` with `cargo xtask COMMAND --env local --stack PATH` plus the engine's arguments.
/// The test writes its content.
pub struct StackFile {
    pub name: String,
    pub path: PathBuf,
    engine_args: &'static [&'static str],
    /// Where `cargo xtask` is pointed instead of the emulator (a fault proxy).
    endpoint: Option<String>,
}

impl StackFile {
    pub fn new(prefix: &str, engine_args: &'static [&'static str]) -> Self {
        let name = unique(prefix);
        let dir = xtask::workspace::target_dir().join("test-stacks");
        std::fs::create_dir_all(&dir).expect("create target/test-stacks");
        let path = dir.join(format!("{name}.yaml"));
        StackFile {
            name,
            path,
            engine_args,
            endpoint: None,
        }
    }

    /// Every command sent through `endpoint` (a [`fault_proxy`]) instead of straight to the
    /// emulator.
    pub fn through(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    pub fn run(&self, command: &str, extra: &[&str]) -> std::process::Output {
        let path = self.path.to_string_lossy().into_owned();
        let mut args = vec![command, "--env", "local", "--stack", path.as_str()];
        args.extend_from_slice(self.engine_args);
        args.extend_from_slice(extra);
        let mut command = match &self.endpoint {
            Some(endpoint) => fault_proxy::xtask(endpoint, &args),
            None => xtask(&args),
        };
        let output = command.output().expect("run cargo xtask");
        if output.status.success() {
            // A stack the deployer accepted is one an editor following the schema accepts.
            let yaml = std::fs::read_to_string(&self.path).expect("read the test stack");
            if let Err(refused) = schema::check(&yaml) {
                panic!(
                    "`cargo xtask {}` accepted {}, but stacks/stack.schema.json refuses it:\n{refused}",
                    args[0],
                    self.path.display()
                );
            }
        }
        output
    }

    /// The plan as JSON, and the exit code of `plan --detailed-exitcode`.
    pub fn plan(&self) -> (serde_json::Value, i32) {
        let out = self.run("plan", &["--json", "--detailed-exitcode"]);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 2,
            "plan failed:\n{}",
            output_text(&out)
        );
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("plan --json printed no JSON ({e}):\n{}", output_text(&out))
        });
        (json, code)
    }

    pub fn deploy(&self) -> std::process::Output {
        let out = self.run("deploy", &["--yes"]);
        assert!(
            out.status.success(),
            "deploy failed:\n{}",
            output_text(&out)
        );
        out
    }

    pub fn destroy(&self) -> std::process::Output {
        let out = self.run("destroy", &["--yes"]);
        assert!(
            out.status.success(),
            "destroy failed:\n{}",
            output_text(&out)
        );
        out
    }
}

/// `(action, address)` of every change of a plan printed by `plan --json` (for the
/// CloudFormation engine, of one part of it: `plan["cloudformation"]`, `plan["sdk"]`), in
/// the plan's order.
pub fn plan_changes(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {plan:#}"))
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or_default().to_owned(),
                c["address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The names of the properties a plan (or part of one, as [`plan_changes`]) changes on
/// `address`.
pub fn changed_properties(plan: &serde_json::Value, address: &str) -> Vec<String> {
    plan["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["address"] == address)
        .flat_map(|c| c["properties"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

pub async fn bucket_exists(name: &str) -> bool {
    s3().head_bucket().bucket(name).send().await.is_ok()
}
