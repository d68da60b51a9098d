//! Offline rules on one resolved environment: everything AWS would reject (or accept and
//! regret) that can be known without calling it. Each rule points at the YAML that causes
//! it. Pure: reads the merged document and its resolution, returns diagnostics.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{did_you_mean, Diagnostic, Span};
use super::iam::{self, ActionProblem, S3Scope};
use super::model::{Document, StatementSpec};
use super::resolve::{Names, Resolution, FAILURE_QUEUE_VARIABLE, MANAGED_BY, RENDITIONS_VARIABLE};
use super::resolved::{Statement, TriggerEvent};
use super::source::{Locator, NodePath};

pub const MIN_MEMORY: u32 = 128;
pub const MAX_MEMORY: u32 = 10_240;
pub const MAX_TIMEOUT: u32 = 900;
/// The most concurrent executions a function can reserve on an account with the default
/// limit (1,000): Lambda keeps 100 unreserved.
pub const MAX_RESERVED_CONCURRENCY: u32 = 900;
/// The retention periods CloudWatch Logs accepts (`PutRetentionPolicy`), in days.
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
const MAX_IAM_USER: usize = 64;
const MAX_IAM_ROLE: usize = 64;
const MAX_IAM_POLICY: usize = 128;
const MAX_FUNCTION_NAME: usize = 64;
const MAX_TAGS: usize = 50;
/// SQS queue names: 1–80 characters.
const MAX_QUEUE_NAME: usize = 80;
/// How long SQS can keep a message, in days (`MessageRetentionPeriod`: 60 s to 14 days).
const MAX_QUEUE_RETENTION_DAYS: u32 = 14;
/// Lambda's bounds on an asynchronous invocation's retries and age.
const MAX_RETRY_ATTEMPTS: u32 = 2;
const EVENT_AGE_SECONDS: std::ops::RangeInclusive<u32> = 60..=21_600;
/// A rendition's longest edge, in pixels: a favicon to a large 8K display.
const RENDITION_EDGE: std::ops::RangeInclusive<u32> = 16..=8192;

/// The tags stripstack puts on every resource itself (`resolve.rs`).
const STRIPSTACK_TAGS: &[&str] = &["stack", "env", "region", MANAGED_BY.0];

/// Transition targets of an S3 lifecycle rule.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];

/// Variables Lambda sets itself and refuses in a function's configuration.
const RESERVED_ENV_VARS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// Why `name` is not a valid general-purpose S3 bucket name.
pub fn bucket_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return Some(format!("it is {len} characters long; S3 allows 3 to 63"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Some(if bad.is_ascii_uppercase() {
            format!("it contains the uppercase letter `{bad}`; bucket names are lowercase")
        } else {
            format!(
                "it contains `{bad}`; only lowercase letters, digits, dots and hyphens are allowed"
            )
        });
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Some("it must begin and end with a letter or digit".to_owned());
    }
    if name.contains("..") {
        return Some("it contains two adjacent dots".to_owned());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Some("it is formatted like an IP address".to_owned());
    }
    if let Some(prefix) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .find(|p| name.starts_with(**p))
    {
        return Some(format!("the prefix `{prefix}` is reserved by S3"));
    }
    if let Some(suffix) = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .find(|s| name.ends_with(**s))
    {
        return Some(format!("the suffix `{suffix}` is reserved by S3"));
    }
    None
}

/// Why `name` is not a valid SSM parameter name; `arn_prefix` is
/// `arn:aws:ssm:REGION:ACCOUNT:parameter` (SSM's 1011-character limit includes the ARN).
pub fn ssm_name_problem(name: &str, arn_prefix: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Some(format!(
            "it contains `{bad}`; only letters, digits, `_`, `.`, `-` and `/` are allowed"
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Some("a hierarchical name must start with `/`".to_owned());
    }
    if name.ends_with('/') || name.contains("//") {
        return Some("it has an empty path segment".to_owned());
    }
    let first = name.trim_start_matches('/').to_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Some("names beginning with `aws` or `ssm` are reserved".to_owned());
    }
    let levels = name.matches('/').count();
    if levels > 15 {
        return Some(format!(
            "it has {levels} levels of hierarchy; SSM allows 15"
        ));
    }
    let separator = if name.starts_with('/') { "" } else { "/" };
    let arn_len = arn_prefix.len() + separator.len() + name.len();
    if arn_len > 1011 {
        return Some(format!(
            "its ARN is {arn_len} characters long; SSM allows 1011"
        ));
    }
    None
}

/// Why `name` is not a valid logical name (of a bucket, user, function or environment, or
/// the stack's name). Physical names and `${…}` references are built from these, and IAM
/// compares names case-insensitively, so lowercase letters, digits and hyphens only.
pub fn logical_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("it must start with a lowercase letter".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "it contains `{bad}`; only lowercase letters, digits and hyphens are allowed"
        ));
    }
    if name.ends_with('-') {
        return Some("it must not end with a hyphen".to_owned());
    }
    if name.len() > 64 {
        return Some(format!("it is {} characters long; at most 64", name.len()));
    }
    None
}

/// Why `region` does not look like an AWS region (`eu-west-2`, `us-gov-west-1`).
pub fn region_problem(region: &str) -> Option<String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[0].len() == 2
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    (!ok).then(|| format!("`{region}` is not an AWS region name (like `eu-west-2`)"))
}

/// Why `endpoint` is not a usable endpoint URL.
pub fn endpoint_problem(endpoint: &str) -> Option<String> {
    let Some(rest) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    else {
        return Some(format!("`{endpoint}` must start with http:// or https://"));
    };
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        return Some(format!("`{endpoint}` has no host"));
    }
    None
}

/// Why `name` cannot be a Lambda environment variable.
pub fn env_var_problem(name: &str) -> Option<String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Some(format!(
            "environment variable `{name}`: names start with a letter and hold letters, digits and `_`"
        ));
    }
    if RESERVED_ENV_VARS.contains(&name) {
        return Some(format!(
            "environment variable `{name}` is reserved: Lambda sets it itself"
        ));
    }
    None
}

/// Why a tag cannot be applied (the limits common to S3, IAM, SSM and Lambda).
pub fn tag_problem(key: &str, value: &str) -> Option<String> {
    if STRIPSTACK_TAGS.contains(&key) {
        return Some(format!(
            "tag `{key}` is set by stripstack on every resource"
        ));
    }
    if key.to_lowercase().starts_with("aws:") {
        return Some(format!("tag `{key}`: the `aws:` prefix is reserved"));
    }
    let key_len = key.chars().count();
    if !(1..=128).contains(&key_len) {
        return Some(format!(
            "tag key `{key}` is {key_len} characters long; 1 to 128 allowed"
        ));
    }
    if value.chars().count() > 256 {
        return Some(format!(
            "the value of tag `{key}` is longer than 256 characters"
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if let Some(bad) = key.chars().chain(value.chars()).find(|c| !allowed(*c)) {
        return Some(format!(
            "tag `{key}` contains `{bad}`; tags hold letters, digits, spaces and `_ . : / = + - @`"
        ));
    }
    None
}

/// Runs every rule on one environment.
pub fn check_env(
    raw: &Document,
    resolution: &Resolution,
    endpoint: Option<&str>,
    loc: Locator<'_>,
) -> Vec<Diagnostic> {
    let mut check = Check {
        raw,
        res: resolution,
        endpoint,
        loc,
        out: Vec::new(),
    };
    check.stack();
    check.buckets();
    check.parameters();
    check.users();
    check.queues();
    check.functions();
    check.triggers();
    check.out
}

/// One entry of a bucket's notification configuration (one per suffix of a trigger).
struct NotificationEntry {
    function: String,
    /// Index of the trigger in the function's `triggers`.
    trigger: usize,
    events: Vec<TriggerEvent>,
    prefix: String,
    suffix: String,
}

struct Check<'a> {
    raw: &'a Document,
    res: &'a Resolution,
    endpoint: Option<&'a str>,
    loc: Locator<'a>,
    out: Vec<Diagnostic>,
}

impl<'a> Check<'a> {
    fn names(&self) -> Names<'a> {
        let r = &self.res.resolved;
        Names {
            stack: &r.stack,
            env: &r.env,
            region: &r.region,
            account: &r.account,
        }
    }

    fn at_key(&self, path: &NodePath) -> Option<Span> {
        self.loc.key(path)
    }

    fn at_value(&self, path: &NodePath) -> Option<Span> {
        self.loc.value(path)
    }

    fn error(&mut self, message: impl Into<String>, span: Option<Span>) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(message, span));
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    fn warning(&mut self, message: impl Into<String>, span: Option<Span>) -> &mut Diagnostic {
        self.out.push(Diagnostic::warning(message, span));
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    fn logical(&mut self, kind: &str, section: &str, name: &str) {
        if let Some(problem) = logical_name_problem(name) {
            let span = self.at_key(&NodePath::keys(&[section, name]));
            self.error(format!("invalid {kind} name `{name}`: {problem}"), span);
        }
    }

    fn length(&mut self, what: &str, name: &str, max: usize, path: &NodePath) {
        if name.len() > max {
            let span = self.at_key(path);
            self.error(
                format!(
                    "{what} `{name}` is {} characters long; AWS allows {max}",
                    name.len()
                ),
                span,
            )
            .notes
            .push("it is built as `<stack>-<env>-<logical name>`: shorten one of them".to_owned());
        }
    }

    fn stack(&mut self) {
        let stack = self.res.resolved.stack.clone();
        if let Some(problem) = logical_name_problem(&stack) {
            let span = self.at_value(&NodePath::keys(&["stack"]));
            self.error(format!("invalid stack name `{stack}`: {problem}"), span);
        }
        let region = self.res.resolved.region.clone();
        if let Some(problem) = region_problem(&region) {
            let span = self.at_value(&NodePath::keys(&["region"]));
            self.error(problem, span);
        }
        let user_tags = self.raw.tags.len();
        for key in self.raw.tags.keys() {
            let value = self.res.resolved.tags.get(key).cloned().unwrap_or_default();
            if let Some(problem) = tag_problem(key, &value) {
                let span = self.at_key(&NodePath::keys(&["tags", key]));
                self.error(problem, span);
            }
        }
        if user_tags + STRIPSTACK_TAGS.len() > MAX_TAGS {
            let span = self.at_key(&NodePath::keys(&["tags"]));
            self.error(
                format!(
                    "{user_tags} tags, plus stripstack's {}: AWS allows {MAX_TAGS} per resource",
                    STRIPSTACK_TAGS.len()
                ),
                span,
            );
        }
    }

    fn buckets(&mut self) {
        let names = self.names();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let plain_http = self.endpoint.is_some_and(|e| e.starts_with("http://"));
        for (logical, bucket) in &self.res.resolved.buckets {
            self.logical("bucket", "buckets", logical);
            let base = NodePath::keys(&["buckets", logical]);
            let name_path = base.key("name");
            let written = self.raw.buckets.get(logical).and_then(|b| b.name.clone());
            if let Some(problem) = bucket_name_problem(&bucket.name) {
                let span = self.at_value(&name_path);
                let d = self.error(
                    format!("invalid S3 bucket name `{}`: {problem}", bucket.name),
                    span,
                );
                if written.as_deref().is_some_and(|w| w.contains("${")) || written.is_none() {
                    d.notes.push(format!(
                        "checked after interpolation, with a 12-digit account id and region {}",
                        names.region
                    ));
                }
            } else if bucket.name.contains('.') {
                let span = self.at_value(&name_path);
                self.warning(format!("bucket name `{}` contains dots", bucket.name), span)
                    .notes
                    .push(
                        "TLS certificates do not cover dotted names in virtual-hosted-style URLs"
                            .to_owned(),
                    );
            }
            if let Some(other) = seen.get(&bucket.name) {
                let span = self.at_value(&name_path);
                self.error(format!("duplicate S3 bucket name `{}`", bucket.name), span)
                    .label = Some(format!("also the name of bucket `{other}`"));
            }
            seen.insert(bucket.name.clone(), logical.clone());
            if bucket.retain && bucket.force_destroy {
                let span = self.at_value(&base.key("force_destroy"));
                let retain_at = self.at_value(&base.key("retain"));
                let d = self.error(
                    format!("bucket `{logical}` is both retained and force-destroyed"),
                    span,
                );
                d.label = Some(
                    "`retain` keeps it on destroy; `force_destroy` would empty and delete it"
                        .to_owned(),
                );
                if let Some(at) = retain_at {
                    d.notes.push(format!(
                        "`retain: true` is set at line {}, column {}",
                        at.line, at.col
                    ));
                }
                d.help = Some("choose one (an environment can override either)".to_owned());
            }
            if bucket.tls_only && plain_http {
                let span = self.at_value(&base.key("tls_only"));
                let endpoint = self.endpoint.unwrap_or_default().to_owned();
                let d = self.error(
                    format!("bucket `{logical}` is TLS-only but this environment's endpoint is plain HTTP"),
                    span,
                );
                d.notes.push(format!(
                    "requests to {endpoint} have aws:SecureTransport = false, so the TLS-only bucket policy would deny everyone"
                ));
                d.help = Some(format!(
                    "set `tls_only: false` for `{logical}` in this environment"
                ));
            }
            self.lifecycle(logical, bucket.versioning, &base);
        }
    }

    fn lifecycle(&mut self, logical: &str, versioning: bool, base: &NodePath) {
        let Some(bucket) = self.res.resolved.buckets.get(logical) else {
            return;
        };
        let rules = bucket.lifecycle.clone();
        let mut ids = BTreeSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let path = base.key("lifecycle").index(i);
            let id_span = self.at_value(&path.key("id"));
            if rule.id.is_empty() || rule.id.len() > 255 {
                self.error("a lifecycle rule `id` has 1 to 255 characters", id_span);
            }
            if !ids.insert(rule.id.clone()) {
                self.error(
                    format!("duplicate lifecycle rule id `{}`", rule.id),
                    id_span,
                );
            }
            if rule.transition_days.is_none()
                && rule.expiration_days.is_none()
                && rule.noncurrent_expiration_days.is_none()
                && rule.abort_incomplete_multipart_days.is_none()
            {
                self.error(
                    format!("lifecycle rule `{}` does nothing", rule.id),
                    self.at_key(&path),
                )
                .help = Some("set `transition_days` + `storage_class`, `expiration_days`, `noncurrent_expiration_days` or `abort_incomplete_multipart_days`".to_owned());
            }
            match (rule.transition_days, &rule.storage_class) {
                (Some(_), None) => {
                    let span = self.at_value(&path.key("transition_days"));
                    self.error(
                        format!(
                            "lifecycle rule `{}` has `transition_days` but no `storage_class`",
                            rule.id
                        ),
                        span,
                    );
                }
                (None, Some(_)) => {
                    let span = self.at_value(&path.key("storage_class"));
                    self.error(
                        format!(
                            "lifecycle rule `{}` has `storage_class` but no `transition_days`",
                            rule.id
                        ),
                        span,
                    );
                }
                (Some(days), Some(class)) => {
                    let span = self.at_value(&path.key("storage_class"));
                    if !STORAGE_CLASSES.contains(&class.as_str()) {
                        let d = self.error(format!("unknown storage class `{class}`"), span);
                        if let Some(best) = did_you_mean(class, STORAGE_CLASSES.iter().copied()) {
                            d.label = Some(format!("did you mean `{best}`?"));
                        }
                        d.notes
                            .push(format!("transitions go to {}", STORAGE_CLASSES.join(", ")));
                    } else if matches!(class.as_str(), "STANDARD_IA" | "ONEZONE_IA") && days < 30 {
                        let span = self.at_value(&path.key("transition_days"));
                        self.error(
                            format!("S3 moves objects to {class} after 30 days at the earliest"),
                            span,
                        );
                    }
                }
                (None, None) => {}
            }
            for (field, days) in [
                ("expiration_days", rule.expiration_days),
                (
                    "noncurrent_expiration_days",
                    rule.noncurrent_expiration_days,
                ),
                (
                    "abort_incomplete_multipart_days",
                    rule.abort_incomplete_multipart_days,
                ),
            ] {
                if days == Some(0) {
                    let span = self.at_value(&path.key(field));
                    self.error(format!("`{field}` must be at least 1"), span);
                }
            }
            // S3 takes days as a 32-bit signed number.
            for (field, days) in [
                ("transition_days", rule.transition_days),
                ("expiration_days", rule.expiration_days),
                (
                    "noncurrent_expiration_days",
                    rule.noncurrent_expiration_days,
                ),
                (
                    "abort_incomplete_multipart_days",
                    rule.abort_incomplete_multipart_days,
                ),
            ] {
                if days.is_some_and(|d| i32::try_from(d).is_err()) {
                    let span = self.at_value(&path.key(field));
                    self.error(format!("`{field}` must be at most {}", i32::MAX), span);
                }
            }
            if let (Some(expire), Some(transition)) = (rule.expiration_days, rule.transition_days) {
                if expire <= transition {
                    let span = self.at_value(&path.key("expiration_days"));
                    self.error(
                        format!("lifecycle rule `{}` expires objects (day {expire}) before it transitions them (day {transition})", rule.id),
                        span,
                    );
                }
            }
            if rule.noncurrent_expiration_days.is_some() && !versioning {
                let span = self.at_value(&path.key("noncurrent_expiration_days"));
                self.warning(
                    format!("bucket `{logical}` is not versioned: `noncurrent_expiration_days` has no effect"),
                    span,
                );
            }
        }
    }

    fn parameters(&mut self) {
        let names = self.names();
        let arn_prefix = format!(
            "arn:{}:ssm:{}:{}:parameter",
            names.partition(),
            names.region,
            names.account
        );
        let secrets: BTreeMap<String, String> = self
            .res
            .resolved
            .users
            .values()
            .filter(|u| u.access_key)
            .map(|u| (u.secret_parameter.clone(), u.logical.clone()))
            .collect();
        for (key, name) in &self.res.parameter_names {
            let path = NodePath::keys(&["parameters", key]);
            let span = self.loc.key(&path);
            if let Some(problem) = ssm_name_problem(name, &arn_prefix) {
                self.error(
                    format!("invalid SSM parameter name `{name}`: {problem}"),
                    span,
                );
            }
            if let Some(user) = secrets.get(name) {
                self.error(format!("duplicate SSM parameter name `{name}`"), span)
                    .label = Some(format!("user `{user}` keeps its secret access key there"));
            }
            let Some(parameter) = self.res.resolved.parameters.get(name) else {
                continue;
            };
            let long_form = self.raw.parameters.get(key).is_some_and(|p| p.long_form);
            let value_path = if long_form {
                path.key("value")
            } else {
                path.clone()
            };
            if parameter.value.is_empty() {
                let span = self.at_value(&value_path);
                self.error(format!("parameter `{name}` has an empty value; SSM requires at least one character"), span);
            } else if parameter.value.len() > 4096 {
                let span = self.at_value(&value_path);
                self.error(
                    format!("the value of parameter `{name}` exceeds 4 KB (SSM's standard tier)"),
                    span,
                );
            }
            if parameter
                .description
                .as_ref()
                .is_some_and(|d| d.chars().count() > 1024)
            {
                let span = self.at_value(&path.key("description"));
                self.error("a parameter description has at most 1024 characters", span);
            }
        }
    }

    fn users(&mut self) {
        let users: Vec<_> = self.res.resolved.users.values().cloned().collect();
        for user in users {
            self.logical("user", "users", &user.logical);
            let base = NodePath::keys(&["users", &user.logical]);
            self.length("IAM user name", &user.name, MAX_IAM_USER, &base);
            self.length("IAM policy name", &user.policy_name, MAX_IAM_POLICY, &base);
            let raw = self
                .raw
                .users
                .get(&user.logical)
                .map(|u| u.allow.clone())
                .unwrap_or_default();
            self.statements(&base.key("allow"), &user.allow, &raw);
        }
    }

    /// Reserved concurrency is a trade: the function always has those executions and never
    /// more, and the account's other functions have that many fewer.
    fn reserved_concurrency(
        &mut self,
        function: &crate::stack::resolved::Function,
        base: &NodePath,
    ) {
        let Some(reserved) = function.reserved_concurrency else {
            return;
        };
        let path = base.key("reserved_concurrency");
        if reserved == 0 {
            let span = self.at_value(&path);
            let d = self.warning(
                format!(
                    "`{}` reserves 0 concurrent executions: it never runs",
                    function.logical
                ),
                span,
            );
            d.notes.push(
                "every invocation is throttled; S3's events are retried for up to 6 hours, then \
                 dropped (0 is how to pause a function, not how to run one)"
                    .to_owned(),
            );
        } else if reserved > MAX_RESERVED_CONCURRENCY {
            let span = self.at_value(&path);
            let d = self.warning(
                format!(
                    "reserving {reserved} concurrent executions needs an account limit above the \
                     default"
                ),
                span,
            );
            d.notes.push(
                "Lambda keeps 100 executions of the account's limit (1,000 by default, as low \
                 as 10 on new accounts) unreserved: above 900 the deploy fails unless the \
                 limit was raised (Service Quotas)"
                    .to_owned(),
            );
        }
    }

    fn queues(&mut self) {
        let queues: Vec<_> = self.res.resolved.queues.values().cloned().collect();
        for queue in queues {
            self.logical("queue", "queues", &queue.logical);
            let base = NodePath::keys(&["queues", &queue.logical]);
            self.length("SQS queue name", &queue.name, MAX_QUEUE_NAME, &base);
            if !(1..=MAX_QUEUE_RETENTION_DAYS).contains(&queue.retention_days) {
                let span = self.at_value(&base.key("retention_days"));
                self.error(
                    format!(
                        "SQS cannot keep messages for {} days: 1 to {MAX_QUEUE_RETENTION_DAYS}",
                        queue.retention_days
                    ),
                    span,
                );
            }
        }
    }

    /// `on_failure`, `retry_attempts`, `max_event_age_seconds`: Lambda's bounds, and a queue
    /// that exists.
    fn async_invoke(&mut self, function: &crate::stack::resolved::Function, base: &NodePath) {
        let Some(invoke) = &function.async_invoke else {
            return;
        };
        if let Some(queue) = &invoke.on_failure {
            if !self.res.resolved.queues.contains_key(queue) {
                let queues: Vec<String> = self.res.resolved.queues.keys().cloned().collect();
                let span = self.at_value(&base.key("on_failure"));
                let d = self.error(
                    format!("`on_failure` names undeclared queue `{queue}`"),
                    span,
                );
                if let Some(best) = did_you_mean(queue, queues.iter().map(String::as_str)) {
                    d.label = Some(format!("did you mean `{best}`?"));
                }
                d.notes.push(if queues.is_empty() {
                    "declare it under `queues:` (e.g. `queues: { failures: {} }`)".to_owned()
                } else {
                    format!("declared queues: {}", queues.join(", "))
                });
            }
            let declared = self
                .raw
                .functions
                .get(&function.logical)
                .is_some_and(|f| f.environment.contains_key(FAILURE_QUEUE_VARIABLE));
            if declared {
                let span = self.at_key(
                    &base
                        .key("environment")
                        .key(FAILURE_QUEUE_VARIABLE.to_owned()),
                );
                self.error(
                    format!("`{FAILURE_QUEUE_VARIABLE}` is set by stripstack from `on_failure`"),
                    span,
                )
                .help = Some(format!(
                    "remove `{FAILURE_QUEUE_VARIABLE}` from `environment`"
                ));
            }
        }
        if let Some(attempts) = invoke.retry_attempts.filter(|a| *a > MAX_RETRY_ATTEMPTS) {
            let span = self.at_value(&base.key("retry_attempts"));
            self.error(
                format!("Lambda retries an asynchronous invocation at most {MAX_RETRY_ATTEMPTS} times, not {attempts}"),
                span,
            );
        }
        if let Some(age) = invoke
            .max_event_age_seconds
            .filter(|age| !EVENT_AGE_SECONDS.contains(age))
        {
            let span = self.at_value(&base.key("max_event_age_seconds"));
            self.error(
                format!(
                    "`max_event_age_seconds` {age} is out of range: Lambda allows {} to {} (6 hours)",
                    EVENT_AGE_SECONDS.start(),
                    EVENT_AGE_SECONDS.end()
                ),
                span,
            );
        }
        if invoke.on_failure.is_none() {
            let span = self.at_key(base);
            self.warning(
                format!(
                    "`{}` sets how its asynchronous invocations are retried but has no `on_failure`",
                    function.logical
                ),
                span,
            )
            .notes
            .push("an event that fails every try is dropped: name a queue in `on_failure` to keep a record of it".to_owned());
        }
    }

    /// Names and prefixes unique, sizes and qualities a JPEG can have, and no rendition
    /// written where a trigger would hand it to a function again.
    fn renditions(&mut self, function: &crate::stack::resolved::Function, base: &NodePath) {
        if function.renditions.is_empty() {
            return;
        }
        let declared = self
            .raw
            .functions
            .get(&function.logical)
            .is_some_and(|f| f.environment.contains_key(RENDITIONS_VARIABLE));
        if declared {
            let span = self.at_key(&base.key("environment").key(RENDITIONS_VARIABLE.to_owned()));
            self.error(
                format!("`{RENDITIONS_VARIABLE}` is set by stripstack from `renditions`"),
                span,
            );
        }
        let destination = function.environment.get("DESTINATION_BUCKET").cloned();
        let mut names = BTreeSet::new();
        let mut prefixes = BTreeSet::new();
        for (i, rendition) in function.renditions.iter().enumerate() {
            let path = base.key("renditions").index(i);
            if let Some(problem) = logical_name_problem(&rendition.name) {
                let span = self.at_value(&path.key("name"));
                self.error(
                    format!("invalid rendition name `{}`: {problem}", rendition.name),
                    span,
                );
            } else if !names.insert(rendition.name.clone()) {
                let span = self.at_value(&path.key("name"));
                self.error(
                    format!("two renditions are named `{}`", rendition.name),
                    span,
                );
            }
            if !RENDITION_EDGE.contains(&rendition.max_edge) {
                let span = self.at_value(&path.key("max_edge"));
                self.error(
                    format!(
                        "`max_edge` {} is out of range: {} to {} pixels",
                        rendition.max_edge,
                        RENDITION_EDGE.start(),
                        RENDITION_EDGE.end()
                    ),
                    span,
                );
            }
            if !(1..=100).contains(&rendition.quality) {
                let span = self.at_value(&path.key("quality"));
                self.error(
                    format!(
                        "JPEG quality {} is out of range: 1 to 100",
                        rendition.quality
                    ),
                    span,
                );
            }
            let span = self.at_value(&path.key("prefix"));
            if rendition.prefix.is_empty() || !rendition.prefix.ends_with('/') {
                self.error(
                    format!(
                        "rendition prefix `{}` must be a folder ending with `/` (`thumbs/`): the \
                         copy of `<key>` is `<prefix><key>`, beside the stripped original",
                        rendition.prefix
                    ),
                    span,
                );
                continue;
            }
            if !prefixes.insert(rendition.prefix.clone()) {
                self.error(
                    format!("two renditions write under `{}`", rendition.prefix),
                    span,
                );
            }
            let loops: Vec<String> = self
                .res
                .resolved
                .functions
                .values()
                .flat_map(|f| f.triggers.iter().map(move |t| (f, t)))
                .filter(|(_, t)| {
                    self.res.resolved.buckets.get(&t.bucket).map(|b| &b.name)
                        == destination.as_ref()
                        && t.events.contains(&TriggerEvent::Created)
                        && (rendition.prefix.starts_with(&t.prefix)
                            || t.prefix.starts_with(&rendition.prefix))
                })
                .map(|(f, _)| f.logical.clone())
                .collect();
            if let Some(other) = loops.first() {
                self.error(
                    format!(
                        "renditions under `{}` of the destination bucket would invoke `{other}` \
                         again",
                        rendition.prefix
                    ),
                    span,
                )
                .help =
                    Some("give the rendition a prefix no trigger of that bucket listens to".into());
            }
        }
    }

    fn functions(&mut self) {
        let functions: Vec<_> = self.res.resolved.functions.values().cloned().collect();
        for function in functions {
            self.logical("function", "functions", &function.logical);
            let base = NodePath::keys(&["functions", &function.logical]);
            self.length(
                "Lambda function name",
                &function.name,
                MAX_FUNCTION_NAME,
                &base,
            );
            self.length("IAM role name", &function.role_name, MAX_IAM_ROLE, &base);
            if !(MIN_MEMORY..=MAX_MEMORY).contains(&function.memory) {
                let span = self.at_value(&base.key("memory"));
                self.error(
                    format!(
                        "memory {} MB is out of range: Lambda allows {MIN_MEMORY} to {MAX_MEMORY}",
                        function.memory
                    ),
                    span,
                );
            }
            if !(1..=MAX_TIMEOUT).contains(&function.timeout) {
                let span = self.at_value(&base.key("timeout"));
                self.error(
                    format!(
                        "timeout {} s is out of range: Lambda allows 1 to {MAX_TIMEOUT}",
                        function.timeout
                    ),
                    span,
                );
            }
            self.reserved_concurrency(&function, &base);
            self.async_invoke(&function, &base);
            self.renditions(&function, &base);
            if !LOG_RETENTION_DAYS.contains(&function.log_retention_days) {
                let span = self.at_value(&base.key("log_retention_days"));
                let nearest = LOG_RETENTION_DAYS
                    .iter()
                    .min_by_key(|days| days.abs_diff(function.log_retention_days))
                    .copied()
                    .unwrap_or(30);
                self.error(
                    format!(
                        "CloudWatch Logs cannot keep logs for {} days",
                        function.log_retention_days
                    ),
                    span,
                )
                .help = Some(format!(
                    "use one of {}; the nearest is {nearest}",
                    LOG_RETENTION_DAYS
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if function.package.is_empty()
                || !function
                    .package
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                let span = self.at_value(&base.key("package"));
                self.error(
                    format!("`{}` is not a Cargo package name", function.package),
                    span,
                );
            }
            let mut size = 0;
            for (key, value) in &function.environment {
                size += key.len() + value.len();
                if let Some(problem) = env_var_problem(key) {
                    let span = self.at_key(&base.key("environment").key(key.clone()));
                    self.error(problem, span);
                }
            }
            if size > 4096 {
                let span = self.at_key(&base.key("environment"));
                self.error(
                    format!(
                        "the environment of `{}` is {size} bytes; Lambda allows 4 KB",
                        function.logical
                    ),
                    span,
                );
            }
            let raw = self
                .raw
                .functions
                .get(&function.logical)
                .map(|f| f.allow.clone())
                .unwrap_or_default();
            self.statements(&base.key("allow"), &function.allow, &raw);
        }
    }

    fn statements(&mut self, base: &NodePath, statements: &[Statement], raw: &[StatementSpec]) {
        for (i, statement) in statements.iter().enumerate() {
            let path = base.index(i);
            if statement.actions.is_empty() {
                let span = self.at_key(&path.key("actions"));
                self.error("a statement needs at least one action", span);
            }
            if statement.resources.is_empty() {
                let span = self.at_key(&path.key("resources"));
                self.error("a statement needs at least one resource", span);
            }
            for (j, action) in statement.actions.iter().enumerate() {
                let span = self.at_value(&path.key("actions").index(j));
                match iam::check_action(action) {
                    Some(ActionProblem::Error { message, help }) => {
                        self.error(message, span).help = help;
                    }
                    Some(ActionProblem::Unknown {
                        message,
                        suggestion,
                    }) => {
                        let d = self.warning(message, span);
                        d.label = suggestion.map(|s| format!("did you mean `{s}`?"));
                        d.notes.push(
                            "IAM accepts unknown actions and grants nothing for them".to_owned(),
                        );
                    }
                    None => {}
                }
            }
            for (j, resource) in statement.resources.iter().enumerate() {
                let span = self.at_value(&path.key("resources").index(j));
                let written = raw
                    .get(i)
                    .and_then(|s| s.resources.get(j))
                    .cloned()
                    .unwrap_or_else(|| resource.clone());
                if resource == "*" {
                    continue;
                }
                if !resource.starts_with("arn:") {
                    let d = self.error(format!("resource `{written}` is not an ARN or `*`"), span);
                    if let Some(rest) = written.strip_prefix("${buckets.") {
                        if let Some((logical, _)) = rest.split_once(".name}") {
                            d.help = Some(format!(
                                "use `${{buckets.{logical}.arn}}` (and `/*` for its objects)"
                            ));
                        }
                    }
                } else if resource.split(':').count() < 6 {
                    self.error(
                        format!("malformed ARN `{resource}`: expected `arn:partition:service:region:account:resource`"),
                        span,
                    );
                }
            }
            self.scope_mismatch(&path, statement);
            self.bare_log_group(&path, statement);
        }
    }

    /// CloudWatch Logs authorizes its actions against the log group's ARN *with* a trailing
    /// `:*` (`…:log-group:NAME:*`), except the three tagging actions, which take it without
    /// (API reference, `LogGroup.arn` / `logGroupArn`). A statement naming the bare form for
    /// any other action is valid IAM that grants nothing: the function runs and its logs are
    /// silently lost.
    fn bare_log_group(&mut self, path: &NodePath, statement: &Statement) {
        const TAKES_BARE_ARN: [&str; 3] = [
            "logs:TagResource",
            "logs:UntagResource",
            "logs:ListTagsForResource",
        ];
        let bare: Vec<usize> = statement
            .resources
            .iter()
            .enumerate()
            .filter(|(_, resource)| {
                resource.split_once(":logs:").is_some_and(|(_, rest)| {
                    rest.split_once(":log-group:").is_some_and(|(_, group)| {
                        !group.ends_with('*') && !group.contains(":log-stream:")
                    })
                })
            })
            .map(|(j, _)| j)
            .collect();
        if bare.is_empty() {
            return;
        }
        let needs_star: Vec<&str> = statement
            .actions
            .iter()
            .filter(|a| a.starts_with("logs:") && !TAKES_BARE_ARN.contains(&a.as_str()))
            .map(String::as_str)
            .collect();
        if needs_star.is_empty() {
            return;
        }
        for j in bare {
            let span = self.at_value(&path.key("resources").index(j));
            let d = self.warning(
                format!(
                    "CloudWatch Logs matches `{}` against the log group's ARN with `:*` at the \
                     end; this one grants nothing for it",
                    needs_star.join("`, `")
                ),
                span,
            );
            d.help = Some(format!("write `{}:*`", statement.resources[j]));
            d.notes.push(
                "only logs:TagResource, logs:UntagResource and logs:ListTagsForResource take the \
                 ARN without `:*`"
                    .to_owned(),
            );
        }
    }

    /// An object action on a bucket ARN (or the reverse) is valid IAM that grants nothing.
    fn scope_mismatch(&mut self, path: &NodePath, statement: &Statement) {
        let mut scopes = Vec::new();
        for resource in &statement.resources {
            let Some(rest) = resource.split_once(":s3:::").map(|(_, rest)| rest) else {
                return;
            };
            if rest.contains(['*', '?']) && !rest.contains('/') {
                return;
            }
            scopes.push(if rest.contains('/') {
                S3Scope::Object
            } else {
                S3Scope::Bucket
            });
        }
        for (j, action) in statement.actions.iter().enumerate() {
            let Some(needed) = iam::s3_scope(action) else {
                continue;
            };
            if !scopes.is_empty() && !scopes.contains(&needed) {
                let span = self.at_value(&path.key("actions").index(j));
                let (what, fix) = match needed {
                    S3Scope::Object => ("objects", "add a resource ending in `/*`"),
                    S3Scope::Bucket => ("the bucket itself", "add the bucket ARN, without `/*`"),
                };
                self.warning(
                    format!("`{action}` applies to {what}, but this statement names none"),
                    span,
                )
                .help = Some(fix.to_owned());
            }
        }
    }

    fn triggers(&mut self) {
        let names = self.names();
        let buckets: Vec<String> = self.res.resolved.buckets.keys().cloned().collect();
        let mut entries: BTreeMap<String, Vec<NotificationEntry>> = BTreeMap::new();
        let functions: Vec<_> = self.res.resolved.functions.values().cloned().collect();
        for function in &functions {
            for (i, trigger) in function.triggers.iter().enumerate() {
                let path = NodePath::keys(&["functions", &function.logical, "triggers"]).index(i);
                let Some(bucket) = self.res.resolved.buckets.get(&trigger.bucket).cloned() else {
                    let span = self.at_value(&path.key("bucket"));
                    let d = self.error(
                        format!("trigger on undeclared bucket `{}`", trigger.bucket),
                        span,
                    );
                    if let Some(best) =
                        did_you_mean(&trigger.bucket, buckets.iter().map(String::as_str))
                    {
                        d.label = Some(format!("did you mean `{best}`?"));
                    }
                    d.notes.push(if trigger.bucket.contains("${") {
                        "`bucket` takes the logical name of one of this stack's buckets, not a reference".to_owned()
                    } else {
                        format!("declared buckets: {}", buckets.join(", "))
                    });
                    continue;
                };
                if trigger.events.is_empty() {
                    let span = self.at_key(&path.key("events"));
                    self.error(
                        "a trigger needs at least one event (`created`, `removed`)",
                        span,
                    );
                }
                if trigger.prefix.starts_with('/') {
                    let span = self.at_value(&path.key("prefix"));
                    self.warning(format!("prefix `{}` starts with `/`", trigger.prefix), span)
                        .notes
                        .push("S3 keys rarely start with `/`: `uploads/photo.jpg` does not match `/uploads/`".to_owned());
                }
                for (j, suffix) in trigger.suffixes.iter().enumerate() {
                    let upper = suffix.to_uppercase();
                    let lower = suffix.to_lowercase();
                    let other = if *suffix != upper { upper } else { lower };
                    if other != *suffix && !trigger.suffixes.contains(&other) {
                        let span = self.at_value(&path.key("suffixes").index(j));
                        let d = self.warning(
                            format!(
                                "S3 suffix filters are case-sensitive: keys ending in `{other}` would not trigger `{}`",
                                function.logical
                            ),
                            span,
                        );
                        d.help = Some(format!(
                            "add `{other}` to `suffixes` if such uploads can happen"
                        ));
                    }
                }
                self.invocation_loop(function, i, &bucket, &path, &names);
                let list = entries.entry(trigger.bucket.clone()).or_default();
                let suffixes = if trigger.suffixes.is_empty() {
                    vec![String::new()]
                } else {
                    trigger.suffixes.clone()
                };
                for suffix in suffixes {
                    list.push(NotificationEntry {
                        function: function.logical.clone(),
                        trigger: i,
                        events: trigger.events.clone(),
                        prefix: trigger.prefix.clone(),
                        suffix,
                    });
                }
            }
        }
        self.overlaps(&entries);
    }

    /// A function triggered by writes to a bucket it may write under the same filter
    /// invokes itself again for every object it writes, forever.
    fn invocation_loop(
        &mut self,
        function: &super::resolved::Function,
        index: usize,
        bucket: &super::resolved::Bucket,
        path: &NodePath,
        names: &Names<'_>,
    ) {
        let trigger = &function.triggers[index];
        let mut writes: Vec<&str> = Vec::new();
        if trigger.events.contains(&TriggerEvent::Created) {
            writes.push("s3:putobject");
        }
        if trigger.events.contains(&TriggerEvent::Removed) {
            writes.extend(["s3:deleteobject", "s3:deleteobjectversion"]);
        }
        let suffixes = if trigger.suffixes.is_empty() {
            vec![String::new()]
        } else {
            trigger.suffixes.clone()
        };
        let bucket_arn = names.bucket_arn(&bucket.name);
        for (s, statement) in function.allow.iter().enumerate() {
            let action = statement.actions.iter().find(|a| {
                let a = a.to_lowercase();
                writes.iter().any(|w| iam::patterns_overlap(&a, w))
            });
            let Some(action) = action else {
                continue;
            };
            let hit = statement
                .resources
                .iter()
                .enumerate()
                .find(|(_, resource)| {
                    suffixes.iter().any(|suffix| {
                        let keys = format!("{bucket_arn}/{}*{suffix}", trigger.prefix);
                        iam::patterns_overlap(resource, &keys)
                    })
                });
            if let Some((r, resolved)) = hit {
                let resource = self
                    .raw
                    .functions
                    .get(&function.logical)
                    .and_then(|f| f.allow.get(s))
                    .and_then(|st| st.resources.get(r))
                    .unwrap_or(resolved)
                    .clone();
                let span = self.at_value(&path.key("bucket"));
                let grant = self.at_value(
                    &NodePath::keys(&["functions", &function.logical, "allow"])
                        .index(s)
                        .key("resources")
                        .index(r),
                );
                let d = self.error(
                    format!(
                        "infinite invocation loop: `{}` is triggered by bucket `{}` and may write to it",
                        function.logical, trigger.bucket
                    ),
                    span,
                );
                d.label = Some(format!(
                    "every object `{}` writes here would invoke it again",
                    function.logical
                ));
                d.notes.push(format!(
                    "`{action}` on `{resource}`{}",
                    grant
                        .map(|g| format!(" is granted at line {}, column {}", g.line, g.col))
                        .unwrap_or_default()
                ));
                d.help = Some(
                    "write to another bucket, or to a prefix or suffix the trigger does not match"
                        .to_owned(),
                );
                return;
            }
        }
    }

    /// S3 rejects two notification entries of one bucket whose events, prefixes and
    /// suffixes overlap ("Configurations overlap"); the emulator accepts them.
    fn overlaps(&mut self, entries: &BTreeMap<String, Vec<NotificationEntry>>) {
        let mut reported = BTreeSet::new();
        for (bucket, list) in entries {
            for (a, first) in list.iter().enumerate() {
                for second in &list[a + 1..] {
                    let events = first.events.iter().any(|e| second.events.contains(e));
                    let prefixes = first.prefix.starts_with(&second.prefix)
                        || second.prefix.starts_with(&first.prefix);
                    let suffixes = first.suffix.ends_with(&second.suffix)
                        || second.suffix.ends_with(&first.suffix);
                    let overlap = events && prefixes && suffixes;
                    if !overlap || !reported.insert((second.function.clone(), second.trigger)) {
                        continue;
                    }
                    let path = NodePath::keys(&["functions", &second.function, "triggers"])
                        .index(second.trigger);
                    let span = self.at_key(&path);
                    let same = first.function == second.function && first.trigger == second.trigger;
                    let other = if same {
                        "itself (a suffix is listed twice, or one suffix ends with another)"
                            .to_owned()
                    } else {
                        format!("trigger {} of `{}`", first.trigger + 1, first.function)
                    };
                    self.error(
                        format!("S3 trigger on bucket `{bucket}` overlaps {other}"),
                        span,
                    )
                    .notes
                    .push("S3 rejects notifications that share an event type and have overlapping prefixes and suffixes".to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        let bad = [
            ("ab", "2 characters long"),
            (&"a".repeat(64), "64 characters long"),
            ("Source", "uppercase letter `S`"),
            ("my_bucket", "contains `_`"),
            ("-abc", "begin and end"),
            ("abc.", "begin and end"),
            ("a..b", "two adjacent dots"),
            ("192.168.5.4", "IP address"),
            ("xn--abc", "prefix `xn--`"),
            ("sthree-abc", "prefix `sthree-`"),
            ("amzn-s3-demo-abc", "prefix `amzn-s3-demo-`"),
            ("abc-s3alias", "suffix `-s3alias`"),
            ("abc--ol-s3", "suffix `--ol-s3`"),
            ("abc.mrap", "suffix `.mrap`"),
            ("abc--x-s3", "suffix `--x-s3`"),
        ];
        for (name, expected) in bad {
            let problem = bucket_name_problem(name).unwrap_or_default();
            assert!(problem.contains(expected), "{name}: {problem}");
        }
        for good in [
            "abc",
            "exif-pipeline-source-dev-123456789012",
            "a.b-c",
            "192.168.5",
        ] {
            assert_eq!(bucket_name_problem(good), None, "{good}");
        }
    }

    #[test]
    fn ssm_names() {
        let arn = "arn:aws:ssm:eu-west-2:123456789012:parameter";
        assert_eq!(
            ssm_name_problem("/exif-pipeline/dev/source-bucket", arn),
            None
        );
        assert_eq!(ssm_name_problem("flat_name.v1", arn), None);
        let bad = [
            ("", "empty"),
            ("/a b", "contains ` `"),
            ("a/b", "must start with `/`"),
            ("/a//b", "empty path segment"),
            ("/a/", "empty path segment"),
            ("/aws/x", "reserved"),
            ("SSM-thing", "reserved"),
            (&"/a".repeat(16), "16 levels"),
            (&format!("/{}", "a".repeat(1000)), "ARN is 1045 characters"),
        ];
        for (name, expected) in bad {
            let problem = ssm_name_problem(name, arn).unwrap_or_default();
            assert!(problem.contains(expected), "{name}: {problem}");
        }
    }

    #[test]
    fn other_names() {
        assert_eq!(logical_name_problem("user-a"), None);
        assert!(logical_name_problem("User").is_some_and(|p| p.contains("lowercase letter")));
        assert!(logical_name_problem("a_b").is_some_and(|p| p.contains("`_`")));
        assert!(logical_name_problem("a-").is_some_and(|p| p.contains("hyphen")));
        assert_eq!(region_problem("eu-west-2"), None);
        assert_eq!(region_problem("us-gov-west-1"), None);
        assert!(region_problem("eu-west2").is_some());
        assert!(region_problem("EU-west-2").is_some());
        assert_eq!(endpoint_problem("http://127.0.0.1:4566"), None);
        assert!(endpoint_problem("127.0.0.1:4566").is_some());
        assert!(endpoint_problem("http://:4566").is_some());
        assert_eq!(env_var_problem("DESTINATION_BUCKET"), None);
        assert!(env_var_problem("AWS_REGION").is_some_and(|p| p.contains("reserved")));
        assert!(env_var_problem("1X").is_some());
        assert_eq!(tag_problem("project", "exif pipeline"), None);
        assert!(tag_problem("env", "x").is_some_and(|p| p.contains("set by stripstack")));
        assert!(tag_problem("aws:x", "y").is_some_and(|p| p.contains("reserved")));
        assert!(tag_problem("k", "a*b").is_some_and(|p| p.contains("`*`")));
    }
}
