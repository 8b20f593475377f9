//! Shows live bytes by birth epoch while a program leaks one block per cycle.
//!
//! Run with `cargo run --release -p alloc-core --example epochs`.

#![forbid(unsafe_code)]

use alloc_core::{advance_epoch, snapshot, EpochAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn main() {
    let mut kept: Vec<Box<[u8]>> = Vec::with_capacity(100);
    let start = advance_epoch();
    for cycle in 0..20u32 {
        // Each cycle allocates scratch space that is freed, and leaks 312 bytes.
        let scratch = vec![cycle as u8; 4096];
        kept.push(vec![0u8; 312].into_boxed_slice());
        drop(scratch);
        advance_epoch();
    }
    let snap = snapshot();
    println!(
        "epoch now {}; live {} bytes in {} blocks",
        snap.epoch, snap.totals.live_bytes, snap.totals.live_blocks
    );
    println!("{:>6} {:>10} {:>7}", "epoch", "bytes", "blocks");
    for e in snap.epochs.iter().filter(|e| e.first >= start) {
        println!("{:>6} {:>10} {:>7}", e.first, e.live_bytes, e.live_blocks);
    }
    let (bytes, blocks) = snap.live_born_before(snap.epoch);
    println!("survivors of closed epochs: {bytes} bytes in {blocks} blocks");
    println!("rss {:?} B, allocator {:?}", snap.rss_bytes, snap.allocator);
    println!("tool: {:?}", snap.tool);
}
