//! The stack's tags on its resources, and who a resource belongs to (pure).
//!
//! **Which tags are the stack's.** Every taggable resource carries the stack's tags
//! (`ResolvedStack::tags`: the stack file's `tags` plus `stack`, `env`, `region` and
//! `managed-by`). Others tag the same resources: an organisation's auto-tagger, a person in
//! the console. As in Terraform, the stack manages only its own keys: a key it never set is
//! neither drift nor removed, and a key it set and no longer declares is removed. A
//! resource's tags alone cannot tell a dropped key of ours from someone else's, so the state
//! remembers which keys the stack set: each record of a tagged kind keeps `managed_tags`
//! (one of its `settings`, next to a bucket's `force_destroy`). The managed keys are those
//! declared now plus those recorded; only they are read into the plan ([`managed_view`]),
//! compared and written ([`changes`]: tag what is new or changed, untag what is no longer
//! declared). The engine records the union of the old and new keys before it changes a
//! resource and the declared keys once the change succeeded, so a run that dies half-way
//! forgets no key it may have set. A record written before this existed has no
//! `managed_tags`: then only the declared keys are managed.
//!
//! **Who a resource belongs to.** A resource that exists but is not in the state is taken
//! over only when its tags say it is this stack's, env's (and, for IAM, whose names are
//! global to the account, region's): [`check_ours`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{Desired, Observed, Props, Settings};

/// The property a tagged kind keeps its tags in: the `tags` field of its typed properties.
/// This module works on the property map, the same for every tagged kind.
const TAGS: &str = "tags";

/// The tags held in `props` (a tagged kind's properties), as a map of strings.
pub(crate) fn of(props: &Props) -> BTreeMap<String, String> {
    props
        .get(TAGS)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The record setting holding the tag keys the stack set on a resource.
pub(crate) const MANAGED_TAGS: &str = "managed_tags";

/// The settings recording that the stack manages tag keys `keys`.
pub(crate) fn settings<'a>(keys: impl IntoIterator<Item = &'a String>) -> Settings {
    let keys: BTreeSet<&String> = keys.into_iter().collect();
    let mut settings = Settings::new();
    settings.insert(MANAGED_TAGS.to_owned(), json!(keys));
    settings
}

/// The tag keys a record says the stack set (none for a record from before `managed_tags`).
pub(crate) fn recorded(settings: &Settings) -> BTreeSet<String> {
    settings
        .get(MANAGED_TAGS)
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What to record while a change runs: the keys recorded and the keys declared now (`new`
/// holds the latter), so that a run killed half-way still knows every key it may have set.
pub(crate) fn during(recorded_settings: &Settings, mut new: Settings) -> Settings {
    let mut keys = recorded(recorded_settings);
    keys.extend(recorded(&new));
    new.insert(MANAGED_TAGS.to_owned(), json!(keys));
    new
}

/// `have` with only the tags the stack manages: the keys `want` declares and those
/// `recorded` (a resource's record settings) says the stack set. Everything else in its
/// `tags` is someone else's and stays out of the plan. A `want` without tags is unchanged.
pub(crate) fn managed_view(
    want: &Desired,
    mut have: Observed,
    recorded_settings: &Settings,
) -> Observed {
    let Some(declared) = want.props.get(TAGS).and_then(Value::as_object) else {
        return have;
    };
    let managed = recorded(recorded_settings);
    if let Some(Value::Object(tags)) = have.props.get_mut(TAGS) {
        tags.retain(|key, _| declared.contains_key(key) || managed.contains(key));
    }
    have
}

/// What converging the tags writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TagChanges {
    /// New keys and keys whose value changed (one tagging call).
    pub set: BTreeMap<String, String>,
    /// Keys the stack set and no longer declares (one untagging call).
    pub remove: Vec<String>,
}

/// From the observed tags to the declared ones. `have` must be a [`managed_view`] (or the
/// state just written by this run): every key in it that `want` lacks is removed.
pub(crate) fn changes(want: &Props, have: Option<&Props>) -> TagChanges {
    let wanted = of(want);
    let present = have.map(of).unwrap_or_default();
    TagChanges {
        set: wanted
            .iter()
            .filter(|(key, value)| present.get(*key) != Some(*value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        remove: present
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect(),
    }
}

/// [`check_ours`] for `have`, a resource of kind `what` (`IAM role`) tagged with the region
/// as well: whether `want`'s name may be taken over by this stack, env and region.
pub(crate) fn check_regional(
    what: &str,
    (stack, env, region): (&str, &str, &str),
    want: &super::Desired,
    have: &super::Observed,
) -> anyhow::Result<()> {
    check_ours(
        what,
        &want.physical,
        &of(&have.props),
        stack,
        env,
        Some(region),
    )
}

/// Refuses to take over `name` (a `what`: "IAM user") that exists but is not in the state,
/// unless its tags say it belongs to this `stack` and `env`, and to `region` when given
/// (IAM names are global to an account: the same env deployed in two regions would
/// otherwise share one user, and either's destroy delete it). The error names the owner
/// its tags give, or says it has none.
pub(crate) fn check_ours(
    what: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
    stack: &str,
    env: &str,
    region: Option<&str>,
) -> anyhow::Result<()> {
    let tag = |key: &str| tags.get(key).map(String::as_str);
    let same_env = tag("stack") == Some(stack) && tag("env") == Some(env);
    let same_region = region.is_none_or(|r| tag("region") == Some(r));
    if same_env && same_region {
        return Ok(());
    }
    let wanted = match region {
        Some(region) => format!("stack={stack}, env={env}, region={region}"),
        None => format!("stack={stack}, env={env}"),
    };
    let take_over = format!(
        "If it is this stack's, tag it {wanted} to take it over; otherwise delete or rename \
         it, or choose other names in the stack file"
    );
    let owner: Vec<String> = ["stack", "env", "region"]
        .into_iter()
        .filter_map(|key| Some(format!("{key} `{}`", tag(key)?)))
        .collect();
    let (why, hint) = match tag("region") {
        _ if owner.is_empty() => (
            "has none of stripstack's tags (stack, env, region)".to_owned(),
            take_over,
        ),
        Some(other) if same_env => (
            format!("belongs to this stack and env in region `{other}`"),
            "IAM names are global to the account, so an env of a stack lives in one region \
             only: deploy this one here under another env name"
                .to_owned(),
        ),
        // Made by a stripstack that did not tag regions yet, in whichever region.
        None if same_env => (
            "is tagged for this stack and env but for no region (it may be this env's in \
             another region)"
                .to_owned(),
            take_over,
        ),
        _ => (format!("belongs to {}", owner.join(", ")), take_over),
    };
    anyhow::bail!(
        "{what} `{name}` already exists in this account and {why}: refusing to adopt it. {hint}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Address, Kind};

    fn want(tags: Value) -> Desired {
        Desired {
            address: Address::new(Kind::User, "u"),
            physical: "demo-dev-u".into(),
            props: [("tags".to_owned(), tags)].into_iter().collect(),
            depends_on: Vec::new(),
            retain: false,
        }
    }

    fn have(tags: Value) -> Observed {
        Observed {
            physical: "demo-dev-u".into(),
            props: [("tags".to_owned(), tags)].into_iter().collect(),
        }
    }

    fn recorded_keys(keys: &[&str]) -> Settings {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        settings(&keys)
    }

    #[test]
    fn a_foreign_tag_is_not_drift_and_is_never_removed() {
        let want = want(json!({"env": "dev", "stack": "demo"}));
        let seen = managed_view(
            &want,
            have(json!({"env": "dev", "stack": "demo", "CostCenter": "42"})),
            &recorded_keys(&["env", "stack"]),
        );
        assert_eq!(seen.props["tags"], json!({"env": "dev", "stack": "demo"}));
        assert_eq!(
            changes(&want.props, Some(&seen.props)),
            TagChanges::default()
        );
    }

    #[test]
    fn a_key_the_stack_no_longer_declares_is_removed() {
        let want = want(json!({"env": "dev", "stack": "demo"}));
        let seen = managed_view(
            &want,
            have(json!({"env": "dev", "stack": "demo", "team": "photos", "CostCenter": "42"})),
            &recorded_keys(&["env", "stack", "team"]),
        );
        assert_eq!(
            seen.props["tags"],
            json!({"env": "dev", "stack": "demo", "team": "photos"})
        );
        assert_eq!(
            changes(&want.props, Some(&seen.props)),
            TagChanges {
                set: BTreeMap::new(),
                remove: vec!["team".to_owned()],
            }
        );
    }

    #[test]
    fn new_and_changed_keys_are_set_and_a_foreign_key_becomes_ours_when_declared() {
        let want = want(json!({"env": "prod", "stack": "demo", "CostCenter": "7"}));
        // A record from before `managed_tags`: only the declared keys are the stack's.
        let seen = managed_view(
            &want,
            have(json!({"env": "dev", "stack": "demo", "CostCenter": "42", "Owner": "ops"})),
            &Settings::new(),
        );
        assert_eq!(
            changes(&want.props, Some(&seen.props)),
            TagChanges {
                set: [("CostCenter", "7"), ("env", "prod")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                remove: Vec::new(),
            }
        );
        assert_eq!(
            changes(&want.props, None).set.len(),
            3,
            "a new resource gets every tag"
        );
    }

    #[test]
    fn while_changing_the_record_keeps_old_and_new_keys() {
        let mut new = Settings::new();
        new.insert("force_destroy".into(), json!(true));
        new.extend(recorded_keys(&["env", "stack"]));
        let during = during(&recorded_keys(&["env", "team"]), new);
        assert_eq!(during["force_destroy"], json!(true));
        assert_eq!(during[MANAGED_TAGS], json!(["env", "stack", "team"]));
    }

    #[test]
    fn kinds_without_tags_are_left_alone() {
        let mut want = want(json!({}));
        want.props.clear();
        let observed = have(json!({"x": "y"}));
        assert_eq!(
            managed_view(&want, observed.clone(), &Settings::new()),
            observed
        );
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn refusal(tags: &[(&str, &str)], region: Option<&str>) -> String {
        match check_ours("IAM user", "demo-dev-u", &map(tags), "demo", "dev", region) {
            Ok(()) => "adopted".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn adoption_needs_this_stack_env_and_for_iam_region() {
        let ours = [("stack", "demo"), ("env", "dev"), ("region", "eu-west-2")];
        assert_eq!(refusal(&ours, Some("eu-west-2")), "adopted");
        assert_eq!(refusal(&ours[..2], None), "adopted", "buckets: no region");
        for (tags, region) in [
            (&[][..], Some("eu-west-2")),
            (&ours[..], Some("us-east-1")),
            (&ours[..2], Some("eu-west-2")),
            (&[("stack", "other"), ("env", "dev")][..], None),
        ] {
            assert!(
                refusal(tags, region).contains("refusing to adopt"),
                "{tags:?} {region:?}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_owner_or_says_there_is_none() {
        insta::assert_snapshot!([
            refusal(&[("CreatedBy", "alice")], Some("eu-west-2")),
            refusal(
                &[
                    ("stack", "billing"),
                    ("env", "prod"),
                    ("region", "eu-west-2")
                ],
                Some("eu-west-2")
            ),
            refusal(
                &[("stack", "demo"), ("env", "dev"), ("region", "us-east-1")],
                Some("eu-west-2")
            ),
            refusal(&[("stack", "demo"), ("env", "dev")], Some("eu-west-2")),
        ]
        .join("\n\n"));
    }
}
