//! The source stamp: which source object (ETag, version, event sequencer) a copy in the
//! destination bucket was made from, kept in the copy's user metadata
//! (`x-amz-meta-source-etag`, `-source-version-id`, `-source-sequencer`).
//!
//! S3 delivers events at least once and in no guaranteed order. Reading the stamp back with
//! a HeadObject tells the handler whether an event is a duplicate (or older than the copy)
//! and can be skipped, and whether a removal event is about the picture the copy shows.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::event::{compare_sequencers, trim_etag, ObjectEvent};

const SOURCE_ETAG: &str = "source-etag";
const SOURCE_VERSION_ID: &str = "source-version-id";
const SOURCE_SEQUENCER: &str = "source-sequencer";

/// Where a destination copy came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceStamp {
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

impl SourceStamp {
    /// Reads the stamp from a copy's user metadata (keys as the SDK returns them: lower
    /// case, without the `x-amz-meta-` prefix).
    pub fn from_metadata(metadata: Option<&HashMap<String, String>>) -> Self {
        let get = |name: &str| {
            metadata
                .and_then(|m| m.get(name))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        SourceStamp {
            etag: get(SOURCE_ETAG).map(|e| trim_etag(&e).to_owned()),
            version_id: get(SOURCE_VERSION_ID),
            sequencer: get(SOURCE_SEQUENCER),
        }
    }

    /// The user metadata that records this stamp on a new copy.
    pub fn to_metadata(&self) -> HashMap<String, String> {
        [
            (SOURCE_ETAG, &self.etag),
            (SOURCE_VERSION_ID, &self.version_id),
            (SOURCE_SEQUENCER, &self.sequencer),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name.to_owned(), v)))
        .collect()
    }

    /// Whether a copy with this stamp already shows what the creation `event` would write,
    /// or something newer: then the event is a duplicate or arrived late, and is skipped.
    ///
    /// Sequencers order events on one key, so they decide when both sides have one. Without
    /// them only an exact ETag + version match proves the copy is of the same object.
    pub fn covers(&self, event: &ObjectEvent) -> bool {
        match (&self.sequencer, &event.sequencer) {
            (Some(copy), Some(incoming)) => compare_sequencers(copy, incoming) != Ordering::Less,
            _ => {
                self.etag.is_some()
                    && self.etag == event.etag
                    && self.version_id == event.version_id
            }
        }
    }

    /// Whether the copy was made from an upload that happened after the removal `event`,
    /// so the removal must not delete it.
    pub fn is_newer_than(&self, event: &ObjectEvent) -> bool {
        match (&self.sequencer, &event.sequencer) {
            (Some(copy), Some(incoming)) => compare_sequencers(copy, incoming) == Ordering::Greater,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::Action;
    use super::*;

    fn event(etag: Option<&str>, version: Option<&str>, sequencer: Option<&str>) -> ObjectEvent {
        ObjectEvent {
            event_name: "ObjectCreated:Put".into(),
            action: Action::Strip,
            bucket: "src".into(),
            key: "k.jpg".into(),
            version_id: version.map(Into::into),
            etag: etag.map(Into::into),
            sequencer: sequencer.map(Into::into),
            event_time: std::time::UNIX_EPOCH,
        }
    }

    fn stamp(etag: Option<&str>, version: Option<&str>, sequencer: Option<&str>) -> SourceStamp {
        SourceStamp {
            etag: etag.map(Into::into),
            version_id: version.map(Into::into),
            sequencer: sequencer.map(Into::into),
        }
    }

    #[test]
    fn metadata_round_trip() {
        let s = stamp(Some("abc"), None, Some("0A"));
        let meta = s.to_metadata();
        assert_eq!(meta.len(), 2);
        assert_eq!(meta.get("source-etag").map(String::as_str), Some("abc"));
        assert_eq!(SourceStamp::from_metadata(Some(&meta)), s);
        assert_eq!(SourceStamp::from_metadata(None), SourceStamp::default());
        // A quoted ETag written by another tool still compares equal.
        let quoted = HashMap::from([("source-etag".to_owned(), "\"abc\"".to_owned())]);
        assert_eq!(
            SourceStamp::from_metadata(Some(&quoted)).etag.as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn sequencers_decide_duplicates_and_late_events() {
        let copy = stamp(Some("new"), Some("v2"), Some("0000000000000002"));
        assert!(
            copy.covers(&event(Some("new"), Some("v2"), Some("0000000000000002"))),
            "duplicate"
        );
        assert!(
            copy.covers(&event(Some("old"), Some("v1"), Some("0000000000000001"))),
            "late event"
        );
        assert!(
            !copy.covers(&event(Some("newer"), Some("v3"), Some("0000000000000003"))),
            "new upload"
        );
    }

    #[test]
    fn without_sequencers_only_an_exact_match_is_a_duplicate() {
        let copy = stamp(Some("e1"), Some("v1"), None);
        assert!(copy.covers(&event(Some("e1"), Some("v1"), Some("09"))));
        assert!(!copy.covers(&event(Some("e1"), Some("v2"), None)));
        assert!(!copy.covers(&event(Some("e2"), Some("v1"), None)));
        // A copy without any stamp (written by something else) is never taken as current.
        assert!(!SourceStamp::default().covers(&event(None, None, None)));
    }

    #[test]
    fn removal_keeps_copies_of_later_uploads() {
        let copy = stamp(Some("e"), None, Some("05"));
        assert!(copy.is_newer_than(&event(None, None, Some("04"))));
        assert!(!copy.is_newer_than(&event(None, None, Some("06"))));
        assert!(!copy.is_newer_than(&event(None, None, None)));
    }
}
