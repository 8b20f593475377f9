//! The snapshot file format: versioned, self-describing JSON, one file per
//! snapshot, a series is a directory of `NNNNNN.json` files.
//!
//! A file is one line of compact JSON followed by a newline:
//!
//! ```text
//! {"format":"alloc-snapshot","version":1,"cycles":12,"snapshot":{...},"checksum":"fnv1a64:0123456789abcdef"}
//! ```
//!
//! - `format` is always `"alloc-snapshot"`; anything else is refused.
//! - `version` is [`FORMAT_VERSION`]; a larger number is refused with a
//!   message that says a newer tool wrote it.
//! - `cycles` (optional) is the number of soak cycles completed when the
//!   snapshot was taken, written by a soak driver. Without it the analysis
//!   counts one cycle per epoch advance.
//! - `snapshot` is an [`alloc_snapshot::Snapshot`].
//! - `checksum` is FNV-1a 64 over the compact JSON of the other four fields,
//!   in that order. It catches a changed digit that would still parse.
//!
//! Reading is strict: the file must be complete (ends with a newline), valid
//! JSON, have exactly the fields of its version (nothing unknown, nothing
//! missing), a matching checksum and well-formed epoch ranges. Every failure
//! is a [`ReadError`] naming the file and the problem; reading never panics
//! and never returns part of a file or part of a series.
//!
//! Writing is atomic: the bytes go to a hidden temporary file in the same
//! directory, which is fsynced and then renamed over the target, and the
//! directory is fsynced. A reader sees the old file, the new file, or no
//! file, never half of one.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::Snapshot;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The value of the `format` field of every snapshot file.
pub const FORMAT_NAME: &str = "alloc-snapshot";
/// The newest file format version this build reads and the one it writes.
pub const FORMAT_VERSION: u64 = 1;

/// The content of one snapshot file.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFile {
    /// Soak cycles completed when the snapshot was taken, if the writer knew.
    pub cycles: Option<u64>,
    /// The snapshot itself.
    pub snapshot: Snapshot,
}

impl SnapshotFile {
    /// A file for `snapshot` with no cycle count.
    pub fn new(snapshot: Snapshot) -> Self {
        SnapshotFile {
            cycles: None,
            snapshot,
        }
    }
}

/// The checksummed part of a file, in file order.
#[derive(Serialize)]
struct Body<'a> {
    format: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycles: Option<u64>,
    snapshot: &'a Snapshot,
}

/// A whole file, as written.
#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycles: Option<u64>,
    snapshot: &'a Snapshot,
    checksum: String,
}

/// A whole version-1 file, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeV1 {
    format: String,
    version: u64,
    #[serde(default)]
    cycles: Option<u64>,
    snapshot: Snapshot,
    checksum: String,
}

/// What is wrong with a file or a series directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file or directory could not be read.
    Io(String),
    /// The file has no bytes.
    Empty,
    /// The file ends early (no final newline, or the JSON stops mid-way).
    Truncated(String),
    /// The bytes are not valid JSON.
    Syntax(String),
    /// The JSON is not an alloc-snapshot file (wrong or missing `format`).
    NotASnapshot(String),
    /// A newer tool wrote this file.
    NewerVersion(u64),
    /// The version field is missing, not a number, or 0.
    BadVersion(String),
    /// The fields do not match this format version.
    Schema(String),
    /// The stored checksum does not match the content.
    Checksum {
        /// The checksum stored in the file.
        stored: String,
        /// The checksum of the content as read.
        computed: String,
    },
    /// The snapshot is structurally invalid (epoch ranges).
    Invalid(String),
    /// A series directory holds no `NNNNNN.json` file.
    EmptySeries,
    /// Snapshots of a series go backwards (epoch or cycles).
    OutOfOrder(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "cannot read: {e}"),
            Problem::Empty => write!(f, "empty file (0 bytes)"),
            Problem::Truncated(e) => write!(f, "truncated file: {e}"),
            Problem::Syntax(e) => write!(f, "not valid JSON: {e}"),
            Problem::NotASnapshot(e) => write!(f, "not an alloc-snapshot file: {e}"),
            Problem::NewerVersion(v) => write!(
                f,
                "written by a newer alloc-report (file format version {v}; this build reads \
                 versions up to {FORMAT_VERSION}); upgrade alloc-report to read it"
            ),
            Problem::BadVersion(e) => write!(f, "bad format version: {e}"),
            Problem::Schema(e) => {
                write!(
                    f,
                    "does not match file format version {FORMAT_VERSION}: {e}"
                )
            }
            Problem::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored}, content gives {computed}): \
                 the file was altered or corrupted"
            ),
            Problem::Invalid(e) => write!(f, "invalid snapshot: {e}"),
            Problem::EmptySeries => {
                write!(f, "no snapshot files (NNNNNN.json) in this directory")
            }
            Problem::OutOfOrder(e) => write!(f, "series out of order: {e}"),
        }
    }
}

/// An error reading a snapshot file or series: the path and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for ReadError {}

/// FNV-1a, 64 bits, rendered as `fnv1a64:` and 16 lowercase hex digits.
fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

fn body_checksum(cycles: Option<u64>, snapshot: &Snapshot) -> String {
    let body = Body {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        cycles,
        snapshot,
    };
    // Serialising plain integers, strings and options cannot fail.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    checksum(&bytes)
}

/// The exact bytes [`write_snapshot_file`] writes for `file`.
pub fn encode(file: &SnapshotFile) -> Vec<u8> {
    let out = EnvelopeOut {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        cycles: file.cycles,
        snapshot: &file.snapshot,
        checksum: body_checksum(file.cycles, &file.snapshot),
    };
    let mut bytes = serde_json::to_vec(&out).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Parses the bytes of one snapshot file. Never panics.
pub fn decode(bytes: &[u8]) -> Result<SnapshotFile, Problem> {
    if bytes.is_empty() {
        return Err(Problem::Empty);
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Err(Problem::Truncated(e.to_string())),
        Err(e) => return Err(Problem::Syntax(e.to_string())),
    };
    let Some(object) = value.as_object() else {
        return Err(Problem::NotASnapshot(
            "the top level is not a JSON object".into(),
        ));
    };
    match object.get("format") {
        Some(Value::String(s)) if s == FORMAT_NAME => {}
        Some(Value::String(s)) => {
            return Err(Problem::NotASnapshot(format!(
                "format is {s:?}, expected {FORMAT_NAME:?}"
            )))
        }
        Some(_) => return Err(Problem::NotASnapshot("format is not a string".into())),
        None => return Err(Problem::NotASnapshot("no \"format\" field".into())),
    }
    match object.get("version") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > FORMAT_VERSION => return Err(Problem::NewerVersion(v)),
            Some(0) => return Err(Problem::BadVersion("version 0 does not exist".into())),
            Some(_) => {}
            None => return Err(Problem::BadVersion(format!("{n} is not a version number"))),
        },
        Some(_) => return Err(Problem::BadVersion("version is not a number".into())),
        None => return Err(Problem::BadVersion("no \"version\" field".into())),
    }
    if !bytes.ends_with(b"\n") {
        return Err(Problem::Truncated(
            "no final newline (every complete file ends with one)".into(),
        ));
    }
    let env: EnvelopeV1 =
        serde_json::from_slice(bytes).map_err(|e| Problem::Schema(e.to_string()))?;
    // Every field present, none unknown, at every depth: the typed value
    // written back must be the JSON that was read.
    let out = EnvelopeOut {
        format: &env.format,
        version: env.version,
        cycles: env.cycles,
        snapshot: &env.snapshot,
        checksum: env.checksum.clone(),
    };
    match serde_json::to_value(&out) {
        Ok(round) if round == value => {}
        _ => {
            return Err(Problem::Schema(
                "unknown, missing or null-for-absent fields".into(),
            ))
        }
    }
    let computed = body_checksum(env.cycles, &env.snapshot);
    if computed != env.checksum {
        return Err(Problem::Checksum {
            stored: env.checksum,
            computed,
        });
    }
    validate(&env.snapshot).map_err(Problem::Invalid)?;
    Ok(SnapshotFile {
        cycles: env.cycles,
        snapshot: env.snapshot,
    })
}

/// Structural checks a snapshot must pass: epoch ranges ordered, disjoint.
fn validate(s: &Snapshot) -> Result<(), String> {
    let mut prev_last: Option<u32> = None;
    for e in &s.epochs {
        if e.first > e.last {
            return Err(format!("epoch range {}..={} is reversed", e.first, e.last));
        }
        if let Some(p) = prev_last {
            if e.first <= p {
                return Err(format!(
                    "epoch range {}..={} overlaps or precedes the one before it",
                    e.first, e.last
                ));
            }
        }
        if e.last > s.epoch {
            return Err(format!(
                "blocks born in epoch {} but the snapshot is at epoch {}",
                e.last, s.epoch
            ));
        }
        prev_last = Some(e.last);
    }
    Ok(())
}

/// Reads one snapshot file.
pub fn read_snapshot_file(path: &Path) -> Result<SnapshotFile, ReadError> {
    let err = |problem| ReadError {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = fs::read(path).map_err(|e| err(Problem::Io(e.to_string())))?;
    decode(&bytes).map_err(err)
}

/// Whether `name` is a series file name: ASCII digits, then `.json`.
fn is_series_name(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// The series files of `dir`, in name order (which is numeric order, since
/// the writer zero-pads). Other names, including temporary files, are skipped.
pub fn series_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let err = |problem| ReadError {
        path: dir.to_path_buf(),
        problem,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| err(Problem::Io(e.to_string())))? {
        let entry = entry.map_err(|e| err(Problem::Io(e.to_string())))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_series_name) {
            files.push(entry.path());
        }
    }
    // Zero-padded names sort numerically; longer names (past 999999) after.
    files.sort_by(|a, b| {
        let (a, b) = (a.file_name(), b.file_name());
        a.map(|n| n.len())
            .cmp(&b.map(|n| n.len()))
            .then_with(|| a.cmp(&b))
    });
    if files.is_empty() {
        return Err(err(Problem::EmptySeries));
    }
    Ok(files)
}

/// Reads a whole series directory. Any bad file fails the whole read.
pub fn read_series(dir: &Path) -> Result<Vec<SnapshotFile>, ReadError> {
    let mut out: Vec<SnapshotFile> = Vec::new();
    for path in series_files(dir)? {
        let file = read_snapshot_file(&path)?;
        if let Some(prev) = out.last() {
            let order = |msg: String| ReadError {
                path: path.clone(),
                problem: Problem::OutOfOrder(msg),
            };
            if file.snapshot.epoch < prev.snapshot.epoch {
                return Err(order(format!(
                    "epoch {} is before the previous file's epoch {}",
                    file.snapshot.epoch, prev.snapshot.epoch
                )));
            }
            if let (Some(c), Some(p)) = (file.cycles, prev.cycles) {
                if c < p {
                    return Err(order(format!(
                        "cycles {c} is fewer than the previous file's {p}"
                    )));
                }
            }
        }
        out.push(file);
    }
    Ok(out)
}

/// Reads a series directory, or a single file as a series of one.
pub fn read_path(path: &Path) -> Result<Vec<SnapshotFile>, ReadError> {
    if path.is_dir() {
        read_series(path)
    } else {
        read_snapshot_file(path).map(|f| vec![f])
    }
}

/// Writes `file` to `path` atomically (temporary file, fsync, rename, fsync
/// of the directory).
pub fn write_snapshot_file(path: &Path, file: &SnapshotFile) -> io::Result<()> {
    let bytes = encode(file);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable. Not every platform can open a directory.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Appends snapshots to a series directory as `000000.json`, `000001.json`...
#[derive(Debug)]
pub struct SeriesWriter {
    dir: PathBuf,
    next: u64,
}

impl SeriesWriter {
    /// Opens (creating if needed) a series directory; numbering continues
    /// after the highest existing file.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut next = 0;
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(n) = name
                .to_str()
                .filter(|n| is_series_name(n))
                .and_then(|n| n.trim_end_matches(".json").parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
        }
        Ok(SeriesWriter {
            dir: dir.to_path_buf(),
            next,
        })
    }

    /// Writes the next file of the series and returns its path.
    pub fn append(&mut self, snapshot: &Snapshot, cycles: Option<u64>) -> io::Result<PathBuf> {
        let path = self.dir.join(format!("{:06}.json", self.next));
        let file = SnapshotFile {
            cycles,
            snapshot: snapshot.clone(),
        };
        write_snapshot_file(&path, &file)?;
        self.next += 1;
        Ok(path)
    }
}
