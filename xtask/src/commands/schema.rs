//! `cargo xtask schema`: writes the stack file's JSON Schema (`stack::schema`) to
//! `stacks/stack.schema.json`, or with `--check` only says whether it is up to date.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::stack::schema;

pub(crate) fn run(check: bool) -> anyhow::Result<ExitCode> {
    let path = crate::workspace::root().join(schema::SCHEMA_PATH);
    let fresh = schema::generate();
    let committed = std::fs::read_to_string(&path).ok();
    if committed.as_deref() == Some(fresh.as_str()) {
        println!("{}: up to date", schema::SCHEMA_PATH);
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        eprintln!(
            "error: {} is stale; run `cargo xtask schema`",
            schema::SCHEMA_PATH
        );
        return Ok(ExitCode::from(1));
    }
    std::fs::write(&path, fresh).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", schema::SCHEMA_PATH);
    Ok(ExitCode::SUCCESS)
}
