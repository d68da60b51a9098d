//! What a resource kind knows about itself. Each kind is one file of `resources/` with a unit
//! type implementing [`ResourceKind`], registered by one line in `registry.rs`; the engine,
//! the planner, the CloudFormation engine and `verify` reach kinds only through the
//! registry's dispatch, so they never name one.
//!
//! What the engine relies on (the guarantees a kind must keep):
//! - `read` is side-effect free and answers `Ok(None)` for a resource that does not exist
//!   (whatever code its service uses for "not found").
//! - `converge` is idempotent: called again after an interrupted run, with `have` as read
//!   then, it finishes the job (a create that finds the resource already there adopts it,
//!   if [`ResourceKind::check_adoption`] allows).
//! - `remove` succeeds when the resource is already gone.
//! - Errors of SDK calls are [`crate::aws::AwsError`]s, so callers match on codes.

use std::future::Future;

use super::access::Access;
use super::cloudformation::{CheckovSkip, Synthesis};
use super::grant::Grant;
use super::{
    Address, ApplyCtx, Artifacts, Desired, Kind, Observed, PropKind, Props, ReadCtx, Removal,
    Settings,
};
use crate::aws::Clients;
use crate::stack::ResolvedStack;

pub(crate) trait ResourceKind {
    /// The kind's name in addresses, plans and state (`bucket`).
    const NAME: &'static str;

    /// The AWS service its calls go to (`s3`, `iam`): reads are bounded per service, as
    /// each service throttles on its own.
    const SERVICE: &'static str;

    /// The kinds whose resources must be gone before one of this kind is deleted: what
    /// refers to it, or what deleting it would race with. Every other pair of kinds is
    /// deleted in parallel.
    const DELETED_AFTER: &'static [Kind] = &[];

    /// The CloudFormation resource type this kind is deployed as, and the suffix of its
    /// logical ids (`SourceBucket`); `None` when CloudFormation folds it into another
    /// resource (a bucket's notification is a property of the bucket).
    const CLOUDFORMATION: Option<(&'static str, &'static str)>;

    /// Its resource's `Properties` in a CloudFormation template (pure); `None` when it has no
    /// resource of its own there (a property of another: a bucket's notification; or kept
    /// out: a SecureString). What else the template needs for it (a companion resource,
    /// extra dependencies, what the SDK does around the stack) it tells `synthesis`.
    fn cloudformation_properties(
        _want: &Desired,
        _synthesis: &mut Synthesis<'_>,
    ) -> Option<serde_json::Value> {
        None
    }

    /// The checkov checks its resource fails by design, each with the reason the stack
    /// answers it otherwise and when it applies: the template skips them on the resource.
    const CHECKOV_SKIPS: &'static [CheckovSkip] = &[];

    /// The suffixes of the companion resources it adds to a template (a bucket's `Policy`):
    /// their logical ids are its own plus the suffix.
    const CLOUDFORMATION_COMPANIONS: &'static [&'static str] = &[];

    /// For a kind without a resource of its own in CloudFormation (`CLOUDFORMATION` is
    /// `None`), the resource it is a property of (a notification: its bucket).
    fn cloudformation_host(_address: &Address) -> Option<Address> {
        None
    }

    /// The inverse of [`Self::cloudformation_properties`], written from CloudFormation's
    /// property names independently of it, for the test that both engines describe the
    /// same infrastructure: `resource` in the SDK engine's vocabulary, with any resource
    /// folded into it (a bucket's notification).
    #[cfg(test)]
    fn from_cloudformation(
        _resource: &super::cloudformation::TemplateResource<'_>,
    ) -> super::cloudformation::ReadBack {
        Vec::new()
    }

    /// Its desired state as CloudFormation can express it (where they differ, the kind says
    /// why), for the same test: the physical name and properties.
    #[cfg(test)]
    fn cloudformation_comparable(want: &Desired) -> (String, super::Props) {
        (want.physical.clone(), want.props.clone())
    }

    /// The name its CloudFormation logical id is made of (`source` of `SourceBucket`).
    fn cloudformation_name<'a>(_stack: &ResolvedStack, address: &'a Address) -> &'a str {
        &address.name
    }

    /// Whether its `tags` property holds the stack's tags. Then only the keys the stack
    /// manages are compared and written, and the state remembers them (`tags.rs`).
    const TAGGED: bool = false;

    /// Every resource of this kind the stack declares (pure).
    fn desired(stack: &ResolvedStack, artifacts: &Artifacts) -> Vec<Desired>;

    /// What the deployer must be allowed to do to read, converge and remove this kind's
    /// resources of `stack`: every action its calls need, on those resources only (pure;
    /// `cargo xtask deployer-policy` joins every kind's, and a test deploys with nothing
    /// more on an emulator that enforces IAM).
    fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant>;

    /// How the plan compares and shows property `prop`.
    fn prop_kind(prop: &str) -> PropKind {
        default_prop_kind(prop)
    }

    /// The access `props` grant (pure): the statements of the resource's policies, for the
    /// plan's security summary. `props` is one side of a change: every property of a created
    /// or deleted resource, only the changed ones of an updated one.
    fn access(_address: &Address, _props: &Props) -> Vec<Access> {
        Vec::new()
    }

    /// Settings the state keeps with a resource for its later delete (a bucket's
    /// `force_destroy`), from the stack as it is now.
    fn settings(_stack: &ResolvedStack, _address: &Address) -> Settings {
        Settings::new()
    }

    /// Refuses to take over `have`, which exists but is not in our state, when it is not
    /// ours (bucket names are global; IAM names are global to the account, across regions).
    fn check_adoption(
        _stack: &ResolvedStack,
        _want: &Desired,
        _have: &Observed,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// Observes one resource by its physical name; `Ok(None)`: it does not exist.
    fn read(
        clients: &Clients,
        ctx: &ReadCtx,
        address: &Address,
        physical: &str,
    ) -> impl Future<Output = anyhow::Result<Option<Observed>>> + Send;

    /// Brings an existing resource (or a missing one, `have == None`) to `want`. `on_wait`
    /// is told when it waits on AWS (progress output).
    fn converge(
        clients: &Clients,
        ctx: &ApplyCtx,
        want: &Desired,
        have: Option<&Observed>,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Deletes one resource, with the settings recorded for it.
    fn remove(
        clients: &Clients,
        ctx: &ReadCtx,
        address: &Address,
        physical: &str,
        settings: &Settings,
    ) -> impl Future<Output = anyhow::Result<Removal>> + Send;
}

/// What the state records for a resource of kind `K`: the kind's own settings and, for a
/// tagged kind, the tag keys the stack now sets on it.
pub(crate) fn record_settings<K: ResourceKind>(
    stack: &ResolvedStack,
    address: &Address,
) -> Settings {
    let mut settings = K::settings(stack, address);
    if K::TAGGED {
        settings.extend(super::tags::settings(stack.tags.keys()));
    }
    settings
}

/// What the state records while a resource of kind `K` is being changed, its record holding
/// `recorded`: as [`record_settings`], with the tag keys recorded before kept as well.
pub(crate) fn settings_during<K: ResourceKind>(
    stack: &ResolvedStack,
    address: &Address,
    recorded: &Settings,
) -> Settings {
    let settings = record_settings::<K>(stack, address);
    if K::TAGGED {
        super::tags::during(recorded, settings)
    } else {
        settings
    }
}

/// The part of `have` the stack manages, its record holding `recorded`: what the plan
/// compares and converge starts from (tags set by others are left out).
pub(crate) fn managed<K: ResourceKind>(
    want: &Desired,
    have: Observed,
    recorded: &Settings,
) -> Observed {
    if K::TAGGED {
        super::tags::managed_view(want, have, recorded)
    } else {
        have
    }
}

/// Policy documents are shown as diffs; everything else as `old -> new`.
pub(crate) fn default_prop_kind(prop: &str) -> PropKind {
    match prop {
        "policy" | "trust_policy" | "document" => PropKind::Document,
        _ => PropKind::Plain,
    }
}
