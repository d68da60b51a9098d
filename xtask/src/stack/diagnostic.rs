//! Diagnostics: what went wrong (or looks wrong) in a stack file, where, and how to fix it,
//! rendered like rustc (`file:line:col: error: …`, the source line, a caret). Also the
//! "did you mean" helper and the typed errors of the `stack` module. Owns presentation
//! only; the rules that produce diagnostics live in `validate` and `resolve`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anstyle::{AnsiColor, Style};

use super::source::Source;

/// A position in the stack file: 1-based line and column (in characters), and how many
/// characters the caret underlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    pub fn point(line: usize, col: usize) -> Self {
        Span { line, col, len: 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// `None` when the problem has no single place (the file is empty, a cross-file clash).
    pub span: Option<Span>,
    /// Short text printed after the carets.
    pub label: Option<String>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Option<Span>) -> Self {
        Diagnostic::new(Severity::Error, message, span)
    }

    pub fn warning(message: impl Into<String>, span: Option<Span>) -> Self {
        Diagnostic::new(Severity::Warning, message, span)
    }

    fn new(severity: Severity, message: impl Into<String>, span: Option<Span>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            span,
            label: None,
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: message`, the source line with a caret, then help and notes.
    pub fn render(&self, source: &Source, color: bool) -> String {
        let paint = Paint { color };
        let sev_style = match self.severity {
            Severity::Error => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
            Severity::Warning => Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
        };
        let gutter = Style::new().bold().fg_color(Some(AnsiColor::Blue.into()));
        let bold = Style::new().bold();

        let mut out = String::new();
        let location = match self.span {
            Some(span) => format!("{}:{}:{}", source.display, span.line, span.col),
            None => source.display.clone(),
        };
        let _ = writeln!(
            out,
            "{}: {}: {}",
            paint.apply(bold, &location),
            paint.apply(sev_style, self.severity.as_str()),
            paint.apply(bold, &self.message)
        );

        let line_text = self
            .span
            .and_then(|span| Some((span, source.line(span.line)?)));
        let width = self
            .span
            .map_or(1, |span| span.line.to_string().len())
            .max(1);
        let pad = " ".repeat(width);
        if let Some((span, text)) = line_text {
            // Tabs would shift the caret; columns count characters, so one space per tab.
            let text = text.replace('\t', " ");
            let chars = text.chars().count();
            let start = span.col.saturating_sub(1).min(chars);
            let len = span.len.max(1).min(chars.saturating_sub(start).max(1));
            let _ = writeln!(out, "{pad} {}", paint.apply(gutter, "|"));
            let _ = writeln!(
                out,
                "{} {} {}",
                paint.apply(gutter, &format!("{:>width$}", span.line)),
                paint.apply(gutter, "|"),
                text.trim_end()
            );
            let carets = paint.apply(sev_style, &"^".repeat(len));
            let label = match &self.label {
                Some(label) => format!(" {}", paint.apply(sev_style, label)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{pad} {} {}{carets}{label}",
                paint.apply(gutter, "|"),
                " ".repeat(start)
            );
        } else if let Some(label) = &self.label {
            let _ = writeln!(out, "{pad} {} {label}", paint.apply(gutter, "="));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "{pad} {} {}: {help}",
                paint.apply(gutter, "="),
                paint.apply(bold, "help")
            );
        }
        for note in &self.notes {
            let _ = writeln!(
                out,
                "{pad} {} {}: {note}",
                paint.apply(gutter, "="),
                paint.apply(bold, "note")
            );
        }
        out
    }
}

struct Paint {
    color: bool,
}

impl Paint {
    fn apply(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

/// Sorts by position (errors before warnings at the same place) and renders them all,
/// followed by a one-line count.
pub fn render_all(diagnostics: &[Diagnostic], source: &Source, color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.span, d.severity));
    let mut out = String::new();
    for diagnostic in sorted {
        out.push_str(&diagnostic.render(source, color));
        out.push('\n');
    }
    out
}

/// `2 errors, 1 warning`.
pub fn count_summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// The candidate closest to `input`, if any is close enough to be a plausible typo
/// (Jaro similarity above 0.7, the threshold clap uses for the same purpose).
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro(&input, &candidate.to_lowercase());
        if score > 0.7 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Errors of the `stack` module. At the command boundary they become `anyhow::Error`.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    // The I/O error is part of the message, not a `#[source]`: `{:#}` would say it twice.
    #[error("cannot read stack file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{file}:{line}:{column}: the stack file is not UTF-8 text: byte 0x{byte:02X} at \
         offset {offset} is not valid UTF-8 (save the file as UTF-8)"
    )]
    NotUtf8 {
        file: String,
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
        byte: u8,
        line: usize,
        column: usize,
    },
    /// Display is the rendered diagnostics, so printing the error shows them all.
    #[error("{file} is not a valid stack ({summary}):\n\n{rendered}")]
    Invalid {
        file: String,
        summary: String,
        rendered: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("unknown environment `{env}` in {file}{}; declared environments: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        valid.join(", "))]
    UnknownEnvironment {
        env: String,
        file: String,
        valid: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("invalid AWS account id `{0}`: expected 12 digits")]
    InvalidAccount(String),
    #[error("cannot list stack files in {dir}: {error}")]
    ListStacks { dir: PathBuf, error: std::io::Error },
    #[error("no stack files (*.yaml) in {0}")]
    NoStacks(PathBuf),
    #[error("no stack `{name}` in {dir}{}; available: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    StackNotFound {
        name: String,
        dir: PathBuf,
        available: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("several stacks in {dir}: {}; choose one with --stack NAME", available.join(", "))]
    AmbiguousStack {
        dir: PathBuf,
        available: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let fields = [
            "name",
            "versioning",
            "force_destroy",
            "retain",
            "tls_only",
            "lifecycle",
        ];
        assert_eq!(did_you_mean("versionin", fields), Some("versioning"));
        assert_eq!(did_you_mean("force-destroy", fields), Some("force_destroy"));
        assert_eq!(did_you_mean("TLS_ONLY", fields), Some("tls_only"));
        assert_eq!(did_you_mean("colour", fields), None);
        assert_eq!(did_you_mean("prd", ["dev", "local", "prod"]), Some("prod"));
    }

    #[test]
    fn renders_like_rustc() {
        let source = Source::new("stacks/x.yaml", "buckets:\n  a:\n    versionin: true\n");
        let d = Diagnostic::error(
            "unknown field `versionin`",
            Some(Span {
                line: 3,
                col: 5,
                len: 9,
            }),
        )
        .with_label("did you mean `versioning`?")
        .with_note("expected one of `name`, `versioning`");
        assert_eq!(
            d.render(&source, false),
            "stacks/x.yaml:3:5: error: unknown field `versionin`
  |
3 |     versionin: true
  |     ^^^^^^^^^ did you mean `versioning`?
  = note: expected one of `name`, `versioning`
"
        );
    }

    #[test]
    fn renders_without_span_and_counts() {
        let source = Source::new("s.yaml", "");
        let d = Diagnostic::warning("empty", None);
        assert_eq!(d.render(&source, false), "s.yaml: warning: empty\n");
        let e = Diagnostic::error("x", None);
        assert_eq!(
            count_summary(&[d.clone(), e.clone(), e]),
            "2 errors, 1 warning"
        );
        assert_eq!(count_summary(&[d]), "1 warning");
    }
}
