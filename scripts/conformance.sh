#!/usr/bin/env bash
# Autobahn|Testsuite against the hub's conformance echo route.
#   scripts/conformance.sh            all cases over ws:// (1.* … 13.*) and 1.* … 10.* over wss://,
#                                     in two lanes side by side (below)
#   scripts/conformance.sh ws '1.*'   only the given cases over ws:// (or wss), one lane
# Every run starts its own release build of montrose-hub on free ports, runs scripts/autobahn.sh
# (or the runner named by AUTOBAHN_RUNNER: a script taking the URL and cases, ending with
# "N passed, M failed") and stops that hub (by PID). Reports: autobahn-reports/<run>/. Exit 0
# only if no case FAILED or was UNIMPLEMENTED.
#
# Why two lanes: the fuzzing client waits for each echo, so a run keeps one core busy between
# the Python client and the hub, and nine tenths of it is the compression cases 12.* and 13.*
# (the client's own deflate and masking in Python). Lane one runs ws 1.* … 12.*, lane two
# ws 13.* then wss 1.* … 10.*: about half the case time each, on a core each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runner=${AUTOBAHN_RUNNER:-$root/scripts/autobahn.sh}
[ -x "$runner" ] || [ -f "$runner" ] || { echo "conformance: $runner not found"; exit 1; }
bin=$root/.build/release/montrose-hub
[ -x "$bin" ] || (cd "$root" && swift build -c release --product montrose-hub)

work=$(mktemp -d)
lanes=()
# Interrupted, every hub a run started is stopped too (its PID is in its run's folder), not
# only the lanes.
cleanup() {
  for p in "${lanes[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*/hub.pid; do [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; }; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cases run over wss:// (the TLS path: framing, fragmentation, UTF-8, limits).
tls_cases=('1.*' '2.*' '3.*' '4.*' '5.*' '6.*' '7.*' '8.*' '9.*' '10.*')

# One run: its own hub, then the runner. $1: the report folder's name, $2: ws or wss, then cases.
# Prints the run's heading and the runner's output; its status is the runner's.
run() {
  local name=$1 scheme=$2 dir=$work/$1 hub_pid port="" status=0
  shift 2
  mkdir -p "$dir"
  local tls=()
  if [ "$scheme" = wss ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
    tls=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
  fi
  "$bin" --host 127.0.0.1 --port 0 --bridge-port 0 --data "$dir/data" --loops 1 \
         --echo-path /echo --max-message 16777216 "${tls[@]}" > "$dir/hub.out" 2> "$dir/hub.err" &
  hub_pid=$!
  echo "$hub_pid" > "$dir/hub.pid"
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*public listening on [a-z]*:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$dir/hub.out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "conformance: the hub for $name did not start"; cat "$dir/hub.err"
    kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true
    echo "0 passed, 1 failed"; return 1
  fi
  echo "== Autobahn over $scheme://127.0.0.1:$port/echo (cases $*)"
  AB_OUT=$root/autobahn-reports/$name bash "$runner" "$scheme://127.0.0.1:$port/echo" "$@" || status=1
  kill "$hub_pid"; wait "$hub_pid" || true
  return $status
}

mode=${1:-all}; shift || true
case "$mode" in
  ws|wss)
    cases=("$@")
    if [ ${#cases[@]} -eq 0 ]; then
      if [ "$mode" = ws ]; then cases=('*'); else cases=("${tls_cases[@]}"); fi
    fi
    run "$mode" "$mode" "${cases[@]}"
    ;;
  all)
    rm -rf "$root/autobahn-reports"
    # Each lane's output goes to its own file and is printed whole at the end, lane by lane.
    ( run ws ws "${tls_cases[@]}" '12.*' ) > "$work/lane1.log" 2>&1 &
    lanes+=($!)
    ( s=0
      run ws-13 ws '13.*' || s=1
      run wss wss "${tls_cases[@]}" || s=1
      exit $s ) > "$work/lane2.log" 2>&1 &
    lanes+=($!)
    status=0
    for p in "${lanes[@]}"; do wait "$p" || status=1; done
    lanes=()
    cat "$work/lane1.log" "$work/lane2.log"
    exit $status
    ;;
  *) echo "usage: scripts/conformance.sh [all | ws [CASE ...] | wss [CASE ...]]"; exit 2 ;;
esac
