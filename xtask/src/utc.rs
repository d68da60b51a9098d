//! Calendar times in UTC for people (the bench's date, log lines, a record's age), without a
//! date-time library: the proleptic Gregorian calendar from seconds since the Unix epoch.

/// `(year, month, day)` of the day `days` after 1970-01-01 (Howard Hinnant's
/// days-to-civil, shifted so that eras start on March 1st).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn minutes(unix_secs: u64) -> String {
    let (year, month, day) = civil(unix_secs / 86_400);
    let secs_of_day = unix_secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) for milliseconds since the Unix epoch.
pub(crate) fn millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil(secs / 86_400);
    let secs_of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60,
        unix_ms % 1000
    )
}

/// ISO 8601 (`2025-11-23T11:31:05.042Z`), as S3 writes an event's time.
pub(crate) fn iso(unix_ms: u64) -> String {
    format!("{}Z", millis(unix_ms).replacen(' ', "T", 1))
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A duration for people: `42s`, `7m`, `3h`, `2d`.
pub(crate) fn age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7_199 => format!("{}m", secs / 60),
        7_200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates() {
        assert_eq!(minutes(0), "1970-01-01 00:00 UTC");
        assert_eq!(minutes(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(minutes(1_763_897_465), "2025-11-23 11:31 UTC");
        assert_eq!(millis(1_763_897_465_042), "2025-11-23 11:31:05.042");
    }

    #[test]
    fn ages() {
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(7 * 60_000), "7m");
        assert_eq!(age(3 * 3_600_000), "3h");
        assert_eq!(age(50 * 3_600_000), "2d");
    }
}
