//! Renditions beside the stripped original (`RENDITIONS`, from the stack's
//! `functions.<name>.renditions`): for an upload, each declared rendition is written to
//! `<prefix><key>` in the destination bucket, upright, resized, metadata-free
//! ([`crate::rendition`]), with the same source stamp as the original.
//!
//! Idempotent and ordered like the original: each rendition key is looked at first, and one
//! whose stamp already covers the event is left alone (a duplicate event, or a retry after
//! the original was written but a rendition was not: only what is missing is made), and the
//! write is conditional on what that look saw. The source is read once, pinned to the
//! event's version (or ETag), and decoded once for every rendition that is missing.
//!
//! A picture the renditions cannot be made of (too many pixels for the function's memory,
//! an unsupported colour model) still has its stripped original; the refusal is recorded like
//! a refused upload. Removing the source removes its renditions with the original.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use serde::Deserialize;

use super::classify::{classify, describe, ErrorClass};
use super::event::ObjectEvent;
use super::stamp::SourceStamp;
use super::upload::{Precondition, CONTENT_TYPE};
use super::{Current, Handler};
use crate::rendition::{render_all, Limits, RenditionError, RenditionSpec};

/// One rendition, as `RENDITIONS` declares it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RenditionConfig {
    pub name: String,
    pub max_edge: u32,
    pub quality: u8,
    pub prefix: String,
}

impl RenditionConfig {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn spec(&self) -> RenditionSpec {
        RenditionSpec {
            max_edge: self.max_edge,
            quality: self.quality,
        }
    }
}

/// Parses `RENDITIONS` (a JSON list; empty or absent: none).
pub fn parse(json: Option<&str>) -> Result<Vec<RenditionConfig>, String> {
    match json.map(str::trim).filter(|j| !j.is_empty()) {
        None => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json).map_err(|e| e.to_string()),
    }
}

/// The limits on decoded pixels: `RENDITION_MAX_PIXELS` when set, else what the function's
/// memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, which Lambda sets) allows.
pub fn limits(max_pixels: Option<&str>, memory_mb: Option<&str>) -> Limits {
    let mut limits = memory_mb
        .and_then(|mb| mb.trim().parse::<u32>().ok())
        .map_or_else(Limits::default, Limits::for_memory_mb);
    if let Some(max) = max_pixels.and_then(|m| m.trim().parse::<u64>().ok()) {
        limits.max_decoded_pixels = max;
        limits.max_progressive_pixels = limits.max_progressive_pixels.min(max);
    }
    limits
}

/// The largest source read into memory to make renditions of: the decoder needs the whole
/// file (the stripped original streams, renditions cannot).
const MAX_SOURCE_BYTES: i64 = 64 * 1024 * 1024;

/// What became of one object's renditions.
#[derive(Debug, Default)]
pub(crate) struct Made {
    /// Names of the renditions written.
    pub written: Vec<String>,
    /// Names of those already of this upload (or a newer one).
    pub current: Vec<String>,
    /// Those that could not be made of this picture.
    pub refused: Vec<Refused>,
}

/// A rendition that could not be made of a picture, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub name: String,
    /// Stable: the rendition error's kind (`too-many-pixels`, …) or `source-too-large`.
    pub reason: String,
    pub error: String,
}

impl Refused {
    fn new(name: &str, error: &RenditionError) -> Self {
        Refused {
            name: name.to_owned(),
            reason: error.kind().to_owned(),
            error: error.to_string(),
        }
    }
}

impl Made {
    pub fn fields(&self) -> serde_json::Value {
        serde_json::json!({
            "written": self.written,
            "current": self.current,
            "refused": self
                .refused
                .iter()
                .map(|r| serde_json::json!({ "name": r.name, "reason": r.reason, "error": r.error }))
                .collect::<Vec<_>>(),
        })
    }
}

/// Why the renditions were not all handled: worth a retry (throttling, 5xx, a write
/// refused), or the source changed meanwhile (its own event makes them).
pub(crate) enum Stop {
    Retry(String),
    SourceChanged,
}

impl Handler {
    /// Makes the renditions of `object` that are missing or older than it.
    pub(crate) async fn make_renditions(&self, object: &ObjectEvent) -> Result<Made, Stop> {
        let mut made = Made::default();
        let stamp = SourceStamp {
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
            sequencer: object.sequencer.clone(),
        };
        let mut wanted = Vec::new();
        for config in &self.config.renditions {
            let key = config.key(&object.key);
            let precondition = match self.current_copy(&key).await {
                Ok(Current::Copy { stamp, .. }) if stamp.covers(object) => {
                    made.current.push(config.name.clone());
                    continue;
                }
                Ok(Current::Copy {
                    etag: Some(etag), ..
                }) => Precondition::Matches(etag),
                Ok(Current::Absent) => Precondition::Absent,
                Ok(Current::Copy { etag: None, .. } | Current::Unknown) => Precondition::None,
                Err(stop) => {
                    return Err(Stop::Retry(format!(
                        "looking at `{key}`: {}",
                        stop.message()
                    )))
                }
            };
            wanted.push((config, key, precondition));
        }
        if wanted.is_empty() {
            return Ok(made);
        }
        let source = self.read_source(object).await?;
        let Some(source) = source else {
            for (config, _, _) in &wanted {
                made.refused.push(Refused {
                    name: config.name.clone(),
                    reason: "source-too-large".to_owned(),
                    error: format!(
                        "the picture is larger than the {} MiB renditions are made of",
                        MAX_SOURCE_BYTES / (1024 * 1024)
                    ),
                });
            }
            return Ok(made);
        };
        let specs: Vec<RenditionSpec> = wanted.iter().map(|(c, _, _)| c.spec()).collect();
        let limits = self.config.rendition_limits;
        // Decoding and resizing are CPU work: off the async threads.
        let results = tokio::task::spawn_blocking(move || render_all(&source, &specs, &limits))
            .await
            .map_err(|e| Stop::Retry(format!("the rendition task failed: {e}")))?;
        let metadata = stamp.to_metadata();
        for ((config, key, precondition), result) in wanted.into_iter().zip(results) {
            match result {
                Ok(rendition) => {
                    self.write(&key, rendition.jpeg, &metadata, &precondition)
                        .await?;
                    made.written.push(config.name.clone());
                }
                Err(e) => made.refused.push(Refused::new(&config.name, &e)),
            }
        }
        Ok(made)
    }

    /// The source object, pinned to the event's version (or ETag); `None` when it is too
    /// large to decode in memory.
    async fn read_source(&self, object: &ObjectEvent) -> Result<Option<Vec<u8>>, Stop> {
        let out = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .set_if_match(
                object
                    .etag
                    .as_ref()
                    .filter(|_| object.version_id.is_none())
                    .map(|e| format!("\"{e}\"")),
            )
            .send()
            .await
            .map_err(|e| match classify(&e) {
                ErrorClass::NotFound | ErrorClass::Conflict => Stop::SourceChanged,
                _ => Stop::Retry(describe(&e)),
            })?;
        if out.content_length.is_some_and(|n| n > MAX_SOURCE_BYTES) {
            return Ok(None);
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Stop::Retry(format!("reading the source failed: {e}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn write(
        &self,
        key: &str,
        jpeg: Vec<u8>,
        metadata: &HashMap<String, String>,
        precondition: &Precondition,
    ) -> Result<(), Stop> {
        match self
            .s3
            .put_object()
            .bucket(&self.config.destination_bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .set_metadata(Some(metadata.clone()))
            .set_if_match(precondition.if_match())
            .set_if_none_match(precondition.if_none_match())
            .body(ByteStream::from(jpeg))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Another invocation wrote it meanwhile: theirs stands (its stamp decides next time).
            Err(e) if classify(&e) == ErrorClass::Conflict => Ok(()),
            Err(e) => Err(Stop::Retry(format!("writing `{key}`: {}", describe(&e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_parse_from_the_stacks_json() {
        let parsed = parse(Some(
            r#"[{"name":"thumb","max_edge":320,"quality":80,"prefix":"thumbs/"}]"#,
        ))
        .expect("valid");
        assert_eq!(parsed[0].key("uploads/a.jpg"), "thumbs/uploads/a.jpg");
        assert_eq!(parsed[0].spec().max_edge, 320);
        assert_eq!(parse(None), Ok(Vec::new()));
        assert_eq!(parse(Some(" ")), Ok(Vec::new()));
        assert!(parse(Some("[{\"name\":1}]")).is_err());
    }

    #[test]
    fn limits_follow_the_functions_memory_or_the_override() {
        assert_eq!(limits(None, Some("256")), Limits::for_memory_mb(256));
        assert_eq!(limits(None, None), Limits::default());
        let overridden = limits(Some("1000"), Some("256"));
        assert_eq!(overridden.max_decoded_pixels, 1000);
        assert!(overridden.max_progressive_pixels <= 1000);
    }
}
