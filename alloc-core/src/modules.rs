//! The objects loaded in the process (the executable and its shared
//! libraries), listed with `dl_iterate_phdr` for the snapshot, so that raw
//! instruction pointers can be resolved later, outside the process, from
//! the files on disk.
//!
//! Runs when a snapshot is taken, in the tool's scope (what it allocates is
//! the tool's) and before the snapshot takes any other lock of ours, never
//! on the allocation path.
//!
//! **Fork.** `dl_iterate_phdr` holds the loader's lock while it calls back,
//! and glibc does not reset that lock in a fork child: a fork while a
//! thread is inside it would leave the child's next snapshot waiting
//! forever. So the call runs under [`LOCK`], which the atfork handlers take
//! before `fork()` (first, before the crate's other locks), and its
//! callback never allocates and takes no lock: it copies into buffers
//! reserved beforehand ([`Raw`]), turned into [`Module`]s after the lock
//! is released. The tool's in-process symbolisation, which can take the
//! loader's lock too, runs under `LOCK` as well ([`hold_loader`]). The
//! atfork handlers take `LOCK` before the crate's other locks, and nothing
//! takes `LOCK` while holding one of those, so the order is fixed. Other
//! code in the program (a panic's backtrace, `std::backtrace`, a library)
//! can still hold the loader's lock at a fork; a child's snapshot would
//! then wait for it.

use crate::lock::lock;
#[cfg(all(target_os = "linux", not(miri)))]
use crate::sys::{LoadedObject, ProgramHeader, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, PT_TLS};
use alloc_snapshot::{AddrRange, Module};
use spin::mutex::SpinMutex;

/// Held around `dl_iterate_phdr`, and by the forking thread across `fork()`.
static LOCK: SpinMutex<()> = SpinMutex::new(());

/// Holds [`LOCK`] while the tool does something that can take the loader's
/// lock (in-process symbolisation), so that a fork waits until it is done
/// and its child never inherits the loader's lock held. Never on the
/// allocation path.
pub(crate) fn hold_loader() -> crate::lock::Held<()> {
    lock(&LOCK)
}

/// At most this many modules are listed (more are left out).
const MAX_MODULES: usize = 256;
/// At most this many executable segments per module.
const MAX_RANGES: usize = 8;
/// At most this many writable segments per module.
const MAX_DATA: usize = 4;
/// At most this many bytes of paths in all.
const MAX_PATH_BYTES: usize = 64 << 10;

/// One module as the callback copies it, without allocating.
#[derive(Clone, Copy)]
struct RawModule {
    base: u64,
    ranges: [(u64, u64); MAX_RANGES],
    n_ranges: usize,
    build_id: [u8; 64],
    build_id_len: usize,
    /// The path's bytes in `Raw::paths`.
    path: (usize, usize),
    /// Writable `PT_LOAD` segments in memory (`.data`, `.bss`): the
    /// retention scan's static roots.
    data: [(u64, u64); MAX_DATA],
    n_data: usize,
    /// The `PT_TLS` segment's offset from the thread pointer and its size
    /// in memory, when it sits in static TLS (0, 0 otherwise).
    tls: (isize, usize),
}

/// What the retention scan reads as roots of a module: its writable
/// segments (its statics) and where its thread-local storage is in every
/// thread, relative to that thread's thread pointer.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModuleRoots {
    /// `(module index in the snapshot's list, load bias, start, end)` of
    /// each writable segment.
    pub(crate) data: Vec<(u32, u64, usize, usize)>,
    /// `(offset from the thread pointer, bytes)` of each module's static
    /// TLS block.
    pub(crate) tls: Vec<(isize, usize)>,
}

/// The callback's output buffers, reserved before the call.
struct Raw {
    modules: Vec<RawModule>,
    paths: Vec<u8>,
}

/// The loaded modules, the executable first (in the loader's order), and
/// their writable segments and static TLS blocks (for the retention scan).
pub(crate) fn loaded_with_roots() -> (Vec<Module>, ModuleRoots) {
    let mut raw = Raw {
        modules: Vec::with_capacity(MAX_MODULES),
        paths: Vec::with_capacity(MAX_PATH_BYTES),
    };
    {
        let _guard = lock(&LOCK);
        iterate(&mut raw);
    }
    let mut out = Vec::with_capacity(raw.modules.len());
    let mut roots = ModuleRoots::default();
    for (i, m) in raw.modules.iter().enumerate() {
        if m.tls.1 > 0 {
            roots.tls.push(m.tls);
        }
        let name = raw.paths.get(m.path.0..m.path.1).unwrap_or_default();
        let path = match String::from_utf8_lossy(name).into_owned() {
            // The loader names the executable "" (it is listed first).
            p if p.is_empty() && i == 0 => match std::env::current_exe() {
                Ok(exe) => exe.to_string_lossy().into_owned(),
                Err(_) => continue,
            },
            p if p.is_empty() => continue,
            p => p,
        };
        let mut ranges: Vec<AddrRange> = m.ranges[..m.n_ranges]
            .iter()
            .map(|&(start, end)| AddrRange { start, end })
            .collect();
        ranges.sort_unstable_by_key(|r| r.start);
        let id = &m.build_id[..m.build_id_len];
        for &(start, end) in &m.data[..m.n_data] {
            roots
                .data
                .push((out.len() as u32, m.base, start as usize, end as usize));
        }
        out.push(Module {
            path,
            base: m.base,
            ranges,
            build_id: (!id.is_empty()).then(|| id.iter().map(|b| format!("{b:02x}")).collect()),
        });
    }
    (out, roots)
}

/// Fills `raw` from `dl_iterate_phdr`. Call with [`LOCK`] held.
#[cfg(all(target_os = "linux", not(miri)))]
fn iterate(raw: &mut Raw) {
    crate::sys::for_each_loaded_object(&mut |object| collect(raw, object));
}

/// No modules where the platform has no `dl_iterate_phdr` (and under Miri,
/// which cannot call it): such snapshots can only be symbolised in-process.
#[cfg(not(all(target_os = "linux", not(miri))))]
fn iterate(_raw: &mut Raw) {}

/// `dl_iterate_phdr`'s callback: copies one module into `raw`, within the
/// capacity reserved there; false (stop) when full. Never allocates, never
/// panics.
#[cfg(all(target_os = "linux", not(miri)))]
fn collect(raw: &mut Raw, object: &LoadedObject<'_>) -> bool {
    if raw.modules.len() == raw.modules.capacity() {
        return false; // full: stop
    }
    let (name, base, phdrs) = (object.name, object.base, object.phdrs);
    let from = raw.paths.len();
    if raw.paths.capacity() - from < name.len() {
        return false; // no room for the path: stop
    }
    raw.paths.extend_from_slice(name); // within capacity: no allocation
    let mut m = RawModule {
        base,
        ranges: [(0, 0); MAX_RANGES],
        n_ranges: 0,
        build_id: [0; 64],
        build_id_len: 0,
        path: (from, raw.paths.len()),
        data: [(0, 0); MAX_DATA],
        n_data: 0,
        tls: (0, 0),
    };
    for ph in phdrs {
        let start = base.wrapping_add(ph.p_vaddr);
        if ph.p_type == PT_LOAD && ph.p_flags & PF_W != 0 && ph.p_memsz > 0 && m.n_data < MAX_DATA {
            m.data[m.n_data] = (start, start.saturating_add(ph.p_memsz));
            m.n_data += 1;
        }
        if ph.p_type == PT_TLS && ph.p_memsz > 0 && object.tls_data != 0 {
            // Static TLS lies within a few MiB of the thread pointer, at the
            // same offset in every thread; a block further away is dynamic
            // TLS (a module opened later), found per thread only through
            // its DTV, which the scan does not read.
            let off =
                (object.tls_data as isize).wrapping_sub(crate::sys::thread_pointer() as isize);
            if off.unsigned_abs() < 16 << 20 {
                m.tls = (off, ph.p_memsz as usize);
            }
        }
    }
    for ph in phdrs {
        let start = base.wrapping_add(ph.p_vaddr);
        if ph.p_type == PT_LOAD
            && ph.p_flags & PF_X != 0
            && ph.p_memsz > 0
            && m.n_ranges < MAX_RANGES
        {
            m.ranges[m.n_ranges] = (start, start.saturating_add(ph.p_memsz));
            m.n_ranges += 1;
        }
        if ph.p_type == PT_NOTE && m.build_id_len == 0 && readable(phdrs, base, start, ph) {
            let (at, len) = (start as *const u8, ph.p_memsz as usize);
            // SAFETY: `readable` checked the note lies in a readable segment
            // of this object, which the loader's lock keeps loaded.
            let notes = unsafe { core::slice::from_raw_parts(at, len) };
            if let Some(id) = gnu_build_id(notes, ph.p_align) {
                let n = id.len().min(m.build_id.len());
                m.build_id[..n].copy_from_slice(&id[..n]);
                m.build_id_len = n;
            }
        }
    }
    raw.modules.push(m); // within capacity: no allocation
    true
}

/// Whether the segment `ph` (at `start` in memory) lies inside a readable
/// `PT_LOAD` segment of the same object, so that its bytes are mapped.
#[cfg(all(target_os = "linux", not(miri)))]
fn readable(phdrs: &[ProgramHeader], base: u64, start: u64, ph: &ProgramHeader) -> bool {
    let Some(end) = start.checked_add(ph.p_memsz) else {
        return false;
    };
    phdrs.iter().any(|l| {
        let l_start = base.wrapping_add(l.p_vaddr);
        l.p_type == PT_LOAD
            && l.p_flags & PF_R != 0
            && l_start <= start
            && l_start
                .checked_add(l.p_memsz)
                .is_some_and(|l_end| end <= l_end)
    })
}

/// The `NT_GNU_BUILD_ID` note's descriptor (the build id's bytes), from
/// the bytes of a `PT_NOTE` segment (entries padded to `align`: 4, or 8 for
/// 8-aligned note segments).
#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
fn gnu_build_id(mut notes: &[u8], align: u64) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let pad = if align == 8 { 8 } else { 4 };
    let up = |n: usize| n.checked_add(pad - 1).map(|v| v & !(pad - 1));
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while notes.len() >= 12 {
        let namesz = word(notes, 0)? as usize;
        let descsz = word(notes, 4)? as usize;
        let kind = word(notes, 8)?;
        let name_end = 12usize.checked_add(namesz)?;
        let desc_start = up(name_end)?;
        let desc_end = desc_start.checked_add(descsz)?;
        let name = notes.get(12..name_end)?;
        let desc = notes.get(desc_start..desc_end)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
            return Some(desc);
        }
        notes = notes.get(up(desc_end)?.min(notes.len())..)?;
    }
    None
}

/// Fork support: [`LOCK`], taken before `fork()` (before the crate's other
/// locks) and released in both processes after it.
pub(crate) mod fork {
    use super::*;

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn lock_all() {
        core::mem::forget(crate::lock::spin(&LOCK));
    }

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn unlock_all() {
        // SAFETY: `lock_all` took the lock in this thread (the forking
        // thread, the only thread of a fork child) and leaked the guard.
        unsafe { LOCK.force_unlock() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: u32, name: &[u8], desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((name.len() as u32).to_ne_bytes());
        v.extend((desc.len() as u32).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend(name);
        v.resize(v.len().next_multiple_of(4), 0);
        v.extend(desc);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    #[test]
    fn the_build_id_note_is_found_among_others() {
        let mut notes = note(
            1,
            b"GNU\0",
            &[0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        );
        notes.extend(note(3, b"GNU\0", &[0xde, 0xad, 0xbe, 0xef, 0x01]));
        assert_eq!(
            gnu_build_id(&notes, 4),
            Some(&[0xde, 0xad, 0xbe, 0xef, 0x01][..])
        );
        assert_eq!(gnu_build_id(&notes[..notes.len() - 4], 4), None);
        assert_eq!(gnu_build_id(&note(3, b"XYZ\0", &[1]), 4), None);
        assert_eq!(gnu_build_id(&[], 4), None);
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn the_executable_is_listed_first_with_its_code() {
        let modules = loaded_with_roots().0;
        let exe = std::env::current_exe().unwrap();
        assert_eq!(modules[0].path, exe.to_string_lossy());
        let here = the_executable_is_listed_first_with_its_code as *const () as usize as u64;
        assert!(
            modules[0].contains(here),
            "{:#x} not in {:?}",
            here,
            modules[0]
        );
        assert!(modules[0]
            .build_id
            .as_ref()
            .is_some_and(|id| id.len() >= 16));
        assert!(modules.iter().any(|m| m.path.contains("libc.so")));
    }
}
