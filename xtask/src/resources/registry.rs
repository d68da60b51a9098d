//! Every resource kind, one line each, in dependency order (a kind may depend only on kinds
//! before it: the engine relies on it to settle creation levels in one pass). The macro
//! generates the [`Kind`] enum and the dispatch the rest of the deployer uses, so adding a
//! kind is its file plus one line here.

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::cloudformation::{CheckovSkip, Synthesis};
use super::grant::Grant;
use super::kind::{self, ResourceKind};
use super::{
    bucket, function, invoke_config, log_group, notification, parameter, permission, policy, queue,
    role, user, Address, ApplyCtx, Artifacts, Desired, Observed, PropKind, Props, ReadCtx, Removal,
    Settings,
};
use crate::aws::Clients;
use crate::stack::ResolvedStack;

macro_rules! registry {
    ($($variant:ident => $kind:ty),* $(,)?) => {
        /// Resource kinds, in dependency order. Serialised (state, saved plans) as the
        /// kind's [`ResourceKind::NAME`]; a unit test checks the two agree.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Kind {
            $($variant),*
        }

        impl Kind {
            /// Every kind, in dependency order.
            pub(crate) const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::NAME),*
                }
            }

            /// See [`ResourceKind::SERVICE`].
            pub(crate) fn service(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::SERVICE),*
                }
            }

            /// See [`ResourceKind::DELETED_AFTER`].
            pub fn deleted_after(self) -> &'static [Kind] {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::DELETED_AFTER),*
                }
            }

            /// See [`ResourceKind::deployer_grants`].
            #[cfg(test)]
            pub(crate) fn deployer_grants(self, stack: &ResolvedStack) -> Vec<Grant> {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::deployer_grants(stack)),*
                }
            }

            /// See [`ResourceKind::access`].
            pub(crate) fn access(self, address: &Address, props: &Props) -> Vec<Access> {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::access(address, props)),*
                }
            }

            /// See [`ResourceKind::prop_kind`].
            pub fn prop_kind(self, prop: &str) -> PropKind {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::prop_kind(prop)),*
                }
            }

            /// See [`ResourceKind::CLOUDFORMATION`].
            pub(crate) fn cloudformation(self) -> Option<(&'static str, &'static str)> {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::CLOUDFORMATION),*
                }
            }

            /// See [`ResourceKind::CHECKOV_SKIPS`].
            pub(crate) fn checkov_skips(self) -> &'static [CheckovSkip] {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::CHECKOV_SKIPS),*
                }
            }

            /// See [`ResourceKind::CLOUDFORMATION_COMPANIONS`].
            pub(crate) fn cloudformation_companions(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::CLOUDFORMATION_COMPANIONS),*
                }
            }

            /// See [`ResourceKind::cloudformation_host`].
            pub(crate) fn cloudformation_host(self, address: &Address) -> Option<Address> {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::cloudformation_host(address)),*
                }
            }

            /// See [`ResourceKind::cloudformation_name`].
            pub(crate) fn cloudformation_name<'a>(
                self,
                stack: &ResolvedStack,
                address: &'a Address,
            ) -> &'a str {
                match self {
                    $(Kind::$variant => <$kind as ResourceKind>::cloudformation_name(stack, address)),*
                }
            }

            /// The kind deployed as CloudFormation type `resource_type`.
            pub(crate) fn of_cloudformation_type(resource_type: &str) -> Option<Kind> {
                Kind::ALL
                    .iter()
                    .copied()
                    .find(|kind| kind.cloudformation().is_some_and(|(t, _)| t == resource_type))
            }
        }

        /// Every resource the stack declares, in kind order.
        pub fn desired_all(stack: &ResolvedStack, artifacts: &Artifacts) -> Vec<Desired> {
            let mut all = Vec::new();
            $(all.extend(<$kind as ResourceKind>::desired(stack, artifacts));)*
            all
        }

        /// Every kind's [`ResourceKind::deployer_grants`] for `stack`, in kind order.
        pub(crate) fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
            let mut all = Vec::new();
            $(all.extend(<$kind as ResourceKind>::deployer_grants(stack));)*
            all
        }

        /// See [`ResourceKind::cloudformation_properties`].
        pub(crate) fn cloudformation_properties(
            want: &Desired,
            synthesis: &mut Synthesis<'_>,
        ) -> Option<serde_json::Value> {
            match want.address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::cloudformation_properties(want, synthesis)),*
            }
        }

        /// See [`ResourceKind::from_cloudformation`].
        #[cfg(test)]
        pub(crate) fn from_cloudformation(
            kind: Kind,
            resource: &super::cloudformation::TemplateResource<'_>,
        ) -> super::cloudformation::ReadBack {
            match kind {
                $(Kind::$variant => <$kind as ResourceKind>::from_cloudformation(resource)),*
            }
        }

        /// See [`ResourceKind::cloudformation_comparable`].
        #[cfg(test)]
        pub(crate) fn cloudformation_comparable(want: &Desired) -> (String, super::Props) {
            match want.address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::cloudformation_comparable(want)),*
            }
        }

        /// What the state records with a resource: see [`kind::record_settings`].
        pub(crate) fn settings(stack: &ResolvedStack, address: &Address) -> Settings {
            match address.kind {
                $(Kind::$variant => kind::record_settings::<$kind>(stack, address)),*
            }
        }

        /// What the state records while a resource changes: see [`kind::settings_during`].
        pub(crate) fn settings_during(
            stack: &ResolvedStack,
            address: &Address,
            recorded: &Settings,
        ) -> Settings {
            match address.kind {
                $(Kind::$variant => kind::settings_during::<$kind>(stack, address, recorded)),*
            }
        }

        /// The part of `have` the stack manages: see [`kind::managed`].
        pub(crate) fn managed(want: &Desired, have: Observed, recorded: &Settings) -> Observed {
            match want.address.kind {
                $(Kind::$variant => kind::managed::<$kind>(want, have, recorded)),*
            }
        }

        /// See [`ResourceKind::check_adoption`].
        pub(crate) fn check_adoption(
            stack: &ResolvedStack,
            want: &Desired,
            have: &Observed,
        ) -> anyhow::Result<()> {
            match want.address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::check_adoption(stack, want, have)),*
            }
        }

        /// Observes one resource by kind and physical name. `Ok(None)`: it does not exist.
        pub async fn read(
            clients: &Clients,
            ctx: &ReadCtx,
            address: &Address,
            physical: &str,
        ) -> anyhow::Result<Option<Observed>> {
            match address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::read(clients, ctx, address, physical).await),*
            }
        }

        /// Brings an existing resource (or a missing one, `have == None`) to `want`.
        pub async fn converge(
            clients: &Clients,
            ctx: &ApplyCtx,
            want: &Desired,
            have: Option<&Observed>,
            on_wait: &(dyn Fn(&str) + Sync),
        ) -> anyhow::Result<()> {
            match want.address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::converge(clients, ctx, want, have, on_wait).await),*
            }
        }

        /// Deletes one resource with the settings recorded for it.
        pub async fn remove(
            clients: &Clients,
            ctx: &ReadCtx,
            address: &Address,
            physical: &str,
            settings: &Settings,
        ) -> anyhow::Result<Removal> {
            match address.kind {
                $(Kind::$variant => <$kind as ResourceKind>::remove(clients, ctx, address, physical, settings).await),*
            }
        }
    };
}

registry! {
    Bucket => bucket::Bucket,
    Parameter => parameter::Parameter,
    Policy => policy::Policy,
    User => user::User,
    Role => role::Role,
    LogGroup => log_group::LogGroup,
    Queue => queue::Queue,
    Function => function::Function,
    InvokeConfig => invoke_config::InvokeConfig,
    Permission => permission::Permission,
    Notification => notification::Notification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_serialises_as_its_name() {
        for kind in Kind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("serialises"),
                serde_json::json!(kind.as_str())
            );
        }
    }

    /// Row 9: the state remembers which tag keys the stack set on a tagged resource, with
    /// the kind's own settings; while a change runs, the keys set before are kept too.
    #[test]
    fn tagged_kinds_record_the_tag_keys_they_manage() {
        let stack = crate::stack::pipeline_in_every_env()
            .into_iter()
            .find(|s| s.env == "dev")
            .expect("a dev env");
        let keys = serde_json::json!(["env", "managed-by", "project", "region", "stack"]);
        let user = Address::new(Kind::User, "user-a");
        assert_eq!(settings(&stack, &user)["managed_tags"], keys);
        let bucket = settings(&stack, &Address::new(Kind::Bucket, "source"));
        assert_eq!(bucket["force_destroy"], serde_json::json!(true));
        assert_eq!(bucket["managed_tags"], keys);
        assert!(settings(&stack, &Address::new(Kind::Permission, "strip")).is_empty());

        let before = super::super::tags::settings(&["team".to_owned()]);
        assert_eq!(
            settings_during(&stack, &user, &before)["managed_tags"],
            serde_json::json!(["env", "managed-by", "project", "region", "stack", "team"])
        );
    }

    #[test]
    fn cloudformation_types_map_back_to_their_kind() {
        for kind in Kind::ALL {
            if let Some((resource_type, _)) = kind.cloudformation() {
                assert_eq!(Kind::of_cloudformation_type(resource_type), Some(*kind));
            }
        }
    }
}
