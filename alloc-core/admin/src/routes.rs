//! The routes: what each request does and answers. Runs on the endpoint's
//! worker threads, inside `alloc_core::untracked`.

use crate::message::{Request, Response};
use crate::State;
use alloc_snapshot::file::{encode, SnapshotFile};
use alloc_snapshot::Snapshot;
use std::fmt::Write as _;

const INDEX: &str = "alloc-admin: the alloc-core admin endpoint
GET  /snapshot[?cycles=N][&retention=1]
                           a snapshot in the alloc-snapshot file format;
                           retention=1: with a retention scan (what holds
                           each sampled survivor)
GET  /epoch                the current epoch
POST /epoch                close the current epoch, answer the new one
GET  /connections          open connections of the program
GET  /metrics              Prometheus text format
GET  /debug/pprof/heap     the live heap as a gzipped pprof profile
POST /debug/pprof/symbol   function names of addresses (pprof's symbolz)
";

/// Answers one request.
pub(crate) fn route(req: &Request, state: &State) -> Response {
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let allow_get = |r: Response| {
        if get {
            r
        } else {
            method_not_allowed("GET, HEAD")
        }
    };
    match req.path.as_str() {
        "/" => allow_get(no_query(req).unwrap_or_else(|| Response::text(200, INDEX))),
        "/snapshot" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            match snapshot_query(req.query.as_deref()) {
                Ok((cycles, retention)) => snapshot_file(cycles, retention),
                Err(msg) => Response::text(400, msg),
            }
        }
        "/epoch" => {
            if let Some(bad) = no_query(req) {
                return bad;
            }
            match req.method.as_str() {
                "GET" | "HEAD" => {
                    Response::json(format!("{{\"epoch\":{}}}\n", alloc_core::epoch()))
                }
                "POST" => {
                    Response::json(format!("{{\"epoch\":{}}}\n", alloc_core::advance_epoch()))
                }
                _ => method_not_allowed("GET, HEAD, POST"),
            }
        }
        "/connections" => allow_get(no_query(req).unwrap_or_else(
            || match &state.open_connections {
                Some(count) => Response::json(format!("{{\"open\":{}}}\n", count())),
                None => Response::text(
                    404,
                    "this program registered no connection counter \
                     (Admin::open_connections)\n",
                ),
            },
        )),
        "/metrics" => allow_get(no_query(req).unwrap_or_else(|| {
            let snap = alloc_core::snapshot();
            let open = state.open_connections.as_ref().map(|c| c());
            let mut text = metrics(&snap, open);
            tool_metadata_parts(&mut text, &alloc_core::tool_metadata());
            if let Some(extra) = &state.extra_metrics {
                extra(&mut text);
            }
            Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text.into_bytes(),
            )
        })),
        // Scrapers add their own parameters (`?gc=1`, `?seconds=N`): the
        // live heap does not depend on them, so any query is accepted;
        // only `symbolize=0` is read.
        "/debug/pprof/heap" => allow_get(heap_profile(raw_addresses(req.query.as_deref()))),
        "/debug/pprof/symbol" => match req.method.as_str() {
            // pprof's probe: this server can name symbols.
            "GET" | "HEAD" => Response::text(200, "num_symbols: 1\n"),
            "POST" => symbols(&req.body),
            _ => method_not_allowed("GET, HEAD, POST"),
        },
        _ => Response::text(404, format!("no route {}\n\n{INDEX}", printable(&req.path))),
    }
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = Response::text(405, format!("method not allowed; use {allow}\n"));
    r.allow = Some(allow);
    r
}

/// A 400 answer when a route that takes no query got one.
fn no_query(req: &Request) -> Option<Response> {
    match req.query.as_deref() {
        None | Some("") => None,
        Some(q) => Some(Response::text(
            400,
            format!("this route takes no query, got '{}'\n", printable(q)),
        )),
    }
}

/// `v` as a number if it is only decimal digits (no sign, no spaces).
fn whole_number(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The optional `cycles=N` and `retention=0|1` of `/snapshot`; anything
/// else is an error.
fn snapshot_query(query: Option<&str>) -> Result<(Option<u64>, bool), String> {
    let mut cycles = None;
    let mut retention = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("retention", v)) if retention.is_none() => match v {
                "1" | "true" => retention = Some(true),
                "0" | "false" => retention = Some(false),
                _ => {
                    return Err(format!(
                        "retention must be 1 or 0, not '{}'\n",
                        printable(v)
                    ))
                }
            },
            Some(("retention", _)) => return Err("retention given twice\n".to_string()),
            Some(("cycles", v)) if cycles.is_none() => match whole_number(v) {
                Some(n) => cycles = Some(n),
                None => {
                    return Err(format!(
                        "cycles must be a whole number, not '{}'\n",
                        printable(v)
                    ))
                }
            },
            Some(("cycles", _)) => return Err("cycles given twice\n".to_string()),
            _ => {
                return Err(format!(
                    "unknown query parameter '{}' (only cycles=N and retention=1)\n",
                    printable(pair)
                ))
            }
        }
    }
    Ok((cycles, retention.unwrap_or(false)))
}

fn snapshot_file(cycles: Option<u64>, retention: bool) -> Response {
    // Raw stacks and the loaded modules: the reader symbolises them
    // (`alloc-report`, the soak driver), so the server never holds parsed
    // debug information.
    let snapshot = if retention {
        alloc_core::snapshot_with_retention()
    } else {
        alloc_core::snapshot()
    };
    Response::new(
        200,
        "application/json",
        encode(&SnapshotFile { cycles, snapshot }),
    )
}

/// Whether a `/debug/pprof/heap` query asks for raw addresses
/// (`symbolize=0`); every other parameter is a scraper's and ignored.
fn raw_addresses(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|p| matches!(p, "symbolize=0" | "symbolize=false"))
}

/// The live heap in pprof's format (`alloc_snapshot::pprof::heap`).
///
/// By default symbolised here, in the tool's scope: each location carries
/// its function, file and line, inlined calls as lines of their own, and
/// starts at the stack's site (the innermost frame of the program's own
/// code, [`alloc_core::site_rule`]), the frames `alloc-report` shows. Go's
/// `pprof` reads a Rust binary's line table but not its inlined calls, so
/// a leak in a helper inlined into a handler would otherwise show as the
/// handler. The first profile parses the debug information (about a
/// second for a release build with `debug = "limited"`) and keeps it for
/// the next ones, as the tool's memory (about the size of the debug
/// information; [`alloc_core::release_symbol_cache`] drops it): a scraper
/// asking every few seconds must not pay the parse each time.
///
/// With `raw` (`?symbolize=0`): raw addresses in mappings with build ids,
/// which `pprof` symbolises from the binaries on disk (no inlined calls),
/// stacks cut at the first frame outside the allocator and the standard
/// library by the symbol tables' names ([`crate::user_frames`]).
fn heap_profile(raw: bool) -> Response {
    let mut snapshot = alloc_core::snapshot();
    if raw {
        crate::user_frames::cut_at_user_frames(&mut snapshot);
    } else {
        alloc_core::symbolize(&mut snapshot);
    }
    let profile = alloc_snapshot::pprof::heap(&snapshot);
    Response::new(
        200,
        "application/octet-stream",
        alloc_snapshot::pprof::gzip(&profile),
    )
}

/// pprof's symbolz protocol: the body lists addresses (`0x1f+0x2a`), the
/// answer names the function of each one a symbol table knows
/// (`0x1f<TAB>name`). pprof asks for the addresses it could not symbolise
/// from the files itself (a library without debug information).
fn symbols(body: &[u8]) -> Response {
    let text = String::from_utf8_lossy(body);
    let addrs: Vec<u64> = text
        .split(|c: char| c == '+' || c.is_whitespace())
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    let modules = alloc_core::snapshot().modules;
    let names = crate::user_frames::names_at(&modules, &addrs);
    let mut out = String::new();
    for a in addrs {
        if let Some(name) = names.get(&a) {
            let _ = writeln!(out, "{a:#x}\t{name}");
        }
    }
    Response::text(200, out)
}

/// At most 200 characters of client input, control characters escaped, for
/// error messages.
fn printable(s: &str) -> String {
    s.chars().take(200).flat_map(char::escape_default).collect()
}

/// The tool's metadata by part, as one labelled gauge (its parts are read
/// a moment after the snapshot, so their sum can differ slightly from
/// `alloc_core_tool_metadata_bytes`).
pub(crate) fn tool_metadata_parts(out: &mut String, parts: &alloc_core::ToolMetadata) {
    let name = "alloc_core_tool_metadata_part_bytes";
    let _ = write!(
        out,
        "# HELP {name} The tool's accounting metadata by part (resident bytes).\n\
         # TYPE {name} gauge\n"
    );
    for (part, bytes) in [
        ("counter_slots", parts.counter_slots),
        ("page_table", parts.page_table),
        ("stack_table", parts.stack_table),
        ("sampled_table", parts.sampled_table),
    ] {
        let _ = writeln!(out, "{name}{{part=\"{part}\"}} {bytes}");
    }
}

/// One metric: name, type, help, value (a metric without a value is left
/// out).
type Metric = (&'static str, &'static str, &'static str, Option<u64>);

/// The Prometheus text exposition of a snapshot: the heap's metrics, then
/// the process's.
pub(crate) fn metrics(s: &Snapshot, open: Option<u64>) -> String {
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in heap_metrics(s).into_iter().chain(process_metrics(s, open)) {
        if let Some(value) = value {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
    }
    out
}

/// The epoch, the live heap, its survivors and the operation counts.
fn heap_metrics(s: &Snapshot) -> [Metric; 8] {
    // Survivors of the snapshot on its own: every closed epoch (the
    // glossary of ARCHITECTURE.md).
    let (survivor_bytes, survivor_blocks) = s.live_born_before(s.epoch);
    [
        (
            "alloc_core_epoch",
            "gauge",
            "The current epoch (advanced by POST /epoch).",
            Some(u64::from(s.epoch)),
        ),
        (
            "alloc_core_live_bytes",
            "gauge",
            "Bytes in live blocks of the program's heap (as requested).",
            Some(s.totals.live_bytes),
        ),
        (
            "alloc_core_live_blocks",
            "gauge",
            "Live blocks of the program's heap.",
            Some(s.totals.live_blocks),
        ),
        (
            "alloc_core_survivor_bytes",
            "gauge",
            "Survivors: live bytes born in any closed epoch since the \
             start (alloc-report counts those born since a series' first \
             snapshot).",
            Some(survivor_bytes),
        ),
        (
            "alloc_core_survivor_blocks",
            "gauge",
            "Survivors: live blocks born in any closed epoch since the \
             start (alloc-report counts those born since a series' first \
             snapshot).",
            Some(survivor_blocks),
        ),
        (
            "alloc_core_allocations_total",
            "counter",
            "Allocations since start.",
            Some(s.totals.allocs),
        ),
        (
            "alloc_core_frees_total",
            "counter",
            "Frees since start.",
            Some(s.totals.frees),
        ),
        (
            "alloc_core_reallocations_total",
            "counter",
            "Successful reallocations since start.",
            Some(s.totals.reallocs),
        ),
    ]
}

/// RSS, the allocator's and the tool's memory, the open connections.
fn process_metrics(s: &Snapshot, open: Option<u64>) -> [Metric; 6] {
    let allocator = s.allocator.as_ref();
    [
        (
            "alloc_core_rss_bytes",
            "gauge",
            "Resident set size of the process.",
            s.rss_bytes,
        ),
        (
            "alloc_core_allocator_allocated_bytes",
            "gauge",
            "The inner allocator's allocated bytes (jemalloc \
             stats.allocated).",
            allocator.map(|a| a.allocated),
        ),
        (
            "alloc_core_allocator_resident_bytes",
            "gauge",
            "The inner allocator's resident bytes (jemalloc \
             stats.resident).",
            allocator.map(|a| a.resident),
        ),
        (
            "alloc_core_tool_live_bytes",
            "gauge",
            "Bytes in live blocks allocated by the tool itself (never the \
             program's).",
            Some(s.tool.live_bytes),
        ),
        (
            "alloc_core_tool_metadata_bytes",
            "gauge",
            "Accounting metadata of the tool (counter slots, page-table \
             leaves, stack table, sampled-block table; by part in \
             alloc_core_tool_metadata_part_bytes).",
            Some(s.tool.metadata_bytes),
        ),
        (
            "alloc_core_open_connections",
            "gauge",
            "Connections the program holds state for.",
            open,
        ),
    ]
}
