//! The house rules of `src/` (README, "Project layout"), checked on the source itself:
//! - no import cycles between modules: a module's `use` and `crate::`/`super::` paths are its
//!   arrows (comments, `mod` declarations and unit tests are not);
//! - the paths stay apart: neither reaches into the other;
//! - nothing shared (`aws`, `http`, `env`, `outcome`, `metrics`, `monitron`, `event`, `broker`,
//!   `trace`, `trend`) knows a path;
//! - a folder module uses `mod.rs`, and no folder holds only a `tests.rs`;
//! - `lib.rs` opens with the map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/processor/s4/send.rs` → `processor::s4::send`; `mod.rs` names its folder.
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" // ").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![
            tree.split(" as ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let close = tree.rfind('}').filter(|c| *c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.to_string()
            } else {
                format!("{prefix}::{p}")
            }
        })
        .collect()
}

/// The paths a module names: its `use` trees and the `crate::`/`super::` paths in its code.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let lines: Vec<&str> = code.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(tree) = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
        else {
            continue;
        };
        let mut statement = tree.to_string();
        let mut next = i + 1;
        while !statement.contains(';') && next < lines.len() {
            statement.push_str(lines[next]);
            next += 1;
        }
        let statement = statement.split(';').next().unwrap_or_default();
        paths.extend(expand(statement));
    }
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            paths.push(tail[..len].trim_end_matches(':').to_string());
            rest = &tail[len..];
        }
    }
    paths
}

/// The module a path from `module` lands in (the deepest known module it names), if any.
fn target(path: &str, module: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<String> = Vec::new();
    let mut parts = path.split("::").filter(|s| !s.is_empty()).peekable();
    match parts.peek().copied() {
        Some("crate") => {
            parts.next();
        }
        Some("super") => {
            segments = module.split("::").map(str::to_string).collect();
            while parts.peek() == Some(&"super") {
                parts.next();
                segments.pop();
            }
        }
        Some("self") => {
            parts.next();
            segments = module.split("::").map(str::to_string).collect();
        }
        Some(first) => {
            // A child module of this one, named without a prefix (`use send::Transport`).
            let child = if module.is_empty() {
                first.to_string()
            } else {
                format!("{module}::{first}")
            };
            if !modules.contains(&child) {
                return None;
            }
            segments = module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        None => return None,
    }
    let mut found = None;
    for part in parts {
        segments.push(part.to_string());
        let name = segments.join("::");
        if modules.contains(&name) {
            found = Some(name);
        } else {
            break;
        }
    }
    found.filter(|t| t != module)
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let files: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| module_of(&f).map(|m| (m, f)))
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        let targets: BTreeSet<String> = named_paths(&code(&text))
            .iter()
            .filter_map(|p| target(p, module, &modules))
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// Every cycle's modules, found by a depth-first search.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            found.push(stack[at..].to_vec());
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, found);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn modules_import_without_cycles() {
    let edges = graph();
    assert!(edges.len() > 60, "{} modules", edges.len());
    assert!(
        edges["processor::s4"].contains("processor::s4::request"),
        "the graph sees imports: {:?}",
        edges["processor::s4"]
    );
    let found = cycles(&edges);
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

#[test]
fn the_two_paths_stay_apart_and_shared_parts_know_neither() {
    let edges = graph();
    let mut wrong = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            let crosses = (from.starts_with("forwarder") && to.starts_with("processor"))
                || (from.starts_with("processor") && to.starts_with("forwarder"));
            let shared = [
                "aws", "http", "env", "outcome", "metrics", "monitron", "event", "broker", "trace",
                "trend",
            ]
            .iter()
            .any(|s| from == s || from.starts_with(&format!("{s}::")));
            let knows_a_path = to.starts_with("forwarder") || to.starts_with("processor");
            if crosses || (shared && knows_a_path) {
                wrong.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that should not be: {wrong:#?}");
}

#[test]
fn folders_use_mod_rs_and_hold_more_than_tests() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut problems = Vec::new();
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    for dir in &dirs {
        if dir == &src() || dir.ends_with("bin") {
            continue;
        }
        let names: Vec<String> = files
            .iter()
            .filter(|f| f.parent() == Some(dir.as_path()))
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if !names.iter().any(|n| n == "mod.rs") {
            problems.push(format!("{} has no mod.rs: {names:?}", dir.display()));
        }
        if names == ["tests.rs"] {
            problems.push(format!("{} holds only a tests.rs", dir.display()));
        }
        if dir.with_extension("rs").exists() {
            problems.push(format!("{} has a sibling .rs file", dir.display()));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn lib_rs_opens_with_the_map() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    assert!(lib.contains("//! # Layout"), "lib.rs has no layout doc");
    for part in [
        "[`forwarder`]",
        "[`processor`]",
        "[`aws`]",
        "[`http`]",
        "[`env`]",
        "[`outcome`]",
    ] {
        assert!(lib.contains(part), "the map names {part}");
    }
}

#[test]
fn the_checker_finds_a_cycle_and_expands_use_trees() {
    assert_eq!(
        expand("crate::a::{b, c::{d, self}}"),
        vec!["crate::a::b", "crate::a::c::d", "crate::a::c"]
    );
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
}
