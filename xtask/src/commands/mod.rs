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
