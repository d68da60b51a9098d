//! Sorting S3 errors into what the handler does about them.
//!
//! The split matters because Lambda retries an asynchronous invocation that returns an
//! error: that is right for throttling, 5xx and timeouts, which may succeed a minute later,
//! and wasteful for a missing object or a denied key, which never will.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What kind of failure an S3 call reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// 404: no such bucket, key or version.
    NotFound,
    /// 403: denied by IAM, a bucket policy or KMS.
    Denied,
    /// 412 / 409 on a conditional request: someone else changed the object in between.
    Conflict,
    /// Throttling, 5xx, timeouts, dropped connections: worth retrying.
    Transient,
    /// Any other client error (400 ...): retrying the same request will not help.
    Rejected,
}

/// Error codes S3 sends with a 4xx status that still mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "TooManyRequests",
];

/// Classifies a failed S3 call.
pub(crate) fn classify<E: ProvideErrorMetadata>(err: &SdkError<E>) -> ErrorClass {
    match err {
        SdkError::ServiceError(ctx) => classify_service(
            ctx.raw().status().as_u16(),
            ctx.err().code().unwrap_or_default(),
        ),
        // Nothing usable came back (a timeout, a dropped connection, an unreadable reply),
        // or the request could not even be built. Either way the handler must report an
        // error: a retry may succeed, and a bug must be seen rather than drop the object.
        _ => ErrorClass::Transient,
    }
}

fn classify_service(status: u16, code: &str) -> ErrorClass {
    match (status, code) {
        (_, c) if RETRYABLE_CODES.contains(&c) => ErrorClass::Transient,
        (408 | 429, _) | (500.., _) => ErrorClass::Transient,
        (_, "PreconditionFailed" | "ConditionalRequestConflict") | (409 | 412, _) => {
            ErrorClass::Conflict
        }
        (_, "NoSuchKey" | "NoSuchVersion" | "NoSuchBucket" | "NotFound") | (404, _) => {
            ErrorClass::NotFound
        }
        (_, "AccessDenied" | "Forbidden" | "InvalidObjectState") | (403, _) => ErrorClass::Denied,
        _ => ErrorClass::Rejected,
    }
}

/// One line for logs: S3's error code, message, HTTP status and request id for an error
/// response (what support needs, without the raw response the SDK's debug form carries);
/// the whole cause chain otherwise (the SDK's `Display` alone says only "dispatch failure").
pub(crate) fn describe<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let meta = ctx.err().meta();
            format!(
                "{}: {} (HTTP {}, request id {})",
                meta.code().unwrap_or("no error code"),
                meta.message().unwrap_or("no message"),
                ctx.raw().status().as_u16(),
                meta.extra("aws_request_id").unwrap_or("unknown"),
            )
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_by_status_and_code() {
        assert_eq!(classify_service(503, "SlowDown"), ErrorClass::Transient);
        assert_eq!(
            classify_service(500, "InternalError"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_service(400, "RequestTimeout"),
            ErrorClass::Transient
        );
        assert_eq!(classify_service(429, ""), ErrorClass::Transient);
        assert_eq!(classify_service(404, "NoSuchKey"), ErrorClass::NotFound);
        assert_eq!(classify_service(404, "NoSuchVersion"), ErrorClass::NotFound);
        assert_eq!(classify_service(404, ""), ErrorClass::NotFound);
        assert_eq!(classify_service(403, "AccessDenied"), ErrorClass::Denied);
        assert_eq!(
            classify_service(403, "InvalidObjectState"),
            ErrorClass::Denied
        );
        assert_eq!(
            classify_service(412, "PreconditionFailed"),
            ErrorClass::Conflict
        );
        assert_eq!(
            classify_service(409, "ConditionalRequestConflict"),
            ErrorClass::Conflict
        );
        assert_eq!(
            classify_service(400, "InvalidArgument"),
            ErrorClass::Rejected
        );
    }
}
