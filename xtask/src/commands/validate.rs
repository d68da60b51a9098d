//! `cargo xtask validate`: every stack file, every environment, offline; prints diagnostics.

use std::process::ExitCode;

use crate::stack;
use crate::style;

/// Checks the stack `--stack` names, or every stack of `stacks/` without it.
pub(crate) fn run(stack: Option<&str>) -> anyhow::Result<ExitCode> {
    let checks = match stack {
        Some(_) => stack::check_files(&[crate::session::stack_file_path(stack)?]),
        None => stack::check_all(&crate::workspace::stacks_dir())?,
    };
    let color = style::stderr_color();
    let mut failed = 0;
    for check in &checks {
        let Some(source) = &check.source else {
            eprintln!(
                "error: {}",
                check.read_error.as_deref().unwrap_or("unreadable")
            );
            failed += 1;
            continue;
        };
        eprint!("{}", stack::render_all(&check.diagnostics, source, color));
        match &check.valid {
            Some(summary) => {
                let warnings = if check.diagnostics.is_empty() {
                    String::new()
                } else {
                    format!("; {}", stack::count_summary(&check.diagnostics))
                };
                println!("ok: {} ({summary}{warnings})", source.display);
            }
            None => {
                eprintln!(
                    "error: {}: {}",
                    source.display,
                    stack::count_summary(&check.diagnostics)
                );
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} stack files invalid", checks.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
