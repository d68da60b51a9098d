//! Encoding the rendition: a baseline JPEG from jpeg-encoder, with nothing but the picture
//! and, when it fits the pixels, the source's ICC profile.
//!
//! jpeg-encoder writes SOI, a JFIF APP0 (no thumbnail), the APP2 ICC chunks it is given,
//! tables, one baseline frame and scan, EOI: no EXIF, XMP, IPTC or comment can appear.

use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};

use super::colour::Colour;
use super::RenditionError;

/// Encodes `pixels` at `quality` (1..=100), 4:2:0 with box-averaged chroma (jpeg-encoder's
/// default picks the top-left pixel of each 2x2 block: aliased colour edges), with the
/// standard Huffman tables: jpeg-encoder's optimized tables come only with one scan per
/// component (non-interleaved), legal baseline but unusual enough that some decoders and
/// tools mishandle it; one interleaved scan is what every viewer expects. Returns the JPEG
/// and whether `icc` was embedded (only a profile that [`Colour::accepts_icc`]).
pub(crate) fn encode(
    pixels: &[u8],
    (width, height): (u32, u32),
    colour: Colour,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<(Vec<u8>, bool), RenditionError> {
    let failed = |message: String| RenditionError::Encode { message };
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(failed(format!("{width}x{height} exceeds JPEG's 65535")));
    };
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, quality);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    let icc = icc.filter(|profile| colour.accepts_icc(profile));
    // A profile too large for 254 chunks (16 MB) cannot come from a JPEG; dropped if so.
    let icc_kept = icc.is_some_and(|profile| encoder.add_icc_profile(profile).is_ok());
    let color_type = match colour {
        Colour::Gray => ColorType::Luma,
        Colour::Rgb => ColorType::Rgb,
    };
    encoder
        .encode(pixels, w, h, color_type)
        .map_err(|e| failed(e.to_string()))?;
    Ok((jpeg, icc_kept))
}
