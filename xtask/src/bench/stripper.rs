//! Section 1: the stripper's throughput on the corpus and on one large picture, next to a
//! memory copy of the same bytes (the physical limit: the stripper copies the compressed
//! picture through) and next to the `img-parts` crate.
//!
//! The contenders take turns within each run, so the load of a shared machine weighs on
//! all of them alike; the headline ratio is the median of the per-run ratios. `cargo
//! xtask` is a dev build, but the stripper's crate and `img-parts` are compiled with
//! `opt-level = 3` even there (workspace `Cargo.toml`), and the copy is libc's `memcpy`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lambda::{StripOptions, Stripper};

use super::report::{fmt_mb, fmt_rate, median, Table};

/// Each contender repeats its pass over the input for at least this long per run, so the
/// timer's resolution and one-off stalls do not matter.
const MIN_RUN_TIME: Duration = Duration::from_millis(200);
/// Bounds the passes of a run whatever the clock says.
const MAX_PASSES: usize = 1_000_000;
/// The large picture: at least 20 MB, as the issue asks.
pub const LARGE_PICTURE_BYTES: usize = 25_000_000;
/// MANIFEST.tsv categories of files that are no complete JPEG (the stripper refuses them,
/// so they would measure how fast it says no).
const NOT_A_PICTURE: &[&str] = &["zero-byte", "truncated", "png-renamed"];

/// One set of inputs measured together.
struct Dataset {
    label: String,
    inputs: Vec<Vec<u8>>,
}

/// The medians of one dataset.
struct Throughput {
    label: String,
    bytes: u64,
    copy: Option<f64>,
    stripper: Option<f64>,
    ratio: Option<f64>,
    img_parts: Option<f64>,
    img_parts_handles: (usize, usize),
}

/// The corpus files MANIFEST.tsv describes as complete JPEGs, in manifest order.
pub fn valid_corpus_files(manifest: &str) -> Vec<String> {
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let (Some(file), Some(categories)) = (
        header.iter().position(|h| *h == "file"),
        header.iter().position(|h| *h == "categories"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let name = fields.get(file)?;
            let categories = fields.get(categories)?;
            let broken = categories
                .split(',')
                .any(|c| NOT_A_PICTURE.contains(&c.trim()));
            (!broken && !name.is_empty()).then(|| (*name).to_owned())
        })
        .collect()
}

/// Where the entropy-coded data of a single-scan JPEG starts: just after its SOS segment.
fn scan_start(jpeg: &[u8]) -> Option<usize> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    // Ends: every segment moves `at` forward, and `get` fails past the end.
    loop {
        let header = jpeg.get(at..at + 4)?;
        if header[0] != 0xFF {
            return None;
        }
        at += 2 + usize::from(u16::from_be_bytes([header[2], header[3]]));
        if header[1] == 0xDA {
            return (at <= jpeg.len()).then_some(at);
        }
    }
}

/// A picture of about `target` bytes made from a real camera JPEG by repeating its
/// entropy-coded data: the same byte statistics (stuffed `0xFF`s, restart markers) as a
/// real photo of that size, which is what the stripper's speed depends on. It is not
/// decodable past the first copy of the scan; the stripper never decodes.
pub fn enlarge(picture: &[u8], target: usize) -> anyhow::Result<Vec<u8>> {
    let start = scan_start(picture).context("the picture has no SOS segment")?;
    let end = picture
        .len()
        .checked_sub(2)
        .filter(|&end| end > start && picture[end..] == [0xFF, 0xD9])
        .context("the picture does not end with its EOI marker")?;
    let scan = &picture[start..end];
    let mut out = Vec::with_capacity(target.max(picture.len()));
    out.extend_from_slice(&picture[..start]);
    while out.len() + scan.len() + 2 <= target {
        out.extend_from_slice(scan);
    }
    // Fill up with a part of the scan, not cut after an 0xFF (that would make a marker of
    // the EOI's first byte).
    let mut rest = target.saturating_sub(out.len() + 2).min(scan.len());
    while rest > 0 && scan[rest - 1] == 0xFF {
        rest -= 1;
    }
    out.extend_from_slice(&scan[..rest]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// The large test picture, from the corpus's Canon DSLR original.
pub fn large_picture(corpus: &Path, target: usize) -> anyhow::Result<Vec<u8>> {
    let path = corpus.join("Canon_EOS_1000D.jpg");
    let canon = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    enlarge(&canon, target)
}

/// Runs `pass` over every input, again and again for at least [`MIN_RUN_TIME`]; MB/s.
fn throughput<T: AsRef<[u8]>>(
    inputs: &[T],
    mut pass: impl FnMut(&T) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let bytes: usize = inputs.iter().map(|i| i.as_ref().len()).sum();
    let started = Instant::now();
    let mut passes = 0;
    while passes < MAX_PASSES && (passes == 0 || started.elapsed() < MIN_RUN_TIME) {
        for input in inputs {
            pass(black_box(input))?;
        }
        passes += 1;
    }
    Ok((bytes * passes) as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// What `img-parts` can do to strip a picture: drop the metadata segments it sees before
/// the scan (it keeps everything after the first SOS as one blob, trailers included).
fn img_parts_strip(input: &img_parts::Bytes, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(input.clone())?;
    jpeg.segments_mut()
        .retain(|s| !matches!(s.marker(), 0xE1 | 0xE3..=0xED | 0xEF | 0xFE));
    jpeg.encoder().write_to(out)?;
    Ok(())
}

fn measure_dataset(dataset: &Dataset, runs: usize) -> anyhow::Result<Throughput> {
    let options = StripOptions::default();
    let inputs = &dataset.inputs;
    let largest = inputs.iter().map(Vec::len).max().unwrap_or(0);
    // Room for the largest output, so no pass pays for growing the buffer.
    let mut out = Vec::with_capacity(largest + 64 * 1024);
    for input in inputs {
        lambda::strip(input).context("a picture of the benchmark does not strip")?;
    }
    // The same bytes, as the shared buffers img-parts parses from; only those it handles.
    let handled: Vec<img_parts::Bytes> = inputs
        .iter()
        .map(|i| img_parts::Bytes::copy_from_slice(i))
        .filter(|bytes| img_parts_strip(bytes, &mut Vec::new()).is_ok())
        .collect();

    let (mut copy, mut stripper, mut ratio, mut img_parts) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let c = throughput(inputs, |input| {
            out.clear();
            out.extend_from_slice(input);
            black_box(&out);
            Ok(())
        })?;
        let s = throughput(inputs, |input| {
            out.clear();
            let mut parser = Stripper::new(options);
            parser.feed(input, &mut out)?;
            black_box(parser.finish()?);
            Ok(())
        })?;
        if !handled.is_empty() {
            img_parts.push(throughput(&handled, |input| {
                out.clear();
                img_parts_strip(input, &mut out)
            })?);
        }
        copy.push(c);
        stripper.push(s);
        ratio.push(s / c);
    }
    Ok(Throughput {
        label: dataset.label.clone(),
        bytes: inputs.iter().map(|i| i.len() as u64).sum(),
        copy: median(&copy),
        stripper: median(&stripper),
        ratio: median(&ratio),
        img_parts: median(&img_parts),
        img_parts_handles: (handled.len(), inputs.len()),
    })
}

/// Measures and returns the section's markdown.
pub fn measure(runs: usize) -> anyhow::Result<String> {
    let corpus_dir = crate::workspace::root().join("tests/fixtures/corpus");
    let manifest_path = corpus_dir.join("MANIFEST.tsv");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let names = valid_corpus_files(&manifest);
    anyhow::ensure!(!names.is_empty(), "MANIFEST.tsv lists no valid picture");
    let inputs = names
        .iter()
        .map(|name| {
            let path = corpus_dir.join(name);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let corpus = Dataset {
        label: format!("corpus ({} valid files)", inputs.len()),
        inputs,
    };
    let large = Dataset {
        label: "one large picture".to_owned(),
        inputs: vec![large_picture(&corpus_dir, LARGE_PICTURE_BYTES)?],
    };
    let results = [
        measure_dataset(&corpus, runs)?,
        measure_dataset(&large, runs)?,
    ];
    Ok(render(&results))
}

fn render(results: &[Throughput]) -> String {
    let mut table = Table::new(&[
        "input",
        "size",
        "memory copy",
        "stripper",
        "stripper ÷ copy",
        "img-parts",
    ]);
    for r in results {
        let (handled, total) = r.img_parts_handles;
        let img_parts = match r.img_parts {
            Some(rate) if handled == total => fmt_rate(rate),
            Some(rate) => format!("{} ({handled} of {total} files)", fmt_rate(rate)),
            None => "refuses it".to_owned(),
        };
        table.row(vec![
            r.label.clone(),
            fmt_mb(r.bytes),
            r.copy.map_or("—".into(), fmt_rate),
            r.stripper.map_or("—".into(), fmt_rate),
            r.ratio.map_or("—".into(), |x| format!("{x:.2}")),
            img_parts,
        ]);
    }
    format!(
        "{}\n\
         MB = 10^6 bytes. Each figure is the median of the runs; in each run every contender \
         passes over the same bytes, held in memory, for at least {} ms, into a reused \
         output buffer.\n\n\
         - **memory copy**: `Vec::extend_from_slice` of the input, the speed limit of any \
         stripper that writes its output.\n\
         - **stripper**: `lambda::Stripper` (the push parser the Lambda streams through), \
         default options; it reads every byte of the compressed data to find where the \
         scan ends. The ratio is the median of the per-run ratios.\n\
         - **img-parts** 0.4: parse, drop the metadata segments, write. It stops parsing at \
         the first scan and copies the rest of the file as one blob, so it never looks at \
         the compressed data and keeps whatever follows it (trailers, motion-photo videos): \
         faster than a correct stripper can be.\n\
         - The corpus is `tests/fixtures/corpus`, minus the files MANIFEST.tsv marks \
         zero-byte, truncated or a renamed PNG. The large picture is the corpus's Canon \
         EOS 1000D original with its compressed data repeated to {} (real camera \
         data, so the same density of `0xFF` bytes as a photo that size).\n\n\
         Micro-benchmarks of the same contenders (criterion, release build): \
         `cargo bench -p lambda`.",
        table.to_markdown(),
        MIN_RUN_TIME.as_millis(),
        fmt_mb(LARGE_PICTURE_BYTES as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_says_which_files_are_pictures() {
        let manifest = "file\tsource_repo\tlicense\tbytes\tcategories\n\
                        a.jpg\tx\ty\t1\texif,gps\n\
                        empty.jpg\tx\ty\t0\tzero-byte\n\
                        cut.jpg\tx\ty\t9\tjfif,truncated\n\
                        png.jpg\tx\ty\t9\tpng-renamed\n\
                        bad-scan.jpg\tx\ty\t9\texif,corrupt\n";
        assert_eq!(valid_corpus_files(manifest), ["a.jpg", "bad-scan.jpg"]);
        assert!(valid_corpus_files("no header").is_empty());
    }

    #[test]
    fn the_real_manifest_keeps_the_camera_pictures() {
        let manifest = std::fs::read_to_string(
            crate::workspace::root().join("tests/fixtures/corpus/MANIFEST.tsv"),
        )
        .unwrap();
        let files = valid_corpus_files(&manifest);
        assert!(files.iter().any(|f| f == "Canon_EOS_1000D.jpg"));
        assert!(!files
            .iter()
            .any(|f| f == "empty.jpg" || f == "normalphoto.jpg"));
    }

    #[test]
    fn enlarged_pictures_have_the_size_asked_for_and_strip() {
        let corpus = crate::workspace::root().join("tests/fixtures/corpus");
        let canon = std::fs::read(corpus.join("Canon_EOS_1000D.jpg")).unwrap();
        for target in [5_000_000, 7_777_777] {
            let large = enlarge(&canon, target).unwrap();
            assert!(
                large.len() <= target && large.len() + 4 >= target,
                "{}",
                large.len()
            );
            assert!(large.ends_with(&[0xFF, 0xD9]));
            let stripped = lambda::strip(&large).unwrap();
            // The EXIF (with maker notes and thumbnail) is gone; the scan data all stays.
            let scan = large.len() - scan_start(&large).unwrap();
            assert!(stripped.len() < large.len() && stripped.len() > scan);
        }
        assert!(enlarge(b"not a jpeg", 1000).is_err());
    }
}
