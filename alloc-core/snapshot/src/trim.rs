//! Which frames of a call stack are the user's: the one set of trimming
//! rules, used by the in-process symboliser (`alloc_core::symbolize`) and
//! the offline one (`alloc_report::symbolize`) alike.
//!
//! Every sampled stack starts inside the tool and the standard library's
//! allocation machinery (`__rust_alloc`, `alloc::raw_vec`, `Vec`, `Box`,
//! `format!`...). [`is_machinery`] names those frames, by function name or,
//! for inlined frames whose name has no path, by source file.
//!
//! A stack's `user_frame` ([`user_frame`]) is its site: by the default
//! rule ([`SiteRule::OwnCode`]) the innermost frame of the program's own
//! code, the first frame from the innermost that is not machinery and
//! whose source file is not a dependency's ([`is_dependency_file`]: a
//! crate from a registry, a git checkout or a `vendor/` directory). The
//! library calls inside it (tokio, bytes, a cache crate) are how the
//! program allocated, not the line to change; the label keeps the first of
//! them ([`library_call`]): `src/db.rs:224 mini_redis::db::Db::subscribe
//! -> tokio::sync::broadcast::channel`. [`SiteRule::FirstNonStd`] takes
//! the first frame that is not machinery, whatever crate it is in (for
//! authors soaking their own library), and is the fallback when no frame
//! is the program's own. A frame without a file (a symbol table without
//! debug information) is never taken for a dependency's.

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
/// machinery ([`is_machinery`]). Frames of dependencies count (see
/// [`is_own_frame`] for the program's own code).
#[must_use]
pub fn is_user_frame(frame: &Frame) -> bool {
    frame
        .function
        .as_deref()
        .is_some_and(|name| !is_machinery(name, frame.file.as_deref()))
}

/// Whether `frame` is the program's own code: a user frame
/// ([`is_user_frame`]) whose file, when known, is not a dependency's
/// ([`is_dependency_file`]).
#[must_use]
pub fn is_own_frame(frame: &Frame) -> bool {
    is_user_frame(frame) && !frame.file.as_deref().is_some_and(is_dependency_file)
}

/// Whether a source file is a dependency's rather than the program's own:
/// a crate from a registry (`…/registry/src/<index>/<crate>-<version>/`,
/// under any `CARGO_HOME`), a git dependency
/// (`…/git/checkouts/<repo>/<rev>/`), or a crate vendored by `cargo
/// vendor` (`…/vendor/<crate>/…`, where the `vendor` directory is not
/// itself inside a `src/`, so a module named `vendor` stays the user's).
/// The workspace's own files, path dependencies included, are the user's.
#[must_use]
pub fn is_dependency_file(path: &str) -> bool {
    if path.contains("/registry/src/") || path.contains("/git/checkouts/") {
        return true;
    }
    let mut from = 0;
    while let Some(at) = path[from..].find("/vendor/") {
        let at = from + at;
        let rest = &path[at + "/vendor/".len()..];
        if !path[..at].ends_with("/src") && rest.find('/').is_some_and(|i| i > 0) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Which frame of a stack is its site.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SiteRule {
    /// The innermost frame of the program's own code ([`is_own_frame`]):
    /// neither the standard library nor a dependency (a registry crate, a
    /// git checkout, a vendored crate); the first user frame when no frame
    /// is the program's own.
    #[default]
    OwnCode,
    /// The first frame that is not the standard library's or the tool's
    /// ([`is_user_frame`]), whatever crate it is in: for authors soaking
    /// their own library from a registry.
    FirstNonStd,
}

impl SiteRule {
    /// The names the command lines take: `own-code`, `first-non-std`.
    pub const NAMES: [&'static str; 2] = ["own-code", "first-non-std"];

    /// The rule's command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SiteRule::OwnCode => Self::NAMES[0],
            SiteRule::FirstNonStd => Self::NAMES[1],
        }
    }
}

impl std::str::FromStr for SiteRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "own-code" => Ok(SiteRule::OwnCode),
            "first-non-std" => Ok(SiteRule::FirstNonStd),
            _ => Err(format!(
                "unknown site rule '{s}' (one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// The index of a symbolised stack's site frame (innermost first) by the
/// default rule ([`SiteRule::OwnCode`]), `None` when no frame qualifies.
/// This is what `Stack::user_frame` holds after symbolisation.
pub fn user_frame(frames: &[Frame]) -> Option<u32> {
    user_frame_by(frames, SiteRule::default())
}

/// The index of a symbolised stack's site frame by `rule`, `None` when no
/// frame is a user frame.
pub fn user_frame_by(frames: &[Frame], rule: SiteRule) -> Option<u32> {
    let own = match rule {
        SiteRule::OwnCode => frames.iter().position(is_own_frame),
        SiteRule::FirstNonStd => None,
    };
    own.or_else(|| frames.iter().position(is_user_frame))
        .map(|i| i as u32)
}

/// The library call a site frame made (the frame at `site` in `frames`,
/// innermost first): the outermost dependency's frame inside it (a user
/// frame, [`is_user_frame`], in a dependency's file,
/// [`is_dependency_file`]), the function the site called. `None` when
/// only the standard library's machinery lies inside (always under
/// [`SiteRule::FirstNonStd`]).
#[must_use]
pub fn library_call(frames: &[Frame], site: usize) -> Option<&Frame> {
    frames
        .get(..site)?
        .iter()
        .rev()
        .find(|f| is_user_frame(f) && f.file.as_deref().is_some_and(is_dependency_file))
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

    fn at(name: &str, file: &str) -> Frame {
        Frame {
            file: Some(file.into()),
            ..frame(name)
        }
    }

    #[test]
    fn the_site_is_the_programs_own_code_by_default() {
        let reg = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        let frames = [
            at("__rust_alloc", "/rustc/0a/library/alloc/src/alloc.rs"),
            at(
                "alloc::vec::Vec<T>::with_capacity",
                "/rustc/0a/library/alloc/src/vec/mod.rs",
            ),
            at(
                "tokio::sync::broadcast::Shared<T>::new",
                &format!("{reg}/tokio-1.8.1/src/sync/broadcast.rs"),
            ),
            at(
                "tokio::sync::broadcast::channel",
                &format!("{reg}/tokio-1.8.1/src/sync/broadcast.rs"),
            ),
            at(
                "mini_redis::db::Db::subscribe",
                "/home/u/mini-redis/src/db.rs",
            ),
            at(
                "tokio::runtime::task::core::Core<T,S>::poll",
                &format!("{reg}/tokio-1.8.1/src/runtime/task/core.rs"),
            ),
        ];
        assert_eq!(user_frame(&frames), Some(4));
        assert_eq!(user_frame_by(&frames, SiteRule::OwnCode), Some(4));
        assert_eq!(user_frame_by(&frames, SiteRule::FirstNonStd), Some(2));
        // What the library did: the call the site made.
        assert_eq!(
            library_call(&frames, 4).and_then(|f| f.function.as_deref()),
            Some("tokio::sync::broadcast::channel")
        );
        assert_eq!(library_call(&frames, 2), None);
        assert_eq!(library_call(&frames, 9), None);
        // No frame of the program's own: the first user frame.
        assert_eq!(user_frame(&frames[..4]), Some(2));
        // Without files (a symbol table only): today's rule.
        let bare = [
            frame("__rust_alloc"),
            frame("bytes::BytesMut::new"),
            frame("app::f"),
        ];
        assert_eq!(user_frame(&bare), Some(1));
        for (name, rule) in [
            ("own-code", SiteRule::OwnCode),
            ("first-non-std", SiteRule::FirstNonStd),
        ] {
            assert_eq!(name.parse::<SiteRule>(), Ok(rule));
            assert_eq!(rule.name(), name);
        }
        assert!("any".parse::<SiteRule>().is_err());
    }

    #[test]
    fn dependency_files() {
        for (path, dep) in [
            ("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bytes-1.12.2/src/bytes_mut.rs", true),
            ("/opt/cargo-home/registry/src/idx/moka-0.7.2/src/sync/cache.rs", true),
            ("/root/.cargo/git/checkouts/hyper-0a1b2c/4f5e6d7/src/proto/h1.rs", true),
            ("/work/app/vendor/tokio/src/sync/mpsc.rs", true),
            ("/work/app/src/vendor/mod.rs", false),
            ("/work/app/src/vendor/x/y.rs", false),
            ("/work/app/vendor/", false),
            ("/work/app/src/main.rs", false),
            ("/work/leak-finder/demo-server/src/patterns/cycle.rs", false),
            ("src/db.rs", false),
        ] {
            assert_eq!(is_dependency_file(path), dep, "{path}");
        }
    }
}
