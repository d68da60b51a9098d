//! Where things are in a stack file: the source text, a path → position index of every
//! YAML node (built from yaml-rust2's marked events, because serde keeps no positions once
//! a document is parsed), and the [`Locator`] that turns a path in one environment's merged
//! document back into the line and column the user wrote. Owns positions only: it knows
//! nothing of the stack model or its rules.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::Span;

/// One step from a YAML node to a child: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The path of a node from the document root, e.g. `buckets.source.lifecycle[0].id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodePath(Vec<Seg>);

impl NodePath {
    pub fn root() -> Self {
        NodePath(Vec::new())
    }

    /// Shorthand for a path made of keys only.
    pub fn keys(keys: &[&str]) -> Self {
        NodePath(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        NodePath(segs)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        NodePath(segs)
    }

    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// This path seen from inside `prefix` (`environments.dev` + `buckets.a` → `environments.dev.buckets.a`).
    fn under(prefix: &NodePath, tail: &[Seg]) -> NodePath {
        let mut segs = prefix.0.clone();
        segs.extend_from_slice(tail);
        NodePath(segs)
    }

    fn prefix(&self, len: usize) -> NodePath {
        NodePath(self.0[..len.min(self.0.len())].to_vec())
    }
}

impl From<Vec<Seg>> for NodePath {
    fn from(segs: Vec<Seg>) -> Self {
        NodePath(segs)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => write!(f, "{key}")?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The stack file's text and the name it is shown under in diagnostics.
#[derive(Debug, Clone)]
pub struct Source {
    pub display: String,
    pub text: String,
}

impl Source {
    pub fn new(display: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            display: display.into(),
            text: text.into(),
        }
    }

    /// Line `line` (1-based), without its line break.
    pub fn line(&self, line: usize) -> Option<&str> {
        let text = self.text.lines().nth(line.checked_sub(1)?)?;
        Some(text.strip_suffix('\r').unwrap_or(text))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlKind {
    Scalar,
    Mapping,
    Sequence,
    Alias,
}

/// Where one node is: its key (when it is a mapping value) and the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePos {
    pub key: Option<Span>,
    pub value: Span,
    pub kind: YamlKind,
}

/// A key that appears twice in one mapping (serde keeps the last silently when parsing
/// straight into a typed map, and reports only the mapping's start from a `Value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub path: NodePath,
    pub first: Span,
    pub second: Span,
}

/// Path → position of every node of the document.
#[derive(Debug, Clone, Default)]
pub struct Index {
    nodes: HashMap<NodePath, NodePos>,
    pub duplicates: Vec<DuplicateKey>,
    /// Where a second YAML document starts (`---` after the first): a stack file is one
    /// document, and serde's own error for this names no position.
    pub second_document: Option<Span>,
}

/// A YAML syntax error found while indexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

impl Index {
    pub fn build(source: &Source) -> Result<Index, SyntaxError> {
        let mut builder = Builder {
            source,
            index: Index::default(),
            stack: Vec::new(),
            ignore_depth: 0,
            documents: 0,
        };
        let mut parser = Parser::new_from_str(&source.text);
        // Every document is read (`multi`), so that a second one is found where it starts;
        // only the first is indexed.
        parser.load(&mut builder, true).map_err(|err| SyntaxError {
            span: Span::point(err.marker().line(), err.marker().col() + 1),
            message: err.info().to_owned(),
        })?;
        Ok(builder.index)
    }

    pub fn get(&self, path: &NodePath) -> Option<&NodePos> {
        self.nodes.get(path)
    }
}

enum Frame {
    Map {
        path: NodePath,
        /// The key just read, waiting for its value.
        pending_key: Option<(String, Span)>,
        seen: HashMap<String, Span>,
        /// A block mapping's start mark is where libyaml noticed it (after the first key);
        /// the first key's position is what a reader expects.
        fix_start: bool,
    },
    Seq {
        path: NodePath,
        next: usize,
    },
}

struct Builder<'a> {
    source: &'a Source,
    index: Index,
    stack: Vec<Frame>,
    /// Inside a complex (non-scalar) mapping key: its nodes have no path.
    ignore_depth: usize,
    /// Documents started so far; the nodes of any after the first are not indexed.
    documents: usize,
}

impl Builder<'_> {
    fn span_at(&self, mark: Marker, len: usize) -> Span {
        Span {
            line: mark.line(),
            col: mark.col() + 1,
            len: len.max(1),
        }
    }

    /// Width of a scalar as written on its line, so a caret can underline all of it.
    fn scalar_len(&self, mark: Marker, style: TScalarStyle, value: &str) -> usize {
        let Some(line) = self.source.line(mark.line()) else {
            return 1;
        };
        let rest: Vec<char> = line.chars().skip(mark.col()).collect();
        match style {
            TScalarStyle::Plain => {
                let text: String = rest.iter().collect();
                if !value.is_empty() && text.starts_with(value) {
                    value.chars().count()
                } else {
                    1
                }
            }
            TScalarStyle::SingleQuoted => {
                let mut i = 1;
                while i < rest.len() {
                    if rest[i] == '\'' {
                        if rest.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        return i + 1;
                    }
                    i += 1;
                }
                1
            }
            TScalarStyle::DoubleQuoted => {
                let mut i = 1;
                while i < rest.len() {
                    match rest[i] {
                        '\\' => i += 2,
                        '"' => return i + 1,
                        _ => i += 1,
                    }
                }
                1
            }
            _ => 1,
        }
    }

    fn node(&mut self, kind: YamlKind, value: Span, scalar: Option<&str>) {
        if self.ignore_depth > 0 {
            if matches!(kind, YamlKind::Mapping | YamlKind::Sequence) {
                self.ignore_depth += 1;
            }
            return;
        }
        let (path, key) = match self.stack.last_mut() {
            None => (NodePath::root(), None),
            Some(Frame::Seq { path, next }) => {
                let path = path.index(*next);
                *next += 1;
                (path, None)
            }
            Some(Frame::Map {
                path,
                pending_key,
                seen,
                fix_start,
            }) => match pending_key.take() {
                Some((key, key_span)) => (path.key(key), Some(key_span)),
                None => {
                    // This node is a key.
                    if *fix_start {
                        *fix_start = false;
                        if let Some(pos) = self.index.nodes.get_mut(path) {
                            pos.value = Span::point(value.line, value.col);
                        }
                    }
                    let key = match (kind, scalar) {
                        (YamlKind::Scalar, Some(text)) => text.to_owned(),
                        _ => {
                            // A complex key: give it a placeholder and skip its insides.
                            if matches!(kind, YamlKind::Mapping | YamlKind::Sequence) {
                                self.ignore_depth = 1;
                            }
                            "?".to_owned()
                        }
                    };
                    if let Some(first) = seen.get(&key) {
                        self.index.duplicates.push(DuplicateKey {
                            path: path.key(key.clone()),
                            first: *first,
                            second: value,
                        });
                    } else {
                        seen.insert(key.clone(), value);
                    }
                    *pending_key = Some((key, value));
                    return;
                }
            },
        };
        // The first occurrence wins; a duplicate is reported separately.
        self.index
            .nodes
            .entry(path.clone())
            .or_insert(NodePos { key, value, kind });
        match kind {
            YamlKind::Mapping => {
                let flow = self
                    .source
                    .line(value.line)
                    .and_then(|line| line.chars().nth(value.col - 1))
                    == Some('{');
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                    seen: HashMap::new(),
                    fix_start: !flow,
                });
            }
            YamlKind::Sequence => self.stack.push(Frame::Seq { path, next: 0 }),
            YamlKind::Scalar | YamlKind::Alias => {}
        }
    }

    fn end(&mut self) {
        if self.ignore_depth > 0 {
            self.ignore_depth -= 1;
            return;
        }
        self.stack.pop();
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if let Event::DocumentStart = event {
            self.documents += 1;
            if self.documents == 2 {
                self.index.second_document = Some(self.span_at(mark, 3));
            }
        }
        if self.documents > 1 {
            return;
        }
        match event {
            Event::Scalar(value, style, _, _) => {
                let len = self.scalar_len(mark, style, &value);
                let span = self.span_at(mark, len);
                self.node(YamlKind::Scalar, span, Some(&value));
            }
            Event::Alias(_) => {
                let span = self.span_at(mark, 1);
                self.node(YamlKind::Alias, span, None);
            }
            Event::MappingStart(..) => {
                let span = self.span_at(mark, 1);
                self.node(YamlKind::Mapping, span, None);
            }
            Event::SequenceStart(..) => {
                let span = self.span_at(mark, 1);
                self.node(YamlKind::Sequence, span, None);
            }
            Event::MappingEnd | Event::SequenceEnd => self.end(),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Finds the position of a path of one environment's merged document (or of the base
/// document when `env` is `None`). A value the environment overrides is shown where the
/// overlay sets it; anything else where the base document has it.
#[derive(Clone, Copy)]
pub struct Locator<'a> {
    source: &'a Source,
    index: &'a Index,
    env: Option<&'a str>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a Source, index: &'a Index, env: Option<&'a str>) -> Self {
        Locator { source, index, env }
    }

    /// The key of `path` (a mapping entry), or the nearest enclosing node that exists.
    pub fn key(&self, path: &NodePath) -> Option<Span> {
        let pos = self.find(path)?;
        Some(pos.key.unwrap_or(pos.value))
    }

    /// The value of `path`: the scalar itself; for a mapping or list, its key (a block
    /// mapping's own position is wherever its first key is, which reads as wrong).
    pub fn value(&self, path: &NodePath) -> Option<Span> {
        let pos = self.find(path)?;
        // A scalar found above `path` is the one-string shorthand of a list (`actions: s3:GetObject`).
        Some(match pos.kind {
            YamlKind::Scalar | YamlKind::Alias => pos.value,
            YamlKind::Mapping | YamlKind::Sequence => pos.key.unwrap_or(pos.value),
        })
    }

    /// The part `needle` of the scalar at `path` (a `${…}` reference inside a string),
    /// when it is written on the scalar's first line; else the whole value.
    pub fn value_part(&self, path: &NodePath, needle: &str) -> Option<Span> {
        let span = self.value(path)?;
        Some(self.part_of(span, needle).unwrap_or(span))
    }

    /// Where `needle` is written on `span`'s line, at or after `span`.
    pub fn part_of(&self, span: Span, needle: &str) -> Option<Span> {
        let line = self.source.line(span.line)?;
        let rest: String = line.chars().skip(span.col.saturating_sub(1)).collect();
        let byte = rest.find(needle)?;
        Some(Span {
            line: span.line,
            col: span.col + rest[..byte].chars().count(),
            len: needle.chars().count().max(1),
        })
    }

    /// The deepest node on `path` that exists, preferring the environment's overlay.
    fn find(&self, path: &NodePath) -> Option<NodePos> {
        let full = path.segs().len();
        let base = (0..=full)
            .rev()
            .find_map(|len| self.index.get(&path.prefix(len)).map(|pos| (len, *pos)));
        // The overlay's deepest node on the path, and whether the overlay replaced a
        // subtree on the way (a list or scalar: only mappings merge, see `merge`).
        let overlay = self.env.and_then(|env| {
            let root = NodePath::keys(&["environments", env]);
            let mut deepest = None;
            let mut replaced = false;
            for len in 1..=full {
                let Some(pos) = self.index.get(&NodePath::under(&root, &path.segs()[..len])) else {
                    break;
                };
                replaced |= pos.kind != YamlKind::Mapping;
                deepest = Some((len, *pos));
            }
            deepest.map(|found| (found, replaced))
        });
        let chosen = match (overlay, base) {
            (Some((found, true)), _) => found,
            (Some(((olen, opos), false)), Some((blen, bpos))) => {
                if olen >= blen {
                    (olen, opos)
                } else {
                    (blen, bpos)
                }
            }
            (Some((found, false)), None) | (None, Some(found)) => found,
            (None, None) => return None,
        };
        Some(chosen.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> (Source, Index) {
        let source = Source::new("t.yaml", text);
        let index = Index::build(&source).expect("test YAML parses");
        (source, index)
    }

    fn p(s: &[&str]) -> NodePath {
        NodePath::keys(s)
    }

    #[test]
    fn positions_of_keys_and_values() {
        let (_, index) = index("stack: x\nbuckets:\n  a:\n    name: \"foo\"\n    l: [1, 'two']\n");
        let name = index.get(&p(&["buckets", "a", "name"])).expect("indexed");
        assert_eq!(
            name.key,
            Some(Span {
                line: 4,
                col: 5,
                len: 4
            })
        );
        assert_eq!(
            name.value,
            Span {
                line: 4,
                col: 11,
                len: 5
            }
        );
        let two = index
            .get(&p(&["buckets", "a", "l"]).index(1))
            .expect("indexed");
        assert_eq!(
            two.value,
            Span {
                line: 5,
                col: 12,
                len: 5
            }
        );
        // A block mapping is placed at its first key.
        let a = index.get(&p(&["buckets", "a"])).expect("indexed");
        assert_eq!(a.value, Span::point(4, 5));
        assert_eq!(
            a.key,
            Some(Span {
                line: 3,
                col: 3,
                len: 1
            })
        );
    }

    #[test]
    fn duplicate_keys_are_found() {
        let (_, index) = index("a: 1\nb:\n  c: 1\n  c: 2\n");
        assert_eq!(
            index.duplicates,
            vec![DuplicateKey {
                path: p(&["b", "c"]),
                first: Span {
                    line: 3,
                    col: 3,
                    len: 1
                },
                second: Span {
                    line: 4,
                    col: 3,
                    len: 1
                },
            }]
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let err = Index::build(&Source::new("t", "a: [1\nb: 2\n")).expect_err("invalid");
        assert_eq!(err.span.line, 2);
    }

    #[test]
    fn locator_prefers_the_overlay() {
        let text = "\
buckets:
  a:
    retain: false
    lifecycle:
      - { id: x, prefix: p }
environments:
  prod:
    buckets:
      a:
        retain: true
        lifecycle:
          - { id: y }
";
        let (source, index) = index(text);
        let prod = Locator::new(&source, &index, Some("prod"));
        let dev = Locator::new(&source, &index, Some("dev"));
        let retain = p(&["buckets", "a", "retain"]);
        assert_eq!(prod.value(&retain).map(|s| s.line), Some(10));
        assert_eq!(dev.value(&retain).map(|s| s.line), Some(3));
        // The overlay replaced the list: a defaulted field of its item is placed in the overlay.
        let prefix = p(&["buckets", "a", "lifecycle"]).index(0).key("prefix");
        assert_eq!(prod.value(&prefix).map(|s| s.line), Some(12));
        assert_eq!(dev.value(&prefix).map(|s| (s.line, s.col)), Some((5, 26)));
        assert_eq!(
            dev.value_part(&p(&["buckets", "a", "lifecycle"]).index(0).key("id"), "x"),
            Some(Span {
                line: 5,
                col: 15,
                len: 1
            })
        );
    }

    #[test]
    fn path_display() {
        assert_eq!(p(&["a", "b"]).index(2).key("c").to_string(), "a.b[2].c");
    }
}
