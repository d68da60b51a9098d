//! Fuzz target: any input gives a rendition or a typed error, never a panic; a rendition
//! is of the promised size and decodes.

#![no_main]

use lambda::rendition::{render, Limits, RenditionSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the longest edge, so the fuzzer explores every DCT scale.
    let (max_edge, input) = match data.split_first() {
        Some((&edge, rest)) => (u32::from(edge) + 1, rest),
        None => (1, data),
    };
    let spec = RenditionSpec {
        max_edge,
        quality: 75,
    };
    // 256 MB: big enough to decode what the fuzzer makes, small enough not to run it out
    // of memory on a forged 65535x65535 header.
    if let Ok(r) = render(input, &spec, &Limits::for_memory_mb(256)) {
        assert!(r.width.max(r.height) <= max_edge);
        assert!(r.width >= 1 && r.height >= 1);
        assert!(lambda::segments(&r.jpeg).all(|s| s.is_ok()));
    }
});
