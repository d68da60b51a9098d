//! Sizes: the rendition's target size, and the DCT scale to decode at.
//!
//! A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size almost for free: the inverse DCT
//! keeps only the low-frequency 4x4, 2x2 or 1x1 corner of each 8x8 block, so decoding
//! costs less and the buffers are 4, 16 or 64 times smaller. The scale chosen is the
//! smallest whose output is still at least the target on *both* axes, so the resizer only
//! ever shrinks (a too-small decode would have to be upscaled: blurry).

/// The scale denominators, smallest output first.
const DENOMINATORS: [u8; 3] = [8, 4, 2];

/// Size of the rendition of an upright `width` x `height` picture: the longest edge
/// becomes `max_edge`, the other keeps the aspect ratio (rounded, at least 1 pixel). A
/// picture already within `max_edge` keeps its size: renditions never upscale.
pub(crate) fn target_size(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_edge {
        return (width, height);
    }
    let shrink = |len: u32| -> u32 {
        let scaled =
            (u64::from(len) * u64::from(max_edge) * 2 + u64::from(long)) / (2 * u64::from(long));
        // At most `len` (< long, so it fits in u32), at least 1.
        u32::try_from(scaled).unwrap_or(len).max(1)
    };
    if width >= height {
        (max_edge, shrink(height))
    } else {
        (shrink(width), max_edge)
    }
}

/// `len` at 1/`denominator` scale, rounded up as decoders do (a partial block still gives
/// a pixel).
pub(crate) fn scaled(len: u32, denominator: u8) -> u32 {
    len.div_ceil(u32::from(denominator))
}

/// The largest denominator (smallest decode) whose output covers `target` on both axes;
/// `source` and `target` in the same (stored) axes.
pub(crate) fn denominator(source: (u32, u32), target: (u32, u32)) -> u8 {
    DENOMINATORS
        .into_iter()
        .find(|&d| scaled(source.0, d) >= target.0 && scaled(source.1, d) >= target.1)
        .unwrap_or(1)
}

/// The size to pass to jpeg-decoder's `Decoder::scale` so that it decodes at exactly
/// 1/`denominator`.
///
/// jpeg-decoder 0.3 picks the smallest scale at which *either* axis reaches the request
/// (`idct::choose_idct_size`), which for a thin picture can be a scale where the other axis
/// falls short. Requesting an axis that does not grow from the next smaller scale as
/// `u16::MAX` (never reached) leaves the choice to the axis that does; one always does, or
/// [`denominator`] would have picked the smaller scale. The decoded size is checked against
/// the expected one all the same ([`super::decode`]).
pub(crate) fn decoder_request(source: (u32, u32), denominator: u8) -> (u16, u16) {
    let axis = |len: u32| -> u16 {
        let at = scaled(len, denominator);
        let grows = denominator == 8 || scaled(len, denominator * 2) < at;
        if grows {
            u16::try_from(at).unwrap_or(u16::MAX)
        } else {
            u16::MAX
        }
    };
    (axis(source.0), axis(source.1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// jpeg-decoder 0.3's `choose_idct_size`, as a denominator.
    fn jpeg_decoder_choice(source: (u32, u32), request: (u16, u16)) -> u8 {
        for (numerator, d) in [(1, 8), (2, 4), (4, 2)] {
            let s = |len: u32| (len * numerator - 1) / 8 + 1;
            if s(source.0) >= u32::from(request.0) || s(source.1) >= u32::from(request.1) {
                return d;
            }
        }
        1
    }

    #[test]
    fn targets_keep_the_aspect_ratio() {
        assert_eq!(target_size(6000, 4000, 320), (320, 213));
        assert_eq!(target_size(4000, 6000, 1280), (853, 1280));
        assert_eq!(target_size(128, 128, 320), (128, 128));
        assert_eq!(target_size(10_000, 1, 100), (100, 1));
        assert_eq!(target_size(65535, 65535, 1), (1, 1));
    }

    #[test]
    fn the_smallest_sufficient_scale() {
        assert_eq!(denominator((6000, 4000), (320, 213)), 8);
        assert_eq!(denominator((6000, 4000), (1280, 853)), 4);
        assert_eq!(denominator((6000, 4000), (1600, 1067)), 2);
        assert_eq!(denominator((6000, 4000), (3001, 2001)), 1);
        // The thin picture jpeg-decoder's either-axis rule gets wrong.
        assert_eq!(denominator((4, 1000), (1, 250)), 4);
        assert_eq!(decoder_request((4, 1000), 4), (u16::MAX, 250));
        assert_eq!(jpeg_decoder_choice((4, 1000), (1, 250)), 8);
    }

    proptest! {
        #[test]
        fn the_request_gets_exactly_the_scale(
            w in 1u32..=65535, h in 1u32..=65535, edge in 1u32..=70_000, swap: bool,
        ) {
            let (tw, th) = target_size(w, h, edge);
            prop_assert!(tw >= 1 && th >= 1 && tw <= w && th <= h);
            prop_assert!(tw.max(th) == w.max(h).min(edge));
            let (tw, th) = if swap { (th, tw) } else { (tw, th) };
            let (w, h) = if swap { (h, w) } else { (w, h) };
            let d = denominator((w, h), (tw, th));
            prop_assert!(scaled(w, d) >= tw && scaled(h, d) >= th);
            if d < 8 {
                prop_assert!(scaled(w, d * 2) < tw || scaled(h, d * 2) < th);
            }
            prop_assert_eq!(jpeg_decoder_choice((w, h), decoder_request((w, h), d)), d);
        }
    }
}
