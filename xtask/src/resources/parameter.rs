//! SSM parameters: type, value and tags. SecureString values are compared by SHA-256 and
//! never printed; the plaintext only ever exists in memory during a read or a write.

use std::collections::BTreeMap;

use super::cloudformation::Synthesis;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::grant::Grant;
use super::kind::{default_prop_kind, ResourceKind};
use super::props::{changed, TypedProps};
use super::{
    Address, ApplyCtx, Artifacts, Desired, Kind, Observed, PropKind, ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// A parameter's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParameterProps {
    /// Its type (`type`) and its value, or only the value's hash for a SecureString.
    #[serde(flatten)]
    pub value: ParameterValue,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for ParameterProps {}

/// A parameter's type and value, by the `type` property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum ParameterValue {
    String {
        value: String,
    },
    StringList {
        value: String,
    },
    /// Held only as the SHA-256 (hex) of its value: the plaintext is never in a plan or state
    /// (`PropKind::Sensitive`).
    SecureString {
        value_sha256: String,
    },
}

impl ParameterProps {
    pub(crate) fn is_secure(&self) -> bool {
        matches!(self.value, ParameterValue::SecureString { .. })
    }
}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .parameters
        .values()
        .map(|param| Desired {
            address: Address::new(Kind::Parameter, &param.name),
            physical: param.name.clone(),
            props: ParameterProps {
                value: if param.secure {
                    ParameterValue::SecureString {
                        value_sha256: sha256_hex(&param.value),
                    }
                } else {
                    ParameterValue::String {
                        value: param.value.clone(),
                    }
                },
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: Vec::new(),
            retain: false,
        })
        .collect()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let got = clients
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await;
    let parameter = match got {
        Ok(out) => match out.parameter {
            Some(p) => p,
            None => return Ok(None),
        },
        Err(err) if error_code(&err) == Some("ParameterNotFound") => return Ok(None),
        Err(err) => {
            return Err(
                AwsError::from_sdk(err, format!("while reading SSM parameter `{name}`")).into(),
            )
        }
    };
    let kind = parameter
        .r#type()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| "String".to_owned());
    let value = parameter.value().unwrap_or_default().to_owned();
    let value = match kind.as_str() {
        "SecureString" => ParameterValue::SecureString {
            value_sha256: sha256_hex(&value),
        },
        "StringList" => ParameterValue::StringList { value },
        _ => ParameterValue::String { value },
    };

    let tags = clients
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .with_aws_context(|| format!("while reading the tags of SSM parameter `{name}`"))?;
    let tags = tags
        .tag_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: ParameterProps { value, tags }.into_props(),
    }))
}

/// Writes the value (from the stack: the plan holds only a hash of secure values) and tags.
/// `have` holds only the tags the stack manages (`tags::managed_view`).
pub async fn put(
    clients: &Clients,
    want: &Desired,
    have: Option<&Observed>,
    param: &crate::stack::resolved::Parameter,
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let props = ParameterProps::of(&want.props)?;
    let observed = have.map(|h| ParameterProps::of(&h.props)).transpose()?;
    let value_changed = changed(&props.value, observed.as_ref().map(|h| &h.value));
    if value_changed {
        let kind = if param.secure {
            aws_sdk_ssm::types::ParameterType::SecureString
        } else {
            aws_sdk_ssm::types::ParameterType::String
        };
        clients
            .ssm
            .put_parameter()
            .name(name)
            .value(&param.value)
            .r#type(kind)
            .set_description(param.description.clone())
            .overwrite(true)
            .send()
            .await
            .with_aws_context(|| format!("while writing SSM parameter `{name}`"))?;
    }
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    if !tags.remove.is_empty() {
        clients
            .ssm
            .remove_tags_from_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging SSM parameter `{name}`"))?;
    }
    if !tags.set.is_empty() {
        let tags = tags
            .set
            .into_iter()
            .map(|(k, v)| Ok(aws_sdk_ssm::types::Tag::builder().key(k).value(v).build()?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        clients
            .ssm
            .add_tags_to_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tags(Some(tags))
            .send()
            .await
            .with_aws_context(|| format!("while tagging SSM parameter `{name}`"))?;
    }
    Ok(())
}

pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    match clients.ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("ParameterNotFound") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting SSM parameter `{name}`")).into())
        }
    }
}

/// The `parameter` kind: SSM parameters.
/// What the deployer does with a parameter: read, write, delete and tag it.
pub(crate) const PARAMETER_ACTIONS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:AddTagsToResource",
    "ssm:RemoveTagsFromResource",
    "ssm:ListTagsForResource",
];

/// A parameter's ARN: `…:parameter/a/b` for `/a/b`, and for `a/b` alike.
pub(crate) fn parameter_arn(stack: &ResolvedStack, name: &str) -> String {
    format!(
        "arn:{}:ssm:{}:{}:parameter/{}",
        crate::stack::partition(&stack.region),
        stack.region,
        stack.account,
        name.trim_start_matches('/')
    )
}

pub(crate) struct Parameter;

impl ResourceKind for Parameter {
    const NAME: &'static str = "parameter";
    const SERVICE: &'static str = "ssm";
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::SSM::Parameter", "Parameter"));

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        // `AWS::SSM::Parameter` tags are a map, not a list.
        let props: ParameterProps = serde_json::from_value(json!({
            "type": p["Type"],
            "value": p["Value"],
            "tags": p["Tags"],
        }))
        .expect("a String parameter");
        let props = props.into_props();
        let name = p["Name"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    /// A SecureString is kept out of the template: `AWS::SSM::Parameter` cannot create one;
    /// the SDK writes it around the stack.
    fn cloudformation_properties(
        want: &Desired,
        synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let props = ParameterProps::of(&want.props).ok()?;
        let (kind, value) = match &props.value {
            ParameterValue::String { value } => ("String", value),
            ParameterValue::StringList { value } => ("StringList", value),
            ParameterValue::SecureString { .. } => {
                synthesis.secure_parameters.push(want.physical.clone());
                return None;
            }
        };
        let description = synthesis
            .stack
            .parameters
            .get(&want.physical)
            .and_then(|p| p.description.clone());
        let mut properties = json!({
            "Name": want.physical,
            "Type": kind,
            "Value": value,
            // `AWS::SSM::Parameter` tags are a map, not a list.
            "Tags": props.tags,
        });
        if let Some(description) = description {
            properties["Description"] = json!(description);
        }
        Some(properties)
    }

    /// SSM names usually start with `/<stack>/<env>/`: dropped from the logical id, which
    /// stays the same in every environment.
    fn cloudformation_name<'a>(stack: &ResolvedStack, address: &'a Address) -> &'a str {
        address
            .name
            .strip_prefix(&format!("/{}/{}/", stack.stack, stack.env))
            .unwrap_or(&address.name)
    }

    const TAGGED: bool = true;

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        vec![Grant::new(
            "Parameters",
            PARAMETER_ACTIONS,
            stack
                .parameters
                .keys()
                .map(|name| parameter_arn(stack, name))
                .collect(),
        )]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    fn prop_kind(prop: &str) -> PropKind {
        match prop {
            // A SecureString is held only as its hash.
            "value_sha256" => PropKind::Sensitive,
            _ => default_prop_kind(prop),
        }
    }

    async fn read(
        clients: &Clients,
        ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
    ) -> anyhow::Result<Option<Observed>> {
        read(clients, ctx, physical).await
    }

    async fn converge(
        clients: &Clients,
        ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        _on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        let Some(param) = ctx.stack.parameters.get(&want.physical) else {
            anyhow::bail!("parameter `{}` is not in the stack", want.physical);
        };
        put(clients, want, have, param).await
    }

    async fn remove(
        clients: &Clients,
        _ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        delete(clients, physical).await?;
        Ok(Removal::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::operation as op;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock::{self, assert_all_used};

    /// Row 9: a tag key the stack set and dropped is removed (RemoveTagsFromResource), one an
    /// auto-tagger added is neither drift nor removed, and an unchanged value is not written.
    #[tokio::test]
    async fn a_dropped_tag_is_removed_and_a_foreign_one_left_alone() {
        let stack = crate::resources::fixtures::dev_stack();
        let want = desired(&stack).into_iter().next().expect("a parameter");
        let param = &stack.parameters[&want.physical];
        let have = crate::resources::fixtures::with_dropped_and_foreign_tags(&want);
        let name = want.physical.clone();
        let untag = mock!(aws_sdk_ssm::Client::remove_tags_from_resource)
            .match_requests(move |r| {
                r.resource_id() == Some(name.as_str()) && r.tag_keys() == ["team"]
            })
            .then_output(|| {
                op::remove_tags_from_resource::RemoveTagsFromResourceOutput::builder().build()
            });
        let clients = mock::clients(&[], &[], &[&untag]);
        put(&clients, &want, Some(&have), param)
            .await
            .expect("converged");
        assert_all_used(&[&untag]);
    }
}
