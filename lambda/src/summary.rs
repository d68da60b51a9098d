//! What one strip did, for logs: sizes, removed data by kind, trailer, orientation kept.

use crate::segment::SegmentKind;

/// Report of one successful strip.
///
/// Byte accounting: `bytes_removed` counts input bytes not copied to the output (removed
/// segments, JFIF thumbnail, padding, trailer), so
/// `bytes_out == bytes_in - bytes_removed + bytes_added`, where `bytes_added` is the minimal
/// EXIF segment written back for the orientation (36 bytes, or 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "runtime", derive(serde::Serialize))]
pub struct Summary {
    /// Input size, trailer included.
    pub bytes_in: u64,
    /// Output size.
    pub bytes_out: u64,
    /// Input bytes left out of the output.
    pub bytes_removed: u64,
    /// Bytes written that were not in the input (the minimal EXIF segment).
    pub bytes_added: u64,
    /// Bytes after the first EOI (motion-photo videos, MPO images, vendor trailers).
    pub trailer_bytes: u64,
    /// `0xFF` fill bytes dropped between segments.
    pub padding_bytes: u64,
    /// Removed data by kind, in order of first appearance.
    pub removed: Vec<Removed>,
    /// The Orientation written back in a minimal EXIF segment, if any (2..=8).
    pub orientation: Option<u16>,
    /// Number of scans (SOS) copied: 1 for baseline, more for progressive.
    pub scans: u32,
}

/// Segments of one kind removed from a picture.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "runtime", derive(serde::Serialize))]
pub struct Removed {
    pub kind: SegmentKind,
    /// How many segments (for [`SegmentKind::JfifThumbnail`]: how many thumbnails).
    pub count: u32,
    /// Bytes removed, markers and length fields included.
    pub bytes: u64,
}

impl Summary {
    /// Number of removed segments of `kind`.
    pub fn removed_count(&self, kind: SegmentKind) -> u32 {
        self.removed
            .iter()
            .find(|r| r.kind == kind)
            .map_or(0, |r| r.count)
    }

    pub(crate) fn record_removed(&mut self, kind: SegmentKind, bytes: u64) {
        self.bytes_removed += bytes;
        match self.removed.iter_mut().find(|r| r.kind == kind) {
            Some(r) => {
                r.count += 1;
                r.bytes += bytes;
            }
            None => self.removed.push(Removed {
                kind,
                count: 1,
                bytes,
            }),
        }
    }
}
