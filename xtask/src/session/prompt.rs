//! Asking before changing anything.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use super::RequireApproval;

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

/// Asks before applying a plan (`deploy`). `unattended`: `--yes` (or a saved plan, or a
/// code-only change while watching) approves, within what `level` lets through without a
/// person; `broadening`: the plan broadens access. What needs a person is asked on a
/// terminal, and refused without one.
pub(crate) fn approve(
    question: &str,
    unattended: bool,
    level: RequireApproval,
    broadening: bool,
) -> anyhow::Result<bool> {
    match approval(unattended, level, broadening) {
        Approval::Given => Ok(true),
        Approval::Ask => confirm(question, false, "yes"),
        Approval::AskEvenWithYes(why) => {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "{why}, but there is no terminal to ask on: nothing changed. Review the \
                     plan, then re-run with `--yes` alone to apply it unattended"
                );
            }
            eprintln!("{why}, even with --yes.");
            confirm(question, false, "yes")
        }
    }
}

/// What [`approve`] does.
#[derive(Debug, PartialEq, Eq)]
enum Approval {
    /// Apply.
    Given,
    /// Ask, as without `--yes`.
    Ask,
    /// `--yes` is not enough, for this reason.
    AskEvenWithYes(&'static str),
}

fn approval(unattended: bool, level: RequireApproval, broadening: bool) -> Approval {
    match level {
        _ if !unattended => Approval::Ask,
        RequireApproval::Never => Approval::Given,
        RequireApproval::AnyChange => {
            Approval::AskEvenWithYes("`--require-approval any-change` asks before any change")
        }
        RequireApproval::Broadening if broadening => Approval::AskEvenWithYes(
            "this plan broadens access (the rows marked `broadens` under \"Security changes\"), \
             and `--require-approval broadening` asks before that",
        ),
        RequireApproval::Broadening => Approval::Given,
    }
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

#[cfg(test)]
mod tests {
    use super::{approval, Approval, RequireApproval};

    /// As `cdk deploy --require-approval`, for a run that `--yes` approves; without `--yes`
    /// deploy asks whatever the level.
    #[test]
    fn what_yes_may_apply_at_each_level() {
        use RequireApproval::{AnyChange, Broadening, Never};
        for level in [Never, AnyChange, Broadening] {
            for broadening in [false, true] {
                assert_eq!(approval(false, level, broadening), Approval::Ask);
            }
        }
        assert_eq!(approval(true, Never, true), Approval::Given);
        assert_eq!(approval(true, Broadening, false), Approval::Given);
        assert!(matches!(
            approval(true, Broadening, true),
            Approval::AskEvenWithYes(why) if why.contains("broadens access")
        ));
        assert!(matches!(
            approval(true, AnyChange, false),
            Approval::AskEvenWithYes(_)
        ));
        assert_eq!(RequireApproval::default(), Never);
    }
}
