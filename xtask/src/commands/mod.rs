//! The commands that plan and change an environment with the SDK engine, and the offline
//! ones over the stack file (`validate`, `schema`): small `run` functions over the
//! application layer (`session`).

pub(crate) mod bundle;
pub(crate) mod deploy;
pub(crate) mod deployer_policy;
pub(crate) mod destroy;
pub(crate) mod failures;
pub(crate) mod invoke;
pub(crate) mod logs;
pub(crate) mod plan;
pub(crate) mod reconcile;
pub(crate) mod schema;
pub(crate) mod validate;
pub(crate) mod watch;

/// The function a command acts on: the one named (`--function`), else the stack's only one.
pub(crate) fn chosen_function<'a>(
    stack: &'a crate::stack::ResolvedStack,
    name: Option<&str>,
) -> anyhow::Result<&'a crate::stack::resolved::Function> {
    match name {
        Some(name) => stack.functions.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no function `{name}` in stack `{}` (functions: {})",
                stack.stack,
                stack
                    .functions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        None => match stack.functions.values().collect::<Vec<_>>().as_slice() {
            [only] => Ok(only),
            [] => anyhow::bail!("stack `{}` has no function", stack.stack),
            _ => anyhow::bail!(
                "stack `{}` has several functions: name one with --function",
                stack.stack
            ),
        },
    }
}
