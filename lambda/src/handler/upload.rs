//! Streaming a source object through the stripper into the destination bucket in bounded
//! memory.
//!
//! The stripped bytes collect in one buffer of at most `part_size` bytes. If the picture
//! ends before the buffer fills, the copy is written with one PutObject; otherwise a
//! multipart upload is started and every full buffer becomes a part. Nothing is written
//! before the stripper accepted the whole input: the single PutObject comes after
//! `finish`, and a multipart upload is completed only after it, and aborted on any error,
//! so no partial or unvalidated picture ever becomes visible in the destination bucket.

use std::collections::HashMap;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, ByteStreamError};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use super::classify::{classify, describe, ErrorClass};
use crate::{StripError, StripOptions, Stripper, Summary};

/// Multipart part size: S3 requires at least 5 MiB for every part but the last; 8 MiB
/// keeps a 100 MB picture at 13 parts and the function's memory use near 16 MiB.
pub(crate) const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// The content type of every copy: the stripper only ever writes JPEGs.
pub(crate) const CONTENT_TYPE: &str = "image/jpeg";

/// Condition on the destination key, checked by S3 when the copy is committed (PutObject
/// or CompleteMultipartUpload), so two invocations racing on one key cannot both win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// The state of the key is unknown (HeadObject was denied): write unconditionally.
    None,
    /// Write only if the key has no object (`If-None-Match: *`).
    Absent,
    /// Write only if the key still holds the object with this ETag (`If-Match`).
    Matches(String),
}

impl Precondition {
    pub(crate) fn if_match(&self) -> Option<String> {
        match self {
            Precondition::Matches(etag) => Some(etag.clone()),
            _ => None,
        }
    }

    pub(crate) fn if_none_match(&self) -> Option<String> {
        matches!(self, Precondition::Absent).then(|| "*".to_owned())
    }
}

/// Where and how the copy is written.
pub(crate) struct Destination<'a> {
    pub s3: &'a Client,
    pub bucket: &'a str,
    pub key: &'a str,
    pub metadata: HashMap<String, String>,
    pub precondition: Precondition,
    pub part_size: usize,
}

/// How the copy was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Single,
    Multipart { parts: i32 },
}

/// Why the copy could not be written. Whatever the cause, nothing was left in the
/// destination bucket.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("reading the source object failed: {0}")]
    Read(#[source] ByteStreamError),
    #[error(transparent)]
    Strip(#[from] StripError),
    #[error("{operation} on the destination failed: {message}")]
    S3 {
        operation: &'static str,
        class: ErrorClass,
        message: String,
    },
}

impl WriteError {
    fn s3<E>(operation: &'static str, err: &SdkError<E>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        WriteError::S3 {
            operation,
            class: classify(err),
            message: describe(err),
        }
    }
}

/// Strips `body` into the destination. `size_hint` (the source's Content-Length) only
/// sizes the first buffer, so a small picture does not allocate a whole part.
pub(crate) async fn strip_into(
    dest: Destination<'_>,
    mut body: ByteStream,
    options: StripOptions,
    size_hint: usize,
) -> Result<(Summary, Written), WriteError> {
    let mut sink = Sink::new(dest, size_hint);
    let mut stripper = Stripper::new(options);
    let result = async {
        while let Some(chunk) = body.try_next().await.map_err(WriteError::Read)? {
            // Feed in pieces that fit the buffer's free room, so it never grows past a
            // part (plus what the stripper holds back and writes at once, such as the
            // header segments before the first scan).
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let room = sink.room().clamp(1, rest.len());
                let (now, later) = rest.split_at(room);
                stripper.feed(now, &mut sink.buffer)?;
                rest = later;
                sink.flush_full_part().await?;
            }
        }
        let summary = stripper.finish()?;
        let written = sink.commit().await?;
        Ok((summary, written))
    }
    .await;
    if result.is_err() {
        sink.abort().await;
    }
    result
}

/// The buffer of stripped bytes and, once the picture outgrew one part, the multipart
/// upload it is flushed to.
struct Sink<'a> {
    dest: Destination<'a>,
    buffer: Vec<u8>,
    multipart: Option<Multipart>,
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl<'a> Sink<'a> {
    fn new(dest: Destination<'a>, size_hint: usize) -> Self {
        // A little over the input size: the stripper may add a minimal EXIF segment.
        let capacity = size_hint.saturating_add(64).min(dest.part_size);
        Sink {
            buffer: Vec::with_capacity(capacity),
            dest,
            multipart: None,
        }
    }

    fn room(&self) -> usize {
        self.dest.part_size.saturating_sub(self.buffer.len())
    }

    /// Uploads the buffer as the next part once it holds a whole part.
    async fn flush_full_part(&mut self) -> Result<(), WriteError> {
        if self.buffer.len() < self.dest.part_size {
            return Ok(());
        }
        let bytes = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.dest.part_size));
        self.upload_part(bytes).await
    }

    async fn upload_part(&mut self, bytes: Vec<u8>) -> Result<(), WriteError> {
        if self.multipart.is_none() {
            self.multipart = Some(start_multipart(&self.dest).await?);
        }
        if let Some(mp) = self.multipart.as_mut() {
            let part = upload_one_part(&self.dest, mp, bytes).await?;
            mp.parts.push(part);
        }
        Ok(())
    }

    /// Makes the copy visible: one PutObject, or the last part and CompleteMultipartUpload.
    async fn commit(&mut self) -> Result<Written, WriteError> {
        if self.multipart.is_some() && !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.upload_part(last).await?;
        }
        let d = &self.dest;
        let Some(mp) = &self.multipart else {
            d.s3.put_object()
                .bucket(d.bucket)
                .key(d.key)
                .content_type(CONTENT_TYPE)
                .set_metadata(Some(d.metadata.clone()))
                .set_if_match(d.precondition.if_match())
                .set_if_none_match(d.precondition.if_none_match())
                .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                .send()
                .await
                .map_err(|e| WriteError::s3("PutObject", &e))?;
            return Ok(Written::Single);
        };
        let count = i32::try_from(mp.parts.len()).unwrap_or(i32::MAX);
        d.s3.complete_multipart_upload()
            .bucket(d.bucket)
            .key(d.key)
            .upload_id(&mp.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(mp.parts.clone()))
                    .build(),
            )
            .set_if_match(d.precondition.if_match())
            .set_if_none_match(d.precondition.if_none_match())
            .send()
            .await
            .map_err(|e| WriteError::s3("CompleteMultipartUpload", &e))?;
        Ok(Written::Multipart { parts: count })
    }

    /// Abandons a started multipart upload, so its parts neither linger (and cost) nor
    /// ever form an object. Best effort: the error being handled is the one reported.
    async fn abort(&mut self) {
        let Some(mp) = self.multipart.take() else {
            return;
        };
        let d = &self.dest;
        let aborted =
            d.s3.abort_multipart_upload()
                .bucket(d.bucket)
                .key(d.key)
                .upload_id(&mp.upload_id)
                .send()
                .await;
        if let Err(e) = aborted {
            super::report::warn(
                "abort_multipart_failed",
                serde_json::json!({
                    "bucket": d.bucket, "key": d.key, "upload_id": mp.upload_id, "error": describe(&e),
                }),
            );
        }
    }
}

async fn start_multipart(d: &Destination<'_>) -> Result<Multipart, WriteError> {
    let out =
        d.s3.create_multipart_upload()
            .bucket(d.bucket)
            .key(d.key)
            .content_type(CONTENT_TYPE)
            .set_metadata(Some(d.metadata.clone()))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| WriteError::s3("CreateMultipartUpload", &e))?;
    let upload_id = out.upload_id.ok_or(WriteError::S3 {
        operation: "CreateMultipartUpload",
        class: ErrorClass::Transient,
        message: "the response carried no upload id".to_owned(),
    })?;
    Ok(Multipart {
        upload_id,
        parts: Vec::new(),
    })
}

async fn upload_one_part(
    d: &Destination<'_>,
    mp: &Multipart,
    bytes: Vec<u8>,
) -> Result<CompletedPart, WriteError> {
    // Part numbers start at 1; S3 allows 10,000, far beyond any picture at 8 MiB a part.
    let part_number = i32::try_from(mp.parts.len() + 1).unwrap_or(i32::MAX);
    let out =
        d.s3.upload_part()
            .bucket(d.bucket)
            .key(d.key)
            .upload_id(&mp.upload_id)
            .part_number(part_number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| WriteError::s3("UploadPart", &e))?;
    Ok(CompletedPart::builder()
        .part_number(part_number)
        .set_e_tag(out.e_tag)
        .set_checksum_crc32(out.checksum_crc32)
        .build())
}
