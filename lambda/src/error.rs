//! The stripper's typed errors, and the sniffing that names what a non-JPEG input is.
//!
//! Every error says what is wrong and at which input byte offset, so a log line is enough
//! to find the problem in the file with a hex viewer.

use std::fmt;

use crate::marker::Marker;

/// Why a picture could not be stripped. Stripping never half-succeeds: on any error the
/// output produced so far must be discarded.
#[derive(Debug, thiserror::Error)]
pub enum StripError {
    /// The input does not start with the SOI marker `FF D8`.
    #[error("not a JPEG: the input is {looks_like}")]
    NotJpeg { looks_like: FileKind },

    /// The input ends before the first scan, where more structure was required.
    #[error("truncated: the input ends at byte {offset} where {expected} was expected")]
    Truncated { offset: u64, expected: Expected },

    /// A segment declares a length that runs past the end of the input.
    #[error(
        "segment {marker} at byte {offset} declares {length} bytes but the input ends at byte \
         {end}, {missing} bytes short",
        missing = (offset + 2 + u64::from(*length)).saturating_sub(*end)
    )]
    SegmentOverrun {
        marker: Marker,
        offset: u64,
        length: u16,
        end: u64,
    },

    /// A segment length below 2 (the length field counts itself).
    #[error("segment {marker} at byte {offset} has impossible length {length} (minimum 2)")]
    BadSegmentLength {
        marker: Marker,
        offset: u64,
        length: u16,
    },

    /// A marker in a place the JPEG structure does not allow.
    #[error("unexpected {marker} at byte {offset}: {problem}")]
    UnexpectedMarker {
        marker: Marker,
        offset: u64,
        problem: Misplaced,
    },

    /// A marker this stripper does not pass through (reserved codes, JPEG extensions such
    /// as JPEG-LS, hierarchical mode): refusing is safer than guessing what it carries.
    #[error("unsupported {marker} at byte {offset}")]
    UnsupportedMarker { marker: Marker, offset: u64 },

    /// Between segments, a byte other than `0xFF` where a marker must start.
    #[error("expected a marker at byte {offset}, found byte 0x{found:02X}")]
    MarkerExpected { offset: u64, found: u8 },

    /// The input ends after the first SOS without an EOI marker.
    ///
    /// Without decoding the Huffman data a cut-off scan cannot be told from a complete scan
    /// whose writer forgot EOI, so both are refused: passing on a possibly incomplete
    /// picture would be a partial success.
    #[error(
        "missing EOI: the input ends at byte {offset}, after {scans} scan(s), without an EOI \
         marker (the file is truncated, or its writer omitted EOI)"
    )]
    MissingEoi { offset: u64, scans: u32 },

    /// The push parser was used again after it had returned an error.
    #[error("the stripper already failed on an earlier error; its output must be discarded")]
    Poisoned,

    /// Reading the input or writing the output failed (stream API only).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StripError {
    /// The byte of the input where the problem was found, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            StripError::Truncated { offset, .. }
            | StripError::SegmentOverrun { offset, .. }
            | StripError::BadSegmentLength { offset, .. }
            | StripError::UnexpectedMarker { offset, .. }
            | StripError::UnsupportedMarker { offset, .. }
            | StripError::MarkerExpected { offset, .. }
            | StripError::MissingEoi { offset, .. } => Some(*offset),
            StripError::NotJpeg { .. } => Some(0),
            StripError::Poisoned | StripError::Io(_) => None,
        }
    }

    /// A short stable name of the error's kind (`not-jpeg`, `missing-eoi`, ...), for logs and
    /// metrics where the full message is too specific.
    pub fn kind(&self) -> &'static str {
        match self {
            StripError::NotJpeg { .. } => "not-jpeg",
            StripError::Truncated { .. } => "truncated",
            StripError::SegmentOverrun { .. } => "segment-overrun",
            StripError::BadSegmentLength { .. } => "bad-segment-length",
            StripError::UnexpectedMarker { .. } => "unexpected-marker",
            StripError::UnsupportedMarker { .. } => "unsupported-marker",
            StripError::MarkerExpected { .. } => "marker-expected",
            StripError::MissingEoi { .. } => "missing-eoi",
            StripError::Poisoned => "poisoned",
            StripError::Io(_) => "io",
        }
    }
}

/// Where a marker was found out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misplaced {
    /// SOS before any SOFn: a scan without a frame header.
    ScanBeforeFrame,
    /// A second SOFn: multi-frame (hierarchical) JPEGs are not supported.
    SecondFrame,
    /// SOI after the start of the picture.
    SecondSoi,
    /// EOI before any scan: the picture has no image data.
    EoiBeforeScan,
    /// RSTn outside entropy-coded data.
    RestartOutsideScan,
}

impl fmt::Display for Misplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misplaced::ScanBeforeFrame => "scan (SOS) before any frame header (SOFn)",
            Misplaced::SecondFrame => "second frame header (multi-frame JPEG is not supported)",
            Misplaced::SecondSoi => "start-of-image marker inside the picture",
            Misplaced::EoiBeforeScan => "end of image before any scan (no image data)",
            Misplaced::RestartOutsideScan => "restart marker outside entropy-coded data",
        })
    }
}

/// What a truncated input was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The second byte of the SOI marker.
    Soi,
    /// A marker (`0xFF` and its code).
    Marker,
    /// The two length bytes of a segment.
    SegmentLength,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Soi => "the SOI marker",
            Expected::Marker => "a marker",
            Expected::SegmentLength => "a segment length",
        })
    }
}

/// What a non-JPEG input looks like, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Empty,
    Png,
    Gif,
    Webp,
    /// ISO BMFF with a HEIF brand (HEIC and friends).
    Heif,
    Avif,
    Tiff,
    Bmp,
    Pdf,
    Unknown,
}

impl FileKind {
    /// Bytes needed to tell the kinds apart (RIFF/WEBP and `ftyp` brands need 12).
    pub(crate) const SNIFF_LEN: usize = 12;

    /// Names the format of a non-JPEG input from up to [`Self::SNIFF_LEN`] leading bytes.
    pub(crate) fn sniff(head: &[u8]) -> FileKind {
        if head.is_empty() {
            return FileKind::Empty;
        }
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            return FileKind::Png;
        }
        if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            return FileKind::Gif;
        }
        if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
            return FileKind::Webp;
        }
        if head.get(4..8) == Some(b"ftyp") {
            return match head.get(8..12) {
                Some(b"avif" | b"avis") => FileKind::Avif,
                Some(
                    b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1",
                ) => FileKind::Heif,
                _ => FileKind::Unknown,
            };
        }
        if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            return FileKind::Tiff;
        }
        if head.starts_with(b"BM") {
            return FileKind::Bmp;
        }
        if head.starts_with(b"%PDF") {
            return FileKind::Pdf;
        }
        FileKind::Unknown
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Empty => "empty",
            FileKind::Png => "a PNG image",
            FileKind::Gif => "a GIF image",
            FileKind::Webp => "a WebP image",
            FileKind::Heif => "a HEIF/HEIC image",
            FileKind::Avif => "an AVIF image",
            FileKind::Tiff => "a TIFF image",
            FileKind::Bmp => "a BMP image",
            FileKind::Pdf => "a PDF document",
            FileKind::Unknown => "of unknown format (no SOI marker FF D8 at byte 0)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_formats() {
        assert_eq!(FileKind::sniff(b""), FileKind::Empty);
        assert_eq!(
            FileKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0d"),
            FileKind::Png
        );
        assert_eq!(FileKind::sniff(b"GIF89a\x01\0"), FileKind::Gif);
        assert_eq!(FileKind::sniff(b"RIFF\x10\0\0\0WEBP"), FileKind::Webp);
        assert_eq!(FileKind::sniff(b"\0\0\0\x18ftypheic"), FileKind::Heif);
        assert_eq!(FileKind::sniff(b"\0\0\0\x18ftypmif1"), FileKind::Heif);
        assert_eq!(FileKind::sniff(b"\0\0\0\x1cftypavif"), FileKind::Avif);
        assert_eq!(FileKind::sniff(b"\0\0\0\x1cftypisom"), FileKind::Unknown);
        assert_eq!(FileKind::sniff(b"II*\0\x08\0\0\0"), FileKind::Tiff);
        assert_eq!(FileKind::sniff(b"hello"), FileKind::Unknown);
    }

    #[test]
    fn messages_name_offsets() {
        let e = StripError::SegmentOverrun {
            marker: Marker::app(14),
            offset: 2,
            length: 12336,
            end: 8,
        };
        assert_eq!(
            e.to_string(),
            "segment APP14 (0xFFEE) at byte 2 declares 12336 bytes but the input ends at byte 8, \
             12332 bytes short"
        );
        let e = StripError::NotJpeg {
            looks_like: FileKind::Png,
        };
        assert_eq!(e.to_string(), "not a JPEG: the input is a PNG image");
    }
}
