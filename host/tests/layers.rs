//! The host's modules form layers: each imports only the layers below it,
//! so a change low down never has to fight code above it. This reads every
//! `crate::<module>` reference in `host/src` (outside comments) and fails
//! when the guest-facing layers (`api`, `runtime`) name anything above them,
//! or when any two top-level modules depend on each other, directly or
//! through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules the guest-facing layers must never reach.
const ABOVE_THE_RUNTIME: &[&str] = &["host", "registry", "http", "admin", "tools"];

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file under `src` belongs to (`None` for the
/// crate root and the binary).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Every `crate::<name>` in code (not comments) of `text`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// Module -> modules it references, plus the file behind each edge.
fn dependency_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in crate_references(&text) {
            if target != module {
                edges.entry(target).or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

/// A path from `from` back to `from`, if there is one.
fn cycle_through(
    graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    from: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flat_map(|edges| edges.keys()) {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn api_and_runtime_never_name_the_layers_above_them() {
    let graph = dependency_graph();
    let mut offences = Vec::new();
    for low in ["api", "runtime"] {
        for (target, file) in graph.get(low).into_iter().flatten() {
            if ABOVE_THE_RUNTIME.contains(&target.as_str()) {
                offences.push(format!("{} uses crate::{target}", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn no_two_top_level_modules_depend_on_each_other() {
    let graph = dependency_graph();
    assert!(graph.len() > 5, "found only {:?}", graph.keys());
    for module in graph.keys() {
        if let Some(cycle) = cycle_through(&graph, module) {
            let edges: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    format!(
                        "{} -> {} ({})",
                        pair[0],
                        pair[1],
                        graph[&pair[0]][&pair[1]].display()
                    )
                })
                .collect();
            panic!("import cycle: {}", edges.join(", "));
        }
    }
}

#[test]
fn the_check_sees_references_and_cycles() {
    assert_eq!(
        crate_references("use crate::api::x; // crate::host\nlet a = crate::kv::get();"),
        BTreeSet::from(["api".to_string(), "kv".to_string()])
    );
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    graph
        .entry("a".into())
        .or_default()
        .insert("b".into(), PathBuf::from("a.rs"));
    graph
        .entry("b".into())
        .or_default()
        .insert("c".into(), PathBuf::from("b.rs"));
    assert_eq!(cycle_through(&graph, "a"), None);
    graph
        .entry("c".into())
        .or_default()
        .insert("a".into(), PathBuf::from("c.rs"));
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
