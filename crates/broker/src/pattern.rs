//! Destination patterns and the subscription index.
//!
//! A destination is split into segments by a configurable separator (`/` by default, `.` for
//! RabbitMQ-style names). In a subscription pattern a segment that is exactly `*` matches one
//! segment, and a segment that is exactly `**` matches any number of segments (zero included).
//! Any other segment matches itself only.
//!
//! [`Index`] stores every pattern in a trie of segments and matches a destination by walking the
//! trie as a non-deterministic automaton: the set of live trie nodes advances one segment at a
//! time, so the cost of a match is bounded by `segments x live nodes`, never by the number of
//! subscriptions, and pathological patterns (`**/**/**`) cannot blow up.

use std::collections::HashMap;

/// The wildcard that matches exactly one segment.
pub const ONE: &str = "*";
/// The wildcard that matches any number of segments, zero included.
pub const ANY: &str = "**";

/// Does `pattern` contain a wildcard segment?
pub fn is_pattern(pattern: &str, sep: char) -> bool {
    pattern.split(sep).any(|s| s == ONE || s == ANY)
}

/// Does `destination` match `pattern` (both split by `sep`)?
///
/// The same automaton as [`Index`], for one pattern (used for per-session subscriptions).
pub fn matches(pattern: &str, destination: &str, sep: char) -> bool {
    let pat: Vec<&str> = normalized(pattern, sep).collect();
    // live[i] = the pattern prefix of length i matches the destination prefix consumed so far.
    let mut live = vec![false; pat.len() + 1];
    live[0] = true;
    close(&pat, &mut live);
    for seg in destination.split(sep) {
        let mut next = vec![false; pat.len() + 1];
        for i in 0..pat.len() {
            if !live[i] {
                continue;
            }
            match pat[i] {
                ANY => {
                    // `**` consumes this segment and stays.
                    next[i] = true;
                }
                ONE => next[i + 1] = true,
                lit if lit == seg => next[i + 1] = true,
                _ => {}
            }
        }
        close(&pat, &mut next);
        if !next.iter().any(|&b| b) {
            return false;
        }
        live = next;
    }
    live[pat.len()]
}

/// Epsilon closure: a `**` may match zero segments.
fn close(pat: &[&str], live: &mut [bool]) {
    for i in 0..pat.len() {
        if live[i] && pat[i] == ANY {
            live[i + 1] = true;
        }
    }
}

/// Splits a pattern into segments, collapsing runs of `**` into one (they match the same set).
fn normalized(pattern: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut prev_any = false;
    pattern.split(sep).filter(move |s| {
        let any = *s == ANY;
        let keep = !(any && prev_any);
        prev_any = any;
        keep
    })
}

type NodeId = usize;

#[derive(Debug, Default)]
struct Node<K> {
    literal: HashMap<Box<str>, NodeId>,
    one: Option<NodeId>,
    any: Option<NodeId>,
    /// Is this node the target of a `**` edge (then it loops on every segment)?
    is_any: bool,
    parent: Option<(NodeId, Edge)>,
    keys: Vec<K>,
}

#[derive(Debug, Clone)]
enum Edge {
    Literal(Box<str>),
    One,
    Any,
}

/// A trie of subscription patterns, each pattern holding the keys subscribed with it.
///
/// Keys are compared with `PartialEq`; the caller keeps them unique per pattern.
#[derive(Debug)]
pub struct Index<K> {
    sep: char,
    nodes: Vec<Node<K>>,
    free: Vec<NodeId>,
    /// Scratch for matching: the generation mark of each node.
    marks: Vec<u32>,
    generation: u32,
    len: usize,
}

impl<K: Clone + PartialEq> Index<K> {
    /// An empty index whose patterns and destinations are split by `sep`.
    pub fn new(sep: char) -> Self {
        Self {
            sep,
            nodes: vec![Node::<K>::blank()],
            free: Vec::new(),
            marks: vec![0],
            generation: 0,
            len: 0,
        }
    }

    /// The number of keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The number of trie nodes in use (for tests of pruning).
    #[cfg(test)]
    pub fn nodes_in_use(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Is the index empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `key` under `pattern`.
    pub fn insert(&mut self, pattern: &str, key: K) {
        let mut node = 0;
        let sep = self.sep;
        for seg in normalized(pattern, sep) {
            node = self.child(node, seg);
        }
        self.nodes[node].keys.push(key);
        self.len += 1;
    }

    /// Removes `key` from `pattern`; returns whether it was there. Empty branches are pruned.
    pub fn remove(&mut self, pattern: &str, key: &K) -> bool {
        let mut node = 0;
        for seg in normalized(pattern, self.sep) {
            let n = &self.nodes[node];
            let next = match seg {
                ONE => n.one,
                ANY => n.any,
                lit => n.literal.get(lit).copied(),
            };
            match next {
                Some(next) => node = next,
                None => return false,
            }
        }
        let keys = &mut self.nodes[node].keys;
        let Some(pos) = keys.iter().position(|k| k == key) else {
            return false;
        };
        keys.swap_remove(pos);
        self.len -= 1;
        self.prune(node);
        true
    }

    /// Calls `f` with every key whose pattern matches `destination`, each key once.
    pub fn for_each_match(&mut self, destination: &str, mut f: impl FnMut(&K)) {
        let mut live: Vec<NodeId> = Vec::with_capacity(4);
        let mut next: Vec<NodeId> = Vec::with_capacity(4);
        self.bump();
        self.push_closed(&mut live, 0);
        for seg in destination.split(self.sep) {
            self.bump();
            next.clear();
            for &id in &live {
                let n = &self.nodes[id];
                let (lit, one, is_any) = (n.literal.get(seg).copied(), n.one, n.is_any);
                if let Some(c) = lit {
                    self.push_closed(&mut next, c);
                }
                if let Some(c) = one {
                    self.push_closed(&mut next, c);
                }
                if is_any {
                    self.push_closed(&mut next, id);
                }
            }
            std::mem::swap(&mut live, &mut next);
            if live.is_empty() {
                return;
            }
        }
        for id in live {
            for k in &self.nodes[id].keys {
                f(k);
            }
        }
    }

    /// Collects the keys matching `destination` (each once).
    pub fn matches(&mut self, destination: &str) -> Vec<K> {
        let mut out = Vec::new();
        self.for_each_match(destination, |k| out.push(k.clone()));
        out
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Pushes `id` (once per generation) and, if it has a `**` child, that child too.
    fn push_closed(&mut self, set: &mut Vec<NodeId>, id: NodeId) {
        let mut cur = Some(id);
        while let Some(id) = cur {
            if self.marks[id] == self.generation {
                return;
            }
            self.marks[id] = self.generation;
            set.push(id);
            cur = self.nodes[id].any;
        }
    }

    fn child(&mut self, node: NodeId, seg: &str) -> NodeId {
        let existing = match seg {
            ONE => self.nodes[node].one,
            ANY => self.nodes[node].any,
            lit => self.nodes[node].literal.get(lit).copied(),
        };
        if let Some(c) = existing {
            return c;
        }
        let edge = match seg {
            ONE => Edge::One,
            ANY => Edge::Any,
            lit => Edge::Literal(lit.into()),
        };
        let mut fresh = Node::blank();
        fresh.is_any = matches!(edge, Edge::Any);
        fresh.parent = Some((node, edge.clone()));
        let id = if let Some(id) = self.free.pop() {
            self.nodes[id] = fresh;
            id
        } else {
            self.nodes.push(fresh);
            self.marks.push(0);
            self.nodes.len() - 1
        };
        match edge {
            Edge::One => self.nodes[node].one = Some(id),
            Edge::Any => self.nodes[node].any = Some(id),
            Edge::Literal(l) => {
                self.nodes[node].literal.insert(l, id);
            }
        }
        id
    }

    fn prune(&mut self, mut node: NodeId) {
        while node != 0 {
            let n = &self.nodes[node];
            if !n.keys.is_empty() || !n.literal.is_empty() || n.one.is_some() || n.any.is_some() {
                return;
            }
            let Some((parent, edge)) = self.nodes[node].parent.take() else {
                return;
            };
            match edge {
                Edge::One => self.nodes[parent].one = None,
                Edge::Any => self.nodes[parent].any = None,
                Edge::Literal(l) => {
                    self.nodes[parent].literal.remove(&l);
                }
            }
            self.nodes[node] = Node::blank();
            self.free.push(node);
            node = parent;
        }
    }
}

impl<K> Node<K> {
    fn blank() -> Self {
        Self {
            literal: HashMap::new(),
            one: None,
            any: None,
            is_any: false,
            parent: None,
            keys: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (pattern, destination, separator, expected)
    const CASES: &[(&str, &str, char, bool)] = &[
        ("/topic/a", "/topic/a", '/', true),
        ("/topic/a", "/topic/b", '/', false),
        ("/topic/a", "/topic/a/b", '/', false),
        ("/topic/*", "/topic/a", '/', true),
        ("/topic/*", "/topic/a/b", '/', false),
        ("/topic/*", "/topic", '/', false),
        ("/topic/*/x", "/topic/a/x", '/', true),
        ("/topic/*/x", "/topic/a/y", '/', false),
        ("/topic/**", "/topic", '/', true),
        ("/topic/**", "/topic/a", '/', true),
        ("/topic/**", "/topic/a/b/c", '/', true),
        ("/topic/**", "/queue/a", '/', false),
        ("/topic/**/x", "/topic/x", '/', true),
        ("/topic/**/x", "/topic/a/b/x", '/', true),
        ("/topic/**/x", "/topic/a/b/y", '/', false),
        ("/topic/**/**/x", "/topic/a/x", '/', true),
        ("**", "/anything/at/all", '/', true),
        ("/topic/a*", "/topic/ab", '/', false),
        ("/topic/a.*", "/topic/a.b", '.', true),
        ("/topic/a.*", "/topic/a.b.c", '.', false),
        ("/topic/a.**", "/topic/a.b.c", '.', true),
        ("/topic/a.**", "/topic/a", '.', true),
        // Wildcards are whole segments only: with `.`, "/topic/*" is one literal segment.
        ("/topic/*.b", "/topic/x.b", '.', false),
        ("/topic.*.b", "/topic.x.b", '.', true),
        ("/topic/a/*", "/topic/a/b", '.', false),
        ("", "", '/', true),
        ("/topic/a/", "/topic/a/", '/', true),
        ("/topic/a/", "/topic/a", '/', false),
    ];

    #[test]
    fn pattern_table() {
        for &(pattern, dest, sep, want) in CASES {
            assert_eq!(
                matches(pattern, dest, sep),
                want,
                "{pattern} ~ {dest} ({sep})"
            );
            let mut idx = Index::new(sep);
            idx.insert(pattern, 1u32);
            assert_eq!(
                idx.matches(dest) == vec![1],
                want,
                "index: {pattern} ~ {dest}"
            );
        }
    }

    #[test]
    fn is_pattern_table() {
        assert!(is_pattern("/topic/*", '/'));
        assert!(is_pattern("/topic/**/x", '/'));
        assert!(!is_pattern("/topic/a*", '/'));
        assert!(!is_pattern("/topic/a.b", '/'));
        assert!(is_pattern("/topic/a.*", '.'));
    }

    #[test]
    fn each_key_once_and_prune() {
        let mut idx = Index::new('/');
        idx.insert("/t/**", 1);
        idx.insert("/t/**/**", 2);
        idx.insert("/t/*/b", 3);
        idx.insert("/t/a/b", 4);
        idx.insert("/t/a/b", 5);
        let mut got = idx.matches("/t/a/b");
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(idx.len(), 5);
        for (p, k) in [("/t/**", 1), ("/t/**/**", 2), ("/t/*/b", 3), ("/t/a/b", 4)] {
            assert!(idx.remove(p, &k));
            assert!(!idx.remove(p, &k));
        }
        assert_eq!(idx.matches("/t/a/b"), vec![5]);
        assert!(idx.remove("/t/a/b", &5));
        assert_eq!(idx.len(), 0);
        assert_eq!(idx.nodes_in_use(), 1, "empty branches pruned");
        // Freed nodes are reused.
        idx.insert("/x/y", 9);
        assert_eq!(idx.matches("/x/y"), vec![9]);
    }

    /// Naive backtracking reference matcher.
    fn naive(p: &[&str], d: &[&str]) -> bool {
        match p.split_first() {
            None => d.is_empty(),
            Some((&"**", rest)) => (0..=d.len()).any(|k| naive(rest, &d[k..])),
            Some((&"*", rest)) => !d.is_empty() && naive(rest, &d[1..]),
            Some((lit, rest)) => d.first() == Some(lit) && naive(rest, &d[1..]),
        }
    }

    fn seg() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string()),
            Just("*".to_string()),
            Just("**".to_string()),
        ]
    }

    proptest! {
        /// The trie agrees with the one-pattern automaton for every pattern set.
        #[test]
        fn index_agrees_with_matches(
            pats in prop::collection::vec(prop::collection::vec(seg(), 0..5), 1..12),
            dests in prop::collection::vec(prop::collection::vec("[abc]", 0..6), 1..8),
        ) {
            let pats: Vec<String> = pats.iter().map(|p| p.join("/")).collect();
            let mut idx = Index::new('/');
            for (i, p) in pats.iter().enumerate() {
                idx.insert(p, i);
            }
            for d in &dests {
                let d = d.join("/");
                let mut got = idx.matches(&d);
                got.sort_unstable();
                let want: Vec<usize> = pats
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        let pv: Vec<&str> = p.split('/').collect();
                        let dv: Vec<&str> = d.split('/').collect();
                        let want = naive(&pv, &dv);
                        assert_eq!(matches(p, &d, '/'), want, "{p} ~ {d}");
                        want
                    })
                    .map(|(i, _)| i)
                    .collect();
                prop_assert_eq!(got, want, "dest {}", d);
            }
            for (i, p) in pats.iter().enumerate() {
                prop_assert!(idx.remove(p, &i));
            }
            prop_assert_eq!(idx.nodes_in_use(), 1);
        }
    }
}
