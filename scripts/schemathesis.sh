#!/usr/bin/env bash
# Schemathesis against the bridge API, checked with docs/openapi.yaml.
#   scripts/schemathesis.sh [path/to/montrose-hub]      (default .build/release/montrose-hub)
# Builds nothing: give it a built binary. Starts the hub on free ports (--port 0, --bridge-port 0;
# the port is read from the hub's "bridge listening on" line) with a temporary data folder,
# seeds a client and an agent so the document's examples reach the success paths, runs
# schemathesis (checks: not_a_server_error, response_schema_conformance) and stops the hub it
# started, by PID. Exit 0 only if schemathesis found nothing.
# Knobs: ST_MAX_EXAMPLES (default 100), ST_WORKERS (default 2), ST_SEED, ST_EXTRA (more flags).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/.build/release/montrose-hub}
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "schemathesis: no executable at $bin (build it: swift build -c release --product montrose-hub)"; exit 2; }

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "schemathesis: installing (pip install schemathesis)"
  python3 -m pip install --quiet "schemathesis==4.32.5" || pip install --quiet "schemathesis==4.32.5"
  # A --user install puts the command in ~/.local/bin.
  command -v schemathesis >/dev/null 2>&1 || PATH=$HOME/.local/bin:$PATH
  command -v schemathesis >/dev/null 2>&1 || { echo "schemathesis: installed, but not on PATH"; exit 2; }
fi

source "$root/scripts/lib/hub-process.sh"
work=$hub_work

key="schemathesis-bridge-key-$RANDOM$RANDOM"
hub_start "$bin" --jwt-secret "schemathesis-jwt-secret-0123456789" --bridge-key "$key" --loops 2 \
  || { echo "schemathesis: hub did not start"; exit 1; }
port=$hub_bridge
base="http://127.0.0.1:$port"
for _ in $(seq 1 50); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { echo "schemathesis: $base/healthz does not answer"; exit 1; }

# The document's examples name these (client-1, agent-1; notification 1).
seed() { # method path body
  curl -fsS -o /dev/null -X "$1" -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
       --data "$3" "$base$2" || { echo "schemathesis: seeding $1 $2 failed"; exit 1; }
}
seed PUT /v1/users/client-1 '{"role":"client","name":"Ada Client","email":"ada@example.com"}'
seed PUT /v1/users/agent-1 '{"role":"website_agent","name":"Wes Agent"}'
seed PUT /v1/assignments/website/client-1 '{"agent_id":"agent-1"}'
seed POST /v1/notifications '{"to":{"users":["client-1"]},"service":"wallet","category":"payments","title":"Paid","email":"fallback"}'
seed POST /v1/conversations/website/client-1/messages '{"text":"Welcome","client_msg_id":"seed-1"}'

echo "schemathesis: hub pid $hub_pid, bridge on $base"
# One worker: with two, schemathesis's threads parse Python sources at once, and CPython 3.11's
# ast module can then fail with "AST constructor recursion depth mismatch" (a tool error, not a
# finding, seen about one run in four once the document had 18 operations).
args=(run "$root/docs/openapi.yaml" --url "$base" -H "Authorization: Bearer $key"
      --checks not_a_server_error,response_schema_conformance
      --max-examples "${ST_MAX_EXAMPLES:-100}" --workers "${ST_WORKERS:-1}"
      --request-timeout 10 --generation-database none --no-color)
[ -n "${ST_SEED:-}" ] && args+=(--seed "$ST_SEED")
# shellcheck disable=SC2206
[ -n "${ST_EXTRA:-}" ] && args+=(${ST_EXTRA})
set +e
# From the temporary folder: schemathesis leaves a .schemathesis/ cache where it runs.
(cd "$work" && schemathesis "${args[@]}") 2>&1 | tee "$work/st.out"
status=${PIPESTATUS[0]}
set -e

if ! kill -0 "$hub_pid" 2>/dev/null; then
  echo "schemathesis: the hub died during the run"; cat "$work/hub.err"; status=1
fi
ops=$(sed -n 's/^ *Tested: *\([0-9]*\).*/\1/p' "$work/st.out" | tail -1)
cases=$(sed -n '/^Test cases:/{n;s/^ *//;p}' "$work/st.out" | tail -1)
echo "schemathesis summary: ${ops:-?} operations tested; test cases: ${cases:-?}; exit $status"
exit "$status"
