//! Decoding at a reduced DCT scale, with jpeg-decoder.
//!
//! Why jpeg-decoder 0.3 and not zune-jpeg 0.5 (0.5.15), measured (release build, best of 3, on the
//! shared 2-core AMD EPYC development VM with a load average of 2.3, 2026-12-02):
//!
//! | picture | jpeg-decoder 1/1 | 1/2 | 1/4 | 1/8 | zune-jpeg (full size only) |
//! |---|---:|---:|---:|---:|---:|
//! | Canon EOS 1000D (corpus), 3888x2592, 2.5 MB | 100 ms | 72 ms | 52 ms | 49 ms | 70 ms |
//! | synthesized 6000x4000, 16 MB | 363 ms | 272 ms | 281 ms | 252 ms | 385 ms |
//! | peak RSS, the 24 MP one | 160 MB | | | 21 MB | 89 MB |
//!
//! zune-jpeg decodes the camera picture faster at full size, but it has no scaled IDCT: it
//! always builds the full frame (3 bytes per pixel, 72 MB at 24 MP), where jpeg-decoder
//! at 1/8 needs 1/64 of that, and is faster too. Thumbnails, the common case, decide. (The
//! synthesized picture is grain, so entropy decoding, which no scale saves, dominates it.)
//! jpeg-decoder also decodes progressive pictures, reassembles multi-chunk ICC profiles and
//! is already the test suite's reference decoder.
//!
//! Its `rayon` feature is off: with it, on the same VM (load 2.9 then), the 24 MP picture
//! decoded no faster (447 ms at full scale, 376 ms at 1/8), and it would add a thread pool
//! to a function that has one or two vCPUs at these memory sizes.

use std::panic::{catch_unwind, AssertUnwindSafe};

use jpeg_decoder::{Decoder, PixelFormat};

use super::colour::{cmyk_to_rgb, Colour};
use super::header::Header;
use super::scale::{decoder_request, scaled};
use super::RenditionError;

/// A decoded picture, in stored (not yet oriented) axes.
pub(crate) struct Decoded {
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub colour: Colour,
    /// The ICC profile, reassembled from its APP2 chunks by the decoder.
    pub icc: Option<Vec<u8>>,
}

/// Decodes `jpeg` (whose header is `header`, already checked against the limits) at
/// 1/`denominator` scale. CMYK and YCCK pictures come out as RGB ([`cmyk_to_rgb`]).
///
/// jpeg-decoder is third-party code fed with untrusted bytes: its `assert!`s and
/// `unwrap`s are caught (`catch_unwind`, the Lambda profile keeps `panic = "unwind"`) and
/// reported as [`RenditionError::Decode`], so that no input can crash the function.
pub(crate) fn decode(
    jpeg: &[u8],
    header: &Header,
    denominator: u8,
) -> Result<Decoded, RenditionError> {
    catch_unwind(AssertUnwindSafe(|| {
        decode_unguarded(jpeg, header, denominator)
    }))
    .unwrap_or_else(|_| {
        Err(RenditionError::Decode {
            message: "the decoder panicked on this input".into(),
        })
    })
}

fn decode_unguarded(
    jpeg: &[u8],
    header: &Header,
    denominator: u8,
) -> Result<Decoded, RenditionError> {
    let failed = |e: jpeg_decoder::Error| RenditionError::Decode {
        message: e.to_string(),
    };
    let source = (header.width, header.height);
    let expected = (
        scaled(header.width, denominator),
        scaled(header.height, denominator),
    );
    let mut decoder = Decoder::new(jpeg);
    let (request_w, request_h) = decoder_request(source, denominator);
    let (width, height) = decoder.scale(request_w, request_h).map_err(failed)?;
    let (width, height) = (u32::from(width), u32::from(height));
    if (width, height) != expected {
        return Err(RenditionError::Decode {
            message: format!(
                "the decoder chose {width}x{height} where {}x{} was expected",
                expected.0, expected.1
            ),
        });
    }
    // The limits were checked on the header's size; this holds the decoder to the same
    // size should it read another frame header than the walker did.
    let samples = usize::from(header.components)
        .saturating_mul(width as usize)
        .saturating_mul(height as usize);
    decoder.set_max_decoding_buffer_size(samples);
    let pixels = decoder.decode().map_err(failed)?;
    let format = decoder
        .info()
        .ok_or_else(|| RenditionError::Decode {
            message: "no frame decoded".into(),
        })?
        .pixel_format;
    let (colour, pixels) = match format {
        PixelFormat::L8 => (Colour::Gray, pixels),
        PixelFormat::RGB24 => (Colour::Rgb, pixels),
        PixelFormat::CMYK32 => (Colour::Rgb, cmyk_to_rgb(&pixels)),
        PixelFormat::L16 => {
            return Err(RenditionError::UnsupportedColour {
                problem: "16-bit grayscale".into(),
            })
        }
    };
    let want = colour.channels() * width as usize * height as usize;
    if pixels.len() != want {
        return Err(RenditionError::Decode {
            message: format!("decoded {} bytes where {want} were expected", pixels.len()),
        });
    }
    Ok(Decoded {
        pixels,
        width,
        height,
        colour,
        icc: decoder.icc_profile(),
    })
}
