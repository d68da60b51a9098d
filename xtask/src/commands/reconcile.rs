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
//!
//! Not built yet (issue 16): the S3 Batch Operations path for very large buckets, the handler's
//! Batch Operations events, and the bench row.

use std::process::ExitCode;

use serde_json::json;

use crate::resources::bucket::{self, Listed, Listing};
use crate::resources::function;
use crate::session::{self, TargetOptions};
use crate::stack::resolved::TriggerEvent;

#[derive(Debug, Clone, Default)]
pub(crate) struct ReconcileOptions {
    pub target: TargetOptions,
    /// Only keys under this prefix (within the triggers' prefixes).
    pub prefix: Option<String>,
    pub dry_run: bool,
    pub json: bool,
}

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
    missing: Vec<Listed>,
    stale: Vec<Listed>,
    orphans: u64,
    orphan_sample: Vec<String>,
    heads: u64,
}

pub(crate) async fn run(options: ReconcileOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&options.target).await?;
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
            let counts =
                classify_all(&clients, &source.name, &destination, &prefix, wanted).await?;
            let (invoked, failed) = if options.dry_run {
                (0, Vec::new())
            } else {
                let todo: Vec<Listed> = counts
                    .missing
                    .iter()
                    .chain(&counts.stale)
                    .cloned()
                    .collect();
                repair(&clients, &stack.region, &source.name, &function.name, todo).await
            };
            failed_any |= !failed.is_empty();
            report.push(json!({
                "function": function.logical,
                "source": source.name,
                "destination": destination,
                "prefix": prefix,
                "up_to_date": counts.up_to_date,
                "missing": counts.missing.len(),
                "stale": counts.stale.len(),
                "orphans": counts.orphans,
                "stamps_read": counts.heads,
                "invoked": invoked,
                "failed_to_invoke": failed,
                "sample": {
                    "missing": counts.missing.iter().take(SAMPLE).map(|o| &o.key).collect::<Vec<_>>(),
                    "stale": counts.stale.iter().take(SAMPLE).map(|o| &o.key).collect::<Vec<_>>(),
                    "orphans": counts.orphan_sample,
                },
            }));
        }
    }
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "reconciled": report }))?
        );
    } else {
        for r in &report {
            println!(
                "{} → {} under `{}`: {} up to date, {} missing, {} stale, {} orphans ({} stamps read)",
                r["source"].as_str().unwrap_or_default(),
                r["destination"].as_str().unwrap_or_default(),
                r["prefix"].as_str().unwrap_or_default(),
                r["up_to_date"],
                r["missing"],
                r["stale"],
                r["orphans"],
                r["stamps_read"],
            );
            for class in ["missing", "stale", "orphans"] {
                for key in r["sample"][class].as_array().into_iter().flatten() {
                    println!("  {class}: {}", key.as_str().unwrap_or_default());
                }
            }
            if options.dry_run {
                println!("  dry run: nothing invoked");
            } else {
                println!(
                    "  invoked `{}` for {} object(s); {} failed to invoke",
                    r["function"].as_str().unwrap_or_default(),
                    r["invoked"],
                    r["failed_to_invoke"].as_array().map_or(0, Vec::len)
                );
                for failure in r["failed_to_invoke"].as_array().into_iter().flatten() {
                    println!("    {}", failure.as_str().unwrap_or_default());
                }
            }
        }
    }
    Ok(if failed_any {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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

/// Merges the two listings in key order and classifies every source object.
async fn classify_all(
    clients: &crate::aws::Clients,
    source: &str,
    destination: &str,
    prefix: &str,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Counts> {
    let mut a = Listing::new(clients, source, prefix);
    let mut b = Listing::new(clients, destination, prefix);
    let mut counts = Counts::default();
    while let Some(object) = a.next().await? {
        // Copies whose key sorts before this source have no source: orphans.
        while let Some(copy) = b.peek().await? {
            if copy.key >= object.key {
                break;
            }
            let Some(copy) = b.next().await? else {
                break;
            };
            counts.orphan(copy);
        }
        let copy = match b.peek().await? {
            Some(copy) if copy.key == object.key => b.next().await?,
            _ => None,
        };
        if !wanted(&object.key) {
            continue;
        }
        let class = match classify(&object, copy.as_ref()) {
            Class::Unknown => {
                counts.heads += 1;
                let stamp = bucket::source_etag_of_copy(clients, destination, &object.key).await?;
                classify_by_stamp(&object, stamp.as_deref())
            }
            class => class,
        };
        match class {
            Class::UpToDate => counts.up_to_date += 1,
            Class::Missing => counts.missing.push(object),
            Class::Stale | Class::Unknown => counts.stale.push(object),
        }
    }
    while let Some(copy) = b.next().await? {
        counts.orphan(copy);
    }
    Ok(counts)
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
}
