//! Typed AWS SDK failures. Every SDK call's error becomes an [`AwsError`] at the call site
//! (`.aws_context("while reading IAM role `x`")`), which keeps what the SDK said — service,
//! operation, error code, HTTP status, request id — instead of flattening it to text, so
//! later code matches on [`AwsError::code`], never on message text, and a person reading a
//! failure has the request id AWS support asks for.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId as _;
use aws_smithy_runtime_api::http::Response;

/// One failed SDK call (boxed: results carrying it stay small).
#[derive(Debug)]
pub(crate) struct AwsError(Box<Details>);

#[derive(Debug)]
struct Details {
    /// What we were doing: `while reading IAM role `x``.
    context: String,
    service: &'static str,
    operation: &'static str,
    code: Option<String>,
    message: Option<String>,
    status: Option<u16>,
    request_id: Option<String>,
    /// The transport error's chain, for failures that never reached the service.
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AwsError {
    /// Types an SDK failure, naming what we were doing.
    pub(crate) fn from_sdk<E>(err: SdkError<E, Response>, context: impl Into<String>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let context = context.into();
        let (service, operation) = operation_of::<E>();
        let status = err.raw_response().map(|r| r.status().as_u16());
        let mut request_id = err.request_id().map(str::to_owned);
        let (code, message, source): (_, _, Box<dyn StdError + Send + Sync>) = match err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let code = e.code().map(str::to_owned);
                let message = e.message().map(str::to_owned);
                // Query protocols (IAM, STS, CloudFormation) carry it in the body too.
                if request_id.is_none() {
                    request_id = e.meta().extra("aws_request_id").map(str::to_owned);
                }
                (code, message, Box::new(service_err.into_err()))
            }
            // Timeouts, dispatch (connection) failures, unreadable answers: no code.
            other => (None, None, Box::new(other)),
        };
        AwsError(Box::new(Details {
            context,
            service,
            operation,
            code,
            message,
            status,
            request_id,
            source: Some(source),
        }))
    }

    /// The service's error code (`NoSuchEntity`, `Throttling`), if it answered.
    pub(crate) fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// Whether the service answered with error code `code`.
    pub(crate) fn is(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    pub(crate) fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// `IAM GetRole`.
    pub(crate) fn operation(&self) -> String {
        format!("{} {}", self.0.service, self.0.operation)
    }

    /// The first `AwsError` in an error chain (under any `anyhow` context).
    pub(crate) fn find(err: &anyhow::Error) -> Option<&AwsError> {
        err.chain().find_map(|e| e.downcast_ref::<AwsError>())
    }

    /// What the service or transport said, without our context: `NoSuchEntity: …`.
    fn detail(&self) -> String {
        match (&self.0.code, &self.0.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            _ => {
                let mut text = String::new();
                let mut source: Option<&(dyn StdError + 'static)> = match &self.0.source {
                    Some(s) => Some(s.as_ref()),
                    None => None,
                };
                while let Some(s) = source {
                    if !text.is_empty() {
                        text.push_str(": ");
                    }
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                if text.is_empty() {
                    "no details".to_owned()
                } else {
                    text
                }
            }
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}",
            self.0.context,
            self.detail(),
            self.operation()
        )?;
        if let Some(status) = self.0.status {
            write!(f, ", HTTP {status}")?;
        }
        if let Some(id) = &self.0.request_id {
            write!(f, ", request id {id}")?;
        }
        f.write_str(")")
    }
}

// No `source()`: `Display` already holds the service's answer, and `{:#}` would repeat it.
impl StdError for AwsError {}

/// `.aws_context(…)` on an SDK call's result: the typed error, with what we were doing.
pub(crate) trait SdkResultExt<T> {
    fn aws_context(self, context: impl Into<String>) -> Result<T, AwsError>;
    fn with_aws_context(self, context: impl FnOnce() -> String) -> Result<T, AwsError>;
    /// `Ok(None)` when the service answered error code `code` (`NoSuchEntity`: already
    /// gone), the typed error for any other failure.
    fn none_if(self, code: &str, context: impl FnOnce() -> String) -> Result<Option<T>, AwsError>;
}

impl<T, E> SdkResultExt<T> for Result<T, SdkError<E, Response>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn aws_context(self, context: impl Into<String>) -> Result<T, AwsError> {
        self.map_err(|err| AwsError::from_sdk(err, context))
    }

    fn with_aws_context(self, context: impl FnOnce() -> String) -> Result<T, AwsError> {
        self.map_err(|err| AwsError::from_sdk(err, context()))
    }

    fn none_if(self, code: &str, context: impl FnOnce() -> String) -> Result<Option<T>, AwsError> {
        match self {
            Ok(out) => Ok(Some(out)),
            Err(err) if super::error_code(&err) == Some(code) => Ok(None),
            Err(err) => Err(AwsError::from_sdk(err, context())),
        }
    }
}

/// Service and operation from the SDK's error type, whose path names both:
/// `aws_sdk_iam::operation::get_role::GetRoleError` → (`IAM`, `GetRole`).
fn operation_of<E>() -> (&'static str, &'static str) {
    let path = std::any::type_name::<E>();
    let service = match path.split("::").next().unwrap_or_default() {
        "aws_sdk_s3" => "S3",
        "aws_sdk_iam" => "IAM",
        "aws_sdk_lambda" => "Lambda",
        "aws_sdk_ssm" => "SSM",
        "aws_sdk_sts" => "STS",
        "aws_sdk_cloudformation" => "CloudFormation",
        "aws_sdk_sqs" => "SQS",
        "aws_sdk_cloudwatchlogs" => "CloudWatchLogs",
        _ => "AWS",
    };
    let operation = path
        .rsplit("::")
        .next()
        .and_then(|name| name.strip_suffix("Error"))
        .unwrap_or("call");
    (service, operation)
}

#[cfg(test)]
impl AwsError {
    /// A service error with `code`, as other modules' tests need one.
    pub(crate) fn for_test(code: &str) -> Self {
        AwsError(Box::new(Details {
            context: "while testing".to_owned(),
            service: "IAM",
            operation: "Test",
            code: Some(code.to_owned()),
            message: None,
            status: Some(400),
            request_id: None,
            source: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ServiceError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(
        code: &str,
        status: u16,
    ) -> SdkError<aws_sdk_iam::operation::get_role::GetRoleError, Response> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("The role with name x cannot be found.")
            .build();
        let mut raw = Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        raw.headers_mut().insert("x-amzn-RequestId", "req-123");
        SdkError::ServiceError(
            ServiceError::builder()
                .source(aws_sdk_iam::operation::get_role::GetRoleError::generic(
                    meta,
                ))
                .raw(raw)
                .build(),
        )
    }

    #[test]
    fn keeps_service_operation_code_status_and_request_id() {
        let result: Result<(), _> = Err(service_error("NoSuchEntity", 404));
        let err = result
            .aws_context("while reading IAM role `x`")
            .expect_err("an error");
        assert!(err.is("NoSuchEntity"));
        assert_eq!(err.operation(), "IAM GetRole");
        assert_eq!(
            err.to_string(),
            "while reading IAM role `x`: NoSuchEntity: The role with name x cannot be found. \
             (IAM GetRole, HTTP 404, request id req-123)"
        );
    }

    #[test]
    fn is_found_under_anyhow_context() {
        let result: Result<(), _> = Err(service_error("NoSuchBucket", 404));
        let err = anyhow::Error::from(result.aws_context("while x").expect_err("an error"))
            .context("bucket.source")
            .context("deploy");
        assert_eq!(
            AwsError::find(&err).and_then(AwsError::code),
            Some("NoSuchBucket")
        );
    }
}
