//! The pipeline checks: a non-JPEG and a real picture uploaded under the trigger's prefix;
//! the picture's copy must appear, hold no metadata but the Orientation and carry the
//! original's compressed picture byte for byte; the non-JPEG must get none, and leave a
//! refusal record in the function's failures queue.

use super::*;

pub(super) async fn pipeline(deployed: &Deployed<'_>) -> Vec<Row> {
    let s3 = &deployed.clients.s3;
    let (source, destination) = (&deployed.source.name, &deployed.destination.name);
    // The non-JPEG goes first: once the picture uploaded after it has its copy, the function
    // has had its turn at the non-JPEG too, with no fixed sleep to guess.
    let uploaded = async {
        put(s3, source, &deployed.keys.not_a_jpeg, NOT_A_JPEG).await?;
        put(s3, source, &deployed.keys.picture, PICTURE).await
    };
    let unchecked = |why: &str| {
        vec![
            Row::skip(CHECK_CLEAN, why),
            Row::skip(CHECK_DATA, why),
            Row::skip(CHECK_ORIENTATION, why),
        ]
    };
    // Without a copy nothing else can be judged; the table keeps its rows all the same.
    let no_copy = |why: String| {
        let mut rows = vec![Row::fail(CHECK_COPY, why)];
        rows.extend(unchecked("no copy to check"));
        rows.push(Row::skip(
            CHECK_REFUSED,
            "no later upload's copy appeared to wait for",
        ));
        rows.push(Row::skip(CHECK_RECORDED, "no later upload's copy appeared"));
        if !deployed.function.renditions.is_empty() {
            rows.push(Row::skip(CHECK_RENDITIONS, "no copy, so no renditions"));
        }
        rows
    };
    if let Err(err) = uploaded.await {
        return no_copy(format!("upload failed: {err}"));
    }
    let elapsed = match wait_for_copy(deployed).await {
        Ok(elapsed) => elapsed,
        Err(err) => return no_copy(err),
    };
    let mut rows = vec![Row::pass(
        CHECK_COPY,
        format!(
            "`{}` in {destination} after {:.1} s",
            deployed.keys.picture,
            elapsed.as_secs_f64()
        ),
    )];
    let copy = match s3
        .get_object()
        .bucket(destination)
        .key(&deployed.keys.picture)
        .send()
        .await
    {
        Ok(out) => out
            .body
            .collect()
            .await
            .map(|data| data.into_bytes().to_vec())
            .map_err(|err| format!("download failed: {err}")),
        Err(err) => Err(format!("download failed: {}", describe(&err))),
    };
    match copy {
        Ok(copy) => rows.extend(judge_copy(PICTURE, &copy)),
        Err(err) => rows.extend(unchecked(&err)),
    }
    rows.push(
        match s3
            .head_object()
            .bucket(destination)
            .key(&deployed.keys.not_a_jpeg)
            .send()
            .await
        {
            Ok(_) => Row::fail(
                CHECK_REFUSED,
                format!(
                    "`{}` has a copy in {destination}: a non-JPEG went through",
                    deployed.keys.not_a_jpeg
                ),
            ),
            Err(err) if http_status(&err) == Some(404) => Row::pass(
                CHECK_REFUSED,
                format!(
                    "no copy of `{}` (a PNG) once the later upload's copy was there",
                    deployed.keys.not_a_jpeg
                ),
            ),
            Err(err) => Row::fail(CHECK_REFUSED, describe(&err)),
        },
    );
    rows.push(refusal_recorded(deployed).await);
    if !deployed.function.renditions.is_empty() {
        rows.push(renditions(deployed).await);
    }
    rows
}

/// Each declared rendition of the picture is there: upright (the picture is stored on its
/// side, Orientation 6, so a rendition must be taller than wide), its longest edge the
/// declared one, and no metadata segment at all (APP1 EXIF/XMP, APP13, comments).
async fn renditions(deployed: &Deployed<'_>) -> Row {
    let destination = &deployed.destination.name;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for rendition in &deployed.function.renditions {
        let key = format!("{}{}", rendition.prefix, deployed.keys.picture);
        let started = Instant::now();
        let bytes = loop {
            match deployed
                .clients
                .s3
                .get_object()
                .bucket(destination)
                .key(&key)
                .send()
                .await
            {
                Ok(out) => {
                    break out
                        .body
                        .collect()
                        .await
                        .map(|d| d.into_bytes().to_vec())
                        .ok()
                }
                Err(_) if started.elapsed() < deployed.timeout => {
                    tokio::time::sleep(POLL_EVERY).await;
                }
                Err(err) => {
                    problems.push(format!("`{key}`: {}", describe(&err)));
                    break None;
                }
            }
        };
        let Some(bytes) = bytes else {
            continue;
        };
        let mut size = None;
        let mut metadata = Vec::new();
        for segment in lambda::segments(&bytes) {
            let Ok(segment) = segment else {
                problems.push(format!("`{key}` is not a well-formed JPEG"));
                break;
            };
            match segment.marker.0 {
                // SOF0..SOF2: precision, height, width.
                0xC0..=0xC2 if segment.payload.len() >= 5 => {
                    let p = segment.payload;
                    size = Some((
                        u32::from(u16::from_be_bytes([p[3], p[4]])),
                        u32::from(u16::from_be_bytes([p[1], p[2]])),
                    ));
                }
                0xE1 | 0xED | 0xFE => metadata.push(format!("{}", segment.marker)),
                _ => {}
            }
        }
        match size {
            Some((width, height)) => {
                if width.max(height) != rendition.max_edge {
                    problems.push(format!(
                        "`{}` is {width}x{height}, not {} px on its longest edge",
                        rendition.name, rendition.max_edge
                    ));
                }
                if width >= height {
                    problems.push(format!(
                        "`{}` is {width}x{height}: not turned upright",
                        rendition.name
                    ));
                }
                seen.push(format!("{} {width}x{height}", rendition.name));
            }
            None => problems.push(format!("`{key}` has no frame header")),
        }
        if !metadata.is_empty() {
            problems.push(format!(
                "`{}` carries metadata: {}",
                rendition.name,
                metadata.join(", ")
            ));
        }
    }
    Row::from_problems(
        CHECK_RENDITIONS,
        problems,
        format!("{} (upright, no metadata)", seen.join(", ")),
    )
}

/// The non-JPEG left a refusal record in the function's failures queue: someone can find
/// it. The record is deleted once seen (it is the run's own), the queue's others left alone.
async fn refusal_recorded(deployed: &Deployed<'_>) -> Row {
    let Some(queue) = deployed.stack.failure_queue(deployed.function) else {
        return Row::fail(
            CHECK_RECORDED,
            "the function has no `on_failure` queue: a refused upload is only logged",
        );
    };
    let key = &deployed.keys.not_a_jpeg;
    let started = Instant::now();
    loop {
        let peeked = resources::queue::peek(deployed.clients, &queue.name, PEEK_LIMIT).await;
        let (url, messages) = match peeked {
            Ok(found) => found,
            Err(err) => return Row::fail(CHECK_RECORDED, format!("{err:#}")),
        };
        let (ours, others): (Vec<_>, Vec<_>) = messages.iter().partition(|m| {
            serde_json::from_str::<Value>(&m.body).is_ok_and(|record| {
                record["kind"] == lambda::REFUSAL_KIND && record["key"] == key.as_str()
            })
        });
        // Others' records are shown again at once, as `failures` would leave them.
        let released = resources::queue::release(deployed.clients, &url, &others).await;
        if let Some(record) = ours.first() {
            let reason = serde_json::from_str::<Value>(&record.body)
                .ok()
                .and_then(|r| r["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return match (
                resources::queue::delete_messages(deployed.clients, &url, &ours).await,
                released,
            ) {
                (Ok(_), Ok(())) => Row::pass(
                    CHECK_RECORDED,
                    format!(
                        "`{key}`: {reason}, in queue {} (record removed)",
                        queue.name
                    ),
                ),
                (Err(err), _) | (_, Err(err)) => Row::fail(CHECK_RECORDED, format!("{err:#}")),
            };
        }
        if started.elapsed() >= deployed.timeout {
            return Row::fail(
                CHECK_RECORDED,
                format!(
                    "no refusal record for `{key}` in queue {} after {} s",
                    queue.name,
                    deployed.timeout.as_secs()
                ),
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// How long to wait for the picture's copy when `--timeout` is not given. The emulator applies
/// a notification configuration at once; AWS can take minutes ("usually about five minutes",
/// S3 user guide, "Amazon S3 Event Notifications"), so a first `verify` right after a first
/// deploy must not give up after one.
pub(super) fn default_copy_timeout(emulator: bool) -> Duration {
    if emulator {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(300)
    }
}

/// Polls bucket B for the picture's copy, saying every few seconds that it is still waiting.
async fn wait_for_copy(deployed: &Deployed<'_>) -> Result<Duration, String> {
    let (destination, key) = (&deployed.destination.name, &deployed.keys.picture);
    eprintln!(
        "uploaded `{key}` to {}; waiting up to {} s for its copy in {destination}",
        deployed.source.name,
        deployed.timeout.as_secs()
    );
    let started = Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    let mut last_error = None;
    loop {
        match deployed
            .clients
            .s3
            .head_object()
            .bucket(destination)
            .key(key)
            .send()
            .await
        {
            Ok(_) => return Ok(started.elapsed()),
            Err(err) if http_status(&err) == Some(404) => {}
            // Possibly transient: keep polling, and report it if the copy never comes.
            Err(err) => last_error = Some(describe(&err)),
        }
        let waited = started.elapsed();
        if waited >= deployed.timeout {
            return Err(format!(
                "no copy in {destination} after {} s{}: is the trigger in place? the \
                 function's log says why it did not write one",
                deployed.timeout.as_secs(),
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ));
        }
        if waited >= next_progress {
            eprintln!(
                "  still waiting for the copy: {} s of {} s",
                waited.as_secs(),
                deployed.timeout.as_secs()
            );
            next_progress += PROGRESS_EVERY;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Judges the function's output for `original` with the stripper itself: the copy must be a
/// valid JPEG that the stripper leaves as it is (nothing left to remove but the minimal
/// Orientation EXIF it writes back identically), with the original's compressed picture and
/// orientation.
fn judge_copy(original: &[u8], copy: &[u8]) -> Vec<Row> {
    let options = lambda::StripOptions::default();
    let before = match lambda::strip_with(original, &options) {
        Ok((_, summary)) => summary,
        Err(err) => {
            let why = format!("the test picture itself does not strip: {err}");
            return vec![
                Row::fail(CHECK_CLEAN, &why),
                Row::fail(CHECK_DATA, &why),
                Row::fail(CHECK_ORIENTATION, why),
            ];
        }
    };
    let (again, after) = match lambda::strip_with(copy, &options) {
        Ok(result) => result,
        Err(err) => {
            let why = format!("the copy is not a valid JPEG: {err}");
            return vec![
                Row::fail(CHECK_CLEAN, &why),
                Row::skip(CHECK_DATA, "the copy is not a valid JPEG"),
                Row::skip(CHECK_ORIENTATION, "the copy is not a valid JPEG"),
            ];
        }
    };

    // What re-stripping removes beyond the minimal Orientation EXIF it writes back (as many
    // bytes as it removes, when the copy holds exactly that).
    let mut left: Vec<String> = after
        .removed
        .iter()
        .filter(|r| !(r.kind == lambda::SegmentKind::Exif && r.bytes == after.bytes_added))
        .map(|r| format!("{} x{} ({} B)", r.kind, r.count, r.bytes))
        .collect();
    if after.trailer_bytes > 0 {
        left.push(format!("{} B after EOI", after.trailer_bytes));
    }
    if left.is_empty() && again != copy {
        left.push("re-stripping the copy changes it".to_owned());
    }
    let removed: Vec<String> = before
        .removed
        .iter()
        .map(|r| format!("{} {} B", r.kind, r.bytes))
        .collect();
    let clean = if left.is_empty() {
        Row::pass(
            CHECK_CLEAN,
            format!(
                "only a {} B EXIF holding Orientation; the original's {} are gone",
                after.bytes_added,
                removed.join(", ")
            ),
        )
    } else {
        Row::fail(CHECK_CLEAN, format!("still there: {}", left.join(", ")))
    };

    let data = match (
        scan_data(original, before.trailer_bytes),
        scan_data(copy, after.trailer_bytes),
    ) {
        (Some(a), Some(b)) if a == b => Row::pass(
            CHECK_DATA,
            format!("{} bytes from SOS to EOI, byte for byte", a.len()),
        ),
        (Some(a), Some(b)) => Row::fail(
            CHECK_DATA,
            format!(
                "SOS..EOI differs: {} bytes in the original, {} in the copy",
                a.len(),
                b.len()
            ),
        ),
        _ => Row::fail(CHECK_DATA, "no SOS marker found"),
    };

    let orientation = match (before.orientation, after.orientation) {
        (Some(want), Some(have)) if want == have => Row::pass(
            CHECK_ORIENTATION,
            format!("Orientation {have}, as the original"),
        ),
        (want, have) => Row::fail(
            CHECK_ORIENTATION,
            format!(
                "Orientation {} in the copy, {} in the original",
                have.map_or("absent".to_owned(), |o| o.to_string()),
                want.map_or("absent".to_owned(), |o| o.to_string()),
            ),
        ),
    };
    vec![clean, data, orientation]
}

/// The compressed picture: from the first SOS marker to the end of the first EOI, which is
/// `trailer` bytes before the end of the file (found by the `lambda` crate's segment
/// walker); `None` when the segments before it are malformed.
fn scan_data(jpeg: &[u8], trailer: u64) -> Option<&[u8]> {
    let end = jpeg.len().checked_sub(usize::try_from(trailer).ok()?)?;
    let sos = lambda::segments(jpeg)
        .map_while(Result::ok)
        .find(|segment| segment.marker == Marker::SOS)?;
    jpeg.get(sos.offset..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_awaited_longer_on_aws_than_on_the_emulator() {
        assert_eq!(default_copy_timeout(true), Duration::from_secs(60));
        assert_eq!(default_copy_timeout(false), Duration::from_secs(300));
    }

    #[test]
    fn the_fixture_has_what_verify_needs_to_see_removed_and_kept() {
        let (_, summary) =
            lambda::strip_with(PICTURE, &lambda::StripOptions::default()).expect("strips");
        assert_eq!(summary.orientation, Some(6));
        assert_eq!(summary.removed_count(lambda::SegmentKind::Exif), 1);
        assert_eq!(summary.removed_count(lambda::SegmentKind::Xmp), 1);
    }

    #[test]
    fn a_properly_stripped_copy_passes_every_check() {
        let copy = lambda::strip(PICTURE).expect("strips");
        let rows = judge_copy(PICTURE, &copy);
        assert!(rows.iter().all(|r| r.verdict == Verdict::Pass), "{rows:#?}");
    }

    #[test]
    fn an_unstripped_copy_fails_the_metadata_check_only() {
        let rows = judge_copy(PICTURE, PICTURE);
        assert_eq!(rows[0].check, CHECK_CLEAN);
        assert_eq!(rows[0].verdict, Verdict::Fail, "{rows:#?}");
        assert!(rows[0].detail.contains("xmp"), "{}", rows[0].detail);
        assert!(
            rows[1..].iter().all(|r| r.verdict == Verdict::Pass),
            "{rows:#?}"
        );
    }

    #[test]
    fn a_copy_without_orientation_or_with_other_pixels_fails() {
        let (plain, _) = lambda::strip_with(
            PICTURE,
            &lambda::StripOptions {
                keep_orientation: false,
                keep_icc: true,
            },
        )
        .expect("strips");
        let rows = judge_copy(PICTURE, &plain);
        assert_eq!(rows[2].verdict, Verdict::Fail, "{rows:#?}");

        let mut changed = lambda::strip(PICTURE).expect("strips");
        let at = changed.len() - 100;
        changed[at] ^= 0x01;
        let rows = judge_copy(PICTURE, &changed);
        assert_eq!(rows[1].verdict, Verdict::Fail, "{rows:#?}");
    }

    #[test]
    fn a_trailer_is_metadata_left() {
        let mut copy = lambda::strip(PICTURE).expect("strips");
        copy.extend_from_slice(b"trailing video");
        let rows = judge_copy(PICTURE, &copy);
        assert_eq!(rows[0].verdict, Verdict::Fail);
        assert!(rows[0].detail.contains("after EOI"), "{}", rows[0].detail);
        assert_eq!(rows[1].verdict, Verdict::Pass, "{rows:#?}");
    }

    #[test]
    fn scan_data_starts_at_sos_and_stops_before_the_trailer() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xFF, 0xDA, 0x00, 0x02, 0x11,
            0xFF, 0xD9, 0x99,
        ];
        assert_eq!(
            scan_data(&jpeg, 1),
            Some(&[0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD9][..])
        );
        assert_eq!(scan_data(&jpeg[..6], 0), None);
        assert_eq!(scan_data(b"\x89PNG", 0), None);
    }
}
