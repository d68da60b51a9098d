//! What a deploy or destroy tells the person running it.

use crate::aws::Clients;
use crate::engine::{Outcome, Progress};
use crate::resources;

/// Tells what a destroy will do with a bucket and its contents (both engines).
pub(crate) async fn report_bucket_fate(
    clients: &Clients,
    bucket: &str,
    retain: bool,
    force_destroy: bool,
) -> anyhow::Result<()> {
    let (objects, versions) = resources::bucket::contents(clients, bucket).await?;
    let fate = if retain {
        "kept (retain: true)"
    } else if force_destroy {
        "emptied and deleted (force_destroy: true)"
    } else if versions > 0 {
        "kept: not empty and force_destroy is false"
    } else {
        "deleted"
    };
    eprintln!("  bucket {bucket}: {objects} objects, {versions} versions -> {fate}");
    Ok(())
}

/// Resource API calls, and how many of them changed something (state and lock
/// bookkeeping is not counted).
pub(crate) fn report_calls(clients: &Clients) {
    let writes: usize = clients.calls.writes().values().sum();
    eprintln!("{} API calls ({writes} writes)", clients.calls.total());
}

pub(crate) fn print_summary(
    verb: &str,
    outcome: &Outcome,
    unchanged: usize,
    progress: &Progress,
    clients: &Clients,
) {
    eprintln!(
        "\n{verb}: {} created, {} updated, {} replaced, {} deleted, {unchanged} unchanged in {:.1}s",
        outcome.created,
        outcome.updated,
        outcome.replaced,
        outcome.deleted,
        progress.elapsed().as_secs_f64(),
    );
    report_calls(clients);
    if !outcome.kept.is_empty() {
        eprintln!("kept:");
        for kept in &outcome.kept {
            eprintln!("  {kept}");
        }
    }
}
