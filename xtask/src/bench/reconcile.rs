//! Section 8: `reconcile`. How fast it classifies (objects listed and compared per second,
//! both buckets listed page by page and merged) for large buckets, and how fast its
//! small-scale repair gets real pictures stripped (invoked from here, the function running
//! on the emulator). `cargo xtask reconcile` runs as a user runs it, as a child process,
//! against `stacks/exif-pipeline.yaml` deployed to the bench's emulator in env `local`.
//!
//! The classified objects are tiny (classification never reads them), half with a copy
//! written after them (up to date from the listings alone) and half without (missing); the
//! trigger is removed first, so nothing strips them meanwhile. Uploading them is not timed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use super::deployer::{Cycle, Step, STEPS};
use super::report::{fmt_duration, group_thousands, median_duration, Table};
use super::Setup;

/// Uploads in flight while filling the buckets.
const UPLOADS_IN_FLIGHT: usize = 32;
/// Longest wait for the repaired pictures to be stripped.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(900);
/// How long the count of pictures left may stand still before `reconcile` runs again.
const STALLED: Duration = Duration::from_secs(20);

const LISTED_PREFIX: &str = "uploads/bench-listed/";
/// The rendition `stacks/exif-pipeline.yaml` declares for env `local` (a thumbnail under
/// `thumbs/`): an up-to-date object has it beside its copy.
const THUMBS: &str = "thumbs/";
const REPAIR_PREFIX: &str = "uploads/bench-repair/";

const DRY_RUN_LISTED: Step = Step {
    label: "reconcile, dry run (listed objects)",
    args: &[
        "reconcile",
        "--dry-run",
        "--json",
        "--prefix",
        LISTED_PREFIX,
    ],
    code_change: false,
    under_faults: false,
};
const DRY_RUN_REPAIR: Step = Step {
    label: "reconcile, dry run (repaired pictures)",
    args: &[
        "reconcile",
        "--dry-run",
        "--json",
        "--prefix",
        REPAIR_PREFIX,
    ],
    code_change: false,
    under_faults: false,
};
const REPAIR: Step = Step {
    label: "reconcile (repair)",
    args: &["reconcile", "--json", "--prefix", REPAIR_PREFIX],
    code_change: false,
    under_faults: false,
};

pub async fn measure(
    setup: &Setup,
    runs: usize,
    listed: &[usize],
    pictures: usize,
) -> anyhow::Result<String> {
    let stack = crate::workspace::stacks_dir().join("exif-pipeline.yaml");
    let target = setup.work.join("reconcile-target");
    std::fs::create_dir_all(target.join("debug"))
        .with_context(|| format!("cannot create {}", target.display()))?;
    let cycle = Cycle {
        setup,
        stack: &stack,
        target: &target,
    };
    let endpoint = setup.emulator.endpoint();
    let deploy = &STEPS[0];
    cycle.execute(deploy, &endpoint, "reconcile").await?;
    let measured = measure_deployed(&cycle, &endpoint, runs, listed, pictures).await;
    let destroy = STEPS.iter().find(|s| s.args[0] == "destroy");
    if let Some(destroy) = destroy {
        cycle.execute(destroy, &endpoint, "reconcile").await?;
    }
    measured
}

async fn measure_deployed(
    cycle: &Cycle<'_>,
    endpoint: &str,
    runs: usize,
    listed: &[usize],
    pictures: usize,
) -> anyhow::Result<String> {
    let (region, source, destination) = deployed(cycle, endpoint).await?;
    let clients = cycle.setup.clients(&region);
    // No trigger: the uploads below stay unstripped until `reconcile` repairs them.
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&source)
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .context("removing the trigger")?;

    let mut table = Table::new(&["step", "objects", "wall (median)", "objects / s"]);
    let mut filled = 0;
    for &count in listed {
        // Each size adds to the objects already there.
        fill(&clients, (&source, &destination), filled, count).await?;
        filled = count;
        let mut walls = Vec::new();
        for _ in 0..runs {
            let (wall, _, stdout) = cycle
                .execute(&DRY_RUN_LISTED, endpoint, "reconcile")
                .await?;
            let report = first_report(&stdout)?;
            let up_to_date = report["up_to_date"].as_u64().unwrap_or(0);
            let missing = report["missing"].as_u64().unwrap_or(0);
            anyhow::ensure!(
                up_to_date == count.div_ceil(2) as u64 && missing == (count / 2) as u64,
                "expected {count} objects, half up to date, half missing: {report}"
            );
            walls.push(wall);
        }
        let wall = median_duration(&walls).unwrap_or_default();
        table.row(vec![
            format!("classify, {} objects listed", group_thousands(count as u64)),
            group_thousands(count as u64),
            fmt_duration(wall),
            group_thousands((count as f64 / wall.as_secs_f64()).round() as u64),
        ]);
    }

    // Repair: real pictures, missing, invoked from here, until all are stripped.
    let picture =
        std::fs::read(crate::workspace::root().join("tests/fixtures/corpus/DSCN0010.jpg"))
            .context("reading the corpus picture")?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..pictures {
        let (s3, bucket, body) = (clients.s3.clone(), source.clone(), picture.clone());
        if tasks.len() >= UPLOADS_IN_FLIGHT {
            tasks.join_next().await;
        }
        tasks.spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("{REPAIR_PREFIX}{i:06}.jpg"))
                .body(ByteStream::from(body))
                .send()
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.context("uploading a picture to repair")?;
    }
    let started = Instant::now();
    let (invoke_wall, _, stdout) = cycle.execute(&REPAIR, endpoint, "reconcile").await?;
    let invoked = first_report(&stdout)?["invoked"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        invoked == pictures as u64,
        "invoked {invoked} of {pictures}"
    );
    // As a user would: when the count stops falling (the emulator loses an asynchronous
    // invocation now and then), `reconcile` again; the rounds are reported.
    let mut rounds = 1;
    let mut left = u64::MAX;
    let mut progressed = Instant::now();
    loop {
        let (_, _, stdout) = cycle
            .execute(&DRY_RUN_REPAIR, endpoint, "reconcile")
            .await?;
        let report = first_report(&stdout)?;
        let now_left = ["missing", "stale", "renditions_missing"]
            .iter()
            .map(|class| report[*class].as_u64().unwrap_or(0))
            .sum::<u64>();
        if now_left == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < REPAIR_TIMEOUT,
            "not repaired within {}s: {report}",
            REPAIR_TIMEOUT.as_secs()
        );
        if now_left < left {
            left = now_left;
            progressed = Instant::now();
        } else if progressed.elapsed() > STALLED {
            cycle.execute(&REPAIR, endpoint, "reconcile").await?;
            rounds += 1;
            progressed = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let repaired = started.elapsed();
    table.row(vec![
        "repair, invocations sent (16 in flight)".to_owned(),
        group_thousands(pictures as u64),
        fmt_duration(invoke_wall),
        group_thousands((pictures as f64 / invoke_wall.as_secs_f64()).round() as u64),
    ]);
    table.row(vec![
        format!(
            "repair, until every copy is stripped ({rounds} round{})",
            if rounds == 1 { "" } else { "s" }
        ),
        group_thousands(pictures as u64),
        fmt_duration(repaired),
        format!("{:.1}", pictures as f64 / repaired.as_secs_f64()),
    ]);
    Ok(format!(
        "`cargo xtask reconcile --dry-run` over tiny objects (half with an up-to-date copy \
         and thumbnail, half missing: three listings merged — source, copies, thumbnails — \
         and no object read), then the \
         small-scale repair of {pictures} missing pictures (`DSCN0010.jpg`, with the `local` \
         env's thumbnail), from the invocations until the last copy is there. The last \
         column is objects classified per second for the dry runs, objects invoked or stripped per second for the repair; the repair's pace is the emulator's \
         (it runs each invocation as a process on these cores), not Lambda's.\n\n{}",
        table.to_markdown()
    ))
}

/// The env's region and two buckets, from `outputs --json`.
async fn deployed(cycle: &Cycle<'_>, endpoint: &str) -> anyhow::Result<(String, String, String)> {
    const OUTPUTS: Step = Step {
        label: "outputs",
        args: &["outputs", "--json"],
        code_change: false,
        under_faults: false,
    };
    let (_, _, stdout) = cycle.execute(&OUTPUTS, endpoint, "reconcile").await?;
    let outputs: Value = serde_json::from_str(&stdout).context("outputs --json")?;
    let text = |value: &Value, what: &str| {
        value
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {what} in {outputs}"))
    };
    Ok((
        text(&outputs["region"], "region")?,
        text(&outputs["buckets"]["source"]["name"], "source bucket")?,
        text(
            &outputs["buckets"]["destination"]["name"],
            "destination bucket",
        )?,
    ))
}

/// Adds objects `from..to` under [`LISTED_PREFIX`]: every one in the source, the even ones
/// with a copy and a thumbnail (written after it) in the destination.
async fn fill(
    clients: &crate::aws::Clients,
    (source, destination): (&str, &str),
    from: usize,
    to: usize,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let key = format!("{LISTED_PREFIX}{i:07}.jpg");
        let mut targets = vec![(source.to_owned(), key.clone())];
        if i % 2 == 0 {
            targets.push((destination.to_owned(), key.clone()));
            targets.push((destination.to_owned(), format!("{THUMBS}{key}")));
        }
        let s3 = clients.s3.clone();
        if tasks.len() >= UPLOADS_IN_FLIGHT {
            if let Some(done) = tasks.join_next().await {
                done??;
            }
        }
        tasks.spawn(async move {
            for (bucket, key) in targets {
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .with_context(|| format!("uploading {key}"))?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn first_report(stdout: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(stdout)
        .with_context(|| format!("reconcile --json printed no JSON: {stdout}"))?;
    Ok(value["reconciled"][0].clone())
}
