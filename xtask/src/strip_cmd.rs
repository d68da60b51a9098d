//! `cargo xtask strip IN... [-o DIR]`: run the stripper on local files and print what it
//! removed. A thin shell around the `lambda` crate's library.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use lambda::{StripError, StripOptions, Summary};

#[derive(Debug, clap::Args)]
pub struct StripArgs {
    /// JPEG files to strip.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write stripped copies here (same file names). Without it, only the summary is printed.
    #[arg(short, long)]
    pub out_dir: Option<PathBuf>,
    /// Do not write back the EXIF Orientation: rotated pictures will display unrotated.
    #[arg(long)]
    pub no_orientation: bool,
    /// Drop ICC colour profiles too: colours of wide-gamut pictures will shift.
    #[arg(long)]
    pub drop_icc: bool,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why one file could not be stripped.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Strip(#[from] StripError),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl FileError {
    fn kind(&self) -> &'static str {
        match self {
            FileError::Read(_) => "read",
            FileError::Strip(e) => e.kind(),
            FileError::Write { .. } => "write",
        }
    }
}

pub fn run(args: StripArgs) -> anyhow::Result<ExitCode> {
    let options = StripOptions {
        keep_orientation: !args.no_orientation,
        keep_icc: !args.drop_icc,
    };
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut failed = 0;
    for input in &args.inputs {
        let result = strip_file(input, args.out_dir.as_deref(), &options);
        if result.is_err() {
            failed += 1;
        }
        let report = match (&result, args.json) {
            (_, true) => json_report(input, &result).to_string(),
            (Ok((summary, written)), false) => {
                text_report(input, summary, written.as_deref(), &options)
            }
            (Err(error), false) => {
                format!("FAILED {}: {error} [{}]\n", input.display(), error.kind())
            }
        };
        print!("{}", report.trim_end());
        println!();
    }
    if !args.json {
        println!("{} stripped, {failed} failed", args.inputs.len() - failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Strips one file; writes the result only when stripping succeeded (never a partial file).
fn strip_file(
    input: &Path,
    out_dir: Option<&Path>,
    options: &StripOptions,
) -> Result<(Summary, Option<PathBuf>), FileError> {
    let bytes = std::fs::read(input).map_err(FileError::Read)?;
    let (stripped, summary) = lambda::strip_with(&bytes, options)?;
    let Some(dir) = out_dir else {
        return Ok((summary, None));
    };
    let name = input.file_name().unwrap_or(input.as_os_str());
    let path = dir.join(name);
    std::fs::write(&path, stripped).map_err(|error| FileError::Write {
        path: path.clone(),
        error,
    })?;
    Ok((summary, Some(path)))
}

fn text_report(
    input: &Path,
    s: &Summary,
    written: Option<&Path>,
    options: &StripOptions,
) -> String {
    let mut out = String::new();
    let saved = s.bytes_in.saturating_sub(s.bytes_out);
    let _ = writeln!(
        out,
        "ok     {}: {} -> {} bytes (-{saved})",
        input.display(),
        s.bytes_in,
        s.bytes_out
    );
    if s.removed.is_empty() {
        let _ = writeln!(out, "       removed: no metadata segments");
    } else {
        let kinds: Vec<String> = s
            .removed
            .iter()
            .map(|r| format!("{} x{} ({} B)", r.kind, r.count, r.bytes))
            .collect();
        let _ = writeln!(out, "       removed: {}", kinds.join(", "));
    }
    let orientation = match s.orientation {
        Some(value) => format!(
            "orientation {value} kept (minimal EXIF, {} B)",
            s.bytes_added
        ),
        None if !options.keep_orientation => "orientation dropped (--no-orientation)".to_string(),
        None => "no orientation to keep".to_string(),
    };
    let _ = writeln!(
        out,
        "       trailer {} B, padding {} B, {orientation}, {} scan(s)",
        s.trailer_bytes, s.padding_bytes, s.scans
    );
    if let Some(path) = written {
        let _ = writeln!(out, "       written to {}", path.display());
    }
    out
}

fn json_report(
    input: &Path,
    result: &Result<(Summary, Option<PathBuf>), FileError>,
) -> serde_json::Value {
    let file = input.display().to_string();
    match result {
        Ok((s, written)) => serde_json::json!({
            "file": file,
            "ok": true,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "bytes_removed": s.bytes_removed,
            "bytes_added": s.bytes_added,
            "trailer_bytes": s.trailer_bytes,
            "padding_bytes": s.padding_bytes,
            "removed": s.removed.iter().map(|r| serde_json::json!({
                "kind": r.kind.to_string(),
                "count": r.count,
                "bytes": r.bytes,
            })).collect::<Vec<_>>(),
            "orientation": s.orientation,
            "scans": s.scans,
            "written": written.as_ref().map(|p| p.display().to_string()),
        }),
        Err(error) => serde_json::json!({
            "file": file,
            "ok": false,
            "error": error.to_string(),
            "kind": error.kind(),
        }),
    }
}
