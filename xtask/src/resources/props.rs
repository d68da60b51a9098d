//! Typed properties: every kind keeps its properties in a struct of its own, serialised into
//! the generic [`Props`] map the plan diffs (one pure function for every kind) and read back
//! from it. The struct's serde attributes keep the map's keys and JSON values what the plan,
//! its rendering and the state have always shown.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::Props;

/// A kind's properties as a struct: `into_props` for the plan, `of` for the code that reads
/// a desired or observed state.
pub(crate) trait TypedProps: Serialize + DeserializeOwned {
    /// The property map the plan compares.
    fn into_props(self) -> Props {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => Props::new(),
        }
    }

    /// The struct held in `props` (a desired or observed state of this kind).
    fn of(props: &Props) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(Value::Object(
            props.clone().into_iter().collect(),
        ))?)
    }
}

/// Whether a property must be written: its desired value differs from the observed one, or
/// nothing was observed.
pub(crate) fn changed<T: PartialEq>(want: &T, have: Option<&T>) -> bool {
    have != Some(want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{
        bucket, function, invoke_config, log_group, notification, parameter, permission, policy,
        queue, role, user, Artifact, Artifacts, Desired, Kind,
    };

    fn again<P: TypedProps>(want: &Desired) -> Props {
        P::of(&want.props)
            .unwrap_or_else(|err| panic!("{}: {err:#}", want.address))
            .into_props()
    }

    /// Every kind's desired properties are its struct, whole: read into it and serialised
    /// again they are the same map (no key lost or added), with a built bundle and without.
    #[test]
    fn every_desired_state_round_trips_through_its_struct() {
        for stack in crate::stack::pipeline_in_every_env() {
            let built: Artifacts = stack
                .functions
                .values()
                .map(|f| {
                    let artifact = Artifact {
                        bucket: "state".into(),
                        key: "artifacts/x.zip".into(),
                        code_sha256: "c2hhMjU2".into(),
                    };
                    (f.package.clone(), artifact)
                })
                .collect();
            for artifacts in [Artifacts::new(), built] {
                for want in crate::resources::desired_all(&stack, &artifacts) {
                    let props = match want.address.kind {
                        Kind::Bucket => again::<bucket::BucketProps>(&want),
                        Kind::Parameter => again::<parameter::ParameterProps>(&want),
                        Kind::Policy => again::<policy::PolicyProps>(&want),
                        Kind::User => again::<user::UserProps>(&want),
                        Kind::Role => again::<role::RoleProps>(&want),
                        Kind::LogGroup => again::<log_group::LogGroupProps>(&want),
                        Kind::Queue => again::<queue::QueueProps>(&want),
                        Kind::Function => again::<function::FunctionProps>(&want),
                        Kind::InvokeConfig => again::<invoke_config::InvokeConfigProps>(&want),
                        Kind::Permission => again::<permission::PermissionProps>(&want),
                        Kind::Notification => again::<notification::NotificationProps>(&want),
                    };
                    assert_eq!(props, want.props, "{} in env {}", want.address, stack.env);
                }
            }
        }
    }

    /// A SecureString's properties hold its type and the hash of its value, never the value.
    #[test]
    fn a_secure_parameter_is_its_type_and_hash() {
        let props = parameter::ParameterProps {
            value: parameter::ParameterValue::SecureString {
                value_sha256: "aa".into(),
            },
            tags: [("env".to_owned(), "dev".to_owned())].into(),
        }
        .into_props();
        assert_eq!(
            serde_json::Value::Object(props.clone().into_iter().collect()),
            serde_json::json!({"type": "SecureString", "value_sha256": "aa", "tags": {"env": "dev"}})
        );
        assert!(parameter::ParameterProps::of(&props)
            .expect("typed")
            .is_secure());
    }
}
