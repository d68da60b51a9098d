//! Property tests: random chunk boundaries change nothing, stripping is idempotent, and
//! mutated corpus files (bit flips, truncations, insertions, deletions) never panic and,
//! when they strip, strip to clean output; the walker (`lambda::segments`) agrees with the
//! stripper on their structure.

mod common;

use std::sync::OnceLock;

use lambda::{
    segments, strip, strip_with, Marker, Segment, StripError, StripOptions, Stripper, Summary,
};
use proptest::prelude::*;

/// The corpus, loaded once per test binary.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        common::manifest()
            .into_iter()
            .map(|e| (e.file.clone(), e.read()))
            .collect()
    })
}

/// Files small enough to mutate many times per second (all but the multi-MB originals).
fn small_corpus() -> Vec<&'static (String, Vec<u8>)> {
    corpus()
        .iter()
        .filter(|(_, bytes)| bytes.len() <= 600_000)
        .collect()
}

type Outcome = Result<(Vec<u8>, Summary), String>;

fn slice_outcome(input: &[u8]) -> Outcome {
    strip_with(input, &StripOptions::default()).map_err(|e| e.to_string())
}

fn chunked_outcome(input: &[u8], sizes: &[usize]) -> Outcome {
    let mut stripper = Stripper::new(StripOptions::default());
    let mut out = Vec::new();
    let mut rest = input;
    let mut next = 0;
    while !rest.is_empty() {
        let size = sizes[next % sizes.len()].min(rest.len());
        next += 1;
        let (chunk, later) = rest.split_at(size);
        stripper
            .feed(chunk, &mut out)
            .map_err(|e: StripError| e.to_string())?;
        rest = later;
    }
    stripper
        .finish()
        .map(|s| (out, s))
        .map_err(|e| e.to_string())
}

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Positions are fractions of the file length (in 1/65536), so they land everywhere.
    let at = 0..65536usize;
    prop_oneof![
        (at.clone(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (
            at.clone(),
            prop_oneof![
                Just(0xFFu8),
                Just(0x00),
                Just(0xD9),
                Just(0xDA),
                any::<u8>()
            ]
        )
            .prop_map(|(at, value)| Mutation::SetByte { at, value }),
        at.clone().prop_map(|at| Mutation::Truncate { at }),
        (
            at.clone(),
            prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 1..8)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at, 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for m in mutations {
        let pos = |at: usize, len: usize| at * len / 65536;
        let len = bytes.len();
        match m {
            Mutation::FlipBit { at, bit } if len > 0 => bytes[pos(*at, len)] ^= 1 << bit,
            Mutation::SetByte { at, value } if len > 0 => bytes[pos(*at, len)] = *value,
            Mutation::Truncate { at } => bytes.truncate(pos(*at, len)),
            Mutation::Insert { at, bytes: new } => {
                let p = pos(*at, len + 1);
                bytes.splice(p..p, new.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                let p = pos(*at, len);
                bytes.drain(p..(p + n).min(len));
            }
            _ => {}
        }
    }
    bytes
}

/// A successful strip's output holds no metadata segment and nothing after EOI.
fn assert_clean(output: &[u8]) {
    let walk = common::walk(output);
    assert_eq!(walk.trailer, 0);
    for s in &walk.segments {
        match s.marker.0 {
            0xE0 => assert!(s.payload.starts_with(b"JFIF\0")),
            0xE1 => assert_eq!(s.payload.len(), 32, "only the minimal EXIF"),
            0xE2 => assert!(s.payload.starts_with(b"ICC_PROFILE\0")),
            0xEE => assert!(s.payload.starts_with(b"Adobe")),
            0xE3..=0xED | 0xEF | 0xFE => panic!("{} left", s.marker),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn chunk_boundaries_do_not_matter(
        file in 0..corpus().len(),
        sizes in prop::collection::vec(prop_oneof![1..16usize, 1..70_000usize], 1..16),
    ) {
        let input = &corpus()[file].1;
        prop_assert!(same(&chunked_outcome(input, &sizes), &slice_outcome(input)), "{}", corpus()[file].0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic_and_strip_cleanly(
        file in 0..small_corpus().len(),
        mutations in prop::collection::vec(mutation(), 1..6),
        sizes in prop::collection::vec(1..5000usize, 1..8),
    ) {
        let input = apply(&small_corpus()[file].1, &mutations);
        let whole = slice_outcome(&input);
        prop_assert!(same(&chunked_outcome(&input, &sizes), &whole));
        if let Ok((output, summary)) = whole {
            assert_clean(&output);
            prop_assert_eq!(summary.bytes_in, input.len() as u64);
            prop_assert_eq!(summary.bytes_out, output.len() as u64);
            prop_assert_eq!(
                summary.bytes_in - summary.bytes_removed + summary.bytes_added,
                summary.bytes_out
            );
            let again = strip(&output).expect("stripped output strips again");
            prop_assert!(again == output, "not idempotent");
        }
    }
}

/// Errors about the framing itself (lengths, truncation, bytes where a marker is due), which
/// the walker detects as well as the stripper; the others are the stripper's judgement.
fn is_framing(error: &StripError) -> bool {
    matches!(
        error,
        StripError::NotJpeg { .. }
            | StripError::Truncated { .. }
            | StripError::SegmentOverrun { .. }
            | StripError::BadSegmentLength { .. }
            | StripError::MarkerExpected { .. }
            | StripError::MissingEoi { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// `lambda::segments` and the stripper read the same structure: what strips walks, with
    /// as many scans and as long a trailer as the stripper counted; where the stripper
    /// refuses the framing, the walker refuses it with the same error at the same offset.
    #[test]
    fn the_walker_agrees_with_the_stripper(
        file in 0..small_corpus().len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let input = apply(&small_corpus()[file].1, &mutations);
        let walked: Result<Vec<Segment<'_>>, StripError> = segments(&input).collect();
        match strip_with(&input, &StripOptions::default()) {
            Ok((_, summary)) => {
                let found = walked.map_err(|e| TestCaseError::fail(format!("walker: {e}")))?;
                let scans = found.iter().filter(|s| s.marker == Marker::SOS).count();
                prop_assert_eq!(scans as u32, summary.scans);
                let eoi = found.last().filter(|s| s.marker == Marker::EOI);
                let trailer = eoi.map(|eoi| (input.len() - eoi.end()) as u64);
                prop_assert_eq!(trailer, Some(summary.trailer_bytes));
            }
            Err(e) if is_framing(&e) => {
                prop_assert_eq!(walked.err().map(|w| w.to_string()), Some(e.to_string()));
            }
            Err(_) => {}
        }
    }
}

#[test]
fn corpus_outputs_are_idempotent_under_chunking() {
    for (name, input) in corpus() {
        if let Ok(once) = strip(input) {
            assert!(
                same(&chunked_outcome(&once, &[3, 1000]), &slice_outcome(&once)),
                "{name}"
            );
            assert!(strip(&once).unwrap() == once, "{name}");
        }
    }
}
