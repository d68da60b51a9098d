//! The arm64 Lambda is run, not only built: `cargo xtask bundle --arch arm64`'s bootstrap
//! (cross-built with cargo-zigbuild against glibc 2.34) runs under `qemu-aarch64` with the
//! arm64 glibc of Debian's `libc6-arm64-cross`, against the bench's fake Lambda Runtime API
//! and this test binary's private emulator, and strips a picture into the destination
//! bucket as it would on Graviton.
//!
//! Needs `qemu-aarch64` (Debian: `qemu-user`) and `/usr/aarch64-linux-gnu` (Debian:
//! `libc6-arm64-cross`); `.ci/run` installs both. Without them the test fails saying so: it
//! is never skipped.
//!
//! A release (`lambda` profile) cross build, on purpose: what runs on Graviton is what is
//! tested, and its size and GLIBC needs are checked. That build takes minutes, so
//! `cargo test --workspace` lists this test as ignored (with the reason) and `.ci/run` runs it
//! as a step of its own on every submission.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;
use stripstack_tests::{s3, unique, REGION};
use xtask::bench::runtime_api::{FakeRuntimeApi, Report};
use xtask::bundle::{elf, BuildTarget, LambdaTarget};

/// Where `libc6-arm64-cross` puts the arm64 loader and glibc (qemu's `-L`).
const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
const INSTALL: &str = "apt-get install -y qemu-user libc6-arm64-cross";
/// The goal for the deployment zip.
const MAX_ZIP_BYTES: u64 = 5 * 1000 * 1000;
/// Emulated, the bootstrap starts in well under a second here; the bound only stops a
/// broken run.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What the runtime does next, until `deadline`.
async fn next(api: &mut FakeRuntimeApi, deadline: Instant) -> anyhow::Result<Report> {
    api.report(deadline.saturating_duration_since(Instant::now()))
        .await
}

fn require_qemu() -> std::path::PathBuf {
    let qemu = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("qemu-aarch64"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!("qemu-aarch64 is not installed, so the arm64 bootstrap cannot run: {INSTALL}")
        });
    let loader = Path::new(ARM64_SYSROOT).join("lib/ld-linux-aarch64.so.1");
    assert!(
        loader.exists(),
        "{} is missing, so qemu cannot load the arm64 bootstrap's glibc: {INSTALL}",
        loader.display()
    );
    qemu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a lambda-profile arm64 cross build (about 4 minutes on 2 cores): .ci/run runs it \
            as a step of its own, `cargo test -p stripstack-tests --test arm64_bootstrap -- --ignored`"]
async fn the_arm64_bootstrap_strips_a_picture_under_qemu() {
    let qemu = require_qemu();
    let target = BuildTarget::Lambda(LambdaTarget::Arm64);
    let bundle = tokio::task::spawn_blocking(move || xtask::bundle::build_for("lambda", target))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cargo xtask bundle --arch arm64 failed: {e:#}"));

    // What was built: an AArch64 executable Lambda can load, in a small, reproducible zip.
    let info = bundle.elf.as_ref().expect("a Lambda build is checked");
    assert_eq!(info.machine, elf::Machine::Aarch64);
    assert!(
        bundle.glibc.is_some_and(|v| v <= xtask::bundle::MAX_GLIBC),
        "{:?}",
        bundle.glibc
    );
    assert!(
        bundle
            .zip_path
            .ends_with("lambda-aarch64-unknown-linux-gnu.zip"),
        "{}",
        bundle.zip_path.display()
    );
    assert!(
        bundle.zip_bytes <= MAX_ZIP_BYTES,
        "the arm64 zip is {} bytes, over the 5 MB goal",
        bundle.zip_bytes
    );
    let binary = std::fs::read(&bundle.binary_path).unwrap();
    let again =
        xtask::bundle::deterministic_zip("bootstrap", &binary, xtask::bundle::ZipLevel::Shipped)
            .unwrap();
    assert_eq!(
        std::fs::read(&bundle.zip_path).unwrap(),
        again,
        "zipping the same binary twice gave different bytes"
    );
    let cargo_home = xtask::bundle::toolchain::cargo_home().expect("CARGO_HOME or HOME");
    for leaked in [xtask::workspace::root(), cargo_home] {
        let needle = leaked.display().to_string();
        assert!(
            !needle.is_empty() && !binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the binary holds the build machine's path {needle}: builds elsewhere would differ"
        );
    }

    // The pipeline's two buckets and an upload, in this binary's emulator.
    let s3 = s3();
    let (source, destination) = (unique("arm64-src"), unique("arm64-dst"));
    for bucket in [&source, &destination] {
        s3.create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(stripstack_tests::bucket_location())
            .send()
            .await
            .expect("create bucket");
    }
    let original =
        std::fs::read(xtask::workspace::root().join("tests/fixtures/corpus/DSCN0010.jpg")).unwrap();
    let key = "uploads/graviton.jpg";
    s3.put_object()
        .bucket(&source)
        .key(key)
        .body(ByteStream::from(original.clone()))
        .send()
        .await
        .expect("put the picture");

    // The bootstrap under qemu, with only what Lambda would give it.
    let mut api = FakeRuntimeApi::start().await.unwrap();
    let work = xtask::workspace::target_dir().join(unique("arm64-bootstrap"));
    std::fs::create_dir_all(&work).unwrap();
    let log_path = work.join("bootstrap.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(&qemu)
        .arg("-L")
        .arg(ARM64_SYSROOT)
        .arg(&bundle.binary_path)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .env("AWS_LAMBDA_FUNCTION_NAME", "stripstack-arm64")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stripstack-arm64")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "arm64")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", stripstack_tests::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", stripstack_tests::SECRET_ACCESS_KEY)
        .env("AWS_ENDPOINT_URL", stripstack_tests::endpoint())
        .env("AWS_CONFIG_FILE", work.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            work.join("no-aws-credentials"),
        )
        .env("DESTINATION_BUCKET", &destination)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("starting qemu-aarch64");
    let log_tail = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let started = Instant::now();
    let deadline = started + TIMEOUT;
    loop {
        let report = tokio::select! {
            report = next(&mut api, deadline) => report.unwrap_or_else(|e| panic!("{e:#}; its log:\n{}", log_tail())),
            status = child.wait() => panic!("the arm64 bootstrap exited during init ({:?}); its log:\n{}", status, log_tail()),
        };
        match report {
            Report::Next(_) => break,
            Report::InitError { body } => panic!("the arm64 bootstrap failed its init: {body}"),
            _ => {}
        }
    }
    let ready = started.elapsed();

    let event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2024-06-01T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "arm64",
               "bucket": {"name": source, "arn": format!("arn:aws:s3:::{source}")},
               "object": {"key": key, "size": original.len()}}
    }]});
    api.invoke("arm64-1", event.to_string()).unwrap();
    loop {
        let report = tokio::select! {
            report = next(&mut api, deadline) => report.unwrap_or_else(|e| panic!("{e:#}; its log:\n{}", log_tail())),
            status = child.wait() => panic!("the arm64 bootstrap exited ({:?}); its log:\n{}", status, log_tail()),
        };
        match report {
            Report::Response { request_id, .. } if request_id == "arm64-1" => break,
            Report::Error { request_id, body } if request_id == "arm64-1" => {
                panic!(
                    "the arm64 function failed: {body}; its log:\n{}",
                    log_tail()
                )
            }
            _ => {}
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;

    let copy = s3
        .get_object()
        .bucket(&destination)
        .key(key)
        .send()
        .await
        .expect("the stripped copy is in the destination bucket")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let expected = lambda::strip(&original).expect("the library strips the original");
    assert!(
        copy.as_ref() == expected.as_slice(),
        "the arm64 copy ({} bytes) differs from the library's ({} bytes)",
        copy.len(),
        expected.len()
    );
    assert!(copy.len() < original.len());
    eprintln!(
        "arm64 bootstrap under qemu: ready after {} ms, {} → {} bytes",
        ready.as_millis(),
        original.len(),
        copy.len()
    );
    let _ = std::fs::remove_dir_all(&work);
}
