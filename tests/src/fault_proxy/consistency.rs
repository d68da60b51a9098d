//! AWS's eventual consistency, replayed for a window after each write the proxy saw succeed.
//!
//! Everything here is answered *before* the request reaches the emulator (or, for reads,
//! instead of the emulator's current answer), so a refused write is never applied, and a
//! retried one is applied exactly once. The windows are deterministic: a request in the
//! window always gets the fault, the first one after it never does. Real AWS is kinder on
//! average (some requests in the window succeed), so this is the worst case of each
//! behaviour, which is what a deployer must survive.
//!
//! The behaviours, and where they are documented:
//!
//! 1. **S3 `NoSuchBucket` (404) right after `CreateBucket` succeeded.** The S3 user guide:
//!    "Bucket configurations have an eventual consistency model"
//!    (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel>);
//!    Terraform's AWS provider retries `NoSuchBucket` after create for this reason
//!    (hashicorp/terraform-provider-aws PR 10863, "Retry GetBucketTagging API calls on
//!    NoSuchBucket errors due to eventual consistency", closing issue 10068; issue 7803,
//!    `PutBucketLifecycleConfiguration` failing `NoSuchBucket` after create). Issue 13 also
//!    names terraform-provider-aws issue 33717, which the reference search could not confirm.
//! 2. **IAM `NoSuchEntity` (404)** for `TagUser`/`CreateAccessKey`/`PutUserPolicy`/
//!    `AttachUserPolicy` on a just-created user, `PutRolePolicy`/`TagRole`/`AttachRolePolicy`
//!    on a just-created role, and `Attach*Policy` naming a just-created policy. The IAM user
//!    guide on eventual consistency
//!    (<https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency>);
//!    pulumi/pulumi issue 7419 ("NoSuchEntity: Policy … does not exist or is not
//!    attachable", 404); hashicorp/terraform-provider-aws PR 6709 (retry `AttachRolePolicy`
//!    on `NoSuchEntity` after create) and issue 2449 (`PutUserPolicy` right after
//!    `CreateUser`: "NoSuchEntity: The user with name … cannot be found", 404).
//!    And Lambda `CreateFunction` naming a just-created role: 400
//!    `InvalidParameterValueException` "The role defined for the function cannot be assumed
//!    by Lambda." (apex/up issue 189; hashicorp/waypoint PR 1292 retries exactly this).
//! 3. **S3 `PutBucketNotificationConfiguration` 400 `InvalidArgument` "Unable to validate the
//!    following destination configurations"** until a just-added Lambda invoke permission
//!    has propagated (hashicorp/terraform-provider-aws issue 19088, "aws_s3_bucket_notification
//!    intermittent failures due to IAM eventual consistency"; zappa/Zappa PR 1441 retries it
//!    after `add_permission`).
//! 4. **Lambda function states.** After `CreateFunction` the function is `Pending`, and while
//!    an update is in progress its `LastUpdateStatus` is `InProgress`; meanwhile
//!    `UpdateFunctionCode`, `UpdateFunctionConfiguration` and `PublishVersion` fail
//!    (<https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html>) with 409
//!    `ResourceConflictException` "The operation cannot be performed at this time. An update
//!    is in progress for resource: …" (the message as Optum/dce issue 418 captured it;
//!    "The resource already exists, or another operation is in progress":
//!    <https://docs.aws.amazon.com/botocore/latest/reference/services/lambda/client/exceptions/ResourceConflictException.html>;
//!    "During this time, you can't modify the function":
//!    <https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html>;
//!    rackerlabs/lambda-uploader PR 169 waits with `function_updated` to avoid it).
//!    `GetFunction`/`GetFunctionConfiguration` answers are rewritten to say so, so that the
//!    SDK's `function_active`/`function_updated` waiters really wait.
//! 5. **Stale reads after a write.** `GetBucketLifecycleConfiguration` (and
//!    `GetBucketTagging`) return the answer from before a `Put…`/`Delete…`: "there is usually
//!    some lag before a new or updated Lifecycle configuration is fully propagated to all the
//!    Amazon S3 systems"
//!    (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/how-to-set-lifecycle-configuration-intro.html>),
//!    and bucket configurations in general are eventually consistent (the S3 consistency
//!    model above). The pre-write answer is the last one a read through the proxy got; for a
//!    bucket created through the proxy and never read, it is "none configured". A write with
//!    neither known gets no stale window: the proxy never invents a configuration.
//!
//! 6. **Lambda `PutFunctionEventInvokeConfig` 400 `InvalidParameterValueException` "The
//!    function's execution role does not have permissions to call SendMessage on …"** while a
//!    role policy just written (`PutRolePolicy`) that grants the destination has not reached
//!    Lambda: Lambda checks the role may send to the destination when the configuration is
//!    put, and IAM changes take a while to be seen (the IAM eventual-consistency guide above);
//!    hashicorp/terraform-provider-aws retries exactly this message for its IAM propagation
//!    timeout (`internal/service/lambda/function_event_invoke_config.go`), and
//!    aws-amplify/amplify-js issue 9869 hit it without the retry. Unlike the others this one
//!    is counted, not timed: the first Put for such a destination within ten windows of the
//!    policy is refused, the next accepted. The function is bundled, created and waited for
//!    between the two (seconds that vary with the machine's load), so a time window would make
//!    whether the deployer meets it a matter of luck; the first try failing is the worst case.
//!
//! Not modelled: issue 13's row 17 (objects 404 on a freshly versioned bucket), which is
//! tested at the Lambda handler's level.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;

use super::answers::{self, Answer};
use super::classify::{function_name, iam_name, Call, Service};
use super::Fault;

/// Caches and records are dropped wholesale past this many entries: the proxy stays bounded
/// whatever a test throws at it, at worst forgetting a pre-write answer.
const MAX_ENTRIES: usize = 4096;
/// Larger read answers are not cached for stale replay (a lifecycle configuration is a few
/// KiB at most).
const MAX_CACHED_BODY: usize = 1 << 20;

/// How long after a role's policy names an on-failure destination the first Put naming it is
/// refused, in consistency windows (behaviour 6).
const DESTINATION_WINDOWS: u32 = 10;

/// The bucket configurations whose reads go stale after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Config {
    Lifecycle,
    Tagging,
}

impl Config {
    /// The configuration an S3 operation reads (`Some((config, false))`) or writes
    /// (`Some((config, true))`).
    fn of(operation: &str) -> Option<(Config, bool)> {
        Some(match operation {
            "GetBucketLifecycleConfiguration" | "GetBucketLifecycle" => (Config::Lifecycle, false),
            "PutBucketLifecycleConfiguration" | "PutBucketLifecycle" | "DeleteBucketLifecycle" => {
                (Config::Lifecycle, true)
            }
            "GetBucketTagging" => (Config::Tagging, false),
            "PutBucketTagging" | "DeleteBucketTagging" => (Config::Tagging, true),
            _ => return None,
        })
    }

    /// S3's answer when a bucket has none of this configuration.
    fn none_configured(self, bucket: &str, request_id: &str) -> Answer {
        let (code, message) = match self {
            Config::Lifecycle => (
                "NoSuchLifecycleConfiguration",
                "The lifecycle configuration does not exist",
            ),
            Config::Tagging => ("NoSuchTagSet", "The TagSet does not exist"),
        };
        answers::s3_error(
            StatusCode::NOT_FOUND,
            code,
            message,
            &[("BucketName", bucket)],
            request_id,
        )
    }
}

/// A read answer kept for replay.
#[derive(Clone, Debug)]
struct Cached {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
}

impl Cached {
    fn from_answer(answer: &Answer) -> Cached {
        Cached {
            status: answer.status,
            content_type: answer
                .headers
                .iter()
                .find(|(name, _)| *name == "content-type")
                .map(|(_, value)| value.clone()),
            body: answer.body.clone(),
        }
    }

    fn answer(&self, request_id: &str) -> Answer {
        let mut headers = vec![("x-amz-request-id", request_id.to_string())];
        if let Some(content_type) = &self.content_type {
            headers.push(("content-type", content_type.clone()));
        }
        Answer {
            status: self.status,
            headers,
            body: self.body.clone(),
        }
    }
}

/// A function Lambda is still creating or updating.
#[derive(Clone, Debug)]
struct Busy {
    until: Instant,
    creating: bool,
    arn: Option<String>,
}

/// What the proxy has seen written, and until when each write is still propagating.
pub struct Consistency {
    window: Duration,
    /// Buckets created through the proxy → end of their `NoSuchBucket` window.
    buckets: HashMap<String, Instant>,
    /// Buckets created through the proxy whose configurations are known to be empty (until
    /// the first write of each).
    unconfigured: HashSet<(String, Config)>,
    /// Buckets a request through the proxy has found to exist. A `CreateBucket` that
    /// succeeds on one of them (us-east-1 answers 200 to re-creating your own bucket) creates
    /// nothing new, so it opens no window.
    existing: HashSet<String>,
    users: HashMap<String, Instant>,
    roles: HashMap<String, Instant>,
    /// By policy name (the last segment of the ARN `Attach*Policy` names).
    policies: HashMap<String, Instant>,
    /// Function name → end of the window of its last `AddPermission`.
    permissions: HashMap<String, Instant>,
    /// SQS ARNs named by a role policy written recently: not yet usable as destinations.
    destinations: HashMap<String, Instant>,
    functions: HashMap<String, Busy>,
    /// The last answer a read of each configuration got through the proxy.
    seen: HashMap<(String, Config), Cached>,
    /// Configurations written recently → (end of window, the answer reads get meanwhile).
    stale: HashMap<(String, Config), (Instant, Cached)>,
}

/// A consistency fault, with the answer that replaces the emulator's.
pub type Verdict = (Fault, Answer);

impl Consistency {
    pub fn new(window: Duration) -> Consistency {
        Consistency {
            window,
            buckets: HashMap::new(),
            unconfigured: HashSet::new(),
            existing: HashSet::new(),
            users: HashMap::new(),
            roles: HashMap::new(),
            policies: HashMap::new(),
            permissions: HashMap::new(),
            destinations: HashMap::new(),
            functions: HashMap::new(),
            seen: HashMap::new(),
            stale: HashMap::new(),
        }
    }

    fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// The answer to give instead of forwarding `call` (whose buffered body is `body`), if it
    /// falls in a consistency window at `now`.
    pub fn before(
        &mut self,
        call: &Call,
        body: &[u8],
        now: Instant,
        request_id: &str,
    ) -> Option<Verdict> {
        if !self.enabled() {
            return None;
        }
        self.forget_ended(now);
        match call.service {
            Service::S3 => self.s3_before(call, body, now, request_id),
            Service::Iam => self.iam_before(call, now, request_id),
            Service::Lambda => self.lambda_before(call, body, now, request_id),
            _ => None,
        }
    }

    fn s3_before(
        &mut self,
        call: &Call,
        body: &[u8],
        now: Instant,
        request_id: &str,
    ) -> Option<Verdict> {
        let bucket = call.bucket.as_deref()?;
        if call.operation != "CreateBucket" && in_window(self.buckets.get(bucket), now) {
            let answer = answers::s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
                &[("BucketName", bucket)],
                request_id,
            );
            return Some((Fault::NoSuchBucket, answer));
        }
        if let Some((config, false)) = Config::of(&call.operation) {
            if let Some((until, cached)) = self.stale.get(&(bucket.to_string(), config)) {
                if *until > now {
                    return Some((Fault::StaleRead, cached.answer(request_id)));
                }
            }
        }
        if call.operation == "PutBucketNotificationConfiguration" {
            let text = String::from_utf8_lossy(body);
            for arn in element_texts(&text, "CloudFunction") {
                if in_window(self.permissions.get(&function_name(arn)), now) {
                    let detail = format!("Not authorized to invoke function [{arn}]");
                    let answer = answers::s3_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "Unable to validate the following destination configurations",
                        &[("ArgumentName1", arn), ("ArgumentValue1", &detail)],
                        request_id,
                    );
                    return Some((Fault::NotificationUnvalidated, answer));
                }
            }
        }
        None
    }

    fn iam_before(&mut self, call: &Call, now: Instant, request_id: &str) -> Option<Verdict> {
        let user = call.param("UserName").unwrap_or_default();
        let role = call.param("RoleName").unwrap_or_default();
        let policy_arn = call.param("PolicyArn").unwrap_or_default();
        let message = match call.operation.as_str() {
            "AttachUserPolicy" | "AttachRolePolicy"
                if in_window(self.policies.get(iam_name(policy_arn)), now) =>
            {
                format!("Policy {policy_arn} does not exist or is not attachable.")
            }
            "TagUser" | "CreateAccessKey" | "PutUserPolicy" | "AttachUserPolicy"
                if in_window(self.users.get(user), now) =>
            {
                format!("The user with name {user} cannot be found.")
            }
            "PutRolePolicy" | "TagRole" | "AttachRolePolicy"
                if in_window(self.roles.get(role), now) =>
            {
                format!("The role with name {role} cannot be found.")
            }
            _ => return None,
        };
        let answer = answers::query_error(
            &call.service,
            StatusCode::NOT_FOUND,
            "Sender",
            "NoSuchEntity",
            &message,
            request_id,
        );
        Some((Fault::IamNoSuchEntity, answer))
    }

    fn lambda_before(
        &mut self,
        call: &Call,
        body: &[u8],
        now: Instant,
        request_id: &str,
    ) -> Option<Verdict> {
        match call.operation.as_str() {
            "CreateFunction" => {
                let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
                    let answer = answers::malformed("a CreateFunction body that is not JSON");
                    return Some((Fault::Malformed, answer));
                };
                let role = request["Role"].as_str().unwrap_or_default();
                if in_window(self.roles.get(iam_name(role)), now) {
                    let answer = answers::rest_json_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameterValueException",
                        r#""Type":"User""#,
                        "The role defined for the function cannot be assumed by Lambda.",
                        request_id,
                    );
                    return Some((Fault::RoleNotAssumable, answer));
                }
                None
            }
            "PutFunctionEventInvokeConfig" => {
                let request = serde_json::from_slice::<serde_json::Value>(body).ok()?;
                let destination = request["DestinationConfig"]["OnFailure"]["Destination"]
                    .as_str()?
                    .to_string();
                if !in_window(self.destinations.get(&destination), now) {
                    return None;
                }
                // Refused once: the retry finds the permission propagated.
                self.destinations.remove(&destination);
                let answer = answers::rest_json_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    r#""Type":"User""#,
                    &format!(
                        "The function's execution role does not have permissions to call \
                         SendMessage on {destination}"
                    ),
                    request_id,
                );
                Some((Fault::DestinationUnauthorized, answer))
            }
            "UpdateFunctionCode" | "UpdateFunctionConfiguration" | "PublishVersion" => {
                let name = call.function.as_deref()?;
                let busy = self.functions.get(name).filter(|busy| busy.until > now)?;
                let resource = busy.arn.clone().unwrap_or_else(|| name.to_string());
                let answer = answers::rest_json_error(
                    StatusCode::CONFLICT,
                    "ResourceConflictException",
                    r#""Type":"User""#,
                    &format!(
                        "The operation cannot be performed at this time. An update is in \
                         progress for resource: {resource}"
                    ),
                    request_id,
                );
                Some((Fault::FunctionUpdateConflict, answer))
            }
            _ => None,
        }
    }

    /// Whether [`Consistency::after`] needs the emulator's response body for `call`: to
    /// learn an ARN, to cache a read for stale replay, or to rewrite a function's state.
    pub fn wants_response_body(&self, call: &Call, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        match call.service {
            Service::S3 => matches!(Config::of(&call.operation), Some((_, false))),
            Service::Lambda => match call.operation.as_str() {
                "CreateFunction" | "UpdateFunctionCode" | "UpdateFunctionConfiguration" => true,
                "GetFunction" | "GetFunctionConfiguration" => call
                    .function
                    .as_ref()
                    .and_then(|name| self.functions.get(name))
                    .is_some_and(|busy| busy.until > now),
                _ => false,
            },
            _ => false,
        }
    }

    /// Records what a forwarded `call` did, from the emulator's status and (when
    /// [`Consistency::wants_response_body`] asked for it) body. Returns a replacement body
    /// when the answer must be rewritten.
    pub fn after(
        &mut self,
        call: &Call,
        request_body: &[u8],
        answer: &Answer,
        now: Instant,
    ) -> Option<(Fault, Bytes)> {
        if !self.enabled() {
            return None;
        }
        let success = answer.status.is_success();
        let until = now + self.window;
        match call.service {
            Service::S3 => {
                let bucket = call.bucket.clone()?;
                match (call.operation.as_str(), Config::of(&call.operation)) {
                    ("CreateBucket", _) if success && !self.existing.contains(&bucket) => {
                        self.forget_bucket(&bucket);
                        bound(&mut self.buckets).insert(bucket.clone(), until);
                        bound_set(&mut self.unconfigured)
                            .insert((bucket.clone(), Config::Lifecycle));
                        self.unconfigured.insert((bucket, Config::Tagging));
                        return None;
                    }
                    ("DeleteBucket", _) if success => {
                        self.forget_bucket(&bucket);
                        return None;
                    }
                    (_, Some((config, true))) if success => {
                        let key = (bucket, config);
                        // What reads got just before this write is what they keep getting
                        // for the window: an answer still being replayed, else the last
                        // one read, else "none" for a bucket known to have none.
                        let before = match self.stale.get(&key) {
                            Some((end, cached)) if *end > now => Some(cached.clone()),
                            _ => self.seen.get(&key).cloned().or_else(|| {
                                self.unconfigured.contains(&key).then(|| {
                                    Cached::from_answer(&config.none_configured(&key.0, ""))
                                })
                            }),
                        };
                        self.seen.remove(&key);
                        self.unconfigured.remove(&key);
                        match before {
                            Some(cached) => {
                                bound(&mut self.stale).insert(key, (until, cached));
                            }
                            None => {
                                self.stale.remove(&key);
                            }
                        }
                    }
                    (_, Some((config, false)))
                        if (success || answer.status == StatusCode::NOT_FOUND)
                            && answer.body.len() <= MAX_CACHED_BODY =>
                    {
                        bound(&mut self.seen).insert((bucket, config), Cached::from_answer(answer));
                    }
                    _ => {}
                }
                if success {
                    bound_set(&mut self.existing).insert(call.bucket.clone()?);
                }
                None
            }
            Service::Iam => {
                match call.operation.as_str() {
                    "CreateUser" if success => {
                        record(&mut self.users, call.param("UserName"), until)
                    }
                    "CreateRole" if success => {
                        record(&mut self.roles, call.param("RoleName"), until)
                    }
                    "CreatePolicy" if success => {
                        record(&mut self.policies, call.param("PolicyName"), until)
                    }
                    "PutRolePolicy" if success => {
                        let until = now + self.window * DESTINATION_WINDOWS;
                        for arn in sqs_arns(call.param("PolicyDocument").unwrap_or_default()) {
                            record(&mut self.destinations, Some(arn), until);
                        }
                    }
                    "DeleteUser" => forget(&mut self.users, call.param("UserName")),
                    "DeleteRole" => forget(&mut self.roles, call.param("RoleName")),
                    "DeletePolicy" => {
                        forget(&mut self.policies, call.param("PolicyArn").map(iam_name))
                    }
                    _ => {}
                }
                None
            }
            Service::Lambda => self.lambda_after(call, request_body, answer, now),
            _ => None,
        }
    }

    fn lambda_after(
        &mut self,
        call: &Call,
        request_body: &[u8],
        answer: &Answer,
        now: Instant,
    ) -> Option<(Fault, Bytes)> {
        let success = answer.status.is_success();
        let until = now + self.window;
        let response = || serde_json::from_slice::<serde_json::Value>(&answer.body).ok();
        match call.operation.as_str() {
            "CreateFunction" if success => {
                let response = response();
                let name = response
                    .as_ref()
                    .and_then(|r| r["FunctionName"].as_str().map(function_name))
                    .or_else(|| {
                        serde_json::from_slice::<serde_json::Value>(request_body)
                            .ok()
                            .and_then(|r| r["FunctionName"].as_str().map(function_name))
                    })?;
                let arn = response.and_then(|r| r["FunctionArn"].as_str().map(str::to_string));
                let busy = Busy {
                    until,
                    creating: true,
                    arn,
                };
                bound(&mut self.functions).insert(name, busy);
                None
            }
            "UpdateFunctionCode" | "UpdateFunctionConfiguration" if success => {
                let name = call.function.clone()?;
                let arn = response().and_then(|r| r["FunctionArn"].as_str().map(str::to_string));
                let busy = Busy {
                    until,
                    creating: false,
                    arn,
                };
                bound(&mut self.functions).insert(name, busy);
                None
            }
            "AddPermission" if success => {
                record(&mut self.permissions, call.function.as_deref(), until);
                None
            }
            "DeleteFunction" if success => {
                let name = call.function.as_deref()?;
                self.functions.remove(name);
                self.permissions.remove(name);
                None
            }
            "GetFunction" | "GetFunctionConfiguration" if success => {
                let busy = self
                    .functions
                    .get(call.function.as_deref()?)
                    .filter(|busy| busy.until > now)?;
                let nested = call.operation == "GetFunction";
                let body = rewrite_state(&answer.body, nested, busy.creating)?;
                Some((Fault::FunctionStateRewritten, body))
            }
            _ => None,
        }
    }

    fn forget_bucket(&mut self, bucket: &str) {
        self.buckets.remove(bucket);
        self.existing.remove(bucket);
        self.seen.retain(|(name, _), _| name != bucket);
        self.stale.retain(|(name, _), _| name != bucket);
        self.unconfigured.retain(|(name, _)| name != bucket);
    }

    /// Drops the windows that have ended, so that the maps only hold what is propagating.
    fn forget_ended(&mut self, now: Instant) {
        self.buckets.retain(|_, until| *until > now);
        self.users.retain(|_, until| *until > now);
        self.roles.retain(|_, until| *until > now);
        self.policies.retain(|_, until| *until > now);
        self.permissions.retain(|_, until| *until > now);
        self.destinations.retain(|_, until| *until > now);
        self.functions.retain(|_, busy| busy.until > now);
        self.stale.retain(|_, (until, _)| *until > now);
    }
}

/// The SQS ARNs a policy document names (its `Resource` strings).
fn sqs_arns(document: &str) -> Vec<&str> {
    document
        .split('"')
        .filter(|text| text.starts_with("arn:") && text.contains(":sqs:"))
        .collect()
}

fn in_window(until: Option<&Instant>, now: Instant) -> bool {
    until.is_some_and(|until| *until > now)
}

fn record(map: &mut HashMap<String, Instant>, name: Option<&str>, until: Instant) {
    if let Some(name) = name.filter(|name| !name.is_empty()) {
        bound(map).insert(name.to_string(), until);
    }
}

fn forget(map: &mut HashMap<String, Instant>, name: Option<&str>) {
    if let Some(name) = name {
        map.remove(name);
    }
}

/// The map, emptied first if it reached [`MAX_ENTRIES`].
fn bound<K, V>(map: &mut HashMap<K, V>) -> &mut HashMap<K, V> {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map
}

/// The set, emptied first if it reached [`MAX_ENTRIES`].
fn bound_set<T>(set: &mut HashSet<T>) -> &mut HashSet<T> {
    if set.len() >= MAX_ENTRIES {
        set.clear();
    }
    set
}

/// The texts of every `<name>…</name>` element (no attributes, no nesting: the shape of
/// `<CloudFunction>ARN</CloudFunction>` in a notification configuration).
fn element_texts<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut texts = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        texts.push(after[..end].trim());
        rest = &after[end + close.len()..];
    }
    texts
}

/// A `GetFunction` (`nested`: the configuration under `Configuration`) or
/// `GetFunctionConfiguration` answer as Lambda gives it while the function is being created
/// (`State: Pending`) or updated (`LastUpdateStatus: InProgress`). `None`: not a JSON object,
/// left as it is.
fn rewrite_state(body: &[u8], nested: bool, creating: bool) -> Option<Bytes> {
    let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let configuration = if nested {
        json.get_mut("Configuration")?
    } else {
        &mut json
    };
    let fields = configuration.as_object_mut()?;
    let text = |value: &str| serde_json::Value::String(value.to_string());
    if creating {
        fields.insert("State".into(), text("Pending"));
        fields.insert("StateReason".into(), text("The function is being created."));
        fields.insert("StateReasonCode".into(), text("Creating"));
    }
    fields.insert("LastUpdateStatus".into(), text("InProgress"));
    if creating {
        fields.insert(
            "LastUpdateStatusReason".into(),
            text("The function is being created."),
        );
        fields.insert("LastUpdateStatusReasonCode".into(), text("Creating"));
    } else {
        fields.remove("LastUpdateStatusReason");
        fields.remove("LastUpdateStatusReasonCode");
    }
    serde_json::to_vec(&json).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(3);

    fn call(service: Service, operation: &str) -> Call {
        Call {
            service,
            operation: operation.to_string(),
            region: "us-east-1".to_string(),
            bucket: None,
            object: false,
            function: None,
            params: Vec::new(),
        }
    }

    fn s3(operation: &str, bucket: &str) -> Call {
        Call {
            bucket: Some(bucket.to_string()),
            ..call(Service::S3, operation)
        }
    }

    fn iam(operation: &str, params: &[(&str, &str)]) -> Call {
        Call {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..call(Service::Iam, operation)
        }
    }

    fn lambda(operation: &str, function: Option<&str>) -> Call {
        Call {
            function: function.map(str::to_string),
            ..call(Service::Lambda, operation)
        }
    }

    fn ok(body: &str) -> Answer {
        Answer {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/xml".to_string())],
            body: Bytes::from(body.to_string()),
        }
    }

    fn fault(verdict: Option<Verdict>) -> Option<Fault> {
        verdict.map(|(fault, _)| fault)
    }

    #[test]
    fn a_new_bucket_is_missing_for_the_window_then_found() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        state.after(&s3("CreateBucket", "b"), b"", &ok(""), t0);
        let verdict = state.before(&s3("PutBucketTagging", "b"), b"", t0, "r");
        let (fault, answer) = verdict.expect("NoSuchBucket in the window");
        assert_eq!(fault, Fault::NoSuchBucket);
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert!(std::str::from_utf8(&answer.body)
            .unwrap()
            .contains("<Code>NoSuchBucket</Code><Message>The specified bucket does not exist"));
        // Creating it again is S3's own business (BucketAlreadyOwnedByYou), not a fault.
        assert_eq!(fault_of(&mut state, &s3("CreateBucket", "b"), t0), None);
        assert_eq!(fault_of(&mut state, &s3("HeadBucket", "other"), t0), None);
        assert_eq!(
            fault_of(&mut state, &s3("PutBucketTagging", "b"), t0 + WINDOW),
            None
        );
    }

    fn fault_of(state: &mut Consistency, call: &Call, now: Instant) -> Option<Fault> {
        fault(state.before(call, b"", now, "r"))
    }

    #[test]
    fn re_creating_an_existing_bucket_opens_no_window() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        state.after(&s3("HeadBucket", "b"), b"", &ok(""), t0);
        state.after(&s3("CreateBucket", "b"), b"", &ok(""), t0);
        assert_eq!(fault_of(&mut state, &s3("PutBucketTagging", "b"), t0), None);
        // Once deleted, creating it again is new.
        state.after(&s3("DeleteBucket", "b"), b"", &ok(""), t0);
        state.after(&s3("CreateBucket", "b"), b"", &ok(""), t0);
        assert_eq!(
            fault_of(&mut state, &s3("PutBucketTagging", "b"), t0),
            Some(Fault::NoSuchBucket)
        );
    }

    #[test]
    fn a_failed_create_opens_no_window() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        let conflict = Answer {
            status: StatusCode::CONFLICT,
            ..ok("")
        };
        state.after(&s3("CreateBucket", "b"), b"", &conflict, t0);
        assert_eq!(fault_of(&mut state, &s3("PutBucketTagging", "b"), t0), None);
    }

    #[test]
    fn iam_entities_are_not_found_for_the_window() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        state.after(&iam("CreateUser", &[("UserName", "u")]), b"", &ok(""), t0);
        state.after(&iam("CreateRole", &[("RoleName", "r")]), b"", &ok(""), t0);
        state.after(
            &iam("CreatePolicy", &[("PolicyName", "p")]),
            b"",
            &ok(""),
            t0,
        );
        let arn = "arn:aws:iam::000000000000:policy/p";
        for call in [
            iam("CreateAccessKey", &[("UserName", "u")]),
            iam("TagUser", &[("UserName", "u")]),
            iam("PutUserPolicy", &[("UserName", "u")]),
            iam(
                "AttachUserPolicy",
                &[("UserName", "old"), ("PolicyArn", arn)],
            ),
            iam("PutRolePolicy", &[("RoleName", "r")]),
            iam("TagRole", &[("RoleName", "r")]),
            iam("AttachRolePolicy", &[("RoleName", "r")]),
        ] {
            let (fault, answer) = state.before(&call, b"", t0, "r").expect(&call.operation);
            assert_eq!(fault, Fault::IamNoSuchEntity);
            assert_eq!(answer.status, StatusCode::NOT_FOUND);
        }
        let (_, answer) = state
            .before(
                &iam(
                    "AttachUserPolicy",
                    &[("UserName", "old"), ("PolicyArn", arn)],
                ),
                b"",
                t0,
                "r",
            )
            .unwrap();
        assert!(std::str::from_utf8(&answer.body).unwrap().contains(
            "Policy arn:aws:iam::000000000000:policy/p does not exist or is not attachable."
        ));
        assert_eq!(
            fault_of(&mut state, &iam("GetUser", &[("UserName", "u")]), t0),
            None
        );
        assert_eq!(
            fault_of(
                &mut state,
                &iam("TagUser", &[("UserName", "u")]),
                t0 + WINDOW
            ),
            None
        );
    }

    #[test]
    fn lambda_refuses_a_role_it_cannot_assume_yet() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        state.after(&iam("CreateRole", &[("RoleName", "r")]), b"", &ok(""), t0);
        let body = br#"{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r"}"#;
        let verdict = state.before(&lambda("CreateFunction", None), body, t0, "id");
        assert_eq!(fault(verdict), Some(Fault::RoleNotAssumable));
        let later = state.before(&lambda("CreateFunction", None), body, t0 + WINDOW, "id");
        assert_eq!(fault(later), None);
        let verdict = state.before(&lambda("CreateFunction", None), b"not json", t0, "id");
        assert_eq!(fault(verdict), Some(Fault::Malformed));
    }

    #[test]
    fn functions_conflict_and_read_as_pending_while_busy() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        let created =
            ok(r#"{"FunctionName":"f","FunctionArn":"arn:aws:lambda:us-east-1:1:function:f"}"#);
        state.after(&lambda("CreateFunction", None), b"{}", &created, t0);
        let (fault, answer) = state
            .before(&lambda("UpdateFunctionCode", Some("f")), b"", t0, "id")
            .expect("a conflict while pending");
        assert_eq!(fault, Fault::FunctionUpdateConflict);
        assert_eq!(answer.status, StatusCode::CONFLICT);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            json["message"],
            "The operation cannot be performed at this time. An update is in progress for \
             resource: arn:aws:lambda:us-east-1:1:function:f"
        );

        let get = lambda("GetFunction", Some("f"));
        assert!(state.wants_response_body(&get, t0));
        let read = ok(
            r#"{"Configuration":{"FunctionName":"f","State":"Active","LastUpdateStatus":"Successful"},"Code":{}}"#,
        );
        let (fault, body) = state.after(&get, b"", &read, t0).expect("rewritten");
        assert_eq!(fault, Fault::FunctionStateRewritten);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["Configuration"]["State"], "Pending");
        assert_eq!(json["Configuration"]["LastUpdateStatus"], "InProgress");
        assert_eq!(json["Code"], serde_json::json!({}));

        // After the window: Active; an update opens an update window (State stays as read).
        let t1 = t0 + WINDOW;
        assert!(!state.wants_response_body(&get, t1));
        assert_eq!(
            fault_of(
                &mut state,
                &lambda("UpdateFunctionConfiguration", Some("f")),
                t1
            ),
            None
        );
        state.after(
            &lambda("UpdateFunctionConfiguration", Some("f")),
            b"",
            &ok("{}"),
            t1,
        );
        assert_eq!(
            fault_of(&mut state, &lambda("PublishVersion", Some("f")), t1),
            Some(Fault::FunctionUpdateConflict)
        );
        let config = lambda("GetFunctionConfiguration", Some("f"));
        let read = ok(r#"{"FunctionName":"f","State":"Active","LastUpdateStatus":"Successful"}"#);
        let (_, body) = state.after(&config, b"", &read, t1).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["State"], "Active");
        assert_eq!(json["LastUpdateStatus"], "InProgress");
    }

    #[test]
    fn notifications_fail_validation_until_the_permission_propagates() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        state.after(&lambda("AddPermission", Some("strip")), b"", &ok("{}"), t0);
        let body = b"<NotificationConfiguration><CloudFunctionConfiguration><Id>x</Id>\
            <CloudFunction>arn:aws:lambda:us-east-1:000000000000:function:strip</CloudFunction>\
            <Event>s3:ObjectCreated:*</Event></CloudFunctionConfiguration></NotificationConfiguration>";
        let put = s3("PutBucketNotificationConfiguration", "b");
        let (fault, answer) = state.before(&put, body, t0, "r").expect("unvalidated");
        assert_eq!(fault, Fault::NotificationUnvalidated);
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let text = std::str::from_utf8(&answer.body).unwrap();
        assert!(text.contains("<Code>InvalidArgument</Code>"), "{text}");
        assert!(text.contains("Unable to validate the following destination configurations"));
        // An empty configuration (removing the trigger) names no function.
        let empty = b"<NotificationConfiguration></NotificationConfiguration>";
        assert!(state.before(&put, empty, t0, "r").is_none());
        assert!(state.before(&put, body, t0 + WINDOW, "r").is_none());
    }

    #[test]
    fn a_destination_is_unauthorized_until_the_roles_policy_propagates() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        let queue = "arn:aws:sqs:us-east-1:000000000000:demo-local-failures";
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sqs:SendMessage"],"Resource":["{queue}"]}}]}}"#
        );
        let put_policy = iam(
            "PutRolePolicy",
            &[("RoleName", "strip-role"), ("PolicyDocument", &document)],
        );
        state.after(&put_policy, b"", &ok("<ok/>"), t0);
        let put = lambda("PutFunctionEventInvokeConfig", Some("strip"));
        let body = serde_json::json!({
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": queue}}
        })
        .to_string();
        let (fault, answer) = state
            .before(&put, body.as_bytes(), t0, "r")
            .expect("unauthorized");
        assert_eq!(fault, Fault::DestinationUnauthorized);
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let text = std::str::from_utf8(&answer.body).unwrap();
        assert!(
            text.contains("does not have permissions to call SendMessage on arn:aws:sqs:"),
            "{text}"
        );
        // Another destination is accepted; the same one is refused once, then accepted.
        let other = body.replace("demo-local-failures", "elsewhere");
        assert!(state.before(&put, other.as_bytes(), t0, "r").is_none());
        assert!(state.before(&put, body.as_bytes(), t0, "r").is_none());
        // Past its windows, a policy's destination is not refused at all.
        let mut late = Consistency::new(WINDOW);
        late.after(&put_policy, b"", &ok("<ok/>"), t0);
        assert!(late
            .before(
                &put,
                body.as_bytes(),
                t0 + WINDOW * DESTINATION_WINDOWS,
                "r"
            )
            .is_none());
    }

    #[test]
    fn reads_are_stale_after_a_write() {
        let mut state = Consistency::new(WINDOW);
        let t0 = Instant::now();
        let get = s3("GetBucketLifecycleConfiguration", "b");
        let put = s3("PutBucketLifecycleConfiguration", "b");
        // A bucket created through the proxy has no lifecycle yet: that is the stale answer.
        state.after(&s3("CreateBucket", "b"), b"", &ok(""), t0 - WINDOW);
        state.after(&put, b"<rules/>", &ok(""), t0);
        let (fault, answer) = state.before(&get, b"", t0, "r").expect("stale");
        assert_eq!(fault, Fault::StaleRead);
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert!(std::str::from_utf8(&answer.body)
            .unwrap()
            .contains("NoSuchLifecycleConfiguration"));
        // After the window the read goes through and its answer is kept; the next write
        // makes reads replay that answer.
        let t1 = t0 + WINDOW;
        assert!(state.before(&get, b"", t1, "r").is_none());
        assert!(state.wants_response_body(&get, t1));
        state.after(&get, b"", &ok("<rules>one</rules>"), t1);
        state.after(&put, b"<rules>two</rules>", &ok(""), t1);
        let (_, answer) = state.before(&get, b"", t1, "r").expect("stale");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, Bytes::from("<rules>one</rules>"));
        // A write with nothing known before it opens no stale window.
        let t2 = t1 + WINDOW;
        state.after(&put, b"<rules>three</rules>", &ok(""), t2);
        assert!(state.before(&get, b"", t2, "r").is_none());
        // Tags behave alike, separately.
        let tags = s3("GetBucketTagging", "b");
        assert!(state.before(&tags, b"", t2, "r").is_none());
    }

    #[test]
    fn a_zero_window_disables_everything() {
        let mut state = Consistency::new(Duration::ZERO);
        let t0 = Instant::now();
        state.after(&s3("CreateBucket", "b"), b"", &ok(""), t0);
        assert!(state
            .before(&s3("PutBucketTagging", "b"), b"", t0, "r")
            .is_none());
        assert!(!state.wants_response_body(&lambda("CreateFunction", None), t0));
    }

    #[test]
    fn elements_are_found_in_order() {
        let xml =
            "<a><CloudFunction> x </CloudFunction><CloudFunction>y</CloudFunction><CloudFunction>z";
        assert_eq!(element_texts(xml, "CloudFunction"), vec!["x", "y"]);
    }
}
