//! Template synthesis: the resolved stack as a CloudFormation template. Pure: no I/O.
//!
//! The template is built from the SDK engine's own desired states
//! ([`resources::desired_all`]), property by property, so that both engines describe the
//! same infrastructure: the same physical names, the same policy documents, tags and
//! settings. Every name is known up front (the stack file fixes them), so references are
//! literal names and ARNs and the order comes from explicit `DependsOn`, taken from the SDK
//! engine's dependencies. That is also what breaks the bucket → permission → notification
//! cycle without a custom resource: the permission's `SourceArn` is the bucket's literal ARN,
//! and the bucket (which holds its notification configuration in CloudFormation) depends on
//! the permission.
//!
//! What CloudFormation cannot do is left out and recorded in the template's `Metadata`
//! ([`Recorded`]) for the SDK to do around the stack: SecureString parameters (not a type
//! `AWS::SSM::Parameter` can create) and access keys (an `AWS::IAM::AccessKey` would keep
//! the secret in the stack's outputs or state).
//!
//! A resource's own `Metadata` holds the checkov checks its kind fails by design, each with
//! its reason ([`crate::resources::cloudformation::CheckovSkip`]): CI runs checkov over the
//! templates of dev and prod and fails on any other failure.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::resources::cloudformation::{checkov_metadata, Synthesis};
use crate::resources::{self, Address, Artifacts, Desired, Kind};
use crate::stack::resolved::ResolvedStack;

/// The key of this tool's section in the template's `Metadata`.
pub const METADATA_KEY: &str = "Stripstack";

/// The largest template CloudFormation accepts inline (`TemplateBody`), in bytes.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// The largest template CloudFormation reads from S3 (`TemplateURL`), in bytes.
pub const MAX_TEMPLATE_URL_BODY: usize = 1_000_000;

/// A synthesised template and what each of its resources stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The template document; [`to_yaml`] renders it.
    pub body: Value,
    /// Every resource, in template order.
    pub resources: Vec<Entry>,
    /// Packages whose bundle was not built: their function's code location is a placeholder.
    pub unbuilt: Vec<String>,
}

/// One resource of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub logical_id: String,
    /// The SDK engine's address of the resource (a bucket policy is `bucket.<name>.policy`).
    pub address: Address,
    pub resource_type: &'static str,
    /// The name AWS knows it by, as the SDK engine names it.
    pub physical: String,
}

impl Template {
    pub fn entry(&self, logical_id: &str) -> Option<&Entry> {
        self.resources.iter().find(|e| e.logical_id == logical_id)
    }
}

/// The CloudFormation stack of one environment: `<stack>-<env>`.
pub fn stack_name(stack: &ResolvedStack) -> String {
    format!("{}-{}", stack.stack, stack.env)
}

/// The template of `stack`. Functions whose package has no entry in `artifacts` get a
/// placeholder code location (listed in [`Template::unbuilt`]).
pub fn synthesize(stack: &ResolvedStack, artifacts: &Artifacts) -> Template {
    let desired = resources::desired_all(stack, artifacts);
    let ids = logical_ids(stack, &desired);
    let id = |address: &Address| ids.get(address).cloned().unwrap_or_default();

    let mut resources_section = Map::new();
    let mut entries = Vec::new();
    let mut synthesis = Synthesis::new(
        stack,
        artifacts,
        &desired,
        crate::engine::state::state_bucket(&stack.account, &stack.region),
    );
    for want in &desired {
        let Some((resource_type, _)) = want.address.kind.cloudformation() else {
            continue;
        };
        let Some(properties) = resources::cloudformation_properties(want, &mut synthesis) else {
            continue;
        };
        let logical_id = id(&want.address);
        let mut depends_on: Vec<String> = want
            .depends_on
            .iter()
            .chain(&synthesis.extra_dependencies)
            .map(&id)
            .collect();
        synthesis.extra_dependencies.clear();
        for companion in synthesis.companions.drain(..) {
            let companion_id = format!("{logical_id}{}", companion.suffix);
            let mut resource = json!({
                "Type": companion.resource_type,
                "DependsOn": [logical_id],
                "Properties": companion.properties,
            });
            set_retain(&mut resource, want.retain);
            entries.push(Entry {
                logical_id: companion_id.clone(),
                address: companion.address,
                resource_type: companion.resource_type,
                physical: companion.physical,
            });
            resources_section.insert(companion_id, resource);
        }
        depends_on.sort();
        depends_on.dedup();
        let mut resource = json!({ "Type": resource_type, "Properties": properties });
        if !depends_on.is_empty() {
            resource["DependsOn"] = json!(depends_on);
        }
        if let Some(metadata) = checkov_metadata(stack, want) {
            resource["Metadata"] = metadata;
        }
        set_retain(&mut resource, want.retain);
        entries.push(Entry {
            logical_id: logical_id.clone(),
            address: want.address.clone(),
            resource_type,
            physical: want.physical.clone(),
        });
        resources_section.insert(logical_id, resource);
    }
    let mut recorded = Recorded {
        secure_parameters: synthesis.secure_parameters,
        access_keys: synthesis.access_keys,
        ..Recorded::default()
    };
    let mut unbuilt = synthesis.unbuilt;
    for entry in &entries {
        recorded
            .resources
            .insert(entry.logical_id.clone(), entry.address.clone());
    }
    entries.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    unbuilt.sort();
    unbuilt.dedup();

    let body = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "stripstack: stack {} env {} (generated by `cargo xtask synth`; edit the stack file, not this template)",
            stack.stack, stack.env
        ),
        "Metadata": { METADATA_KEY: recorded.to_json(stack) },
        "Resources": resources_section,
        "Outputs": outputs(stack, &ids),
    });
    Template {
        body,
        resources: entries,
        unbuilt,
    }
}

/// A bucket's TLS-only policy: part of the bucket in the SDK engine, its own resource here.
fn set_retain(resource: &mut Value, retain: bool) {
    if retain {
        // `RetainExceptOnCreate`: kept when the stack is deleted or the resource removed, but
        // deleted when the operation that created it rolls back (a plain `Retain` would leave
        // an empty bucket behind and the next deploy would fail on "already exists"). The
        // update-replace policy has no such option: `Retain`, or a replacement would delete
        // the old bucket (as the CDK's RETAIN_ON_UPDATE_OR_DELETE does).
        resource["DeletionPolicy"] = json!("RetainExceptOnCreate");
        resource["UpdateReplacePolicy"] = json!("Retain");
    }
}

/// Logical ids: the resource's name in PascalCase plus its kind (`bucket.source` →
/// `SourceBucket`; an SSM name drops its `/<stack>/<env>/` prefix). Two resources that would
/// get the same id both get a short hash of their address appended. A resource that is a
/// property of another in CloudFormation (a bucket's notification) gets that one's id.
fn logical_ids(stack: &ResolvedStack, desired: &[Desired]) -> BTreeMap<Address, String> {
    let candidates: Vec<(Address, String)> = desired
        .iter()
        .filter(|d| d.address.kind.cloudformation().is_some())
        .map(|d| (d.address.clone(), base_logical_id(stack, &d.address)))
        .collect();
    // The ids of companion resources (`<bucket id>Policy`) are taken too.
    let companion_ids = |address: &Address, id: &str| -> Vec<String> {
        address
            .kind
            .cloudformation_companions()
            .iter()
            .map(|suffix| format!("{id}{suffix}"))
            .collect()
    };
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (address, id) in &candidates {
        *taken.entry(id.clone()).or_default() += 1;
        for companion in companion_ids(address, id) {
            *taken.entry(companion).or_default() += 1;
        }
    }
    let count = |id: &str| taken.get(id).copied().unwrap_or_default();
    let mut ids: BTreeMap<Address, String> = candidates
        .iter()
        .map(|(address, id)| {
            let clash = count(id) > 1 || companion_ids(address, id).iter().any(|c| count(c) > 1);
            let id = if clash {
                let digest = Sha256::digest(address.to_string().as_bytes());
                format!("{id}{}", &hex::encode(digest)[..8])
            } else {
                id.clone()
            };
            (address.clone(), id)
        })
        .collect();
    for want in desired {
        let Some(host) = want.address.kind.cloudformation_host(&want.address) else {
            continue;
        };
        if let Some(id) = ids.get(&host).cloned() {
            ids.insert(want.address.clone(), id);
        }
    }
    ids
}

fn base_logical_id(stack: &ResolvedStack, address: &Address) -> String {
    let suffix = address.kind.cloudformation().map_or_else(
        || pascal(address.kind.as_str()),
        |(_, suffix)| suffix.to_owned(),
    );
    format!(
        "{}{suffix}",
        pascal(address.kind.cloudformation_name(stack, address))
    )
}

/// `/exif-pipeline/dev/source-bucket` → `ExifPipelineDevSourceBucket`; `strip.source` →
/// `StripSource`. Only ASCII letters and digits survive: what a logical id may hold.
fn pascal(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Names and ARNs a user of the stack looks for, as `describe-stacks` outputs.
fn outputs(stack: &ResolvedStack, ids: &BTreeMap<Address, String>) -> Value {
    let mut out = Map::new();
    let mut add = |address: Address, suffix: &str, value: &str, description: String| {
        if let Some(id) = ids.get(&address) {
            out.insert(
                format!("{id}{suffix}"),
                json!({ "Description": description, "Value": value }),
            );
        }
    };
    for bucket in stack.buckets.values() {
        let address = Address::new(Kind::Bucket, &bucket.logical);
        add(
            address.clone(),
            "Name",
            &bucket.name,
            format!("Name of bucket `{}`", bucket.logical),
        );
        add(
            address,
            "Arn",
            &bucket.arn,
            format!("ARN of bucket `{}`", bucket.logical),
        );
    }
    for function in stack.functions.values() {
        let address = Address::new(Kind::Function, &function.logical);
        add(
            address.clone(),
            "Name",
            &function.name,
            format!("Name of function `{}`", function.logical),
        );
        add(
            address,
            "Arn",
            &function.arn,
            format!("ARN of function `{}`", function.logical),
        );
    }
    for user in stack.users.values() {
        let address = Address::new(Kind::User, &user.logical);
        add(
            address.clone(),
            "Name",
            &user.name,
            format!("Name of IAM user `{}`", user.logical),
        );
        if user.access_key {
            add(
                address,
                "SecretParameter",
                &user.secret_parameter,
                format!(
                    "SecureString holding the secret access key of `{}` (written by stripstack, not CloudFormation)",
                    user.logical
                ),
            );
        }
    }
    Value::Object(out)
}

/// What a deployed template records for the next run: which stack resource each logical id
/// stands for (to name removed resources in a plan), and what the SDK did around the stack
/// (to clean up what is no longer declared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub resources: BTreeMap<String, Address>,
    /// SecureString parameters, by name.
    pub secure_parameters: Vec<String>,
    /// Users with an access key: logical name → IAM user name.
    pub access_keys: BTreeMap<String, String>,
}

impl Recorded {
    fn to_json(&self, stack: &ResolvedStack) -> Value {
        json!({
            "Stack": stack.stack,
            "Env": stack.env,
            "Resources": self
                .resources
                .iter()
                .map(|(id, address)| (id.clone(), json!(address.to_string())))
                .collect::<Map<_, _>>(),
            "Sdk": {
                "SecureParameters": self.secure_parameters,
                "AccessKeys": self.access_keys,
            },
        })
    }

    /// Reads the record of a deployed template. A template without one (made by another tool)
    /// records nothing.
    pub fn of(body: &Value) -> Recorded {
        let section = &body["Metadata"][METADATA_KEY];
        let resources = section["Resources"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(id, address)| {
                        Some((id.clone(), parse_address(address.as_str()?)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let secure_parameters = section["Sdk"]["SecureParameters"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let access_keys = section["Sdk"]["AccessKeys"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(logical, name)| {
                        Some((logical.clone(), name.as_str()?.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Recorded {
            resources,
            secure_parameters,
            access_keys,
        }
    }
}

/// `bucket.source` → the address; `None` for anything else.
fn parse_address(text: &str) -> Option<Address> {
    let (kind, name) = text.split_once('.')?;
    let kind: Kind = serde_json::from_value(json!(kind)).ok()?;
    Some(Address::new(kind, name))
}

pub(crate) use crate::resources::cloudformation::code_sha256_of_key;

/// The template as YAML, for people and linters (`synth`), keys in the order templates are
/// read in (`Type` before `Properties`, `Resources` before `Outputs`), the rest sorted.
///
/// CloudFormation is sent the JSON ([`to_json`]), as the AWS CDK does: YAML 1.1, which
/// CloudFormation reads, takes an unquoted `yes` or `on` for a boolean, and the YAML
/// serialiser quotes only what YAML 1.2 would misread.
pub fn to_yaml(body: &Value) -> anyhow::Result<String> {
    Ok(serde_norway::to_string(&yaml_value(body, Level::Root))?)
}

/// The template as CloudFormation receives it: compact JSON.
pub fn to_json(body: &Value) -> String {
    body.to_string()
}

/// Where a map sits in the template, for the order of its keys.
#[derive(Clone, Copy)]
enum Level {
    Root,
    /// The `Resources` map: its values are resources.
    Resources,
    Resource,
    Other,
}

fn leading_keys(level: Level) -> &'static [&'static str] {
    match level {
        Level::Root => &[
            "AWSTemplateFormatVersion",
            "Description",
            "Metadata",
            "Resources",
            "Outputs",
        ],
        Level::Resource => &[
            "Type",
            "DeletionPolicy",
            "UpdateReplacePolicy",
            "DependsOn",
            "Metadata",
            "Properties",
        ],
        // Policy documents read best with their version first, checkov's skips with the
        // check's id.
        Level::Resources | Level::Other => &["Version", "id"],
    }
}

fn yaml_value(value: &Value, level: Level) -> serde_norway::Value {
    match value {
        Value::Null => serde_norway::Value::Null,
        Value::Bool(b) => serde_norway::Value::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => serde_norway::Value::Number(u.into()),
            (_, Some(i), _) => serde_norway::Value::Number(i.into()),
            (_, _, Some(f)) => serde_norway::Value::Number(f.into()),
            _ => serde_norway::Value::Null,
        },
        Value::String(s) => serde_norway::Value::String(s.clone()),
        Value::Array(items) => serde_norway::Value::Sequence(
            items
                .iter()
                .map(|item| yaml_value(item, Level::Other))
                .collect(),
        ),
        Value::Object(map) => {
            let leading = leading_keys(level);
            let rank = |key: &str| {
                leading
                    .iter()
                    .position(|k| *k == key)
                    .unwrap_or(leading.len())
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            let mut out = serde_norway::Mapping::new();
            for key in keys {
                let child = match (level, key.as_str()) {
                    (Level::Root, "Resources") => Level::Resources,
                    (Level::Resources, _) => Level::Resource,
                    _ => Level::Other,
                };
                out.insert(
                    serde_norway::Value::String(key.clone()),
                    yaml_value(&map[key], child),
                );
            }
            serde_norway::Value::Mapping(out)
        }
    }
}

/// Parses a template read back from CloudFormation: JSON (what deploy sends) or YAML.
pub fn parse(body: &str) -> anyhow::Result<Value> {
    match serde_json::from_str(body) {
        Ok(value) => Ok(value),
        Err(_) => Ok(serde_norway::from_str(body)?),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Synthesis of a fixed stack (snapshot), and the check that both engines describe the
    //! same infrastructure: every resource the SDK engine would create has its counterpart
    //! in the template, with the same physical name and properties.

    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::{json, Value};

    use super::*;
    use crate::resources::cloudformation::TemplateResource;
    use base64::Engine as _;

    use crate::resources::notification::{Entry, NotificationProps};
    use crate::resources::parameter::ParameterProps;
    use crate::resources::props::TypedProps;
    use crate::resources::{Artifact, Props};
    use crate::stack::resolved::{
        AsyncInvoke, Bucket, Function, LifecycleRule, Parameter, Queue, Statement, Trigger,
        TriggerEvent, User,
    };

    const ACCOUNT: &str = "123456789012";
    /// Hex SHA-256 of a pretend bundle, and the same digest in base64 (Lambda's CodeSha256).
    const BUNDLE_HEX: &str = "5d727519fbfec7aa3e023ccc0764e3e0d9b18e05a9f274e11728b314f4f0c9b9";

    fn statement(actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A stack with one of everything: a retained bucket with lifecycle rules, a
    /// force-destroy bucket with a trigger on two suffixes and two events, a plain and a
    /// secure parameter, a user with and one without an access key.
    pub(crate) fn fixed_stack() -> ResolvedStack {
        let bucket = |logical: &str, retain: bool, lifecycle: Vec<LifecycleRule>| Bucket {
            logical: logical.into(),
            name: format!("demo-{logical}-dev-{ACCOUNT}"),
            arn: format!("arn:aws:s3:::demo-{logical}-dev-{ACCOUNT}"),
            versioning: true,
            force_destroy: !retain,
            retain,
            tls_only: true,
            lifecycle,
        };
        let user = |logical: &str, access_key: bool, allow: Vec<Statement>| User {
            logical: logical.into(),
            name: format!("demo-dev-{logical}"),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/demo-dev-{logical}"),
            policy_name: format!("demo-dev-{logical}"),
            policy_arn: format!("arn:aws:iam::{ACCOUNT}:policy/demo-dev-{logical}"),
            access_key,
            secret_parameter: format!("/demo/dev/users/{logical}/secret-access-key"),
            allow,
        };
        let source_arn = format!("arn:aws:s3:::demo-source-dev-{ACCOUNT}");
        let destination_arn = format!("arn:aws:s3:::demo-destination-dev-{ACCOUNT}");
        let queue_arn = format!("arn:aws:sqs:eu-west-2:{ACCOUNT}:demo-dev-failures");
        let queue_url = format!("https://sqs.eu-west-2.amazonaws.com/{ACCOUNT}/demo-dev-failures");
        ResolvedStack {
            stack: "demo".into(),
            env: "dev".into(),
            region: "eu-west-2".into(),
            account: ACCOUNT.into(),
            endpoint: None,
            tags: [
                ("env", "dev"),
                ("managed-by", "stripstack"),
                ("stack", "demo"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            buckets: [
                bucket("source", false, Vec::new()),
                bucket(
                    "destination",
                    true,
                    vec![LifecycleRule {
                        id: "tiering".into(),
                        prefix: "photos/".into(),
                        transition_days: Some(30),
                        storage_class: Some("INTELLIGENT_TIERING".into()),
                        expiration_days: Some(3650),
                        noncurrent_expiration_days: Some(7),
                        abort_incomplete_multipart_days: Some(2),
                    }],
                ),
            ]
            .into_iter()
            .map(|b| (b.logical.clone(), b))
            .collect(),
            parameters: [
                Parameter {
                    name: "/demo/dev/source-bucket".into(),
                    value: format!("demo-source-dev-{ACCOUNT}"),
                    secure: false,
                    description: Some("Where pictures are uploaded".into()),
                },
                Parameter {
                    name: "/demo/dev/api-token".into(),
                    value: "hunter2".into(),
                    secure: true,
                    description: None,
                },
            ]
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect(),
            users: [
                user(
                    "user-a",
                    true,
                    vec![statement(
                        &["s3:GetObject", "s3:PutObject"],
                        &[&format!("{source_arn}/*")],
                    )],
                ),
                user(
                    "user-b",
                    false,
                    vec![statement(
                        &["s3:GetObject"],
                        &[&format!("{destination_arn}/*")],
                    )],
                ),
            ]
            .into_iter()
            .map(|u| (u.logical.clone(), u))
            .collect(),
            functions: [Function {
                logical: "strip".into(),
                name: "demo-dev-strip".into(),
                arn: format!("arn:aws:lambda:eu-west-2:{ACCOUNT}:function:demo-dev-strip"),
                package: "lambda".into(),
                memory: 256,
                timeout: 30,
                environment: [
                    (
                        "DESTINATION_BUCKET".to_owned(),
                        format!("demo-destination-dev-{ACCOUNT}"),
                    ),
                    ("FAILURE_QUEUE_URL".to_owned(), queue_url.clone()),
                ]
                .into_iter()
                .collect(),
                role_name: "demo-dev-strip-role".into(),
                role_arn: format!("arn:aws:iam::{ACCOUNT}:role/demo-dev-strip-role"),
                allow: vec![
                    statement(&["s3:GetObject"], &[&format!("{source_arn}/*")]),
                    statement(&["s3:PutObject"], &[&format!("{destination_arn}/*")]),
                    statement(&["sqs:SendMessage"], &[&queue_arn]),
                ],
                triggers: vec![Trigger {
                    bucket: "source".into(),
                    events: vec![TriggerEvent::Created, TriggerEvent::Removed],
                    prefix: "uploads/".into(),
                    suffixes: vec![".jpg".into(), ".jpeg".into()],
                }],
                architecture: crate::stack::Architecture::X86_64,
                reserved_concurrency: Some(10),
                log_group: "/aws/lambda/demo-dev-strip".into(),
                log_retention_days: 14,
                async_invoke: Some(AsyncInvoke {
                    on_failure: Some("failures".into()),
                    retry_attempts: Some(1),
                    max_event_age_seconds: Some(3600),
                }),
                renditions: Vec::new(),
            }]
            .into_iter()
            .map(|f| (f.logical.clone(), f))
            .collect(),
            queues: [(
                "failures".to_owned(),
                Queue {
                    logical: "failures".into(),
                    name: "demo-dev-failures".into(),
                    arn: queue_arn,
                    url: queue_url,
                    retention_days: 14,
                    force_destroy: false,
                },
            )]
            .into_iter()
            .collect(),
        }
    }

    fn artifacts(stack: &ResolvedStack) -> Artifacts {
        let digest = hex::decode(BUNDLE_HEX).unwrap();
        [(
            "lambda".to_owned(),
            Artifact {
                bucket: crate::engine::state::state_bucket(&stack.account, &stack.region),
                key: format!("artifacts/lambda/{BUNDLE_HEX}.zip"),
                code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
            },
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn template_of_a_fixed_stack() {
        let stack = fixed_stack();
        let template = synthesize(&stack, &artifacts(&stack));
        assert!(template.unbuilt.is_empty());
        insta::assert_snapshot!(to_yaml(&template.body).unwrap());
    }

    /// Every logical id `DependsOn` names exists, and the dependencies have no cycle: what
    /// CloudFormation checks before it creates anything.
    fn check_dependencies(body: &Value) -> Result<(), String> {
        let Some(resources) = body["Resources"].as_object() else {
            return Ok(());
        };
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (id, resource) in resources {
            let deps: BTreeSet<&str> = resource["DependsOn"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for dep in &deps {
                if !resources.contains_key(*dep) {
                    return Err(format!(
                        "{id} depends on {dep}, which is not in the template"
                    ));
                }
            }
            edges.insert(id, deps);
        }
        // Kahn's algorithm: what is left once nothing more can be ordered is a cycle.
        let mut done: BTreeSet<&str> = BTreeSet::new();
        loop {
            let ready: Vec<&str> = edges
                .iter()
                .filter(|(id, deps)| !done.contains(*id) && deps.iter().all(|d| done.contains(d)))
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                break;
            }
            done.extend(ready);
        }
        let stuck: Vec<&str> = edges
            .keys()
            .filter(|id| !done.contains(*id))
            .copied()
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!("dependency cycle among {}", stuck.join(", ")))
        }
    }

    #[test]
    fn dependencies_are_acyclic_and_break_the_notification_cycle() {
        let stack = fixed_stack();
        let body = synthesize(&stack, &artifacts(&stack)).body;
        check_dependencies(&body).unwrap();
        let resources = &body["Resources"];
        // The bucket waits for the permission S3 checks when its notifications are written…
        assert_eq!(
            resources["SourceBucket"]["DependsOn"],
            json!(["StripSourcePermission"])
        );
        // …which names the bucket by its literal ARN, not by a reference to it.
        assert_eq!(
            resources["StripSourcePermission"]["Properties"]["SourceArn"],
            json!(format!("arn:aws:s3:::demo-source-dev-{ACCOUNT}"))
        );
        assert!(!body.to_string().contains("\"Ref\""));
        assert!(!body.to_string().contains("Fn::GetAtt"));
        // A cycle is found.
        let mut cyclic = body.clone();
        cyclic["Resources"]["StripSourcePermission"]["DependsOn"] = json!(["SourceBucket"]);
        assert!(check_dependencies(&cyclic).unwrap_err().contains("cycle"));
    }

    #[test]
    fn retained_buckets_and_their_policies_are_retained_on_delete_and_replace() {
        let stack = fixed_stack();
        let body = synthesize(&stack, &artifacts(&stack)).body;
        for id in ["DestinationBucket", "DestinationBucketPolicy"] {
            assert_eq!(
                body["Resources"][id]["DeletionPolicy"],
                json!("RetainExceptOnCreate"),
                "{id}"
            );
            assert_eq!(
                body["Resources"][id]["UpdateReplacePolicy"],
                json!("Retain"),
                "{id}"
            );
        }
        assert!(body["Resources"]["SourceBucket"]
            .get("DeletionPolicy")
            .is_none());
    }

    /// A resource carries the checkov skips of its kind that it fails, and only those: the
    /// fixed stack's function reserves concurrency, so CKV_AWS_115 is left to checkov (which
    /// counts it as passed); without a failures destination or environment variables, so
    /// are CKV_AWS_116 and CKV_AWS_173 (failed then: no reason holds).
    #[test]
    fn checkov_skips_are_written_where_the_resource_fails_the_check() {
        let skips = |body: &Value, id: &str| -> Vec<String> {
            body["Resources"][id]["Metadata"]["checkov"]["skip"]
                .as_array()
                .map(|skip| {
                    skip.iter()
                        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut stack = fixed_stack();
        let body = synthesize(&stack, &artifacts(&stack)).body;
        assert_eq!(
            skips(&body, "StripFunction"),
            ["CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"]
        );
        assert_eq!(skips(&body, "SourceBucket"), ["CKV_AWS_18"]);
        assert_eq!(skips(&body, "FailuresQueue"), ["CKV_AWS_27"]);
        assert_eq!(skips(&body, "StripLogGroup"), ["CKV_AWS_158"]);
        assert!(body["Resources"]["SourceBucketPolicy"]
            .get("Metadata")
            .is_none());
        assert!(body["Resources"]["StripRole"].get("Metadata").is_none());

        let function = stack.functions.get_mut("strip").unwrap();
        function.reserved_concurrency = None;
        function.async_invoke = None;
        function.environment.clear();
        let body = synthesize(&stack, &artifacts(&stack)).body;
        assert_eq!(
            skips(&body, "StripFunction"),
            ["CKV_AWS_117", "CKV_AWS_115"]
        );
    }

    #[test]
    fn secrets_stay_out_of_the_template() {
        let stack = fixed_stack();
        let template = synthesize(&stack, &artifacts(&stack));
        let text = template.body.to_string();
        assert!(
            !text.contains("hunter2"),
            "a SecureString value is in the template"
        );
        assert!(!text.contains("AWS::IAM::AccessKey"));
        let recorded = Recorded::of(&template.body);
        assert_eq!(
            recorded.secure_parameters,
            vec!["/demo/dev/api-token".to_owned()]
        );
        assert_eq!(
            recorded.access_keys,
            [("user-a".to_owned(), "demo-dev-user-a".to_owned())]
                .into_iter()
                .collect()
        );
        // What each logical id stands for comes back from the deployed template.
        assert_eq!(
            recorded.resources["SourceBucketPolicy"].to_string(),
            "bucket.source.policy"
        );
        assert_eq!(recorded.resources.len(), template.resources.len());
    }

    #[test]
    fn logical_ids_are_pascal_case_and_unique() {
        let mut stack = fixed_stack();
        // `/demo/dev/a-b` and `/demo/dev/a/b` would both be `ABParameter`.
        for name in ["/demo/dev/a-b", "/demo/dev/a/b"] {
            stack.parameters.insert(
                name.into(),
                Parameter {
                    name: name.into(),
                    value: "x".into(),
                    secure: false,
                    description: None,
                },
            );
        }
        let template = synthesize(&stack, &artifacts(&stack));
        let ids: Vec<&str> = template
            .resources
            .iter()
            .map(|e| e.logical_id.as_str())
            .collect();
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(ids, unique);
        assert!(ids
            .iter()
            .all(|id| id.chars().all(|c| c.is_ascii_alphanumeric())));
        assert!(ids.contains(&"SourceBucketParameter"));
        assert_eq!(
            ids.iter()
                .filter(|id| id.starts_with("ABParameter"))
                .count(),
            2
        );
        assert!(!ids.contains(&"ABParameter"));
        assert_eq!(pascal("/exif-pipeline/dev/x_y"), "ExifPipelineDevXY");
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_template() {
        let stack = fixed_stack();
        let body = synthesize(&stack, &artifacts(&stack)).body;
        assert_eq!(parse(&to_yaml(&body).unwrap()).unwrap(), body);
        assert_eq!(parse(&to_json(&body)).unwrap(), body);
    }

    #[test]
    fn a_bundle_key_gives_back_its_code_hash() {
        let stack = fixed_stack();
        let artifact = &artifacts(&stack)["lambda"];
        assert_eq!(
            code_sha256_of_key(&artifact.key),
            Some(artifact.code_sha256.clone())
        );
        assert_eq!(
            code_sha256_of_key("artifacts/lambda/not-built-yet.zip"),
            None
        );
    }

    #[test]
    fn an_unbuilt_bundle_gets_a_placeholder_and_a_warning() {
        let stack = fixed_stack();
        let template = synthesize(&stack, &Artifacts::new());
        assert_eq!(template.unbuilt, vec!["lambda".to_owned()]);
        assert_eq!(
            template.body["Resources"]["StripFunction"]["Properties"]["Code"]["S3Key"],
            json!("artifacts/lambda/not-built-yet.zip")
        );
    }

    // ------------------------------------------------ both engines, same infrastructure

    /// What the SDK engine would make of each template resource: its address, physical name
    /// and properties, in the SDK engine's vocabulary, as each kind reads its resource back
    /// ([`resources::from_cloudformation`], written from CloudFormation's property names
    /// independently of the synthesis, so a property it drops or mistranslates shows up as a
    /// difference). Companion resources (a bucket's policy) are read with their owner.
    fn sdk_view(stack: &ResolvedStack, body: &Value) -> BTreeMap<Address, (String, Props)> {
        let recorded = Recorded::of(body);
        let all = body["Resources"].as_object().unwrap();
        let mut view = BTreeMap::new();
        for (id, resource) in all {
            let resource_type = resource["Type"].as_str().unwrap();
            let address = &recorded.resources[id];
            if address.kind.cloudformation().map(|(t, _)| t) != Some(resource_type) {
                // A companion (a bucket's policy): read back with its owner.
                continue;
            }
            let read = resources::from_cloudformation(
                address.kind,
                &TemplateResource {
                    stack,
                    address,
                    properties: &resource["Properties"],
                    all,
                    access_keys: &recorded.access_keys,
                },
            );
            for (address, physical, props) in read {
                view.insert(address, (physical, props));
            }
        }
        view
    }

    fn assert_same_infrastructure(stack: &ResolvedStack, artifacts: &Artifacts) {
        let template = synthesize(stack, artifacts);
        let mut view = sdk_view(stack, &template.body);
        let recorded = Recorded::of(&template.body);
        for want in resources::desired_all(stack, artifacts) {
            if want.address.kind == Kind::Parameter
                && ParameterProps::of(&want.props).is_ok_and(|p| p.is_secure())
            {
                // Written by the SDK around the stack, and recorded for it.
                assert!(
                    recorded.secure_parameters.contains(&want.physical),
                    "{}: SecureString not recorded",
                    want.address
                );
                continue;
            }
            let (physical, props) = resources::cloudformation_comparable(&want);
            let Some((got_physical, got_props)) = view.remove(&want.address) else {
                panic!(
                    "{} ({}) has no counterpart in the template of env {}",
                    want.address, want.physical, stack.env
                );
            };
            // A bucket's notification entries, in one order on both sides.
            let sorted = |props: Props| match NotificationProps::of(&props) {
                Ok(mut notification) if want.address.kind == Kind::Notification => {
                    notification.entries.sort_by_key(Entry::sort_key);
                    notification.into_props()
                }
                _ => props,
            };
            let (props, got_props) = (sorted(props), sorted(got_props));
            assert_eq!(got_physical, physical, "{}: physical name", want.address);
            assert_eq!(
                got_props, props,
                "{}: properties in env {}",
                want.address, stack.env
            );
        }
        assert!(
            view.is_empty(),
            "template resources the SDK engine would not create: {:?}",
            view.keys()
        );
    }

    #[test]
    fn both_engines_describe_the_same_infrastructure_for_a_fixed_stack() {
        let stack = fixed_stack();
        assert_same_infrastructure(&stack, &artifacts(&stack));
        assert_same_infrastructure(&stack, &Artifacts::new());
    }

    #[test]
    fn both_engines_describe_the_same_infrastructure_for_the_pipeline_in_every_env() {
        for stack in crate::stack::pipeline_in_every_env() {
            assert_same_infrastructure(&stack, &artifacts(&stack));
        }
    }
}
