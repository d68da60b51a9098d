//! The deployer against an emulator that behaves like real AWS: through the fault proxy
//! (`stripstack_tests::fault_proxy`), which throttles 20 % of requests in each service's own
//! way, fails a few % with 5xx, and for a few seconds after each create answers as AWS does
//! (NoSuchBucket, IAM NoSuchEntity, the role Lambda cannot assume yet, the notification S3
//! cannot validate yet, a Lambda function still Pending or updating, the failures queue not
//! yet usable as the function's on-failure destination, stale lifecycle reads).
//! For several seeds, a full deploy → empty plan → destroy cycle must converge, and nothing
//! may be left behind. The same cycle through a proxy that only adds latency is the control.
//!
//! With `--engine cloudformation` the deployer's own calls are CloudFormation's (change sets,
//! the stack's events, its waiters) and S3's (the state bucket, the code and the template
//! it uploads there), so throttling, 5xx and the state bucket's NoSuchBucket window apply;
//! IAM, Lambda and the notification are created by the emulator's CloudFormation behind the
//! proxy, where their consistency windows cannot reach (on AWS, CloudFormation waits them
//! out itself).

use stripstack_tests::fault_proxy::{self, FaultConfig, FaultStats};
use stripstack_tests::{bucket_exists, iam, lambda, output_text as text, TestStack};

/// Deploy, plan (must be empty), destroy through `config`; the proxy's counts of what it
/// did, per step, for the failure messages and the closing note.
async fn cycle(
    prefix: &str,
    config: FaultConfig,
    engine_args: &'static [&'static str],
) -> Vec<(&'static str, FaultStats)> {
    let (proxy, endpoint) = fault_proxy::start(config);
    let stack = TestStack::through(prefix, &endpoint, engine_args);
    let mut steps = Vec::new();

    let before = proxy.stats();
    let out = stack.run("deploy", &["--yes"]);
    let deployed = proxy.stats().since(&before);
    assert!(
        out.status.success(),
        "deploy through the proxy failed ({deployed}):\n{}",
        text(&out)
    );
    steps.push(("deploy", deployed));

    let before = proxy.stats();
    let out = stack.run("plan", &["--detailed-exitcode"]);
    let planned = proxy.stats().since(&before);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan after a deploy must be empty ({planned}):\n{}",
        text(&out)
    );
    steps.push(("plan", planned));

    let before = proxy.stats();
    let out = stack.run("destroy", &["--yes"]);
    let destroyed = proxy.stats().since(&before);
    assert!(
        out.status.success(),
        "destroy through the proxy failed ({destroyed}):\n{}",
        text(&out)
    );
    steps.push(("destroy", destroyed));

    // Nothing left, read straight from the emulator.
    assert!(!bucket_exists(&stack.source()).await, "source bucket left");
    assert!(
        !bucket_exists(&stack.destination()).await,
        "destination bucket left"
    );
    let role = format!("{}-local-strip-role", stack.name);
    assert!(
        iam().get_role().role_name(&role).send().await.is_err(),
        "role {role} left"
    );
    let function = format!("{}-local-strip", stack.name);
    assert!(
        lambda()
            .get_function()
            .function_name(&function)
            .send()
            .await
            .is_err(),
        "function {function} left"
    );
    for (step, stats) in &steps {
        eprintln!("{prefix} {step}: {stats}");
    }
    steps
}

/// One seed's cycle under AWS-like faults; the proxy must really have got in the way (the
/// cycle passed despite it, not around it). One test per seed, so that they run side by side.
async fn converges_under_faults(seed: u64) {
    let steps = cycle(&format!("faults{seed}"), FaultConfig::aws_like(seed), &[]).await;
    let injected: u64 = steps.iter().map(|(_, s)| s.injected_errors()).sum();
    let consistency: u64 = steps.iter().map(|(_, s)| s.consistency_errors()).sum();
    assert!(injected > 0, "seed {seed}: no fault was injected");
    assert!(
        consistency > 0,
        "seed {seed}: no consistency window was hit"
    );
    // The failures queue's invoke configuration is put while the role's new permission on
    // the queue is still propagating: the deployer waited it out.
    let unauthorized: u64 = steps
        .iter()
        .map(|(_, s)| s.count(fault_proxy::Fault::DestinationUnauthorized))
        .sum();
    assert!(
        unauthorized > 0,
        "seed {seed}: the destination window was not hit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn converges_under_aws_like_faults_seed_1() {
    converges_under_faults(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn converges_under_aws_like_faults_seed_2() {
    converges_under_faults(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn converges_under_aws_like_faults_seed_3() {
    converges_under_faults(3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_plan_destroy_through_a_latency_only_proxy() {
    let steps = cycle(
        "latency",
        FaultConfig::latency_only(std::time::Duration::from_millis(20)),
        &[],
    )
    .await;
    for (step, stats) in steps {
        assert_eq!(stats.injected_errors(), 0, "{step}: {stats}");
    }
}

/// The CloudFormation engine's cycle under the same faults. Its own calls are throttled and
/// fail with 5xx like the SDK engine's (the state bucket also starts missing), so the
/// proxy must have refused some of them.
#[tokio::test(flavor = "multi_thread")]
async fn the_cloudformation_engine_converges_under_aws_like_faults() {
    let seed = 4;
    let steps = cycle(
        &format!("cfnfaults{seed}"),
        FaultConfig::aws_like(seed),
        &["--engine", "cloudformation"],
    )
    .await;
    let throttled: u64 = steps.iter().map(|(_, s)| s.throttled).sum();
    let requests: u64 = steps.iter().map(|(_, s)| s.requests).sum();
    assert!(
        throttled > 0,
        "seed {seed}: nothing throttled in {requests} requests"
    );
}
