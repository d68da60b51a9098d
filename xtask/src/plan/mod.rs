//! The plan engine: desired states + observed states -> a `Plan`, a sorted list of changes
//! with property-level diffs. Pure: no I/O, no AWS; `render` turns a plan into text or JSON.

mod blocks;
pub mod render;
mod security;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::{Address, Desired, Observed, PropKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

/// One property that differs. `None` = absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    pub name: String,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
    /// Rendered as a unified diff of pretty JSON (policy documents).
    pub document: bool,
    /// Values are hashes of secrets: never shown.
    pub sensitive: bool,
    pub forces_replacement: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub physical: String,
    pub action: Action,
    /// For `update`/`replace`: the differing properties. For `create`/`delete`: every
    /// property of the new/old state.
    pub properties: Vec<PropertyChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    pub env: String,
    /// Sorted by (kind, name): plans render the same way every run.
    pub changes: Vec<Change>,
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// Whether the plan broadens access: a row of its security summary says so.
    pub fn broadens_access(&self) -> bool {
        security::broadens(&security::summary(self))
    }

    /// Whether every change is a function's new code and nothing else: what a save of the
    /// handler's source makes, and `deploy --watch` applies without asking.
    pub fn is_code_only(&self) -> bool {
        !self.is_empty()
            && self.changes.iter().all(|c| {
                c.address.kind == crate::resources::Kind::Function
                    && c.action == Action::Update
                    && c.properties.iter().all(|p| p.name == "code_sha256")
            })
    }
}

/// Compares what the stack declares with what exists.
///
/// `observed` holds the real state of every declared resource (`None` = does not exist) and
/// of resources recorded in state but no longer declared (`orphans`, which are deleted).
pub fn diff(
    stack: &str,
    env: &str,
    desired: &[Desired],
    observed: &BTreeMap<Address, Option<Observed>>,
    orphans: &[(Address, Observed)],
) -> Plan {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for want in desired {
        match observed.get(&want.address).and_then(Option::as_ref) {
            None => changes.push(Change {
                address: want.address.clone(),
                physical: want.physical.clone(),
                action: Action::Create,
                properties: prop_changes(want.address.kind, &Default::default(), &want.props),
            }),
            Some(have) => {
                // Only what the stack declares is compared: a property the desired state
                // leaves out (e.g. a code hash before the bundle exists) is not managed.
                let have_declared: crate::resources::Props = have
                    .props
                    .iter()
                    .filter(|(k, _)| want.props.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut properties = prop_changes(want.address.kind, &have_declared, &want.props);
                let renamed = have.physical != want.physical;
                if renamed {
                    properties.insert(
                        0,
                        PropertyChange {
                            name: "name".into(),
                            old: Some(have.physical.clone().into()),
                            new: Some(want.physical.clone().into()),
                            document: false,
                            sensitive: false,
                            forces_replacement: true,
                        },
                    );
                }
                if properties.is_empty() {
                    unchanged += 1;
                    continue;
                }
                let action = if properties.iter().any(|p| p.forces_replacement) {
                    Action::Replace
                } else {
                    Action::Update
                };
                changes.push(Change {
                    address: want.address.clone(),
                    physical: want.physical.clone(),
                    action,
                    properties,
                });
            }
        }
    }
    for (address, have) in orphans {
        if desired.iter().any(|d| &d.address == address) {
            continue;
        }
        changes.push(Change {
            address: address.clone(),
            physical: have.physical.clone(),
            action: Action::Delete,
            properties: prop_changes(address.kind, &have.props, &Default::default()),
        });
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    Plan {
        stack: stack.to_owned(),
        env: env.to_owned(),
        changes,
        unchanged,
    }
}

fn prop_changes(
    kind: crate::resources::Kind,
    old: &crate::resources::Props,
    new: &crate::resources::Props,
) -> Vec<PropertyChange> {
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (old.get(name), new.get(name));
            if o == n {
                return None;
            }
            let pk = kind.prop_kind(name);
            Some(PropertyChange {
                name: name.clone(),
                old: o.cloned(),
                new: n.cloned(),
                document: pk == PropKind::Document,
                sensitive: pk == PropKind::Sensitive,
                // Only a value that changes in place can force a replacement: not one being
                // set on a new resource or dropped with a deleted one.
                forces_replacement: pk == PropKind::ForcesReplacement && o.is_some() && n.is_some(),
            })
        })
        .collect()
}
