//! Every corpus file through the stripper, checked against MANIFEST.tsv: valid pictures strip
//! to exactly the kept segments with unchanged scan data, no metadata and no trailer; broken
//! ones fail with the exact typed error.

mod common;

use std::io::Cursor;

use common::{manifest, valid_entries, walk, Entry, Walk};
use lambda::{
    strip, strip_with, Expected, FileKind, Marker, SegmentKind, StripError, StripOptions, Summary,
};

/// What the stripper must keep of the input's segments, in order.
fn expected_kept(input: &Walk, options: &StripOptions) -> Vec<(u8, Vec<u8>)> {
    let first_sos = input
        .segments
        .iter()
        .position(|s| s.marker == Marker::SOS)
        .unwrap();
    input
        .segments
        .iter()
        .enumerate()
        .filter(|(index, s)| match s.marker.0 {
            0xE0 => *index < first_sos && s.payload.starts_with(b"JFIF\0"),
            0xE2 => {
                *index < first_sos && options.keep_icc && s.payload.starts_with(b"ICC_PROFILE\0")
            }
            0xEE => *index < first_sos && s.payload.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            _ => true,
        })
        .map(|(_, s)| (s.marker.0, s.payload.to_vec()))
        .collect()
}

fn minimal_exif_payload(value: u16) -> Vec<u8> {
    let mut p = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    p.extend_from_slice(&value.to_be_bytes());
    p.extend_from_slice(&[0; 6]);
    p
}

fn check_summary(input: &[u8], output: &[u8], summary: &Summary) {
    assert_eq!(summary.bytes_in, input.len() as u64);
    assert_eq!(summary.bytes_out, output.len() as u64);
    assert_eq!(
        summary.bytes_in - summary.bytes_removed + summary.bytes_added,
        summary.bytes_out
    );
    let by_kind: u64 = summary.removed.iter().map(|r| r.bytes).sum();
    assert_eq!(
        by_kind + summary.trailer_bytes + summary.padding_bytes,
        summary.bytes_removed
    );
    assert_eq!(
        summary.bytes_added,
        if summary.orientation.is_some() { 36 } else { 0 }
    );
}

/// Expected trailer size: the manifest's `trailer=` note, except for corrupted.jpg whose notes
/// do not count it: its primary image's EOI (byte 1901609) is followed by 23 bytes of padding
/// and a complete 640x480 preview JPEG, 59092 bytes in all.
fn expected_trailer(entry: &Entry) -> u64 {
    match entry.file.as_str() {
        "corrupted.jpg" => 59092,
        _ => entry.trailer(),
    }
}

#[test]
fn manifest_matches_the_corpus_folder() {
    let entries = manifest();
    let mut listed: Vec<String> = entries.iter().map(|e| e.file.clone()).collect();
    let mut present: Vec<String> = std::fs::read_dir(common::corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "MANIFEST.tsv" && n != "README.md")
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(listed, present);
    for entry in &entries {
        assert_eq!(entry.read().len() as u64, entry.bytes, "{}", entry.file);
    }
}

#[test]
fn valid_files_strip_to_exactly_the_kept_segments() {
    let options = StripOptions::default();
    for entry in valid_entries() {
        let name = &entry.file;
        let input = entry.read();
        let (output, summary) =
            strip_with(&input, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_summary(&input, &output, &summary);
        let (before, after) = (walk(&input), walk(&output));

        // Entropy-coded data: byte for byte, every scan.
        assert!(before.scans == after.scans, "{name}: scan data changed");
        assert_eq!(summary.scans as usize, after.scans.len(), "{name}");
        // Nothing after EOI.
        assert_eq!(after.trailer, 0, "{name}: trailer left");
        assert_eq!(
            summary.trailer_bytes,
            expected_trailer(&entry),
            "{name}: trailer size"
        );
        assert_eq!(before.trailer as u64, summary.trailer_bytes, "{name}");

        // Exactly the kept segments, in input order, plus the minimal EXIF when due.
        let mut kept: Vec<(u8, Vec<u8>)> = after
            .segments
            .iter()
            .map(|s| (s.marker.0, s.payload.to_vec()))
            .collect();
        let orientation = entry.orientation.filter(|o| (2..=8).contains(o));
        assert_eq!(summary.orientation, orientation, "{name}: orientation kept");
        if let Some(value) = orientation {
            let at = kept
                .iter()
                .position(|(m, _)| *m == 0xE1)
                .unwrap_or_else(|| panic!("{name}: no EXIF"));
            assert_eq!(kept.remove(at).1, minimal_exif_payload(value), "{name}");
            let jfif_first = kept.first().is_some_and(|(m, _)| *m == 0xE0);
            assert_eq!(
                at,
                usize::from(jfif_first),
                "{name}: minimal EXIF right after SOI/JFIF"
            );
        }
        let expected = expected_kept(&before, &options);
        let markers = |s: &[(u8, Vec<u8>)]| s.iter().map(|(m, _)| *m).collect::<Vec<_>>();
        assert_eq!(markers(&kept), markers(&expected), "{name}: kept segments");
        assert!(kept == expected, "{name}: kept segments changed");
        for (marker, payload) in &kept {
            match marker {
                0xE0 => assert!(payload.starts_with(b"JFIF\0"), "{name}"),
                0xE2 => assert!(payload.starts_with(b"ICC_PROFILE\0"), "{name}"),
                0xEE => assert!(payload.starts_with(b"Adobe"), "{name}"),
                0xE1 | 0xE3..=0xED | 0xEF | 0xFE => panic!("{name}: {} left", Marker(*marker)),
                _ => {}
            }
        }
    }
}

#[test]
fn no_exif_remains_but_the_orientation() {
    for entry in valid_entries() {
        let name = &entry.file;
        let output = strip(&entry.read()).unwrap();
        let found = exif::Reader::new().read_from_container(&mut Cursor::new(&output));
        match entry.orientation.filter(|o| (2..=8).contains(o)) {
            Some(value) => {
                let exif = found.unwrap_or_else(|e| panic!("{name}: {e}"));
                let fields: Vec<_> = exif.fields().collect();
                assert_eq!(fields.len(), 1, "{name}: {fields:?}");
                assert_eq!(fields[0].tag, exif::Tag::Orientation, "{name}");
                assert_eq!(fields[0].ifd_num, exif::In::PRIMARY, "{name}");
                assert_eq!(
                    fields[0].value.get_uint(0),
                    Some(u32::from(value)),
                    "{name}"
                );
            }
            None => assert!(
                matches!(found, Err(exif::Error::NotFound(_))),
                "{name}: EXIF still readable: {:?}",
                found.map(|e| e.fields().count())
            ),
        }
    }
}

#[test]
fn input_exif_is_what_the_manifest_says() {
    // Guards the test above: kamadak-exif does find the metadata in the originals. Two files
    // carry EXIF it cannot parse: invalid-exif.jpg (byte order FF FF) and multiple_exif.jpg
    // (a field running past its segment).
    let unreadable = ["invalid-exif.jpg", "multiple_exif.jpg"];
    for entry in valid_entries() {
        if !entry.exif_present {
            continue;
        }
        if unreadable.contains(&entry.file.as_str()) {
            assert!(exif::Reader::new()
                .read_from_container(&mut Cursor::new(&entry.read()))
                .is_err());
            continue;
        }
        let input = entry.read();
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&input))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        let orientation = exif
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
        assert_eq!(
            orientation,
            entry.orientation.map(u32::from),
            "{}",
            entry.file
        );
    }
}

#[test]
fn summary_names_what_was_removed() {
    for entry in valid_entries() {
        let name = &entry.file;
        let (_, summary) = strip_with(&entry.read(), &StripOptions::default()).unwrap();
        let count = |kind| summary.removed_count(kind);
        assert_eq!(
            count(SegmentKind::Exif) > 0,
            entry.exif_present,
            "{name}: {summary:?}"
        );
        if entry.has("xmp") {
            assert!(count(SegmentKind::Xmp) > 0, "{name}");
        }
        if entry.has("xmp-extended") {
            assert!(count(SegmentKind::ExtendedXmp) > 0, "{name}");
        }
        if entry.has("iptc-app13") {
            assert!(count(SegmentKind::PhotoshopIptc) > 0, "{name}");
        }
        if entry.has("iptc-multisegment") {
            assert!(count(SegmentKind::PhotoshopIptc) > 1, "{name}");
        }
        if entry.has("mpf") {
            assert_eq!(count(SegmentKind::Mpf), 1, "{name}");
        }
        if entry.has("com") {
            assert!(count(SegmentKind::Comment) > 0, "{name}");
        }
        if entry.has("multiple-exif") {
            assert_eq!(count(SegmentKind::Exif), 2, "{name}");
        }
        if entry.has("other-appn") {
            assert!(
                summary
                    .removed
                    .iter()
                    .any(|r| matches!(r.kind, SegmentKind::App(_))),
                "{name}"
            );
        }
        assert_eq!(count(SegmentKind::Icc), 0, "{name}: ICC kept by default");
    }
}

#[test]
fn kitchen_sink_removes_every_kind() {
    let entry = manifest()
        .into_iter()
        .find(|e| e.file == "ExifTool.jpg")
        .unwrap();
    let (output, summary) = strip_with(&entry.read(), &StripOptions::default()).unwrap();
    let kinds: Vec<String> = summary
        .removed
        .iter()
        .map(|r| format!("{}x{}", r.kind, r.count))
        .collect();
    assert_eq!(
        kinds,
        [
            "exif x1",
            "jfxx x1",
            "app8 x1",
            "app0 x2",
            "xmp x1",
            "app2 x3",
            "mpf x1",
            "app3 x1",
            "app5 x1",
            "app6 x2",
            "app7 x1",
            "app9 x1",
            "app10 x1",
            "app11 x2",
            "app12 x2",
            "photoshop-iptc x1",
            "app13 x1",
            "app15 x1",
            "comment x1"
        ]
        .map(|k| k.replace(' ', ""))
    );
    assert_eq!(summary.trailer_bytes, 3913);
    assert_eq!(
        walk(&output).markers(),
        [0xE0, 0xE2, 0xEE, 0xDB, 0xC0, 0xC4, 0xDA]
    );
}

#[test]
fn options_drop_icc_and_orientation() {
    let options = StripOptions {
        keep_orientation: false,
        keep_icc: false,
    };
    for entry in valid_entries() {
        let name = &entry.file;
        let input = entry.read();
        let (output, summary) = strip_with(&input, &options).unwrap();
        check_summary(&input, &output, &summary);
        assert_eq!(summary.orientation, None, "{name}");
        let after = walk(&output);
        assert!(
            after.app(1).next().is_none() && after.app(2).next().is_none(),
            "{name}"
        );
        let kept: Vec<_> = after
            .segments
            .iter()
            .map(|s| (s.marker.0, s.payload.to_vec()))
            .collect();
        assert!(kept == expected_kept(&walk(&input), &options), "{name}");
        if entry.has("icc") {
            assert!(summary.removed_count(SegmentKind::Icc) > 0, "{name}");
        }
    }
}

#[test]
fn stripping_is_idempotent() {
    for entry in valid_entries() {
        let once = strip(&entry.read()).unwrap();
        let (twice, summary) = strip_with(&once, &StripOptions::default()).unwrap();
        assert!(once == twice, "{}", entry.file);
        // The second pass only replaces the minimal EXIF by itself.
        assert_eq!(
            summary.bytes_removed, summary.bytes_added,
            "{}: {summary:?}",
            entry.file
        );
    }
}

#[test]
fn broken_files_fail_with_the_right_error() {
    let error = |file: &str| {
        let input = std::fs::read(common::corpus_dir().join(file)).unwrap();
        strip(&input).expect_err(file)
    };
    assert!(matches!(
        error("empty.jpg"),
        StripError::NotJpeg {
            looks_like: FileKind::Empty
        }
    ));
    assert!(matches!(
        error("normalphoto.jpg"),
        StripError::NotJpeg {
            looks_like: FileKind::Png
        }
    ));
    // Progressive, cut off inside the entropy-coded data of its 10th scan.
    assert!(matches!(
        error("truncated_jpeg.jpg"),
        StripError::MissingEoi {
            offset: 6698,
            scans: 10
        }
    ));
    // SOI, then APP14 whose length field (0x3030) runs 12332 bytes past the 8-byte file.
    assert!(matches!(
        error("missing-sof.jpg"),
        StripError::SegmentOverrun {
            marker: Marker(0xEE),
            offset: 2,
            length: 12336,
            end: 8
        }
    ));
    assert_eq!(
        error("missing-sof.jpg").to_string(),
        "segment APP14 (0xFFEE) at byte 2 declares 12336 bytes but the input ends at byte 8, 12332 bytes short"
    );
    assert_eq!(
        error("truncated_jpeg.jpg").to_string(),
        "missing EOI: the input ends at byte 6698, after 10 scan(s), without an EOI marker (the file is \
         truncated, or its writer omitted EOI)"
    );
    assert_eq!(error("empty.jpg").kind(), "not-jpeg");
    assert_eq!(error("truncated_jpeg.jpg").kind(), "missing-eoi");
    assert_eq!(error("missing-sof.jpg").kind(), "segment-overrun");
}

#[test]
fn cut_corpus_files_are_refused_with_their_offset() {
    // Every valid file cut inside its header or inside its scan.
    for entry in valid_entries() {
        let input = entry.read();
        let first_sos = walk(&input)
            .segments
            .iter()
            .find(|s| s.marker == Marker::SOS)
            .unwrap()
            .offset;
        match strip(&input[..first_sos + 1]).unwrap_err() {
            StripError::Truncated {
                offset,
                expected: Expected::Marker,
            } => {
                assert_eq!(offset, first_sos as u64 + 1, "{}", entry.file)
            }
            other => panic!("{}: {other}", entry.file),
        }
        let cut = first_sos + 20 + (input.len() - first_sos) / 3;
        if cut < input.len() - entry.trailer() as usize - 2 {
            assert!(
                matches!(strip(&input[..cut]), Err(StripError::MissingEoi { offset, scans: 1.. }) if offset == cut as u64),
                "{}",
                entry.file
            );
        }
    }
}

/// corrupted.jpg: the structure is intact, the damage is inside the scan. At byte 212992 a
/// 16 KiB run of 0xFF (a lost flash block) ends in `FF 9F`, a reserved code that is no
/// marker; decoding then resyncs at the next RST. The stripper copies the damaged scan as is
/// (it is scan data, the picture renders exactly as before) and cuts the preview JPEG after
/// the primary EOI.
#[test]
fn corrupted_scan_data_is_copied_not_judged() {
    let input = std::fs::read(common::corpus_dir().join("corrupted.jpg")).unwrap();
    assert_eq!(&input[229375..229379], [0xFF, 0x9F, 0xFF, 0xD0]);
    assert!(input[212992..229375].iter().all(|&b| b == 0xFF));
    let (output, summary) = strip_with(&input, &StripOptions::default()).unwrap();
    assert_eq!(summary.trailer_bytes, 59092);
    assert_eq!(&input[1901609..1901611], [0xFF, 0xD9]);
    // SOS at byte 16965, 12-byte header: scan data from 16979 to the EOI.
    assert_eq!(&input[16965..16967], [0xFF, 0xDA]);
    let scan = walk(&output).scans[0];
    assert!(scan == &input[16979..1901609]);
    assert_eq!(summary.removed_count(SegmentKind::Exif), 1);
}
