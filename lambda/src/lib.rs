//! Lossless, streaming JPEG metadata stripper.
//!
//! Rewrites a JPEG's marker segments and copies its entropy-coded (compressed picture)
//! data byte for byte: no decoding, no re-encoding, pixels unchanged. [`segments`] walks a
//! picture's marker structure without changing anything, for checks and tests.
//!
//! With the `rendition` feature (on with `runtime`), `lambda::rendition` also makes resized,
//! upright, metadata-free copies of a picture (issue 17). Unlike stripping, that decodes
//! and re-encodes the pixels.
//!
//! **Kept**: SOI; APP0 JFIF (minus its optional thumbnail); APP2 ICC profile chunks in
//! order (unless [`StripOptions::keep_icc`] is off); APP14 Adobe (colour transform of
//! CMYK/YCCK); DQT, DHT, DAC, SOFn, DRI, DNL; every SOS with its entropy-coded data and
//! restart markers; EOI. **Dropped**: every other APPn (EXIF, XMP, extended XMP,
//! Photoshop/IPTC, MPF, JFXX, vendor segments), COM, `0xFF` fill bytes between segments,
//! and every byte after the first EOI (motion-photo videos, MPO images, vendor trailers).
//! When the first readable EXIF Orientation is 2..=8, a minimal EXIF segment holding only
//! that tag is written back (unless [`StripOptions::keep_orientation`] is off).
//!
//! Decisions worth knowing:
//! - **Placement**: segments between SOF and the first SOS are judged like those before
//!   SOF (decoders read everything up to the first SOS: an ICC chunk after SOF stays, in
//!   place). After the first SOS, every APPn is dropped, kept kinds included: no decoder
//!   reads colour data or orientation there. The minimal EXIF takes the place of the
//!   EXIF segment it comes from, moved after a JFIF segment that follows it (JFIF stays
//!   first): before SOF when the EXIF was, before the first SOS in any case. This order
//!   needs no buffering beyond the 36 bytes of the minimal segment.
//! - **No EOI**: refused ([`StripError::MissingEoi`]), even when the scan may be complete;
//!   telling it from a truncated scan would need Huffman decoding.
//! - **Damaged scan data**: `FF xx` with `xx` below `0xC0` inside a scan is no valid
//!   marker; like libjpeg's resync, it is treated as (damaged) scan data and copied.
//! - **Unknown structure** (reserved markers between segments, JPEG-LS / hierarchical
//!   markers, a second SOF or SOI, stray bytes between segments): refused.
//! - **Errors are final**: no partial success; output written before an error must be
//!   discarded.

mod error;
mod exif;
#[cfg(feature = "runtime")]
pub mod handler;
mod marker;
#[cfg(feature = "rendition")]
pub mod rendition;
mod scan;
mod segment;
mod stream;
mod stripper;
mod summary;
mod walk;

pub use error::{Expected, FileKind, Misplaced, StripError};
pub use marker::Marker;
pub use segment::SegmentKind;
pub use stream::strip_stream;
pub use stripper::Stripper;
pub use summary::{Removed, Summary};
pub use walk::{segments, Segment};

/// The `kind` of the record the function sends to its failures queue for an upload it
/// refused (`handler::RefusalRecord`): the contract with `cargo xtask failures`, which reads
/// the queue without the function's runtime.
pub const REFUSAL_KIND: &str = "refusal";

/// What to keep besides the picture itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripOptions {
    /// Write back EXIF Orientation 2..=8 in a minimal EXIF segment (default: true), so
    /// the picture is still displayed upright.
    pub keep_orientation: bool,
    /// Keep APP2 ICC profile chunks (default: true): colours stay accurate.
    pub keep_icc: bool,
}

impl Default for StripOptions {
    fn default() -> StripOptions {
        StripOptions {
            keep_orientation: true,
            keep_icc: true,
        }
    }
}

/// Strips `input` with the default options.
pub fn strip(input: &[u8]) -> Result<Vec<u8>, StripError> {
    strip_with(input, &StripOptions::default()).map(|(out, _)| out)
}

/// Strips `input`, returning the stripped picture and what was removed.
pub fn strip_with(input: &[u8], options: &StripOptions) -> Result<(Vec<u8>, Summary), StripError> {
    let mut stripper = Stripper::new(*options);
    let mut out = Vec::with_capacity(input.len());
    stripper.feed(input, &mut out)?;
    let summary = stripper.finish()?;
    Ok((out, summary))
}
