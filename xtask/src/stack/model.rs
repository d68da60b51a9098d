//! The stack file as written: serde types with `deny_unknown_fields` and the documented
//! defaults. Strings here are still templates (`${…}` not expanded); `resolve` turns one
//! environment's merged document into a `ResolvedStack`. No validation beyond the shape.
//!
//! The same types describe the file's JSON Schema (`schemars`, `stack::schema`): doc
//! comments become the descriptions an editor shows, and where serde reads a field in its
//! own way (`nullable`, `string_or_list`, a parameter's two forms) a `schemars` attribute
//! says what it accepts.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The default memory of a function, in MB: enough for the streaming stripper with the
/// AWS SDK loaded, and Lambda gives CPU in proportion to memory (128 MB is noticeably slow).
pub const DEFAULT_MEMORY: u32 = 256;
/// The default timeout of a function, in seconds. Lambda's own default (3 s) is too short
/// for a cold start that fetches and writes a large picture; 30 s still fails fast.
pub const DEFAULT_TIMEOUT: u32 = 30;
/// How long a function's logs are kept by default, in days: a month of history to debug
/// with, without paying for logs nobody reads.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;
/// A rendition's JPEG quality by default: visually clean for thumbnails and web sizes, about
/// half the bytes of 95.
pub const DEFAULT_RENDITION_QUALITY: u8 = 80;
/// How long a queue keeps a message by default, in days: SQS's longest (its own default is
/// 4 days), so a failure record waits through a long weekend and a holiday.
pub const DEFAULT_QUEUE_RETENTION_DAYS: u32 = 14;

/// The whole stack file (`environments` present), or one environment's merged document
/// (`environments` empty).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a stack definition (a mapping with `stack`, `region`, `environments`, …)"
)]
#[schemars(
    title = "stripstack stack file",
    description = "What stripstack deploys: buckets, parameters, users and functions, and the \
                   environments they are deployed to (README: \"The stack file\")."
)]
pub struct Document {
    /// The stack's name: the `${stack}` of names, and the `stack` tag on everything.
    pub stack: String,
    /// The AWS region to deploy to (an environment may override it).
    pub region: String,
    /// Tags put on every resource, besides the managed `stack`, `env` and `region`.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub tags: BTreeMap<String, String>,
    /// The environments (`local`, `dev`, `prod`, …), each a patch over this document.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, Option<Overlay>>>")]
    pub environments: BTreeMap<String, Option<Overlay>>,
    /// S3 buckets, by logical name (`${buckets.NAME.name}`, `${buckets.NAME.arn}`).
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, BucketSpec>>")]
    pub buckets: BTreeMap<String, BucketSpec>,
    /// SSM parameters, by their full name (`/${stack}/${env}/…`).
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, ParameterSpec>>")]
    pub parameters: BTreeMap<String, ParameterSpec>,
    /// IAM users, by logical name, with their allowed actions.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, UserSpec>>")]
    pub users: BTreeMap<String, UserSpec>,
    /// Lambda functions, by logical name.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, FunctionSpec>>")]
    pub functions: BTreeMap<String, FunctionSpec>,
    /// SQS queues, by logical name (`${queues.NAME.name}`, `.arn`, `.url`): where a function's
    /// failed events and refused uploads are recorded (`functions.NAME.on_failure`).
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, QueueSpec>>")]
    pub queues: BTreeMap<String, QueueSpec>,
}

/// One environment: where it deploys, plus a patch deep-merged over the base document.
/// Only the shape is checked here; the patch itself is merged as YAML (see `merge`) and
/// checked as part of the merged document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an environment (a mapping of overrides; `{}` for none)"
)]
pub struct Overlay {
    /// This environment's region, instead of the document's.
    pub region: Option<String>,
    /// Endpoint of an AWS-compatible service (the local emulator).
    pub endpoint: Option<String>,
    /// Tags added to (or replacing) the document's.
    #[serde(rename = "tags")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    _tags: Option<IgnoredAny>,
    /// Settings deep-merged over the document's buckets.
    #[serde(rename = "buckets")]
    #[schemars(with = "Option<BTreeMap<String, BucketSpec>>")]
    _buckets: Option<IgnoredAny>,
    /// Parameters added to (or replacing) the document's.
    #[serde(rename = "parameters")]
    #[schemars(with = "Option<BTreeMap<String, ParameterSpec>>")]
    _parameters: Option<IgnoredAny>,
    /// Settings deep-merged over the document's users.
    #[serde(rename = "users")]
    #[schemars(with = "Option<BTreeMap<String, UserSpec>>")]
    _users: Option<IgnoredAny>,
    /// Settings deep-merged over the document's functions (e.g. `{ strip: { memory: 512 } }`).
    // `default`: an overlay may leave `functions` out. Without it the schema generator,
    // which cannot see the `Option` behind `schema_with`, lists the field as required.
    #[serde(rename = "functions", default)]
    #[schemars(schema_with = "function_patches_schema")]
    _functions: Option<IgnoredAny>,
    /// Settings deep-merged over the document's queues.
    #[serde(rename = "queues")]
    #[schemars(with = "Option<BTreeMap<String, QueueSpec>>")]
    _queues: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a bucket definition (a mapping; `{}` for all defaults)"
)]
pub struct BucketSpec {
    /// Default: `${stack}-<logical>-${env}-${account}` (globally unique, like the S3 namespace needs).
    pub name: Option<String>,
    /// Keep every version of every object (default: on).
    #[serde(default = "yes")]
    pub versioning: bool,
    /// `destroy` may empty the bucket (every object version) before deleting it.
    #[serde(default)]
    pub force_destroy: bool,
    /// Never deleted by `destroy` (or by CloudFormation).
    #[serde(default)]
    pub retain: bool,
    /// Refuse requests not made over TLS (a bucket policy; off only for the local emulator).
    #[serde(default = "yes")]
    pub tls_only: bool,
    /// Lifecycle rules: transitions and expirations.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<LifecycleSpec>>")]
    pub lifecycle: Vec<LifecycleSpec>,
}

impl BucketSpec {
    pub fn default_name(logical: &str) -> String {
        format!("${{stack}}-{logical}-${{env}}-${{account}}")
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a lifecycle rule (a mapping with `id`)"
)]
pub struct LifecycleSpec {
    /// The rule's id, unique in the bucket.
    pub id: String,
    /// Only keys under this prefix (default: every key).
    #[serde(default)]
    pub prefix: String,
    /// Days after creation before objects move to `storage_class`.
    pub transition_days: Option<u32>,
    /// Where objects move after `transition_days` (e.g. `INTELLIGENT_TIERING`, `GLACIER_IR`).
    pub storage_class: Option<String>,
    /// Days after creation before objects expire.
    pub expiration_days: Option<u32>,
    /// Days before non-current versions are deleted.
    pub noncurrent_expiration_days: Option<u32>,
    /// Days before unfinished multipart uploads are aborted.
    pub abort_incomplete_multipart_days: Option<u32>,
}

/// An SSM parameter: a plain string, or `{ value, secure, description }`.
#[derive(Debug, Clone)]
pub struct ParameterSpec {
    pub value: String,
    pub secure: bool,
    pub description: Option<String>,
    /// Whether it was written as a mapping (its value then sits under `value`).
    pub long_form: bool,
}

/// A parameter written as a mapping.
#[derive(Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a parameter mapping `{ value, secure, description }`"
)]
#[schemars(rename = "ParameterMapping")]
struct ParameterLong {
    /// The value (`${…}` references are expanded).
    value: String,
    /// A `SecureString`, encrypted with the account's SSM key.
    #[serde(default)]
    secure: bool,
    /// The parameter's description in SSM.
    description: Option<String>,
}

impl JsonSchema for ParameterSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ParameterSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mapping = generator.subschema_for::<ParameterLong>();
        json_schema!({
            "description": "An SSM parameter: its value as a string, or a mapping `{ value, secure, description }`.",
            "anyOf": [{ "type": "string" }, mapping]
        })
    }
}

impl<'de> Deserialize<'de> for ParameterSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParameterVisitor;
        impl<'de> Visitor<'de> for ParameterVisitor {
            type Value = ParameterSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a mapping `{ value, secure, description }`")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ParameterSpec, E> {
                Ok(ParameterSpec {
                    value: value.to_owned(),
                    secure: false,
                    description: None,
                    long_form: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ParameterSpec, A::Error> {
                // Deserializing through the map access keeps serde_path_to_error's path.
                let long = ParameterLong::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ParameterSpec {
                    value: long.value,
                    secure: long.secure,
                    description: long.description,
                    long_form: true,
                })
            }
        }
        deserializer.deserialize_any(ParameterVisitor)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a user definition (a mapping)")]
pub struct UserSpec {
    /// Create an access key, kept in SSM as a SecureString (`cargo xtask credentials`).
    #[serde(default)]
    pub access_key: bool,
    /// What the user may do: `Allow` statements of the user's managed policy.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<StatementSpec>>")]
    pub allow: Vec<StatementSpec>,
}

/// One `Allow` statement. `actions` and `resources` take a string or a list, as IAM does.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a statement `{ actions: [...], resources: [...] }`"
)]
pub struct StatementSpec {
    /// IAM actions (`s3:GetObject`, `s3:*`): one, or a list.
    #[serde(deserialize_with = "string_or_list")]
    #[schemars(schema_with = "string_or_list_schema")]
    pub actions: Vec<String>,
    /// ARNs, usually through `${buckets.NAME.arn}`: one, or a list.
    #[serde(deserialize_with = "string_or_list")]
    #[schemars(schema_with = "string_or_list_schema")]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a function definition (a mapping with `package`)"
)]
pub struct FunctionSpec {
    /// Workspace crate bundled as the `bootstrap` of a `provided.al2023` function.
    pub package: String,
    /// Memory in MB (128–10240); Lambda gives CPU in proportion.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Timeout in seconds (1–900).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Environment variables of the function.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub environment: BTreeMap<String, String>,
    /// What the function may do: `Allow` statements of its role.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<StatementSpec>>")]
    pub allow: Vec<StatementSpec>,
    /// The S3 events that invoke it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<TriggerSpec>>")]
    pub triggers: Vec<TriggerSpec>,
    /// Lambda's CPU: `x86_64` (Lambda's default) or `arm64` (Graviton, cheaper per GB-second).
    #[serde(default)]
    pub architecture: Architecture,
    /// Concurrent executions reserved for the function, which are also its limit: a flood of
    /// uploads cannot take the account's whole concurrency, and the function always has
    /// these. None (the default): it shares the account's unreserved pool.
    pub reserved_concurrency: Option<u32>,
    /// Days CloudWatch Logs keeps the function's log lines (its group
    /// `/aws/lambda/<function>`): one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,
    /// 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653.
    #[serde(default = "default_log_retention_days")]
    pub log_retention_days: u32,
    /// The queue (a key of `queues`) that receives every event whose asynchronous
    /// invocations all failed, and the function's records of refused uploads. The role may
    /// send to it, and the function finds it in `FAILURE_QUEUE_URL`. None (the default):
    /// Lambda drops such events after its retries.
    pub on_failure: Option<String>,
    /// Times Lambda retries a failed asynchronous invocation (0–2; Lambda's default: 2).
    pub retry_attempts: Option<u32>,
    /// Seconds an asynchronous event may wait for a successful try, retries and throttling
    /// included, before it goes to `on_failure` (60–21600; Lambda's default: 21600, 6 hours).
    pub max_event_age_seconds: Option<u32>,
    /// Resized, upright, metadata-free copies written beside each stripped original (`thumbs/
    /// <key>`); none by default. The function finds them in `RENDITIONS`.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<RenditionSpec>>")]
    pub renditions: Vec<RenditionSpec>,
}

/// One resized copy of every picture: `{ name: thumb, max_edge: 320, quality: 80, prefix:
/// thumbs/ }` writes `thumbs/<key>` beside `<key>` in the destination bucket.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a rendition `{ name, max_edge, quality, prefix }`"
)]
pub struct RenditionSpec {
    /// Its name (`thumb`), in logs and failure records.
    pub name: String,
    /// The longest edge in pixels (16–8192); a smaller picture keeps its size.
    pub max_edge: u32,
    /// JPEG quality, 1–100 (default 80).
    #[serde(default = "default_rendition_quality")]
    pub quality: u8,
    /// Where it goes in the destination bucket: `<prefix><key>` (ends with `/`).
    pub prefix: String,
}

/// An SQS standard queue, encrypted at rest with SQS's own keys (SSE-SQS).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a queue definition (a mapping; `{}` for all defaults)"
)]
pub struct QueueSpec {
    /// Days a message is kept (1–14; default 14, the longest SQS allows).
    #[serde(default = "default_queue_retention_days")]
    pub retention_days: u32,
    /// `destroy` may delete the queue while it still holds messages (failure records).
    #[serde(default)]
    pub force_destroy: bool,
}

/// A Lambda function's instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// Lambda's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// This machine's, for the local emulator, which runs the bootstrap as a host process.
    pub fn host() -> Self {
        if cfg!(target_arch = "aarch64") {
            Architecture::Arm64
        } else {
            Architecture::X86_64
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a trigger `{ bucket, events, prefix, suffixes }`"
)]
pub struct TriggerSpec {
    /// Logical name of a bucket of this stack.
    pub bucket: String,
    /// Which events: `created` (uploads, copies) and/or `removed` (deletes).
    #[serde(default = "default_events")]
    pub events: Vec<EventSpec>,
    /// Only keys under this prefix (e.g. `uploads/`).
    #[serde(default)]
    pub prefix: String,
    /// Only keys ending with one of these (e.g. `.jpg`): one, or a list.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(schema_with = "string_or_list_schema")]
    pub suffixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", expecting = "`created` or `removed`")]
pub enum EventSpec {
    Created,
    Removed,
}

fn yes() -> bool {
    true
}

fn default_memory() -> u32 {
    DEFAULT_MEMORY
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT
}

fn default_log_retention_days() -> u32 {
    DEFAULT_LOG_RETENTION_DAYS
}

fn default_rendition_quality() -> u8 {
    DEFAULT_RENDITION_QUALITY
}

fn default_queue_retention_days() -> u32 {
    DEFAULT_QUEUE_RETENTION_DAYS
}

fn default_events() -> Vec<EventSpec> {
    vec![EventSpec::Created]
}

/// `key:` with nothing after it (YAML null) means the same as leaving the key out.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// What [`string_or_list`] accepts.
fn string_or_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "type": "string" } },
            { "type": "null" }
        ]
    })
}

/// An environment's `functions`: per function, a patch merged over its definition, so no
/// key is required there (the merged document is checked as a whole).
fn function_patches_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "additionalProperties": { "type": ["object", "null"] }
    })
}

/// A single string or a list of strings (IAM's `"Action": "s3:GetObject"` shorthand).
fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct StringOrList;
    impl<'de> Visitor<'de> for StringOrList {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<String>, E> {
            Ok(vec![value.to_owned()])
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(StringOrList)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let bucket: BucketSpec = parse("{}").expect("valid");
        assert!(bucket.versioning && bucket.tls_only && !bucket.retain && !bucket.force_destroy);
        assert!(bucket.name.is_none() && bucket.lifecycle.is_empty());
        let function: FunctionSpec = parse("package: lambda").expect("valid");
        assert_eq!((function.memory, function.timeout), (256, 30));
        let trigger: TriggerSpec = parse("bucket: source").expect("valid");
        assert_eq!(trigger.events, vec![EventSpec::Created]);
        assert_eq!(trigger.prefix, "");
        let queue: QueueSpec = parse("{}").expect("valid");
        assert_eq!((queue.retention_days, queue.force_destroy), (14, false));
        assert!(function.on_failure.is_none() && function.retry_attempts.is_none());
    }

    #[test]
    fn parameter_short_and_long_forms() {
        let short: ParameterSpec = parse("\"v\"").expect("valid");
        assert_eq!(
            (short.value.as_str(), short.secure, short.long_form),
            ("v", false, false)
        );
        let long: ParameterSpec =
            parse("{ value: v, secure: true, description: d }").expect("valid");
        assert!(long.secure && long.long_form);
        assert_eq!(long.description.as_deref(), Some("d"));
        let err = parse::<ParameterSpec>("{ valeu: v }").expect_err("unknown field");
        assert!(err.contains("unknown field `valeu`"), "{err}");
        let err = parse::<ParameterSpec>("3").expect_err("not a string");
        assert!(err.contains("expected a string, or a mapping"), "{err}");
    }

    #[test]
    fn string_or_list_accepts_both() {
        let s: StatementSpec =
            parse("{ actions: s3:GetObject, resources: ['*', 'arn:x'] }").expect("valid");
        assert_eq!(s.actions, vec!["s3:GetObject"]);
        assert_eq!(s.resources, vec!["*", "arn:x"]);
    }

    #[test]
    fn null_collections_are_empty() {
        let user: UserSpec = parse("allow:").expect("valid");
        assert!(user.allow.is_empty());
    }
}
