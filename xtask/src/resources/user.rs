//! IAM users: the attached managed policy, the access key and tags. A new key's secret goes
//! straight into an SSM SecureString and is never printed, logged or stored by us; IAM
//! cannot return it again, so a key whose secret parameter is missing counts as absent
//! (and is replaced by the next deploy).

use std::collections::BTreeMap;

use super::cloudformation::{tag_list, Synthesis};
use serde::{Deserialize, Serialize};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::{changed, TypedProps};
use super::{Address, ApplyCtx, Artifacts, Desired, Kind, Observed, ReadCtx, Removal, Settings};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// A user's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserProps {
    /// The ARNs of its managed policies, sorted.
    pub attached_policies: Vec<String>,
    /// Whether it has an access key whose secret is in SSM.
    pub access_key: bool,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for UserProps {}

/// The one property of a user the SDK keeps beside a CloudFormation stack (`cfn::sdk`):
/// whether it has an access key, as [`UserProps::access_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AccessKeyProps {
    pub access_key: bool,
}

impl TypedProps for AccessKeyProps {}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .users
        .values()
        .map(|user| Desired {
            address: Address::new(Kind::User, &user.logical),
            physical: user.name.clone(),
            props: UserProps {
                attached_policies: vec![user.policy_arn.clone()],
                access_key: user.access_key,
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: vec![Address::new(Kind::Policy, &user.logical)],
            retain: false,
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
    let mut arns: Vec<String> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .map(str::to_owned)
        .collect();
    arns.sort_unstable();
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: UserProps {
            attached_policies: arns,
            access_key: !keys.access_key_metadata().is_empty() && secret_stored,
            tags: user
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        }
        .into_props(),
    }))
}

/// What IAM calls this kind in messages.
const WHAT: &str = "IAM user";

/// Creates the user, or converges the one already there when it is ours (an interrupted
/// run created it; anything else is refused as [`ResourceKind::check_adoption`] would).
pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let tags = super::iam_tag_list(&UserProps::of(&want.props)?.tags)?;
    let existed = match clients
        .iam
        .create_user()
        .user_name(name)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => false,
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => true,
        Err(err) => {
            return Err(AwsError::from_sdk(err, format!("while creating IAM user `{name}`")).into())
        }
    };
    let have = read(clients, ctx, &want.address.name, name).await?;
    if let (true, Some(have)) = (existed, &have) {
        super::tags::check_regional(WHAT, (&ctx.stack, &ctx.env, &ctx.region), want, have)?;
    }
    // Tags others put on it stay: only the keys the stack declares are compared here.
    let have = have.map(|have| super::tags::managed_view(want, have, &Settings::new()));
    update(clients, ctx, want, have.as_ref()).await
}

/// `have` holds only the tags the stack manages (`tags::managed_view`).
pub async fn update(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let iam = &clients.iam;
    let name = want.physical.as_str();
    let props = UserProps::of(&want.props)?;
    let observed = have.map(|h| UserProps::of(&h.props)).transpose()?;
    let observed = observed.as_ref();
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    if !tags.remove.is_empty() {
        iam.untag_user()
            .user_name(name)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging IAM user `{name}`"))?;
    }
    if !tags.set.is_empty() {
        iam.tag_user()
            .user_name(name)
            .set_tags(Some(super::iam_tag_list(&tags.set)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM user `{name}`"))?;
    }
    if changed(
        &props.attached_policies,
        observed.map(|h| &h.attached_policies),
    ) {
        let wanted = &props.attached_policies;
        let present = observed
            .map(|h| h.attached_policies.clone())
            .unwrap_or_default();
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
    if changed(&props.access_key, observed.map(|h| &h.access_key)) {
        delete_access_keys(clients, ctx, &want.address.name, name).await?;
        if props.access_key {
            create_access_key(clients, ctx, &want.address.name, name).await?;
        }
    }
    Ok(())
}

async fn detach(clients: &Clients, name: &str, arn: &str) -> anyhow::Result<()> {
    clients
        .iam
        .detach_user_policy()
        .user_name(name)
        .policy_arn(arn)
        .send()
        .await
        .none_if("NoSuchEntity", || {
            format!("while detaching `{arn}` from IAM user `{name}`")
        })?;
    Ok(())
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
    let (secret, key_id) = (
        secret_parameter(ctx, logical),
        key_id_parameter(ctx, logical),
    );
    tokio::try_join!(
        delete_keys(clients, name),
        super::parameter::delete(clients, &secret),
        super::parameter::delete(clients, &key_id),
    )?;
    Ok(())
}

/// Deletes every access key of the user (IAM only); `false` when the user does not exist.
async fn delete_keys(clients: &Clients, name: &str) -> anyhow::Result<bool> {
    let iam = &clients.iam;
    let Some(keys) = iam
        .list_access_keys()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || {
            format!("while listing the access keys of IAM user `{name}`")
        })?
    else {
        return Ok(false);
    };
    // One after the other: a user holds two keys at most.
    for id in keys.iter().filter_map(|k| k.access_key_id()) {
        iam.delete_access_key()
            .user_name(name)
            .access_key_id(id)
            .send()
            .await
            .none_if("NoSuchEntity", || {
                format!("while deleting an access key of IAM user `{name}`")
            })?;
    }
    Ok(true)
}

/// Whether an MFA device's serial number names a virtual device (`arn:…:mfa/…`), which
/// outlives the user it was enabled for unless it is deleted too. A hardware or FIDO key is
/// its owner's: it is only deactivated.
fn is_virtual_mfa(serial: &str) -> bool {
    serial.starts_with("arn:") && serial.contains(":mfa/")
}

/// The items of a listing of one credential type of a user: none when the user is gone, or
/// when the endpoint does not implement that type (`InvalidAction`: MiniStack 1.5 has no SSH
/// keys, signing certificates or service-specific credentials; AWS implements all three).
fn credentials_or_none<T, E>(
    listed: Result<
        Vec<T>,
        aws_sdk_iam::error::SdkError<E, aws_sdk_iam::config::http::HttpResponse>,
    >,
    context: impl FnOnce() -> String,
) -> Result<Vec<T>, AwsError>
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match listed {
        Err(err) if error_code(&err) == Some("InvalidAction") => Ok(Vec::new()),
        listed => Ok(listed.none_if("NoSuchEntity", context)?.unwrap_or_default()),
    }
}

/// Removes what IAM requires gone before `DeleteUser`, as its API reference lists it: access
/// keys (first: their listing tells whether the user exists), login profile (console
/// password), signing certificates, SSH public keys, service-specific credentials, MFA
/// devices, inline policies, attached managed policies, group memberships. Listings are
/// paginated; NoSuchEntity on any step means that item (or the user) is already gone.
/// `false` when the user does not exist.
async fn remove_dependents(clients: &Clients, name: &str) -> anyhow::Result<bool> {
    let iam = &clients.iam;
    let gone = |what: &str| format!("while deleting the {what} of IAM user `{name}`");
    let listing = |what: &str| format!("while listing the {what} of IAM user `{name}`");
    // Keys first: their listing also tells whether the user exists.
    if !delete_keys(clients, name).await? {
        return Ok(false);
    }
    iam.delete_login_profile()
        .user_name(name)
        .send()
        .await
        .none_if("NoSuchEntity", || gone("login profile (console password)"))?;

    let certificates = credentials_or_none(
        iam.list_signing_certificates()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await,
        || listing("signing certificates"),
    )?;
    for certificate in &certificates {
        iam.delete_signing_certificate()
            .user_name(name)
            .certificate_id(certificate.certificate_id())
            .send()
            .await
            .none_if("NoSuchEntity", || gone("signing certificate"))?;
    }

    let ssh_keys = credentials_or_none(
        iam.list_ssh_public_keys()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await,
        || listing("SSH public keys"),
    )?;
    for key in &ssh_keys {
        iam.delete_ssh_public_key()
            .user_name(name)
            .ssh_public_key_id(key.ssh_public_key_id())
            .send()
            .await
            .none_if("NoSuchEntity", || gone("SSH public key"))?;
    }

    for id in service_credentials(clients, name).await? {
        iam.delete_service_specific_credential()
            .user_name(name)
            .service_specific_credential_id(&id)
            .send()
            .await
            .none_if("NoSuchEntity", || gone("service-specific credential"))?;
    }

    let devices = iam
        .list_mfa_devices()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("MFA devices"))?
        .unwrap_or_default();
    for device in &devices {
        let serial = device.serial_number();
        iam.deactivate_mfa_device()
            .user_name(name)
            .serial_number(serial)
            .send()
            .await
            .none_if("NoSuchEntity", || gone("MFA device"))?;
        if is_virtual_mfa(serial) {
            iam.delete_virtual_mfa_device()
                .serial_number(serial)
                .send()
                .await
                .none_if("NoSuchEntity", || gone("virtual MFA device"))?;
        }
    }

    let inline = iam
        .list_user_policies()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("inline policies"))?
        .unwrap_or_default();
    for policy in &inline {
        iam.delete_user_policy()
            .user_name(name)
            .policy_name(policy)
            .send()
            .await
            .none_if("NoSuchEntity", || {
                gone(&format!("inline policy `{policy}`"))
            })?;
    }

    let attached = iam
        .list_attached_user_policies()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("managed policies"))?
        .unwrap_or_default();
    for arn in attached.iter().filter_map(|p| p.policy_arn()) {
        detach(clients, name, arn).await?;
    }

    let groups = iam
        .list_groups_for_user()
        .user_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("groups"))?
        .unwrap_or_default();
    for group in &groups {
        iam.remove_user_from_group()
            .user_name(name)
            .group_name(group.group_name())
            .send()
            .await
            .none_if("NoSuchEntity", || {
                format!(
                    "while removing IAM user `{name}` from group `{}`",
                    group.group_name()
                )
            })?;
    }
    Ok(true)
}

/// The ids of the user's service-specific credentials (CodeCommit, Keyspaces, Bedrock …).
/// The SDK has no paginator for this listing: its markers are followed here.
async fn service_credentials(clients: &Clients, name: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = credentials_or_none(
            clients
                .iam
                .list_service_specific_credentials()
                .user_name(name)
                .set_marker(marker.take())
                .send()
                .await
                .map(|page| vec![page]),
            || format!("while listing the service-specific credentials of IAM user `{name}`"),
        )?;
        let Some(page) = page.into_iter().next() else {
            break;
        };
        ids.extend(
            page.service_specific_credentials()
                .iter()
                .map(|c| c.service_specific_credential_id().to_owned()),
        );
        match page.marker() {
            Some(next) if page.is_truncated() => marker = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(ids)
}

/// Everything IAM requires gone first (with the key parameters, which go even when the
/// user is already gone), then the user.
pub async fn delete(
    clients: &Clients,
    ctx: &ReadCtx,
    logical: &str,
    name: &str,
) -> anyhow::Result<()> {
    let (secret, key_id) = (
        secret_parameter(ctx, logical),
        key_id_parameter(ctx, logical),
    );
    let (exists, (), ()) = tokio::try_join!(
        remove_dependents(clients, name),
        super::parameter::delete(clients, &secret),
        super::parameter::delete(clients, &key_id),
    )?;
    if !exists {
        return Ok(());
    }
    // IAM may still see a dependent just removed for a moment (terraform-provider-aws
    // retries DeleteConflict on DeleteUser for its propagation timeout).
    until_propagated(
        "IAM to see the user's dependents gone",
        &|_| {},
        |e| e.is("DeleteConflict"),
        || async {
            clients
                .iam
                .delete_user()
                .user_name(name)
                .send()
                .await
                .none_if("NoSuchEntity", || {
                    format!("while deleting IAM user `{name}`")
                })?;
            Ok::<(), anyhow::Error>(())
        },
    )
    .await
}

/// The `user` kind: IAM users, their policy attachments and access keys.
pub(crate) struct User;

impl ResourceKind for User {
    const NAME: &'static str = "user";
    const SERVICE: &'static str = "iam";
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = Some(("AWS::IAM::User", "User"));

    /// Its managed policies: whatever they allow, the user may do.
    fn access(address: &Address, props: &super::Props) -> Vec<super::access::Access> {
        let Some(serde_json::Value::Array(arns)) = props.get("attached_policies") else {
            return Vec::new();
        };
        arns.iter()
            .filter_map(serde_json::Value::as_str)
            .map(|arn| super::access::Access::Attachment {
                principal: address.to_string(),
                policy: arn.to_owned(),
            })
            .collect()
    }

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let name = p["UserName"].as_str().unwrap_or_default().to_owned();
        let props = UserProps {
            attached_policies: serde_json::from_value(p["ManagedPolicyArns"].clone())
                .unwrap_or_default(),
            access_key: resource.access_keys.get(&resource.address.name) == Some(&name),
            tags: super::cloudformation::tag_map(p),
        }
        .into_props();
        vec![(resource.address.clone(), name, props)]
    }

    /// An access key is made by the SDK around the stack (an `AWS::IAM::AccessKey` would
    /// keep its secret in the stack).
    fn cloudformation_properties(
        want: &Desired,
        synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let props = UserProps::of(&want.props).ok()?;
        if props.access_key {
            synthesis
                .access_keys
                .insert(want.address.name.clone(), want.physical.clone());
        }
        Some(serde_json::json!({
            "UserName": want.physical,
            "ManagedPolicyArns": props.attached_policies,
            "Tags": tag_list(&props.tags),
        }))
    }

    const TAGGED: bool = true;

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
            // A user's access key id and secret, each in a parameter of its own under
            // `/<stack>/<env>/users/<user>/`: read for every user (a key made before the
            // stack said `access_key: false` is found, and removed with its parameters),
            // written and deleted with the key.
            Grant::new(
                "UserKeyParameters",
                super::parameter::PARAMETER_ACTIONS,
                users()
                    .map(|u| {
                        let folder =
                            format!("/{}/{}/users/{}/*", stack.stack, stack.env, u.logical);
                        super::parameter::parameter_arn(stack, &folder)
                    })
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

    /// IAM names are global to the account: the same env of this stack deployed in another
    /// region has users of the same names.
    fn check_adoption(
        stack: &ResolvedStack,
        want: &Desired,
        have: &Observed,
    ) -> anyhow::Result<()> {
        super::tags::check_regional(WHAT, (&stack.stack, &stack.env, &stack.region), want, have)
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

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation as op;
    use aws_sdk_iam::types as t;
    use aws_sdk_iam::Client as Iam;
    use aws_smithy_mocks::{mock, RuleMode};
    use aws_smithy_types::DateTime;

    use serde_json::json;

    use super::*;
    use crate::aws::mock::{self, assert_all_used, iam_error, json_error};

    const NAME: &str = "exif-pipeline-dev-user-a";

    use crate::resources::fixtures::{dev_ctx as ctx, dev_stack as stack};

    fn want() -> Desired {
        desired(&stack())
            .into_iter()
            .find(|d| d.address.name == "user-a")
            .expect("user-a")
    }

    /// The user as it exists, with `tags` on top of the stack's own.
    fn observed(extra: &[(&str, &str)]) -> Observed {
        let want = want();
        let mut props = want.props.clone();
        let mut tags = UserProps::of(&want.props).expect("typed").tags;
        tags.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        props.insert("tags".into(), json!(tags));
        Observed {
            physical: want.physical,
            props,
        }
    }

    fn iam_user(tags: &[(&str, &str)]) -> t::User {
        t::User::builder()
            .path("/")
            .user_name(NAME)
            .user_id("AIDAMOCK")
            .arn(format!("arn:aws:iam::{}:user/{NAME}", mock::ACCOUNT))
            .create_date(DateTime::from_secs(0))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| t::Tag::builder().key(*k).value(*v).build().expect("tag"))
                    .collect(),
            ))
            .build()
            .expect("user")
    }

    /// Row 9: the stack dropped `team`, which it had set; an auto-tagger added `CostCenter`.
    /// Only `team` goes (no TagUser either: nothing else differs).
    #[tokio::test]
    async fn a_dropped_tag_is_removed_and_a_foreign_one_left_alone() {
        let want = want();
        let mut managed: Vec<String> = UserProps::of(&want.props)
            .expect("typed")
            .tags
            .into_keys()
            .collect();
        managed.push("team".into());
        let have = super::super::tags::managed_view(
            &want,
            observed(&[("team", "photos"), ("CostCenter", "42")]),
            &super::super::tags::settings(&managed),
        );
        let untag = mock!(Iam::untag_user)
            .match_requests(|r| r.user_name() == Some(NAME) && r.tag_keys() == ["team"])
            .then_output(|| op::untag_user::UntagUserOutput::builder().build());
        let clients = mock::clients(&[&untag], &[], &[]);
        update(&clients, &ctx(), &want, Some(&have))
            .await
            .expect("converged");
        assert_all_used(&[&untag]);
    }

    /// Row 10: a user of the stack's name that its tags do not give to this stack, env and
    /// region is not taken over; the refusal names whose it is.
    #[test]
    fn an_untagged_or_foreign_user_is_not_adopted() {
        let (stack, want) = (stack(), want());
        let untagged = Observed {
            physical: NAME.into(),
            props: [("tags".to_owned(), json!({}))].into_iter().collect(),
        };
        let err = User::check_adoption(&stack, &want, &untagged).expect_err("refused");
        assert!(
            err.to_string().contains("has none of stripstack's tags"),
            "{err}"
        );
        let mut other_region = observed(&[]);
        other_region.props.insert(
            "tags".into(),
            json!({"stack": "exif-pipeline", "env": "dev", "region": "us-east-1"}),
        );
        let err = User::check_adoption(&stack, &want, &other_region).expect_err("refused");
        assert!(err.to_string().contains("region `us-east-1`"), "{err}");
        User::check_adoption(&stack, &want, &observed(&[("CostCenter", "42")]))
            .expect("tagged for this stack, env and region: adopted");
    }

    /// A create that finds the user already there (not made by an interrupted run of ours)
    /// refuses it before writing anything to it.
    #[tokio::test]
    async fn a_create_that_meets_a_foreign_user_writes_nothing() {
        let (status, body) = iam_error(409, "EntityAlreadyExists");
        let create = mock!(Iam::create_user)
            .sequence()
            .http_status(status, body)
            .build();
        let get = mock!(Iam::get_user).then_output(|| {
            op::get_user::GetUserOutput::builder()
                .user(iam_user(&[("stack", "billing"), ("env", "prod")]))
                .build()
        });
        let attached = mock!(Iam::list_attached_user_policies).then_output(|| {
            op::list_attached_user_policies::ListAttachedUserPoliciesOutput::builder().build()
        });
        let keys = mock!(Iam::list_access_keys).then_output(|| {
            op::list_access_keys::ListAccessKeysOutput::builder()
                .set_access_key_metadata(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let (status, body) = json_error("ParameterNotFound");
        let secret = mock!(aws_sdk_ssm::Client::get_parameter)
            .sequence()
            .http_status(status, body)
            .build();
        let clients = mock::clients_with(
            &[&create, &get, &attached, &keys],
            RuleMode::MatchAny,
            &[],
            &[&secret],
        );
        let err = super::create(&clients, &ctx(), &want())
            .await
            .expect_err("refused");
        assert!(
            err.to_string()
                .contains("belongs to stack `billing`, env `prod`: refusing to adopt it"),
            "{err}"
        );
        assert_all_used(&[&create, &get, &attached, &keys, &secret]);
    }

    /// Row 11: everything DeleteUser requires gone goes first, in order, each from its own
    /// listing; then the user. The key's parameters go alongside.
    #[tokio::test]
    async fn deleting_a_user_removes_every_dependent_first() {
        let mfa = format!("arn:aws:iam::{}:mfa/alice", mock::ACCOUNT);
        let policy = format!("arn:aws:iam::{}:policy/{NAME}", mock::ACCOUNT);
        let keys = mock!(Iam::list_access_keys)
            .match_requests(|r| r.user_name() == Some(NAME))
            .then_output(|| {
                op::list_access_keys::ListAccessKeysOutput::builder()
                    .access_key_metadata(
                        t::AccessKeyMetadata::builder()
                            .access_key_id("AKIAMOCK")
                            .build(),
                    )
                    .build()
                    .expect("output")
            });
        let delete_key = mock!(Iam::delete_access_key)
            .match_requests(|r| r.access_key_id() == Some("AKIAMOCK"))
            .then_output(|| op::delete_access_key::DeleteAccessKeyOutput::builder().build());
        let login = mock!(Iam::delete_login_profile)
            .match_requests(|r| r.user_name() == Some(NAME))
            .then_output(|| op::delete_login_profile::DeleteLoginProfileOutput::builder().build());
        let certificates = mock!(Iam::list_signing_certificates).then_output(|| {
            op::list_signing_certificates::ListSigningCertificatesOutput::builder()
                .set_certificates(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let ssh = mock!(Iam::list_ssh_public_keys)
            .then_output(|| op::list_ssh_public_keys::ListSshPublicKeysOutput::builder().build());
        let service = mock!(Iam::list_service_specific_credentials).then_output(|| {
            op::list_service_specific_credentials::ListServiceSpecificCredentialsOutput::builder()
                .build()
        });
        let devices = {
            let mfa = mfa.clone();
            mock!(Iam::list_mfa_devices).then_output(move || {
                op::list_mfa_devices::ListMfaDevicesOutput::builder()
                    .mfa_devices(
                        t::MfaDevice::builder()
                            .user_name(NAME)
                            .serial_number(&mfa)
                            .enable_date(DateTime::from_secs(0))
                            .build()
                            .expect("device"),
                    )
                    .build()
                    .expect("output")
            })
        };
        let deactivate = {
            let mfa = mfa.clone();
            mock!(Iam::deactivate_mfa_device)
                .match_requests(move |r| {
                    r.user_name() == Some(NAME) && r.serial_number() == Some(mfa.as_str())
                })
                .then_output(|| {
                    op::deactivate_mfa_device::DeactivateMfaDeviceOutput::builder().build()
                })
        };
        let delete_device = {
            let mfa = mfa.clone();
            mock!(Iam::delete_virtual_mfa_device)
                .match_requests(move |r| r.serial_number() == Some(mfa.as_str()))
                .then_output(|| {
                    op::delete_virtual_mfa_device::DeleteVirtualMfaDeviceOutput::builder().build()
                })
        };
        let inline = mock!(Iam::list_user_policies).then_output(|| {
            op::list_user_policies::ListUserPoliciesOutput::builder()
                .set_policy_names(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let attached = {
            let policy = policy.clone();
            mock!(Iam::list_attached_user_policies).then_output(move || {
                op::list_attached_user_policies::ListAttachedUserPoliciesOutput::builder()
                    .attached_policies(t::AttachedPolicy::builder().policy_arn(&policy).build())
                    .build()
            })
        };
        let detach = mock!(Iam::detach_user_policy)
            .match_requests(move |r| r.policy_arn() == Some(policy.as_str()))
            .then_output(|| op::detach_user_policy::DetachUserPolicyOutput::builder().build());
        let groups = mock!(Iam::list_groups_for_user).then_output(|| {
            op::list_groups_for_user::ListGroupsForUserOutput::builder()
                .groups(
                    t::Group::builder()
                        .path("/")
                        .group_name("uploaders")
                        .group_id("AGPAMOCK")
                        .arn(format!("arn:aws:iam::{}:group/uploaders", mock::ACCOUNT))
                        .create_date(DateTime::from_secs(0))
                        .build()
                        .expect("group"),
                )
                .build()
                .expect("output")
        });
        let leave = mock!(Iam::remove_user_from_group)
            .match_requests(|r| r.user_name() == Some(NAME) && r.group_name() == Some("uploaders"))
            .then_output(|| {
                op::remove_user_from_group::RemoveUserFromGroupOutput::builder().build()
            });
        let delete_user = mock!(Iam::delete_user)
            .match_requests(|r| r.user_name() == Some(NAME))
            .then_output(|| op::delete_user::DeleteUserOutput::builder().build());
        let secret = mock!(aws_sdk_ssm::Client::delete_parameter)
            .match_requests(|r| {
                r.name() == Some("/exif-pipeline/dev/users/user-a/secret-access-key")
            })
            .then_output(|| {
                aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput::builder().build()
            });
        let (status, body) = json_error("ParameterNotFound");
        let key_id = mock!(aws_sdk_ssm::Client::delete_parameter)
            .match_requests(|r| r.name() == Some("/exif-pipeline/dev/users/user-a/access-key-id"))
            .sequence()
            .http_status(status, body)
            .build();
        let iam = [
            &keys,
            &delete_key,
            &login,
            &certificates,
            &ssh,
            &service,
            &devices,
            &deactivate,
            &delete_device,
            &inline,
            &attached,
            &detach,
            &groups,
            &leave,
            &delete_user,
        ];
        let clients = mock::clients(&iam, &[], &[&secret, &key_id]);
        delete(&clients, &ctx(), "user-a", NAME)
            .await
            .expect("deleted");
        assert_all_used(&iam);
        assert_all_used(&[&secret, &key_id]);
    }

    /// NoSuchEntity is "already gone" at every step: a user without a console password, and
    /// an endpoint without SSH keys, signing certificates or service credentials (MiniStack
    /// answers InvalidAction), is deleted all the same.
    #[tokio::test]
    async fn absent_dependents_are_skipped() {
        let keys = mock!(Iam::list_access_keys).then_output(|| {
            op::list_access_keys::ListAccessKeysOutput::builder()
                .set_access_key_metadata(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let (s, b) = iam_error(404, "NoSuchEntity");
        let login = mock!(Iam::delete_login_profile)
            .sequence()
            .http_status(s, b)
            .build();
        let (s, b) = iam_error(400, "InvalidAction");
        let certificates = mock!(Iam::list_signing_certificates)
            .sequence()
            .http_status(s, b)
            .build();
        let (s, b) = iam_error(400, "InvalidAction");
        let ssh = mock!(Iam::list_ssh_public_keys)
            .sequence()
            .http_status(s, b)
            .build();
        let (s, b) = iam_error(400, "InvalidAction");
        let service = mock!(Iam::list_service_specific_credentials)
            .sequence()
            .http_status(s, b)
            .build();
        let devices = mock!(Iam::list_mfa_devices).then_output(|| {
            op::list_mfa_devices::ListMfaDevicesOutput::builder()
                .set_mfa_devices(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let inline = mock!(Iam::list_user_policies).then_output(|| {
            op::list_user_policies::ListUserPoliciesOutput::builder()
                .set_policy_names(Some(Vec::new()))
                .build()
                .expect("output")
        });
        let attached = mock!(Iam::list_attached_user_policies).then_output(|| {
            op::list_attached_user_policies::ListAttachedUserPoliciesOutput::builder().build()
        });
        let (s, b) = iam_error(404, "NoSuchEntity");
        let groups = mock!(Iam::list_groups_for_user)
            .sequence()
            .http_status(s, b)
            .build();
        let (s, b) = iam_error(404, "NoSuchEntity");
        let delete_user = mock!(Iam::delete_user).sequence().http_status(s, b).build();
        let parameters = mock!(aws_sdk_ssm::Client::delete_parameter).then_output(|| {
            aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput::builder().build()
        });
        let iam = [
            &keys,
            &login,
            &certificates,
            &ssh,
            &service,
            &devices,
            &inline,
            &attached,
            &groups,
            &delete_user,
        ];
        let clients = mock::clients(&iam, &[], &[&parameters]);
        delete(&clients, &ctx(), "user-a", NAME)
            .await
            .expect("deleted");
        assert_all_used(&iam);
    }

    /// A user already gone: only its key parameters are cleaned up.
    #[tokio::test]
    async fn deleting_a_user_already_gone_cleans_only_its_parameters() {
        let (status, body) = iam_error(404, "NoSuchEntity");
        let keys = mock!(Iam::list_access_keys)
            .sequence()
            .http_status(status, body)
            .build();
        let parameters = mock!(aws_sdk_ssm::Client::delete_parameter).then_output(|| {
            aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput::builder().build()
        });
        let clients = mock::clients(&[&keys], &[], &[&parameters]);
        delete(&clients, &ctx(), "user-a", NAME)
            .await
            .expect("nothing left to delete");
        assert_all_used(&[&keys]);
        assert_eq!(parameters.num_calls(), 2);
    }

    #[test]
    fn only_virtual_mfa_devices_are_deleted() {
        assert!(is_virtual_mfa("arn:aws:iam::123456789012:mfa/alice"));
        assert!(!is_virtual_mfa("GAHT12345678"));
        assert!(!is_virtual_mfa(
            "arn:aws:iam::123456789012:u2f/user/alice/key-1"
        ));
    }
}
