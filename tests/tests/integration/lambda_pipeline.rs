//! The strip Lambda end to end on the private emulator, with the real `bootstrap`:
//! buckets, role, function, invoke permission and bucket notification are created with the
//! SDK; pictures uploaded to the source bucket must come out in the destination bucket under
//! the same key, byte-identical to what the stripper library makes of them (so stripped the
//! same way, and pixel-identical to the original); broken uploads must leave nothing behind.
//!
//! The emulator enforces IAM (`AUTH=true`), so the function runs under a role with the
//! least-privilege policy it needs, and the emulator starts the bootstrap as a local process.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, InvocationType, LogType, Runtime, State};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration,
    NotificationConfiguration, NotificationConfigurationFilter, S3KeyFilter,
    VersioningConfiguration,
};
use base64::Engine as _;
use serde_json::json;
use stripstack_tests::{iam, lambda, s3, unique};

/// Longest wait for the function to react to an upload. The first invocation of a new zip
/// takes ~0.6 s on the emulator and a warm one ~70 ms; the bound only stops a broken run.
const REACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The uploads every pipeline filters on, as the stack's trigger does.
const PREFIX: &str = "uploads/";

fn corpus(name: &str) -> Vec<u8> {
    let path = xtask::workspace::root()
        .join("tests/fixtures/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `bootstrap` as `deploy --env local` builds it (the host build, dev profile), built once
/// per test binary and zipped in memory the way `cargo xtask bundle` zips it (one entry
/// `bootstrap`, mode 0755). The handler's behaviour does not depend on the profile; the
/// Lambda build itself is run in `arm64_bootstrap.rs`.
fn bootstrap_zip() -> &'static [u8] {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let binary = xtask::bundle::compile("lambda", xtask::bundle::BuildTarget::Host)
            .unwrap_or_else(|e| panic!("building the bootstrap failed: {e:#}"));
        let bytes = std::fs::read(&binary).expect("reading the bootstrap");
        xtask::bundle::deterministic_zip("bootstrap", &bytes, xtask::bundle::ZipLevel::Quick)
            .expect("zipping the bootstrap")
    })
}

/// One deployed pipeline: source bucket → notification → function → destination bucket.
struct Pipeline {
    source: String,
    destination: String,
    function: String,
}

/// What the deployment varies between tests.
struct Options {
    /// Whether the source bucket keeps versions (the stack's default).
    versioned_source: bool,
    /// Whether the function also gets `ObjectRemoved` events (off by default in the stack).
    removal_events: bool,
    /// Grant the function only what the design's stack file lists (read the source, put
    /// into the destination) instead of the full recommended policy.
    write_only_destination: bool,
}

impl Pipeline {
    async fn deploy(name: &str, options: Options) -> Pipeline {
        let s3 = s3();
        let pipeline = Pipeline {
            source: unique(&format!("{name}-src")),
            destination: unique(&format!("{name}-dst")),
            function: unique(name),
        };
        for bucket in [&pipeline.source, &pipeline.destination] {
            s3.create_bucket()
                .bucket(bucket)
                .set_create_bucket_configuration(stripstack_tests::bucket_location())
                .send()
                .await
                .expect("create bucket");
        }
        // The destination keeps versions, as in the stack: a duplicate write would show.
        let versioned: Vec<&String> = if options.versioned_source {
            vec![&pipeline.source, &pipeline.destination]
        } else {
            vec![&pipeline.destination]
        };
        for bucket in versioned {
            s3.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("enable versioning");
        }

        let role_arn = pipeline.create_role(options.write_only_destination).await;
        let function_arn = pipeline.create_function(&role_arn).await;
        lambda()
            .add_permission()
            .function_name(&pipeline.function)
            .statement_id("s3-invoke")
            .action("lambda:InvokeFunction")
            .principal("s3.amazonaws.com")
            .source_arn(format!("arn:aws:s3:::{}", pipeline.source))
            .send()
            .await
            .expect("add invoke permission");

        let mut events = vec![Event::from("s3:ObjectCreated:*")];
        if options.removal_events {
            events.push(Event::from("s3:ObjectRemoved:*"));
        }
        let trigger = LambdaFunctionConfiguration::builder()
            .id("strip")
            .lambda_function_arn(function_arn)
            .set_events(Some(events))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(PREFIX)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .expect("notification configuration");
        s3.put_bucket_notification_configuration()
            .bucket(&pipeline.source)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .lambda_function_configurations(trigger)
                    .build(),
            )
            .send()
            .await
            .expect("put bucket notification");
        pipeline
    }

    /// The function's role. The recommended policy: read the source; write, read back
    /// (duplicate detection), delete (removal events) copies in the destination, and list
    /// it, so a missing copy reads as 404 rather than 403. `write_only` grants only reading
    /// the source and putting into the destination.
    async fn create_role(&self, write_only: bool) -> String {
        let iam = iam();
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                           "Action": "sts:AssumeRole"}]
        });
        let role = iam
            .create_role()
            .role_name(&self.function)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        let read_source = json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                                 "Resource": format!("arn:aws:s3:::{}/*", self.source)});
        let statements = if write_only {
            vec![
                read_source,
                json!({"Effect": "Allow", "Action": "s3:PutObject",
                       "Resource": format!("arn:aws:s3:::{}/*", self.destination)}),
            ]
        } else {
            vec![
                read_source,
                json!({"Effect": "Allow",
                       "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                       "Resource": format!("arn:aws:s3:::{}/*", self.destination)}),
                json!({"Effect": "Allow", "Action": "s3:ListBucket",
                       "Resource": format!("arn:aws:s3:::{}", self.destination)}),
            ]
        };
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        iam.put_role_policy()
            .role_name(&self.function)
            .policy_name("strip")
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("put role policy");
        role.role()
            .map(|r| r.arn().to_owned())
            .expect("the role has an ARN")
    }

    async fn create_function(&self, role_arn: &str) -> String {
        let lambda = lambda();
        let created = lambda
            .create_function()
            .function_name(&self.function)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role_arn)
            .memory_size(128)
            .timeout(60)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(bootstrap_zip()))
                    .build(),
            )
            .environment(
                Environment::builder()
                    .variables("DESTINATION_BUCKET", &self.destination)
                    .build(),
            )
            .send()
            .await
            .expect("create function");
        // The emulator reports Active even for a function without code: check the code.
        assert!(created.code_size() > 0, "the function has code");
        assert!(created.code_sha256().is_some_and(|sha| !sha.is_empty()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let config = lambda
                .get_function_configuration()
                .function_name(&self.function)
                .send()
                .await
                .expect("get function configuration");
            if config.state() == Some(&State::Active) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the function never became Active"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        created
            .function_arn()
            .expect("the function has an ARN")
            .to_owned()
    }

    async fn upload(&self, key: &str, body: &[u8]) {
        s3().put_object()
            .bucket(&self.source)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("uploading {key}: {e:?}"));
    }

    /// Waits until every key has a copy in the destination bucket.
    async fn wait_for_copies(&self, keys: &[&str]) {
        let deadline = Instant::now() + REACTION_TIMEOUT;
        let mut missing: Vec<&str> = keys.to_vec();
        while !missing.is_empty() {
            let mut still = Vec::new();
            for key in missing {
                if read(&self.destination, key).await.is_none() {
                    still.push(key);
                }
            }
            missing = still;
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no copy in the destination bucket after {REACTION_TIMEOUT:?} for {missing:?}\n{}",
                emulator_log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Invokes the function synchronously with an S3 event and returns its error (if it
    /// failed) and the tail of its log.
    async fn invoke(&self, event: serde_json::Value) -> (Option<String>, String) {
        let out = lambda()
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .expect("invoke");
        let log = out
            .log_result()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        (out.function_error().map(str::to_owned), log)
    }

    /// An S3 event like the one S3 sends, for a direct invocation.
    async fn created_event(&self, bucket: &str, key: &str) -> serde_json::Value {
        let head = s3().head_object().bucket(bucket).key(key).send().await.ok();
        s3_event(
            "ObjectCreated:Put",
            bucket,
            key,
            head.as_ref()
                .and_then(|h| h.e_tag())
                .map(|e| e.trim_matches('"')),
            head.as_ref().and_then(|h| h.version_id()),
        )
    }
}

fn s3_event(
    name: &str,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    version: Option<&str>,
) -> serde_json::Value {
    // Form-URL-encoded as S3 does it: space as `+`, everything else escaped but `/`.
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b'/' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b if b.is_ascii_alphanumeric() => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    // No sequencer: a made-up one would not order correctly against the emulator's.
    let mut object = json!({"key": encoded, "size": 1});
    if let Some(etag) = etag {
        object["eTag"] = etag.into();
    }
    if let Some(version) = version {
        object["versionId"] = version.into();
    }
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": stripstack_tests::REGION,
        "eventTime": "2024-06-01T12:00:00.000Z", "eventName": name,
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "direct",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": object}
    }]})
}

/// The object's bytes, or `None` if there is no object at the key.
async fn read(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let object = s3()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(
        object
            .body
            .collect()
            .await
            .expect("reading the body")
            .into_bytes()
            .to_vec(),
    )
}

/// How many versions (delete markers included) the key has.
async fn versions(bucket: &str, key: &str) -> usize {
    let listed = s3()
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .expect("list object versions");
    let exact = |k: Option<&str>| k == Some(key);
    listed.versions().iter().filter(|v| exact(v.key())).count()
        + listed
            .delete_markers()
            .iter()
            .filter(|m| exact(m.key()))
            .count()
}

fn emulator_log_tail() -> String {
    let log = std::fs::read_to_string(stripstack_tests::emulator().log_file()).unwrap_or_default();
    let start = log.len().saturating_sub(6000);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(log.len());
    format!("--- emulator log (tail) ---\n{}", &log[start..])
}

/// The marker segments up to the first scan's SOS (its header, not its data), as the
/// `lambda` crate's walker finds them: `(marker, payload)`; they stop at the first damage.
fn header_segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
    let mut header = Vec::new();
    for segment in ::lambda::segments(jpeg).map_while(Result::ok) {
        header.push((segment.marker.0, segment.payload));
        if segment.marker == ::lambda::Marker::SOS {
            break;
        }
    }
    header
}

/// Checks that a copy carries no identifying metadata: only JFIF, ICC, Adobe and a minimal
/// EXIF (the orientation alone) among the application segments; no comment; nothing after
/// the end-of-image marker.
fn assert_clean(key: &str, copy: &[u8], orientation_expected: bool) {
    assert!(copy.starts_with(&[0xFF, 0xD8]), "{key}: a JPEG");
    assert!(
        copy.ends_with(&[0xFF, 0xD9]),
        "{key}: ends at EOI (no trailer)"
    );
    let mut exif = 0;
    for (marker, payload) in header_segments(copy) {
        match marker {
            0xE0 => assert!(
                payload.starts_with(b"JFIF\0"),
                "{key}: APP0 other than JFIF"
            ),
            0xE1 => {
                assert!(
                    payload.starts_with(b"Exif\0\0"),
                    "{key}: APP1 other than EXIF (XMP?)"
                );
                assert!(
                    payload.len() <= 64,
                    "{key}: EXIF of {} bytes is more than the orientation",
                    payload.len()
                );
                exif += 1;
            }
            0xE2 => assert!(
                payload.starts_with(b"ICC_PROFILE\0"),
                "{key}: APP2 other than ICC (MPF?)"
            ),
            0xEE => assert!(
                payload.starts_with(b"Adobe"),
                "{key}: APP14 other than Adobe"
            ),
            0xE3..=0xEF | 0xFE => panic!("{key}: metadata segment 0xFF{marker:02X} left in"),
            _ => {}
        }
    }
    assert_eq!(
        exif,
        usize::from(orientation_expected),
        "{key}: minimal EXIF (orientation) segments"
    );
}

/// The pixels of a picture, if it is small enough to decode quickly in a debug build and
/// the decoder supports it.
fn small_picture_pixels(jpeg: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if u32::from(info.width) * u32::from(info.height) > 1_000_000 {
        return None;
    }
    decoder.decode().ok()
}

fn assert_same_pixels(key: &str, original: &[u8], copy: &[u8]) {
    if let Some(before) = small_picture_pixels(original) {
        let after = jpeg_decoder::Decoder::new(copy)
            .decode()
            .unwrap_or_else(|e| panic!("{key}: the copy does not decode: {e}"));
        assert!(before == after, "{key}: pixels changed");
    }
}

/// A structurally valid JPEG larger than one multipart part (8 MiB): a camera picture with
/// its entropy-coded data repeated. The stripper never decodes the scan, so for the
/// transport this is as good as a real 12 MB photo (and the repository needs no such file).
fn large_picture() -> Vec<u8> {
    let picture = corpus("Canon_EOS_1000D.jpg");
    // Where the first scan's entropy-coded data starts.
    let sos = ::lambda::segments(&picture)
        .map_while(Result::ok)
        .find(|segment| segment.marker == ::lambda::Marker::SOS)
        .map(|segment| segment.end() - segment.scan.len())
        .expect("the Canon picture has a scan");
    assert!(
        picture.ends_with(&[0xFF, 0xD9]),
        "the Canon picture has no trailer"
    );
    let scan = &picture[sos..picture.len() - 2];
    let mut large = picture[..sos].to_vec();
    for _ in 0..5 {
        large.extend_from_slice(scan);
    }
    large.extend_from_slice(&[0xFF, 0xD9]);
    assert!(large.len() > 9 * 1024 * 1024);
    large
}

#[tokio::test]
async fn uploads_come_out_stripped_under_the_same_key() {
    let pipeline = Pipeline::deploy(
        "strip",
        Options {
            versioned_source: true,
            removal_events: false,
            write_only_destination: false,
        },
    )
    .await;
    // key → (original, has an orientation to keep)
    let uploads: BTreeMap<&str, (Vec<u8>, bool)> = BTreeMap::from([
        (
            "uploads/plain.jpg",
            (corpus("hopper_orientation_6.jpg"), true),
        ),
        (
            "uploads/with space/my holiday photo.jpg",
            (corpus("DSCN0010.jpg"), false),
        ),
        ("uploads/a+b=c&d;e,f.jpg", (corpus("BlueSquare.jpg"), false)),
        (
            "uploads/café/写真 ünïcödé.jpg",
            (corpus("Canon_EOS_1000D.jpg"), true),
        ),
        (
            "uploads/2024/06/01/deep/er/and/deeper/motion photo.jpg",
            (corpus("motionphoto_google_derived.jpg"), false),
        ),
        ("uploads/100% real (1).jpg", (corpus("pixel_8.jpg"), false)),
        (
            "uploads/kitchen~sink'!.jpg",
            (corpus("ExifTool.jpg"), false),
        ),
        (
            "uploads/cmyk.jpeg",
            (corpus("Multiple_ICC_segments.jpg"), false),
        ),
        (
            "uploads/large/twelve megabytes.jpg",
            (large_picture(), true),
        ),
    ]);
    for (key, (body, _)) in &uploads {
        pipeline.upload(key, body).await;
    }
    let keys: Vec<&str> = uploads.keys().copied().collect();
    pipeline.wait_for_copies(&keys).await;

    let s3 = s3();
    for (key, (original, orientation)) in &uploads {
        let copy = read(&pipeline.destination, key).await.expect("the copy");
        let expected = lambda::strip(original).expect("the library strips the original");
        assert!(
            copy == expected,
            "{key}: the Lambda's copy differs from the library's output"
        );
        assert_clean(key, &copy, *orientation);
        assert_same_pixels(key, original, &copy);

        let head = s3
            .head_object()
            .bucket(&pipeline.destination)
            .key(*key)
            .send()
            .await
            .expect("head copy");
        assert_eq!(head.content_type(), Some("image/jpeg"), "{key}");
        let source = s3
            .head_object()
            .bucket(&pipeline.source)
            .key(*key)
            .send()
            .await
            .expect("head source");
        let meta = head.metadata().cloned().unwrap_or_default();
        assert_eq!(
            meta.get("source-etag").map(String::as_str),
            source.e_tag().map(|e| e.trim_matches('"')),
            "{key}"
        );
        assert_eq!(
            meta.get("source-version-id").map(String::as_str),
            source.version_id(),
            "{key}"
        );

        // The source is untouched: same bytes, and still its one version.
        assert!(
            read(&pipeline.source, key).await.as_ref() == Some(original),
            "{key}: source changed"
        );
        assert_eq!(
            versions(&pipeline.source, key).await,
            1,
            "{key}: source written to"
        );
        assert_eq!(
            versions(&pipeline.destination, key).await,
            1,
            "{key}: copy written more than once"
        );
    }
}

#[tokio::test]
async fn broken_uploads_leave_nothing_behind() {
    let pipeline = Pipeline::deploy(
        "broken",
        Options {
            versioned_source: true,
            removal_events: false,
            write_only_destination: false,
        },
    )
    .await;
    let broken: [(&str, Vec<u8>, &str); 3] = [
        (
            "uploads/bad/png named.jpg",
            corpus("normalphoto.jpg"),
            "not_a_jpeg",
        ),
        ("uploads/bad/empty.jpg", corpus("empty.jpg"), "not_a_jpeg"),
        (
            "uploads/bad/truncated.jpg",
            corpus("truncated_jpeg.jpg"),
            "corrupt_jpeg",
        ),
    ];
    for (key, body, _) in &broken {
        pipeline.upload(key, body).await;
    }
    // Uploaded last: once its copy is there, the events before it have been delivered.
    let sentinel = "uploads/bad/zz-sentinel.jpg";
    pipeline.upload(sentinel, &corpus("hopper.jpg")).await;
    pipeline.wait_for_copies(&[sentinel]).await;

    for (key, body, reason) in &broken {
        assert!(
            read(&pipeline.destination, key).await.is_none(),
            "{key}: a copy was written"
        );
        assert!(
            read(&pipeline.source, key).await.as_ref() == Some(body),
            "{key}: source changed"
        );
        assert_eq!(
            versions(&pipeline.source, key).await,
            1,
            "{key}: source written to"
        );
        // The same event once more, synchronously: a permanent failure is a success for
        // Lambda (no useless retries), with the reason in the function's log.
        let event = pipeline.created_event(&pipeline.source, key).await;
        let (error, log) = pipeline.invoke(event).await;
        assert_eq!(
            error, None,
            "{key}: a permanent failure must not fail the invocation\n{log}"
        );
        assert!(
            log.contains("\"event\":\"rejected\"") && log.contains(reason),
            "{key}: {log}"
        );
        assert!(
            read(&pipeline.destination, key).await.is_none(),
            "{key}: a copy was written"
        );
    }
}

#[tokio::test]
async fn duplicates_are_skipped_and_misrouted_events_refused() {
    let pipeline = Pipeline::deploy(
        "dup",
        Options {
            versioned_source: true,
            removal_events: false,
            write_only_destination: false,
        },
    )
    .await;
    let key = "uploads/twice.jpg";
    pipeline.upload(key, &corpus("iptc.jpg")).await;
    pipeline.wait_for_copies(&[key]).await;

    // S3 delivers at least once: the same event again changes nothing in the destination.
    let event = pipeline.created_event(&pipeline.source, key).await;
    let (error, log) = pipeline.invoke(event).await;
    assert_eq!(error, None, "{log}");
    assert!(log.contains("\"event\":\"skipped\""), "{log}");
    assert_eq!(
        versions(&pipeline.destination, key).await,
        1,
        "the duplicate wrote a new version"
    );

    // An object that is gone is a permanent failure: logged, not retried.
    let gone = s3_event(
        "ObjectCreated:Put",
        &pipeline.source,
        "uploads/never uploaded.jpg",
        Some("abc"),
        None,
    );
    let (error, log) = pipeline.invoke(gone).await;
    assert_eq!(error, None, "{log}");
    assert!(log.contains("source_not_found"), "{log}");

    // An event from the destination bucket would make the function trigger itself.
    let misrouted = s3_event("ObjectCreated:Put", &pipeline.destination, key, None, None);
    let (error, _) = pipeline.invoke(misrouted).await;
    assert!(
        error.is_some(),
        "an event from the destination bucket must fail the invocation"
    );
    assert_eq!(versions(&pipeline.destination, key).await, 1);
}

#[tokio::test]
async fn deleting_a_picture_deletes_its_copy() {
    let pipeline = Pipeline::deploy(
        "removal",
        Options {
            versioned_source: false,
            removal_events: true,
            write_only_destination: false,
        },
    )
    .await;
    let keys = ["uploads/to delete+1.jpg", "uploads/to keep.jpg"];
    for key in keys {
        pipeline
            .upload(key, &corpus("hopper_orientation_3.jpg"))
            .await;
    }
    pipeline.wait_for_copies(&keys).await;

    s3().delete_object()
        .bucket(&pipeline.source)
        .key(keys[0])
        .send()
        .await
        .expect("delete in the source");
    let deadline = Instant::now() + REACTION_TIMEOUT;
    while read(&pipeline.destination, keys[0]).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the copy of a deleted picture is still readable\n{}",
            emulator_log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        read(&pipeline.destination, keys[1]).await.is_some(),
        "the other copy stays"
    );
}

#[tokio::test]
async fn a_role_that_cannot_read_the_destination_still_gets_copies() {
    let pipeline = Pipeline::deploy(
        "writeonly",
        Options {
            versioned_source: true,
            removal_events: false,
            write_only_destination: true,
        },
    )
    .await;
    let key = "uploads/write only.jpg";
    let original = corpus("DSCN0010.jpg");
    pipeline.upload(key, &original).await;
    pipeline.wait_for_copies(&[key]).await;
    let copy = read(&pipeline.destination, key).await.expect("the copy");
    assert!(copy == lambda::strip(&original).expect("library strip"));

    // Without s3:GetObject on the destination the function cannot recognise a duplicate
    // (the emulator enforces the role's policy): it writes the same bytes again, and says so.
    let event = pipeline.created_event(&pipeline.source, key).await;
    let (error, log) = pipeline.invoke(event).await;
    assert_eq!(error, None, "{log}");
    assert!(log.contains("\"replaced\":\"unreadable\""), "{log}");
    assert!(read(&pipeline.destination, key).await.as_ref() == Some(&copy));
}
