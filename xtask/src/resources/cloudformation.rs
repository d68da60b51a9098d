//! What a resource kind becomes in a CloudFormation template (pure). Each kind maps its own
//! desired state to its resource's `Properties` ([`super::kind::ResourceKind::cloudformation_properties`]);
//! what the template needs beyond that — a companion resource (a bucket's policy), extra
//! dependencies, what the SDK does around the stack (SecureStrings, access keys), a function's
//! code location — the kind tells the [`Synthesis`] it is given. `cfn::template` assembles
//! the template from it and never looks at a kind's properties itself.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Address, Artifacts, Desired, Kind};
use crate::stack::ResolvedStack;

/// A resource the template holds beside a kind's own: its logical id is the owner's plus
/// `suffix`; it depends on the owner and is retained with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Companion {
    pub(crate) suffix: &'static str,
    pub(crate) resource_type: &'static str,
    /// The SDK engine's address of what it stands for (`bucket.<name>.policy`).
    pub(crate) address: Address,
    pub(crate) physical: String,
    pub(crate) properties: Value,
}

/// A check of checkov (the infrastructure-as-code scanner CI runs over the synthesised
/// templates) that a kind's resource fails by design: the template skips it on the resource
/// (`Metadata: {checkov: {skip: [{id, comment}]}}`, which checkov reads) with the reason
/// this stack answers it otherwise, so a reviewer reads the reason where the check would
/// have failed, and CI fails only on a failure nobody explained. README's "Security
/// checks" lists every one with the same reason (tested).
pub(crate) struct CheckovSkip {
    /// The check's id (`CKV_AWS_18`).
    pub(crate) id: &'static str,
    /// The skip's `comment`: why the resource is right without what the check wants.
    pub(crate) reason: &'static str,
    /// Whether `want` fails the check: a skip is written only then, so a resource that
    /// comes to pass it (a stack that declares what the check wants) is counted as passing,
    /// and one whose reason no longer holds fails again.
    pub(crate) applies: fn(&ResolvedStack, &Desired) -> bool,
}

/// [`CheckovSkip::applies`] of a check every resource of the kind fails.
pub(crate) fn always(_stack: &ResolvedStack, _want: &Desired) -> bool {
    true
}

/// The `Metadata` of `want`'s resource: the checkov checks its kind skips on it
/// ([`CheckovSkip`]); `None` when none applies.
pub(crate) fn checkov_metadata(stack: &ResolvedStack, want: &Desired) -> Option<Value> {
    let skip: Vec<Value> = want
        .address
        .kind
        .checkov_skips()
        .iter()
        .filter(|skip| (skip.applies)(stack, want))
        .map(|skip| json!({ "id": skip.id, "comment": skip.reason }))
        .collect();
    (!skip.is_empty()).then(|| json!({ "checkov": { "skip": skip } }))
}

/// The template being synthesised, as one kind's resource sees it, and what the kinds told
/// it on the way.
pub(crate) struct Synthesis<'a> {
    pub(crate) stack: &'a ResolvedStack,
    artifacts: &'a Artifacts,
    desired: &'a [Desired],
    /// Where a function's code is said to be when its bundle was not built.
    state_bucket: String,
    /// Dependencies of the resource being synthesised, besides its own `depends_on`.
    pub(crate) extra_dependencies: Vec<Address>,
    /// Resources beside the one being synthesised.
    pub(crate) companions: Vec<Companion>,
    /// SecureString parameters: not a type `AWS::SSM::Parameter` can create; the SDK writes
    /// them around the stack.
    pub(crate) secure_parameters: Vec<String>,
    /// Users with an access key (logical name → user name): the SDK makes the key around
    /// the stack (an `AWS::IAM::AccessKey` would keep the secret in the stack).
    pub(crate) access_keys: BTreeMap<String, String>,
    /// Packages whose bundle was not built: their code location is a placeholder.
    pub(crate) unbuilt: Vec<String>,
}

impl<'a> Synthesis<'a> {
    pub(crate) fn new(
        stack: &'a ResolvedStack,
        artifacts: &'a Artifacts,
        desired: &'a [Desired],
        state_bucket: String,
    ) -> Self {
        Synthesis {
            stack,
            artifacts,
            desired,
            state_bucket,
            extra_dependencies: Vec::new(),
            companions: Vec::new(),
            secure_parameters: Vec::new(),
            access_keys: BTreeMap::new(),
            unbuilt: Vec::new(),
        }
    }

    /// The desired state of the stack's `kind` resource named `name`, if it declares one.
    pub(crate) fn declared(&self, kind: Kind, name: &str) -> Option<&'a Desired> {
        self.desired
            .iter()
            .find(|d| d.address.kind == kind && d.address.name == name)
    }

    /// `Code` of a function of `package`: its uploaded bundle, or, when it was not built,
    /// a placeholder in the state bucket (`synth` warns; `deploy` always builds first).
    pub(crate) fn code(&mut self, package: &str) -> Value {
        match self.artifacts.get(package) {
            Some(artifact) => json!({ "S3Bucket": artifact.bucket, "S3Key": artifact.key }),
            None => {
                self.unbuilt.push(package.to_owned());
                json!({ "S3Bucket": self.state_bucket, "S3Key": placeholder_key(package) })
            }
        }
    }
}

/// The object key a function's bundle is uploaded under when none was built yet: `synth`
/// and `plan` still show a complete template, and the warning says the key is a placeholder.
fn placeholder_key(package: &str) -> String {
    format!("artifacts/{package}/not-built-yet.zip")
}

/// A kind's tags as CloudFormation's list of `{Key, Value}`.
pub(crate) fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(key, value)| json!({ "Key": key, "Value": value }))
            .collect(),
    )
}

/// Lambda's `CodeSha256` (base64) of a content-addressed bundle key
/// (`artifacts/<package>/<hex sha256>.zip`), or `None` for any other key.
pub(crate) fn code_sha256_of_key(key: &str) -> Option<String> {
    use base64::Engine as _;
    let hex_digest = key.rsplit('/').next()?.strip_suffix(".zip")?;
    let digest = hex::decode(hex_digest).ok().filter(|d| d.len() == 32)?;
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// One resource of a synthesised template, as the test that both engines describe the same
/// infrastructure reads it back ([`super::kind::ResourceKind::from_cloudformation`]).
#[cfg(test)]
pub(crate) struct TemplateResource<'a> {
    pub(crate) stack: &'a ResolvedStack,
    /// Its address, as the template's metadata records it.
    pub(crate) address: &'a Address,
    pub(crate) properties: &'a Value,
    /// Every resource of the template, by logical id (a bucket finds its policy there).
    pub(crate) all: &'a serde_json::Map<String, Value>,
    /// The users the template's metadata gives an access key (logical name → user name).
    pub(crate) access_keys: &'a BTreeMap<String, String>,
}

/// What a template resource is, read back: each `(address, physical name, properties)`.
#[cfg(test)]
pub(crate) type ReadBack = Vec<(Address, String, super::Props)>;

/// CloudFormation's `Tags` list as the SDK engine's `tags` map.
#[cfg(test)]
pub(crate) fn tag_map(properties: &Value) -> BTreeMap<String, String> {
    properties["Tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t["Key"].as_str().unwrap_or_default().to_owned(),
                        t["Value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::Kind;

    /// The items of README's "Security checks" section (`- **CKV_…**, …`), each on one line,
    /// whitespace collapsed and without the backticks of its code spans (the template's
    /// comment is plain text).
    fn security_checks_in_readme() -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let start = readme
            .find("\n## Security checks\n")
            .expect("README has a section \"Security checks\"");
        let section = &readme[start + 1..];
        let section = &section[..section[1..]
            .find("\n## ")
            .map_or(section.len(), |end| end + 1)];
        let mut items: Vec<String> = Vec::new();
        for line in section.lines() {
            if line.starts_with("- **") {
                items.push(String::new());
            } else if !line.starts_with("  ") {
                // Not a continuation: the list, if any, is over for this line.
                continue;
            }
            if let Some(item) = items.last_mut() {
                if !item.is_empty() {
                    item.push(' ');
                }
                item.push_str(line.trim());
            }
        }
        items
            .iter()
            .map(|item| {
                item.replace('`', "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// A security reviewer reads the README: every check a kind skips in the template is
    /// listed there, with the template's reason word for word, and the README lists no check
    /// the template does not skip.
    #[test]
    fn every_checkov_skip_is_in_the_readme_with_its_reason() {
        let items = security_checks_in_readme();
        let mut skipped = BTreeSet::new();
        for kind in Kind::ALL {
            for skip in kind.checkov_skips() {
                assert!(skipped.insert(skip.id), "{} skipped twice", skip.id);
                let heading = format!("- **{}**", skip.id);
                let item = items
                    .iter()
                    .find(|item| item.starts_with(&heading))
                    .unwrap_or_else(|| {
                        panic!(
                            "README's \"Security checks\" does not list {} ({})",
                            skip.id,
                            kind.as_str()
                        )
                    });
                assert!(
                    item.contains(skip.reason),
                    "README's item for {} does not give the template's reason:\n  {}\nit says:\n  {item}",
                    skip.id,
                    skip.reason
                );
            }
        }
        let listed: BTreeSet<&str> = items
            .iter()
            .filter_map(|item| item.strip_prefix("- **")?.split("**").next())
            .collect();
        assert_eq!(
            listed, skipped,
            "README lists checks the template does not skip"
        );
        assert!(!skipped.is_empty());
    }
}
