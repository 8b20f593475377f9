#!/usr/bin/env bash
# alloc-soak's throughput against the axum example service (alloc-core
# over jemalloc, the admin routes nested at /admin), HTTP and raw TCP side by
# side, one connection per cycle and N cycles per connection (keep-alive),
# the modes interleaved in every round so that a machine that speeds up or
# slows down moves them alike. Each figure is alloc-soak's own "cycles/s,
# snapshots included" (first to last snapshot: cycles, quiescence waits,
# epochs, snapshots and their symbolisation), with the load average before
# it.
#
#   alloc-report/soak/bench/throughput.sh [ROUNDS] [CYCLES] [N...]
#
# Defaults: 3 rounds, 100000 cycles, N = 10 and 100; batch 1000,
# concurrency 32. Writes alloc-report/soak/results/<UTC date>-keepalive.txt
# (and prints it).
set -euo pipefail
rounds=${1:-3}
cycles=${2:-100000}
if [ $# -gt 2 ]; then pers=("${@:3}"); else pers=(10 100); fi
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p alloc-admin --features axum --example axum_service
cargo build --release -q -p alloc-soak
service="$target/release/examples/axum_service"
soak="$target/release/alloc-soak"

port=$((20000 + RANDOM % 20000))
addr="127.0.0.1:$port"
"$service" "$addr" >/dev/null &
service_pid=$!
trap 'kill "$service_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs "http://$addr/hello/ready" >/dev/null 2>&1 && break
    sleep 0.1
done

out=$(mktemp -d)
results="$root/alloc-report/soak/results/$(date -u +%Y-%m-%d)-keepalive.txt"
common=(--server "$addr" --admin "$addr" --admin-prefix /admin --no-progress
        --cycles "$cycles" --batch 1000 --concurrency 32 --out "$out")
close='GET /hello/u{cycle} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n'
kept='GET /hello/u{cycle} HTTP/1.1\r\nHost: b\r\n\r\n'
run() { # label, alloc-soak arguments...
    local label=$1
    shift
    local load line
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    line=$("$soak" "${common[@]}" "$@" | grep -E '^[0-9]+ cycles ')
    printf '%-14s load %s: %s\n' "$label" "$load" "$line"
}
{
    echo "# alloc-soak throughput, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD): $service on $addr"
    echo "# $(nproc) cores; $cycles cycles per run (a cycle: one HTTP/1.1 request), batch 1000, concurrency 32, snapshots included"
    echo "# command: alloc-report/soak/bench/throughput.sh $rounds $cycles ${pers[*]}"
    echo "# http-1: --http 'GET /hello/u{cycle}'; raw-1: --send '$close' (the same bytes, no status check)"
    echo "# http-N: the same with --requests-per-conn N; raw-N: --send '$kept' --until 'u{cycle}\\n' --requests-per-conn N"
    echo "# each line: alloc-soak's own; 'in the batches' leaves out quiescence waits, epochs and snapshots"
    for r in $(seq "$rounds"); do
        echo "round $r"
        run "http-1" --http 'GET /hello/u{cycle}'
        run "raw-1" --send "$close"
        for per in "${pers[@]}"; do
            run "http-$per" --http 'GET /hello/u{cycle}' --requests-per-conn "$per"
            run "raw-$per" --send "$kept" --until 'u{cycle}\n' --requests-per-conn "$per"
        done
    done
    echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results"
rm -rf "$out"
