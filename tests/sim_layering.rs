//! The sandbox speaks bytes on the wire only: it must not reach into the device engine, the
//! client layer, the client's group operations or the gateway, or it would stop being an
//! independent test peer (a limit or rule shared with the client looks right on both sides even
//! when it is wrong).
//!
//! Inside the sandbox, modules import each other in one direction only: a ring (`shared` using
//! `conn`'s type while `conn` uses `shared`) is how a simulator grows into one tangled module.

// A panic in a test is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The name `mod.rs` goes by in the graph: the facade, `crate::sim` itself.
const FACADE: &str = "mod";

#[test]
fn sim_does_not_use_the_engine_the_client_ops_or_http() {
    let mut checked = 0;
    for (path, text) in sim_sources() {
        for banned in [
            "crate::engine",
            "crate::client",
            "crate::ops",
            "crate::http",
            "wuts::engine",
            "wuts::client",
            "wuts::ops",
            "wuts::http",
        ] {
            assert!(!text.contains(banned), "{path} uses {banned}");
        }
        checked += 1;
    }
    assert!(checked > 5);
}

#[test]
fn sim_modules_import_each_other_without_cycles() {
    let sources: BTreeMap<String, String> = sim_sources()
        .into_iter()
        .map(|(path, text)| (module_name(&path), text))
        .collect();
    let names: BTreeSet<&str> = sources.keys().map(String::as_str).collect();
    let graph: BTreeMap<&str, BTreeSet<String>> = sources
        .iter()
        .map(|(name, text)| (name.as_str(), references(name, text, &names)))
        .collect();
    // The parser sees the imports it must see; otherwise an empty graph would pass.
    for (from, to) in [
        ("conn", "shared"),
        ("shared", "state"),
        ("server", "control"),
    ] {
        assert!(
            graph[from].contains(to),
            "{from} -> {to} not found: {graph:#?}"
        );
    }
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "src/sim has import cycles:\n{}\ngraph: {graph:#?}",
        cycles
            .iter()
            .map(|c| format!("  {}", c.join(" -> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_cycle_finder_sees_rings_and_the_parser_sees_imports() {
    let names: BTreeSet<&str> = ["mod", "a", "b", "c"].into();
    let src = r#"
        // use super::c; (a comment, not an import)
        use super::{b, Error};
        use crate::sim::c::{X, Y};
        const URL: &str = "use super::c"; // nor is a string
        #[cfg(test)]
        mod tests {
            use super::*;
        }
    "#;
    let refs = references("a", src, &names);
    assert_eq!(refs, ["b", "c", "mod"].map(String::from).into());
    let facade = references("mod", "mod a;\nuse a::X;\npub use b::{Y};\n", &names);
    assert_eq!(facade, ["a", "b"].map(String::from).into());

    let ring: BTreeMap<&str, BTreeSet<String>> = [
        ("a", ["b".to_owned()].into()),
        ("b", ["c".to_owned()].into()),
        ("c", ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(cycles(&ring), [vec!["a", "b", "c", "a"]]);
    let chain: BTreeMap<&str, BTreeSet<String>> = [
        ("a", ["b".to_owned(), "c".to_owned()].into()),
        ("b", ["c".to_owned()].into()),
        ("c", BTreeSet::new()),
    ]
    .into();
    assert!(cycles(&chain).is_empty());
}

/// Every `src/sim/*.rs` file with its text, and each directory module (`src/sim/groups/`) as
/// one module named after the directory: its files' `super::super::X` name sibling `X`, and
/// their `super::X` (the directory's own files) are internal, so they are hidden.
fn sim_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
    let mut out: Vec<(String, String)> = Vec::new();
    for path in fs::read_dir(&dir)
        .expect("src/sim")
        .map(|e| e.expect("entry").path())
    {
        if path.extension().is_some_and(|x| x == "rs") {
            let text = fs::read_to_string(&path).expect("source");
            out.push((path.display().to_string(), text));
        } else if path.is_dir() {
            let mut text = String::new();
            let mut files: Vec<_> = fs::read_dir(&path)
                .expect("module directory")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect();
            files.sort();
            for file in files {
                let source = fs::read_to_string(&file).expect("source");
                // Only the non-test part: a child's tests use `super::` for itself.
                let own = source
                    .find("#[cfg(test)]")
                    .map_or(source.as_str(), |i| &source[..i]);
                text.push_str(
                    &own.replace("super::super::", "\u{0}")
                        .replace("super::", "self::")
                        .replace('\u{0}', "super::"),
                );
                text.push('\n');
            }
            out.push((format!("{}.rs", path.display()), text));
        }
    }
    out.sort();
    out
}

/// `src/sim/conn.rs` -> `conn`; `src/sim/mod.rs` -> [`FACADE`].
fn module_name(path: &str) -> String {
    let stem = Path::new(path).file_stem().expect("file name");
    stem.to_string_lossy().into_owned()
}

/// The sibling modules `module`'s source refers to (comments and strings aside). In a child,
/// `super::X` and `crate::sim::X` name module `X`, or an item of the facade when `X` is not a
/// module; the `#[cfg(test)]` part's `super::` is the file itself. In the facade, `X::` names
/// child `X` (`mod X;` alone is not a use).
fn references(module: &str, source: &str, names: &BTreeSet<&str>) -> BTreeSet<String> {
    let code = code_only(source);
    let mut refs = BTreeSet::new();
    let mut add = |first: &str| {
        let target = if names.contains(first) { first } else { FACADE };
        if target != module {
            refs.insert(target.to_owned());
        }
    };
    if module == FACADE {
        for (at, _) in code.match_indices("::") {
            let before = &code[..at];
            let start = before
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let word = &before[start..];
            let qualified = before[..start].ends_with("::");
            if !qualified && names.contains(word) {
                add(word);
            }
        }
        return refs;
    }
    let own = code
        .find("#[cfg(test)]")
        .map_or(code.as_str(), |i| &code[..i]);
    for (text, prefix) in [
        (own, "super::"),
        (code.as_str(), "crate::sim::"),
        (code.as_str(), "super::super::"),
    ] {
        for (at, _) in text.match_indices(prefix) {
            let before_ok = !text[..at].ends_with("::");
            if before_ok {
                for first in first_segments(&text[at + prefix.len()..]) {
                    if first != "super" {
                        add(&first);
                    }
                }
            }
        }
    }
    refs
}

/// The first path segment of each path at the start of `rest`: `x::y` gives `x`;
/// `{a, b::c, self}` gives `a`, `b`, and the facade for `self`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*')
            .collect()
    };
    let rest = rest.trim_start();
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                item_start = false;
                let first = ident(&group[i..]);
                out.push(if first == "self" {
                    FACADE.to_owned()
                } else {
                    first
                });
            }
            _ => {}
        }
    }
    out
}

/// `source` with comments and the insides of string and char literals blanked (line breaks
/// kept), so only code is searched.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && !prev_ident && matches!(next, Some('"' | '#')) {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.push(' ');
            i += 2 + hashes;
            while i < chars.len() && !chars[i..].starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            i += close.len();
            out.push(' ');
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            out.push_str("  ");
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A plain char literal ('"', '{'); otherwise a lifetime, which is code.
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every cycle a depth-first walk finds, each as the path from a module back to itself.
fn cycles(graph: &BTreeMap<&str, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<&str, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        marks.insert(node.to_owned(), Mark::OnPath);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::New) {
                Mark::New => visit(next, graph, marks, path, found),
                Mark::OnPath => {
                    let from = path.iter().position(|m| m == next).expect("on the path");
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next.clone());
                    found.push(cycle);
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        if marks.get(*node).copied().unwrap_or(Mark::New) == Mark::New {
            visit(node, graph, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}
