//! The pprof profile format (`profile.proto` of github.com/google/pprof)
//! and the one encoder of it that the workspace has (feature `pprof`):
//! [`ProfileBuilder`] interns strings, functions, locations and mappings;
//! [`heap`] turns a snapshot into the live heap profile that the admin
//! endpoint serves at `/debug/pprof/heap`; `alloc-report` builds its
//! survivor profile with the same builder; [`gzip`] gives the bytes pprof
//! reads.
//!
//! A stack that is symbolised starts at its user frame (the allocating line;
//! the allocator machinery and the tool's capture frames inside it are left
//! out, as heap profiles do), and frames that share an address (inlined
//! calls) become one location with several lines, innermost first, as pprof
//! expects. A raw stack (a live process does not parse its own debug
//! information) becomes addresses in mappings that carry each module's path
//! and GNU build id, which pprof symbolises from the files on disk, and the
//! profile's `drop_frames` ([`DROP_FRAMES`]) removes the machinery there.

mod proto;

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

pub use proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

use crate::{Module, Snapshot, Stack};

/// What pprof drops from the leaf end of a raw stack once it has
/// symbolised it (a regular expression that must match a whole function
/// name): the tool's capture and accounting, the global-allocator shims,
/// and the standard library's allocation entry points, for stacks that
/// still hold them (the admin endpoint cuts its stacks at the user frame
/// first). Only names that nothing but allocation uses are listed: pprof
/// cuts a stack at the first match from the root after a user frame, so
/// `std::.*` would cut a thread's stack at its start.
pub const DROP_FRAMES: &str = "(alloc_core::.*|<alloc_core::.*|backtrace::.*|__rust_alloc.*|\
     __rust_realloc|__rdl_.*|__rg_.*|_Unwind_.*|alloc::alloc::.*|<alloc::alloc::.*|\
     alloc::raw_vec::.*|<alloc::raw_vec::.*|alloc::boxed::Box<.*>::new.*|\
     alloc::boxed::Box<.*>::try_new.*)";

/// The name of the pseudo-function that stands for the whole heap in a
/// profile without call-site data.
pub const ALL: &str = "(all)";

/// Builds a [`Profile`]: interns strings, functions, locations and
/// mappings, so that each is written once.
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    p: Profile,
    strings: HashMap<String, i64>,
    /// (name, file) string indices -> function id.
    functions: HashMap<(i64, i64), u64>,
    /// (address, first line's function and line, line count) -> location
    /// ids with that key (checked against the lines on a hit).
    locations: HashMap<(u64, u64, i64, usize), Vec<u64>>,
    /// Raw addresses -> location id.
    raw_locations: HashMap<u64, u64>,
}

impl ProfileBuilder {
    /// An empty profile (its string table starts with `""`, as pprof
    /// requires).
    #[must_use]
    pub fn new() -> Self {
        let mut b = ProfileBuilder::default();
        b.string("");
        b
    }

    /// The string table index of `v`.
    pub fn string(&mut self, v: &str) -> i64 {
        if let Some(&i) = self.strings.get(v) {
            return i;
        }
        let i = self.p.string_table.len() as i64;
        self.p.string_table.push(v.to_string());
        self.strings.insert(v.to_string(), i);
        i
    }

    /// Sets the sample types (`(type, unit)`, e.g. `("inuse_space",
    /// "bytes")`), the default (an index into them), the period type and
    /// period, the time and a comment.
    pub fn header(
        &mut self,
        types: &[(&str, &str)],
        default: usize,
        period: u64,
        time_nanos: u64,
        comment: &str,
    ) {
        let types: Vec<ValueType> = types
            .iter()
            .map(|(t, u)| ValueType {
                r#type: self.string(t),
                unit: self.string(u),
            })
            .collect();
        if let Some(d) = types.get(default) {
            self.p.default_sample_type = d.r#type;
            self.p.period_type = Some(d.clone());
        }
        self.p.sample_type = types;
        self.p.period = i64::try_from(period).unwrap_or(i64::MAX);
        self.p.time_nanos = i64::try_from(time_nanos).unwrap_or(i64::MAX);
        let comment = self.string(comment);
        self.p.comment = vec![comment];
    }

    /// The id of the function `name` in `file`.
    pub fn function(&mut self, name: &str, file: &str) -> u64 {
        let (n, f) = (self.string(name), self.string(file));
        if let Some(&id) = self.functions.get(&(n, f)) {
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
        self.functions.insert((n, f), id);
        id
    }

    /// The id of a location at `address` with `lines` (function id, line),
    /// innermost first.
    pub fn location(&mut self, address: u64, lines: Vec<(u64, i64)>) -> u64 {
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
        let id = self.push_location(0, address, lines);
        self.locations.entry(key).or_default().push(id);
        id
    }

    fn push_location(&mut self, mapping_id: u64, address: u64, lines: Vec<(u64, i64)>) -> u64 {
        let id = self.p.location.len() as u64 + 1;
        self.p.location.push(Location {
            id,
            mapping_id,
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
        id
    }

    /// Adds a mapping per executable range of each module that holds one
    /// of the return addresses `ips`, with its path and build id, so that
    /// pprof can symbolise raw addresses in it. Ranges without an address
    /// are left out: pprof would ask the server to symbolise them
    /// (`/debug/pprof/symbol`) and fail.
    pub fn mappings(&mut self, modules: &[Module], ips: &[u64]) {
        let used = |start: u64, end: u64| {
            ips.iter()
                .any(|&ip| (start..end).contains(&ip.saturating_sub(1)))
        };
        for m in modules {
            if !m.ranges.iter().any(|r| used(r.start, r.end)) {
                continue;
            }
            let (file, build_id) = (
                self.string(&m.path),
                self.string(m.build_id.as_deref().unwrap_or("")),
            );
            for r in m.ranges.iter().filter(|r| used(r.start, r.end)) {
                let id = self.p.mapping.len() as u64 + 1;
                self.p.mapping.push(Mapping {
                    id,
                    memory_start: r.start,
                    memory_limit: r.end,
                    // Executable segments are mapped at the same offset in
                    // the file as in memory from the load bias.
                    file_offset: r.start - m.base,
                    filename: file,
                    build_id,
                    has_functions: false,
                    has_filenames: false,
                    has_line_numbers: false,
                    has_inline_frames: false,
                });
            }
        }
    }

    /// The location of a raw return address `ip`: the call instruction
    /// (`ip - 1`, as pprof expects) in its mapping, with no lines.
    pub fn raw_location(&mut self, ip: u64) -> u64 {
        let address = ip.saturating_sub(1);
        if let Some(&id) = self.raw_locations.get(&address) {
            return id;
        }
        let mapping = self
            .p
            .mapping
            .iter()
            .find(|m| (m.memory_start..m.memory_limit).contains(&address))
            .map_or(0, |m| m.id);
        let id = self.push_location(mapping, address, Vec::new());
        self.raw_locations.insert(address, id);
        id
    }

    /// The locations of `stack`, leaf first: from its user frame outwards
    /// when symbolised, else every frame as a raw address.
    pub fn stack(&mut self, stack: &Stack) -> Vec<u64> {
        let symbolised = stack
            .frames
            .iter()
            .any(|f| f.function.is_some() || f.file.is_some());
        if !symbolised {
            if stack.frames.is_empty() {
                let f = self.function(&stack.label(), "");
                return vec![self.location(0, vec![(f, 0)])];
            }
            return stack
                .frames
                .iter()
                .map(|f| self.raw_location(f.ip))
                .collect();
        }
        let frames = stack.shown_frames();
        let mut locs = Vec::new();
        let mut i = 0;
        while i < frames.len() {
            let ip = frames[i].ip;
            let mut lines = Vec::new();
            while i < frames.len() && frames[i].ip == ip {
                let fr = &frames[i];
                let file = fr.file.as_deref().unwrap_or("");
                let func = match &fr.function {
                    Some(name) => self.function(name, file),
                    None => self.function(&fr.label(), file),
                };
                lines.push((func, fr.line.map_or(0, i64::from)));
                i += 1;
            }
            locs.push(self.location(ip, lines));
        }
        if locs.is_empty() {
            let f = self.function(&stack.label(), "");
            locs.push(self.location(0, vec![(f, 0)]));
        }
        locs
    }

    /// Adds a sample at `locations` (leaf first) with `values` (one per
    /// sample type) and the numeric label `birth_epoch`.
    pub fn sample(&mut self, locations: Vec<u64>, values: Vec<i64>, epoch: u32) {
        let (key, unit) = (self.string("birth_epoch"), self.string("epoch"));
        self.p.sample.push(Sample {
            location_id: locations,
            value: values,
            label: vec![Label {
                key,
                str: 0,
                num: i64::from(epoch),
                num_unit: unit,
            }],
        });
    }

    /// Sets the profile's `drop_frames` regular expression.
    pub fn drop_frames(&mut self, regex: &str) {
        self.p.drop_frames = self.string(regex);
    }

    /// The profile built.
    #[must_use]
    pub fn finish(self) -> Profile {
        self.p
    }
}

/// The live heap of `snapshot` as a profile, the way Go's heap profiles
/// are shaped: sample types `inuse_objects/count` and `inuse_space/bytes`
/// (the default), one sample per call stack and birth epoch with the
/// numeric label `birth_epoch`, the sampled estimates as values, and the
/// snapshot's modules as mappings. Raw stacks are left for pprof to
/// symbolise ([module docs](self)). Without call-site data (sampling off),
/// one pseudo-frame, [`ALL`], with the exact live heap per birth epoch.
#[must_use]
pub fn heap(snapshot: &Snapshot) -> Profile {
    let mut b = ProfileBuilder::new();
    b.header(
        &[("inuse_objects", "count"), ("inuse_space", "bytes")],
        1,
        snapshot.sampling.mode.mean_interval_bytes(),
        snapshot.timestamp_unix_ns,
        &format!(
            "alloc-core: live heap at epoch {}, by call stack and birth epoch (estimated from \
             sampled call sites where present)",
            snapshot.epoch
        ),
    );
    let ips: Vec<u64> = snapshot
        .stacks
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.ip))
        .collect();
    b.mappings(&snapshot.modules, &ips);
    if snapshot.sites.is_empty() {
        let f = b.function(ALL, "");
        let loc = b.location(0, vec![(f, 0)]);
        for e in &snapshot.epochs {
            let values = vec![clamp(e.live_blocks), clamp(e.live_bytes)];
            b.sample(vec![loc], values, e.last);
        }
        return b.finish();
    }
    b.drop_frames(DROP_FRAMES);
    let mut by_stack: HashMap<u32, Vec<u64>> = HashMap::new();
    for site in &snapshot.sites {
        let locs = match by_stack.get(&site.stack) {
            Some(l) => l.clone(),
            None => {
                let l = match snapshot.stack(site.stack) {
                    Some(st) => b.stack(st),
                    None => Vec::new(),
                };
                by_stack.insert(site.stack, l.clone());
                l
            }
        };
        let values = vec![site.blocks.round() as i64, site.bytes.round() as i64];
        b.sample(locs, values, site.epoch);
    }
    b.finish()
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `profile` encoded and gzipped, as pprof reads it.
#[must_use]
pub fn gzip(profile: &Profile) -> Vec<u8> {
    let raw = profile.encode_to_vec();
    // Fast compression: a tenth of the time of the default level for a
    // profile a few per cent larger.
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&raw);
    gz.finish().unwrap_or_default()
}
