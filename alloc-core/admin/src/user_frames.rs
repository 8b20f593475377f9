//! Cutting raw stacks at the user's frame for the live heap profile,
//! without parsing debug information.
//!
//! A raw stack starts inside the tool and the standard library's
//! allocation functions; `pprof` reads the profile's leaf as the allocating
//! function, so those frames must go before the profile leaves the process.
//! Which frames they are is a question of function names only, and the
//! names are in each module's ELF symbol table: this module reads just the
//! section headers and the symbol table (`object`'s `ReadCache`, not the
//! whole file), keeps the names of the symbols that hold one of the
//! snapshot's addresses (a few hundred strings), applies the one set of
//! trimming rules (`alloc_snapshot::trim`), and drops everything inside
//! the first user frame. The addresses stay raw for `pprof` to resolve to
//! files, lines and inlined calls from the same binaries; the debug
//! information (tens of megabytes parsed) never enters the server.

use std::collections::HashMap;
use std::fs::File;

use alloc_snapshot::trim::is_machinery;
use alloc_snapshot::{Module, Snapshot};
use object::{Object, ObjectSymbol, ReadCache, SymbolKind};

/// Cuts every stack of `snapshot` so that it starts at its first user
/// frame (innermost first), by the function names of the symbol tables.
/// Stacks where no frame is named, or none is the user's, stay whole.
pub(crate) fn cut_at_user_frames(snapshot: &mut Snapshot) {
    let mut ips: Vec<u64> = snapshot
        .stacks
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.ip))
        .collect();
    ips.sort_unstable();
    ips.dedup();
    let names = function_names(&snapshot.modules, &ips, 1);
    for stack in &mut snapshot.stacks {
        let user = stack.frames.iter().position(|f| {
            names
                .get(&f.ip)
                .is_some_and(|name| !is_machinery(name, None))
        });
        if let Some(i) = user {
            stack.frames.drain(..i);
        }
    }
}

/// The demangled function (without its hash) holding each address of
/// `addrs` (as pprof gives them: call instructions, not return addresses),
/// for the ones a symbol table names.
pub(crate) fn names_at(modules: &[Module], addrs: &[u64]) -> HashMap<u64, String> {
    let mut sorted = addrs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    function_names(modules, &sorted, 0)
}

/// The demangled function (without its hash) holding each of `ips`
/// (sorted; return addresses when `back` is 1, so the call instruction
/// `ip - 1` is looked up), for the ones a symbol table names.
fn function_names(modules: &[Module], ips: &[u64], back: u64) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for m in modules {
        // This module's addresses, as addresses in its file: the call
        // instruction less the load bias.
        let mine: Vec<(u64, u64)> = ips
            .iter()
            .filter(|&&ip| m.contains(ip.wrapping_sub(back)))
            .map(|&ip| (ip.wrapping_sub(back).wrapping_sub(m.base), ip))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let Ok(file) = File::open(&m.path) else {
            continue;
        };
        let cache = ReadCache::new(file);
        let Ok(obj) = object::File::parse(&cache) else {
            continue;
        };
        let mut sorted = mine;
        sorted.sort_unstable();
        let symbols = obj.symbols().chain(obj.dynamic_symbols());
        for sym in symbols.filter(|s| s.kind() == SymbolKind::Text && s.size() > 0) {
            let (start, end) = (sym.address(), sym.address().saturating_add(sym.size()));
            let from = sorted.partition_point(|&(a, _)| a < start);
            for &(_, ip) in sorted[from..].iter().take_while(|&&(a, _)| a < end) {
                if let (false, Ok(raw)) = (names.contains_key(&ip), sym.name()) {
                    names.insert(ip, format!("{:#}", rustc_demangle::demangle(raw)));
                }
            }
        }
    }
    names
}
