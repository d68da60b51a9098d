//! Why a rendition could not be made. Every input, however damaged, ends in one of these:
//! the renderer never panics.

use crate::{FileKind, StripError};

/// Why [`render`](super::render) refused or failed.
///
/// `Clone`, so that [`render_all`](super::render_all) can hand the one decoding failure to
/// every spec: the strings hold the messages of the third-party crates, whose error types
/// are not part of this API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenditionError {
    /// The spec asks for something impossible (`max_edge` 0, `quality` outside 1..=100).
    #[error("invalid rendition spec: {problem}")]
    InvalidSpec { problem: &'static str },

    /// The input does not start with the SOI marker `FF D8`.
    #[error("not a JPEG: the input is {looks_like}")]
    NotJpeg { looks_like: FileKind },

    /// The marker structure is damaged, as the stripper's walker sees it (truncated input,
    /// overrunning segment, missing EOI, ...). `kind` is [`StripError::kind`]; `offset` the
    /// input byte where the damage was found.
    #[error("malformed JPEG: {message}")]
    Malformed {
        kind: &'static str,
        offset: Option<u64>,
        message: String,
    },

    /// No frame header (SOFn) before the first scan or the end of the picture.
    #[error("no frame header (SOFn) before byte {offset}: the picture has no dimensions")]
    MissingFrame { offset: u64 },

    /// A frame the renderer does not decode (see [`crate::rendition`] for the list).
    #[error("unsupported frame at byte {offset}: {problem}")]
    UnsupportedFrame { offset: u64, problem: String },

    /// A colour model the renderer does not convert: 2 or more than 4 components, or
    /// 16-bit samples.
    #[error("unsupported colour: {problem}")]
    UnsupportedColour { problem: String },

    /// Decoding would need a buffer larger than [`Limits`](super::Limits) allows; refused
    /// from the frame header, before any pixel buffer is allocated.
    #[error(
        "too many pixels: {buffer} of {width}x{height} = {pixels} pixels (DCT scale 1/{scale}) \
         exceeds the limit of {limit}"
    )]
    TooManyPixels {
        buffer: PixelBuffer,
        width: u32,
        height: u32,
        /// Denominator of the DCT scale the picture would be decoded at (1, 2, 4 or 8).
        scale: u8,
        pixels: u64,
        limit: u64,
    },

    /// The decoder (jpeg-decoder) refused the entropy-coded data or the tables.
    #[error("cannot decode the JPEG: {message}")]
    Decode { message: String },

    /// The resizer (fast_image_resize) failed; not expected with the sizes this module
    /// computes, but reported rather than assumed.
    #[error("cannot resize: {message}")]
    Resize { message: String },

    /// The encoder (jpeg-encoder) failed.
    #[error("cannot encode the rendition: {message}")]
    Encode { message: String },
}

/// Which buffer a [`RenditionError::TooManyPixels`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelBuffer {
    /// The decoded picture, at the DCT scale chosen for the rendition.
    Decoded,
    /// A progressive picture's DCT coefficients, which the decoder keeps at full size
    /// whatever the output scale (see [`Limits::max_progressive_pixels`](super::Limits)).
    ProgressiveCoefficients,
}

impl std::fmt::Display for PixelBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PixelBuffer::Decoded => "the decoded picture",
            PixelBuffer::ProgressiveCoefficients => "the progressive coefficients",
        })
    }
}

impl RenditionError {
    /// A short stable name of the error's kind (`not-jpeg`, `too-many-pixels`, ...), for logs
    /// and metrics, like [`StripError::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            RenditionError::InvalidSpec { .. } => "invalid-spec",
            RenditionError::NotJpeg { .. } => "not-jpeg",
            RenditionError::Malformed { .. } => "malformed",
            RenditionError::MissingFrame { .. } => "missing-frame",
            RenditionError::UnsupportedFrame { .. } => "unsupported-frame",
            RenditionError::UnsupportedColour { .. } => "unsupported-colour",
            RenditionError::TooManyPixels { .. } => "too-many-pixels",
            RenditionError::Decode { .. } => "decode",
            RenditionError::Resize { .. } => "resize",
            RenditionError::Encode { .. } => "encode",
        }
    }
}

impl From<StripError> for RenditionError {
    /// The walker's structural errors, with their offsets kept.
    fn from(error: StripError) -> RenditionError {
        let offset = match &error {
            StripError::NotJpeg { looks_like } => {
                return RenditionError::NotJpeg {
                    looks_like: *looks_like,
                }
            }
            StripError::Truncated { offset, .. }
            | StripError::SegmentOverrun { offset, .. }
            | StripError::BadSegmentLength { offset, .. }
            | StripError::UnexpectedMarker { offset, .. }
            | StripError::UnsupportedMarker { offset, .. }
            | StripError::MarkerExpected { offset, .. }
            | StripError::MissingEoi { offset, .. } => Some(*offset),
            StripError::Poisoned | StripError::Io(_) => None,
        };
        RenditionError::Malformed {
            kind: error.kind(),
            offset,
            message: error.to_string(),
        }
    }
}
