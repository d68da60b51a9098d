//! Colour models: what the renditions are encoded in, CMYK conversion, and which ICC
//! profiles may be kept.
//!
//! - **Grayscale** pictures stay grayscale (one component: smaller, and a gray ICC profile
//!   stays valid).
//! - **RGB and YCbCr** pictures are encoded as YCbCr from RGB, like any JPEG.
//! - **CMYK and YCCK** (print files, usually Adobe's, stored inverted) are converted to
//!   RGB naively, `R = (255 - C) * (255 - K) / 255` on the ink amounts jpeg-decoder gives
//!   (it undoes Adobe's inversion and the YCCK transform). That ignores the print profile:
//!   colours are roughly right (saturated inks come out too bright) but no colour
//!   management library is needed; the CMYK ICC profile is dropped, as it cannot describe
//!   RGB pixels.

/// Colour model of decoded and encoded pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    Gray,
    Rgb,
}

impl Colour {
    pub fn channels(self) -> usize {
        match self {
            Colour::Gray => 1,
            Colour::Rgb => 3,
        }
    }

    /// Whether an ICC profile describes pixels of this model: its header's data colour
    /// space (bytes 16..20, ICC.1 section 7.2.6) must be `GRAY` or `RGB `. A CMYK
    /// profile on converted pixels, or a malformed profile, would mislead the viewer.
    pub fn accepts_icc(self, profile: &[u8]) -> bool {
        let space = profile.get(16..20);
        match self {
            Colour::Gray => space == Some(b"GRAY"),
            Colour::Rgb => space == Some(b"RGB "),
        }
    }
}

/// Interleaved CMYK ink amounts (0 = no ink) to RGB.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let white = 255 - u32::from(px[3]);
        for &ink in &px[..3] {
            // Rounded (x + 127) / 255; at most 255 * 255 + 127, so the division fits a u8.
            rgb.push((((255 - u32::from(ink)) * white + 127) / 255) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_inks_subtract_from_white() {
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[255, 0, 255, 0]), [0, 255, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 128, 9]), [127, 127, 127]);
    }

    #[test]
    fn icc_must_match_the_model() {
        let mut profile = vec![0u8; 128];
        profile[16..20].copy_from_slice(b"RGB ");
        assert!(Colour::Rgb.accepts_icc(&profile));
        assert!(!Colour::Gray.accepts_icc(&profile));
        profile[16..20].copy_from_slice(b"CMYK");
        assert!(!Colour::Rgb.accepts_icc(&profile));
        assert!(!Colour::Rgb.accepts_icc(b"short"));
    }
}
