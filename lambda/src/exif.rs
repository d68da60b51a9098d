//! The one thing read from EXIF (IFD0 Orientation) and the minimal EXIF segment written back.
//!
//! The reader is defensive by construction: every access is a checked slice lookup, so a
//! malformed TIFF structure yields "no orientation", never an error or a panic. The EXIF
//! segment itself is always dropped; only the tag value can survive.

/// EXIF tag number of Orientation.
const ORIENTATION_TAG: u16 = 0x0112;
/// TIFF field type SHORT.
const SHORT: u16 = 3;

/// The raw IFD0 Orientation value of an APP1 `Exif\0\0` payload, if the TIFF structure up
/// to that tag is readable and the tag is a single SHORT (what browsers accept too).
pub(crate) fn orientation(payload: &[u8]) -> Option<u16> {
    let tiff = payload.strip_prefix(b"Exif\0\0")?;
    let big_endian = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd0)?;
    for index in 0..usize::from(entries) {
        // Entries are 12 bytes: tag, type, count, value-or-offset. A count running past the
        // segment ends the loop through the failed lookup.
        let entry = ifd0.checked_add(2)?.checked_add(index.checked_mul(12)?)?;
        if u16_at(entry)? != ORIENTATION_TAG {
            continue;
        }
        if u16_at(entry + 2)? != SHORT || u32_at(entry + 4)? != 1 {
            return None;
        }
        return u16_at(entry + 8);
    }
    None
}

/// Whether an Orientation value needs writing back: 1 is the default, 0 and > 8 are invalid.
pub(crate) fn worth_keeping(value: u16) -> bool {
    (2..=8).contains(&value)
}

/// Size of [`minimal_segment`]: marker, length, `Exif\0\0`, TIFF header, one-entry IFD0.
pub(crate) const MINIMAL_SEGMENT_LEN: usize = 36;

/// A complete APP1 segment holding only IFD0 Orientation (big-endian TIFF, no next IFD).
pub(crate) fn minimal_segment(value: u16) -> [u8; MINIMAL_SEGMENT_LEN] {
    let [hi, lo] = value.to_be_bytes();
    #[rustfmt::skip]
    let segment = [
        0xFF, 0xE1, 0x00, 0x22,             // APP1, length 34
        b'E', b'x', b'i', b'f', 0, 0,       // EXIF identifier
        b'M', b'M', 0x00, 0x2A,             // big-endian TIFF header
        0x00, 0x00, 0x00, 0x08,             // IFD0 right after the header
        0x00, 0x01,                         // one entry
        0x01, 0x12, 0x00, 0x03,             // Orientation, SHORT
        0x00, 0x00, 0x00, 0x01,             // count 1
        hi, lo, 0x00, 0x00,                 // value, left-justified
        0x00, 0x00, 0x00, 0x00,             // no IFD1: no thumbnail
    ];
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifd0(big_endian: bool, entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut p = b"Exif\0\0".to_vec();
        p.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
        p.extend_from_slice(&w32(8));
        p.extend_from_slice(&w16(entries.len() as u16));
        for &(tag, typ, count, value) in entries {
            p.extend_from_slice(&w16(tag));
            p.extend_from_slice(&w16(typ));
            p.extend_from_slice(&w32(count));
            if typ == SHORT {
                p.extend_from_slice(&w16(value as u16));
                p.extend_from_slice(&[0, 0]);
            } else {
                p.extend_from_slice(&w32(value));
            }
        }
        p.extend_from_slice(&[0; 4]);
        p
    }

    #[test]
    fn reads_both_byte_orders() {
        for be in [true, false] {
            let p = ifd0(be, &[(0x010F, 2, 4, 0), (0x0112, SHORT, 1, 6)]);
            assert_eq!(orientation(&p), Some(6), "big_endian={be}");
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(orientation(b""), None);
        assert_eq!(orientation(b"Exif\0\0"), None);
        assert_eq!(orientation(b"Exif\0\0\xff\xff\xff\xff\0\0\0\x08"), None);
        // IFD0 offset past the end, huge entry count, truncated entry.
        assert_eq!(orientation(b"Exif\0\0MM\0*\xff\xff\xff\xff"), None);
        assert_eq!(
            orientation(b"Exif\0\0MM\0*\0\0\0\x08\xff\xff\x01\x12"),
            None
        );
        let mut p = ifd0(true, &[(0x0112, SHORT, 1, 3)]);
        p.truncate(6 + 8 + 2 + 9);
        assert_eq!(orientation(&p), None);
        // Wrong type or count: not what renderers accept.
        assert_eq!(orientation(&ifd0(true, &[(0x0112, 4, 1, 6)])), None);
        assert_eq!(orientation(&ifd0(false, &[(0x0112, SHORT, 2, 6)])), None);
        // Absent tag.
        assert_eq!(orientation(&ifd0(false, &[(0x0110, 2, 4, 0)])), None);
    }

    #[test]
    fn reports_raw_values_and_filters_them() {
        assert_eq!(orientation(&ifd0(true, &[(0x0112, SHORT, 1, 0)])), Some(0));
        assert!(!worth_keeping(0) && !worth_keeping(1) && !worth_keeping(9));
        assert!((2..=8).all(worth_keeping));
    }

    #[test]
    fn minimal_segment_reads_back() {
        for value in 2..=8 {
            let segment = minimal_segment(value);
            assert_eq!(
                usize::from(u16::from_be_bytes([segment[2], segment[3]])) + 2,
                segment.len()
            );
            assert_eq!(orientation(&segment[4..]), Some(value));
        }
    }
}
