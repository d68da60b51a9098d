//! Customer-managed IAM policies (one per user, holding the user's `allow` statements):
//! the default version's document and tags.

use std::collections::BTreeMap;

use super::cloudformation::Synthesis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::grant::Grant;
use super::kind::ResourceKind;
use super::props::{changed, TypedProps};
use super::{
    policy_doc, statements_document, Address, ApplyCtx, Artifacts, Desired, Kind, Observed,
    ReadCtx, Removal, Settings,
};
use crate::aws::{error_code, until_propagated, AwsError, Clients, SdkResultExt};
use crate::stack::resolved::ResolvedStack;

/// A managed policy's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PolicyProps {
    /// The default version's document, normalised; `null`: none.
    pub document: Value,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for PolicyProps {}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .users
        .values()
        .map(|user| Desired {
            address: Address::new(Kind::Policy, &user.logical),
            physical: user.policy_name.clone(),
            props: PolicyProps {
                document: policy_doc::normalize_policy(&statements_document(&user.allow)),
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: Vec::new(),
            retain: false,
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
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: PolicyProps {
            document,
            tags: tags
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        }
        .into_props(),
    }))
}

/// IAM keeps at most five versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// What IAM calls this kind in messages.
const WHAT: &str = "IAM policy";

/// Creates the policy, or converges the one already there when it is ours (an interrupted
/// run created it; anything else is refused as [`ResourceKind::check_adoption`] would).
pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let props = PolicyProps::of(&want.props)?;
    let tags = super::iam_tag_list(&props.tags)?;
    match clients
        .iam
        .create_policy()
        .policy_name(name)
        .policy_document(props.document.to_string())
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {
            let have = read(clients, ctx, name).await?;
            if let Some(have) = &have {
                super::tags::check_regional(WHAT, (&ctx.stack, &ctx.env, &ctx.region), want, have)?;
            }
            // Tags others put on it stay: only the keys the stack declares are compared here.
            let have = have.map(|have| super::tags::managed_view(want, have, &Settings::new()));
            update(clients, ctx, want, have.as_ref()).await
        }
        Err(err) => {
            Err(AwsError::from_sdk(err, format!("while creating IAM policy `{name}`")).into())
        }
    }
}

/// A changed document becomes a new default version; the oldest non-default versions are
/// pruned first so the limit of five is never hit. `have` holds only the tags the stack
/// manages (`tags::managed_view`).
pub async fn update(
    clients: &Clients,
    ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let arn = arn(ctx, name);
    let props = PolicyProps::of(&want.props)?;
    let observed = have.map(|h| PolicyProps::of(&h.props)).transpose()?;
    if changed(&props.document, observed.as_ref().map(|h| &h.document)) {
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
            .policy_document(props.document.to_string())
            .set_as_default(true)
            .send()
            .await
            .with_aws_context(|| format!("while updating IAM policy `{name}`"))?;
    }
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    if !tags.remove.is_empty() {
        clients
            .iam
            .untag_policy()
            .policy_arn(&arn)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging IAM policy `{name}`"))?;
    }
    if !tags.set.is_empty() {
        clients
            .iam
            .tag_policy()
            .policy_arn(&arn)
            .set_tags(Some(super::iam_tag_list(&tags.set)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM policy `{name}`"))?;
    }
    Ok(())
}

/// The users, groups and roles the policy is attached to (`usage`: as their permissions
/// policy, or as their permissions boundary), every page; `None` when the policy does not
/// exist.
async fn entities(
    clients: &Clients,
    arn: &str,
    name: &str,
    usage: aws_sdk_iam::types::PolicyUsageType,
) -> anyhow::Result<Option<Entities>> {
    let Some(pages) = clients
        .iam
        .list_entities_for_policy()
        .policy_arn(arn)
        .policy_usage_filter(usage)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || {
            format!("while listing what IAM policy `{name}` is attached to")
        })?
    else {
        return Ok(None);
    };
    let mut entities = Entities::default();
    for page in &pages {
        let owned = |name: Option<&str>| name.map(str::to_owned);
        entities.users.extend(
            page.policy_users()
                .iter()
                .filter_map(|u| owned(u.user_name())),
        );
        entities.groups.extend(
            page.policy_groups()
                .iter()
                .filter_map(|g| owned(g.group_name())),
        );
        entities.roles.extend(
            page.policy_roles()
                .iter()
                .filter_map(|r| owned(r.role_name())),
        );
    }
    Ok(Some(entities))
}

/// Names of IAM users, groups and roles.
#[derive(Debug, Default)]
struct Entities {
    users: Vec<String>,
    groups: Vec<String>,
    roles: Vec<String>,
}

impl Entities {
    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.roles.is_empty()
    }

    fn describe(&self) -> String {
        [
            ("user", &self.users),
            ("group", &self.groups),
            ("role", &self.roles),
        ]
        .iter()
        .flat_map(|(what, names)| names.iter().map(move |n| format!("{what} `{n}`")))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What `DeletePolicy` requires first, as its API reference lists it: detached from every
/// user, group and role (every page of `ListEntitiesForPolicy`), every non-default version
/// deleted; then the policy. A policy some entity uses as its permissions boundary is not
/// deleted: lifting a boundary would widen that entity's permissions, so that is left to a
/// person, and the error names who.
pub async fn delete(clients: &Clients, ctx: &ReadCtx, name: &str) -> anyhow::Result<()> {
    use aws_sdk_iam::types::PolicyUsageType;
    let arn = arn(ctx, name);
    let iam = &clients.iam;
    let Some(attached) = entities(clients, &arn, name, PolicyUsageType::PermissionsPolicy).await?
    else {
        return Ok(());
    };
    let detaching = |from: &str| format!("while detaching IAM policy `{name}` from {from}");
    for user in &attached.users {
        iam.detach_user_policy()
            .user_name(user)
            .policy_arn(&arn)
            .send()
            .await
            .none_if("NoSuchEntity", || detaching(&format!("user `{user}`")))?;
    }
    for group in &attached.groups {
        iam.detach_group_policy()
            .group_name(group)
            .policy_arn(&arn)
            .send()
            .await
            .none_if("NoSuchEntity", || detaching(&format!("group `{group}`")))?;
    }
    for role in &attached.roles {
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
            .none_if("NoSuchEntity", || detaching(&format!("role `{role}`")))?;
    }
    let Some(bounded) = entities(clients, &arn, name, PolicyUsageType::PermissionsBoundary).await?
    else {
        return Ok(());
    };
    if !bounded.is_empty() {
        anyhow::bail!(
            "IAM policy `{name}` is the permissions boundary of {}: remove it from them first \
             (stripstack does not lift a boundary, which would widen their permissions)",
            bounded.describe()
        );
    }
    for id in old_versions(clients, &arn, name).await?.1 {
        delete_version(clients, &arn, name, &id).await?;
    }
    // IAM may still see an attachment just removed for a moment.
    until_propagated(
        "IAM to see the policy detached",
        &|_| {},
        |e| e.is("DeleteConflict"),
        || async {
            iam.delete_policy()
                .policy_arn(&arn)
                .send()
                .await
                .none_if("NoSuchEntity", || {
                    format!("while deleting IAM policy `{name}`")
                })?;
            Ok::<(), anyhow::Error>(())
        },
    )
    .await
}

/// How many versions the policy has, and the ids of those that are not the default, oldest
/// first (every page).
async fn old_versions(
    clients: &Clients,
    arn: &str,
    name: &str,
) -> anyhow::Result<(usize, Vec<String>)> {
    let versions = clients
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .with_aws_context(|| format!("while listing versions of IAM policy `{name}`"))?;
    let mut old: Vec<_> = versions
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
    let ids = old
        .into_iter()
        .filter_map(|v| v.version_id().map(str::to_owned))
        .collect();
    Ok((versions.len(), ids))
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

    /// The document's statements, which apply to the user the policy is made for (`desired`:
    /// one per user, under the user's logical name).
    fn access(address: &Address, props: &super::Props) -> Vec<super::access::Access> {
        let holder = Address::new(Kind::User, &address.name);
        props.get("document").map_or_else(Vec::new, |doc| {
            super::access::statements("identity policy", doc, Some(&holder), None)
        })
    }

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        // No tags there: see `cloudformation_comparable`.
        let props = PolicyProps {
            document: p["PolicyDocument"].clone(),
            tags: BTreeMap::new(),
        }
        .into_props();
        let name = p["ManagedPolicyName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    /// `AWS::IAM::ManagedPolicy` has no `Tags` property (stack tags reach it where
    /// CloudFormation propagates them).
    #[cfg(test)]
    fn cloudformation_comparable(want: &Desired) -> (String, super::Props) {
        let props = PolicyProps {
            tags: BTreeMap::new(),
            ..PolicyProps::of(&want.props).expect("typed")
        };
        (want.physical.clone(), props.into_props())
    }

    /// `AWS::IAM::ManagedPolicy` has no `Tags`: the policy carries the stack's tags only where
    /// CloudFormation propagates stack tags.
    fn cloudformation_properties(
        want: &Desired,
        _synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let props = PolicyProps::of(&want.props).ok()?;
        Some(json!({
            "ManagedPolicyName": want.physical,
            "PolicyDocument": props.document,
        }))
    }

    const TAGGED: bool = true;

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

    /// IAM names are global to the account: the same env of this stack deployed in another
    /// region has policies of the same names.
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
    use aws_sdk_iam::operation as op;
    use aws_sdk_iam::types as t;
    use aws_sdk_iam::Client as Iam;
    use aws_smithy_mocks::mock;
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::aws::mock::{self, assert_all_used};

    const NAME: &str = "exif-pipeline-dev-user-a";

    fn mock_ctx() -> ReadCtx {
        ReadCtx {
            stack: "exif-pipeline".into(),
            env: "dev".into(),
            account: mock::ACCOUNT.into(),
            region: mock::REGION.into(),
        }
    }

    fn listing(
        usage: t::PolicyUsageType,
        found: op::list_entities_for_policy::ListEntitiesForPolicyOutput,
    ) -> aws_smithy_mocks::Rule {
        mock!(Iam::list_entities_for_policy)
            .match_requests(move |r| r.policy_usage_filter() == Some(&usage))
            .then_output(move || found.clone())
    }

    fn version(id: &str, default: bool, created: i64) -> t::PolicyVersion {
        t::PolicyVersion::builder()
            .version_id(id)
            .is_default_version(default)
            .create_date(DateTime::from_secs(created))
            .build()
    }

    /// Row 11: a policy someone attached to a group is detached from it (ListEntitiesForPolicy
    /// lists users, groups and roles), its old version deleted, then the policy.
    #[tokio::test]
    async fn deleting_a_policy_detaches_it_from_groups_too() {
        let arn = arn(&mock_ctx(), NAME);
        let attached = listing(
            t::PolicyUsageType::PermissionsPolicy,
            op::list_entities_for_policy::ListEntitiesForPolicyOutput::builder()
                .policy_groups(t::PolicyGroup::builder().group_name("uploaders").build())
                .build(),
        );
        let detach = {
            let arn = arn.clone();
            mock!(Iam::detach_group_policy)
                .match_requests(move |r| {
                    r.group_name() == Some("uploaders") && r.policy_arn() == Some(arn.as_str())
                })
                .then_output(|| op::detach_group_policy::DetachGroupPolicyOutput::builder().build())
        };
        let boundaries = listing(
            t::PolicyUsageType::PermissionsBoundary,
            op::list_entities_for_policy::ListEntitiesForPolicyOutput::builder().build(),
        );
        let versions = mock!(Iam::list_policy_versions).then_output(|| {
            op::list_policy_versions::ListPolicyVersionsOutput::builder()
                .versions(version("v1", false, 1))
                .versions(version("v2", true, 2))
                .build()
        });
        let old = mock!(Iam::delete_policy_version)
            .match_requests(|r| r.version_id() == Some("v1"))
            .then_output(|| {
                op::delete_policy_version::DeletePolicyVersionOutput::builder().build()
            });
        let delete_policy = mock!(Iam::delete_policy)
            .match_requests(move |r| r.policy_arn() == Some(arn.as_str()))
            .then_output(|| op::delete_policy::DeletePolicyOutput::builder().build());
        let rules = [
            &attached,
            &detach,
            &boundaries,
            &versions,
            &old,
            &delete_policy,
        ];
        let clients = mock::clients(&rules, &[], &[]);
        delete(&clients, &mock_ctx(), NAME).await.expect("deleted");
        assert_all_used(&rules);
    }

    /// A policy that bounds someone's permissions is not deleted: lifting the boundary would
    /// widen them. The error names who.
    #[tokio::test]
    async fn a_policy_used_as_a_boundary_is_left_to_a_person() {
        let attached = listing(
            t::PolicyUsageType::PermissionsPolicy,
            op::list_entities_for_policy::ListEntitiesForPolicyOutput::builder().build(),
        );
        let boundaries = listing(
            t::PolicyUsageType::PermissionsBoundary,
            op::list_entities_for_policy::ListEntitiesForPolicyOutput::builder()
                .policy_users(t::PolicyUser::builder().user_name("alice").build())
                .build(),
        );
        let rules = [&attached, &boundaries];
        let clients = mock::clients(&rules, &[], &[]);
        let err = delete(&clients, &mock_ctx(), NAME)
            .await
            .expect_err("refused");
        assert!(
            err.to_string()
                .contains("is the permissions boundary of user `alice`"),
            "{err}"
        );
        assert_all_used(&rules);
    }

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
