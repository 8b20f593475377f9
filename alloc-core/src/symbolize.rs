//! Turning raw instruction pointers into function, file and line, outside
//! the allocation path.
//!
//! Runs in the tool's scope (everything it allocates, including the
//! debug-information cache of the `backtrace` crate, is the tool's). An
//! instruction pointer inside inlined code gives one frame per inlined
//! function, innermost first, so a `Box::new` inlined into `handle_client`
//! still shows `handle_client`'s line.
//!
//! **Trimming** follows the one set of rules in [`alloc_snapshot::trim`],
//! which the offline symboliser (`alloc-report`) uses too: a stack's
//! `user_frame` is its innermost frame of the program's own code, neither
//! the tool's, the standard library's allocation machinery nor a
//! dependency's ([`set_site_rule`] chooses the rule).
//!
//! The measured process keeps the parsed debug information between calls
//! (about 50 MB for `demo-server`), counted as the tool's memory; a
//! long-running server should send raw snapshots and leave symbolisation to
//! `alloc-report` (as the admin endpoint does). This one is for tests and
//! leak assertions.

use alloc_snapshot::trim::{user_frame_by, SiteRule};
use alloc_snapshot::{Frame, Snapshot, Stack};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`set_site_rule`] chose [`SiteRule::FirstNonStd`].
static FIRST_NON_STD: AtomicBool = AtomicBool::new(false);

/// Which frame of each stack [`symbolize`] (and so the leak assertions,
/// [`crate::Survivors::by_site`]) takes for its site: by default the
/// innermost frame of the program's own code ([`SiteRule::OwnCode`]: not
/// the standard library, not a crate from a registry, a git checkout or a
/// `vendor/` directory); [`SiteRule::FirstNonStd`] counts every crate as
/// the user's, for authors testing their own library.
pub fn set_site_rule(rule: SiteRule) {
    FIRST_NON_STD.store(rule == SiteRule::FirstNonStd, Ordering::Relaxed);
}

/// The rule [`set_site_rule`] chose.
#[must_use]
pub fn site_rule() -> SiteRule {
    if FIRST_NON_STD.load(Ordering::Relaxed) {
        SiteRule::FirstNonStd
    } else {
        SiteRule::OwnCode
    }
}

/// Fills in function, file and line of every frame of every stack in
/// `snapshot`, and each stack's `user_frame`. Frames that were symbolised
/// already are left as they are; addresses without symbols keep only
/// their `ip`.
///
/// Release builds need line tables for file and line (`debug =
/// "line-tables-only"` in `[profile.release]`); without them a frame has
/// its function name only.
pub fn symbolize(snapshot: &mut Snapshot) {
    crate::untracked(|| {
        let mut cache = HashMap::new();
        for stack in &mut snapshot.stacks {
            symbolize_stack(stack, &mut cache);
        }
    });
}

/// Drops the parsed debug information that [`symbolize`] keeps between
/// calls.
///
/// The first `symbolize` in a process parses the debug information of the
/// binary and its libraries and keeps it, so that later calls take
/// milliseconds instead of about a second. That memory is the tool's (it is
/// in `ToolUsage`, never in the user's figures) and does not grow after the
/// first call, but it is about as large as the debug information: 50 MB for
/// `demo-server` built with `debug = "limited"`. Call this after the last
/// snapshot of a soak, or after each one if memory matters more than time.
pub fn release_symbol_cache() {
    crate::untracked(backtrace::clear_symbol_cache);
}

/// Symbolises one stack, with a cache of resolved addresses shared across
/// stacks. Call inside the tool's scope.
pub(crate) fn symbolize_stack(stack: &mut Stack, cache: &mut HashMap<u64, Vec<Frame>>) {
    if stack.frames.iter().any(|f| f.function.is_some()) {
        stack.user_frame = user_frame_by(&stack.frames, site_rule());
        return;
    }
    let mut out = Vec::with_capacity(stack.frames.len() * 2);
    for f in &stack.frames {
        out.extend(
            cache
                .entry(f.ip)
                .or_insert_with(|| resolve(f.ip))
                .iter()
                .cloned(),
        );
    }
    stack.frames = out;
    stack.user_frame = user_frame_by(&stack.frames, site_rule());
}

/// The frames at `ip` (a return address), innermost inlined call first.
fn resolve(ip: u64) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call; the call itself (and its
    // line) is one byte earlier.
    let lookup = ip.saturating_sub(1) as usize as *mut core::ffi::c_void;
    // The resolver walks the loaded objects under the loader's lock: under
    // the modules lock, so that no fork happens while it is held.
    let _loader = crate::modules::hold_loader();
    backtrace::resolve(lookup, |sym| {
        frames.push(Frame {
            ip,
            function: sym.name().map(|n| format!("{n:#}")),
            file: sym.filename().map(|p| p.display().to_string()),
            line: sym.lineno(),
        });
    });
    if frames.is_empty() {
        frames.push(Frame {
            ip,
            function: None,
            file: None,
            line: None,
        });
    }
    frames
}
