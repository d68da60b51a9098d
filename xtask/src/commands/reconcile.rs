//! `cargo xtask reconcile`: finds the uploads whose stripped copy is missing or older than
//! them (pictures that were there before the trigger, events missed while a function was
//! disabled or a trigger removed) and repairs them by invoking the deployed function on each,
//! asynchronously, as S3 would have.
//!
//! Bucket A (under each upload trigger's prefix, with its suffixes) and bucket B (under the
//! same prefix) are listed side by side in key order, a page at a time, and merged: memory is
//! one page of each, whatever the number of objects. Each source object is *up to date* (B's
//! copy was written after A's current version, which the listings show; only when they do not
//! is B's copy's source stamp read with a HeadObject), *missing* or *stale* (the stamp names
//! another ETag); keys in B without a source are *orphans* (reported, never deleted here).
//! When the function makes renditions, B is listed under each rendition's prefix as well:
//! an original whose copy is up to date but a rendition of which is missing or stale is
//! repaired too (the function, finding the copy current, makes only the renditions).
//!
//! Repair has two scales. Up to `--batch-threshold` objects (10,000 by default) the deployer
//! invokes the function itself, [`IN_FLIGHT`] at a time. Above it the objects to repair are
//! written to a CSV manifest as they are classified (memory stays flat), the manifest goes to
//! the state bucket, and an S3 Batch Operations job invokes the function on each, with S3's
//! retries and a completion report (`resources::batch_job`); `--status JOB` follows it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::resources::batch_job::{self, JobRequest};
use crate::resources::bucket::{self, Listed, Listing};
use crate::resources::function;
use crate::session::{self, TargetOptions};
use crate::stack::resolved::{Function, ResolvedStack, TriggerEvent};

#[derive(Debug, Clone, Default)]
pub(crate) struct ReconcileOptions {
    pub target: TargetOptions,
    /// Only keys under this prefix (within the triggers' prefixes).
    pub prefix: Option<String>,
    pub dry_run: bool,
    pub json: bool,
    /// Above this many objects to repair, an S3 Batch Operations job repairs them.
    pub batch_threshold: u64,
    /// Show this Batch Operations job instead of reconciling.
    pub status: Option<String>,
}

/// The default of `--batch-threshold`: below it, invoking from here takes minutes; above
/// it, S3's job (its retries, its report) is worth its fixed cost.
pub(crate) const DEFAULT_BATCH_THRESHOLD: u64 = 10_000;

/// How many objects of each class are shown as a sample.
const SAMPLE: usize = 5;

/// What a source object is, compared with its copy (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    UpToDate,
    Missing,
    Stale,
    /// The listings do not tell: the copy's stamp must be read.
    Unknown,
}

/// Classifies source `a` against its copy `b` from the listings alone.
pub(crate) fn classify(a: &Listed, b: Option<&Listed>) -> Class {
    match b {
        None => Class::Missing,
        // The copy was written after the source's current version: made from it (or from a
        // later one, whose own event wrote it).
        Some(b) if b.modified_ms >= a.modified_ms => Class::UpToDate,
        Some(_) => Class::Unknown,
    }
}

/// The stamp decides what the listings could not.
pub(crate) fn classify_by_stamp(a: &Listed, source_etag: Option<&str>) -> Class {
    match (source_etag, a.etag.as_deref()) {
        (Some(stamp), Some(etag)) if stamp == etag => Class::UpToDate,
        _ => Class::Stale,
    }
}

#[derive(Debug, Default)]
struct Counts {
    up_to_date: u64,
    missing: u64,
    stale: u64,
    orphans: u64,
    /// Originals up to date whose renditions (some of them) are missing or stale.
    renditions: u64,
    missing_sample: Vec<String>,
    stale_sample: Vec<String>,
    renditions_sample: Vec<String>,
    orphan_sample: Vec<String>,
    heads: u64,
}

/// The objects to repair: kept in memory up to the threshold, then written to a Batch
/// Operations manifest file as they come, so memory stays flat however many there are.
struct Todo {
    source: String,
    threshold: u64,
    count: u64,
    memory: Vec<Listed>,
    manifest: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
}

/// Where the repair goes.
enum Repair {
    /// Invoked from here.
    Invoke(Vec<Listed>),
    /// A manifest file of this many objects, for a Batch Operations job.
    Job { manifest: PathBuf, objects: u64 },
}

impl Todo {
    fn new(source: &str, threshold: u64) -> Self {
        Todo {
            source: source.to_owned(),
            threshold,
            count: 0,
            memory: Vec::new(),
            manifest: None,
        }
    }

    fn push(&mut self, object: Listed) -> anyhow::Result<()> {
        self.count += 1;
        if self.manifest.is_none() && self.count > self.threshold {
            let path = std::env::temp_dir().join(format!(
                "stripstack-manifest-{}-{}.csv",
                std::process::id(),
                crate::utc::now_ms()
            ));
            let file = std::fs::File::create(&path).map_err(|e| {
                anyhow::anyhow!("creating the manifest file {}: {e}", path.display())
            })?;
            let mut writer = std::io::BufWriter::new(file);
            for kept in self.memory.drain(..) {
                writer.write_all(batch_job::manifest_line(&self.source, &kept.key).as_bytes())?;
            }
            self.manifest = Some((path, writer));
        }
        match &mut self.manifest {
            Some((_, writer)) => {
                writer.write_all(batch_job::manifest_line(&self.source, &object.key).as_bytes())?
            }
            None => self.memory.push(object),
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Repair> {
        Ok(match self.manifest {
            Some((path, writer)) => {
                writer
                    .into_inner()
                    .map_err(|e| anyhow::anyhow!("writing the manifest file: {e}"))?
                    .sync_all()?;
                Repair::Job {
                    manifest: path,
                    objects: self.count,
                }
            }
            None => Repair::Invoke(self.memory),
        })
    }
}

pub(crate) async fn run(options: ReconcileOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&options.target).await?;
    if let Some(job) = &options.status {
        return status(&stack, &clients, job, options.json).await;
    }
    let mut report = Vec::new();
    let mut failed_any = false;
    for function in stack.functions.values() {
        let Some(destination) = function.environment.get("DESTINATION_BUCKET").cloned() else {
            continue;
        };
        for trigger in function
            .triggers
            .iter()
            .filter(|t| t.events.contains(&TriggerEvent::Created))
        {
            let Some(source) = stack.buckets.get(&trigger.bucket) else {
                continue;
            };
            let prefix = match &options.prefix {
                Some(p) if p.starts_with(&trigger.prefix) => p.clone(),
                Some(p) if trigger.prefix.starts_with(p.as_str()) => trigger.prefix.clone(),
                Some(_) => continue,
                None => trigger.prefix.clone(),
            };
            let wanted = |key: &str| {
                trigger.suffixes.is_empty() || trigger.suffixes.iter().any(|s| key.ends_with(s))
            };
            let mut todo = Todo::new(&source.name, options.batch_threshold);
            let renditions: Vec<String> = function
                .renditions
                .iter()
                .map(|r| r.prefix.clone())
                .collect();
            let counts = classify_all(
                &clients,
                (&source.name, &destination),
                (&prefix, &renditions),
                wanted,
                &mut todo,
            )
            .await?;
            let mut done = json!({ "invoked": 0, "failed_to_invoke": [] });
            match todo.finish()? {
                Repair::Job { manifest, .. } if options.dry_run => {
                    let _ = std::fs::remove_file(manifest);
                }
                Repair::Invoke(_) if options.dry_run => {}
                Repair::Invoke(todo) => {
                    let (invoked, failed) =
                        repair(&clients, &stack.region, &source.name, &function.name, todo).await;
                    failed_any |= !failed.is_empty();
                    done = json!({ "invoked": invoked, "failed_to_invoke": failed });
                }
                Repair::Job { manifest, objects } => {
                    let job = start_job(&stack, &clients, function, &manifest, objects).await;
                    let _ = std::fs::remove_file(&manifest);
                    done = json!({ "batch_job": job? });
                }
            }
            let mut entry = json!({
                "function": function.logical,
                "source": source.name,
                "destination": destination,
                "prefix": prefix,
                "up_to_date": counts.up_to_date,
                "missing": counts.missing,
                "stale": counts.stale,
                "renditions_missing": counts.renditions,
                "orphans": counts.orphans,
                "stamps_read": counts.heads,
                "sample": {
                    "missing": counts.missing_sample,
                    "stale": counts.stale_sample,
                    "renditions_missing": counts.renditions_sample,
                    "orphans": counts.orphan_sample,
                },
            });
            if let (Some(entry), Value::Object(done)) = (entry.as_object_mut(), done) {
                entry.extend(done);
            }
            report.push(entry);
        }
    }
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "reconciled": report }))?
        );
    } else {
        for r in &report {
            print_text(r, options.dry_run);
        }
    }
    Ok(if failed_any {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One source's line, its samples and what was done, for a person.
fn print_text(r: &Value, dry_run: bool) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    println!(
        "{} → {} under `{}`: {} up to date, {} missing, {} stale, {} with renditions missing, \
         {} orphans ({} stamps read)",
        text(&r["source"]),
        text(&r["destination"]),
        text(&r["prefix"]),
        r["up_to_date"],
        r["missing"],
        r["stale"],
        r["renditions_missing"],
        r["orphans"],
        r["stamps_read"],
    );
    for class in ["missing", "stale", "renditions_missing", "orphans"] {
        for key in r["sample"][class].as_array().into_iter().flatten() {
            println!("  {class}: {}", text(key));
        }
    }
    if dry_run {
        println!("  dry run: nothing invoked");
    } else if let Some(job) = r.get("batch_job") {
        println!(
            "  S3 Batch Operations job {} started for {} object(s) (manifest s3://{}/{})",
            text(&job["job_id"]),
            job["objects"],
            text(&job["bucket"]),
            text(&job["manifest"]),
        );
        println!(
            "  its completion report will be under s3://{}/{}; follow it with \
             `cargo xtask reconcile --env <env> --status {}`",
            text(&job["bucket"]),
            text(&job["report_prefix"]),
            text(&job["job_id"]),
        );
    } else {
        println!(
            "  invoked `{}` for {} object(s); {} failed to invoke",
            text(&r["function"]),
            r["invoked"],
            r["failed_to_invoke"].as_array().map_or(0, Vec::len)
        );
        for failure in r["failed_to_invoke"].as_array().into_iter().flatten() {
            println!("    {}", text(failure));
        }
    }
}

/// Sends the manifest to the state bucket, makes sure of the job's role, and creates the
/// job; what was started.
async fn start_job(
    stack: &ResolvedStack,
    clients: &crate::aws::Clients,
    function: &Function,
    manifest: &std::path::Path,
    objects: u64,
) -> anyhow::Result<Value> {
    if stack.endpoint.is_some() {
        anyhow::bail!(
            "{objects} objects to repair is above --batch-threshold, but an S3 Batch Operations \
             job needs real AWS (the emulator has no S3 Control): raise --batch-threshold to \
             invoke the function from here"
        );
    }
    let state = crate::engine::state::state_bucket(&stack.account, &stack.region);
    // The role may touch this env's reconcile objects only; each run its own prefix.
    let root = format!("reconcile/{}/{}/", stack.stack, stack.env);
    let run = format!("{root}{}/", crate::utc::now_ms());
    let manifest_key = format!("{run}manifest.csv");
    let etag = bucket::put_file(clients, &state, &manifest_key, manifest).await?;
    let ctx = session::read_ctx(stack);
    let role_name = batch_job::role_name(&stack.stack, &stack.env);
    let props = batch_job::role_props(&function.arn, &state, &root, &stack.tags);
    let (role_arn, fresh) = batch_job::ensure_role(clients, &ctx, &role_name, props).await?;
    let partition = crate::stack::partition(&stack.region);
    let request = JobRequest {
        account: stack.account.clone(),
        function_arn: function.arn.clone(),
        role_arn,
        manifest_arn: format!("arn:{partition}:s3:::{state}/{manifest_key}"),
        manifest_etag: etag.clone(),
        report_bucket_arn: format!("arn:{partition}:s3:::{state}"),
        report_prefix: run.trim_end_matches('/').to_owned(),
        description: format!(
            "stripstack reconcile {} {}: {objects} objects for {}",
            stack.stack, stack.env, function.name
        ),
        token: format!("{}-{}", crate::utc::now_ms(), etag.trim_matches('"')),
    };
    let job_id = batch_job::create_job(clients, &request, fresh, &|line| {
        eprintln!("reconcile: {line}")
    })
    .await?;
    Ok(json!({
        "job_id": job_id,
        "objects": objects,
        "bucket": state,
        "manifest": manifest_key,
        "report_prefix": format!("{}job-{job_id}/", run),
        "role": role_name,
    }))
}

/// `--status JOB`: where the job is, what failed, where its report is.
async fn status(
    stack: &ResolvedStack,
    clients: &crate::aws::Clients,
    job: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let described = batch_job::describe_job(clients, &stack.account, job).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&described)?);
    } else {
        println!("{}", status_text(&described));
    }
    let failed = matches!(described["status"].as_str(), Some("Failed" | "Cancelled"))
        || described["failed"].as_i64().is_some_and(|n| n > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A job's state for a person (pure).
pub(crate) fn status_text(job: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let count = |v: &Value| v.as_i64().map_or_else(|| "?".to_owned(), |n| n.to_string());
    let mut out = format!(
        "job {}: {}; {} of {} task(s) succeeded, {} failed",
        text(&job["job_id"]),
        text(&job["status"]),
        count(&job["succeeded"]),
        count(&job["tasks"]),
        count(&job["failed"]),
    );
    if let Some(seconds) = job["active_seconds"].as_i64() {
        out.push_str(&format!(" ({seconds} s active)"));
    }
    if let Some(reason) = job["status_update_reason"].as_str() {
        out.push_str(&format!("\n  {reason}"));
    }
    for failure in job["failure_reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  failure: {}: {}",
            text(&failure["code"]),
            text(&failure["reason"])
        ));
    }
    if let Some(report) = job["report"].as_object() {
        let bucket = report.get("bucket").map(text).unwrap_or_default();
        let bucket = bucket.rsplit(":::").next().unwrap_or_default();
        let prefix = report.get("prefix").map(text).unwrap_or_default();
        out.push_str(&format!(
            "\n  report (when the job ends): s3://{bucket}/{prefix}/job-{}/results/*.csv — one \
             line per task: bucket, key, version, status, error code, HTTP status, the \
             function's result string",
            text(&job["job_id"])
        ));
    }
    out
}

impl Counts {
    /// A copy without a source: counted, and kept as a sample.
    fn orphan(&mut self, copy: Listed) {
        self.orphans += 1;
        if self.orphan_sample.len() < SAMPLE {
            self.orphan_sample.push(copy.key);
        }
    }
}

/// Invocations in flight at once: Lambda accepts asynchronous invocations quickly, and the
/// function's own concurrency (reserved or the account's) paces the work.
const IN_FLIGHT: usize = 16;
/// How often the repair says how far it got.
const PROGRESS_EVERY: u64 = 500;

/// Invokes `function` asynchronously for each object, [`IN_FLIGHT`] at a time; how many
/// were invoked, and what failed to be.
async fn repair(
    clients: &crate::aws::Clients,
    region: &str,
    source: &str,
    function: &str,
    todo: Vec<Listed>,
) -> (u64, Vec<String>) {
    let total = todo.len();
    let mut tasks = tokio::task::JoinSet::new();
    let mut invoked = 0u64;
    let mut failed = Vec::new();
    let mut finish = |result: Result<(String, anyhow::Result<()>), tokio::task::JoinError>| {
        match result {
            Ok((_, Ok(()))) => invoked += 1,
            Ok((key, Err(err))) => failed.push(format!("{key}: {err:#}")),
            Err(err) => failed.push(format!("an invocation task failed: {err}")),
        }
        if invoked > 0 && invoked.is_multiple_of(PROGRESS_EVERY) {
            eprintln!("reconcile: invoked {invoked} of {total}");
        }
    };
    for object in todo {
        if tasks.len() >= IN_FLIGHT {
            if let Some(result) = tasks.join_next().await {
                finish(result);
            }
        }
        let head = bucket::ObjectHead {
            size: object.size,
            etag: object.etag.clone(),
            version_id: None,
        };
        let event =
            super::invoke::s3_event(region, source, &object.key, &head, crate::utc::now_ms());
        let (clients, function) = (clients.clone(), function.to_owned());
        tasks.spawn(async move {
            let result = function::invoke_async(&clients, &function, &event).await;
            (object.key, result)
        });
    }
    while let Some(result) = tasks.join_next().await {
        finish(result);
    }
    (invoked, failed)
}

/// Merges the listings in key order — the source, its copies, and each rendition's copies
/// (`<rendition prefix><key>`, in the same order) — classifies every source object, and
/// hands the ones to repair to `todo`. An original whose copy is up to date but a rendition
/// of which is missing or stale is repaired too: the function, finding the copy current,
/// makes only the renditions.
async fn classify_all(
    clients: &crate::aws::Clients,
    (source, destination): (&str, &str),
    (prefix, renditions): (&str, &[String]),
    wanted: impl Fn(&str) -> bool,
    todo: &mut Todo,
) -> anyhow::Result<Counts> {
    let mut a = Listing::new(clients, source, prefix);
    let mut b = Listing::new(clients, destination, prefix);
    let mut made: Vec<(String, Listing)> = renditions
        .iter()
        .map(|r| {
            (
                r.clone(),
                Listing::new(clients, destination, &format!("{r}{prefix}")),
            )
        })
        .collect();
    let mut counts = Counts::default();
    while let Some(object) = a.next().await? {
        let copy = matching(&mut b, &object.key, Some((&mut counts, renditions))).await?;
        let mut rendered = Vec::with_capacity(made.len());
        for (rendition, listing) in &mut made {
            let key = format!("{rendition}{}", object.key);
            rendered.push((key.clone(), matching(listing, &key, None).await?));
        }
        if !wanted(&object.key) {
            continue;
        }
        let mut class = decide(
            clients,
            destination,
            &object,
            &object.key,
            copy.as_ref(),
            &mut counts,
        )
        .await?;
        let mut renditions_only = false;
        if class == Class::UpToDate {
            for (key, copy) in &rendered {
                if decide(
                    clients,
                    destination,
                    &object,
                    key,
                    copy.as_ref(),
                    &mut counts,
                )
                .await?
                    != Class::UpToDate
                {
                    class = Class::Stale;
                    renditions_only = true;
                    break;
                }
            }
        }
        let (count, sample) = match class {
            Class::UpToDate => {
                counts.up_to_date += 1;
                continue;
            }
            _ if renditions_only => (&mut counts.renditions, &mut counts.renditions_sample),
            Class::Missing => (&mut counts.missing, &mut counts.missing_sample),
            Class::Stale | Class::Unknown => (&mut counts.stale, &mut counts.stale_sample),
        };
        *count += 1;
        if sample.len() < SAMPLE {
            sample.push(object.key.clone());
        }
        todo.push(object)?;
    }
    while let Some(copy) = b.next().await? {
        if !renditions.iter().any(|r| copy.key.starts_with(r.as_str())) {
            counts.orphan(copy);
        }
    }
    Ok(counts)
}

/// The entry of `listing` for `key`, if there is one; the entries sorting before it have no
/// source, and are counted as orphans when `orphans` is given (for the originals' copies;
/// keys under a rendition prefix, which an empty trigger prefix lists too, are renditions,
/// not copies without a source).
async fn matching(
    listing: &mut Listing,
    key: &str,
    mut orphans: Option<(&mut Counts, &[String])>,
) -> anyhow::Result<Option<Listed>> {
    while let Some(entry) = listing.peek().await? {
        if entry.key.as_str() >= key {
            break;
        }
        let Some(entry) = listing.next().await? else {
            break;
        };
        if let Some((counts, renditions)) = orphans.as_mut() {
            if !renditions.iter().any(|r| entry.key.starts_with(r.as_str())) {
                counts.orphan(entry);
            }
        }
    }
    match listing.peek().await? {
        Some(entry) if entry.key == key => listing.next().await,
        _ => Ok(None),
    }
}

/// Whether `copy` (at `key` of the destination) is of `object`: from the listings, else from
/// its stamp.
async fn decide(
    clients: &crate::aws::Clients,
    destination: &str,
    object: &Listed,
    key: &str,
    copy: Option<&Listed>,
    counts: &mut Counts,
) -> anyhow::Result<Class> {
    Ok(match classify(object, copy) {
        Class::Unknown => {
            counts.heads += 1;
            let stamp = bucket::source_etag_of_copy(clients, destination, key).await?;
            classify_by_stamp(object, stamp.as_deref())
        }
        class => class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(key: &str, etag: &str, modified_ms: i64) -> Listed {
        Listed {
            key: key.into(),
            etag: Some(etag.into()),
            size: 1,
            modified_ms,
        }
    }

    #[test]
    fn the_listings_decide_where_they_can() {
        let a = listed("uploads/a.jpg", "e1", 1_000);
        assert_eq!(classify(&a, None), Class::Missing);
        assert_eq!(
            classify(&a, Some(&listed("uploads/a.jpg", "x", 1_500))),
            Class::UpToDate
        );
        assert_eq!(
            classify(&a, Some(&listed("uploads/a.jpg", "x", 500))),
            Class::Unknown
        );
    }

    #[test]
    fn the_stamp_decides_the_rest() {
        let a = listed("uploads/a.jpg", "e1", 1_000);
        assert_eq!(classify_by_stamp(&a, Some("e1")), Class::UpToDate);
        assert_eq!(classify_by_stamp(&a, Some("e0")), Class::Stale);
        assert_eq!(classify_by_stamp(&a, None), Class::Stale);
    }

    /// Up to the threshold the objects stay in memory; past it every one of them, the kept
    /// ones first, goes to the manifest file, URL-encoded, and none stays in memory.
    #[test]
    fn past_the_threshold_the_objects_go_to_a_manifest() {
        let mut small = Todo::new("src", 2);
        for key in ["a.jpg", "b.jpg"] {
            small.push(listed(key, "e", 1)).expect("in memory");
        }
        match small.finish().expect("finishes") {
            Repair::Invoke(objects) => assert_eq!(objects.len(), 2),
            Repair::Job { .. } => panic!("two objects are under a threshold of two"),
        }
        let mut large = Todo::new("src", 2);
        for key in ["a.jpg", "b c.jpg", "d+e.jpg", "f.jpg"] {
            large.push(listed(key, "e", 1)).expect("spills");
        }
        assert!(large.memory.is_empty());
        match large.finish().expect("finishes") {
            Repair::Job { manifest, objects } => {
                let text = std::fs::read_to_string(&manifest).expect("the manifest");
                let _ = std::fs::remove_file(&manifest);
                assert_eq!(objects, 4);
                assert_eq!(text, "src,a.jpg\nsrc,b%20c.jpg\nsrc,d%2Be.jpg\nsrc,f.jpg\n");
            }
            Repair::Invoke(_) => panic!("four objects are over a threshold of two"),
        }
    }

    #[test]
    fn a_jobs_status_reads_for_a_person() {
        let job = json!({
            "job_id": "job-42", "status": "Complete", "tasks": 20000, "succeeded": 19997,
            "failed": 3, "active_seconds": 812, "status_update_reason": null,
            "failure_reasons": [{ "code": "TaskFailure", "reason": "3 tasks failed" }],
            "report": { "bucket": "arn:aws:s3:::state", "prefix": "reconcile/pipe/dev/1" },
        });
        insta::assert_snapshot!(status_text(&job));
    }
}
