//! Rendition time (issue 17) for a 320 px thumbnail and a 1280 px preview, from a real
//! 10-megapixel camera picture of the corpus (Canon EOS 1000D, 3888x2592, orientation 6) and
//! from a synthesized 24-megapixel one (6000x4000, made at bench start as `strip.rs` does),
//! each alone and both from one decode (`render_all`).
//!
//! Measured 2026-12-02 on the shared 2-core AMD EPYC VM, load average 2.5 to 3 (other
//! builds), so noisy: criterion's median of three runs, each run's in brackets.
//!
//! | source | 320 px | 1280 px | both (`render_all`) |
//! |---|---:|---:|---:|
//! | Canon 10 MP (at 1/8; 1/2) | 62 ms (71, 53, 62) | 120 ms (155, 110, 120) | 124 ms (149, 123, 124) |
//! | synthesized 24 MP, 16 MB (1/8; 1/4) | 328 ms (359, 323, 328) | 343 ms (313, 374, 343) | 341 ms (308, 379, 341) |

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use lambda::rendition::{render, render_all, Limits, RenditionSpec};

const THUMB: RenditionSpec = RenditionSpec {
    max_edge: 320,
    quality: 80,
};
const PREVIEW: RenditionSpec = RenditionSpec {
    max_edge: 1280,
    quality: 85,
};

fn corpus_file(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/corpus")
        .join(name);
    std::fs::read(path).expect("corpus file")
}

/// A 6000x4000 camera-like JPEG, quality 92: xorshift grain over smooth gradients, so the
/// scan is as dense as a real photo's (the same picture as `strip.rs`, without EXIF).
fn large_picture() -> Vec<u8> {
    const WIDTH: u16 = 6000;
    const HEIGHT: u16 = 4000;
    let mut pixels = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT) * 3);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for y in 0..u32::from(HEIGHT) {
        for x in 0..u32::from(WIDTH) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 0x3F) as u32;
            pixels.push(((x / 24 + y / 40) % 200 + noise) as u8);
            pixels.push(((x / 16) % 180 + noise / 2) as u8);
            pixels.push(((y / 12) % 190 + noise / 3) as u8);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 92)
        .encode(&pixels, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    jpeg
}

fn bench_picture(c: &mut Criterion, group: &str, source: &[u8]) {
    let limits = Limits::default();
    for spec in [THUMB, PREVIEW] {
        let r = render(source, &spec, &limits).expect("renders");
        eprintln!(
            "{group}: {}x{} -> {}x{} at DCT 1/{}, {} bytes",
            r.source_width,
            r.source_height,
            r.width,
            r.height,
            r.dct_scale,
            r.jpeg.len()
        );
    }
    let mut g = c.benchmark_group(group);
    g.bench_function("320 px", |b| {
        b.iter(|| black_box(render(black_box(source), &THUMB, &limits).expect("renders")))
    });
    g.bench_function("1280 px", |b| {
        b.iter(|| black_box(render(black_box(source), &PREVIEW, &limits).expect("renders")))
    });
    g.bench_function("320 + 1280 px (render_all)", |b| {
        b.iter(|| black_box(render_all(black_box(source), &[THUMB, PREVIEW], &limits)))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_picture(c, "canon-10mp", &corpus_file("Canon_EOS_1000D.jpg"));
    let large = large_picture();
    eprintln!("large picture: 6000x4000, {} bytes", large.len());
    bench_picture(c, "large-24mp", &large);
}

criterion_group! {
    name = rendition_benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(rendition_benches);
