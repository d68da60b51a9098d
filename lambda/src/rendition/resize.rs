//! Resizing with fast_image_resize: Lanczos3 convolution on interleaved RGB (or gray)
//! pixels, after the decoder's colour conversion, so chroma is filtered at full
//! resolution rather than on subsampled planes.
//!
//! In gamma-encoded sRGB, not linear light, which is more correct (fine bright detail on
//! dark ground keeps its brightness) but not cheap. Measured like the decoders
//! ([`super::decode`]), fast_image_resize's sRGB mapper to 16-bit linear and back around
//! the same Lanczos3 resize:
//!
//! | resize | sRGB values | linear light |
//! |---|---:|---:|
//! | 750x500 -> 320x213 (24 MP at 1/8, thumbnail) | 0.65 ms | 2.8 ms |
//! | 1500x1000 -> 1280x853 (24 MP at 1/4) | 4.8 ms | 24 ms |
//! | 3000x2000 -> 1280x853 (24 MP at 1/2) | 8.4 ms | 69 ms |
//!
//! 4 to 8 times the resize, up to +60 ms on a 1280 px rendition that takes ~120 ms from a
//! 10 MP photo: left for later, as an option, if previews show the difference.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::colour::Colour;
use super::RenditionError;

/// `pixels` (`width` x `height`, interleaved `colour`) resized to `to`; a copy when the
/// size is already right.
pub(crate) fn resize(
    resizer: &mut Resizer,
    pixels: &[u8],
    (width, height): (u32, u32),
    colour: Colour,
    to: (u32, u32),
) -> Result<Vec<u8>, RenditionError> {
    if (width, height) == to {
        return Ok(pixels.to_vec());
    }
    let failed = |message: String| RenditionError::Resize { message };
    let pixel_type = match colour {
        Colour::Gray => PixelType::U8,
        Colour::Rgb => PixelType::U8x3,
    };
    let source =
        ImageRef::new(width, height, pixels, pixel_type).map_err(|e| failed(e.to_string()))?;
    let mut target = Image::new(to.0, to.1, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&source, &mut target, &options)
        .map_err(|e| failed(e.to_string()))?;
    Ok(target.into_vec())
}
