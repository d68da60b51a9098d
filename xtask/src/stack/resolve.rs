//! One environment's merged document → a [`ResolvedStack`]: physical names and ARNs,
//! `${…}` expansion, and the dependency graph the references imply (cycles rejected).
//!
//! References (`${…}`) valid in any interpolated string:
//! - `${stack}`, `${env}`, `${region}`, `${account}`, `${partition}` (`aws`, `aws-cn`, `aws-us-gov`);
//! - `${buckets.NAME.name}`, `${buckets.NAME.arn}`;
//! - `${users.NAME.name}`, `${users.NAME.arn}`;
//! - `${functions.NAME.name}`, `${functions.NAME.arn}`;
//! - `${queues.NAME.name}`, `${queues.NAME.arn}`, `${queues.NAME.url}`.
//!
//! Interpolated: bucket `name`, lifecycle `prefix`, tag values, parameter names, values and
//! descriptions, `allow` actions and resources, function `environment` values, trigger
//! `prefix` and `suffixes`. Everything else (logical names, `package`, `storage_class`,
//! `events`, lifecycle `id`, trigger `bucket`, map keys other than parameter names) is literal.
//!
//! A reference to another resource is a dependency. A resource may refer to itself (a user
//! granted `iam:ChangePassword` on `${users.me.arn}`: names are known before anything
//! exists), except a bucket's `name`, which cannot be defined by itself.

use std::collections::BTreeMap;

use super::diagnostic::{did_you_mean, Diagnostic, Span};
use super::graph::{DependencyGraph, Node, NodeKind};
use super::interpolate::{self, Piece};
use super::model::{BucketSpec, Document, EventSpec, StatementSpec};
use super::resolved::{
    AsyncInvoke, Bucket, Function, LifecycleRule, Parameter, Queue, Rendition, ResolvedStack,
    Statement, Trigger, TriggerEvent, User,
};
use super::source::{Locator, NodePath};

/// The tag every managed resource carries, with `stack` and `env`.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "stripstack");

/// The variable that tells a function with `on_failure` its queue's URL.
pub const FAILURE_QUEUE_VARIABLE: &str = "FAILURE_QUEUE_URL";
/// The variable that tells a function with `renditions` what to make (JSON).
pub const RENDITIONS_VARIABLE: &str = "RENDITIONS";
/// What a function with `on_failure` may do to its queue.
const FAILURE_QUEUE_ACTION: &str = "sqs:SendMessage";

/// The AWS partition a region belongs to (ARNs start `arn:<partition>:`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Physical names: IAM is global to an account and Lambda names to a region, so both carry
/// stack and env; the SSM home of a user's secret key is fixed by the same parts.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub stack: &'a str,
    pub env: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl Names<'_> {
    pub fn partition(&self) -> &'static str {
        partition(self.region)
    }
    pub fn prefixed(&self, logical: &str) -> String {
        format!("{}-{}-{logical}", self.stack, self.env)
    }
    pub fn bucket_arn(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition())
    }
    pub fn iam_arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:{kind}/{name}",
            self.partition(),
            self.account
        )
    }
    pub fn role_name(&self, function: &str) -> String {
        format!("{}-role", self.prefixed(function))
    }
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            self.partition(),
            self.region,
            self.account
        )
    }
    pub fn queue_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:sqs:{}:{}:{name}",
            self.partition(),
            self.region,
            self.account
        )
    }
    /// A queue's URL: SQS's regional endpoint, or the environment's (the emulator serves
    /// queues under `<endpoint>/<account>/<name>` too).
    pub fn queue_url(&self, endpoint: Option<&str>, name: &str) -> String {
        let base = match endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => {
                let suffix = if self.partition() == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://sqs.{}.{suffix}", self.region)
            }
        };
        format!("{base}/{}/{name}", self.account)
    }
    pub fn secret_parameter(&self, user: &str) -> String {
        format!(
            "/{}/{}/users/{user}/secret-access-key",
            self.stack, self.env
        )
    }
}

/// What resolving one environment produced.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub resolved: ResolvedStack,
    pub graph: DependencyGraph,
    /// The SSM name of each parameter, by its key as written in the stack file.
    pub parameter_names: BTreeMap<String, String>,
}

/// Where a string sits: a mapping key (parameter names) or a value.
#[derive(Clone)]
struct Site {
    path: NodePath,
    key: bool,
}

impl Site {
    fn value(path: NodePath) -> Self {
        Site { path, key: false }
    }
}

enum BucketName {
    InProgress,
    Done(String),
}

struct Edge {
    site: Site,
    written: String,
}

struct Resolver<'a> {
    doc: &'a Document,
    names: Names<'a>,
    /// The environment's endpoint (the emulator's), which queue URLs are under.
    endpoint: Option<&'a str>,
    loc: Locator<'a>,
    bucket_names: BTreeMap<String, BucketName>,
    edges: BTreeMap<(Node, Node), Edge>,
    diagnostics: Vec<Diagnostic>,
}

/// Resolves `doc` (one environment's merged document) for `account`. Returns the
/// resolution when there were no errors, and every diagnostic found on the way.
pub fn resolve(
    doc: &Document,
    env: &str,
    region: &str,
    endpoint: Option<&str>,
    account: &str,
    loc: Locator<'_>,
) -> (Option<Resolution>, Vec<Diagnostic>) {
    let mut resolver = Resolver {
        doc,
        names: Names {
            stack: &doc.stack,
            env,
            region,
            account,
        },
        endpoint,
        loc,
        bucket_names: BTreeMap::new(),
        edges: BTreeMap::new(),
        diagnostics: Vec::new(),
    };
    let (resolved, parameter_names) = resolver.build();
    let graph = resolver.graph(&parameter_names);
    if let Some(cycle) = graph.find_cycle() {
        let diagnostic = resolver.cycle_diagnostic(&cycle);
        resolver.diagnostics.push(diagnostic);
    }
    let diagnostics = resolver.diagnostics;
    if diagnostics.iter().any(Diagnostic::is_error) {
        return (None, diagnostics);
    }
    (
        Some(Resolution {
            resolved,
            graph,
            parameter_names,
        }),
        diagnostics,
    )
}

impl Resolver<'_> {
    fn span(&self, site: &Site, written: &str) -> Option<Span> {
        if site.key {
            let key = self.loc.key(&site.path)?;
            Some(self.loc.part_of(key, written).unwrap_or(key))
        } else {
            self.loc.value_part(&site.path, written)
        }
    }

    /// Expands the `${…}` references of `template`, recording dependencies of `owner`.
    fn expand(&mut self, owner: Option<&Node>, site: &Site, template: &str) -> String {
        let pieces = match interpolate::parse(template) {
            Ok(pieces) => pieces,
            Err(err) => {
                let span = self.span(site, &err.written);
                self.diagnostics.push(Diagnostic::error(err.message, span));
                return template.to_owned();
            }
        };
        let mut out = String::with_capacity(template.len());
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Ref { name, written } => match self.lookup(name) {
                    Some((value, target)) => {
                        out.push_str(&value);
                        if let (Some(owner), Some(target)) = (owner, target) {
                            self.record_edge(owner, target, site, written);
                        }
                    }
                    None => {
                        let diagnostic = self.unknown_reference(name, written, site);
                        self.diagnostics.push(diagnostic);
                        out.push_str(written);
                    }
                },
            }
        }
        out
    }

    fn record_edge(&mut self, owner: &Node, target: Node, site: &Site, written: &str) {
        // Names and ARNs are known before anything exists, so referring to oneself is no
        // dependency, except for a bucket name defined by itself (see `bucket_name`).
        let naming_itself = owner.kind == NodeKind::Bucket
            && site.path == NodePath::keys(&["buckets", &owner.name, "name"]);
        if *owner == target && !naming_itself {
            return;
        }
        self.edges
            .entry((owner.clone(), target))
            .or_insert_with(|| Edge {
                site: site.clone(),
                written: written.to_owned(),
            });
    }

    /// The value of reference `name` and the resource it belongs to, if it exists.
    fn lookup(&mut self, name: &str) -> Option<(String, Option<Node>)> {
        let fixed = match name {
            "stack" => Some(self.names.stack.to_owned()),
            "env" => Some(self.names.env.to_owned()),
            "region" => Some(self.names.region.to_owned()),
            "account" => Some(self.names.account.to_owned()),
            "partition" => Some(self.names.partition().to_owned()),
            _ => None,
        };
        if let Some(value) = fixed {
            return Some((value, None));
        }
        let (kind, rest) = name.split_once('.')?;
        let (logical, attribute) = rest.rsplit_once('.')?;
        if kind == "queues" {
            self.doc.queues.get(logical)?;
            let queue = self.names.prefixed(logical);
            let value = match attribute {
                "name" => queue,
                "arn" => self.names.queue_arn(&queue),
                "url" => self.names.queue_url(self.endpoint, &queue),
                _ => return None,
            };
            return Some((value, Some(Node::new(NodeKind::Queue, logical))));
        }
        let arn = match attribute {
            "name" => false,
            "arn" => true,
            _ => return None,
        };
        match kind {
            "buckets" if self.doc.buckets.contains_key(logical) => {
                let bucket = self.bucket_name(logical);
                let value = if arn {
                    self.names.bucket_arn(&bucket)
                } else {
                    bucket
                };
                Some((value, Some(Node::new(NodeKind::Bucket, logical))))
            }
            "users" if self.doc.users.contains_key(logical) => {
                let user = self.names.prefixed(logical);
                let value = if arn {
                    self.names.iam_arn("user", &user)
                } else {
                    user
                };
                Some((value, Some(Node::new(NodeKind::User, logical))))
            }
            "functions" if self.doc.functions.contains_key(logical) => {
                let function = self.names.prefixed(logical);
                let value = if arn {
                    self.names.function_arn(&function)
                } else {
                    function
                };
                Some((value, Some(Node::new(NodeKind::Function, logical))))
            }
            _ => None,
        }
    }

    fn valid_references(&self) -> Vec<String> {
        let mut refs: Vec<String> = ["stack", "env", "region", "account", "partition"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let kinds: [(&str, Vec<&String>); 3] = [
            ("buckets", self.doc.buckets.keys().collect()),
            ("users", self.doc.users.keys().collect()),
            ("functions", self.doc.functions.keys().collect()),
        ];
        for (kind, logicals) in kinds {
            for logical in logicals {
                refs.push(format!("{kind}.{logical}.name"));
                refs.push(format!("{kind}.{logical}.arn"));
            }
        }
        for logical in self.doc.queues.keys() {
            for attribute in ["name", "arn", "url"] {
                refs.push(format!("queues.{logical}.{attribute}"));
            }
        }
        refs
    }

    fn unknown_reference(&self, name: &str, written: &str, site: &Site) -> Diagnostic {
        let span = self.span(site, written);
        let mut diagnostic = Diagnostic::error(format!("unknown reference `{written}`"), span);
        if name.starts_with("aws:") || name.starts_with("s3:") {
            return diagnostic.with_help(format!(
                "IAM policy variables are written `$${{{name}}}`: `$${{` keeps a literal `${{`"
            ));
        }
        let valid = self.valid_references();
        if let Some(best) = did_you_mean(name, valid.iter().map(String::as_str)) {
            diagnostic = diagnostic.with_label(format!("did you mean `${{{best}}}`?"));
        }
        diagnostic.with_note(
            "references: ${stack}, ${env}, ${region}, ${account}, ${partition}, \
             ${buckets.NAME.name|arn}, ${users.NAME.name|arn}, ${functions.NAME.name|arn}, \
             ${queues.NAME.name|arn|url}",
        )
    }

    /// The physical name of bucket `logical`, expanding its template once. A bucket whose
    /// name depends (through others) on itself gets a placeholder; the cycle is reported
    /// from the graph.
    fn bucket_name(&mut self, logical: &str) -> String {
        match self.bucket_names.get(logical) {
            Some(BucketName::Done(name)) => return name.clone(),
            Some(BucketName::InProgress) => return String::new(),
            None => {}
        }
        let Some(spec) = self.doc.buckets.get(logical) else {
            return String::new();
        };
        self.bucket_names
            .insert(logical.to_owned(), BucketName::InProgress);
        let template = spec
            .name
            .clone()
            .unwrap_or_else(|| BucketSpec::default_name(logical));
        let site = Site::value(NodePath::keys(&["buckets", logical, "name"]));
        let owner = Node::new(NodeKind::Bucket, logical);
        let name = self.expand(Some(&owner), &site, &template);
        self.bucket_names
            .insert(logical.to_owned(), BucketName::Done(name.clone()));
        name
    }

    fn statements(
        &mut self,
        owner: &Node,
        base: &NodePath,
        specs: &[StatementSpec],
    ) -> Vec<Statement> {
        specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let path = base.index(i);
                let actions = spec
                    .actions
                    .iter()
                    .enumerate()
                    .map(|(j, a)| {
                        self.expand(Some(owner), &Site::value(path.key("actions").index(j)), a)
                    })
                    .collect();
                let resources = spec
                    .resources
                    .iter()
                    .enumerate()
                    .map(|(j, r)| {
                        self.expand(Some(owner), &Site::value(path.key("resources").index(j)), r)
                    })
                    .collect();
                Statement { actions, resources }
            })
            .collect()
    }

    fn build(&mut self) -> (ResolvedStack, BTreeMap<String, String>) {
        let doc = self.doc;
        let names = self.names;
        let endpoint = self.endpoint;

        let mut tags = BTreeMap::new();
        for (key, value) in &doc.tags {
            let site = Site::value(NodePath::keys(&["tags", key]));
            tags.insert(key.clone(), self.expand(None, &site, value));
        }
        tags.insert("stack".to_owned(), names.stack.to_owned());
        tags.insert("env".to_owned(), names.env.to_owned());
        // IAM names are global to the account: an IAM resource is taken over only when
        // tagged for this region too (`resources::tags::check_ours`).
        tags.insert("region".to_owned(), names.region.to_owned());
        tags.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());

        let mut buckets = BTreeMap::new();
        for (logical, spec) in &doc.buckets {
            let name = self.bucket_name(logical);
            let owner = Node::new(NodeKind::Bucket, logical);
            let lifecycle = spec
                .lifecycle
                .iter()
                .enumerate()
                .map(|(i, rule)| {
                    let site = Site::value(
                        NodePath::keys(&["buckets", logical, "lifecycle"])
                            .index(i)
                            .key("prefix"),
                    );
                    LifecycleRule {
                        id: rule.id.clone(),
                        prefix: self.expand(Some(&owner), &site, &rule.prefix),
                        transition_days: rule.transition_days,
                        storage_class: rule.storage_class.clone(),
                        expiration_days: rule.expiration_days,
                        noncurrent_expiration_days: rule.noncurrent_expiration_days,
                        abort_incomplete_multipart_days: rule.abort_incomplete_multipart_days,
                    }
                })
                .collect();
            buckets.insert(
                logical.clone(),
                Bucket {
                    logical: logical.clone(),
                    arn: names.bucket_arn(&name),
                    name,
                    versioning: spec.versioning,
                    force_destroy: spec.force_destroy,
                    retain: spec.retain,
                    tls_only: spec.tls_only,
                    lifecycle,
                },
            );
        }

        let mut parameters: BTreeMap<String, Parameter> = BTreeMap::new();
        let mut parameter_names = BTreeMap::new();
        let mut written_as: BTreeMap<String, String> = BTreeMap::new();
        for (key, spec) in &doc.parameters {
            let owner = Node::new(NodeKind::Parameter, key);
            let path = NodePath::keys(&["parameters", key]);
            let key_site = Site {
                path: path.clone(),
                key: true,
            };
            let name = self.expand(Some(&owner), &key_site, key);
            let value_path = if spec.long_form {
                path.key("value")
            } else {
                path.clone()
            };
            let value = self.expand(Some(&owner), &Site::value(value_path), &spec.value);
            let description = spec
                .description
                .as_ref()
                .map(|d| self.expand(Some(&owner), &Site::value(path.key("description")), d));
            if let Some(first) = written_as.get(&name) {
                let span = self.loc.key(&path);
                self.diagnostics.push(
                    Diagnostic::error(format!("duplicate SSM parameter name `{name}`"), span)
                        .with_label(format!("`{first}` has the same name"))
                        .with_note("SSM parameter names are unique per account and region"),
                );
                continue;
            }
            written_as.insert(name.clone(), key.clone());
            parameter_names.insert(key.clone(), name.clone());
            parameters.insert(
                name.clone(),
                Parameter {
                    name,
                    value,
                    secure: spec.secure,
                    description,
                },
            );
        }

        let mut users = BTreeMap::new();
        for (logical, spec) in &doc.users {
            let owner = Node::new(NodeKind::User, logical);
            let name = names.prefixed(logical);
            let allow = self.statements(
                &owner,
                &NodePath::keys(&["users", logical, "allow"]),
                &spec.allow,
            );
            users.insert(
                logical.clone(),
                User {
                    logical: logical.clone(),
                    arn: names.iam_arn("user", &name),
                    policy_arn: names.iam_arn("policy", &name),
                    policy_name: name.clone(),
                    name,
                    access_key: spec.access_key,
                    secret_parameter: names.secret_parameter(logical),
                    allow,
                },
            );
        }

        let queues: BTreeMap<String, Queue> = doc
            .queues
            .iter()
            .map(|(logical, spec)| {
                let name = names.prefixed(logical);
                let queue = Queue {
                    logical: logical.clone(),
                    arn: names.queue_arn(&name),
                    url: names.queue_url(endpoint, &name),
                    name,
                    retention_days: spec.retention_days,
                    force_destroy: spec.force_destroy,
                };
                (logical.clone(), queue)
            })
            .collect();

        let mut functions = BTreeMap::new();
        for (logical, spec) in &doc.functions {
            let owner = Node::new(NodeKind::Function, logical);
            let base = NodePath::keys(&["functions", logical]);
            let name = names.prefixed(logical);
            let role_name = names.role_name(logical);
            let mut environment = BTreeMap::new();
            for (key, value) in &spec.environment {
                let site = Site::value(base.key("environment").key(key.clone()));
                environment.insert(key.clone(), self.expand(Some(&owner), &site, value));
            }
            let mut allow = self.statements(&owner, &base.key("allow"), &spec.allow);
            if let Some(queue) = spec.on_failure.as_ref().and_then(|q| queues.get(q)) {
                // What `on_failure` implies, as the CDK's `SqsDestination` grants it: Lambda
                // checks the role may send there, and the function sends its refusal records.
                allow.push(Statement {
                    actions: vec![FAILURE_QUEUE_ACTION.to_owned()],
                    resources: vec![queue.arn.clone()],
                });
                environment.insert(FAILURE_QUEUE_VARIABLE.to_owned(), queue.url.clone());
                self.record_edge(
                    &owner,
                    Node::new(NodeKind::Queue, &queue.logical),
                    &Site::value(base.key("on_failure")),
                    &queue.logical,
                );
            }
            let renditions: Vec<Rendition> = spec
                .renditions
                .iter()
                .map(|r| Rendition {
                    name: r.name.clone(),
                    max_edge: r.max_edge,
                    quality: r.quality,
                    prefix: r.prefix.clone(),
                })
                .collect();
            if !renditions.is_empty() {
                // Compact and in declaration order: the function's configuration changes
                // only when the renditions do.
                let json = serde_json::to_string(&renditions).unwrap_or_default();
                environment.insert(RENDITIONS_VARIABLE.to_owned(), json);
            }
            let async_invoke = (spec.on_failure.is_some()
                || spec.retry_attempts.is_some()
                || spec.max_event_age_seconds.is_some())
            .then(|| AsyncInvoke {
                on_failure: spec.on_failure.clone(),
                retry_attempts: spec.retry_attempts,
                max_event_age_seconds: spec.max_event_age_seconds,
            });
            let triggers = spec
                .triggers
                .iter()
                .enumerate()
                .map(|(i, trigger)| {
                    let path = base.key("triggers").index(i);
                    let mut events: Vec<TriggerEvent> = trigger
                        .events
                        .iter()
                        .map(|event| match event {
                            EventSpec::Created => TriggerEvent::Created,
                            EventSpec::Removed => TriggerEvent::Removed,
                        })
                        .collect();
                    events.sort();
                    events.dedup();
                    Trigger {
                        bucket: trigger.bucket.clone(),
                        events,
                        prefix: self.expand(
                            Some(&owner),
                            &Site::value(path.key("prefix")),
                            &trigger.prefix,
                        ),
                        suffixes: trigger
                            .suffixes
                            .iter()
                            .enumerate()
                            .map(|(j, s)| {
                                self.expand(
                                    Some(&owner),
                                    &Site::value(path.key("suffixes").index(j)),
                                    s,
                                )
                            })
                            .collect(),
                    }
                })
                .collect();
            functions.insert(
                logical.clone(),
                Function {
                    logical: logical.clone(),
                    arn: names.function_arn(&name),
                    log_group: format!("/aws/lambda/{name}"),
                    name,
                    package: spec.package.clone(),
                    memory: spec.memory,
                    timeout: spec.timeout,
                    environment,
                    role_arn: names.iam_arn("role", &role_name),
                    role_name,
                    allow,
                    triggers,
                    architecture: if endpoint.is_some() {
                        super::Architecture::host()
                    } else {
                        spec.architecture
                    },
                    reserved_concurrency: spec.reserved_concurrency,
                    log_retention_days: spec.log_retention_days,
                    async_invoke,
                    renditions,
                },
            );
        }

        let resolved = ResolvedStack {
            stack: names.stack.to_owned(),
            env: names.env.to_owned(),
            region: names.region.to_owned(),
            account: names.account.to_owned(),
            endpoint: endpoint.map(str::to_owned),
            tags,
            buckets,
            parameters,
            users,
            functions,
            queues,
        };
        (resolved, parameter_names)
    }

    /// Every resource, with an edge per reference; parameters under their SSM names.
    fn graph(&self, parameter_names: &BTreeMap<String, String>) -> DependencyGraph {
        let rename = |node: &Node| match node.kind {
            NodeKind::Parameter => match parameter_names.get(&node.name) {
                Some(name) => Node::new(NodeKind::Parameter, name.clone()),
                None => node.clone(),
            },
            _ => node.clone(),
        };
        let mut graph = DependencyGraph::default();
        let doc = self.doc;
        doc.buckets
            .keys()
            .for_each(|n| graph.add_node(Node::new(NodeKind::Bucket, n)));
        doc.users
            .keys()
            .for_each(|n| graph.add_node(Node::new(NodeKind::User, n)));
        doc.functions
            .keys()
            .for_each(|n| graph.add_node(Node::new(NodeKind::Function, n)));
        doc.queues
            .keys()
            .for_each(|n| graph.add_node(Node::new(NodeKind::Queue, n)));
        parameter_names
            .values()
            .for_each(|n| graph.add_node(Node::new(NodeKind::Parameter, n.clone())));
        for (from, to) in self.edges.keys() {
            graph.add_edge(rename(from), rename(to));
        }
        graph
    }

    fn cycle_diagnostic(&self, cycle: &[Node]) -> Diagnostic {
        let edge = |pair: &[Node]| self.edges.get(&(pair[0].clone(), pair[1].clone()));
        let first = cycle.windows(2).next().and_then(edge);
        let span = first.and_then(|e| self.span(&e.site, &e.written));
        if cycle.len() == 2 && cycle[0].kind == NodeKind::Bucket {
            return Diagnostic::error(
                format!("the name of bucket `{}` refers to itself", cycle[0].name),
                span,
            );
        }
        let chain: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        let mut diagnostic = Diagnostic::error(format!("dependency cycle: {}", chain.join(" → ")), span)
            .with_help("a resource cannot depend, through its references, on itself; remove one of these references");
        for pair in cycle.windows(2) {
            if let Some(e) = edge(pair) {
                let place = self
                    .span(&e.site, &e.written)
                    .map(|s| format!(" (line {}, column {})", s.line, s.col))
                    .unwrap_or_default();
                diagnostic = diagnostic.with_note(format!(
                    "{} refers to {} with `{}`{place}",
                    pair[0], pair[1], e.written
                ));
            }
        }
        diagnostic
    }
}
