//! From the S3 notification to the objects to work on: what each record asks for, the
//! decoded key, how two events on one key are ordered, and the test message S3 sends
//! instead of records. Pure: no I/O.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use percent_encoding::percent_decode;
use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::Value;

/// What Lambda hands the function: the records of an S3 notification, the test message
/// S3 sends in their place, or the tasks of an S3 Batch Operations job.
#[derive(Debug)]
pub enum Notification {
    Records(S3Event),
    Test(TestEvent),
    Batch(super::batch::BatchEvent),
}

impl From<S3Event> for Notification {
    fn from(event: S3Event) -> Self {
        Notification::Records(event)
    }
}

/// The message S3 sends when a notification configuration is set on a bucket: no
/// `Records`, nothing to process. Its shape, from the S3 user guide's "Event message
/// structure" (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>):
/// `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z",
/// "Bucket":"bucketname","RequestId":"5582815E1AEA5ADF","HostId":"8cLe…"}`. Every field but
/// `Event` is optional here: the message is only logged.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TestEvent {
    #[serde(default)]
    pub(crate) bucket: Option<String>,
    #[serde(default)]
    pub(crate) time: Option<String>,
    #[serde(default)]
    pub(crate) request_id: Option<String>,
}

/// The `Event` value that marks S3's test message.
const TEST_EVENT: &str = "s3:TestEvent";

impl<'de> Deserialize<'de> for Notification {
    /// A test message is told apart by its `Event` field before anything else is read:
    /// it has no `Records`, which `S3Event` requires, so without this Lambda would report
    /// a deserialization failure and retry a message that needs nothing. A Batch Operations
    /// event is told by its `invocationSchemaVersion`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.get("Event").and_then(Value::as_str) == Some(TEST_EVENT) {
            TestEvent::deserialize(value)
                .map(Notification::Test)
                .map_err(D::Error::custom)
        } else if value.get("invocationSchemaVersion").is_some() {
            super::batch::BatchEvent::deserialize(value)
                .map(Notification::Batch)
                .map_err(D::Error::custom)
        } else {
            S3Event::deserialize(value)
                .map(Notification::Records)
                .map_err(D::Error::custom)
        }
    }
}

/// How long after its event a missing source object (404) is taken for S3 not showing a new
/// object yet, and retried, rather than for an object deleted since, and dropped.
///
/// S3 reads are strongly consistent after writes, except while versioning is first being
/// enabled on a bucket. The S3 user guide ("Enabling versioning on buckets",
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/manage-versioning-examples.html>):
/// after versioning is first enabled it "may take up to 15 minutes for the change to fully
/// propagate", and meanwhile GET requests for objects written since "may result in HTTP 404
/// NoSuchKey errors". A fresh deployment creates the bucket, enables versioning and can take
/// an upload within seconds, so a 404 on a young event is that delay until proven otherwise.
///
/// Five minutes spans Lambda's default asynchronous retries ("two more times, with a
/// one-minute wait between the first two attempts, and two minutes between the second and
/// third", <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>):
/// each retry of a young event gets the 404 treated as temporary again, and one still
/// missing after the last retry shows as a failed invocation (error metric, on-failure
/// destination) instead of being dropped as if deleted. Past five minutes, the object has
/// had time to appear, and a 404 means it was deleted or overwritten: permanent.
pub(crate) const RECENT_EVENT: Duration = Duration::from_secs(5 * 60);

/// What a record asks the function to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `ObjectCreated:*`: write the stripped copy.
    Strip,
    /// `ObjectRemoved:*`: delete the copy, so a picture the user deleted does not stay public.
    Remove,
    /// Anything else (restore, tagging, lifecycle transitions ...): nothing to do.
    Ignore,
}

/// One object named by an event record, with the key already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectEvent {
    pub event_name: String,
    pub action: Action,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes, as S3 puts it in events.
    pub etag: Option<String>,
    pub sequencer: Option<String>,
    /// When S3 finished the request the record reports (`eventTime`).
    pub event_time: SystemTime,
}

impl ObjectEvent {
    /// Whether the event is younger than [`RECENT_EVENT`] at `now`: a 404 on its object may
    /// still be S3 not showing it yet. An event time ahead of the clock (skew between S3
    /// and Lambda's host) counts as recent.
    pub fn is_recent(&self, now: SystemTime) -> bool {
        now.duration_since(self.event_time)
            .map_or(true, |age| age < RECENT_EVENT)
    }

    /// Only a permanent delete of a *specific version* can leave the key's current picture in
    /// place; a delete marker or an unversioned delete always removes it.
    pub fn deletes_one_version(&self) -> bool {
        self.event_name == "ObjectRemoved:Delete" && self.version_id.is_some()
    }
}

/// A record this function cannot act on at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RecordError {
    #[error("the record names no bucket")]
    MissingBucket,
    #[error("the record names no object key")]
    MissingKey,
    #[error("the object key {raw:?} is not valid form-URL-encoded UTF-8")]
    BadKey { raw: String },
}

/// Reads what the function needs from one record.
pub(crate) fn parse_record(record: &S3EventRecord) -> Result<ObjectEvent, RecordError> {
    let object = &record.s3.object;
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or(RecordError::MissingBucket)?;
    let raw_key = object
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or(RecordError::MissingKey)?;
    let key = decode_key(raw_key).ok_or_else(|| RecordError::BadKey {
        raw: raw_key.to_owned(),
    })?;
    let event_name = record.event_name.clone().unwrap_or_default();
    // S3 sends the name without the `s3:` prefix the notification configuration uses;
    // accept both so a hand-made test event works too.
    let short = event_name.strip_prefix("s3:").unwrap_or(&event_name);
    let action = if short.starts_with("ObjectCreated:") {
        Action::Strip
    } else if short.starts_with("ObjectRemoved:") {
        Action::Remove
    } else {
        Action::Ignore
    };
    Ok(ObjectEvent {
        event_name: short.to_owned(),
        action,
        bucket,
        key,
        // Unversioned buckets send no versionId, or the string "null".
        version_id: object
            .version_id
            .clone()
            .filter(|v| !v.is_empty() && v != "null"),
        etag: object
            .e_tag
            .as_deref()
            .map(trim_etag)
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
        sequencer: object.sequencer.clone().filter(|s| !s.is_empty()),
        event_time: SystemTime::from(record.event_time),
    })
}

/// Decodes an event's object key. S3 form-URL-encodes keys in notifications: `+` is a
/// space and `%xx` an escaped byte (so a literal `+` arrives as `%2B`). `None` if the
/// bytes are not UTF-8, which no S3 key can be.
pub(crate) fn decode_key(raw: &str) -> Option<String> {
    // `+` must become a space before the `%xx` escapes are decoded, or an escaped `%2B`
    // would turn into a space as well.
    let spaced: Vec<u8> = raw
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&spaced).collect()).ok()
}

/// An ETag without the quotes S3 puts around it in HTTP headers.
pub(crate) fn trim_etag(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// Orders two sequencers of events on the same key: the greater one happened later.
/// They are hexadecimal strings of varying length; AWS documents the comparison as
/// "right-pad the shorter value with zeros, then compare lexicographically".
pub(crate) fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoded_keys() {
        assert_eq!(decode_key("photo.jpg").as_deref(), Some("photo.jpg"));
        assert_eq!(
            decode_key("my+holiday+photo.jpg").as_deref(),
            Some("my holiday photo.jpg")
        );
        assert_eq!(decode_key("a%2Bb.jpg").as_deref(), Some("a+b.jpg"));
        assert_eq!(decode_key("a%2B+b%20c.jpg").as_deref(), Some("a+ b c.jpg"));
        assert_eq!(
            decode_key("uploads/2024/06/deep/key.jpg").as_deref(),
            Some("uploads/2024/06/deep/key.jpg")
        );
        // Slashes may arrive escaped or not.
        assert_eq!(
            decode_key("uploads%2Fx.jpg").as_deref(),
            Some("uploads/x.jpg")
        );
        assert_eq!(
            decode_key("caf%C3%A9+%E5%86%99%E7%9C%9F.jpg").as_deref(),
            Some("café 写真.jpg")
        );
        assert_eq!(decode_key("100%25.jpg").as_deref(), Some("100%.jpg"));
        // Not a valid escape: kept as it is, like S3 itself would have to.
        assert_eq!(decode_key("50%zz.jpg").as_deref(), Some("50%zz.jpg"));
        // An escape that decodes to invalid UTF-8 cannot be a key.
        assert_eq!(decode_key("bad%FF.jpg"), None);
    }

    #[test]
    fn sequencers_compare_right_padded() {
        assert_eq!(
            compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Ordering::Less
        );
        assert_eq!(
            compare_sequencers("0055AED6DCD90281E5", "0055aed6dcd90281e5"),
            Ordering::Equal
        );
        // "1" is "10" once padded, and "10" > "0F".
        assert_eq!(compare_sequencers("1", "0F"), Ordering::Greater);
        assert_eq!(compare_sequencers("AB", "AB00"), Ordering::Equal);
    }

    fn record(json: serde_json::Value) -> S3EventRecord {
        let event: aws_lambda_events::event::s3::S3Event =
            serde_json::from_value(serde_json::json!({ "Records": [json] }))
                .expect("valid test event");
        event.records.into_iter().next().expect("one record")
    }

    fn s3_record(event_name: &str, object: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-2",
            "eventTime": "2024-06-01T12:00:00.000Z", "eventName": event_name,
            "userIdentity": {"principalId": "EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "strip",
                   "bucket": {"name": "src", "arn": "arn:aws:s3:::src"}, "object": object}
        })
    }

    #[test]
    fn parses_created_and_removed_records() {
        let created = parse_record(&record(s3_record(
            "ObjectCreated:Put",
            serde_json::json!({"key": "uploads/my+photo%2B1.jpg", "size": 10, "eTag": "abc",
                               "versionId": "v1", "sequencer": "0A"}),
        )))
        .expect("parses");
        assert_eq!(created.action, Action::Strip);
        assert_eq!(created.key, "uploads/my photo+1.jpg");
        assert_eq!(created.version_id.as_deref(), Some("v1"));
        assert_eq!(created.etag.as_deref(), Some("abc"));
        assert_eq!(
            created.event_time,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_717_243_200)
        );

        let removed = parse_record(&record(s3_record(
            "ObjectRemoved:DeleteMarkerCreated",
            serde_json::json!({"key": "k.jpg", "versionId": "null", "sequencer": "0B"}),
        )))
        .expect("parses");
        assert_eq!(removed.action, Action::Remove);
        assert_eq!(removed.version_id, None);
        assert!(!removed.deletes_one_version());

        let other = parse_record(&record(s3_record(
            "ObjectTagging:Put",
            serde_json::json!({"key": "k.jpg"}),
        )))
        .expect("parses");
        assert_eq!(other.action, Action::Ignore);
    }

    #[test]
    fn rejects_records_without_bucket_or_key() {
        let mut no_key = s3_record("ObjectCreated:Put", serde_json::json!({"size": 1}));
        assert_eq!(
            parse_record(&record(no_key.clone())),
            Err(RecordError::MissingKey)
        );
        no_key["s3"]["bucket"] = serde_json::json!({});
        assert_eq!(
            parse_record(&record(no_key)),
            Err(RecordError::MissingBucket)
        );
    }

    #[test]
    fn recent_means_younger_than_the_window() {
        let mut object = parse_record(&record(s3_record(
            "ObjectCreated:Put",
            serde_json::json!({"key": "k.jpg"}),
        )))
        .expect("parses");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |age: Duration| now - age;
        object.event_time = at(Duration::ZERO);
        assert!(object.is_recent(now));
        object.event_time = at(RECENT_EVENT - Duration::from_secs(1));
        assert!(object.is_recent(now));
        object.event_time = at(RECENT_EVENT);
        assert!(!object.is_recent(now));
        object.event_time = at(Duration::from_secs(86_400));
        assert!(!object.is_recent(now));
        // Lambda's clock behind S3's: as recent as can be.
        object.event_time = now + Duration::from_secs(30);
        assert!(object.is_recent(now));
    }

    #[test]
    fn tells_the_test_message_from_records() {
        // The user guide's example, verbatim.
        let test = serde_json::json!({
            "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z",
            "Bucket": "bucketname", "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
        });
        match serde_json::from_value::<Notification>(test) {
            Ok(Notification::Test(t)) => {
                assert_eq!(t.bucket.as_deref(), Some("bucketname"));
                assert_eq!(t.time.as_deref(), Some("2014-10-13T15:57:02.089Z"));
                assert_eq!(t.request_id.as_deref(), Some("5582815E1AEA5ADF"));
            }
            other => panic!("not a test message: {other:?}"),
        }
        let minimal = serde_json::json!({"Event": "s3:TestEvent"});
        assert!(matches!(
            serde_json::from_value::<Notification>(minimal),
            Ok(Notification::Test(_))
        ));

        let records = serde_json::json!({"Records": [s3_record(
            "ObjectCreated:Put",
            serde_json::json!({"key": "k.jpg"}),
        )]});
        assert!(matches!(
            serde_json::from_value::<Notification>(records),
            Ok(Notification::Records(e)) if e.records.len() == 1
        ));
        // Anything else keeps S3Event's own error.
        let other = serde_json::json!({"Event": "s3:ObjectCreated:Put"});
        match serde_json::from_value::<Notification>(other) {
            Err(e) => assert!(e.to_string().contains("Records"), "{e}"),
            Ok(n) => panic!("accepted: {n:?}"),
        }
    }
}
