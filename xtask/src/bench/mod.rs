//! `cargo xtask bench`: the numbers behind stripstack's claims, measured on this machine and
//! written to `BENCHMARKS.md`.
//!
//! Sections, each in its own module: the stripper's throughput ([`stripper`]), the Lambda
//! ([`lambda`]: sizes, cold start, time per picture, peak memory), the deployer
//! ([`deployer`]: wall time and API calls, with and without added network latency),
//! opt-in, cold builds ([`cold_build`]), and the Lambda per architecture
//! ([`architectures`]: the host build and both cross builds, arm64 under qemu), renditions
//! against Pillow and libvips ([`renditions`]) and `reconcile` ([`reconcile`]: objects
//! classified per second, repair throughput). One more
//! section, the Lambda's release profile, is measured by hand ([`PROFILE_SECTION`]): the
//! command keeps it as it is. Every figure is the median of several runs; timing
//! never fails the command, only a measurement that cannot be made does.
//!
//! The Lambda and deployer sections share a private emulator on a free port of 127.0.0.1
//! (never the shared 4566), stopped with everything it spawned when the command ends, and a
//! private copy of the release `bootstrap`, so a concurrent rebuild cannot change the binary
//! under measurement. Pure parts (medians, tables, parsing, merging into the existing file)
//! are in [`report`].
//!
//! The command prints the report and writes it to `BENCHMARKS.md` (or `--output FILE`).
//! Sections not measured in a run (`--only`, or cold builds without `--cold-build`) keep
//! what the file already had, so the file can be updated one section at a time.

mod architectures;
mod cold_build;
mod deployer;
mod lambda;
mod proxy;
mod reconcile;
mod renditions;
mod report;
pub mod runtime_api;
mod stripper;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::aws::Clients;
use crate::bundle::{BuildTarget, Bundle, LambdaTarget};
use crate::emulator::{Emulator, StopGuard};

/// The emulator's root credentials (it accepts them as the account's administrator).
const ACCESS_KEY: &str = "test";
const SECRET_KEY: &str = "test";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Runs per figure (each figure is their median).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// Measure only these sections (comma-separated); the file keeps the others as they were.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SECTION")]
    pub only: Vec<Section>,
    /// Also measure a new user's first two commands from a clean clone (section 4):
    /// tens of minutes of every core, so only on request.
    #[arg(long)]
    pub cold_build: bool,
    /// The commit the cold-build section clones (default: `HEAD`, so commit first); an
    /// older one gives the "before" of a change.
    #[arg(
        long,
        value_name = "REV",
        default_value = "HEAD",
        requires = "cold_build"
    )]
    pub cold_build_rev: String,
    /// Round-trip latency, in milliseconds, added in front of the emulator for the
    /// deployer's second series.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub latency_ms: u64,
    /// How many objects `reconcile` classifies in section 8, one figure per count
    /// (comma-separated, ascending).
    #[arg(long, value_delimiter = ',', value_name = "OBJECTS", default_values_t = [10_000, 100_000])]
    pub reconcile_objects: Vec<usize>,
    /// How many pictures section 8's repair strips.
    #[arg(long, value_name = "PICTURES", default_value_t = 200)]
    pub reconcile_pictures: usize,
    /// Where to write the report (default: BENCHMARKS.md at the repository root); `-`
    /// only prints it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Stripper,
    Lambda,
    Deployer,
    ColdBuild,
    Architectures,
    Renditions,
    Reconcile,
}

/// The id of the section written by hand (the release profile's options, each a cold
/// build): never measured by the command, kept as the file has it.
pub const PROFILE_SECTION: &str = "lambda-profile";

impl Section {
    const ALL: [Section; 7] = [
        Section::Stripper,
        Section::Lambda,
        Section::Deployer,
        Section::ColdBuild,
        Section::Architectures,
        Section::Renditions,
        Section::Reconcile,
    ];

    /// The id of its markers in the file.
    fn id(self) -> &'static str {
        match self {
            Section::Stripper => "stripper",
            Section::Lambda => "lambda",
            Section::Deployer => "deployer",
            Section::ColdBuild => "cold-build",
            Section::Architectures => "architectures",
            Section::Renditions => "renditions",
            Section::Reconcile => "reconcile",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Section::Stripper => "## 1. Stripper throughput",
            Section::Lambda => "## 2. The Lambda",
            Section::Deployer => "## 3. The deployer",
            Section::ColdBuild => "## 4. Cold builds",
            Section::Architectures => "## 5. The Lambda per architecture",
            Section::Renditions => "## 7. Renditions against Pillow and libvips",
            Section::Reconcile => "## 8. `reconcile`: classification and repair",
        }
    }
}

impl BenchArgs {
    fn wants(&self, section: Section) -> bool {
        if self.only.is_empty() {
            section != Section::ColdBuild || self.cold_build
        } else {
            self.only.contains(&section) || (section == Section::ColdBuild && self.cold_build)
        }
    }
}

/// What the Lambda and deployer sections share.
pub(crate) struct Setup {
    /// The bench's scratch directory (logs, the deployer's target directory).
    work: PathBuf,
    /// The host build `deploy --env local` ships (dev profile, for the emulator).
    bundle: Bundle,
    /// The bench's own copy of its bootstrap.
    bootstrap: PathBuf,
    emulator: Emulator,
    _emulator_guard: StopGuard,
}

impl Setup {
    fn new(work: PathBuf) -> anyhow::Result<Setup> {
        eprintln!("bench: building the Lambda for the emulator (cargo xtask bundle) …");
        let (bundle, bootstrap) = build_copy(&work, BuildTarget::Host)?;
        eprintln!("bench: starting a private emulator …");
        let (emulator, guard) = Emulator::launch_on_free_port(&work.join("ministack"))
            .context("cannot start the bench's emulator")?;
        Ok(Setup {
            work,
            bundle,
            bootstrap,
            emulator,
            _emulator_guard: guard,
        })
    }

    /// The bootstrap as it is shipped to Lambda on this machine's CPU (the `lambda` profile,
    /// cross-built against glibc 2.34), built and copied: what the Lambda section measures.
    fn shipped(&self) -> anyhow::Result<(Bundle, PathBuf)> {
        let Some(target) = LambdaTarget::host() else {
            anyhow::bail!("this CPU is neither x86_64 nor arm64: Lambda has no build to run here");
        };
        build_copy(&self.work, BuildTarget::Lambda(target))
    }

    /// Clients for the emulator with its root credentials, built by hand so nothing of the
    /// developer's AWS set-up can redirect them.
    fn clients(&self, region: &str) -> Clients {
        let credentials = aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "stripstack-bench",
        );
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .endpoint_url(self.emulator.endpoint())
            .build();
        Clients::new(&config)
    }

    /// A log file in the scratch directory, appended to.
    fn log_file(&self, name: &str) -> anyhow::Result<File> {
        let path = self.work.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }
}

/// The bench's scratch directory, removed when the command ends unless `keep` (its logs
/// explain a failed measurement).
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The machine and its state, for the conditions line of each section.
struct Machine {
    cores: usize,
    cpu: String,
    memory_gb: Option<f64>,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: report::cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_owned()),
            memory_gb: report::kib_field(&meminfo, "MemTotal").map(|kib| kib as f64 * 1024.0 / 1e9),
        }
    }

    fn describe(&self) -> String {
        let memory = self
            .memory_gb
            .map_or(String::new(), |gb| format!(", {gb:.0} GB RAM"));
        format!("{} cores, {}{memory}", self.cores, self.cpu)
    }
}

fn load_average() -> Option<f64> {
    report::load_average(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    report::utc_timestamp(secs)
}

/// The line under each section's title: when, where, how loaded, how many runs. Only the
/// load before the section tells of other work: the bench itself keeps a core or two busy.
fn conditions(machine: &Machine, load: (Option<f64>, Option<f64>), runs: Option<usize>) -> String {
    let fmt_load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
    let runs = runs.map_or(String::new(), |n| match n {
        1 => ", one run per figure".to_owned(),
        n => format!(", median of {n} runs per figure"),
    });
    let noisy = if load.0.is_some_and(|l| l >= 1.0) {
        " The machine was busy with other work: expect noise."
    } else {
        ""
    };
    format!(
        "*Measured {} on {}; 1-minute load average {} before, {} after (the bench's own work \
         included){runs}.*{noisy}",
        now_utc(),
        machine.describe(),
        fmt_load(load.0),
        fmt_load(load.1),
    )
}

const PREAMBLE: &str = "# Benchmarks

What stripstack costs and how fast it is, measured by `cargo xtask bench` (written to this \
file). Anyone can reproduce them with that one command: it builds the Lambda, starts a \
private local emulator, measures, and updates this file; `--only SECTION` re-measures one \
section, `--cold-build` adds the (expensive) cold build times, `--runs N` changes the number \
of runs behind each median. The numbers report; they never fail anything.

Each section says when and on what it was measured, and how busy the machine was: the \
development machine is a shared 2-core VM on which other builds and tests run, so figures \
taken under load are noisy (ratios measured within one run, like stripper ÷ memory copy, \
suffer least). The figures against the emulator (handler time, deployer) include the \
emulator's own time — a Python server on the same cores — and no network latency except \
what section 3 adds on purpose.";

/// `cargo xtask bench-render`: see [`renditions::worker`].
pub fn render_worker(
    input: &Path,
    edge: u32,
    quality: u8,
    runs: usize,
    out: &Path,
) -> anyhow::Result<()> {
    renditions::worker(input, edge, quality, runs, out)
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let runs = usize::try_from(args.runs).unwrap_or(5);
    let latency = Duration::from_millis(args.latency_ms);
    let work = crate::workspace::target_dir()
        .join("stripstack")
        .join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let mut work = WorkDir {
        path: work,
        keep: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let machine = Machine::read();
    // Built on first need, and kept for the sections after.
    let mut setup: Option<Result<Setup, String>> = None;
    let mut fresh: Vec<(Section, Option<String>)> = Vec::new();
    let mut failed = false;

    for section in Section::ALL {
        if !args.wants(section) {
            fresh.push((section, None));
            continue;
        }
        eprintln!("bench: measuring {} …", section.id());
        let load_start = load_average();
        let measured = match section {
            Section::Stripper => stripper::measure(runs),
            Section::Renditions => renditions::measure(&work.path, runs),
            Section::ColdBuild => cold_build::measure(&args.cold_build_rev),
            Section::Lambda | Section::Deployer | Section::Architectures | Section::Reconcile => {
                let ready = setup.get_or_insert_with(|| {
                    Setup::new(work.path.clone()).map_err(|e| format!("{e:#}"))
                });
                match ready {
                    Err(e) => Err(anyhow::anyhow!("{e}")),
                    Ok(setup) if section == Section::Lambda => {
                        runtime.block_on(lambda::measure(setup, runs))
                    }
                    Ok(setup) if section == Section::Architectures => {
                        runtime.block_on(architectures::measure(setup, runs))
                    }
                    Ok(setup) if section == Section::Reconcile => {
                        runtime.block_on(reconcile::measure(
                            setup,
                            runs,
                            &args.reconcile_objects,
                            args.reconcile_pictures,
                        ))
                    }
                    Ok(setup) => runtime.block_on(deployer::measure(setup, runs, latency)),
                }
            }
        };
        match measured {
            Ok(body) => {
                let shown_runs = (section != Section::ColdBuild).then_some(runs);
                let text = format!(
                    "{}\n\n{}\n\n{body}",
                    section.title(),
                    conditions(&machine, (load_start, load_average()), shown_runs)
                );
                println!("{text}\n");
                fresh.push((section, Some(text)));
            }
            Err(e) => {
                eprintln!("bench: {} not measured: {e:#}", section.id());
                failed = true;
                fresh.push((section, None));
            }
        }
    }
    // Stop the emulator (and its function processes) before writing anything.
    drop(setup);

    let path = match &args.output {
        Some(path) if path.as_os_str() == "-" => None,
        Some(path) => Some(path.clone()),
        None => Some(crate::workspace::root().join("BENCHMARKS.md")),
    };
    if let Some(path) = path {
        let previous = std::fs::read_to_string(&path).ok();
        // The hand-measured section 6 sits before sections 7 (renditions) and 8 (reconcile).
        let (renditions, measured): (Vec<_>, Vec<_>) = fresh
            .into_iter()
            .partition(|(section, _)| matches!(section, Section::Renditions | Section::Reconcile));
        let sections: Vec<(&str, Option<String>)> = measured
            .into_iter()
            .map(|(section, text)| (section.id(), text))
            .chain([(PROFILE_SECTION, None)])
            .chain(
                renditions
                    .into_iter()
                    .map(|(section, text)| (section.id(), text)),
            )
            .collect();
        let file = report::assemble(PREAMBLE, &sections, previous.as_deref(), |id| {
            if id == PROFILE_SECTION {
                return "## 6. The Lambda's release profile\n\nMeasured by hand; not recorded \
                        yet."
                    .to_owned();
            }
            let title = Section::ALL
                .iter()
                .find(|s| s.id() == id)
                .map_or("## ?", |s| s.title());
            format!("{title}\n\nNot measured yet: `cargo xtask bench --only {id}`.")
        });
        std::fs::write(&path, file).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    if failed {
        work.keep = true;
        eprintln!("bench: logs kept in {}", work.path.display());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the bootstrap for `target` and copies it into the bench's directory: a concurrent
/// rebuild cannot change what is measured.
fn build_copy(work: &Path, target: BuildTarget) -> anyhow::Result<(Bundle, PathBuf)> {
    let bundle = crate::bundle::build_for("lambda", target)?;
    let copy = work.join(format!("bootstrap-{}", target.label()));
    std::fs::copy(&bundle.binary_path, &copy).with_context(|| {
        format!(
            "cannot copy {} to {}",
            bundle.binary_path.display(),
            copy.display()
        )
    })?;
    Ok((bundle, copy))
}
