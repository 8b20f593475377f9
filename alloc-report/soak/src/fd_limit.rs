//! The process's descriptor limit: a soak holds many connections at once.

use crate::SoakError;

/// Raises the soft descriptor limit to at least `want` (as far as the hard
/// limit allows); never lowers it.
pub fn raise(want: u64) {
    let Some(mut lim) = fd_limit() else { return };
    let want = want.min(lim.rlim_max);
    if lim.rlim_cur < want {
        lim.rlim_cur = want;
        // SAFETY: `lim` is a valid rlimit; a failure leaves the limit as it was.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// Sets the soft descriptor limit to `n`.
pub fn set(n: u64) -> Result<(), SoakError> {
    let mut lim = fd_limit().ok_or_else(|| SoakError::FdLimit("getrlimit failed".to_string()))?;
    lim.rlim_cur = n.min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc == 0 {
        Ok(())
    } else {
        Err(SoakError::FdLimit(format!(
            "setrlimit(NOFILE, {n}): {}",
            std::io::Error::last_os_error()
        )))
    }
}

fn fd_limit() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim)
}
