//! What the SDK does around the stack, because CloudFormation cannot: SecureString
//! parameters (`AWS::SSM::Parameter` cannot create one) and IAM access keys (an
//! `AWS::IAM::AccessKey` keeps its secret in the stack, where anyone who can read the
//! stack can read it). The SDK engine's own functions do the work; what was done is
//! recorded in the deployed template's metadata, so that what the stack file no longer
//! declares is cleaned up.
//!
//! Order: everything that goes goes *before* the stack changes (IAM refuses to delete a
//! user that still has access keys; a String parameter cannot be created over a
//! SecureString of the same name), everything that is written is written *after* (an
//! access key needs its user).

use std::collections::BTreeMap;

use serde_json::json;

use super::template::Recorded;
use crate::aws::Clients;
use crate::plan::{self, Action, Plan};
use crate::resources::parameter::ParameterProps;
use crate::resources::props::TypedProps;
use crate::resources::user::{AccessKeyProps, UserProps};
use crate::resources::{self, Address, Desired, Kind, Observed, Props};
use crate::stack::ResolvedStack;

/// The SDK's part of a deployment: what it wants, what exists, and the plan between them.
pub struct Around {
    pub plan: Plan,
    desired: Vec<Desired>,
    observed: BTreeMap<Address, Option<Observed>>,
}

const ACCESS_KEY_SUFFIX: &str = ".access-key";

/// `user.user-a.access-key`: the access key of user `user-a`, apart from the user itself
/// (which is the stack's).
fn access_key_address(user: &str) -> Address {
    Address::new(Kind::User, format!("{user}{ACCESS_KEY_SUFFIX}"))
}

fn access_key_desired(logical: &str, user_name: &str, wanted: bool) -> Desired {
    Desired {
        address: access_key_address(logical),
        physical: user_name.to_owned(),
        props: AccessKeyProps { access_key: wanted }.into_props(),
        depends_on: Vec::new(),
        retain: false,
    }
}

/// Reads what exists of the SDK's part. `destroying`: nothing is wanted any more, and
/// everything recorded in the deployed template goes.
pub async fn read(
    clients: &Clients,
    stack: &ResolvedStack,
    recorded: &Recorded,
    destroying: bool,
) -> anyhow::Result<Around> {
    let ctx = crate::session::read_ctx(stack);
    let mut desired: Vec<Desired> = Vec::new();
    if !destroying {
        desired.extend(
            resources::parameter::desired(stack)
                .into_iter()
                .filter(|d| ParameterProps::of(&d.props).is_ok_and(|p| p.is_secure())),
        );
        desired.extend(
            stack
                .users
                .values()
                .map(|u| access_key_desired(&u.logical, &u.name, u.access_key)),
        );
    }
    // What an earlier deployment did and the stack file no longer asks for.
    let mut gone: Vec<Desired> = recorded
        .secure_parameters
        .iter()
        .filter(|name| {
            !desired
                .iter()
                .any(|d| &&d.physical == name && d.address.kind == Kind::Parameter)
        })
        .map(|name| Desired {
            address: Address::new(Kind::Parameter, name),
            physical: name.clone(),
            props: Props::new(),
            depends_on: Vec::new(),
            retain: false,
        })
        .collect();
    gone.extend(
        recorded
            .access_keys
            .iter()
            .filter(|(logical, _)| {
                !desired
                    .iter()
                    .any(|d| d.address == access_key_address(logical))
            })
            .map(|(logical, name)| access_key_desired(logical, name, false)),
    );

    let mut observed = BTreeMap::new();
    for want in desired.iter().chain(&gone) {
        let have = match want.address.name.strip_suffix(ACCESS_KEY_SUFFIX) {
            Some(logical) if want.address.kind == Kind::User => {
                match resources::user::read(clients, &ctx, logical, &want.physical).await? {
                    Some(user) => Some(Observed {
                        props: AccessKeyProps {
                            access_key: UserProps::of(&user.props)?.access_key,
                        }
                        .into_props(),
                        physical: user.physical,
                    }),
                    None => None,
                }
            }
            // Only the tags the stack declares are compared and written: others' stay.
            _ => resources::read(clients, &ctx, &want.address, &want.physical)
                .await?
                .map(|have| resources::managed(want, have, &resources::Settings::new())),
        };
        observed.insert(want.address.clone(), have);
    }
    // A user without a key that should have none needs nothing (whether it exists or not).
    let has_key = |props: &Props| AccessKeyProps::of(props).is_ok_and(|p| p.access_key);
    desired.retain(|d| {
        d.address.kind != Kind::User
            || has_key(&d.props)
            || observed
                .get(&d.address)
                .and_then(Option::as_ref)
                .is_some_and(|o| has_key(&o.props))
    });
    // Recorded things that still exist go; an existing user's keys go even without their
    // secret, or IAM would refuse to delete the user.
    let orphans: Vec<(Address, Observed)> = gone
        .iter()
        .filter_map(|g| Some((g.address.clone(), observed.get(&g.address)?.clone()?)))
        .collect();
    let plan = plan::diff(&stack.stack, &stack.env, &desired, &observed, &orphans);
    Ok(Around {
        plan,
        desired,
        observed,
    })
}

fn user_of(address: &Address) -> Option<&str> {
    if address.kind != Kind::User {
        return None;
    }
    address.name.strip_suffix(ACCESS_KEY_SUFFIX)
}

fn wants_key(change: &plan::Change) -> bool {
    change.action != Action::Delete
        && change
            .properties
            .iter()
            .any(|p| p.name == "access_key" && p.new == Some(json!(true)))
}

/// Before the stack changes: removes the access keys and SecureStrings that go.
pub async fn before(
    clients: &Clients,
    stack: &ResolvedStack,
    around: &Around,
) -> anyhow::Result<()> {
    let ctx = crate::session::read_ctx(stack);
    for change in &around.plan.changes {
        match user_of(&change.address) {
            Some(logical) if !wants_key(change) => {
                eprintln!("  removing the access key of {} (SDK)", change.physical);
                resources::user::delete_access_keys(clients, &ctx, logical, &change.physical)
                    .await?;
            }
            None if change.action == Action::Delete => {
                eprintln!("  deleting SecureString {} (SDK)", change.physical);
                resources::parameter::delete(clients, &change.physical).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// After the stack changed: writes the SecureStrings and creates the access keys (the
/// secret goes straight to its SecureString).
pub async fn after(
    clients: &Clients,
    stack: &ResolvedStack,
    around: &Around,
) -> anyhow::Result<()> {
    let ctx = resources::ApplyCtx {
        read: crate::session::read_ctx(stack),
        stack: stack.clone(),
        artifacts: Default::default(),
    };
    for change in &around.plan.changes {
        if change.action == Action::Delete {
            continue;
        }
        let Some(want) = around.desired.iter().find(|d| d.address == change.address) else {
            continue;
        };
        let have = around
            .observed
            .get(&change.address)
            .and_then(Option::as_ref);
        match user_of(&change.address) {
            Some(logical) if wants_key(change) => {
                eprintln!(
                    "  creating an access key for {}; its secret goes to SSM (SDK)",
                    change.physical
                );
                // A key whose secret was lost is replaced: IAM cannot show a secret again.
                resources::user::delete_access_keys(clients, &ctx.read, logical, &change.physical)
                    .await?;
                resources::user::create_access_key(clients, &ctx.read, logical, &change.physical)
                    .await?;
            }
            Some(_) => {}
            None => {
                eprintln!("  writing SecureString {} (SDK)", change.physical);
                resources::converge(clients, &ctx, want, have, &|_| {}).await?;
            }
        }
    }
    Ok(())
}
