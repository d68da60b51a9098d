//! PURE: the access a resource grants, statement by statement: what the plan's security
//! summary compares before and after a change. Each kind says what of its properties grants
//! access (`ResourceKind::access`): an IAM policy's document, a role's inline and trust
//! policies, a bucket's policy, a function's permission, a user's managed policies.

use serde::Serialize;
use serde_json::Value;

use super::Address;

/// One grant (or denial) of access.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Access {
    /// A statement of a policy document, or what acts as one (a function's permission).
    Statement(Statement),
    /// A managed policy attached to a user: whatever it allows, the user may do.
    Attachment {
        /// The user (its address).
        principal: String,
        /// The policy's ARN.
        policy: String,
    },
}

/// A policy statement as the security summary shows it. `Not…` elements (`NotAction`,
/// `NotResource`, `NotPrincipal`) are kept with a `not ` before each value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Statement {
    /// Which of the resource's policies holds it: `identity policy`, `bucket policy`, …
    pub policy: &'static str,
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// Who it applies to: the statement's `Principal`, or for an identity policy, who holds
    /// the policy.
    pub principals: Vec<String>,
    /// `Bool aws:SecureTransport = false`, one per condition key.
    pub conditions: Vec<String>,
}

impl Statement {
    pub fn is_allow(&self) -> bool {
        self.effect == "Allow"
    }
}

/// Shown for what a changed resource holds but the plan does not say (the property did not
/// change, so the plan carries only the ones that did).
pub const UNCHANGED: &str = "(unchanged)";

/// The statements of the policy document `doc` (normalised or not). A statement without a
/// `Principal` applies to `holder` (who holds an identity policy), one without a `Resource`
/// to `resource` (the role a trust policy is about).
pub fn statements(
    policy: &'static str,
    doc: &Value,
    holder: Option<&Address>,
    resource: Option<&Address>,
) -> Vec<Access> {
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .map(|s| {
            let mut principals = principals(s);
            if principals.is_empty() {
                principals.extend(holder.map(ToString::to_string));
            }
            let mut resources = [
                values(&s["Resource"], ""),
                values(&s["NotResource"], "not "),
            ]
            .concat();
            if resources.is_empty() {
                resources.extend(resource.map(ToString::to_string));
            }
            Access::Statement(Statement {
                policy,
                effect: s["Effect"].as_str().unwrap_or("Allow").to_owned(),
                actions: [values(&s["Action"], ""), values(&s["NotAction"], "not ")].concat(),
                resources,
                principals,
                conditions: conditions(&s["Condition"]),
            })
        })
        .collect()
}

/// A string or a list of strings, each with `prefix`.
fn values(value: &Value, prefix: &str) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => format!("{prefix}{s}"),
        other => format!("{prefix}{other}"),
    };
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(text).collect(),
        one => vec![text(one)],
    }
}

/// `"*"`, `Service:lambda.amazonaws.com`, `AWS:arn:…`.
fn principals(statement: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (field, prefix) in [("Principal", ""), ("NotPrincipal", "not ")] {
        match &statement[field] {
            Value::Null => {}
            Value::Object(map) => {
                for (kind, ids) in map {
                    out.extend(values(ids, &format!("{prefix}{kind}:")));
                }
            }
            other => out.extend(values(other, prefix)),
        }
    }
    out
}

fn conditions(condition: &Value) -> Vec<String> {
    let Value::Object(operators) = condition else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (operator, keys) in operators {
        if let Value::Object(keys) = keys {
            for (key, expected) in keys {
                out.push(format!(
                    "{operator} {key} = {}",
                    values(expected, "").join(", ")
                ));
            }
        }
    }
    out
}

/// `value` as a string, or [`UNCHANGED`] when the plan does not carry it.
pub fn or_unchanged(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => UNCHANGED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resources::Kind;

    #[test]
    fn a_statement_shows_its_parts_and_who_it_applies_to() {
        let holder = Address::new(Kind::User, "user-a");
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "NotAction": "s3:Get*", "Principal": {"AWS": ["arn:aws:iam::1:root"]},
             "Resource": ["arn:aws:s3:::b"],
             "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}
        ]});
        let got = statements("identity policy", &doc, Some(&holder), None);
        assert_eq!(
            got,
            vec![
                Access::Statement(Statement {
                    policy: "identity policy",
                    effect: "Allow".into(),
                    actions: vec!["s3:GetObject".into()],
                    resources: vec!["arn:aws:s3:::b/*".into()],
                    principals: vec!["user.user-a".into()],
                    conditions: vec![],
                }),
                Access::Statement(Statement {
                    policy: "identity policy",
                    effect: "Deny".into(),
                    actions: vec!["not s3:Get*".into()],
                    resources: vec!["arn:aws:s3:::b".into()],
                    principals: vec!["AWS:arn:aws:iam::1:root".into()],
                    conditions: vec!["Bool aws:SecureTransport = false".into()],
                }),
            ]
        );
    }

    #[test]
    fn no_document_grants_nothing() {
        assert_eq!(
            statements("bucket policy", &Value::Null, None, None),
            vec![]
        );
    }
}
