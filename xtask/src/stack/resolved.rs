//! The resolved stack: one environment of one stack file after overlay merge and `${…}`
//! interpolation. Plain data, the contract between `stack` (which builds it) and
//! `resources` (which turns it into desired resource states). No I/O, no AWS types.

use std::collections::BTreeMap;

/// Every name here is final: interpolated, physical, ready to send to AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStack {
    pub stack: String,
    pub env: String,
    pub region: String,
    pub account: String,
    /// Endpoint override for this environment (the local emulator), if any.
    pub endpoint: Option<String>,
    /// Tags applied to everything taggable: the stack's `tags` plus `stack`, `env`, `region`, `managed-by`.
    pub tags: BTreeMap<String, String>,
    /// Keyed by logical name (`source`, `destination`).
    pub buckets: BTreeMap<String, Bucket>,
    /// Keyed by SSM parameter name (`/exif-pipeline/dev/source-bucket`).
    pub parameters: BTreeMap<String, Parameter>,
    /// Keyed by logical name (`user-a`).
    pub users: BTreeMap<String, User>,
    /// Keyed by logical name (`strip`).
    pub functions: BTreeMap<String, Function>,
    /// Keyed by logical name (`failures`).
    pub queues: BTreeMap<String, Queue>,
}

impl ResolvedStack {
    /// The queue `function` sends its failed events and refusal records to (`on_failure`).
    pub fn failure_queue(&self, function: &Function) -> Option<&Queue> {
        let name = function.async_invoke.as_ref()?.on_failure.as_ref()?;
        self.queues.get(name)
    }
}

/// An SQS standard queue (SSE-SQS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub logical: String,
    /// Physical queue name: `<stack>-<env>-<logical>` (SQS names are per account and region).
    pub name: String,
    pub arn: String,
    /// Where the SQS API finds it (`https://sqs.<region>.amazonaws.com/<account>/<name>`,
    /// or under the environment's endpoint).
    pub url: String,
    pub retention_days: u32,
    /// `destroy` may delete it while it holds messages.
    pub force_destroy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub logical: String,
    pub name: String,
    pub arn: String,
    pub versioning: bool,
    /// `destroy` may delete every object version of this bucket.
    pub force_destroy: bool,
    /// Never deleted by `destroy` or when removed from the stack.
    pub retain: bool,
    /// Bucket policy that denies requests without TLS (`aws:SecureTransport = false`).
    pub tls_only: bool,
    pub lifecycle: Vec<LifecycleRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    /// Key prefix the rule applies to; empty = whole bucket.
    pub prefix: String,
    /// Transition current versions to `storage_class` after this many days.
    pub transition_days: Option<u32>,
    pub storage_class: Option<String>,
    /// Expire current versions after this many days.
    pub expiration_days: Option<u32>,
    /// Permanently delete noncurrent versions after this many days.
    pub noncurrent_expiration_days: Option<u32>,
    /// Abort multipart uploads still incomplete this many days after they started (their
    /// parts are billed until then, and invisible in listings).
    pub abort_incomplete_multipart_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub value: String,
    /// SecureString (KMS-encrypted with the account's default key) instead of String.
    pub secure: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub logical: String,
    /// Physical IAM user name: `<stack>-<env>-<logical>` (IAM is global to the account).
    pub name: String,
    pub arn: String,
    /// Customer-managed policy holding `allow`, attached to the user.
    pub policy_name: String,
    pub policy_arn: String,
    /// Create one access key; its secret goes to the SSM SecureString `secret_parameter`.
    pub access_key: bool,
    pub secret_parameter: String,
    pub allow: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub logical: String,
    /// Physical function name: `<stack>-<env>-<logical>`.
    pub name: String,
    pub arn: String,
    /// Workspace crate bundled as `bootstrap`.
    pub package: String,
    pub memory: u32,
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    pub role_name: String,
    pub role_arn: String,
    /// The role's inline policy statements (least privilege).
    pub allow: Vec<Statement>,
    pub triggers: Vec<Trigger>,
    /// As declared; the host's in an environment with an emulator endpoint (`local`),
    /// whose bootstrap runs on this machine.
    pub architecture: super::Architecture,
    /// Reserved concurrent executions; `None`: the account's unreserved pool.
    pub reserved_concurrency: Option<u32>,
    /// Its CloudWatch Logs group: `/aws/lambda/<name>`, where Lambda writes its logs.
    pub log_group: String,
    pub log_retention_days: u32,
    /// How asynchronous invocations (S3's) are retried and where the failed ones go;
    /// `None`: Lambda's defaults, and failed events are dropped.
    pub async_invoke: Option<AsyncInvoke>,
    /// Resized copies written beside each stripped original.
    pub renditions: Vec<Rendition>,
}

/// One resized copy of every picture (the function reads them from `RENDITIONS`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendition {
    pub name: String,
    pub max_edge: u32,
    pub quality: u8,
    pub prefix: String,
}

/// A function's asynchronous invocation settings (Lambda's event invoke configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncInvoke {
    /// Logical name of the queue (a key of `ResolvedStack::queues`) that receives the events
    /// that failed every try, and the function's refusal records.
    pub on_failure: Option<String>,
    pub retry_attempts: Option<u32>,
    pub max_event_age_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Logical name of the bucket (a key of `ResolvedStack::buckets`).
    pub bucket: String,
    pub events: Vec<TriggerEvent>,
    pub prefix: String,
    /// One notification entry is written per suffix (S3 allows one suffix rule per entry).
    pub suffixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TriggerEvent {
    /// `s3:ObjectCreated:*`
    Created,
    /// `s3:ObjectRemoved:*`
    Removed,
}

impl TriggerEvent {
    pub fn s3_event(self) -> &'static str {
        match self {
            TriggerEvent::Created => "s3:ObjectCreated:*",
            TriggerEvent::Removed => "s3:ObjectRemoved:*",
        }
    }
}
