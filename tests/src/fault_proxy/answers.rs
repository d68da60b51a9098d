//! Error answers in each service's own wire shape, so that the SDK parses the intended error
//! code from them and classifies them (throttling, transient, or neither) as it would
//! classify the real thing.
//!
//! The shapes:
//! - awsQuery (IAM, STS, CloudFormation): `<ErrorResponse><Error><Type>Sender</Type>
//!   <Code>…</Code><Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>`, as IAM
//!   sends its throttling error (a captured 400 `Throttling` / `Rate exceeded` body:
//!   <https://github.com/legion-platform/legion/issues/807>; CloudFormation's, as seen by the
//!   CDK: <https://github.com/aws/aws-cdk/issues/5637>).
//! - awsJson1_1 (SSM, CloudWatch Logs): `{"__type": "…", "message": "…"}`; SSM's throttling
//!   error is `ThrottlingException` "Rate exceeded"
//!   (<https://repost.aws/knowledge-center/ssm-parameter-store-rate-exceeded>), and so is
//!   CloudWatch Logs' ("The request was throttled because of quota limits", HTTP 400; its
//!   internal error is `ServiceUnavailableException`, HTTP 500, "The service cannot complete
//!   the request": the errors of e.g.
//!   <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>).
//!   SQS (awsJson 1.0) answers the common errors: `ThrottlingException` ("The request was
//!   denied due to request throttling", HTTP 400) and `InternalFailure` (HTTP 500)
//!   (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html>).
//! - restJson1 (Lambda): the code in the `x-amzn-ErrorType` header and a JSON body; Lambda
//!   throttles with 429 `TooManyRequestsException`, "The request throughput limit was
//!   exceeded" (listed among the errors of every operation in the API reference, e.g.
//!   <https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html>;
//!   <https://docs.aws.amazon.com/botocore/latest/reference/services/lambda/client/exceptions/TooManyRequestsException.html>).
//! - restXml (S3): `<Error><Code>…</Code><Message>…</Message><RequestId>…</RequestId>
//!   <HostId>…</HostId></Error>`; S3 throttles with 503 `SlowDown`
//!   (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList>,
//!   <https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorBestPractices.html>).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::{Response, StatusCode};

use super::classify::Service;

/// A complete answer the proxy gives instead of (or in place of) the emulator's.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Answer {
    /// The HTTP response; `head`: the request was a HEAD, so no body goes out (and hyper would
    /// drop one anyway).
    pub fn into_response(self, head: bool) -> Response<Bytes> {
        let mut response = Response::new(if head {
            Bytes::new()
        } else {
            self.body.clone()
        });
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().append(*name, value);
            }
        }
        if !head {
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        response
    }
}

/// What kind of error to answer with, independent of the service's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// 500: the service's internal-error code.
    Internal,
    /// 503 `ServiceUnavailable`.
    Unavailable,
}

/// The service's throttling error. `None` for services the proxy does not fault.
pub fn throttle(service: &Service, request_id: &str) -> Option<Answer> {
    Some(match service {
        Service::Iam | Service::Sts | Service::CloudFormation => query_error(
            service,
            StatusCode::BAD_REQUEST,
            "Sender",
            "Throttling",
            "Rate exceeded",
            request_id,
        ),
        Service::Ssm | Service::Logs | Service::Sqs => json_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
            request_id,
        ),
        Service::Lambda => rest_json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            r#""Reason":"CallerRateLimitExceeded","Type":"User""#,
            "Rate exceeded",
            request_id,
        ),
        Service::S3 => s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
            &[],
            request_id,
        ),
        Service::Other(_) => return None,
    })
}

/// A 5xx in the service's shape: each service's own internal-error code for a 500
/// (IAM/STS/CloudFormation `InternalFailure`, with `ServiceUnavailable` for a 503: the
/// errors "common to the API actions of all AWS services", e.g.
/// <https://docs.aws.amazon.com/securityhub/1.0/APIReference/CommonErrors.html>; SSM
/// `InternalServerError`; Lambda `ServiceException`, "The Lambda service encountered an
/// internal error"; S3 `InternalError`, which S3 asks clients to retry:
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorBestPractices.html>), and
/// `ServiceUnavailable` for a 503. The SDK retries both by status code.
pub fn server_error(service: &Service, kind: ServerError, request_id: &str) -> Option<Answer> {
    let (status, message) = match kind {
        ServerError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "We encountered an internal error. Please try again.",
        ),
        ServerError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service is unable to handle request.",
        ),
    };
    let unavailable = kind == ServerError::Unavailable;
    Some(match service {
        Service::Iam | Service::Sts | Service::CloudFormation => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            };
            query_error(service, status, "Receiver", code, message, request_id)
        }
        Service::Ssm => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalServerError"
            };
            json_error(status, code, message, request_id)
        }
        Service::Logs => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "ServiceUnavailableException"
            };
            json_error(status, code, message, request_id)
        }
        Service::Sqs => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            };
            json_error(status, code, message, request_id)
        }
        Service::Lambda => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "ServiceException"
            };
            rest_json_error(status, code, r#""Type":"Service""#, message, request_id)
        }
        Service::S3 => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalError"
            };
            s3_error(status, code, message, &[], request_id)
        }
        Service::Other(_) => return None,
    })
}

/// awsQuery error document. The namespace is each service's API namespace, as the real
/// services send it (the SDK ignores it, but a reader of a captured body should not be misled).
pub fn query_error(
    service: &Service,
    status: StatusCode,
    fault_type: &str,
    code: &str,
    message: &str,
    request_id: &str,
) -> Answer {
    let namespace = match service {
        Service::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        Service::CloudFormation => "http://cloudformation.amazonaws.com/doc/2010-05-15/",
        _ => "https://iam.amazonaws.com/doc/2010-05-08/",
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{fault_type}</Type>\n    \
         <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
         <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message)
    );
    Answer {
        status,
        headers: vec![
            ("content-type", "text/xml".to_string()),
            ("x-amzn-requestid", request_id.to_string()),
        ],
        body: Bytes::from(body),
    }
}

/// awsJson1_1 error (SSM).
pub fn json_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Answer {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    Answer {
        status,
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("x-amzn-requestid", request_id.to_string()),
        ],
        body: Bytes::from(body),
    }
}

/// restJson1 error (Lambda): the code in `x-amzn-ErrorType`, `extra` JSON members (already
/// serialised, e.g. `"Type":"User"`) and the message in the body.
pub fn rest_json_error(
    status: StatusCode,
    code: &str,
    extra: &str,
    message: &str,
    request_id: &str,
) -> Answer {
    let message = serde_json::Value::String(message.to_string()).to_string();
    let body = if extra.is_empty() {
        format!("{{\"message\":{message}}}")
    } else {
        format!("{{{extra},\"message\":{message}}}")
    };
    Answer {
        status,
        headers: vec![
            ("content-type", "application/json".to_string()),
            ("x-amzn-errortype", code.to_string()),
            ("x-amzn-requestid", request_id.to_string()),
        ],
        body: Bytes::from(body),
    }
}

/// restXml error (S3), with optional extra elements (`BucketName`, `ArgumentName1`…).
pub fn s3_error(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
    request_id: &str,
) -> Answer {
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>",
        xml_escape(message)
    );
    for (name, value) in extra {
        body.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    body.push_str(&format!(
        "<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
    ));
    Answer {
        status,
        headers: vec![
            ("content-type", "application/xml".to_string()),
            ("x-amz-request-id", request_id.to_string()),
            ("x-amz-id-2", "fault-proxy".to_string()),
        ],
        body: Bytes::from(body),
    }
}

/// The proxy's own refusal of a request it cannot read: not an AWS error, so it says so.
pub fn malformed(message: &str) -> Answer {
    Answer {
        status: StatusCode::BAD_REQUEST,
        headers: vec![
            ("content-type", "text/plain; charset=utf-8".to_string()),
            ("x-fault-proxy", "malformed".to_string()),
        ],
        body: Bytes::from(format!("fault proxy: malformed request: {message}\n")),
    }
}

/// The proxy's answer when the emulator cannot be reached or answers unreadably: a 502, which
/// the SDK treats as transient like any gateway error.
pub fn bad_gateway(message: &str) -> Answer {
    Answer {
        status: StatusCode::BAD_GATEWAY,
        headers: vec![
            ("content-type", "text/plain; charset=utf-8".to_string()),
            ("x-fault-proxy", "upstream".to_string()),
        ],
        body: Bytes::from(format!("fault proxy: upstream: {message}\n")),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: &Answer) -> &str {
        std::str::from_utf8(&answer.body).unwrap()
    }

    #[test]
    fn each_service_throttles_in_its_own_shape() {
        let iam = throttle(&Service::Iam, "r-1").unwrap();
        assert_eq!(iam.status, StatusCode::BAD_REQUEST);
        assert!(text(&iam).contains("<Code>Throttling</Code>"));
        assert!(text(&iam).contains("<Type>Sender</Type>"));
        assert!(text(&iam).contains("<RequestId>r-1</RequestId>"));

        let ssm = throttle(&Service::Ssm, "r-2").unwrap();
        let json: serde_json::Value = serde_json::from_slice(&ssm.body).unwrap();
        assert_eq!(json["__type"], "ThrottlingException");

        let lambda = throttle(&Service::Lambda, "r-3").unwrap();
        assert_eq!(lambda.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(lambda
            .headers
            .contains(&("x-amzn-errortype", "TooManyRequestsException".to_string())));
        let json: serde_json::Value = serde_json::from_slice(&lambda.body).unwrap();
        assert_eq!(json["message"], "Rate exceeded");

        let s3 = throttle(&Service::S3, "r-4").unwrap();
        assert_eq!(s3.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text(&s3).contains("<Code>SlowDown</Code>"));

        assert!(throttle(&Service::Other("logs".into()), "r").is_none());
    }

    #[test]
    fn messages_are_escaped() {
        let answer = s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "a <b> & c",
            &[("ArgumentName1", "x&y")],
            "r",
        );
        assert!(text(&answer).contains("<Message>a &lt;b&gt; &amp; c</Message>"));
        assert!(text(&answer).contains("<ArgumentName1>x&amp;y</ArgumentName1>"));
        let answer = rest_json_error(StatusCode::CONFLICT, "C", "", "say \"hi\"", "r");
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["message"], "say \"hi\"");
    }

    #[test]
    fn head_answers_carry_no_body() {
        let answer = throttle(&Service::S3, "r").unwrap();
        let response = answer.clone().into_response(true);
        assert!(response.body().is_empty());
        let response = answer.into_response(false);
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            response.body().len().to_string().as_str()
        );
    }
}
