//! Finding where entropy-coded data ends, at close to memory speed.
//!
//! Scan data is full of `0xFF`: every `FF 00` stuffing pair and every `RSTn` marker
//! (about one in 110 bytes on the corpus). Searching for `0xFF` with `memchr` and judging
//! each hit costs a restart and a mispredicted branch per hit, which capped the stripper
//! at a third of memory-copy speed. What ends a scan is rare, though: a `0xFF` followed
//! by a code that [`Marker::ends_scan`](crate::Marker::ends_scan). So this module tests
//! that pair condition on whole 64-byte blocks with branch-free code the compiler turns
//! into SIMD compares, and only looks byte by byte inside the one block that holds the
//! end of the scan.
//!
//! Testing pairs independently is exact: the sequential reading (`FF 00` and `FF RSTn`
//! are data, `FF FF` is fill) never consumes an `0xFF` as the second byte of a pair, so
//! every `0xFF` is examined as a possible marker start, and the first one followed by a
//! scan-ending code is where the sequential reading stops too.

/// Bytes tested per step; a multiple of every SIMD width.
const BLOCK: usize = 64;

/// Whether `FF code` ends the scan, written without branches (see `Marker::ends_scan`:
/// codes 0xC0..=0xFE except RST0-7).
#[inline(always)]
fn ends_scan(byte: u8, code: u8) -> bool {
    (byte == 0xFF) & (code >= 0xC0) & (code != 0xFF) & (code & 0xF8 != 0xD0)
}

/// Offset of the first `0xFF` in `data` that starts a scan-ending marker. Only offsets
/// whose next byte is in `data` are tested: a final `0xFF` is never reported.
pub(crate) fn find_end(data: &[u8]) -> Option<usize> {
    let mut base = 0;
    // Each step compares data[base..base + 64] with the same bytes shifted by one.
    while let Some(window) = data.get(base..base + BLOCK + 1) {
        let (bytes, codes) = (&window[..BLOCK], &window[1..]);
        let mut hit = false;
        for (&byte, &code) in bytes.iter().zip(codes) {
            hit |= ends_scan(byte, code);
        }
        if hit {
            break;
        }
        base += BLOCK;
    }
    data.get(base..)?
        .windows(2)
        .position(|pair| ends_scan(pair[0], pair[1]))
        .map(|at| base + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Marker;

    /// The sequential definition the block search must agree with.
    fn sequential(data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i + 1 < data.len() {
            if data[i] == 0xFF {
                let code = data[i + 1];
                if Marker(code).ends_scan() {
                    return Some(i);
                }
                i += if code == 0xFF { 1 } else { 2 };
            } else {
                i += 1;
            }
        }
        None
    }

    #[test]
    fn pair_condition_is_the_marker_class() {
        for code in 0..=255u8 {
            assert_eq!(
                ends_scan(0xFF, code),
                Marker(code).ends_scan(),
                "{code:02X}"
            );
            assert!(!ends_scan(0xFE, code));
        }
    }

    #[test]
    fn agrees_with_sequential_reading() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in [0, 1, 2, 63, 64, 65, 66, 127, 128, 129, 200, 1000] {
            for _ in 0..200 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly FF and the codes around it, to hit every case.
                        [0xFF, 0xFF, 0x00, 0xD0, 0xD7, 0xD8, 0xD9, 0xC4, 0x9F, 0x12]
                            [(state % 10) as usize]
                    })
                    .collect();
                assert_eq!(find_end(&data), sequential(&data), "{data:02X?}");
            }
        }
    }

    #[test]
    fn finds_the_end_in_every_position() {
        for at in 0..200 {
            let mut data = vec![0x11u8; 200];
            data[at] = 0xFF;
            if at + 1 < data.len() {
                data[at + 1] = 0xD9;
            }
            let expected = (at + 1 < data.len()).then_some(at);
            assert_eq!(find_end(&data), expected, "at {at}");
        }
        assert_eq!(find_end(b"\x00\xFF\x00\xFF\xD3\xFF\xFF\xFF\xC4"), Some(7));
        assert_eq!(find_end(b"\xFF\x9F\xFF\x01\xFF"), None);
    }
}
