//! What the renderer needs to know before decoding: the frame's size, components and coding
//! from SOF, and the EXIF orientation. Read with the stripper's own walker, which also
//! checks the whole marker structure: a picture the walker finds damaged (truncated, no
//! EOI, overrunning segment) is refused with its error and offset, as the stripper would
//! refuse it, before the decoder sees a byte. The walk reads every byte of the scans:
//! 2.6 ms for the corpus's 2.5 MB Canon picture, 16 ms for a 16 MB one (5% of their
//! thumbnails' time, measured as in [`super::decode`]), the price of refusing a
//! truncated picture, as the stripper does, rather than rendering what a decoder makes of it.

use super::RenditionError;
use crate::{exif, segments, Marker};

/// The frame header and orientation of a structurally sound JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Stored (not yet oriented) size, both at least 1.
    pub width: u32,
    pub height: u32,
    /// Number of colour components: 1, 3 or 4 (anything else is refused here).
    pub components: u8,
    pub progressive: bool,
    /// EXIF Orientation to apply, 1..=8: 1 when absent, unreadable or out of range.
    pub orientation: u16,
}

impl Header {
    /// Whether the orientation swaps the axes (5..=8: the transposing ones).
    pub fn transposed(&self) -> bool {
        self.orientation >= 5
    }

    /// The size once upright.
    pub fn oriented_size(&self) -> (u32, u32) {
        if self.transposed() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Reads the header of `jpeg`, walking its whole structure up to the first EOI.
///
/// The orientation is the first readable one of an APP1 `Exif` segment before the first
/// scan, the one the stripper keeps ([`exif::orientation`]); values outside 1..=8 (0 is
/// common) mean "as stored", as browsers read them.
pub(crate) fn read(jpeg: &[u8]) -> Result<Header, RenditionError> {
    let mut frame: Option<Header> = None;
    let mut orientation: Option<u16> = None;
    let mut in_scans = false;
    for segment in segments(jpeg) {
        let segment = segment?;
        if in_scans {
            continue;
        }
        match segment.marker {
            Marker::SOS | Marker::EOI => {
                if frame.is_none() {
                    return Err(RenditionError::MissingFrame {
                        offset: segment.offset as u64,
                    });
                }
                in_scans = true;
            }
            m if m.is_sof() && frame.is_none() => {
                frame = Some(parse_sof(m, segment.offset as u64, segment.payload)?);
            }
            m if m == Marker::app(1) && orientation.is_none() => {
                orientation = exif::orientation(segment.payload);
            }
            _ => {}
        }
    }
    // The walker ends at EOI or with an error, and EOI before a frame was refused above.
    let mut header = frame.ok_or(RenditionError::MissingFrame {
        offset: jpeg.len() as u64,
    })?;
    header.orientation = orientation.filter(|o| (1..=8).contains(o)).unwrap_or(1);
    Ok(header)
}

/// Parses a SOFn payload: precision, height, width, component count, then 3 bytes per
/// component. Only what jpeg-decoder decodes *and* scales is accepted: 8-bit Huffman-coded
/// DCT frames, baseline, extended or progressive (SOF0, SOF1, SOF2).
fn parse_sof(marker: Marker, offset: u64, payload: &[u8]) -> Result<Header, RenditionError> {
    let unsupported = |problem: String| RenditionError::UnsupportedFrame { offset, problem };
    let progressive = match marker.0 {
        0xC0 | 0xC1 => false,
        0xC2 => true,
        0xC3 => return Err(unsupported("lossless JPEG (SOF3)".into())),
        0xC5..=0xC7 => return Err(unsupported(format!("hierarchical JPEG ({marker})"))),
        _ => return Err(unsupported(format!("arithmetic coding ({marker})"))),
    };
    let &[precision, h1, h0, w1, w0, components, ..] = payload else {
        return Err(unsupported(format!(
            "frame header of {} bytes, too short",
            payload.len()
        )));
    };
    if precision != 8 {
        return Err(unsupported(format!(
            "{precision}-bit samples (only 8-bit pictures are rendered)"
        )));
    }
    let (height, width) = (u16::from_be_bytes([h1, h0]), u16::from_be_bytes([w1, w0]));
    if width == 0 || height == 0 {
        // Height 0 means "given later by DNL", which jpeg-decoder does not support either.
        return Err(unsupported(format!("zero dimension ({width}x{height})")));
    }
    if !matches!(components, 1 | 3 | 4) {
        return Err(RenditionError::UnsupportedColour {
            problem: format!("{components} colour components (1, 3 or 4 are rendered)"),
        });
    }
    if payload.len() < 6 + 3 * usize::from(components) {
        return Err(unsupported(format!(
            "frame header of {} bytes, too short for {components} components",
            payload.len()
        )));
    }
    Ok(Header {
        width: u32::from(width),
        height: u32::from(height),
        components,
        progressive,
        orientation: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sof(code: u8, precision: u8, w: u16, h: u16, components: u8) -> Vec<u8> {
        let mut s = vec![0xFF, code, 0, 0, precision];
        s.extend_from_slice(&h.to_be_bytes());
        s.extend_from_slice(&w.to_be_bytes());
        s.push(components);
        for id in 0..components {
            s.extend_from_slice(&[id + 1, 0x11, 0]);
        }
        let len = (s.len() - 2) as u16;
        s[2..4].copy_from_slice(&len.to_be_bytes());
        s
    }

    fn picture(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0xFF, 0xD8];
        for s in segments {
            p.extend_from_slice(s);
        }
        // An empty scan, then EOI: enough structure for the walker.
        p.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0x12, 0x34, 0xFF, 0xD9]);
        p
    }

    #[test]
    fn reads_the_frame_and_orientation() {
        let mut exif = vec![0xFF, 0xE1];
        exif.extend_from_slice(&exif::minimal_segment(6)[2..]);
        let h = read(&picture(&[exif, sof(0xC2, 8, 640, 480, 3)])).unwrap();
        assert_eq!((h.width, h.height, h.components), (640, 480, 3));
        assert!(h.progressive);
        assert_eq!(h.orientation, 6);
        assert_eq!(h.oriented_size(), (480, 640));
    }

    #[test]
    fn refuses_what_is_not_rendered() {
        let kind = |segments: &[Vec<u8>]| read(&picture(segments)).unwrap_err().kind();
        assert_eq!(kind(&[]), "missing-frame");
        assert_eq!(kind(&[sof(0xC3, 8, 8, 8, 3)]), "unsupported-frame");
        assert_eq!(kind(&[sof(0xC9, 8, 8, 8, 3)]), "unsupported-frame");
        assert_eq!(kind(&[sof(0xC0, 12, 8, 8, 1)]), "unsupported-frame");
        assert_eq!(kind(&[sof(0xC0, 8, 0, 8, 3)]), "unsupported-frame");
        assert_eq!(kind(&[sof(0xC0, 8, 8, 8, 2)]), "unsupported-colour");
        let mut short = sof(0xC0, 8, 8, 8, 3);
        short.truncate(9);
        short[3] = 5;
        assert_eq!(kind(&[short]), "unsupported-frame");
        assert_eq!(read(b"").unwrap_err().kind(), "not-jpeg");
        assert_eq!(
            read(b"\xFF\xD8\xFF\xD9").unwrap_err().kind(),
            "missing-frame"
        );
        assert_eq!(
            read(b"\xFF\xD8\xFF\xE1\x00").unwrap_err().kind(),
            "malformed"
        );
    }
}
