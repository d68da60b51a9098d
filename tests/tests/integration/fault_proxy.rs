//! The fault proxy against this binary's emulator: every fault it injects must reach the SDK
//! as the error code the real service sends (and be retried by the SDK when the real one
//! would be), every consistency window must hold for its duration and then let requests
//! through, a seed must fix the fault sequence, and latency-only mode must change nothing but
//! timing. SDK clients here have retries disabled unless a test says otherwise, so each
//! request is seen exactly once.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use stripstack_tests::fault_proxy::{self, Fault, FaultConfig, FaultProxy, FaultStats};
use stripstack_tests::{unique, REGION};

/// SDK configuration for `endpoint` (the proxy) with retries disabled.
fn config(endpoint: &str) -> SdkConfig {
    stripstack_tests::sdk_config(endpoint, REGION)
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}

struct Clients {
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    ssm: aws_sdk_ssm::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    cloudformation: aws_sdk_cloudformation::Client,
}

impl Clients {
    fn new(config: &SdkConfig) -> Clients {
        Clients {
            s3: stripstack_tests::s3_with(config),
            iam: aws_sdk_iam::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            cloudformation: aws_sdk_cloudformation::Client::new(config),
        }
    }

    /// Clients of the proxy at `endpoint`, retries disabled.
    fn through(endpoint: &str) -> Clients {
        Clients::new(&config(endpoint))
    }

    /// Clients of the emulator itself, to see what really reached it.
    fn direct() -> Clients {
        Clients::new(&stripstack_tests::config())
    }
}

/// `(error code, HTTP status)` of a failed SDK call; panics if it succeeded.
macro_rules! failure {
    ($call:expr) => {{
        let err = $call
            .await
            .expect_err(concat!(stringify!($call), " should fail"));
        (
            err.code().map(str::to_string),
            err.raw_response()
                .map(|response| response.status().as_u16()),
        )
    }};
}

fn code(code: &str, status: u16) -> (Option<String>, Option<u16>) {
    (Some(code.to_string()), Some(status))
}

/// A proxy with only the given fault fraction(s) and window.
fn proxy(throttle: f64, server_error: f64, window: Duration) -> (FaultProxy, String) {
    fault_proxy::start(FaultConfig {
        seed: 1,
        throttle,
        server_error,
        consistency_window: window,
        latency: Duration::ZERO,
    })
}

/// Sleeps until `window` has passed since `since`, plus a margin for a loaded machine.
async fn outlast(window: Duration, since: Instant) {
    let deadline = since + window + Duration::from_millis(300);
    tokio::time::sleep_until(deadline.into()).await;
}

#[tokio::test]
async fn each_service_throttles_with_its_own_error_code() {
    let (proxy, endpoint) = proxy(1.0, 0.0, Duration::ZERO);
    let aws = Clients::through(&endpoint);

    assert_eq!(
        failure!(aws.iam.list_users().send()),
        code("Throttling", 400)
    );
    assert_eq!(
        failure!(aws.sts.get_caller_identity().send()),
        code("Throttling", 400)
    );
    assert_eq!(
        failure!(aws.cloudformation.describe_stacks().send()),
        code("Throttling", 400)
    );
    assert_eq!(
        failure!(aws.ssm.describe_parameters().send()),
        code("ThrottlingException", 400)
    );
    assert_eq!(
        failure!(aws.logs.describe_log_groups().send()),
        code("ThrottlingException", 400)
    );
    assert_eq!(
        failure!(aws.sqs.list_queues().send()),
        code("ThrottlingException", 400)
    );
    assert_eq!(
        failure!(aws.lambda.list_functions().send()),
        code("TooManyRequestsException", 429)
    );
    assert_eq!(
        failure!(aws.s3.list_buckets().send()),
        code("SlowDown", 503)
    );

    let stats = proxy.stats();
    assert_eq!(stats.throttled, 8, "{stats:?}");
    assert_eq!(
        stats.forwarded, 0,
        "a throttled request never reaches the emulator"
    );
}

#[tokio::test]
async fn the_sdk_retries_every_throttle_and_5xx_it_is_given() {
    // The standard retry mode retries throttling and transient errors only: three attempts
    // per call prove the SDK classified each answer as the real service's would be.
    for (throttle, server_error, fault) in
        [(1.0, 0.0, Fault::Throttled), (0.0, 1.0, Fault::ServerError)]
    {
        let (proxy, endpoint) = proxy(throttle, server_error, Duration::ZERO);
        let retrying = stripstack_tests::sdk_config(&endpoint, REGION)
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        let aws = Clients::new(&retrying);
        let mut before = proxy.stats();
        let mut attempts = |name: &str| {
            let now = proxy.stats();
            let made = now.since(&before).count(fault);
            before = now;
            assert_eq!(made, 3, "{name}: {made} attempts at {fault:?}");
        };
        assert!(aws.iam.list_users().send().await.is_err());
        attempts("iam");
        assert!(aws.sts.get_caller_identity().send().await.is_err());
        attempts("sts");
        assert!(aws.cloudformation.describe_stacks().send().await.is_err());
        attempts("cloudformation");
        assert!(aws.ssm.describe_parameters().send().await.is_err());
        attempts("ssm");
        assert!(aws.logs.describe_log_groups().send().await.is_err());
        attempts("logs");
        assert!(aws.sqs.list_queues().send().await.is_err());
        attempts("sqs");
        assert!(aws.lambda.list_functions().send().await.is_err());
        attempts("lambda");
        assert!(aws.s3.list_buckets().send().await.is_err());
        attempts("s3");
    }
}

#[tokio::test]
async fn server_errors_come_in_each_services_shape() {
    let (proxy, endpoint) = proxy(0.0, 1.0, Duration::ZERO);
    let aws = Clients::through(&endpoint);
    // 500 or 503 is drawn per request; each service has its own code for a 500.
    let expect = |got: (Option<String>, Option<u16>), internal: &str| {
        let allowed = [code(internal, 500), code("ServiceUnavailable", 503)];
        assert!(allowed.contains(&got), "{got:?} is none of {allowed:?}");
    };
    for _ in 0..4 {
        expect(failure!(aws.iam.list_users().send()), "InternalFailure");
        expect(
            failure!(aws.sts.get_caller_identity().send()),
            "InternalFailure",
        );
        expect(
            failure!(aws.cloudformation.describe_stacks().send()),
            "InternalFailure",
        );
        expect(
            failure!(aws.ssm.describe_parameters().send()),
            "InternalServerError",
        );
        expect(
            failure!(aws.logs.describe_log_groups().send()),
            "ServiceUnavailableException",
        );
        expect(failure!(aws.sqs.list_queues().send()), "InternalFailure");
        expect(
            failure!(aws.lambda.list_functions().send()),
            "ServiceException",
        );
        expect(failure!(aws.s3.list_buckets().send()), "InternalError");
    }
    assert_eq!(proxy.stats().server_errors, 32);
}

#[tokio::test]
async fn a_new_bucket_is_missing_until_its_window_ends() {
    let window = Duration::from_secs(4);
    let (proxy, endpoint) = proxy(0.0, 0.0, window);
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let bucket = unique("fp-nosuchbucket");

    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let created = Instant::now();
    let tagging = || {
        aws_sdk_s3::types::Tagging::builder()
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("stack")
                    .value("fault-proxy")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    assert_eq!(
        failure!(aws
            .s3
            .put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tagging())
            .send()),
        code("NoSuchBucket", 404)
    );
    // HEAD answers carry no body: the SDK reports S3's 404 as NotFound.
    assert_eq!(
        failure!(aws.s3.head_bucket().bucket(&bucket).send()),
        code("NotFound", 404)
    );
    assert!(
        direct
            .s3
            .get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .map(|tags| tags.tag_set().is_empty())
            .unwrap_or(true),
        "the refused PutBucketTagging must not reach the emulator"
    );
    assert!(
        created.elapsed() < window,
        "the test was too slow to observe the window"
    );

    outlast(window, created).await;
    aws.s3
        .put_bucket_tagging()
        .bucket(&bucket)
        .tagging(tagging())
        .send()
        .await
        .expect("the bucket is found once its window has passed");
    let tags = direct
        .s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .expect("tags applied");
    assert_eq!(tags.tag_set().len(), 1);
    let stats = proxy.stats();
    assert_eq!(stats.no_such_bucket, 2, "{stats:?}");
    assert_eq!(
        stats.forwarded, 2,
        "CreateBucket and the late PutBucketTagging: {stats:?}"
    );
}

const ASSUME_BY_LAMBDA: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

#[tokio::test]
async fn iam_entities_are_not_found_until_their_window_ends() {
    let window = Duration::from_secs(4);
    let (proxy, endpoint) = proxy(0.0, 0.0, window);
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let user = unique("fp-user");
    let old_user = unique("fp-old-user");
    let role = unique("fp-role");
    let policy = unique("fp-policy");

    direct
        .iam
        .create_user()
        .user_name(&old_user)
        .send()
        .await
        .expect("create a user outside the proxy");
    aws.iam
        .create_user()
        .user_name(&user)
        .send()
        .await
        .expect("create user");
    let policy_arn = aws
        .iam
        .create_policy()
        .policy_name(&policy)
        .policy_document(READ_ONLY)
        .send()
        .await
        .expect("create policy")
        .policy()
        .and_then(|policy| policy.arn())
        .expect("the policy's ARN")
        .to_string();
    let role_arn = aws
        .iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(ASSUME_BY_LAMBDA)
        .send()
        .await
        .expect("create role")
        .role()
        .map(|role| role.arn().to_string())
        .expect("the role's ARN");
    let created = Instant::now();

    assert_eq!(
        failure!(aws.iam.create_access_key().user_name(&user).send()),
        code("NoSuchEntity", 404)
    );
    let tag = aws_sdk_iam::types::Tag::builder()
        .key("stack")
        .value("fault-proxy")
        .build()
        .unwrap();
    assert_eq!(
        failure!(aws.iam.tag_user().user_name(&user).tags(tag.clone()).send()),
        code("NoSuchEntity", 404)
    );
    let err = aws
        .iam
        .attach_user_policy()
        .user_name(&old_user)
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect_err("a just-created policy is not attachable yet");
    assert_eq!(err.code(), Some("NoSuchEntity"));
    assert_eq!(
        err.message(),
        Some(format!("Policy {policy_arn} does not exist or is not attachable.").as_str())
    );
    assert_eq!(
        failure!(aws
            .iam
            .put_role_policy()
            .role_name(&role)
            .policy_name("inline")
            .policy_document(READ_ONLY)
            .send()),
        code("NoSuchEntity", 404)
    );
    let err = aws
        .lambda
        .create_function()
        .function_name(unique("fp-fn"))
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role_arn)
        .code(function_code())
        .send()
        .await
        .expect_err("Lambda cannot assume a just-created role");
    assert_eq!(err.code(), Some("InvalidParameterValueException"));
    assert_eq!(
        err.message(),
        Some("The role defined for the function cannot be assumed by Lambda.")
    );
    let keys = direct
        .iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .expect("list access keys");
    assert!(
        keys.access_key_metadata().is_empty(),
        "a refused CreateAccessKey must not reach the emulator"
    );
    assert!(created.elapsed() < window, "too slow to observe the window");

    outlast(window, created).await;
    aws.iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .expect("the user is found once its window has passed");
    aws.iam
        .tag_user()
        .user_name(&user)
        .tags(tag)
        .send()
        .await
        .expect("tag user");
    aws.iam
        .attach_user_policy()
        .user_name(&old_user)
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("attach policy");
    aws.iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("inline")
        .policy_document(READ_ONLY)
        .send()
        .await
        .expect("put role policy");
    let stats = proxy.stats();
    assert_eq!(stats.iam_no_such_entity, 4, "{stats:?}");
    assert_eq!(stats.role_not_assumable, 1, "{stats:?}");
    let keys = direct
        .iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .expect("list access keys");
    assert_eq!(keys.access_key_metadata().len(), 1, "created exactly once");
}

/// A Lambda zip holding one executable `bootstrap` that never serves an event (these tests
/// never invoke it).
fn function_code() -> aws_sdk_lambda::types::FunctionCode {
    use zip::write::SimpleFileOptions;

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).expect("zip entry");
    zip.write_all(b"#!/bin/sh\nexit 0\n").expect("zip write");
    let bytes = zip.finish().expect("zip finish").into_inner();
    aws_sdk_lambda::types::FunctionCode::builder()
        .zip_file(aws_sdk_lambda::primitives::Blob::new(bytes))
        .build()
}

#[tokio::test]
async fn functions_are_pending_then_updating_and_waiters_wait() {
    use aws_sdk_lambda::client::Waiters as _;

    let window = Duration::from_secs(3);
    let (proxy, endpoint) = proxy(0.0, 0.0, window);
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let function = unique("fp-fn");
    let role_arn = direct
        .iam
        .create_role()
        .role_name(unique("fp-fn-role"))
        .assume_role_policy_document(ASSUME_BY_LAMBDA)
        .send()
        .await
        .expect("create role outside the proxy")
        .role()
        .map(|role| role.arn().to_string())
        .expect("the role's ARN");

    aws.lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role_arn)
        .code(function_code())
        .send()
        .await
        .expect("create function");
    let created = Instant::now();
    let update = |timeout: i32| {
        aws.lambda
            .update_function_configuration()
            .function_name(&function)
            .timeout(timeout)
            .send()
    };
    let err = update(10)
        .await
        .expect_err("an update while Pending conflicts");
    assert_eq!(err.code(), Some("ResourceConflictException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(409));
    let message = err.message().unwrap_or_default();
    assert!(
        message.starts_with(
            "The operation cannot be performed at this time. An update is in progress for \
             resource: arn:aws:lambda:"
        ) && message.ends_with(&format!(":function:{function}")),
        "{message}"
    );
    let read = aws
        .lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .expect("get function");
    let configuration = read.configuration().expect("a configuration");
    assert_eq!(
        configuration.state(),
        Some(&aws_sdk_lambda::types::State::Pending)
    );
    assert_eq!(
        configuration.last_update_status(),
        Some(&aws_sdk_lambda::types::LastUpdateStatus::InProgress)
    );
    assert!(created.elapsed() < window, "too slow to observe the window");

    // The SDK's waiter polls GetFunction until Active: it must wait out the window.
    aws.lambda
        .wait_until_function_active_v2()
        .function_name(&function)
        .wait(Duration::from_secs(60))
        .await
        .expect("the function becomes active");
    assert!(
        created.elapsed() >= window,
        "the waiter returned after {:?}, inside the {window:?} window",
        created.elapsed()
    );
    update(11).await.expect("an update once Active");
    let updated = Instant::now();
    let err = update(12)
        .await
        .expect_err("an update while InProgress conflicts");
    assert_eq!(err.code(), Some("ResourceConflictException"));
    let read = aws
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .expect("get function configuration");
    assert_eq!(
        read.last_update_status(),
        Some(&aws_sdk_lambda::types::LastUpdateStatus::InProgress)
    );
    aws.lambda
        .wait_until_function_updated_v2()
        .function_name(&function)
        .wait(Duration::from_secs(60))
        .await
        .expect("the update completes");
    assert!(updated.elapsed() >= window);
    update(12)
        .await
        .expect("an update once the last one completed");

    let direct_read = direct
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .expect("get function configuration");
    assert_eq!(direct_read.timeout(), Some(12), "each update applied once");
    let stats = proxy.stats();
    assert_eq!(stats.function_update_conflicts, 2, "{stats:?}");
    assert!(stats.function_states_rewritten >= 4, "{stats:?}");
}

#[tokio::test]
async fn notifications_fail_validation_until_the_permission_propagates() {
    let window = Duration::from_secs(3);
    let (proxy, endpoint) = proxy(0.0, 0.0, window);
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let bucket = unique("fp-notify");
    let function = unique("fp-notified");
    direct
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket outside the proxy");
    let role_arn = direct
        .iam
        .create_role()
        .role_name(unique("fp-notified-role"))
        .assume_role_policy_document(ASSUME_BY_LAMBDA)
        .send()
        .await
        .expect("create role")
        .role()
        .map(|role| role.arn().to_string())
        .expect("the role's ARN");
    let function_arn = direct
        .lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role_arn)
        .code(function_code())
        .send()
        .await
        .expect("create function outside the proxy")
        .function_arn()
        .expect("the function's ARN")
        .to_string();

    aws.lambda
        .add_permission()
        .function_name(&function)
        .statement_id("s3-invoke")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn(format!("arn:aws:s3:::{bucket}"))
        .send()
        .await
        .expect("add permission");
    let added = Instant::now();
    let notification = || {
        aws_sdk_s3::types::NotificationConfiguration::builder()
            .lambda_function_configurations(
                aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
                    .id("strip")
                    .lambda_function_arn(&function_arn)
                    .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let err = aws
        .s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(notification())
        .send()
        .await
        .expect_err("the new permission cannot be validated yet");
    assert_eq!(err.code(), Some("InvalidArgument"));
    assert_eq!(
        err.message(),
        Some("Unable to validate the following destination configurations")
    );
    assert!(added.elapsed() < window, "too slow to observe the window");

    outlast(window, added).await;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(notification())
        .send()
        .await
        .expect("validated once the permission has propagated");
    assert_eq!(proxy.stats().notification_unvalidated, 1);
}

#[tokio::test]
async fn bucket_configuration_reads_are_stale_after_a_write() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };

    let window = Duration::from_secs(3);
    let (proxy, endpoint) = proxy(0.0, 0.0, window);
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let bucket = unique("fp-stale");
    direct
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket outside the proxy");

    // The proxy learns the pre-write answer from a read, as a plan makes one.
    let before = failure!(aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send());
    assert_eq!(before, code("NoSuchLifecycleConfiguration", 404));
    let rule = LifecycleRule::builder()
        .id("expire")
        .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(7).build())
        .build()
        .unwrap();
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put lifecycle");
    let written = Instant::now();
    assert_eq!(
        failure!(aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()),
        code("NoSuchLifecycleConfiguration", 404),
        "a read right after the write still sees the old answer"
    );
    let applied = direct
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect("the write reached the emulator");
    assert_eq!(applied.rules().len(), 1);
    assert!(written.elapsed() < window, "too slow to observe the window");

    outlast(window, written).await;
    let after = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect("the new rules are read once the window has passed");
    assert_eq!(
        after.rules().first().and_then(|rule| rule.id()),
        Some("expire")
    );
    assert_eq!(proxy.stats().stale_reads, 1);
}

/// The outcome of each request through a proxy, in order.
fn outcomes(proxy: &FaultProxy) -> Vec<(String, Option<Fault>)> {
    proxy
        .events()
        .into_iter()
        .map(|event| {
            (
                format!("{}:{}", event.service, event.operation),
                event.fault,
            )
        })
        .collect()
}

/// Calls through `endpoint`, one operation after another (`order` says which).
async fn mixed_calls(endpoint: &str, order: &[usize]) {
    let aws = Clients::through(endpoint);
    for &which in order {
        // Results are ignored: the proxy's log says what happened.
        match which {
            0 => drop(aws.s3.list_buckets().send().await),
            1 => drop(aws.iam.list_users().send().await),
            2 => drop(aws.ssm.describe_parameters().send().await),
            3 => drop(aws.sts.get_caller_identity().send().await),
            _ => drop(aws.lambda.list_functions().send().await),
        }
    }
}

#[tokio::test]
async fn a_seed_fixes_the_faults_of_each_operation() {
    let faulty = |seed| FaultConfig {
        seed,
        throttle: 0.3,
        server_error: 0.1,
        ..FaultConfig::default()
    };
    let interleaved: Vec<usize> = (0..40).map(|i| i % 5).collect();
    let (first, first_endpoint) = fault_proxy::start(faulty(42));
    let (again, again_endpoint) = fault_proxy::start(faulty(42));
    let (other, other_endpoint) = fault_proxy::start(faulty(43));
    mixed_calls(&first_endpoint, &interleaved).await;
    mixed_calls(&again_endpoint, &interleaved).await;
    mixed_calls(&other_endpoint, &interleaved).await;
    assert_eq!(outcomes(&first), outcomes(&again), "same seed, same faults");
    assert_ne!(
        outcomes(&first),
        outcomes(&other),
        "another seed, other faults"
    );
    assert!(
        outcomes(&first).iter().any(|(_, fault)| fault.is_some())
            && outcomes(&first).iter().any(|(_, fault)| fault.is_none()),
        "40 calls at 40 % faults should see both outcomes: {:?}",
        outcomes(&first)
    );

    // Faults are drawn per operation: the same calls in another interleaving get the same
    // faults, operation by operation (parallel requests cannot reshuffle them).
    let grouped: Vec<usize> = (0..40).map(|i| i / 8).collect();
    let (regrouped, regrouped_endpoint) = fault_proxy::start(faulty(42));
    mixed_calls(&regrouped_endpoint, &grouped).await;
    let by_operation = |outcomes: Vec<(String, Option<Fault>)>| {
        let mut map = std::collections::BTreeMap::<String, Vec<Option<Fault>>>::new();
        for (operation, fault) in outcomes {
            map.entry(operation).or_default().push(fault);
        }
        map
    };
    assert_eq!(
        by_operation(outcomes(&first)),
        by_operation(outcomes(&regrouped))
    );
}

#[tokio::test]
async fn latency_only_mode_is_transparent() {
    let latency = Duration::from_millis(40);
    let (proxy, endpoint) = fault_proxy::start(FaultConfig::latency_only(latency));
    let aws = Clients::through(&endpoint);
    let direct = Clients::direct();
    let bucket = unique("fp-latency");
    let started = Instant::now();

    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    // Large enough to stream through in many chunks; bytes that are not text.
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("dir/picture one.jpg")
        .body(body.clone().into())
        .send()
        .await
        .expect("put object");
    let object = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("dir/picture one.jpg")
        .send()
        .await
        .expect("get object");
    let got = object.body.collect().await.expect("read body").into_bytes();
    assert!(
        got.as_ref() == body.as_slice(),
        "the object changed on the way"
    );
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("dir/picture one.jpg")
        .send()
        .await
        .expect("head object");
    assert_eq!(head.content_length(), Some(body.len() as i64));

    let through = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect("caller identity");
    let straight = direct
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect("caller identity");
    assert_eq!(through.account(), straight.account());
    let user = unique("fp-latency-user");
    aws.iam
        .create_user()
        .user_name(&user)
        .send()
        .await
        .expect("create user");
    aws.iam
        .tag_user()
        .user_name(&user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("tag user: no consistency window in latency-only mode");
    let name = format!("/{}/note", unique("fp-latency"));
    aws.ssm
        .put_parameter()
        .name(&name)
        .value("hello")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put parameter");
    let parameter = aws
        .ssm
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("get parameter");
    assert_eq!(parameter.parameter().and_then(|p| p.value()), Some("hello"));

    let stats = proxy.stats();
    assert_eq!(stats.injected_errors(), 0, "{stats:?}");
    assert_eq!(stats.forwarded, stats.requests, "{stats:?}");
    assert_eq!(stats.requests, 9, "{stats:?}");
    assert!(proxy.events().iter().all(|event| event.fault.is_none()));
    assert!(
        started.elapsed() >= latency * 9,
        "9 requests took {:?}, less than 9 × {latency:?}",
        started.elapsed()
    );
}

/// Sends raw bytes to the proxy and returns everything it answers (the request must ask for
/// the connection to close).
fn raw_exchange(endpoint: &str, request: &[u8]) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    // The proxy closes the connection after answering (Connection: close, or a parse error).
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn malformed_requests_are_refused_with_a_400() {
    let (proxy, endpoint) = proxy(0.0, 0.0, Duration::from_secs(3));
    let broken_scope = raw_exchange(
        &endpoint,
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=nonsense, \
          Signature=x\r\nConnection: close\r\n\r\n",
    );
    assert!(broken_scope.starts_with("HTTP/1.1 400"), "{broken_scope}");
    assert!(
        broken_scope.contains("fault proxy: malformed request"),
        "{broken_scope}"
    );
    let no_action = raw_exchange(
        &endpoint,
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 \
          Credential=AKID/20240101/us-east-1/iam/aws4_request, Signature=x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 18\r\n\
          Connection: close\r\n\r\nVersion=2010-05-08",
    );
    assert!(no_action.starts_with("HTTP/1.1 400"), "{no_action}");
    let not_http = raw_exchange(&endpoint, b"\x16\x03\x01 not HTTP at all\r\n\r\n");
    assert!(not_http.starts_with("HTTP/1.1 400"), "{not_http}");
    // hyper answers what is not HTTP itself; the proxy counts it when the connection ends,
    // just after the answer went out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.stats().malformed < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = proxy.stats();
    assert_eq!(stats.malformed, 3, "{stats:?}");
    assert_eq!(stats.forwarded, 0, "{stats:?}");

    // And it still serves.
    let health = raw_exchange(
        &endpoint,
        b"GET /_ministack/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[test]
fn unsigned_requests_pass_through_untouched() {
    // Everything faulted, yet the emulator's health check (unsigned) goes through: `cargo
    // xtask --env local` checks it to decide whether to start an emulator.
    let (proxy, endpoint) = proxy(0.5, 0.5, Duration::from_secs(3));
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port");
    let emulator = xtask::emulator::Emulator::local(port);
    for _ in 0..5 {
        assert!(
            emulator.is_healthy(),
            "the health check failed through the proxy"
        );
    }
    let stats = proxy.stats();
    assert_eq!(stats.unsigned, 5, "{stats:?}");
    assert_eq!(stats.injected_errors(), 0, "{stats:?}");
}

#[test]
fn the_proxy_stops_when_dropped() {
    let (proxy, endpoint) = proxy(0.0, 0.0, Duration::ZERO);
    let addr = endpoint.trim_start_matches("http://").to_string();
    std::net::TcpStream::connect(&addr).expect("listening while alive");
    drop(proxy);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "still listening after drop"
    );
}

#[test]
fn xtask_env_points_only_the_endpoint_at_the_proxy() {
    let env = fault_proxy::xtask_env("http://127.0.0.1:1");
    let mut direct = stripstack_tests::aws_env();
    let replaced: Vec<_> = env.iter().filter(|pair| !direct.contains(pair)).collect();
    assert_eq!(
        replaced,
        [&("AWS_ENDPOINT_URL", "http://127.0.0.1:1".to_string())]
    );
    direct.retain(|(key, _)| *key != "AWS_ENDPOINT_URL");
    assert!(direct.iter().all(|pair| env.contains(pair)));
}

#[test]
fn cargo_xtask_plans_through_the_proxy() {
    // The deployer itself, through a latency-only proxy: every AWS call it makes is seen by
    // the proxy, and the plan is the one it makes against the emulator directly.
    let (proxy, endpoint) = fault_proxy::start(FaultConfig::latency_only(Duration::from_millis(5)));
    let stack = stripstack_tests::StackFile::new("fp-plan", &[]);
    std::fs::write(
        &stack.path,
        format!(
            "stack: {name}\nregion: {REGION}\nenvironments:\n  local:\n    \
             endpoint: http://127.0.0.1:4566\n    buckets:\n      \
             data: {{ tls_only: false }}\nbuckets:\n  data: {{}}\nparameters:\n  \
             \"/${{stack}}/${{env}}/note\": hello\n",
            name = stack.name
        ),
    )
    .expect("write the stack file");
    let path = stack.path.to_string_lossy().into_owned();
    let args = [
        "plan",
        "--env",
        "local",
        "--stack",
        path.as_str(),
        "--json",
        "--detailed-exitcode",
    ];
    let out = fault_proxy::xtask(&endpoint, &args)
        .output()
        .expect("run cargo xtask");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a plan with changes:\n{}",
        stripstack_tests::output_text(&out)
    );
    let through: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("plan --json prints JSON");
    let direct = stripstack_tests::xtask(&args)
        .output()
        .expect("run cargo xtask");
    let straight: serde_json::Value =
        serde_json::from_slice(&direct.stdout).expect("plan --json prints JSON");
    assert_eq!(
        stripstack_tests::plan_changes(&through),
        stripstack_tests::plan_changes(&straight)
    );
    let stats: FaultStats = proxy.stats();
    let services: std::collections::BTreeSet<String> = proxy
        .events()
        .into_iter()
        .map(|event| event.service)
        .collect();
    assert!(
        services.contains("sts") && services.contains("s3") && services.contains("ssm"),
        "the deployer's calls went through the proxy: {services:?} ({stats:?})"
    );
    assert_eq!(stats.injected_errors(), 0);
}
