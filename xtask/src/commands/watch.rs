//! `cargo xtask deploy --watch`: deploy, then follow the functions' logs and, on every save,
//! deploy again what changed — in one terminal, holding the stack's lock, until Ctrl-C.
//!
//! What is watched: the stack file, and each function's package (its folder, the workspace's
//! `Cargo.toml` and `Cargo.lock`), polled every [`POLL`] for a change of a file's size or
//! modification time. Polling rather than inotify: no dependency, the same on every OS and
//! file system (network mounts, containers), and a few hundred `stat`s per poll cost nothing.
//! A save is acted on once the files are still for [`SETTLE`] (editors write in steps).
//!
//! Each round is a deploy like any other (build, upload under the new hash, plan, apply,
//! re-read), so a code edit becomes one `UpdateFunctionCode` and nothing else. A plan of
//! code updates only is applied without asking (that is what watching is for); any other
//! change — the stack file's — is shown and asked for, unless `--yes`. A round that fails
//! (a compile error, an invalid stack file, AWS refusing) is reported and the watch goes on.
//! Ctrl-C while waiting ends the watch cleanly; during a round, it stops the round as it
//! stops a deploy (what was done is recorded in state). Either way the lock is released.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::session::{self, DeployOptions, Locked};

/// How often the watched files are looked at.
const POLL: Duration = Duration::from_millis(300);
/// How long the files must be unchanged before a change is acted on.
const SETTLE: Duration = Duration::from_millis(200);

pub(crate) async fn run(mut args: DeployOptions) -> anyhow::Result<ExitCode> {
    args.target.start_emulator = true;
    let prebuilt = Some(session::prebuild(&args.target)?);
    let (locked, lock) = session::open(&args.target, "deploy --watch", args.force_unlock).await?;
    session::release_after(lock, watch_locked(args, locked, prebuilt, CtrlC::listen())).await
}

/// Every Ctrl-C, from one listener for the whole watch: a press between two rounds is kept
/// (a permit) rather than missed, and nothing else races for it.
struct CtrlC(Arc<Notify>);

impl CtrlC {
    fn listen() -> CtrlC {
        let pressed = Arc::new(Notify::new());
        let notify = pressed.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                notify.notify_one();
            }
        });
        CtrlC(pressed)
    }

    async fn pressed(&self) {
        self.0.notified().await
    }
}

async fn watch_locked(
    args: DeployOptions,
    mut locked: Locked,
    prebuilt: Option<session::Prebuild>,
    ctrl_c: CtrlC,
) -> anyhow::Result<ExitCode> {
    // A round stopped by Ctrl-C stops as a deploy does: what was done is in state.
    let code = tokio::select! {
        biased;
        _ = ctrl_c.pressed() => return Err(session::interrupted("deploy --watch")),
        code = super::deploy::deploy_locked(&args, &locked, prebuilt) => code?,
    };
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    crate::outputs::print(&locked.stack);
    let stack_file = session::stack_file_path(args.target.stack.as_deref())?;
    let packages: BTreeSet<String> = locked
        .stack
        .functions
        .values()
        .map(|f| f.package.clone())
        .collect();
    let mut watched = vec![stack_file.clone()];
    watched.extend(package_paths(&packages)?);
    let mut files = Files::scan(&watched);
    let mut logs = follow_logs(&locked);
    eprintln!(
        "\nwatching {} (Ctrl-C stops): a save deploys what changed",
        watched
            .iter()
            .map(|p| crate::workspace::relative(p))
            .collect::<Vec<_>>()
            .join(", ")
    );
    loop {
        let changed = tokio::select! {
            biased;
            _ = ctrl_c.pressed() => break,
            changed = files.next_change(&watched) => changed,
        };
        eprintln!(
            "\nchanged: {}",
            changed
                .iter()
                .map(|p| crate::workspace::relative(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if changed.contains(&stack_file) {
            match reload(&args, &locked).await {
                Ok(stack) => locked.stack = stack,
                Err(err) => {
                    eprintln!("error: {err:#}\nwaiting for the next change");
                    continue;
                }
            }
            // The functions, and so the log groups followed, may have changed with it.
            logs = follow_logs(&locked);
        }
        // Each round's summary counts its own calls.
        locked.clients = locked.clients.with_own_counter();
        let round = tokio::select! {
            biased;
            _ = ctrl_c.pressed() => return Err(session::interrupted("deploy --watch")),
            round = super::deploy::deploy_locked(&args, &locked, None) => round,
        };
        match round {
            Ok(_) => eprintln!("\nwatching (Ctrl-C stops)"),
            Err(err) => eprintln!("error: {err:#}\nwaiting for the next change"),
        }
    }
    drop(logs);
    eprintln!("\nwatch stopped");
    Ok(ExitCode::SUCCESS)
}

/// The stack file read again and resolved for the account and region of this session.
async fn reload(
    args: &DeployOptions,
    locked: &Locked,
) -> anyhow::Result<crate::stack::ResolvedStack> {
    let (file, _) = session::load_stack_file(&args.target)?;
    file.resolve_in(
        &args.target.env,
        &locked.stack.account,
        Some(&locked.stack.region),
    )
}

/// Prints every function's new log lines as they arrive, one task per log group, until the
/// set is dropped (which aborts them).
fn follow_logs(locked: &Locked) -> tokio::task::JoinSet<()> {
    let start = crate::utc::now_ms();
    let mut follows = tokio::task::JoinSet::new();
    for function in locked.stack.functions.values() {
        let clients = locked.clients.clone();
        let group = function.log_group.clone();
        follows.spawn(async move {
            let mut tail = super::logs::Tail::new(&group, start);
            loop {
                // A log group the stack has not made yet, or a poll AWS refused: said, and
                // looked at again a little later from where the last good poll ended.
                match tail.poll(&clients).await {
                    Ok(()) => tokio::time::sleep(super::logs::POLL_INTERVAL).await,
                    Err(err) => {
                        eprintln!(
                            "logs of {}: {err:#} (looking again in 10 s)",
                            tail.log_group()
                        );
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                }
            }
        });
    }
    follows
}

/// The folders of `packages` (from `cargo metadata`), and the workspace's manifest and lock
/// file, which change what every package builds.
fn package_paths(packages: &BTreeSet<String>) -> anyhow::Result<Vec<PathBuf>> {
    let output = crate::workspace::cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("cannot run cargo metadata")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut paths = Vec::new();
    for package in packages {
        let manifest = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == package.as_str())
            .and_then(|p| p["manifest_path"].as_str())
            .with_context(|| format!("no package `{package}` in the workspace"))?;
        paths.push(
            Path::new(manifest)
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        );
    }
    let root = crate::workspace::root();
    paths.push(root.join("Cargo.toml"));
    paths.push(root.join("Cargo.lock"));
    Ok(paths)
}

/// What a file looked like: size and modification time.
type Stamp = (u64, Option<SystemTime>);

/// Every file under the watched paths, with its stamp.
#[derive(Debug, Default, PartialEq)]
struct Files(BTreeMap<PathBuf, Stamp>);

impl Files {
    fn scan(roots: &[PathBuf]) -> Files {
        let mut files = BTreeMap::new();
        for root in roots {
            collect(root, &mut files);
        }
        Files(files)
    }

    /// The files added, removed or changed since `self`.
    fn changed_since(&self, earlier: &Files) -> BTreeSet<PathBuf> {
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        for (path, stamp) in &self.0 {
            if earlier.0.get(path) != Some(stamp) {
                changed.insert(path.clone());
            }
        }
        changed.extend(
            earlier
                .0
                .keys()
                .filter(|path| !self.0.contains_key(*path))
                .cloned(),
        );
        changed
    }

    /// Waits for a change, then for the files to settle; returns what changed and keeps the
    /// settled scan for the next wait.
    async fn next_change(&mut self, roots: &[PathBuf]) -> BTreeSet<PathBuf> {
        loop {
            tokio::time::sleep(POLL).await;
            let mut now = Files::scan(roots);
            if now == *self {
                continue;
            }
            loop {
                tokio::time::sleep(SETTLE).await;
                let later = Files::scan(roots);
                if later == now {
                    break;
                }
                now = later;
            }
            let changed = now.changed_since(self);
            *self = now;
            if !changed.is_empty() {
                return changed;
            }
        }
    }
}

/// `path`'s files, recursively, without what cargo and editors write beside the sources:
/// `target` folders, hidden files and folders (`.git`, `.#x.rs`), backups (`x.rs~`, `x.swp`).
fn collect(path: &Path, files: &mut BTreeMap<PathBuf, Stamp>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        files.insert(path.to_path_buf(), (meta.len(), meta.modified().ok()));
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if ignored(&name, is_dir) {
            continue;
        }
        collect(&entry.path(), files);
    }
}

fn ignored(name: &str, is_dir: bool) -> bool {
    name.starts_with('.')
        || (is_dir && name == "target")
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_is_seen_and_what_editors_and_cargo_write_is_not() {
        let dir = std::env::temp_dir().join(format!("stripstack-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("target/debug")).unwrap();
        std::fs::write(dir.join("src/main.rs"), "fn main() {}").unwrap();
        let roots = [dir.clone()];
        let before = Files::scan(&roots);

        std::fs::write(dir.join("target/debug/bootstrap"), "binary").unwrap();
        std::fs::write(dir.join("src/.main.rs.swp"), "swap").unwrap();
        std::fs::write(dir.join("src/main.rs~"), "backup").unwrap();
        assert!(Files::scan(&roots).changed_since(&before).is_empty());

        std::fs::write(dir.join("src/main.rs"), "fn main() { println!(); }").unwrap();
        std::fs::write(dir.join("src/new.rs"), "").unwrap();
        let after = Files::scan(&roots);
        assert_eq!(
            after.changed_since(&before),
            BTreeSet::from([dir.join("src/main.rs"), dir.join("src/new.rs")])
        );
        std::fs::remove_file(dir.join("src/new.rs")).unwrap();
        assert_eq!(
            Files::scan(&roots).changed_since(&after),
            BTreeSet::from([dir.join("src/new.rs")])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn next_change_returns_the_settled_change() {
        let dir =
            std::env::temp_dir().join(format!("stripstack-watch-next-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stack.yaml");
        std::fs::write(&file, "a").unwrap();
        let roots = [file.clone()];
        let mut files = Files::scan(&roots);
        let writer = {
            let file = file.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                std::fs::write(&file, "ab").unwrap();
            })
        };
        let changed = tokio::time::timeout(Duration::from_secs(10), files.next_change(&roots))
            .await
            .expect("the change is seen");
        writer.await.unwrap();
        assert_eq!(changed, BTreeSet::from([file.clone()]));
        assert_eq!(files, Files::scan(&roots), "the settled scan is kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
