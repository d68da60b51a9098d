//! Change sets: create one for a synthesised template, wait until CloudFormation has
//! computed it, read its changes and show them as a [`Plan`] in the SDK engine's style;
//! execute or delete it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_cloudformation::types as t;
use serde_json::{json, Value};

use super::template::{Recorded, Template};
use crate::aws::{Clients, SdkResultExt};
use crate::plan::{Action, Change, Plan, PropertyChange};
use crate::resources::{Address, Kind};

/// How long CloudFormation may take to compute a change set.
const COMPUTE_TIMEOUT: Duration = Duration::from_secs(600);

/// A change set as CloudFormation reported it, with only what the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove` (also `Import`, `Dynamic`).
    pub action: String,
    pub logical_id: String,
    pub physical: Option<String>,
    pub resource_type: String,
    /// `True`, `False` or `Conditional`, for `Modify`.
    pub replacement: Option<String>,
    pub details: Vec<Detail>,
}

/// One reason a resource changes: a property (`Properties` + its name) or an attribute
/// (`Tags`, `DeletionPolicy`, `Metadata`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub attribute: String,
    pub name: Option<String>,
    /// `Never`, `Conditionally` or `Always`.
    pub requires_recreation: Option<String>,
}

/// A change set being created or ready.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub id: String,
    pub stack_id: String,
    pub kind: t::ChangeSetType,
    /// `None`: CloudFormation found nothing to change.
    pub changes: Option<Vec<ResourceChange>>,
}

/// Creates a change set for the template and waits until it is computed.
pub async fn create(
    clients: &Clients,
    stack_name: &str,
    kind: t::ChangeSetType,
    template: &super::TemplateSource,
    tags: &BTreeMap<String, String>,
) -> anyhow::Result<ChangeSet> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let name = format!("stripstack-{seconds}");
    let tags = tags
        .iter()
        .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
        .collect::<Vec<_>>();
    let request = clients
        .cloudformation
        .create_change_set()
        .stack_name(stack_name)
        .change_set_name(&name)
        .change_set_type(kind.clone());
    let request = match template {
        super::TemplateSource::Body(body) => request.template_body(body),
        super::TemplateSource::Url(url) => request.template_url(url),
    };
    let created = request
        // Every IAM resource has a name the stack file chose.
        .capabilities(t::Capability::CapabilityNamedIam)
        // Stack tags: CloudFormation also puts them on resources whose type has no `Tags`.
        .set_tags(Some(tags))
        .description("cargo xtask deploy --engine cloudformation")
        .send()
        .await
        .with_aws_context(|| format!("while creating a change set for stack `{stack_name}`"))?;
    let (Some(id), Some(stack_id)) = (created.id, created.stack_id) else {
        anyhow::bail!("CloudFormation created a change set for `{stack_name}` but gave no id");
    };
    let changes = wait_computed(clients, &id).await?;
    Ok(ChangeSet {
        id,
        stack_id,
        kind,
        changes,
    })
}

/// `None` when the change set holds no change (CloudFormation then fails it).
async fn wait_computed(clients: &Clients, id: &str) -> anyhow::Result<Option<Vec<ResourceChange>>> {
    use t::ChangeSetStatus as S;
    let started = Instant::now();
    let mut delay = Duration::from_millis(300);
    loop {
        let first = describe_page(clients, id, None).await?;
        match first.status() {
            Some(S::CreateComplete) => return Ok(Some(all_changes(clients, id, first).await?)),
            Some(S::Failed) => {
                let reason = first.status_reason().unwrap_or_default();
                if is_no_change(reason) {
                    return Ok(None);
                }
                anyhow::bail!("CloudFormation could not compute the change set: {reason}");
            }
            Some(S::CreatePending | S::CreateInProgress) | None => {}
            Some(other) => anyhow::bail!("the change set is {}", other.as_str()),
        }
        if started.elapsed() > COMPUTE_TIMEOUT {
            anyhow::bail!(
                "CloudFormation did not compute the change set within {COMPUTE_TIMEOUT:?}"
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

/// The reasons CloudFormation gives a change set that changes nothing.
fn is_no_change(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

async fn describe_page(
    clients: &Clients,
    id: &str,
    token: Option<String>,
) -> anyhow::Result<aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput>
{
    clients
        .cloudformation
        .describe_change_set()
        .change_set_name(id)
        .set_next_token(token)
        .send()
        .await
        .with_aws_context(|| format!("while reading change set {id}"))
        .map_err(Into::into)
}

async fn all_changes(
    clients: &Clients,
    id: &str,
    first: aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
) -> anyhow::Result<Vec<ResourceChange>> {
    let mut changes: Vec<ResourceChange> = first.changes().iter().filter_map(convert).collect();
    let mut token = first.next_token().map(str::to_owned);
    while let Some(next) = token.take() {
        let page = describe_page(clients, id, Some(next)).await?;
        changes.extend(page.changes().iter().filter_map(convert));
        token = page.next_token().map(str::to_owned);
    }
    Ok(changes)
}

fn convert(change: &t::Change) -> Option<ResourceChange> {
    let rc = change.resource_change()?;
    Some(ResourceChange {
        action: rc.action()?.as_str().to_owned(),
        logical_id: rc.logical_resource_id()?.to_owned(),
        physical: rc
            .physical_resource_id()
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        resource_type: rc.resource_type().unwrap_or_default().to_owned(),
        replacement: rc.replacement().map(|r| r.as_str().to_owned()),
        details: rc
            .details()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                Some(Detail {
                    attribute: target.attribute()?.as_str().to_owned(),
                    name: target.name().map(str::to_owned),
                    requires_recreation: target
                        .requires_recreation()
                        .map(|r| r.as_str().to_owned()),
                })
            })
            .collect(),
    })
}

pub async fn execute(clients: &Clients, change_set: &ChangeSet) -> anyhow::Result<()> {
    clients
        .cloudformation
        .execute_change_set()
        .change_set_name(&change_set.id)
        .send()
        .await
        .aws_context("while executing the change set")?;
    Ok(())
}

/// Deletes the change set and, when it was the one creating the stack, the empty stack
/// (`REVIEW_IN_PROGRESS`) CloudFormation made to hold it.
pub async fn discard(clients: &Clients, change_set: &ChangeSet) -> anyhow::Result<()> {
    clients
        .cloudformation
        .delete_change_set()
        .change_set_name(&change_set.id)
        .send()
        .await
        .aws_context("while deleting the change set")?;
    if change_set.kind == t::ChangeSetType::Create {
        clients
            .cloudformation
            .delete_stack()
            .stack_name(&change_set.stack_id)
            .send()
            .await
            .aws_context("while deleting the empty stack the change set created")
            .context("nothing was deployed")?;
        // Gone before this returns: a deploy right after must not find it still deleting.
        let started = Instant::now();
        while started.elapsed() < COMPUTE_TIMEOUT {
            match super::events::describe_stack(clients, &change_set.stack_id).await? {
                Some(info) if info.status != "DELETE_COMPLETE" => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// The change set as a plan: the action, the SDK engine's address of each resource (the
/// logical id when a resource has none), the physical name, whether it is replaced, and the
/// properties that change with their values from the deployed and the new template.
///
/// `Replacement: Conditional` counts as a replacement: it may happen, and a plan must not
/// promise an in-place update it cannot guarantee. A property whose change requires
/// recreation `Always` or `Conditionally` is marked as forcing the replacement.
pub fn to_plan(
    stack: &str,
    env: &str,
    changes: &[ResourceChange],
    new: &Template,
    deployed: Option<&Value>,
) -> anyhow::Result<Plan> {
    let recorded = deployed.map(Recorded::of).unwrap_or_default();
    let mut out = Vec::new();
    let mut touched = 0;
    for change in changes {
        let address = address_of(change, new, &recorded)?;
        let new_resource = new.body["Resources"].get(&change.logical_id);
        let old_resource = deployed.and_then(|d| d["Resources"].get(&change.logical_id));
        let physical = change
            .physical
            .clone()
            .or_else(|| new.entry(&change.logical_id).map(|e| e.physical.clone()))
            .unwrap_or_else(|| "(named by CloudFormation)".to_owned());
        let (action, properties) = match change.action.as_str() {
            "Add" => (Action::Create, all_properties(new_resource, false)),
            "Remove" => (Action::Delete, all_properties(old_resource, true)),
            _ => {
                let replaced =
                    matches!(change.replacement.as_deref(), Some("True" | "Conditional"));
                let action = if replaced {
                    Action::Replace
                } else {
                    Action::Update
                };
                (
                    action,
                    changed_properties(change, old_resource, new_resource, replaced),
                )
            }
        };
        if new_resource.is_some() {
            touched += 1;
        }
        out.push(Change {
            address,
            physical,
            action,
            properties,
        });
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(Plan {
        stack: stack.to_owned(),
        env: env.to_owned(),
        changes: out,
        unchanged: new.resources.len().saturating_sub(touched),
    })
}

/// Every resource of `new` to be created: the plan of a stack that does not exist yet.
pub fn create_all(stack: &str, env: &str, new: &Template) -> anyhow::Result<Plan> {
    let changes: Vec<ResourceChange> = new
        .resources
        .iter()
        .map(|entry| ResourceChange {
            action: "Add".to_owned(),
            logical_id: entry.logical_id.clone(),
            physical: None,
            resource_type: entry.resource_type.to_owned(),
            replacement: None,
            details: Vec::new(),
        })
        .collect();
    to_plan(stack, env, &changes, new, None)
}

fn address_of(
    change: &ResourceChange,
    new: &Template,
    recorded: &Recorded,
) -> anyhow::Result<Address> {
    if let Some(entry) = new.entry(&change.logical_id) {
        return Ok(entry.address.clone());
    }
    if let Some(address) = recorded.resources.get(&change.logical_id) {
        return Ok(address.clone());
    }
    // A resource the deployed template does not describe (it was not made by this tool).
    let kind = match change.resource_type.as_str() {
        // A bucket's TLS-only policy is part of the bucket in the SDK engine.
        "AWS::S3::BucketPolicy" => Some(Kind::Bucket),
        other => Kind::of_cloudformation_type(other),
    };
    let Some(kind) = kind else {
        anyhow::bail!(
            "the stack holds `{}`, a resource of type {} that stripstack never creates: \
             was the stack made by another tool?",
            change.logical_id,
            change.resource_type
        );
    };
    Ok(Address::new(kind, &change.logical_id))
}

/// Policy documents are shown whole, pretty-printed: judging one needs every statement.
fn is_policy(name: &str) -> bool {
    name.ends_with("PolicyDocument") || name == "Policies"
}

/// A changed nested value (configuration, list) is shown as a diff; a new or removed one
/// on one line.
fn is_nested(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Object(_) | Value::Array(_)))
}

fn all_properties(resource: Option<&Value>, old: bool) -> Vec<PropertyChange> {
    let Some(props) = resource.and_then(|r| r["Properties"].as_object()) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, value)| PropertyChange {
            name: name.clone(),
            old: old.then(|| value.clone()),
            new: (!old).then(|| value.clone()),
            document: is_policy(name),
            sensitive: false,
            forces_replacement: false,
        })
        .collect()
}

fn changed_properties(
    change: &ResourceChange,
    old: Option<&Value>,
    new: Option<&Value>,
    replaced: bool,
) -> Vec<PropertyChange> {
    let mut out: Vec<PropertyChange> = Vec::new();
    for detail in &change.details {
        // A property is under `Properties`; any other attribute (`DeletionPolicy`, `Tags` of
        // the stack, …) sits on the resource itself.
        let (name, is_property) = match (detail.attribute.as_str(), &detail.name) {
            ("Properties", Some(name)) => (name.clone(), true),
            (attribute, _) => (attribute.to_owned(), false),
        };
        if out.iter().any(|p| p.name == name) {
            continue;
        }
        let lookup = |resource: &Value| {
            let holder = if is_property {
                &resource["Properties"]
            } else {
                resource
            };
            holder.get(&name).cloned()
        };
        let before = old.and_then(lookup);
        let mut after = new.and_then(lookup);
        if before == after {
            // Same text, different meaning: a stack tag or a referenced value changed.
            after = Some(json!("(re-evaluated by CloudFormation)"));
        }
        let forces = replaced
            && matches!(
                detail.requires_recreation.as_deref(),
                Some("Always" | "Conditionally")
            );
        out.push(PropertyChange {
            document: is_policy(&name) || is_nested(before.as_ref()) || is_nested(after.as_ref()),
            name,
            old: before,
            new: after,
            sensitive: false,
            forces_replacement: forces,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfn::template::synthesize;
    use crate::cfn::template::tests::fixed_stack;

    fn change(
        action: &str,
        logical_id: &str,
        replacement: Option<&str>,
        details: &[(&str, Option<&str>, &str)],
    ) -> ResourceChange {
        ResourceChange {
            action: action.to_owned(),
            logical_id: logical_id.to_owned(),
            physical: (action != "Add").then(|| format!("physical-of-{logical_id}")),
            resource_type: String::new(),
            replacement: replacement.map(str::to_owned),
            details: details
                .iter()
                .map(|(attribute, name, recreation)| Detail {
                    attribute: (*attribute).to_owned(),
                    name: name.map(str::to_owned),
                    requires_recreation: Some((*recreation).to_owned()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_change_set_becomes_a_plan_in_the_sdk_engines_terms() {
        let stack = fixed_stack();
        let old = synthesize(&stack, &Default::default());
        let mut bigger = stack.clone();
        if let Some(f) = bigger.functions.get_mut("strip") {
            f.memory = 512;
        }
        let new = synthesize(&bigger, &Default::default());
        let mut deployed = old.body.clone();
        // A resource the new template no longer has.
        deployed["Resources"]["GoneParameter"] = json!({
            "Type": "AWS::SSM::Parameter",
            "Properties": { "Name": "/demo/dev/gone", "Type": "String", "Value": "old" }
        });
        deployed["Metadata"]["Stripstack"]["Resources"]["GoneParameter"] =
            json!("parameter./demo/dev/gone");
        let changes = vec![
            change(
                "Modify",
                "StripFunction",
                Some("False"),
                &[("Properties", Some("MemorySize"), "Never")],
            ),
            change("Remove", "GoneParameter", None, &[]),
            change(
                "Modify",
                "SourceBucket",
                Some("True"),
                &[
                    ("Properties", Some("BucketName"), "Always"),
                    ("Tags", None, "Never"),
                ],
            ),
        ];
        let plan = to_plan("demo", "dev", &changes, &new, Some(&deployed)).unwrap();
        let summary: Vec<(Action, String, String)> = plan
            .changes
            .iter()
            .map(|c| (c.action, c.address.to_string(), c.physical.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Action::Replace,
                    "bucket.source".into(),
                    "physical-of-SourceBucket".into()
                ),
                (
                    Action::Delete,
                    "parameter./demo/dev/gone".into(),
                    "physical-of-GoneParameter".into()
                ),
                (
                    Action::Update,
                    "function.strip".into(),
                    "physical-of-StripFunction".into()
                ),
            ]
        );
        let memory = &plan.changes[2].properties;
        assert_eq!(memory.len(), 1);
        assert_eq!(
            (memory[0].old.clone(), memory[0].new.clone()),
            (Some(json!(256)), Some(json!(512)))
        );
        assert!(!memory[0].forces_replacement);
        let bucket = &plan.changes[0].properties;
        assert!(bucket
            .iter()
            .any(|p| p.name == "BucketName" && p.forces_replacement));
        // Stack tags changed: the resource's own text did not.
        assert!(bucket
            .iter()
            .any(|p| p.name == "Tags" && p.new == Some(json!("(re-evaluated by CloudFormation)"))));
        assert_eq!(plan.unchanged, new.resources.len() - 2);
        let text = crate::plan::render::text(&plan, false);
        assert!(
            text.contains("~ function.strip (physical-of-StripFunction)"),
            "{text}"
        );
        assert!(text.contains("~ MemorySize = 256 -> 512"), "{text}");
        assert!(text.contains("- parameter./demo/dev/gone"), "{text}");
    }

    #[test]
    fn creating_a_stack_creates_every_resource_with_its_properties() {
        let new = synthesize(&fixed_stack(), &Default::default());
        let plan = create_all("demo", "dev", &new).unwrap();
        assert_eq!(plan.count(Action::Create), new.resources.len());
        assert_eq!(plan.unchanged, 0);
        let bucket = plan
            .changes
            .iter()
            .find(|c| c.address.to_string() == "bucket.source")
            .unwrap();
        assert_eq!(bucket.physical, "demo-source-dev-123456789012");
        assert!(bucket
            .properties
            .iter()
            .any(|p| p.name == "BucketName" && p.new.is_some()));
    }

    #[test]
    fn a_resource_of_a_foreign_type_is_refused() {
        let new = synthesize(&fixed_stack(), &Default::default());
        let mut odd = change("Remove", "Topic", None, &[]);
        odd.resource_type = "AWS::SNS::Topic".into();
        let err = to_plan("demo", "dev", &[odd], &new, None).unwrap_err();
        assert!(err.to_string().contains("AWS::SNS::Topic"), "{err}");
    }

    #[test]
    fn no_change_reasons_are_recognised() {
        assert!(is_no_change(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(is_no_change("No updates are to be performed."));
        assert!(!is_no_change("Template format error"));
    }
}
