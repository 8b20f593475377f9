//! The crate's one door to the operating system and the C library: every
//! `libc` call and `extern` declaration of alloc-core is here, each behind a
//! small wrapper, typed and safe where the call has no precondition a type
//! cannot carry, `unsafe` with a `# Safety` section where it has one.
//! Callers elsewhere see Rust types (`Option`, slices, `(bottom, top)`)
//! instead of out-pointers, error codes and C strings.
//!
//! **Rules.** Most of these run on the allocation path or in a fork
//! handler: no wrapper allocates, panics, or takes a lock of ours, and
//! each says which C-library locks it may take. What calls them decides when
//! (the modules' lock around [`for_each_loaded_object`], the stack bounds
//! found once per thread); this module only makes the calls.
//!
//! Under Miri, which cannot run some of these calls, the callers keep their
//! own `cfg(miri)` paths (`os_mem` takes memory from `System`, `modules`
//! lists none, the environment is not read).

use core::ffi::c_void;
#[cfg(not(miri))]
use core::ffi::CStr;

// ---------------------------------------------------------------- memory

/// `bytes` (non-zero) of zeroed, page-aligned, private anonymous memory
/// straight from the kernel (`mmap`), or null if it refused. Takes no
/// user-space lock; pages are resident only once written.
#[cfg(not(miri))]
pub(crate) fn map_anon(bytes: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; the result is checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        core::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Returns a mapping from [`map_anon`] to the kernel (`munmap`). A failure
/// (which `munmap` reports only for bad arguments) leaves it mapped.
///
/// # Safety
/// `p` came from `map_anon(bytes)` with this `bytes`, and nothing uses the
/// memory afterwards.
#[cfg(not(miri))]
pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
    // SAFETY: the caller passes a whole mapping of ours, no longer used.
    unsafe { libc::munmap(p.cast(), bytes) };
}

/// Bytes of the pages overlapping `[start, start + len)` that are resident
/// (`mincore`), or `None` if part of the range is not mapped or the page
/// size is unknown. For the tool's own tables (see `crate::tool_memory`),
/// never the allocation path: no allocation (a 256-byte buffer on the
/// stack, one call per 256 pages), no lock. A page mapped by a read alone
/// (the shared zero page) counts as resident, so this errs high.
#[cfg(not(miri))]
pub(crate) fn resident_in(start: *const u8, len: usize) -> Option<usize> {
    let page = usize::try_from(page_size()?).ok()?;
    let mut at = start as usize & !(page - 1);
    let end = (start as usize)
        .checked_add(len)?
        .checked_next_multiple_of(page)?;
    let mut pages = [0u8; 256];
    let mut resident = 0;
    while at < end {
        let n = ((end - at) / page).min(pages.len());
        // SAFETY: `pages` has room for the `n` bytes mincore writes (one per
        // page of the `n * page` bytes asked about); mincore only reads the
        // page tables and fails (ENOMEM) where the range is not mapped.
        let rc = unsafe { libc::mincore(at as *mut c_void, n * page, pages.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        resident += pages[..n].iter().filter(|&&b| b & 1 != 0).count() * page;
        at += n * page;
    }
    Some(resident)
}

/// Which of the `n` pages from the page-aligned `at` are resident
/// (`mincore`): bit 0 of each of the first `n` bytes of `out` (`n` at most
/// `out.len()`). False if part of the range is not mapped (nothing is
/// written then). For the retention scan: no allocation, no lock.
#[cfg(not(miri))]
pub(crate) fn resident_pages(at: usize, n: usize, page: usize, out: &mut [u8]) -> bool {
    let n = n.min(out.len());
    // SAFETY: `out` has room for the `n` bytes mincore writes (one per page
    // of the `n * page` bytes asked about); mincore only reads the page
    // tables and fails (ENOMEM) where the range is not mapped.
    unsafe { libc::mincore(at as *mut c_void, n * page, out.as_mut_ptr()) == 0 }
}

/// Under Miri no page counts as resident: the retention scan reads nothing
/// and finds no edges (Miri cannot model `mincore`).
#[cfg(miri)]
pub(crate) fn resident_pages(_at: usize, _n: usize, _page: usize, _out: &mut [u8]) -> bool {
    false
}

/// Copies up to `buf.len()` bytes of this process's memory from `from` into
/// `buf` with `process_vm_readv` on the own pid: the kernel reads through
/// the page tables, so memory unmapped or protected meanwhile gives a short
/// count (or 0) instead of a fault. Returns the bytes copied. No
/// allocation, no lock; for the retention scan, never the allocation path.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn read_own(from: usize, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: from as *mut c_void,
        iov_len: buf.len(),
    };
    // `local` describes `buf`, which the kernel writes at most `buf.len()`
    // bytes into; `remote` is only read by the kernel, which checks it
    // against this process's mappings (EFAULT or a short count where they
    // end).
    // SAFETY: as above: this process dereferences no address of `remote`.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(n).unwrap_or(0)
}

/// Elsewhere (and under Miri) nothing can be read safely: 0 bytes, so the
/// retention scan finds no edges rather than risking a fault.
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn read_own(_from: usize, _buf: &mut [u8]) -> usize {
    0
}

/// The calling thread's kernel thread id (`gettid`).
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The calling thread's thread pointer (x86-64: `fs:0`, the TCB's pointer
/// to itself; AArch64: `TPIDR_EL0`): static TLS blocks sit at fixed offsets
/// from it, the same in every thread. 0 on other targets.
pub(crate) fn thread_pointer() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
    {
        let tp: usize;
        // SAFETY: glibc (and every x86-64 Linux libc) keeps the TCB's
        // address in its first word at `fs:0`; an 8-byte load of it.
        unsafe {
            core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
        }
        tp
    }
    #[cfg(all(target_arch = "aarch64", target_os = "linux", not(miri)))]
    {
        let tp: usize;
        // SAFETY: reads the thread-pointer register; no memory is touched.
        unsafe {
            core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        tp
    }
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_os = "linux",
        not(miri)
    )))]
    {
        0
    }
}

// ------------------------------------------------------ time, scheduling

/// `CLOCK_MONOTONIC` in nanoseconds (a vDSO call: no allocation, no lock).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Gives up the CPU (`sched_yield`): a system call that neither allocates
/// nor takes a lock.
pub(crate) fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

// ------------------------------------------------------------- process

/// The system's page size (`sysconf`), or `None` if it reports none.
pub(crate) fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().filter(|&p| p > 0)
}

/// The process's resident set size in bytes, from `/proc/self/statm` (its
/// second field, in pages); `None` where that file cannot be read. Reads
/// into a buffer on the stack: no allocation (`std` opens a short path
/// through a stack buffer too).
pub(crate) fn resident_bytes() -> Option<u64> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let mut file = std::fs::File::open("/proc/self/statm").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let text = core::str::from_utf8(buf.get(..len)?).ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()?))
}

// --------------------------------------------------------- environment

/// Calls `f` with the value of the environment variable `name`, if it is
/// set (`getenv`: glibc neither allocates nor locks). Like
/// `std::env::var_os`, it relies on nothing changing the environment during
/// the call (Rust's `set_var` is `unsafe` for that reason).
#[cfg(not(miri))]
pub(crate) fn env_var<R>(name: &CStr, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: `name` is NUL-terminated.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a valid NUL-terminated string, read only
    // during this call.
    Some(f(unsafe { CStr::from_ptr(p) }.to_bytes()))
}

/// Writes `msg` to standard error with one `write` (no buffer, no lock, no
/// allocation); a failure is ignored.
pub(crate) fn write_stderr(msg: &[u8]) {
    // SAFETY: `msg` is valid for `msg.len()` bytes.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

// ------------------------------------------------------ threads and fork

/// A pthread key (`pthread_key_t`), as a number that fits an atomic.
pub(crate) type ThreadKey = libc::pthread_key_t;

/// Creates a thread-specific key whose `destructor` runs, at a thread's
/// exit, with that thread's non-null value (`pthread_key_create`; glibc
/// keeps keys in a static array). `None` if the process has no key left.
pub(crate) fn thread_key_create(destructor: extern "C" fn(*mut c_void)) -> Option<ThreadKey> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; `destructor` has the C ABI
    // signature pthread expects.
    (unsafe { libc::pthread_key_create(&mut key, Some(destructor)) } == 0).then_some(key)
}

/// Sets this thread's value of `key` (`pthread_setspecific`); false if
/// refused. glibc stores the first 32 keys' values in the thread descriptor
/// and later ones in a block from its own `malloc`, never from this
/// allocator. An invalid key is refused (`EINVAL`), so this is safe.
pub(crate) fn thread_key_set(key: ThreadKey, value: *const c_void) -> bool {
    // SAFETY: pthread_setspecific checks the key; `value` is only stored.
    unsafe { libc::pthread_setspecific(key, value) == 0 }
}

/// Registers fork handlers (`pthread_atfork`): `prepare` runs in the forking
/// thread before `fork()`, `parent` and `child` after it on each side.
/// False if they could not be registered.
pub(crate) fn at_fork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> bool {
    // SAFETY: three `extern "C" fn()`s, valid for the life of the process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

// -------------------------------------------------------- stack bounds

/// The top of the main thread's stack: glibc's `__libc_stack_end`, the stack
/// pointer at process start, set before any user code runs.
#[cfg(all(fp_walk, not(miri)))]
pub(crate) fn main_stack_end() -> usize {
    extern "C" {
        static __libc_stack_end: *const c_void;
    }
    // SAFETY: glibc defines `__libc_stack_end` and sets it before any user
    // code runs; it is only read.
    unsafe { __libc_stack_end }.addr()
}

/// The soft stack size limit (`RLIMIT_STACK`), `None` if unlimited or
/// unknown. A plain system call.
#[cfg(all(fp_walk, not(miri)))]
pub(crate) fn stack_size_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer; a plain system call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY)
        .then(|| usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// The calling thread's stack, `[bottom, top)`, from `pthread_getattr_np`;
/// `None` if it cannot be found. For a thread made by `pthread_create` glibc
/// copies the stack block it recorded (taking that thread's descriptor
/// lock, and allocating a CPU set with its own `malloc`, never this
/// allocator); for the main thread it reads `/proc/self/maps` through
/// `fopen`, glibc's `malloc` and stdio lock, which is why the caller
/// recognises the main thread from [`main_stack_end`] first.
#[cfg(all(fp_walk, not(miri)))]
pub(crate) fn thread_stack() -> Option<(usize, usize)> {
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is a valid out-pointer; on success it is initialised
    // and destroyed below.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return None;
    }
    let mut addr = core::ptr::null_mut();
    let mut size = 0;
    // SAFETY: `attr` was initialised by `pthread_getattr_np`; the
    // out-pointers are valid; `attr` is destroyed exactly once.
    let ok = unsafe {
        let ok = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        ok
    };
    let bottom = addr.addr();
    let top = bottom.checked_add(size)?;
    (ok && bottom < top).then_some((bottom, top))
}

// ------------------------------------------------------- loaded objects

/// A program header of a loaded object (`Elf64_Phdr`).
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) type ProgramHeader = libc::Elf64_Phdr;

/// Program header types and flags the module list reads.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) use libc::{PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, PT_TLS};

/// One object the loader lists: its path (empty for the executable), its
/// load bias and its program headers, valid during the callback only.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) struct LoadedObject<'a> {
    /// The path the loader holds for it.
    pub(crate) name: &'a [u8],
    /// Where it is loaded, relative to its link-time addresses.
    pub(crate) base: u64,
    /// Its program headers.
    pub(crate) phdrs: &'a [ProgramHeader],
    /// The calling thread's copy of its `PT_TLS` segment (`dlpi_tls_data`),
    /// 0 if it has none or it is not allocated in this thread.
    pub(crate) tls_data: usize,
}

/// Calls `f` for each loaded object, the executable first, until `f`
/// returns false (`dl_iterate_phdr`). The loader's lock is held throughout,
/// which keeps every object listed mapped; `f` must not allocate, take a
/// lock, or call back into the loader, and must not panic (a panic cannot
/// cross the C frames: it aborts).
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn for_each_loaded_object<F: FnMut(&LoadedObject<'_>) -> bool>(f: &mut F) {
    /// `dl_iterate_phdr`'s callback: `f` on one object.
    ///
    /// # Safety
    /// `info` points to a valid `dl_phdr_info` for the call (the loader's
    /// guarantee) and `data` to the `F` of `for_each_loaded_object`, not
    /// otherwise borrowed during the call.
    unsafe extern "C" fn visit<F: FnMut(&LoadedObject<'_>) -> bool>(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `info` for the call.
        let Some(info) = (unsafe { info.as_ref() }) else {
            return 0;
        };
        // SAFETY: `data` is the caller's `F`, borrowed only here.
        let Some(f) = (unsafe { data.cast::<F>().as_mut() }) else {
            return 1;
        };
        let phdrs: &[ProgramHeader] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: the loader's `dlpi_phdr` points to `dlpi_phnum`
            // program headers of the mapped object, valid during the call.
            unsafe { core::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let name: &[u8] = if info.dlpi_name.is_null() {
            &[]
        } else {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string
            // owned by the loader, valid during the call.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        let object = LoadedObject {
            name,
            base: info.dlpi_addr,
            phdrs,
            tls_data: info.dlpi_tls_data.addr(),
        };
        if f(&object) {
            0
        } else {
            1
        }
    }
    // SAFETY: `visit::<F>` matches the callback type `dl_iterate_phdr`
    // expects and treats `data` as the `F` passed here, which outlives the
    // call and is not touched otherwise until it returns.
    unsafe {
        libc::dl_iterate_phdr(Some(visit::<F>), (f as *mut F).cast());
    }
}

// ------------------------------------------------------------- jemalloc

// jemalloc's C API, which the `Jemalloc` backend calls directly for small
// blocks at alignments up to 8 (tikv-jemallocator picks between `malloc` and
// `mallocx` on every call). These run on the allocation path: each is one
// call into jemalloc, inlined into its caller.

/// `malloc(size)`: a block of at least `size` bytes aligned to 8 (16 from
/// 16 bytes on), or null.
///
/// # Safety
/// `size` is non-zero.
#[cfg(feature = "jemalloc")]
#[inline(always)]
pub(crate) unsafe fn je_malloc(size: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `malloc` has no other precondition.
    unsafe { tikv_jemalloc_sys::malloc(size).cast() }
}

/// `calloc(1, size)`: as [`je_malloc`], zeroed.
///
/// # Safety
/// `size` is non-zero.
#[cfg(feature = "jemalloc")]
#[inline(always)]
pub(crate) unsafe fn je_calloc(size: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `calloc` has no other precondition.
    unsafe { tikv_jemalloc_sys::calloc(1, size).cast() }
}

/// `sdallocx(ptr, size, 0)`: frees a block of [`je_malloc`]/[`je_calloc`]
/// with the size it was asked for.
///
/// # Safety
/// `ptr` came from `je_malloc(size)` or `je_calloc(size)` with this `size`
/// and is not used afterwards.
#[cfg(feature = "jemalloc")]
#[inline(always)]
pub(crate) unsafe fn je_sdallocx(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's contract: a live block of this size class, no
    // flags needed at the default alignment.
    unsafe { tikv_jemalloc_sys::sdallocx(ptr.cast(), size, 0) }
}

/// `nallocx(size, 0)`: the size class jemalloc would give `size` bytes at
/// the default alignment (0 if it cannot). Allocates nothing.
#[cfg(all(test, feature = "jemalloc"))]
pub(crate) fn je_size_class(size: usize) -> usize {
    // SAFETY: `nallocx` only computes a size; flags 0 is the default
    // alignment.
    unsafe { tikv_jemalloc_sys::nallocx(size, 0) }
}
