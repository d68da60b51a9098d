//! One module per resource kind. Each kind has the same small shape:
//! `desired` (pure: resolved stack -> desired states), `read` (SDK calls: observe the real
//! resource), and — for `deploy` — `create` / `update` / `delete`. All SDK calls for a kind
//! live in its module; nothing else in the tree talks to that AWS API.
//!
//! States are plain property maps (`Props`) so that the plan engine can diff every kind
//! with one pure function.

pub mod bucket;
pub mod function;
pub mod notification;
pub mod parameter;
pub mod permission;
pub mod policy;
pub mod policy_doc;
pub mod role;
pub mod user;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Resource kinds, in dependency order (a kind may depend only on kinds before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Bucket,
    Parameter,
    Policy,
    User,
    Role,
    Function,
    Permission,
    Notification,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::Parameter => "parameter",
            Kind::Policy => "policy",
            Kind::User => "user",
            Kind::Role => "role",
            Kind::Function => "function",
            Kind::Permission => "permission",
            Kind::Notification => "notification",
        }
    }

    /// The kinds whose resources must be gone before one of this kind is deleted: what
    /// refers to it (the trigger names the bucket and the function, the invoke permission
    /// the function), or what deleting it would race with (a user's delete detaches its
    /// policies, as a policy's delete does). Every other pair is deleted in parallel.
    pub fn deleted_after(self) -> &'static [Kind] {
        match self {
            Kind::Notification | Kind::Parameter | Kind::User => &[],
            Kind::Bucket | Kind::Permission => &[Kind::Notification],
            Kind::Policy => &[Kind::User],
            Kind::Function => &[Kind::Permission, Kind::Notification],
            Kind::Role => &[Kind::Function],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource's stable identity inside a stack: kind + logical name
/// (`bucket.source`, `parameter./exif-pipeline/dev/source-bucket`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Address {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

/// Property values, normalised by the kind that produced them (sorted lists, canonical
/// policy documents) so that equal configurations compare equal.
pub type Props = BTreeMap<String, serde_json::Value>;

/// How the plan treats a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropKind {
    /// Compared and shown as `old -> new`.
    Plain,
    /// A JSON policy document: shown as a unified diff.
    Document,
    /// A secret: only a hash is ever held; shown as `(sensitive)`.
    Sensitive,
    /// Changing it means delete and re-create (`-/+`).
    ForcesReplacement,
}

/// What the stack wants a resource to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub address: Address,
    /// The name AWS knows it by (bucket name, IAM name, parameter name, function name).
    pub physical: String,
    pub props: Props,
    /// Resources that must exist before this one.
    pub depends_on: Vec<Address>,
    /// Kept by `destroy` and when removed from the stack.
    pub retain: bool,
}

/// What really exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub physical: String,
    pub props: Props,
}

/// How a property of `kind` is compared and shown.
pub fn prop_kind(kind: Kind, prop: &str) -> PropKind {
    match (kind, prop) {
        (_, "policy" | "trust_policy" | "document") => PropKind::Document,
        (Kind::Parameter, "value_sha256") => PropKind::Sensitive,
        (Kind::Bucket, "region") => PropKind::ForcesReplacement,
        _ => PropKind::Plain,
    }
}

/// A bundled function package uploaded to S3, content-addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub bucket: String,
    pub key: String,
    /// Base64 SHA-256 of the zip: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
}

/// Bundles by workspace package name.
pub type Artifacts = BTreeMap<String, Artifact>;

/// What a read needs beyond the resource's physical name.
#[derive(Debug, Clone)]
pub struct ReadCtx {
    pub stack: String,
    pub env: String,
    pub account: String,
    pub region: String,
}

/// Every resource the stack declares, in kind order.
pub fn desired_all(stack: &crate::stack::ResolvedStack, artifacts: &Artifacts) -> Vec<Desired> {
    let mut all = Vec::new();
    all.extend(bucket::desired(stack));
    all.extend(parameter::desired(stack));
    all.extend(policy::desired(stack));
    all.extend(user::desired(stack));
    all.extend(role::desired(stack));
    all.extend(function::desired(stack, artifacts));
    all.extend(permission::desired(stack));
    all.extend(notification::desired(stack));
    all
}

/// Observes one resource by kind and physical name. `Ok(None)`: it does not exist.
pub async fn read(
    clients: &crate::aws::Clients,
    ctx: &ReadCtx,
    address: &Address,
    physical: &str,
) -> anyhow::Result<Option<Observed>> {
    match address.kind {
        Kind::Bucket => bucket::read(clients, ctx, physical).await,
        Kind::Parameter => parameter::read(clients, ctx, physical).await,
        Kind::Policy => policy::read(clients, ctx, physical).await,
        Kind::User => user::read(clients, ctx, &address.name, physical).await,
        Kind::Role => role::read(clients, ctx, physical).await,
        Kind::Function => function::read(clients, ctx, physical).await,
        Kind::Permission => permission::read(clients, ctx, physical).await,
        Kind::Notification => notification::read(clients, ctx, physical).await,
    }
}

/// An IAM policy document allowing `statements`.
pub fn statements_document(statements: &[crate::stack::resolved::Statement]) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": statements
            .iter()
            .map(|s| serde_json::json!({
                "Effect": "Allow",
                "Action": s.actions,
                "Resource": s.resources,
            }))
            .collect::<Vec<_>>(),
    })
}

/// IAM tags as a sorted JSON object.
pub fn iam_tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> serde_json::Value {
    serde_json::Value::Object(
        tags.map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect(),
    )
}

/// Whether property `key` must be written: the desired value differs from the observed one
/// (or nothing was observed).
pub fn differs(want: &Desired, have: Option<&Observed>, key: &str) -> bool {
    match have {
        None => want.props.contains_key(key),
        Some(have) => want.props.get(key) != have.props.get(key),
    }
}

/// The string-to-string map held in property `key` (tags, environment).
pub fn string_map(props: &Props, key: &str) -> std::collections::BTreeMap<String, String> {
    props
        .get(key)
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What writes need beyond the desired state: the resolved stack (plaintext of secure
/// parameter values, which the plan holds only as hashes) and the uploaded bundles.
#[derive(Debug, Clone)]
pub struct ApplyCtx {
    pub read: ReadCtx,
    pub stack: crate::stack::ResolvedStack,
    pub artifacts: Artifacts,
}

/// Brings an existing resource (or a missing one, `have == None`) to `want`.
pub async fn converge(
    clients: &crate::aws::Clients,
    ctx: &ApplyCtx,
    want: &Desired,
    have: Option<&Observed>,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let read = &ctx.read;
    match (want.address.kind, have) {
        (Kind::Bucket, None) => bucket::create(clients, read, want).await,
        (Kind::Bucket, Some(_)) => bucket::update(clients, want, have).await,
        (Kind::Parameter, _) => {
            let Some(param) = ctx.stack.parameters.get(&want.physical) else {
                anyhow::bail!("parameter `{}` is not in the stack", want.physical);
            };
            parameter::put(clients, want, have, param).await
        }
        (Kind::Policy, None) => policy::create(clients, read, want).await,
        (Kind::Policy, Some(_)) => policy::update(clients, read, want, have).await,
        (Kind::User, None) => user::create(clients, read, want).await,
        (Kind::User, Some(_)) => user::update(clients, read, want, have).await,
        (Kind::Role, None) => role::create(clients, read, want).await,
        (Kind::Role, Some(_)) => role::update(clients, read, want, have).await,
        (Kind::Function, _) => {
            let package = ctx
                .stack
                .functions
                .get(&want.address.name)
                .map(|f| f.package.as_str())
                .unwrap_or_default();
            let artifact = ctx.artifacts.get(package);
            match (have, artifact) {
                (None, Some(artifact)) => {
                    function::create(clients, read, want, artifact, on_wait).await
                }
                (None, None) => anyhow::bail!(
                    "function `{}` has no bundle: run `cargo xtask bundle` (deploy does it)",
                    want.physical
                ),
                (Some(_), artifact) => function::update(clients, read, want, have, artifact).await,
            }
        }
        (Kind::Permission, None) => permission::create(clients, want).await,
        (Kind::Permission, Some(_)) => permission::update(clients, want).await,
        (Kind::Notification, _) => {
            let entries = want
                .props
                .get("entries")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            notification::put(clients, &want.physical, &entries).await
        }
    }
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// A non-empty bucket without `force_destroy`: kept, with its contents.
    KeptNotEmpty {
        objects: usize,
        versions: usize,
    },
}

pub async fn remove(
    clients: &crate::aws::Clients,
    ctx: &ReadCtx,
    address: &Address,
    physical: &str,
    force_destroy: bool,
) -> anyhow::Result<Removal> {
    match address.kind {
        Kind::Bucket => {
            return Ok(
                match bucket::delete(clients, physical, force_destroy).await? {
                    bucket::Removal::Deleted { .. } => Removal::Deleted,
                    bucket::Removal::KeptNotEmpty { objects, versions } => {
                        Removal::KeptNotEmpty { objects, versions }
                    }
                },
            )
        }
        Kind::Parameter => parameter::delete(clients, physical).await?,
        Kind::Policy => policy::delete(clients, ctx, physical).await?,
        Kind::User => user::delete(clients, ctx, &address.name, physical).await?,
        Kind::Role => role::delete(clients, physical).await?,
        Kind::Function => function::delete(clients, physical).await?,
        Kind::Permission => permission::delete(clients, physical).await?,
        Kind::Notification => match notification::put(clients, physical, &[]).await {
            Ok(()) => {}
            // The bucket is gone, and its notifications with it.
            Err(err) if format!("{err:#}").contains("NoSuchBucket") => {}
            Err(err) => return Err(err),
        },
    }
    Ok(Removal::Deleted)
}
