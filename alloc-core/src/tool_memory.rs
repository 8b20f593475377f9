//! The tool's own metadata, by part: what [`crate::ToolUsage`]'s
//! `metadata_bytes` sums and [`crate::tool_metadata`] reports part by part.
//!
//! Each part counts the memory it makes resident, so that the program's
//! share of the RSS (RSS less the tool's) is not understated:
//!
//! - the counter slots ever claimed (`registry`), each written whole when
//!   claimed;
//! - the page-table leaves (`page_table`): 1 MiB of address space per GiB
//!   the heap reaches, resident only in the pages where large blocks' tags
//!   were written, asked of the kernel (`mincore`);
//! - the stack table (`stacks`): 2.1 MiB of `.bss`, resident in the pages
//!   where stacks were interned, asked of the kernel likewise (entries land
//!   by hash, so a few hundred stacks touch most of its pages);
//! - the sampled-block table (`sampled`): the records mapped, all written
//!   as the shards fill.

use crate::{page_table, registry, sampled_table, stacks};

/// The tool's metadata by part, in bytes (see [`tool_metadata`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolMetadata {
    /// Per-thread counter slots ever claimed (about 26 KiB each, reused as
    /// threads come and go).
    pub counter_slots: u64,
    /// Resident pages of the page-table leaves (the tags of blocks of 4 KiB
    /// and more).
    pub page_table: u64,
    /// Resident pages of the table of interned call stacks.
    pub stack_table: u64,
    /// Resident pages of the sampled-block table (the slots its shards
    /// have written).
    pub sampled_table: u64,
}

impl ToolMetadata {
    /// The sum of the parts: [`crate::ToolUsage`]'s `metadata_bytes`.
    pub fn total(&self) -> u64 {
        self.counter_slots + self.page_table + self.stack_table + self.sampled_table
    }
}

/// The tool's metadata now, by part. A few system calls (`mincore`, one
/// per page-table leaf and per megabyte of the stack table); [`crate::snapshot()`]
/// takes it too.
///
/// ```
/// let parts = alloc_core::tool_metadata();
/// assert!(parts.total() >= parts.counter_slots);
/// ```
pub fn tool_metadata() -> ToolMetadata {
    let (_, slot_bytes) = registry::slot_usage();
    ToolMetadata {
        counter_slots: slot_bytes as u64,
        page_table: page_table::leaf_resident_bytes() as u64,
        stack_table: stack_table_bytes() as u64,
        sampled_table: resident_or(
            sampled_table::mappings(),
            sampled_table::live() as usize * sampled_table::RECORD_BYTES,
        ) as u64,
    }
}

/// Resident bytes of the stack table; where residency cannot be asked
/// (Miri), the entries in use.
fn stack_table_bytes() -> usize {
    resident_or(
        stacks::table_memory().into_iter(),
        stacks::used() * stacks::ENTRY_BYTES,
    )
}

/// Resident bytes of `regions` (start, length); `in_use` where residency
/// cannot be asked (Miri, or a failed `mincore`).
fn resident_or(regions: impl Iterator<Item = (*const u8, usize)>, in_use: usize) -> usize {
    #[cfg(not(miri))]
    {
        let mut regions = regions;
        regions
            .try_fold(0, |sum, (start, len)| {
                Some(sum + crate::sys::resident_in(start, len)?)
            })
            .unwrap_or(in_use)
    }
    #[cfg(miri)]
    {
        let _ = regions;
        in_use
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::os_mem;

    #[test]
    fn residency_counts_the_pages_written_not_the_mapping() {
        let page = crate::sys::page_size().unwrap() as usize;
        let len = 64 * page;
        let p = os_mem::map_zeroed(len);
        assert!(!p.is_null());
        assert_eq!(crate::sys::resident_in(p, len), Some(0));
        // SAFETY: `p` maps `len` bytes of ours; pages 3 and 40 are inside.
        unsafe {
            p.add(3 * page + 17).write(1);
            p.add(40 * page).write(1);
        }
        assert_eq!(crate::sys::resident_in(p, len), Some(2 * page));
        // A range that starts and ends inside pages counts them whole.
        // SAFETY: inside the mapping.
        let inner = unsafe { p.add(3 * page + 100) };
        assert_eq!(crate::sys::resident_in(inner, 10), Some(page));
        // SAFETY: mapped above with this length, not used afterwards.
        unsafe { os_mem::unmap(p, len) };
    }
}
