//! State and lock, kept in S3 as Terraform 1.10's S3 backend does, with no DynamoDB table:
//! a state bucket per account and region (versioned, encrypted, private), one JSON state
//! document per stack and env written with `If-Match` on its ETag, and a lock object
//! created with `If-None-Match: *`. No secret is ever written here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::aws::{error_code, http_status, until_propagated, AwsError, Clients, SdkResultExt};
use crate::resources::grant::Grant;
use crate::resources::{bucket, Address};
use crate::stack::ResolvedStack;

/// The state bucket of an account and region.
pub fn state_bucket(account: &str, region: &str) -> String {
    format!("stripstack-state-{account}-{region}")
}

/// What the deployer must be allowed to do with its state bucket for `stack`: set the bucket
/// up (never delete it), read and write the stack's state and lock, upload and read the
/// Lambda bundles (Lambda fetches the code with the caller's rights) and, for the
/// CloudFormation engine, the templates.
pub(crate) fn deployer_grants(stack: &ResolvedStack) -> Vec<Grant> {
    let partition = crate::stack::partition(&stack.region);
    let bucket = format!(
        "arn:{partition}:s3:::{}",
        state_bucket(&stack.account, &stack.region)
    );
    let (name, env) = (&stack.stack, &stack.env);
    vec![
        Grant::new("StateBucket", bucket::BUCKET_ACTIONS, vec![bucket.clone()]),
        Grant::new(
            "StateAndLock",
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            vec![format!("{bucket}/{name}/{env}/*")],
        ),
        Grant::new(
            "BundlesAndTemplates",
            &["s3:GetObject", "s3:PutObject"],
            vec![
                format!("{bucket}/artifacts/*"),
                format!("{bucket}/templates/{name}/{env}/*"),
            ],
        ),
    ]
}

/// One resource this tool created (or is creating) for a stack and env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub address: Address,
    pub physical: String,
    #[serde(default)]
    pub retain: bool,
    /// What its kind keeps for its delete (a bucket's `force_destroy`), at the top level
    /// of the record as earlier versions wrote it.
    #[serde(flatten)]
    pub settings: crate::resources::Settings,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub stack: String,
    pub env: String,
    /// Incremented on every write.
    pub serial: u64,
    /// Sorted by address.
    pub resources: Vec<Record>,
}

impl State {
    pub fn get(&self, address: &Address) -> Option<&Record> {
        self.resources.iter().find(|r| &r.address == address)
    }

    pub fn upsert(&mut self, record: Record) {
        self.resources.retain(|r| r.address != record.address);
        self.resources.push(record);
        self.resources.sort_by(|a, b| a.address.cmp(&b.address));
    }

    pub fn remove(&mut self, address: &Address) {
        self.resources.retain(|r| &r.address != address);
    }
}

/// The state document of one stack and env, with the ETag it was read at.
#[derive(Debug)]
pub struct StateStore {
    clients: Clients,
    pub bucket: String,
    key: String,
    etag: Option<String>,
    pub state: State,
}

impl StateStore {
    pub fn key(stack: &str, env: &str) -> String {
        format!("{stack}/{env}/state.json")
    }

    /// Reads the state; an absent bucket or document is an empty state (nothing deployed).
    pub async fn load(
        clients: &Clients,
        bucket: &str,
        stack: &str,
        env: &str,
    ) -> anyhow::Result<Self> {
        let key = Self::key(stack, env);
        let empty = State {
            version: 1,
            stack: stack.to_owned(),
            env: env.to_owned(),
            ..State::default()
        };
        let (state, etag) = match clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_owned);
                let body = out
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("while reading s3://{bucket}/{key}"))?
                    .into_bytes();
                let state: State = serde_json::from_slice(&body).with_context(|| {
                    format!("the state document s3://{bucket}/{key} is not valid: restore a previous version (the bucket is versioned)")
                })?;
                (state, etag)
            }
            Err(err) if matches!(error_code(&err), Some("NoSuchKey" | "NoSuchBucket")) => {
                (empty, None)
            }
            Err(err) if http_status(&err) == Some(404) => (empty, None),
            Err(err) => {
                return Err(AwsError::from_sdk(
                    err,
                    format!("while reading the state s3://{bucket}/{key}"),
                )
                .into())
            }
        };
        Ok(StateStore {
            clients: clients.clone(),
            bucket: bucket.to_owned(),
            key,
            etag,
            state,
        })
    }

    /// Writes the state only if nobody else wrote it since we read it.
    pub async fn save(&mut self) -> anyhow::Result<()> {
        self.state.serial += 1;
        let body = serde_json::to_vec_pretty(&self.state)?;
        let expected = self.etag.clone();
        let put = || {
            let put = self
                .clients
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type("application/json")
                .body(body.clone().into());
            match &expected {
                Some(etag) => put.if_match(etag),
                None => put.if_none_match("*"),
            }
        };
        let mut attempt = 1;
        loop {
            match put().send().await {
                Ok(out) => {
                    self.etag = out.e_tag().map(str::to_owned);
                    return Ok(());
                }
                // Another conditional write to the key was in flight (S3's 409): S3 asks for a
                // retry.
                Err(err)
                    if error_code(&err) == Some("ConditionalRequestConflict")
                        && attempt < CONFLICT_ATTEMPTS =>
                {
                    attempt += 1;
                    // Backoff with jitter, so two runs that collided do not collide again.
                    let ceiling = 200 * u64::from(attempt);
                    let wait = fastrand::u64(ceiling / 2..=ceiling);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Err(err) if http_status(&err) == Some(412) => {
                    // The SDK re-sends a PUT whose answer was lost: its first try may have
                    // written this very document. Ours, then, not a conflict.
                    if let Some(etag) = self.written_as(&body).await {
                        self.etag = Some(etag);
                        return Ok(());
                    }
                    anyhow::bail!(
                        "the state s3://{}/{} changed under this run (another deploy without the \
                         lock?): re-run the command",
                        self.bucket,
                        self.key
                    )
                }
                Err(err) => {
                    return Err(AwsError::from_sdk(
                        err,
                        format!("while writing the state s3://{}/{}", self.bucket, self.key),
                    )
                    .into())
                }
            }
        }
    }

    /// The ETag of the stored state when it holds exactly `body`.
    async fn written_as(&self, body: &[u8]) -> Option<String> {
        let out = self
            .clients
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .ok()?;
        let etag = out.e_tag().map(str::to_owned);
        let stored = out.body.collect().await.ok()?.into_bytes();
        (stored.as_ref() == body).then_some(etag).flatten()
    }
}

/// Tries of a conditional write that S3 answers 409 ConditionalRequestConflict.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Creates the state bucket on first use: versioned, encrypted, private.
pub async fn ensure_state_bucket(
    clients: &Clients,
    bucket: &str,
    region: &str,
) -> anyhow::Result<()> {
    use aws_sdk_s3::types as t;
    let s3 = &clients.s3;
    let exists = match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => true,
        Err(err) if http_status(&err) == Some(404) => false,
        Err(err) if http_status(&err) == Some(403) => {
            anyhow::bail!("the state bucket `{bucket}` exists but these credentials cannot use it")
        }
        Err(err) => {
            return Err(AwsError::from_sdk(
                err,
                format!("while looking for the state bucket `{bucket}`"),
            )
            .into())
        }
    };
    if exists {
        // Versioning is set last: when it is on, the setup finished. A first run that died
        // half-way left it off, and this run finishes the job.
        let versioning = s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .with_aws_context(|| format!("while reading the state bucket `{bucket}`"))?;
        if versioning.status() == Some(&t::BucketVersioningStatus::Enabled) {
            return Ok(());
        }
    } else {
        let mut create = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                t::CreateBucketConfiguration::builder()
                    .location_constraint(t::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => {}
            Err(err) if error_code(&err) == Some("BucketAlreadyOwnedByYou") => {}
            Err(err) => {
                return Err(AwsError::from_sdk(
                    err,
                    format!("while creating the state bucket `{bucket}`"),
                )
                .into())
            }
        }
    }
    // Private, encrypted and versioned, through the same code as the stack's buckets.
    let protection = bucket::Protection::wanted(true);
    // A new bucket answers NoSuchBucket for a while (as the stack's own buckets do).
    until_propagated(
        "S3 to see the new state bucket",
        &|line| eprintln!("  state bucket: {line}"),
        |e| e.is("NoSuchBucket"),
        || bucket::protect(clients, bucket, &protection, None),
    )
    .await
    .with_context(|| format!("while setting up the state bucket `{bucket}`"))
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub since: u64,
    pub operation: String,
    /// Random, per run: tells our own lock (a PUT whose answer was lost and that the SDK
    /// re-sent gets 412 from its own first try) from another run's.
    #[serde(default)]
    pub nonce: String,
}

impl LockInfo {
    pub fn here(operation: &str) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        LockInfo {
            who: user,
            host: hostname(),
            pid: std::process::id(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            operation: operation.to_owned(),
            nonce: format!("{:016x}", fastrand::u64(..)),
        }
    }

    /// The holder ran on this machine and its process is gone (killed, crashed).
    fn is_dead_local_holder(&self) -> bool {
        self.host == hostname() && !process_exists(self.pid)
    }
}

/// Whether process `pid` exists, on Linux and macOS alike: signal 0 checks without sending.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // EPERM: it exists, owned by someone else.
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's name, the same way on Linux and macOS (`gethostname`).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length; gethostname NUL-terminates within it
    // on success (truncation is handled by the find below).
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_owned(),
        _ => std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown-host".into()),
    }
}

/// A held lock; `release` it when done (a crashed holder's lock is detected and broken by the
/// next run on the same host, or by `--force-unlock`).
#[derive(Debug)]
pub struct Lock {
    clients: Clients,
    bucket: String,
    key: String,
}

impl Lock {
    pub fn key(stack: &str, env: &str) -> String {
        format!("{stack}/{env}/lock.json")
    }

    pub async fn acquire(
        clients: &Clients,
        bucket: &str,
        stack: &str,
        env: &str,
        operation: &str,
        force_unlock: bool,
    ) -> anyhow::Result<Lock> {
        let key = Self::key(stack, env);
        let lock = Lock {
            clients: clients.clone(),
            bucket: bucket.to_owned(),
            key: key.clone(),
        };
        if force_unlock {
            lock.release().await?;
        }
        let info = LockInfo::here(operation);
        for attempt in 0..2 {
            let put = clients
                .s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .if_none_match("*")
                .content_type("application/json")
                .body(serde_json::to_vec(&info)?.into())
                .send()
                .await;
            match put {
                Ok(_) => return Ok(lock),
                Err(err) if matches!(http_status(&err), Some(412 | 409)) => {
                    let holder = read_lock(clients, bucket, &key).await;
                    match holder {
                        // Our own first try, whose answer was lost.
                        Some(h) if h == info => return Ok(lock),
                        Some(h) if attempt == 0 && h.is_dead_local_holder() => {
                            eprintln!(
                                "note: breaking the lock of a dead `{}` run (pid {} on this host)",
                                h.operation, h.pid
                            );
                            lock.release().await?;
                        }
                        Some(h) => anyhow::bail!(
                            "stack `{stack}` env `{env}` is locked by {}@{} (pid {}, `{}` started at \
                             unix time {}). Wait for it to finish; if that run is dead, re-run with \
                             --force-unlock",
                            h.who, h.host, h.pid, h.operation, h.since
                        ),
                        None => anyhow::bail!(
                            "stack `{stack}` env `{env}` is locked (s3://{bucket}/{key}); if no run is \
                             in progress, re-run with --force-unlock"
                        ),
                    }
                }
                Err(err) => {
                    return Err(AwsError::from_sdk(
                        err,
                        format!("while taking the lock s3://{bucket}/{key}"),
                    )
                    .into())
                }
            }
        }
        anyhow::bail!("could not take the lock s3://{bucket}/{key}")
    }

    pub async fn release(&self) -> anyhow::Result<()> {
        match self
            .clients
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if http_status(&err) == Some(404) => Ok(()),
            Err(err) => Err(AwsError::from_sdk(
                err,
                format!("while releasing the lock s3://{}/{}", self.bucket, self.key),
            )
            .into()),
        }
    }
}

async fn read_lock(clients: &Clients, bucket: &str, key: &str) -> Option<LockInfo> {
    let out = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let body = out.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock's liveness check, through the calls Linux and macOS share (no `/proc`).
    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(process_exists(std::process::id()));
        // Above Linux's pid_max (4,194,304) and macOS's (99,999): never a live process.
        assert!(!process_exists(999_999_999));
        assert!(!process_exists(u32::MAX));
        assert!(!hostname().is_empty());
        let here = LockInfo::here("deploy");
        assert!(!here.is_dead_local_holder());
        let dead = LockInfo {
            pid: 999_999_999,
            ..here.clone()
        };
        assert!(dead.is_dead_local_holder());
        // Each run's nonce tells its own lock from another's.
        assert_ne!(here.nonce, LockInfo::here("deploy").nonce);
    }

    use crate::aws::mock::{self, s3_error};
    use aws_sdk_s3::operation as op;
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::byte_stream::ByteStream;

    type S3 = aws_sdk_s3::Client;

    fn store(clients: Clients) -> StateStore {
        StateStore {
            clients,
            bucket: "state".into(),
            key: StateStore::key("demo", "dev"),
            etag: Some("\"v1\"".into()),
            state: State::default(),
        }
    }

    fn failing_put(status: u16, code: &str) -> Rule {
        let (status, body) = s3_error(status, code);
        mock!(S3::put_object)
            .sequence()
            .http_status(status, body)
            .build()
    }

    fn put_ok(etag: &'static str) -> Rule {
        mock!(S3::put_object).then_output(move || {
            op::put_object::PutObjectOutput::builder()
                .e_tag(etag)
                .build()
        })
    }

    /// S3 answers 409 ConditionalRequestConflict while another conditional write to the key
    /// is in flight, and asks for a retry: the write is sent again and succeeds.
    #[tokio::test]
    async fn a_conflicting_conditional_write_is_retried() {
        let conflict = failing_put(409, "ConditionalRequestConflict");
        let ok = put_ok("\"v2\"");
        let mut store = store(mock::s3_clients(&[&conflict, &ok]));
        store.save().await.expect("saved on the second try");
        assert_eq!(store.etag.as_deref(), Some("\"v2\""));
        mock::assert_all_used(&[&conflict, &ok]);
    }

    /// A PUT whose answer was lost is sent again by the SDK and meets its own first try:
    /// 412. When the stored document is ours, it is not a conflict.
    #[tokio::test]
    async fn a_412_from_our_own_lost_write_is_success() {
        let lost = failing_put(412, "PreconditionFailed");
        let expected = State {
            serial: 1,
            ..State::default()
        };
        let ours = serde_json::to_vec_pretty(&expected).expect("serialises");
        let read = mock!(S3::get_object).then_output(move || {
            op::get_object::GetObjectOutput::builder()
                .e_tag("\"v2\"")
                .body(ByteStream::from(ours.clone()))
                .build()
        });
        let mut store = store(mock::s3_clients(&[&lost, &read]));
        store.save().await.expect("our own write");
        assert_eq!(store.etag.as_deref(), Some("\"v2\""));
        mock::assert_all_used(&[&lost, &read]);
    }

    /// A 412 over someone else's document is a conflict, reported, never overwritten.
    #[tokio::test]
    async fn a_412_over_another_runs_state_is_a_conflict() {
        let lost = failing_put(412, "PreconditionFailed");
        let read = mock!(S3::get_object).then_output(|| {
            op::get_object::GetObjectOutput::builder()
                .e_tag("\"v9\"")
                .body(ByteStream::from_static(b"{\"serial\": 7}"))
                .build()
        });
        let mut store = store(mock::s3_clients(&[&lost, &read]));
        let err = store.save().await.expect_err("a conflict");
        assert!(
            err.to_string().contains("changed under this run"),
            "{err:#}"
        );
        mock::assert_all_used(&[&lost, &read]);
    }
}
