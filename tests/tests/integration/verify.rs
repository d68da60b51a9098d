//! `cargo xtask verify` against this binary's private emulator: a unique copy of the real
//! pipeline stack (`stacks/exif-pipeline.yaml`) is deployed, verified (every check passes),
//! broken out of band in three places (verify must fail naming each), and destroyed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use stripstack_tests::{iam, output_text as text, s3, unique, xtask};

const ACCOUNT: &str = "000000000000";

/// The pipeline stack under a unique name, in the harness's region (the emulator keeps
/// buckets and functions per region, and the harness's clients look in `REGION`).
fn write_stack(name: &str) -> PathBuf {
    let root = xtask::workspace::root();
    let original = std::fs::read_to_string(root.join("stacks/exif-pipeline.yaml"))
        .expect("read stacks/exif-pipeline.yaml");
    let copy = original
        .replacen("\nstack: exif-pipeline\n", &format!("\nstack: {name}\n"), 1)
        .replacen(
            "\nregion: eu-west-2\n",
            &format!("\nregion: {}\n", stripstack_tests::REGION),
            1,
        );
    assert!(
        copy.contains(&format!("\nstack: {name}\n"))
            && copy.contains(&format!("\nregion: {}\n", stripstack_tests::REGION)),
        "stacks/exif-pipeline.yaml no longer has the `stack:` and `region:` lines this test renames"
    );
    let dir = xtask::workspace::target_dir().join("test-stacks");
    std::fs::create_dir_all(&dir).expect("create target/test-stacks");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, copy).expect("write the test stack");
    path
}

fn run(command: &str, stack: &str, extra: &[&str]) -> Output {
    let mut args = vec![command, "--env", "local", "--stack", stack];
    args.extend_from_slice(extra);
    xtask(&args).output().expect("run cargo xtask")
}

/// check name → (result, detail), from verify's table.
fn table(out: &Output) -> BTreeMap<String, (String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    let result_at = header
        .find("result")
        .unwrap_or_else(|| panic!("no table header:\n{}", text(out)));
    lines
        .filter(|line| line.is_char_boundary(result_at))
        .filter_map(|line| {
            let (check, rest) = line.split_at(result_at);
            let (result, detail) = rest.split_once(' ')?;
            // The summary line after the table has no result column.
            ["PASS", "FAIL", "SKIP"].contains(&result).then_some(())?;
            Some((
                check.trim().to_owned(),
                (result.to_owned(), detail.trim().to_owned()),
            ))
        })
        .collect()
}

/// Every version of every object in `bucket`, as `key`.
async fn objects(bucket: &str) -> Vec<String> {
    let out = s3()
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .expect("list object versions");
    out.versions()
        .iter()
        .filter_map(|v| v.key())
        .chain(out.delete_markers().iter().filter_map(|m| m.key()))
        .map(str::to_owned)
        .collect()
}

/// Every check verify runs on the pipeline stack.
const CHECKS: &[&str] = &[
    "source bucket: private",
    "source bucket: encrypted",
    "source bucket: versioned",
    "source bucket: SSM parameter",
    "destination bucket: private",
    "destination bucket: encrypted",
    "destination bucket: versioned",
    "destination bucket: SSM parameter",
    "source bucket: trigger",
    "strip role: declared policy only",
    "strip role: cannot write source bucket",
    "user-a: list source",
    "user-a: read source",
    "user-a: write source",
    "user-a: cannot write destination",
    "user-b: list destination",
    "user-b: read destination",
    "user-b: cannot write destination",
    "user-b: cannot read source",
    "pipeline: stripped copy appears",
    "pipeline: no metadata left",
    "pipeline: image data identical",
    "pipeline: orientation kept",
    "pipeline: non-JPEG refused",
    "pipeline: refusal recorded",
    "pipeline: renditions upright, resized, clean",
    "strip function: log retention",
    "strip function: failed events kept",
    "clean-up of test objects",
];

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_on_a_fresh_deploy_and_names_what_was_broken() {
    let name = unique("verify");
    let path = write_stack(&name);
    let stack = path.to_string_lossy().into_owned();
    let (source, destination) = (
        format!("{name}-source-local-{ACCOUNT}"),
        format!("{name}-destination-local-{ACCOUNT}"),
    );

    let out = run("deploy", &stack, &["--yes"]);
    assert!(out.status.success(), "deploy failed:\n{}", text(&out));

    // A fresh deploy passes every check.
    let out = run("verify", &stack, &[]);
    assert!(out.status.success(), "verify failed:\n{}", text(&out));
    let rows = table(&out);
    let names: Vec<&str> = rows.keys().map(String::as_str).collect();
    let mut want = CHECKS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{}", text(&out));
    for (check, (result, detail)) in &rows {
        assert_eq!(result, "PASS", "{check}: {detail}\n{}", text(&out));
    }
    assert!(
        rows["strip role: cannot write source bucket"]
            .1
            .contains("SimulatePrincipalPolicy"),
        "the emulator answers policy simulations: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting up to 60 s"),
        "verify says what it waits for:\n{}",
        text(&out)
    );
    // Nothing left behind: every version of every test object is gone.
    assert_eq!(objects(&source).await, Vec::<String>::new());
    assert_eq!(objects(&destination).await, Vec::<String>::new());

    // Break three things out of band, as a console user might.
    let iam = iam();
    // 1. user-b may now write the destination bucket.
    let policy = iam
        .create_policy()
        .policy_name(format!("{name}-b-writes"))
        .policy_document(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": format!("arn:aws:s3:::{destination}/*"),
                }],
            })
            .to_string(),
        )
        .send()
        .await
        .expect("create policy");
    let policy_arn = policy
        .policy()
        .and_then(|p| p.arn())
        .expect("policy arn")
        .to_owned();
    let user_b = format!("{name}-local-user-b");
    iam.attach_user_policy()
        .user_name(&user_b)
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("attach policy to user-b");
    // 2. The function's role may now write the bucket it reads.
    iam.put_role_policy()
        .role_name(format!("{name}-local-strip-role"))
        .policy_name("console-edit")
        .policy_document(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": format!("arn:aws:s3:::{source}/*"),
                }],
            })
            .to_string(),
        )
        .send()
        .await
        .expect("add an inline policy to the role");
    // 3. Uploads no longer invoke the function.
    s3().put_bucket_notification_configuration()
        .bucket(&source)
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .expect("remove the bucket notification");

    let out = run("verify", &stack, &["--timeout", "3"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify must fail:\n{}",
        text(&out)
    );
    let rows = table(&out);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, (result, _))| result != "PASS")
        .map(|(check, _)| check.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "pipeline: image data identical",
            "pipeline: no metadata left",
            "pipeline: non-JPEG refused",
            "pipeline: orientation kept",
            "pipeline: refusal recorded",
            "pipeline: renditions upright, resized, clean",
            "pipeline: stripped copy appears",
            "source bucket: trigger",
            "strip role: cannot write source bucket",
            "strip role: declared policy only",
            "user-b: cannot write destination",
        ],
        "{}",
        text(&out)
    );
    assert_eq!(rows["pipeline: stripped copy appears"].0, "FAIL");
    assert_eq!(rows["pipeline: orientation kept"].0, "SKIP");
    assert!(
        rows["user-b: cannot write destination"]
            .1
            .contains("allowed"),
        "{}",
        text(&out)
    );
    assert!(
        rows["strip role: declared policy only"]
            .1
            .contains("console-edit"),
        "{}",
        text(&out)
    );
    // Cleaned up after a failed run too, user-b's successful write included.
    assert_eq!(rows["clean-up of test objects"].0, "PASS");
    assert_eq!(objects(&source).await, Vec::<String>::new());
    assert_eq!(objects(&destination).await, Vec::<String>::new());

    // Undo what destroy does not know about, then destroy.
    iam.detach_user_policy()
        .user_name(&user_b)
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("detach policy");
    iam.delete_policy()
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("delete policy");
    iam.delete_role_policy()
        .role_name(format!("{name}-local-strip-role"))
        .policy_name("console-edit")
        .send()
        .await
        .expect("delete the extra role policy");
    let out = run("destroy", &stack, &["--yes"]);
    assert!(out.status.success(), "destroy failed:\n{}", text(&out));
}
