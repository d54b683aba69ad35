#!/usr/bin/env bash
# One hub-load scenario against one node on SQLite, or 1–3 nodes on PostgreSQL + Redis, so the
# cost of the cluster engines per message can be read side by side.
#   loadtest/cluster.sh sqlite chat --conversations 100 --duration 10 --window 1
#   loadtest/cluster.sh 2 chat --conversations 100 --duration 10 --window 1
#   loadtest/cluster.sh 3 fanout --subscribers 100 --rate 1000 --duration 5
# With N nodes every client connection goes to node i mod N (hub-load's repeated --url): a chat
# conversation's two connections sit on two nodes, so its messages cross Redis.
# PostgreSQL and Redis come from MONTROSE_TEST_PG / MONTROSE_TEST_REDIS (scripts/engines.sh
# start DIR; source DIR/engines.env); each run uses a fresh schema and cluster name.
# Placement on this 2-core machine: every hub node, PostgreSQL and Redis share CPU 0 (the
# engines' processes are pinned there by this script, so the server side is one core whatever
# the node count), the generator runs on CPU 1. Numbers are per-message costs, not scaling.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
NODES=${1:?usage: loadtest/cluster.sh sqlite|1|2|3 chat|fanout [hub-load options...]}
SCENARIO=${2:?usage: loadtest/cluster.sh sqlite|1|2|3 chat|fanout [hub-load options...]}
shift 2
SECRET=cluster-bench-secret-0123456789
KEY=cluster-bench-bridge-key-0123456789
WORK=$(mktemp -d /tmp/cluster-bench-XXXXXX)
PIDS=()
SCHEMA=""

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$SCHEMA" ]; then psql "$MONTROSE_TEST_PG" -qAtc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

STORE=()
BROKERS=()
COUNT=1
if [ "$NODES" != sqlite ]; then
    : "${MONTROSE_TEST_PG:?set MONTROSE_TEST_PG and MONTROSE_TEST_REDIS (scripts/engines.sh)}"
    : "${MONTROSE_TEST_REDIS:?set MONTROSE_TEST_REDIS}"
    COUNT=$NODES
    SCHEMA="bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql "$MONTROSE_TEST_PG" -qAtc "CREATE SCHEMA $SCHEMA" >/dev/null
    sep='?'; case "$MONTROSE_TEST_PG" in *\?*) sep='&';; esac
    STORE=(--store "${MONTROSE_TEST_PG}${sep}options=-csearch_path%3D${SCHEMA}")
    BROKERS=(--broker "$MONTROSE_TEST_REDIS" --cluster-name "$SCHEMA")
    # The engines on the servers' core (their future children inherit it).
    pgpid=$(psql "$MONTROSE_TEST_PG" -qAtc "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'" 2>/dev/null | head -1)
    [ -n "$pgpid" ] && ppid=$(ps -o ppid= -p "$pgpid" | tr -d ' ') && taskset -a -cp 0 "$ppid" >/dev/null 2>&1 || true
    rport=${MONTROSE_TEST_REDIS##*:}
    rpid=$(redis-cli -p "$rport" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')
    [ -n "$rpid" ] && taskset -a -cp 0 "$rpid" >/dev/null 2>&1 || true
fi

URLS=()
for i in $(seq 1 "$COUNT"); do
    out="$WORK/node$i.out"
    args=(--host 127.0.0.1 --port 0 --bridge-port 0 --data "$WORK/data$i" --no-dev --jwt-secret "$SECRET"
          --bridge-key "$KEY" --loops 1 --ops-rate 0 --max-connections-per-user 1000000 --max-unauthenticated 20000)
    [ "$NODES" != sqlite ] && args+=("${STORE[@]}" "${BROKERS[@]}" --node-id "node$i")
    taskset -c 0 "$BIN/montrose-hub" "${args[@]}" >"$out" 2>"$WORK/node$i.err" &
    PIDS+=($!)
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's#.*public listening on http://127\.0\.0\.1:\([0-9]*\) .*#\1#p' "$out")
        [ -n "$port" ] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "node $i exited: $(cat "$WORK/node$i.err")" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { echo "node $i did not start within 10 s" >&2; exit 1; }
    URLS+=(--url "ws://127.0.0.1:$port/ws")
done

cpu() { local t=0; for p in "${PIDS[@]}"; do t=$(awk -v t="$t" '{ print t + ($14 + $15) / 100 }' "/proc/$p/stat"); done; echo "$t"; }
engines_cpu() {
    [ "$NODES" = sqlite ] && { echo 0; return; }
    ps -eo user:20,times | awk '$1 == "montrose-ci" || $1 == "postgres" || $1 == "redis" { t += $2 } END { print t + 0 }'
}
BEFORE=$(cpu); EBEFORE=$(engines_cpu)
set +e
timeout 300 taskset -c 1 "$BIN/hub-load" "$SCENARIO" "${URLS[@]}" --jwt-secret "$SECRET" "$@"
STATUS=$?
set -e
echo "nodes: $NODES; hub cpu $(awk -v a="$BEFORE" -v b="$(cpu)" 'BEGIN { printf "%.2f", b - a }') s, engines cpu $(awk -v a="$EBEFORE" -v b="$(engines_cpu)" 'BEGIN { printf "%.0f", b - a }') s during the run" >&2
exit $STATUS
