//! Turning raw instruction pointers into function, file and line, outside
//! the allocation path.
//!
//! Runs in the tool's scope (everything it allocates, including the
//! debug-information cache of the `backtrace` crate, is the tool's). An
//! instruction pointer inside inlined code gives one frame per inlined
//! function, innermost first, so a `Box::new` inlined into `handle_client`
//! still shows `handle_client`'s line.
//!
//! **Trimming.** Every stack starts inside this crate and the standard
//! library's allocation machinery (`__rust_alloc`, `alloc::raw_vec`, `Vec`,
//! `Box`, `format!`...). [`is_machinery`] names those frames, by function
//! name or, for inlined frames whose name has no path, by source file; a stack's
//! `user_frame` is the first frame, from the innermost, that is not
//! machinery and has a name: the line of the user's code that allocated.

use alloc_snapshot::{Frame, Snapshot, Stack};
use std::collections::HashMap;

/// Function-name prefixes of frames that are never the user's: this crate,
/// the unwinder, the global-allocator shims, and the standard library
/// (whose allocations are made on behalf of the code that called it).
const MACHINERY: &[&str] = &[
    "alloc_core::",
    "<alloc_core::",
    "backtrace::",
    "<backtrace::",
    "__rust_",
    "__rustc::",
    "__rdl_",
    "__rg_",
    "_Unwind_",
    "alloc::",
    "<alloc::",
    "core::",
    "<core::",
    "std::",
    "<std::",
    "hashbrown::",
    "<hashbrown::",
];

/// Source paths of frames that are never the user's, for inlined frames
/// whose debug information names the function without its path: the
/// standard library's sources (`/rustc/<hash>/library/...` in the
/// distributed toolchain), the `backtrace` crate, and this crate.
const MACHINERY_FILES: &[&str] = &[
    "/library/alloc/src/",
    "/library/core/src/",
    "/library/std/src/",
    "/hashbrown-",
    "/backtrace-0.",
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/"),
];

/// Whether a frame belongs to the tool or to the standard library's
/// allocation machinery, by its function name or its source file.
pub(crate) fn is_machinery(function: &str, file: Option<&str>) -> bool {
    MACHINERY.iter().any(|p| function.starts_with(p))
        || file.is_some_and(|f| MACHINERY_FILES.iter().any(|p| f.contains(p)))
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
        stack.user_frame = user_frame(&stack.frames);
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
    stack.user_frame = user_frame(&stack.frames);
}

fn user_frame(frames: &[Frame]) -> Option<u32> {
    frames
        .iter()
        .position(|f| {
            f.function
                .as_deref()
                .is_some_and(|name| !is_machinery(name, f.file.as_deref()))
        })
        .map(|i| i as u32)
}

/// The frames at `ip` (a return address), innermost inlined call first.
fn resolve(ip: u64) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call; the call itself (and its
    // line) is one byte earlier.
    let lookup = ip.saturating_sub(1) as usize as *mut core::ffi::c_void;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            ip: 1,
            function: Some(name.into()),
            file: None,
            line: None,
        }
    }

    #[test]
    fn the_first_user_frame_follows_the_machinery() {
        let frames = vec![
            frame("backtrace::backtrace::trace_unsynchronized"),
            frame("alloc_core::stacks::capture"),
            frame("<alloc_core::alloc::EpochAlloc<A> as core::alloc::global::GlobalAlloc>::alloc"),
            frame("__rust_alloc"),
            frame("alloc::raw_vec::RawVec<T,A>::allocate_in"),
            frame("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
            frame("demo_server::patterns::global_list::register"),
            frame("std::thread::local::LocalKey<T>::with"),
            frame("main"),
        ];
        assert_eq!(user_frame(&frames), Some(6));
        assert_eq!(user_frame(&frames[..6]), None);
        let unnamed = Frame {
            function: None,
            ..frame("")
        };
        assert_eq!(user_frame(&[unnamed, frame("my_crate::f")]), Some(1));
        // Inlined frames may carry a bare name: their file decides.
        let inlined = |name: &str, file: &str| Frame {
            file: Some(file.into()),
            ..frame(name)
        };
        let frames = [
            inlined(
                "trace",
                "/home/u/.cargo/registry/src/x/backtrace-0.3.77/src/lib.rs",
            ),
            inlined("push", "/rustc/0123abcd/library/alloc/src/vec/mod.rs"),
            inlined("handle", "src/server.rs"),
        ];
        assert_eq!(user_frame(&frames), Some(2));
    }
}
