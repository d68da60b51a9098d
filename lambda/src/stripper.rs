//! The sans-I/O push parser: JPEG bytes in, stripped JPEG bytes out, chunk by chunk.
//!
//! It owns the marker-level state machine and every keep/drop decision's placement in the
//! output. Memory is one segment payload buffer (≤ 65,533 bytes, only used when a segment
//! straddles two chunks) plus fixed-size state, whatever the picture's size. Entropy-coded
//! data is never buffered: each chunk's scan bytes are searched for the marker that ends
//! the scan ([`scan`](crate::scan)) and copied to the output in large slices.
//!
//! Output order: SOI, then the kept segments in input order. The minimal EXIF segment
//! (orientation) is held back from the moment the EXIF segment is read and written just
//! before the next kept segment that is not JFIF, so it lands after JFIF (which decoders
//! expect first) and before the frame header at the latest, without buffering anything
//! but 36 bytes.

use std::mem;

use crate::error::{Expected, FileKind, Misplaced, StripError};
use crate::exif;
use crate::marker::Marker;
use crate::scan;
use crate::segment::{classify_app, jfif_without_thumbnail, AppAction, SegmentKind, JFIF_BASE_LEN};
use crate::{StripOptions, Summary};

/// Entropy-coded bytes searched and copied per step: small enough to stay in L1 cache.
const SCAN_WINDOW: usize = 16 * 1024;

/// Push parser that strips a JPEG fed to it in chunks of any size.
///
/// ```
/// # fn main() -> Result<(), lambda::StripError> {
/// # let jpeg: &[u8] = &[0xFF, 0xD8, 0xFF, 0xC0, 0, 2, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9];
/// let mut stripper = lambda::Stripper::new(lambda::StripOptions::default());
/// let mut out = Vec::new();
/// for chunk in jpeg.chunks(4) {
///     stripper.feed(chunk, &mut out)?;
///     // write `out` somewhere, then: out.clear();
/// }
/// let summary = stripper.finish()?; // only now is `out` a complete, valid result
/// # assert_eq!(summary.bytes_out, 12);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Stripper {
    options: StripOptions,
    state: State,
    /// Input offset of the first byte of the chunk being fed.
    pos: u64,
    /// First bytes of the input, kept to name the format when it is not a JPEG.
    head: [u8; FileKind::SNIFF_LEN],
    head_len: usize,
    /// The segment being read: its marker, the offset of its `0xFF`, its length field.
    marker: Marker,
    marker_at: u64,
    length: u16,
    /// Payload of a segment that straddles chunks (empty otherwise).
    payload: Vec<u8>,
    frame_seen: bool,
    /// An EXIF segment with a readable Orientation tag was met: later ones are ignored.
    orientation_decided: bool,
    /// Orientation to write back before the next kept non-JFIF segment.
    pending_orientation: Option<u16>,
    summary: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the first bytes, which must be SOI.
    Signature,
    /// Between segments: a `0xFF` must come.
    MarkerStart,
    /// After `0xFF`: the marker code, or more fill bytes.
    MarkerCode,
    /// Reading a segment's 2-byte length; `high` is its first byte once read.
    Length { high: Option<u8> },
    /// Reading a segment's payload.
    Payload { remaining: usize },
    /// Copying entropy-coded data; `ff_pending`: the last chunk ended with a `0xFF` whose
    /// meaning depends on the next byte.
    Scan { ff_pending: bool },
    /// After EOI: everything is dropped.
    Trailer,
    /// An error was returned; the parser refuses further input.
    Failed,
}

impl Stripper {
    pub fn new(options: StripOptions) -> Stripper {
        Stripper {
            options,
            state: State::Signature,
            pos: 0,
            head: [0; FileKind::SNIFF_LEN],
            head_len: 0,
            marker: Marker::SOI,
            marker_at: 0,
            length: 0,
            payload: Vec::new(),
            frame_seen: false,
            orientation_decided: false,
            pending_orientation: None,
            summary: Summary::default(),
        }
    }

    /// Parses the next `chunk` of input and appends the stripped bytes it yields to `out`.
    ///
    /// `out` is only appended to; drain it between calls to keep memory flat. After an
    /// error, everything already written must be discarded and the parser refuses more
    /// input with [`StripError::Poisoned`].
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        if self.state == State::Failed {
            return Err(StripError::Poisoned);
        }
        let before = out.len();
        let result = self.feed_chunk(chunk, out);
        self.summary.bytes_out += out.len().saturating_sub(before) as u64;
        self.pos += chunk.len() as u64;
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Ends the input. Succeeds only when the picture was complete: its EOI marker was
    /// read (anything after it is trailer). A missing EOI is refused even when the scan
    /// may be complete, see [`StripError::MissingEoi`].
    pub fn finish(self) -> Result<Summary, StripError> {
        let end = self.pos;
        let scans = self.summary.scans;
        Err(match self.state {
            State::Trailer => {
                let mut summary = self.summary;
                summary.bytes_in = end;
                return Ok(summary);
            }
            State::Signature => match &self.head[..self.head_len] {
                [0xFF] => StripError::Truncated {
                    offset: end,
                    expected: Expected::Soi,
                },
                head => StripError::NotJpeg {
                    looks_like: FileKind::sniff(head),
                },
            },
            State::MarkerStart | State::MarkerCode if scans > 0 => {
                StripError::MissingEoi { offset: end, scans }
            }
            State::MarkerStart | State::MarkerCode => StripError::Truncated {
                offset: end,
                expected: Expected::Marker,
            },
            State::Length { .. } => StripError::Truncated {
                offset: end,
                expected: Expected::SegmentLength,
            },
            State::Payload { .. } => StripError::SegmentOverrun {
                marker: self.marker,
                offset: self.marker_at,
                length: self.length,
                end,
            },
            State::Scan { .. } => StripError::MissingEoi { offset: end, scans },
            State::Failed => StripError::Poisoned,
        })
    }

    fn feed_chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        let mut i = 0;
        while let Some(&byte) = chunk.get(i) {
            i = match self.state {
                State::Scan { ff_pending } => self.scan(chunk, i, ff_pending, out)?,
                State::Payload { remaining } => self.payload(chunk, i, remaining, out)?,
                State::Trailer => {
                    let rest = (chunk.len() - i) as u64;
                    self.summary.trailer_bytes += rest;
                    self.summary.bytes_removed += rest;
                    chunk.len()
                }
                _ => {
                    self.header_byte(byte, self.pos + i as u64, out)?;
                    i + 1
                }
            };
        }
        Ok(())
    }

    /// One byte of the signature, of a marker, or of a length field.
    fn header_byte(&mut self, byte: u8, at: u64, out: &mut Vec<u8>) -> Result<(), StripError> {
        match self.state {
            State::Signature => {
                if let Some(slot) = self.head.get_mut(self.head_len) {
                    *slot = byte;
                    self.head_len += 1;
                }
                match &self.head[..self.head_len] {
                    [0xFF] => {}
                    [0xFF, 0xD8] => {
                        out.extend_from_slice(&[0xFF, 0xD8]);
                        self.state = State::MarkerStart;
                    }
                    head if head.len() == FileKind::SNIFF_LEN => {
                        return Err(StripError::NotJpeg {
                            looks_like: FileKind::sniff(head),
                        })
                    }
                    _ => {}
                }
            }
            State::MarkerStart if byte == 0xFF => self.state = State::MarkerCode,
            State::MarkerStart => {
                return Err(StripError::MarkerExpected {
                    offset: at,
                    found: byte,
                })
            }
            State::MarkerCode if byte == 0xFF => {
                // Fill bytes before a marker carry nothing; they are not copied.
                self.summary.padding_bytes += 1;
                self.summary.bytes_removed += 1;
            }
            State::MarkerCode => self.on_marker(Marker(byte), at.saturating_sub(1), out)?,
            State::Length { high: None } => self.state = State::Length { high: Some(byte) },
            State::Length { high: Some(high) } => {
                let length = u16::from_be_bytes([high, byte]);
                if length < 2 {
                    return Err(StripError::BadSegmentLength {
                        marker: self.marker,
                        offset: self.marker_at,
                        length,
                    });
                }
                self.length = length;
                match usize::from(length - 2) {
                    0 => self.segment_done(&[], out)?,
                    remaining => self.state = State::Payload { remaining },
                }
            }
            State::Payload { .. } | State::Scan { .. } | State::Trailer | State::Failed => {}
        }
        Ok(())
    }

    /// A marker met between segments or at the end of entropy-coded data; `at` is the
    /// offset of its `0xFF`.
    fn on_marker(&mut self, marker: Marker, at: u64, out: &mut Vec<u8>) -> Result<(), StripError> {
        let misplaced = |problem| {
            Err(StripError::UnexpectedMarker {
                marker,
                offset: at,
                problem,
            })
        };
        match marker {
            Marker::SOI => misplaced(Misplaced::SecondSoi),
            Marker::EOI if self.summary.scans == 0 => misplaced(Misplaced::EoiBeforeScan),
            Marker::EOI => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                self.state = State::Trailer;
                Ok(())
            }
            Marker::SOS if !self.frame_seen => misplaced(Misplaced::ScanBeforeFrame),
            m if m.is_sof() && self.frame_seen => misplaced(Misplaced::SecondFrame),
            m if m.is_rst() => misplaced(Misplaced::RestartOutsideScan),
            m if m.is_sof()
                || m.is_table()
                || m == Marker::SOS
                || m == Marker::COM
                || m.app_number().is_some() =>
            {
                self.marker = m;
                self.marker_at = at;
                self.state = State::Length { high: None };
                Ok(())
            }
            _ => Err(StripError::UnsupportedMarker { marker, offset: at }),
        }
    }

    /// Payload bytes of the current segment; returns the index after what was consumed.
    fn payload(
        &mut self,
        chunk: &[u8],
        i: usize,
        remaining: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, StripError> {
        let available = &chunk[i..];
        if self.payload.is_empty() && available.len() >= remaining {
            // Whole segment in this chunk: decide on it in place, no copy.
            self.segment_done(&available[..remaining], out)?;
            return Ok(i + remaining);
        }
        let take = remaining.min(available.len());
        self.payload.extend_from_slice(&available[..take]);
        if take < remaining {
            self.state = State::Payload {
                remaining: remaining - take,
            };
        } else {
            let payload = mem::take(&mut self.payload);
            let result = self.segment_done(&payload, out);
            self.payload = payload;
            self.payload.clear();
            result?;
        }
        Ok(i + take)
    }

    /// A complete segment: keep, rewrite or drop it, and move to what follows it.
    fn segment_done(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        let marker = self.marker;
        let whole = 4 + payload.len() as u64;
        self.state = State::MarkerStart;
        if let Some(n) = marker.app_number() {
            match classify_app(n, payload, self.summary.scans > 0, &self.options) {
                AppAction::Jfif => match jfif_without_thumbnail(payload) {
                    Some(cut) => {
                        self.emit(marker, &cut, false, out);
                        let thumbnail = (payload.len() - JFIF_BASE_LEN) as u64;
                        self.summary
                            .record_removed(SegmentKind::JfifThumbnail, thumbnail);
                    }
                    None => self.emit(marker, payload, false, out),
                },
                AppAction::Keep => self.emit(marker, payload, true, out),
                AppAction::Exif => {
                    self.read_orientation(payload);
                    self.summary.record_removed(SegmentKind::Exif, whole);
                }
                AppAction::Drop(kind) => self.summary.record_removed(kind, whole),
            }
        } else if marker == Marker::COM {
            self.summary.record_removed(SegmentKind::Comment, whole);
        } else {
            // Frame header, tables or scan header: copied unchanged.
            self.emit(marker, payload, true, out);
            if marker.is_sof() {
                self.frame_seen = true;
            } else if marker == Marker::SOS {
                self.summary.scans += 1;
                self.state = State::Scan { ff_pending: false };
            }
        }
        Ok(())
    }

    /// Writes a segment; `flush_orientation`: write a pending minimal EXIF before it (every
    /// kept segment but JFIF, which stays first).
    fn emit(&mut self, marker: Marker, payload: &[u8], flush_orientation: bool, out: &mut Vec<u8>) {
        if flush_orientation {
            if let Some(value) = self.pending_orientation.take() {
                out.extend_from_slice(&exif::minimal_segment(value));
                self.summary.orientation = Some(value);
                self.summary.bytes_added += exif::MINIMAL_SEGMENT_LEN as u64;
            }
        }
        // Payloads come from a 16-bit length field (or are a shortened JFIF), so this fits.
        let length = (payload.len() + 2) as u16;
        out.extend_from_slice(&[0xFF, marker.0]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
    }

    fn read_orientation(&mut self, payload: &[u8]) {
        if self.orientation_decided {
            return;
        }
        if let Some(value) = exif::orientation(payload) {
            self.orientation_decided = true;
            if self.options.keep_orientation && exif::worth_keeping(value) {
                self.pending_orientation = Some(value);
            }
        }
    }

    /// Entropy-coded data from `i`: copies it through up to the marker that ends the scan,
    /// and returns the index after what was consumed.
    fn scan(
        &mut self,
        chunk: &[u8],
        i: usize,
        ff_pending: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, StripError> {
        if ff_pending {
            self.state = State::Scan { ff_pending: false };
            let code = chunk[i];
            if Marker(code).ends_scan() {
                let at = (self.pos + i as u64).saturating_sub(1);
                self.on_marker(Marker(code), at, out)?;
                return Ok(i + 1);
            }
            // Stuffing, RSTn, fill or damaged data: the `0xFF` was scan data.
            out.push(0xFF);
        }
        // Search and copy window by window, so each window is copied while it is still in
        // the L1 cache from the search.
        let mut start = i;
        while start < chunk.len() {
            let end = (start + SCAN_WINDOW).min(chunk.len());
            // One byte past the window, so a marker straddling its end is seen.
            let searched = &chunk[start..(end + 1).min(chunk.len())];
            if let Some(found) = scan::find_end(searched) {
                let ff = start + found;
                out.extend_from_slice(&chunk[start..ff]);
                self.on_marker(Marker(chunk[ff + 1]), self.pos + ff as u64, out)?;
                return Ok(ff + 2);
            }
            out.extend_from_slice(&chunk[start..end]);
            start = end;
        }
        if chunk.last() == Some(&0xFF) {
            // Its meaning depends on the next chunk's first byte: hold it back.
            out.pop();
            self.state = State::Scan { ff_pending: true };
        }
        Ok(chunk.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{strip, strip_with};

    const SOF: &[u8] = b"\x08\x00\x01\x00\x01\x01\x01\x11\x00";
    const SOS: &[u8] = b"\x01\x01\x00\x00\x3f\x00";
    const JFIF: &[u8] = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00";

    fn seg(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    fn exif(orientation: u16) -> Vec<u8> {
        seg(0xE1, &exif::minimal_segment(orientation)[4..])
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// SOI, `header`, SOF, SOS, `scan`, EOI.
    fn picture(header: &[u8], scan: &[u8]) -> Vec<u8> {
        cat(&[
            b"\xFF\xD8",
            header,
            &seg(0xC0, SOF),
            &seg(0xDA, SOS),
            scan,
            b"\xFF\xD9",
        ])
    }

    fn stripped(input: &[u8]) -> (Vec<u8>, Summary) {
        let whole = strip_with(input, &StripOptions::default()).unwrap();
        // Every case also goes through one byte at a time.
        let mut stripper = Stripper::new(StripOptions::default());
        let mut out = Vec::new();
        for byte in input.chunks(1) {
            stripper.feed(byte, &mut out).unwrap();
        }
        assert_eq!((out, stripper.finish().unwrap()), whole);
        whole
    }

    fn error(input: &[u8]) -> StripError {
        let whole = strip(input).unwrap_err();
        let mut stripper = Stripper::new(StripOptions::default());
        let mut out = Vec::new();
        let bytewise = input
            .chunks(1)
            .try_for_each(|byte| stripper.feed(byte, &mut out))
            .and_then(|()| stripper.finish().map(drop))
            .unwrap_err();
        assert_eq!(bytewise.to_string(), whole.to_string());
        whole
    }

    #[test]
    fn copies_scan_data_with_stuffing_and_restarts() {
        let scan = b"\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xD7\xFF\x00\xFF\xFF\xD1\x78";
        let input = picture(&seg(0xDD, b"\x00\x01"), scan);
        let (out, summary) = stripped(&input);
        assert_eq!(out, input);
        assert_eq!(summary.scans, 1);
        assert_eq!(summary.bytes_removed, 0);
    }

    #[test]
    fn markers_on_search_window_boundaries() {
        // The scan is searched in windows of SCAN_WINDOW bytes from its first byte: put the
        // EOI and a restart marker across every boundary position.
        for len in [
            SCAN_WINDOW - 2,
            SCAN_WINDOW - 1,
            SCAN_WINDOW,
            SCAN_WINDOW + 1,
            2 * SCAN_WINDOW - 1,
        ] {
            let mut scan = vec![0x5A; len];
            scan[len / 2] = 0xFF;
            scan[len / 2 + 1] = 0xD3;
            scan[len - 1] = 0xFF; // fill before EOI
            let input = picture(b"", &scan);
            let (out, summary) = strip_with(&input, &StripOptions::default()).unwrap();
            assert_eq!(out, input, "scan of {len} bytes");
            assert_eq!(summary.trailer_bytes, 0);
        }
    }

    #[test]
    fn reserved_codes_in_scan_data_are_data() {
        // `FF 9F` and TEM inside a scan: damaged data, copied; libjpeg resyncs past it.
        let input = picture(b"", b"\x01\xFF\xFF\xFF\x9F\xFF\xD0\x02\xFF\x01\x03");
        assert_eq!(stripped(&input).0, input);
    }

    #[test]
    fn fill_bytes_between_segments_are_dropped() {
        let input = cat(&[
            b"\xFF\xD8\xFF\xFF",
            &seg(0xDB, &[0; 65]),
            b"\xFF\xFF\xFF",
            &seg(0xC0, SOF),
            &seg(0xDA, SOS),
            b"\x00",
            b"\xFF\xFF\xFF\xD9",
        ]);
        let (out, summary) = stripped(&input);
        // Fill before a marker inside the scan is copied with the scan data.
        assert_eq!(
            out,
            cat(&[
                b"\xFF\xD8",
                &seg(0xDB, &[0; 65]),
                &seg(0xC0, SOF),
                &seg(0xDA, SOS),
                b"\x00\xFF\xFF\xFF\xD9"
            ])
        );
        assert_eq!(summary.padding_bytes, 5);
        assert_eq!(summary.bytes_removed, 5);
    }

    #[test]
    fn progressive_scans_and_tables_between_them() {
        let between = cat(&[
            &seg(0xC4, &[0; 20]),
            &seg(0xFE, b"hello"),
            &seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0x"),
        ]);
        let input = cat(&[
            b"\xFF\xD8",
            &seg(0xC2, SOF),
            &seg(0xDA, SOS),
            b"\x01\x02",
            &between,
            &seg(0xDA, SOS),
            b"\x03",
            b"\xFF\xD9",
        ]);
        let (out, summary) = stripped(&input);
        let want = cat(&[
            b"\xFF\xD8",
            &seg(0xC2, SOF),
            &seg(0xDA, SOS),
            b"\x01\x02",
            &seg(0xC4, &[0; 20]),
            &seg(0xDA, SOS),
            b"\x03\xFF\xD9",
        ]);
        assert_eq!(out, want);
        assert_eq!(summary.scans, 2);
        assert_eq!(summary.removed_count(SegmentKind::Comment), 1);
        assert_eq!(summary.removed_count(SegmentKind::Xmp), 1);
    }

    #[test]
    fn everything_after_eoi_is_trailer() {
        let mut input = picture(b"", b"\x00");
        let clean = input.clone();
        input.extend_from_slice(b"\xFF\xD8\xFF\xE1 trailer video \xFF\xD9 more");
        let (out, summary) = stripped(&input);
        assert_eq!(out, clean);
        assert_eq!(summary.trailer_bytes, (input.len() - clean.len()) as u64);
    }

    #[test]
    fn orientation_goes_after_jfif_and_before_the_frame() {
        // EXIF before JFIF: JFIF stays first, the minimal EXIF follows it.
        let input = picture(
            &cat(&[
                &exif(6),
                &seg(0xE0, JFIF),
                &seg(0xED, b"Photoshop 3.0\0"),
                &seg(0xE2, b"ICC_PROFILE\0\x01\x01x"),
            ]),
            b"",
        );
        let (out, summary) = stripped(&input);
        let min = exif::minimal_segment(6);
        let want = picture(
            &cat(&[
                &seg(0xE0, JFIF),
                &min,
                &seg(0xE2, b"ICC_PROFILE\0\x01\x01x"),
            ]),
            b"",
        );
        assert_eq!(out, want);
        assert_eq!(summary.orientation, Some(6));
        assert_eq!(summary.bytes_added, 36);

        // Without JFIF: right after SOI.
        let (out, _) = stripped(&picture(&cat(&[&seg(0xDB, &[0; 65]), &exif(3)]), b""));
        assert_eq!(
            out,
            picture(
                &cat(&[&seg(0xDB, &[0; 65]), &exif::minimal_segment(3)]),
                b""
            )
        );
        let (out, _) = stripped(&picture(&exif(8), b""));
        assert_eq!(&out[2..38], exif::minimal_segment(8));
    }

    #[test]
    fn orientation_options_and_values() {
        let input = picture(&exif(5), b"");
        let off = StripOptions {
            keep_orientation: false,
            ..StripOptions::default()
        };
        let (out, summary) = strip_with(&input, &off).unwrap();
        assert_eq!(out, picture(b"", b""));
        assert_eq!(summary.orientation, None);
        for value in [0, 1, 9, 0xFFFF] {
            let (out, summary) = stripped(&picture(&exif(value), b""));
            assert_eq!(out, picture(b"", b""), "orientation {value}");
            assert_eq!(summary.orientation, None);
            assert_eq!(summary.removed_count(SegmentKind::Exif), 1);
        }
    }

    #[test]
    fn first_readable_orientation_wins() {
        let broken = seg(0xE1, b"Exif\0\0garbage");
        let (out, summary) = stripped(&picture(&cat(&[&broken, &exif(2), &exif(7)]), b""));
        assert_eq!(summary.orientation, Some(2));
        assert_eq!(summary.removed_count(SegmentKind::Exif), 3);
        assert_eq!(out, picture(&exif::minimal_segment(2), b""));
    }

    #[test]
    fn app_segments_after_sof_are_judged_in_place() {
        // Between SOF and SOS decoders still read APPn: ICC stays there, XMP goes, an
        // EXIF orientation is written before the scan.
        let icc = seg(0xE2, b"ICC_PROFILE\0\x01\x01abc");
        let input = cat(&[
            b"\xFF\xD8",
            &seg(0xC0, SOF),
            &icc,
            &seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>"),
            &exif(6),
            &seg(0xDA, SOS),
            b"\xFF\xD9",
        ]);
        let (out, summary) = stripped(&input);
        let want = cat(&[
            b"\xFF\xD8",
            &seg(0xC0, SOF),
            &icc,
            &exif::minimal_segment(6),
            &seg(0xDA, SOS),
            b"\xFF\xD9",
        ]);
        assert_eq!(out, want);
        assert_eq!(summary.orientation, Some(6));
    }

    #[test]
    fn app_segments_after_the_first_scan_all_go() {
        let late = cat(&[
            &seg(0xE2, b"ICC_PROFILE\0\x01\x01"),
            &exif(6),
            &seg(0xEE, b"Adobe\0d\0\0\0\0\x01"),
            &seg(0xE0, JFIF),
        ]);
        let input = cat(&[
            b"\xFF\xD8",
            &seg(0xC2, SOF),
            &seg(0xDA, SOS),
            b"\x01",
            &late,
            &seg(0xDA, SOS),
            b"\x02\xFF\xD9",
        ]);
        let (out, summary) = stripped(&input);
        assert_eq!(
            out,
            cat(&[
                b"\xFF\xD8",
                &seg(0xC2, SOF),
                &seg(0xDA, SOS),
                b"\x01",
                &seg(0xDA, SOS),
                b"\x02\xFF\xD9"
            ])
        );
        assert_eq!(summary.orientation, None);
        assert_eq!(summary.removed.len(), 4);
    }

    #[test]
    fn jfif_thumbnail_is_removed() {
        let mut jfif = JFIF.to_vec();
        jfif[12] = 2;
        jfif[13] = 1;
        jfif.extend_from_slice(&[0xAB; 6]);
        let (out, summary) = stripped(&picture(&seg(0xE0, &jfif), b""));
        assert_eq!(out, picture(&seg(0xE0, JFIF), b""));
        assert_eq!(summary.removed_count(SegmentKind::JfifThumbnail), 1);
        assert_eq!(summary.bytes_removed, 6);
    }

    #[test]
    fn empty_payloads_are_fine() {
        let (out, summary) = stripped(&picture(&cat(&[&seg(0xE1, b""), &seg(0xFE, b"")]), b""));
        assert_eq!(out, picture(b"", b""));
        assert_eq!(summary.removed_count(SegmentKind::App(1)), 1);
    }

    #[test]
    fn segment_length_below_two_is_refused() {
        for length in [0u8, 1] {
            let e = error(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, length, 0xFF, 0xD9]);
            assert!(
                matches!(e, StripError::BadSegmentLength { marker: Marker(0xE1), offset: 2, length: l } if l == u16::from(length))
            );
        }
    }

    #[test]
    fn out_of_order_markers_are_refused() {
        let misplaced = |input: &[u8]| match error(input) {
            StripError::UnexpectedMarker {
                marker,
                offset,
                problem,
            } => (marker, offset, problem),
            other => panic!("{other}"),
        };
        let sos_first = cat(&[
            b"\xFF\xD8",
            &seg(0xDB, &[0; 65]),
            &seg(0xDA, SOS),
            b"\xFF\xD9",
        ]);
        assert_eq!(
            misplaced(&sos_first),
            (Marker::SOS, 71, Misplaced::ScanBeforeFrame)
        );
        let two_frames = cat(&[b"\xFF\xD8", &seg(0xC0, SOF), &seg(0xC2, SOF)]);
        assert_eq!(
            misplaced(&two_frames),
            (Marker(0xC2), 15, Misplaced::SecondFrame)
        );
        assert_eq!(
            misplaced(b"\xFF\xD8\xFF\xD8"),
            (Marker::SOI, 2, Misplaced::SecondSoi)
        );
        let no_scan = cat(&[b"\xFF\xD8", &seg(0xC0, SOF), b"\xFF\xD9"]);
        assert_eq!(
            misplaced(&no_scan),
            (Marker::EOI, 15, Misplaced::EoiBeforeScan)
        );
        assert_eq!(
            misplaced(b"\xFF\xD8\xFF\xD0"),
            (Marker(0xD0), 2, Misplaced::RestartOutsideScan)
        );
        // The marker ending a scan is checked too.
        let frame_in_scan = picture(b"", b"\x01\xFF\xC1\x00\x02");
        assert_eq!(
            misplaced(&frame_in_scan),
            (Marker(0xC1), 26, Misplaced::SecondFrame)
        );
    }

    #[test]
    fn unknown_structure_is_refused() {
        for code in [0x00, 0x01, 0x9F, 0xC8, 0xDE, 0xDF, 0xF0, 0xF7, 0xFD] {
            let e = error(&[0xFF, 0xD8, 0xFF, code, 0x00, 0x04, 0, 0]);
            assert!(
                matches!(e, StripError::UnsupportedMarker { marker: Marker(c), offset: 2 } if c == code),
                "{code:02X}"
            );
        }
        let e = error(b"\xFF\xD8\xFF\xE1\x00\x02\x00\xFF\xD9");
        assert!(matches!(
            e,
            StripError::MarkerExpected {
                offset: 6,
                found: 0
            }
        ));
        assert_eq!(
            e.to_string(),
            "expected a marker at byte 6, found byte 0x00"
        );
    }

    #[test]
    fn truncation_is_located() {
        let full = picture(&seg(0xE1, b"Exif\0\0"), b"\x01\x02");
        let e = |n: usize| error(&full[..n]);
        assert!(matches!(
            e(1),
            StripError::Truncated {
                offset: 1,
                expected: Expected::Soi
            }
        ));
        assert!(matches!(
            e(2),
            StripError::Truncated {
                offset: 2,
                expected: Expected::Marker
            }
        ));
        assert!(matches!(
            e(3),
            StripError::Truncated {
                offset: 3,
                expected: Expected::Marker
            }
        ));
        assert!(matches!(
            e(5),
            StripError::Truncated {
                offset: 5,
                expected: Expected::SegmentLength
            }
        ));
        assert!(matches!(
            e(9),
            StripError::SegmentOverrun {
                marker: Marker(0xE1),
                offset: 2,
                length: 8,
                end: 9
            }
        ));
        let in_scan = full.len() - 3;
        assert!(
            matches!(e(in_scan), StripError::MissingEoi { scans: 1, offset } if offset == in_scan as u64)
        );
        // Cut right before EOI's code: an `FF` is pending in the scan.
        assert!(matches!(
            e(full.len() - 1),
            StripError::MissingEoi { scans: 1, .. }
        ));
        // Cut between scans.
        let progressive = cat(&[
            b"\xFF\xD8",
            &seg(0xC2, SOF),
            &seg(0xDA, SOS),
            b"\x01",
            &seg(0xC4, &[0; 4]),
        ]);
        assert!(matches!(
            error(&progressive),
            StripError::MissingEoi { scans: 1, .. }
        ));
    }

    #[test]
    fn not_a_jpeg_is_named() {
        assert!(matches!(
            error(b""),
            StripError::NotJpeg {
                looks_like: FileKind::Empty
            }
        ));
        assert!(matches!(
            error(b"GIF89a\x01\x00\x01\x00\x80\x00\x00"),
            StripError::NotJpeg {
                looks_like: FileKind::Gif
            }
        ));
        assert!(matches!(
            error(b"\x00\x00\x00\x18ftypheic"),
            StripError::NotJpeg {
                looks_like: FileKind::Heif
            }
        ));
        assert!(matches!(
            error(b"\xFF\xD9"),
            StripError::NotJpeg {
                looks_like: FileKind::Unknown
            }
        ));
    }

    #[test]
    fn drop_icc_option() {
        let icc = seg(0xE2, b"ICC_PROFILE\0\x01\x01abc");
        let input = picture(&icc, b"");
        let (out, summary) = strip_with(
            &input,
            &StripOptions {
                keep_icc: false,
                ..StripOptions::default()
            },
        )
        .unwrap();
        assert_eq!(out, picture(b"", b""));
        assert_eq!(summary.removed_count(SegmentKind::Icc), 1);
        assert_eq!(stripped(&input).0, input);
    }
}
