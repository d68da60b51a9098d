//! Customer-managed IAM policies (one per user, holding the user's `allow` statements):
//! the default version's document and tags.

use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::{
    iam_tags, policy_doc, statements_document, Address, ApplyCtx, Artifacts, Desired, Kind,
    Observed, Props, ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .users
        .values()
        .map(|user| {
            let mut props = Props::new();
            props.insert(
                "document".into(),
                policy_doc::normalize_policy(&statements_document(&user.allow)),
            );
            props.insert("tags".into(), json!(stack.tags));
            Desired {
                address: Address::new(Kind::Policy, &user.logical),
                physical: user.policy_name.clone(),
                props,
                depends_on: Vec::new(),
                retain: false,
            }
        })
        .collect()
}

pub fn arn(ctx: &ReadCtx, name: &str) -> String {
    let partition = crate::stack::partition(&ctx.region);
    format!("arn:{partition}:iam::{}:policy/{name}", ctx.account)
}

pub async fn read(
    clients: &Clients,
    ctx: &ReadCtx,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let arn = arn(ctx, name);
    let policy = match clients.iam.get_policy().policy_arn(&arn).send().await {
        Ok(out) => match out.policy {
            Some(p) => p,
            None => return Ok(None),
        },
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(None),
        Err(err) => {
            return Err(
                AwsError::from_sdk(err, format!("while reading IAM policy `{name}`")).into(),
            )
        }
    };
    let version_id = policy.default_version_id().unwrap_or("v1");
    let (version, tags) = tokio::join!(
        clients
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version_id)
            .send(),
        clients.iam.list_policy_tags().policy_arn(&arn).send(),
    );
    let version = version
        .with_aws_context(|| format!("while reading the document of IAM policy `{name}`"))?;
    let document = match version.policy_version().and_then(|v| v.document()) {
        Some(text) => {
            policy_doc::normalize_policy(&policy_doc::parse_policy(text).map_err(|e| {
                anyhow::anyhow!("IAM policy `{name}` has an unreadable document: {e}")
            })?)
        }
        None => Value::Null,
    };
    let tags =
        tags.with_aws_context(|| format!("while reading the tags of IAM policy `{name}`"))?;
    let mut props = Props::new();
    props.insert("document".into(), document);
    props.insert(
        "tags".into(),
        iam_tags(tags.tags().iter().map(|t| (t.key(), t.value()))),
    );
    Ok(Some(Observed {
        physical: name.to_owned(),
        props,
    }))
}

/// IAM keeps at most five versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let tags = tag_list(&want.props)?;
    match clients
        .iam
        .create_policy()
        .policy_name(name)
        .policy_document(want.props["document"].to_string())
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {
            let have = read(clients, ctx, name).await?;
            update(clients, ctx, want, have.as_ref()).await
        }
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while creating IAM policy `{name}`")).into())
        }
    }
}

fn tag_list(props: &Props) -> anyhow::Result<Vec<aws_sdk_iam::types::Tag>> {
    super::string_map(props, "tags")
        .into_iter()
        .map(|(k, v)| Ok(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()?))
        .collect()
}

/// A changed document becomes a new default version; the oldest non-default versions are
/// pruned first so the limit of five is never hit.
pub async fn update(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let arn = arn(ctx, name);
    if super::differs(want, have, "document") {
        let (count, old) = old_versions(clients, &arn, name).await?;
        // Room for the new version under the limit, oldest first.
        let excess = (count + 1).saturating_sub(MAX_POLICY_VERSIONS);
        for id in old.iter().take(excess) {
            delete_version(clients, &arn, name, id).await?;
        }
        clients
            .iam
            .create_policy_version()
            .policy_arn(&arn)
            .policy_document(want.props["document"].to_string())
            .set_as_default(true)
            .send()
            .await
            .with_aws_context(|| format!("while updating IAM policy `{name}`"))?;
    }
    if super::differs(want, have, "tags") {
        clients
            .iam
            .tag_policy()
            .policy_arn(&arn)
            .set_tags(Some(tag_list(&want.props)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM policy `{name}`"))?;
    }
    Ok(())
}

/// Detaches the policy from every user/role/group, removes old versions, deletes it.
pub async fn delete(clients: &Clients, ctx: &ReadCtx, name: &str) -> anyhow::Result<()> {
    let arn = arn(ctx, name);
    let iam = &clients.iam;
    let entities = match iam.list_entities_for_policy().policy_arn(&arn).send().await {
        Ok(out) => out,
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(()),
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while reading the attachments of IAM policy `{name}`"),
            )
            .into())
        }
    };
    for user in entities.policy_users().iter().filter_map(|u| u.user_name()) {
        iam.detach_user_policy()
            .user_name(user)
            .policy_arn(&arn)
            .send()
            .await
            .with_aws_context(|| format!("while detaching IAM policy `{name}` from `{user}`"))?;
    }
    for role in entities.policy_roles().iter().filter_map(|r| r.role_name()) {
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
            .with_aws_context(|| format!("while detaching IAM policy `{name}` from `{role}`"))?;
    }
    for id in old_versions(clients, &arn, name).await?.1 {
        delete_version(clients, &arn, name, &id).await?;
    }
    match iam.delete_policy().policy_arn(&arn).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting IAM policy `{name}`")).into())
        }
    }
}

/// How many versions the policy has, and the ids of those that are not the default, oldest
/// first.
async fn old_versions(
    clients: &Clients,
    arn: &str,
    name: &str,
) -> anyhow::Result<(usize, Vec<String>)> {
    let versions = clients
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .with_aws_context(|| format!("while listing versions of IAM policy `{name}`"))?;
    let mut old: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
    let ids = old
        .into_iter()
        .filter_map(|v| v.version_id().map(str::to_owned))
        .collect();
    Ok((versions.versions().len(), ids))
}

async fn delete_version(clients: &Clients, arn: &str, name: &str, id: &str) -> anyhow::Result<()> {
    clients
        .iam
        .delete_policy_version()
        .policy_arn(arn)
        .version_id(id)
        .send()
        .await
        .with_aws_context(|| format!("while deleting version {id} of IAM policy `{name}`"))?;
    Ok(())
}

/// The `policy` kind: a user's customer-managed IAM policy.
pub(crate) struct Policy;

impl ResourceKind for Policy {
    const NAME: &'static str = "policy";
    const SERVICE: &'static str = "iam";
    // A user's delete detaches its policies, as a policy's delete does: not both at once.
    const DELETED_AFTER: &'static [Kind] = &[Kind::User];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> =
        Some(("AWS::IAM::ManagedPolicy", "Policy"));

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let policies: Vec<String> = stack.users.values().map(|u| u.policy_arn.clone()).collect();
        let partition = crate::stack::partition(&stack.region);
        let entities = if policies.is_empty() {
            Vec::new()
        } else {
            ["user", "role", "group"]
                .map(|what| format!("arn:{partition}:iam::{}:{what}/*", stack.account))
                .to_vec()
        };
        vec![
            Grant::new(
                "UserPolicies",
                &[
                    // Reads of these policies only: versions, tags, what they are attached to.
                    "iam:Get*",
                    "iam:List*",
                    "iam:CreatePolicy",
                    "iam:DeletePolicy",
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicyVersion",
                    "iam:TagPolicy",
                    "iam:UntagPolicy",
                ],
                policies.clone(),
            ),
            // Deleting a policy detaches it from whatever it is attached to (someone may
            // have attached it to a role or a group too): only these policies.
            Grant::new(
                "DetachTheStackPolicies",
                &[
                    "iam:DetachUserPolicy",
                    "iam:DetachRolePolicy",
                    "iam:DetachGroupPolicy",
                ],
                entities,
            )
            .when(serde_json::json!({ "ArnEquals": { "iam:PolicyARN": policies } })),
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
        ctx: &ReadCtx,
        _address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        delete(clients, ctx, physical).await?;
        Ok(Removal::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns_follow_the_partition() {
        let ctx = |region: &str| ReadCtx {
            stack: "demo".into(),
            env: "dev".into(),
            account: "123456789012".into(),
            region: region.into(),
        };
        assert_eq!(
            arn(&ctx("eu-west-2"), "p"),
            "arn:aws:iam::123456789012:policy/p"
        );
        assert_eq!(
            arn(&ctx("cn-north-1"), "p"),
            "arn:aws-cn:iam::123456789012:policy/p"
        );
        assert_eq!(
            arn(&ctx("us-gov-west-1"), "p"),
            "arn:aws-us-gov:iam::123456789012:policy/p"
        );
    }
}
