//! Environment overlays: an environment's patch deep-merged over the base document, with
//! JSON Merge Patch semantics (RFC 7386) applied to YAML: mappings merge key by key, `null`
//! removes a key (`memory: null` restores the default, `buckets: { logs: null }` drops a
//! bucket), and anything else (scalars, lists) replaces what the base had. Pure data.

use serde_norway::Value;

/// `base` with `patch` merged over it.
pub fn merge(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Mapping(base_map), Value::Mapping(patch_map)) => {
            let mut merged = base_map.clone();
            for (key, patch_value) in patch_map {
                if patch_value.is_null() {
                    merged.remove(key);
                    continue;
                }
                let value = match base_map.get(key) {
                    Some(base_value) => merge(base_value, patch_value),
                    None => strip_nulls(patch_value),
                };
                merged.insert(key.clone(), value);
            }
            Value::Mapping(merged)
        }
        _ => strip_nulls(patch),
    }
}

/// A patch's new subtree, with the `null`s (deletions of nothing) removed, as RFC 7386 does.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).expect("test YAML parses")
    }

    #[test]
    fn maps_merge_scalars_and_lists_replace() {
        let base = yaml(
            "buckets:\n  a: { versioning: true, lifecycle: [{ id: x }, { id: y }] }\n  b: { retain: false }\ntags: { t: 1 }\n",
        );
        let patch = yaml(
            "buckets:\n  a: { lifecycle: [{ id: z }] }\n  b: { retain: true }\ntags: { u: 2 }\n",
        );
        let expected = yaml(
            "buckets:\n  a: { versioning: true, lifecycle: [{ id: z }] }\n  b: { retain: true }\ntags: { t: 1, u: 2 }\n",
        );
        assert_eq!(merge(&base, &patch), expected);
    }

    #[test]
    fn null_removes() {
        let base = yaml(
            "buckets: { a: { name: x }, b: { name: y } }\nfunctions: { f: { memory: 512 } }\n",
        );
        let patch = yaml("buckets: { b: null, c: { name: z, retain: null } }\nfunctions: { f: { memory: null } }\n");
        let expected = yaml("buckets: { a: { name: x }, c: { name: z } }\nfunctions: { f: {} }\n");
        assert_eq!(merge(&base, &patch), expected);
    }

    #[test]
    fn a_mapping_replaces_a_scalar_and_vice_versa() {
        assert_eq!(
            merge(&yaml("a: 1"), &yaml("a: { b: 2 }")),
            yaml("a: { b: 2 }")
        );
        assert_eq!(merge(&yaml("a: { b: 2 }"), &yaml("a: [1]")), yaml("a: [1]"));
    }
}
