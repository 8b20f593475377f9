//! The workspace roots of a series' source files, found on disk, so that a
//! site's label names its file relative to the workspace that holds it, as
//! `cargo` and `rustc` do in their diagnostics
//! (`alloc-core/admin/src/routes.rs`; see [`mod@alloc_snapshot::short_path`]
//! for the other forms).
//!
//! A file's workspace root is the nearest directory above it whose
//! `Cargo.toml` has a `[workspace]` table: what Cargo looks for. Files of
//! dependencies (registry, git checkouts) and the standard library are not
//! looked up ([`Workspaces::is_dependency`]: they have a short form of
//! their own); a file whose sources are not on this
//! machine, or not in a workspace, keeps the form found without a root.
//! Each directory is looked at once per finder.
//!
//! ```no_run
//! use alloc_report::{Analyzer, ClassifyOptions, SeriesReader, WorkspaceFinder};
//!
//! let mut analyzer = Analyzer::new(&ClassifyOptions::default());
//! let mut roots = WorkspaceFinder::new();
//! for file in SeriesReader::open("target/soak".as_ref())? {
//!     let file = file?;
//!     roots.scan(&file.snapshot);
//!     analyzer.push_in(&file, roots.workspaces());
//! }
//! let report = analyzer.finish();
//! # Ok::<(), alloc_report::ReadError>(())
//! ```

use std::path::Path;

use alloc_snapshot::file::read_regular;
use alloc_snapshot::{Snapshot, Workspaces};

use crate::analysis::HashMap;

/// Finds the workspace roots of the files snapshots name (see the
/// [module docs](self)) and keeps them for [`crate::Analyzer::push_in`].
#[derive(Debug, Default)]
pub struct WorkspaceFinder {
    /// Site files looked up already.
    files: rustc_hash::FxHashSet<String>,
    /// Directories looked at, with the root found above them.
    dirs: HashMap<String, Option<String>>,
    /// The roots found.
    found: Workspaces,
}

impl WorkspaceFinder {
    /// A finder that knows no root yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The roots of the files of every site of `snapshots`.
    #[must_use]
    pub fn of<'a>(snapshots: impl IntoIterator<Item = &'a Snapshot>) -> Workspaces {
        let mut finder = Self::new();
        for s in snapshots {
            finder.scan(s);
        }
        finder.found
    }

    /// Looks up the roots of the files of `snapshot`'s sites (each stack's
    /// site frame) not looked up before.
    pub fn scan(&mut self, snapshot: &Snapshot) {
        for stack in &snapshot.stacks {
            if let Some(file) = stack.site().and_then(|f| f.file.as_deref()) {
                if !self.files.contains(file) {
                    self.files.insert(file.to_string());
                    self.scan_file(file);
                }
            }
        }
    }

    /// The roots found so far.
    #[must_use]
    pub fn workspaces(&self) -> &Workspaces {
        &self.found
    }

    /// Walks up from `file`'s directory to the nearest workspace root.
    fn scan_file(&mut self, file: &str) {
        if !file.starts_with('/') || Workspaces::is_dependency(file) {
            return;
        }
        let mut walked: Vec<&str> = Vec::new();
        let mut dir = Path::new(file).parent();
        let root = loop {
            let Some(d) = dir.and_then(Path::to_str) else {
                break None;
            };
            if let Some(known) = self.dirs.get(d) {
                break known.clone();
            }
            walked.push(d);
            if is_workspace_root(Path::new(d)) {
                break Some(d.to_string());
            }
            dir = Path::new(d).parent();
        };
        for d in walked {
            self.dirs.insert(d.to_string(), root.clone());
        }
        if let Some(root) = root {
            self.found.add(&root);
        }
    }
}

/// The largest `Cargo.toml` read; a larger one is taken for no root.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Whether `dir` holds a `Cargo.toml` with a `[workspace]` table (or one of
/// its sub-tables, which make it too). The directories come from the
/// snapshot's file names, so only a regular file of at most
/// [`MAX_MANIFEST_BYTES`] is read (a FIFO there is no root, never a wait).
fn is_workspace_root(dir: &Path) -> bool {
    let manifest = read_regular(&dir.join("Cargo.toml"), MAX_MANIFEST_BYTES);
    manifest
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|manifest| {
            manifest.lines().map(str::trim).any(|l| {
                l == "[workspace]"
                    || l.strip_prefix("[workspace.")
                        .is_some_and(|rest| rest.ends_with(']'))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::WorkspaceFinder;
    use alloc_snapshot::{Frame, Snapshot, Stack};

    fn snapshot(files: &[&str]) -> Snapshot {
        let stacks = files
            .iter()
            .enumerate()
            .map(|(i, f)| Stack {
                id: i as u32 + 1,
                frames: vec![Frame {
                    ip: 0x10,
                    function: Some("f".into()),
                    file: Some((*f).to_string()),
                    line: Some(1),
                }],
                user_frame: Some(0),
            })
            .collect();
        Snapshot {
            stacks,
            ..Snapshot::default()
        }
    }

    #[test]
    fn nearest_workspace_above_each_file() {
        let dir = std::env::temp_dir().join(format!("ws-finder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mk = |rel: &str, manifest: &str| {
            let d = dir.join(rel);
            std::fs::create_dir_all(d.join("src")).unwrap();
            if !manifest.is_empty() {
                std::fs::write(d.join("Cargo.toml"), manifest).unwrap();
            }
        };
        mk("ws", "[workspace]\nmembers = [\"core/admin\"]\n");
        mk("ws/core/admin", "[package]\nname = \"admin\"\n");
        mk("other", "[workspace.package]\nversion = \"1.0.0\"\n");
        mk(
            "lone/pkg",
            "[package]\nname = \"pkg\"\n# [workspace] in a comment\n",
        );
        let root = dir.to_str().unwrap();
        let file = |rel: &str| format!("{root}/{rel}");
        let files = [
            file("ws/core/admin/src/routes.rs"),
            file("ws/src/main.rs"),
            file("ws/core/admin/../admin/src/lib.rs"),
            file("other/src/x.rs"),
            file("lone/pkg/src/lib.rs"),
            "/h/.cargo/registry/src/idx/tokio-1.0.0/src/a.rs".to_string(),
            "src/relative.rs".to_string(),
        ];
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        let snap = snapshot(&names);
        let mut finder = WorkspaceFinder::new();
        finder.scan(&snap);
        finder.scan(&snap);
        let ws = finder.workspaces();
        assert_eq!(WorkspaceFinder::of([&snap, &snap]), *ws);
        assert_eq!(
            ws.roots().collect::<Vec<_>>(),
            [file("other"), file("ws")],
            "a lone package is no workspace"
        );
        let short: Vec<&str> = names.iter().map(|f| ws.short(f)).collect();
        assert_eq!(
            short,
            [
                "core/admin/src/routes.rs",
                "src/main.rs",
                "core/admin/../admin/src/lib.rs",
                "src/x.rs",
                "pkg/src/lib.rs",
                "tokio-1.0.0/src/a.rs",
                "src/relative.rs",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
