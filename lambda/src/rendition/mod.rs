//! Renditions (issue 17): metadata-free, upright, resized copies of a JPEG, for thumbnails
//! and previews. Sans-I/O like the stripper: bytes in, bytes out.
//!
//! Unlike stripping, this decodes and re-encodes: the pixels change (they are resized),
//! so nothing of the source but its pixels and its ICC profile can reach the output. One
//! module per step:
//!
//! 1. `header`: the stripper's walker checks the whole marker structure and reads the
//!    frame size from SOF and the EXIF orientation, before anything is decoded.
//! 2. `scale`: the target size (longest edge `max_edge`, never upscaled) and the DCT
//!    scale (1/1, 1/2, 1/4, 1/8) whose output still covers it on both axes.
//! 3. [`Limits`]: the size at that scale is checked against the limits, still before any
//!    pixel buffer exists.
//! 4. `decode`: jpeg-decoder, at that scale (why it and not zune-jpeg: there).
//! 5. `colour`: grayscale stays gray, CMYK/YCCK becomes RGB (naively), ICC profiles are
//!    kept when they describe the output's colour model.
//! 6. `resize`: Lanczos3 with fast_image_resize, on interleaved RGB.
//! 7. `orient`: EXIF orientations 2..=8 applied to the (small) resized pixels.
//! 8. `encode`: a baseline JPEG with jpeg-encoder, JFIF and ICC only.
//!
//! Frames rendered: 8-bit baseline, extended and progressive Huffman-coded DCT (SOF0-2)
//! with 1, 3 or 4 components. Refused with a typed error: lossless, hierarchical and
//! arithmetic-coded frames, 12/16-bit samples, 2 or more than 4 components.
//!
//! Resizing is done on gamma-encoded sRGB values, not linear light: `resize` measures
//! what linear light would cost.

mod colour;
mod decode;
mod encode;
mod error;
mod header;
mod limits;
mod orient;
mod resize;
mod scale;

use fast_image_resize::Resizer;

pub use error::{PixelBuffer, RenditionError};
pub use limits::Limits;

/// What rendition to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenditionSpec {
    /// Longest edge of the rendition, in pixels (at least 1). A smaller picture keeps its
    /// size: renditions are never upscaled.
    pub max_edge: u32,
    /// JPEG quality, 1..=100 (jpeg-encoder's scale, which is libjpeg's).
    pub quality: u8,
}

/// A rendition and what went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The baseline JPEG: SOI, JFIF, the ICC profile if kept, the picture, EOI.
    pub jpeg: Vec<u8>,
    /// Size of the rendition (upright).
    pub width: u32,
    pub height: u32,
    /// Size of the source as stored in its frame header (before orientation).
    pub source_width: u32,
    pub source_height: u32,
    /// The EXIF orientation applied to the pixels, 1..=8 (1 when the source had none or
    /// an invalid one).
    pub orientation: u16,
    /// Whether the source's ICC profile was embedded. It is dropped when the source has
    /// none, or when it does not describe the rendition's colour model (a CMYK profile
    /// after CMYK -> RGB conversion).
    pub icc_kept: bool,
    /// Denominator of the DCT scale the source was decoded at: 1, 2, 4 or 8.
    pub dct_scale: u8,
}

/// Makes one rendition of `source`. Never panics, whatever the input.
///
/// ```
/// use lambda::rendition::{render, Limits, RenditionSpec};
/// # let pixels = vec![0u8; 64 * 48 * 3];
/// # let mut source = Vec::new();
/// # jpeg_encoder::Encoder::new(&mut source, 90)
/// #     .encode(&pixels, 64, 48, jpeg_encoder::ColorType::Rgb)
/// #     .unwrap();
/// let spec = RenditionSpec { max_edge: 32, quality: 80 };
/// let thumb = render(&source, &spec, &Limits::default())?;
/// assert_eq!((thumb.width, thumb.height, thumb.dct_scale), (32, 24, 2));
/// # Ok::<(), lambda::rendition::RenditionError>(())
/// ```
pub fn render(
    source: &[u8],
    spec: &RenditionSpec,
    limits: &Limits,
) -> Result<Rendition, RenditionError> {
    check(spec)?;
    let header = header::read(source)?;
    let denominator = denominator(&header, [spec]);
    let decoded = decode_within(source, &header, denominator, limits)?;
    finish(&decoded, &header, spec, denominator, &mut Resizer::new())
}

/// Makes one rendition per spec, decoding `source` once, at the scale the largest one
/// needs. The results are in the order of `specs`; an invalid spec fails alone, a source
/// that cannot be decoded fails them all with the same error.
pub fn render_all(
    source: &[u8],
    specs: &[RenditionSpec],
    limits: &Limits,
) -> Vec<Result<Rendition, RenditionError>> {
    let valid: Vec<&RenditionSpec> = specs.iter().filter(|s| check(s).is_ok()).collect();
    let prepared = if valid.is_empty() {
        None
    } else {
        Some(header::read(source).and_then(|header| {
            let denominator = denominator(&header, valid.iter().copied());
            let decoded = decode_within(source, &header, denominator, limits)?;
            Ok((header, denominator, decoded))
        }))
    };
    let mut resizer = Resizer::new();
    specs
        .iter()
        .map(|spec| {
            check(spec)?;
            match &prepared {
                Some(Ok((header, denominator, decoded))) => {
                    finish(decoded, header, spec, *denominator, &mut resizer)
                }
                Some(Err(e)) => Err(e.clone()),
                // Every spec was invalid, so `check` returned above.
                None => Err(RenditionError::InvalidSpec {
                    problem: "no valid spec",
                }),
            }
        })
        .collect()
}

fn check(spec: &RenditionSpec) -> Result<(), RenditionError> {
    if spec.max_edge == 0 {
        return Err(RenditionError::InvalidSpec {
            problem: "max_edge must be at least 1",
        });
    }
    if !(1..=100).contains(&spec.quality) {
        return Err(RenditionError::InvalidSpec {
            problem: "quality must be 1..=100",
        });
    }
    Ok(())
}

/// The stored-axes target size of `spec`.
fn stored_target(header: &header::Header, spec: &RenditionSpec) -> (u32, u32) {
    let (w, h) = header.oriented_size();
    let (tw, th) = scale::target_size(w, h, spec.max_edge);
    if header.transposed() {
        (th, tw)
    } else {
        (tw, th)
    }
}

/// The DCT scale denominator that covers every spec: the smallest of their own.
fn denominator<'a>(
    header: &header::Header,
    specs: impl IntoIterator<Item = &'a RenditionSpec>,
) -> u8 {
    specs
        .into_iter()
        .map(|spec| scale::denominator((header.width, header.height), stored_target(header, spec)))
        .min()
        .unwrap_or(1)
}

/// Checks the limits, then decodes.
fn decode_within(
    source: &[u8],
    header: &header::Header,
    denominator: u8,
    limits: &Limits,
) -> Result<decode::Decoded, RenditionError> {
    let too_many = |buffer, width: u32, height: u32, limit| {
        let pixels = u64::from(width) * u64::from(height);
        (pixels > limit).then_some(RenditionError::TooManyPixels {
            buffer,
            width,
            height,
            scale: denominator,
            pixels,
            limit,
        })
    };
    let (w, h) = (
        scale::scaled(header.width, denominator),
        scale::scaled(header.height, denominator),
    );
    if let Some(e) = too_many(PixelBuffer::Decoded, w, h, limits.max_decoded_pixels) {
        return Err(e);
    }
    if header.progressive {
        let limit = limits.max_progressive_pixels;
        let buffer = PixelBuffer::ProgressiveCoefficients;
        if let Some(e) = too_many(buffer, header.width, header.height, limit) {
            return Err(e);
        }
    }
    decode::decode(source, header, denominator)
}

/// Resizes, orients and encodes one rendition from the decoded picture.
fn finish(
    decoded: &decode::Decoded,
    header: &header::Header,
    spec: &RenditionSpec,
    denominator: u8,
    resizer: &mut Resizer,
) -> Result<Rendition, RenditionError> {
    let target = stored_target(header, spec);
    let resized = resize::resize(
        resizer,
        &decoded.pixels,
        (decoded.width, decoded.height),
        decoded.colour,
        target,
    )?;
    let channels = decoded.colour.channels();
    let (upright, width, height) = orient::apply(resized, target, channels, header.orientation);
    let (jpeg, icc_kept) = encode::encode(
        &upright,
        (width, height),
        decoded.colour,
        spec.quality,
        decoded.icc.as_deref(),
    )?;
    Ok(Rendition {
        jpeg,
        width,
        height,
        source_width: header.width,
        source_height: header.height,
        orientation: header.orientation,
        icc_kept,
        dct_scale: denominator,
    })
}
