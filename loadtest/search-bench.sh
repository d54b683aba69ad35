#!/usr/bin/env bash
# Search benchmark (docs/protocol.md "Search"): a SQLite store of 1,000,000 messages in 10,000
# conversations (loadtest/search_store.py writes it directly, index included), a release hub on
# it pinned to CPU 0, then searches through the bridge from CPU 1 (loadtest/search_queries.py:
# admin, agents, clients; common, mid and rare words, prefixes, two words), p50/p99/max each.
# Then the cost of the index on a send: `hub-load chat` (durable chat) with the index on and
# with --search-index off, each on a fresh hub (loadtest/run.sh).
#   swift build -c release && loadtest/search-bench.sh [--messages N] [--per-kind N] [--chat-seconds S]
# Every step is bounded (timeout); the hub is stopped by its PID and the data folder removed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
MESSAGES=1000000
PER_KIND=200
CHAT_SECONDS=10
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --per-kind) PER_KIND=$2; shift 2 ;;
        --chat-seconds) CHAT_SECONDS=$2; shift 2 ;;
        *) echo "usage: loadtest/search-bench.sh [--messages N] [--per-kind N] [--chat-seconds S]" >&2; exit 2 ;;
    esac
done
DATA=$(mktemp -d /tmp/searchbench-XXXXXX)
KEY=bench-bridge-key-0123456789abcdef
SECRET=bench-jwt-secret-0123456789abcdef
HUB=""
cleanup() {
    if [ -n "$HUB" ]; then kill "$HUB" 2>/dev/null || true; wait "$HUB" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

# Starts a hub on $DATA; sets HUB and BRIDGE.
start_hub() {
    : >"$DATA/hub.out"
    taskset -c 0 "$BIN/montrose-hub" --host 127.0.0.1 --port 0 --bridge-port 0 --data "$DATA" --loops 1 --no-dev \
        --jwt-secret "$SECRET" --bridge-key "$KEY" >"$DATA/hub.out" 2>"$DATA/hub.err" &
    HUB=$!
    BRIDGE=""
    for _ in $(seq 1 600); do
        BRIDGE=$(sed -n 's#.*bridge listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$DATA/hub.out")
        [ -n "$BRIDGE" ] && return 0
        kill -0 "$HUB" 2>/dev/null || { echo "hub exited: $(cat "$DATA/hub.err")" >&2; exit 1; }
        sleep 0.1
    done
    echo "hub did not start within 60 s" >&2
    exit 1
}
stop_hub() { kill "$HUB"; wait "$HUB" 2>/dev/null || true; HUB=""; }

start_hub # the schema, made by the hub itself
stop_hub
echo "== building the store: $MESSAGES messages" >&2
timeout 170 python3 loadtest/search_store.py "$DATA/hub.sqlite" --messages "$MESSAGES"
echo "store: $(du -h "$DATA/hub.sqlite" | cut -f1)" >&2
T0=$(date +%s.%N)
start_hub
echo "hub ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" >&2
echo "== searches: $PER_KIND per kind, one at a time, through GET /v1/search" >&2
timeout 170 taskset -c 1 python3 loadtest/search_queries.py --bridge "$BRIDGE" --key "$KEY" \
    --words "$DATA/hub.sqlite.words" --per-kind "$PER_KIND"
echo "hub: RSS $(awk '/VmRSS/ { print $2, $3 }' "/proc/$HUB/status")" >&2
stop_hub

for index in on off; do
    echo "== hub-load chat, --search-index $index" >&2
    HUB_FLAGS="--search-index $index" timeout 170 loadtest/run.sh chat --conversations 1000 \
        --duration "$CHAT_SECONDS" --window 4 2>/dev/null | grep '^{' | python3 -c 'import json, sys
d = json.load(sys.stdin); a = d["ack_us"]
print("acks/s", d["acks_per_s"], " ack p50 ms", a["p50"] / 1000, " p99 ms", a["p99"] / 1000, " sent", d["sent"], " passed", d["passed"])' || true
done
