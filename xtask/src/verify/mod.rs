//! `cargo xtask verify`: an end-to-end check of a deployed environment (the local emulator or
//! real AWS). Prints one table row per check (check, result, detail) and exits non-zero when
//! any check does not pass.
//!
//! Three groups of checks run concurrently:
//! - **configuration**, read with the deployer's credentials: both buckets private (all four
//!   Block Public Access settings), encrypted and versioned; an SSM parameter of the stack holds
//!   each bucket's name; the trigger is in place; the function's role has exactly its declared
//!   inline policy and nothing else, and cannot write to the source bucket (asked of IAM's
//!   policy simulator when it answers, else evaluated here from the role's inline policy);
//! - **permissions**, exercised with `user-a`'s and `user-b`'s own access keys (read from their
//!   SSM parameters): what the design promises them, each expected denial being a real
//!   `AccessDenied` from S3, not just any error;
//! - **pipeline**: a non-JPEG and then a real picture (EXIF with GPS and a maker note, XMP,
//!   Orientation 6) are uploaded under the trigger's prefix, with spaces in their keys; the
//!   picture's copy must appear in the destination bucket within the timeout, hold no metadata
//!   but the Orientation, and carry the original's compressed picture byte for byte. Once the
//!   later upload's copy is there, the non-JPEG must still have none, and its refusal record
//!   must be in the function's failures queue (then removed). The configuration group also
//!   checks the function's log retention and that its failed events go to that queue.
//!
//! Every test object lives under a per-run prefix and every version of it is deleted at the
//! end, whatever happened (Ctrl-C included).
//!
//! Bucket A is the bucket of the first function trigger on `created` events, bucket B the
//! bucket named by that function's `DESTINATION_BUCKET`. The users' expected rights are the
//! product's requirements, not whatever the stack file says: a stack that grants `user-b`
//! writes fails here even though `plan` shows no drift.

//!
//! Files: `table.rs` (the rows and how they print), `configuration.rs`, `permissions.rs` and
//! `pipeline.rs` (the three check groups), `policy_eval.rs` (IAM policy evaluation for the role
//! check); this file runs them and cleans up.

mod configuration;
mod permissions;
mod pipeline;
mod policy_eval;
mod table;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use lambda::Marker;
use serde_json::Value;

use crate::aws::{describe, error_code, http_status, Clients};
use crate::resources::policy_doc::{normalize_policy, parse_policy};
use crate::resources::{self, ReadCtx};
use crate::session::VerifyOptions;
use crate::stack::resolved::{Bucket, Function, ResolvedStack, Trigger, TriggerEvent};

use configuration::configuration;
use permissions::{permissions, put, ssm_value};
use pipeline::{default_copy_timeout, pipeline};
use policy_eval::policy_allows;
use table::{render, Row, Verdict};

/// `tests/fixtures/verify/DSCN0010-orientation-6.jpg` (see the README there): EXIF with GPS,
/// Nikon maker notes and a thumbnail, XMP, and Orientation 6.
const PICTURE: &[u8] = include_bytes!("../../../tests/fixtures/verify/DSCN0010-orientation-6.jpg");

/// A complete 1x1 greyscale PNG, uploaded under a `.jpg` name: the function must refuse it.
const NOT_A_JPEG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0x48, 0xaf, 0xa4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The user who uploads (read/write on A, nothing on B) and the one who serves the cleaned
/// pictures (read-only on B).
const UPLOADER: &str = "user-a";
const READER: &str = "user-b";

/// How long a brand-new access key may keep being refused as unknown (IAM is eventually
/// consistent: seconds on AWS, none on the emulator).
const NEW_KEY_GRACE: Duration = Duration::from_secs(60);

/// How often the wait for the stripped copy polls, and says that it is still waiting.
const POLL_EVERY: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Names of the pipeline checks (the others are named after the stack's buckets and users).
const CHECK_COPY: &str = "pipeline: stripped copy appears";
const CHECK_CLEAN: &str = "pipeline: no metadata left";
const CHECK_DATA: &str = "pipeline: image data identical";
const CHECK_ORIENTATION: &str = "pipeline: orientation kept";
const CHECK_REFUSED: &str = "pipeline: non-JPEG refused";
const CHECK_RECORDED: &str = "pipeline: refusal recorded";
const CHECK_RENDITIONS: &str = "pipeline: renditions upright, resized, clean";
/// The most failure records read while looking for the run's own refusal.
const PEEK_LIMIT: usize = 100;
const CHECK_CLEANUP: &str = "clean-up of test objects";

pub(crate) async fn run(args: VerifyOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let timeout = args.timeout.map_or_else(
        || default_copy_timeout(stack.endpoint.is_some()),
        Duration::from_secs,
    );
    let deployed = Deployed::new(&stack, &clients, timeout)?;
    eprintln!(
        "verifying stack `{}` env `{}` (account {}, region {}); test objects under `{}`",
        stack.stack, stack.env, stack.account, stack.region, deployed.keys.run
    );
    let started = Instant::now();
    let checks = async {
        let (mut rows, permissions, pipeline) = tokio::join!(
            configuration(&deployed),
            permissions(&deployed),
            pipeline(&deployed)
        );
        rows.extend(permissions);
        rows.extend(pipeline);
        rows
    };
    let mut rows = tokio::select! {
        rows = checks => rows,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: removing the test objects");
            vec![Row::fail("interrupted", "Ctrl-C before every check had run")]
        }
    };
    rows.push(cleanup(&deployed).await);

    print!("{}", render(&rows, crate::style::stdout_color()));
    let failed = rows.iter().filter(|r| r.verdict != Verdict::Pass).count();
    println!(
        "{} checks: {} passed, {failed} failed or skipped ({:.1} s)",
        rows.len(),
        rows.len() - failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What is being verified, resolved once.
struct Deployed<'a> {
    stack: &'a ResolvedStack,
    clients: &'a Clients,
    ctx: ReadCtx,
    function: &'a Function,
    trigger: &'a Trigger,
    /// Bucket A, where pictures are uploaded.
    source: &'a Bucket,
    /// Bucket B, where their stripped copies land.
    destination: &'a Bucket,
    keys: Keys,
    /// Longest wait for the stripped copy.
    timeout: Duration,
}

impl<'a> Deployed<'a> {
    fn new(
        stack: &'a ResolvedStack,
        clients: &'a Clients,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (function, trigger) = stack
            .functions
            .values()
            .find_map(|f| {
                f.triggers
                    .iter()
                    .find(|t| t.events.contains(&TriggerEvent::Created))
                    .map(|t| (f, t))
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "stack `{}` has no function triggered by uploads (`events: [created]`): \
                     there is no pipeline to verify",
                    stack.stack
                )
            })?;
        let source = stack.buckets.get(&trigger.bucket).ok_or_else(|| {
            anyhow::anyhow!(
                "function `{}` is triggered by bucket `{}`, which the stack does not declare",
                function.logical,
                trigger.bucket
            )
        })?;
        let destination = function
            .environment
            .get("DESTINATION_BUCKET")
            .and_then(|name| stack.buckets.values().find(|b| &b.name == name))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "function `{}` has no DESTINATION_BUCKET naming one of the stack's buckets: \
                     verify cannot tell where stripped copies land",
                    function.logical
                )
            })?;
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let run = format!("stripstack-verify-{seconds}-{}", std::process::id());
        // The suffix filters are case-sensitive: use one the trigger really listens to.
        let suffix = trigger.suffixes.first().map_or(".jpg", String::as_str);
        Ok(Deployed {
            stack,
            clients,
            ctx: crate::session::read_ctx(stack),
            function,
            trigger,
            source,
            destination,
            keys: Keys::new(
                run,
                &trigger.prefix,
                suffix,
                function.renditions.iter().map(|r| r.prefix.as_str()),
            ),
            timeout,
        })
    }
}

/// Every object key a run writes, all under two per-run prefixes (which the clean-up empties).
struct Keys {
    run: String,
    /// Under the trigger's prefix, with spaces (S3 events carry keys form-encoded: `+`).
    picture: String,
    not_a_jpeg: String,
    /// Outside the trigger's prefix, in both buckets: what the users read, written by the
    /// deployer.
    probe: String,
    /// What each user tries to write (in A for the uploader, in B for both).
    uploader_write: String,
    reader_write: String,
    prefixes: Vec<String>,
}

impl Keys {
    fn new<'p>(
        run: String,
        trigger_prefix: &str,
        suffix: &str,
        rendition_prefixes: impl Iterator<Item = &'p str>,
    ) -> Keys {
        let uploads = format!("{trigger_prefix}{run}/");
        let probes = format!("{run}/");
        let mut prefixes = vec![uploads.clone(), probes.clone()];
        // The renditions of the run's picture, beside its stripped copy.
        prefixes.extend(rendition_prefixes.map(|p| format!("{p}{uploads}")));
        prefixes.dedup();
        Keys {
            picture: format!("{uploads}holiday photo{suffix}"),
            not_a_jpeg: format!("{uploads}not a picture{suffix}"),
            probe: format!("{probes}probe.txt"),
            uploader_write: format!("{probes}written by {UPLOADER}.txt"),
            reader_write: format!("{probes}written by {READER}.txt"),
            prefixes,
            run,
        }
    }
}

/// Deletes every version (and delete marker) under the run's prefixes in both buckets: the
/// buckets are versioned, so a plain delete would leave the pictures behind.
async fn cleanup(deployed: &Deployed<'_>) -> Row {
    let mut removed = 0;
    let mut errors = Vec::new();
    for bucket in [deployed.source, deployed.destination] {
        for prefix in &deployed.keys.prefixes {
            match resources::bucket::delete_versions(deployed.clients, &bucket.name, prefix).await {
                Ok(count) => removed += count,
                Err(err) => errors.push(format!("{err:#}")),
            }
        }
    }
    Row::from_problems(
        CHECK_CLEANUP,
        errors,
        format!(
            "{removed} object versions under `{}` deleted from both buckets",
            deployed.keys.run
        ),
    )
}
