//! The server crate's layering, checked: every top-level module may use only modules of its own
//! layer or below (`ARCHITECTURE.md`, "Layers inside the server"), and no two top-level modules
//! import each other, directly or around a circle. Imports inside one module are its own business.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Lowest layer first. Adding a module: put it in the lowest layer its imports allow.
const LAYERS: &[&[&str]] = &[
    // Building blocks: no knowledge of HTTP, sockets or authorization decisions.
    &[
        "config",
        "metrics",
        "telemetry",
        "auth",
        "web",
        "warehouse",
        "file_store",
        "cluster",
        "recent_versions",
    ],
    // The live documents.
    &["rooms"],
    // Who is calling and what they may do (transport-neutral).
    &["access"],
    // The HTTP toolkit: one error type, extractors, validation, pagination, limits, mail.
    &[
        "error",
        "extract",
        "validate",
        "pagination",
        "rate_limit",
        "mailer",
    ],
    // What every handler can reach.
    &["state"],
    // Transports: HTTP routes and live sockets.
    &["http_caller", "http_forward", "routes", "live"],
    // Assembly: the router and its documentation.
    &["openapi", "app"],
    // The process.
    &["node", "startup", "main", "lib"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is not in LAYERS (tests/layering.rs)"))
}

/// Top-level module name → the other top-level modules its non-test code names as `crate::x`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("inside src");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let text = fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = graph.entry(first.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != first {
                deps.insert(name);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn modules_only_use_their_own_layer_or_below() {
    let mut violations = Vec::new();
    for (module, deps) in imports() {
        for dep in deps {
            if layer_of(&dep) > layer_of(&module) {
                violations.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(violations.is_empty(), "upward imports: {violations:?}");
}

#[test]
fn no_import_circle_between_modules() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut circle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            circle.push(node.to_string());
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(dep, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let circle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "import circle: {circle:?}");
    }
}
