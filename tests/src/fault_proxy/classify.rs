//! Which AWS service and operation an HTTP request is, read the way AWS itself routes it:
//! the service from the SigV4 credential scope, the operation from the protocol each service
//! speaks (awsQuery `Action=`, awsJson `X-Amz-Target`, REST method and path).

use std::fmt;

use hyper::http::request::Parts;
use hyper::Method;

/// The services the deployer talks to, and any other signed one (passed through untouched).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    S3,
    Iam,
    Sts,
    Ssm,
    /// CloudWatch Logs (awsJson 1.1, like SSM).
    Logs,
    /// SQS (awsJson 1.0, `AmazonSQS.CreateQueue`).
    Sqs,
    Lambda,
    CloudFormation,
    Other(String),
}

impl Service {
    fn from_signing_name(name: &str) -> Service {
        match name {
            "s3" => Service::S3,
            "iam" => Service::Iam,
            "sts" => Service::Sts,
            "ssm" => Service::Ssm,
            "logs" => Service::Logs,
            "sqs" => Service::Sqs,
            "lambda" => Service::Lambda,
            "cloudformation" => Service::CloudFormation,
            other => Service::Other(other.to_string()),
        }
    }

    /// The SigV4 signing name, as in `iam:CreateUser`.
    pub fn name(&self) -> &str {
        match self {
            Service::S3 => "s3",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Ssm => "ssm",
            Service::Logs => "logs",
            Service::Sqs => "sqs",
            Service::Lambda => "lambda",
            Service::CloudFormation => "cloudformation",
            Service::Other(name) => name,
        }
    }

    /// IAM, STS and CloudFormation speak the awsQuery protocol (form body, XML answers).
    pub fn is_query_protocol(&self) -> bool {
        matches!(self, Service::Iam | Service::Sts | Service::CloudFormation)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the proxy refuses a request itself (with a 400) instead of guessing.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(message: impl Into<String>) -> Malformed {
    Malformed(message.into())
}

/// The service and region of a request from its SigV4 credential scope
/// (`Credential=AKID/20240101/us-east-1/iam/aws4_request`), in the `Authorization` header or,
/// for a presigned URL, the `X-Amz-Credential` query parameter. `None`: not SigV4-signed (the
/// emulator's health check, a TemplateURL fetched by the emulator itself), which the proxy
/// forwards untouched.
pub fn signing_scope(parts: &Parts) -> Result<Option<(Service, String)>, Malformed> {
    let credential = match parts.headers.get(hyper::header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| malformed("the Authorization header is not ASCII"))?;
            let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256") else {
                // Another scheme (SigV2, bearer…): not ours to interpret.
                return Ok(None);
            };
            let start = rest
                .find("Credential=")
                .ok_or_else(|| malformed("the SigV4 Authorization header has no Credential="))?;
            let credential = &rest[start + "Credential=".len()..];
            credential
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        }
        None => {
            let query = parts.uri.query().unwrap_or_default();
            match query_pairs(query, false)?
                .into_iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("X-Amz-Credential"))
            {
                Some((_, credential)) => credential,
                None => return Ok(None),
            }
        }
    };
    // AKID/date/region/service/aws4_request; an access key id has no '/'.
    let scope: Vec<&str> = credential.split('/').collect();
    match scope.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty() && !date.is_empty() && !region.is_empty() && !service.is_empty() =>
        {
            Ok(Some((
                Service::from_signing_name(service),
                region.to_string(),
            )))
        }
        _ => Err(malformed(format!(
            "the SigV4 credential scope {credential:?} is not AKID/DATE/REGION/SERVICE/aws4_request"
        ))),
    }
}

/// Whether the proxy needs the request body to classify or judge the request. Object
/// uploads (S3 requests naming a key) stream through instead: they can be large and nothing
/// in them matters here.
pub fn needs_body(service: &Service, parts: &Parts) -> bool {
    match service {
        Service::S3 => s3_path(parts.uri.path())
            .map(|(_, key)| key.is_none())
            .unwrap_or(true),
        _ => true,
    }
}

/// One classified request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub service: Service,
    /// The API operation name, as in the service's API reference (`CreateBucket`,
    /// `AttachUserPolicy`, `UpdateFunctionConfiguration`); a descriptive stand-in for
    /// operations the proxy does not know by name.
    pub operation: String,
    pub region: String,
    /// S3: the bucket (path-style addressing, as the SDK uses against an endpoint URL).
    pub bucket: Option<String>,
    /// S3: whether the request names an object key.
    pub object: bool,
    /// Lambda: the function named in the path, reduced to its name (the path may hold a
    /// name, a partial or a full ARN).
    pub function: Option<String>,
    /// awsQuery: the decoded form parameters (`UserName`, `PolicyArn`, …).
    pub params: Vec<(String, String)>,
}

impl Call {
    /// `service:Operation`, the key of the operation's fault draws and counters.
    pub fn key(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Classifies a signed request of `service` in `region`; `body` is the whole body when
/// [`needs_body`] asked for it, empty otherwise.
pub fn classify(
    parts: &Parts,
    service: Service,
    region: String,
    body: &[u8],
) -> Result<Call, Malformed> {
    let mut call = Call {
        service,
        operation: String::new(),
        region,
        bucket: None,
        object: false,
        function: None,
        params: Vec::new(),
    };
    // awsJson services (SSM: `AmazonSSM.PutParameter`, CloudWatch Logs:
    // `Logs_20140328.CreateLogGroup`, SQS: `AmazonSQS.CreateQueue`) name the operation in a
    // header.
    if let Some(target) = parts.headers.get("x-amz-target") {
        let target = target
            .to_str()
            .map_err(|_| malformed("X-Amz-Target is not ASCII"))?;
        let operation = target.rsplit('.').next().unwrap_or_default();
        if operation.is_empty() {
            return Err(malformed(format!(
                "X-Amz-Target {target:?} names no operation"
            )));
        }
        call.operation = operation.to_string();
        return Ok(call);
    }
    match call.service {
        ref service if service.is_query_protocol() => {
            // awsQuery: `Action=CreateUser&Version=…&UserName=…`, form-encoded in the body
            // (or, for a GET, in the query string).
            let text = std::str::from_utf8(body)
                .map_err(|_| malformed("the awsQuery form body is not UTF-8"))?;
            let mut params = query_pairs(text, true)?;
            params.extend(query_pairs(parts.uri.query().unwrap_or_default(), true)?);
            let action = params
                .iter()
                .find(|(key, _)| key == "Action")
                .map(|(_, value)| value.clone())
                .filter(|action| !action.is_empty())
                .ok_or_else(|| malformed(format!("a {service} request without Action=")))?;
            call.operation = action;
            call.params = params;
        }
        Service::Lambda => {
            let (operation, function) = lambda_operation(&parts.method, parts.uri.path())?;
            call.operation = operation;
            call.function = function;
        }
        Service::S3 => {
            let (bucket, key) = s3_path(parts.uri.path())?;
            call.operation = s3_operation(parts, bucket.is_some(), key.is_some())?;
            call.object = key.is_some();
            call.bucket = bucket;
        }
        _ => {
            // Unknown REST service: the method is all the proxy can name.
            call.operation = format!("{}", parts.method);
        }
    }
    Ok(call)
}

/// `/bucket` or `/bucket/key…` (path-style): the decoded bucket and key.
fn s3_path(path: &str) -> Result<(Option<String>, Option<String>), Malformed> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket, (!key.is_empty()).then_some(key)),
        None => (path, None),
    };
    let bucket = percent_decode(bucket, false)?;
    if bucket.is_empty() {
        return Err(malformed("an S3 path with an empty bucket name"));
    }
    let key = key.map(|key| percent_decode(key, false)).transpose()?;
    Ok((Some(bucket), key))
}

/// S3 sub-resources that select the operation (`?lifecycle`, `?tagging`, …), in the names the
/// S3 API reference gives the bucket-level operations on them: (query key, Get…, Put…,
/// Delete…).
const S3_BUCKET_SUBRESOURCES: &[(&str, &str, &str, &str)] = &[
    (
        "lifecycle",
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
    ),
    (
        "notification",
        "GetBucketNotificationConfiguration",
        "PutBucketNotificationConfiguration",
        "DeleteBucketNotification",
    ),
    (
        "tagging",
        "GetBucketTagging",
        "PutBucketTagging",
        "DeleteBucketTagging",
    ),
    (
        "versioning",
        "GetBucketVersioning",
        "PutBucketVersioning",
        "DeleteBucketVersioning",
    ),
    (
        "encryption",
        "GetBucketEncryption",
        "PutBucketEncryption",
        "DeleteBucketEncryption",
    ),
    (
        "policy",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
    ),
    (
        "publicAccessBlock",
        "GetPublicAccessBlock",
        "PutPublicAccessBlock",
        "DeletePublicAccessBlock",
    ),
    (
        "ownershipControls",
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "DeleteBucketOwnershipControls",
    ),
    ("acl", "GetBucketAcl", "PutBucketAcl", "DeleteBucketAcl"),
    ("cors", "GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    (
        "website",
        "GetBucketWebsite",
        "PutBucketWebsite",
        "DeleteBucketWebsite",
    ),
    (
        "logging",
        "GetBucketLogging",
        "PutBucketLogging",
        "DeleteBucketLogging",
    ),
    (
        "policyStatus",
        "GetBucketPolicyStatus",
        "PutBucketPolicyStatus",
        "DeleteBucketPolicyStatus",
    ),
    (
        "location",
        "GetBucketLocation",
        "PutBucketLocation",
        "DeleteBucketLocation",
    ),
    (
        "object-lock",
        "GetObjectLockConfiguration",
        "PutObjectLockConfiguration",
        "DeleteObjectLockConfiguration",
    ),
];

fn s3_operation(parts: &Parts, has_bucket: bool, has_key: bool) -> Result<String, Malformed> {
    let pairs = query_pairs(parts.uri.query().unwrap_or_default(), false)?;
    let has = |name: &str| pairs.iter().any(|(key, _)| key == name);
    // The SDK names some operations itself (`?x-id=GetObject`).
    if let Some((_, id)) = pairs.iter().find(|(key, _)| key == "x-id") {
        if !id.is_empty() {
            return Ok(id.clone());
        }
    }
    let method = &parts.method;
    let verb = match *method {
        Method::GET => "Get",
        Method::PUT => "Put",
        Method::DELETE => "Delete",
        Method::HEAD => "Head",
        Method::POST => "Post",
        _ => "Other",
    };
    if !has_bucket {
        return Ok(if *method == Method::GET {
            "ListBuckets".to_string()
        } else {
            format!("{verb}Service")
        });
    }
    if has_key {
        let operation = if has("uploads") && *method == Method::POST {
            "CreateMultipartUpload"
        } else if has("uploadId") {
            match *method {
                Method::PUT => "UploadPart",
                Method::POST => "CompleteMultipartUpload",
                Method::DELETE => "AbortMultipartUpload",
                _ => "ListParts",
            }
        } else if has("tagging") {
            match *method {
                Method::PUT => "PutObjectTagging",
                Method::DELETE => "DeleteObjectTagging",
                _ => "GetObjectTagging",
            }
        } else {
            match *method {
                Method::PUT if parts.headers.contains_key("x-amz-copy-source") => "CopyObject",
                Method::PUT => "PutObject",
                Method::GET => "GetObject",
                Method::HEAD => "HeadObject",
                Method::DELETE => "DeleteObject",
                _ => return Ok(format!("{verb}Object")),
            }
        };
        return Ok(operation.to_string());
    }
    for (query_key, get, put, delete) in S3_BUCKET_SUBRESOURCES {
        if has(query_key) {
            return Ok(match *method {
                Method::GET | Method::HEAD => get,
                Method::PUT => put,
                Method::DELETE => delete,
                _ => return Ok(format!("{verb}Bucket?{query_key}")),
            }
            .to_string());
        }
    }
    let operation = match *method {
        Method::POST if has("delete") => "DeleteObjects",
        Method::GET if has("versions") => "ListObjectVersions",
        Method::GET if has("uploads") => "ListMultipartUploads",
        Method::GET if pairs.iter().any(|(k, v)| k == "list-type" && v == "2") => "ListObjectsV2",
        Method::GET => "ListObjects",
        Method::PUT => "CreateBucket",
        Method::DELETE => "DeleteBucket",
        Method::HEAD => "HeadBucket",
        _ => return Ok(format!("{verb}Bucket")),
    };
    Ok(operation.to_string())
}

/// Lambda's REST paths (`/2015-03-31/functions/NAME/configuration`, `/2017-03-31/tags/ARN`):
/// the operation and the function it names.
fn lambda_operation(method: &Method, path: &str) -> Result<(String, Option<String>), Malformed> {
    let segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode(segment, false))
        .collect::<Result<Vec<_>, _>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let function = |name: &str| Some(function_name(name));
    let (operation, named) = match (method.clone(), segments.as_slice()) {
        (Method::POST, [_, "functions"]) => ("CreateFunction", None),
        (Method::GET, [_, "functions"]) => ("ListFunctions", None),
        (Method::GET, [_, "functions", name]) => ("GetFunction", function(name)),
        (Method::DELETE, [_, "functions", name]) => ("DeleteFunction", function(name)),
        (Method::GET, [_, "functions", name, "configuration"]) => {
            ("GetFunctionConfiguration", function(name))
        }
        (Method::PUT, [_, "functions", name, "configuration"]) => {
            ("UpdateFunctionConfiguration", function(name))
        }
        (Method::PUT, [_, "functions", name, "code"]) => ("UpdateFunctionCode", function(name)),
        (Method::POST, [_, "functions", name, "policy"]) => ("AddPermission", function(name)),
        (Method::GET, [_, "functions", name, "policy"]) => ("GetPolicy", function(name)),
        (Method::DELETE, [_, "functions", name, "policy", _]) => {
            ("RemovePermission", function(name))
        }
        (Method::POST, [_, "functions", name, "versions"]) => ("PublishVersion", function(name)),
        (Method::GET, [_, "functions", name, "versions"]) => {
            ("ListVersionsByFunction", function(name))
        }
        (Method::POST, [_, "functions", name, "invocations"]) => ("Invoke", function(name)),
        (Method::PUT, [_, "functions", name, "concurrency"]) => {
            ("PutFunctionConcurrency", function(name))
        }
        (Method::PUT, [_, "functions", name, "event-invoke-config"]) => {
            ("PutFunctionEventInvokeConfig", function(name))
        }
        (Method::GET, [_, "functions", name, "event-invoke-config"]) => {
            ("GetFunctionEventInvokeConfig", function(name))
        }
        (Method::DELETE, [_, "functions", name, "event-invoke-config"]) => {
            ("DeleteFunctionEventInvokeConfig", function(name))
        }
        (Method::POST, [_, "tags", arn]) => ("TagResource", function(arn)),
        (Method::GET, [_, "tags", arn]) => ("ListTags", function(arn)),
        (Method::DELETE, [_, "tags", arn]) => ("UntagResource", function(arn)),
        (_, [_, "functions", name, ..]) => {
            return Ok((format!("{method} functions/…"), function(name)))
        }
        _ => return Ok((format!("{method} {path}"), None)),
    };
    Ok((operation.to_string(), named))
}

/// The function name in a name, a partial ARN (`123456789012:function:NAME`) or a full ARN,
/// without a version or alias qualifier.
pub fn function_name(reference: &str) -> String {
    match reference.split_once("function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or_default().to_string(),
        None => reference.split(':').next().unwrap_or_default().to_string(),
    }
}

/// The last segment of an IAM ARN (`arn:aws:iam::123456789012:role/path/NAME` → `NAME`): the
/// entity's name.
pub fn iam_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `a=1&b&c=%2F`: decoded pairs, a key without `=` having an empty value. `form`: `+` is a
/// space (application/x-www-form-urlencoded); in a URL query the SDK encodes spaces as `%20`.
fn query_pairs(query: &str, form: bool) -> Result<Vec<(String, String)>, Malformed> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key, form)?, percent_decode(value, form)?))
        })
        .collect()
}

/// Percent-decoding that refuses what a well-formed request never holds: a `%` without two
/// hex digits, or bytes that do not decode to UTF-8.
pub fn percent_decode(text: &str, form: bool) -> Result<String, Malformed> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| malformed(format!("bad percent-encoding in {text:?}")))?;
                decoded.push(hex);
                i += 3;
            }
            b'+' if form => {
                decoded.push(b' ');
                i += 1;
            }
            byte => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|_| malformed(format!("{text:?} does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }

    fn call(method: &str, uri: &str, service: &str, body: &str) -> Call {
        call_with(method, uri, &[("authorization", &auth(service))], body)
    }

    fn call_with(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Call {
        let parts = parts(method, uri, headers);
        let (service, region) = signing_scope(&parts).unwrap().expect("signed");
        classify(&parts, service, region, body.as_bytes()).unwrap()
    }

    #[test]
    fn the_credential_scope_names_service_and_region() {
        let signed = parts("GET", "/", &[("authorization", &auth("iam"))]);
        assert_eq!(
            signing_scope(&signed).unwrap(),
            Some((Service::Iam, "us-east-1".to_string()))
        );
        let presigned = parts_without_auth(
            "/b/k?X-Amz-Credential=AKID%2F20240101%2Feu-west-2%2Fs3%2Faws4_request&X-Amz-Signature=x",
        );
        assert_eq!(
            signing_scope(&presigned).unwrap(),
            Some((Service::S3, "eu-west-2".to_string()))
        );
        assert_eq!(
            signing_scope(&parts_without_auth("/_ministack/health")),
            Ok(None)
        );
        let broken = parts(
            "GET",
            "/",
            &[("authorization", "AWS4-HMAC-SHA256 Signature=x")],
        );
        assert!(signing_scope(&broken).is_err());
        let short = parts(
            "GET",
            "/",
            &[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/s3",
            )],
        );
        assert!(signing_scope(&short).is_err());
    }

    fn parts_without_auth(uri: &str) -> Parts {
        parts("GET", uri, &[])
    }

    #[test]
    fn query_protocol_operations_come_from_the_form_body() {
        let call = call(
            "POST",
            "/",
            "iam",
            "Action=AttachUserPolicy&Version=2010-05-08&UserName=alice\
             &PolicyArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Apolicy%2Fread+only",
        );
        assert_eq!(call.service, Service::Iam);
        assert_eq!(call.operation, "AttachUserPolicy");
        assert_eq!(call.param("UserName"), Some("alice"));
        assert_eq!(
            call.param("PolicyArn"),
            Some("arn:aws:iam::000000000000:policy/read only")
        );
        assert_eq!(call.key(), "iam:AttachUserPolicy");
        let parts = parts("POST", "/", &[("authorization", &auth("sts"))]);
        assert!(classify(&parts, Service::Sts, "us-east-1".into(), b"Version=1").is_err());
        assert!(classify(&parts, Service::Sts, "us-east-1".into(), b"Action=%zz").is_err());
        assert!(classify(&parts, Service::Sts, "us-east-1".into(), b"Action=\xff").is_err());
    }

    #[test]
    fn json_operations_come_from_the_target_header() {
        let call = call_with(
            "POST",
            "/",
            &[
                ("authorization", &auth("ssm")),
                ("x-amz-target", "AmazonSSM.PutParameter"),
            ],
            "{}",
        );
        assert_eq!(
            (call.service, call.operation.as_str()),
            (Service::Ssm, "PutParameter")
        );
    }

    #[test]
    fn lambda_operations_come_from_method_and_path() {
        let cases = [
            ("POST", "/2015-03-31/functions", "CreateFunction", None),
            ("GET", "/2015-03-31/functions/", "ListFunctions", None),
            ("GET", "/2015-03-31/functions/strip", "GetFunction", Some("strip")),
            (
                "PUT",
                "/2015-03-31/functions/strip/configuration",
                "UpdateFunctionConfiguration",
                Some("strip"),
            ),
            (
                "GET",
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Astrip/configuration",
                "GetFunctionConfiguration",
                Some("strip"),
            ),
            ("PUT", "/2015-03-31/functions/strip/code", "UpdateFunctionCode", Some("strip")),
            (
                "PUT",
                "/2019-09-25/functions/strip/event-invoke-config",
                "PutFunctionEventInvokeConfig",
                Some("strip"),
            ),
            ("POST", "/2015-03-31/functions/strip/policy", "AddPermission", Some("strip")),
            (
                "DELETE",
                "/2015-03-31/functions/strip/policy/sid-1",
                "RemovePermission",
                Some("strip"),
            ),
            ("POST", "/2015-03-31/functions/strip/versions", "PublishVersion", Some("strip")),
            (
                "POST",
                "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Astrip",
                "TagResource",
                Some("strip"),
            ),
        ];
        for (method, path, operation, function) in cases {
            let call = call(method, path, "lambda", "");
            assert_eq!(call.operation, operation, "{method} {path}");
            assert_eq!(call.function.as_deref(), function, "{method} {path}");
        }
        let parts = parts(
            "GET",
            "/2015-03-31/functions/%zz",
            &[("authorization", &auth("lambda"))],
        );
        assert!(classify(&parts, Service::Lambda, "us-east-1".into(), b"").is_err());
    }

    #[test]
    fn s3_operations_come_from_method_path_and_subresource() {
        let cases = [
            ("GET", "/", "ListBuckets", None, false),
            ("PUT", "/photos", "CreateBucket", Some("photos"), false),
            ("HEAD", "/photos", "HeadBucket", Some("photos"), false),
            ("DELETE", "/photos", "DeleteBucket", Some("photos"), false),
            (
                "PUT",
                "/photos?lifecycle",
                "PutBucketLifecycleConfiguration",
                Some("photos"),
                false,
            ),
            (
                "GET",
                "/photos?lifecycle=",
                "GetBucketLifecycleConfiguration",
                Some("photos"),
                false,
            ),
            (
                "DELETE",
                "/photos?lifecycle",
                "DeleteBucketLifecycle",
                Some("photos"),
                false,
            ),
            (
                "PUT",
                "/photos?notification",
                "PutBucketNotificationConfiguration",
                Some("photos"),
                false,
            ),
            (
                "GET",
                "/photos?tagging",
                "GetBucketTagging",
                Some("photos"),
                false,
            ),
            (
                "GET",
                "/photos?list-type=2&prefix=a",
                "ListObjectsV2",
                Some("photos"),
                false,
            ),
            (
                "GET",
                "/photos?versions",
                "ListObjectVersions",
                Some("photos"),
                false,
            ),
            (
                "POST",
                "/photos?delete",
                "DeleteObjects",
                Some("photos"),
                false,
            ),
            (
                "PUT",
                "/photos/a%20b.jpg",
                "PutObject",
                Some("photos"),
                true,
            ),
            (
                "GET",
                "/photos/a.jpg?x-id=GetObject",
                "GetObject",
                Some("photos"),
                true,
            ),
            (
                "HEAD",
                "/photos/dir/a.jpg",
                "HeadObject",
                Some("photos"),
                true,
            ),
        ];
        for (method, uri, operation, bucket, object) in cases {
            let call = call(method, uri, "s3", "");
            assert_eq!(call.operation, operation, "{method} {uri}");
            assert_eq!(call.bucket.as_deref(), bucket, "{method} {uri}");
            assert_eq!(call.object, object, "{method} {uri}");
        }
    }

    #[test]
    fn only_bucket_level_s3_requests_are_buffered() {
        let object = parts("PUT", "/photos/big.jpg", &[]);
        let bucket = parts("PUT", "/photos?notification", &[]);
        assert!(!needs_body(&Service::S3, &object));
        assert!(needs_body(&Service::S3, &bucket));
        assert!(needs_body(&Service::Iam, &object));
    }

    #[test]
    fn names_are_read_from_references() {
        assert_eq!(function_name("strip"), "strip");
        assert_eq!(function_name("strip:live"), "strip");
        assert_eq!(
            function_name("arn:aws:lambda:eu-west-2:123456789012:function:strip:$LATEST"),
            "strip"
        );
        assert_eq!(function_name("123456789012:function:strip"), "strip");
        assert_eq!(
            iam_name("arn:aws:iam::123456789012:role/service/strip-role"),
            "strip-role"
        );
        assert_eq!(iam_name("strip-role"), "strip-role");
    }

    #[test]
    fn percent_decoding_refuses_broken_input() {
        assert_eq!(percent_decode("a%2Fb+c", true).unwrap(), "a/b c");
        assert_eq!(percent_decode("a%2Fb+c", false).unwrap(), "a/b+c");
        assert!(percent_decode("%2", false).is_err());
        assert!(percent_decode("%g0", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
    }
}
