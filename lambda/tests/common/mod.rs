//! Test support shared by the integration tests: the corpus and its manifest, and an
//! independent re-scan of a JPEG's structure (written separately from the library's parser,
//! as a plain byte loop, so the two check each other).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};

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

/// A marker segment as found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub marker: u8,
    pub offset: usize,
    pub payload: Vec<u8>,
}

/// The structure of a well-formed JPEG, up to its first EOI.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every segment with a length, in order (SOS included, scan data excluded).
    pub segments: Vec<Segment>,
    /// Entropy-coded data of each scan, restart markers included.
    pub scans: Vec<Vec<u8>>,
    /// Bytes after EOI.
    pub trailer: usize,
}

impl Walk {
    pub fn markers(&self) -> Vec<u8> {
        self.segments.iter().map(|s| s.marker).collect()
    }

    pub fn app(&self, n: u8) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(move |s| s.marker == 0xE0 + n)
    }
}

/// Re-scans `jpeg`; panics on anything malformed (it is only given valid pictures).
pub fn walk(jpeg: &[u8]) -> Walk {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "no SOI");
    let mut walk = Walk::default();
    let mut i = 2;
    loop {
        assert_eq!(jpeg[i], 0xFF, "marker expected at {i}");
        while jpeg[i + 1] == 0xFF {
            i += 1;
        }
        let marker = jpeg[i + 1];
        let offset = i;
        i += 2;
        if marker == 0xD9 {
            walk.trailer = jpeg.len() - i;
            return walk;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[i], jpeg[i + 1]]));
        walk.segments.push(Segment {
            marker,
            offset,
            payload: jpeg[i + 2..i + length].to_vec(),
        });
        i += length;
        if marker == 0xDA {
            // Scan data runs to the first FF xx with xx >= C0 that is not RSTn or FF.
            let start = i;
            loop {
                if jpeg[i] == 0xFF {
                    let next = jpeg[i + 1];
                    if next >= 0xC0 && next != 0xFF && !(0xD0..=0xD7).contains(&next) {
                        break;
                    }
                }
                i += 1;
            }
            walk.scans.push(jpeg[start..i].to_vec());
        }
    }
}
