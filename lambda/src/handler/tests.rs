//! Handler tests against a mocked S3 (`aws-smithy-mocks`): key decoding end to end, error
//! classification, idempotency, the multipart path and its abort, removal events.
//!
//! Errors are served as real HTTP responses (status + S3's XML error body), so the SDK's
//! own error parsing is part of what is tested. A request no rule matches makes the mock
//! panic, which is how "nothing was written" is enforced: no write rule, no write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use serde_json::json;

use super::event::{parse_record, Notification, RECENT_EVENT};
use super::{test_event_fields, Config, ConfigError, Handler, HandlerError, Outcome};
use crate::StripOptions;

const SOURCE: &str = "pictures-source";
const DEST: &str = "pictures-dest";

fn corpus(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn handler(rules: &[&Rule], part_size: usize) -> Handler {
    let interceptor = rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
        |i, r| i.with_rule(r),
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-2"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        // The handler's classification is under test, not the SDK's retry loop.
        .retry_config(RetryConfig::disabled())
        .build();
    let config = Config {
        destination_bucket: DEST.into(),
        options: StripOptions::default(),
        part_size,
        function_name: Some("strip-test".into()),
        failure_queue_url: None,
        renditions: Vec::new(),
        rendition_limits: crate::rendition::Limits::default(),
    };
    Handler::new(Client::from_conf(conf), config)
}

/// As [`handler`], making a 64 px `thumb` under `thumbs/` beside each original.
fn handler_with_thumb(rules: &[&Rule]) -> Handler {
    let mut handler = handler(rules, 16 << 20);
    handler.config.renditions = vec![super::RenditionConfig {
        name: "thumb".into(),
        max_edge: 64,
        quality: 80,
        prefix: "thumbs/".into(),
    }];
    handler
}

/// What each PutObject wrote: its key and body, in order.
type Written = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Every PutObject's key and body, in order.
fn puts_by_key() -> (Rule, Written) {
    let puts = Arc::new(Mutex::new(Vec::new()));
    let seen = puts.clone();
    let rule = mock!(Client::put_object).then_compute_output(move |req| {
        if let Ok(mut seen) = seen.lock() {
            seen.push((
                req.key().unwrap_or_default().to_owned(),
                req.body().bytes().map(<[u8]>::to_vec).unwrap_or_default(),
            ));
        }
        PutObjectOutput::builder().e_tag("\"out\"").build()
    });
    (rule, puts)
}

/// An upload with a `thumb` declared: the stripped original under its key and an upright
/// thumbnail under `thumbs/<key>`, carrying no metadata segment at all.
#[tokio::test]
async fn an_upload_gets_its_original_and_an_upright_metadata_free_thumbnail() {
    let original = corpus("Canon_EOS_1000D.jpg");
    let (put, puts) = puts_by_key();
    handler_with_thumb(&[&head_missing(), &get_returns(original), &put])
        .handle(created("uploads/a.jpg"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let puts = puts.lock().unwrap();
    let keys: Vec<&str> = puts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["uploads/a.jpg", "thumbs/uploads/a.jpg"]);
    let thumb = &puts[1].1;
    let mut decoder = jpeg_decoder::Decoder::new(&thumb[..]);
    decoder.read_info().expect("a JPEG");
    let info = decoder.info().expect("info");
    assert_eq!(u32::from(info.width.max(info.height)), 64);
    // The camera stored it on its side (Orientation 6): the thumbnail stands upright.
    assert!(info.width < info.height, "{}x{}", info.width, info.height);
    for segment in crate::segments(thumb) {
        let segment = segment.expect("well-formed");
        assert!(
            !matches!(segment.marker.0, 0xE1 | 0xED | 0xFE),
            "metadata segment {:?} in the thumbnail",
            segment.marker
        );
    }
}

/// A duplicate event: the original's copy and the thumbnail are both of this upload already;
/// nothing is read or written.
#[tokio::test]
async fn a_duplicate_event_rewrites_neither_original_nor_rendition() {
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"copy\"")
            .metadata("source-etag", "0123abcd")
            .metadata("source-version-id", "v1")
            .metadata("source-sequencer", "0055AED6DCD9028100")
            .build()
    });
    // No GetObject or PutObject rule: either would panic the mock.
    handler_with_thumb(&[&head])
        .handle(created("uploads/a.jpg"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        head.num_calls(),
        2,
        "the original's copy, then the thumbnail"
    );
}

const QUEUE_URL: &str = "https://sqs.eu-west-2.amazonaws.com/123456789012/failures";

/// As [`handler`], with a failures queue whose SendMessage calls `sqs` answers.
fn handler_with_queue(rules: &[&Rule], sqs: &[&Rule]) -> Handler {
    let mut handler = handler(rules, 1 << 20);
    handler.config.failure_queue_url = Some(QUEUE_URL.into());
    let interceptor = sqs.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::Sequential),
        |i, r| i.with_rule(r),
    );
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("eu-west-2"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    handler.with_failure_queue(aws_sdk_sqs::Client::from_conf(conf))
}

/// The refusal record a SendMessage carried.
fn sent_record(
    request: &aws_sdk_sqs::operation::send_message::SendMessageInput,
) -> serde_json::Value {
    serde_json::from_str(request.message_body().unwrap_or_default()).unwrap_or_default()
}

/// A PNG uploaded as `.jpg`: refused without retry, one record in the failures queue with
/// the key, version, size, reason and offset; nothing written.
#[tokio::test]
async fn a_refused_upload_leaves_one_record_in_the_failures_queue() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let records = Arc::new(Mutex::new(Vec::new()));
    let seen = records.clone();
    let send = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(move |r| {
            seen.lock().unwrap().push(sent_record(r));
            r.queue_url() == Some(QUEUE_URL)
        })
        .then_output(|| {
            aws_sdk_sqs::operation::send_message::SendMessageOutput::builder()
                .message_id("m-1")
                .build()
        });
    handler_with_queue(&[&head_missing(), &get_returns(png)], &[&send])
        .handle(created("uploads/picture.jpg"))
        .await
        .unwrap_or_else(|e| panic!("a refusal is not retried: {e}"));
    assert_eq!(send.num_calls(), 1);
    let records = records.lock().unwrap();
    let record = &records[0];
    assert_eq!(record["kind"], "refusal");
    assert_eq!(record["key"], "uploads/picture.jpg");
    assert_eq!(record["bucket"], SOURCE);
    assert_eq!(record["reason"], "not_a_jpeg");
    assert_eq!(record["offset"], 0);
    assert_eq!(record["function"], "strip-test");
    assert!(
        record["time_ms"].as_u64().is_some_and(|t| t > 0),
        "{record}"
    );
    assert!(
        record["error"].as_str().is_some_and(|e| e.contains("PNG")),
        "{record}"
    );
}

/// A refusal whose record cannot be sent fails the invocation: Lambda retries it, and its
/// on-failure destination keeps the event; nothing is lost.
#[tokio::test]
async fn a_refusal_that_cannot_be_recorded_fails_the_invocation() {
    let mut cut = corpus("DSCN0010.jpg");
    cut.truncate(5_000);
    let send = mock!(aws_sdk_sqs::Client::send_message)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"com.amazonaws.sqs#AccessDenied","message":"not allowed"}"#.into()),
        )
        .build();
    let err = handler_with_queue(&[&head_missing(), &get_returns(cut)], &[&send])
        .handle(created("uploads/cut.jpg"))
        .await
        .expect_err("the record was not sent");
    let text = err.to_string();
    assert!(
        text.contains("refusal record could not be sent") && text.contains("AccessDenied"),
        "{text}"
    );
}

/// An S3 notification with one record, shaped like S3's own (key form-URL-encoded).
fn event(event_name: &str, bucket: &str, object: serde_json::Value) -> S3Event {
    let record = json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-2",
        "eventTime": "2024-06-01T12:00:00.000Z", "eventName": event_name,
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "strip",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": object}
    });
    serde_json::from_value(json!({ "Records": [record] }))
        .unwrap_or_else(|e| panic!("test event: {e}"))
}

fn created(raw_key: &str) -> S3Event {
    event(
        "ObjectCreated:Put",
        SOURCE,
        json!({"key": raw_key, "size": 1, "eTag": "0123abcd", "versionId": "v1", "sequencer": "0055AED6DCD9028100"}),
    )
}

fn s3_error(status: u16, code: &str) -> (u16, Option<String>) {
    (status, Some(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>mock {code}</Message></Error>")))
}

fn head_missing() -> Rule {
    // HEAD responses have no body: the SDK knows a 404 only by its status.
    mock!(Client::head_object)
        .sequence()
        .http_status(404, None)
        .repeatedly()
        .build()
}

fn get_returns(bytes: Vec<u8>) -> Rule {
    mock!(Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .body(ByteStream::from(bytes.clone()))
            .content_length(i64::try_from(bytes.len()).unwrap_or_default())
            .e_tag("\"0123abcd\"")
            .version_id("v1")
            .build()
    })
}

fn get_fails(status: u16, code: &str) -> Rule {
    let (status, body) = s3_error(status, code);
    mock!(Client::get_object)
        .sequence()
        .http_status(status, body)
        .repeatedly()
        .build()
}

/// A PutObject rule that records the bodies it receives.
fn put_recording() -> (Rule, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let rule = mock!(Client::put_object).then_compute_output(move |req| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(req.body().bytes().map(<[u8]>::to_vec).unwrap_or_default());
        }
        PutObjectOutput::builder().e_tag("\"out\"").build()
    });
    (rule, bodies)
}

#[tokio::test]
async fn strips_into_one_put_with_decoded_key_type_and_stamp() {
    let original = corpus("hopper_orientation_6.jpg");
    let expected = crate::strip(&original).unwrap_or_else(|e| panic!("library strip: {e}"));
    let get = mock!(Client::get_object)
        .match_requests(|r| {
            r.bucket() == Some(SOURCE)
                && r.key() == Some("uploads/my photo+1 café.jpg")
                && r.version_id() == Some("v1")
                // Pinned by the version: no ETag condition needed.
                && r.if_match().is_none()
        })
        .then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from(original.clone()))
                .e_tag("\"0123abcd\"")
                .version_id("v1")
                .build()
        });
    let head = mock!(Client::head_object)
        .match_requests(|r| r.bucket() == Some(DEST))
        .sequence()
        .http_status(404, None)
        .build();
    let put = mock!(Client::put_object)
        .match_requests(|r| {
            let meta = r.metadata().cloned().unwrap_or_default();
            r.bucket() == Some(DEST)
                && r.key() == Some("uploads/my photo+1 café.jpg")
                && r.content_type() == Some("image/jpeg")
                && r.if_none_match() == Some("*")
                && meta.get("source-etag").map(String::as_str) == Some("0123abcd")
                && meta.get("source-version-id").map(String::as_str) == Some("v1")
                && meta.get("source-sequencer").map(String::as_str) == Some("0055AED6DCD9028100")
        })
        .then_compute_output({
            let expected = expected.clone();
            move |r| {
                assert_eq!(
                    r.body().bytes(),
                    Some(&expected[..]),
                    "the copy is the library's output"
                );
                PutObjectOutput::builder().build()
            }
        });
    let h = handler(&[&head, &get, &put], 1 << 20);
    h.handle(created("uploads/my+photo%2B1+caf%C3%A9.jpg"))
        .await
        .unwrap_or_else(|e| panic!("handled: {e}"));
    assert_eq!(
        (head.num_calls(), get.num_calls(), put.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn unversioned_source_is_pinned_by_etag() {
    let get = mock!(Client::get_object)
        .match_requests(|r| r.version_id().is_none() && r.if_match() == Some("\"0123abcd\""))
        .sequence()
        .http_status(412, s3_error(412, "PreconditionFailed").1)
        .build();
    let h = handler(&[&head_missing(), &get], 1 << 20);
    let ev = event(
        "ObjectCreated:Put",
        SOURCE,
        json!({"key": "k.jpg", "eTag": "0123abcd", "sequencer": "01"}),
    );
    // Overwritten since the event: the newer upload's own event makes the copy.
    h.handle(ev)
        .await
        .unwrap_or_else(|e| panic!("skipped, not failed: {e}"));
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn permanent_failures_write_nothing_and_succeed() {
    let cases: Vec<(&str, Rule)> = vec![
        ("PNG named .jpg", get_returns(corpus("normalphoto.jpg"))),
        ("empty file", get_returns(corpus("empty.jpg"))),
        ("truncated JPEG", get_returns(corpus("truncated_jpeg.jpg"))),
        ("missing SOF", get_returns(corpus("missing-sof.jpg"))),
        ("deleted since", get_fails(404, "NoSuchKey")),
        ("version gone", get_fails(404, "NoSuchVersion")),
        ("access denied", get_fails(403, "AccessDenied")),
    ];
    for (what, get) in cases {
        // No write rule: a PutObject or multipart call would panic the mock.
        let h = handler(&[&head_missing(), &get], 1 << 20);
        let result = h.handle(created("a.jpg")).await;
        assert!(
            result.is_ok(),
            "{what}: a permanent failure succeeds: {result:?}"
        );
        assert_eq!(get.num_calls(), 1, "{what}: read once");
    }
}

/// `created("a.jpg")`, reported by S3 `age` ago.
fn created_ago(age: Duration) -> S3Event {
    let mut ev = created("a.jpg");
    ev.records[0].event_time = (SystemTime::now() - age).into();
    ev
}

#[tokio::test]
async fn a_missing_source_is_retried_while_its_event_is_recent() {
    // A bucket whose versioning was just enabled may answer 404 for a new object for a while.
    for code in ["NoSuchKey", "NoSuchVersion"] {
        for age in [Duration::ZERO, RECENT_EVENT - Duration::from_secs(60)] {
            // No write rule: a PutObject or multipart call would panic the mock.
            let get = get_fails(404, code);
            let result = handler(&[&head_missing(), &get], 1 << 20)
                .handle(created_ago(age))
                .await;
            assert!(
                matches!(
                    &result,
                    Err(HandlerError::Retry { failed: 1, total: 1, first })
                        if first.contains(code) && first.contains("less than 5 minutes old")
                ),
                "{code} at {age:?}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_missing_source_is_permanent_once_its_event_is_old() {
    let ev = created_ago(RECENT_EVENT + Duration::from_secs(60));
    let object = parse_record(&ev.records[0]).unwrap_or_else(|e| panic!("{e}"));
    let get = get_fails(404, "NoSuchKey");
    let h = handler(&[&head_missing(), &get], 1 << 20);
    // The outcome the log line is written from: rejected, with its reason.
    let outcome = h.process(&object).await;
    assert!(
        matches!(&outcome, Outcome::Rejected { reason: "source_not_found", error, .. } if error.contains("NoSuchKey")),
        "{outcome:?}"
    );
    h.handle(ev)
        .await
        .unwrap_or_else(|e| panic!("a permanent failure succeeds: {e}"));
    assert_eq!(get.num_calls(), 2);
}

#[tokio::test]
async fn the_s3_test_message_is_logged_and_succeeds() {
    // What S3 sends when a notification configuration is set: no records.
    let message = json!({
        "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z",
        "Bucket": "pictures-source", "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
    });
    let notification: Notification =
        serde_json::from_value(message).unwrap_or_else(|e| panic!("test message: {e}"));
    let Notification::Test(test) = &notification else {
        panic!("not a test message: {notification:?}");
    };
    let fields = test_event_fields(test);
    assert_eq!(fields["bucket"], "pictures-source");
    assert_eq!(fields["time"], "2014-10-13T15:57:02.089Z");
    assert_eq!(fields["request_id"], "5582815E1AEA5ADF");
    // No rules: any S3 call would panic.
    handler(&[], 1 << 20)
        .handle(notification)
        .await
        .unwrap_or_else(|e| panic!("the test message succeeds: {e}"));
}

#[tokio::test]
async fn transient_failures_fail_the_invocation() {
    let put_5xx = {
        let (status, body) = s3_error(500, "InternalError");
        mock!(Client::put_object)
            .sequence()
            .http_status(status, body)
            .build()
    };
    let head_503 = {
        let (status, body) = s3_error(503, "SlowDown");
        mock!(Client::head_object)
            .sequence()
            .http_status(status, body)
            .build()
    };
    let cases: Vec<(&str, Vec<Rule>)> = vec![
        (
            "GetObject throttled",
            vec![head_missing(), get_fails(503, "SlowDown")],
        ),
        (
            "GetObject 500",
            vec![head_missing(), get_fails(500, "InternalError")],
        ),
        (
            "PutObject 500",
            vec![head_missing(), get_returns(corpus("hopper.jpg")), put_5xx],
        ),
        ("HeadObject throttled", vec![head_503]),
        // A denied write is a deployment problem: fail loudly, retry once fixed.
        (
            "PutObject denied",
            vec![head_missing(), get_returns(corpus("hopper.jpg")), {
                let (status, body) = s3_error(403, "AccessDenied");
                mock!(Client::put_object)
                    .sequence()
                    .http_status(status, body)
                    .build()
            }],
        ),
    ];
    for (what, rules) in cases {
        let refs: Vec<&Rule> = rules.iter().collect();
        let result = handler(&refs, 1 << 20).handle(created("a.jpg")).await;
        assert!(
            matches!(
                result,
                Err(HandlerError::Retry {
                    failed: 1,
                    total: 1,
                    ..
                })
            ),
            "{what}: {result:?}"
        );
    }
}

#[tokio::test]
async fn duplicate_and_late_events_are_skipped() {
    // The copy records the event that made it; an event with the same sequencer is a
    // duplicate, one with a smaller sequencer arrived after a later upload was copied.
    for sequencer in ["0055AED6DCD9028100", "0055AED6DCD90280FF"] {
        let head = mock!(Client::head_object).then_output(|| {
            HeadObjectOutput::builder()
                .e_tag("\"copy\"")
                .metadata("source-etag", "0123abcd")
                .metadata("source-version-id", "v1")
                .metadata("source-sequencer", "0055AED6DCD9028100")
                .build()
        });
        let get = get_returns(corpus("hopper.jpg"));
        let mut ev = created("a.jpg");
        ev.records[0].s3.object.sequencer = Some(sequencer.to_owned());
        handler(&[&head, &get], 1 << 20)
            .handle(ev)
            .await
            .unwrap_or_else(|e| panic!("skipped: {e}"));
        assert_eq!(
            get.num_calls(),
            0,
            "{sequencer}: the source is not even read"
        );
    }
}

#[tokio::test]
async fn a_newer_upload_replaces_the_copy_conditionally() {
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"old-copy\"")
            .metadata("source-sequencer", "0055AED6DCD90280")
            .build()
    });
    let (put, bodies) = put_recording();
    let put_checked = mock!(Client::put_object)
        .match_requests(|r| r.if_match() == Some("\"old-copy\"") && r.if_none_match().is_none())
        .then_output(|| PutObjectOutput::builder().build());
    handler(
        &[
            &head,
            &get_returns(corpus("hopper.jpg")),
            &put_checked,
            &put,
        ],
        1 << 20,
    )
    .handle(created("a.jpg"))
    .await
    .unwrap_or_else(|e| panic!("handled: {e}"));
    assert_eq!(put_checked.num_calls(), 1);
    assert!(
        bodies.lock().map(|b| b.is_empty()).unwrap_or(false),
        "only the conditional write happened"
    );
}

#[tokio::test]
async fn a_racing_writer_makes_the_handler_look_again() {
    // First look: no copy; the conditional write then loses to another invocation (412);
    // second look: that invocation's copy is of this very upload, so nothing more to do.
    let head = mock!(Client::head_object)
        .sequence()
        .http_status(404, None)
        .output(|| {
            HeadObjectOutput::builder()
                .e_tag("\"theirs\"")
                .metadata("source-sequencer", "0055AED6DCD9028100")
                .build()
        })
        .build();
    let put = {
        let (status, body) = s3_error(412, "PreconditionFailed");
        mock!(Client::put_object)
            .sequence()
            .http_status(status, body)
            .build()
    };
    let get = get_returns(corpus("hopper.jpg"));
    handler(&[&head, &get, &put], 1 << 20)
        .handle(created("a.jpg"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (head.num_calls(), get.num_calls(), put.num_calls()),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn large_pictures_go_multipart_and_match_the_library() {
    let original = corpus("DSCN0010.jpg");
    let expected = crate::strip(&original).unwrap_or_else(|e| panic!("library strip: {e}"));
    let part_size = 64 * 1024;
    let parts = Arc::new(Mutex::new(Vec::<(i32, Vec<u8>)>::new()));
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| {
            r.bucket() == Some(DEST)
                && r.content_type() == Some("image/jpeg")
                && r.metadata()
                    .and_then(|m| m.get("source-etag"))
                    .map(String::as_str)
                    == Some("0123abcd")
        })
        .then_output(|| {
            CreateMultipartUploadOutput::builder()
                .upload_id("up-1")
                .build()
        });
    let upload = mock!(Client::upload_part)
        .match_requests(|r| r.upload_id() == Some("up-1"))
        .then_compute_output({
            let parts = parts.clone();
            move |r| {
                let n = r.part_number().unwrap_or_default();
                if let Ok(mut parts) = parts.lock() {
                    parts.push((n, r.body().bytes().map(<[u8]>::to_vec).unwrap_or_default()));
                }
                UploadPartOutput::builder()
                    .e_tag(format!("\"part-{n}\""))
                    .build()
            }
        });
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            let numbers: Vec<i32> = r
                .multipart_upload()
                .map(|m| m.parts().iter().filter_map(|p| p.part_number()).collect())
                .unwrap_or_default();
            r.if_none_match() == Some("*")
                && numbers == (1..=i32::try_from(numbers.len()).unwrap_or(0)).collect::<Vec<_>>()
        })
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    handler(
        &[
            &head_missing(),
            &get_returns(original.clone()),
            &create,
            &upload,
            &complete,
        ],
        part_size,
    )
    .handle(created("big.jpg"))
    .await
    .unwrap_or_else(|e| panic!("handled: {e}"));
    assert_eq!(complete.num_calls(), 1);
    let parts = parts.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(parts.len() >= 2, "{} parts", parts.len());
    // Every part but the last is exactly one part size: the buffer never outgrew it.
    assert!(parts[..parts.len() - 1]
        .iter()
        .all(|(_, p)| p.len() == part_size));
    let joined: Vec<u8> = parts.into_iter().flat_map(|(_, p)| p).collect();
    assert!(
        joined == expected,
        "multipart copy differs from the library's output"
    );
}

#[tokio::test]
async fn a_picture_failing_after_parts_were_sent_is_aborted() {
    // Cut inside the scan data: the stripper can only tell at the end (no EOI).
    let mut cut = corpus("DSCN0010.jpg");
    cut.truncate(150_000);
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("up-2")
            .build()
    });
    let upload = mock!(Client::upload_part)
        .then_output(|| UploadPartOutput::builder().e_tag("\"p\"").build());
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("up-2") && r.bucket() == Some(DEST))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    // No CompleteMultipartUpload rule: completing would panic the mock.
    handler(
        &[&head_missing(), &get_returns(cut), &create, &upload, &abort],
        64 * 1024,
    )
    .handle(created("cut.jpg"))
    .await
    .unwrap_or_else(|e| panic!("a corrupt picture is a permanent failure: {e}"));
    assert!(upload.num_calls() >= 1, "parts had been sent");
    assert_eq!(abort.num_calls(), 1);
}

#[tokio::test]
async fn events_from_the_destination_bucket_are_refused() {
    // No rules: any S3 call would panic.
    let h = handler(&[], 1 << 20);
    let ev = event(
        "ObjectCreated:Put",
        DEST,
        json!({"key": "a.jpg", "eTag": "e"}),
    );
    assert!(
        matches!(h.handle(ev).await, Err(HandlerError::Recursion { bucket }) if bucket == DEST)
    );
}

#[tokio::test]
async fn removal_deletes_the_copy_unless_it_is_newer() {
    let removed = |sequencer: &str| {
        event(
            "ObjectRemoved:DeleteMarkerCreated",
            SOURCE,
            json!({"key": "dir/a+b.jpg", "versionId": "dm1", "sequencer": sequencer}),
        )
    };
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"copy\"")
            .metadata("source-sequencer", "0000000000000005")
            .build()
    });
    let delete = mock!(Client::delete_object)
        .match_requests(|r| {
            r.bucket() == Some(DEST)
                && r.key() == Some("dir/a b.jpg")
                && r.if_match() == Some("\"copy\"")
        })
        .then_output(|| DeleteObjectOutput::builder().build());

    // The copy comes from a later upload (sequencer 5 > 4): kept.
    handler(&[&head, &delete], 1 << 20)
        .handle(removed("0000000000000004"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(delete.num_calls(), 0);
    // The removal is later than the copy's upload: deleted.
    handler(&[&head, &delete], 1 << 20)
        .handle(removed("0000000000000006"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(delete.num_calls(), 1);
    // No copy: nothing to delete.
    handler(&[&head_missing()], 1 << 20)
        .handle(removed("0000000000000007"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn deleting_another_version_keeps_the_copy() {
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"copy\"")
            .metadata("source-version-id", "current")
            .build()
    });
    let ev = event(
        "ObjectRemoved:Delete",
        SOURCE,
        json!({"key": "a.jpg", "versionId": "old"}),
    );
    // No delete rule: deleting would panic the mock.
    handler(&[&head], 1 << 20)
        .handle(ev)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn config_requires_a_destination() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        Config::from_lookup(env(&[])).err(),
        Some(ConfigError::MissingDestination)
    );
    assert_eq!(
        Config::from_lookup(env(&[("DESTINATION_BUCKET", "  ")])).err(),
        Some(ConfigError::MissingDestination)
    );
    let config = Config::from_lookup(env(&[
        ("DESTINATION_BUCKET", "dest"),
        ("AWS_LAMBDA_FUNCTION_NAME", "f"),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.destination_bucket, "dest");
    assert_eq!(config.function_name.as_deref(), Some("f"));
    assert_eq!(config.part_size, 8 * 1024 * 1024);
    assert_eq!(config.failure_queue_url, None);
    let config = Config::from_lookup(env(&[
        ("DESTINATION_BUCKET", "dest"),
        (
            "FAILURE_QUEUE_URL",
            " https://sqs.eu-west-2.amazonaws.com/1/q ",
        ),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.failure_queue_url.as_deref(),
        Some("https://sqs.eu-west-2.amazonaws.com/1/q")
    );
}

/// A Batch Operations job's event for one object of `SOURCE` (schema 2.0: bucket by name).
fn batch(raw_key: &str) -> Notification {
    serde_json::from_value(json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-1",
        "job": { "id": "job-1", "userArguments": {} },
        "tasks": [{ "taskId": "task-1", "s3Key": raw_key, "s3VersionId": null, "s3Bucket": SOURCE }]
    }))
    .unwrap_or_else(|e| panic!("batch event: {e}"))
}

/// HeadObject of the source: its current object (`0123abcd`, `v1`), as the batch path
/// reads it before the work.
fn source_head() -> Rule {
    mock!(Client::head_object)
        .match_requests(|req| req.bucket() == Some(SOURCE))
        .then_output(|| {
            HeadObjectOutput::builder()
                .e_tag("\"0123abcd\"")
                .version_id("v1")
                .build()
        })
}

/// HeadObject of the destination: no copy yet.
fn dest_missing() -> Rule {
    mock!(Client::head_object)
        .match_requests(|req| req.bucket() == Some(DEST))
        .sequence()
        .http_status(404, None)
        .repeatedly()
        .build()
}

/// The one result of a batch answer, which echoes the event's schema and invocation.
fn only_result(reply: super::Reply, schema: &str) -> super::TaskResult {
    match reply {
        super::Reply::Batch(response) => {
            assert_eq!(response.invocation_id, "inv-1");
            assert_eq!(response.invocation_schema_version, schema);
            let [result] = <[super::TaskResult; 1]>::try_from(response.results)
                .unwrap_or_else(|r| panic!("one result per task: {r:?}"));
            assert_eq!(result.task_id, "task-1");
            result
        }
        super::Reply::None => panic!("a batch event is answered"),
    }
}

/// A batch task for an object without a copy: read, stripped, written with the stamp of the
/// version it was made from, answered `Succeeded`.
#[tokio::test]
async fn a_batch_task_strips_the_object_and_succeeds() {
    let (put, puts) = puts_by_key();
    let reply = handler(
        &[
            &source_head(),
            &dest_missing(),
            &get_returns(corpus("hopper.jpg")),
            &put,
        ],
        1 << 20,
    )
    .handle(batch("uploads/my%20photo%2B1.jpg"))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let result = only_result(reply, "2.0");
    assert_eq!(
        result.result_code,
        super::ResultCode::Succeeded,
        "{result:?}"
    );
    assert!(result.result_string.starts_with("stripped: "), "{result:?}");
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].0, "uploads/my photo+1.jpg",
        "the key is URL-decoded"
    );
}

/// Idempotent with the S3-event path: a copy already made from this version is not rewritten.
#[tokio::test]
async fn a_batch_task_for_a_current_copy_reads_and_writes_nothing() {
    let dest = mock!(Client::head_object)
        .match_requests(|req| req.bucket() == Some(DEST))
        .then_output(|| {
            HeadObjectOutput::builder()
                .e_tag("\"copy\"")
                .metadata("source-etag", "0123abcd")
                .metadata("source-version-id", "v1")
                .metadata("source-sequencer", "0055AED6DCD9028100")
                .build()
        });
    // No GetObject or PutObject rule: either would panic the mock.
    let reply = handler(&[&source_head(), &dest], 1 << 20)
        .handle(batch("uploads/a.jpg"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = only_result(reply, "2.0");
    assert_eq!(result.result_code, super::ResultCode::Succeeded);
    assert!(result.result_string.starts_with("skipped: "), "{result:?}");
}

/// S3 retries only what can succeed: refusals are permanent (with the reason), throttling
/// and 5xx temporary.
#[tokio::test]
async fn batch_tasks_fail_permanently_or_temporarily_by_cause() {
    let source_gone = mock!(Client::head_object)
        .match_requests(|req| req.bucket() == Some(SOURCE))
        .sequence()
        .http_status(404, None)
        .repeatedly()
        .build();
    let cases: Vec<(&str, Vec<Rule>, super::ResultCode, &str)> = vec![
        (
            "not a JPEG",
            vec![
                source_head(),
                dest_missing(),
                get_returns(b"GIF89a not a jpeg".to_vec()),
            ],
            super::ResultCode::PermanentFailure,
            "not_a_jpeg: ",
        ),
        (
            "deleted since the manifest",
            vec![source_gone],
            super::ResultCode::PermanentFailure,
            "source_not_found: ",
        ),
        (
            "GetObject throttled",
            vec![source_head(), dest_missing(), get_fails(503, "SlowDown")],
            super::ResultCode::TemporaryFailure,
            "",
        ),
        (
            "GetObject 500",
            vec![
                source_head(),
                dest_missing(),
                get_fails(500, "InternalError"),
            ],
            super::ResultCode::TemporaryFailure,
            "",
        ),
    ];
    for (what, rules, code, prefix) in cases {
        let refs: Vec<&Rule> = rules.iter().collect();
        let reply = handler(&refs, 1 << 20)
            .handle(batch("uploads/a.jpg"))
            .await
            .unwrap_or_else(|e| panic!("{what}: the invocation itself succeeds: {e}"));
        let result = only_result(reply, "2.0");
        assert_eq!(result.result_code, code, "{what}: {result:?}");
        assert!(
            result.result_string.starts_with(prefix),
            "{what}: {result:?}"
        );
        assert!(!result.result_string.is_empty(), "{what}: says why");
    }
}

/// A task naming the destination bucket would make the function feed itself.
#[tokio::test]
async fn a_batch_task_on_the_destination_is_refused() {
    let event: Notification = serde_json::from_value(json!({
        "invocationSchemaVersion": "1.0", "invocationId": "inv-1", "job": {"id": "job-1"},
        "tasks": [{ "taskId": "task-1", "s3Key": "a.jpg", "s3VersionId": null,
                    "s3BucketArn": format!("arn:aws:s3:::{DEST}") }]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let reply = handler(&[], 1 << 20)
        .handle(event)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = only_result(reply, "1.0");
    assert_eq!(result.result_code, super::ResultCode::PermanentFailure);
    assert!(
        result.result_string.starts_with("recursion_refused: "),
        "{result:?}"
    );
}
