//! Smoke test of the harness: the private emulator answers S3, STS and IAM with real values,
//! listens on 127.0.0.1 only and enforces IAM policies.

use aws_sdk_s3::primitives::ByteStream;
use stripstack_tests::{iam, s3, sts, unique};

#[test]
fn the_emulator_is_private_and_healthy() {
    let emulator = stripstack_tests::emulator();
    assert!(emulator.is_healthy());
    assert_eq!(
        stripstack_tests::endpoint(),
        format!("http://127.0.0.1:{}", emulator.port)
    );
    assert_ne!(emulator.port, xtask::emulator::DEFAULT_PORT);
    let pid = std::fs::read_to_string(emulator.pid_file()).expect("the pid file is written");
    assert!(pid.trim().parse::<u32>().is_ok(), "pid file holds {pid:?}");
}

#[test]
fn unique_names_are_distinct_and_bucket_safe() {
    let first = unique("My_Bucket");
    let second = unique("My_Bucket");
    assert_ne!(first, second);
    for name in [&first, &second] {
        assert!(name.starts_with("my-bucket-"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!((3..=63).contains(&name.len()), "{name}");
    }
}

#[tokio::test]
async fn s3_returns_the_object_it_stored() {
    let s3 = s3();
    let bucket = unique("smoke");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let body = b"hello from the harness\n".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("uploads/hello world.txt")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put object");

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key("uploads/hello world.txt")
        .send()
        .await
        .expect("get object");
    assert_eq!(object.content_length(), Some(body.len() as i64));
    let got = object.body.collect().await.expect("read body").into_bytes();
    assert_eq!(got.as_ref(), body.as_slice());

    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert!(buckets
        .buckets()
        .iter()
        .any(|listed| listed.name() == Some(bucket.as_str())));
}

#[tokio::test]
async fn sts_reports_a_twelve_digit_account() {
    let identity = sts()
        .get_caller_identity()
        .send()
        .await
        .expect("get caller identity");
    let account = identity.account().expect("an account id");
    assert_eq!(account.len(), 12, "{account}");
    assert!(account.chars().all(|c| c.is_ascii_digit()), "{account}");
    let arn = identity.arn().expect("an ARN");
    assert!(
        arn.starts_with(&format!("arn:aws:iam::{account}:")),
        "{arn}"
    );
}

#[tokio::test]
async fn iam_creates_a_user_whose_keys_are_denied_without_a_policy() {
    let iam = iam();
    let name = unique("smoke-user");
    let created = iam
        .create_user()
        .user_name(&name)
        .send()
        .await
        .expect("create user");
    let user = created.user().expect("the created user");
    assert_eq!(user.user_name(), name);
    assert!(
        user.arn().ends_with(&format!(":user/{name}")),
        "{}",
        user.arn()
    );
    let fetched = iam
        .get_user()
        .user_name(&name)
        .send()
        .await
        .expect("get user");
    assert_eq!(fetched.user().map(|user| user.arn()), Some(user.arn()));

    // The emulator runs with AUTH=true: a user with no policy is refused.
    let key = iam
        .create_access_key()
        .user_name(&name)
        .send()
        .await
        .expect("create access key");
    let key = key.access_key().expect("the new access key");
    let credentials = aws_sdk_s3::config::Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        None,
        None,
        "smoke-user",
    );
    let as_user = aws_sdk_s3::config::Builder::from(&stripstack_tests::config())
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    let denied = aws_sdk_s3::Client::from_conf(as_user)
        .list_buckets()
        .send()
        .await
        .expect_err("a user without policies must be denied");
    let denied = denied.into_service_error();
    assert_eq!(denied.meta().code(), Some("AccessDenied"), "{denied:?}");
}

#[test]
fn cargo_xtask_can_be_run_from_a_test() {
    let output = stripstack_tests::xtask(&["--help"])
        .output()
        .expect("run cargo xtask");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("emulator"), "{stdout}");
}

#[tokio::test]
async fn stopping_an_emulator_ends_the_function_processes_it_spawned() {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{Environment, FunctionCode, InvocationType, Runtime};

    let (emulator, guard) = stripstack_tests::private_emulator("stop");
    let config = stripstack_tests::sdk_config(&emulator.endpoint(), stripstack_tests::REGION);
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("function")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("create role");
    let role_arn = role.role().expect("the created role").arn().to_string();

    // A function process that never talks to the runtime API and never exits by itself.
    let pid_file = emulator.state_dir.join("bootstrap.pid");
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .create_function()
        .function_name("lingering")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role_arn)
        .timeout(300)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_bootstrap(
                    "#!/bin/sh\necho $$ > \"$PID_FILE\"\nwhile :; do sleep 1; done\n",
                )))
                .build(),
        )
        .environment(
            Environment::builder()
                .variables("PID_FILE", pid_file.display().to_string())
                .build(),
        )
        .send()
        .await
        .expect("create function");
    lambda
        .invoke()
        .function_name("lingering")
        .invocation_type(InvocationType::Event)
        .send()
        .await
        .expect("invoke");

    let mut pid = None;
    for _ in 0..150 {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = pid.expect("the bootstrap started within 15 s");
    assert!(alive(pid), "the bootstrap {pid} runs before the stop");

    drop(guard);
    let mut stopped = false;
    for _ in 0..200 {
        if !alive(pid) {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stopped, "the bootstrap {pid} outlived its emulator by 20 s");
    assert!(!emulator.is_healthy());
}

/// A Lambda zip holding one executable `bootstrap`.
fn zip_bootstrap(script: &str) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).expect("zip entry");
    zip.write_all(script.as_bytes()).expect("zip write");
    zip.finish().expect("zip finish").into_inner()
}

/// Whether `pid` is a live process (a zombie has already exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}
