//! Section 2: the Lambda. Sizes of the shipped `bootstrap` (the Lambda build for this
//! machine's CPU) and its zip; its cold start;
//! its time per picture and its peak memory, with the real binary against the emulator's
//! S3.
//!
//! The bootstrap runs as a plain local process, driven by a fake Runtime API
//! ([`super::runtime_api`]) that hands it S3 events for objects put in the emulator, exactly
//! as Lambda would. So the figures are the function's own, without the emulator's way of
//! starting functions (which unzips the code for every new version).

use crate::aws::SdkResultExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::report::{fmt_duration, fmt_mb, fmt_size, kib_field, median, median_duration, Table};
use super::runtime_api::{FakeRuntimeApi, Report};
use super::Setup;

/// Longest wait for the bootstrap to become ready, and for one picture.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PICTURE_TIMEOUT: Duration = Duration::from_secs(300);
/// Picture sizes whose peak memory is shown: it must not grow with them.
const RSS_SIZES: [usize; 3] = [5_000_000, 25_000_000, 100_000_000];
/// glibc's malloc raises its mmap threshold when a large block is freed, after which freed
/// part buffers may stay resident: the largest picture is measured once more with the
/// threshold fixed, to tell what the allocator keeps from what the function holds.
const FIXED_MMAP_THRESHOLD: (&str, &str) = ("MALLOC_MMAP_THRESHOLD_", "131072");
/// The picture of the per-picture timing.
const TIMED_SIZE: usize = 5_000_000;
/// The region of the section's buckets (us-east-1 takes no location constraint).
const REGION: &str = "us-east-1";

/// The figures of the section.
struct Figures {
    binary_bytes: u64,
    zip_bytes: u64,
    cold_start: Option<Duration>,
    ready_rss_kib: Option<f64>,
    warm_event: Option<Duration>,
    /// Per case: (bytes, fixed mmap threshold, peak RSS KiB, handler time in a fresh
    /// process).
    rss: Vec<(usize, bool, Option<f64>, Option<Duration>)>,
    runs: usize,
}

/// How a bootstrap is started: its binary, run directly or through an emulator
/// (`qemu-aarch64 -L SYSROOT binary`).
pub(super) struct Launch {
    pub program: std::path::PathBuf,
    pub args: Vec<std::ffi::OsString>,
}

impl Launch {
    pub fn native(binary: &Path) -> Launch {
        Launch {
            program: binary.to_owned(),
            args: Vec::new(),
        }
    }
}

/// From spawning `launch` to its first request for an event, once (a fresh process).
pub(super) async fn cold_start(setup: &Setup, launch: &Launch) -> anyhow::Result<Duration> {
    let bootstrap = Bootstrap::start(setup, launch, "stripstack-bench-unused", None).await?;
    let cold = bootstrap.ready - bootstrap.started;
    bootstrap.stop().await;
    Ok(cold)
}

/// A bootstrap process talking to its own fake Runtime API.
struct Bootstrap {
    api: FakeRuntimeApi,
    child: Child,
    pid: u32,
    /// When the process was started, and when it first asked for an event.
    started: Instant,
    ready: Instant,
}

/// Where the section's objects live in the emulator.
struct Buckets {
    s3: aws_sdk_s3::Client,
    source: String,
    destination: String,
}

pub async fn measure(setup: &Setup, runs: usize) -> anyhow::Result<String> {
    // Cargo runs for minutes on a cold build: off the async workers.
    let (bundle, binary) = tokio::task::block_in_place(|| setup.shipped())?;
    let s3 = setup.clients(REGION).s3;
    let buckets = Buckets {
        s3,
        source: format!("stripstack-bench-source-{}", std::process::id()),
        destination: format!("stripstack-bench-destination-{}", std::process::id()),
    };
    for bucket in [&buckets.source, &buckets.destination] {
        buckets
            .s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_aws_context(|| format!("cannot create bucket {bucket}"))?;
    }
    let corpus = crate::workspace::root().join("tests/fixtures/corpus");

    let mut cold = Vec::new();
    let mut ready_rss = Vec::new();
    for _ in 0..runs {
        let bootstrap =
            Bootstrap::start(setup, &Launch::native(&binary), &buckets.destination, None).await?;
        cold.push(bootstrap.ready - bootstrap.started);
        ready_rss.extend(peak_rss_kib(bootstrap.pid));
        bootstrap.stop().await;
    }

    // One process, one picture again and again, as in a warm Lambda container. The first
    // event is a warm-up (its time, that of a fresh process, is in the memory table).
    let key = put_picture(&buckets, &corpus, TIMED_SIZE).await?;
    let mut bootstrap =
        Bootstrap::start(setup, &Launch::native(&binary), &buckets.destination, None).await?;
    let mut warm = Vec::new();
    for run in 0..=runs {
        buckets.remove_copy(&key).await?;
        let time = bootstrap
            .handle(&buckets, &key, &format!("warm-{run}"))
            .await?;
        if run > 0 {
            warm.push(time);
        }
    }
    bootstrap.stop().await;
    buckets.check_copy(&key, TIMED_SIZE).await?;
    buckets.remove(&key).await?;

    let mut rss = Vec::new();
    let largest = RSS_SIZES[RSS_SIZES.len() - 1];
    let cases = RSS_SIZES
        .iter()
        .map(|&size| (size, false))
        .chain([(largest, true)]);
    for (size, fixed) in cases {
        let key = put_picture(&buckets, &corpus, size).await?;
        let env = fixed.then_some(FIXED_MMAP_THRESHOLD);
        let (mut peaks, mut durations) = (Vec::new(), Vec::new());
        for run in 0..runs {
            buckets.remove_copy(&key).await?;
            let mut bootstrap =
                Bootstrap::start(setup, &Launch::native(&binary), &buckets.destination, env)
                    .await?;
            let request_id = format!("rss-{size}-{fixed}-{run}");
            durations.push(bootstrap.handle(&buckets, &key, &request_id).await?);
            peaks.extend(peak_rss_kib(bootstrap.pid));
            bootstrap.stop().await;
        }
        buckets.check_copy(&key, size).await?;
        // The copies are done with: the emulator keeps objects in memory.
        buckets.remove(&key).await?;
        rss.push((size, fixed, median(&peaks), median_duration(&durations)));
    }

    let figures = Figures {
        binary_bytes: bundle.binary_bytes,
        zip_bytes: bundle.zip_bytes,
        cold_start: median_duration(&cold),
        ready_rss_kib: median(&ready_rss),
        warm_event: median_duration(&warm),
        rss,
        runs,
    };
    Ok(render(&figures))
}

/// Puts a picture of `size` bytes under `uploads/` in the source bucket; returns its key.
async fn put_picture(buckets: &Buckets, corpus: &Path, size: usize) -> anyhow::Result<String> {
    let picture = super::stripper::large_picture(corpus, size)?;
    let key = format!("uploads/bench-{}.jpg", fmt_mb(size as u64).replace(' ', ""));
    buckets
        .s3
        .put_object()
        .bucket(&buckets.source)
        .key(&key)
        .body(ByteStream::from(picture))
        .send()
        .await
        .with_aws_context(|| format!("cannot put {key}"))?;
    Ok(key)
}

impl Buckets {
    /// Deletes the stripped copy, so the next event makes it again instead of skipping.
    async fn remove_copy(&self, key: &str) -> anyhow::Result<()> {
        self.s3
            .delete_object()
            .bucket(&self.destination)
            .key(key)
            .send()
            .await
            .with_aws_context(|| format!("cannot delete the copy {key}"))?;
        Ok(())
    }

    async fn remove(&self, key: &str) -> anyhow::Result<()> {
        self.remove_copy(key).await?;
        self.s3
            .delete_object()
            .bucket(&self.source)
            .key(key)
            .send()
            .await
            .with_aws_context(|| format!("cannot delete {key}"))?;
        Ok(())
    }

    /// The work was really done: a copy exists, smaller than the original (metadata gone)
    /// but not by much (the picture is all there).
    async fn check_copy(&self, key: &str, size: usize) -> anyhow::Result<()> {
        let head = self
            .s3
            .head_object()
            .bucket(&self.destination)
            .key(key)
            .send()
            .await
            .with_aws_context(|| format!("the function wrote no copy of {key}"))?;
        let copy = head
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        anyhow::ensure!(
            copy < size && copy > size - size / 10,
            "the copy of {key} has {copy} bytes, the original {size}"
        );
        Ok(())
    }

    /// The S3 event of an upload of `key`, as S3 sends it (keys are form-encoded; the
    /// section's keys need no escaping).
    fn created_event(&self, key: &str) -> String {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": "2024-06-01T12:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench",
                   "bucket": {"name": self.source, "arn": format!("arn:aws:s3:::{}", self.source)},
                   "object": {"key": key, "size": 1}}
        }]})
        .to_string()
    }
}

impl Bootstrap {
    /// Starts the bootstrap (with one extra environment variable, if any) and waits until
    /// it asks for its first event.
    async fn start(
        setup: &Setup,
        launch: &Launch,
        destination: &str,
        extra_env: Option<(&str, &str)>,
    ) -> anyhow::Result<Bootstrap> {
        let mut api = FakeRuntimeApi::start().await?;
        let log = setup.log_file("bootstrap.log")?;
        let mut command = Command::new(&launch.program);
        command.args(&launch.args);
        // Only what Lambda would set: nothing of the developer's environment.
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
            .env("AWS_LAMBDA_FUNCTION_NAME", "stripstack-bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stripstack-bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", super::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", super::SECRET_KEY)
            .env("AWS_ENDPOINT_URL", setup.emulator.endpoint())
            // No profile files: they are not there in Lambda either.
            .env("AWS_CONFIG_FILE", setup.work.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                setup.work.join("no-aws-credentials"),
            )
            .env("DESTINATION_BUCKET", destination)
            .envs(extra_env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {}", launch.program.display()))?;
        let pid = child.id().context("the bootstrap exited at once")?;
        let ready = loop {
            let report = tokio::select! {
                report = api.report(READY_TIMEOUT) => report?,
                status = child.wait() => anyhow::bail!(
                    "the bootstrap exited during init ({}); see {}",
                    status?,
                    setup.work.join("bootstrap.log").display()
                ),
            };
            match report {
                Report::Next(at) => break at,
                Report::InitError { body } => {
                    anyhow::bail!("the bootstrap failed its init: {body}")
                }
                _ => {}
            }
        };
        Ok(Bootstrap {
            api,
            child,
            pid,
            started,
            ready,
        })
    }

    /// Hands it the upload event of `key`; the time from handing it over to the result.
    async fn handle(
        &mut self,
        buckets: &Buckets,
        key: &str,
        request_id: &str,
    ) -> anyhow::Result<Duration> {
        self.api.invoke(request_id, buckets.created_event(key))?;
        let mut delivered = None;
        loop {
            let report = tokio::select! {
                report = self.api.report(PICTURE_TIMEOUT) => report?,
                status = self.child.wait() => anyhow::bail!("the bootstrap exited ({})", status?),
            };
            match report {
                Report::Delivered { request_id: id, at } if id == request_id => {
                    delivered = Some(at)
                }
                Report::Response { request_id: id, at } if id == request_id => {
                    let delivered =
                        delivered.context("a result before the event was handed over")?;
                    return Ok(at - delivered);
                }
                Report::Error {
                    request_id: id,
                    body,
                } if id == request_id => {
                    anyhow::bail!("the function failed on {key}: {body}")
                }
                _ => {}
            }
        }
    }

    async fn stop(mut self) {
        // It waits for its next event; nothing is lost by killing it.
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The process's peak resident memory so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmHWM").map(|kib| kib as f64)
}

fn fmt_rss(kib: Option<f64>) -> String {
    kib.map_or("—".to_owned(), |kib| {
        format!("{:.1} MB", kib * 1024.0 / 1e6)
    })
}

fn fmt_opt(d: Option<Duration>) -> String {
    d.map_or("—".to_owned(), fmt_duration)
}

fn render(f: &Figures) -> String {
    let mut table = Table::new(&["figure", "value"]);
    table.row(vec![
        "`bootstrap` binary, as shipped".into(),
        fmt_size(f.binary_bytes),
    ]);
    table.row(vec!["deployment zip".into(), fmt_size(f.zip_bytes)]);
    table.row(vec![
        "cold start: process start → ready for the first event".into(),
        fmt_opt(f.cold_start),
    ]);
    table.row(vec!["peak RSS when ready".into(), fmt_rss(f.ready_rss_kib)]);
    let fresh = f
        .rss
        .iter()
        .find(|(size, fixed, _, _)| *size == TIMED_SIZE && !fixed)
        .and_then(|(_, _, _, time)| *time);
    table.row(vec![
        format!(
            "handler time, {} picture, warm process",
            fmt_mb(TIMED_SIZE as u64)
        ),
        fmt_opt(f.warm_event),
    ]);
    table.row(vec![
        format!(
            "handler time, {} picture, first event of a fresh process",
            fmt_mb(TIMED_SIZE as u64)
        ),
        fmt_opt(fresh),
    ]);
    let mut rss = Table::new(&["picture", "peak RSS (VmHWM)", "handler time, fresh process"]);
    for (size, fixed, kib, time) in &f.rss {
        let picture = if *fixed {
            let (name, value) = FIXED_MMAP_THRESHOLD;
            format!("{}, `{name}={value}`", fmt_mb(*size as u64))
        } else {
            fmt_mb(*size as u64)
        };
        rss.row(vec![picture, fmt_rss(*kib), fmt_opt(*time)]);
    }
    format!(
        "{}\n{}\n\
         How it is measured: the bootstrap is the build `deploy` ships to Lambda for this \
         machine's CPU (`cargo xtask bundle --arch …`: profile `lambda`, cross-built against \
         glibc 2.34), run as a local process with the environment Lambda gives it, against a fake Lambda \
         Runtime API on 127.0.0.1 (`xtask/src/bench/runtime_api.rs`) and the emulator's S3 \
         (MiniStack, a Python server on the same 2 cores).\n\n\
         - **Cold start**: from spawning the process to its first `GET \
         /2018-06-01/runtime/invocation/next` (tokio runtime, configuration, S3 client \
         built), with the binary in the page cache. Lambda's own part (fetching the zip, \
         starting the micro-VM) is not included.\n\
         - **Handler time**: from handing the event over to the runtime posting its \
         result: HeadObject of the copy, GetObject of the upload streamed through the \
         stripper into PutObject (multipart above 8 MiB) of the copy. The emulator's S3 \
         dominates it; the stripping itself runs at the speeds of section 1.\n\
         - **Peak RSS**: `VmHWM` of `/proc/<pid>/status` after the process handled one \
         picture of that size (a fresh process each run; median of {} runs). Flat across \
         sizes means the picture streams through and is never held whole in memory. The \
         last row runs the largest picture with glibc's mmap threshold fixed (by default \
         malloc raises it once a large block is freed, and freed 8 MiB part buffers may \
         then stay resident): the difference to the row above is memory the allocator \
         keeps, not memory the function holds. The pictures are built like section 1's \
         large one.",
        table.to_markdown(),
        rss.to_markdown(),
        f.runs
    )
}
