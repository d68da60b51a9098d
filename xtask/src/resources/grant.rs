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

/// The policy document of `grants`, as short as IAM's size limit wants it and deterministic:
/// statements with the same actions and condition are merged (one per kind, not one per
/// resource; the state bucket and the stack's buckets share one), then statements on the
/// same resources with the same condition (a function's invoke permissions and its
/// asynchronous settings); ids joined with `And`, resources sorted and deduplicated, actions
/// deduplicated in first-seen order. Merging never widens a grant: each action keeps exactly
/// the resources it had.
pub(crate) fn document(grants: &[Grant]) -> Value {
    let each: Vec<(Vec<&'static str>, Grant)> = grants
        .iter()
        .filter(|g| !g.resources.is_empty())
        .map(|g| (vec![g.sid], g.clone()))
        .collect();
    let by_actions = merge(each, |a, b| a.actions == b.actions);
    let by_resources = merge(by_actions, |a, b| a.resources == b.resources);
    let statements: Vec<Value> = by_resources
        .into_iter()
        .map(|(sids, grant)| {
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

/// `document` as managed policies of at most [`MANAGED_POLICY_LIMIT`] characters each: its
/// statements in order, a new policy started when the next would not fit (a user or role may
/// have 10 managed policies attached by default).
pub(crate) fn split(document: &Value) -> Vec<Value> {
    let empty = |statements: Vec<Value>| {
        json!({
            "Version": "2012-10-17",
            "Statement": statements,
        })
    };
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    for statement in document["Statement"].as_array().into_iter().flatten() {
        let current = parts.last_mut().expect("one part at least");
        current.push(statement.clone());
        if current.len() > 1 && policy_size(&empty(current.clone())) > MANAGED_POLICY_LIMIT {
            let moved = current.pop().expect("just pushed");
            parts.push(vec![moved]);
        }
    }
    parts.into_iter().map(empty).collect()
}

/// Merges, in order, each grant into the first earlier one with the same condition that
/// `same` accepts (uniting ids, actions and resources).
fn merge(
    grants: Vec<(Vec<&'static str>, Grant)>,
    same: impl Fn(&Grant, &Grant) -> bool,
) -> Vec<(Vec<&'static str>, Grant)> {
    let mut merged: Vec<(Vec<&'static str>, Grant)> = Vec::new();
    for (sids, mut grant) in grants {
        grant.resources.sort();
        grant.resources.dedup();
        match merged
            .iter_mut()
            .find(|(_, m)| m.condition == grant.condition && same(m, &grant))
        {
            Some((merged_sids, existing)) => {
                for sid in sids {
                    if !merged_sids.contains(&sid) {
                        merged_sids.push(sid);
                    }
                }
                for action in grant.actions {
                    if !existing.actions.contains(&action) {
                        existing.actions.push(action);
                    }
                }
                existing.resources.extend(grant.resources);
                existing.resources.sort();
                existing.resources.dedup();
            }
            None => merged.push((sids, grant)),
        }
    }
    merged
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
    fn a_document_too_large_for_one_policy_is_split_in_order() {
        let grants: Vec<Grant> = (0..80)
            .map(|i| {
                Grant::new(
                    "Many",
                    &["s3:GetObject"],
                    vec![format!(
                        "arn:aws:s3:::bucket-with-a-rather-long-name-{i:03}/*"
                    )],
                )
            })
            .collect();
        // One statement per grant: different actions keep them apart.
        let statements: Vec<Value> = grants
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut s = g.statement();
                s["Sid"] = json!(format!("S{i}"));
                s["Action"] = json!([format!("s3:Action{i}"), "s3:GetObjectVersionTagging"]);
                s
            })
            .collect();
        let whole = json!({"Version": "2012-10-17", "Statement": statements});
        assert!(policy_size(&whole) > MANAGED_POLICY_LIMIT);
        let parts = split(&whole);
        assert!(parts.len() >= 2, "{} parts", parts.len());
        let mut rejoined = Vec::new();
        for part in &parts {
            assert!(policy_size(part) <= MANAGED_POLICY_LIMIT);
            rejoined.extend(part["Statement"].as_array().cloned().unwrap_or_default());
        }
        assert_eq!(rejoined, statements, "every statement once, in order");
        let small = json!({"Version": "2012-10-17", "Statement": [statements[0].clone()]});
        assert_eq!(split(&small), vec![small]);
    }

    #[test]
    fn statements_on_the_same_resources_share_one_without_widening() {
        let function = vec!["arn:aws:lambda:eu-west-2:1:function:f".to_owned()];
        let grants = [
            Grant::new("Invoke", &["lambda:AddPermission"], function.clone()),
            Grant::new("Async", &["lambda:PutFunctionEventInvokeConfig"], function),
        ];
        assert_eq!(
            document(&grants)["Statement"],
            json!([{"Sid": "InvokeAndAsync", "Effect": "Allow",
                    "Action": ["lambda:AddPermission", "lambda:PutFunctionEventInvokeConfig"],
                    "Resource": ["arn:aws:lambda:eu-west-2:1:function:f"]}])
        );
    }

    #[test]
    fn the_size_ignores_whitespace() {
        assert_eq!(policy_size(&json!({"a": "b c"})), "{\"a\":\"bc\"}".len());
    }
}
