//! What the person or CI role running the deployer must be allowed to do. Each kind declares
//! the IAM statements its own calls need ([`super::kind::ResourceKind::deployer_grants`]),
//! scoped to the stack's resources of that kind; `cargo xtask deployer-policy` joins them,
//! with the state bucket's and the CloudFormation engine's, into one least-privilege policy
//! document.

use serde_json::{json, Value};

/// One statement of the deployer's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The statement's id: what it is for (`StackBuckets`).
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    /// An IAM `Condition` block, where the resource alone does not narrow enough (which
    /// policy may be attached, which service a role may be passed to).
    pub condition: Option<Value>,
}

impl Grant {
    pub fn new(sid: &'static str, actions: &[&'static str], resources: Vec<String>) -> Self {
        Grant {
            sid,
            actions: actions.to_vec(),
            resources,
            condition: None,
        }
    }

    pub fn when(mut self, condition: Value) -> Self {
        self.condition = Some(condition);
        self
    }

    /// The IAM JSON statement.
    pub fn statement(&self) -> Value {
        let mut statement = json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resources,
        });
        if let Some(condition) = &self.condition {
            statement["Condition"] = condition.clone();
        }
        statement
    }
}

/// The policy document of `grants`: statements with the same actions and condition are
/// merged (one per kind, not one per resource; the state bucket and the stack's buckets
/// share one), their ids joined with `And`, resources sorted and deduplicated, so the
/// document is deterministic and as short as IAM's size limit wants it.
pub(crate) fn document(grants: &[Grant]) -> Value {
    let mut merged: Vec<(Vec<&'static str>, Grant)> = Vec::new();
    for grant in grants.iter().filter(|g| !g.resources.is_empty()) {
        match merged
            .iter_mut()
            .find(|(_, m)| m.actions == grant.actions && m.condition == grant.condition)
        {
            Some((sids, existing)) => {
                if !sids.contains(&grant.sid) {
                    sids.push(grant.sid);
                }
                existing.resources.extend(grant.resources.iter().cloned());
            }
            None => merged.push((vec![grant.sid], grant.clone())),
        }
    }
    let statements: Vec<Value> = merged
        .iter_mut()
        .map(|(sids, grant)| {
            grant.resources.sort();
            grant.resources.dedup();
            let mut statement = grant.statement();
            statement["Sid"] = json!(sids.join("And"));
            statement
        })
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
}

/// The size IAM counts against its limits: the document without whitespace.
pub(crate) fn policy_size(document: &Value) -> usize {
    document
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// A customer managed policy may hold 6,144 characters (whitespace not counted).
pub(crate) const MANAGED_POLICY_LIMIT: usize = 6_144;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_of_one_purpose_merge_and_sort() {
        let grants = [
            Grant::new(
                "Buckets",
                &["s3:CreateBucket"],
                vec!["arn:aws:s3:::b".into()],
            ),
            Grant::new(
                "Buckets",
                &["s3:CreateBucket"],
                vec!["arn:aws:s3:::a".into()],
            ),
            Grant::new("Nothing", &["s3:GetObject"], Vec::new()),
            Grant::new(
                "Pass",
                &["iam:PassRole"],
                vec!["arn:aws:iam::1:role/r".into()],
            )
            .when(json!({"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}})),
        ];
        assert_eq!(
            document(&grants),
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Buckets", "Effect": "Allow", "Action": ["s3:CreateBucket"],
                     "Resource": ["arn:aws:s3:::a", "arn:aws:s3:::b"]},
                    {"Sid": "Pass", "Effect": "Allow", "Action": ["iam:PassRole"],
                     "Resource": ["arn:aws:iam::1:role/r"],
                     "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
                ]
            })
        );
    }

    #[test]
    fn the_size_ignores_whitespace() {
        assert_eq!(policy_size(&json!({"a": "b c"})), "{\"a\":\"bc\"}".len());
    }
}
