//! The objects loaded in the process (the executable and its shared
//! libraries), listed with `dl_iterate_phdr` for the snapshot, so that raw
//! instruction pointers can be resolved later, outside the process, from
//! the files on disk.
//!
//! Runs when a snapshot is taken, in the tool's scope (what it allocates is
//! the tool's) and before the snapshot takes any lock of ours, never on the
//! allocation path. `dl_iterate_phdr` holds the loader's lock while it
//! calls back; the callback allocates (the module list), which is safe
//! because nothing on our allocation path waits for a lock of ours while
//! inside the loader, and jemalloc never calls the loader.

use alloc_snapshot::Module;

/// The loaded modules, the executable first (in the loader's order).
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn loaded() -> Vec<Module> {
    let mut out: Vec<Module> = Vec::with_capacity(16);
    // SAFETY: `collect` matches the callback type `dl_iterate_phdr` expects
    // and treats `data` as the `Vec<Module>` passed here, which outlives the
    // call and is not touched otherwise until it returns.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&mut out as *mut Vec<Module>).cast());
    }
    out
}

/// No modules where the platform has no `dl_iterate_phdr` (and under Miri,
/// which cannot call it): such snapshots can only be symbolised in-process.
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn loaded() -> Vec<Module> {
    Vec::new()
}

/// `dl_iterate_phdr`'s callback: appends one module to the `Vec<Module>`
/// behind `data`. Never unwinds (nothing in it panics).
///
/// # Safety
///
/// `info` must point to a valid `dl_phdr_info` whose program headers
/// describe a mapped object (the loader guarantees it during the call), and
/// `data` to a `Vec<Module>` not otherwise borrowed.
#[cfg(all(target_os = "linux", not(miri)))]
unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the caller (the loader) passes a valid `info` for the call.
    let Some(info) = (unsafe { info.as_ref() }) else {
        return 0;
    };
    // SAFETY: `data` is the `Vec<Module>` of `loaded`, borrowed only here.
    let Some(out) = (unsafe { data.cast::<Vec<Module>>().as_mut() }) else {
        return 0;
    };
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader's `dlpi_phdr` points to `dlpi_phnum` program
        // headers of the mapped object, valid during the call.
        unsafe { core::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    let base = info.dlpi_addr;
    let path = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned
        // by the loader, valid during the call.
        unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let path = match path {
        // The loader names the executable "" (it is listed first).
        p if p.is_empty() && out.is_empty() => match std::env::current_exe() {
            Ok(exe) => exe.to_string_lossy().into_owned(),
            Err(_) => return 0,
        },
        p if p.is_empty() => return 0,
        p => p,
    };
    let mut ranges = Vec::new();
    let mut build_id = None;
    for ph in phdrs {
        let start = base.wrapping_add(ph.p_vaddr);
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 && ph.p_memsz > 0 {
            ranges.push(alloc_snapshot::AddrRange {
                start,
                end: start.saturating_add(ph.p_memsz),
            });
        }
        if ph.p_type == libc::PT_NOTE && build_id.is_none() && readable(phdrs, base, start, ph) {
            // SAFETY: `readable` checked that the note lies inside a
            // readable loaded segment of this object, mapped while the
            // object is loaded (and the loader's lock keeps it loaded).
            let notes =
                unsafe { core::slice::from_raw_parts(start as *const u8, ph.p_memsz as usize) };
            build_id = gnu_build_id(notes, ph.p_align);
        }
    }
    ranges.sort_unstable_by_key(|r| r.start);
    out.push(Module {
        path,
        base,
        ranges,
        build_id,
    });
    0
}

/// Whether the segment `ph` (at `start` in memory) lies inside a readable
/// `PT_LOAD` segment of the same object, so that its bytes are mapped.
#[cfg(all(target_os = "linux", not(miri)))]
fn readable(phdrs: &[libc::Elf64_Phdr], base: u64, start: u64, ph: &libc::Elf64_Phdr) -> bool {
    let Some(end) = start.checked_add(ph.p_memsz) else {
        return false;
    };
    phdrs.iter().any(|l| {
        let l_start = base.wrapping_add(l.p_vaddr);
        l.p_type == libc::PT_LOAD
            && l.p_flags & libc::PF_R != 0
            && l_start <= start
            && l_start
                .checked_add(l.p_memsz)
                .is_some_and(|l_end| end <= l_end)
    })
}

#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
/// The `NT_GNU_BUILD_ID` note's descriptor in lowercase hex, from the bytes
/// of a `PT_NOTE` segment (entries padded to `align`: 4, or 8 for 8-aligned
/// note segments).
fn gnu_build_id(mut notes: &[u8], align: u64) -> Option<String> {
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
            return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        notes = notes.get(up(desc_end)?.min(notes.len())..)?;
    }
    None
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
        assert_eq!(gnu_build_id(&notes, 4).as_deref(), Some("deadbeef01"));
        assert_eq!(gnu_build_id(&notes[..notes.len() - 4], 4), None);
        assert_eq!(gnu_build_id(&note(3, b"XYZ\0", &[1]), 4), None);
        assert_eq!(gnu_build_id(&[], 4), None);
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn the_executable_is_listed_first_with_its_code() {
        let modules = loaded();
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
