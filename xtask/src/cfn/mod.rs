//! The CloudFormation engine (`--engine cloudformation`, `synth`): the same stack file
//! deployed as one CloudFormation stack, `<stack>-<env>`, so that AWS itself holds the
//! state, serialises deployments and rolls a failed one back. The SDK engine stays the
//! default, fast path; both describe the same infrastructure because the template is
//! synthesised from the SDK engine's own desired states.
//!
//! - `template`: the resolved stack as a template (pure), and what it records for the
//!   next run in its `Metadata`;
//! - `changeset`: change sets, shown as plans in the SDK engine's style;
//! - `events`: stack status, progress as CloudFormation reports it, failure reasons;
//! - `sdk`: SecureString parameters and access keys, which CloudFormation cannot hold and
//!   the SDK writes around the stack.
//!
//! The two engines keep separate records (the SDK engine's state in S3, the stack here):
//! an environment is deployed by one of them at a time.

pub mod changeset;
pub mod events;
pub mod sdk;
pub mod template;

use std::process::ExitCode;
use std::time::Instant;

use aws_sdk_cloudformation::types as t;
use serde_json::{json, Value};

use crate::aws::{AwsError, Clients, SdkResultExt};
use crate::plan::{self, Action, Plan};
use crate::resources::grant::Grant;
use crate::resources::{self, Artifact, Artifacts, Kind};
use crate::session::{DeployOptions, DestroyOptions, PlanOptions, SynthOptions};
use crate::stack::ResolvedStack;
use changeset::ChangeSet;
use events::{Phase, StackInfo};
use template::{Recorded, Template};

/// `cargo xtask synth`: the template of one environment, on stdout.
///
/// The account fills `${account}` (bucket names, ARNs): `--account` gives it and nothing is
/// asked of AWS (CI lints templates that way, with `123456789012`); without it, STS says
/// which account the credentials belong to, as for every other command.
pub(crate) async fn synth(args: SynthOptions) -> anyhow::Result<ExitCode> {
    let stack =
        crate::session::resolve(&args.target, args.account.as_deref(), "the template").await?;
    let artifacts = crate::session::existing_artifacts(&stack);
    let template = template::synthesize(&stack, &artifacts);
    warn_unbuilt(&template);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&template.body)?);
    } else {
        print!("{}", template::to_yaml(&template.body)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the CloudFormation engine must be allowed to do besides what each kind needs
/// (CloudFormation creates the resources with the caller's rights): its change sets, events
/// and template, on this stack only.
pub(crate) fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
    vec![Grant::new(
        "CloudFormationEngine",
        &[
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteChangeSet",
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "cloudformation:DescribeEvents",
            "cloudformation:GetTemplate",
            "cloudformation:ListStackResources",
            "cloudformation:DeleteStack",
        ],
        vec![format!(
            "arn:{}:cloudformation:{}:{}:stack/{}/*",
            crate::stack::partition(&stack.region),
            stack.region,
            stack.account,
            template::stack_name(stack)
        )],
    )]
}

fn warn_unbuilt(template: &Template) {
    for package in &template.unbuilt {
        eprintln!(
            "warning: `{package}` is not bundled yet (`cargo xtask bundle`): its function's code \
             location in the template is a placeholder; deploy builds and uploads it"
        );
    }
}

/// Flags of the SDK engine that mean nothing to CloudFormation.
fn refuse(given: bool, flag: &str, why: &str) -> anyhow::Result<()> {
    if given {
        anyhow::bail!("{flag} is not for --engine cloudformation: {why}");
    }
    Ok(())
}

/// How the template reaches CloudFormation.
pub enum TemplateSource {
    /// Inline (`TemplateBody`).
    Body(String),
    /// Read by CloudFormation from the state bucket (`TemplateURL`).
    Url(String),
}

/// The template inline when it fits (51,200 bytes); a larger one is uploaded to the state
/// bucket under `templates/<stack>/<env>/<sha256>.json` (content-addressed: one key never
/// names two templates) and given by URL, as `cdk deploy` and `sam deploy` do.
async fn template_source(
    clients: &Clients,
    stack: &ResolvedStack,
    body: String,
) -> anyhow::Result<TemplateSource> {
    use sha2::Digest as _;
    if body.len() <= template::MAX_TEMPLATE_BODY {
        return Ok(TemplateSource::Body(body));
    }
    if body.len() > template::MAX_TEMPLATE_URL_BODY {
        anyhow::bail!(
            "the template is {} bytes, over the {} bytes CloudFormation accepts even from S3: \
             split the stack file into smaller stacks",
            body.len(),
            template::MAX_TEMPLATE_URL_BODY
        );
    }
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    let key = format!(
        "templates/{}/{}/{}.json",
        stack.stack,
        stack.env,
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    let size = body.len();
    let url = clients.s3_object_url(&bucket, &key);
    eprintln!(
        "template: {size} bytes, over the {} bytes CloudFormation accepts inline: read from \
         s3://{bucket}/{key}",
        template::MAX_TEMPLATE_BODY
    );
    // Content-addressed: a template already there (sent by an earlier plan or deploy) is
    // not written again, so a plan of an unchanged stack writes nothing.
    match clients
        .s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(_) => return Ok(TemplateSource::Url(url)),
        Err(err) if crate::aws::http_status(&err) == Some(404) => {}
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while looking for the template at s3://{bucket}/{key}"),
            )
            .into())
        }
    }
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into_bytes().into())
        .send()
        .await
        .with_aws_context(|| {
            format!(
                "while uploading the template ({size} bytes, over the {} CloudFormation \
                 accepts inline) to s3://{bucket}/{key}",
                template::MAX_TEMPLATE_BODY
            )
        })?;
    Ok(TemplateSource::Url(url))
}

/// The deployed template (as sent), `None` when there is none or it cannot be read.
async fn deployed_template(clients: &Clients, stack_id: &str) -> anyhow::Result<Option<Value>> {
    let out = clients
        .cloudformation
        .get_template()
        .stack_name(stack_id)
        .template_stage(t::TemplateStage::Original)
        .send()
        .await
        .aws_context("while reading the deployed template")?;
    let Some(body) = out.template_body() else {
        return Ok(None);
    };
    match template::parse(body) {
        Ok(value) => Ok(Some(value)),
        Err(err) => {
            // Only the plan's old values and the record of earlier runs come from it.
            eprintln!("warning: the deployed template cannot be read ({err}); the plan shows no old values");
            Ok(None)
        }
    }
}

/// Bundles already built for `plan`, which never builds; for a package without one, the
/// code the stack runs now, so that an unbuilt bundle does not show as a code change.
fn plan_artifacts(stack: &ResolvedStack, deployed: Option<&Value>) -> Artifacts {
    let mut artifacts = crate::session::existing_artifacts(stack);
    for function in stack.functions.values() {
        if artifacts.contains_key(&function.package) {
            continue;
        }
        let code = deployed
            .and_then(|d| d["Resources"].as_object())
            .and_then(|resources| {
                resources.values().find(|r| {
                    r["Type"] == "AWS::Lambda::Function"
                        && r["Properties"]["FunctionName"] == json!(function.name)
                })
            })
            .map(|r| &r["Properties"]["Code"]);
        let Some(code) = code else { continue };
        if let (Some(bucket), Some(key)) = (code["S3Bucket"].as_str(), code["S3Key"].as_str()) {
            if let Some(code_sha256) = template::code_sha256_of_key(key) {
                artifacts.insert(
                    function.package.clone(),
                    Artifact {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        code_sha256,
                    },
                );
            }
        }
    }
    artifacts
}

/// Names a logical id the way plans do: `bucket.source (SourceBucket)`.
fn labeller<'a>(new: &'a Template, recorded: &'a Recorded) -> impl Fn(&str) -> String + 'a {
    move |logical_id: &str| {
        let address = new
            .entry(logical_id)
            .map(|e| e.address.clone())
            .or_else(|| recorded.resources.get(logical_id).cloned());
        match address {
            Some(address) => format!("{address} ({logical_id})"),
            None => logical_id.to_owned(),
        }
    }
}

/// A change set for `body`: CREATE when there is no stack (or only the empty one an
/// unexecuted change set left), UPDATE otherwise.
async fn prepare(
    clients: &Clients,
    stack: &ResolvedStack,
    name: &str,
    info: Option<&StackInfo>,
    source: &TemplateSource,
) -> anyhow::Result<ChangeSet> {
    let kind = match info.map(|i| (events::phase(&i.status), i)) {
        None | Some((Phase::Absent | Phase::Review, _)) => t::ChangeSetType::Create,
        Some((Phase::Ready, _)) => t::ChangeSetType::Update,
        Some((Phase::Busy, i)) => anyhow::bail!(
            "stack `{name}` is {}: another deployment is running; try again when it is done",
            i.status
        ),
        Some((Phase::RolledBack | Phase::Stuck, i)) => anyhow::bail!(
            "stack `{name}` is {}{}: CloudFormation cannot update it until someone fixes it \
             (see its events in the console; `aws cloudformation continue-update-rollback`, or \
             `cargo xtask destroy --engine cloudformation`)",
            i.status,
            i.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    };
    changeset::create(clients, name, kind, source, &stack.tags).await
}

/// The plan of a change set (nothing to change when CloudFormation found nothing).
fn change_set_plan(
    stack: &ResolvedStack,
    change_set: &ChangeSet,
    new: &Template,
    deployed: Option<&Value>,
) -> anyhow::Result<Plan> {
    match &change_set.changes {
        Some(changes) => changeset::to_plan(&stack.stack, &stack.env, changes, new, deployed),
        None => Ok(Plan {
            stack: stack.stack.clone(),
            env: stack.env.clone(),
            changes: Vec::new(),
            unchanged: new.resources.len(),
        }),
    }
}

/// Both plans as text: the change set, then what the SDK does around it (when anything).
fn render(name: &str, cfn: &Plan, around: &Plan) -> String {
    let color = crate::style::stdout_color();
    let mut out = format!("CloudFormation stack `{name}`:\n\n");
    out.push_str(&plan::render::text(cfn, color));
    if !around.is_empty() {
        out.push_str(
            "\nDone by the SDK around the stack (CloudFormation cannot create SecureString \
             parameters, and an access key's secret must not be kept in the stack):\n\n",
        );
        out.push_str(&plan::render::text(around, color));
    }
    out
}

fn render_json(name: &str, cfn: &Plan, around: &Plan) -> anyhow::Result<String> {
    let value = json!({
        "engine": "cloudformation",
        "stack_name": name,
        "cloudformation": serde_json::from_str::<Value>(&plan::render::json(cfn))?,
        "sdk": serde_json::from_str::<Value>(&plan::render::json(around))?,
    });
    Ok(serde_json::to_string_pretty(&value)?)
}

/// `plan --engine cloudformation`: a change set is created, shown and deleted.
pub(crate) async fn plan(args: PlanOptions) -> anyhow::Result<ExitCode> {
    refuse(
        args.out.is_some(),
        "--out",
        "deploy creates a change set of its own and shows it before executing it",
    )?;
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let name = template::stack_name(&stack);
    let info = events::describe_stack(&clients, &name).await?;
    let deployed = match &info {
        Some(i) if !matches!(events::phase(&i.status), Phase::Absent | Phase::Review) => {
            deployed_template(&clients, &i.id).await?
        }
        _ => None,
    };
    let recorded = deployed.as_ref().map(Recorded::of).unwrap_or_default();
    let template = template::synthesize(&stack, &plan_artifacts(&stack, deployed.as_ref()));
    warn_unbuilt(&template);
    let absent = info
        .as_ref()
        .is_none_or(|i| matches!(events::phase(&i.status), Phase::Absent | Phase::Review));
    let body = template::to_json(&template.body);
    let cfn_plan = if info
        .as_ref()
        .is_some_and(|i| events::phase(&i.status) == Phase::RolledBack)
    {
        eprintln!(
            "stack `{name}` is ROLLBACK_COMPLETE (its creation failed): deploy deletes it and \
             creates it again"
        );
        changeset::create_all(&stack.stack, &stack.env, &template)?
    } else if absent && body.len() > template::MAX_TEMPLATE_BODY {
        // Its change set would need the template in the state bucket, which a read-only
        // plan does not create; for a stack not made yet, the plan is every resource anyway.
        eprintln!(
            "stack `{name}` does not exist yet and its template is over {} bytes: every \
             resource is listed to create; deploy uploads the template for CloudFormation to \
             check",
            template::MAX_TEMPLATE_BODY
        );
        changeset::create_all(&stack.stack, &stack.env, &template)?
    } else {
        let source = template_source(&clients, &stack, body).await?;
        let change_set = prepare(&clients, &stack, &name, info.as_ref(), &source).await?;
        let plan = change_set_plan(&stack, &change_set, &template, deployed.as_ref());
        // A plan changes nothing: its change set goes whatever the outcome.
        changeset::discard(&clients, &change_set).await?;
        plan?
    };
    let around = sdk::read(&clients, &stack, &recorded, false).await?;
    if args.json {
        println!("{}", render_json(&name, &cfn_plan, &around.plan)?);
    } else {
        print!("{}", render(&name, &cfn_plan, &around.plan));
    }
    let changes = !cfn_plan.is_empty() || !around.plan.is_empty();
    Ok(if args.detailed_exitcode && changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Deletes the stack and waits until it is gone; the outcome of the deletion.
async fn delete_stack(
    clients: &Clients,
    stack_id: &str,
    retain: &[String],
    label: &dyn Fn(&str) -> String,
) -> anyhow::Result<events::Outcome> {
    let after = events::newest_event(clients, stack_id).await?;
    clients
        .cloudformation
        .delete_stack()
        .stack_name(stack_id)
        .set_retain_resources((!retain.is_empty()).then(|| retain.to_vec()))
        .send()
        .await
        .aws_context("while deleting the stack")?;
    events::watch(clients, stack_id, after, label).await
}

/// `deploy --engine cloudformation`: bundle and upload, create a change set, show it, ask,
/// execute it while streaming the stack's events, then the SDK's part.
pub(crate) async fn deploy(mut args: DeployOptions) -> anyhow::Result<ExitCode> {
    refuse(
        args.plan.is_some(),
        "--plan",
        "a change set is computed and shown by every deploy",
    )?;
    refuse(
        args.force_unlock,
        "--force-unlock",
        "CloudFormation serialises deployments itself (there is no lock to break)",
    )?;
    args.target.start_emulator = true;
    let started = Instant::now();
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let name = template::stack_name(&stack);
    let state_clients = clients.with_own_counter();
    let bucket = crate::engine::state::state_bucket(&stack.account, &stack.region);
    crate::engine::state::ensure_state_bucket(&state_clients, &bucket, &stack.region).await?;
    let artifacts =
        crate::session::bundle_and_upload(&state_clients, &stack, &bucket, None).await?;

    let mut info = events::describe_stack(&clients, &name).await?;
    if let Some(rolled_back) = info
        .as_ref()
        .filter(|i| events::phase(&i.status) == Phase::RolledBack)
    {
        eprintln!(
            "stack `{name}` is ROLLBACK_COMPLETE (its creation failed and holds nothing): \
             deleting it to create it again"
        );
        let outcome =
            delete_stack(&clients, &rolled_back.id, &[], &|id: &str| id.to_owned()).await?;
        if !events::succeeded(&outcome.status) {
            anyhow::bail!(events::failure_message(&name, &outcome, &|id: &str| id.to_owned()));
        }
        info = None;
    }
    let deployed = match &info {
        Some(i) if events::phase(&i.status) == Phase::Ready => {
            deployed_template(&clients, &i.id).await?
        }
        _ => None,
    };
    let recorded = deployed.as_ref().map(Recorded::of).unwrap_or_default();
    let template = template::synthesize(&stack, &artifacts);
    let source = template_source(&state_clients, &stack, template::to_json(&template.body)).await?;
    let change_set = prepare(&clients, &stack, &name, info.as_ref(), &source).await?;
    let prepared = async {
        let cfn_plan = change_set_plan(&stack, &change_set, &template, deployed.as_ref())?;
        let around = sdk::read(&clients, &stack, &recorded, false).await?;
        print!("{}", render(&name, &cfn_plan, &around.plan));
        anyhow::Ok((cfn_plan, around))
    }
    .await;
    let (cfn_plan, around) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return Err(abandon(&clients, &change_set, err).await),
    };
    if cfn_plan.is_empty() && around.plan.is_empty() {
        changeset::discard(&clients, &change_set).await?;
        report_calls(&clients);
        crate::outputs::print(&stack);
        return Ok(ExitCode::SUCCESS);
    }
    match crate::session::confirm("Apply these changes? Type `yes`:", args.yes, "yes") {
        Ok(true) => {}
        Ok(false) => {
            changeset::discard(&clients, &change_set).await?;
            eprintln!("Nothing changed.");
            return Ok(ExitCode::from(1));
        }
        Err(err) => return Err(abandon(&clients, &change_set, err).await),
    }
    if let Err(err) = sdk::before(&clients, &stack, &around).await {
        return Err(abandon(&clients, &change_set, err).await);
    }
    if change_set.changes.is_some() {
        let label = labeller(&template, &recorded);
        let after = events::newest_event(&clients, &change_set.stack_id).await?;
        changeset::execute(&clients, &change_set).await?;
        let outcome = tokio::select! {
            outcome = events::watch(&clients, &change_set.stack_id, after, &label) => outcome?,
            _ = tokio::signal::ctrl_c() => anyhow::bail!(
                "interrupted: CloudFormation carries on with stack `{name}` on its own; run \
                 deploy again once it is done (`plan --engine cloudformation` says when)"
            ),
        };
        if !events::succeeded(&outcome.status) {
            let hint = if change_set.kind == t::ChangeSetType::Create {
                "\nnothing was kept; the next deploy deletes the failed stack and creates it again"
            } else {
                "\nthe stack is as it was before this deploy"
            };
            anyhow::bail!("{}{hint}", events::failure_message(&name, &outcome, &label));
        }
    } else {
        changeset::discard(&clients, &change_set).await?;
    }
    sdk::after(&clients, &stack, &around).await?;
    eprintln!(
        "\nDeployed stack `{name}`: {} created, {} updated, {} replaced, {} deleted, {} unchanged \
         (and {} SDK changes) in {:.1}s",
        cfn_plan.count(Action::Create),
        cfn_plan.count(Action::Update),
        cfn_plan.count(Action::Replace),
        cfn_plan.count(Action::Delete),
        cfn_plan.unchanged,
        around.plan.changes.len(),
        started.elapsed().as_secs_f64()
    );
    report_calls(&clients);
    crate::outputs::print(&stack);
    Ok(ExitCode::SUCCESS)
}

/// Deletes a change set that will not be executed, then hands back why.
async fn abandon(clients: &Clients, change_set: &ChangeSet, err: anyhow::Error) -> anyhow::Error {
    if let Err(cleanup) = changeset::discard(clients, change_set).await {
        eprintln!("warning: {cleanup:#}");
    }
    err
}

fn report_calls(clients: &Clients) {
    let writes: usize = clients.calls.writes().values().sum();
    eprintln!("{} API calls ({writes} writes)", clients.calls.total());
}

/// One resource of a deployed stack.
struct StackResource {
    logical_id: String,
    physical: String,
    resource_type: String,
}

async fn stack_resources(clients: &Clients, stack_id: &str) -> anyhow::Result<Vec<StackResource>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = clients
            .cloudformation
            .list_stack_resources()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
            .aws_context("while listing the stack's resources")?;
        for summary in page.stack_resource_summaries() {
            out.push(StackResource {
                logical_id: summary.logical_resource_id().unwrap_or_default().to_owned(),
                physical: summary
                    .physical_resource_id()
                    .unwrap_or_default()
                    .to_owned(),
                resource_type: summary.resource_type().unwrap_or_default().to_owned(),
            });
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// `destroy --engine cloudformation`: the SDK's part goes, force-destroy buckets are
/// emptied, then the stack is deleted. Retained resources stay and are listed; a non-empty
/// bucket without `force_destroy` is kept too (AWS refuses to delete it, and the deletion is
/// retried with that bucket retained).
pub(crate) async fn destroy(args: DestroyOptions) -> anyhow::Result<ExitCode> {
    refuse(
        args.force_unlock,
        "--force-unlock",
        "CloudFormation serialises deployments itself (there is no lock to break)",
    )?;
    let started = Instant::now();
    let (stack, clients) = crate::session::connect(&args.target).await?;
    let name = template::stack_name(&stack);
    let info = match events::describe_stack(&clients, &name).await? {
        Some(info) if events::phase(&info.status) == Phase::Busy => anyhow::bail!(
            "stack `{name}` is {}: another deployment is running; try again when it is done",
            info.status
        ),
        Some(info) if events::phase(&info.status) == Phase::Review => {
            // Only an unexecuted change set's empty stack.
            clients
                .cloudformation
                .delete_stack()
                .stack_name(&info.id)
                .send()
                .await
                .aws_context("while deleting the empty stack")?;
            None
        }
        other => other,
    };
    let Some(info) = info else {
        println!(
            "Nothing to destroy: stack `{name}` does not exist (an environment deployed by the \
             sdk engine is destroyed without --engine)."
        );
        return Ok(ExitCode::SUCCESS);
    };
    let deployed = deployed_template(&clients, &info.id).await?;
    let recorded = deployed.as_ref().map(Recorded::of).unwrap_or_default();
    let held = stack_resources(&clients, &info.id).await?;
    let retained = |logical_id: &str| {
        deployed.as_ref().is_some_and(|d| {
            matches!(
                d["Resources"][logical_id]["DeletionPolicy"].as_str(),
                Some("Retain" | "RetainExceptOnCreate")
            )
        })
    };
    let removals: Vec<changeset::ResourceChange> = held
        .iter()
        .filter(|r| !retained(&r.logical_id))
        .map(|r| changeset::ResourceChange {
            action: "Remove".to_owned(),
            logical_id: r.logical_id.clone(),
            physical: Some(r.physical.clone()),
            resource_type: r.resource_type.clone(),
            replacement: None,
            details: Vec::new(),
        })
        .collect();
    let nothing_new = Template {
        body: json!({}),
        resources: Vec::new(),
        unbuilt: Vec::new(),
    };
    let cfn_plan = changeset::to_plan(
        &stack.stack,
        &stack.env,
        &removals,
        &nothing_new,
        deployed.as_ref(),
    )?;
    let around = sdk::read(&clients, &stack, &recorded, true).await?;
    print!("{}", render(&name, &cfn_plan, &around.plan));
    let label = labeller(&nothing_new, &recorded);
    let mut kept: Vec<String> = held
        .iter()
        .filter(|r| retained(&r.logical_id))
        .map(|r| {
            format!(
                "{} {} (DeletionPolicy: Retain)",
                label(&r.logical_id),
                r.physical
            )
        })
        .collect();

    // Buckets: what happens to their contents. The stack file says which may be emptied.
    let force_destroy = |logical_id: &str| {
        recorded
            .resources
            .get(logical_id)
            .filter(|a| a.kind == Kind::Bucket)
            .and_then(|a| stack.buckets.get(&a.name))
            .is_some_and(|b| b.force_destroy)
    };
    let buckets: Vec<&StackResource> = held
        .iter()
        .filter(|r| r.resource_type == "AWS::S3::Bucket")
        .collect();
    for bucket in &buckets {
        crate::session::report_bucket_fate(
            &clients,
            &bucket.physical,
            retained(&bucket.logical_id),
            force_destroy(&bucket.logical_id),
        )
        .await?;
    }
    if !crate::session::confirm_destroy(&stack.env, args.yes)? {
        return Ok(ExitCode::from(1));
    }

    sdk::before(&clients, &stack, &around).await?;
    let to_empty: Vec<&&StackResource> = buckets
        .iter()
        .filter(|b| !retained(&b.logical_id) && force_destroy(&b.logical_id))
        .collect();
    for bucket in &to_empty {
        let removed = resources::bucket::empty(&clients, &bucket.physical).await?;
        if removed > 0 {
            eprintln!(
                "  emptied bucket {}: {removed} versions deleted",
                bucket.physical
            );
        }
    }
    let mut outcome = delete_stack(&clients, &info.id, &[], &label).await?;
    if outcome.status == "DELETE_FAILED" {
        // Buckets S3 would not delete: force-destroy ones got new objects meanwhile (empty
        // them again); the others are kept, as the SDK engine keeps them.
        let failed: Vec<&str> = held
            .iter()
            .filter(|r| {
                outcome
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.logical_id == r.logical_id)
                    .is_some_and(|e| e.status == "DELETE_FAILED")
            })
            .map(|r| r.logical_id.as_str())
            .collect();
        let is_bucket = |id: &str| buckets.iter().any(|b| b.logical_id == id);
        if failed.iter().any(|id| !is_bucket(id)) || failed.is_empty() {
            anyhow::bail!(events::failure_message(&name, &outcome, &label));
        }
        let mut retain = Vec::new();
        for bucket in buckets
            .iter()
            .filter(|b| failed.contains(&b.logical_id.as_str()))
        {
            if force_destroy(&bucket.logical_id) {
                resources::bucket::empty(&clients, &bucket.physical).await?;
            } else {
                retain.push(bucket.logical_id.clone());
                kept.push(format!(
                    "{} {} (not empty, force_destroy: false)",
                    label(&bucket.logical_id),
                    bucket.physical
                ));
            }
        }
        outcome = delete_stack(&clients, &info.id, &retain, &label).await?;
    }
    if !events::succeeded(&outcome.status) {
        anyhow::bail!(events::failure_message(&name, &outcome, &label));
    }
    eprintln!(
        "\nDestroyed stack `{name}`: {} deleted (and {} SDK changes) in {:.1}s",
        cfn_plan.count(Action::Delete),
        around.plan.changes.len(),
        started.elapsed().as_secs_f64()
    );
    report_calls(&clients);
    if !kept.is_empty() {
        eprintln!("kept:");
        for line in &kept {
            eprintln!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
