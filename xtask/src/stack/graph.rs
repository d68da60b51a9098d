//! The dependency graph of one environment, from `${…}` references: a user whose policy
//! names `${buckets.source.arn}` depends on bucket `source`. Cycles are rejected by
//! `resolve`. Dependencies the deployer knows by itself (a function needs its role, a
//! trigger needs its function and bucket) are not edges here. Pure data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Kinds that can depend on something (parameters) or be depended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    Bucket,
    Parameter,
    User,
    Function,
    Queue,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Bucket => "bucket",
            NodeKind::Parameter => "parameter",
            NodeKind::User => "user",
            NodeKind::Function => "function",
            NodeKind::Queue => "queue",
        }
    }
}

/// A resource of the stack: kind + logical name (for parameters, the SSM name). Displays
/// like `resources::Address` (`bucket.source`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub kind: NodeKind,
    pub name: String,
}

impl Node {
    pub fn new(kind: NodeKind, name: impl Into<String>) -> Self {
        Node {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

/// Node → the nodes it depends on (must exist first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    deps: BTreeMap<Node, BTreeSet<Node>>,
}

impl DependencyGraph {
    pub fn add_node(&mut self, node: Node) {
        self.deps.entry(node).or_default();
    }

    /// `from` depends on `to`.
    pub fn add_edge(&mut self, from: Node, to: Node) {
        self.deps.entry(to.clone()).or_default();
        self.deps.entry(from).or_default().insert(to);
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.deps.keys()
    }

    /// What `node` depends on directly.
    pub fn dependencies(&self, node: &Node) -> impl Iterator<Item = &Node> {
        self.deps.get(node).into_iter().flatten()
    }

    /// Every node, dependencies before dependents; ties in name order, so the order is
    /// stable. `None` when there is a cycle (a resolved stack never has one).
    pub fn order(&self) -> Option<Vec<Node>> {
        let mut remaining: BTreeMap<&Node, usize> = self
            .deps
            .iter()
            .map(|(node, deps)| (node, deps.len()))
            .collect();
        let mut dependents: BTreeMap<&Node, Vec<&Node>> = BTreeMap::new();
        for (node, deps) in &self.deps {
            for dep in deps {
                dependents.entry(dep).or_default().push(node);
            }
        }
        let mut ready: BTreeSet<&Node> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(node, _)| *node)
            .collect();
        let mut order = Vec::with_capacity(self.deps.len());
        while let Some(node) = ready.pop_first() {
            order.push(node.clone());
            for dependent in dependents.get(node).into_iter().flatten() {
                if let Some(count) = remaining.get_mut(dependent) {
                    *count -= 1;
                    if *count == 0 {
                        ready.insert(dependent);
                    }
                }
            }
        }
        (order.len() == self.deps.len()).then_some(order)
    }

    /// A cycle as the list of its nodes, the first repeated at the end
    /// (`[function.f, user.u, function.f]`), or `None`.
    pub fn find_cycle(&self) -> Option<Vec<Node>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: BTreeMap<&Node, Mark> = BTreeMap::new();
        for start in self.deps.keys() {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative depth-first search: (node, its dependencies not yet explored).
            let mut stack: Vec<(&Node, Vec<&Node>)> =
                vec![(start, self.dependencies(start).collect())];
            marks.insert(start, Mark::Visiting);
            while let Some((node, pending)) = stack.last_mut() {
                let node = *node;
                match pending.pop() {
                    Some(next) => match marks.get(next) {
                        Some(Mark::Visiting) => {
                            let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                            let mut cycle: Vec<Node> =
                                stack[from..].iter().map(|(n, _)| (*n).clone()).collect();
                            cycle.push(next.clone());
                            return Some(cycle);
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(next, Mark::Visiting);
                            let mut deps: Vec<&Node> = self.dependencies(next).collect();
                            deps.reverse();
                            stack.push((next, deps));
                        }
                    },
                    None => {
                        marks.insert(node, Mark::Done);
                        stack.pop();
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(name: &str) -> Node {
        Node::new(NodeKind::Bucket, name)
    }
    fn user(name: &str) -> Node {
        Node::new(NodeKind::User, name)
    }
    fn function(name: &str) -> Node {
        Node::new(NodeKind::Function, name)
    }

    #[test]
    fn order_puts_dependencies_first() {
        let mut graph = DependencyGraph::default();
        graph.add_edge(user("a"), bucket("source"));
        graph.add_edge(function("strip"), bucket("source"));
        graph.add_edge(function("strip"), bucket("destination"));
        graph.add_node(user("b"));
        let order = graph.order().expect("acyclic");
        let names: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "bucket.destination",
                "bucket.source",
                "user.a",
                "user.b",
                "function.strip"
            ]
        );
        assert_eq!(graph.find_cycle(), None);
        assert_eq!(
            graph.dependencies(&user("a")).collect::<Vec<_>>(),
            vec![&bucket("source")]
        );
    }

    #[test]
    fn cycles_are_found() {
        let mut graph = DependencyGraph::default();
        graph.add_edge(user("a"), bucket("x"));
        graph.add_edge(function("f"), user("u"));
        graph.add_edge(user("u"), function("f"));
        assert_eq!(graph.order(), None);
        assert_eq!(
            graph.find_cycle(),
            Some(vec![user("u"), function("f"), user("u")])
        );
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let mut graph = DependencyGraph::default();
        graph.add_edge(bucket("a"), bucket("a"));
        assert_eq!(graph.find_cycle(), Some(vec![bucket("a"), bucket("a")]));
    }
}
