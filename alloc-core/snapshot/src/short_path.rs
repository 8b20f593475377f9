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
//! | a package on disk (the directory that holds its `src/`) | `demo-server/src/patterns/cycle.rs` |
//! | a test, example or bench of a package without `src/` in its path | `tests/tests/leaks.rs` |
//! | the standard library (`/rustc/<hash>/library/std/src/…`) | `std/src/thread/mod.rs` |
//! | anything else (a relative path, generated code) | unchanged |
//!
//! For the usual workspace, whose members sit one directory below its root,
//! the package form is the path relative to the workspace. The short form is
//! always a suffix of the path, found without I/O, so it costs nothing to
//! compute; the full path stays in [`Frame::file`](crate::Frame::file) (and
//! so in every JSON output and snapshot file).

/// The short form of a source path (see the [module docs](self)): a suffix
/// of `path`.
#[must_use]
pub fn short_path(path: &str) -> &str {
    const REGISTRY: &str = "/registry/src/";
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
    use super::short_path;

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
