//! `cargo xtask deployer-policy` grants what the deployer needs and no more: an IAM user
//! holding only that policy deploys the pipeline-shaped stack, plans it empty and destroys
//! it, on the emulator, which enforces identity policies (`AUTH=true`); the same user
//! without one of its actions is refused at once, with AWS's AccessDenied, not retried.
//!
//! Where MiniStack (1.5.33) authorizes differently from AWS, the user's copy of the policy is
//! adapted, and only there:
//! - it resolves no IAM-specific condition keys (`iam:PolicyARN`, `iam:PassedToService`: a
//!   condition on an unknown key never matches there), so the copy drops its `Condition`
//!   blocks; the conditions themselves are checked by the policy's snapshot test
//!   (`commands/deployer_policy.rs`) and are AWS's documented keys;
//! - it derives the resource of a request only from an ARN or name parameter it knows
//!   (`RoleName`, `UserName`, `PolicyArn`, a function name in the path), and authorizes the
//!   rest against `*`: `iam:CreatePolicy` (named by `PolicyName`), `lambda:CreateFunction`
//!   (named in its body) and `logs:DescribeLogGroups` (a name prefix). AWS authorizes them
//!   against the policy's and the function's ARN and `log-group:*`, which is what the policy
//!   grants; the copy grants these on `*` as well ([`EMULATOR_UNSCOPED`]).

use std::process::Command;

use serde_json::Value;
use stripstack_tests::{iam, output_text, unique, xtask, TestStack};

/// Actions MiniStack authorizes against `*` (see the module's documentation).
const EMULATOR_UNSCOPED: [&str; 3] = [
    "iam:CreatePolicy",
    "lambda:CreateFunction",
    "logs:DescribeLogGroups",
];

/// The policy `deployer-policy` prints for `stack` (every managed policy it is split into,
/// `--part 1`, `--part 2`, …, joined: the emulator does not limit an inline policy's size),
/// adapted to the emulator's authorization (see the module's documentation).
fn policy_for(stack: &TestStack) -> Value {
    let path = stack.path.to_string_lossy().into_owned();
    let mut all = Vec::new();
    for part in 1.. {
        let part = part.to_string();
        let out = xtask(&[
            "deployer-policy",
            "--env",
            "local",
            "--stack",
            &path,
            "--part",
            &part,
        ])
        .output()
        .expect("run cargo xtask");
        if !out.status.success() {
            assert!(
                part != "1" && output_text(&out).contains("there are"),
                "deployer-policy --part {part} failed:\n{}",
                output_text(&out)
            );
            break;
        }
        let document: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output_text(&out)));
        all.extend(
            document["Statement"]
                .as_array()
                .cloned()
                .expect("statements"),
        );
    }
    let mut policy = serde_json::json!({ "Version": "2012-10-17", "Statement": all });
    let statements = policy["Statement"].as_array_mut().expect("statements");
    let mut granted = Vec::new();
    for statement in statements.iter_mut() {
        statement
            .as_object_mut()
            .expect("an object")
            .remove("Condition");
        for action in EMULATOR_UNSCOPED {
            let listed = statement["Action"]
                .as_array()
                .is_some_and(|actions| actions.iter().any(|a| a == action));
            if listed && !granted.contains(&action) {
                granted.push(action);
            }
        }
    }
    assert_eq!(
        granted.len(),
        EMULATOR_UNSCOPED.len(),
        "the policy grants {EMULATOR_UNSCOPED:?} on the stack's resources"
    );
    statements.push(serde_json::json!({
        "Sid": "EmulatorAuthorizesTheseOnAnyResource",
        "Effect": "Allow",
        "Action": granted,
        "Resource": "*",
    }));
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
    // The deployer's waits read `waiting for … (attempt N…)` (cargo's own "Blocking waiting
    // for file lock" lines are not one).
    assert!(
        !text
            .lines()
            .any(|line| line.contains("waiting for") && line.contains("(attempt ")),
        "an AccessDenied is not waited out:\n{text}"
    );
    // What it did create is removed with the full policy's rights (the admin's).
    let out = stack.run("destroy", &["--yes"]);
    assert!(out.status.success(), "destroy:\n{}", output_text(&out));
}
