//! Test support shared by the integration tests: the corpus and its manifest, and a JPEG's
//! structure as [`lambda::segments`] sees it. That walker shares no code with the stripper's
//! push parser (it reads scan data byte by byte where the stripper searches it in blocks),
//! so checking the stripper's output with it checks the two against each other.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};

use lambda::{Marker, Segment};

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus")
}

/// One row of `MANIFEST.tsv`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub bytes: u64,
    pub categories: Vec<String>,
    pub exif_present: bool,
    /// `None` = no Orientation tag, `Some(0)` = the invalid value 0.
    pub orientation: Option<u16>,
    pub notes: String,
}

impl Entry {
    pub fn has(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    /// `trailer=NB` from the notes, 0 when absent.
    pub fn trailer(&self) -> u64 {
        self.notes
            .split_whitespace()
            .find_map(|w| w.strip_prefix("trailer=")?.strip_suffix('B')?.parse().ok())
            .unwrap_or(0)
    }

    pub fn read(&self) -> Vec<u8> {
        std::fs::read(corpus_dir().join(&self.file)).unwrap()
    }
}

pub fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, bytes, cats, exif, orient, notes) = (
        col("file"),
        col("bytes"),
        col("categories"),
        col("exif_present"),
        col("orientation"),
        col("notes"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            Entry {
                file: f[file].to_string(),
                bytes: f[bytes].parse().unwrap(),
                categories: f[cats].split(',').map(str::to_string).collect(),
                exif_present: f[exif] == "yes",
                orientation: match f[orient] {
                    "none" => None,
                    v => Some(v.parse().unwrap()),
                },
                notes: f[notes].to_string(),
            }
        })
        .collect()
}

/// Files that are not (complete) JPEGs and must be refused.
pub const BROKEN: &[&str] = &[
    "empty.jpg",
    "normalphoto.jpg",
    "truncated_jpeg.jpg",
    "missing-sof.jpg",
];

pub fn valid_entries() -> Vec<Entry> {
    manifest()
        .into_iter()
        .filter(|e| !BROKEN.contains(&e.file.as_str()))
        .collect()
}

/// The structure of a well-formed JPEG, up to its first EOI.
#[derive(Debug, Default)]
pub struct Walk<'a> {
    /// Every segment with a length, in order (SOS included, its scan data in `scans`).
    pub segments: Vec<Segment<'a>>,
    /// Entropy-coded data of each scan, restart markers included.
    pub scans: Vec<&'a [u8]>,
    /// Bytes after EOI.
    pub trailer: usize,
}

impl Walk<'_> {
    pub fn markers(&self) -> Vec<u8> {
        self.segments.iter().map(|s| s.marker.0).collect()
    }

    pub fn app(&self, n: u8) -> impl Iterator<Item = &Segment<'_>> {
        self.segments
            .iter()
            .filter(move |s| s.marker == Marker::app(n))
    }
}

/// Walks `jpeg`; panics on anything malformed (it is only given valid pictures).
pub fn walk(jpeg: &[u8]) -> Walk<'_> {
    let mut walk = Walk::default();
    for segment in lambda::segments(jpeg) {
        let segment = segment.unwrap_or_else(|e| panic!("not a well-formed JPEG: {e}"));
        if segment.marker == Marker::EOI {
            walk.trailer = jpeg.len() - segment.end();
        } else if segment.length.is_some() {
            if segment.marker == Marker::SOS {
                walk.scans.push(segment.scan);
            }
            walk.segments.push(segment);
        }
    }
    walk
}
