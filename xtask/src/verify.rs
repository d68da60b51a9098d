//! `cargo xtask verify`: an end-to-end check of a deployed environment (the local emulator or
//! real AWS). Prints one table row per check (check, result, detail) and exits non-zero when
//! any check does not pass.
//!
//! Three groups of checks run concurrently:
//! - **configuration**, read with the deployer's credentials: both buckets private (all four
//!   Block Public Access settings), encrypted and versioned; an SSM parameter of the stack holds
//!   each bucket's name; the trigger is in place; the function's role has exactly its declared
//!   inline policy and nothing else, and cannot write to the source bucket (asked of IAM's
//!   policy simulator when it answers, else evaluated here from the role's inline policy);
//! - **permissions**, exercised with `user-a`'s and `user-b`'s own access keys (read from their
//!   SSM parameters): what the design promises them, each expected denial being a real
//!   `AccessDenied` from S3, not just any error;
//! - **pipeline**: a non-JPEG and then a real picture (EXIF with GPS and a maker note, XMP,
//!   Orientation 6) are uploaded under the trigger's prefix, with spaces in their keys; the
//!   picture's copy must appear in the destination bucket within the timeout, hold no metadata
//!   but the Orientation, and carry the original's compressed picture byte for byte. Once the
//!   later upload's copy is there, the non-JPEG must still have none.
//!
//! Every test object lives under a per-run prefix and every version of it is deleted at the
//! end, whatever happened (Ctrl-C included).
//!
//! Bucket A is the bucket of the first function trigger on `created` events, bucket B the
//! bucket named by that function's `DESTINATION_BUCKET`. The users' expected rights are the
//! product's requirements, not whatever the stack file says: a stack that grants `user-b`
//! writes fails here even though `plan` shows no drift.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use lambda::Marker;
use serde_json::Value;

use crate::aws::{describe, error_code, http_status, Clients};
use crate::resources::policy_doc::{normalize_policy, parse_policy};
use crate::resources::{self, ReadCtx};
use crate::session::VerifyOptions;
use crate::stack::resolved::{Bucket, Function, ResolvedStack, Trigger, TriggerEvent};

/// `tests/fixtures/verify/DSCN0010-orientation-6.jpg` (see the README there): EXIF with GPS,
/// Nikon maker notes and a thumbnail, XMP, and Orientation 6.
const PICTURE: &[u8] = include_bytes!("../../tests/fixtures/verify/DSCN0010-orientation-6.jpg");

/// A complete 1x1 greyscale PNG, uploaded under a `.jpg` name: the function must refuse it.
const NOT_A_JPEG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0x48, 0xaf, 0xa4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The user who uploads (read/write on A, nothing on B) and the one who serves the cleaned
/// pictures (read-only on B).
const UPLOADER: &str = "user-a";
const READER: &str = "user-b";

/// How long a brand-new access key may keep being refused as unknown (IAM is eventually
/// consistent: seconds on AWS, none on the emulator).
const NEW_KEY_GRACE: Duration = Duration::from_secs(60);

/// How often the wait for the stripped copy polls, and says that it is still waiting.
const POLL_EVERY: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Names of the pipeline checks (the others are named after the stack's buckets and users).
const CHECK_COPY: &str = "pipeline: stripped copy appears";
const CHECK_CLEAN: &str = "pipeline: no metadata left";
const CHECK_DATA: &str = "pipeline: image data identical";
const CHECK_ORIENTATION: &str = "pipeline: orientation kept";
const CHECK_REFUSED: &str = "pipeline: non-JPEG refused";
const CHECK_CLEANUP: &str = "clean-up of test objects";

pub(crate) async fn run(args: VerifyOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let timeout = args.timeout.map_or_else(
        || default_copy_timeout(stack.endpoint.is_some()),
        Duration::from_secs,
    );
    let deployed = Deployed::new(&stack, &clients, timeout)?;
    eprintln!(
        "verifying stack `{}` env `{}` (account {}, region {}); test objects under `{}`",
        stack.stack, stack.env, stack.account, stack.region, deployed.keys.run
    );
    let started = Instant::now();
    let checks = async {
        let (mut rows, permissions, pipeline) = tokio::join!(
            configuration(&deployed),
            permissions(&deployed),
            pipeline(&deployed)
        );
        rows.extend(permissions);
        rows.extend(pipeline);
        rows
    };
    let mut rows = tokio::select! {
        rows = checks => rows,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: removing the test objects");
            vec![Row::fail("interrupted", "Ctrl-C before every check had run")]
        }
    };
    rows.push(cleanup(&deployed).await);

    print!("{}", render(&rows, crate::style::stdout_color()));
    let failed = rows.iter().filter(|r| r.verdict != Verdict::Pass).count();
    println!(
        "{} checks: {} passed, {failed} failed or skipped ({:.1} s)",
        rows.len(),
        rows.len() - failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What is being verified, resolved once.
struct Deployed<'a> {
    stack: &'a ResolvedStack,
    clients: &'a Clients,
    ctx: ReadCtx,
    function: &'a Function,
    trigger: &'a Trigger,
    /// Bucket A, where pictures are uploaded.
    source: &'a Bucket,
    /// Bucket B, where their stripped copies land.
    destination: &'a Bucket,
    keys: Keys,
    /// Longest wait for the stripped copy.
    timeout: Duration,
}

impl<'a> Deployed<'a> {
    fn new(
        stack: &'a ResolvedStack,
        clients: &'a Clients,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (function, trigger) = stack
            .functions
            .values()
            .find_map(|f| {
                f.triggers
                    .iter()
                    .find(|t| t.events.contains(&TriggerEvent::Created))
                    .map(|t| (f, t))
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "stack `{}` has no function triggered by uploads (`events: [created]`): \
                     there is no pipeline to verify",
                    stack.stack
                )
            })?;
        let source = stack.buckets.get(&trigger.bucket).ok_or_else(|| {
            anyhow::anyhow!(
                "function `{}` is triggered by bucket `{}`, which the stack does not declare",
                function.logical,
                trigger.bucket
            )
        })?;
        let destination = function
            .environment
            .get("DESTINATION_BUCKET")
            .and_then(|name| stack.buckets.values().find(|b| &b.name == name))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "function `{}` has no DESTINATION_BUCKET naming one of the stack's buckets: \
                     verify cannot tell where stripped copies land",
                    function.logical
                )
            })?;
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let run = format!("stripstack-verify-{seconds}-{}", std::process::id());
        // The suffix filters are case-sensitive: use one the trigger really listens to.
        let suffix = trigger.suffixes.first().map_or(".jpg", String::as_str);
        Ok(Deployed {
            stack,
            clients,
            ctx: crate::session::read_ctx(stack),
            function,
            trigger,
            source,
            destination,
            keys: Keys::new(run, &trigger.prefix, suffix),
            timeout,
        })
    }
}

/// Every object key a run writes, all under two per-run prefixes (which the clean-up empties).
struct Keys {
    run: String,
    /// Under the trigger's prefix, with spaces (S3 events carry keys form-encoded: `+`).
    picture: String,
    not_a_jpeg: String,
    /// Outside the trigger's prefix, in both buckets: what the users read, written by the
    /// deployer.
    probe: String,
    /// What each user tries to write (in A for the uploader, in B for both).
    uploader_write: String,
    reader_write: String,
    prefixes: Vec<String>,
}

impl Keys {
    fn new(run: String, trigger_prefix: &str, suffix: &str) -> Keys {
        let uploads = format!("{trigger_prefix}{run}/");
        let probes = format!("{run}/");
        let mut prefixes = vec![uploads.clone(), probes.clone()];
        prefixes.dedup();
        Keys {
            picture: format!("{uploads}holiday photo{suffix}"),
            not_a_jpeg: format!("{uploads}not a picture{suffix}"),
            probe: format!("{probes}probe.txt"),
            uploader_write: format!("{probes}written by {UPLOADER}.txt"),
            reader_write: format!("{probes}written by {READER}.txt"),
            prefixes,
            run,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// Not run because what it checks could not be reached (counts as not passed).
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    check: String,
    verdict: Verdict,
    detail: String,
}

impl Row {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Pass, detail)
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Fail, detail)
    }

    fn skip(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Skip, detail)
    }

    fn new(check: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Row {
        Row {
            check: check.into(),
            verdict,
            detail: detail.into(),
        }
    }

    /// Pass when nothing is wrong, else fail listing what is.
    fn from_problems(check: impl Into<String>, problems: Vec<String>, ok: String) -> Row {
        if problems.is_empty() {
            Row::pass(check, ok)
        } else {
            Row::fail(check, problems.join("; "))
        }
    }
}

fn render(rows: &[Row], color: bool) -> String {
    let width = rows
        .iter()
        .map(|r| r.check.len())
        .chain(["check".len()])
        .max()
        .unwrap_or_default();
    let mut out = format!("{:<width$}  result  detail\n", "check");
    for row in rows {
        let (label, style) = match row.verdict {
            Verdict::Pass => ("PASS", AnsiColor::Green.on_default()),
            Verdict::Fail => ("FAIL", AnsiColor::Red.on_default().bold()),
            Verdict::Skip => ("SKIP", AnsiColor::Yellow.on_default()),
        };
        let style = if color { style } else { Style::new() };
        out.push_str(&format!(
            "{:<width$}  {style}{label}{style:#}    {}\n",
            row.check, row.detail
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Configuration

async fn configuration(deployed: &Deployed<'_>) -> Vec<Row> {
    let (source, destination, trigger, role_policy, role_probe) = tokio::join!(
        bucket_rows(deployed, deployed.source),
        bucket_rows(deployed, deployed.destination),
        trigger_row(deployed),
        role_policy_row(deployed),
        role_cannot_write_source(deployed),
    );
    let mut rows = source;
    rows.extend(destination);
    rows.extend([trigger, role_policy, role_probe]);
    rows
}

/// Private, encrypted, versioned, and named by an SSM parameter.
async fn bucket_rows(deployed: &Deployed<'_>, bucket: &Bucket) -> Vec<Row> {
    let check = |what: &str| format!("{} bucket: {what}", bucket.logical);
    let mut rows =
        match resources::bucket::read(deployed.clients, &deployed.ctx, &bucket.name).await {
            Ok(Some(observed)) => {
                let props = &observed.props;
                let pab = props.get("public_access_block");
                let off: Vec<&str> = [
                    "block_public_acls",
                    "ignore_public_acls",
                    "block_public_policy",
                    "restrict_public_buckets",
                ]
                .into_iter()
                .filter(|setting| pab.and_then(|p| p[*setting].as_bool()) != Some(true))
                .collect();
                let private = if off.is_empty() {
                    Row::pass(
                        check("private"),
                        format!("{}: Block Public Access, all four settings on", bucket.name),
                    )
                } else {
                    Row::fail(
                        check("private"),
                        format!(
                            "{}: Block Public Access off: {}",
                            bucket.name,
                            off.join(", ")
                        ),
                    )
                };
                let encrypted = match props.get("encryption").and_then(Value::as_str) {
                    Some(algorithm) => Row::pass(
                        check("encrypted"),
                        format!("default encryption {algorithm}"),
                    ),
                    None => Row::fail(check("encrypted"), "no default encryption"),
                };
                let versioned = if props.get("versioning").and_then(Value::as_bool) == Some(true) {
                    Row::pass(check("versioned"), "versioning enabled")
                } else {
                    Row::fail(check("versioned"), "versioning is not enabled")
                };
                vec![private, encrypted, versioned]
            }
            Ok(None) => vec![Row::fail(
                check("exists"),
                format!(
                    "{} does not exist: deploy first (`cargo xtask deploy --env {}`)",
                    bucket.name, deployed.stack.env
                ),
            )],
            Err(err) => vec![Row::fail(check("readable"), format!("{err:#}"))],
        };
    rows.push(bucket_parameter_row(deployed, bucket).await);
    rows
}

/// Other tools find the buckets through SSM: some parameter of the stack must hold the name.
async fn bucket_parameter_row(deployed: &Deployed<'_>, bucket: &Bucket) -> Row {
    let check = format!("{} bucket: SSM parameter", bucket.logical);
    let declared: Vec<_> = deployed
        .stack
        .parameters
        .values()
        .filter(|p| p.value == bucket.name)
        .collect();
    if declared.is_empty() {
        return Row::fail(
            check,
            "no SSM parameter of the stack holds the bucket's name",
        );
    }
    let mut problems = Vec::new();
    for parameter in &declared {
        match ssm_value(deployed.clients, &parameter.name, parameter.secure).await {
            Ok(value) if value == bucket.name => {}
            // Bucket names are no secret: say what is there instead.
            Ok(value) => problems.push(format!("`{}` holds `{value}`", parameter.name)),
            Err(err) => problems.push(err),
        }
    }
    let names: Vec<String> = declared.iter().map(|p| format!("`{}`", p.name)).collect();
    Row::from_problems(
        check,
        problems,
        format!("{} = {}", names.join(", "), bucket.name),
    )
}

/// The bucket notification invokes the function for what the stack declares.
async fn trigger_row(deployed: &Deployed<'_>) -> Row {
    let check = format!("{} bucket: trigger", deployed.source.logical);
    // Compared without ids: the CloudFormation engine cannot choose them.
    let without_id = |entries: &[serde_json::Value]| -> Vec<serde_json::Value> {
        let mut entries: Vec<serde_json::Value> = entries
            .iter()
            .cloned()
            .map(|mut e| {
                if let Some(entry) = e.as_object_mut() {
                    entry.remove("id");
                }
                e
            })
            .collect();
        entries.sort_by_key(|e| e.to_string());
        entries
    };
    let want: Vec<serde_json::Value> = resources::notification::desired(deployed.stack)
        .into_iter()
        .find(|d| d.physical == deployed.source.name)
        .and_then(|d| d.props.get("entries").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default();
    let want = without_id(&want);
    let read =
        resources::notification::function_entries(deployed.clients, &deployed.source.name, false)
            .await;
    let read = read.map(|found| {
        found
            .filter(|entries| !entries.is_empty())
            .map(|entries| without_id(&entries))
    });
    match read {
        Ok(Some(have)) if want.iter().all(|w| have.contains(w)) => {
            let suffixes = if deployed.trigger.suffixes.is_empty() {
                String::new()
            } else {
                format!(" ending {}", deployed.trigger.suffixes.join(" "))
            };
            Row::pass(
                check,
                format!(
                    "`{}`…{suffixes} → {}",
                    deployed.trigger.prefix, deployed.function.name
                ),
            )
        }
        Ok(Some(_)) => Row::fail(
            check,
            "the notification configuration differs from the stack (`cargo xtask plan` shows how)",
        ),
        Ok(None) => Row::fail(
            check,
            format!(
                "no notification of {} invokes a function",
                deployed.source.name
            ),
        ),
        Err(err) => Row::fail(check, format!("{err:#}")),
    }
}

/// The role holds exactly the declared inline policy: no other inline or managed policy.
async fn role_policy_row(deployed: &Deployed<'_>) -> Row {
    let check = format!("{} role: declared policy only", deployed.function.logical);
    let iam = &deployed.clients.iam;
    let role = deployed.function.role_name.as_str();
    let (inline, attached, document) = tokio::join!(
        iam.list_role_policies().role_name(role).send(),
        iam.list_attached_role_policies().role_name(role).send(),
        iam.get_role_policy()
            .role_name(role)
            .policy_name(resources::role::INLINE_POLICY_NAME)
            .send(),
    );
    let mut problems = Vec::new();
    match inline {
        Ok(out) => {
            let others: Vec<&str> = out
                .policy_names()
                .iter()
                .map(String::as_str)
                .filter(|name| *name != resources::role::INLINE_POLICY_NAME)
                .collect();
            if !others.is_empty() {
                problems.push(format!("other inline policies: {}", others.join(", ")));
            }
        }
        Err(err) => problems.push(format!("ListRolePolicies: {}", describe(&err))),
    }
    match attached {
        Ok(out) => {
            let arns: Vec<&str> = out
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .collect();
            if !arns.is_empty() {
                problems.push(format!("managed policies attached: {}", arns.join(", ")));
            }
        }
        Err(err) => problems.push(format!("ListAttachedRolePolicies: {}", describe(&err))),
    }
    let declared = normalize_policy(&resources::statements_document(&deployed.function.allow));
    match document {
        Ok(out) => match parse_policy(out.policy_document()) {
            Ok(doc) if normalize_policy(&doc) == declared => {}
            Ok(_) => problems.push(format!(
                "inline policy `{}` differs from the stack's statements",
                resources::role::INLINE_POLICY_NAME
            )),
            Err(err) => problems.push(format!("unreadable inline policy: {err}")),
        },
        Err(err) => problems.push(format!(
            "GetRolePolicy `{}`: {}",
            resources::role::INLINE_POLICY_NAME,
            describe(&err)
        )),
    }
    Row::from_problems(
        check,
        problems,
        format!(
            "{}: inline policy `{}` = the {} declared statements, nothing else",
            role,
            resources::role::INLINE_POLICY_NAME,
            deployed.function.allow.len()
        ),
    )
}

/// Writes into A that the role must not be able to make.
const FORBIDDEN_IN_SOURCE: [&str; 2] = ["s3:PutObject", "s3:DeleteObject"];

/// The role cannot write into the bucket it reads from (a loop, or tampering with uploads).
/// Asked of IAM's policy simulator, which sees every policy of the role; a read the stack
/// grants serves as control that the simulator evaluates rather than denies everything. When
/// the simulator does not answer (or fails the control), the role's inline policy is
/// evaluated here (the row above checks that it is the only one).
async fn role_cannot_write_source(deployed: &Deployed<'_>) -> Row {
    let check = format!(
        "{} role: cannot write {} bucket",
        deployed.function.logical, deployed.source.logical
    );
    let object = format!("{}/x", deployed.source.arn);
    let control = "s3:GetObject";
    let control_expected = policy_allows(
        &resources::statements_document(&deployed.function.allow),
        control,
        &object,
    );
    let verdict = |allowed: Vec<&str>, how: String| {
        if allowed.is_empty() {
            Row::pass(
                check.clone(),
                format!(
                    "{} on {object}: denied ({how})",
                    FORBIDDEN_IN_SOURCE.join(", ")
                ),
            )
        } else {
            Row::fail(
                check.clone(),
                format!("allowed on {object}: {} ({how})", allowed.join(", ")),
            )
        }
    };

    let why_not_simulated = match simulate(deployed, &object, control).await {
        Ok(decisions) if decisions.get(control) == Some(&control_expected) => {
            let allowed = FORBIDDEN_IN_SOURCE
                .into_iter()
                .filter(|action| decisions.get(*action) != Some(&false))
                .collect();
            return verdict(
                allowed,
                format!(
                    "IAM SimulatePrincipalPolicy; control {control}: {}",
                    if control_expected {
                        "allowed"
                    } else {
                        "denied"
                    }
                ),
            );
        }
        Ok(_) => format!("it answered {control} unlike the declared statements"),
        Err(err) => err,
    };
    let document = deployed
        .clients
        .iam
        .get_role_policy()
        .role_name(&deployed.function.role_name)
        .policy_name(resources::role::INLINE_POLICY_NAME)
        .send()
        .await;
    match document {
        Ok(out) => match parse_policy(out.policy_document()) {
            Ok(doc) => {
                let allowed = FORBIDDEN_IN_SOURCE
                    .into_iter()
                    .filter(|action| policy_allows(&doc, action, &object))
                    .collect();
                verdict(
                    allowed,
                    format!(
                        "evaluated from inline policy `{}`; SimulatePrincipalPolicy: {why_not_simulated}",
                        resources::role::INLINE_POLICY_NAME
                    ),
                )
            }
            Err(err) => Row::fail(check, format!("unreadable inline policy: {err}")),
        },
        Err(err) => Row::fail(
            check,
            format!(
                "GetRolePolicy: {}; SimulatePrincipalPolicy: {why_not_simulated}",
                describe(&err)
            ),
        ),
    }
}

/// IAM's decision (allowed or not) for the forbidden actions and `control` on `resource`.
async fn simulate(
    deployed: &Deployed<'_>,
    resource: &str,
    control: &str,
) -> Result<BTreeMap<String, bool>, String> {
    let mut request = deployed
        .clients
        .iam
        .simulate_principal_policy()
        .policy_source_arn(&deployed.function.role_arn)
        .resource_arns(resource)
        .action_names(control);
    for action in FORBIDDEN_IN_SOURCE {
        request = request.action_names(action);
    }
    let out = request.send().await.map_err(|e| describe(&e))?;
    let decisions: BTreeMap<String, bool> = out
        .evaluation_results()
        .iter()
        .map(|r| {
            (
                r.eval_action_name().to_owned(),
                *r.eval_decision() == aws_sdk_iam::types::PolicyEvaluationDecisionType::Allowed,
            )
        })
        .collect();
    match FORBIDDEN_IN_SOURCE
        .into_iter()
        .chain([control])
        .find(|a| !decisions.contains_key(*a))
    {
        Some(missing) => Err(format!("no decision for {missing}")),
        None => Ok(decisions),
    }
}

/// Whether an identity policy allows `action` on `resource`, judged from its statements alone:
/// an explicit Deny wins, then any Allow, else the implicit deny. Conditions need a request
/// to be evaluated: an Allow with one counts as allowing and a Deny with one as not denying,
/// so that the answer errs towards "allowed", the answer that fails a "cannot" check.
fn policy_allows(policy: &Value, action: &str, resource: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Permissions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    /// Refused by the service with `AccessDenied`.
    Denied,
}

async fn permissions(deployed: &Deployed<'_>) -> Vec<Row> {
    // Something for the users to read, written with the deployer's credentials so that reads
    // are tested whatever the users may write.
    let s3 = &deployed.clients.s3;
    let (source_probe, destination_probe) = tokio::join!(
        put(s3, &deployed.source.name, &deployed.keys.probe, b"probe"),
        put(
            s3,
            &deployed.destination.name,
            &deployed.keys.probe,
            b"probe"
        ),
    );
    if let Err(err) = source_probe.and(destination_probe) {
        return vec![Row::fail(
            "permissions: test objects",
            format!("could not write the objects the users read: {err}"),
        )];
    }
    let (uploader, reader) = tokio::join!(
        user_clients(deployed, UPLOADER),
        user_clients(deployed, READER)
    );
    let mut rows = Vec::new();
    match uploader {
        Ok(clients) => rows.extend(uploader_rows(deployed, &clients.s3).await),
        Err(err) => rows.push(Row::fail(format!("{UPLOADER}: access key"), err)),
    }
    match reader {
        Ok(clients) => rows.extend(reader_rows(deployed, &clients.s3).await),
        Err(err) => rows.push(Row::fail(format!("{READER}: access key"), err)),
    }
    rows
}

/// `user-a`: list, read and write A; no write into B.
async fn uploader_rows(deployed: &Deployed<'_>, s3: &aws_sdk_s3::Client) -> Vec<Row> {
    let (a, b) = (deployed.source, deployed.destination);
    let keys = &deployed.keys;
    let list = as_new_key(|| {
        s3.list_objects_v2()
            .bucket(&a.name)
            .prefix(&keys.run)
            .max_keys(1)
            .send()
    })
    .await;
    let read = as_new_key(|| s3.get_object().bucket(&a.name).key(&keys.probe).send()).await;
    let write = as_new_key(|| {
        s3.put_object()
            .bucket(&a.name)
            .key(&keys.uploader_write)
            .body(ByteStream::from_static(b"written by the uploader"))
            .send()
    })
    .await;
    let write_b = as_new_key(|| {
        s3.put_object()
            .bucket(&b.name)
            .key(&keys.uploader_write)
            .body(ByteStream::from_static(b"written by the uploader"))
            .send()
    })
    .await;
    vec![
        judge(
            format!("{UPLOADER}: list {}", a.logical),
            Expect::Allowed,
            list,
        ),
        judge(
            format!("{UPLOADER}: read {}", a.logical),
            Expect::Allowed,
            read,
        ),
        judge(
            format!("{UPLOADER}: write {}", a.logical),
            Expect::Allowed,
            write,
        ),
        judge(
            format!("{UPLOADER}: cannot write {}", b.logical),
            Expect::Denied,
            write_b,
        ),
    ]
}

/// `user-b`: list and read B; no write into B, no read of A.
async fn reader_rows(deployed: &Deployed<'_>, s3: &aws_sdk_s3::Client) -> Vec<Row> {
    let (a, b) = (deployed.source, deployed.destination);
    let keys = &deployed.keys;
    let list = as_new_key(|| {
        s3.list_objects_v2()
            .bucket(&b.name)
            .prefix(&keys.run)
            .max_keys(1)
            .send()
    })
    .await;
    let read = as_new_key(|| s3.get_object().bucket(&b.name).key(&keys.probe).send()).await;
    let write = as_new_key(|| {
        s3.put_object()
            .bucket(&b.name)
            .key(&keys.reader_write)
            .body(ByteStream::from_static(b"written by the reader"))
            .send()
    })
    .await;
    let read_a = as_new_key(|| s3.get_object().bucket(&a.name).key(&keys.probe).send()).await;
    vec![
        judge(
            format!("{READER}: list {}", b.logical),
            Expect::Allowed,
            list,
        ),
        judge(
            format!("{READER}: read {}", b.logical),
            Expect::Allowed,
            read,
        ),
        judge(
            format!("{READER}: cannot write {}", b.logical),
            Expect::Denied,
            write,
        ),
        judge(
            format!("{READER}: cannot read {}", a.logical),
            Expect::Denied,
            read_a,
        ),
    ]
}

/// Clients acting with the user's own access key, read from its SSM parameters.
async fn user_clients(deployed: &Deployed<'_>, logical: &str) -> Result<Clients, String> {
    let user = deployed
        .stack
        .users
        .get(logical)
        .filter(|u| u.access_key)
        .ok_or_else(|| format!("the stack declares no user `{logical}` with `access_key: true`"))?;
    let id_parameter = resources::user::key_id_parameter(&deployed.ctx, &user.logical);
    let secret_parameter = resources::user::secret_parameter(&deployed.ctx, &user.logical);
    let (id, secret) = tokio::join!(
        ssm_value(deployed.clients, &id_parameter, false),
        ssm_value(deployed.clients, &secret_parameter, true),
    );
    Ok(deployed.clients.with_access_key(&id?, &secret?))
}

/// Runs `call` again while the service does not know the (new) access key yet: IAM keys take
/// seconds to reach S3 on AWS. Every other answer, denials included, is returned at once.
async fn as_new_key<T, E, F, Fut>(mut call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    let deadline = Instant::now() + NEW_KEY_GRACE;
    loop {
        match call().await {
            Err(err)
                if matches!(
                    error_code(&err),
                    Some("InvalidAccessKeyId" | "SignatureDoesNotMatch")
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

fn judge<T, E>(check: String, expect: Expect, result: Result<T, SdkError<E, HttpResponse>>) -> Row
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (expect, result) {
        (Expect::Allowed, Ok(_)) => Row::pass(check, "allowed"),
        (Expect::Allowed, Err(err)) => Row::fail(check, format!("refused: {}", describe(&err))),
        (Expect::Denied, Ok(_)) => Row::fail(check, "allowed, but must be refused"),
        (Expect::Denied, Err(err)) if error_code(&err) == Some("AccessDenied") => Row::pass(
            check,
            format!(
                "AccessDenied (HTTP {})",
                http_status(&err).map_or("?".to_owned(), |s| s.to_string())
            ),
        ),
        (Expect::Denied, Err(err)) => Row::fail(
            check,
            format!("expected AccessDenied, got {}", describe(&err)),
        ),
    }
}

async fn ssm_value(clients: &Clients, name: &str, decrypt: bool) -> Result<String, String> {
    let out = clients
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(decrypt)
        .send()
        .await
        .map_err(|err| format!("SSM parameter `{name}`: {}", describe(&err)))?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| format!("SSM parameter `{name}` has no value"))
}

async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &'static [u8],
) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|err| format!("PutObject {bucket}/{key}: {}", describe(&err)))
}

// ---------------------------------------------------------------------------------------------
// Pipeline

async fn pipeline(deployed: &Deployed<'_>) -> Vec<Row> {
    let s3 = &deployed.clients.s3;
    let (source, destination) = (&deployed.source.name, &deployed.destination.name);
    // The non-JPEG goes first: once the picture uploaded after it has its copy, the function
    // has had its turn at the non-JPEG too, with no fixed sleep to guess.
    let uploaded = async {
        put(s3, source, &deployed.keys.not_a_jpeg, NOT_A_JPEG).await?;
        put(s3, source, &deployed.keys.picture, PICTURE).await
    };
    let unchecked = |why: &str| {
        vec![
            Row::skip(CHECK_CLEAN, why),
            Row::skip(CHECK_DATA, why),
            Row::skip(CHECK_ORIENTATION, why),
        ]
    };
    // Without a copy nothing else can be judged; the table keeps its rows all the same.
    let no_copy = |why: String| {
        let mut rows = vec![Row::fail(CHECK_COPY, why)];
        rows.extend(unchecked("no copy to check"));
        rows.push(Row::skip(
            CHECK_REFUSED,
            "no later upload's copy appeared to wait for",
        ));
        rows
    };
    if let Err(err) = uploaded.await {
        return no_copy(format!("upload failed: {err}"));
    }
    let elapsed = match wait_for_copy(deployed).await {
        Ok(elapsed) => elapsed,
        Err(err) => return no_copy(err),
    };
    let mut rows = vec![Row::pass(
        CHECK_COPY,
        format!(
            "`{}` in {destination} after {:.1} s",
            deployed.keys.picture,
            elapsed.as_secs_f64()
        ),
    )];
    let copy = match s3
        .get_object()
        .bucket(destination)
        .key(&deployed.keys.picture)
        .send()
        .await
    {
        Ok(out) => out
            .body
            .collect()
            .await
            .map(|data| data.into_bytes().to_vec())
            .map_err(|err| format!("download failed: {err}")),
        Err(err) => Err(format!("download failed: {}", describe(&err))),
    };
    match copy {
        Ok(copy) => rows.extend(judge_copy(PICTURE, &copy)),
        Err(err) => rows.extend(unchecked(&err)),
    }
    rows.push(
        match s3
            .head_object()
            .bucket(destination)
            .key(&deployed.keys.not_a_jpeg)
            .send()
            .await
        {
            Ok(_) => Row::fail(
                CHECK_REFUSED,
                format!(
                    "`{}` has a copy in {destination}: a non-JPEG went through",
                    deployed.keys.not_a_jpeg
                ),
            ),
            Err(err) if http_status(&err) == Some(404) => Row::pass(
                CHECK_REFUSED,
                format!(
                    "no copy of `{}` (a PNG) once the later upload's copy was there",
                    deployed.keys.not_a_jpeg
                ),
            ),
            Err(err) => Row::fail(CHECK_REFUSED, describe(&err)),
        },
    );
    rows
}

/// How long to wait for the picture's copy when `--timeout` is not given. The emulator applies
/// a notification configuration at once; AWS can take minutes ("usually about five minutes",
/// S3 user guide, "Amazon S3 Event Notifications"), so a first `verify` right after a first
/// deploy must not give up after one.
fn default_copy_timeout(emulator: bool) -> Duration {
    if emulator {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(300)
    }
}

/// Polls bucket B for the picture's copy, saying every few seconds that it is still waiting.
async fn wait_for_copy(deployed: &Deployed<'_>) -> Result<Duration, String> {
    let (destination, key) = (&deployed.destination.name, &deployed.keys.picture);
    eprintln!(
        "uploaded `{key}` to {}; waiting up to {} s for its copy in {destination}",
        deployed.source.name,
        deployed.timeout.as_secs()
    );
    let started = Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    let mut last_error = None;
    loop {
        match deployed
            .clients
            .s3
            .head_object()
            .bucket(destination)
            .key(key)
            .send()
            .await
        {
            Ok(_) => return Ok(started.elapsed()),
            Err(err) if http_status(&err) == Some(404) => {}
            // Possibly transient: keep polling, and report it if the copy never comes.
            Err(err) => last_error = Some(describe(&err)),
        }
        let waited = started.elapsed();
        if waited >= deployed.timeout {
            return Err(format!(
                "no copy in {destination} after {} s{}: is the trigger in place? the \
                 function's log says why it did not write one",
                deployed.timeout.as_secs(),
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ));
        }
        if waited >= next_progress {
            eprintln!(
                "  still waiting for the copy: {} s of {} s",
                waited.as_secs(),
                deployed.timeout.as_secs()
            );
            next_progress += PROGRESS_EVERY;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Judges the function's output for `original` with the stripper itself: the copy must be a
/// valid JPEG that the stripper leaves as it is (nothing left to remove but the minimal
/// Orientation EXIF it writes back identically), with the original's compressed picture and
/// orientation.
fn judge_copy(original: &[u8], copy: &[u8]) -> Vec<Row> {
    let options = lambda::StripOptions::default();
    let before = match lambda::strip_with(original, &options) {
        Ok((_, summary)) => summary,
        Err(err) => {
            let why = format!("the test picture itself does not strip: {err}");
            return vec![
                Row::fail(CHECK_CLEAN, &why),
                Row::fail(CHECK_DATA, &why),
                Row::fail(CHECK_ORIENTATION, why),
            ];
        }
    };
    let (again, after) = match lambda::strip_with(copy, &options) {
        Ok(result) => result,
        Err(err) => {
            let why = format!("the copy is not a valid JPEG: {err}");
            return vec![
                Row::fail(CHECK_CLEAN, &why),
                Row::skip(CHECK_DATA, "the copy is not a valid JPEG"),
                Row::skip(CHECK_ORIENTATION, "the copy is not a valid JPEG"),
            ];
        }
    };

    // What re-stripping removes beyond the minimal Orientation EXIF it writes back (as many
    // bytes as it removes, when the copy holds exactly that).
    let mut left: Vec<String> = after
        .removed
        .iter()
        .filter(|r| !(r.kind == lambda::SegmentKind::Exif && r.bytes == after.bytes_added))
        .map(|r| format!("{} x{} ({} B)", r.kind, r.count, r.bytes))
        .collect();
    if after.trailer_bytes > 0 {
        left.push(format!("{} B after EOI", after.trailer_bytes));
    }
    if left.is_empty() && again != copy {
        left.push("re-stripping the copy changes it".to_owned());
    }
    let removed: Vec<String> = before
        .removed
        .iter()
        .map(|r| format!("{} {} B", r.kind, r.bytes))
        .collect();
    let clean = if left.is_empty() {
        Row::pass(
            CHECK_CLEAN,
            format!(
                "only a {} B EXIF holding Orientation; the original's {} are gone",
                after.bytes_added,
                removed.join(", ")
            ),
        )
    } else {
        Row::fail(CHECK_CLEAN, format!("still there: {}", left.join(", ")))
    };

    let data = match (
        scan_data(original, before.trailer_bytes),
        scan_data(copy, after.trailer_bytes),
    ) {
        (Some(a), Some(b)) if a == b => Row::pass(
            CHECK_DATA,
            format!("{} bytes from SOS to EOI, byte for byte", a.len()),
        ),
        (Some(a), Some(b)) => Row::fail(
            CHECK_DATA,
            format!(
                "SOS..EOI differs: {} bytes in the original, {} in the copy",
                a.len(),
                b.len()
            ),
        ),
        _ => Row::fail(CHECK_DATA, "no SOS marker found"),
    };

    let orientation = match (before.orientation, after.orientation) {
        (Some(want), Some(have)) if want == have => Row::pass(
            CHECK_ORIENTATION,
            format!("Orientation {have}, as the original"),
        ),
        (want, have) => Row::fail(
            CHECK_ORIENTATION,
            format!(
                "Orientation {} in the copy, {} in the original",
                have.map_or("absent".to_owned(), |o| o.to_string()),
                want.map_or("absent".to_owned(), |o| o.to_string()),
            ),
        ),
    };
    vec![clean, data, orientation]
}

/// The compressed picture: from the first SOS marker to the end of the first EOI, which is
/// `trailer` bytes before the end of the file (found by the `lambda` crate's segment
/// walker); `None` when the segments before it are malformed.
fn scan_data(jpeg: &[u8], trailer: u64) -> Option<&[u8]> {
    let end = jpeg.len().checked_sub(usize::try_from(trailer).ok()?)?;
    let sos = lambda::segments(jpeg)
        .map_while(Result::ok)
        .find(|segment| segment.marker == Marker::SOS)?;
    jpeg.get(sos.offset..end)
}

// ---------------------------------------------------------------------------------------------
// Clean-up

/// Deletes every version (and delete marker) under the run's prefixes in both buckets: the
/// buckets are versioned, so a plain delete would leave the pictures behind.
async fn cleanup(deployed: &Deployed<'_>) -> Row {
    let mut removed = 0;
    let mut errors = Vec::new();
    for bucket in [deployed.source, deployed.destination] {
        for prefix in &deployed.keys.prefixes {
            match resources::bucket::delete_versions(deployed.clients, &bucket.name, prefix).await {
                Ok(count) => removed += count,
                Err(err) => errors.push(format!("{err:#}")),
            }
        }
    }
    Row::from_problems(
        CHECK_CLEANUP,
        errors,
        format!(
            "{removed} object versions under `{}` deleted from both buckets",
            deployed.keys.run
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_copy_is_awaited_longer_on_aws_than_on_the_emulator() {
        assert_eq!(default_copy_timeout(true), Duration::from_secs(60));
        assert_eq!(default_copy_timeout(false), Duration::from_secs(300));
    }

    #[test]
    fn the_fixture_has_what_verify_needs_to_see_removed_and_kept() {
        let (_, summary) =
            lambda::strip_with(PICTURE, &lambda::StripOptions::default()).expect("strips");
        assert_eq!(summary.orientation, Some(6));
        assert_eq!(summary.removed_count(lambda::SegmentKind::Exif), 1);
        assert_eq!(summary.removed_count(lambda::SegmentKind::Xmp), 1);
    }

    #[test]
    fn a_properly_stripped_copy_passes_every_check() {
        let copy = lambda::strip(PICTURE).expect("strips");
        let rows = judge_copy(PICTURE, &copy);
        assert!(rows.iter().all(|r| r.verdict == Verdict::Pass), "{rows:#?}");
    }

    #[test]
    fn an_unstripped_copy_fails_the_metadata_check_only() {
        let rows = judge_copy(PICTURE, PICTURE);
        assert_eq!(rows[0].check, CHECK_CLEAN);
        assert_eq!(rows[0].verdict, Verdict::Fail, "{rows:#?}");
        assert!(rows[0].detail.contains("xmp"), "{}", rows[0].detail);
        assert!(
            rows[1..].iter().all(|r| r.verdict == Verdict::Pass),
            "{rows:#?}"
        );
    }

    #[test]
    fn a_copy_without_orientation_or_with_other_pixels_fails() {
        let (plain, _) = lambda::strip_with(
            PICTURE,
            &lambda::StripOptions {
                keep_orientation: false,
                keep_icc: true,
            },
        )
        .expect("strips");
        let rows = judge_copy(PICTURE, &plain);
        assert_eq!(rows[2].verdict, Verdict::Fail, "{rows:#?}");

        let mut changed = lambda::strip(PICTURE).expect("strips");
        let at = changed.len() - 100;
        changed[at] ^= 0x01;
        let rows = judge_copy(PICTURE, &changed);
        assert_eq!(rows[1].verdict, Verdict::Fail, "{rows:#?}");
    }

    #[test]
    fn a_trailer_is_metadata_left() {
        let mut copy = lambda::strip(PICTURE).expect("strips");
        copy.extend_from_slice(b"trailing video");
        let rows = judge_copy(PICTURE, &copy);
        assert_eq!(rows[0].verdict, Verdict::Fail);
        assert!(rows[0].detail.contains("after EOI"), "{}", rows[0].detail);
        assert_eq!(rows[1].verdict, Verdict::Pass, "{rows:#?}");
    }

    #[test]
    fn scan_data_starts_at_sos_and_stops_before_the_trailer() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xFF, 0xDA, 0x00, 0x02, 0x11,
            0xFF, 0xD9, 0x99,
        ];
        assert_eq!(
            scan_data(&jpeg, 1),
            Some(&[0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD9][..])
        );
        assert_eq!(scan_data(&jpeg[..6], 0), None);
        assert_eq!(scan_data(b"\x89PNG", 0), None);
    }

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

    #[test]
    fn the_table_lines_up_and_colours_only_on_a_terminal() {
        let rows = vec![
            Row::pass("short", "fine"),
            Row::fail("a longer check", "broken"),
        ];
        let text = render(&rows, false);
        assert_eq!(
            text,
            "check           result  detail\n\
             short           PASS    fine\n\
             a longer check  FAIL    broken\n"
        );
        assert!(render(&rows, true).contains("\u{1b}["));
    }
}
