//! Asking before changing anything.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// Asks on a TTY; refuses without one unless `--yes`.
pub(crate) fn confirm(question: &str, yes: bool, expected: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to change anything without confirmation: no terminal to ask on. Re-run with --yes");
    }
    eprint!("{question} ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}

/// Asks before a destroy (both engines); `false` (and says so) when the answer is no.
/// prod always asks, for its name: `--yes` alone is not enough to destroy production.
pub(crate) fn confirm_destroy(env: &str, yes: bool) -> anyhow::Result<bool> {
    let confirmed = if env == "prod" {
        confirm(
            &format!("Destroy env `{env}`? Type the env name to confirm:"),
            false,
            env,
        )?
    } else {
        confirm("Destroy these resources? Type `yes`:", yes, "yes")?
    };
    if !confirmed {
        eprintln!("Nothing destroyed.");
    }
    Ok(confirmed)
}
