//! Pixel identity: decoding the stripped picture with an independent decoder (jpeg-decoder)
//! gives exactly the pixels, size, pixel format and ICC profile of decoding the original.

mod common;

use std::io::Cursor;

use common::valid_entries;

/// Files jpeg-decoder cannot decode, and its error. For these the test asserts that the
/// stripped copy fails to decode with the very same error (the scan data is identical).
const UNDECODABLE: &[(&str, &str)] = &[
    // Damaged scan data (a 16 KiB run of 0xFF ending in `FF 9F`): jpeg-decoder does not
    // resync at the next restart marker as libjpeg does.
    (
        "corrupted.jpg",
        "invalid JPEG format: found marker RES inside scan where RST4 was expected",
    ),
];

struct Decoded {
    pixels: Vec<u8>,
    info: String,
    icc: Option<Vec<u8>>,
}

fn decode(jpeg: &[u8]) -> Result<Decoded, String> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(jpeg));
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let info = format!("{:?}", decoder.info());
    Ok(Decoded {
        pixels,
        info,
        icc: decoder.icc_profile(),
    })
}

#[test]
fn stripped_pictures_decode_to_identical_pixels() {
    let mut decoded = 0;
    for entry in valid_entries() {
        let name = entry.file.as_str();
        let input = entry.read();
        let output = lambda::strip(&input).unwrap();
        let known_failure = UNDECODABLE
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, error)| *error);
        match (decode(&input), decode(&output), known_failure) {
            (Ok(before), Ok(after), None) => {
                assert_eq!(before.info, after.info, "{name}");
                assert!(before.pixels == after.pixels, "{name}: pixels differ");
                assert_eq!(before.icc, after.icc, "{name}: ICC profile differs");
                decoded += 1;
            }
            (Err(before), Err(after), Some(expected)) => {
                assert_eq!(before, expected, "{name}");
                assert_eq!(after, expected, "{name}");
            }
            (before, after, expected) => panic!(
                "{name}: original {:?}, stripped {:?}, expected failure {expected:?}",
                before.err(),
                after.err()
            ),
        }
    }
    assert_eq!(decoded, valid_entries().len() - UNDECODABLE.len());
}
