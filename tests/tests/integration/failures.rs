//! Nothing lost, everything visible, end to end on the private emulator with the real
//! `bootstrap`: a PNG named `.jpg`, a truncated JPEG and a transient S3 failure (the
//! destination made unwritable to the function's role by a bucket policy) each become a
//! record that `cargo xtask failures` shows; `--retry`, once the destination is writable
//! again, turns the transient one into a stripped copy; `logs` shows the function's lines;
//! `invoke` runs it on one key; `--purge` drops records; `destroy` leaves no queue or log
//! group behind.
//!
//! The emulator retries a failed asynchronous invocation after 1 s and 2 s (AWS: about 1 and
//! 2 minutes), so the transient failure reaches the queue in seconds.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use stripstack_tests::{output_text as text, s3, TestStack, ACCOUNT};

/// Longest wait for the records to arrive; the bound only stops a broken run.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(120);

fn corpus(name: &str) -> Vec<u8> {
    let path = xtask::workspace::root()
        .join("tests/fixtures/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn failures(stack: &TestStack, extra: &[&str]) -> std::process::Output {
    stack.run("failures", extra)
}

/// `failures --json`'s records.
fn records(stack: &TestStack) -> Vec<Value> {
    let out = failures(stack, &["--json"]);
    assert!(out.status.success(), "failures --json:\n{}", text(&out));
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    value["records"].as_array().cloned().unwrap_or_default()
}

fn by_key<'a>(records: &'a [Value], key: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["key"] == key)
}

async fn upload(bucket: &str, key: &str, body: Vec<u8>) {
    s3().put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_failed_uploads_are_recorded_retried_and_purged() {
    let stack = TestStack::new("failures");
    let out = stack.deploy();
    assert!(out.status.success(), "deploy:\n{}", text(&out));
    let (source, destination) = (stack.source(), stack.destination());
    let role = format!(
        "arn:aws:iam::{ACCOUNT}:role/{}-local-strip-role",
        stack.name
    );

    // The destination refuses the function's writes: a transient failure (a policy fixed
    // later), which Lambda retries and then hands to the on-failure destination.
    let deny = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TestMakesTheDestinationUnwritable",
            "Effect": "Deny",
            "Principal": {"AWS": role},
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{destination}/*"),
        }]
    });
    s3().put_bucket_policy()
        .bucket(&destination)
        .policy(deny.to_string())
        .send()
        .await
        .expect("PutBucketPolicy");

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    upload(&source, "uploads/png.jpg", png).await;
    upload(&source, "uploads/cut.jpg", corpus("truncated_jpeg.jpg")).await;
    upload(&source, "uploads/good.jpg", corpus("DSCN0010.jpg")).await;

    let started = Instant::now();
    let all = loop {
        let all = records(&stack);
        if ["uploads/png.jpg", "uploads/cut.jpg", "uploads/good.jpg"]
            .iter()
            .all(|key| by_key(&all, key).is_some())
        {
            break all;
        }
        assert!(
            started.elapsed() < ARRIVAL_TIMEOUT,
            "not every record arrived: {all:#?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let png = by_key(&all, "uploads/png.jpg").expect("png");
    assert_eq!(png["kind"], "refused", "{png}");
    assert_eq!(png["reason"], "not_a_jpeg", "{png}");
    assert_eq!(png["retryable"], false);
    let cut = by_key(&all, "uploads/cut.jpg").expect("cut");
    assert_eq!(cut["kind"], "refused", "{cut}");
    assert_eq!(cut["reason"], "corrupt_jpeg", "{cut}");
    let good = by_key(&all, "uploads/good.jpg").expect("good");
    assert_eq!(good["kind"], "failed", "{good}");
    assert_eq!(good["retryable"], true, "{good}");
    assert!(
        good["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("RetriesExhausted")),
        "{good}"
    );
    assert_eq!(all.len(), 3, "one record each: {all:#?}");
    // Reading them consumed nothing.
    assert_eq!(records(&stack).len(), 3);

    // The table, for a person.
    let out = failures(&stack, &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("KEY") && table.contains("uploads/png.jpg") && table.contains("not_a_jpeg"),
        "{}",
        text(&out)
    );

    // Fixed: the destination takes writes again; the failed event is re-run, the refusals
    // stay for a person.
    s3().delete_bucket_policy()
        .bucket(&destination)
        .send()
        .await
        .expect("DeleteBucketPolicy");
    let out = failures(&stack, &["--retry"]);
    assert!(out.status.success(), "failures --retry:\n{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uploads/good.jpg: retried"),
        "{}",
        text(&out)
    );
    let copy = s3()
        .head_object()
        .bucket(&destination)
        .key("uploads/good.jpg")
        .send()
        .await;
    assert!(copy.is_ok(), "the retried picture was stripped: {copy:?}");
    let left = records(&stack);
    assert_eq!(left.len(), 2, "the handled record is gone: {left:#?}");
    assert!(by_key(&left, "uploads/good.jpg").is_none());

    // `logs` shows the function's lines, formatted.
    let out = stack.run("logs", &["--since", "30m"]);
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "logs:\n{}", text(&out));
    assert!(
        lines.contains("rejected")
            && lines.contains("uploads/png.jpg")
            && lines.contains("not_a_jpeg"),
        "{}",
        text(&out)
    );

    // `invoke` re-runs one key: the copy is already of this upload, so it is skipped.
    let out = stack.run("invoke", &["--key", "uploads/good.jpg"]);
    assert!(out.status.success(), "invoke:\n{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok"),
        "{}",
        text(&out)
    );

    // A person looked: drop one, then the rest.
    let out = failures(&stack, &["--purge", "uploads/png.jpg"]);
    assert!(out.status.success(), "--purge:\n{}", text(&out));
    let left = records(&stack);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["key"], "uploads/cut.jpg");
    let out = failures(&stack, &["--all"]);
    assert!(out.status.success(), "--all:\n{}", text(&out));
    assert!(records(&stack).is_empty());

    let out = stack.destroy();
    assert!(out.status.success(), "destroy:\n{}", text(&out));
    let queue = stripstack_tests::sqs()
        .get_queue_url()
        .queue_name(format!("{}-local-failures", stack.name))
        .send()
        .await;
    assert!(queue.is_err(), "the queue is gone: {queue:?}");
    let groups = stripstack_tests::logs()
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{}-local-strip", stack.name))
        .send()
        .await
        .expect("DescribeLogGroups");
    assert!(groups.log_groups().is_empty(), "the log group is gone");
}
