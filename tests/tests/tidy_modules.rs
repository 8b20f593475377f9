//! No import cycle among the modules of any crate of the workspace
//! (`alloc-core`, `alloc-core/snapshot`, `alloc-core/admin`, `alloc-report`,
//! `alloc-report/soak`, `demo-server`): a module that needs another's
//! items sits above it, never beside it in a circle.
//!
//! How it judges, for each crate root (`src/lib.rs`, `src/main.rs`,
//! `src/bin/*.rs`):
//!
//! - The modules are found from the root by their `mod` declarations (in
//!   files and inline, `mod tests { … }` included).
//! - A reference is a path in a `use` tree or in code that starts with
//!   `crate::`, `super::` or `self::`, or in a `use` with a child module's
//!   name. A name a module imports (`use`, `pub use`) is followed to where
//!   it comes from, so that `crate::set_sampling`, re-exported at the root,
//!   points to the module that defines it.
//! - For every module `m`, its children are the nodes: a reference from
//!   inside child `a` (its file, its own submodules) to inside child `b` is
//!   an edge `a -> b`. A reference to `m`'s own items (a child's
//!   `super::` or `crate::` to its parent's definitions) is inside `m`, and
//!   a reference into a module's own submodules inside it: neither is an
//!   edge. So the crate's top-level modules are checked with each of their
//!   directories taken as one node, and each directory's modules among
//!   themselves.
//! - Unit tests (`#[cfg(test)] mod …`) are left out: a test may use its
//!   crate's top to check a module below it.
//! - Any cycle fails the test, printed as `a -> b -> a` with the line of
//!   one reference per edge.
//!
//! Run it alone: `cargo test -p alloc-tests --test tidy_modules`; with
//! `TIDY_MODULES_EDGES=1` it also prints every edge it found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The crates checked, relative to the workspace root.
const CRATES: &[&str] = &[
    "alloc-core",
    "alloc-core/snapshot",
    "alloc-core/admin",
    "alloc-report",
    "alloc-report/soak",
    "demo-server",
];

/// A token of Rust source with its line: an identifier or a punctuation
/// mark (`::` is one token).
#[derive(Clone, Debug, PartialEq)]
struct Tok {
    text: String,
    line: usize,
}

/// The source with comments, strings and character literals blanked out
/// (newlines kept, so that lines still count).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &x in &b[i..j.min(b.len())] {
                blank(&mut out, x);
            }
            i = j;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}'), or a lifetime.
            let end = if b.get(i + 1) == Some(&b'\\') {
                (i + 2..b.len()).find(|&j| b[j] == b'\'')
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // Multi-byte characters: up to 4 bytes then a quote.
                (i + 2..(i + 6).min(b.len()))
                    .find(|&j| b[j] == b'\'')
                    .filter(|_| !b[i + 1].is_ascii())
            };
            match end {
                Some(e) => {
                    for &x in &b[i..=e] {
                        blank(&mut out, x);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tokens(src: &str) -> Vec<Tok> {
    let text = strip(src);
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || !c.is_ascii() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || !b[i].is_ascii())
            {
                i += 1;
            }
            let word = &text[start..i];
            let word = word.strip_prefix("r#").unwrap_or(word);
            out.push(Tok {
                text: word.to_string(),
                line,
            });
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Tok {
                text: (c as char).to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// One path a `use` brings in: its segments and the name it is known by
/// (`None` for a glob).
#[derive(Clone, Debug, PartialEq)]
struct UsePath {
    segments: Vec<String>,
    name: Option<String>,
}

/// Parses a use tree starting at `toks[*i]`, with `prefix` before it,
/// until the tree ends (`,`, `}` or `;` left unconsumed).
fn use_tree(toks: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<UsePath>) {
    let mut path = prefix.to_vec();
    if toks.get(*i).is_some_and(|t| t.text == "::") {
        *i += 1;
    }
    while let Some(t) = toks.get(*i) {
        match t.text.as_str() {
            "{" => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| t.text.as_str()) {
                        None => return,
                        Some("}") => {
                            *i += 1;
                            return;
                        }
                        Some(",") => *i += 1,
                        _ => use_tree(toks, i, &path, out),
                    }
                }
            }
            "*" => {
                *i += 1;
                out.push(UsePath {
                    segments: path,
                    name: None,
                });
                return;
            }
            w if is_ident(w) => {
                *i += 1;
                if toks.get(*i).is_some_and(|t| t.text == "::") {
                    path.push(w.to_string());
                    *i += 1;
                    continue;
                }
                let mut name = w.to_string();
                if w != "self" {
                    path.push(w.to_string());
                } else if let Some(last) = path.last() {
                    name = last.clone();
                }
                if toks.get(*i).is_some_and(|t| t.text == "as") {
                    name = toks.get(*i + 1).map(|t| t.text.clone()).unwrap_or_default();
                    *i += 2;
                }
                out.push(UsePath {
                    segments: path,
                    name: (name != "_").then_some(name),
                });
                return;
            }
            _ => return,
        }
    }
}

/// What one module's source says: its child modules (declared in a file
/// or inline), its imports and its path references.
#[derive(Default, Debug)]
struct Module {
    file: PathBuf,
    /// Children declared `mod x;`: their files are found on disk.
    file_children: Vec<String>,
    /// Every child module's name, inline ones included.
    children: BTreeSet<String>,
    /// The names this module imports: name to the path it stands for.
    imports: BTreeMap<String, Vec<String>>,
    /// Paths this module's code refers to, with their lines, as written.
    refs: Vec<(Vec<String>, usize)>,
}

/// Whether the `mod` at `toks[i]` is under `#[cfg(test)]` (its visibility
/// and other attributes between).
fn test_only(toks: &[Tok], i: usize) -> bool {
    let text: Vec<&str> = toks[..i].iter().map(|t| t.text.as_str()).collect();
    let mut k = text.len();
    // Visibility: `pub`, `pub(crate)`, `pub(super)`, `pub(in path)`.
    if k > 0 && text[k - 1] == ")" {
        if let Some(open) = text[..k].iter().rposition(|t| *t == "(") {
            if open > 0 && text[open - 1] == "pub" {
                k = open - 1;
            }
        }
    } else if k > 0 && text[k - 1] == "pub" {
        k -= 1;
    }
    // Attributes, nearest first.
    while k > 0 && text[k - 1] == "]" {
        let Some(open) = text[..k].iter().rposition(|t| *t == "[") else {
            return false;
        };
        if open == 0 || text[open - 1] != "#" {
            return false;
        }
        if text[open + 1..k - 1] == ["cfg", "(", "test", ")"] {
            return true;
        }
        k = open - 1;
    }
    false
}

/// The index past the item starting at `toks[i]`: up to its `;` or its
/// closing brace.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].text.as_str() {
            ";" if depth == 0 => return i + 1,
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Reads one file's modules: the file's own at `path`, and each inline
/// module under it, keyed by absolute module path.
fn parse_file(file: &Path, src: &str, path: &[String], out: &mut BTreeMap<Vec<String>, Module>) {
    let toks = tokens(src);
    let mut stack: Vec<(Vec<String>, usize)> = vec![(path.to_vec(), 0)];
    out.entry(path.to_vec()).or_default().file = file.to_path_buf();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let cur = stack.last().unwrap().0.clone();
        let t = toks[i].text.as_str();
        match t {
            "{" => {
                depth += 1;
                i += 1;
            }
            "}" => {
                depth = depth.saturating_sub(1);
                if stack.len() > 1 && stack.last().unwrap().1 == depth {
                    stack.pop();
                }
                i += 1;
            }
            "mod" if toks.get(i + 1).is_some_and(|t| is_ident(&t.text)) && test_only(&toks, i) => {
                // Skipped whole: a unit test may use its crate's top.
                i = skip_item(&toks, i + 2);
            }
            "mod" if toks.get(i + 1).is_some_and(|t| is_ident(&t.text)) => {
                let name = toks[i + 1].text.clone();
                let m = out.get_mut(&cur).unwrap();
                m.children.insert(name.clone());
                match toks.get(i + 2).map(|t| t.text.as_str()) {
                    Some(";") => {
                        m.file_children.push(name);
                        i += 3;
                    }
                    Some("{") => {
                        let mut child = cur.clone();
                        child.push(name);
                        out.entry(child.clone()).or_default().file = file.to_path_buf();
                        stack.push((child, depth));
                        depth += 1;
                        i += 3;
                    }
                    _ => i += 1,
                }
            }
            "use" => {
                i += 1;
                let mut paths = Vec::new();
                let line = toks[i.min(toks.len() - 1)].line;
                while i < toks.len() && toks[i].text != ";" {
                    let before = i;
                    use_tree(&toks, &mut i, &[], &mut paths);
                    if i == before {
                        i += 1;
                    }
                }
                let m = out.get_mut(&cur).unwrap();
                for p in paths {
                    if let Some(name) = &p.name {
                        m.imports.insert(name.clone(), p.segments.clone());
                    }
                    m.refs.push((p.segments, line));
                }
            }
            "crate" | "super" | "self"
                if toks.get(i + 1).is_some_and(|t| t.text == "::")
                    && (i == 0 || toks[i - 1].text != "::") =>
            {
                let line = toks[i].line;
                let mut segs = vec![t.to_string()];
                let mut j = i + 1;
                while toks.get(j).is_some_and(|t| t.text == "::")
                    && toks.get(j + 1).is_some_and(|t| is_ident(&t.text))
                {
                    segs.push(toks[j + 1].text.clone());
                    j += 2;
                }
                out.get_mut(&cur).unwrap().refs.push((segs, line));
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// The file of child `name` of the module in `file`: beside a crate root
/// or a `mod.rs`, else in the directory named after the file.
fn child_file(file: &Path, is_root: bool, name: &str) -> Option<PathBuf> {
    let dir = file.parent()?;
    let stem = file.file_stem()?.to_string_lossy();
    let base = if is_root || stem == "mod" {
        dir.to_path_buf()
    } else {
        dir.join(stem.as_ref())
    };
    [
        base.join(format!("{name}.rs")),
        base.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Every module of the crate whose root is `root`.
fn crate_modules(root: &Path) -> BTreeMap<Vec<String>, Module> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), Vec::new())];
    while let Some((file, path)) = todo.pop() {
        let src = std::fs::read_to_string(&file).unwrap_or_default();
        parse_file(&file, &src, &path, &mut out);
        let children = out[&path].file_children.clone();
        for name in children {
            if let Some(f) = child_file(&file, path.is_empty(), &name) {
                let mut p = path.clone();
                p.push(name);
                todo.push((f, p));
            }
        }
    }
    out
}

/// The absolute path a reference written in module `at` stands for, its
/// imports followed (`depth` bounds a chain of them); `None` for another
/// crate's.
fn resolve_path(
    mods: &BTreeMap<Vec<String>, Module>,
    at: &[String],
    written: &[String],
    depth: usize,
) -> Option<Vec<String>> {
    if depth > 16 {
        return None;
    }
    let mut abs: Vec<String> = match written.first().map(String::as_str) {
        Some("crate") => written[1..].to_vec(),
        Some("self") => [at, &written[1..]].concat(),
        Some("super") => {
            let mut base = at.to_vec();
            let mut k = 0;
            while written.get(k).map(String::as_str) == Some("super") {
                base.pop()?;
                k += 1;
            }
            [base.as_slice(), &written[k..]].concat()
        }
        Some(first) if mods.get(at).is_some_and(|m| m.children.contains(first)) => {
            [at, written].concat()
        }
        _ => return None,
    };
    // Follow imports: the longest module prefix, then the name after it.
    for _ in 0..16 {
        let k = module_len(mods, &abs);
        let Some(name) = abs.get(k) else { break };
        let Some(target) = mods.get(&abs[..k]).and_then(|m| m.imports.get(name)) else {
            break;
        };
        let target = resolve_path(mods, &abs[..k], target, depth + 1)?;
        if target == abs[..=k] {
            break;
        }
        abs = [target.as_slice(), &abs[k + 1..]].concat();
    }
    Some(abs)
}

/// How many leading segments of `abs` name modules.
fn module_len(mods: &BTreeMap<Vec<String>, Module>, abs: &[String]) -> usize {
    let mut k = 0;
    while k < abs.len() && mods.contains_key(&abs[..=k]) {
        k += 1;
    }
    k
}

/// The module a reference written in module `at` points into.
fn resolve(
    mods: &BTreeMap<Vec<String>, Module>,
    at: &[String],
    written: &[String],
) -> Option<Vec<String>> {
    let mut abs = resolve_path(mods, at, written, 0)?;
    abs.truncate(module_len(mods, &abs));
    Some(abs)
}

/// An edge between two children of a module, with where it was seen.
type Edges = BTreeMap<(String, String), String>;

/// For every module, the edges among its children.
fn edges(mods: &BTreeMap<Vec<String>, Module>, root: &Path) -> BTreeMap<Vec<String>, Edges> {
    let mut out: BTreeMap<Vec<String>, Edges> = BTreeMap::new();
    for (from, m) in mods {
        for (written, line) in &m.refs {
            let Some(to) = resolve(mods, from, written) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= to.len() {
                continue;
            }
            let file = m.file.strip_prefix(root).unwrap_or(&m.file);
            out.entry(from[..common].to_vec())
                .or_default()
                .entry((from[common].clone(), to[common].clone()))
                .or_insert_with(|| format!("{}:{line} `{}`", file.display(), written.join("::")));
        }
    }
    out
}

/// The cycles among one module's children: each strongly connected set of
/// two or more, as one cycle through it and the set's members.
fn cycles(edges: &Edges) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for &m in next.get(n.as_str()).into_iter().flatten() {
                if seen.insert(m.to_string()) {
                    todo.push(m.to_string());
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &start in next.keys() {
        if done.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // The shortest cycle through `start` (breadth first).
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_string()]);
        let mut end = None;
        while let Some(n) = queue.pop_front() {
            for &m in next.get(n.as_str()).into_iter().flatten() {
                if m == start {
                    end = Some(n.clone());
                    break;
                }
                if !prev.contains_key(m) {
                    prev.insert(m.to_string(), n.clone());
                    queue.push_back(m.to_string());
                }
            }
            if end.is_some() {
                break;
            }
        }
        let mut back = Vec::new();
        let mut n = end.expect("a cycle");
        while n != start {
            back.push(n.clone());
            n = prev[&n].clone();
        }
        back.reverse();
        let cycle = [vec![start.to_string()], back, vec![start.to_string()]].concat();
        let strong: BTreeSet<String> = reach(start)
            .into_iter()
            .filter(|m| reach(m).contains(start))
            .collect();
        done.extend(strong.iter().cloned());
        out.push((cycle, strong));
    }
    out
}

/// The crate roots of a package directory.
fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|r| dir.join(r))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(bins) = std::fs::read_dir(dir.join("src/bin")) {
        let mut bins: Vec<PathBuf> = bins
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// Every cycle in the crates under `root`, described; and how many modules
/// were read.
fn problems(root: &Path) -> (usize, Vec<String>) {
    let mut found = Vec::new();
    let mut modules = 0;
    for krate in CRATES {
        let roots = crate_roots(&root.join(krate));
        if roots.is_empty() {
            found.push(format!("{krate}: no crate root"));
        }
        for crate_root in roots {
            let mods = crate_modules(&crate_root);
            modules += mods.len();
            let shown = crate_root.strip_prefix(root).unwrap_or(&crate_root);
            for (parent, edges) in edges(&mods, root) {
                if std::env::var_os("TIDY_MODULES_EDGES").is_some() {
                    for ((a, b), seen) in &edges {
                        println!(
                            "{} [{}] {a} -> {b}: {seen}",
                            shown.display(),
                            parent.join("::")
                        );
                    }
                }
                for (cycle, strong) in cycles(&edges) {
                    let within = if parent.is_empty() {
                        "crate root".to_string()
                    } else {
                        parent.join("::")
                    };
                    let mut text = format!(
                        "{} ({within}): module cycle {}",
                        shown.display(),
                        cycle.join(" -> ")
                    );
                    if strong.len() + 1 > cycle.len() {
                        let all: Vec<&str> = strong.iter().map(String::as_str).collect();
                        text.push_str(&format!(" (all in a cycle: {})", all.join(", ")));
                    }
                    for pair in cycle.windows(2) {
                        let seen = &edges[&(pair[0].clone(), pair[1].clone())];
                        text.push_str(&format!("\n    {} -> {}: {seen}", pair[0], pair[1]));
                    }
                    found.push(text);
                }
            }
        }
    }
    (modules, found)
}

/// The checker on sources it must refuse and accept.
fn self_check() {
    let dir = std::env::temp_dir().join(format!("tidy-modules-{}", std::process::id()));
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // A cycle through a root re-export, and a directory whose children
    // use their parent and each other in a circle.
    write(
        "src/lib.rs",
        "mod a; mod b; mod d; pub use a::Thing;\n\
         pub fn root_item() {}\n",
    );
    write(
        "src/a.rs",
        "use crate::b::{self, Other as O};\npub struct Thing;\n",
    );
    write(
        "src/b.rs",
        "// use crate::d; (a comment)\nfn f() { let _ = \"crate::d::X\"; crate::Thing; }\n\
         pub struct Other;\nmod tests { use super::*; use crate::root_item; }\n",
    );
    write("src/d.rs", "mod x; mod y; pub fn parent() {}\n");
    write(
        "src/d/x.rs",
        "use super::y::Y; use super::parent; pub struct X;\n",
    );
    write(
        "src/d/y.rs",
        "pub struct Y; fn g() { super::x::X; }\n#[cfg(test)]\nmod tests { use crate::a::Thing; }\n",
    );
    let mods = crate_modules(&dir.join("src/lib.rs"));
    assert!(mods.contains_key(&vec!["b".to_string(), "tests".to_string()]));
    assert!(!mods.contains_key(["d", "y", "tests"].map(String::from).as_slice()));
    let e = edges(&mods, &dir);
    let top: Vec<_> = e[&vec![]].keys().cloned().collect();
    assert_eq!(
        top,
        vec![
            ("a".to_string(), "b".to_string()),
            ("b".to_string(), "a".to_string())
        ],
        "{e:?}"
    );
    assert_eq!(cycles(&e[&vec![]])[0].0, vec!["a", "b", "a"]);
    assert_eq!(cycles(&e[&vec!["d".to_string()]])[0].0, vec!["x", "y", "x"]);
    // Without the back references, no cycle.
    write("src/b.rs", "pub struct Other;\n");
    write("src/d/y.rs", "pub struct Y;\n");
    let mods = crate_modules(&dir.join("src/lib.rs"));
    assert!(edges(&mods, &dir).values().all(|e| cycles(e).is_empty()));
    let _ = std::fs::remove_dir_all(&dir);
    // Strings, raw strings, characters and lifetimes.
    let t: Vec<String> = tokens("fn f<'a>(c: char) { '\"'; r#\"crate::x\"#; 'x'; crate::y::z }")
        .into_iter()
        .map(|t| t.text)
        .collect();
    assert!(
        t.contains(&"y".to_string()) && !t.contains(&"x".to_string()),
        "{t:?}"
    );
}

fn main() -> ExitCode {
    self_check();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let (modules, found) = problems(root);
    for p in &found {
        eprintln!("tidy: {p}");
    }
    if modules < 50 {
        eprintln!("tidy: only {modules} modules found");
        println!("\n0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    if found.is_empty() {
        println!(
            "tidy_modules: {modules} modules in {} crates, no import cycle",
            CRATES.len()
        );
        println!("\n1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "tidy: {} module cycles; move what both sides need below them, or merge them",
            found.len()
        );
        println!("\n0 passed, 1 failed");
        ExitCode::FAILURE
    }
}
