# Sourced by the scripts that check a real hub (schemathesis, testssl, the TypeScript check):
# starts the hub on free ports in a temporary folder, learns its ports from its ready lines, and
# stops it by its PID when the script exits, whatever the way out.
#   source scripts/lib/hub-process.sh
#   hub_start BIN [hub flags...]     data in $hub_work/data; sets hub_pid, hub_public, hub_bridge
# $hub_work is the script's own scratch folder too; both go away on exit.
hub_work=$(mktemp -d)
hub_pid=""
hub_public=""
hub_bridge=""
hub_cleanup() {
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  rm -rf "$hub_work"
}
trap hub_cleanup EXIT
trap 'exit 130' INT TERM

hub_start() { # BIN [flags...]: returns non-zero (after printing the hub's errors) if it did not start
  local bin=$1; shift
  "$bin" --host 127.0.0.1 --port 0 --bridge-host 127.0.0.1 --bridge-port 0 --data "$hub_work/data" \
         --no-dev --log-level error "$@" > "$hub_work/hub.out" 2> "$hub_work/hub.err" &
  hub_pid=$!
  for _ in $(seq 1 200); do
    hub_bridge=$(sed -n 's/.*bridge listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$hub_work/hub.out")
    hub_public=$(sed -n 's/.*public listening on https\{0,1\}:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$hub_work/hub.out")
    [ -n "$hub_bridge" ] && [ -n "$hub_public" ] && return 0
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "the hub did not start:" >&2; cat "$hub_work/hub.err" >&2
  return 1
}
