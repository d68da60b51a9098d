//! The table `verify` prints: one row per check (check, result, detail).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Pass,
    Fail,
    /// Not run because what it checks could not be reached (counts as not passed).
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) check: String,
    pub(super) verdict: Verdict,
    pub(super) detail: String,
}

impl Row {
    pub(super) fn pass(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Pass, detail)
    }

    pub(super) fn fail(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Fail, detail)
    }

    pub(super) fn skip(check: impl Into<String>, detail: impl Into<String>) -> Row {
        Row::new(check, Verdict::Skip, detail)
    }

    fn new(check: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Row {
        Row {
            check: check.into(),
            verdict,
            detail: detail.into(),
        }
    }

    /// Pass when nothing is wrong, else fail listing what is.
    pub(super) fn from_problems(
        check: impl Into<String>,
        problems: Vec<String>,
        ok: String,
    ) -> Row {
        if problems.is_empty() {
            Row::pass(check, ok)
        } else {
            Row::fail(check, problems.join("; "))
        }
    }
}

pub(super) fn render(rows: &[Row], color: bool) -> String {
    let width = rows
        .iter()
        .map(|r| r.check.len())
        .chain(["check".len()])
        .max()
        .unwrap_or_default();
    let mut out = format!("{:<width$}  result  detail\n", "check");
    for row in rows {
        let (label, style) = match row.verdict {
            Verdict::Pass => ("PASS", AnsiColor::Green.on_default()),
            Verdict::Fail => ("FAIL", AnsiColor::Red.on_default().bold()),
            Verdict::Skip => ("SKIP", AnsiColor::Yellow.on_default()),
        };
        let style = if color { style } else { Style::new() };
        out.push_str(&format!(
            "{:<width$}  {style}{label}{style:#}    {}\n",
            row.check, row.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_colours_only_on_a_terminal() {
        let rows = vec![
            Row::pass("short", "fine"),
            Row::fail("a longer check", "broken"),
        ];
        let text = render(&rows, false);
        assert_eq!(
            text,
            "check           result  detail\n\
             short           PASS    fine\n\
             a longer check  FAIL    broken\n"
        );
        assert!(render(&rows, true).contains("\u{1b}["));
    }
}
