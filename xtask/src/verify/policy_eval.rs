//! IAM policy evaluation for the role check when IAM's policy simulator does not answer:
//! explicit Deny, then Allow, else the implicit deny; IAM's wildcards.

use super::*;

/// Whether an identity policy allows `action` on `resource`, judged from its statements alone:
/// an explicit Deny wins, then any Allow, else the implicit deny. Conditions need a request
/// to be evaluated: an Allow with one counts as allowing and a Deny with one as not denying,
/// so that the answer errs towards "allowed", the answer that fails a "cannot" check.
pub(super) fn policy_allows(policy: &Value, action: &str, resource: &str) -> bool {
    let policy = normalize_policy(policy);
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let mut allowed = false;
    for statement in &statements {
        let action_matches = matches_either(statement, "Action", "NotAction", action, true);
        let resource_matches =
            matches_either(statement, "Resource", "NotResource", resource, false);
        if !(action_matches && resource_matches) {
            continue;
        }
        let conditional = statement.get("Condition").is_some();
        match statement["Effect"].as_str() {
            Some("Deny") if !conditional => return false,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// `value` matches the statement's `positive` patterns, or is outside its `negative` ones.
fn matches_either(
    statement: &Value,
    positive: &str,
    negative: &str,
    value: &str,
    ignore_case: bool,
) -> bool {
    let any = |patterns: &Value| {
        patterns
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|pattern| {
                if ignore_case {
                    wildcard_match(&pattern.to_lowercase(), &value.to_lowercase())
                } else {
                    wildcard_match(pattern, value)
                }
            })
    };
    match (statement.get(positive), statement.get(negative)) {
        (Some(patterns), _) => any(patterns),
        (None, Some(patterns)) => !any(patterns),
        (None, None) => false,
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("s3:*", "s3:PutObject"));
        assert!(wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/x"));
        assert!(!wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::bb/x"));
        assert!(wildcard_match("s3:Get*Version", "s3:GetObjectVersion"));
        assert!(wildcard_match("s3:?etObject", "s3:GetObject"));
        assert!(!wildcard_match("s3:GetObject", "s3:GetObjectVersion"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn policy_evaluation_follows_iam_precedence() {
        let a = "arn:aws:s3:::bucket-a/x";
        let declared = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::bucket-a/*"]},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket-b/*"},
        ]});
        assert!(policy_allows(&declared, "s3:getobject", a));
        assert!(!policy_allows(&declared, "s3:PutObject", a));

        let broad = json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket-a/*"},
        ]});
        assert!(!policy_allows(&broad, "s3:PutObject", a));
        assert!(policy_allows(&broad, "s3:DeleteObject", a));

        let not_action =
            json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}});
        assert!(policy_allows(&not_action, "s3:PutObject", a));

        // A conditional deny cannot be relied on: the answer errs towards "allowed".
        let conditional = json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]});
        assert!(policy_allows(&conditional, "s3:PutObject", a));
    }
}
