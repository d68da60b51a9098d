//! `cargo xtask reconcile` end to end on the private emulator, with the real `bootstrap`:
//! pictures uploaded while the trigger is gone are found missing and repaired; a second run
//! has nothing to do; an overwritten source is found stale (by its copy's stamp, the listings
//! cannot tell) and repaired; a copy without a source is an orphan, reported and kept.
//! Above `--batch-threshold` the repair is an S3 Batch Operations job, which the emulator does
//! not serve: the handler's side of it is checked by invoking the deployed function with the
//! events a job sends (the job's creation is tested against recorded responses, in
//! `xtask/src/resources/batch_job.rs`).

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use stripstack_tests::{output_text as text, s3, TestStack};

/// Pictures uploaded before the repair.
const PICTURES: usize = 500;
const REPAIR_TIMEOUT: Duration = Duration::from_secs(300);

fn corpus(name: &str) -> Vec<u8> {
    let path = xtask::workspace::root()
        .join("tests/fixtures/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `reconcile --json [extra]`'s one report (the stack has one function with one trigger).
fn reconcile(stack: &TestStack, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = stack.run("reconcile", &args);
    assert!(out.status.success(), "reconcile {extra:?}:\n{}", text(&out));
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    value["reconciled"][0].clone()
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

/// Waits until `reconcile --dry-run` finds nothing missing or stale.
async fn until_repaired(stack: &TestStack) -> Value {
    let started = Instant::now();
    loop {
        let report = reconcile(stack, &["--dry-run"]);
        if report["missing"] == 0 && report["stale"] == 0 && report["renditions_missing"] == 0 {
            return report;
        }
        assert!(
            started.elapsed() < REPAIR_TIMEOUT,
            "not repaired in time: {report:#}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_stale_copies_are_found_and_repaired() {
    let stack = TestStack::new("reconcile");
    // A thumbnail beside each original: reconcile repairs a missing rendition too.
    let yaml = std::fs::read_to_string(&stack.path).expect("the test stack");
    let with_thumb = yaml.replacen(
        "    timeout: 30\n",
        "    timeout: 30\n    renditions: [{ name: thumb, max_edge: 64, quality: 80, prefix: thumbs/ }]\n",
        1,
    );
    assert_ne!(
        yaml, with_thumb,
        "the stack has a function to add a rendition to"
    );
    std::fs::write(&stack.path, with_thumb).expect("write the test stack");
    let out = stack.deploy();
    assert!(out.status.success(), "deploy:\n{}", text(&out));
    let (source, destination) = (stack.source(), stack.destination());

    // Uploads while the trigger is gone: nobody strips them.
    s3().put_bucket_notification_configuration()
        .bucket(&source)
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .expect("remove the trigger");
    let picture = corpus("DSCN0010.jpg");
    for i in 0..PICTURES {
        upload(&source, &format!("uploads/p{i:03}.jpg"), picture.clone()).await;
    }
    // Not a picture key of the trigger (suffix): ignored.
    upload(&source, "uploads/notes.txt", b"text".to_vec()).await;

    let counted = reconcile(&stack, &["--dry-run"]);
    assert_eq!(counted["missing"], PICTURES, "{counted:#}");
    assert_eq!(counted["up_to_date"], 0);
    assert_eq!(counted["invoked"], 0, "a dry run invokes nothing");
    assert_eq!(counted["sample"]["missing"][0], "uploads/p000.jpg");

    let repaired = reconcile(&stack, &[]);
    assert_eq!(repaired["invoked"], PICTURES, "{repaired:#}");
    let done = until_repaired(&stack).await;
    assert_eq!(done["up_to_date"], PICTURES, "{done:#}");
    assert_eq!(done["stamps_read"], 0, "the listings sufficed: {done:#}");

    // One source overwritten (another picture): its copy is older than it, and its stamp
    // names the old ETag.
    upload(&source, "uploads/p007.jpg", corpus("hopper.jpg")).await;
    // A copy without a source.
    upload(&destination, "uploads/orphan.jpg", picture.clone()).await;
    let found = reconcile(&stack, &["--dry-run", "--batch-threshold", "0"]);
    assert_eq!(found["stale"], 1, "{found:#}");
    assert_eq!(found["sample"]["stale"][0], "uploads/p007.jpg");
    assert_eq!(found["orphans"], 1, "{found:#}");
    assert_eq!(found["stamps_read"], 1, "only the undecided copy was read");
    // Above the threshold the repair is a Batch Operations job: not on the emulator, and
    // said so rather than half done.
    let out = stack.run("reconcile", &["--batch-threshold", "0"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("raise --batch-threshold"),
        "{}",
        text(&out)
    );
    let repaired = reconcile(&stack, &[]);
    assert_eq!(repaired["invoked"], 1, "{repaired:#}");
    let done = until_repaired(&stack).await;
    assert_eq!(done["up_to_date"], PICTURES);
    assert_eq!(done["orphans"], 1, "orphans are reported, never deleted");

    // A thumbnail lost: its original is up to date, the rendition is made again.
    s3().delete_object()
        .bucket(&destination)
        .key("thumbs/uploads/p003.jpg")
        .send()
        .await
        .expect("delete a thumbnail");
    let found = reconcile(&stack, &["--dry-run"]);
    assert_eq!(found["renditions_missing"], 1, "{found:#}");
    assert_eq!(found["sample"]["renditions_missing"][0], "uploads/p003.jpg");
    assert_eq!(found["missing"], 0, "{found:#}");
    let repaired = reconcile(&stack, &[]);
    assert_eq!(repaired["invoked"], 1, "{repaired:#}");
    let done = until_repaired(&stack).await;
    assert_eq!(done["up_to_date"], PICTURES, "{done:#}");
    s3().head_object()
        .bucket(&destination)
        .key("thumbs/uploads/p003.jpg")
        .send()
        .await
        .expect("the thumbnail is back");

    // The function as a Batch Operations job invokes it: one task per invocation, the key
    // URL-encoded as in the manifest.
    upload(&source, "uploads/batch one.jpg", picture.clone()).await;
    upload(&source, "uploads/fake.jpg", b"not a picture".to_vec()).await;
    let function = function_name(&stack).await;
    let stripped = batch_task(&function, &source, "uploads/batch%20one.jpg").await;
    assert_eq!(stripped["resultCode"], "Succeeded", "{stripped:#}");
    assert!(text_of(&stripped).starts_with("stripped: "), "{stripped:#}");
    let copy = s3()
        .head_object()
        .bucket(&destination)
        .key("uploads/batch one.jpg")
        .send()
        .await
        .expect("the task wrote the stripped copy");
    assert!(
        copy.metadata()
            .is_some_and(|m| m.contains_key("source-etag")),
        "stamped: {copy:?}"
    );
    let again = batch_task(&function, &source, "uploads/batch%20one.jpg").await;
    assert_eq!(again["resultCode"], "Succeeded", "{again:#}");
    assert!(
        text_of(&again).starts_with("skipped: "),
        "a copy of this version is not rewritten: {again:#}"
    );
    let refused = batch_task(&function, &source, "uploads/fake.jpg").await;
    assert_eq!(refused["resultCode"], "PermanentFailure", "{refused:#}");
    assert!(text_of(&refused).starts_with("not_a_jpeg: "), "{refused:#}");

    let out = stack.destroy();
    assert!(out.status.success(), "destroy:\n{}", text(&out));
}

fn text_of(result: &Value) -> String {
    result["resultString"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The deployed function of the stack (its name starts with the stack's).
async fn function_name(stack: &TestStack) -> String {
    let functions = stripstack_tests::lambda()
        .list_functions()
        .send()
        .await
        .expect("ListFunctions");
    functions
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .find(|name| name.starts_with(stack.name.as_str()))
        .unwrap_or_else(|| panic!("no function of {}", stack.name))
        .to_owned()
}

/// Invokes `function` with a Batch Operations event (schema 2.0) for one object, and
/// returns the task's result.
async fn batch_task(function: &str, bucket: &str, raw_key: &str) -> Value {
    let event = serde_json::json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "invocation-1",
        "job": { "id": "job-1", "userArguments": {} },
        "tasks": [{ "taskId": "task-1", "s3Key": raw_key, "s3VersionId": null, "s3Bucket": bucket }]
    });
    let out = stripstack_tests::lambda()
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .expect("Invoke");
    assert!(out.function_error().is_none(), "{out:?}");
    let payload = out
        .payload()
        .map(|p| p.as_ref().to_vec())
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&payload)));
    assert_eq!(answer["invocationId"], "invocation-1", "{answer:#}");
    assert_eq!(
        answer["treatMissingKeysAs"], "PermanentFailure",
        "{answer:#}"
    );
    assert_eq!(
        answer["results"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );
    assert_eq!(answer["results"][0]["taskId"], "task-1");
    answer["results"][0].clone()
}
