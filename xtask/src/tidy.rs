//! Checks of the code's shape that the compiler does not make (rust-analyzer's `tidy`): the
//! module layering ARCHITECTURE.md promises, read from the sources' `crate::` paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of `xtask/src` and the top-level modules each one names (outside its
/// `#[cfg(test)]` part: tests may reach anywhere).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let module = first.trim_end_matches(".rs").to_owned();
        if ["main", "lib", "tidy"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let entry = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                entry.insert(name);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A cycle in `graph`, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_each_other_without_cycles() {
    let graph = imports();
    assert!(graph.contains_key("resources") && graph.contains_key("session"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// The layers of ARCHITECTURE.md's invariants: each module may import only the ones listed.
#[test]
fn lower_layers_never_import_higher_ones() {
    let graph = imports();
    let allowed: &[(&str, &[&str])] = &[
        // Pure: the stack model knows nothing of AWS, commands or terminals.
        ("stack", &[]),
        ("workspace", &[]),
        // One file per kind; SDK calls through `aws`.
        ("resources", &["aws", "stack"]),
        // The pure diff and its rendering.
        ("plan", &["resources", "stack", "style"]),
        ("engine", &["aws", "plan", "resources", "stack", "style"]),
    ];
    for (module, may) in allowed {
        let imports = graph.get(*module).cloned().unwrap_or_default();
        let extra: Vec<&String> = imports
            .iter()
            .filter(|m| !may.contains(&m.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "`{module}` may import only {may:?} but imports {extra:?}"
        );
    }
    for (module, imports) in &graph {
        assert!(
            module == "cli" || !imports.contains("cli"),
            "`{module}` imports `cli`: commands take option structs from `session`, not clap types"
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// `cargo tree`'s view of a build of `selection`: each package (`name vX.Y.Z`) with the
/// feature sets it is compiled with (one per build context: target, build script, proc macro).
fn resolved_features(selection: &[&str], edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let output = crate::workspace::cargo()
        .args([
            "tree", "--locked", "--prefix", "none", "--format", "{p}|{f}",
        ])
        .args(["--edges", edges])
        .args(selection)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {selection:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // `name vX.Y.Z (path)` for workspace members; `(*)`/`(proc-macro)` are markers.
        let package: String = package.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let features = features
            .trim_end_matches(" (*)")
            .trim_end_matches(" (proc-macro)");
        packages
            .entry(package)
            .or_default()
            .insert(features.to_owned());
    }
    packages
}

/// The builds a clone makes in the dev profile (`cargo xtask`, the local bootstrap and
/// `cargo test --workspace`) resolve every shared dependency to the same features, so the
/// AWS SDK stack is compiled once, not once per build. cargo-hakari keeps
/// `workspace-hack/Cargo.toml` so (`cargo hakari generate` after a dependency change); this
/// is the check that it was run.
#[test]
fn every_dev_build_shares_the_same_dependency_features() {
    let workspace = resolved_features(&["--workspace"], "normal,build,dev");
    for selection in [
        &["--package", "xtask"][..],
        &["--package", "lambda", "--package", "workspace-hack"][..],
    ] {
        let build = resolved_features(selection, "normal,build");
        let differing: Vec<String> = build
            .iter()
            .filter(|(package, features)| {
                workspace.get(*package).is_some_and(|all| all != *features)
            })
            .map(|(package, features)| {
                format!("{package}: {features:?} vs {:?}", workspace[package])
            })
            .collect();
        assert!(
            differing.is_empty(),
            "`cargo build {}` compiles these with other features than `cargo test --workspace` \
             (run `cargo hakari generate`):\n{}",
            selection.join(" "),
            differing.join("\n")
        );
    }
}

/// The Lambda's own build (what `bundle --arch …` ships) stays lean: it does not take the
/// workspace's unified features, only its own (rustls with ring, no aws-lc, no SSO).
#[test]
fn the_shipped_lambda_carries_none_of_the_workspace_features() {
    let lambda = resolved_features(&["--package", "lambda"], "normal,build");
    for absent in ["workspace-hack", "aws-lc-rs", "aws-lc-sys", "aws-sdk-sso"] {
        let found: Vec<&String> = lambda
            .keys()
            .filter(|package| package.split(' ').next() == Some(absent))
            .collect();
        assert!(found.is_empty(), "the Lambda build includes {found:?}");
    }
}
