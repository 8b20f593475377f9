//! Sets `cfg(fp_walk)` when the crate is built with frame pointers on a
//! target where alloc-core walks them (x86-64 and AArch64 Linux with
//! glibc), so sampled stacks are captured by walking the frame-pointer
//! chain instead of the system unwinder.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fp_walk)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let target_ok = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && matches!(
            env::var("CARGO_CFG_TARGET_ARCH").as_deref(),
            Ok("x86_64" | "aarch64")
        );
    let miri = env::var_os("CARGO_CFG_MIRI").is_some();
    if target_ok && !miri && frame_pointers(&flags) {
        println!("cargo::rustc-cfg=fp_walk");
    }
}

/// Whether the rustflags (separated by 0x1f) force frame pointers; the
/// last setting wins, as in rustc.
fn frame_pointers(flags: &str) -> bool {
    let mut on = false;
    let mut after_c = false;
    for arg in flags.split('\u{1f}') {
        let opt = if after_c {
            Some(arg)
        } else {
            arg.strip_prefix("-C").filter(|s| !s.is_empty())
        };
        after_c = arg == "-C" || arg == "--codegen";
        let Some(opt) = opt else { continue };
        let opt = opt.trim();
        if let Some(v) = opt.strip_prefix("force-frame-pointers") {
            on = matches!(
                v.strip_prefix('=').unwrap_or("yes"),
                "yes" | "y" | "on" | "true" | "always"
            );
        }
    }
    on
}
