//! Rendering plans: Terraform-style text for people, JSON for machines.
//!
//! Both renderings keep the plan's order (sorted by address by `diff`) so that the same plan
//! always renders byte for byte the same, and neither ever shows a sensitive value: those are
//! hashes of secrets, and even a hash is not printed.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Style};
use serde::Serialize;
use serde_json::Value;

use super::{blocks, Action, Change, Plan, PropertyChange};
use crate::resources::policy_doc::canonical;
use crate::resources::Kind;

/// Shown instead of a sensitive value in text.
const SENSITIVE_TEXT: &str = "(sensitive value)";
/// Put instead of a sensitive value in JSON.
const SENSITIVE_JSON: &str = "(sensitive)";

const fn fg(color: AnsiColor) -> Style {
    Style::new().fg_color(Some(Color::Ansi(color)))
}

const GREEN: Style = fg(AnsiColor::Green);
const RED: Style = fg(AnsiColor::Red);
const YELLOW: Style = fg(AnsiColor::Yellow);
const BOLD: Style = Style::new().bold();

/// Paints text with ANSI styles, or leaves it alone when colour is off.
#[derive(Clone, Copy)]
pub(super) struct Painter {
    pub color: bool,
}

impl Painter {
    pub(super) fn paint(self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    /// A line's mark: `+`, `-`, `~`, or a space for an unchanged line.
    pub(super) fn mark(self, mark: Mark) -> String {
        match mark {
            Mark::Add => self.paint(GREEN, "+"),
            Mark::Remove => self.paint(RED, "-"),
            Mark::Change => self.paint(YELLOW, "~"),
            Mark::Same => " ".to_owned(),
        }
    }
}

/// What a line of the plan says about what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Add,
    Remove,
    Change,
    /// Unchanged, shown as the context of a change.
    Same,
}

/// The plan as Terraform-style text, ending with a newline (print it with `print!`):
///
/// ```text
///   + bucket.source (exif-pipeline-source-dev-123456789012)
///       + lifecycle "abort-incomplete-uploads" {
///           + abort_incomplete_multipart_days = 7
///         }
///       + versioning = true
///
///   ~ function.strip (exif-pipeline-strip-dev)
///       ~ memory = 128 -> 256
///
/// Plan: 1 to create, 1 to update, 0 to replace, 0 to delete; 7 unchanged.
/// ```
///
/// Values are shown as blocks (`blocks.rs`); unset values are left out. When the plan
/// changes who may do what, the security summary (`security.rs`) follows the changes.
/// Unchanged resources are only counted. `color` adds ANSI colours; the caller decides
/// (colour on a terminal only).
pub fn text(plan: &Plan, color: bool) -> String {
    let painter = Painter { color };
    let mut out = String::new();
    for change in &plan.changes {
        write_change(&mut out, change, painter);
        out.push('\n');
    }
    let security = super::security::summary(plan);
    if !security.is_empty() {
        out.push_str(&super::security::table(&security, painter));
        out.push('\n');
    }
    out.push_str(&summary_line(plan, painter));
    out.push('\n');
    out
}

fn write_change(out: &mut String, change: &Change, p: Painter) {
    // Symbols are right-aligned in three columns so that addresses line up under `-/+`.
    let symbol = match change.action {
        Action::Create => format!("  {}", p.paint(GREEN, "+")),
        Action::Update => format!("  {}", p.paint(YELLOW, "~")),
        Action::Replace => format!("{}/{}", p.paint(RED, "-"), p.paint(GREEN, "+")),
        Action::Delete => format!("  {}", p.paint(RED, "-")),
    };
    let address = p.paint(BOLD, &change.address.to_string());
    // `writeln!` into a String cannot fail.
    let _ = writeln!(out, "{symbol} {address} ({})", change.physical);
    let width = blocks::name_width(
        change
            .properties
            .iter()
            .map(|prop| (prop.name.as_str(), prop.old.as_ref(), prop.new.as_ref())),
    );
    for prop in &change.properties {
        write_property(out, prop, width, p);
    }
}

fn write_property(out: &mut String, prop: &PropertyChange, width: usize, p: Painter) {
    let forces = if prop.forces_replacement {
        p.paint(RED, "(forces replacement)")
    } else {
        String::new()
    };
    if prop.sensitive {
        let (mark, value) = match (&prop.old, &prop.new) {
            (None, Some(_)) => (Mark::Add, " = "),
            (Some(_), None) => (Mark::Remove, " = "),
            // That a secret changed is all that may be said about it.
            _ => (Mark::Change, " = "),
        };
        let name = format!("{:width$}", blocks::member_name(&prop.name));
        let forces = if forces.is_empty() {
            forces
        } else {
            format!(" {forces}")
        };
        let _ = writeln!(
            out,
            "      {} {name}{value}{SENSITIVE_TEXT}{forces}",
            p.mark(mark)
        );
        return;
    }
    let mut writer = blocks::Writer {
        out,
        painter: p,
        style: blocks::Style {
            whole_lists: prop.document,
        },
    };
    blocks::member(
        &mut writer,
        0,
        &prop.name,
        width,
        prop.old.as_ref(),
        prop.new.as_ref(),
        &forces,
    );
}

fn summary_line(plan: &Plan, p: Painter) -> String {
    if plan.is_empty() {
        let noun = if plan.unchanged == 1 {
            "resource"
        } else {
            "resources"
        };
        return format!(
            "{} {} {noun} up to date.",
            p.paint(BOLD, "No changes."),
            plan.unchanged
        );
    }
    let s = Summary::of(plan);
    format!(
        "{} {} to create, {} to update, {} to replace, {} to delete; {} unchanged.",
        p.paint(BOLD, "Plan:"),
        s.create,
        s.update,
        s.replace,
        s.delete,
        s.unchanged
    )
}

/// The plan as pretty JSON, without a trailing newline (print it with `println!`). Keys come
/// in a fixed order (struct fields in declaration order, maps sorted); absent values are
/// left out (`old` of a created property), so that a present JSON `null` stays
/// distinguishable. Values are the plan's own, not the text's blocks; `security` is the
/// security summary.
pub fn json(plan: &Plan) -> String {
    let security = super::security::summary(plan);
    let view = JsonPlan {
        stack: &plan.stack,
        env: &plan.env,
        summary: Summary::of(plan),
        security: JsonSecurity {
            broadening: super::security::broadens(&security),
            changes: security,
        },
        changes: plan.changes.iter().map(JsonChange::of).collect(),
    };
    // Only maps with non-string keys or failing `Serialize` impls make serde_json fail;
    // these types have neither.
    serde_json::to_string_pretty(&view).expect("a plan always serialises")
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    stack: &'a str,
    env: &'a str,
    summary: Summary,
    security: JsonSecurity,
    changes: Vec<JsonChange<'a>>,
}

/// The security summary (`security.rs`): whether the plan broadens access, and each grant
/// it adds or removes.
#[derive(Serialize)]
struct JsonSecurity {
    broadening: bool,
    changes: Vec<super::security::Row>,
}

#[derive(Serialize)]
struct Summary {
    create: usize,
    update: usize,
    replace: usize,
    delete: usize,
    unchanged: usize,
}

impl Summary {
    fn of(plan: &Plan) -> Self {
        Summary {
            create: plan.count(Action::Create),
            update: plan.count(Action::Update),
            replace: plan.count(Action::Replace),
            delete: plan.count(Action::Delete),
            unchanged: plan.unchanged,
        }
    }
}

#[derive(Serialize)]
struct JsonChange<'a> {
    /// `bucket.source`, as in the text rendering; `kind` and `name` repeat it split up.
    address: String,
    kind: Kind,
    name: &'a str,
    physical: &'a str,
    action: Action,
    properties: Vec<JsonProperty<'a>>,
}

impl<'a> JsonChange<'a> {
    fn of(change: &'a Change) -> Self {
        JsonChange {
            address: change.address.to_string(),
            kind: change.address.kind,
            name: &change.address.name,
            physical: &change.physical,
            action: change.action,
            properties: change.properties.iter().map(JsonProperty::of).collect(),
        }
    }
}

#[derive(Serialize)]
struct JsonProperty<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
    document: bool,
    sensitive: bool,
    forces_replacement: bool,
}

impl<'a> JsonProperty<'a> {
    fn of(prop: &'a PropertyChange) -> Self {
        let shown = |value: &Option<Value>| {
            value.as_ref().map(|v| {
                if prop.sensitive {
                    Value::from(SENSITIVE_JSON)
                } else {
                    canonical(v)
                }
            })
        };
        JsonProperty {
            name: &prop.name,
            old: shown(&prop.old),
            new: shown(&prop.new),
            document: prop.document,
            sensitive: prop.sensitive,
            forces_replacement: prop.forces_replacement,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Snapshots of whole rendered plans, built with `plan::diff` from hand-made states so
    //! that diff and rendering are covered together.

    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::{json, text};
    use crate::plan::{diff, Plan};
    use crate::resources::policy_doc::normalize_policy;
    use crate::resources::{Address, Desired, Kind, Observed, Props};

    const ACCOUNT: &str = "123456789012";
    /// Hashes of SecureString values: they must never appear in any rendering.
    const TOKEN_HASH: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    const OLD_TOKEN_HASH: &str = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";
    const LEGACY_HASH: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn props(value: Value) -> Props {
        match value {
            Value::Object(map) => map.into_iter().collect(),
            other => panic!("test props must be an object, got {other}"),
        }
    }

    fn resource(kind: Kind, name: &str, physical: &str, p: Value) -> Desired {
        Desired {
            address: Address::new(kind, name),
            physical: physical.into(),
            props: props(p),
            depends_on: Vec::new(),
            retain: false,
        }
    }

    fn read_policy(actions: &[&str]) -> Value {
        normalize_policy(&json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadWriteSource",
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": format!("arn:aws:s3:::exif-pipeline-source-dev-{ACCOUNT}/*")
                },
                {
                    "Sid": "ListSource",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": format!("arn:aws:s3:::exif-pipeline-source-dev-{ACCOUNT}")
                }
            ]
        }))
    }

    /// The exif pipeline's dev environment, as the stack declares it.
    fn stack() -> Vec<Desired> {
        let source = format!("exif-pipeline-source-dev-{ACCOUNT}");
        let destination = format!("exif-pipeline-destination-dev-{ACCOUNT}");
        let bucket = |name: &str, physical: &str, lifecycle: Value| {
            resource(
                Kind::Bucket,
                name,
                physical,
                json!({
                    "region": "eu-west-1",
                    "versioning": "Enabled",
                    "encryption": "AES256",
                    "public_access_block": {
                        "block_public_acls": true, "block_public_policy": true,
                        "ignore_public_acls": true, "restrict_public_buckets": true
                    },
                    "lifecycle": lifecycle,
                    "tags": {"stack": "exif-pipeline", "env": "dev"}
                }),
            )
        };
        vec![
            bucket("source", &source, json!([])),
            bucket(
                "destination",
                &destination,
                json!([{"id": "tiering", "days": 30, "storage_class": "INTELLIGENT_TIERING"}]),
            ),
            resource(
                Kind::Parameter,
                "source-bucket",
                "/exif-pipeline/dev/source-bucket",
                json!({"type": "String", "value": source}),
            ),
            resource(
                Kind::Parameter,
                "webhook-token",
                "/exif-pipeline/dev/webhook-token",
                json!({"type": "SecureString", "value_sha256": TOKEN_HASH}),
            ),
            resource(
                Kind::Policy,
                "user-a-rw",
                "exif-pipeline-user-a-rw-dev",
                json!({"document": read_policy(&["s3:GetObject", "s3:PutObject"])}),
            ),
            resource(
                Kind::User,
                "user-a",
                "exif-pipeline-user-a-dev",
                json!({
                    "managed_policies": [format!("arn:aws:iam::{ACCOUNT}:policy/exif-pipeline-user-a-rw-dev")],
                    "access_key": true
                }),
            ),
            resource(
                Kind::Role,
                "strip",
                "exif-pipeline-strip-dev",
                json!({"trust_policy": normalize_policy(&json!({
                    "Version": "2012-10-17",
                    "Statement": {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole"
                    }
                }))}),
            ),
            resource(
                Kind::Function,
                "strip",
                "exif-pipeline-strip-dev",
                json!({
                    "runtime": "provided.al2023",
                    "architecture": "arm64",
                    "memory_mb": 256,
                    "timeout_s": 30,
                    "environment": {"DESTINATION_BUCKET": destination, "RUST_LOG": "info"},
                    "code_sha256": "u0Nt0nHLIPu4Vpb3VPFE2GuCpvH2lUhF4PeiQ4A4KBk="
                }),
            ),
        ]
    }

    /// The cloud exactly as the stack wants it.
    fn in_sync(stack: &[Desired]) -> BTreeMap<Address, Option<Observed>> {
        stack
            .iter()
            .map(|d| {
                let have = Observed {
                    physical: d.physical.clone(),
                    props: d.props.clone(),
                };
                (d.address.clone(), Some(have))
            })
            .collect()
    }

    fn all_create() -> Plan {
        diff("exif-pipeline", "dev", &stack(), &BTreeMap::new(), &[])
    }

    fn no_changes() -> Plan {
        let stack = stack();
        diff("exif-pipeline", "dev", &stack, &in_sync(&stack), &[])
    }

    /// Drift and edits of every sort: a policy edited in the console, a bucket moved to
    /// another region with versioning suspended, a rotated secret, a function's memory
    /// changed, and two resources removed from the stack.
    fn mixed() -> Plan {
        let stack = stack();
        let mut have = in_sync(&stack);
        let mut edit = |kind: Kind, name: &str, prop: &str, value: Value| {
            let observed = have
                .get_mut(&Address::new(kind, name))
                .and_then(Option::as_mut)
                .expect("fixture resource exists");
            observed.props.insert(prop.into(), value);
        };
        edit(
            Kind::Policy,
            "user-a-rw",
            "document",
            read_policy(&["s3:GetObject"]),
        );
        edit(Kind::Bucket, "destination", "region", json!("us-east-1"));
        edit(
            Kind::Bucket,
            "destination",
            "versioning",
            json!("Suspended"),
        );
        edit(
            Kind::Parameter,
            "webhook-token",
            "value_sha256",
            json!(OLD_TOKEN_HASH),
        );
        edit(Kind::Function, "strip", "memory_mb", json!(128));
        edit(
            Kind::Function,
            "strip",
            "environment",
            json!({"DESTINATION_BUCKET": "typo", "RUST_LOG": "info"}),
        );
        let orphans = [
            (
                Address::new(Kind::Parameter, "legacy-token"),
                Observed {
                    physical: "/exif-pipeline/dev/legacy-token".into(),
                    props: props(json!({"type": "SecureString", "value_sha256": LEGACY_HASH})),
                },
            ),
            (
                Address::new(Kind::Bucket, "scratch"),
                Observed {
                    physical: format!("exif-pipeline-scratch-dev-{ACCOUNT}"),
                    props: props(json!({"region": "eu-west-1", "versioning": "Enabled"})),
                },
            ),
        ];
        diff("exif-pipeline", "dev", &stack, &have, &orphans)
    }

    fn assert_no_secret(rendered: &str) {
        for hash in [TOKEN_HASH, OLD_TOKEN_HASH, LEGACY_HASH] {
            assert!(
                !rendered.contains(hash),
                "a secret's hash leaked:\n{rendered}"
            );
        }
    }

    /// ESC made visible, so that colour snapshots can be read and reviewed.
    fn visible_escapes(s: &str) -> String {
        s.replace('\x1b', "\\e")
    }

    #[test]
    fn text_all_create() {
        let plan = all_create();
        let out = text(&plan, false);
        assert_no_secret(&out);
        insta::assert_snapshot!(out);
    }

    #[test]
    fn text_mixed() {
        let plan = mixed();
        let out = text(&plan, false);
        assert_no_secret(&out);
        assert!(!out.contains('\x1b'), "no colour when colour is off");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn text_mixed_color() {
        let plan = mixed();
        let out = text(&plan, true);
        assert_no_secret(&out);
        assert!(out.contains("\x1b[31m-\x1b[0m/\x1b[32m+\x1b[0m"));
        insta::assert_snapshot!(visible_escapes(&out));
    }

    #[test]
    fn text_no_changes() {
        let out = text(&no_changes(), false);
        assert_eq!(out, "No changes. 8 resources up to date.\n");
        let mut one = no_changes();
        one.unchanged = 1;
        assert_eq!(text(&one, false), "No changes. 1 resource up to date.\n");
        let coloured = text(&no_changes(), true);
        insta::assert_snapshot!(visible_escapes(&coloured));
    }

    #[test]
    fn colour_off_is_colour_on_without_escapes() {
        let plan = mixed();
        let mut stripped = text(&plan, true);
        // Remove every `ESC [ … m` sequence.
        while let Some(start) = stripped.find('\x1b') {
            let end = stripped[start..]
                .find('m')
                .map(|i| start + i + 1)
                .expect("escape sequences end with m");
            stripped.replace_range(start..end, "");
        }
        assert_eq!(stripped, text(&plan, false));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(text(&mixed(), false), text(&mixed(), false));
        assert_eq!(json(&mixed()), json(&mixed()));
    }

    #[test]
    fn json_mixed() {
        let plan = mixed();
        let out = json(&plan);
        assert_no_secret(&out);
        let parsed: Value = serde_json::from_str(&out).expect("json() prints valid JSON");
        assert_eq!(
            parsed["summary"],
            json!({"create": 0, "update": 3, "replace": 1, "delete": 2, "unchanged": 4})
        );
        insta::assert_snapshot!(out);
    }

    /// The bundle's hash the shipped stack's function is given in these tests.
    const BUNDLE_SHA256: &str = "u0Nt0nHLIPu4Vpb3VPFE2GuCpvH2lUhF4PeiQ4A4KBk=";

    /// `stacks/exif-pipeline.yaml` resolved in `env` for the placeholder account.
    fn shipped_stack(env: &str) -> crate::stack::ResolvedStack {
        crate::stack::pipeline_in_every_env()
            .into_iter()
            .find(|s| s.env == env)
            .expect("the shipped stack declares the env")
    }

    /// Every resource the kinds declare for `stack`, its function given a bundle.
    fn desired_of(stack: &crate::stack::ResolvedStack) -> Vec<Desired> {
        let artifacts = [(
            "lambda".to_owned(),
            crate::resources::Artifact {
                bucket: "state".into(),
                key: "artifacts/lambda/bundle.zip".into(),
                code_sha256: BUNDLE_SHA256.into(),
            },
        )]
        .into_iter()
        .collect();
        crate::resources::desired_all(stack, &artifacts)
    }

    /// The shipped stack's first deploy to `env`.
    fn shipped_from_empty(env: &str) -> Plan {
        let want = desired_of(&shipped_stack(env));
        diff("exif-pipeline", env, &want, &BTreeMap::new(), &[])
    }

    /// The shipped stack deployed to dev, then edited: user-a may also delete uploads, and
    /// the source bucket drops its TLS-only policy (its one statement, a Deny).
    fn shipped_policy_change() -> Plan {
        let deployed = desired_of(&shipped_stack("dev"));
        let mut stack = shipped_stack("dev");
        let user_a = stack.users.get_mut("user-a").expect("user-a");
        let objects = user_a
            .allow
            .iter_mut()
            .find(|s| s.actions.iter().any(|a| a == "s3:PutObject"))
            .expect("user-a writes objects");
        objects.actions.push("s3:DeleteObject".into());
        stack.buckets.get_mut("source").expect("source").tls_only = false;
        let want = desired_of(&stack);
        diff("exif-pipeline", "dev", &want, &in_sync(&deployed), &[])
    }

    #[test]
    fn text_shipped_from_empty() {
        insta::assert_snapshot!(text(&shipped_from_empty("dev"), false));
    }

    #[test]
    fn text_shipped_local_from_empty() {
        insta::assert_snapshot!(text(&shipped_from_empty("local"), false));
    }

    #[test]
    fn text_shipped_policy_change() {
        insta::assert_snapshot!(text(&shipped_policy_change(), false));
    }

    /// What `deploy --require-approval broadening` stops on: a first deploy (its users'
    /// and role's grants) and the policy change, not a plan without security changes.
    #[test]
    fn the_shipped_stack_broadens_access_from_empty_and_on_the_policy_change() {
        assert!(shipped_from_empty("dev").broadens_access());
        let change = shipped_policy_change();
        assert!(change.broadens_access());
        let parsed: Value = serde_json::from_str(&json(&change)).expect("valid JSON");
        assert_eq!(parsed["security"]["broadening"], json!(true));
        let deployed = desired_of(&shipped_stack("dev"));
        let mut code = deployed.clone();
        for resource in &mut code {
            if resource.address.kind == Kind::Function {
                resource
                    .props
                    .insert("code_sha256".into(), json!("bmV3IGNvZGU="));
            }
        }
        let code_only = diff("exif-pipeline", "dev", &code, &in_sync(&deployed), &[]);
        assert!(code_only.is_code_only() && !code_only.broadens_access());
        assert!(!text(&code_only, false).contains("Security changes"));
    }

    #[test]
    fn json_no_changes() {
        let out = json(&no_changes());
        let parsed: Value = serde_json::from_str(&out).expect("json() prints valid JSON");
        assert_eq!(parsed["changes"], json!([]));
        assert_eq!(parsed["summary"]["unchanged"], json!(8));
        // Printed with `println!` by the command: no newline of its own.
        assert!(out.ends_with('}'));
    }
}
