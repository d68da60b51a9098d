//! AWS SDK configuration: the standard credential chain, region and endpoint override, and
//! one client per service. Built once per command and shared by every resource module.

mod error;
mod retry;

pub(crate) use error::{AwsError, SdkResultExt};
pub(crate) use retry::{until_propagated, until_propagated_by};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Where to talk to: the stack's region, an optional endpoint (the local emulator) and an
/// optional named profile.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub region: String,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
}

/// The emulator's root credentials. Only ever used against an explicit endpoint (never real
/// AWS), and only when the environment provides no credentials of its own.
const EMULATOR_ACCESS_KEY: &str = "test";
const EMULATOR_SECRET_KEY: &str = "test";

/// Attempts per call, the first included. The SDK's default, 3, gives up on the bursts of
/// throttling a deploy meets on a busy account. Standard retry (exponential backoff with
/// jitter, up to 20 s), not adaptive: adaptive's client-side rate limiter, shared by every
/// client of a service and region in the process, kept cutting its rate under scattered
/// throttling (the fault proxy's 20 %) and stretched three deploy/plan/destroy cycles to 23
/// minutes; the reads are bounded per service instead (`session::read_all`).
const MAX_ATTEMPTS: u32 = 10;

/// No call may hang for ever holding the lock: a connection must open in 5 s, an attempt
/// answer within a minute, and a call (all its attempts and backoffs) end within five.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(300))
        .build()
}

/// Timeouts for uploading a Lambda bundle (megabytes over a slow link).
pub(crate) fn upload_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(600))
        .operation_timeout(Duration::from_secs(1800))
        .build()
}

pub async fn load_config(target: &Target) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(target.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(timeouts());
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &target.endpoint {
        loader = loader.endpoint_url(endpoint);
        let has_env_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        if target.profile.is_none() && !has_env_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                EMULATOR_ACCESS_KEY,
                EMULATOR_SECRET_KEY,
                None,
                None,
                "stripstack-emulator",
            ));
        }
    }
    loader.load().await
}

/// Counts every AWS operation sent through our clients, by `Service.Operation`.
/// Shown in deploy summaries and used by tests to prove a no-op deploy makes no write.
#[derive(Debug, Clone, Default)]
pub struct ApiCalls(Arc<Mutex<BTreeMap<String, usize>>>);

impl ApiCalls {
    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }

    /// Operations that change something (everything but Get/List/Head/Describe).
    pub fn writes(&self) -> BTreeMap<String, usize> {
        self.snapshot()
            .into_iter()
            .filter(|(op, _)| {
                let name = op.rsplit('.').next().unwrap_or(op);
                !["Get", "List", "Head", "Describe"]
                    .iter()
                    .any(|read| name.starts_with(read))
            })
            .collect()
    }

    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Intercept for ApiCalls {
    fn name(&self) -> &'static str {
        "stripstack.ApiCalls"
    }

    // Not `read_before_execution`: a client interceptor sees that hook before the operation's
    // configuration (which holds its `Metadata`) is loaded. Once per operation, not attempt.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = cfg
            .load::<Metadata>()
            .map(|meta| format!("{}.{}", meta.service(), meta.name()))
            .unwrap_or_else(|| "Unknown.Unknown".to_owned());
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// One client per service, built from one config.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    /// The `--engine cloudformation` deployments (`cfn`).
    pub cloudformation: aws_sdk_cloudformation::Client,
    /// S3 Batch Operations jobs (`reconcile` above its threshold).
    pub s3control: aws_sdk_s3control::Client,
    pub region: String,
    pub calls: ApiCalls,
    config: SdkConfig,
}

impl Clients {
    /// The URL of an S3 object as other AWS services fetch it (CloudFormation's
    /// `TemplateURL`): path style against an explicit endpoint, as the S3 client addresses it.
    pub fn s3_object_url(&self, bucket: &str, key: &str) -> String {
        match self.config.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/')),
            None => {
                // The China partition has its own domain.
                let domain = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://{bucket}.s3.{}.{domain}/{key}", self.region)
            }
        }
    }

    pub fn new(config: &SdkConfig) -> Self {
        // Against an explicit endpoint (an emulator on 127.0.0.1), virtual-host addressing
        // would resolve `bucket.127.0.0.1`: use path style there.
        let calls = ApiCalls::default();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .interceptor(calls.clone())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            cloudformation: aws_sdk_cloudformation::Client::from_conf(
                aws_sdk_cloudformation::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            s3control: aws_sdk_s3control::Client::from_conf(
                aws_sdk_s3control::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            config: config.clone(),
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
        }
    }

    /// The same clients with their own call counter (state and lock bookkeeping is counted
    /// apart from the calls that change resources).
    pub fn with_own_counter(&self) -> Self {
        Clients::new(&self.config)
    }

    /// The same endpoint and region with an IAM user's own access key instead of the
    /// deployer's credentials (`verify` checks what the stack's users may really do).
    pub fn with_access_key(&self, access_key_id: &str, secret_access_key: &str) -> Self {
        let credentials = aws_sdk_s3::config::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "stripstack-user-key",
        );
        Clients::new(
            &self
                .config
                .to_builder()
                .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                    credentials,
                ))
                .build(),
        )
    }

    pub async fn connect(target: &Target) -> Self {
        Clients::new(&load_config(target).await)
    }

    /// The account the credentials belong to (fills `${account}`).
    pub async fn account_id(&self) -> anyhow::Result<String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(crate::aws::describe(&e)))
            .context(
                "while asking STS who we are: check your AWS credentials \
                 (AWS_PROFILE, `aws sso login`, or --profile)",
            )?;
        identity
            .account
            .context("STS GetCallerIdentity returned no account id")
    }
}

/// A one-line description of an SDK error: the service's code and message when there is
/// one, the transport error otherwise. (`SdkError`'s Display says only "service error".)
pub fn describe<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                _ => format!("{e}"),
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// The service error code, if the call reached the service.
pub fn error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// The HTTP status of the response, if there was one.
pub fn http_status<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[cfg(test)]
pub(crate) mod mock;

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(region: &str, endpoint: Option<&str>) -> Clients {
        let mut config = SdkConfig::builder()
            .region(aws_config::Region::new(region.to_owned()))
            .behavior_version(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Clients::new(&config.build())
    }

    #[test]
    fn object_urls_for_aws_partitions_and_an_emulator() {
        let key = "templates/demo/dev/ab.json";
        assert_eq!(
            clients("us-east-1", None).s3_object_url("b", key),
            "https://b.s3.us-east-1.amazonaws.com/templates/demo/dev/ab.json"
        );
        assert_eq!(
            clients("cn-north-1", None).s3_object_url("b", key),
            "https://b.s3.cn-north-1.amazonaws.com.cn/templates/demo/dev/ab.json"
        );
        assert_eq!(
            clients("eu-west-2", Some("http://127.0.0.1:4566/")).s3_object_url("b", key),
            "http://127.0.0.1:4566/b/templates/demo/dev/ab.json"
        );
    }
}
