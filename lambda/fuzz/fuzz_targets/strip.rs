//! Fuzz target: any input, fed whole and in chunks, must give the same outcome without
//! panicking; a successful output must strip to itself.

#![no_main]

use lambda::{strip, strip_with, StripOptions, Stripper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so the fuzzer explores chunk boundaries too.
    let (chunk, input) = match data.split_first() {
        Some((&size, rest)) => (usize::from(size) + 1, rest),
        None => (1, data),
    };
    let options = StripOptions::default();
    let whole = strip_with(input, &options);
    let mut stripper = Stripper::new(options);
    let mut out = Vec::new();
    let chunked = input
        .chunks(chunk)
        .try_for_each(|c| stripper.feed(c, &mut out))
        .and_then(|()| stripper.finish());
    match (whole, chunked) {
        (Ok((output, summary)), Ok(chunked_summary)) => {
            assert_eq!(output, out, "chunked output differs");
            assert_eq!(summary, chunked_summary);
            assert_eq!(summary.bytes_out, output.len() as u64);
            let again = strip(&output).expect("stripped output must strip again");
            assert_eq!(again, output, "not idempotent");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!(
            "slice and chunked APIs disagree: {:?} vs {:?}",
            a.map(|_| ()),
            b.map(|_| ())
        ),
    }
});
