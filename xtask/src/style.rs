//! Whether output is coloured: decided here only, from whether the stream is a terminal and
//! the `NO_COLOR` convention (<https://no-color.org>: set and non-empty means no colour).

use std::io::IsTerminal as _;

fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Colour for what goes to stdout (plans, tables).
pub(crate) fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && colour_allowed()
}

/// Colour for what goes to stderr (diagnostics, warnings).
pub(crate) fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && colour_allowed()
}
