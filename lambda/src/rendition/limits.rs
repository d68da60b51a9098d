//! How large a picture may be decoded: checked from the frame header, before any pixel
//! buffer exists, so that a small file claiming 65535x65535 pixels costs nothing.

/// Upper bounds on the decoder's buffers, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Refuse when the picture *at the chosen DCT scale* has more pixels than this: a
    /// 24-megapixel photo decoded at 1/8 for a 320 px thumbnail is 0.375 megapixels.
    pub max_decoded_pixels: u64,
    /// Refuse a progressive picture whose *full* size has more pixels than this.
    /// jpeg-decoder keeps a progressive picture's DCT coefficients (2 bytes per sample, up
    /// to 3 samples per pixel) for the whole frame until the last scan, whatever the output
    /// scale; baseline pictures are decoded row by row and need no such buffer.
    pub max_progressive_pixels: u64,
}

/// Memory the renderer leaves to everything else in the function: the runtime and its
/// HTTP client (~30 MB resident), the source object and the encoded renditions.
const RESERVED_MB: u64 = 64;

/// Peak bytes per decoded pixel: the decoder's component planes (up to 3 bytes, 4:4:4) and
/// its interleaved output (3; a CMYK picture: 4, then 3 more for its RGB copy), the
/// resizer's intermediate horizontal pass (at most 3, it is no larger than the decoded
/// picture) and its output (smaller still): 3 + 4 + 3 + 3 = 13, rounded up to 16 for
/// allocator slack.
const BYTES_PER_DECODED_PIXEL: u64 = 16;

/// Peak bytes per source pixel of a progressive picture: its coefficients (2 bytes per
/// sample, 3 samples at 4:4:4 = 6; conservative for the common 4:2:0, 1.5 samples = 3)
/// plus the decoded buffers if it is decoded at full scale (16, above).
const BYTES_PER_PROGRESSIVE_PIXEL: u64 = 6 + BYTES_PER_DECODED_PIXEL;

impl Limits {
    /// Limits for a function with `mb` megabytes (MiB, as Lambda counts them) of memory:
    /// what is left after 64 MB for the runtime, the source object and the renditions,
    /// divided by the peak bytes per pixel (16 decoded, 22 progressive, see the constants).
    ///
    /// | memory | decoded | progressive | so, from a 24 MP photo |
    /// |---:|---:|---:|---|
    /// | 1024 MB | 62.9 MP | 45.7 MP | any rendition, even at full scale |
    /// | 256 MB | 12.6 MP | 9.2 MP | up to 1/2 scale (3000x2000): renditions up to 3000 px, not progressive |
    /// | 128 MB | 4.2 MP | 3.1 MP | up to 1/4 scale: renditions up to 1500 px, not progressive |
    ///
    /// At or below 64 MB nothing is decoded.
    pub fn for_memory_mb(mb: u32) -> Limits {
        let usable = u64::from(mb).saturating_sub(RESERVED_MB) * 1024 * 1024;
        Limits {
            max_decoded_pixels: usable / BYTES_PER_DECODED_PIXEL,
            max_progressive_pixels: usable / BYTES_PER_PROGRESSIVE_PIXEL,
        }
    }
}

impl Default for Limits {
    /// The limits of a 1024 MB function.
    fn default() -> Limits {
        Limits::for_memory_mb(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_the_limits() {
        let l = Limits::for_memory_mb(1024);
        assert_eq!(l.max_decoded_pixels, 960 * 1024 * 1024 / 16);
        assert!(l.max_decoded_pixels > 24_000_000);
        assert_eq!(Limits::for_memory_mb(64).max_decoded_pixels, 0);
        assert_eq!(Limits::for_memory_mb(0).max_progressive_pixels, 0);
        // A 24 MP picture's 1/8 scale (750x500) fits in the smallest Lambda.
        assert!(Limits::for_memory_mb(128).max_decoded_pixels > 750 * 500);
        assert!(Limits::for_memory_mb(u32::MAX).max_decoded_pixels > 0);
    }
}
