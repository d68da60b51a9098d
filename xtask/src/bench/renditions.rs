//! Section 7: renditions (`lambda::rendition`) against Pillow's draft-mode thumbnail (the
//! approach of seed 002) and libvips' thumbnail (the engine of `sharp`, from PyPI's
//! `pyvips-binary`), side by side on the same pictures: a 320 px and a 1280 px rendition of
//! camera pictures of the corpus and of a synthesized 24-megapixel picture.
//!
//! Each contender runs in a process of its own per (picture, size), so its peak resident
//! memory is its own; the process's memory before the first rendition is reported too, the
//! difference being what the rendition took. Quality: SSIM (luma, 7×7 windows) of each
//! rendition against a reference made from the full decode, turned upright and resized in
//! one Lanczos pass to the rendition's own size (`renditions.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use serde::Deserialize;

use super::report::{median, Table};

/// What the contenders' helper needs from PyPI, pinned.
const PYPI: &[&str] = &[
    "pillow==13.0.0",
    "numpy==2.4.6",
    "pyvips==3.2.0",
    "pyvips-binary==8.18.7",
];
const SCRIPT: &str = include_str!("renditions.py");
/// The renditions measured: a thumbnail and a web size.
const EDGES: [u32; 2] = [320, 1280];
const QUALITY: u8 = 80;
/// Camera pictures of the corpus: a 10 MP Canon stored on its side, two 8-12 MP phones.
const CORPUS: &[&str] = &[
    "Canon_EOS_1000D.jpg",
    "Samsung_SM-G935L_Galaxy_S7_Edge.jpg",
    "Apple_iPhone_6.jpg",
];
/// The synthesized large picture: 24 megapixels.
const LARGE: (u32, u32) = (6000, 4000);

/// One contender's answer for one (picture, size).
#[derive(Debug, Deserialize)]
struct Timing {
    median_ms: f64,
    peak_rss_kb: u64,
    idle_rss_kb: u64,
}

fn venv() -> PathBuf {
    crate::workspace::target_dir().join("bench-renditions-venv")
}

/// The virtualenv with Pillow, NumPy and pyvips, made on first use.
fn ensure_venv() -> anyhow::Result<PathBuf> {
    let venv = venv();
    let stamp = venv.join(format!("stripstack-{}", PYPI.join("-")));
    let python = venv.join("bin").join("python");
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    eprintln!(
        "bench: installing {} into {}",
        PYPI.join(", "),
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv", "--clear"]).arg(&venv);
    crate::emulator::run_setup(&mut create, "create a Python virtualenv")?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PYPI);
    crate::emulator::run_setup(&mut install, "install Pillow, NumPy and pyvips with pip")?;
    std::fs::File::create(&stamp).with_context(|| format!("cannot create {}", stamp.display()))?;
    Ok(python)
}

fn json_of<T: for<'de> Deserialize<'de>>(command: &mut Command, what: &str) -> anyhow::Result<T> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{what} printed no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `cargo xtask bench-render`: this process makes `runs` renditions of `input` and prints its
/// median time and peak memory (the Rust contender, in a process of its own).
pub fn worker(input: &Path, edge: u32, quality: u8, runs: usize, out: &Path) -> anyhow::Result<()> {
    use lambda::rendition::{render, Limits, RenditionSpec};
    let source =
        std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let idle = peak_rss_kb();
    let spec = RenditionSpec {
        max_edge: edge,
        quality,
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = std::time::Instant::now();
        last = Some(render(&source, &spec, &Limits::default())?);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if let Some(rendition) = last {
        std::fs::write(out, rendition.jpeg)?;
    }
    println!(
        "{}",
        serde_json::json!({
            "median_ms": median(&times).unwrap_or_default(),
            "peak_rss_kb": peak_rss_kb(),
            "idle_rss_kb": idle,
        })
    );
    Ok(())
}

/// This process's peak resident memory, in KiB (Linux and macOS report it in `ru_maxrss`,
/// in KiB and bytes respectively).
fn peak_rss_kb() -> u64 {
    // SAFETY: getrusage writes into the struct it is given; a zeroed rusage is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let max = u64::try_from(usage.ru_maxrss).unwrap_or_default();
    if cfg!(target_os = "macos") {
        max / 1024
    } else {
        max
    }
}

pub fn measure(work: &Path, runs: usize) -> anyhow::Result<String> {
    let python = ensure_venv()?;
    let dir = work.join("renditions");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("renditions.py");
    std::fs::write(&script, SCRIPT)?;
    let corpus = crate::workspace::root().join("tests/fixtures/corpus");
    let mut pictures: Vec<(String, PathBuf)> = CORPUS
        .iter()
        .map(|name| ((*name).to_owned(), corpus.join(name)))
        .collect();
    let large = dir.join("synthesized-24mp.jpg");
    json_of::<serde_json::Value>(
        Command::new(&python)
            .arg(&script)
            .args(["synth"])
            .arg(&large)
            .args([LARGE.0.to_string(), LARGE.1.to_string()]),
        "synthesizing the 24 MP picture",
    )?;
    pictures.push(("synthesized 6000×4000".to_owned(), large));
    // A copy of this binary runs the Rust contender: a rebuild of the xtask meanwhile (which
    // replaces the file) cannot take it away mid-run. On Linux, /proc/self/exe is this
    // process's binary even if its file was replaced.
    let running = if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().context("cannot find the xtask binary")?
    };
    let me = dir.join("xtask-bench-render");
    std::fs::copy(&running, &me)
        .with_context(|| format!("cannot copy {} to {}", running.display(), me.display()))?;

    let mut table = Table::new(&[
        "picture",
        "size",
        "stripstack",
        "Pillow draft",
        "libvips",
        "Pillow ÷ stripstack",
        "memory (MB): stripstack / Pillow / libvips",
        "SSIM: stripstack / Pillow / libvips",
    ]);
    let mut faster = Vec::new();
    for (label, path) in &pictures {
        for edge in EDGES {
            let out = |tool: &str| dir.join(format!("{tool}-{edge}-{}.jpg", sanitize(label)));
            let ours: Timing = json_of(
                Command::new(&me)
                    .arg("bench-render")
                    .arg(path)
                    .args([edge.to_string(), QUALITY.to_string(), runs.to_string()])
                    .arg(out("stripstack")),
                "the stripstack rendition",
            )?;
            let mut theirs = Vec::new();
            for tool in ["pillow", "vips"] {
                let timing: Timing = json_of(
                    Command::new(&python)
                        .arg(&script)
                        .arg(tool)
                        .arg(path)
                        .args([edge.to_string(), QUALITY.to_string(), runs.to_string()])
                        .arg(out(tool)),
                    tool,
                )?;
                theirs.push(timing);
            }
            #[derive(Deserialize)]
            struct Score {
                ssim: f64,
            }
            let scores: Vec<Score> = json_of(
                Command::new(&python)
                    .arg(&script)
                    .arg("ssim")
                    .arg(path)
                    .arg(out("stripstack"))
                    .arg(out("pillow"))
                    .arg(out("vips")),
                "SSIM",
            )?;
            let ms = |t: &Timing| format!("{:.1} ms", t.median_ms);
            let mb = |t: &Timing| {
                format!(
                    "{:.0}",
                    t.peak_rss_kb.saturating_sub(t.idle_rss_kb) as f64 / 1024.0
                )
            };
            let ratio = theirs[0].median_ms / ours.median_ms.max(f64::EPSILON);
            faster.push(ratio);
            table.row(vec![
                label.clone(),
                format!("{edge} px"),
                ms(&ours),
                ms(&theirs[0]),
                ms(&theirs[1]),
                format!("{ratio:.2}×"),
                format!("{} / {} / {}", mb(&ours), mb(&theirs[0]), mb(&theirs[1])),
                scores
                    .iter()
                    .map(|s| format!("{:.4}", s.ssim))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ]);
        }
    }
    Ok(format!(
        "Median of {runs} renditions per process, quality {QUALITY}; memory is each process's \
         peak resident memory above what it held before its first rendition. stripstack: \
         `lambda::rendition` (jpeg-decoder with DCT scaling, Lanczos3 with fast_image_resize, \
         jpeg-encoder), in `cargo xtask bench-render`; Pillow {pillow}: `draft` then \
         `thumbnail(LANCZOS)` and `exif_transpose`; libvips {vips} (pyvips): \
         `Image.thumbnail`. SSIM against the full decode, upright, resized in one Lanczos \
         pass (Pillow) to the rendition's size.\n\n{}\n\nstripstack is {:.2}× as fast as \
         Pillow's draft-mode thumbnail (median over the rows).",
        table.to_markdown(),
        median(&faster).unwrap_or_default(),
        pillow = PYPI[0].trim_start_matches("pillow=="),
        vips = PYPI[3].trim_start_matches("pyvips-binary=="),
    ))
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
