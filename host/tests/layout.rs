//! The layout rules of the host crate and of the format crate, checked on their sources: no
//! module imports a module that imports it back (directly or through others), nor does any
//! top-level folder; `agent/` is the agent as a dependency and imports nothing of the plugin's;
//! and `plugin/ffi.rs` is the only file with `extern "C"` code (the plugin's exports; other
//! files may name the types of the agent's functions they call).
//!
//! `cargo test -p out-wasm --test layout -- --nocapture` prints each crate's layers, the
//! modules that import only modules of the layers below them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the crate's src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` for `src/a/b.rs`, `crate` for `src/lib.rs`.
fn module_of(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).expect("under src").with_extension("");
    let rel = rel.to_string_lossy().replace('/', "::");
    if rel == "lib" { "crate".to_owned() } else { format!("crate::{rel}") }
}

/// The code of a file without its comments and its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The crate's modules each file refers to by a `crate::` path (the longest module a path
/// names), without its own submodules.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let texts: BTreeMap<String, String> =
        files.iter().map(|path| (module_of(src, path), code(&std::fs::read_to_string(path).unwrap()))).collect();
    let mut graph = BTreeMap::new();
    for (module, text) in &texts {
        let mut deps = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let path: String =
                text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let target =
                (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|candidate| texts.contains_key(candidate));
            if let Some(target) = target.filter(|t| t != module && !t.starts_with(&format!("{module}::"))) {
                deps.insert(target);
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A cycle through `from`, if any, as the modules on it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in &graph[&at] {
            if next == from {
                return Some([path.clone(), vec![from.to_owned()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn format_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/src")
}

fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    graph.keys().filter_map(|module| cycle_from(graph, module)).map(|cycle| cycle.join(" -> ")).collect()
}

/// The graph between top-level modules (`crate::a::b` counts as `crate::a`).
fn folders(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |module: &str| module.split("::").take(2).collect::<Vec<_>>().join("::");
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, deps) in graph {
        let entry = folders.entry(top(module)).or_default();
        entry.extend(deps.iter().map(|d| top(d)).filter(|d| *d != top(module)));
    }
    folders
}

/// Modules by layer: layer 0 imports nothing of the crate, layer n only modules below n.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    let mut layers = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(module, deps)| !placed.contains_key(*module) && deps.iter().all(|d| placed.contains_key(d)))
            .map(|(module, _)| module.clone())
            .collect();
        assert!(
            !layer.is_empty(),
            "a cycle keeps {:?} out of every layer",
            graph.keys().filter(|m| !placed.contains_key(*m)).collect::<Vec<_>>()
        );
        for module in &layer {
            placed.insert(module.clone(), layers.len());
        }
        layers.push(layer);
    }
    layers
}

fn print_layers(name: &str, graph: &BTreeMap<String, BTreeSet<String>>) {
    println!("{name}, top layer first:");
    for (n, layer) in layers(graph).iter().enumerate().rev() {
        let names: Vec<&str> = layer.iter().map(|m| m.strip_prefix("crate::").unwrap_or(m)).collect();
        println!("  {n:2}  {}", names.join("  "));
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph(&src());
    assert!(graph.len() > 20, "expected the host's modules under {}, found {:?}", src().display(), graph.keys());
    let cycles = cycles(&graph);
    assert!(cycles.is_empty(), "expected no import cycles in host/src, found:\n{}", cycles.join("\n"));
    print_layers("host/src", &graph);
}

#[test]
fn no_folder_of_the_host_imports_one_that_imports_it_back() {
    let folders = folders(&graph(&src()));
    let cycles = cycles(&folders);
    assert!(cycles.is_empty(), "expected no import cycles between host/src's folders, found:\n{}", cycles.join("\n"));
    print_layers("host/src by folder", &folders);
}

#[test]
fn the_agent_folder_imports_nothing_of_the_plugin() {
    let graph = graph(&src());
    let offenders: Vec<String> = graph
        .iter()
        .filter(|(module, _)| module.starts_with("crate::agent"))
        .flat_map(|(module, deps)| {
            deps.iter()
                .filter(|d| !d.starts_with("crate::agent") && *d != "crate::log")
                .map(move |d| format!("{module} -> {d}"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "agent/ is the agent as a dependency: it may import only agent/ and log, found:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_module_of_the_format_crate_imports_one_that_imports_it_back() {
    let graph = graph(&format_src());
    assert!(
        graph.len() > 15,
        "expected the format crate's modules under {}, found {:?}",
        format_src().display(),
        graph.keys()
    );
    let cycles = cycles(&graph);
    assert!(cycles.is_empty(), "expected no import cycles in format/src, found:\n{}", cycles.join("\n"));
    print_layers("format/src", &graph);
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("crate::a", vec!["crate::b"]),
        ("crate::b", vec!["crate::c"]),
        ("crate::c", vec!["crate::a"]),
        ("crate::d", vec!["crate::a"]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle_from(&graph, "crate::a").map(|c| c.len()), Some(4), "a -> b -> c -> a");
    assert_eq!(cycle_from(&graph, "crate::d"), None, "d only leads into the cycle");
}

/// Whether `code` exports a symbol or defines or declares a C function (`extern "C" fn name`,
/// `extern "C" {`); a function pointer type (`extern "C" fn(`) is neither.
fn defines_extern_c(code: &str) -> bool {
    code.contains("no_mangle")
        || code.match_indices("extern \"C\"").any(|(at, m)| {
            let rest = code[at + m.len()..].trim_start();
            rest.starts_with('{') || rest.strip_prefix("fn").is_some_and(|f| f.starts_with(|c: char| c.is_whitespace()))
        })
}

#[test]
fn the_extern_c_check_tells_exports_from_pointer_types() {
    assert!(defines_extern_c("pub unsafe extern \"C\" fn FLBPluginInit(plugin: *mut c_void) -> c_int {"));
    assert!(defines_extern_c("#[unsafe(no_mangle)]\npub fn x() {}"));
    assert!(defines_extern_c("unsafe extern \"C\" { fn dlsym(); }"));
    assert!(!defines_extern_c("pub type TimeNowFn = unsafe extern \"C\" fn() -> u64;"));
}

#[test]
fn extern_c_lives_in_ffi_only() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| !path.ends_with("plugin/ffi.rs"))
        .filter(|path| defines_extern_c(&code(&std::fs::read_to_string(path).unwrap())))
        .map(|path| path.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "expected `extern \"C\"` only in plugin/ffi.rs, also found in {offenders:?}");
}
