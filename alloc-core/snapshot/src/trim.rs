//! Which frames of a call stack are the user's: the one set of trimming
//! rules, used by the in-process symboliser (`alloc_core::symbolize`) and
//! the offline one (`alloc_report::symbolize`) alike.
//!
//! Every sampled stack starts inside the tool and the standard library's
//! allocation machinery (`__rust_alloc`, `alloc::raw_vec`, `Vec`, `Box`,
//! `format!`...). [`is_machinery`] names those frames, by function name or,
//! for inlined frames whose name has no path, by source file; a stack's
//! `user_frame` ([`user_frame`]) is the first frame, from the innermost,
//! that is not machinery and has a name: the line of the user's code that
//! allocated.

use crate::Frame;

/// Function-name prefixes of frames that are never the user's: the tool,
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
/// distributed toolchain), the `backtrace` crate, and the tool's own
/// sources (`alloc-core/src/` in this workspace, `alloc-core-<version>/src/`
/// from a registry).
const MACHINERY_FILES: &[&str] = &[
    "/library/alloc/src/",
    "/library/core/src/",
    "/library/std/src/",
    "/hashbrown-",
    "/backtrace-0.",
    "/alloc-core/src/",
    "/alloc-core-0.",
];

/// Whether a frame belongs to the tool or to the standard library's
/// allocation machinery, by its function name or its source file.
#[must_use]
pub fn is_machinery(function: &str, file: Option<&str>) -> bool {
    MACHINERY.iter().any(|p| function.starts_with(p))
        || is_std_impl(function)
        || file.is_some_and(|f| MACHINERY_FILES.iter().any(|p| f.contains(p)))
}

/// Primitive types: a standard-library trait implemented for one of them
/// (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`) is the
/// standard library's code.
const PRIMITIVES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64", "bool", "char", "str", "[", "(",
];

/// Whether `function` is a method of a standard-library trait implemented
/// for a primitive or a standard-library type (`<SELF as TRAIT>::...`
/// with `TRAIT` in `alloc`, `core` or `std`): code of the standard library,
/// named without a file where only the symbol table is read. A user type's
/// impl of a standard trait (`<my::Conn as core::clone::Clone>::clone`) is
/// the user's.
fn is_std_impl(function: &str) -> bool {
    let Some(rest) = function.strip_prefix('<') else {
        return false;
    };
    let Some((self_ty, tail)) = rest.split_once(" as ") else {
        return false;
    };
    let self_ty = self_ty.trim_start_matches('&').trim_start_matches("mut ");
    let std_path = |p: &str| {
        ["alloc::", "core::", "std::"]
            .iter()
            .any(|c| p.starts_with(c))
    };
    std_path(tail)
        && (std_path(self_ty)
            || PRIMITIVES
                .iter()
                .any(|p| self_ty.starts_with(p) && (p.len() == 1 || self_ty.len() == p.len())))
}

/// Whether `frame` is one of the user's: it has a function name and is not
/// machinery ([`is_machinery`]).
#[must_use]
pub fn is_user_frame(frame: &Frame) -> bool {
    frame
        .function
        .as_deref()
        .is_some_and(|name| !is_machinery(name, frame.file.as_deref()))
}

/// The index of the first user frame of a symbolised stack (innermost
/// first), `None` when no frame qualifies. This is what `Stack::user_frame`
/// holds after symbolisation.
pub fn user_frame(frames: &[Frame]) -> Option<u32> {
    frames.iter().position(is_user_frame).map(|i| i as u32)
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
        // Standard traits: the standard library's impls are machinery, a
        // user type's are the user's.
        for (name, machinery) in [
            (
                "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
                true,
            ),
            ("<[u8] as alloc::slice::hack::ConvertVec>::to_vec", true),
            ("<&str as core::fmt::Display>::fmt", true),
            ("<alloc::string::String as core::clone::Clone>::clone", true),
            ("<u8x as core::clone::Clone>::clone", false),
            ("<my::Conn as core::clone::Clone>::clone", false),
            ("<u8 as my::Encode>::encode", false),
            ("my::f", false),
        ] {
            assert_eq!(is_machinery(name, None), machinery, "{name}");
        }
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
            inlined("account", "/home/u/leak-finder/alloc-core/src/alloc.rs"),
            inlined("handle", "src/server.rs"),
        ];
        assert_eq!(user_frame(&frames), Some(3));
    }
}
