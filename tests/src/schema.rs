//! The stack file's committed JSON Schema (`stacks/stack.schema.json`), applied by a
//! validator that shares nothing with the deployer (boon, which follows the schema's own
//! `$schema`: Draft 7). The deployer generates the schema from the types its parser reads, so
//! an editor and `cargo xtask` should agree on every file; this is the check that they do.
//! Every stack file a test runs `cargo xtask` on successfully passes through it
//! ([`crate::StackFile::run`]).

use std::sync::OnceLock;

/// Where the schema is served from inside the validator (it is never fetched).
const SCHEMA_URL: &str = "file:///stacks/stack.schema.json";

struct Compiled {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = xtask::workspace::root().join("stacks/stack.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, schema)
            .expect("the schema is added");
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .unwrap_or_else(|e| panic!("{} is not a valid JSON Schema: {e:#}", path.display()));
        Compiled { schemas, index }
    })
}

/// Whether the schema accepts the stack file `yaml`; the error lists every place it refuses,
/// with its JSON pointer.
pub fn check(yaml: &str) -> Result<(), String> {
    let instance: serde_json::Value =
        serde_norway::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let compiled = compiled();
    compiled
        .schemas
        .validate(&instance, compiled.index)
        .map_err(|e| format!("{e:#}"))
}
