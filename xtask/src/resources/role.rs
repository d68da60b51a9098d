//! The function's IAM role: trust policy for lambda.amazonaws.com, one inline policy with
//! exactly the function's `allow` statements (least privilege: nothing is added), and tags.

use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::{
    iam_tags, policy_doc, statements_document, Address, ApplyCtx, Artifacts, Desired, Kind,
    Observed, Props, ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// Name of the inline policy on every role this tool manages.
pub const INLINE_POLICY_NAME: &str = "stripstack";

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .functions
        .values()
        .map(|function| {
            let mut props = Props::new();
            props.insert(
                "trust_policy".into(),
                policy_doc::normalize_policy(&lambda_trust_policy()),
            );
            props.insert(
                "policy".into(),
                policy_doc::normalize_policy(&statements_document(&function.allow)),
            );
            props.insert("tags".into(), json!(stack.tags));
            Desired {
                address: Address::new(Kind::Role, &function.logical),
                physical: function.role_name.clone(),
                props,
                depends_on: Vec::new(),
                retain: false,
            }
        })
        .collect()
}

pub fn lambda_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    })
}

pub async fn read(
    clients: &Clients,
    _ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let iam = &clients.iam;
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(None),
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while reading IAM role `{name}`")).into())
        }
    };
    let trust = match role.assume_role_policy_document() {
        Some(text) => {
            policy_doc::normalize_policy(&policy_doc::parse_policy(text).map_err(|e| {
                anyhow::anyhow!("IAM role `{name}` has an unreadable trust policy: {e}")
            })?)
        }
        None => Value::Null,
    };
    let inline = match iam
        .get_role_policy()
        .role_name(name)
        .policy_name(INLINE_POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => {
            policy_doc::normalize_policy(&policy_doc::parse_policy(out.policy_document()).map_err(
                |e| anyhow::anyhow!("IAM role `{name}` has an unreadable inline policy: {e}"),
            )?)
        }
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Value::Null,
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while reading the inline policy of IAM role `{name}`"),
            )
            .into())
        }
    };
    let mut props = Props::new();
    props.insert("trust_policy".into(), trust);
    props.insert("policy".into(), inline);
    props.insert(
        "tags".into(),
        iam_tags(role.tags().iter().map(|t| (t.key(), t.value()))),
    );
    Ok(Some(Observed {
        physical: name.to_owned(),
        props,
    }))
}

fn tag_list(props: &Props) -> anyhow::Result<Vec<aws_sdk_iam::types::Tag>> {
    super::string_map(props, "tags")
        .into_iter()
        .map(|(k, v)| Ok(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()?))
        .collect()
}

pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    match clients
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(want.props["trust_policy"].to_string())
        .set_tags(Some(tag_list(&want.props)?))
        .send()
        .await
    {
        Ok(_) => {
            let trust_written = Observed {
                physical: name.to_owned(),
                props: [
                    (
                        "trust_policy".to_owned(),
                        want.props["trust_policy"].clone(),
                    ),
                    ("tags".to_owned(), want.props["tags"].clone()),
                    ("policy".to_owned(), Value::Null),
                ]
                .into_iter()
                .collect(),
            };
            update(clients, ctx, want, Some(&trust_written)).await
        }
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {
            let have = read(clients, ctx, name).await?;
            update(clients, ctx, want, have.as_ref()).await
        }
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while creating IAM role `{name}`")).into())
        }
    }
}

pub async fn update(
    clients: &Clients,
    _ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let iam = &clients.iam;
    let name = want.physical.as_str();
    if super::differs(want, have, "trust_policy") {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(want.props["trust_policy"].to_string())
            .send()
            .await
            .with_aws_context(|| format!("while setting the trust policy of IAM role `{name}`"))?;
    }
    if super::differs(want, have, "policy") {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY_NAME)
            .policy_document(want.props["policy"].to_string())
            .send()
            .await
            .with_aws_context(|| format!("while setting the policy of IAM role `{name}`"))?;
    }
    if super::differs(want, have, "tags") {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(tag_list(&want.props)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM role `{name}`"))?;
    }
    Ok(())
}

pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    let iam = &clients.iam;
    match iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(INLINE_POLICY_NAME)
        .send()
        .await
    {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("NoSuchEntity") => {}
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while deleting the policy of IAM role `{name}`"),
            )
            .into())
        }
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting IAM role `{name}`")).into())
        }
    }
}

/// The `role` kind: a function's execution role.
pub(crate) struct Role;

impl ResourceKind for Role {
    const NAME: &'static str = "role";
    const SERVICE: &'static str = "iam";
    // The function names its role.
    const DELETED_AFTER: &'static [Kind] = &[Kind::Function];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = Some(("AWS::IAM::Role", "Role"));

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let roles: Vec<String> = stack
            .functions
            .values()
            .map(|f| f.role_arn.clone())
            .collect();
        let partition = crate::stack::partition(&stack.region);
        vec![
            Grant::new(
                "FunctionRoles",
                &[
                    // Reads of these roles only: the role, its tags and policies, its
                    // instance profiles.
                    "iam:Get*",
                    "iam:List*",
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:TagRole",
                    "iam:UntagRole",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:DetachRolePolicy",
                ],
                roles.clone(),
            ),
            // Deleting a role someone put in an instance profile: the profile is the resource.
            Grant::new(
                "RemoveFunctionRolesFromInstanceProfiles",
                &["iam:RemoveRoleFromInstanceProfile"],
                if roles.is_empty() {
                    Vec::new()
                } else {
                    vec![format!(
                        "arn:{partition}:iam::{}:instance-profile/*",
                        stack.account
                    )]
                },
            ),
        ]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
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
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> anyhow::Result<()> {
        // IAM is eventually consistent: right after this run creates the entity, or what it
        // refers to, IAM may answer NoSuchEntity for it. Creates and updates are safe to
        // repeat (a repeated create finds the entity and converges it).
        until_propagated("IAM to propagate", on_wait, super::iam_not_yet, || async {
            match have {
                None => create(clients, &ctx.read, want).await,
                Some(_) => update(clients, &ctx.read, want, have).await,
            }
        })
        .await
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
