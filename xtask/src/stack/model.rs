//! The stack file as written: serde types with `deny_unknown_fields` and the documented
//! defaults. Strings here are still templates (`${…}` not expanded); `resolve` turns one
//! environment's merged document into a `ResolvedStack`. No validation beyond the shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The default memory of a function, in MB: enough for the streaming stripper with the
/// AWS SDK loaded, and Lambda gives CPU in proportion to memory (128 MB is noticeably slow).
pub const DEFAULT_MEMORY: u32 = 256;
/// The default timeout of a function, in seconds. Lambda's own default (3 s) is too short
/// for a cold start that fetches and writes a large picture; 30 s still fails fast.
pub const DEFAULT_TIMEOUT: u32 = 30;

/// The whole stack file (`environments` present), or one environment's merged document
/// (`environments` empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a stack definition (a mapping with `stack`, `region`, `environments`, …)"
)]
pub struct Document {
    pub stack: String,
    pub region: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub environments: BTreeMap<String, Option<Overlay>>,
    #[serde(default, deserialize_with = "nullable")]
    pub buckets: BTreeMap<String, BucketSpec>,
    #[serde(default, deserialize_with = "nullable")]
    pub parameters: BTreeMap<String, ParameterSpec>,
    #[serde(default, deserialize_with = "nullable")]
    pub users: BTreeMap<String, UserSpec>,
    #[serde(default, deserialize_with = "nullable")]
    pub functions: BTreeMap<String, FunctionSpec>,
}

/// One environment: where it deploys, plus a patch deep-merged over the base document.
/// Only the shape is checked here; the patch itself is merged as YAML (see `merge`) and
/// checked as part of the merged document.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an environment (a mapping of overrides; `{}` for none)"
)]
pub struct Overlay {
    pub region: Option<String>,
    /// Endpoint of an AWS-compatible service (the local emulator).
    pub endpoint: Option<String>,
    #[serde(rename = "tags")]
    _tags: Option<IgnoredAny>,
    #[serde(rename = "buckets")]
    _buckets: Option<IgnoredAny>,
    #[serde(rename = "parameters")]
    _parameters: Option<IgnoredAny>,
    #[serde(rename = "users")]
    _users: Option<IgnoredAny>,
    #[serde(rename = "functions")]
    _functions: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a bucket definition (a mapping; `{}` for all defaults)"
)]
pub struct BucketSpec {
    /// Default: `${stack}-<logical>-${env}-${account}` (globally unique, like the S3 namespace needs).
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub versioning: bool,
    #[serde(default)]
    pub force_destroy: bool,
    #[serde(default)]
    pub retain: bool,
    #[serde(default = "yes")]
    pub tls_only: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub lifecycle: Vec<LifecycleSpec>,
}

impl BucketSpec {
    pub fn default_name(logical: &str) -> String {
        format!("${{stack}}-{logical}-${{env}}-${{account}}")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a lifecycle rule (a mapping with `id`)"
)]
pub struct LifecycleSpec {
    pub id: String,
    #[serde(default)]
    pub prefix: String,
    pub transition_days: Option<u32>,
    pub storage_class: Option<String>,
    pub expiration_days: Option<u32>,
    pub noncurrent_expiration_days: Option<u32>,
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

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a parameter mapping `{ value, secure, description }`"
)]
struct ParameterLong {
    value: String,
    #[serde(default)]
    secure: bool,
    description: Option<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a user definition (a mapping)")]
pub struct UserSpec {
    #[serde(default)]
    pub access_key: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub allow: Vec<StatementSpec>,
}

/// One `Allow` statement. `actions` and `resources` take a string or a list, as IAM does.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a statement `{ actions: [...], resources: [...] }`"
)]
pub struct StatementSpec {
    #[serde(deserialize_with = "string_or_list")]
    pub actions: Vec<String>,
    #[serde(deserialize_with = "string_or_list")]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a function definition (a mapping with `package`)"
)]
pub struct FunctionSpec {
    /// Workspace crate bundled as the `bootstrap` of a `provided.al2023` function.
    pub package: String,
    #[serde(default = "default_memory")]
    pub memory: u32,
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub allow: Vec<StatementSpec>,
    #[serde(default, deserialize_with = "nullable")]
    pub triggers: Vec<TriggerSpec>,
    /// Lambda's CPU: `x86_64` (Lambda's default) or `arm64` (Graviton, cheaper per GB-second).
    #[serde(default)]
    pub architecture: Architecture,
}

/// A Lambda function's instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a trigger `{ bucket, events, prefix, suffixes }`"
)]
pub struct TriggerSpec {
    /// Logical name of a bucket of this stack.
    pub bucket: String,
    #[serde(default = "default_events")]
    pub events: Vec<EventSpec>,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, deserialize_with = "string_or_list")]
    pub suffixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
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
