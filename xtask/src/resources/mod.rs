//! One module per resource kind. Each kind has the same small shape:
//! `desired` (pure: resolved stack -> desired states), `read` (SDK calls: observe the real
//! resource), and — for `deploy` — `create` / `update` / `delete`. All SDK calls for a kind
//! live in its module; nothing else in the tree talks to that AWS API.
//!
//! States are plain property maps (`Props`) so that the plan engine can diff every kind
//! with one pure function.

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
