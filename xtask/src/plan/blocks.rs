//! A property's value, or the change of one, as Terraform-style blocks: one attribute per
//! line, nested objects as `name { … }`, lists of objects as one block per element (named by
//! its `id`, `name` or `Sid` when every element has a distinct one: `lifecycle "expire" {`),
//! JSON carried in a string decoded, and every line of a change marked.
//!
//! What the stack leaves unset reads back as `null`, `""`, `[]` or `{}`: such a value is
//! treated as absent everywhere, so a plan lists only what is set, and setting or clearing
//! it shows as an added or removed line.

use std::collections::BTreeSet;

use serde_json::Value;
use similar::{capture_diff_slices, Algorithm, DiffOp};

use super::render::{Mark, Painter};
use crate::resources::policy_doc::canonical;

/// Members whose string value names a list element (first match wins): the stack's ids and
/// names, a policy statement's `Sid`, a CloudFormation tag's `Key`.
const ELEMENT_KEYS: [&str; 4] = ["id", "name", "Sid", "Key"];

/// Where a member is written: its nesting depth and what its lines say around the value.
#[derive(Clone, Copy)]
pub(super) struct Style {
    /// Show the unchanged elements of a changed list: a policy's statements are judged
    /// together, other lists' unchanged elements are only counted.
    pub whole_lists: bool,
}

/// Writes lines into `out`, the depth deciding the indentation: a member at depth `d`
/// starts at column `6 + 4d` with its mark, its block's `}` two columns right of it.
pub(super) struct Writer<'a> {
    pub out: &'a mut String,
    pub painter: Painter,
    pub style: Style,
}

impl Writer<'_> {
    fn line(&mut self, depth: usize, mark: Mark, text: &str) {
        let indent = 6 + 4 * depth;
        let symbol = self.painter.mark(mark);
        self.out
            .push_str(&format!("{:indent$}{symbol} {text}\n", ""));
    }

    fn close(&mut self, depth: usize, text: &str) {
        let indent = 6 + 4 * depth + 2;
        self.out.push_str(&format!("{:indent$}{text}\n", ""));
    }

    fn comment(&mut self, depth: usize, text: &str) {
        self.close(depth, &format!("# {text}"));
    }
}

/// A value as it is shown: decoded from a JSON string where it carries one, `None` when
/// unset.
#[derive(Clone)]
struct Shown<'a> {
    value: std::borrow::Cow<'a, Value>,
    /// Decoded from a string: said on the member's first line.
    json_string: bool,
}

fn shown(value: Option<&Value>) -> Option<Shown<'_>> {
    let value = value?;
    if is_unset(value) {
        return None;
    }
    if let Value::String(text) = value {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(decoded @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(text)
            {
                return Some(Shown {
                    value: std::borrow::Cow::Owned(decoded),
                    json_string: true,
                });
            }
        }
    }
    Some(Shown {
        value: std::borrow::Cow::Borrowed(value),
        json_string: false,
    })
}

/// `null`, `""`, `[]`, `{}`: what an unset optional property reads back as.
fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// A member's name as written: bare when it is an identifier, else quoted.
pub(super) fn member_name(name: &str) -> String {
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        name.to_owned()
    } else {
        Value::from(name).to_string()
    }
}

fn scalar(value: &Value) -> String {
    canonical(value).to_string()
}

/// Whether the member is written as `name = …` (and so aligned with its siblings), not as
/// blocks.
fn is_attribute(old: Option<&Shown<'_>>, new: Option<&Shown<'_>>) -> bool {
    let flat = |s: Option<&Shown<'_>>| {
        s.is_none_or(|s| match s.value.as_ref() {
            Value::Array(items) => items.iter().all(is_scalar),
            other => is_scalar(other),
        })
    };
    flat(old) && flat(new) && (old.is_some() || new.is_some())
}

/// The width names are padded to in a block, so that its `=` line up.
pub(super) fn name_width<'v>(
    members: impl Iterator<Item = (&'v str, Option<&'v Value>, Option<&'v Value>)>,
) -> usize {
    members
        .filter(|(_, old, new)| is_attribute(shown(*old).as_ref(), shown(*new).as_ref()))
        .map(|(name, _, _)| member_name(name).chars().count())
        .max()
        .unwrap_or(0)
}

/// One member's change at `depth`: added (`old` unset), removed (`new` unset), changed, or
/// the same (shown unmarked, as context inside a changed block). `suffix` ends its first
/// line (`(forces replacement)`). Writes nothing when both sides are unset.
pub(super) fn member(
    w: &mut Writer<'_>,
    depth: usize,
    name: &str,
    width: usize,
    old: Option<&Value>,
    new: Option<&Value>,
    suffix: &str,
) {
    let (old, new) = (shown(old), shown(new));
    let label = format!("{:width$}", member_name(name));
    match (old, new) {
        (None, None) => {}
        (None, Some(new)) => whole(w, depth, &label, &new, Mark::Add, suffix),
        (Some(old), None) => whole(w, depth, &label, &old, Mark::Remove, suffix),
        (Some(old), Some(new)) if old.value == new.value => {
            whole(w, depth, &label, &new, Mark::Same, suffix);
        }
        (Some(old), Some(new)) => changed(w, depth, &label, &old, &new, suffix),
    }
}

fn note(shown: &Shown<'_>, suffix: &str) -> String {
    let mut text = String::new();
    if !suffix.is_empty() {
        text.push(' ');
        text.push_str(suffix);
    }
    if shown.json_string {
        text.push_str(" # JSON in a string");
    }
    text
}

/// A value written whole with one mark: added, removed or unchanged.
fn whole(w: &mut Writer<'_>, depth: usize, label: &str, s: &Shown<'_>, mark: Mark, suffix: &str) {
    let note = note(s, suffix);
    match s.value.as_ref() {
        Value::Object(map) => {
            w.line(depth, mark, &format!("{} {{{note}", label.trim_end()));
            object_body(w, depth + 1, map, mark);
            w.close(depth, "}");
        }
        Value::Array(items) if items.iter().all(is_scalar) => {
            if items.len() == 1 {
                let only = scalar(&items[0]);
                w.line(depth, mark, &format!("{label} = [{only}]{note}"));
            } else {
                w.line(depth, mark, &format!("{label} = [{note}"));
                for item in items {
                    w.line(depth + 1, mark, &format!("{},", scalar(item)));
                }
                w.close(depth, "]");
            }
        }
        Value::Array(items) => {
            let key = list_key(items.iter());
            for item in items {
                element(w, depth, label, key, item, mark, &note);
            }
        }
        value => w.line(depth, mark, &format!("{label} = {}{note}", scalar(value))),
    }
}

/// Every set member of an object, one mark for all.
fn object_body(w: &mut Writer<'_>, depth: usize, map: &serde_json::Map<String, Value>, mark: Mark) {
    object_diff(w, depth, map, map, mark, None);
}

/// The members of `old` and `new` (sorted, as `canonical` does), each as its change; with
/// `whole_mark`, every member is written whole with it (the object was added, removed or is
/// unchanged). `skip` leaves out the member that names a list element (in its header).
fn object_diff(
    w: &mut Writer<'_>,
    depth: usize,
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
    whole_mark: Mark,
    skip: Option<&str>,
) {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let names: Vec<&String> = names
        .into_iter()
        .filter(|n| Some(n.as_str()) != skip)
        .collect();
    let width = name_width(names.iter().map(|n| (n.as_str(), old.get(*n), new.get(*n))));
    for name in names {
        let label = format!("{:width$}", member_name(name));
        match whole_mark {
            Mark::Change => member(w, depth, name, width, old.get(name), new.get(name), ""),
            mark => {
                if let Some(s) = shown(new.get(name)) {
                    whole(w, depth, &label, &s, mark, "");
                }
            }
        }
    }
}

/// The member that names a list's elements: the first of [`ELEMENT_KEYS`] under which each
/// element is an object holding a string, distinct from the others'.
fn list_key<'v>(items: impl Iterator<Item = &'v Value> + Clone) -> Option<&'static str> {
    ELEMENT_KEYS.iter().copied().find(|key| {
        let names: Option<Vec<&str>> = items
            .clone()
            .map(|item| item.get(key).and_then(Value::as_str))
            .collect();
        names.is_some_and(|names| {
            let distinct: BTreeSet<&&str> = names.iter().collect();
            !names.is_empty() && distinct.len() == names.len()
        })
    })
}

/// An element's name under `key`.
fn element_name(key: Option<&str>, item: &Value) -> Option<String> {
    key.and_then(|k| item.get(k))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One element of a list of objects, whole, as a block named by the list (and by its member
/// `key`, left out of the block).
fn element(
    w: &mut Writer<'_>,
    depth: usize,
    label: &str,
    key: Option<&str>,
    item: &Value,
    mark: Mark,
    note: &str,
) {
    let header = element_header(label, element_name(key, item).as_deref());
    match item {
        Value::Object(map) => {
            w.line(depth, mark, &format!("{header} {{{note}"));
            object_diff(w, depth + 1, map, map, mark, key);
            w.close(depth, "}");
        }
        // A list mixing objects and other values: the others as they are.
        other => w.line(depth, mark, &format!("{header} = {}{note}", scalar(other))),
    }
}

fn element_header(label: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("{} {}", label.trim_end(), Value::from(key)),
        None => label.trim_end().to_owned(),
    }
}

/// A value that differs on both sides.
fn changed(
    w: &mut Writer<'_>,
    depth: usize,
    label: &str,
    old: &Shown<'_>,
    new: &Shown<'_>,
    suffix: &str,
) {
    let note = note(new, suffix);
    match (old.value.as_ref(), new.value.as_ref()) {
        (Value::Object(o), Value::Object(n)) => {
            w.line(
                depth,
                Mark::Change,
                &format!("{} {{{note}", label.trim_end()),
            );
            object_diff(w, depth + 1, o, n, Mark::Change, None);
            w.close(depth, "}");
        }
        (Value::Array(o), Value::Array(n)) if o.iter().chain(n).all(is_scalar) => {
            w.line(depth, Mark::Change, &format!("{label} = [{note}"));
            let (os, ns) = (strings(o), strings(n));
            for op in capture_diff_slices(Algorithm::Myers, &os, &ns) {
                let (tag_old, tag_new) = (op.old_range(), op.new_range());
                match op {
                    DiffOp::Equal { .. } => {
                        for s in &ns[tag_new] {
                            w.line(depth + 1, Mark::Same, &format!("{s},"));
                        }
                    }
                    _ => {
                        for s in &os[tag_old] {
                            w.line(depth + 1, Mark::Remove, &format!("{s},"));
                        }
                        for s in &ns[tag_new] {
                            w.line(depth + 1, Mark::Add, &format!("{s},"));
                        }
                    }
                }
            }
            w.close(depth, "]");
        }
        (Value::Array(o), Value::Array(n)) if o.iter().chain(n).all(Value::is_object) => {
            elements_diff(w, depth, label, o, n, &note);
        }
        (o, n) if is_scalar(o) && is_scalar(n) => {
            w.line(
                depth,
                Mark::Change,
                &format!("{label} = {} -> {}{note}", scalar(o), scalar(n)),
            );
        }
        // Of different shapes: the old value goes, the new one comes.
        _ => {
            whole(w, depth, label, old, Mark::Remove, suffix);
            whole(w, depth, label, new, Mark::Add, suffix);
        }
    }
}

fn strings(items: &[Value]) -> Vec<String> {
    items.iter().map(scalar).collect()
}

/// Two lists of objects: matched by their names when both sides have them, else by
/// position among the elements that differ.
fn elements_diff(
    w: &mut Writer<'_>,
    depth: usize,
    label: &str,
    old: &[Value],
    new: &[Value],
    note: &str,
) {
    // Named only when each side names its elements by the same member.
    let key = list_key(old.iter()).filter(|k| new.is_empty() || list_key(new.iter()) == Some(k));
    let key = key.or_else(|| list_key(new.iter()).filter(|_| old.is_empty()));
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|item| element_name(key, item).unwrap_or_else(|| scalar(item)))
            .collect()
    };
    let (old_ids, new_ids) = (ids(old), ids(new));
    let mut hidden = 0;
    let write_same = |w: &mut Writer<'_>, hidden: &mut usize, item: &Value| {
        if w.style.whole_lists {
            element(w, depth, label, key, item, Mark::Same, note);
        } else {
            *hidden += 1;
        }
    };
    for op in capture_diff_slices(Algorithm::Myers, &old_ids, &new_ids) {
        let (old_range, new_range) = (op.old_range(), op.new_range());
        if let DiffOp::Equal { .. } = op {
            for (o, n) in old[old_range].iter().zip(&new[new_range]) {
                if o == n {
                    write_same(w, &mut hidden, n);
                } else {
                    changed_element(w, depth, label, key, o, n, note);
                }
            }
            continue;
        }
        let (olds, news) = (&old[old_range], &new[new_range]);
        // Without names, a changed element is a removal beside an addition: paired up, the
        // lines that changed inside it are marked.
        let paired = if key.is_none() {
            olds.len().min(news.len())
        } else {
            0
        };
        for (o, n) in olds.iter().zip(news).take(paired) {
            changed_element(w, depth, label, key, o, n, note);
        }
        for o in &olds[paired..] {
            element(w, depth, label, key, o, Mark::Remove, note);
        }
        for n in &news[paired..] {
            element(w, depth, label, key, n, Mark::Add, note);
        }
    }
    if hidden > 0 {
        let noun = if hidden == 1 { "element" } else { "elements" };
        w.comment(
            depth,
            &format!("({hidden} unchanged {noun} of {} hidden)", label.trim_end()),
        );
    }
}

fn changed_element(
    w: &mut Writer<'_>,
    depth: usize,
    label: &str,
    key: Option<&str>,
    old: &Value,
    new: &Value,
    note: &str,
) {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return;
    };
    let name = element_name(key, new);
    w.line(
        depth,
        Mark::Change,
        &format!("{} {{{note}", element_header(label, name.as_deref())),
    );
    object_diff(w, depth + 1, o, n, Mark::Change, key);
    w.close(depth, "}");
}
