//! The YAML stack model: parsing (serde, `deny_unknown_fields`), environment overlays,
//! `${…}` interpolation, the dependency graph and offline validation. Pure: no AWS calls,
//! no AWS types; the only I/O is reading stack files and `validate`'s report.
//!
//! Pipeline of [`load`], per stack file:
//! 1. YAML syntax and duplicate keys (`source`: yaml-rust2 marked events, which also give
//!    every node's position), then the document as a `serde_norway::Value`;
//! 2. the base document typed (`model`), each environment's overlay deep-merged over it
//!    (`merge`) and typed again;
//! 3. each environment resolved with a placeholder account (`resolve`: names, ARNs, `${…}`,
//!    dependency cycles) and checked (`validate`), then clashes across environments.
//!
//! Diagnostics point at the YAML: a value an environment overrides is shown in the overlay.

mod diagnostic;
mod graph;
mod iam;
mod interpolate;
mod merge;
mod model;
mod resolve;
pub mod resolved;
pub(crate) mod schema;
mod source;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;

pub use diagnostic::{Diagnostic, Severity, Span, StackError};
pub use graph::{DependencyGraph, Node, NodeKind};
pub use model::{Architecture, DEFAULT_MEMORY, DEFAULT_TIMEOUT};
pub use resolve::partition;
pub use resolved::ResolvedStack;

use diagnostic::did_you_mean;
pub use diagnostic::{count_summary, render_all};
use model::{Document, Overlay};
use resolve::Resolution;
pub use source::Source;
use source::{Index, Locator, NodePath, Seg};

/// The account id offline validation resolves with: 12 digits like every real one, so
/// length limits (bucket names hold `${account}`) are checked at their real length.
pub const PLACEHOLDER_ACCOUNT: &str = "123456789012";

/// Settings of one environment needed before anything else can be resolved
/// (the region and endpoint decide which AWS account we talk to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    pub region: String,
    pub endpoint: Option<String>,
}

/// A parsed, validated stack file (all environments).
#[derive(Debug, Clone)]
pub struct StackFile {
    pub path: PathBuf,
    source: Source,
    index: Index,
    stack: String,
    envs: BTreeMap<String, EnvModel>,
    warnings: Vec<Diagnostic>,
}

/// One environment: its merged (still uninterpolated) document and settings.
#[derive(Debug, Clone)]
struct EnvModel {
    doc: Document,
    settings: EnvSettings,
}

impl StackFile {
    /// The stack's name (`stack:`), which prefixes IAM names and the state.
    pub fn name(&self) -> &str {
        &self.stack
    }

    /// Names of the declared environments, sorted.
    pub fn env_names(&self) -> Vec<String> {
        self.envs.keys().cloned().collect()
    }

    pub fn env_settings(&self, env: &str) -> anyhow::Result<EnvSettings> {
        Ok(self.env(env)?.settings.clone())
    }

    /// One environment, overlays merged and every `${…}` interpolated for `account`.
    pub fn resolve(&self, env: &str, account: &str) -> anyhow::Result<ResolvedStack> {
        Ok(self.resolve_with_dependencies(env, account, None)?.0)
    }

    /// [`StackFile::resolve`] in `region` instead of the stack's (`--region`): every
    /// `${region}` and ARN follows it.
    pub fn resolve_in(
        &self,
        env: &str,
        account: &str,
        region: Option<&str>,
    ) -> anyhow::Result<ResolvedStack> {
        Ok(self.resolve_with_dependencies(env, account, region)?.0)
    }

    /// [`StackFile::resolve`], plus the dependencies the stack's `${…}` references imply
    /// (parameters appear under their SSM names). Acyclic: cycles fail [`load`].
    pub fn resolve_with_dependencies(
        &self,
        env: &str,
        account: &str,
        region: Option<&str>,
    ) -> anyhow::Result<(ResolvedStack, DependencyGraph)> {
        let model = self.env(env)?;
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(StackError::InvalidAccount(account.to_owned()).into());
        }
        let loc = Locator::new(&self.source, &self.index, Some(env));
        let endpoint = model.settings.endpoint.as_deref();
        let (resolution, mut diagnostics) = resolve::resolve(
            &model.doc,
            env,
            region.unwrap_or(&model.doc.region),
            endpoint,
            account,
            loc,
        );
        if let Some(resolution) = &resolution {
            diagnostics.extend(validate::check_env(&model.doc, resolution, endpoint, loc));
        }
        match resolution {
            Some(r) if !diagnostics.iter().any(Diagnostic::is_error) => Ok((r.resolved, r.graph)),
            _ => Err(invalid(&self.source, diagnostics).into()),
        }
    }

    /// Warnings found by [`load`] (they do not stop anything).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The warnings rendered like `validate` shows them.
    pub fn render_warnings(&self, color: bool) -> String {
        render_all(&self.warnings, &self.source, color)
    }

    fn env(&self, env: &str) -> Result<&EnvModel, StackError> {
        self.envs.get(env).ok_or_else(|| {
            let valid = self.env_names();
            StackError::UnknownEnvironment {
                env: env.to_owned(),
                file: self.source.display.clone(),
                suggestion: did_you_mean(env, valid.iter().map(String::as_str)).map(str::to_owned),
                valid,
            }
        })
    }

    /// `2 buckets, 2 parameters, 2 users, 1 function, 1 queue` (declared in any environment).
    fn counts(&self) -> String {
        let count = |f: &dyn Fn(&Document) -> Vec<String>| {
            self.envs
                .values()
                .flat_map(|m| f(&m.doc))
                .collect::<BTreeSet<_>>()
                .len()
        };
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        [
            plural(count(&|d| d.buckets.keys().cloned().collect()), "bucket"),
            plural(
                count(&|d| d.parameters.keys().cloned().collect()),
                "parameter",
            ),
            plural(count(&|d| d.users.keys().cloned().collect()), "user"),
            plural(
                count(&|d| d.functions.keys().cloned().collect()),
                "function",
            ),
            plural(count(&|d| d.queues.keys().cloned().collect()), "queue"),
        ]
        .join(", ")
    }
}

fn invalid(source: &Source, diagnostics: Vec<Diagnostic>) -> StackError {
    StackError::Invalid {
        file: source.display.clone(),
        summary: count_summary(&diagnostics),
        rendered: render_all(&diagnostics, source, false)
            .trim_end()
            .to_owned(),
        diagnostics,
    }
}

/// The stack files of `stacks_dir` (`*.yaml`), sorted.
fn stack_files(stacks_dir: &Path) -> Result<Vec<PathBuf>, StackError> {
    let entries = std::fs::read_dir(stacks_dir).map_err(|error| StackError::ListStacks {
        dir: stacks_dir.to_path_buf(),
        error,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| StackError::ListStacks {
                dir: stacks_dir.to_path_buf(),
                error,
            })?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `stacks/NAME.yaml`, or the only stack in `stacks_dir` when `name` is `None`.
pub fn find_stack_file(stacks_dir: &Path, name: Option<&str>) -> anyhow::Result<PathBuf> {
    let files = stack_files(stacks_dir)?;
    let available: Vec<String> = files.iter().map(|f| stem(f)).collect();
    match name {
        Some(name) => {
            let wanted = stacks_dir.join(format!("{name}.yaml"));
            if files.contains(&wanted) {
                return Ok(wanted);
            }
            Err(StackError::StackNotFound {
                name: name.to_owned(),
                dir: stacks_dir.to_path_buf(),
                suggestion: did_you_mean(name, available.iter().map(String::as_str))
                    .map(str::to_owned),
                available,
            }
            .into())
        }
        None => match files.as_slice() {
            [] => Err(StackError::NoStacks(stacks_dir.to_path_buf()).into()),
            [only] => Ok(only.clone()),
            _ => Err(StackError::AmbiguousStack {
                dir: stacks_dir.to_path_buf(),
                available,
            }
            .into()),
        },
    }
}

/// How a path is shown in diagnostics: relative to the current directory when that is
/// short (`stacks/x.yaml`, `../stacks/x.yaml`), else as given.
fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| relative_to(path, &cwd))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `path` relative to the directory `base`, when both are absolute and it takes at most
/// two `..` to get there.
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || !base.is_absolute() {
        return None;
    }
    let path_parts: Vec<_> = path.components().collect();
    let base_parts: Vec<_> = base.components().collect();
    let common = path_parts
        .iter()
        .zip(&base_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let ups = base_parts.len() - common;
    if ups > 2 {
        return None;
    }
    let mut relative = PathBuf::new();
    (0..ups).for_each(|_| relative.push(".."));
    path_parts[common..]
        .iter()
        .for_each(|part| relative.push(part));
    Some(relative)
}

fn read_source(path: &Path) -> Result<Source, StackError> {
    let bytes = std::fs::read(path).map_err(|error| StackError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let display = display_path(path);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(display, text)),
        Err(err) => Err(not_utf8(
            display,
            err.as_bytes(),
            err.utf8_error().valid_up_to(),
        )),
    }
}

/// Where in `bytes` the first byte that is not UTF-8 (at `offset`) is, as line and column
/// (in characters) of the valid text before it.
fn not_utf8(file: String, bytes: &[u8], offset: usize) -> StackError {
    let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    StackError::NotUtf8 {
        file,
        offset,
        byte: bytes[offset],
        line: valid.matches('\n').count() + 1,
        column: valid[line_start..].chars().count() + 1,
    }
}

/// Parse and validate one stack file; errors name file:line:column.
pub fn load(path: &Path) -> anyhow::Result<StackFile> {
    let source = read_source(path)?;
    let (stack, diagnostics) = analyse(path, source.clone());
    match stack {
        Some(stack) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(stack),
        _ => Err(invalid(&source, diagnostics).into()),
    }
}

/// What checking one stack file found (`cargo xtask validate` prints it).
pub struct FileCheck {
    /// The file as read; `None` when it could not be read (`diagnostics` is then empty).
    pub source: Option<Source>,
    pub read_error: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// `envs: dev, prod; 2 buckets, …` when the stack is valid.
    pub valid: Option<String>,
}

/// Every stack of `stacks_dir`, every environment, checked offline (`cargo xtask validate`).
pub fn check_all(stacks_dir: &Path) -> Result<Vec<FileCheck>, StackError> {
    let files = stack_files(stacks_dir)?;
    if files.is_empty() {
        return Err(StackError::NoStacks(stacks_dir.to_path_buf()));
    }
    Ok(check_files(&files))
}

/// These stack files, every environment, checked offline; stack names must be unique
/// among them.
pub fn check_files(files: &[PathBuf]) -> Vec<FileCheck> {
    let mut checks = Vec::new();
    let mut stack_names: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let source = match read_source(path) {
            Ok(source) => source,
            Err(err) => {
                checks.push(FileCheck {
                    source: None,
                    read_error: Some(err.to_string()),
                    diagnostics: Vec::new(),
                    valid: None,
                });
                continue;
            }
        };
        let (stack, mut diagnostics) = analyse(path, source.clone());
        if let Some(stack) = &stack {
            if let Some(other) = stack_names.insert(stack.stack.clone(), source.display.clone()) {
                diagnostics.push(
                    Diagnostic::error(
                        format!("stack `{}` is also defined in {other}", stack.stack),
                        None,
                    )
                    .with_note(
                        "stack names prefix IAM names and the deploy state: they must be unique",
                    ),
                );
            }
        }
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let valid = match stack {
            Some(stack) if errors == 0 => Some(format!(
                "envs: {}; {}",
                stack.env_names().join(", "),
                stack.counts()
            )),
            _ => None,
        };
        checks.push(FileCheck {
            source: Some(source),
            read_error: None,
            diagnostics,
            valid,
        });
    }
    checks
}

/// The whole check of one stack file: the stack when every environment resolved, and
/// every diagnostic (errors and warnings), deduplicated across environments.
fn analyse(path: &Path, source: Source) -> (Option<StackFile>, Vec<Diagnostic>) {
    let mut diags = Diags::default();
    let parsed = parse(&source, &mut diags);
    let Some((index, value, base)) = parsed else {
        return (None, diags.finish(&[]));
    };
    let stem = stem(path);
    let base_loc = Locator::new(&source, &index, None);
    if !stem.is_empty() && base.stack != stem {
        diags.add(
            None,
            Diagnostic::warning(
                format!("stack `{}` is defined in `{stem}.yaml`", base.stack),
                base_loc.value(&NodePath::keys(&["stack"])),
            )
            .with_note(format!(
                "`--stack {stem}` selects this file; name one after the other to avoid confusion"
            )),
        );
    }
    if base.environments.is_empty() {
        diags.add(
            None,
            Diagnostic::error(
                "no environments declared",
                base_loc.key(&NodePath::keys(&["environments"])),
            )
            .with_help("declare at least one under `environments:`, e.g. `dev: {}`"),
        );
        return (None, diags.finish(&[]));
    }

    let mut base_value = value.clone();
    if let Value::Mapping(map) = &mut base_value {
        map.remove("environments");
    }
    let mut envs = BTreeMap::new();
    let mut resolutions = BTreeMap::new();
    for (env, overlay) in &base.environments {
        let env_path = NodePath::keys(&["environments", env]);
        if let Some(problem) = validate::logical_name_problem(env) {
            diags.add(
                None,
                Diagnostic::error(
                    format!("invalid environment name `{env}`: {problem}"),
                    base_loc.key(&env_path),
                ),
            );
        }
        let loc = Locator::new(&source, &index, Some(env));
        let Some(model) = env_model(
            env,
            overlay.as_ref(),
            &base,
            &base_value,
            &value,
            loc,
            &mut diags,
        ) else {
            continue;
        };
        let endpoint = model.settings.endpoint.as_deref();
        let (resolution, found) = resolve::resolve(
            &model.doc,
            env,
            &model.doc.region,
            endpoint,
            PLACEHOLDER_ACCOUNT,
            loc,
        );
        diags.extend(Some(env), found);
        if let Some(resolution) = resolution {
            diags.extend(
                Some(env),
                validate::check_env(&model.doc, &resolution, endpoint, loc),
            );
            resolutions.insert(env.clone(), resolution);
        }
        envs.insert(env.clone(), model);
    }
    let env_names: Vec<String> = base.environments.keys().cloned().collect();
    for diagnostic in clashes_across_envs(&resolutions, &source, &index) {
        diags.add(None, diagnostic);
    }
    let diagnostics = diags.finish(&env_names);
    if envs.len() != base.environments.len() || resolutions.len() != envs.len() {
        return (None, diagnostics);
    }
    let warnings = diagnostics
        .iter()
        .filter(|d| !d.is_error())
        .cloned()
        .collect();
    let stack = StackFile {
        path: path.to_path_buf(),
        stack: base.stack.clone(),
        source,
        index,
        envs,
        warnings,
    };
    (Some(stack), diagnostics)
}

/// Syntax, duplicate keys, and the base document typed. `None` after any error (later
/// stages would only repeat it).
fn parse(source: &Source, diags: &mut Diags) -> Option<(Index, Value, Document)> {
    let value: Result<Value, _> = serde_norway::from_str(&source.text);
    let index = match Index::build(source) {
        Ok(index) => index,
        Err(syntax) => {
            // libyaml's (serde_norway's) wording is the reference; yaml-rust2's is the fallback,
            // also where libyaml names no place (text after the root mapping ends, which it
            // calls "more than one document").
            let from_yaml_rust = || {
                let diagnostic = Diagnostic::error(
                    format!("invalid YAML: {}", syntax.message),
                    Some(syntax.span),
                );
                if syntax.message.contains("document start") {
                    diagnostic.with_help(
                        "the top-level mapping ended before this line: indent its keys alike",
                    )
                } else {
                    diagnostic
                }
            };
            let diagnostic = match &value {
                Err(err) => Some(norway_diagnostic(err))
                    .filter(|d| d.span.is_some())
                    .unwrap_or_else(from_yaml_rust),
                Ok(_) => from_yaml_rust(),
            };
            diags.add(None, diagnostic);
            return None;
        }
    };
    if let Some(start) = index.second_document {
        diags.add(
            None,
            Diagnostic::error("a second YAML document starts here", Some(start))
                .with_note("a stack file is one YAML document")
                .with_help(
                    "remove this `---` line, or move what follows into a stack file of its own",
                ),
        );
        return None;
    }
    if !index.duplicates.is_empty() {
        for dup in &index.duplicates {
            let key = match dup.path.segs().last() {
                Some(Seg::Key(key)) => key.clone(),
                _ => dup.path.to_string(),
            };
            diags.add(
                None,
                Diagnostic::error(format!("duplicate key `{key}`"), Some(dup.second)).with_note(
                    format!(
                        "first defined at line {}, column {}",
                        dup.first.line, dup.first.col
                    ),
                ),
            );
        }
        return None;
    }
    let mut value = match value {
        Ok(value) => value,
        Err(err) => {
            diags.add(None, norway_diagnostic(&err));
            return None;
        }
    };
    if value.is_null() {
        diags.add(
            None,
            Diagnostic::error("the stack file is empty", None)
                .with_help("start with `stack:`, `region:` and `environments:` (see the README's stack reference)"),
        );
        return None;
    }
    // YAML merge keys (`<<: *defaults`) are resolved before anything reads the document.
    if let Err(err) = value.apply_merge() {
        diags.add(None, norway_diagnostic(&err));
        return None;
    }
    let loc = Locator::new(source, &index, None);
    let (value, base) = typed(value, loc, None, diags)?;
    Some((index, value, base))
}

/// Longest run of unknown fields reported from one document before giving up.
const MAX_UNKNOWN_FIELDS: usize = 50;

/// `value` as a [`Document`]. Serde stops at the first error; an unknown field is reported,
/// removed and the document typed again, so one run reports every typo and the rest of the
/// checks still run on the cleaned document. Returns `None` on any other error.
fn typed(
    mut value: Value,
    loc: Locator<'_>,
    env: Option<&str>,
    diags: &mut Diags,
) -> Option<(Value, Document)> {
    for _ in 0..MAX_UNKNOWN_FIELDS {
        match serde_path_to_error::deserialize::<_, Document>(value.clone()) {
            Ok(doc) => return Some((value, doc)),
            Err(err) => {
                let (diagnostic, path) = typed_diagnostic(&err, loc);
                diags.add(env, diagnostic);
                match path {
                    Some(path) if remove_path(&mut value, &path) => {}
                    _ => return None,
                }
            }
        }
    }
    None
}

/// Removes the mapping entry at `path`; `false` when there is none.
fn remove_path(value: &mut Value, path: &NodePath) -> bool {
    let Some((last, parents)) = path.segs().split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parents {
        let next = match seg {
            Seg::Key(key) => node.get_mut(key.as_str()),
            Seg::Index(index) => node.get_mut(*index),
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    match (node, last) {
        (Value::Mapping(map), Seg::Key(key)) => map.remove(key.as_str()).is_some(),
        _ => false,
    }
}

/// Settings and merged document of one environment; `None` after an error.
fn env_model(
    env: &str,
    overlay: Option<&Overlay>,
    base: &Document,
    base_value: &Value,
    value: &Value,
    loc: Locator<'_>,
    diags: &mut Diags,
) -> Option<EnvModel> {
    let env_path = NodePath::keys(&["environments", env]);
    let endpoint = overlay.and_then(|o| o.endpoint.clone());
    if let Some(endpoint) = &endpoint {
        let span = loc.value(&env_path.key("endpoint"));
        if let Some(problem) = validate::endpoint_problem(endpoint) {
            diags.add(
                Some(env),
                Diagnostic::error(format!("invalid endpoint: {problem}"), span),
            );
        } else if endpoint.contains("://localhost") {
            diags.add(
                Some(env),
                Diagnostic::warning(format!("endpoint `{endpoint}` uses `localhost`"), span)
                    .with_note("the AWS SDK then addresses buckets as `bucket.localhost` (virtual-hosted style), which does not resolve")
                    .with_help("use `127.0.0.1`: with an IP address S3 requests use path-style URLs"),
            );
        }
    }
    let mut patch = value
        .get("environments")
        .and_then(|envs| envs.get(env))
        .cloned()
        .unwrap_or(Value::Null);
    if let Value::Mapping(map) = &mut patch {
        map.remove("endpoint");
    }
    let merged = if patch.is_null() {
        base_value.clone()
    } else {
        merge::merge(base_value, &patch)
    };
    let (_, doc) = typed(merged, loc, Some(env), diags)?;
    let region = overlay
        .and_then(|o| o.region.clone())
        .unwrap_or_else(|| base.region.clone());
    Some(EnvModel {
        doc,
        settings: EnvSettings { region, endpoint },
    })
}

/// A serde_norway error (syntax, or a structural problem of the YAML) at its position.
fn norway_diagnostic(err: &serde_norway::Error) -> Diagnostic {
    let mut message = err.to_string();
    let span = err.location().map(|l| {
        // The position is shown separately; drop the " at line L column C" it also carries.
        message = message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
        Span::point(l.line(), l.column())
    });
    Diagnostic::error(message, span)
}

/// A typed-deserialization error, placed by its path; unknown names get a suggestion. For
/// an unknown field, also its path (so that it can be removed and typing retried).
fn typed_diagnostic(
    err: &serde_path_to_error::Error<serde_norway::Error>,
    loc: Locator<'_>,
) -> (Diagnostic, Option<NodePath>) {
    let mut segs = Vec::new();
    for segment in err.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => segs.push(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    let path = NodePath::from(segs);
    let message = err.inner().to_string();
    let quoted = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    for (prefix, what, at_key) in [
        ("unknown field `", "field", true),
        ("unknown variant `", "value", false),
    ] {
        if message.starts_with(prefix) {
            let (head, expected) = message.split_once("expected").unwrap_or((&message, ""));
            let name = quoted(head).into_iter().next().unwrap_or_default();
            let candidates = quoted(expected);
            let span = if at_key {
                loc.key(&path)
            } else {
                loc.value(&path)
            };
            let mut diagnostic = Diagnostic::error(format!("unknown {what} `{name}`"), span);
            if let Some(best) = did_you_mean(&name, candidates.iter().map(String::as_str)) {
                diagnostic = diagnostic.with_label(format!("did you mean `{best}`?"));
            }
            let valid: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            let diagnostic = diagnostic.with_note(if valid.is_empty() {
                "nothing is allowed here".to_owned()
            } else {
                format!("expected one of {}", valid.join(", "))
            });
            return (diagnostic, at_key.then_some(path));
        }
    }
    if message.starts_with("missing field") {
        let place = if path.segs().is_empty() {
            String::new()
        } else {
            format!(" in `{path}`")
        };
        return (
            Diagnostic::error(format!("{message}{place}"), loc.key(&path)),
            None,
        );
    }
    let place = if path.segs().is_empty() {
        "(document)".to_owned()
    } else {
        path.to_string()
    };
    (
        Diagnostic::error(format!("{place}: {message}"), loc.value(&path)),
        None,
    )
}

/// Physical names must differ across environments too: IAM is global to an account, and
/// `dev` and `prod` may share one (`a` + env `dev-x` and `x-a` + env `dev` both give `…-dev-x-a`).
fn clashes_across_envs(
    resolutions: &BTreeMap<String, Resolution>,
    source: &Source,
    index: &Index,
) -> Vec<Diagnostic> {
    // (what, physical name as AWS compares it) → (env, path of its definition)
    let mut seen: BTreeMap<(&str, String), (String, NodePath)> = BTreeMap::new();
    let mut out = Vec::new();
    for (env, resolution) in resolutions {
        let r = &resolution.resolved;
        let mut names: Vec<(&str, String, NodePath)> = Vec::new();
        for b in r.buckets.values() {
            names.push((
                "S3 bucket",
                b.name.clone(),
                NodePath::keys(&["buckets", &b.logical, "name"]),
            ));
        }
        for u in r.users.values() {
            names.push((
                "IAM user",
                u.name.to_lowercase(),
                NodePath::keys(&["users", &u.logical]),
            ));
            if u.access_key {
                names.push((
                    "SSM parameter",
                    u.secret_parameter.clone(),
                    NodePath::keys(&["users", &u.logical]),
                ));
            }
        }
        for f in r.functions.values() {
            names.push((
                "Lambda function",
                f.name.clone(),
                NodePath::keys(&["functions", &f.logical]),
            ));
            names.push((
                "IAM role",
                f.role_name.to_lowercase(),
                NodePath::keys(&["functions", &f.logical]),
            ));
        }
        for (key, name) in &resolution.parameter_names {
            names.push((
                "SSM parameter",
                name.clone(),
                NodePath::keys(&["parameters", key]),
            ));
        }
        for (what, name, path) in names {
            match seen.get(&(what, name.clone())) {
                Some((first_env, _)) if first_env != env => {
                    let loc = Locator::new(source, index, Some(env));
                    let span = if path.segs().last() == Some(&Seg::Key("name".to_owned())) {
                        loc.value(&path)
                    } else {
                        loc.key(&path)
                    };
                    out.push(
                        Diagnostic::error(
                            format!("{what} name `{name}` is used by environments `{first_env}` and `{env}`"),
                            span,
                        )
                        .with_note("if both deploy to the same AWS account, one would take over the other's resource")
                        .with_help("include `${env}` in the name, or rename the environment or resource"),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert((what, name), (env.clone(), path));
                }
            }
        }
    }
    out
}

/// Diagnostics of one file, deduplicated: an error in the base document shows up in every
/// environment's merged document and is reported once.
#[derive(Default)]
struct Diags {
    /// In first-seen order, with the environments each appeared in (`None` = not env-specific).
    entries: Vec<(Diagnostic, Option<BTreeSet<String>>)>,
}

impl Diags {
    fn add(&mut self, env: Option<&str>, diagnostic: Diagnostic) {
        // Notes may name an environment's values; the problem is the same one.
        let same = |d: &Diagnostic| {
            (d.severity, &d.message, d.span, &d.label, &d.help)
                == (
                    diagnostic.severity,
                    &diagnostic.message,
                    diagnostic.span,
                    &diagnostic.label,
                    &diagnostic.help,
                )
        };
        if let Some((_, envs)) = self.entries.iter_mut().find(|(d, _)| same(d)) {
            match (envs, env) {
                (Some(envs), Some(env)) => {
                    envs.insert(env.to_owned());
                }
                (envs, None) => *envs = None,
                (None, Some(_)) => {}
            }
            return;
        }
        let envs = env.map(|e| BTreeSet::from([e.to_owned()]));
        self.entries.push((diagnostic, envs));
    }

    fn extend(&mut self, env: Option<&str>, diagnostics: Vec<Diagnostic>) {
        for diagnostic in diagnostics {
            self.add(env, diagnostic);
        }
    }

    /// The diagnostics; those that hold in only some environments say which.
    fn finish(self, all_envs: &[String]) -> Vec<Diagnostic> {
        self.entries
            .into_iter()
            .map(|(diagnostic, envs)| match envs {
                Some(envs) if envs.len() < all_envs.len() => {
                    let list: Vec<String> = envs.iter().map(|e| format!("`{e}`")).collect();
                    let word = if list.len() == 1 {
                        "environment"
                    } else {
                        "environments"
                    };
                    diagnostic.with_note(format!("in {word} {}", list.join(", ")))
                }
                _ => diagnostic,
            })
            .collect()
    }
}

/// The repository's pipeline (`stacks/exif-pipeline.yaml`) resolved in each of its envs,
/// for the placeholder account: for tests of a property the real stack must have.
#[cfg(test)]
pub(crate) fn pipeline_in_every_env() -> Vec<ResolvedStack> {
    let path = crate::workspace::stacks_dir().join("exif-pipeline.yaml");
    let file = load(&path).unwrap_or_else(|e| panic!("{e:#}"));
    file.env_names()
        .iter()
        .map(|env| {
            file.resolve(env, PLACEHOLDER_ACCOUNT)
                .unwrap_or_else(|e| panic!("{env}: {e:#}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
