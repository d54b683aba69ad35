#!/usr/bin/env bash
# Autobahn|Testsuite against the hub's conformance echo route.
#   scripts/conformance.sh            all cases over ws:// (1.* … 13.*), then 1.* … 10.* over wss://
#   scripts/conformance.sh ws '1.*'   only the given cases over ws:// (or wss)
# Starts a release build of montrose-hub on free ports, runs scripts/autobahn.sh (or the runner
# named by AUTOBAHN_RUNNER: a script taking the URL and cases, ending with "N passed, M failed"),
# stops the hub it started (by PID). Reports: autobahn-reports/{ws,wss}/. Exit 0 only if no
# case FAILED or was UNIMPLEMENTED.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runner=${AUTOBAHN_RUNNER:-$root/scripts/autobahn.sh}
[ -x "$runner" ] || [ -f "$runner" ] || { echo "conformance: $runner not found"; exit 1; }
bin=$root/.build/release/montrose-hub
[ -x "$bin" ] || (cd "$root" && swift build -c release --product montrose-hub)

work=$(mktemp -d)
hub_pid=""
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_hub() { # $@: extra flags; sets hub_pid and port
  "$bin" --host 127.0.0.1 --port 0 --bridge-port 0 --data "$work/data" --loops 1 \
         --echo-path /echo --max-message 16777216 "$@" > "$work/hub.out" 2> "$work/hub.err" &
  hub_pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*public listening on [a-z]*:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/hub.out")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "conformance: hub did not start"; cat "$work/hub.err"; exit 1
}
stop_hub() { kill "$hub_pid"; wait "$hub_pid" || true; hub_pid=""; }

mode=${1:-all}; shift || true
status=0
if [ "$mode" = all ] || [ "$mode" = ws ]; then
  start_hub
  echo "== Autobahn over ws://127.0.0.1:$port/echo"
  AB_OUT=$root/autobahn-reports/ws bash "$runner" "ws://127.0.0.1:$port/echo" "$@" || status=1
  stop_hub
fi
if [ "$mode" = all ] || [ "$mode" = wss ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
          -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  start_hub --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
  cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=('1.*' '2.*' '3.*' '4.*' '5.*' '6.*' '7.*' '8.*' '9.*' '10.*')
  echo "== Autobahn over wss://127.0.0.1:$port/echo (cases ${cases[*]})"
  AB_OUT=$root/autobahn-reports/wss bash "$runner" "wss://127.0.0.1:$port/echo" "${cases[@]}" || status=1
  stop_hub
fi
exit $status
