//! Waiting out AWS's eventual consistency. Right after this run creates something, AWS
//! answers for a while as if it did not exist (S3 `NoSuchBucket` after `CreateBucket`, IAM
//! `NoSuchEntity` after `CreateUser`, Lambda "cannot be assumed" after `CreateRole`, S3
//! "Unable to validate" after `AddPermission`). The SDK does not retry those (they are not
//! throttles or 5xx), so the call that hits one is repeated here: only for the error its
//! caller names, with exponential backoff and jitter, bounded by a deadline, and told to the
//! progress output. Anything else — AccessDenied, a validation error — returns at once.

use std::future::Future;
use std::time::{Duration, Instant};

use super::AwsError;

/// How long AWS may take to propagate a new resource: Terraform's AWS provider waits two
/// minutes for IAM (`propagationTimeout`) and for S3's new buckets.
pub(crate) const PROPAGATION_DEADLINE: Duration = Duration::from_secs(120);

/// The first wait; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// Repeats `call` while it fails with an SDK error (anywhere in its chain) that `not_yet`
/// accepts, until it succeeds, fails otherwise, or [`PROPAGATION_DEADLINE`] would pass.
/// `call` must be safe to repeat (each kind's converge is). `waiting_for` completes
/// "waiting for …" in the progress line (`IAM to propagate`).
pub(crate) async fn until_propagated<T, F, Fut>(
    waiting_for: &str,
    on_wait: &(dyn Fn(&str) + Sync),
    not_yet: impl Fn(&AwsError) -> bool,
    call: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let not_yet = |err: &anyhow::Error| AwsError::find(err).is_some_and(&not_yet);
    until_propagated_by(waiting_for, on_wait, not_yet, call).await
}

/// As [`until_propagated`], for a failure AWS reports other than as an error answer (an
/// S3 Batch Operations job that failed because its new role could not read yet): `not_yet`
/// sees the whole error, and names what it waits for in the progress line.
pub(crate) async fn until_propagated_by<T, F, Fut>(
    waiting_for: &str,
    on_wait: &(dyn Fn(&str) + Sync),
    not_yet: impl Fn(&anyhow::Error) -> bool,
    call: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let pacing = Pacing {
        deadline: PROPAGATION_DEADLINE,
        first_delay: FIRST_DELAY,
    };
    retry_within(pacing, waiting_for, on_wait, not_yet, call).await
}

/// How long to keep trying, and the first wait.
struct Pacing {
    deadline: Duration,
    first_delay: Duration,
}

async fn retry_within<T, F, Fut>(
    pacing: Pacing,
    waiting_for: &str,
    on_wait: &(dyn Fn(&str) + Sync),
    not_yet: impl Fn(&anyhow::Error) -> bool,
    mut call: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut attempt: u32 = 1;
    loop {
        match call().await {
            Err(err) if not_yet(&err) => {
                let delay = backoff(pacing.first_delay, attempt, fastrand::f64());
                if started.elapsed() + delay > pacing.deadline {
                    return Err(err);
                }
                // The service's error code, or what the caller's own error says.
                let why = match AwsError::find(&err).and_then(AwsError::code) {
                    Some(code) => code.to_owned(),
                    None => err.to_string().chars().take(240).collect(),
                };
                on_wait(&format!(
                    "waiting for {waiting_for} (attempt {}: {why})",
                    attempt + 1
                ));
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// "Equal jitter": half the exponential step for sure, the other half at random (`unit` in
/// [0, 1)), so that parallel waiters spread out but each still backs off.
fn backoff(first: Duration, attempt: u32, unit: f64) -> Duration {
    let step = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_DELAY);
    step / 2 + step.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Millisecond waits: the tests run in real time.
    fn quick(deadline: Duration) -> Pacing {
        Pacing {
            deadline,
            first_delay: Duration::from_millis(10),
        }
    }

    fn service_error(code: &str) -> anyhow::Error {
        AwsError::for_test(code).into()
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        let first = FIRST_DELAY;
        assert_eq!(backoff(first, 1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(first, 1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(first, 2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(first, 3, 0.5), Duration::from_millis(1500));
        assert_eq!(backoff(first, 30, 1.0), MAX_DELAY);
        assert!(backoff(first, 30, 0.0) >= MAX_DELAY / 2);
    }

    #[tokio::test]
    async fn retries_only_the_named_error_and_says_so() {
        let calls = AtomicU32::new(0);
        let lines = Mutex::new(Vec::new());
        let on_wait = |line: &str| lines.lock().expect("lock").push(line.to_owned());
        let result = retry_within(
            quick(Duration::from_secs(10)),
            "IAM to propagate",
            &on_wait,
            |e| AwsError::find(e).is_some_and(|e| e.is("NoSuchEntity")),
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(service_error("NoSuchEntity")),
                    _ => Ok("attached"),
                }
            },
        )
        .await;
        assert_eq!(result.expect("succeeds on the third call"), "attached");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            lines.into_inner().expect("lock"),
            vec![
                "waiting for IAM to propagate (attempt 2: NoSuchEntity)",
                "waiting for IAM to propagate (attempt 3: NoSuchEntity)",
            ]
        );
    }

    #[tokio::test]
    async fn never_retries_what_cannot_succeed() {
        let calls = AtomicU32::new(0);
        let result: anyhow::Result<()> = retry_within(
            quick(Duration::from_secs(10)),
            "IAM to propagate",
            &|_| {},
            |e| AwsError::find(e).is_some_and(|e| e.is("NoSuchEntity")),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(service_error("AccessDenied"))
            },
        )
        .await;
        let err = result.expect_err("fails");
        assert!(AwsError::find(&err).is_some_and(|e| e.is("AccessDenied")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let result: anyhow::Result<()> = retry_within(
            quick(Duration::from_millis(200)),
            "S3 to see the new bucket",
            &|_| {},
            |e| AwsError::find(e).is_some_and(|e| e.is("NoSuchBucket")),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(service_error("NoSuchBucket"))
            },
        )
        .await;
        let err = result.expect_err("still failing");
        assert!(AwsError::find(&err).is_some_and(|e| e.is("NoSuchBucket")));
        // Gave up by its own 200 ms deadline, not the real one (two minutes). The bound is
        // loose on purpose: a loaded machine may schedule the sleeps late, and only a retry
        // that ignored its deadline would come near it.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(calls.load(Ordering::SeqCst) >= 3);
    }
}
