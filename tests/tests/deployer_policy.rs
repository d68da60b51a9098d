//! `cargo xtask deployer-policy` grants what the deployer needs and no more: an IAM user
//! holding only that policy deploys the pipeline-shaped stack, plans it empty and destroys
//! it, on the emulator, which enforces identity policies (`AUTH=true`); the same user
//! without one of its actions is refused at once, with AWS's AccessDenied, not retried.
//!
//! MiniStack resolves no IAM-specific condition keys (`iam:PolicyARN`,
//! `iam:PassedToService`: a condition on an unknown key never matches there), so the user's
//! copy of the policy drops its `Condition` blocks; the conditions themselves are checked by
//! the policy's snapshot test (`commands/deployer_policy.rs`) and are AWS's documented keys.

use std::process::Command;

use serde_json::Value;
use stripstack_tests::{iam, output_text, unique, xtask, TestStack};

/// The policy `deployer-policy` prints for `stack`, without its conditions.
fn policy_for(stack: &TestStack) -> Value {
    let path = stack.path.to_string_lossy().into_owned();
    let out = xtask(&["deployer-policy", "--env", "local", "--stack", &path])
        .output()
        .expect("run cargo xtask");
    assert!(
        out.status.success(),
        "deployer-policy failed:\n{}",
        output_text(&out)
    );
    let mut policy: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output_text(&out)));
    for statement in policy["Statement"].as_array_mut().expect("statements") {
        statement
            .as_object_mut()
            .expect("an object")
            .remove("Condition");
    }
    policy
}

/// An IAM user of the emulator with `policy` alone; returns its access key and secret.
async fn user_with(policy: &Value) -> (String, String) {
    let iam = iam();
    let name = unique("deployer");
    iam.create_user()
        .user_name(&name)
        .send()
        .await
        .expect("CreateUser");
    iam.put_user_policy()
        .user_name(&name)
        .policy_name("deployer")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutUserPolicy");
    let key = iam
        .create_access_key()
        .user_name(&name)
        .send()
        .await
        .expect("CreateAccessKey");
    let key = key.access_key().expect("a key");
    (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    )
}

/// `cargo xtask COMMAND --env local --stack … ARGS` as the given user.
fn as_user(stack: &TestStack, (id, secret): &(String, String), args: &[&str]) -> Command {
    let path = stack.path.to_string_lossy().into_owned();
    let mut all = vec![args[0], "--env", "local", "--stack", &path];
    all.extend_from_slice(&args[1..]);
    let mut command = xtask(&all);
    command
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deployer_policy_is_enough_to_deploy_plan_and_destroy() {
    let stack = TestStack::new("policy");
    let policy = policy_for(&stack);
    let deployer = user_with(&policy).await;

    let out = as_user(&stack, &deployer, &["deploy", "--yes"])
        .output()
        .expect("run deploy");
    assert!(
        out.status.success(),
        "deploy as the deployer:\n{}",
        output_text(&out)
    );
    let out = as_user(&stack, &deployer, &["plan", "--detailed-exitcode"])
        .output()
        .expect("run plan");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan after deploy is empty:\n{}",
        output_text(&out)
    );
    let out = as_user(&stack, &deployer, &["destroy", "--yes"])
        .output()
        .expect("run destroy");
    assert!(
        out.status.success(),
        "destroy as the deployer:\n{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_one_of_its_actions_the_deploy_is_refused_at_once() {
    let stack = TestStack::new("policy-less");
    let mut policy = policy_for(&stack);
    let mut removed = false;
    for statement in policy["Statement"].as_array_mut().expect("statements") {
        let actions = statement["Action"].as_array_mut().expect("actions");
        let before = actions.len();
        actions.retain(|a| a != "iam:CreateRole");
        removed |= actions.len() < before;
    }
    assert!(removed, "the policy grants iam:CreateRole");
    let deployer = user_with(&policy).await;

    let out = as_user(&stack, &deployer, &["deploy", "--yes"])
        .output()
        .expect("run deploy");
    let text = output_text(&out);
    assert!(
        !out.status.success(),
        "deploy without iam:CreateRole:\n{text}"
    );
    assert!(
        text.contains("AccessDenied") && text.contains("iam:CreateRole"),
        "the error names the refusal and the action:\n{text}"
    );
    assert!(
        !text.contains("waiting for"),
        "an AccessDenied is not waited out:\n{text}"
    );
    // What it did create is removed with the full policy's rights (the admin's).
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "destroy:\n{}", output_text(&out));
}
