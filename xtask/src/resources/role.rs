//! The function's IAM role: trust policy for lambda.amazonaws.com, one inline policy with
//! exactly the function's `allow` statements (least privilege: nothing is added), and tags.

use std::collections::BTreeMap;

use super::cloudformation::{tag_list, Synthesis};
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

/// Name of the inline policy on every role this tool manages.
pub const INLINE_POLICY_NAME: &str = "stripstack";

/// A role's properties, as the plan compares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoleProps {
    /// The trust policy, normalised; `null`: none.
    pub trust_policy: Value,
    /// The inline policy [`INLINE_POLICY_NAME`], normalised; `null`: none.
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

impl TypedProps for RoleProps {}

pub fn desired(stack: &ResolvedStack) -> Vec<Desired> {
    stack
        .functions
        .values()
        .map(|function| Desired {
            address: Address::new(Kind::Role, &function.logical),
            physical: function.role_name.clone(),
            props: RoleProps {
                trust_policy: policy_doc::normalize_policy(&lambda_trust_policy()),
                policy: policy_doc::normalize_policy(&statements_document(&function.allow)),
                tags: stack.tags.clone(),
            }
            .into_props(),
            depends_on: Vec::new(),
            retain: false,
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
    Ok(Some(Observed {
        physical: name.to_owned(),
        props: RoleProps {
            trust_policy: trust,
            policy: inline,
            tags: role
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        }
        .into_props(),
    }))
}

/// What IAM calls this kind in messages.
const WHAT: &str = "IAM role";

/// Creates the role, or converges the one already there when it is ours (an interrupted
/// run created it; anything else is refused as [`ResourceKind::check_adoption`] would).
pub async fn create(clients: &Clients, ctx: &ReadCtx, want: &Desired) -> anyhow::Result<()> {
    let name = want.physical.as_str();
    let props = RoleProps::of(&want.props)?;
    match clients
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(props.trust_policy.to_string())
        .set_tags(Some(super::iam_tag_list(&props.tags)?))
        .send()
        .await
    {
        Ok(_) => {
            let trust_written = Observed {
                physical: name.to_owned(),
                props: RoleProps {
                    policy: Value::Null,
                    ..props
                }
                .into_props(),
            };
            update(clients, ctx, want, Some(&trust_written)).await
        }
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
            Err(AwsError::from_sdk(err, format!("while creating IAM role `{name}`")).into())
        }
    }
}

/// `have` holds only the tags the stack manages (`tags::managed_view`).
pub async fn update(
    clients: &Clients,
    _ctx: &ReadCtx,
    want: &Desired,
    have: Option<&Observed>,
) -> anyhow::Result<()> {
    let iam = &clients.iam;
    let name = want.physical.as_str();
    let props = RoleProps::of(&want.props)?;
    let observed = have.map(|h| RoleProps::of(&h.props)).transpose()?;
    let observed = observed.as_ref();
    if changed(&props.trust_policy, observed.map(|h| &h.trust_policy)) {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(props.trust_policy.to_string())
            .send()
            .await
            .with_aws_context(|| format!("while setting the trust policy of IAM role `{name}`"))?;
    }
    if changed(&props.policy, observed.map(|h| &h.policy)) {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY_NAME)
            .policy_document(props.policy.to_string())
            .send()
            .await
            .with_aws_context(|| format!("while setting the policy of IAM role `{name}`"))?;
    }
    let tags = super::tags::changes(&want.props, have.map(|h| &h.props));
    if !tags.remove.is_empty() {
        iam.untag_role()
            .role_name(name)
            .set_tag_keys(Some(tags.remove))
            .send()
            .await
            .with_aws_context(|| format!("while untagging IAM role `{name}`"))?;
    }
    if !tags.set.is_empty() {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(super::iam_tag_list(&tags.set)?))
            .send()
            .await
            .with_aws_context(|| format!("while tagging IAM role `{name}`"))?;
    }
    Ok(())
}

/// Removes what IAM requires gone before `DeleteRole`, as its API reference lists it:
/// inline policies (the stack's own and any other), attached managed policies, instance
/// profile memberships; then the role. Listings are paginated; NoSuchEntity on any step
/// means that item (or the role) is already gone.
pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    let iam = &clients.iam;
    let gone = |what: &str| format!("while removing the {what} of IAM role `{name}`");
    let listing = |what: &str| format!("while listing the {what} of IAM role `{name}`");
    // Inline policies first: their listing also tells whether the role exists.
    let Some(inline) = iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("inline policies"))?
    else {
        return Ok(());
    };
    for policy in &inline {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .none_if("NoSuchEntity", || {
                gone(&format!("inline policy `{policy}`"))
            })?;
    }

    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("managed policies"))?
        .unwrap_or_default();
    for arn in attached.iter().filter_map(|p| p.policy_arn()) {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .none_if("NoSuchEntity", || gone(&format!("managed policy `{arn}`")))?;
    }

    let profiles = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .none_if("NoSuchEntity", || listing("instance profiles"))?
        .unwrap_or_default();
    for profile in &profiles {
        // The profile itself is not the stack's: only the role leaves it.
        iam.remove_role_from_instance_profile()
            .role_name(name)
            .instance_profile_name(profile.instance_profile_name())
            .send()
            .await
            .none_if("NoSuchEntity", || {
                format!(
                    "while removing IAM role `{name}` from instance profile `{}`",
                    profile.instance_profile_name()
                )
            })?;
    }

    // IAM may still see a dependent just removed for a moment (terraform-provider-aws
    // retries DeleteConflict on DeleteRole for its propagation timeout).
    until_propagated(
        "IAM to see the role's dependents gone",
        &|_| {},
        |e| e.is("DeleteConflict"),
        || async {
            iam.delete_role()
                .role_name(name)
                .send()
                .await
                .none_if("NoSuchEntity", || {
                    format!("while deleting IAM role `{name}`")
                })?;
            Ok::<(), anyhow::Error>(())
        },
    )
    .await
}

/// What the deployer does to a role it manages. `iam:Get*` and `iam:List*` on these roles
/// only: the role, its tags and policies, its instance profiles.
pub(crate) const ROLE_ACTIONS: &[&str] = &[
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
];

/// The `role` kind: a function's execution role.
pub(crate) struct Role;

impl ResourceKind for Role {
    const NAME: &'static str = "role";
    const SERVICE: &'static str = "iam";
    // The function names its role.
    const DELETED_AFTER: &'static [Kind] = &[Kind::Function];
    const CLOUDFORMATION: Option<(&'static str, &'static str)> = Some(("AWS::IAM::Role", "Role"));

    /// The inline policy's statements (what the role may do) and the trust policy's (who may
    /// assume it).
    fn access(address: &Address, props: &super::Props) -> Vec<super::access::Access> {
        use super::access::statements;
        let mut out = Vec::new();
        if let Some(doc) = props.get("policy") {
            out.extend(statements("inline policy", doc, Some(address), None));
        }
        if let Some(doc) = props.get("trust_policy") {
            out.extend(statements("trust policy", doc, None, Some(address)));
        }
        out
    }

    #[cfg(test)]
    fn from_cloudformation(
        resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        let p = resource.properties;
        let inline = p["Policies"]
            .as_array()
            .and_then(|policies| {
                policies
                    .iter()
                    .find(|x| x["PolicyName"] == INLINE_POLICY_NAME)
            })
            .map(|x| x["PolicyDocument"].clone())
            .unwrap_or(serde_json::Value::Null);
        let props = RoleProps {
            trust_policy: p["AssumeRolePolicyDocument"].clone(),
            policy: inline,
            tags: super::cloudformation::tag_map(p),
        }
        .into_props();
        let name = p["RoleName"].as_str().unwrap_or_default().to_owned();
        vec![(resource.address.clone(), name, props)]
    }

    fn cloudformation_properties(
        want: &Desired,
        _synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        let props = RoleProps::of(&want.props).ok()?;
        Some(json!({
            "RoleName": want.physical,
            "AssumeRolePolicyDocument": props.trust_policy,
            "Policies": [{
                "PolicyName": INLINE_POLICY_NAME,
                "PolicyDocument": props.policy,
            }],
            "Tags": tag_list(&props.tags),
        }))
    }

    const TAGGED: bool = true;

    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
        let roles: Vec<String> = stack
            .functions
            .values()
            .map(|f| f.role_arn.clone())
            .collect();
        let partition = crate::stack::partition(&stack.region);
        vec![
            Grant::new("FunctionRoles", ROLE_ACTIONS, roles.clone()),
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

    /// IAM names are global to the account: the same env of this stack deployed in another
    /// region has roles of the same names.
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
    use aws_sdk_iam::operation as op;
    use aws_sdk_iam::types as t;
    use aws_sdk_iam::Client as Iam;
    use aws_smithy_mocks::mock;
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::aws::mock::{self, assert_all_used, iam_error};

    const NAME: &str = "exif-pipeline-dev-strip-role";

    use crate::resources::fixtures::{dev_ctx as ctx, dev_stack as stack};

    fn want() -> Desired {
        desired(&stack())
            .into_iter()
            .next()
            .expect("the strip role")
    }

    fn with_tags(tags: Value) -> Observed {
        Observed {
            physical: NAME.into(),
            props: [("tags".to_owned(), tags)].into_iter().collect(),
        }
    }

    /// Row 10: a role of the stack's name is taken over only when tagged for this stack,
    /// env and region; the refusal names whose it is, or says it is nobody's.
    #[test]
    fn an_untagged_or_foreign_role_is_not_adopted() {
        let (stack, want) = (stack(), want());
        assert_eq!(want.physical, NAME);
        let err = Role::check_adoption(&stack, &want, &with_tags(json!({"Owner": "ops"})))
            .expect_err("refused");
        assert!(
            err.to_string().contains("has none of stripstack's tags"),
            "{err}"
        );
        let err = Role::check_adoption(
            &stack,
            &want,
            &with_tags(json!({"stack": "billing", "env": "dev", "region": "eu-west-2"})),
        )
        .expect_err("refused");
        assert!(
            err.to_string()
                .contains("belongs to stack `billing`, env `dev`, region `eu-west-2`"),
            "{err}"
        );
        // Deployed before stripstack tagged regions: perhaps this env's in another region.
        let err = Role::check_adoption(
            &stack,
            &want,
            &with_tags(json!({"stack": "exif-pipeline", "env": "dev"})),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("but for no region"), "{err}");
        Role::check_adoption(&stack, &want, &with_tags(json!(stack.tags)))
            .expect("tagged for this stack, env and region: adopted");
    }

    /// A create that finds an untagged role of the same name refuses it before any write.
    #[tokio::test]
    async fn a_create_that_meets_an_untagged_role_writes_nothing() {
        let (status, body) = iam_error(409, "EntityAlreadyExists");
        let create = mock!(Iam::create_role)
            .sequence()
            .http_status(status, body)
            .build();
        let get = mock!(Iam::get_role).then_output(|| {
            op::get_role::GetRoleOutput::builder()
                .role(
                    t::Role::builder()
                        .path("/")
                        .role_name(NAME)
                        .role_id("AROAMOCK")
                        .arn(format!("arn:aws:iam::{}:role/{NAME}", mock::ACCOUNT))
                        .create_date(DateTime::from_secs(0))
                        .build()
                        .expect("role"),
                )
                .build()
        });
        let (status, body) = iam_error(404, "NoSuchEntity");
        let inline = mock!(Iam::get_role_policy)
            .sequence()
            .http_status(status, body)
            .build();
        let rules = [&create, &get, &inline];
        let clients = mock::clients(&rules, &[], &[]);
        let err = super::create(&clients, &ctx(), &want())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("refusing to adopt"), "{err}");
        assert_all_used(&rules);
    }

    /// Row 11: every inline policy (not only the stack's), every managed policy and every
    /// instance profile let go of the role before DeleteRole.
    #[tokio::test]
    async fn deleting_a_role_removes_every_dependent_first() {
        let managed = format!("arn:aws:iam::{}:policy/audit", mock::ACCOUNT);
        let inline = mock!(Iam::list_role_policies)
            .match_requests(|r| r.role_name() == Some(NAME))
            .then_output(|| {
                op::list_role_policies::ListRolePoliciesOutput::builder()
                    .policy_names(INLINE_POLICY_NAME)
                    .policy_names("added-by-hand")
                    .build()
                    .expect("output")
            });
        let delete_ours = mock!(Iam::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some(INLINE_POLICY_NAME))
            .then_output(|| op::delete_role_policy::DeleteRolePolicyOutput::builder().build());
        let delete_other = mock!(Iam::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some("added-by-hand"))
            .then_output(|| op::delete_role_policy::DeleteRolePolicyOutput::builder().build());
        let attached = {
            let managed = managed.clone();
            mock!(Iam::list_attached_role_policies).then_output(move || {
                op::list_attached_role_policies::ListAttachedRolePoliciesOutput::builder()
                    .attached_policies(t::AttachedPolicy::builder().policy_arn(&managed).build())
                    .build()
            })
        };
        let detach = mock!(Iam::detach_role_policy)
            .match_requests(move |r| r.policy_arn() == Some(managed.as_str()))
            .then_output(|| op::detach_role_policy::DetachRolePolicyOutput::builder().build());
        let profiles = mock!(Iam::list_instance_profiles_for_role).then_output(|| {
            op::list_instance_profiles_for_role::ListInstanceProfilesForRoleOutput::builder()
                .instance_profiles(
                    t::InstanceProfile::builder()
                        .path("/")
                        .instance_profile_name("debug-box")
                        .instance_profile_id("AIPAMOCK")
                        .arn(format!(
                            "arn:aws:iam::{}:instance-profile/debug-box",
                            mock::ACCOUNT
                        ))
                        .create_date(DateTime::from_secs(0))
                        .set_roles(Some(Vec::new()))
                        .build()
                        .expect("profile"),
                )
                .build()
                .expect("output")
        });
        let leave = mock!(Iam::remove_role_from_instance_profile)
            .match_requests(|r| {
                r.role_name() == Some(NAME) && r.instance_profile_name() == Some("debug-box")
            })
            .then_output(|| {
                op::remove_role_from_instance_profile::RemoveRoleFromInstanceProfileOutput::builder(
                )
                .build()
            });
        let delete_role = mock!(Iam::delete_role)
            .match_requests(|r| r.role_name() == Some(NAME))
            .then_output(|| op::delete_role::DeleteRoleOutput::builder().build());
        let rules = [
            &inline,
            &delete_ours,
            &delete_other,
            &attached,
            &detach,
            &profiles,
            &leave,
            &delete_role,
        ];
        let clients = mock::clients(&rules, &[], &[]);
        delete(&clients, NAME).await.expect("deleted");
        assert_all_used(&rules);
    }
}
