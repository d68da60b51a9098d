//! The async API and the push parser give exactly what the slice API gives, for every corpus
//! file (broken ones included), whatever the read sizes; and memory does not follow the
//! picture's size.

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda::{strip_stream, strip_with, StripError, StripOptions, Stripper, Summary};
use tokio::io::{AsyncRead, ReadBuf};

/// A reader that hands out its data in reads of a repeating pattern of sizes.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let size = self.sizes[self.next % self.sizes.len()]
            .min(buf.remaining())
            .min(self.data.len());
        self.next += 1;
        let (now, later) = self.data.split_at(size);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

fn outcome(result: Result<(Vec<u8>, Summary), StripError>) -> Result<(Vec<u8>, Summary), String> {
    result.map_err(|e| e.to_string())
}

#[tokio::test]
async fn stream_api_matches_slice_api_on_the_corpus() {
    let options = StripOptions::default();
    for entry in common::manifest() {
        let input = entry.read();
        let expected = outcome(strip_with(&input, &options));
        for sizes in [&[65536][..], &[1, 2, 3, 4093], &[7, 1, 1, 1, 30000, 2]] {
            let mut written = Vec::new();
            let reader = Trickle {
                data: &input,
                sizes,
                next: 0,
            };
            let got = outcome(
                strip_stream(reader, &mut written, &options)
                    .await
                    .map(|s| (written, s)),
            );
            match (&got, &expected) {
                (Ok((out, summary)), Ok((want, want_summary))) => {
                    assert!(
                        out == want,
                        "{}: output differs with reads {sizes:?}",
                        entry.file
                    );
                    assert_eq!(summary, want_summary, "{}", entry.file);
                }
                (Err(e), Err(want)) => assert_eq!(e, want, "{}", entry.file),
                _ => panic!(
                    "{}: stream {:?} vs slice {:?}",
                    entry.file,
                    got.is_ok(),
                    expected.is_ok()
                ),
            }
        }
    }
}

#[tokio::test]
async fn stream_api_reports_io_errors() {
    struct Failing;
    impl AsyncRead for Failing {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::other("disk on fire")))
        }
    }
    let error = strip_stream(Failing, Vec::new(), &StripOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StripError::Io(_)));
    assert_eq!(error.to_string(), "I/O error: disk on fire");
}

#[test]
fn byte_by_byte_feeding_matches() {
    for entry in common::manifest().into_iter().filter(|e| e.bytes < 100_000) {
        let input = entry.read();
        let mut stripper = Stripper::new(StripOptions::default());
        let mut out = Vec::new();
        let fed: Result<(), StripError> = input
            .chunks(1)
            .try_for_each(|byte| stripper.feed(byte, &mut out));
        let got = outcome(fed.and_then(|()| stripper.finish()).map(|s| (out, s)));
        assert_eq!(
            got,
            outcome(strip_with(&input, &StripOptions::default())),
            "{}",
            entry.file
        );
    }
}

/// Output comes out as input goes in: after each 64 KiB chunk, at most that chunk plus one
/// held-back segment is pending, whatever the picture's size.
#[test]
fn output_keeps_pace_with_input() {
    let entry = common::manifest()
        .into_iter()
        .find(|e| e.file == "Samsung_SM-G935L_Galaxy_S7_Edge.jpg")
        .unwrap();
    let input = entry.read();
    let mut stripper = Stripper::new(StripOptions::default());
    let mut out = Vec::new();
    let mut total = 0;
    for chunk in input.chunks(65536) {
        stripper.feed(chunk, &mut out).unwrap();
        assert!(
            out.len() <= 65536 + 65537 + 36,
            "{} bytes pending",
            out.len()
        );
        total += out.len();
        out.clear();
    }
    let summary = stripper.finish().unwrap();
    assert_eq!(total as u64, summary.bytes_out);
    assert!(std::mem::size_of::<Stripper>() < 256);
}

#[test]
fn a_failed_stripper_refuses_more_input() {
    let mut stripper = Stripper::new(StripOptions::default());
    let mut out = Vec::new();
    let error = stripper
        .feed(b"\xFF\xD8\xFF\xDA\x00\x02", &mut out)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unexpected SOS (0xFFDA) at byte 2: scan (SOS) before any frame header (SOFn)"
    );
    assert!(matches!(
        stripper.feed(b"\xFF\xD9", &mut out),
        Err(StripError::Poisoned)
    ));
    assert!(matches!(stripper.finish(), Err(StripError::Poisoned)));
}
