//! Reading the process's own memory for the retention scan: resident
//! pages only (`mincore`), through `process_vm_readv`, so that nothing is
//! faulted in and memory unmapped meanwhile reads short instead of
//! faulting.

use alloc_snapshot::RetentionScan;

/// Bytes read per `process_vm_readv` at most.
const RUN: usize = 64 << 10;
/// Pages asked about per `mincore`.
const RES_PAGES: usize = 256;

/// Reads words of the process's own memory: resident pages only, through
/// `process_vm_readv`, with the last run read and the last `mincore`
/// window cached (the blocks come in address order).
pub(super) struct Reader {
    pub(super) page: usize,
    pub(super) buf: Vec<u8>,
    cache_at: usize,
    cache_len: usize,
    res: [u8; RES_PAGES],
    res_at: usize,
    res_n: usize,
    pub(super) stats: RetentionScan,
}

impl Reader {
    pub(super) fn new(page: usize) -> Self {
        Reader {
            page,
            buf: vec![0; RUN],
            cache_at: 0,
            cache_len: 0,
            res: [0; RES_PAGES],
            res_at: 0,
            res_n: 0,
            stats: RetentionScan::default(),
        }
    }

    /// Whether the page at `p` (page-aligned) is resident; `None` if it is
    /// not mapped.
    fn resident(&mut self, p: usize) -> Option<bool> {
        let in_window = p >= self.res_at && (p - self.res_at) / self.page < self.res_n;
        if !in_window {
            self.res_n = 0;
            if crate::sys::resident_pages(p, RES_PAGES, self.page, &mut self.res) {
                (self.res_at, self.res_n) = (p, RES_PAGES);
            } else if crate::sys::resident_pages(p, 1, self.page, &mut self.res) {
                // The window ran past the mapping's end: this page alone.
                (self.res_at, self.res_n) = (p, 1);
            } else {
                return None;
            }
        }
        Some(self.res[(p - self.res_at) / self.page] & 1 != 0)
    }

    /// Calls `f(address, word)` for every 8-aligned word of `[a, b)` on a
    /// resident page that could be read.
    pub(super) fn words(&mut self, a: usize, b: usize, mut f: impl FnMut(usize, usize)) {
        let page = self.page;
        let mut at = a.next_multiple_of(8);
        while at.saturating_add(8) <= b {
            let p = at & !(page - 1);
            let cached = self.cache_at <= at && at + 8 <= self.cache_at + self.cache_len;
            if !cached {
                match self.resident(p) {
                    Some(true) => {}
                    other => {
                        let next = (p + page).min(b);
                        if other.is_none() {
                            self.stats.bytes_unreadable += (next - at) as u64;
                        } else {
                            self.stats.bytes_not_resident += (next - at) as u64;
                        }
                        at = next.next_multiple_of(8);
                        continue;
                    }
                }
                // A run of resident pages from `p`, up to `RUN` bytes and no
                // further than the page holding `b`'s last byte plus a few
                // (the next blocks in address order are likely there).
                let want_end = b.next_multiple_of(page).max(p + 4 * page).min(p + RUN);
                let mut end = p + page;
                while end < want_end && self.resident(end) == Some(true) {
                    end += page;
                }
                let n = crate::sys::read_own(p, &mut self.buf[..end - p]);
                (self.cache_at, self.cache_len) = (p, n & !7);
                if at + 8 > p + self.cache_len {
                    // Unmapped or freed meanwhile: skip this page.
                    let next = (p + page).min(b);
                    self.stats.bytes_unreadable += (next - at) as u64;
                    at = next.next_multiple_of(8);
                    continue;
                }
            }
            let end = b.min(self.cache_at + self.cache_len);
            let base = self.cache_at;
            let mut w = at;
            while w + 8 <= end {
                let o = w - base;
                let bytes: [u8; 8] = self.buf[o..o + 8].try_into().unwrap_or([0; 8]);
                f(w, usize::from_ne_bytes(bytes));
                w += 8;
            }
            self.stats.bytes_read += (w - at) as u64;
            at = w;
        }
    }
}
