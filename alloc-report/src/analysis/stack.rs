//! The call stacks a report shows ([`SiteStack`]): a leak site's stacks
//! ([`Verdict::stacks`](super::Verdict::stacks)) and another site's top
//! stack ([`SiteDetail::top_stack`](super::SiteDetail::top_stack)), each
//! frame marked by whose code it is ([`FrameOwner`]).

use alloc_snapshot::Stack;
use serde::Serialize;

/// One call stack of a leak site ([`Verdict::stacks`](super::Verdict::stacks)) at the last
/// snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteStack {
    /// Estimated surviving bytes of this stack (born since the series'
    /// first snapshot).
    pub bytes: f64,
    /// Estimated surviving blocks of this stack.
    pub blocks: f64,
    /// The frames, innermost first, from the first frame past the
    /// allocator machinery and the tool (the library calls inside the site
    /// included) to the outermost.
    pub frames: Vec<StackFrame>,
}

/// One frame of a [`SiteStack`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackFrame {
    /// The function, when known.
    pub function: Option<String>,
    /// The source file's full path, when known.
    pub file: Option<String>,
    /// The line, when known.
    pub line: Option<u32>,
    /// Whether the frame is the program's own code (not the standard
    /// library's, not a dependency's: `alloc_snapshot::trim::is_own_frame`).
    pub user: bool,
    /// Whether this is the site's frame (the one the site is named by).
    pub site: bool,
    /// Whose code the frame is: `own`, `dependency`, `std` or `unknown`.
    pub owner: FrameOwner,
}

/// Whose code a [`StackFrame`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameOwner {
    /// The program's own code (`user`).
    Own,
    /// A dependency's: a registry crate, a git checkout, `vendor/` (the rule
    /// of `alloc_snapshot::trim::is_dependency_file`).
    Dependency,
    /// The rest of the symbolised frames: the standard library's.
    Std,
    /// Not symbolised.
    Unknown,
}

impl FrameOwner {
    fn of(f: &alloc_snapshot::Frame) -> Self {
        if alloc_snapshot::trim::is_own_frame(f) {
            FrameOwner::Own
        } else if f.function.is_none() {
            FrameOwner::Unknown
        } else if f
            .file
            .as_deref()
            .is_some_and(alloc_snapshot::trim::is_dependency_file)
        {
            FrameOwner::Dependency
        } else {
            FrameOwner::Std
        }
    }

    /// The name JSON gives it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FrameOwner::Own => "own",
            FrameOwner::Dependency => "dependency",
            FrameOwner::Std => "std",
            FrameOwner::Unknown => "unknown",
        }
    }
}

impl SiteStack {
    /// `stack`'s frames from the first past the machinery outwards, with
    /// its estimated survivors.
    #[must_use]
    pub(crate) fn of(stack: &Stack, bytes: f64, blocks: f64) -> Self {
        let first = stack
            .frames
            .iter()
            .position(alloc_snapshot::trim::is_user_frame)
            .unwrap_or(0);
        let site = stack.user_frame.map(|u| u as usize);
        let frames = stack.frames[first..]
            .iter()
            .enumerate()
            .map(|(i, f)| StackFrame {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                user: alloc_snapshot::trim::is_own_frame(f),
                site: site == Some(first + i),
                owner: FrameOwner::of(f),
            })
            .collect();
        SiteStack {
            bytes,
            blocks,
            frames,
        }
    }
}

/// How many stacks a leak site's verdict lists at most
/// ([`Verdict::stacks`](super::Verdict::stacks)).
pub const SITE_STACKS: usize = 5;
