//! A read-only walk over a JPEG's marker structure, for code that looks at a picture rather
//! than strips it (the tests, `cargo xtask verify`).
//!
//! It is deliberately not the stripper's push parser: it works on one whole slice, judges
//! nothing (which marker may come where is the stripper's business: a second SOI or an RSTn
//! between segments is reported, not refused) and finds the end of entropy-coded data with a
//! plain byte-by-byte reading instead of the stripper's block search ([`scan`](crate::scan)).
//! Tests that compare what the two see therefore check each other.
//!
//! Its errors are the stripper's, with the same offsets, for the damage both detect: no SOI,
//! an input that ends where more structure is due, impossible or overrunning lengths, a byte
//! other than `0xFF` where a marker must start.

use crate::error::{Expected, FileKind, StripError};
use crate::marker::Marker;

/// One marker and the bytes that belong to it, as found by [`segments`].
///
/// Only [`segments`] makes them (`non_exhaustive`), so the offsets always lie in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Segment<'a> {
    pub marker: Marker,
    /// Offset of the marker's `0xFF` in the input. Fill bytes (`0xFF` padding, T.81 B.1.1.2)
    /// before it are skipped: they lie between the previous segment's [`end`](Self::end) and
    /// this offset.
    pub offset: usize,
    /// The length field, which counts itself: `payload.len() + 2`. `None` for the standalone
    /// markers SOI, EOI, RSTn and TEM, which have no length field.
    pub length: Option<u16>,
    /// The bytes after the length field; empty for a standalone marker.
    pub payload: &'a [u8],
    /// For SOS: the entropy-coded data after the scan header, up to the marker that ends the
    /// scan. Byte stuffing (`FF 00`), restart markers, fill bytes and damaged bytes (`FF xx`
    /// with `xx` below `0xC0`) are part of it, as they are for the stripper. Empty for every
    /// other marker.
    pub scan: &'a [u8],
}

impl Segment<'_> {
    /// Offset just past the segment, its scan data included: where the next marker (or its
    /// fill bytes) starts, or, for EOI, where the trailer starts.
    pub fn end(&self) -> usize {
        self.offset + 2 + self.length.map_or(0, usize::from) + self.scan.len()
    }
}

/// The segments of `jpeg`, in order, from SOI to the first EOI included.
///
/// The iterator ends after EOI (what follows is trailer: `jpeg.len() - eoi.end()` bytes) or
/// after its first error. It never panics, whatever the input.
///
/// ```
/// use lambda::{segments, Marker};
/// let jpeg = [
///     0xFF, 0xD8, // SOI
///     0xFF, 0xE1, 0x00, 0x04, 0xAA, 0xBB, // APP1, 2 bytes of payload
///     0xFF, // a fill byte
///     0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, // SOS with an empty header, 2 bytes of scan data
///     0xFF, 0xD9, // EOI
///     0x99, // trailer
/// ];
/// let found: Vec<_> = segments(&jpeg).collect::<Result<_, _>>()?;
/// assert_eq!(found.len(), 4);
/// assert_eq!((found[1].marker, found[1].payload), (Marker::app(1), &[0xAA, 0xBB][..]));
/// assert_eq!((found[2].offset, found[2].scan), (9, &[0x11, 0x22][..]));
/// assert_eq!(jpeg.len() - found[3].end(), 1);
/// # Ok::<(), lambda::StripError>(())
/// ```
pub fn segments(jpeg: &[u8]) -> impl Iterator<Item = Result<Segment<'_>, StripError>> {
    Segments {
        jpeg,
        next: Some(0),
        scans: 0,
    }
}

struct Segments<'a> {
    jpeg: &'a [u8],
    /// Where the next segment (or the fill bytes before it) starts; `None` once done.
    next: Option<usize>,
    /// Scans met so far: the input ending after one is a missing EOI, before one a truncation.
    scans: u32,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<Segment<'a>, StripError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.next.take()?;
        let item = if at == 0 {
            self.soi()
        } else {
            self.segment(at)
        };
        if let Ok(segment) = &item {
            if segment.marker != Marker::EOI {
                self.next = Some(segment.end());
            }
        }
        Some(item)
    }
}

impl<'a> Segments<'a> {
    /// The SOI marker, which must be the first two bytes: no fill may precede it.
    fn soi(&self) -> Result<Segment<'a>, StripError> {
        match self.jpeg {
            [0xFF, 0xD8, ..] => Ok(standalone(Marker::SOI, 0)),
            [0xFF] => Err(StripError::Truncated {
                offset: 1,
                expected: Expected::Soi,
            }),
            head => Err(StripError::NotJpeg {
                looks_like: FileKind::sniff(head.get(..FileKind::SNIFF_LEN).unwrap_or(head)),
            }),
        }
    }

    /// The segment whose marker (or fill bytes) starts at `at`.
    fn segment(&mut self, at: usize) -> Result<Segment<'a>, StripError> {
        let jpeg = self.jpeg;
        let end = jpeg.len() as u64;
        match jpeg.get(at) {
            None => return Err(self.ended()),
            Some(0xFF) => {}
            Some(&found) => {
                return Err(StripError::MarkerExpected {
                    offset: at as u64,
                    found,
                })
            }
        }
        // Any number of 0xFF may come before the marker code; the marker is the last one.
        let mut ff = at;
        let code = loop {
            match jpeg.get(ff + 1) {
                Some(0xFF) => ff += 1,
                Some(&code) => break code,
                None => return Err(self.ended()),
            }
        };
        let marker = Marker(code);
        match code {
            // TEM, RST0-7, SOI, EOI: standalone (T.81 table B.1).
            0x01 | 0xD0..=0xD9 => return Ok(standalone(marker, ff)),
            // A stuffed zero belongs in scan data; between segments it is no marker at all.
            0x00 => {
                return Err(StripError::UnsupportedMarker {
                    marker,
                    offset: ff as u64,
                })
            }
            // Every other code, reserved ones included, is followed by a length.
            _ => {}
        }
        let length = match jpeg.get(ff + 2..ff + 4) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => {
                return Err(StripError::Truncated {
                    offset: end,
                    expected: Expected::SegmentLength,
                })
            }
        };
        if length < 2 {
            return Err(StripError::BadSegmentLength {
                marker,
                offset: ff as u64,
                length,
            });
        }
        let body = ff + 2 + usize::from(length);
        let payload = jpeg.get(ff + 4..body).ok_or(StripError::SegmentOverrun {
            marker,
            offset: ff as u64,
            length,
            end,
        })?;
        let scan = if marker == Marker::SOS {
            self.scans = self.scans.saturating_add(1);
            scan_data(jpeg.get(body..).unwrap_or_default()).ok_or(StripError::MissingEoi {
                offset: end,
                scans: self.scans,
            })?
        } else {
            &[]
        };
        Ok(Segment {
            marker,
            offset: ff,
            length: Some(length),
            payload,
            scan,
        })
    }

    /// The error for an input that ends where a marker is due: after a scan the picture may
    /// be complete but for its EOI, so it is the stripper's [`StripError::MissingEoi`].
    fn ended(&self) -> StripError {
        let offset = self.jpeg.len() as u64;
        match self.scans {
            0 => StripError::Truncated {
                offset,
                expected: Expected::Marker,
            },
            scans => StripError::MissingEoi { offset, scans },
        }
    }
}

fn standalone(marker: Marker, offset: usize) -> Segment<'static> {
    Segment {
        marker,
        offset,
        length: None,
        payload: &[],
        scan: &[],
    }
}

/// The entropy-coded data at the start of `data`: up to the first `0xFF` followed by a code
/// that [ends the scan](Marker::ends_scan). Read in order, pair by pair, as a
/// decoder does (`FF FF` is fill: the second `0xFF` may start the marker), so that it is an
/// independent check of the stripper's block search. `None` if no such marker comes.
fn scan_data(data: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while let Some(&[byte, code]) = data.get(i..i + 2) {
        if byte != 0xFF {
            i += 1;
        } else if Marker(code).ends_scan() {
            return data.get(..i);
        } else {
            i += if code == 0xFF { 1 } else { 2 };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn walk(jpeg: &[u8]) -> Vec<Result<Segment<'_>, StripError>> {
        segments(jpeg).collect()
    }

    /// The markers and offsets of a walk that must succeed.
    fn outline(jpeg: &[u8]) -> Vec<(u8, usize)> {
        segments(jpeg)
            .map(|s| s.map(|s| (s.marker.0, s.offset)))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error a walk ends on.
    fn failure(jpeg: &[u8]) -> StripError {
        match segments(jpeg).find_map(Result::err) {
            Some(e) => e,
            None => panic!("walks without error: {jpeg:02X?}"),
        }
    }

    const PICTURE: &[u8] = &[
        0xFF, 0xD8, // SOI at 0
        0xFF, 0xE0, 0x00, 0x04, b'J', b'F', // APP0 at 2
        0xFF, 0xFF, 0xFF, // fill
        0xFF, 0xC0, 0x00, 0x02, // SOF0 at 11, empty
        0xFF, 0xDA, 0x00, 0x03, 0x01, // SOS at 15, header 0x01
        0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, // scan: stuffing, RST0, fill
        0xFF, 0xDA, 0x00, 0x02, // a second SOS at 29
        0x78, 0xFF, 0x9F, // scan: damaged FF 9F is data
        0xFF, 0xD9, // EOI at 36
        0x01, 0x02, 0x03, // trailer
    ];

    #[test]
    fn walks_segments_scans_and_fill() {
        let found: Vec<Segment<'_>> = walk(PICTURE)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        let markers: Vec<(Marker, usize, Option<u16>)> = found
            .iter()
            .map(|s| (s.marker, s.offset, s.length))
            .collect();
        assert_eq!(
            markers,
            [
                (Marker::SOI, 0, None),
                (Marker::app(0), 2, Some(4)),
                (Marker(0xC0), 11, Some(2)),
                (Marker::SOS, 15, Some(3)),
                (Marker::SOS, 29, Some(2)),
                (Marker::EOI, 36, None),
            ]
        );
        assert_eq!(found[1].payload, b"JF");
        assert_eq!(found[1].end(), 8, "fill bytes follow the segment's end");
        assert!(found[2].payload.is_empty() && found[2].scan.is_empty());
        assert_eq!(found[3].payload, [0x01]);
        assert_eq!(
            found[3].scan,
            [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF]
        );
        assert_eq!(found[3].end(), 29);
        assert_eq!(found[4].scan, [0x78, 0xFF, 0x9F]);
        assert_eq!(PICTURE.len() - found[5].end(), 3, "trailer");
    }

    #[test]
    fn standalone_markers_have_no_length() {
        // TEM, RST3 and a second SOI between segments: reported, not judged.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0x01, 0xFF, 0xD3, 0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x02, 0xFF, 0xD9,
        ];
        assert_eq!(
            outline(&jpeg),
            [
                (0xD8, 0),
                (0x01, 2),
                (0xD3, 4),
                (0xD8, 6),
                (0xFE, 8),
                (0xD9, 12)
            ]
        );
    }

    #[test]
    fn stops_at_the_first_eoi() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xD8, 0xFF, 0xD9];
        assert_eq!(outline(&jpeg), [(0xD8, 0), (0xD9, 2)]);
    }

    #[test]
    fn names_what_is_wrong_and_where() {
        assert!(matches!(
            failure(b""),
            StripError::NotJpeg {
                looks_like: FileKind::Empty
            }
        ));
        assert!(matches!(
            failure(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
            StripError::NotJpeg {
                looks_like: FileKind::Png
            }
        ));
        assert!(matches!(
            failure(&[0xFF]),
            StripError::Truncated {
                offset: 1,
                expected: Expected::Soi
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0xFF, 0xFF]),
            StripError::Truncated {
                offset: 4,
                expected: Expected::Marker
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00]),
            StripError::Truncated {
                offset: 5,
                expected: Expected::SegmentLength
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01]),
            StripError::BadSegmentLength {
                offset: 2,
                length: 1,
                ..
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0x00, 0x09, 0x00]),
            StripError::SegmentOverrun {
                offset: 3,
                length: 9,
                end: 8,
                ..
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0x00]),
            StripError::MarkerExpected {
                offset: 2,
                found: 0x00
            }
        ));
        assert!(matches!(
            failure(&[0xFF, 0xD8, 0xFF, 0x00, 0x00, 0x02]),
            StripError::UnsupportedMarker { offset: 2, .. }
        ));
        // After a scan, an input that ends is a missing EOI, in the scan or after it.
        let scan = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF];
        assert!(matches!(
            failure(&scan),
            StripError::MissingEoi {
                offset: 8,
                scans: 1
            }
        ));
        let after = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xDB, 0x00, 0x02];
        assert!(matches!(
            failure(&after),
            StripError::MissingEoi {
                offset: 10,
                scans: 1
            }
        ));
    }

    #[test]
    fn ends_after_an_error() {
        let mut walk = segments(&[0xFF, 0xD8, 0x42]);
        assert!(matches!(walk.next(), Some(Ok(_))));
        assert!(matches!(walk.next(), Some(Err(_))));
        assert!(walk.next().is_none());
    }

    #[test]
    fn scan_ends_only_at_a_marker_that_ends_it() {
        let data = [0x00, 0xFF, 0x00, 0xFF, 0xD7, 0xFF, 0xC4];
        assert_eq!(scan_data(&data), Some(&data[..5]));
        // FF FF is fill: the second FF starts the marker.
        assert_eq!(scan_data(&[0xFF, 0xFF, 0xD9]), Some(&[0xFF][..]));
        assert_eq!(scan_data(&[0x11, 0xFF, 0x9F, 0xFF]), None);
        assert_eq!(scan_data(&[]), None);
    }

    /// Bytes that look like JPEG structure more often than uniform noise does.
    fn jpeg_like() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => any::<u8>(),
            3 => Just(0xFFu8),
            1 => Just(0x00u8),
            1 => Just(0xD9u8),
            1 => Just(0xDAu8),
            1 => Just(0x02u8),
        ];
        prop::collection::vec(byte, 0..200).prop_map(|mut v| {
            v.splice(0..0, [0xFF, 0xD8]);
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// Whatever the bytes: no panic, segments in order inside the input, each where its
        /// marker is, and at most one error, last.
        #[test]
        fn any_bytes_walk_without_panic(input in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            jpeg_like(),
        ]) {
            let items = walk(&input);
            let mut previous_end = 0;
            for (i, item) in items.iter().enumerate() {
                match item {
                    Ok(s) => {
                        prop_assert!(s.offset >= previous_end && s.end() <= input.len());
                        prop_assert_eq!(&input[s.offset..s.offset + 2], &[0xFF, s.marker.0][..]);
                        prop_assert!(input[previous_end..s.offset].iter().all(|&b| b == 0xFF));
                        previous_end = s.end();
                    }
                    Err(_) => prop_assert_eq!(i, items.len() - 1),
                }
            }
        }
    }
}
