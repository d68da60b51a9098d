//! Pure helpers of `cargo xtask bench`: medians, number formatting, markdown tables, the
//! parsing of what the measured programs print (`/proc` files, the deployer's summary lines)
//! and the merging of freshly measured sections into an existing `BENCHMARKS.md`. No I/O.

use std::fmt::Write as _;
use std::time::Duration;

/// The median of `values`; the mean of the two middle values for an even count. `None`
/// for no values, and NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The median of durations (see [`median`]).
pub fn median_duration(values: &[Duration]) -> Option<Duration> {
    let secs: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    median(&secs).map(Duration::from_secs_f64)
}

/// The median of counts, rounded to the nearest whole number.
pub fn median_count(values: &[usize]) -> Option<usize> {
    let as_f64: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    // Counts are far below 2^52: the round trip through f64 is exact.
    median(&as_f64).map(|m| m.round() as usize)
}

/// A duration for people: `850 ms` below 10 s (`12.3 ms` below 100 ms), else `12.3 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Decimal megabytes with one decimal: `7.9 MB`.
pub fn fmt_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A size with its exact byte count: `7.9 MB (7 912 345 bytes)`.
pub fn fmt_size(bytes: u64) -> String {
    format!("{} ({} bytes)", fmt_mb(bytes), group_thousands(bytes))
}

/// Throughput in decimal MB/s, grouped: `12 345 MB/s`.
pub fn fmt_rate(mb_per_s: f64) -> String {
    if mb_per_s.is_finite() && mb_per_s >= 0.0 {
        // Whole MB/s: the noise of a shared machine is far above that.
        format!("{} MB/s", group_thousands(mb_per_s.round() as u64))
    } else {
        "—".to_owned()
    }
}

/// `1234567` → `1 234 567` (a thin-space-free, copy-paste-safe grouping).
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A markdown table: columns of numbers right-aligned, the others (and always the first)
/// left-aligned, cells padded so the table also reads well as plain text on a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether column `col` holds numbers: every cell starts with a digit or is a dash.
    fn numeric(&self, col: usize) -> bool {
        col > 0
            && self
                .rows
                .iter()
                .all(|row| row[col].starts_with(|c: char| c.is_ascii_digit()) || row[col] == "—")
    }

    pub fn to_markdown(&self) -> String {
        let right: Vec<bool> = (0..self.header.len())
            .map(|col| self.numeric(col))
            .collect();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|col| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[col].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(col, (cell, &width))| {
                    let pad = " ".repeat(width - cell.chars().count());
                    if right[col] {
                        format!("{pad}{cell}")
                    } else {
                        format!("{cell}{pad}")
                    }
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(col, &width)| {
                if right[col] {
                    format!("{}:", "-".repeat(width - 1))
                } else {
                    "-".repeat(width)
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// The `model name` of the first processor in `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

/// A `kB` field of `/proc/<pid>/status` or `/proc/meminfo` (e.g. `VmHWM`), in KiB.
pub fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(value)
    })
}

/// The 1-minute load average of `/proc/loadavg`.
pub fn load_average(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// `(calls, writes)` from the deployer's `N API calls (M writes)` line on stderr.
pub fn api_calls(stderr: &str) -> Option<(usize, usize)> {
    stderr.lines().rev().find_map(|line| {
        let (calls, rest) = line.trim().split_once(" API calls (")?;
        let writes = rest.strip_suffix(" writes)")?;
        Some((calls.parse().ok()?, writes.parse().ok()?))
    })
}

/// What a deploy or destroy changed, from its `Deployed: 13 created, 0 updated, …` line:
/// the non-zero counts, e.g. `13 created`; `None` when the run printed no such line (a
/// deploy that found nothing to do).
pub fn changes(stderr: &str) -> Option<String> {
    stderr.lines().rev().find_map(|line| {
        let rest = line
            .strip_prefix("Deployed: ")
            .or_else(|| line.strip_prefix("Destroyed: "))?;
        // Drop the engine's own " in 3.2s" and the unchanged count: they are not changes.
        let counts = rest.rsplit_once(" in ").map_or(rest, |(counts, _)| counts);
        let changed: Vec<&str> = counts
            .split(", ")
            .filter(|part| !part.starts_with("0 ") && !part.ends_with(" unchanged"))
            .collect();
        Some(if changed.is_empty() {
            "none".to_owned()
        } else {
            changed.join(", ")
        })
    })
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
pub fn utc_timestamp(unix_secs: u64) -> String {
    crate::utc::minutes(unix_secs)
}

/// The marker lines around a section of the generated file; what lies between them is
/// replaced when the section is measured again and kept otherwise.
fn markers(id: &str) -> (String, String) {
    (
        format!("<!-- bench:{id} -->"),
        format!("<!-- /bench:{id} -->"),
    )
}

/// The body of section `id` in a previously generated file, if it has one.
pub fn existing_section<'a>(file: &'a str, id: &str) -> Option<&'a str> {
    let (open, close) = markers(id);
    let start = file.find(&open)? + open.len();
    let len = file[start..].find(&close)?;
    Some(file[start..start + len].trim_matches('\n'))
}

/// The whole file: `preamble`, then every section in order — its new body when it was
/// measured in this run, else its body from `previous`, else `placeholder(id)`.
pub fn assemble(
    preamble: &str,
    sections: &[(&str, Option<String>)],
    previous: Option<&str>,
    placeholder: impl Fn(&str) -> String,
) -> String {
    let mut out = preamble.trim_end().to_owned();
    out.push_str("\n\n");
    for (id, fresh) in sections {
        let body = match fresh {
            Some(body) => body.trim_matches('\n').to_owned(),
            None => previous
                .and_then(|file| existing_section(file, id))
                .map(str::to_owned)
                .unwrap_or_else(|| placeholder(id)),
        };
        let (open, close) = markers(id);
        let _ = write!(out, "{open}\n{body}\n{close}\n\n");
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(
            median_duration(&[
                Duration::from_millis(30),
                Duration::from_millis(10),
                Duration::from_millis(20)
            ]),
            Some(Duration::from_millis(20))
        );
        assert_eq!(median_count(&[7, 9]), Some(8));
        assert_eq!(median_count(&[]), None);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1 000");
        assert_eq!(group_thousands(7_912_345), "7 912 345");
        assert_eq!(fmt_rate(8912.4), "8 912 MB/s");
        assert_eq!(fmt_rate(f64::NAN), "—");
        assert_eq!(fmt_size(7_912_345), "7.9 MB (7 912 345 bytes)");
        assert_eq!(fmt_duration(Duration::from_micros(1234)), "1.2 ms");
        assert_eq!(fmt_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(fmt_duration(Duration::from_millis(12_345)), "12.3 s");
    }

    #[test]
    fn tables_are_aligned_markdown() {
        let mut table = Table::new(&["step", "changes", "wall"]);
        table.row(vec!["deploy".into(), "12 created".into(), "1.2 s".into()]);
        table.row(vec!["plan".into(), "none".into(), "—".into()]);
        assert_eq!(
            table.to_markdown(),
            "| step   | changes    |  wall |\n\
             | ------ | ---------- | ----: |\n\
             | deploy | 12 created | 1.2 s |\n\
             | plan   | none       |     — |\n"
        );
    }

    #[test]
    fn parses_what_the_programs_print() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC  7B13 Processor\nprocessor\t: 1\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("AMD EPYC 7B13 Processor")
        );
        let status =
            "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    8123 kB\nVmRSS:\t 8000 kB\n";
        assert_eq!(kib_field(status, "VmHWM"), Some(8123));
        assert_eq!(kib_field(status, "VmSwap"), None);
        assert_eq!(load_average("3.26 2.80 2.89 3/512 1234\n"), Some(3.26));
        let stderr = "bundle lambda: 1 bytes\n\nDeployed: 13 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged in 4.2s\n57 API calls (31 writes)\n";
        assert_eq!(api_calls(stderr), Some((57, 31)));
        assert_eq!(changes(stderr).as_deref(), Some("13 created"));
        let code_only =
            "Deployed: 0 created, 1 updated, 0 replaced, 0 deleted, 12 unchanged in 1.0s\n";
        assert_eq!(changes(code_only).as_deref(), Some("1 updated"));
        assert_eq!(api_calls("No changes.\n"), None);
        assert_eq!(changes("No changes.\n"), None);
    }

    #[test]
    fn sections_are_replaced_kept_or_placeheld() {
        let placeholder = |id: &str| format!("({id}: not measured)");
        let first = assemble(
            "# Benchmarks\n",
            &[("a", Some("A1\n".into())), ("b", Some("B1".into()))],
            None,
            placeholder,
        );
        assert_eq!(
            first,
            "# Benchmarks\n\n<!-- bench:a -->\nA1\n<!-- /bench:a -->\n\n<!-- bench:b -->\nB1\n<!-- /bench:b -->\n"
        );
        assert_eq!(existing_section(&first, "b"), Some("B1"));
        let second = assemble(
            "# Benchmarks, again",
            &[("a", Some("A2".into())), ("b", None), ("c", None)],
            Some(&first),
            placeholder,
        );
        assert!(second.starts_with("# Benchmarks, again\n\n"));
        assert_eq!(existing_section(&second, "a"), Some("A2"));
        assert_eq!(existing_section(&second, "b"), Some("B1"));
        assert_eq!(existing_section(&second, "c"), Some("(c: not measured)"));
    }
}
