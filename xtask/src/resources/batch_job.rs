//! S3 Batch Operations, for `reconcile` above its threshold: a job that invokes the stack's
//! function on every object of a manifest, with S3's own retries, progress and completion
//! report. Not a declared kind: the job runs once, and its role is made when a job needs it
//! and removed by `destroy` (named after the stack and env, tagged like every IAM resource
//! of the stack, so [`remove_role`] only ever deletes this stack's).
//!
//! Shapes from the S3 Control API reference (`CreateJob`, `DescribeJob`) and the user
//! guide's "Invoke AWS Lambda function" and "Granting permissions for Batch Operations".

use std::collections::BTreeMap;

use aws_sdk_s3control::types::{
    JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation, JobManifestSpec,
    JobOperation, JobReport, JobReportFormat, JobReportScope, LambdaInvokeOperation,
};
use serde_json::{json, Value};

use super::grant::Grant;
use super::role::{self, RoleProps};
use super::{policy_doc, props::TypedProps, Address, Desired, Kind, ReadCtx};
use crate::aws::{until_propagated_by, AwsError, Clients, SdkResultExt};

/// The service that assumes the job's role.
const PRINCIPAL: &str = "batchoperations.s3.amazonaws.com";

/// The role of this stack's jobs: `<stack>-<env>-s3-batch` (IAM allows 64 characters).
pub(crate) fn role_name(stack: &str, env: &str) -> String {
    let mut name = format!("{stack}-{env}-s3-batch");
    name.truncate(64);
    name
}

/// The job's role: invoke the function, read the manifest, write the report — under the
/// job's own prefix of the state bucket, nothing else.
pub(crate) fn role_props(
    function_arn: &str,
    state_bucket: &str,
    prefix: &str,
    tags: &BTreeMap<String, String>,
) -> RoleProps {
    let partition = function_arn.split(':').nth(1).unwrap_or("aws");
    let objects = format!("arn:{partition}:s3:::{state_bucket}/{prefix}*");
    RoleProps {
        trust_policy: policy_doc::normalize_policy(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": PRINCIPAL },
                "Action": "sts:AssumeRole"
            }]
        })),
        policy: policy_doc::normalize_policy(&json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [function_arn] },
                { "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": [&objects] },
                { "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [&objects] }
            ]
        })),
        tags: tags.clone(),
    }
}

/// Makes (or converges) the job role; its ARN, and whether this run created it (then IAM
/// may not show it to S3 for a while: see [`create_job`]).
pub(crate) async fn ensure_role(
    clients: &Clients,
    ctx: &ReadCtx,
    name: &str,
    props: RoleProps,
) -> anyhow::Result<(String, bool)> {
    let fresh = role::read(clients, ctx, name).await?.is_none();
    let want = Desired {
        address: Address::new(Kind::Role, "s3-batch"),
        physical: name.to_owned(),
        props: props.into_props(),
        depends_on: Vec::new(),
        retain: false,
    };
    // Creates it, or converges the one there when its tags say it is this stack's.
    role::create(clients, ctx, &want).await?;
    Ok((role_arn(ctx, name), fresh))
}

fn role_arn(ctx: &ReadCtx, name: &str) -> String {
    let partition = crate::stack::partition(&ctx.region);
    format!("arn:{partition}:iam::{}:role/{name}", ctx.account)
}

/// What `reconcile`'s job path and `destroy` (which removes the job role) need of the
/// deployer: the role's own IAM actions (those of the function roles: the statements merge),
/// passing it to Batch Operations only, creating and following jobs, writing manifests.
/// `state_bucket` is the deployer's (`engine::state`, which this layer does not see).
pub(crate) fn deployer_grants(
    stack: &crate::stack::resolved::ResolvedStack,
    state_bucket: &str,
) -> Vec<Grant> {
    let ctx = ReadCtx {
        stack: stack.stack.clone(),
        env: stack.env.clone(),
        account: stack.account.clone(),
        region: stack.region.clone(),
    };
    let role = role_arn(&ctx, &role_name(&stack.stack, &stack.env));
    let partition = crate::stack::partition(&stack.region);
    let state = format!("arn:{partition}:s3:::{state_bucket}");
    vec![
        Grant::new("ReconcileBatchRole", role::ROLE_ACTIONS, vec![role.clone()]),
        Grant::new("PassReconcileBatchRole", &["iam:PassRole"], vec![role])
            .when(json!({ "StringEquals": { "iam:PassedToService": PRINCIPAL } })),
        // CreateJob has no resource to scope it by (the Service Authorization Reference).
        Grant::new(
            "CreateReconcileJobs",
            &["s3:CreateJob"],
            vec!["*".to_owned()],
        ),
        Grant::new(
            "FollowReconcileJobs",
            &["s3:DescribeJob"],
            vec![format!(
                "arn:{partition}:s3:{}:{}:job/*",
                stack.region, stack.account
            )],
        ),
        Grant::new(
            "ReconcileManifests",
            &["s3:PutObject"],
            vec![format!("{state}/reconcile/{}/{}/*", stack.stack, stack.env)],
        ),
    ]
}

/// Removes the job role when it exists and is this stack's (`destroy`); whether it did.
pub(crate) async fn remove_role(clients: &Clients, ctx: &ReadCtx) -> anyhow::Result<bool> {
    let name = role_name(&ctx.stack, &ctx.env);
    let Some(have) = role::read(clients, ctx, &name).await? else {
        return Ok(false);
    };
    super::tags::check_ours(
        "IAM role",
        &name,
        &super::tags::of(&have.props),
        &ctx.stack,
        &ctx.env,
        Some(&ctx.region),
    )?;
    role::delete(clients, &name).await?;
    Ok(true)
}

/// One manifest line: bucket and key, the key URL-encoded as Batch Operations requires
/// (every byte but unreserved characters and `/` escaped, so a `+` or `,` in a key survives
/// the CSV and the function's form decoding alike).
pub(crate) fn manifest_line(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    format!(
        "{bucket},{}\n",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
}

/// What a job is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct JobRequest {
    pub account: String,
    pub function_arn: String,
    pub role_arn: String,
    /// The manifest object, and the ETag S3 gave it (the job refuses a changed manifest).
    pub manifest_arn: String,
    pub manifest_etag: String,
    /// Where the completion report goes: the state bucket's ARN and a prefix.
    pub report_bucket_arn: String,
    pub report_prefix: String,
    pub description: String,
    /// Makes a repeated CreateJob (a retry after a lost answer) the same job.
    pub token: String,
}

/// A job that failed while S3 prepared it (reading the manifest, assuming the role).
#[derive(Debug, thiserror::Error)]
#[error("S3 Batch Operations job `{id}` failed before running a task: {reasons}")]
pub(crate) struct FailedEarly {
    id: String,
    reasons: String,
}

impl FailedEarly {
    /// Whether S3 was refused something: with a role this run just made, IAM not showing its
    /// policy to S3 yet (the user guide's "Reading the manifest is forbidden: AccessDenied").
    fn denied(&self) -> bool {
        let reasons = self.reasons.to_ascii_lowercase();
        [
            "forbidden",
            "accessdenied",
            "access denied",
            "not authorized",
            "assume",
        ]
        .iter()
        .any(|word| reasons.contains(word))
    }
}

/// Creates the job (running at once: no confirmation); its id. With a role this run just
/// made (`fresh_role`), IAM may not show it to S3 yet, in two ways, both waited out with
/// backoff for IAM's propagation time: CreateJob refuses the role, or the job is created
/// and then fails reading the manifest (then it is created again, with a new token). With
/// an older role, or any other failure, it returns at once.
pub(crate) async fn create_job(
    clients: &Clients,
    request: &JobRequest,
    fresh_role: bool,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<String> {
    let attempt = std::sync::atomic::AtomicU32::new(0);
    until_propagated_by(
        "IAM to show the new batch role to S3",
        on_wait,
        |e| {
            fresh_role
                && (AwsError::find(e).is_some_and(is_role_not_ready)
                    || e.downcast_ref::<FailedEarly>()
                        .is_some_and(FailedEarly::denied))
        },
        || async {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let request = JobRequest {
                // A job that failed is done: its retry is a new job.
                token: format!("{}-{n}", request.token),
                ..request.clone()
            };
            let id = create_job_once(clients, &request).await?;
            if fresh_role {
                until_prepared(clients, &request.account, &id, on_wait).await?;
            }
            Ok(id)
        },
    )
    .await
}

/// The longest wait for a job to leave `New`/`Preparing`.
const PREPARE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Follows a new job until S3 has read its manifest: Ok once it is past preparation,
/// [`FailedEarly`] if it failed there. S3 Control has no waiter for jobs: DescribeJob every
/// second or two (a job just created may not be found yet).
async fn until_prepared(
    clients: &Clients,
    account: &str,
    id: &str,
    on_wait: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        let status = match describe_job(clients, account, id).await {
            Ok(job) => job,
            Err(e) if AwsError::find(&e).is_some_and(|e| e.is("NotFoundException")) => Value::Null,
            Err(e) => return Err(e),
        };
        match status["status"].as_str() {
            Some("Failed" | "Failing" | "Cancelled") => {
                let reasons: Vec<String> = status["failure_reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f["code"].as_str().unwrap_or("?"),
                            f["reason"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(FailedEarly {
                    id: id.to_owned(),
                    reasons: reasons.join("; "),
                }
                .into());
            }
            Some("New" | "Preparing") | None => {}
            Some(_) => return Ok(()),
        }
        if started.elapsed() > PREPARE_DEADLINE {
            // Still preparing (a large manifest): started as far as we can tell.
            on_wait(&format!(
                "job {id} still preparing after {}s; `--status {id}` follows it",
                PREPARE_DEADLINE.as_secs()
            ));
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(4));
    }
}

/// One CreateJob.
async fn create_job_once(clients: &Clients, request: &JobRequest) -> anyhow::Result<String> {
    let out = clients
        .s3control
        .create_job()
        .account_id(&request.account)
        .confirmation_required(false)
        .priority(10)
        .client_request_token(&request.token)
        .description(&request.description)
        .role_arn(&request.role_arn)
        .operation(
            JobOperation::builder()
                .lambda_invoke(
                    LambdaInvokeOperation::builder()
                        .function_arn(&request.function_arn)
                        .invocation_schema_version("2.0")
                        .build(),
                )
                .build(),
        )
        .manifest(
            JobManifest::builder()
                .spec(
                    JobManifestSpec::builder()
                        .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                        .fields(JobManifestFieldName::Bucket)
                        .fields(JobManifestFieldName::Key)
                        .build()?,
                )
                .location(
                    JobManifestLocation::builder()
                        .object_arn(&request.manifest_arn)
                        .e_tag(&request.manifest_etag)
                        .build()?,
                )
                .build(),
        )
        .report(
            JobReport::builder()
                .enabled(true)
                .bucket(&request.report_bucket_arn)
                .prefix(&request.report_prefix)
                .format(JobReportFormat::ReportCsv20180820)
                .report_scope(JobReportScope::AllTasks)
                .build(),
        )
        .send()
        .await
        .with_aws_context(|| "while creating the S3 Batch Operations job".to_owned())?;
    out.job_id()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("S3 created a Batch Operations job but named no id"))
}

/// S3 refusing a role it cannot assume yet: a `BadRequestException` about the role (S3
/// Control has no code of its own for it; terraform-provider-aws matches IAM propagation
/// by message the same way for Lambda).
fn is_role_not_ready(err: &AwsError) -> bool {
    err.is("BadRequestException")
        && err.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("role") && (m.contains("assume") || m.contains("not authorized"))
        })
}

/// A job's state, for `reconcile --status`.
pub(crate) async fn describe_job(
    clients: &Clients,
    account: &str,
    id: &str,
) -> anyhow::Result<Value> {
    let out = clients
        .s3control
        .describe_job()
        .account_id(account)
        .job_id(id)
        .send()
        .await
        .with_aws_context(|| format!("while describing S3 Batch Operations job `{id}`"))?;
    let Some(job) = out.job() else {
        anyhow::bail!("S3 described job `{id}` without its details");
    };
    let progress = job.progress_summary();
    let report = job.report();
    Ok(json!({
        "job_id": job.job_id(),
        "status": job.status().map(|s| s.as_str()),
        "description": job.description(),
        "tasks": progress.and_then(|p| p.total_number_of_tasks()),
        "succeeded": progress.and_then(|p| p.number_of_tasks_succeeded()),
        "failed": progress.and_then(|p| p.number_of_tasks_failed()),
        "active_seconds": progress
            .and_then(|p| p.timers())
            .and_then(|t| t.elapsed_time_in_active_seconds()),
        "failure_reasons": job.failure_reasons().iter().map(|f| json!({
            "code": f.failure_code(),
            "reason": f.failure_reason(),
        })).collect::<Vec<_>>(),
        "status_update_reason": job.status_update_reason(),
        "report": report.filter(|r| r.enabled()).map(|r| json!({
            "bucket": r.bucket(),
            "prefix": r.prefix(),
        })),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::mock;
    use aws_sdk_s3control::operation::create_job::CreateJobOutput;
    use aws_sdk_s3control::operation::describe_job::DescribeJobOutput;
    use aws_sdk_s3control::types::{
        JobDescriptor, JobFailure, JobProgressSummary, JobStatus, JobTimers,
    };
    use aws_smithy_mocks::{mock, Rule};

    fn request() -> JobRequest {
        JobRequest {
            account: mock::ACCOUNT.into(),
            function_arn: "arn:aws:lambda:eu-west-2:123456789012:function:strip".into(),
            role_arn: "arn:aws:iam::123456789012:role/pipe-dev-s3-batch".into(),
            manifest_arn: "arn:aws:s3:::state/reconcile/r1/manifest.csv".into(),
            manifest_etag: "abc".into(),
            report_bucket_arn: "arn:aws:s3:::state".into(),
            report_prefix: "reconcile/r1".into(),
            description: "stripstack reconcile".into(),
            token: "token-1".into(),
        }
    }

    /// S3 Control's error (REST XML, wrapped in `ErrorResponse`).
    fn control_error(status: u16, code: &str, message: &str) -> (u16, Option<String>) {
        (
            status,
            Some(format!(
                "<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>r</RequestId></ErrorResponse>"
            )),
        )
    }

    #[test]
    fn manifest_keys_are_url_encoded_and_the_role_is_scoped() {
        assert_eq!(
            manifest_line("src", "uploads/my photo+1,café.jpg"),
            "src,uploads/my%20photo%2B1%2Ccaf%C3%A9.jpg\n"
        );
        let props = role_props(
            "arn:aws:lambda:eu-west-2:123456789012:function:strip",
            "state",
            "reconcile/r1/",
            &BTreeMap::new(),
        );
        let text = props.policy.to_string();
        assert!(text.contains("arn:aws:s3:::state/reconcile/r1/*"), "{text}");
        assert!(text.contains("function:strip"), "{text}");
        assert!(props.trust_policy.to_string().contains(PRINCIPAL));
        assert_eq!(role_name(&"s".repeat(80), "dev").len(), 64);
    }

    /// The request carries what the job needs: schema 2.0, the manifest's ETag, a report of
    /// every task under the prefix, no confirmation, the idempotency token.
    #[tokio::test]
    async fn creates_a_job_that_runs_at_once_with_a_full_report() {
        let rule = mock!(aws_sdk_s3control::Client::create_job)
            .match_requests(|r| {
                let op = r.operation().and_then(|o| o.lambda_invoke());
                let report = r.report();
                let location = r.manifest().and_then(|m| m.location());
                r.account_id() == Some(mock::ACCOUNT)
                    && r.confirmation_required() == Some(false)
                    && r.client_request_token() == Some("token-1-0")
                    && op.and_then(|o| o.invocation_schema_version()) == Some("2.0")
                    && report.is_some_and(|r| {
                        r.enabled()
                            && r.prefix() == Some("reconcile/r1")
                            && r.report_scope() == Some(&JobReportScope::AllTasks)
                    })
                    && location.is_some_and(|l| l.e_tag() == "abc")
            })
            .then_output(|| CreateJobOutput::builder().job_id("job-42").build());
        let clients = mock::s3control_clients(&[&rule]);
        let id = create_job(&clients, &request(), false, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(id, "job-42");
    }

    /// A role this run just made, not yet visible to S3: waited out. The same refusal for a
    /// role that was already there, or a denied call, returns at once.
    #[tokio::test]
    async fn waits_for_a_fresh_role_and_nothing_else() {
        let not_ready = || {
            let (status, body) = control_error(
                400,
                "BadRequestException",
                "Unable to assume role arn:aws:iam::123456789012:role/pipe-dev-s3-batch",
            );
            mock!(aws_sdk_s3control::Client::create_job)
                .sequence()
                .http_status(status, body)
                .build()
        };
        let created = mock!(aws_sdk_s3control::Client::create_job)
            .then_output(|| CreateJobOutput::builder().job_id("job-7").build());
        let first = not_ready();
        let running = described("job-7", JobStatus::Active, None);
        let clients = mock::s3control_clients(&[&first, &created, &running]);
        let waits = std::sync::Mutex::new(0);
        let id = create_job(&clients, &request(), true, &|_| {
            *waits.lock().unwrap() += 1;
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(id, "job-7");
        assert_eq!(*waits.lock().unwrap(), 1, "one wait, shown");

        let again = not_ready();
        let clients = mock::s3control_clients(&[&again]);
        let err = create_job(&clients, &request(), false, &|_| {})
            .await
            .expect_err("an old role's refusal is final");
        assert!(
            format!("{err:#}").contains("Unable to assume role"),
            "{err:#}"
        );

        let denied = {
            let (status, body) = control_error(403, "AccessDenied", "not allowed: s3:CreateJob");
            mock!(aws_sdk_s3control::Client::create_job)
                .sequence()
                .http_status(status, body)
                .build()
        };
        let clients = mock::s3control_clients(&[&denied]);
        let err = create_job(&clients, &request(), true, &|_| {})
            .await
            .expect_err("denied is final");
        assert!(format!("{err:#}").contains("AccessDenied"), "{err:#}");
        assert_eq!(denied.num_calls(), 1);
    }

    /// DescribeJob of `id`: in `status`, with a failure reason.
    fn described(id: &'static str, status: JobStatus, reason: Option<&'static str>) -> Rule {
        mock!(aws_sdk_s3control::Client::describe_job)
            .match_requests(move |r| r.job_id() == Some(id))
            .then_output(move || {
                let mut job = JobDescriptor::builder().job_id(id).status(status.clone());
                if let Some(reason) = reason {
                    job = job.failure_reasons(
                        JobFailure::builder()
                            .failure_code("ManifestReadFailure")
                            .failure_reason(reason)
                            .build(),
                    );
                }
                DescribeJobOutput::builder().job(job.build()).build()
            })
    }

    /// Created, but S3 could not read the manifest with the role's policy yet: the job failed
    /// while preparing, and a new one (another token) is created once IAM has caught up.
    #[tokio::test]
    async fn a_job_failed_by_a_fresh_roles_policy_is_made_again() {
        let first = mock!(aws_sdk_s3control::Client::create_job)
            .match_requests(|r| r.client_request_token() == Some("token-1-0"))
            .then_output(|| CreateJobOutput::builder().job_id("job-a").build());
        let failed = described(
            "job-a",
            JobStatus::Failed,
            Some("Reading the manifest is forbidden: AccessDenied"),
        );
        let second = mock!(aws_sdk_s3control::Client::create_job)
            .match_requests(|r| r.client_request_token() == Some("token-1-1"))
            .then_output(|| CreateJobOutput::builder().job_id("job-b").build());
        let running = described("job-b", JobStatus::Active, None);
        let clients = mock::s3control_clients(&[&first, &failed, &second, &running]);
        let lines = std::sync::Mutex::new(Vec::new());
        let id = create_job(&clients, &request(), true, &|line| {
            lines.lock().unwrap().push(line.to_owned())
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(id, "job-b");
        let lines = lines.into_inner().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("Reading the manifest is forbidden"),
            "{lines:?}"
        );

        // A job failing for another reason is reported, not made again.
        let first = mock!(aws_sdk_s3control::Client::create_job)
            .then_output(|| CreateJobOutput::builder().job_id("job-c").build());
        let failed = described(
            "job-c",
            JobStatus::Failed,
            Some("The manifest is not a valid CSV"),
        );
        let clients = mock::s3control_clients(&[&first, &failed]);
        let err = create_job(&clients, &request(), true, &|_| {})
            .await
            .expect_err("a bad manifest is final");
        assert!(format!("{err:#}").contains("not a valid CSV"), "{err:#}");
    }

    #[tokio::test]
    async fn describes_progress_failures_and_the_report() {
        let rule = mock!(aws_sdk_s3control::Client::describe_job)
            .match_requests(|r| r.job_id() == Some("job-42"))
            .then_output(|| {
                DescribeJobOutput::builder()
                    .job(
                        JobDescriptor::builder()
                            .job_id("job-42")
                            .status(JobStatus::Active)
                            .progress_summary(
                                JobProgressSummary::builder()
                                    .total_number_of_tasks(20_000)
                                    .number_of_tasks_succeeded(15_000)
                                    .number_of_tasks_failed(3)
                                    .timers(
                                        JobTimers::builder()
                                            .elapsed_time_in_active_seconds(95)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .failure_reasons(
                                JobFailure::builder()
                                    .failure_code("TaskFailure")
                                    .failure_reason("3 tasks failed")
                                    .build(),
                            )
                            .report(
                                JobReport::builder()
                                    .enabled(true)
                                    .bucket("arn:aws:s3:::state")
                                    .prefix("reconcile/r1")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let clients = mock::s3control_clients(&[&rule]);
        let status = describe_job(&clients, mock::ACCOUNT, "job-42")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(status["status"], "Active");
        assert_eq!(status["tasks"], 20_000);
        assert_eq!(status["succeeded"], 15_000);
        assert_eq!(status["failed"], 3);
        assert_eq!(status["active_seconds"], 95);
        assert_eq!(status["failure_reasons"][0]["reason"], "3 tasks failed");
        assert_eq!(status["report"]["prefix"], "reconcile/r1");
    }
}
