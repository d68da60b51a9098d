//! `plan`, `deploy` and `destroy` driven through `cargo xtask`, as a user runs them, against
//! this binary's private emulator. Each test deploys its own uniquely named stack.

use std::process::Output;

use serde_json::Value;
use stripstack_tests::{
    bucket_exists, changed_properties, iam, lambda, output_text as text, plan_changes, s3, ssm,
    unique, xtask, TestStack, ACCOUNT,
};

#[tokio::test(flavor = "multi_thread")]
async fn plan_of_an_empty_cloud_creates_everything() {
    let stack = TestStack::new("plan");
    let (plan, code) = stack.plan();
    assert_eq!(code, 2, "changes pending means exit 2");
    let expected = [
        "bucket.destination",
        "bucket.source",
        "parameter./{name}/local/note",
        "parameter./{name}/local/source-bucket",
        "parameter./{name}/local/extra",
        "policy.user-a",
        "policy.user-b",
        "user.user-a",
        "user.user-b",
        "role.strip",
        "log-group.strip",
        "function.strip",
        "permission.strip.source",
        "notification.source",
        "queue.failures",
        "invoke-config.strip",
    ];
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|a| ("create".to_owned(), a.replace("{name}", &stack.name)))
        .collect();
    let mut got = plan_changes(&plan);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(plan["summary"]["create"], 16);
    assert_eq!(plan["summary"]["unchanged"], 0);
    // A plan writes nothing.
    assert!(!bucket_exists(&stack.source()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_converges_then_follows_the_stack_then_destroys() {
    let stack = TestStack::new("life");
    stack.deploy();

    // Converged: the plan is empty, and a second deploy writes nothing.
    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "plan after deploy should be empty: {plan:#}");
    let again = stack.deploy();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("(0 writes)"),
        "a no-op deploy must not write:\n{}",
        text(&again)
    );

    // What deploy made is what the stack says.
    let function = lambda()
        .get_function_configuration()
        .function_name(format!("{}-local-strip", stack.name))
        .send()
        .await
        .expect("the function exists");
    assert_eq!(function.memory_size(), Some(256));
    assert!(function.code_size() > 0, "the function has code");
    let secret = ssm()
        .get_parameter()
        .name(format!(
            "/{}/local/users/user-a/secret-access-key",
            stack.name
        ))
        .with_decryption(true)
        .send()
        .await
        .expect("user-a's secret is in SSM");
    let secret = secret
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .to_owned();
    assert!(!secret.is_empty());
    assert_eq!(
        secret_type(&format!(
            "/{}/local/users/user-a/secret-access-key",
            stack.name
        ))
        .await,
        "SecureString"
    );
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains(&secret)
            && !String::from_utf8_lossy(&again.stderr).contains(&secret),
        "the secret is never printed"
    );
    let versioning = s3()
        .get_bucket_versioning()
        .bucket(stack.source())
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let notifications = s3()
        .get_bucket_notification_configuration()
        .bucket(stack.source())
        .send()
        .await
        .unwrap();
    assert_eq!(notifications.lambda_function_configurations().len(), 1);

    // Change memory, a parameter value, a policy action; remove a parameter.
    stack.write(512, "v2", "s3:GetObjectVersion", false, true);
    let (plan, code) = stack.plan();
    assert_eq!(code, 2);
    let note = format!("parameter./{}/local/note", stack.name);
    let extra = format!("parameter./{}/local/extra", stack.name);
    let mut want = vec![
        ("update".to_owned(), "function.strip".to_owned()),
        ("update".to_owned(), note.clone()),
        ("delete".to_owned(), extra.clone()),
        ("update".to_owned(), "policy.user-b".to_owned()),
    ];
    let mut got = plan_changes(&plan);
    want.sort();
    got.sort();
    assert_eq!(got, want, "{plan:#}");
    assert_eq!(changed_properties(&plan, "function.strip"), ["memory"]);
    assert_eq!(changed_properties(&plan, &note), ["value"]);
    assert_eq!(changed_properties(&plan, "policy.user-b"), ["document"]);

    stack.deploy();
    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "converged after the change: {plan:#}");
    let function = lambda()
        .get_function_configuration()
        .function_name(format!("{}-local-strip", stack.name))
        .send()
        .await
        .unwrap();
    assert_eq!(function.memory_size(), Some(512));
    assert!(ssm()
        .get_parameter()
        .name(format!("/{}/local/extra", stack.name))
        .send()
        .await
        .is_err());

    // The destination holds a picture and is not force_destroy: destroy keeps it.
    stack.write(512, "v2", "s3:GetObjectVersion", false, false);
    s3().put_object()
        .bucket(stack.destination())
        .key("kept.jpg")
        .body(b"picture".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "destroy failed:\n{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty"),
        "destroy reports the kept bucket:\n{stderr}"
    );
    assert!(
        bucket_exists(&stack.destination()).await,
        "a non-empty bucket without force_destroy is kept"
    );
    assert!(
        !bucket_exists(&stack.source()).await,
        "the force_destroy bucket is gone"
    );
    assert!(iam()
        .get_user()
        .user_name(format!("{}-local-user-a", stack.name))
        .send()
        .await
        .is_err());
    assert!(iam()
        .get_role()
        .role_name(format!("{}-local-strip-role", stack.name))
        .send()
        .await
        .is_err());
    assert!(lambda()
        .get_function()
        .function_name(format!("{}-local-strip", stack.name))
        .send()
        .await
        .is_err());
    assert!(ssm()
        .get_parameter()
        .name(format!(
            "/{}/local/users/user-a/secret-access-key",
            stack.name
        ))
        .send()
        .await
        .is_err());

    // Safe to re-run: the kept bucket is reported again, nothing fails.
    let out = stack.run("destroy", &["--yes"]);
    assert!(
        out.status.success(),
        "second destroy failed:\n{}",
        text(&out)
    );
    assert!(bucket_exists(&stack.destination()).await);
}

async fn secret_type(name: &str) -> String {
    let described = ssm()
        .get_parameter()
        .name(name)
        .send()
        .await
        .expect("parameter exists");
    described
        .parameter()
        .and_then(|p| p.r#type())
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_made_outside_the_tool_shows_as_updates() {
    let stack = TestStack::new("drift");
    stack.deploy();
    let (_, code) = stack.plan();
    assert_eq!(code, 0);

    s3().put_bucket_versioning()
        .bucket(stack.source())
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ssm()
        .put_parameter()
        .name(format!("/{}/local/note", stack.name))
        .value("edited in the console")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    lambda()
        .update_function_configuration()
        .function_name(format!("{}-local-strip", stack.name))
        .memory_size(1024)
        .send()
        .await
        .unwrap();

    let (plan, code) = stack.plan();
    assert_eq!(code, 2);
    let note = format!("parameter./{}/local/note", stack.name);
    let mut want = vec![
        ("update".to_owned(), "bucket.source".to_owned()),
        ("update".to_owned(), note.clone()),
        ("update".to_owned(), "function.strip".to_owned()),
    ];
    let mut got = plan_changes(&plan);
    want.sort();
    got.sort();
    assert_eq!(got, want, "{plan:#}");
    assert_eq!(changed_properties(&plan, "bucket.source"), ["versioning"]);
    assert_eq!(changed_properties(&plan, "function.strip"), ["memory"]);

    stack.deploy();
    let (_, code) = stack.plan();
    assert_eq!(code, 0, "deploy repaired the drift");
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn require_approval_broadening_stops_an_unattended_deploy_that_widens_access() {
    let stack = TestStack::new("approve");
    // A first deploy creates the users' and the role's grants: it broadens access.
    let out = stack.run("deploy", &["--yes", "--require-approval", "broadening"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("this plan broadens access") && stderr.contains("nothing changed"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broadens"),
        "the security summary marks what broadens:\n{}",
        text(&out)
    );
    assert!(!bucket_exists(&stack.source()).await, "nothing was created");
    stack.deploy();

    // A change that widens nothing (memory) goes through at the same level.
    stack.write(512, "v1", "s3:GetObject", true, true);
    let out = stack.run("deploy", &["--yes", "--require-approval", "broadening"]);
    assert!(out.status.success(), "{}", text(&out));
    // user-b gaining s3:DeleteObject does not.
    stack.write(512, "v1", "s3:DeleteObject", true, true);
    let out = stack.run("deploy", &["--yes", "--require-approval", "broadening"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (_, code) = stack.plan();
    assert_eq!(code, 2, "the policy change is still pending");
    stack.destroy();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_stops_a_second_deploy_until_force_unlock() {
    let stack = TestStack::new("lock");
    let state_bucket = format!("stripstack-state-{ACCOUNT}-{}", stripstack_tests::REGION);
    // The state bucket may not exist yet in this emulator: make it as deploy would (an
    // "already owned" answer is fine).
    let _ = s3()
        .create_bucket()
        .bucket(&state_bucket)
        .set_create_bucket_configuration(stripstack_tests::bucket_location())
        .send()
        .await;
    let holder = serde_json::json!({
        "who": "alice", "host": "build-server-7", "pid": 4242, "since": 1_700_000_000u64, "operation": "deploy"
    });
    s3().put_object()
        .bucket(&state_bucket)
        .key(format!("{}/local/lock.json", stack.name))
        .body(holder.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();

    let out = stack.run("deploy", &["--yes"]);
    assert!(!out.status.success(), "deploy must fail on a held lock");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("alice@build-server-7") && stderr.contains("--force-unlock"),
        "the error names the holder and the way out:\n{stderr}"
    );
    assert!(!bucket_exists(&stack.source()).await, "nothing was created");

    let out = stack.run("deploy", &["--yes", "--force-unlock"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(bucket_exists(&stack.source()).await);
    // The lock is released after a deploy.
    assert!(s3()
        .head_object()
        .bucket(&state_bucket)
        .key(format!("{}/local/lock.json", stack.name))
        .send()
        .await
        .is_err());
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_deploy_is_resumed_without_duplicates() {
    let stack = TestStack::new("kill");
    // Build everything first (cargo xtask bundles), so the kill lands in the AWS phase.
    let (_, code) = stack.plan();
    assert_eq!(code, 2);
    let binary = xtask::workspace::target_dir().join("debug").join("xtask");
    let path = stack.path.to_string_lossy().into_owned();
    let mut child = std::process::Command::new(&binary)
        .args(["deploy", "--env", "local", "--stack", &path, "--yes"])
        .envs(stripstack_tests::aws_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the xtask binary");
    // Kill it as soon as the state records a first resource: mid-way.
    let state_bucket = format!("stripstack-state-{ACCOUNT}-{}", stripstack_tests::REGION);
    let key = format!("{}/local/state.json", stack.name);
    let started = std::time::Instant::now();
    loop {
        if let Ok(out) = s3()
            .get_object()
            .bucket(&state_bucket)
            .key(&key)
            .send()
            .await
        {
            let body = out.body.collect().await.unwrap().into_bytes();
            let state: Value = serde_json::from_slice(&body).unwrap();
            if state["resources"].as_array().is_some_and(|r| !r.is_empty()) {
                break;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "the deploy never recorded a resource"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the deploy ended before it could be killed: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9 the deploy");
    child.wait().expect("reap the killed deploy");

    // Re-run: the dead holder's lock is broken, and the deploy converges.
    stack.deploy();
    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "converged after resume: {plan:#}");
    let keys = iam()
        .list_access_keys()
        .user_name(format!("{}-local-user-a", stack.name))
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.access_key_metadata().len(),
        1,
        "exactly one access key"
    );
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_and_refused_once_the_cloud_changed() {
    let stack = TestStack::new("saved");
    let plan_file = stack.path.with_extension("plan.json");
    let plan_path = plan_file.to_string_lossy().into_owned();
    // Bundle first so the saved plan records the code hash deploy will use.
    let out = xtask(&["bundle"]).output().expect("bundle");
    assert!(out.status.success(), "{}", text(&out));
    let out = stack.run("plan", &["--out", &plan_path]);
    assert!(out.status.success(), "{}", text(&out));
    let out = stack.run("deploy", &["--plan", &plan_path]);
    assert!(
        out.status.success(),
        "applying the saved plan failed:\n{}",
        text(&out)
    );
    let (_, code) = stack.plan();
    assert_eq!(code, 0);

    // A new plan, then drift before applying it: the saved plan no longer holds.
    stack.write(384, "v1", "s3:GetObject", true, true);
    let out = stack.run("plan", &["--out", &plan_path]);
    assert!(out.status.success(), "{}", text(&out));
    ssm()
        .put_parameter()
        .name(format!("/{}/local/note", stack.name))
        .value("changed meanwhile")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let out = stack.run("deploy", &["--plan", &plan_path]);
    assert!(!out.status.success(), "a stale plan must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("changed since this plan was saved"),
        "{}",
        text(&out)
    );
    let function = lambda()
        .get_function_configuration()
        .function_name(format!("{}-local-strip", stack.name))
        .send()
        .await
        .unwrap();
    assert_eq!(function.memory_size(), Some(256), "nothing was applied");
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_entries_of_others_survive_deploy_and_destroy() {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
        NotificationConfigurationFilter, S3KeyFilter,
    };
    let stack = TestStack::new("notif");
    stack.deploy();
    // Someone else's entry on the same bucket: another prefix, an id that is not ours.
    let current = s3()
        .get_bucket_notification_configuration()
        .bucket(stack.source())
        .send()
        .await
        .unwrap();
    let ours = current.lambda_function_configurations().to_vec();
    let theirs = LambdaFunctionConfiguration::builder()
        .id("audit-hook")
        .lambda_function_arn(ours[0].lambda_function_arn())
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("audit/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .unwrap();
    s3().put_bucket_notification_configuration()
        .bucket(stack.source())
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_lambda_function_configurations(Some([ours, vec![theirs]].concat()))
                .build(),
        )
        .send()
        .await
        .unwrap();

    // A change to our trigger rewrites our entries only.
    let yaml = std::fs::read_to_string(&stack.path).unwrap();
    std::fs::write(
        &stack.path,
        yaml.replace("suffixes: [.jpg]", "suffixes: [.jpg, .jpeg]"),
    )
    .unwrap();
    stack.deploy();
    let after = s3()
        .get_bucket_notification_configuration()
        .bucket(stack.source())
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = after
        .lambda_function_configurations()
        .iter()
        .filter_map(|c| c.id())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 3, "ours (one per suffix) and theirs: {ids:?}");
    assert_eq!(ids[0], "audit-hook", "theirs is kept");
    assert!(ids[1..].iter().all(|id| id.starts_with("stripstack-")));

    // Removing our trigger removes our entries only.
    let yaml = std::fs::read_to_string(&stack.path).unwrap();
    let without_trigger = yaml.replace(
        "    triggers:\n      - { bucket: source, events: [created], prefix: uploads/, suffixes: [.jpg, .jpeg] }\n",
        "",
    );
    assert_ne!(
        yaml, without_trigger,
        "the trigger was removed from the stack"
    );
    std::fs::write(&stack.path, without_trigger).unwrap();
    stack.deploy();
    let after = s3()
        .get_bucket_notification_configuration()
        .bucket(stack.source())
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = after
        .lambda_function_configurations()
        .iter()
        .filter_map(|c| c.id())
        .collect();
    assert_eq!(ids, ["audit-hook"]);
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_bucket_not_tagged_for_the_stack_is_not_adopted() {
    let stack = TestStack::new("adopt");
    s3().create_bucket()
        .bucket(stack.source())
        .set_create_bucket_configuration(stripstack_tests::bucket_location())
        .send()
        .await
        .unwrap();
    let out = stack.run("deploy", &["--yes"]);
    assert!(
        !out.status.success(),
        "deploy must refuse a bucket that is not ours"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to adopt"), "{}", text(&out));
    assert!(
        !bucket_exists(&stack.destination()).await,
        "nothing else was created"
    );

    // Tagged for this stack and env, it is taken over.
    s3().put_bucket_tagging()
        .bucket(stack.source())
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("stack")
                        .value(&stack.name)
                        .build()
                        .unwrap(),
                )
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("env")
                        .value("local")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    stack.deploy();
    let (_, code) = stack.plan();
    assert_eq!(code, 0);
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_updates_prune_old_versions_below_the_limit() {
    let clients = xtask::aws::Clients::new(&stripstack_tests::config());
    let ctx = xtask::resources::ReadCtx {
        stack: "prune".into(),
        env: "local".into(),
        account: ACCOUNT.into(),
        region: stripstack_tests::REGION.into(),
    };
    let name = unique("prune");
    let desired = |n: usize| {
        xtask::resources::Desired {
        address: xtask::resources::Address::new(xtask::resources::Kind::Policy, "p"),
        physical: name.clone(),
        props: [
            (
                "document".to_owned(),
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::bucket-{n}/*")]}]}),
            ),
            ("tags".to_owned(), serde_json::json!({})),
        ]
        .into_iter()
        .collect(),
        depends_on: Vec::new(),
        retain: false,
    }
    };
    xtask::resources::policy::create(&clients, &ctx, &desired(0))
        .await
        .unwrap();
    for n in 1..8 {
        let have = xtask::resources::policy::read(&clients, &ctx, &name)
            .await
            .unwrap();
        xtask::resources::policy::update(&clients, &ctx, &desired(n), have.as_ref())
            .await
            .unwrap();
    }
    let arn = xtask::resources::policy::arn(&ctx, &name);
    let versions = iam()
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(
        versions.versions().len() <= 5,
        "IAM keeps at most 5 versions: {}",
        versions.versions().len()
    );
    let have = xtask::resources::policy::read(&clients, &ctx, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        have.props["document"],
        xtask::resources::policy_doc::normalize_policy(&desired(7).props["document"]),
        "the newest document is the default version"
    );
    xtask::resources::policy::delete(&clients, &ctx, &name)
        .await
        .unwrap();
    assert!(iam().get_policy().policy_arn(&arn).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_concurrent_deploys_one_fails_on_the_lock() {
    let stack = TestStack::new("race");
    // Build first (plan runs the xtask binary), then start both deploys at the same instant.
    let (_, code) = stack.plan();
    assert_eq!(code, 2);
    let binary = xtask::workspace::target_dir().join("debug").join("xtask");
    let path = stack.path.to_string_lossy().into_owned();
    let spawn = || {
        std::process::Command::new(&binary)
            .args(["deploy", "--env", "local", "--stack", &path, "--yes"])
            .envs(stripstack_tests::aws_env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the xtask binary")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [
        first.wait_with_output().expect("first deploy"),
        second.wait_with_output().expect("second deploy"),
    ];
    let succeeded = outputs.iter().filter(|o| o.status.success()).count();
    let locked_out: Vec<&Output> = outputs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!(
        succeeded,
        1,
        "exactly one deploy wins: {}",
        outputs.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(locked_out.len(), 1);
    let stderr = String::from_utf8_lossy(&locked_out[0].stderr);
    assert!(
        stderr.contains("is locked by"),
        "the loser names the holder:\n{stderr}"
    );
    let (_, code) = stack.plan();
    assert_eq!(code, 0, "the winner converged");
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The addresses (`kind.name`) the state document of the stack records.
async fn recorded(stack: &TestStack) -> Vec<String> {
    let out = s3()
        .get_object()
        .bucket(format!(
            "stripstack-state-{ACCOUNT}-{}",
            stripstack_tests::REGION
        ))
        .key(format!("{}/local/state.json", stack.name))
        .send()
        .await
        .expect("the state document");
    let body = out.body.collect().await.unwrap().into_bytes();
    let state: Value = serde_json::from_slice(&body).unwrap();
    state["resources"]
        .as_array()
        .expect("recorded resources")
        .iter()
        .map(|r| {
            format!(
                "{}.{}",
                r["address"]["kind"].as_str().unwrap(),
                r["address"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// A recorded resource that is gone (deleted by hand, or by a run killed before it saved
/// the state) is forgotten by the next deploy instead of being kept in the state forever.
#[tokio::test(flavor = "multi_thread")]
async fn records_of_resources_gone_from_the_cloud_are_forgotten() {
    let stack = TestStack::new("gone");
    stack.deploy();
    let extra = format!("/{}/local/extra", stack.name);
    let address = format!("parameter.{extra}");
    assert!(recorded(&stack).await.contains(&address));

    // Out of the stack, and deleted behind the deployer's back.
    stack.write(256, "v1", "s3:GetObject", false, true);
    ssm().delete_parameter().name(&extra).send().await.unwrap();
    let (plan, code) = stack.plan();
    assert_eq!(code, 0, "nothing to do: {plan:#}");
    assert!(
        recorded(&stack).await.contains(&address),
        "plan is read-only"
    );

    stack.deploy();
    let now = recorded(&stack).await;
    assert!(!now.contains(&address), "{now:?}");
    assert!(now.contains(&"bucket.source".to_owned()), "{now:?}");
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The function's reserved concurrency, as Lambda has it (`None`: the unreserved pool).
async fn reserved_concurrency(function: &str) -> Option<i32> {
    lambda()
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await
        .expect("GetFunctionConcurrency")
        .reserved_concurrent_executions()
}

/// `functions.<name>.reserved_concurrency` is reserved on deploy, shown by a plan when it
/// changes, and released when the stack drops it; the plan after each deploy is empty.
#[tokio::test(flavor = "multi_thread")]
async fn reserved_concurrency_is_reserved_and_released() {
    let stack = TestStack::new("concurrency");
    let function = format!("{}-local-strip", stack.name);
    let unreserved = std::fs::read_to_string(&stack.path).expect("the test stack");
    let reserved = unreserved.replacen(
        "    timeout: 30\n",
        "    timeout: 30\n    reserved_concurrency: 5\n",
        1,
    );
    assert_ne!(
        reserved, unreserved,
        "the stack has a function to reserve for"
    );
    std::fs::write(&stack.path, &reserved).expect("write the stack");

    let out = stack.run("deploy", &["--yes"]);
    assert!(out.status.success(), "deploy:\n{}", text(&out));
    assert_eq!(reserved_concurrency(&function).await, Some(5));
    let out = stack.run("plan", &["--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after deploy:\n{}",
        text(&out)
    );

    std::fs::write(&stack.path, &unreserved).expect("write the stack");
    let out = stack.run("plan", &["--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a change to plan:\n{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reserved_concurrency"),
        "the plan names the change:\n{}",
        text(&out)
    );
    let out = stack.run("deploy", &["--yes"]);
    assert!(out.status.success(), "deploy:\n{}", text(&out));
    assert_eq!(reserved_concurrency(&function).await, None);
    let out = stack.run("plan", &["--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after release:\n{}",
        text(&out)
    );

    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "destroy:\n{}", text(&out));
}

/// The function's log group as CloudWatch Logs has it: retention in days and tags, or `None`
/// when there is no such group.
async fn log_group(name: &str) -> Option<(Option<i32>, std::collections::HashMap<String, String>)> {
    let logs = xtask::aws::Clients::new(&stripstack_tests::config()).logs;
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .expect("DescribeLogGroups");
    let group = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))?;
    let arn = format!(
        "arn:aws:logs:{}:{ACCOUNT}:log-group:{name}",
        stripstack_tests::REGION
    );
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("ListTagsForResource");
    Some((
        group.retention_in_days(),
        tags.tags().cloned().unwrap_or_default(),
    ))
}

/// The function's log group is the stack's: made with the stack's retention (30 days by
/// default) and tags — taking over the untagged one Lambda makes when a function logs before
/// its group exists — and deleted by `destroy`.
#[tokio::test(flavor = "multi_thread")]
async fn the_function_log_group_gets_retention_and_goes_with_destroy() {
    let stack = TestStack::new("loggroup");
    let group = format!("/aws/lambda/{}-local-strip", stack.name);
    // What Lambda does on a first invocation when nobody made the group: no tags, no
    // retention.
    xtask::aws::Clients::new(&stripstack_tests::config())
        .logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");

    let out = stack.run("deploy", &["--yes"]);
    assert!(out.status.success(), "deploy:\n{}", text(&out));
    let (retention, tags) = log_group(&group).await.expect("the log group");
    assert_eq!(retention, Some(30), "the default retention");
    assert_eq!(tags.get("stack"), Some(&stack.name), "{tags:?}");
    assert_eq!(
        tags.get("env").map(String::as_str),
        Some("local"),
        "{tags:?}"
    );
    let out = stack.run("plan", &["--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after deploy:\n{}",
        text(&out)
    );

    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "destroy:\n{}", text(&out));
    assert!(log_group(&group).await.is_none(), "the log group is gone");
}
