//! Offline symbolisation: a snapshot's raw instruction pointers to function,
//! file and line, from the debug information of the binaries on disk.
//!
//! A snapshot taken by `alloc_core::snapshot()` carries raw stacks and the
//! modules the process had loaded ([`Snapshot::modules`]: path, load bias,
//! executable ranges, GNU build id). [`Symbolizer`] finds the module of each
//! address, checks that the file on disk is the one that ran (same build
//! id; a module without a build id is taken as it is), and reads its DWARF
//! with `addr2line` (from `/usr/lib/debug/.build-id/` when the file itself
//! is stripped and the distribution installed its debug information): one frame per inlined
//! function, innermost first, the function's symbol-table name where there
//! is no debug information, and each stack's `user_frame` by the same rules
//! as the in-process symboliser ([`alloc_snapshot::trim`]). So the measured
//! process never parses debug information (about 50 MB for `demo-server`).
//!
//! Parsed debug information is kept per module (by path and build id) for
//! the life of the `Symbolizer`, and resolved addresses per module and file
//! address, so a series from one process, or from several runs of the same
//! build, parses each binary once.
//!
//! **Errors.** A module that holds an address of a stack must be readable
//! and have the snapshot's build id, or [`Symbolizer::symbolize`] fails
//! with a [`SymbolizeError`] that names the module and says what to do:
//! pass the right file with [`Symbolizer::use_file`] (the CLI's
//! `--binary`). Modules with no file (the vDSO) and addresses in no module
//! stay unresolved, as they do in-process. A stack that already has names
//! (symbolised in-process, or a file from before format version 3) is left
//! as it is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use addr2line::Loader;
use alloc_snapshot::file::open_regular;
use alloc_snapshot::trim::{user_frame_by, SiteRule};
use alloc_snapshot::{Frame, Module, Snapshot};
use object::Object;

/// Why a snapshot could not be symbolised.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolizeError {
    /// The module's file is not on disk (deleted, moved, or the snapshot
    /// comes from another machine).
    Missing {
        /// The module's path as the process loaded it.
        module: String,
        /// The build id the process ran, if the module has one.
        build_id: Option<String>,
        /// What opening it said.
        error: String,
    },
    /// The file at the module's path is another build than the one that ran.
    BuildIdMismatch {
        /// The module's path as the process loaded it.
        module: String,
        /// The build id the process ran.
        expected: String,
        /// The build id of the file on disk (`None`: it has none).
        found: Option<String>,
    },
    /// A file could not be read as an object file with debug information.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        error: String,
    },
    /// A file given with [`Symbolizer::use_file`] has no build id, so it
    /// cannot be matched to a module.
    NoBuildId {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for SymbolizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |b: &Option<String>| match b {
            Some(b) => format!("build id {b}"),
            None => "no build id".to_string(),
        };
        match self {
            SymbolizeError::Missing {
                module,
                build_id,
                error,
            } => write!(
                f,
                "cannot symbolise: the binary {module} ({}) that the snapshot's process \
                 loaded is gone ({error}); pass --binary FILE with a copy of that build",
                id(build_id)
            ),
            SymbolizeError::BuildIdMismatch {
                module,
                expected,
                found,
            } => write!(
                f,
                "cannot symbolise: {module} on disk has {} but the snapshot's process ran \
                 build id {expected} (it was rebuilt or replaced since); pass --binary FILE \
                 with the file that ran",
                id(found)
            ),
            SymbolizeError::Unreadable { path, error } => write!(
                f,
                "cannot symbolise: {} is not a readable object file: {error}",
                path.display()
            ),
            SymbolizeError::NoBuildId { path } => write!(
                f,
                "{} has no GNU build id, so it cannot be matched to a module of the \
                 snapshots (link with --build-id)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SymbolizeError {}

/// A module's parsed debug information, or why it has none.
enum DebugInfo {
    /// DWARF (and the symbol table) of the file.
    Loaded(Box<Loader>),
    /// Nothing to read (the vDSO): its addresses stay raw.
    Skip,
}

/// The frames at one file address, without the process's `ip`.
type Resolved = Rc<[Frame]>;

/// Resolves raw stacks from the binaries on disk, keeping parsed debug
/// information between snapshots. See the [module docs](self).
#[derive(Default)]
pub struct Symbolizer {
    /// Files given by the user, by build id.
    files: HashMap<String, PathBuf>,
    /// Build ids of given files that matched a module.
    used: Vec<String>,
    /// Index into `loaded` by (path, build id).
    index: HashMap<(String, Option<String>), usize>,
    /// Parsed modules; errors are kept too, so a missing file is reported
    /// the same way for every snapshot.
    loaded: Vec<Result<Rc<DebugInfo>, SymbolizeError>>,
    /// Resolved frames by index into `loaded` and file address.
    frames: HashMap<(usize, u64), Resolved>,
    /// Which frame of a stack is its site ([`Symbolizer::set_site_rule`]).
    rule: SiteRule,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer")
            .field("files", &self.files)
            .field("modules", &self.loaded.len())
            .field("addresses", &self.frames.len())
            .field("rule", &self.rule)
            .finish()
    }
}

/// The GNU build id of the object file at `path`, in lowercase hex
/// (`Ok(None)` if it has none). Reads only the headers and the note. Only
/// a regular file is read (`alloc_snapshot::file::open_regular`): a FIFO
/// or a device at a module's path is an error, never a wait.
pub fn file_build_id(path: &Path) -> Result<Option<String>, String> {
    let file = open_regular(path).map_err(|e| e.to_string())?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).map_err(|e| e.to_string())?;
    let id = obj.build_id().map_err(|e| e.to_string())?;
    Ok(id.map(hex))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Symbolizer {
    /// A symboliser that reads each module from the path the process
    /// loaded it from.
    #[must_use]
    pub fn new() -> Self {
        Symbolizer::default()
    }

    /// Which frame of each stack the symboliser makes its `user_frame`,
    /// its site: by default the innermost frame of the program's own code
    /// ([`SiteRule::OwnCode`]); [`SiteRule::FirstNonStd`] counts every
    /// crate as the user's (the CLI's `--site-rule`).
    pub fn set_site_rule(&mut self, rule: SiteRule) {
        self.rule = rule;
    }

    /// Use the object file at `path` for the module with the same GNU build
    /// id (a copy of a binary that was rebuilt or moved since, or a separate
    /// debug file made with `objcopy --only-keep-debug`). Returns its build
    /// id. Give files before symbolising: a module already read keeps the
    /// file it was read from.
    pub fn use_file(&mut self, path: &Path) -> Result<String, SymbolizeError> {
        let id = file_build_id(path).map_err(|error| SymbolizeError::Unreadable {
            path: path.to_path_buf(),
            error,
        })?;
        let id = id.ok_or_else(|| SymbolizeError::NoBuildId {
            path: path.to_path_buf(),
        })?;
        self.files.insert(id.clone(), path.to_path_buf());
        Ok(id)
    }

    /// The files given with [`Symbolizer::use_file`] that no module of the
    /// snapshots symbolised so far had the build id of.
    #[must_use]
    pub fn unused_files(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self
            .files
            .iter()
            .filter(|(id, _)| !self.used.contains(id))
            .map(|(_, p)| p.as_path())
            .collect();
        v.sort();
        v
    }

    /// Fills in function, file and line of every frame of every raw stack
    /// of `snapshot` (one frame per inlined function), and each stack's
    /// `user_frame` by the symboliser's [`SiteRule`]. Stacks that have
    /// names already keep them (their `user_frame` is recomputed by the
    /// same rules).
    pub fn symbolize(&mut self, snapshot: &mut Snapshot) -> Result<(), SymbolizeError> {
        // Index into `loaded` of each of the snapshot's modules, on first use.
        let mut slots: Vec<Option<usize>> = vec![None; snapshot.modules.len()];
        for stack in &mut snapshot.stacks {
            if stack.frames.iter().any(|f| f.function.is_some()) {
                stack.user_frame = user_frame_by(&stack.frames, self.rule);
                continue;
            }
            let mut out = Vec::with_capacity(stack.frames.len() * 2);
            for f in &stack.frames {
                let Some(m) = snapshot.modules.iter().position(|m| m.contains(f.ip)) else {
                    out.push(f.clone());
                    continue;
                };
                let module = &snapshot.modules[m];
                let slot = match slots[m] {
                    Some(i) => i,
                    None => *slots[m].insert(self.slot(module)),
                };
                let resolved = self.resolve(slot, module.base, f.ip)?;
                out.extend(resolved.iter().map(|r| Frame {
                    ip: f.ip,
                    ..r.clone()
                }));
            }
            stack.frames = out;
            stack.user_frame = user_frame_by(&stack.frames, self.rule);
        }
        self.name_statics(snapshot, &mut slots);
        Ok(())
    }

    /// Names the statics that hold blocks in a retention scan (the module's
    /// symbol table entry at the word's address, demangled, its hash cut
    /// off). A module that cannot be read leaves its statics unnamed.
    fn name_statics(&mut self, snapshot: &mut Snapshot, slots: &mut [Option<usize>]) {
        let Some(r) = snapshot.retention.as_mut() else {
            return;
        };
        let mut names: HashMap<(u32, u64), Option<String>> = HashMap::default();
        for b in &mut r.blocks {
            let holder = match &mut b.held_by {
                Some(alloc_snapshot::Holder::Heap { root: Some(r), .. }) => &mut **r,
                Some(h) => h,
                None => continue,
            };
            let alloc_snapshot::Holder::Static {
                module,
                offset,
                symbol: symbol @ None,
            } = holder
            else {
                continue;
            };
            let (m, off) = (*module as usize, *offset);
            let Some(info) = snapshot.modules.get(m) else {
                continue;
            };
            let name = names.entry((*module, off)).or_insert_with(|| {
                let slot = match slots[m] {
                    Some(i) => i,
                    None => *slots[m].insert(self.slot(info)),
                };
                match self.loaded[slot].as_deref() {
                    Ok(DebugInfo::Loaded(loader)) => loader.find_symbol(off).map(|raw| {
                        let d = addr2line::demangle_auto(raw.into(), None).into_owned();
                        strip_hash(&d).to_string()
                    }),
                    _ => None,
                }
            });
            symbol.clone_from(name);
        }
    }

    /// The frames at `ip` (a return address) in the module at `slot`,
    /// loaded at `base`.
    fn resolve(&mut self, slot: usize, base: u64, ip: u64) -> Result<Resolved, SymbolizeError> {
        let debug = self.loaded[slot].clone()?;
        // A return address points after the call; the call (and its line)
        // is one byte earlier.
        let probe = ip.saturating_sub(1).wrapping_sub(base);
        if let Some(r) = self.frames.get(&(slot, probe)) {
            return Ok(r.clone());
        }
        let raw = Frame {
            ip: 0,
            function: None,
            file: None,
            line: None,
        };
        let frames: Resolved = match &*debug {
            DebugInfo::Loaded(loader) => {
                let frames = frames_at(loader, probe);
                if frames.is_empty() {
                    Rc::from([raw])
                } else {
                    Rc::from(frames)
                }
            }
            DebugInfo::Skip => Rc::from([raw]),
        };
        self.frames.insert((slot, probe), frames.clone());
        Ok(frames)
    }

    /// The index into `loaded` of `module`, loading it on first use.
    fn slot(&mut self, module: &Module) -> usize {
        let key = (module.path.clone(), module.build_id.clone());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let given = module
            .build_id
            .as_ref()
            .and_then(|id| self.files.get(id).map(|p| (id.clone(), p.clone())));
        let r = match given {
            Some((id, path)) => {
                self.used.push(id);
                load(&path)
            }
            None => open_checked(module),
        };
        self.loaded.push(r);
        self.index.insert(key, self.loaded.len() - 1);
        self.loaded.len() - 1
    }
}

/// A demangled Rust path without its trailing `::h0123456789abcdef`.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

/// Opens the module's own file, after checking it is the build that ran.
fn open_checked(module: &Module) -> Result<Rc<DebugInfo>, SymbolizeError> {
    if !module.path.starts_with('/') {
        // The vDSO and other objects without a file.
        return Ok(Rc::new(DebugInfo::Skip));
    }
    let path = Path::new(&module.path);
    let missing = |error: String| SymbolizeError::Missing {
        module: module.path.clone(),
        build_id: module.build_id.clone(),
        error,
    };
    if module.path.ends_with(" (deleted)") {
        return Err(missing(
            "deleted or replaced after the process started".into(),
        ));
    }
    let found = file_build_id(path).map_err(|e| {
        if path.exists() {
            SymbolizeError::Unreadable {
                path: path.to_path_buf(),
                error: e,
            }
        } else {
            missing(e)
        }
    })?;
    if let Some(expected) = &module.build_id {
        if found.as_ref() != Some(expected) {
            return Err(SymbolizeError::BuildIdMismatch {
                module: module.path.clone(),
                expected: expected.clone(),
                found,
            });
        }
        // A stripped binary's debug information may be installed apart.
        let split = separate_debug_file(expected);
        if let Some(debug) = split.filter(|_| !has_dwarf(path)) {
            return load(&debug);
        }
    }
    load(path)
}

/// Where distributions install separate debug information for a build id.
fn separate_debug_file(build_id: &str) -> Option<PathBuf> {
    let (dir, rest) = (build_id.get(..2)?, build_id.get(2..)?);
    let p = PathBuf::from(format!("/usr/lib/debug/.build-id/{dir}/{rest}.debug"));
    p.is_file().then_some(p)
}

/// Whether the file has DWARF line information.
fn has_dwarf(path: &Path) -> bool {
    let Ok(file) = open_regular(path) else {
        return false;
    };
    let cache = object::ReadCache::new(file);
    object::File::parse(&cache).is_ok_and(|o| o.section_by_name(".debug_line").is_some())
}

fn load(path: &Path) -> Result<Rc<DebugInfo>, SymbolizeError> {
    Loader::new(path)
        .map(|l| Rc::new(DebugInfo::Loaded(Box::new(l))))
        .map_err(|e| SymbolizeError::Unreadable {
            path: path.to_path_buf(),
            error: e.to_string(),
        })
}

/// The frames at file address `probe`, innermost inlined call first; the
/// symbol-table name where DWARF has none; empty if neither knows it.
fn frames_at(loader: &Loader, probe: u64) -> Vec<Frame> {
    let symbol = || {
        loader
            .find_symbol(probe)
            .map(|n| addr2line::demangle_auto(Cow::Borrowed(n), None).into_owned())
    };
    let mut out = Vec::new();
    if let Ok(mut frames) = loader.find_frames(probe) {
        while let Ok(Some(f)) = frames.next() {
            let function = match &f.function {
                Some(name) => name.demangle().ok().map(Cow::into_owned),
                None => symbol(),
            };
            let (file, line) = match &f.location {
                Some(l) => (l.file.map(str::to_string), l.line),
                None => (None, None),
            };
            out.push(Frame {
                ip: 0,
                function,
                file,
                line,
            });
        }
    }
    if out.is_empty() {
        if let Some(function) = symbol() {
            out.push(Frame {
                ip: 0,
                function: Some(function),
                file: None,
                line: None,
            });
        }
    }
    out
}
