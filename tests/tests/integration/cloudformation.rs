//! `--engine cloudformation` driven through `cargo xtask`, as a user runs it, against this
//! binary's private emulator: create, a no-op update, an update (a parameter's value and the
//! function's memory), delete; a failed create, explained and recovered from; a retained
//! bucket that outlives the stack. Each test deploys its own uniquely named stack.
//!
//! Where MiniStack's CloudFormation differs from AWS (MiniStack 1.5.33), the tests check what
//! both do alike and say what they leave out:
//! - `AWS::S3::Bucket`: `LifecycleConfiguration`, `Tags`, `BucketEncryption` and
//!   `OwnershipControls` are accepted and silently not applied, so the tests do not read
//!   them back (the template's unit tests cover them, and cfn-lint checks them in CI);
//!   `VersioningConfiguration`, `PublicAccessBlockConfiguration` and
//!   `NotificationConfiguration` are applied and checked here.
//! - `AWS::Lambda::Function`: `RecursiveLoop` is not applied.
//! - A non-empty bucket is deleted with its stack, where AWS refuses (`DELETE_FAILED`):
//!   destroy's retry that keeps such a bucket (`RetainResources`) cannot be exercised here.
//! - `AWS::IAM::AccessKey` is not supported: irrelevant, the template never has one (the SDK
//!   writes access keys around the stack).
//! - Like AWS, the statement id of an `AWS::Lambda::Permission` is generated
//!   (`<stack>-<LogicalId>-<random>`), not the SDK engine's `stripstack-s3-<bucket>`.

use serde_json::Value;
use stripstack_tests::{
    bucket_exists, changed_properties, iam, lambda, output_text as text, plan_changes, s3, ssm,
    xtask, StackFile,
};

const ACCOUNT: &str = "000000000000";

fn cloudformation() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&stripstack_tests::config())
}

/// A stack file of its own for one test, in the `local` environment, CloudFormation engine.
struct TestStack(StackFile);

impl std::ops::Deref for TestStack {
    type Target = StackFile;

    fn deref(&self) -> &StackFile {
        &self.0
    }
}

impl TestStack {
    fn new(prefix: &str) -> Self {
        let stack = TestStack(StackFile::new(prefix, &["--engine", "cloudformation"]));
        stack.write(256, "v1", false);
        stack
    }

    /// The stack under test; the arguments are the knobs the tests turn.
    fn write(&self, memory: u32, note: &str, retain_destination: bool) {
        std::fs::write(&self.path, self.yaml(memory, note, retain_destination))
            .expect("write the test stack");
    }

    /// The stack with `count` more parameters, enough of them to take the template over
    /// the 51,200 bytes CloudFormation accepts inline.
    fn write_padded(&self, count: usize) {
        let padding: String = (0..count)
            .map(|i| {
                format!(
                    "  \"/${{stack}}/${{env}}/padding-{i:03}\": {{ value: \"{}\", description: \"{}\" }}\n",
                    "v".repeat(200),
                    "d".repeat(200)
                )
            })
            .collect();
        let yaml = self.yaml(256, "v1", false).replacen(
            "parameters:\n",
            &format!("parameters:\n{padding}"),
            1,
        );
        std::fs::write(&self.path, yaml).expect("write the test stack");
    }

    fn yaml(&self, memory: u32, note: &str, retain_destination: bool) -> String {
        format!(
            r#"stack: {name}
region: {region}
environments:
  local:
    endpoint: http://127.0.0.1:4566
    buckets:
      source: {{ tls_only: false, force_destroy: true }}
      destination: {{ tls_only: false, force_destroy: {force_destroy}, retain: {retain_destination} }}
buckets:
  source:
    name: "${{stack}}-src-${{env}}-${{account}}"
  destination:
    name: "${{stack}}-dst-${{env}}-${{account}}"
    lifecycle:
      - {{ id: tiering, transition_days: 30, storage_class: INTELLIGENT_TIERING }}
parameters:
  "/${{stack}}/${{env}}/source-bucket": "${{buckets.source.name}}"
  "/${{stack}}/${{env}}/note": {{ value: "{note}", description: A value the tests change }}
  "/${{stack}}/${{env}}/token": {{ value: not-a-real-secret, secure: true }}
users:
  user-a:
    access_key: true
    allow:
      - {{ actions: [s3:ListBucket], resources: ["${{buckets.source.arn}}"] }}
      - {{ actions: [s3:GetObject, s3:PutObject], resources: ["${{buckets.source.arn}}/*"] }}
  user-b:
    allow:
      - {{ actions: [s3:GetObject], resources: ["${{buckets.destination.arn}}/*"] }}
functions:
  strip:
    package: lambda
    memory: {memory}
    timeout: 30
    environment: {{ DESTINATION_BUCKET: "${{buckets.destination.name}}" }}
    allow:
      - {{ actions: [s3:GetObject, s3:GetObjectVersion], resources: ["${{buckets.source.arn}}/*"] }}
      - {{ actions: [s3:PutObject, s3:GetObject], resources: ["${{buckets.destination.arn}}/*"] }}
    triggers:
      - {{ bucket: source, events: [created], prefix: uploads/, suffixes: [.jpg, .jpeg] }}
"#,
            name = self.name,
            region = stripstack_tests::REGION,
            force_destroy = !retain_destination,
        )
    }

    fn stack_name(&self) -> String {
        format!("{}-local", self.name)
    }

    fn source(&self) -> String {
        format!("{}-src-local-{ACCOUNT}", self.name)
    }

    fn destination(&self) -> String {
        format!("{}-dst-local-{ACCOUNT}", self.name)
    }

    fn function(&self) -> String {
        format!("{}-local-strip", self.name)
    }

    fn parameter(&self, leaf: &str) -> String {
        format!("/{}/local/{leaf}", self.name)
    }

    /// The stack's status, `None` once it is gone.
    async fn status(&self) -> Option<String> {
        let out = cloudformation()
            .describe_stacks()
            .stack_name(self.stack_name())
            .send()
            .await
            .ok()?;
        let status = out.stacks().first()?.stack_status()?.as_str().to_owned();
        (status != "DELETE_COMPLETE").then_some(status)
    }

    async fn event_count(&self) -> usize {
        let mut count = 0;
        let mut token = None;
        loop {
            let page = cloudformation()
                .describe_stack_events()
                .stack_name(self.stack_name())
                .set_next_token(token)
                .send()
                .await
                .expect("stack events");
            count += page.stack_events().len();
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return count;
            }
        }
    }
}

/// `(action, address)` of every change of one part of the plan (`cloudformation`, `sdk`).
fn changes(plan: &Value, part: &str) -> Vec<(String, String)> {
    let mut changes = plan_changes(&plan[part]);
    changes.sort();
    changes
}

async fn parameter(name: &str) -> Option<(String, String)> {
    let out = ssm()
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .ok()?;
    let parameter = out.parameter?;
    Some((
        parameter.r#type()?.as_str().to_owned(),
        parameter.value()?.to_owned(),
    ))
}

async fn memory(function: &str) -> Option<i32> {
    lambda()
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .ok()?
        .memory_size()
}

async fn access_keys(user: &str) -> usize {
    iam()
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map(|out| out.access_key_metadata().len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_no_op_update_and_delete_through_cloudformation() {
    let stack = TestStack::new("cfn-life");
    let user_a = format!("{}-local-user-a", stack.name);
    let user_b = format!("{}-local-user-b", stack.name);

    // A plan of a stack that does not exist: everything to create, nothing left behind.
    let (plan, code) = stack.plan();
    assert_eq!(code, 2, "changes pending means exit 2");
    let name = &stack.name;
    let mut expected: Vec<(String, String)> = [
        "bucket.destination",
        "bucket.source",
        &format!("parameter./{name}/local/note"),
        &format!("parameter./{name}/local/source-bucket"),
        "policy.user-a",
        "policy.user-b",
        "user.user-a",
        "user.user-b",
        "role.strip",
        "log-group.strip",
        "function.strip",
        "permission.strip.source",
    ]
    .iter()
    .map(|a| ("create".to_owned(), a.to_string()))
    .collect();
    expected.sort();
    assert_eq!(changes(&plan, "cloudformation"), expected);
    // What CloudFormation cannot hold: the SecureString and the access key.
    assert_eq!(
        changes(&plan, "sdk"),
        vec![
            (
                "create".to_owned(),
                format!("parameter./{name}/local/token")
            ),
            ("create".to_owned(), "user.user-a.access-key".to_owned()),
        ]
    );
    assert_eq!(
        stack.status().await,
        None,
        "plan deleted its change set and stack"
    );
    assert!(
        !bucket_exists(&stack.source()).await,
        "a plan creates nothing"
    );

    // Create.
    let out = stack.deploy();
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("CREATE_COMPLETE") && progress.contains("bucket.source (SourceBucket)"),
        "the stack's events are streamed as progress:\n{progress}"
    );
    assert_eq!(stack.status().await.as_deref(), Some("CREATE_COMPLETE"));
    assert!(bucket_exists(&stack.source()).await);
    assert!(bucket_exists(&stack.destination()).await);
    let versioning = s3()
        .get_bucket_versioning()
        .bucket(stack.source())
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(
        parameter(&stack.parameter("note")).await,
        Some(("String".into(), "v1".into()))
    );
    assert_eq!(
        parameter(&stack.parameter("token")).await,
        Some(("SecureString".into(), "not-a-real-secret".into())),
        "the SDK writes the SecureString around the stack"
    );
    assert_eq!(memory(&stack.function()).await, Some(256));
    let function = lambda()
        .get_function_configuration()
        .function_name(stack.function())
        .send()
        .await
        .expect("function");
    // The emulator makes a function without code Active too: check the code itself.
    assert!(
        function.code_size() > 0,
        "the bundle from the state bucket is the code"
    );
    let policy = lambda()
        .get_policy()
        .function_name(stack.function())
        .send()
        .await
        .expect("resource policy");
    assert!(
        policy
            .policy()
            .unwrap_or_default()
            .contains(&format!("arn:aws:s3:::{}", stack.source())),
        "the invoke permission names the source bucket by its ARN"
    );
    let notifications = s3()
        .get_bucket_notification_configuration()
        .bucket(stack.source())
        .send()
        .await
        .expect("notifications");
    assert_eq!(
        notifications.lambda_function_configurations().len(),
        2,
        "one per suffix"
    );
    assert!(notifications
        .lambda_function_configurations()
        .iter()
        .all(|c| c.lambda_function_arn().ends_with(&stack.function())));
    assert_eq!(access_keys(&user_a).await, 1);
    assert_eq!(access_keys(&user_b).await, 0);
    assert!(
        parameter(&format!("/{name}/local/users/user-a/secret-access-key"))
            .await
            .is_some_and(|(kind, value)| kind == "SecureString" && !value.is_empty()),
        "the access key's secret is in its SecureString"
    );
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !everything.contains("not-a-real-secret"),
        "a secret was printed"
    );

    // No-op: nothing to change, and a deploy executes nothing.
    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "no changes means exit 0: {plan:#}");
    assert!(plan["cloudformation"]["changes"]
        .as_array()
        .is_some_and(|c| c.is_empty()));
    let events = stack.event_count().await;
    let out = stack.deploy();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No changes."),
        "{}",
        text(&out)
    );
    assert_eq!(
        stack.event_count().await,
        events,
        "a no-op deploy runs no stack operation"
    );

    // Update: a parameter's value and the function's memory, in place.
    stack.write(512, "v2", false);
    let (plan, code) = stack.plan();
    assert_eq!(code, 2);
    assert_eq!(
        changes(&plan, "cloudformation"),
        vec![
            ("update".to_owned(), "function.strip".to_owned()),
            ("update".to_owned(), format!("parameter./{name}/local/note")),
        ]
    );
    assert_eq!(
        changed_properties(&plan["cloudformation"], "function.strip"),
        vec!["MemorySize"]
    );
    assert_eq!(
        changed_properties(
            &plan["cloudformation"],
            &format!("parameter./{name}/local/note")
        ),
        vec!["Value"]
    );
    assert!(
        changes(&plan, "sdk").is_empty(),
        "the SDK's part is unchanged"
    );
    stack.deploy();
    assert_eq!(stack.status().await.as_deref(), Some("UPDATE_COMPLETE"));
    assert_eq!(memory(&stack.function()).await, Some(512));
    assert_eq!(
        parameter(&stack.parameter("note")).await,
        Some(("String".into(), "v2".into()))
    );
    assert_eq!(access_keys(&user_a).await, 1, "the access key was kept");

    // Delete, with an object in the force-destroy source bucket (outside the trigger's
    // prefix, so the function does not run).
    s3().put_object()
        .bucket(stack.source())
        .key("notes/readme.txt")
        .body(b"hello".to_vec().into())
        .send()
        .await
        .expect("put an object");
    let out = stack.destroy();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("emptied and deleted (force_destroy: true)"),
        "{}",
        text(&out)
    );
    assert_eq!(stack.status().await, None);
    assert!(!bucket_exists(&stack.source()).await);
    assert!(!bucket_exists(&stack.destination()).await);
    assert_eq!(memory(&stack.function()).await, None);
    assert!(iam().get_user().user_name(&user_a).send().await.is_err());
    assert_eq!(parameter(&stack.parameter("note")).await, None);
    assert_eq!(
        parameter(&stack.parameter("token")).await,
        None,
        "the SDK's SecureString went too"
    );
    assert_eq!(
        parameter(&format!("/{name}/local/users/user-a/secret-access-key")).await,
        None
    );
    let out = stack.destroy();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Nothing to destroy"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_create_is_rolled_back_explained_and_recovered_from() {
    let stack = TestStack::new("cfn-fail");
    // Someone else's bucket holds the destination's name.
    s3().create_bucket()
        .bucket(stack.destination())
        .set_create_bucket_configuration(stripstack_tests::bucket_location())
        .send()
        .await
        .expect("create the squatting bucket");
    let out = stack.run("deploy", &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ROLLBACK_COMPLETE (the changes were rolled back)"),
        "{stderr}"
    );
    // CloudFormation (as AWS does since its pre-deployment validations) refuses the taken
    // name before it creates anything, and says why through DescribeEvents.
    assert!(
        stderr.contains(
            "bucket.destination (DestinationBucket) [AWS::S3::Bucket]: NAME_CONFLICT_VALIDATION"
        ) && stderr.contains("already exists"),
        "the failed resource and CloudFormation's reason are named:\n{stderr}"
    );
    assert_eq!(stack.status().await.as_deref(), Some("ROLLBACK_COMPLETE"));
    assert!(
        !bucket_exists(&stack.source()).await,
        "what was created is rolled back"
    );
    assert_eq!(
        parameter(&stack.parameter("token")).await,
        None,
        "the SDK's part waits for the stack"
    );

    // Once the name is free, the next deploy replaces the rolled-back stack.
    s3().delete_bucket()
        .bucket(stack.destination())
        .send()
        .await
        .expect("delete the squatting bucket");
    let out = stack.deploy();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deleting it to create it again"),
        "{}",
        text(&out)
    );
    assert_eq!(stack.status().await.as_deref(), Some("CREATE_COMPLETE"));
    stack.destroy();
    assert_eq!(stack.status().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retained_bucket_outlives_its_stack_and_is_listed() {
    let stack = TestStack::new("cfn-keep");
    stack.write(256, "v1", true);
    stack.deploy();
    let out = stack.destroy();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "bucket.destination (DestinationBucket) {} (DeletionPolicy: Retain)",
            stack.destination()
        )),
        "kept resources are listed:\n{stderr}"
    );
    assert_eq!(stack.status().await, None);
    assert!(bucket_exists(&stack.destination()).await, "retained");
    assert!(!bucket_exists(&stack.source()).await);
    s3().delete_bucket()
        .bucket(stack.destination())
        .send()
        .await
        .expect("clean up the retained bucket");
}

/// A template over the inline limit goes through the state bucket (`TemplateURL`): the
/// plan of the stack not made yet lists every resource, deploy uploads the template and
/// CloudFormation creates from it, a re-plan of the existing stack finds nothing to change,
/// destroy removes it all.
#[tokio::test(flavor = "multi_thread")]
async fn a_template_over_the_inline_limit_is_read_from_the_state_bucket() {
    const PADDING: usize = 120;
    let stack = TestStack::new("cfn-big");
    stack.write_padded(PADDING);
    let synth = xtask(&[
        "synth",
        "--env",
        "local",
        "--stack",
        &stack.path.to_string_lossy(),
        "--json",
    ])
    .output()
    .expect("run cargo xtask synth");
    assert!(synth.status.success(), "{}", text(&synth));
    let size = serde_json::to_string(&serde_json::from_slice::<Value>(&synth.stdout).unwrap())
        .unwrap()
        .len();
    assert!(
        size > 51_200,
        "the test needs a larger template: {size} bytes"
    );

    let (plan, code) = stack.plan();
    assert_eq!(code, 2);
    let creates = changes(&plan, "cloudformation");
    assert!(
        creates.iter().all(|(action, _)| action == "create"),
        "{creates:?}"
    );
    assert_eq!(
        creates
            .iter()
            .filter(|(_, address)| address.contains("/padding-"))
            .count(),
        PADDING
    );

    let out = stack.deploy();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let state_bucket = format!("stripstack-state-{ACCOUNT}-{}", stripstack_tests::REGION);
    assert!(
        stderr.contains(&format!(
            "read from s3://{state_bucket}/templates/{}/local/",
            stack.name
        )),
        "{}",
        text(&out)
    );
    assert_eq!(stack.status().await.as_deref(), Some("CREATE_COMPLETE"));
    let last = stack.parameter(&format!("padding-{:03}", PADDING - 1));
    assert_eq!(
        parameter(&last).await,
        Some(("String".to_owned(), "v".repeat(200)))
    );

    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "nothing to change after the deploy: {plan:#}");

    stack.destroy();
    assert_eq!(stack.status().await, None);
    assert_eq!(parameter(&last).await, None);
}
