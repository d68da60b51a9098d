//! What an APPn segment is, from its identifier, and whether it survives stripping.
//!
//! The keep list is deliberately short: JFIF (pixel aspect, and what decoders expect first),
//! ICC profiles (colour accuracy) and Adobe APP14 (colour transform of CMYK/YCCK). Every
//! other application segment, known or not, is metadata from the stripper's point of view.

use std::fmt;

use crate::StripOptions;

/// A kind of removed data, as counted in the [`Summary`](crate::Summary).
///
/// `Display` gives a short stable identifier (`exif`, `xmp`, `app12`, ...) fit for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    /// APP1 `Exif\0`: camera data, GPS, maker notes, thumbnail.
    Exif,
    /// APP1 XMP packet.
    Xmp,
    /// APP1 Extended XMP chunk (`http://ns.adobe.com/xmp/extension/`).
    ExtendedXmp,
    /// APP13 `Photoshop 3.0`: Photoshop image resources, which carry IPTC.
    PhotoshopIptc,
    /// APP2 ICC profile (only removed when `keep_icc` is off).
    Icc,
    /// APP2 Multi-Picture Format index (points at images after EOI).
    Mpf,
    /// COM comment.
    Comment,
    /// APP0 `JFXX`: JFIF extension thumbnail.
    Jfxx,
    /// The optional uncompressed thumbnail inside the (kept) JFIF APP0 segment.
    JfifThumbnail,
    /// Any other APPn segment (vendor data: Meta, RMETA, GoPro, FPXR, SPIFF, Ducky, ...).
    App(u8),
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentKind::Exif => f.write_str("exif"),
            SegmentKind::Xmp => f.write_str("xmp"),
            SegmentKind::ExtendedXmp => f.write_str("xmp-extended"),
            SegmentKind::PhotoshopIptc => f.write_str("photoshop-iptc"),
            SegmentKind::Icc => f.write_str("icc"),
            SegmentKind::Mpf => f.write_str("mpf"),
            SegmentKind::Comment => f.write_str("comment"),
            SegmentKind::Jfxx => f.write_str("jfxx"),
            SegmentKind::JfifThumbnail => f.write_str("jfif-thumbnail"),
            SegmentKind::App(n) => write!(f, "app{n}"),
        }
    }
}

#[cfg(feature = "runtime")]
impl serde::Serialize for SegmentKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What to do with one APPn segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppAction {
    /// APP0 JFIF: kept, minus any thumbnail.
    Jfif,
    /// ICC profile chunk or Adobe APP14: copied unchanged.
    Keep,
    /// APP1 Exif: dropped, but read for the Orientation tag first.
    Exif,
    /// Dropped and counted under this kind.
    Drop(SegmentKind),
}

const XMP_ID: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXTENSION_ID: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";

/// Decides the fate of `APPn` with this payload. `after_scan`: the segment follows the
/// first SOS, where decoders no longer read colour information, so nothing is kept there.
pub(crate) fn classify_app(
    n: u8,
    payload: &[u8],
    after_scan: bool,
    options: &StripOptions,
) -> AppAction {
    let kind = match n {
        0 if payload.starts_with(b"JFIF\0") => {
            if !after_scan {
                return AppAction::Jfif;
            }
            SegmentKind::App(0)
        }
        0 if payload.starts_with(b"JFXX\0") => SegmentKind::Jfxx,
        1 if payload.starts_with(b"Exif\0") => {
            if !after_scan {
                return AppAction::Exif;
            }
            SegmentKind::Exif
        }
        1 if payload.starts_with(XMP_ID) => SegmentKind::Xmp,
        1 if payload.starts_with(XMP_EXTENSION_ID) => SegmentKind::ExtendedXmp,
        2 if payload.starts_with(b"ICC_PROFILE\0") => {
            if options.keep_icc && !after_scan {
                return AppAction::Keep;
            }
            SegmentKind::Icc
        }
        2 if payload.starts_with(b"MPF\0") => SegmentKind::Mpf,
        13 if payload.starts_with(b"Photoshop 3.0\0") => SegmentKind::PhotoshopIptc,
        14 if payload.starts_with(b"Adobe") && !after_scan => return AppAction::Keep,
        _ => SegmentKind::App(n),
    };
    AppAction::Drop(kind)
}

/// Length of a JFIF APP0 payload without thumbnail: identifier, version, units, densities,
/// thumbnail width and height.
pub(crate) const JFIF_BASE_LEN: usize = 14;

/// The JFIF payload to write: unchanged when it has no thumbnail, else cut to the base
/// fields with a 0x0 thumbnail. Thumbnails are how edited-out content leaks, so they go even
/// from the segment that is kept.
pub(crate) fn jfif_without_thumbnail(payload: &[u8]) -> Option<[u8; JFIF_BASE_LEN]> {
    let base = payload.get(..JFIF_BASE_LEN)?;
    if payload.len() == JFIF_BASE_LEN && base[12] == 0 && base[13] == 0 {
        return None;
    }
    let mut cut = [0u8; JFIF_BASE_LEN];
    cut[..12].copy_from_slice(&base[..12]);
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(n: u8, payload: &[u8]) -> AppAction {
        classify_app(n, payload, false, &StripOptions::default())
    }

    #[test]
    fn keeps_only_rendering_segments() {
        assert_eq!(classify(0, b"JFIF\0\x01\x02"), AppAction::Jfif);
        assert_eq!(classify(2, b"ICC_PROFILE\0\x01\x01"), AppAction::Keep);
        assert_eq!(classify(14, b"Adobe\0d\0\0\0\0\x01"), AppAction::Keep);
        assert_eq!(classify(1, b"Exif\0\0II*\0"), AppAction::Exif);
    }

    #[test]
    fn names_what_it_drops() {
        assert_eq!(
            classify(0, b"JFXX\0\x10"),
            AppAction::Drop(SegmentKind::Jfxx)
        );
        assert_eq!(classify(0, b"AVI1\0"), AppAction::Drop(SegmentKind::App(0)));
        assert_eq!(classify(1, XMP_ID), AppAction::Drop(SegmentKind::Xmp));
        assert_eq!(
            classify(1, XMP_EXTENSION_ID),
            AppAction::Drop(SegmentKind::ExtendedXmp)
        );
        assert_eq!(classify(1, b""), AppAction::Drop(SegmentKind::App(1)));
        assert_eq!(
            classify(2, b"MPF\0II*\0"),
            AppAction::Drop(SegmentKind::Mpf)
        );
        assert_eq!(classify(2, b"FPXR\0"), AppAction::Drop(SegmentKind::App(2)));
        assert_eq!(
            classify(13, b"Photoshop 3.0\08BIM"),
            AppAction::Drop(SegmentKind::PhotoshopIptc)
        );
        assert_eq!(
            classify(13, b"Adobe_CM"),
            AppAction::Drop(SegmentKind::App(13))
        );
        assert_eq!(
            classify(12, b"Ducky"),
            AppAction::Drop(SegmentKind::App(12))
        );
        assert_eq!(
            classify(14, b"Adobf"),
            AppAction::Drop(SegmentKind::App(14))
        );
    }

    #[test]
    fn options_and_position_matter() {
        let no_icc = StripOptions {
            keep_icc: false,
            ..StripOptions::default()
        };
        assert_eq!(
            classify_app(2, b"ICC_PROFILE\0\x01\x01", false, &no_icc),
            AppAction::Drop(SegmentKind::Icc)
        );
        let opts = StripOptions::default();
        assert_eq!(
            classify_app(2, b"ICC_PROFILE\0\x01\x01", true, &opts),
            AppAction::Drop(SegmentKind::Icc)
        );
        assert_eq!(
            classify_app(1, b"Exif\0\0", true, &opts),
            AppAction::Drop(SegmentKind::Exif)
        );
        assert_eq!(
            classify_app(14, b"Adobe", true, &opts),
            AppAction::Drop(SegmentKind::App(14))
        );
        assert_eq!(
            classify_app(0, b"JFIF\0", true, &opts),
            AppAction::Drop(SegmentKind::App(0))
        );
    }

    #[test]
    fn jfif_thumbnail_is_cut() {
        let plain = b"JFIF\0\x01\x01\x01\0\x48\0\x48\0\0";
        assert_eq!(jfif_without_thumbnail(plain), None);
        let mut with_thumb = plain.to_vec();
        with_thumb[12] = 1;
        with_thumb[13] = 1;
        with_thumb.extend_from_slice(&[1, 2, 3]);
        assert_eq!(jfif_without_thumbnail(&with_thumb), Some(*plain));
        // Too short to be a JFIF header: left alone, it cannot hold a thumbnail.
        assert_eq!(jfif_without_thumbnail(b"JFIF\0\x01"), None);
    }
}
