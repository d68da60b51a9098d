//! The commands that plan and change an environment with the SDK engine: small `run`
//! functions over the application layer (`session`).

pub(crate) mod bundle;
pub(crate) mod deploy;
pub(crate) mod deployer_policy;
pub(crate) mod destroy;
pub(crate) mod plan;
pub(crate) mod validate;
