//! IAM users: the attached managed policy, the access key and tags. A new key's secret goes
//! straight into an SSM SecureString and is never printed, logged or stored by us; IAM
//! cannot return it again, so a key whose secret parameter is missing counts as absent
//! (and is replaced by the next deploy).

use serde_json::json;

use super::grant::Grant;
use super::kind::ResourceKind;
use super::{
    differs, iam_tags, string_map, Address, ApplyCtx, Artifacts, Desired, Kind, Observed, Props,
    ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .users
        .values()
        .map(|user| {
            let mut props = Props::new();
            props.insert("attached_policies".into(), json!([user.policy_arn]));
            props.insert("access_key".into(), json!(user.access_key));
            props.insert("tags".into(), json!(stack.tags));
            Desired {
                address: Address::new(Kind::User, &user.logical),
                physical: user.name.clone(),
                props,
                depends_on: vec![Address::new(Kind::Policy, &user.logical)],
                retain: false,
            }
        })
        .collect()
}

/// SSM parameter holding the access key id of user `logical`.
pub fn key_id_parameter(ctx: &ReadCtx, logical: &str) -> String {
    format!("/{}/{}/users/{logical}/access-key-id", ctx.stack, ctx.env)
}

/// SSM SecureString holding the secret access key of user `logical`.
pub fn secret_parameter(ctx: &ReadCtx, logical: &str) -> String {
    format!(
        "/{}/{}/users/{logical}/secret-access-key",
        ctx.stack, ctx.env
    )
}

pub async fn read(
    clients: &Clients,
    ctx: &ReadCtx,
    logical: &str,
    name: &str,
) -> anyhow::Result<Option<Observed>> {
    let iam = &clients.iam;
    let user = match iam.get_user().user_name(name).send().await {
        Ok(out) => match out.user {
            Some(u) => u,
            None => return Ok(None),
        },
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(None),
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while reading IAM user `{name}`")).into())
        }
    };
    let secret_name = secret_parameter(ctx, logical);
    let (attached, keys, secret) = tokio::join!(
        iam.list_attached_user_policies().user_name(name).send(),
        iam.list_access_keys().user_name(name).send(),
        clients.ssm.get_parameter().name(&secret_name).send(),
    );
    let attached =
        attached.with_aws_context(|| format!("while reading the policies of IAM user `{name}`"))?;
    let keys =
        keys.with_aws_context(|| format!("while reading the access keys of IAM user `{name}`"))?;
    let secret_stored = match secret {
        Ok(_) => true,
        Err(err) if error_code(&err) == Some("ParameterNotFound") => false,
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while checking the secret parameter `{secret_name}`"),
            )
            .into())
        }
    };
    let mut arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    arns.sort_unstable();
    let mut props = Props::new();
    props.insert("attached_policies".into(), json!(arns));
    props.insert(
        "access_key".into(),
        json!(!keys.access_key_metadata().is_empty() && secret_stored),
    );
    props.insert(
        "tags".into(),
        iam_tags(user.tags().iter().map(|t| (t.key(), t.value()))),
    );
    Ok(Some(Observed {
        physical: name.to_owned(),
        props,
    }))
}

pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let tags = iam_tag_list(&want.props)?;
    match clients
        .iam
        .create_user()
        .user_name(name)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => {}
        // Created by an interrupted run: converge it like any other.
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {}
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while creating IAM user `{name}`")).into())
        }
    }
    let have = read(clients, ctx, &want.address.name, name).await?;
    update(clients, ctx, want, have.as_ref()).await
}

pub async fn update(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let iam = &clients.iam;
    let name = want.physical.as_str();
    if differs(want, have, "tags") {
        iam.tag_user()
            .user_name(name)
            .set_tags(Some(iam_tag_list(&want.props)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM user `{name}`"))?;
    }
    if differs(want, have, "attached_policies") {
        let wanted = arn_list(&want.props);
        let present = have.map(|h| arn_list(&h.props)).unwrap_or_default();
        for arn in wanted.iter().filter(|a| !present.contains(a)) {
            iam.attach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .with_aws_context(|| format!("while attaching `{arn}` to IAM user `{name}`"))?;
        }
        for arn in present.iter().filter(|a| !wanted.contains(a)) {
            detach(clients, name, arn).await?;
        }
    }
    if differs(want, have, "access_key") {
        delete_access_keys(clients, ctx, &want.address.name, name).await?;
        if want.props.get("access_key") == Some(&json!(true)) {
            create_access_key(clients, ctx, &want.address.name, name).await?;
        }
    }
    Ok(())
}

fn arn_list(props: &Props) -> Vec<String> {
    props
        .get("attached_policies")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn iam_tag_list(props: &Props) -> anyhow::Result<Vec<aws_sdk_iam::types::Tag>> {
    string_map(props, "tags")
        .into_iter()
        .map(|(k, v)| Ok(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()?))
        .collect()
}

async fn detach(clients: &Clients, name: &str, arn: &str) -> anyhow::Result<()> {
    match clients
        .iam
        .detach_user_policy()
        .user_name(name)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(()),
        Err(err) => Err(AwsError::from_sdk(
            err,
            format!("while detaching `{arn}` from IAM user `{name}`"),
        )
        .into()),
    }
}

/// Creates a key and stores it in SSM: id as String, secret as SecureString.
pub async fn create_access_key(
    clients: &Clients,
    ctx: &ReadCtx,
    logical: &str,
    name: &str,
) -> anyhow::Result<()> {
    let created = clients
        .iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .with_aws_context(|| format!("while creating an access key for IAM user `{name}`"))?;
    let Some(key) = created.access_key() else {
        anyhow::bail!("IAM returned no access key for user `{name}`");
    };
    let put = |param: String, value: &str, secure: bool| {
        let ssm = clients.ssm.clone();
        let value = value.to_owned();
        async move {
            ssm.put_parameter()
                .name(&param)
                .value(value)
                .r#type(if secure {
                    aws_sdk_ssm::types::ParameterType::SecureString
                } else {
                    aws_sdk_ssm::types::ParameterType::String
                })
                .overwrite(true)
                .send()
                .await
                .with_aws_context(|| format!("while storing `{param}`"))
        }
    };
    put(key_id_parameter(ctx, logical), key.access_key_id(), false).await?;
    put(
        secret_parameter(ctx, logical),
        key.secret_access_key(),
        true,
    )
    .await?;
    Ok(())
}

/// Deletes every access key of the user and the parameters holding one. The parameters go
/// even when the user is already gone (a run that died between the two left them).
pub async fn delete_access_keys(
    clients: &Clients,
    ctx: &ReadCtx,
    logical: &str,
    name: &str,
) -> anyhow::Result<()> {
    let keys = async {
        let keys = match clients.iam.list_access_keys().user_name(name).send().await {
            Ok(out) => out,
            Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(()),
            Err(err) => {
                return Err(AwsError::from_sdk(
                    err,
                    format!("while listing the access keys of IAM user `{name}`"),
                )
                .into())
            }
        };
        // One after the other: a user holds two keys at most.
        for key in keys.access_key_metadata() {
            let Some(id) = key.access_key_id() else {
                continue;
            };
            clients
                .iam
                .delete_access_key()
                .user_name(name)
                .access_key_id(id)
                .send()
                .await
                .with_aws_context(|| {
                    format!("while deleting an access key of IAM user `{name}`")
                })?;
        }
        Ok(())
    };
    let (secret, key_id) = (
        secret_parameter(ctx, logical),
        key_id_parameter(ctx, logical),
    );
    tokio::try_join!(
        keys,
        super::parameter::delete(clients, &secret),
        super::parameter::delete(clients, &key_id),
    )?;
    Ok(())
}

/// Detaches every managed policy; `false` when the user does not exist.
async fn detach_all(clients: &Clients, name: &str) -> anyhow::Result<bool> {
    let attached = match clients
        .iam
        .list_attached_user_policies()
        .user_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(false),
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while reading the policies of IAM user `{name}`"),
            )
            .into())
        }
    };
    for arn in attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
    {
        detach(clients, name, arn).await?;
    }
    Ok(true)
}

/// Keys (with their parameters) and policy attachments are independent: removed side by
/// side, then the user.
pub async fn delete(
    clients: &Clients,
    ctx: &ReadCtx,
    logical: &str,
    name: &str,
) -> anyhow::Result<()> {
    let (_, exists) = tokio::try_join!(
        delete_access_keys(clients, ctx, logical, name),
        detach_all(clients, name)
    )?;
    if !exists {
        return Ok(());
    }
    match clients.iam.delete_user().user_name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(()),
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while deleting IAM user `{name}`")).into())
        }
    }
}

/// The `user` kind: IAM users, their policy attachments and access keys.
pub(crate) struct User;

impl ResourceKind for User {
    const NAME: &'static str = "user";
    const SERVICE: &'static str = "iam";
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = Some(("AWS::IAM::User", "User"));

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let users = || stack.users.values();
        let partition = crate::stack::partition(&stack.region);
        let any = |what: &str| vec![format!("arn:{partition}:iam::{}:{what}/*", stack.account)];
        let some_users = !stack.users.is_empty();
        vec![
            Grant::new(
                "Users",
                &[
                    // Reads of these users only: the user, its tags, keys, policies, and
                    // what `destroy` must remove first (login profile, MFA, SSH keys, …).
                    "iam:Get*",
                    "iam:List*",
                    "iam:CreateUser",
                    "iam:DeleteUser",
                    "iam:TagUser",
                    "iam:UntagUser",
                    "iam:CreateAccessKey",
                    "iam:DeleteAccessKey",
                    "iam:DetachUserPolicy",
                    // What `destroy` removes before DeleteUser when someone added it.
                    "iam:DeleteLoginProfile",
                    "iam:DeleteSigningCertificate",
                    "iam:DeleteSSHPublicKey",
                    "iam:DeleteServiceSpecificCredential",
                    "iam:DeactivateMFADevice",
                    "iam:DeleteUserPolicy",
                ],
                users().map(|u| u.arn.clone()).collect(),
            ),
            // Each user gets its own policy, and no other.
            Grant::new(
                "AttachOnlyTheStackPolicies",
                &["iam:AttachUserPolicy"],
                users().map(|u| u.arn.clone()).collect(),
            )
            .when(serde_json::json!({
                "ArnEquals": {
                    "iam:PolicyARN": users().map(|u| u.policy_arn.clone()).collect::<Vec<_>>()
                }
            })),
            // A user's access key secret, kept in a SecureString of its own.
            Grant::new(
                "UserSecrets",
                super::parameter::PARAMETER_ACTIONS,
                users()
                    .filter(|u| u.access_key)
                    .map(|u| super::parameter::parameter_arn(stack, &u.secret_parameter))
                    .collect(),
            ),
            // Deleting a user someone added to a group, or gave a virtual MFA device: the
            // group and the device are the resources of these two actions.
            Grant::new(
                "RemoveUsersFromGroups",
                &["iam:RemoveUserFromGroup"],
                if some_users { any("group") } else { Vec::new() },
            ),
            Grant::new(
                "DeleteTheirMfaDevices",
                &["iam:DeleteVirtualMFADevice"],
                if some_users { any("mfa") } else { Vec::new() },
            ),
        ]
    }

    fn desired(stack: &ResolvedStack, _artifacts: &Artifacts) -> Vec<Desired> {
        desired(stack)
    }

    async fn read(
        clients: &Clients,
        ctx: &ReadCtx,
        address: &Address,
        physical: &str,
    ) -> anyhow::Result<Option<Observed>> {
        read(clients, ctx, &address.name, physical).await
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
        address: &Address,
        physical: &str,
        _settings: &Settings,
    ) -> anyhow::Result<Removal> {
        delete(clients, ctx, &address.name, physical).await?;
        Ok(Removal::Deleted)
    }
}
