//! What a report holds about each site beyond its verdict, and about the
//! whole heap beyond its curve: the survivors by birth epoch at the last
//! snapshot, a site's call stacks (each frame marked as the program's own,
//! a dependency's, the standard library's or the tool's), and the source
//! lines around the site's frame when its file is on disk (read by
//! [`crate::source`], the one place the analysis reads anything but
//! snapshots). The renderers draw these; none computes them.

use alloc_snapshot::{trim, EpochLive, SiteLive, Stack};
use serde::Serialize;

use super::HashMap;
use crate::source::Source;

/// The most stacks a site keeps (most surviving bytes first); the rest are
/// counted in [`SiteDetail::other_stacks`].
pub const MAX_STACKS: usize = 8;
/// The most frames a stack keeps (innermost first); the rest are counted in
/// [`SiteStack::more_frames`].
pub const MAX_FRAMES: usize = 48;

/// The whole heap's live bytes at the last snapshot by birth epoch (exact
/// counters), for the birth-epoch chart: the survivors by epoch, and what
/// is held from before the series (held minus survivors, [`crate::growth`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HeapBirths {
    /// Live bytes born before the series' first snapshot, in closed epochs
    /// (held, not survivors).
    pub before_series_bytes: u64,
    /// Live blocks born before the series' first snapshot.
    pub before_series_blocks: u64,
    /// Survivors ([`super::survivors()`]: closed epochs from the first
    /// snapshot's on), by birth epoch or range of epochs (older epochs are
    /// folded into ranges by the collector), as the last snapshot lists
    /// them.
    pub epochs: Vec<EpochLive>,
}

/// One birth epoch of a site's survivors (estimated).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SiteBirth {
    /// The birth epoch.
    pub epoch: u32,
    /// Estimated surviving bytes born in it.
    pub bytes: f64,
    /// Estimated surviving blocks born in it.
    pub blocks: f64,
}

/// Whose code a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// The program's own code ([`trim::is_own_frame`]).
    Own,
    /// A dependency's code (a registry crate, a git checkout, `vendor/`).
    Dependency,
    /// The standard library or the tool (allocation machinery,
    /// [`trim::is_machinery`]).
    Std,
    /// Not symbolised (an address only).
    Unknown,
}

impl FrameKind {
    /// The frame's kind.
    #[must_use]
    pub fn of(f: &alloc_snapshot::Frame) -> Self {
        if f.function.is_none() {
            FrameKind::Unknown
        } else if trim::is_own_frame(f) {
            FrameKind::Own
        } else if trim::is_user_frame(f) {
            FrameKind::Dependency
        } else {
            FrameKind::Std
        }
    }

    /// A short name (`own`, `dependency`, `std`, `unknown`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FrameKind::Own => "own",
            FrameKind::Dependency => "dependency",
            FrameKind::Std => "std",
            FrameKind::Unknown => "unknown",
        }
    }
}

/// One frame of a [`SiteStack`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackFrame {
    /// `file:line function` (the file in its short form).
    pub label: String,
    /// The demangled function name, when symbolised.
    pub function: Option<String>,
    /// The full source path, when known.
    pub file: Option<String>,
    /// The source line, when known.
    pub line: Option<u32>,
    /// Whose code it is.
    pub kind: FrameKind,
    /// Whether this is the stack's site frame (the line the site is named
    /// by).
    pub site: bool,
}

/// One call stack of a site and its survivors at the last snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteStack {
    /// Estimated surviving bytes allocated through this stack.
    pub bytes: f64,
    /// Estimated surviving blocks.
    pub blocks: f64,
    /// Frames, innermost first, at most [`MAX_FRAMES`].
    pub frames: Vec<StackFrame>,
    /// Outer frames left out.
    pub more_frames: usize,
}

/// A site's call stacks, source and survivors by birth epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteDetail {
    /// The site's label ([`super::Verdict::site`]).
    pub site: String,
    /// Survivors born during the series at the last snapshot, by birth
    /// epoch (estimated), oldest first.
    pub born: Vec<SiteBirth>,
    /// Estimated live bytes born before the series.
    pub born_before_series: f64,
    /// Its stacks with survivors at the last snapshot, most bytes first.
    pub stacks: Vec<SiteStack>,
    /// Stacks with survivors left out (past [`MAX_STACKS`]).
    pub other_stacks: usize,
    /// The source lines around the site's frame (`None` when the frame has
    /// no file and line).
    pub source: Option<Source>,
}

impl SiteDetail {
    /// A site with nothing at the last snapshot.
    pub(crate) fn empty(site: &str) -> Self {
        SiteDetail {
            site: site.to_string(),
            born: Vec::new(),
            born_before_series: 0.0,
            stacks: Vec::new(),
            other_stacks: 0,
            source: None,
        }
    }
}

/// A stack's frames as the report shows them.
fn frames_of(stack: &Stack) -> (Vec<StackFrame>, usize) {
    let frames = stack
        .frames
        .iter()
        .enumerate()
        .take(MAX_FRAMES)
        .map(|(i, f)| StackFrame {
            label: f.label(),
            function: f.function.clone(),
            file: f.file.clone(),
            line: f.line,
            kind: FrameKind::of(f),
            site: stack.user_frame == Some(i as u32),
        })
        .collect();
    (frames, stack.frames.len().saturating_sub(MAX_FRAMES))
}

/// Per site (by site index), its detail from the last snapshot's entries
/// (`last_sites`, each with its site in `site_of`), the stacks by id and
/// the site labels.
pub(crate) fn site_details(
    last_sites: &[SiteLive],
    site_of: &[usize],
    stacks: &HashMap<u32, Stack>,
    labels: &[String],
    start_epoch: u32,
    end_epoch: u32,
) -> Vec<SiteDetail> {
    struct Acc {
        born: Vec<SiteBirth>,
        before: f64,
        by_stack: HashMap<u32, (f64, f64)>,
    }
    let mut acc: Vec<Acc> = labels
        .iter()
        .map(|_| Acc {
            born: Vec::new(),
            before: 0.0,
            by_stack: HashMap::default(),
        })
        .collect();
    for (e, &site) in last_sites.iter().zip(site_of) {
        let Some(a) = acc.get_mut(site) else { continue };
        if e.epoch >= end_epoch {
            continue;
        }
        if e.epoch < start_epoch {
            a.before += e.bytes;
        } else {
            match a.born.iter_mut().find(|b| b.epoch == e.epoch) {
                Some(b) => {
                    b.bytes += e.bytes;
                    b.blocks += e.blocks;
                }
                None => a.born.push(SiteBirth {
                    epoch: e.epoch,
                    bytes: e.bytes,
                    blocks: e.blocks,
                }),
            }
        }
        let s = a.by_stack.entry(e.stack).or_default();
        s.0 += e.bytes;
        s.1 += e.blocks;
    }
    let mut reader = crate::source::SourceReader::default();
    acc.into_iter()
        .zip(labels)
        .map(|(mut a, label)| {
            a.born.sort_by_key(|b| b.epoch);
            let mut ids: Vec<(u32, f64, f64)> =
                a.by_stack.iter().map(|(&id, &(b, n))| (id, b, n)).collect();
            ids.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            let kept: Vec<(&Stack, f64, f64)> = ids
                .iter()
                .filter_map(|&(id, b, n)| stacks.get(&id).map(|s| (s, b, n)))
                .take(MAX_STACKS)
                .collect();
            let source = kept.first().and_then(|(s, _, _)| {
                let f = s.site()?;
                Some(reader.around(f.file.as_deref()?, f.line?))
            });
            SiteDetail {
                site: label.clone(),
                born: a.born,
                born_before_series: a.before,
                other_stacks: ids.len() - kept.len(),
                stacks: kept
                    .into_iter()
                    .map(|(s, bytes, blocks)| {
                        let (frames, more_frames) = frames_of(s);
                        SiteStack {
                            bytes,
                            blocks,
                            frames,
                            more_frames,
                        }
                    })
                    .collect(),
                source,
            }
        })
        .collect()
}
