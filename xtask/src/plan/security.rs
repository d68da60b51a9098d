//! PURE: the plan's security summary, as the CDK's "IAM Statement Changes": every policy
//! statement, function permission and managed-policy attachment the plan adds or removes,
//! each marked when it broadens access. Each kind says what of its properties grants access
//! (`ResourceKind::access`); here the two sides of every change are compared.
//!
//! Broadening, as the CDK counts it: an added `Allow` statement, a removed `Deny`
//! statement, an added attachment. Unlike the CDK, an edit that only narrows a statement is
//! not counted: an added `Allow` whose actions and resources are among those of an `Allow`
//! the same change removes (same principals, same conditions, no `Not…` elements) grants
//! nothing new, and likewise a removed `Deny` covered by an added one takes nothing away.
//! Anything else is counted, wildcards included (`s3:*` is not read as covering
//! `s3:GetObject`): a false alarm costs a confirmation, a missed broadening costs access.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::render::{Mark, Painter};
use super::{Change, Plan};
use crate::resources::access::{Access, Statement};
use crate::resources::Props;

const BROADENING: anstyle::Style =
    anstyle::Style::new().fg_color(Some(anstyle::Color::Ansi(anstyle::AnsiColor::Red)));

/// Added or removed by the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sign {
    Added,
    Removed,
}

/// One grant the plan adds or removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    pub change: Sign,
    /// The resource that holds it (`bucket.source`).
    pub address: String,
    #[serde(flatten)]
    pub access: Access,
    /// Whether it widens who may do what.
    pub broadening: bool,
}

/// What the plan changes in access, in plan order (and within a resource, removals first).
pub(crate) fn summary(plan: &Plan) -> Vec<Row> {
    plan.changes.iter().flat_map(rows).collect()
}

/// Whether any row broadens access: what `deploy --require-approval broadening` stops on.
pub(crate) fn broadens(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.broadening)
}

fn rows(change: &Change) -> Vec<Row> {
    let side = |pick: fn(&super::PropertyChange) -> Option<&serde_json::Value>| -> Props {
        change
            .properties
            .iter()
            .filter(|p| !p.sensitive)
            .filter_map(|p| pick(p).map(|v| (p.name.clone(), v.clone())))
            .collect()
    };
    let kind = change.address.kind;
    let old = kind.access(&change.address, &side(|p| p.old.as_ref()));
    let new = kind.access(&change.address, &side(|p| p.new.as_ref()));
    let (old_set, new_set): (BTreeSet<&Access>, BTreeSet<&Access>) =
        (old.iter().collect(), new.iter().collect());
    let removed: Vec<&Access> = old_set.difference(&new_set).copied().collect();
    let added: Vec<&Access> = new_set.difference(&old_set).copied().collect();
    let row = |change_sign: Sign, access: &Access, broadening: bool| Row {
        change: change_sign,
        address: change.address.to_string(),
        access: access.clone(),
        broadening,
    };
    let mut out = Vec::new();
    for access in &removed {
        let broadening = match access {
            Access::Statement(s) if !s.is_allow() => !added.iter().any(|a| covers(a, s)),
            _ => false,
        };
        out.push(row(Sign::Removed, access, broadening));
    }
    for access in &added {
        let broadening = match access {
            Access::Statement(s) if s.is_allow() => !removed.iter().any(|r| covers(r, s)),
            Access::Statement(_) => false,
            Access::Attachment { .. } => true,
        };
        out.push(row(Sign::Added, access, broadening));
    }
    out
}

/// Whether `wider` is a statement of the same policy, effect, principals and conditions as
/// `narrower` whose actions and resources include all of `narrower`'s (compared as written).
fn covers(wider: &Access, narrower: &Statement) -> bool {
    let Access::Statement(wider) = wider else {
        return false;
    };
    let plain = |s: &Statement| {
        !s.actions
            .iter()
            .chain(&s.resources)
            .chain(&s.principals)
            .any(|v| v.starts_with("not "))
    };
    let within = |small: &[String], large: &[String]| small.iter().all(|v| large.contains(v));
    plain(wider)
        && plain(narrower)
        && wider.policy == narrower.policy
        && wider.effect == narrower.effect
        && wider.principals == narrower.principals
        && wider.conditions == narrower.conditions
        && within(&narrower.actions, &wider.actions)
        && within(&narrower.resources, &wider.resources)
}

/// The summary as tables, ending with a newline: the statements, then the attachments.
pub(crate) fn table(rows: &[Row], p: Painter) -> String {
    let mut out = String::new();
    let broadening = rows.iter().filter(|r| r.broadening).count();
    let _ = writeln!(
        out,
        "{} {} added, {} removed{}.",
        p.paint(
            anstyle::Style::new().bold(),
            "Security changes (IAM and bucket policy statements, function permissions, managed policies):"
        ),
        rows.iter().filter(|r| r.change == Sign::Added).count(),
        rows.iter().filter(|r| r.change == Sign::Removed).count(),
        if broadening == 0 {
            "; none broadens access".to_owned()
        } else {
            let verb = if broadening == 1 { "broadens" } else { "broaden" };
            format!("; {broadening} {verb} access (marked `broadens`)")
        }
    );
    let statements: Vec<(&Row, &Statement)> = rows
        .iter()
        .filter_map(|r| match &r.access {
            Access::Statement(s) => Some((r, s)),
            Access::Attachment { .. } => None,
        })
        .collect();
    if !statements.is_empty() {
        let cells = statements
            .iter()
            .map(|(row, s)| {
                (
                    *row,
                    vec![
                        vec![row.address.clone(), format!("({})", s.policy)],
                        vec![s.effect.clone()],
                        s.actions.clone(),
                        s.resources.clone(),
                        s.principals.clone(),
                        s.conditions.clone(),
                    ],
                )
            })
            .collect();
        grid(
            &mut out,
            &[
                "In",
                "Effect",
                "Action",
                "Resource",
                "Principal",
                "Condition",
            ],
            cells,
            p,
        );
    }
    let attachments: Vec<(&Row, Vec<Vec<String>>)> = rows
        .iter()
        .filter_map(|r| match &r.access {
            Access::Attachment { principal, policy } => {
                Some((r, vec![vec![principal.clone()], vec![policy.clone()]]))
            }
            Access::Statement(_) => None,
        })
        .collect();
    if !attachments.is_empty() {
        grid(&mut out, &["User", "Managed policy"], attachments, p);
    }
    out
}

/// A bordered table: a sign column (`+`/`-`), the given columns (a cell may hold several
/// lines), and `broadens` at the end of a broadening row.
fn grid(out: &mut String, headers: &[&str], rows: Vec<(&Row, Vec<Vec<String>>)>, p: Painter) {
    const BROADENS: &str = "broadens";
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for (_, cells) in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            for line in cell {
                *width = (*width).max(line.chars().count());
            }
        }
    }
    let rule = {
        let mut rule = String::from("+---+");
        for width in &widths {
            rule.push_str(&"-".repeat(width + 2));
            rule.push('+');
        }
        rule.push_str(&"-".repeat(BROADENS.len() + 2));
        rule.push('+');
        rule
    };
    let line = |out: &mut String, sign: &str, cells: &[&str], last: &str| {
        let mut text = format!("| {sign} |");
        for (cell, width) in cells.iter().zip(&widths) {
            let pad = width - cell.chars().count();
            let _ = write!(text, " {cell}{:pad$} |", "");
        }
        let pad = BROADENS.len() - last.len();
        let last = p.paint(BROADENING, last);
        let _ = write!(text, " {last}{:pad$} |", "");
        let _ = writeln!(out, "{text}");
    };
    let _ = writeln!(out, "{rule}");
    line(out, " ", headers, "");
    let _ = writeln!(out, "{rule}");
    for (row, cells) in &rows {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for i in 0..height {
            let texts: Vec<&str> = cells
                .iter()
                .map(|c| c.get(i).map_or("", String::as_str))
                .collect();
            let (sign, last) = if i == 0 {
                let mark = match row.change {
                    Sign::Added => Mark::Add,
                    Sign::Removed => Mark::Remove,
                };
                let last = if row.broadening { BROADENS } else { "" };
                (p.mark(mark), last)
            } else {
                (" ".to_owned(), "")
            };
            line(out, &sign, &texts, last);
        }
    }
    let _ = writeln!(out, "{rule}");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::{broadens, summary, Sign};
    use crate::plan::diff;
    use crate::resources::policy_doc::normalize_policy;
    use crate::resources::{Address, Desired, Kind, Observed};

    fn statement(effect: &str, actions: &[&str]) -> Value {
        json!({"Effect": effect, "Action": actions, "Resource": "arn:aws:s3:::b/*"})
    }

    /// The plan of a policy whose statements go from `old` to `new`.
    fn rows_of(kind: Kind, prop: &str, old: &[Value], new: &[Value]) -> Vec<(Sign, bool)> {
        let doc = |s: &[Value]| normalize_policy(&json!({"Version": "2012-10-17", "Statement": s}));
        let address = Address::new(kind, "user-a");
        let want = Desired {
            address: address.clone(),
            physical: "p".into(),
            props: [(prop.to_owned(), doc(new))].into_iter().collect(),
            depends_on: Vec::new(),
            retain: false,
        };
        let have = Observed {
            physical: "p".into(),
            props: [(prop.to_owned(), doc(old))].into_iter().collect(),
        };
        let observed = BTreeMap::from([(address, Some(have))]);
        let plan = diff("s", "dev", &[want], &observed, &[]);
        summary(&plan)
            .into_iter()
            .map(|r| (r.change, r.broadening))
            .collect()
    }

    #[test]
    fn an_added_allow_broadens_and_a_removed_one_does_not() {
        let got = rows_of(
            Kind::Policy,
            "document",
            &[statement("Allow", &["s3:GetObject"])],
            &[statement("Allow", &["s3:GetObject", "s3:DeleteObject"])],
        );
        assert_eq!(got, [(Sign::Removed, false), (Sign::Added, true)]);
    }

    #[test]
    fn a_narrowed_allow_does_not_broaden() {
        let got = rows_of(
            Kind::Policy,
            "document",
            &[statement("Allow", &["s3:GetObject", "s3:PutObject"])],
            &[statement("Allow", &["s3:GetObject"])],
        );
        assert_eq!(got, [(Sign::Removed, false), (Sign::Added, false)]);
    }

    #[test]
    fn a_removed_deny_broadens_unless_a_wider_one_replaces_it() {
        let got = rows_of(
            Kind::Bucket,
            "policy",
            &[statement("Deny", &["s3:DeleteObject"])],
            &[],
        );
        assert_eq!(got, [(Sign::Removed, true)]);
        let got = rows_of(
            Kind::Bucket,
            "policy",
            &[statement("Deny", &["s3:DeleteObject"])],
            &[statement("Deny", &["s3:DeleteObject", "s3:PutObject"])],
        );
        assert_eq!(got, [(Sign::Removed, false), (Sign::Added, false)]);
    }

    #[test]
    fn a_not_action_is_never_read_as_covered() {
        let not =
            |actions: &[&str]| json!({"Effect": "Allow", "NotAction": actions, "Resource": "*"});
        let got = rows_of(
            Kind::Policy,
            "document",
            &[not(&["iam:*", "s3:*"])],
            &[not(&["iam:*"])],
        );
        assert_eq!(got, [(Sign::Removed, false), (Sign::Added, true)]);
    }

    #[test]
    fn an_attached_managed_policy_broadens() {
        let address = Address::new(Kind::User, "user-a");
        let want = Desired {
            address: address.clone(),
            physical: "u".into(),
            props: [(
                "attached_policies".to_owned(),
                json!(["arn:aws:iam::1:policy/p"]),
            )]
            .into_iter()
            .collect(),
            depends_on: Vec::new(),
            retain: false,
        };
        let plan = diff("s", "dev", &[want], &BTreeMap::new(), &[]);
        let rows = summary(&plan);
        assert_eq!(rows.len(), 1);
        assert!(broadens(&rows));
        let plan = diff("s", "dev", &[], &BTreeMap::new(), &[]);
        assert!(summary(&plan).is_empty());
    }
}
