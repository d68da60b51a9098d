//! IAM knowledge needed offline: action syntax, the S3 action names (IAM accepts a policy
//! naming an action that does not exist, which then silently grants nothing), and IAM's
//! `*`/`?` wildcard matching. Pure functions; the rules that use them live in `validate`.

use super::diagnostic::did_you_mean;

/// Every S3 action of the Service Authorization Reference that a stack is likely to grant.
/// An action missing here is reported as a warning, never an error.
const S3_ACTIONS: &[&str] = &[
    "AbortMultipartUpload",
    "BypassGovernanceRetention",
    "CreateAccessPoint",
    "CreateBucket",
    "CreateJob",
    "CreateSession",
    "DeleteAccessPoint",
    "DeleteAccessPointPolicy",
    "DeleteBucket",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketWebsite",
    "DeleteJobTagging",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjectVersion",
    "DeleteObjectVersionTagging",
    "DescribeJob",
    "GetAccelerateConfiguration",
    "GetAccessPoint",
    "GetAccessPointPolicy",
    "GetAccessPointPolicyStatus",
    "GetAccountPublicAccessBlock",
    "GetAnalyticsConfiguration",
    "GetBucketAcl",
    "GetBucketCORS",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketNotification",
    "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration",
    "GetJobTagging",
    "GetLifecycleConfiguration",
    "GetMetricsConfiguration",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetObjectVersion",
    "GetObjectVersionAcl",
    "GetObjectVersionAttributes",
    "GetObjectVersionForReplication",
    "GetObjectVersionTagging",
    "GetObjectVersionTorrent",
    "GetReplicationConfiguration",
    "InitiateReplication",
    "ListAccessPoints",
    "ListAllMyBuckets",
    "ListBucket",
    "ListBucketMultipartUploads",
    "ListBucketVersions",
    "ListJobs",
    "ListMultipartUploadParts",
    "ObjectOwnerOverrideToBucketOwner",
    "PutAccelerateConfiguration",
    "PutAccessPointPolicy",
    "PutAccountPublicAccessBlock",
    "PutAnalyticsConfiguration",
    "PutBucketAcl",
    "PutBucketCORS",
    "PutBucketLogging",
    "PutBucketNotification",
    "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketPublicAccessBlock",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration",
    "PutJobTagging",
    "PutLifecycleConfiguration",
    "PutMetricsConfiguration",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutObjectVersionAcl",
    "PutObjectVersionTagging",
    "PutReplicationConfiguration",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "RestoreObject",
    "UpdateJobPriority",
    "UpdateJobStatus",
];

/// API operations people write as if they were actions, and the action that authorizes them.
const S3_API_NOT_ACTIONS: &[(&str, &str)] = &[
    ("HeadObject", "s3:GetObject"),
    ("HeadBucket", "s3:ListBucket"),
    ("ListObjects", "s3:ListBucket"),
    ("ListObjectsV2", "s3:ListBucket"),
    ("ListObjectVersions", "s3:ListBucketVersions"),
    ("ListBuckets", "s3:ListAllMyBuckets"),
    (
        "CopyObject",
        "s3:GetObject on the source and s3:PutObject on the destination",
    ),
    ("DeleteObjects", "s3:DeleteObject"),
    ("CreateMultipartUpload", "s3:PutObject"),
    ("UploadPart", "s3:PutObject"),
    ("UploadPartCopy", "s3:PutObject"),
    ("CompleteMultipartUpload", "s3:PutObject"),
    ("ListParts", "s3:ListMultipartUploadParts"),
    ("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
    (
        "GetBucketLifecycleConfiguration",
        "s3:GetLifecycleConfiguration",
    ),
    (
        "PutBucketLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
    ),
    ("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    ("GetBucketReplication", "s3:GetReplicationConfiguration"),
    ("PutBucketReplication", "s3:PutReplicationConfiguration"),
    (
        "GetBucketNotificationConfiguration",
        "s3:GetBucketNotification",
    ),
    (
        "PutBucketNotificationConfiguration",
        "s3:PutBucketNotification",
    ),
];

/// What is wrong with an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionProblem {
    /// Not valid IAM syntax, or names an API operation instead of an action.
    Error {
        message: String,
        help: Option<String>,
    },
    /// Well-formed but not an action this tool knows; likely a typo.
    Unknown {
        message: String,
        suggestion: Option<String>,
    },
}

/// Checks `action` (`s3:GetObject`, `s3:Get*`, `*`).
pub fn check_action(action: &str) -> Option<ActionProblem> {
    if action == "*" {
        return None;
    }
    let Some((service, name)) = action.split_once(':') else {
        let help = action
            .split_once('.')
            .map(|(service, name)| format!("did you mean `{}:{name}`?", service.to_lowercase()));
        return Some(ActionProblem::Error {
            message: format!(
                "IAM action `{action}` must be written `service:Action` (e.g. `s3:GetObject`)"
            ),
            help,
        });
    };
    if service.is_empty() || name.is_empty() {
        return Some(ActionProblem::Error {
            message: format!(
                "IAM action `{action}` needs both a service and an action name (`s3:GetObject`)"
            ),
            help: None,
        });
    }
    if !service
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        let lower = service.to_lowercase();
        let help = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            .then(|| format!("write `{lower}:{name}`"));
        return Some(ActionProblem::Error {
            message: format!(
                "invalid service prefix in IAM action `{action}`: lowercase letters, digits and hyphens only"
            ),
            help,
        });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '*' || *c == '?'))
    {
        return Some(ActionProblem::Error {
            message: format!("invalid character `{bad}` in IAM action `{action}`: letters, digits, `*` and `?` only"),
            help: None,
        });
    }
    if service != "s3" {
        return None;
    }
    if let Some((_, instead)) = S3_API_NOT_ACTIONS
        .iter()
        .find(|(api, _)| api.eq_ignore_ascii_case(name))
    {
        return Some(ActionProblem::Error {
            message: format!(
                "`{action}` is an S3 API operation, not an IAM action: it would grant nothing"
            ),
            help: Some(format!("it is authorized by {instead}")),
        });
    }
    let has_wildcard = name.contains(['*', '?']);
    let lower = name.to_lowercase();
    let known = S3_ACTIONS
        .iter()
        .any(|known| wildcard_match(&lower, &known.to_lowercase()));
    if known {
        return None;
    }
    if has_wildcard {
        return Some(ActionProblem::Unknown {
            message: format!("`{action}` matches no S3 action"),
            suggestion: None,
        });
    }
    Some(ActionProblem::Unknown {
        message: format!("unknown S3 action `{action}`"),
        suggestion: did_you_mean(name, S3_ACTIONS.iter().copied()).map(|s| format!("s3:{s}")),
    })
}

/// How an S3 action is scoped: to a bucket ARN or to object ARNs (`bucket/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Scope {
    Bucket,
    Object,
}

/// The scope of a literal S3 action (no wildcards), when it is clearly one or the other.
pub fn s3_scope(action: &str) -> Option<S3Scope> {
    let name = action.strip_prefix("s3:")?;
    if name.contains(['*', '?']) {
        return None;
    }
    let object = [
        "AbortMultipartUpload",
        "ListMultipartUploadParts",
        "ReplicateDelete",
        "ReplicateTags",
    ];
    if object.iter().any(|a| a.eq_ignore_ascii_case(name))
        || (name.contains("Object") && !name.contains("Bucket"))
    {
        return Some(S3Scope::Object);
    }
    let bucket_configs = [
        "LifecycleConfiguration",
        "EncryptionConfiguration",
        "ReplicationConfiguration",
    ];
    if (name.contains("Bucket") && name != "ListAllMyBuckets")
        || bucket_configs.iter().any(|c| name.ends_with(c))
    {
        return Some(S3Scope::Bucket);
    }
    None
}

/// Whether some string matches both IAM patterns (`*` = any run of characters, `?` = any
/// one character). Exact: the product of the two patterns' automata is searched for an
/// accepting state. Compare actions lowercased (IAM matches them case-insensitively);
/// resources as written.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut seen = vec![vec![false; b.len() + 1]; a.len() + 1];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        if seen[i][j] {
            continue;
        }
        seen[i][j] = true;
        if i == a.len() && j == b.len() {
            return true;
        }
        // A `*` may match nothing.
        if a.get(i) == Some(&'*') {
            todo.push((i + 1, j));
        }
        if b.get(j) == Some(&'*') {
            todo.push((i, j + 1));
        }
        // Or both consume one character they can agree on.
        if let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            let any = |c: char| c == '*' || c == '?';
            if any(x) || any(y) || x == y {
                let next_i = if x == '*' { i } else { i + 1 };
                let next_j = if y == '*' { j } else { j + 1 };
                todo.push((next_i, next_j));
            }
        }
    }
    false
}

/// Whether the literal `text` matches `pattern`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let literal: String = text.chars().filter(|c| *c != '*' && *c != '?').collect();
    literal == text && patterns_overlap(pattern, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(action: &str) -> String {
        match check_action(action) {
            Some(ActionProblem::Error { message, .. }) => message,
            other => panic!("expected an error for {action}, got {other:?}"),
        }
    }

    #[test]
    fn valid_actions() {
        for action in [
            "*",
            "s3:GetObject",
            "s3:Get*",
            "s3:*",
            "s3:getobject",
            "logs:PutLogEvents",
            "s3:List?ucket",
        ] {
            assert_eq!(check_action(action), None, "{action}");
        }
    }

    #[test]
    fn syntax_errors() {
        assert!(error("s3GetObject").contains("must be written `service:Action`"));
        assert!(error("s3:").contains("needs both"));
        assert!(error("S3:GetObject").contains("invalid service prefix"));
        assert!(error("s3:Get-Object").contains("invalid character `-`"));
        assert!(matches!(
            check_action("s3.GetObject"),
            Some(ActionProblem::Error { help: Some(h), .. }) if h == "did you mean `s3:GetObject`?"
        ));
    }

    #[test]
    fn api_operations_are_not_actions() {
        assert!(error("s3:HeadObject").contains("is an S3 API operation"));
        assert!(error("s3:ListObjectsV2").contains("grant nothing"));
    }

    #[test]
    fn unknown_s3_actions_are_flagged_with_a_suggestion() {
        assert_eq!(
            check_action("s3:GetObjet"),
            Some(ActionProblem::Unknown {
                message: "unknown S3 action `s3:GetObjet`".to_owned(),
                suggestion: Some("s3:GetObject".to_owned()),
            })
        );
        assert!(matches!(
            check_action("s3:Gte*"),
            Some(ActionProblem::Unknown { .. })
        ));
    }

    #[test]
    fn scopes() {
        assert_eq!(s3_scope("s3:GetObject"), Some(S3Scope::Object));
        assert_eq!(s3_scope("s3:ListBucket"), Some(S3Scope::Bucket));
        assert_eq!(
            s3_scope("s3:GetBucketObjectLockConfiguration"),
            Some(S3Scope::Bucket)
        );
        assert_eq!(s3_scope("s3:ListAllMyBuckets"), None);
        assert_eq!(s3_scope("s3:Get*"), None);
    }

    #[test]
    fn pattern_overlap() {
        assert!(patterns_overlap(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/uploads/*.jpg"
        ));
        assert!(patterns_overlap(
            "arn:aws:s3:::b/uploads/special/*",
            "arn:aws:s3:::b/uploads/*.jpg"
        ));
        assert!(!patterns_overlap(
            "arn:aws:s3:::b/out/*",
            "arn:aws:s3:::b/uploads/*.jpg"
        ));
        assert!(!patterns_overlap(
            "arn:aws:s3:::b/*.png",
            "arn:aws:s3:::b/uploads/*.jpg"
        ));
        assert!(patterns_overlap("*", "anything"));
        assert!(patterns_overlap("a?c", "*b*"));
        assert!(!patterns_overlap("arn:aws:s3:::b", "arn:aws:s3:::b/*"));
        assert!(wildcard_match("s3:put*", "s3:putobject"));
        assert!(!wildcard_match("s3:get*", "s3:putobject"));
    }
}
