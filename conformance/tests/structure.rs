//! The workspace's structure rules (issue 11), kept by a test so they stay true: no import
//! loop between source files, and no source file of more than about 500 lines outside its
//! tests. Sources are parsed with `syn`, so doc links and comments are not imports.
//!
//! A file's imports are the paths it names through `crate::`, `super::`, `self::` or a
//! module it declares, outside `#[cfg(test)]` items, each taken to the file that defines
//! it: the longest module path that is a file, and through that module's `use` of one of
//! its own children when it only re-exports the item (a module's facade is not where the
//! item lives). A module's use of its ancestors' items is not counted: a submodule is part of
//! its parent (the usual case is an `impl` of the parent's type split into a child's file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// "About 500 lines": the bound, with the slack its "about" gives.
const MAX_LINES: usize = 520;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the conformance crate")
        .to_path_buf()
}

/// The `src` directory of every crate of the workspace.
fn crate_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "target" || name.starts_with('.') {
        return;
    }
    let src = dir.join("src");
    if dir.join("Cargo.toml").is_file() && src.is_dir() {
        out.push(src);
    }
    for entry in std::fs::read_dir(dir)
        .expect("read a workspace directory")
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != "src" {
            crate_sources(&entry.path(), out);
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read a source directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of `file` in the crate whose sources are `src` (`[]` for its root).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file of the crate");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The file of module `path`, if it is one.
fn module_file(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return None;
    }
    let base = path.iter().fold(src.to_path_buf(), |p, s| p.join(s));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|f| f.is_file())
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && matches!(&a.meta, syn::Meta::List(l) if l.tokens.to_string().trim() == "test")
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// What one file names: its `use` paths (a glob as its prefix), every other path, and the
/// modules it declares, all outside test-only items.
#[derive(Default)]
struct Names {
    uses: Vec<Vec<String>>,
    paths: Vec<Vec<String>>,
    modules: BTreeSet<String>,
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([prefix.clone(), vec![n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([prefix.clone(), vec![r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(t, prefix, out)),
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test_only(item_attrs(item)) {
            return;
        }
        match item {
            syn::Item::Use(u) => flatten_use(&u.tree, &mut Vec::new(), &mut self.uses),
            syn::Item::Mod(m) if m.content.is_none() => {
                self.modules.insert(m.ident.to_string());
            }
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.paths
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

fn names(file: &Path) -> Names {
    let text = std::fs::read_to_string(file).expect("read a source file");
    let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
    let mut names = Names::default();
    names.visit_file(&ast);
    names
}

/// The crate-local module path a path of module `here` names, with what follows it.
fn absolute(here: &[String], modules: &BTreeSet<String>, path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some([here, rest].concat()),
        "super" => {
            let mut base = here.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some([base.as_slice(), rest].concat())
        }
        m if modules.contains(m) => Some([here, path].concat()),
        _ => None,
    }
}

/// The graph of one crate: file -> the files it imports from.
fn crate_graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let parsed: BTreeMap<PathBuf, Names> = files.iter().map(|f| (f.clone(), names(f))).collect();
    // Where a module's `use` of one of its children puts an item: the child's file.
    let reexported = |module: &[String], file: &Path, item: &str| -> Option<PathBuf> {
        let names = parsed.get(file)?;
        names.uses.iter().find_map(|u| {
            let (last, _) = u.split_last()?;
            let child = u.first()?;
            (last == item && names.modules.contains(child))
                .then(|| module_file(src, &[module, &u[..u.len() - 1]].concat()))
                .flatten()
        })
    };
    let mut graph = BTreeMap::new();
    for (file, names) in &parsed {
        let here = module_path(src, file);
        let mut targets = BTreeSet::new();
        for path in names.uses.iter().chain(&names.paths) {
            let Some(abs) = absolute(&here, &names.modules, path) else {
                continue;
            };
            let Some((k, target)) = (1..=abs.len())
                .rev()
                .find_map(|k| module_file(src, &abs[..k]).map(|f| (k, f)))
            else {
                continue;
            };
            let target = abs
                .get(k)
                .and_then(|item| reexported(&abs[..k], &target, item))
                .unwrap_or(target);
            if !here.starts_with(&module_path(src, &target)) {
                targets.insert(target);
            }
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// A cycle of `graph`, if it has one.
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn walk(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            return Some(stack[i..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = walk(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| walk(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_source_file_imports_from_a_file_that_imports_from_it() {
    let root = workspace();
    let mut sources = Vec::new();
    crate_sources(&root, &mut sources);
    assert!(sources.len() > 10, "the workspace's crates: {sources:?}");
    let mut loops = Vec::new();
    for src in &sources {
        if let Some(cycle) = find_cycle(&crate_graph(src)) {
            let names: Vec<String> = cycle
                .iter()
                .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
                .collect();
            loops.push(names.join(" -> "));
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_checker_sees_a_loop_through_a_facade() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner;\npub(crate) use inner::Thing;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "pub(crate) struct Thing(crate::b::Other);\n",
    )
    .unwrap();
    // `b` names `Thing` through the facade of `a`; `Thing` lives in `a/inner.rs`, which names
    // `b`'s `Other`: a loop between `a/inner.rs` and `b.rs`. A doc link and a test are not.
    std::fs::write(
        src.join("b.rs"),
        "//! [`crate::a::Thing`]\npub(crate) struct Other;\npub(crate) fn f(_: super::a::Thing) {}\n\
         #[cfg(test)]\nmod tests { use crate::a::Thing; }\n",
    )
    .unwrap();
    let cycle = find_cycle(&crate_graph(&src)).expect("the loop is seen");
    let mut names: Vec<String> = cycle
        .iter()
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a/inner.rs", "b.rs"]);

    // Without the function naming `Thing`, only the test and the doc link do: no loop.
    std::fs::write(
        src.join("b.rs"),
        "//! [`crate::a::Thing`]\npub(crate) struct Other;\n\
         #[cfg(test)]\nmod tests { use crate::a::Thing; }\n",
    )
    .unwrap();
    assert_eq!(find_cycle(&crate_graph(&src)), None);
}

#[test]
fn no_source_file_is_over_about_500_lines_outside_its_tests() {
    let root = workspace();
    let mut sources = Vec::new();
    crate_sources(&root, &mut sources);
    let mut long = Vec::new();
    for src in &sources {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // The tests of a file are its trailing `#[cfg(test)]` module.
            let lines = text
                .lines()
                .take_while(|l| l.trim() != "#[cfg(test)]")
                .count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{}: {lines} lines",
                    file.strip_prefix(&root).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines outside tests:\n{}",
        long.join("\n")
    );
}
