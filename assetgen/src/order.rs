//! Build order: a file is hashed only after every file it references, because its rewritten
//! body contains their hashed names.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::BuildError;

/// The files of `deps` (file → files it references) in an order where each file comes after all
/// of its dependencies, or the files of a cycle. Ties are broken by path, so the order is stable.
pub fn build_order(deps: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, BuildError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let mut order = Vec::with_capacity(deps.len());
    for root in deps.keys() {
        if marks.contains_key(root.as_str()) {
            continue;
        }
        // Iterative depth-first search; `stack` is the current path, with each node's pending deps.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(root, children(deps, root))];
        marks.insert(root, Mark::Visiting);
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                None => {
                    marks.insert(node, Mark::Done);
                    order.push(node.to_string());
                    stack.pop();
                }
                Some(next) => match marks.get(next) {
                    Some(Mark::Done) => {}
                    Some(Mark::Visiting) => {
                        let start = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[start..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(next.to_string());
                        return Err(BuildError::Cycle(cycle));
                    }
                    None => {
                        marks.insert(next, Mark::Visiting);
                        stack.push((next, children(deps, next)));
                    }
                },
            }
        }
    }
    Ok(order)
}

/// Dependencies of `node` in reverse path order, so popping visits them in path order.
fn children<'a>(deps: &'a BTreeMap<String, BTreeSet<String>>, node: &str) -> Vec<&'a str> {
    deps.get(node)
        .map(|d| d.iter().rev().map(String::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn dependencies_come_first() {
        let deps = graph(&[
            ("/index.html", &["/css/app.css", "/img/logo.svg"]),
            ("/css/app.css", &["/css/base.css", "/img/logo.svg"]),
            ("/css/base.css", &["/img/bg.svg"]),
            ("/img/logo.svg", &[]),
            ("/img/bg.svg", &[]),
        ]);
        let order = build_order(&deps).unwrap();
        let at = |p: &str| order.iter().position(|o| o == p).unwrap();
        assert_eq!(order.len(), 5);
        for (from, to) in &deps {
            for dep in to {
                assert!(at(dep) < at(from), "{dep} before {from} in {order:?}");
            }
        }
        assert_eq!(order, build_order(&deps).unwrap(), "stable");
    }

    #[test]
    fn cycles_name_their_files() {
        let deps = graph(&[
            ("/a.css", &["/b.css"]),
            ("/b.css", &["/c.css"]),
            ("/c.css", &["/a.css"]),
            ("/d.css", &[]),
        ]);
        match build_order(&deps) {
            Err(BuildError::Cycle(files)) => {
                assert_eq!(files, ["/a.css", "/b.css", "/c.css", "/a.css"])
            }
            other => panic!("{other:?}"),
        }
        let selfish = graph(&[("/a.css", &["/a.css"])]);
        assert!(
            matches!(build_order(&selfish), Err(BuildError::Cycle(f)) if f == ["/a.css", "/a.css"])
        );
    }
}
