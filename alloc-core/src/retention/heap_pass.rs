//! The heap pass: for the sampled blocks no root reaches, the words of
//! heap memory outside the sampled blocks (unsampled blocks, or blocks
//! born before capture) that point into them, each with the static whose
//! pointer is nearest below the word, if one is close enough to be taken
//! for the start of the word's block.

use super::graph::{end, Blocks};
use super::reader::Reader;
use super::roots::Root;
use super::TIME_BUDGET_NS;
use crate::registry::ScanThread;
use alloc_snapshot::retention::HEAP_ROOT_REACH;

/// A heap word that points into an unreached block: its address, and the
/// static pointer (value, root) nearest below it, if one is close enough.
pub(super) type HeapHit = (usize, Option<(usize, Root)>);

/// Finds a heap word for each block not `reached`, reading the anonymous
/// mappings `heap` (less the scan's own tables, the sampled-block table and
/// the threads' stacks, read as roots already) until the time budget ends
/// (then the second value is false). `ptrs` (the statics' pointers into
/// heap memory) are sorted here.
pub(super) fn hits(
    rd: &mut Reader,
    blocks: &Blocks<'_>,
    reached: &[bool],
    heap: &[(usize, usize)],
    ptrs: &mut [(usize, Root)],
    threads: &[ScanThread],
    start: u64,
) -> (Vec<Option<HeapHit>>, bool) {
    let records = blocks.r;
    let mut hit: Vec<Option<HeapHit>> = vec![None; records.len()];
    let unreached: Vec<usize> = (0..records.len()).filter(|&i| !reached[i]).collect();
    let Some(&u0) = unreached.first() else {
        return (hit, true);
    };
    ptrs.sort_unstable_by_key(|p| p.0);
    let (ulo, uhi) = (
        records[u0].addr,
        unreached
            .iter()
            .map(|&i| end(&records[i]))
            .max()
            .unwrap_or(0),
    );
    let find_un = |w: usize| -> Option<usize> {
        if w < ulo || w >= uhi {
            return None;
        }
        let k = unreached
            .partition_point(|&i| records[i].addr <= w)
            .checked_sub(1)?;
        let i = unreached[k];
        (w < end(&records[i])).then_some(i)
    };
    // Never read the scan's own copies of block addresses, nor the
    // sampled-block table, nor the stacks (read as roots already).
    let span = |p: *const u8, len: usize| (p as usize, p as usize + len);
    let own = [
        span(records.as_ptr().cast(), size_of_val(records)),
        span(unreached.as_ptr().cast(), size_of_val(unreached.as_slice())),
        span(rd.buf.as_ptr(), rd.buf.len()),
        span(ptrs.as_ptr().cast(), size_of_val(ptrs)),
    ];
    let segs = segments(heap, &own, threads);
    let mut heap_word = |word_at: usize, w: usize| {
        let Some(j) = find_un(w) else { return };
        if blocks.find(word_at).is_some() {
            return; // a sampled block's word: an edge already
        }
        let k = ptrs.partition_point(|p| p.0 <= word_at);
        let near = k
            .checked_sub(1)
            .map(|k| ptrs[k])
            .filter(|p| (word_at - p.0) as u64 <= HEAP_ROOT_REACH)
            // Blocks do not overlap: a sampled block between the root's
            // pointer and the word ends the block it points to before the
            // word.
            .filter(|p| !blocks.any_in(p.0, word_at));
        let better = match hit[j] {
            None => true,
            Some((_, None)) => near.is_some(),
            Some(_) => false,
        };
        if better {
            hit[j] = Some((word_at, near));
        }
    };
    for (a, b) in segs {
        let mut at = a;
        while at < b {
            if crate::sys::monotonic_ns().saturating_sub(start) > TIME_BUDGET_NS {
                return (hit, false);
            }
            let to = b.min(at.saturating_add(1 << 20));
            program_words(rd, at, to, &mut heap_word);
            at = to;
        }
    }
    (hit, true)
}

/// The parts of the anonymous mappings `heap` to read: without the scan's
/// `own` tables, the sampled-block table and the threads' stacks.
fn segments(
    heap: &[(usize, usize)],
    own: &[(usize, usize)],
    threads: &[ScanThread],
) -> Vec<(usize, usize)> {
    let mut holes = own.to_vec();
    holes.extend(crate::sampled_table::mappings().map(|(p, len)| (p as usize, p as usize + len)));
    holes.extend(threads.iter().map(|t| t.stack).filter(|s| s.0 < s.1));
    holes.sort_unstable();
    subtract(heap, &holes)
}

/// Calls `f(address, word)` for the words of `[a, b)` that may be the
/// program's pointers: a page-aligned value is held back one word, and
/// dropped when a size word follows it (the allocator's own record of an
/// extent: its start, then its size).
fn program_words(rd: &mut Reader, a: usize, b: usize, f: &mut impl FnMut(usize, usize)) {
    let page = rd.page;
    let mut held: Option<(usize, usize)> = None;
    rd.words(a, b, |word_at, w| {
        if let Some((h_at, h)) = held.take() {
            if !(word_at == h_at + 8 && extent_size_word(w, page)) {
                f(h_at, h);
            }
        }
        if w % page == 0 {
            held = Some((word_at, w));
        } else {
            f(word_at, w);
        }
    });
    if let Some((h_at, h)) = held {
        f(h_at, h);
    }
}

/// Whether `w`, the word after a page-aligned one, looks like jemalloc's
/// record of an extent: its size (a whole number of pages, at least one,
/// below 1 TiB) with a serial number in the low bits. A program's pointer
/// to a block is followed by another field, rarely by such a number.
fn extent_size_word(w: usize, page: usize) -> bool {
    let size = w & !(page - 1);
    size >= page && size < 1 << 40
}

/// The process's private anonymous writable mappings (`/proc/self/maps`:
/// `rw-p`, no file), where the allocator's blocks are; sorted.
pub(super) fn anonymous_mappings() -> Vec<(usize, usize)> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(_), Some(_), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.next().unwrap_or("");
        if perms != "rw-p" || inode != "0" || !(path.is_empty() || path == "[heap]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
            out.push((a, b));
        }
    }
    out.sort_unstable();
    out
}

/// `ranges` without the parts covered by `holes` (both sorted by start;
/// holes may overlap).
fn subtract(ranges: &[(usize, usize)], holes: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        let mut at = a;
        for &(h0, h1) in holes {
            if h1 <= at || h0 >= b {
                continue;
            }
            if h0 > at {
                out.push((at, h0));
            }
            at = at.max(h1);
        }
        if at < b {
            out.push((at, b));
        }
    }
    out
}
