//! Short source paths for site labels.
//!
//! Debug information names a source file by its absolute path on the build
//! machine, which for a dependency is as long as
//! `/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/mod.rs`.
//! A label shows a suffix of it that still says which crate the file
//! belongs to:
//!
//! | the file | its short form |
//! |---|---|
//! | a registry crate (`…/registry/src/<index>/<crate>-<version>/…`) | `tokio-1.54.1/src/runtime/task/mod.rs` |
//! | under a known workspace root ([`Workspaces`]) | relative to the root: `alloc-core/admin/src/routes.rs` |
//! | a package on disk (the directory that holds its `src/`) | `demo-server/src/patterns/cycle.rs` |
//! | a test, example or bench of a package without `src/` in its path | `tests/tests/leaks.rs` |
//! | the standard library (`/rustc/<hash>/library/std/src/…`) | `std/src/thread/mod.rs` |
//! | anything else (a relative path, generated code) | unchanged |
//!
//! Relative to the workspace is what a user expects: it is how `cargo` and
//! `rustc` name the file in their diagnostics, so a label opens from the
//! workspace root as printed, and a nested package keeps its whole path
//! (`alloc-core/admin/src/routes.rs`, where the package rule alone gives
//! `admin/src/routes.rs`). Where the root is is a question for the file
//! system (the nearest `Cargo.toml` with `[workspace]` above the file), so
//! the roots are found by the analyser (`alloc-report`, on the machine that
//! has the sources) and given here as [`Workspaces`]; without them (the
//! collector's leak assertions, sources not on this machine, a lone
//! package) the package rule stands, which for the usual workspace, whose
//! members sit one directory below its root, is the same path.
//!
//! The short form is always a suffix of the path, found without I/O, so it
//! costs nothing to compute; the full path stays in
//! [`Frame::file`](crate::Frame::file) (and so in every JSON output and
//! snapshot file).

/// The workspace roots known to an analysis: a file under one of them is
/// shown relative to it ([`Workspaces::short`]). Found on disk by the
/// analyser; this type only compares strings.
///
/// ```
/// use alloc_snapshot::Workspaces;
///
/// let mut ws = Workspaces::default();
/// ws.add("/work/app/");
/// assert_eq!(ws.short("/work/app/alloc-core/admin/src/routes.rs"), "alloc-core/admin/src/routes.rs");
/// // Elsewhere, the rules without a root (the package's directory).
/// assert_eq!(ws.short("/home/u/lib/core/admin/src/routes.rs"), "admin/src/routes.rs");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workspaces {
    /// The roots without a trailing `/`, longest first (a workspace inside
    /// another's directory wins for its files).
    roots: Vec<String>,
}

impl Workspaces {
    /// Adds a workspace root (a directory's absolute path, as the debug
    /// information spells the files under it). The root `/` and empty
    /// roots are ignored.
    pub fn add(&mut self, root: &str) {
        let root = root.trim_end_matches('/');
        if root.is_empty() || self.roots.iter().any(|r| r == root) {
            return;
        }
        let at = self.roots.partition_point(|r| r.len() >= root.len());
        self.roots.insert(at, root.to_string());
    }

    /// The roots, longest first.
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.roots.iter().map(String::as_str)
    }

    /// Whether no root is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Whether `path` is a dependency's or the standard library's file
    /// ([`crate::trim::is_dependency_file`], or under `/rustc/`), which is
    /// never named relative to a workspace: the analyser looks up no root
    /// for it.
    #[must_use]
    pub fn is_dependency(path: &str) -> bool {
        crate::trim::is_dependency_file(path) || path.starts_with("/rustc/")
    }

    /// The short form of `path` (see the [module docs](self)): a
    /// dependency's form ([`Workspaces::is_dependency`]: a registry crate's
    /// `crate-version/…`, even when the registry is inside a workspace),
    /// else the path relative to the longest root it is under, else
    /// [`short_path()`].
    #[must_use]
    pub fn short<'a>(&self, path: &'a str) -> &'a str {
        if !Self::is_dependency(path) {
            for root in &self.roots {
                if let Some(rest) = path.strip_prefix(root.as_str()) {
                    if let Some(rest) = rest.strip_prefix('/') {
                        if !rest.is_empty() {
                            return rest;
                        }
                    }
                }
            }
        }
        short_path(path)
    }
}

/// Where a registry crate's files are, under Cargo's home.
const REGISTRY: &str = "/registry/src/";

/// The short form of a source path (see the [module docs](self)): a suffix
/// of `path`.
#[must_use]
pub fn short_path(path: &str) -> &str {
    if let Some(at) = path.rfind(REGISTRY) {
        // Skip the index directory (`index.crates.io-<hash>`).
        let rest = &path[at + REGISTRY.len()..];
        if let Some(slash) = rest.find('/') {
            if slash + 1 < rest.len() {
                return &rest[slash + 1..];
            }
        }
    }
    package_suffix(path, &["src"])
        .or_else(|| package_suffix(path, &["tests", "examples", "benches"]))
        .unwrap_or(path)
}

/// The suffix of `path` starting at the directory that holds its rightmost
/// directory named one of `markers`, if that directory is named. Walks the
/// components from the right without allocating (a report labels hundreds
/// of thousands of sites).
fn package_suffix<'a>(path: &'a str, markers: &[&str]) -> Option<&'a str> {
    // The file name (after the last '/') is never a marker.
    let mut end = path.rfind('/')?;
    loop {
        let start = path[..end].rfind('/').map_or(0, |i| i + 1);
        if markers.contains(&&path[start..end]) {
            let parent_end = start.checked_sub(1)?;
            let parent_start = path[..parent_end].rfind('/').map_or(0, |i| i + 1);
            return match &path[parent_start..parent_end] {
                "" | "." | ".." => None,
                _ => Some(&path[parent_start..]),
            };
        }
        end = start.checked_sub(1)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{short_path, Workspaces};

    #[test]
    fn relative_to_the_longest_root_that_holds_the_file() {
        let mut ws = Workspaces::default();
        for root in ["/work/app", "/work/app/vendor/other/", "/", ""] {
            ws.add(root);
        }
        ws.add("/work/app/");
        assert_eq!(
            ws.roots().collect::<Vec<_>>(),
            ["/work/app/vendor/other", "/work/app"]
        );
        let cases = [
            // A nested package keeps its whole path.
            (
                "/work/app/alloc-core/admin/src/routes.rs",
                "alloc-core/admin/src/routes.rs",
            ),
            ("/work/app/src/main.rs", "src/main.rs"),
            ("/work/app/tests/leaks.rs", "tests/leaks.rs"),
            // A workspace inside another's directory: its own root.
            ("/work/app/vendor/other/x/src/a.rs", "x/src/a.rs"),
            // A path that only starts with a root's text is not under it.
            ("/work/application/src/main.rs", "application/src/main.rs"),
            // A registry inside the workspace (CARGO_HOME=$PWD/.cargo).
            (
                "/work/app/.cargo/registry/src/idx/tokio-1.0.0/src/a.rs",
                "tokio-1.0.0/src/a.rs",
            ),
            // A git dependency checked out inside the workspace.
            (
                "/work/app/.cargo/git/checkouts/h-0a1b/4f5e6d7/src/h1.rs",
                "4f5e6d7/src/h1.rs",
            ),
            // Elsewhere: the rules without a root.
            ("/home/u/lib/core/admin/src/x.rs", "admin/src/x.rs"),
            ("/rustc/abc/library/std/src/io.rs", "std/src/io.rs"),
            // The root itself is not a file under it.
            ("/work/app/", "/work/app/"),
        ];
        for (path, short) in cases {
            assert_eq!(ws.short(path), short, "short form of {path}");
        }
        // No root: the rules without one.
        assert_eq!(
            Workspaces::default().short("/work/app/alloc-core/admin/src/routes.rs"),
            "admin/src/routes.rs"
        );
    }

    fn check(path: &str, short: &str) {
        assert_eq!(short_path(path), short, "short form of {path}");
    }

    #[test]
    fn short_forms() {
        check(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/mod.rs",
            "tokio-1.54.1/src/runtime/task/mod.rs",
        );
        // A registry crate with a `src` deeper inside keeps its crate name.
        check(
            "/h/.cargo/registry/src/idx/foo-1.0.0/src/sub/src/x.rs",
            "foo-1.0.0/src/sub/src/x.rs",
        );
        check(
            "/work/wt-13/demo-server/src/patterns/cycle.rs",
            "demo-server/src/patterns/cycle.rs",
        );
        // Code kept under ~/src: the package is the nearest `src`'s parent.
        check("/home/u/src/myapp/src/main.rs", "myapp/src/main.rs");
        check("/work/wt-13/tests/tests/leaks.rs", "tests/tests/leaks.rs");
        check(
            "/work/app/examples/axum_service.rs",
            "app/examples/axum_service.rs",
        );
        check(
            "/rustc/59807616e1b2c3d4/library/std/src/thread/mod.rs",
            "std/src/thread/mod.rs",
        );
        check(
            "/root/.cargo/git/checkouts/hyper-0a1b2c/4f5e6d7/src/proto/h1.rs",
            "4f5e6d7/src/proto/h1.rs",
        );
        // Nothing to shorten by.
        check("src/main.rs", "src/main.rs");
        check("/tmp/build/out/generated.rs", "/tmp/build/out/generated.rs");
        check("main.rs", "main.rs");
        check("/src", "/src");
        check("", "");
        // A marker must be a directory, not the file.
        check("/a/b/src", "/a/b/src");
        // A truncated registry path falls back to the other rules.
        check("/h/.cargo/registry/src/idx/", "registry/src/idx/");
    }
}
