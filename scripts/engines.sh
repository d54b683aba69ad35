#!/usr/bin/env bash
# Private PostgreSQL and Redis instances on loopback, for the cluster tests and benchmarks.
#
#   scripts/engines.sh start DIR   initdb + postgres on a free port, two redis-servers (two
#                                  shards) on free ports, all owned by an unprivileged user when
#                                  run as root (PostgreSQL refuses to run as root); writes
#                                  DIR/engines.env with MONTROSE_TEST_PG, MONTROSE_TEST_REDIS and
#                                  MONTROSE_TEST_REDIS2 for `source`.
#   scripts/engines.sh stop DIR    stops exactly those processes, by the PIDs they wrote.
#
# Never touches port 5432 or 6379, nor a system instance: every port is picked free here.
set -euo pipefail

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Debian keeps initdb/pg_ctl/postgres out of PATH, under the version's own folder.
pgbin() {
  for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  echo "no initdb found (install Debian's postgresql)" >&2; exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Run a command as the owner of DIR: as root, the unprivileged user montrose-ci.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u montrose-ci -- "$@"; else "$@"; fi
}

stop() {
  local pidfile pid
  if [ -f "$dir/pg/postmaster.pid" ]; then
    pid=$(head -1 "$dir/pg/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true   # fast shutdown
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for pidfile in "$dir"/redis*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
}

start() {
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id montrose-ci >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin montrose-ci
    chown montrose-ci "$dir"
  fi
  local bin pgport r1 r2
  bin=$(pgbin)
  pgport=$(free_port); r1=$(free_port); r2=$(free_port)
  as_owner "$bin/initdb" -D "$dir/pg" -A trust -U hub --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; exit 1; }
  # fsync stays on: the store's acknowledgements mean durable, and the tests measure that.
  as_owner "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 30 start -o \
    "-c listen_addresses=127.0.0.1 -p $pgport -c unix_socket_directories=$dir -c max_connections=200" >/dev/null \
    || { cat "$dir/pg.log"; exit 1; }
  for port in "$r1" "$r2"; do
    as_owner redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --daemonize yes --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" --dir "$dir"
  done
  for port in "$r1" "$r2"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null || { echo "redis on $port did not start" >&2; cat "$dir/redis-$port.log"; exit 1; }
  done
  psql -h 127.0.0.1 -p "$pgport" -U hub -d postgres -qAtc 'select 1' >/dev/null
  cat >"$dir/engines.env" <<EOF
export MONTROSE_TEST_PG=postgres://hub@127.0.0.1:$pgport/postgres
export MONTROSE_TEST_REDIS=redis://127.0.0.1:$r1
export MONTROSE_TEST_REDIS2=redis://127.0.0.1:$r2
EOF
  echo "PostgreSQL on 127.0.0.1:$pgport, Redis on 127.0.0.1:$r1 and :$r2 ($dir/engines.env)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
