//! Symbolising outside the measured process: a real snapshot of this test
//! binary, resolved offline by `alloc_report::Symbolizer` from the binary on
//! disk, has the same frames (function, file, line; inlined frames
//! included) and the same sites as the same snapshot resolved in-process by
//! `alloc_core::symbolize`. A missing binary or another build gives an
//! error that names it and says to pass `--binary`; a copy passed that way
//! resolves the same. At the default sampling interval: the blocks are
//! large enough to be sampled.

use alloc_core::{advance_epoch, snapshot, symbolize, untracked, EpochAlloc, Jemalloc, Snapshot};
use alloc_report::{SymbolizeError, Symbolizer};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Blocks of this size are sampled with probability 1 - e^-(size/interval)
/// each; 64 of them at a site leave it unsampled with probability about
/// e^-16 at the default 1 MiB interval.
const BLOCK: usize = 256 << 10;
const PER_SITE: usize = 64;

#[inline(never)]
fn direct(out: &mut Vec<Vec<u8>>) -> u32 {
    let mut line = 0;
    for i in 0..PER_SITE {
        let (l, block) = (line!(), vec![i as u8; BLOCK]);
        line = l;
        out.push(block);
    }
    line
}

/// Inlined into `through_inlined`: its line is in an inlined frame.
#[inline(always)]
fn boxed(i: usize) -> (u32, Box<[u8]>) {
    (line!(), vec![i as u8; BLOCK].into_boxed_slice())
}

#[inline(never)]
fn through_inlined(out: &mut Vec<Box<[u8]>>) -> u32 {
    let mut line = 0;
    for i in 0..PER_SITE {
        let (l, b) = boxed(i);
        line = l;
        out.push(b);
    }
    line
}

fn labels(s: &Snapshot) -> Vec<String> {
    s.stacks.iter().map(|st| st.label()).collect()
}

fn offline(raw: &Snapshot, sym: &mut Symbolizer) -> Result<Snapshot, SymbolizeError> {
    let mut s = raw.clone();
    untracked(|| sym.symbolize(&mut s)).map(|()| s)
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "offline_symbols");
    let mut vecs: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(PER_SITE));
    let mut boxes: Vec<Box<[u8]>> = untracked(|| Vec::with_capacity(PER_SITE));
    advance_epoch();
    let direct_line = direct(&mut vecs);
    let inlined_line = through_inlined(&mut boxes);
    advance_epoch();
    let raw = snapshot();

    // The snapshot lists this binary first, with its build id.
    let exe = std::env::current_exe().unwrap();
    assert_eq!(raw.modules[0].path, exe.to_string_lossy());
    assert!(raw.modules[0].build_id.is_some(), "{:?}", raw.modules[0]);
    let here = direct as *const () as usize as u64;
    assert!(raw
        .module_of(here)
        .is_some_and(|m| m.path == raw.modules[0].path));
    assert!(raw
        .stacks
        .iter()
        .all(|s| s.frames.iter().all(|f| f.function.is_none())));

    let mut inproc = raw.clone();
    symbolize(&mut inproc);
    let mut sym = untracked(Symbolizer::new);
    let off = offline(&raw, &mut sym).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inproc.stacks.len(), off.stacks.len());
    for (a, b) in inproc.stacks.iter().zip(&off.stacks) {
        assert_eq!(a.user_frame, b.user_frame, "stack {}: {a:#?}\n{b:#?}", a.id);
        assert_eq!(a.frames, b.frames, "stack {}", a.id);
    }
    let sites = labels(&off);
    for (line, function) in [
        (direct_line, "offline_symbols::direct"),
        (inlined_line, "offline_symbols::boxed"),
    ] {
        let needle = format!("offline_symbols.rs:{line} {function}");
        assert!(
            sites
                .iter()
                .any(|l| l.starts_with(&needle) || l.contains(&format!("/{needle}"))),
            "no site {needle} in {sites:#?}"
        );
    }
    // The inlined site's caller is the next frame, at the same address.
    let st = off
        .stacks
        .iter()
        .find(|s| s.label().contains(&format!(":{inlined_line} ")))
        .unwrap();
    let u = st.user_frame.unwrap() as usize;
    assert_eq!(st.frames[u + 1].ip, st.frames[u].ip);
    assert!(st.frames[u + 1]
        .function
        .as_deref()
        .is_some_and(|f| f.ends_with("through_inlined")));
    // A second pass reuses the parsed debug information and agrees.
    assert_eq!(offline(&raw, &mut sym).unwrap(), off);

    // The binary gone: a clear error naming it and the flag.
    let mut gone = raw.clone();
    gone.modules[0].path = "/nonexistent/offline_symbols".into();
    let e = offline(&gone, &mut untracked(Symbolizer::new)).unwrap_err();
    assert!(matches!(e, SymbolizeError::Missing { .. }), "{e:?}");
    let msg = untracked(|| e.to_string());
    assert!(
        msg.contains("/nonexistent/offline_symbols") && msg.contains("is gone"),
        "{msg}"
    );
    assert!(msg.contains("--binary"), "{msg}");
    // Replaced since the process started.
    let mut deleted = raw.clone();
    deleted.modules[0].path.push_str(" (deleted)");
    let e = offline(&deleted, &mut untracked(Symbolizer::new)).unwrap_err();
    assert!(matches!(e, SymbolizeError::Missing { .. }), "{e:?}");

    // Another build at the path: refused, naming both build ids.
    let mut rebuilt = raw.clone();
    rebuilt.modules[0].build_id = Some("00".repeat(20));
    let e = offline(&rebuilt, &mut untracked(Symbolizer::new)).unwrap_err();
    let msg = untracked(|| e.to_string());
    assert!(matches!(e, SymbolizeError::BuildIdMismatch { .. }), "{e:?}");
    assert!(
        msg.contains(&"00".repeat(20)) && msg.contains("rebuilt"),
        "{msg}"
    );
    assert!(
        msg.contains(raw.modules[0].build_id.as_deref().unwrap()),
        "{msg}"
    );

    // A copy of the binary, given as --binary would: the same frames.
    let dir = std::env::temp_dir().join(format!("offline-symbols-{}", std::process::id()));
    let copy = dir.join("copy-of-the-binary");
    untracked(|| {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&exe, &copy).unwrap();
    });
    let mut sym = untracked(Symbolizer::new);
    let id = untracked(|| sym.use_file(&copy)).unwrap();
    assert_eq!(Some(&id), raw.modules[0].build_id.as_ref());
    let moved = offline(&gone, &mut sym).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(labels(&moved), sites);
    assert!(sym.unused_files().is_empty());
    // A file that is not an object file cannot stand in for one.
    let text = dir.join("not-a-binary");
    untracked(|| std::fs::write(&text, "hello").unwrap());
    let e = untracked(|| sym.use_file(&text)).unwrap_err();
    assert!(matches!(e, SymbolizeError::Unreadable { .. }), "{e:?}");
    untracked(|| std::fs::remove_dir_all(&dir).unwrap());

    say!(
        "offline_symbols: {} stacks agree; sites {direct_line} and {inlined_line} named",
        off.stacks.len()
    );
    untracked(|| drop((vecs, boxes)));
}
