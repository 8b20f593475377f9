//! The pprof profile format (`profile.proto` of github.com/google/pprof),
//! declared here as `prost` messages, and the survivors of a report as a
//! gzipped profile.
//!
//! The profile has two sample types, `survivor_objects/count` and
//! `survivor_space/bytes` (the last is pprof's default), one sample per call
//! stack and birth epoch with the birth epoch as the numeric label
//! `birth_epoch` (unit `epoch`), so `pprof -tagfocus birth_epoch=100:` shows
//! what was born from epoch 100 on, and `pprof -diff_base old.pb.gz
//! new.pb.gz` compares two runs. A stack starts at its user frame (the
//! allocating line; the allocator machinery and the tool's capture frames
//! inside it are left out, as heap profiles do). Frames that share an
//! address (inlined calls) become one location with several lines,
//! innermost first, as pprof expects. Without call-site data the profile has one pseudo-frame,
//! `(all)`, and the exact survivors per birth epoch.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use crate::analysis::{HashMap, Report, ALL_SITES};
use crate::render::shown_frames;

/// `perftools.profiles.Profile`.
#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    /// What each value of a sample measures.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The samples.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// Mapped binaries (none here: frames are already symbolised).
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    /// Locations (addresses with their lines).
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// All strings; index 0 is the empty string.
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// Index of a regexp of frames to drop.
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// Index of a regexp of frames to keep.
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    /// When the profile was taken, ns since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// How long it covers.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// The kind of events between samples.
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// Events between samples.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form comments (string table indices).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// Index of the sample type shown by default.
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// `perftools.profiles.ValueType`.
#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    /// String table index of the type (`survivor_space`).
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// String table index of the unit (`bytes`).
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `perftools.profiles.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// Location ids, leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per sample type.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Labels.
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `perftools.profiles.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// String table index of the key.
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// String table index of a string value.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// A numeric value.
    #[prost(int64, tag = "3")]
    pub num: i64,
    /// String table index of the numeric value's unit.
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// `perftools.profiles.Mapping`.
#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Start address.
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    /// End address.
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    /// Offset in the file.
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// String table index of the file name.
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// String table index of the build id.
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    /// Functions are symbolised.
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    /// File names are symbolised.
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    /// Line numbers are symbolised.
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    /// Inlined functions are symbolised.
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// `perftools.profiles.Location`.
#[derive(Clone, PartialEq, Message)]
pub struct Location {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The mapping's id, 0 for none.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    /// The instruction address.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Lines, innermost inlined call first, the caller last.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    /// Whether several locations share this address.
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// `perftools.profiles.Line`.
#[derive(Clone, PartialEq, Message)]
pub struct Line {
    /// The function's id.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// The source line, 0 if unknown.
    #[prost(int64, tag = "2")]
    pub line: i64,
    /// The source column, 0 if unknown.
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// `perftools.profiles.Function`.
#[derive(Clone, PartialEq, Message)]
pub struct Function {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// String table index of the name shown.
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// String table index of the name as in the binary.
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// String table index of the source file.
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// The function's first line, 0 if unknown.
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// Builds a profile: interns strings, functions and locations.
struct Builder {
    p: Profile,
    strings: HashMap<String, i64>,
    /// (name, file) string indices -> function id.
    functions: HashMap<(i64, i64), u64>,
    /// (address, first line's function and line, line count) -> location
    /// ids with that key (checked against the lines on a hit).
    locations: HashMap<(u64, u64, i64, usize), Vec<u64>>,
}

impl Builder {
    fn new() -> Self {
        let mut b = Builder {
            p: Profile::default(),
            strings: HashMap::default(),
            functions: HashMap::default(),
            locations: HashMap::default(),
        };
        b.s("");
        b
    }

    fn s(&mut self, v: &str) -> i64 {
        if let Some(&i) = self.strings.get(v) {
            return i;
        }
        let i = self.p.string_table.len() as i64;
        self.p.string_table.push(v.to_string());
        self.strings.insert(v.to_string(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let (n, f) = (self.s(name), self.s(file));
        let key = (n, f);
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.p.function.len() as u64 + 1;
        self.p.function.push(Function {
            id,
            name: n,
            system_name: n,
            filename: f,
            start_line: 0,
        });
        self.functions.insert(key, id);
        id
    }

    /// A location for `lines` (function id, line) at `address`.
    fn location(&mut self, address: u64, lines: Vec<(u64, i64)>) -> u64 {
        let (f0, l0) = lines.first().copied().unwrap_or((0, 0));
        let key = (address, f0, l0, lines.len());
        if let Some(ids) = self.locations.get(&key) {
            for &id in ids {
                let loc = &self.p.location[(id - 1) as usize];
                if loc
                    .line
                    .iter()
                    .map(|l| (l.function_id, l.line))
                    .eq(lines.iter().copied())
                {
                    return id;
                }
            }
        }
        let id = self.p.location.len() as u64 + 1;
        self.p.location.push(Location {
            id,
            mapping_id: 0,
            address,
            line: lines
                .into_iter()
                .map(|(function_id, line)| Line {
                    function_id,
                    line,
                    column: 0,
                })
                .collect(),
            is_folded: false,
        });
        self.locations.entry(key).or_default().push(id);
        id
    }

    fn sample(&mut self, locations: Vec<u64>, blocks: f64, bytes: f64, epoch: u32) {
        let (key, unit) = (self.s("birth_epoch"), self.s("epoch"));
        self.p.sample.push(Sample {
            location_id: locations,
            value: vec![blocks.round() as i64, bytes.round() as i64],
            label: vec![Label {
                key,
                str: 0,
                num: i64::from(epoch),
                num_unit: unit,
            }],
        });
    }
}

/// The survivors at the report's last snapshot as a `Profile` message.
pub fn profile(r: &Report) -> Profile {
    let prof = &r.profile;
    let mut b = Builder::new();
    let objects = ValueType {
        r#type: b.s("survivor_objects"),
        unit: b.s("count"),
    };
    let space = ValueType {
        r#type: b.s("survivor_space"),
        unit: b.s("bytes"),
    };
    b.p.sample_type = vec![objects, space.clone()];
    b.p.default_sample_type = space.r#type;
    b.p.period_type = Some(space);
    b.p.period = i64::try_from(prof.mean_interval_bytes).unwrap_or(i64::MAX);
    b.p.time_nanos = i64::try_from(prof.timestamp_unix_ns).unwrap_or(i64::MAX);
    let comment = b.s(&format!(
        "alloc-report: survivors at epoch {} born since epoch {} (estimated from sampled call \
         sites where present)",
        prof.epoch, r.start_epoch
    ));
    b.p.comment = vec![comment];

    if prof.stacks.is_empty() {
        let f = b.function(ALL_SITES, "");
        let loc = b.location(0, vec![(f, 0)]);
        for e in &prof.whole_heap {
            b.sample(vec![loc], e.live_blocks as f64, e.live_bytes as f64, e.last);
        }
        return b.p;
    }
    // Location ids per stack, leaf first.
    let mut stack_locs: Vec<Vec<u64>> = Vec::with_capacity(prof.stacks.len());
    for st in &prof.stacks {
        let frames = shown_frames(st);
        let mut locs = Vec::new();
        let mut i = 0;
        while i < frames.len() {
            let ip = frames[i].ip;
            let mut lines = Vec::new();
            while i < frames.len() && frames[i].ip == ip {
                let fr = &frames[i];
                let file = fr.file.as_deref().unwrap_or("");
                let func = match &fr.function {
                    Some(name) => b.function(name, file),
                    None => b.function(&fr.label(), file),
                };
                lines.push((func, fr.line.map_or(0, i64::from)));
                i += 1;
            }
            locs.push(b.location(ip, lines));
        }
        if locs.is_empty() {
            let f = b.function(&st.label(), "");
            locs.push(b.location(0, vec![(f, 0)]));
        }
        stack_locs.push(locs);
    }
    for e in &prof.entries {
        b.sample(stack_locs[e.stack].clone(), e.blocks, e.bytes, e.epoch);
    }
    b.p
}

/// The survivors as a gzipped `profile.proto`, as `pprof` reads it.
#[must_use]
pub fn pprof(r: &Report) -> Vec<u8> {
    let raw = profile(r).encode_to_vec();
    // Fast compression: a tenth of the time of the default level for a
    // profile a few per cent larger.
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&raw);
    gz.finish().unwrap_or_default()
}
