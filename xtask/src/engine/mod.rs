//! Applying a plan: dependency order with independent resources in parallel, state
//! recorded before each create (so an interrupted run is resumed without orphans),
//! progress lines and a summary. The per-kind SDK calls live in `resources`.

pub mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::aws::Clients;
use crate::plan::{Action, Plan};
use crate::resources::{self, Address, ApplyCtx, Desired, Observed, Removal};
use state::{Record, StateStore};

/// Progress output: on a terminal, one live line per resource (`indicatif`); otherwise one
/// plain line per step, with the time since the start (readable in CI logs).
#[derive(Debug, Clone)]
pub struct Progress {
    started: Instant,
    bars: Option<Arc<std::sync::Mutex<Bars>>>,
}

#[derive(Debug)]
struct Bars {
    multi: indicatif::MultiProgress,
    lines: BTreeMap<Address, indicatif::ProgressBar>,
}

impl Default for Progress {
    fn default() -> Self {
        use std::io::IsTerminal as _;
        let bars = std::io::stderr().is_terminal().then(|| {
            Arc::new(std::sync::Mutex::new(Bars {
                multi: indicatif::MultiProgress::new(),
                lines: BTreeMap::new(),
            }))
        });
        Progress {
            started: Instant::now(),
            bars,
        }
    }
}

impl Progress {
    pub fn line(&self, address: &Address, message: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let Some(bars) = &self.bars else {
            eprintln!("  [{secs:6.1}s] {address}: {message}");
            return;
        };
        let Ok(mut bars) = bars.lock() else { return };
        let Bars { multi, lines } = &mut *bars;
        let bar = lines.entry(address.clone()).or_insert_with(|| {
            let bar = multi.add(indicatif::ProgressBar::new_spinner());
            let style = indicatif::ProgressStyle::with_template("  {spinner} {prefix:40} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(address.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let done = ["created", "updated", "re-created", "deleted", "kept"]
            .iter()
            .any(|word| message.starts_with(word));
        if done {
            bar.finish_with_message(message.to_owned());
        } else {
            bar.set_message(format!("{message} ({secs:.1}s)"));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
    pub deleted: usize,
    /// Kept on purpose, with why (retained, or a non-empty bucket without force_destroy).
    pub kept: Vec<String>,
}

/// One unit of work for the scheduler.
#[derive(Debug, Clone)]
enum Step {
    Upsert {
        action: Action,
        want: Desired,
        have: Option<Observed>,
    },
    Remove {
        address: Address,
        physical: String,
        retain: bool,
        settings: resources::Settings,
    },
}

impl Step {
    fn address(&self) -> &Address {
        match self {
            Step::Upsert { want, .. } => &want.address,
            Step::Remove { address, .. } => address,
        }
    }
}

/// Dependency levels: level 0 has no dependency among `changing`; level n depends only on
/// lower levels. Everything inside one level runs in parallel.
fn levels(desired: &[Desired], changing: &[Address]) -> BTreeMap<Address, usize> {
    let mut level: BTreeMap<Address, usize> = BTreeMap::new();
    // Kinds are declared in dependency order, so one pass in kind order settles every level.
    let mut ordered: Vec<&Desired> = desired.iter().collect();
    ordered.sort_by(|a, b| a.address.cmp(&b.address));
    for want in ordered {
        if !changing.contains(&want.address) {
            continue;
        }
        let l = want
            .depends_on
            .iter()
            .filter_map(|dep| level.get(dep).map(|l| l + 1))
            .max()
            .unwrap_or(0);
        level.insert(want.address.clone(), l);
    }
    level
}

/// Applies `plan`: upserts in dependency order, then deletes in reverse dependency order.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    clients: &Clients,
    ctx: &ApplyCtx,
    plan: &Plan,
    desired: &[Desired],
    observed: &BTreeMap<Address, Option<Observed>>,
    store: Arc<Mutex<StateStore>>,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let find = |a: &Address| desired.iter().find(|d| &d.address == a);
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for change in &plan.changes {
        let have = observed.get(&change.address).cloned().flatten();
        match change.action {
            Action::Delete => {
                let record = store.lock().await.state.get(&change.address).cloned();
                removals.push(Step::Remove {
                    address: change.address.clone(),
                    physical: change.physical.clone(),
                    retain: record.as_ref().is_some_and(|r| r.retain),
                    settings: record.map(|r| r.settings).unwrap_or_default(),
                });
            }
            Action::Replace => {
                let Some(want) = find(&change.address) else {
                    continue;
                };
                removals.push(Step::Remove {
                    address: change.address.clone(),
                    physical: have
                        .as_ref()
                        .map(|h| h.physical.clone())
                        .unwrap_or_default(),
                    retain: false,
                    settings: Default::default(),
                });
                upserts.push(Step::Upsert {
                    action: Action::Replace,
                    want: want.clone(),
                    have: None,
                });
            }
            action => {
                let Some(want) = find(&change.address) else {
                    continue;
                };
                upserts.push(Step::Upsert {
                    action,
                    want: want.clone(),
                    have,
                });
            }
        }
    }
    // Replacements delete the old resource first.
    let (replaced_removals, removals): (Vec<Step>, Vec<Step>) = removals
        .into_iter()
        .partition(|s| upserts.iter().any(|u| u.address() == s.address()));
    run_removals(
        clients,
        ctx,
        &replaced_removals,
        &store,
        progress,
        &mut outcome,
    )
    .await?;

    let changing: Vec<Address> = upserts.iter().map(|s| s.address().clone()).collect();
    let level = levels(desired, &changing);
    let max_level = level.values().copied().max().unwrap_or(0);
    for current in 0..=max_level {
        let wave: Vec<Step> = upserts
            .iter()
            .filter(|s| level.get(s.address()) == Some(&current))
            .cloned()
            .collect();
        record_before(ctx, &wave, &store).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for step in wave {
            let (clients, ctx, progress) = (clients.clone(), ctx.clone(), progress.clone());
            tasks.spawn(async move {
                let address = step.address().clone();
                (address, run_upsert(&clients, &ctx, step, &progress).await)
            });
        }
        let mut errors = Vec::new();
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((address, Ok(action))) => {
                    match action {
                        Action::Create => outcome.created += 1,
                        Action::Update => outcome.updated += 1,
                        Action::Replace => outcome.replaced += 1,
                        Action::Delete => {}
                    }
                    done.push(address);
                }
                Ok((_, Err(err))) => errors.push(format!("{err:#}")),
                Err(err) => errors.push(format!("a task failed: {err}")),
            }
        }
        record_after(ctx, &done, &store).await?;
        if !errors.is_empty() {
            errors.sort();
            anyhow::bail!(
                "deploy stopped; what succeeded is recorded, re-run to continue:\n  {}",
                errors.join("\n  ")
            );
        }
    }
    run_removals(clients, ctx, &removals, &store, progress, &mut outcome).await?;
    Ok(outcome)
}

/// Records every resource `wave` creates or changes, in one state write, before any call:
/// if we are killed during one, the next run finds the record and either adopts the
/// resource or deletes it when undeclared (a record of something never made is forgotten:
/// see `deploy::Snapshot::gone`). The settings recorded cover the change on both sides
/// ([`resources::settings_during`]: the tag keys the stack managed and will manage). A
/// resource that exists unrecorded (adopted: its kind found it ours) is recorded too.
async fn record_before(
    ctx: &ApplyCtx,
    wave: &[Step],
    store: &Mutex<StateStore>,
) -> anyhow::Result<()> {
    let mut store = store.lock().await;
    let mut recorded = false;
    for step in wave {
        let Step::Upsert { want, .. } = step else {
            continue;
        };
        let old = store.state.get(&want.address).cloned();
        let record = Record {
            address: want.address.clone(),
            physical: want.physical.clone(),
            retain: want.retain,
            settings: resources::settings_during(
                &ctx.stack,
                &want.address,
                &old.as_ref().map(|r| r.settings.clone()).unwrap_or_default(),
            ),
        };
        if old.as_ref() != Some(&record) {
            store.state.upsert(record);
            recorded = true;
        }
    }
    if recorded {
        store.save().await?;
    }
    Ok(())
}

/// Once resources were created or changed (`done`), their records get the settings of the
/// stack as it is now (tag keys no longer declared, now removed, are forgotten), in one
/// state write, before the wave's errors (if any) stop the deploy.
async fn record_after(
    ctx: &ApplyCtx,
    done: &[Address],
    store: &Mutex<StateStore>,
) -> anyhow::Result<()> {
    let mut store = store.lock().await;
    let mut recorded = false;
    for address in done {
        let Some(old) = store.state.get(address).cloned() else {
            continue;
        };
        let settings = resources::settings(&ctx.stack, address);
        if old.settings != settings {
            store.state.upsert(Record { settings, ..old });
            recorded = true;
        }
    }
    if recorded {
        store.save().await?;
    }
    Ok(())
}

async fn run_upsert(
    clients: &Clients,
    ctx: &ApplyCtx,
    step: Step,
    progress: &Progress,
) -> anyhow::Result<Action> {
    let Step::Upsert { action, want, have } = step else {
        anyhow::bail!("internal: not an upsert");
    };
    let started = Instant::now();
    let verb = match action {
        Action::Create => "creating",
        Action::Replace => "re-creating",
        _ => "updating",
    };
    progress.line(&want.address, verb);
    let on_wait = |msg: &str| progress.line(&want.address, msg);
    resources::converge(clients, ctx, &want, have.as_ref(), &on_wait)
        .await
        .map_err(|e| e.context(format!("{}", want.address)))?;
    let done = match action {
        Action::Create => "created",
        Action::Replace => "re-created",
        _ => "updated",
    };
    progress.line(
        &want.address,
        &format!("{done} in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(action)
}

/// The order of deletes: groups of kinds, each group deleted in parallel once the groups
/// before it are done; a kind comes after every kind of its [`Kind::deleted_after`]
/// (among `kinds`).
fn removal_levels(kinds: &[resources::Kind]) -> Vec<Vec<resources::Kind>> {
    let mut level: BTreeMap<resources::Kind, usize> = BTreeMap::new();
    // Relaxation over a handful of kinds: the relation is acyclic (a unit test checks it),
    // so it settles within `kinds.len()` rounds.
    for _ in 0..=kinds.len() {
        for &kind in kinds {
            let l = kind
                .deleted_after()
                .iter()
                .filter_map(|before| level.get(before).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            level.insert(kind, l);
        }
    }
    let mut groups: Vec<Vec<resources::Kind>> = Vec::new();
    for (kind, l) in level {
        if groups.len() <= l {
            groups.resize(l + 1, Vec::new());
        }
        groups[l].push(kind);
    }
    groups
}

/// Deletes group by group ([`removal_levels`]), the resources of one group in parallel.
async fn run_removals(
    clients: &Clients,
    ctx: &ApplyCtx,
    steps: &[Step],
    store: &Arc<Mutex<StateStore>>,
    progress: &Progress,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut kinds: Vec<resources::Kind> = steps.iter().map(|s| s.address().kind).collect();
    kinds.sort();
    kinds.dedup();
    for group in removal_levels(&kinds) {
        // Whether the group removed a record, so the state needs writing.
        let mut forgotten = false;
        let mut tasks = tokio::task::JoinSet::new();
        for step in steps
            .iter()
            .filter(|s| group.contains(&s.address().kind))
            .cloned()
        {
            let Step::Remove {
                address,
                physical,
                retain,
                settings,
            } = step
            else {
                continue;
            };
            if retain {
                progress.line(&address, "kept (retain: true)");
                outcome
                    .kept
                    .push(format!("{address} ({physical}): retain: true"));
                store.lock().await.state.remove(&address);
                forgotten = true;
                continue;
            }
            let (clients, read, progress) = (clients.clone(), ctx.read.clone(), progress.clone());
            tasks.spawn(async move {
                progress.line(&address, "deleting");
                let started = Instant::now();
                let result =
                    resources::remove(&clients, &read, &address, &physical, &settings).await;
                if let Ok(Removal::Deleted) = result {
                    progress.line(
                        &address,
                        &format!("deleted in {:.1}s", started.elapsed().as_secs_f64()),
                    );
                }
                (address, physical, result)
            });
        }
        let mut errors = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((address, physical, result)) = joined else {
                errors.push("a delete task failed".to_owned());
                continue;
            };
            match result {
                Ok(Removal::Deleted) => {
                    outcome.deleted += 1;
                    // Saved once the group is done: a record of something already deleted
                    // is harmless (the next run finds it gone and forgets it).
                    store.lock().await.state.remove(&address);
                    forgotten = true;
                }
                Ok(Removal::KeptNotEmpty { holds }) => {
                    progress.line(
                        &address,
                        &format!("kept: not empty ({holds}) and force_destroy is false"),
                    );
                    outcome.kept.push(format!(
                        "{address} ({physical}): holds {holds}; \
                         set `force_destroy: true` or empty it to delete it"
                    ));
                }
                Err(err) => errors.push(format!("{address}: {err:#}")),
            }
        }
        if forgotten {
            store.lock().await.save().await?;
        }
        if !errors.is_empty() {
            errors.sort();
            anyhow::bail!(
                "deleting stopped; re-run to continue:\n  {}",
                errors.join("\n  ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Kind;

    fn desired(kind: Kind, name: &str, deps: &[(Kind, &str)]) -> Desired {
        Desired {
            address: Address::new(kind, name),
            physical: name.into(),
            props: Default::default(),
            depends_on: deps.iter().map(|(k, n)| Address::new(*k, *n)).collect(),
            retain: false,
        }
    }

    const ALL_KINDS: &[Kind] = Kind::ALL;

    fn removal_group_of(groups: &[Vec<Kind>], kind: Kind) -> usize {
        groups
            .iter()
            .position(|g| g.contains(&kind))
            .unwrap_or_else(|| panic!("{kind} in no group of {groups:?}"))
    }

    #[test]
    fn deletes_run_in_four_groups_with_what_refers_to_a_resource_first() {
        let groups = removal_levels(ALL_KINDS);
        assert_eq!(
            groups,
            vec![
                vec![
                    Kind::Parameter,
                    Kind::User,
                    Kind::InvokeConfig,
                    Kind::Notification
                ],
                vec![Kind::Bucket, Kind::Policy, Kind::Queue, Kind::Permission],
                vec![Kind::Function],
                vec![Kind::Role, Kind::LogGroup],
            ]
        );
        // Acyclic and respected: every kind once, after everything it must wait for.
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), ALL_KINDS.len());
        for &kind in ALL_KINDS {
            for before in kind.deleted_after() {
                assert!(
                    removal_group_of(&groups, *before) < removal_group_of(&groups, kind),
                    "{before} must be deleted before {kind}"
                );
            }
        }
        // Only the kinds present count: a lone role waits for nothing.
        assert_eq!(removal_levels(&[Kind::Role]), vec![vec![Kind::Role]]);
        assert_eq!(
            removal_levels(&[Kind::Bucket, Kind::Role]),
            vec![vec![Kind::Bucket, Kind::Role]]
        );
    }

    /// What a deploy creates first is deleted last: for every dependency of the real
    /// pipeline, in every env, the dependent goes in an earlier delete group.
    #[test]
    fn deletes_undo_the_pipeline_dependencies_in_reverse() {
        let groups = removal_levels(ALL_KINDS);
        for stack in crate::stack::pipeline_in_every_env() {
            let env = &stack.env;
            for want in resources::desired_all(&stack, &Default::default()) {
                for dep in &want.depends_on {
                    assert!(
                        removal_group_of(&groups, want.address.kind)
                            < removal_group_of(&groups, dep.kind),
                        "{env}: {} depends on {dep}, so must be deleted before it",
                        want.address
                    );
                }
            }
        }
    }

    #[test]
    fn independent_resources_share_a_level_and_dependents_follow() {
        let all = vec![
            desired(Kind::Bucket, "source", &[]),
            desired(Kind::Role, "strip", &[]),
            desired(Kind::Function, "strip", &[(Kind::Role, "strip")]),
            desired(
                Kind::Permission,
                "strip.source",
                &[(Kind::Function, "strip")],
            ),
            desired(
                Kind::Notification,
                "source",
                &[(Kind::Permission, "strip.source"), (Kind::Bucket, "source")],
            ),
        ];
        let changing: Vec<Address> = all.iter().map(|d| d.address.clone()).collect();
        let level = levels(&all, &changing);
        assert_eq!(level[&Address::new(Kind::Bucket, "source")], 0);
        assert_eq!(level[&Address::new(Kind::Role, "strip")], 0);
        assert_eq!(level[&Address::new(Kind::Function, "strip")], 1);
        assert_eq!(level[&Address::new(Kind::Permission, "strip.source")], 2);
        assert_eq!(level[&Address::new(Kind::Notification, "source")], 3);
    }

    #[test]
    fn an_unchanged_dependency_does_not_delay() {
        let all = vec![
            desired(Kind::Role, "strip", &[]),
            desired(Kind::Function, "strip", &[(Kind::Role, "strip")]),
        ];
        let level = levels(&all, &[Address::new(Kind::Function, "strip")]);
        assert_eq!(level[&Address::new(Kind::Function, "strip")], 0);
    }
}
