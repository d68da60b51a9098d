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
