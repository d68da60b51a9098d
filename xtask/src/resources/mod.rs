//! One file per resource kind, each a unit type implementing [`kind::ResourceKind`]:
//! `desired` (pure: resolved stack -> desired states), `read` (SDK calls: observe the real
//! resource), `converge` / `remove` (SDK calls), its delete ordering, plan rules, adoption
//! rule and CloudFormation type. All SDK calls for a kind live in its file; nothing else in
//! the tree talks to that AWS API. `registry.rs` lists the kinds and generates the dispatch.
//!
//! States are plain property maps (`Props`) so that the plan engine can diff every kind
//! with one pure function; each kind keeps its properties in a typed struct serialised into
//! that map and read back from it ([`props::TypedProps`]).

pub(crate) mod access;
pub(crate) mod batch_job;
pub(crate) mod bucket;
pub(crate) mod cloudformation;
#[cfg(test)]
mod contract;
pub(crate) mod function;
pub(crate) mod grant;
pub(crate) mod invoke_config;
pub(crate) mod kind;
pub(crate) mod log_group;
pub(crate) mod notification;
pub(crate) mod parameter;
pub(crate) mod permission;
pub mod policy;
pub mod policy_doc;
pub(crate) mod props;
pub(crate) mod queue;
mod registry;
pub(crate) mod role;
pub(crate) mod tags;
pub(crate) mod user;

pub(crate) use registry::{
    check_adoption, cloudformation_properties, deployer_grants, managed, settings, settings_during,
};
#[cfg(test)]
pub(crate) use registry::{cloudformation_comparable, from_cloudformation};
pub use registry::{converge, desired_all, read, remove, Kind};

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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

/// IAM tags (`TagUser`, `CreateRole`, …) from a string map.
pub(crate) fn iam_tag_list(
    tags: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Vec<aws_sdk_iam::types::Tag>> {
    tags.iter()
        .map(|(k, v)| Ok(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()?))
        .collect()
}

/// What writes need beyond the desired state: the resolved stack (plaintext of secure
/// parameter values, which the plan holds only as hashes) and the uploaded bundles.
#[derive(Debug, Clone)]
pub struct ApplyCtx {
    pub read: ReadCtx,
    pub stack: crate::stack::ResolvedStack,
    pub artifacts: Artifacts,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// Data the stack did not allow `destroy` to delete (a non-empty bucket or queue without
    /// `force_destroy`): kept, with what it holds (`3 objects, 5 versions`).
    KeptNotEmpty {
        holds: String,
    },
}

/// IAM's answer for an entity (or one it refers to) that it has not propagated yet: what the
/// user, role and policy kinds wait out after this run created it.
pub(crate) fn iam_not_yet(err: &crate::aws::AwsError) -> bool {
    err.is("NoSuchEntity")
}

/// What the state keeps with a resource for its later delete, per kind (a bucket's
/// `force_destroy`): each kind reads its own typed settings from it.
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// What the kinds' tests with recorded AWS answers share: the shipped pipeline in env `dev`,
/// in the mocked account and region.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Desired, Observed, ReadCtx};
    use crate::aws::mock;
    use crate::stack::ResolvedStack;

    pub(crate) fn dev_stack() -> ResolvedStack {
        crate::stack::pipeline_in_every_env()
            .into_iter()
            .find(|s| s.env == "dev")
            .expect("a dev env")
    }

    /// `want` as read back after the stack dropped its `team` tag (set by an earlier run,
    /// so recorded as managed) and someone added `CostCenter`: seen through the managed keys.
    pub(crate) fn with_dropped_and_foreign_tags(want: &Desired) -> Observed {
        let mut tags = super::tags::of(&want.props);
        let mut managed: Vec<String> = tags.keys().cloned().collect();
        managed.push("team".into());
        tags.insert("team".into(), "photos".into());
        tags.insert("CostCenter".into(), "42".into());
        let mut props = want.props.clone();
        props.insert("tags".into(), serde_json::json!(tags));
        super::tags::managed_view(
            want,
            Observed {
                physical: want.physical.clone(),
                props,
            },
            &super::tags::settings(&managed),
        )
    }

    pub(crate) fn dev_ctx() -> ReadCtx {
        ReadCtx {
            stack: "exif-pipeline".into(),
            env: "dev".into(),
            account: mock::ACCOUNT.into(),
            region: mock::REGION.into(),
        }
    }
}
