//! Test support: [`Clients`] whose IAM, Lambda, SSM, S3 or CloudWatch Logs calls are answered by recorded SDK
//! responses (`aws-smithy-mocks`). IAM and Lambda rules must be met in the order given (a
//! call out of order, or one no rule answers, panics: that is how a test says "nothing else
//! was called"); SSM rules in any order (a user's two key parameters go side by side).
//!
//! Errors are served as HTTP responses with the service's own error body, so the SDK's
//! error parsing, and the deployer's matching on the code it finds, are under test too.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, Rule, RuleMode};

use super::Clients;

/// The account and region of every mocked call.
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const REGION: &str = "eu-west-2";

fn interceptor(rules: &[&Rule], mode: RuleMode) -> MockResponseInterceptor {
    rules
        .iter()
        .fold(MockResponseInterceptor::new().rule_mode(mode), |i, r| {
            i.with_rule(r)
        })
}

/// The configuration of every mocked client.
fn config() -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new(REGION))
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDMOCK", "secret", None, None, "mock",
        )))
        .http_client(create_mock_http_client())
        // What the deployer does with an answer is under test, not the SDK's retries.
        .retry_config(RetryConfig::disabled())
        .build()
}

/// Clients answering from `iam` and `lambda` in order, and from `ssm` in any order. S3, STS
/// and CloudFormation answer nothing: a call to them panics.
pub(crate) fn clients(iam: &[&Rule], lambda: &[&Rule], ssm: &[&Rule]) -> Clients {
    clients_with(iam, RuleMode::Sequential, lambda, ssm)
}

/// As [`clients`], IAM rules met in the given `iam_mode` (`MatchAny` for calls sent side
/// by side).
pub(crate) fn clients_with(
    iam: &[&Rule],
    iam_mode: RuleMode,
    lambda: &[&Rule],
    ssm: &[&Rule],
) -> Clients {
    let config = config();
    let mut clients = Clients::new(&config);
    clients.iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&config)
            .interceptor(interceptor(iam, iam_mode))
            .build(),
    );
    clients.lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .interceptor(interceptor(lambda, RuleMode::Sequential))
            .build(),
    );
    clients.ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&config)
            .interceptor(interceptor(ssm, RuleMode::MatchAny))
            .build(),
    );
    clients
}

/// Clients whose S3 calls are answered from `s3`, in order; every other service answers
/// nothing.
pub(crate) fn s3_clients(s3: &[&Rule]) -> Clients {
    let mut clients = clients(&[], &[], &[]);
    clients.s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config())
            .interceptor(interceptor(s3, RuleMode::Sequential))
            .build(),
    );
    clients
}

/// Clients whose CloudWatch Logs calls are answered from `logs`, in order; every other
/// service answers nothing.
pub(crate) fn logs_clients(logs: &[&Rule]) -> Clients {
    let mut clients = clients(&[], &[], &[]);
    clients.logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&config())
            .interceptor(interceptor(logs, RuleMode::Sequential))
            .build(),
    );
    clients
}

/// Clients whose SQS calls are answered from `sqs`, and Lambda calls from `lambda`, each in
/// order; every other service answers nothing.
pub(crate) fn sqs_clients(sqs: &[&Rule], lambda: &[&Rule]) -> Clients {
    let mut clients = clients(&[], lambda, &[]);
    clients.sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config())
            .interceptor(interceptor(sqs, RuleMode::Sequential))
            .build(),
    );
    clients
}

/// Clients whose S3 Control calls (Batch Operations jobs) are answered from `s3control`, in
/// order; every other service answers nothing.
pub(crate) fn s3control_clients(s3control: &[&Rule]) -> Clients {
    let mut clients = clients(&[], &[], &[]);
    clients.s3control = aws_sdk_s3control::Client::from_conf(
        aws_sdk_s3control::config::Builder::from(&config())
            .interceptor(interceptor(s3control, RuleMode::Sequential))
            .build(),
    );
    clients
}

/// S3's answer (REST XML) for error `code` with HTTP `status`.
pub(crate) fn s3_error(status: u16, code: &str) -> (u16, Option<String>) {
    (
        status,
        Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>mock {code}</Message><RequestId>mock-request</RequestId></Error>"
        )),
    )
}

/// IAM's answer (awsQuery XML) for error `code`: status and body for
/// `RuleBuilder::sequence().http_status(…)`.
pub(crate) fn iam_error(status: u16, code: &str) -> (u16, Option<String>) {
    (
        status,
        Some(format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>mock {code}</Message></Error>\
             <RequestId>mock-request</RequestId></ErrorResponse>"
        )),
    )
}

/// The answer of an awsJson 1.1 service (SSM, CloudWatch Logs) for error `code`.
pub(crate) fn json_error(code: &str) -> (u16, Option<String>) {
    (
        400,
        Some(format!(
            "{{\"__type\":\"{code}\",\"message\":\"mock {code}\"}}"
        )),
    )
}

/// Asserts every rule was used exactly once (a sequence the code under test cut short
/// leaves rules unused).
pub(crate) fn assert_all_used(rules: &[&Rule]) {
    for (i, rule) in rules.iter().enumerate() {
        assert_eq!(
            rule.num_calls(),
            1,
            "rule {i} was used {} times",
            rule.num_calls()
        );
    }
}

/// An answer of a [`world`]: HTTP status, headers, body.
pub(crate) type Answer = (u16, Vec<(&'static str, String)>, String);

/// Clients whose every call, to any service, is answered by `answer` from the HTTP request
/// alone (no rule per operation: the contract test sends whatever each kind sends). Every
/// operation sent is counted in the clients' [`super::ApiCalls`] as `Service.Operation`.
pub(crate) fn world(answer: fn(&WorldRequest<'_>) -> Answer) -> Clients {
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_types::body::SdkBody;

    #[derive(Debug)]
    struct World(fn(&WorldRequest<'_>) -> Answer);
    impl HttpConnector for World {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let view = WorldRequest {
                service: service_of(request.uri()),
                method: request.method(),
                target: request.headers().get("x-amz-target").unwrap_or_default(),
            };
            let (status, headers, body) = (self.0)(&view);
            let mut response = HttpResponse::new(
                status.try_into().expect("a valid status"),
                SdkBody::from(body),
            );
            for (name, value) in headers {
                response.headers_mut().insert(name, value);
            }
            HttpConnectorFuture::ready(Ok(response))
        }
    }
    let config = SdkConfig::builder()
        .region(Region::new(REGION))
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDMOCK", "secret", None, None, "mock",
        )))
        .http_client(http_client_fn(move |_, _| {
            SharedHttpConnector::new(World(answer))
        }))
        .retry_config(RetryConfig::disabled())
        .build();
    Clients::new(&config)
}

/// What a [`world`] answers from.
pub(crate) struct WorldRequest<'a> {
    /// The endpoint's service prefix (`s3`, `iam`, `lambda`, `logs`, `sqs`, `ssm`, `sts`).
    pub service: &'static str,
    pub method: &'a str,
    /// The `X-Amz-Target` header of the JSON protocols (`Logs_20140328.DescribeLogGroups`).
    pub target: &'a str,
}

/// The service a request goes to, by its AWS endpoint's host (`iam.amazonaws.com`,
/// `bucket.s3.eu-west-2.amazonaws.com`).
fn service_of(uri: &str) -> &'static str {
    let host = uri
        .split("://")
        .nth(1)
        .unwrap_or(uri)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    for service in [
        "s3",
        "iam",
        "lambda",
        "logs",
        "sqs",
        "ssm",
        "sts",
        "s3-control",
    ] {
        if labels.contains(&service) {
            return service;
        }
    }
    panic!("a request to an unknown service: {uri}")
}
