//! Stripper throughput (MB/s) on the corpus and on a large picture, next to a plain memory
//! copy of the same bytes (the physical limit) and the `img-parts` crate (which only parses
//! the headers: it never scans the image data, and so keeps trailers).
//!
//! The large picture is synthesized at bench start (24 megapixels, >= 10 MB, camera-like
//! EXIF and restart markers) rather than committed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lambda::{strip, strip_stream, StripOptions, Stripper};

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus")
}

/// The valid corpus pictures (the broken ones fail fast and measure nothing).
fn corpus() -> Vec<Vec<u8>> {
    const BROKEN: &[&str] = &[
        "empty.jpg",
        "normalphoto.jpg",
        "truncated_jpeg.jpg",
        "missing-sof.jpg",
    ];
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.ends_with(".tsv") && !name.ends_with(".md") && !BROKEN.contains(&name)
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

/// A 6000x4000 camera-like JPEG: textured content (so the scan is as dense as a real
/// photo's), quality 92, restart markers every 8 MCUs, and a real camera's EXIF.
fn large_picture() -> Vec<u8> {
    const WIDTH: u16 = 6000;
    const HEIGHT: u16 = 4000;
    let mut pixels = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT) * 3);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for y in 0..u32::from(HEIGHT) {
        for x in 0..u32::from(WIDTH) {
            // xorshift noise over smooth gradients: a photo's grain over its shapes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 0x3F) as u32;
            pixels.push(((x / 24 + y / 40) % 200 + noise) as u8);
            pixels.push(((x / 16) % 180 + noise / 2) as u8);
            pixels.push(((y / 12) % 190 + noise / 3) as u8);
        }
    }
    let canon =
        std::fs::read(corpus_dir().join("Canon_EOS_1000D.jpg")).expect("Canon_EOS_1000D.jpg");
    let exif_len = usize::from(u16::from_be_bytes([canon[4], canon[5]]));
    let exif = canon[6..4 + exif_len].to_vec();

    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 92);
    encoder.set_restart_interval(8);
    encoder.add_app_segment(1, exif).expect("EXIF segment");
    encoder
        .encode(&pixels, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    jpeg
}

fn img_parts_strip(input: &img_parts::Bytes, out: &mut Vec<u8>) {
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(input.clone()).expect("img-parts parse");
    jpeg.segments_mut()
        .retain(|s| !matches!(s.marker(), 0xE1 | 0xE3..=0xED | 0xEF | 0xFE));
    jpeg.encoder().write_to(&mut *out).expect("img-parts write");
}

/// Runs the four contenders over `inputs` (one iteration = every input once).
fn compare(c: &mut Criterion, group: &str, inputs: &[Vec<u8>]) {
    let total: usize = inputs.iter().map(Vec::len).sum();
    let largest = inputs.iter().map(Vec::len).max().unwrap_or(0);
    let options = StripOptions::default();
    let mut out = Vec::with_capacity(largest + 64);
    let shared: Vec<img_parts::Bytes> = inputs
        .iter()
        .map(|i| img_parts::Bytes::copy_from_slice(i))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            for input in inputs {
                out.clear();
                out.extend_from_slice(black_box(input));
                black_box(&out);
            }
        })
    });
    g.bench_function("stripper", |b| {
        b.iter(|| {
            for input in inputs {
                out.clear();
                let mut stripper = Stripper::new(options);
                stripper.feed(black_box(input), &mut out).expect("strip");
                black_box(stripper.finish().expect("strip"));
            }
        })
    });
    g.bench_function("strip (allocating)", |b| {
        b.iter(|| {
            for input in inputs {
                black_box(strip(black_box(input)).expect("strip"));
            }
        })
    });
    g.bench_function("strip_stream (64 KiB reads)", |b| {
        b.iter(|| {
            for input in inputs {
                out.clear();
                let summary =
                    runtime.block_on(strip_stream(black_box(&input[..]), &mut out, &options));
                black_box(summary.expect("strip"));
            }
        })
    });
    g.bench_function("img-parts", |b| {
        b.iter(|| {
            for input in &shared {
                out.clear();
                img_parts_strip(black_box(input), &mut out);
                black_box(&out);
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let corpus = corpus();
    compare(c, "corpus", &corpus);
    let large = large_picture();
    let stripped = strip(&large).expect("large picture strips");
    eprintln!(
        "large picture: 6000x4000, {} bytes ({:.1} MB), {} after stripping",
        large.len(),
        large.len() as f64 / 1e6,
        stripped.len()
    );
    assert!(
        large.len() >= 10_000_000,
        "the large picture must be >= 10 MB"
    );
    compare(c, "large-24mp", &[large]);
}

criterion_group! {
    name = strip_benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .without_plots();
    targets = benches
}
criterion_main!(strip_benches);
