//! Applying the EXIF orientation to the pixels: the rendition carries no EXIF, so it must
//! be upright as stored.
//!
//! Done on the resized picture, not the decoded one: flips and quarter turns commute with
//! a separable resize to the correspondingly flipped or turned size, and moving 0.1
//! megapixels is cheaper than moving 6.

/// `pixels` (`width` x `height`, `channels` interleaved bytes per pixel) turned upright
/// for EXIF `orientation` 1..=8 (anything else is taken as 1), with its new size.
///
/// | value | applied here (what a viewer honouring EXIF does) |
/// |---|---|
/// | 1 | nothing |
/// | 2 | flip left-right |
/// | 3 | rotate 180 |
/// | 4 | flip top-bottom |
/// | 5 | transpose (flip over the main diagonal) |
/// | 6 | rotate 90 clockwise |
/// | 7 | transverse (flip over the anti-diagonal) |
/// | 8 | rotate 90 counter-clockwise |
pub(crate) fn apply(
    pixels: Vec<u8>,
    (width, height): (u32, u32),
    channels: usize,
    orientation: u16,
) -> (Vec<u8>, u32, u32) {
    if !(2..=8).contains(&orientation) {
        return (pixels, width, height);
    }
    let (w, h) = (width as usize, height as usize);
    // For output pixel (x, y), the stored pixel it comes from.
    let source: fn(usize, usize, usize, usize) -> (usize, usize) = match orientation {
        2 => |x, y, w, _| (w - 1 - x, y),
        3 => |x, y, w, h| (w - 1 - x, h - 1 - y),
        4 => |x, y, _, h| (x, h - 1 - y),
        5 => |x, y, _, _| (y, x),
        6 => |x, y, _, h| (y, h - 1 - x),
        7 => |x, y, w, h| (w - 1 - y, h - 1 - x),
        _ => |x, y, w, _| (w - 1 - y, x),
    };
    let (out_w, out_h) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut out = Vec::with_capacity(pixels.len());
    for y in 0..out_h {
        for x in 0..out_w {
            let (sx, sy) = source(x, y, w, h);
            let at = (sy * w + sx) * channels;
            // In bounds by construction; `get` keeps a size mismatch from panicking.
            out.extend_from_slice(pixels.get(at..at + channels).unwrap_or(&[0; 4][..channels]));
        }
    }
    (out, out_w as u32, out_h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 gray picture:
    /// ```text
    /// 1 2 3
    /// 4 5 6
    /// ```
    const PICTURE: [u8; 6] = [1, 2, 3, 4, 5, 6];

    fn turn(orientation: u16) -> (Vec<u8>, u32, u32) {
        apply(PICTURE.to_vec(), (3, 2), 1, orientation)
    }

    #[test]
    fn every_orientation() {
        assert_eq!(turn(1), (PICTURE.to_vec(), 3, 2));
        assert_eq!(turn(0), (PICTURE.to_vec(), 3, 2));
        assert_eq!(turn(2), (vec![3, 2, 1, 6, 5, 4], 3, 2));
        assert_eq!(turn(3), (vec![6, 5, 4, 3, 2, 1], 3, 2));
        assert_eq!(turn(4), (vec![4, 5, 6, 1, 2, 3], 3, 2));
        assert_eq!(turn(5), (vec![1, 4, 2, 5, 3, 6], 2, 3));
        assert_eq!(turn(6), (vec![4, 1, 5, 2, 6, 3], 2, 3));
        assert_eq!(turn(7), (vec![6, 3, 5, 2, 4, 1], 2, 3));
        assert_eq!(turn(8), (vec![3, 6, 2, 5, 1, 4], 2, 3));
    }

    #[test]
    fn keeps_pixels_whole() {
        let rgb: Vec<u8> = (0..18).collect();
        let (out, w, h) = apply(rgb, (3, 2), 3, 6);
        assert_eq!((w, h), (2, 3));
        assert_eq!(&out[..6], &[9, 10, 11, 0, 1, 2]);
    }
}
