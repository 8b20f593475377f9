//! The snapshot file format: versioned, self-describing JSON, one file per
//! snapshot, a series is a directory of `NNNNNN.json` files.
//!
//! A file is one line of compact JSON followed by a newline:
//!
//! ```text
//! {"format":"alloc-snapshot","version":5,"cycles":12,"snapshot":{...},"checksum":"fnv1a64:0123456789abcdef"}
//! ```
//!
//! - `format` is always `"alloc-snapshot"`; anything else is refused.
//! - `version` is [`FORMAT_VERSION`]; a larger number is refused with a
//!   message that says a newer tool wrote it.
//!
//! # Versions
//!
//! - **5** (written now): every field of [`Snapshot`] is required,
//!   including `retention` (`null` unless the snapshot was taken with a
//!   retention scan: what holds each sampled survivor, see
//!   [`crate::retention`]; its blocks sorted and disjoint, its indices
//!   checked).
//! - **4** (still read): version 5 without `retention`, which reads as
//!   `None`. Every other field is required,
//!   including the call-site data (`sampling`, `stacks`, `sites`,
//!   `histograms`), which are empty when sampling is off, the loaded
//!   modules (`modules`: path, load bias, executable address ranges, build
//!   id), which an offline symboliser needs to resolve raw stacks, and the
//!   run identity (`run`: `pid`, `started_unix_ns`, `id`, 32 lowercase hex
//!   digits; `null` for a snapshot no process took), which a series reader
//!   checks is the same in every file.
//! - **3** (still read): version 4 without `run`; it reads as `None`.
//! - **2** (still read): version 3 without `modules`; it reads as empty (the
//!   stacks of such files were symbolised by the process that wrote them,
//!   or cannot be symbolised offline).
//! - **1** (still read): the snapshot without the call-site data. Those four
//!   fields must be all absent (the original layout) or all present (files
//!   written by the builds between the schema change and version 2); absent
//!   ones read as empty. The checksum covers the layout the file has.
//! - `cycles` (optional) is the number of soak cycles completed when the
//!   snapshot was taken, written by a soak driver. Without it the analysis
//!   counts one cycle per epoch advance.
//! - `snapshot` is a [`Snapshot`].
//! - `checksum` is FNV-1a 64 over the compact JSON of the other four fields,
//!   in that order. It catches a changed digit that would still parse.
//!
//! Reading is strict: the file must be a regular file of at most
//! [`MAX_FILE_BYTES`] (checked before any byte is read; a FIFO or a device
//! is refused without blocking), complete (ends with a newline), valid
//! JSON, have exactly the fields of its version (nothing unknown, nothing
//! missing), a matching checksum and well-formed epoch ranges. Every failure
//! is a [`ReadError`] naming the file and the problem; reading never panics
//! and never returns part of a file or part of a series.
//!
//! A series is the snapshots of one process run: its files are numbered
//! without a gap or a number twice (the first may be any number), every
//! file has the first file's run identity (or none has one), and epochs,
//! cycles and timestamps never go backwards ([`SeriesCheck`]).
//!
//! Writing is atomic ([`write_atomic`]): the bytes go to a hidden temporary
//! file in the same directory, which is fsynced and then renamed over the
//! target, and the directory is fsynced. A reader sees the old file, the new
//! file, or no file, never half of one.
//!
//! # Where the I/O is
//!
//! [`encode`] and [`decode`] are pure: bytes in memory to and from a
//! [`SnapshotFile`] (the admin endpoint serves [`encode`]'s bytes; the soak
//! driver decodes them once and can write them as they came,
//! [`SeriesWriter::append_bytes`]). The file system is touched in two
//! submodules only: `series` (reading a file or a series directory, listing
//! it, appending to it) and `atomic` ([`write_atomic`], the workspace's one
//! atomic writer, which reports and benchmark results use too).

use std::fmt;
use std::path::PathBuf;

use crate::{
    AllocatorStats, EpochLive, Histograms, Sampling, SiteLive, Snapshot, Stack, ToolUsage, Totals,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

mod atomic;
mod series;
mod validate;

pub use atomic::write_atomic;
pub use series::{
    is_series_name, open_regular, read_path, read_regular, read_series, read_snapshot_file,
    series_files, write_snapshot_file, SeriesCheck, SeriesReader, SeriesWriter, SOAK_SERIES,
};

/// The value of the `format` field of every snapshot file.
pub const FORMAT_NAME: &str = "alloc-snapshot";
/// The newest file format version this build reads and the one it writes.
pub const FORMAT_VERSION: u64 = 5;
/// The oldest file format version this build still reads.
pub const OLDEST_READABLE_VERSION: u64 = 1;

/// The largest snapshot file read: 256 MiB. The largest snapshot
/// `alloc-core` takes is smaller: its bounds are 8,192 stacks of at most 32
/// return addresses and at most 262,144 sampled records, summed per stack
/// and epoch: about 34 MB with raw stacks, and a few times that once
/// symbolised (a frame per inlined call, each with a function name and a
/// file path of a few hundred bytes). A larger file is refused from its
/// size alone. Reading one costs memory in proportion to its size: the
/// bytes and the typed snapshot, a few times the bytes for a file of many
/// small frames ([`decode`] checks the long arrays, `stacks` and `sites`,
/// one element at a time from their text, never as a whole JSON tree).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The snapshot fields that version 1 files may lack.
const V2_SNAPSHOT_FIELDS: [&str; 4] = ["sampling", "stacks", "sites", "histograms"];

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
    #[must_use]
    pub fn new(snapshot: Snapshot) -> Self {
        SnapshotFile {
            cycles: None,
            snapshot,
        }
    }
}

/// The checksummed part of a file, in file order.
#[derive(Serialize)]
struct Body<'a, S> {
    format: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycles: Option<u64>,
    snapshot: S,
}

/// A whole file, as written.
#[derive(Serialize)]
struct EnvelopeOut<'a, S> {
    format: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycles: Option<u64>,
    snapshot: S,
    checksum: &'a str,
}

/// The snapshot as the original version-1 layout had it: without the
/// call-site fields. Field order is the file order.
#[derive(Serialize)]
struct SnapshotV1<'a> {
    epoch: u32,
    timestamp_unix_ns: u64,
    exact_window: u32,
    totals: &'a Totals,
    epochs: &'a [EpochLive],
    rss_bytes: Option<u64>,
    allocator: &'a Option<AllocatorStats>,
    tool: &'a ToolUsage,
}

impl<'a> SnapshotV1<'a> {
    fn of(s: &'a Snapshot) -> Self {
        SnapshotV1 {
            epoch: s.epoch,
            timestamp_unix_ns: s.timestamp_unix_ns,
            exact_window: s.exact_window,
            totals: &s.totals,
            epochs: &s.epochs,
            rss_bytes: s.rss_bytes,
            allocator: &s.allocator,
            tool: &s.tool,
        }
    }
}

/// The snapshot as version 2 had it: the version 1 fields, then the
/// call-site fields, without `modules`. Field order is the file order.
#[derive(Serialize)]
struct SnapshotV2<'a> {
    #[serde(flatten)]
    v1: SnapshotV1<'a>,
    sampling: &'a Sampling,
    stacks: &'a [Stack],
    sites: &'a [SiteLive],
    histograms: &'a Histograms,
}

impl<'a> SnapshotV2<'a> {
    fn of(s: &'a Snapshot) -> Self {
        SnapshotV2 {
            v1: SnapshotV1::of(s),
            sampling: &s.sampling,
            stacks: &s.stacks,
            sites: &s.sites,
            histograms: &s.histograms,
        }
    }
}

/// The snapshot as version 3 had it: the version 2 fields, then `modules`,
/// without `run`. Field order is the file order.
#[derive(Serialize)]
struct SnapshotV3<'a> {
    #[serde(flatten)]
    v2: SnapshotV2<'a>,
    modules: &'a [crate::Module],
}

impl<'a> SnapshotV3<'a> {
    fn of(s: &'a Snapshot) -> Self {
        SnapshotV3 {
            v2: SnapshotV2::of(s),
            modules: &s.modules,
        }
    }
}

/// The snapshot as version 4 had it: the version 3 fields, then `run`,
/// without `retention`. Field order is the file order.
#[derive(Serialize)]
struct SnapshotV4<'a> {
    #[serde(flatten)]
    v3: SnapshotV3<'a>,
    run: &'a Option<crate::RunIdentity>,
}

impl<'a> SnapshotV4<'a> {
    fn of(s: &'a Snapshot) -> Self {
        SnapshotV4 {
            v3: SnapshotV3::of(s),
            run: &s.run,
        }
    }
}

/// Which layout a file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Version 1 without the call-site fields.
    V1Original,
    /// Version 1 with the call-site fields (the interim builds).
    V1WithSites,
    /// Version 2: the version 3 fields but `modules`.
    V2,
    /// Version 3: every field but `run`.
    V3,
    /// Version 4: every field but `retention`.
    V4,
    /// Version 5: every field.
    V5,
}

/// A whole file of any version, as read (the version decides which fields
/// must be there; see [`decode`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    // Checked on the JSON value before the typed parse; kept so that the
    // typed parse refuses files without them.
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u64,
    #[serde(default)]
    cycles: Option<u64>,
    snapshot: Snapshot,
    checksum: String,
}

/// What is wrong with a file or a series directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Snapshots of a series go backwards (epoch, cycles or timestamp).
    OutOfOrder(String),
    /// A series' numbering has a gap or a number twice.
    Numbering(String),
    /// A file of a series was taken in another process run than the
    /// series' first file.
    OtherRun(String),
    /// The path is not a regular file (a directory, a FIFO, a device...).
    NotAFile(String),
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge(u64),
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
            Problem::Schema(e) => write!(f, "does not match its file format version: {e}"),
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
            Problem::Numbering(e) => write!(f, "series numbering broken: {e}"),
            Problem::OtherRun(e) => write!(
                f,
                "snapshot of another process run: {e}; a series holds the snapshots of one \
                 run (move the other run's files to a directory of their own)"
            ),
            Problem::NotAFile(what) => write!(
                f,
                "not a regular file ({what}); only regular files are read"
            ),
            Problem::TooLarge(size) => write!(
                f,
                "{size} bytes, over the {} MiB a snapshot file may have; refused unread",
                MAX_FILE_BYTES >> 20
            ),
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

impl std::error::Error for Problem {}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.problem)
    }
}

/// FNV-1a, 64 bits, rendered as `fnv1a64:` and 16 lowercase hex digits.
fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

fn body_checksum(layout: Layout, cycles: Option<u64>, snapshot: &Snapshot) -> String {
    fn sum<S: Serialize>(version: u64, cycles: Option<u64>, snapshot: S) -> String {
        let body = Body {
            format: FORMAT_NAME,
            version,
            cycles,
            snapshot,
        };
        // Serialising plain data cannot fail, except for a non-finite float,
        // which JSON cannot hold; such a snapshot gets the checksum of
        // nothing and is refused on reading.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        checksum(&bytes)
    }
    match layout {
        Layout::V1Original => sum(1, cycles, SnapshotV1::of(snapshot)),
        Layout::V1WithSites => sum(1, cycles, SnapshotV2::of(snapshot)),
        Layout::V2 => sum(2, cycles, SnapshotV2::of(snapshot)),
        Layout::V3 => sum(3, cycles, SnapshotV3::of(snapshot)),
        Layout::V4 => sum(4, cycles, SnapshotV4::of(snapshot)),
        Layout::V5 => sum(5, cycles, snapshot),
    }
}

/// The file of `layout` as a JSON value, for comparison with what was read.
fn layout_value(
    layout: Layout,
    cycles: Option<u64>,
    snapshot: &Snapshot,
    checksum: &str,
) -> Result<Value, serde_json::Error> {
    fn value<S: Serialize>(
        version: u64,
        cycles: Option<u64>,
        snapshot: S,
        checksum: &str,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(EnvelopeOut {
            format: FORMAT_NAME,
            version,
            cycles,
            snapshot,
            checksum,
        })
    }
    match layout {
        Layout::V1Original => value(1, cycles, SnapshotV1::of(snapshot), checksum),
        Layout::V1WithSites => value(1, cycles, SnapshotV2::of(snapshot), checksum),
        Layout::V2 => value(2, cycles, SnapshotV2::of(snapshot), checksum),
        Layout::V3 => value(3, cycles, SnapshotV3::of(snapshot), checksum),
        Layout::V4 => value(4, cycles, SnapshotV4::of(snapshot), checksum),
        Layout::V5 => value(5, cycles, snapshot, checksum),
    }
}

/// The exact bytes [`write_snapshot_file`] writes for `file` (the current
/// version, [`FORMAT_VERSION`]).
///
/// Estimates that are not finite numbers (NaN, infinity) cannot be written
/// as JSON; they are written as 0.
#[must_use]
pub fn encode(file: &SnapshotFile) -> Vec<u8> {
    encode_parts(file.cycles, &file.snapshot)
}

/// [`encode`] of a file with `cycles` and `snapshot`, without building one.
fn encode_parts(cycles: Option<u64>, snapshot: &Snapshot) -> Vec<u8> {
    let mut clean;
    let mut snapshot = snapshot;
    if snapshot
        .sites
        .iter()
        .any(|s| !s.bytes.is_finite() || !s.blocks.is_finite())
    {
        clean = snapshot.clone();
        for s in &mut clean.sites {
            if !s.bytes.is_finite() {
                s.bytes = 0.0;
            }
            if !s.blocks.is_finite() {
                s.blocks = 0.0;
            }
        }
        snapshot = &clean;
    }
    let sum = body_checksum(Layout::V5, cycles, snapshot);
    let out = EnvelopeOut {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        cycles,
        snapshot,
        checksum: &sum,
    };
    let mut bytes = serde_json::to_vec(&out).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Where two JSON values first differ, as a path like
/// `snapshot.sites[3].bytes` and what each side has there.
fn first_difference(read: &Value, typed: &Value, path: &mut String) -> Option<String> {
    let describe = |v: Option<&Value>| match v {
        None => "nothing".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::Number(n)) if n.is_f64() => format!("the float {n}"),
        Some(Value::Number(n)) => format!("the integer {n}"),
        Some(Value::String(_)) => "a string".to_string(),
        Some(Value::Bool(_)) => "a boolean".to_string(),
        Some(Value::Array(_)) => "an array".to_string(),
        Some(Value::Object(_)) => "an object".to_string(),
    };
    match (read, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let found = match b.get(k) {
                    Some(vb) => first_difference(va, vb, path),
                    None => Some(format!("unknown field {path}")),
                };
                if found.is_some() {
                    return found;
                }
                path.truncate(len);
            }
            b.keys().find(|k| !a.contains_key(*k)).map(|k| {
                if path.is_empty() {
                    format!("missing field {k}")
                } else {
                    format!("missing field {path}.{k}")
                }
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(d) = first_difference(va, vb, path) {
                    return Some(d);
                }
                path.truncate(len);
            }
            None
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{path} is {} where {} was expected",
            describe(Some(a)),
            describe(Some(b))
        )),
    }
}

/// A file's JSON as read: every field a [`Value`], but for
/// `snapshot.stacks` and `snapshot.sites`, when they are arrays, an empty
/// array there and their elements kept as text (of the file's bytes).
struct Read<'a> {
    value: Value,
    stacks: Option<Vec<&'a RawValue>>,
    sites: Option<Vec<&'a RawValue>>,
}

/// An object's fields as text.
type RawFields<'a> = BTreeMap<String, &'a RawValue>;

/// Parses a file's JSON ([`Read`]).
fn read_json(bytes: &[u8]) -> Result<Read<'_>, Problem> {
    let syntax = |e: serde_json::Error| {
        if e.is_eof() {
            Problem::Truncated(e.to_string())
        } else {
            Problem::Syntax(e.to_string())
        }
    };
    let parse = |raw: &RawValue| -> Result<Value, Problem> {
        serde_json::from_str(raw.get()).map_err(syntax)
    };
    let mut read = Read {
        value: Value::Null,
        stacks: None,
        sites: None,
    };
    let fields = match serde_json::from_slice::<RawFields<'_>>(bytes) {
        Ok(fields) => fields,
        // Valid JSON, but not an object: the caller refuses it.
        Err(e) if e.is_data() => {
            read.value = serde_json::from_slice(bytes).map_err(syntax)?;
            return Ok(read);
        }
        Err(e) => return Err(syntax(e)),
    };
    let mut top = serde_json::Map::new();
    for (key, raw) in fields {
        let snapshot = (key == "snapshot")
            .then(|| serde_json::from_str::<RawFields<'_>>(raw.get()).ok())
            .flatten();
        let value = match snapshot {
            Some(snapshot) => {
                let mut out = serde_json::Map::new();
                for (field, raw) in snapshot {
                    let elements = ["stacks", "sites"]
                        .contains(&field.as_str())
                        .then(|| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
                        .flatten();
                    let value = match elements {
                        Some(elements) => {
                            if field == "stacks" {
                                read.stacks = Some(elements);
                            } else {
                                read.sites = Some(elements);
                            }
                            Value::Array(Vec::new())
                        }
                        None => parse(raw)?,
                    };
                    out.insert(field, value);
                }
                Value::Object(out)
            }
            None => parse(raw)?,
        };
        top.insert(key, value);
    }
    read.value = Value::Object(top);
    Ok(read)
}

/// Whether the elements read (as text) are `typed` written back, one at a
/// time; the first difference as a path under `path` if not.
fn same_elements<T: Serialize>(
    path: &str,
    read: Option<Vec<&RawValue>>,
    typed: &[T],
) -> Result<(), String> {
    let Some(read) = read else {
        return Ok(());
    };
    if read.len() != typed.len() {
        return Err(format!(
            "{path} has {} elements where {} were read back",
            read.len(),
            typed.len()
        ));
    }
    for (i, (r, t)) in read.into_iter().zip(typed).enumerate() {
        let r: Value = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
        let t = serde_json::to_value(t).map_err(|e| e.to_string())?;
        if r != t {
            let mut at = format!("{path}[{i}]");
            return Err(first_difference(&r, &t, &mut at)
                .unwrap_or_else(|| format!("{at}: unknown, missing or null-for-absent fields")));
        }
    }
    Ok(())
}

/// Parses the bytes of one snapshot file. Never panics.
pub fn decode(bytes: &[u8]) -> Result<SnapshotFile, Problem> {
    if bytes.is_empty() {
        return Err(Problem::Empty);
    }
    let read = read_json(bytes)?;
    let Some(object) = read.value.as_object() else {
        return Err(Problem::NotASnapshot(
            "the top level is not a JSON object".into(),
        ));
    };
    check_format(object)?;
    let version = check_version(object)?;
    if !bytes.ends_with(b"\n") {
        return Err(Problem::Truncated(
            "no final newline (every complete file ends with one)".into(),
        ));
    }
    let layout = layout_of(version, object);
    let env: EnvelopeIn =
        serde_json::from_slice(bytes).map_err(|e| Problem::Schema(e.to_string()))?;
    let env = check_schema(layout, read, env)?;
    let computed = body_checksum(layout, env.cycles, &env.snapshot);
    if computed != env.checksum {
        return Err(Problem::Checksum {
            stored: env.checksum,
            computed,
        });
    }
    validate::validate(&env.snapshot).map_err(Problem::Invalid)?;
    Ok(SnapshotFile {
        cycles: env.cycles,
        snapshot: env.snapshot,
    })
}

/// The file's `format` names this format.
fn check_format(object: &serde_json::Map<String, Value>) -> Result<(), Problem> {
    match object.get("format") {
        Some(Value::String(s)) if s == FORMAT_NAME => Ok(()),
        Some(Value::String(s)) => Err(Problem::NotASnapshot(format!(
            "format is {s:?}, expected {FORMAT_NAME:?}"
        ))),
        Some(_) => Err(Problem::NotASnapshot("format is not a string".into())),
        None => Err(Problem::NotASnapshot("no \"format\" field".into())),
    }
}

/// The file's `version`, one this reader reads.
fn check_version(object: &serde_json::Map<String, Value>) -> Result<u64, Problem> {
    match object.get("version") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > FORMAT_VERSION => Err(Problem::NewerVersion(v)),
            Some(v) if v < OLDEST_READABLE_VERSION => {
                Err(Problem::BadVersion(format!("version {v} does not exist")))
            }
            Some(v) => Ok(v),
            None => Err(Problem::BadVersion(format!("{n} is not a version number"))),
        },
        Some(_) => Err(Problem::BadVersion("version is not a number".into())),
        None => Err(Problem::BadVersion("no \"version\" field".into())),
    }
}

/// The layout a file of `version` has (version 1 with or without sites).
fn layout_of(version: u64, object: &serde_json::Map<String, Value>) -> Layout {
    match version {
        1 => {
            let has_sites = object
                .get("snapshot")
                .and_then(Value::as_object)
                .is_some_and(|s| V2_SNAPSHOT_FIELDS.iter().any(|k| s.contains_key(*k)));
            if has_sites {
                Layout::V1WithSites
            } else {
                Layout::V1Original
            }
        }
        2 => Layout::V2,
        3 => Layout::V3,
        4 => Layout::V4,
        _ => Layout::V5,
    }
}

/// Every field of the version present, none unknown, at every depth: the
/// typed value `env` written back in the file's layout must be the JSON
/// that was `read`. The two long arrays (`stacks`, `sites`) are compared
/// one element at a time, from their text, so that neither side's JSON is
/// ever whole in memory: first everything else, with both arrays empty on
/// both sides.
fn check_schema(
    layout: Layout,
    read: Read<'_>,
    mut env: EnvelopeIn,
) -> Result<EnvelopeIn, Problem> {
    let Read {
        value,
        stacks,
        sites,
    } = read;
    let typed_stacks = std::mem::take(&mut env.snapshot.stacks);
    let typed_sites = std::mem::take(&mut env.snapshot.sites);
    let schema = |what: String| {
        Problem::Schema(if layout == Layout::V1WithSites {
            format!(
                "{what} (a version 1 file has all or none of {})",
                V2_SNAPSHOT_FIELDS.join(", ")
            )
        } else {
            what
        })
    };
    match layout_value(layout, env.cycles, &env.snapshot, &env.checksum) {
        Ok(round) if round == value => {}
        Ok(round) => {
            return Err(schema(
                first_difference(&value, &round, &mut String::new())
                    .unwrap_or_else(|| "unknown, missing or null-for-absent fields".into()),
            ));
        }
        Err(e) => return Err(Problem::Schema(e.to_string())),
    }
    drop(value);
    same_elements("snapshot.stacks", stacks, &typed_stacks).map_err(schema)?;
    same_elements("snapshot.sites", sites, &typed_sites).map_err(schema)?;
    env.snapshot.stacks = typed_stacks;
    env.snapshot.sites = typed_sites;
    Ok(env)
}
