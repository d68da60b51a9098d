//! The stack file's JSON Schema, generated from the model's types (`model.rs`), so that an
//! editor with a YAML language server completes keys, shows their descriptions and flags
//! unknown ones as the file is typed. `cargo xtask schema` writes it to
//! `stacks/stack.schema.json`, which the shipped stack names on its first line; a test keeps
//! the committed file equal to what the types say.
//!
//! The schema checks the file's shape, as the parser does; what `validate` checks beyond it
//! (references, names, sizes, policies) stays in `validate`.

use super::model::Document;

/// Where the schema is committed, relative to the repository root.
pub const SCHEMA_PATH: &str = "stacks/stack.schema.json";

/// The schema as committed: pretty-printed JSON and a final newline.
pub fn generate() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Document>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|err| {
        unreachable!("a schema built from JSON values always serialises: {err}")
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_schema_is_what_the_types_say() {
        let path = crate::workspace::root().join(SCHEMA_PATH);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generate(),
            "{} is stale: run `cargo xtask schema`",
            path.display()
        );
    }

    #[test]
    fn the_shipped_stack_names_the_schema() {
        let stack = crate::workspace::stacks_dir().join("exif-pipeline.yaml");
        let text = std::fs::read_to_string(&stack).expect("the shipped stack");
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=./stack.schema.json")
        );
    }

    #[test]
    fn the_schema_describes_every_key_and_refuses_unknown_ones() {
        let schema: serde_json::Value = serde_json::from_str(&generate()).expect("JSON");
        let root = &schema["properties"];
        for key in [
            "stack",
            "region",
            "tags",
            "environments",
            "buckets",
            "parameters",
            "users",
            "functions",
        ] {
            assert!(root.get(key).is_some(), "no `{key}` in {root}");
        }
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["required"],
            serde_json::json!(["stack", "region"]),
            "only what the parser requires is required"
        );
        let definitions = &schema["definitions"];
        let function = &definitions["FunctionSpec"];
        assert_eq!(function["additionalProperties"], false);
        assert_eq!(function["required"], serde_json::json!(["package"]));
        assert_eq!(
            definitions["Architecture"]["enum"],
            serde_json::json!(["x86_64", "arm64"]),
            "{}",
            definitions["Architecture"]
        );
        assert!(
            function["properties"]["memory"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("MB")),
            "doc comments are the descriptions: {function}"
        );
    }
}
