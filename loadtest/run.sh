#!/usr/bin/env bash
# Runs a hub-load scenario against a fresh hub: hub pinned to CPU 0 with one event loop,
# generator pinned to CPU 1, a throwaway data folder, everything bounded in time.
#   loadtest/run.sh chat [options...]        e.g. chat --conversations 1000 --duration 10
#   loadtest/run.sh notify [options...]      e.g. notify --users 100000 --online 1000
#   loadtest/run.sh connections [options...] e.g. connections --connections 10000 --hold 5
#   loadtest/run.sh fanout [options...]      e.g. fanout --subscribers 1000 --rate 0 --window 4
#   loadtest/run.sh echo [options...]        e.g. echo --connections 100 --window 1 --size 64
#   loadtest/run.sh broadcast [options...]   e.g. broadcast --online 19000 --rounds 3
# BIN selects the folder holding the release binaries (default .build/release; build them
# first with `swift build -c release`). HUB_CPU / LOAD_CPU override the pinning. HUB_FLAGS
# adds hub flags (e.g. HUB_FLAGS="--search-index off").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
HUB_CPU=${HUB_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DATA=$(mktemp -d /tmp/loadhub-XXXXXX)
OUT="$DATA/hub.out"

# The same hub for every scenario: no op rate limit; the conformance echo route for `echo`;
# a per-user connection cap above anything a run opens (`fanout` connects every subscriber as
# one user; 0 is not accepted, 1000000 is the flag's maximum); room for every connection to
# wait for auth at once (default 2000; URL tokens authenticate at the upgrade anyway).
# --max-connections stays at its default: the open-file limit less 64 (19,936 here).
taskset -c "$HUB_CPU" "$BIN/montrose-hub" --host 127.0.0.1 --port 0 --bridge-port 0 \
    --data "$DATA" --loops 1 --ops-rate 0 --echo-path /echo \
    --max-connections-per-user 1000000 --max-unauthenticated 20000 ${HUB_FLAGS:-} >"$OUT" 2>"$DATA/hub.err" &
HUB=$!
cleanup() {
    kill "$HUB" 2>/dev/null || true
    wait "$HUB" 2>/dev/null || true
    grep -h 'event=fanout_done' "$DATA/hub.err" >&2 || true
    rm -rf "$DATA"
}
trap cleanup EXIT

SCENARIO=${1:?usage: loadtest/run.sh chat|notify|connections|fanout|echo|broadcast [options...]}
shift
PORT=""
BRIDGE=""
for _ in $(seq 1 100); do
    PORT=$(sed -n 's#.*public listening on http://127\.0\.0\.1:\([0-9]*\) .*#\1#p' "$OUT")
    BRIDGE=$(sed -n 's#.*bridge listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$OUT")
    [ -n "$PORT" ] && [ -n "$BRIDGE" ] && break
    kill -0 "$HUB" 2>/dev/null || { echo "hub exited: $(cat "$DATA/hub.err")" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "hub did not start within 10 s" >&2; exit 1; }

# Hub CPU seconds (user+sys) used during the run, from /proc.
hub_cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$HUB/stat"; }
BEFORE=$(hub_cpu)
set +e
case "$SCENARIO" in
    notify|broadcast) EXTRA=(--bridge "http://127.0.0.1:$BRIDGE") ;;
    connections) EXTRA=(--hub-pid "$HUB") ;;
    *) EXTRA=() ;;
esac
timeout 300 taskset -c "$LOAD_CPU" "$BIN/hub-load" "$SCENARIO" --url "ws://127.0.0.1:$PORT/ws" --data "$DATA" "${EXTRA[@]}" "$@"
STATUS=$?
set -e
echo "hub: $(awk -v a="$BEFORE" -v b="$(hub_cpu)" 'BEGIN { printf "%.2f", b - a }') s cpu during the run, pid $HUB, RSS $(awk '/VmRSS/ { print $2, $3 }' "/proc/$HUB/status")" >&2
exit $STATUS
