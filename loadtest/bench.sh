#!/usr/bin/env bash
# The performance table: Montrose Hub against uWebSockets and picows, all three measured in the
# same run on the same generator; each goal is a ratio to uWebSockets in that run (this machine's
# speed moves from day to day). One 2-core machine: the server pinned to CPU 0 (the hub with
# --loops 1), the load generator pinned to CPU 1 (row j excepted: the hub as deployed), a fresh
# server (fresh data folder) for every row and run, stopped by its PID afterwards.
#
#   loadtest/bench.sh [--runs N] [--only a,b,...] [--no-uws] [--no-picows] [--duration S] [--write-readme] [--profile]
#
# Rows (the neutral generator wsload for a–e, the hub's own hub-load for f–j, hub only):
#   a  echo, 100 connections, window 1, 64 B               wsload echo
#   b  echo, 100 connections, window 16, 64 B              wsload echo
#   c  fan-out, 1,000 subscribers, 1 publisher, max rate   wsload fanout --rate 0 --window 64
#   d  fan-out, 10,000 subscribers, 100 publishes/s        wsload fanout --rate 100
#   e  19,000 idle subscribed connections                  wsload connect
#   f  broadcast to 19,000 online (hub only)               hub-load broadcast
#   g  durable chat, 1,000 conversations (hub only)        hub-load chat
#   h  fan-out, 1,000 subscribers (hub only, optional)     hub-load fanout
#   i  durable chat as g, the hub with --durability normal  hub-load chat (the same ack without fsync)
#   j  broadcast as f, the hub as deployed: one loop per core, neither process pinned
# Against the hub, fan-out goes through the real path: `send` ops (stored durably, then pushed)
# on one conversation, authenticated with a `?token=` JWT; echo uses the hub's /echo route.
#
# Options: --runs N (1-10, default 1; 3 reports the median of three),
# --only ROWS (comma-separated letters; default a,b,c,d,e,f,g,h,i,j), --no-uws, --no-picows, --duration S (1-300)
# (seconds of load per row and the hold of row e; default 10), --write-readme (replace the
# section between <!-- bench:start --> and <!-- bench:end --> in README.md), --results FILE
# (default loadtest/results/latest.jsonl; each run's generator output and server log go to
# loadtest/results/latest-logs/, the table also to loadtest/results/latest.md), --profile
# (records the hub and uWebSockets with `perf record -g` while the generator runs, and writes
# where the time went, per thread, to loadtest/results/latest-profiles.md; perf takes some of the
# generator's CPU, so keep profiled runs out of the table).
# Environment: BIN (default .build/release: montrose-hub and hub-load), WSLOAD (the wsload
# binary, required: a neutral C load generator kept outside this repository), UWS_SRC (the
# folder of the uWebSockets benchmark peer, kept outside this repository, whose build.sh this
# script runs into a scratch folder; or UWS, an already built uws_peer binary; required unless
# --no-uws), PYTHON (default python3; needs picows for the peer:
# pip install -r loadtest/peers/requirements.txt), HUB_CPU / LOAD_CPU (default 0 / 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
WSLOAD=${WSLOAD:?set WSLOAD to the wsload binary (built with make in its own folder)}
PYTHON=${PYTHON:-python3}
HUB_CPU=${HUB_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
RUNS=1
ONLY=a,b,c,d,e,f,g,h,i,j
PICOWS=1
USE_UWS=1
WRITE_README=0
PROFILE=0
DURATION=10
RESULTS=loadtest/results/latest.jsonl
FANOUT_WINDOW=64          # row c: publishes outstanding (wsload's own default for fanout)
IDLE_CONNS=19000          # rows e, f and j
HUB_CAPS=(--max-connections-per-user 20000 --max-unauthenticated 20000)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --no-picows) PICOWS=0; shift ;;
        --no-uws) USE_UWS=0; shift ;;
        --duration|-d) DURATION=${2:?}; shift 2 ;;
        --write-readme) WRITE_README=1; shift ;;
        --profile) PROFILE=1; shift ;;
        --results) RESULTS=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "bench.sh: unknown option $1" >&2; usage ;;
    esac
done
# Bounded: every row starts fresh servers, so runs × rows × duration is the whole wall time.
[[ $RUNS =~ ^([1-9]|10)$ ]] || { echo "bench.sh: --runs expects 1-10" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v d="$DURATION" 'BEGIN { exit !(d >= 1 && d <= 300) }' \
    || { echo "bench.sh: --duration expects seconds, 1-300" >&2; exit 2; }
[[ $ONLY =~ ^[a-j](,[a-j])*$ ]] || { echo "bench.sh: --only expects letters a-j, comma-separated" >&2; exit 2; }
for f in "$BIN/montrose-hub" "$BIN/hub-load" "$WSLOAD"; do
    [ -x "$f" ] || { echo "bench.sh: $f not found (swift build -c release; build wsload with make and set WSLOAD)" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "bench.sh: taskset not found" >&2; exit 1; }
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null; then
    echo "bench.sh: --profile needs perf (apt install linux-perf)" >&2
    exit 1
fi
if [ "$PICOWS" = 1 ] && ! "$PYTHON" -c 'import picows' 2>/dev/null; then
    echo "bench.sh: $PYTHON cannot import picows (pip install -r loadtest/peers/requirements.txt, or --no-picows)" >&2
    exit 1
fi

UWS=${UWS:-}
UWS_SCRATCH=""
if [ "$USE_UWS" = 1 ] && [ -z "$UWS" ]; then
    [ -n "${UWS_SRC:-}" ] && [ -f "$UWS_SRC/build.sh" ] \
        || { echo "bench.sh: set UWS_SRC to the uWebSockets peer's folder (its build.sh), or UWS to a built uws_peer, or pass --no-uws" >&2; exit 1; }
    UWS_SCRATCH=$(mktemp -d /tmp/bench-uws-build-XXXXXX)
    echo "bench.sh: building the uWebSockets peer into $UWS_SCRATCH (about a minute)" >&2
    UWS=$(bash "$UWS_SRC/build.sh" "$UWS_SCRATCH" | tail -1)
fi
if [ "$USE_UWS" = 1 ]; then
    [ -x "$UWS" ] || { echo "bench.sh: no uws_peer binary at $UWS" >&2; exit 1; }
fi

mkdir -p "$(dirname "$RESULTS")"
LOGS="${RESULTS%.jsonl}-logs"
mkdir -p "$LOGS"
: >"$RESULTS"
PROFILES="${RESULTS%.jsonl}-profiles.md"
[ "$PROFILE" = 1 ] && echo "# Where the time went (bench.sh --profile, $(date -u '+%Y-%m-%d %H:%M UTC'))" >"$PROFILES"

# ---- processes: every one started here is stopped by its PID ----
SRV_PID="" GEN_PID="" PERF_PID="" DATA=""
stop_pid() { # PID SECONDS: TERM, wait, then KILL
    local pid=$1 n
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((n = 0; n < $2 * 10; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_server() {
    stop_pid "$SRV_PID" 20
    SRV_PID=""
    [ -n "$DATA" ] && rm -rf "$DATA"
    DATA=""
}
stop_perf() { # perf writes its file on SIGINT
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}
cleanup() {
    stop_perf
    stop_pid "$GEN_PID" 5
    GEN_PID=""
    stop_server
    [ -n "$UWS_SCRATCH" ] && rm -rf "$UWS_SCRATCH"
    UWS_SCRATCH=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---- servers ----
HUB_CMD="taskset -c $HUB_CPU $BIN/montrose-hub --host 127.0.0.1 --port 0 --bridge-port 0 --data \"\$DATA\" --loops 1 --ops-rate 0 --echo-path /echo ${HUB_CAPS[*]}"
PICOWS_CMD="taskset -c $HUB_CPU $PYTHON loadtest/peers/picows_server.py 0 127.0.0.1"
UWS_CMD="taskset -c $HUB_CPU \$UWS \$PORT"
TOKEN_CMD="TOKEN=\$($PYTHON loadtest/peers/hub_token.py --data \"\$DATA\")"
PORT="" BRIDGE="" TOKEN=""
start_hub() { # [extra flags]; pinned and looped as run_one sets PIN_HUB and HUB_LOOPS for the row
    DATA=$(mktemp -d /tmp/bench-hub-XXXXXX)
    "${PIN_HUB[@]}" "$BIN/montrose-hub" --host 127.0.0.1 --port 0 --bridge-port 0 --data "$DATA" \
        "${HUB_LOOPS[@]}" --ops-rate 0 --echo-path /echo "${HUB_CAPS[@]}" "$@" >"$DATA/server.out" 2>"$DATA/server.err" &
    SRV_PID=$!
    PORT="" BRIDGE=""
    for _ in $(seq 1 150); do
        PORT=$(sed -n 's#.*public listening on http://127\.0\.0\.1:\([0-9]*\) .*#\1#p' "$DATA/server.out")
        BRIDGE=$(sed -n 's#.*bridge listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$DATA/server.out")
        [ -n "$PORT" ] && [ -n "$BRIDGE" ] && grep -q '^jwt_secret=' "$DATA/dev-secrets" 2>/dev/null && break
        PORT=""
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "bench.sh: hub did not start: $(tail -3 "$DATA/server.err" 2>/dev/null)" >&2; return 1; }
    TOKEN=$("$PYTHON" loadtest/peers/hub_token.py --data "$DATA" --sub f0)
}
start_picows() {
    DATA=$(mktemp -d /tmp/bench-picows-XXXXXX)
    taskset -c "$HUB_CPU" "$PYTHON" loadtest/peers/picows_server.py 0 127.0.0.1 >"$DATA/server.out" 2>"$DATA/server.err" &
    SRV_PID=$!
    PORT="" BRIDGE="" TOKEN=""
    for _ in $(seq 1 150); do
        PORT=$(sed -n 's#^picows_server: listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$DATA/server.out")
        [ -n "$PORT" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "bench.sh: picows did not start: $(tail -3 "$DATA/server.err" 2>/dev/null)" >&2; return 1; }
}

start_uws() {
    DATA=$(mktemp -d /tmp/bench-uws-XXXXXX)
    # The peer takes its port on the command line: a free one, asked of the kernel.
    PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    BRIDGE="" TOKEN=""
    taskset -c "$HUB_CPU" "$UWS" "$PORT" >"$DATA/server.out" 2>"$DATA/server.err" &
    SRV_PID=$!
    local up=""
    for _ in $(seq 1 150); do
        if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$PORT" 2>/dev/null; then
            up=1; break
        fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$up" ] || { echo "bench.sh: uWebSockets did not start: $(tail -3 "$DATA/server.err" 2>/dev/null)" >&2; return 1; }
}

# ---- rows: generator arguments with placeholders @PORT@ @TOKEN@ @PID@ @DATA@ @BRIDGE@ ----
SUB_HUB='{"id":1,"op":"subscribe","channel":"conv:website:f0"}'
# client_msg_id carries {seq}: wsload finds it after the 16 characters `client_msg_id":"` in the
# hub's message push; the text starts with 12 literal characters so the key before {ts}
# (`t":"bench-ts-ns=`) lies inside the push's "text" field.
PUB_HUB='{"id":1,"op":"send","channel":"conv:website:f0","client_msg_id":"{seq}","text":"bench-ts-ns={ts} {pad}"}'
SUB_PEER='{"op":"subscribe","topic":"bench"}'
GEN=() TIMEOUT=0
row_args() { # ROW SERVER -> GEN, TIMEOUT
    local row=$1 srv=$2 d=$DURATION
    local w=(@WSLOAD@) common=(--port @PORT@ --server-pid @PID@ --setup-timeout 120 --label "$row-$srv")
    local hubws=(--url ws://127.0.0.1:@PORT@/ws --data @DATA@)
    local path sub ack pub=()
    if [ "$srv" = hub ]; then path=(--path '/ws?token=@TOKEN@'); sub=$SUB_HUB; ack='"last_seq"'; pub=(--publish "$PUB_HUB")
    else path=(--path /); sub=$SUB_PEER; ack='"ok":true'; fi
    local echopath=(--path /); [ "$srv" = hub ] && echopath=(--path /echo)
    TIMEOUT=$(awk -v d="$d" 'BEGIN { printf "%d", d + 240 }')
    case "$row" in
        a) GEN=("${w[@]}" echo "${common[@]}" "${echopath[@]}" -n 100 --window 1 --size 64 -d "$d") ;;
        b) GEN=("${w[@]}" echo "${common[@]}" "${echopath[@]}" -n 100 --window 16 --size 64 -d "$d") ;;
        c) GEN=("${w[@]}" fanout "${common[@]}" "${path[@]}" -n 1000 --subscribe "$sub" --ack "$ack" --pubs 1 --rate 0
                --window "$FANOUT_WINDOW" --size 100 -d "$d" --drain 5 "${pub[@]}") ;;
        d) GEN=("${w[@]}" fanout "${common[@]}" "${path[@]}" -n 10000 --subscribe "$sub" --ack "$ack" --pubs 1 --rate 100
                --size 100 -d "$d" --drain 5 "${pub[@]}") ;;
        # 16 source addresses (127.0.0.2-17): the earlier rows leave tens of thousands of loopback
        # sockets in TIME_WAIT, and searching one address's ephemeral ports made connect() cost
        # the generator ~200 µs each (2-4k connects/s for either server).
        e) GEN=("${w[@]}" connect "${common[@]}" "${path[@]}" -n "$IDLE_CONNS" --hello "$sub" --ack "$ack" -d "$d"
                --src-ips 16 --src-base 2) ;;
        f|j) GEN=("$BIN/hub-load" broadcast "${hubws[@]}" --bridge http://127.0.0.1:@BRIDGE@ --online "$IDLE_CONNS" --rounds 3)
           TIMEOUT=600 ;;
        g|i) GEN=("$BIN/hub-load" chat "${hubws[@]}" --conversations 1000 --duration "$d" --window 4) ;;
        h) GEN=("$BIN/hub-load" fanout "${hubws[@]}" --subscribers 1000 --rate 0 --window 16 --duration "$d") ;;
    esac
}
expand() { # placeholders -> values
    local a=$1
    a=${a//@PORT@/$PORT}; a=${a//@TOKEN@/$TOKEN}; a=${a//@PID@/$SRV_PID}; a=${a//@DATA@/$DATA}; a=${a//@BRIDGE@/$BRIDGE}
    a=${a//@WSLOAD@/$WSLOAD}
    printf '%s' "$a"
}
display() { # placeholders -> shell variables, quoted so the line can be pasted
    local out="" a
    for a in "$@"; do
        # wsload lives outside the repository: the command names it as $WSLOAD.
        a=${a//@PORT@/\$PORT}; a=${a//@TOKEN@/\$TOKEN}; a=${a//@PID@/\$PID}; a=${a//@DATA@/\$DATA}; a=${a//@BRIDGE@/\$BRIDGE}
        a=${a//@WSLOAD@/\$WSLOAD}
        if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="$a "
        elif [[ $a == *'$'* && $a != *'"'* ]]; then out+="\"$a\" "
        else out+="'${a//\'/\'\\\'\'}' "; fi
    done
    printf '%s' "${out% }"
}
srv_cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$SRV_PID/stat" 2>/dev/null || echo -1; }
srv_rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo -1; }

run_one() { # ROW SERVER RUN
    local row=$1 srv=$2 run=$3 log="$LOGS/$1-$2-$3" rc=0 i
    local extra=()
    [ "$row" = i ] && extra=(--durability normal)
    # Row j runs the hub as it is deployed (its default, one loop per core) and leaves both
    # processes to the scheduler; every other row pins each to its own core.
    if [ "$row" = j ]; then PIN_HUB=() PIN_LOAD=() HUB_LOOPS=()
    else PIN_HUB=(taskset -c "$HUB_CPU") PIN_LOAD=(taskset -c "$LOAD_CPU") HUB_LOOPS=(--loops 1); fi
    case "$srv" in hub) start_hub "${extra[@]}" ;; uws) start_uws ;; *) start_picows ;; esac || {
        "$PYTHON" loadtest/peers/bench_report.py record --row "$row" --server "$srv" --run "$run" \
            --command "" --stdout /dev/null --stderr /dev/null --exit 99 --note "server did not start" >>"$RESULTS"
        stop_server; return 0; }
    row_args "$row" "$srv"
    local args=()
    for i in "${GEN[@]}"; do args+=("$(expand "$i")"); done
    local shown; shown="$(display "${PIN_LOAD[@]}" "${GEN[@]}")"
    local c0 t0 c1 t1 rss
    if [ "$PROFILE" = 1 ] && [ "$srv" != picows ]; then
        taskset -c "$LOAD_CPU" perf record -F 999 -g -p "$SRV_PID" -o "$log.perf.data" >/dev/null 2>"$log.perf.err" &
        PERF_PID=$!
    fi
    c0=$(srv_cpu_s); t0=$(date +%s.%N)
    timeout -k 5 "$TIMEOUT" "${PIN_LOAD[@]}" "${args[@]}" >"$log.out" 2>"$log.err" &
    GEN_PID=$!
    wait "$GEN_PID" || rc=$?
    GEN_PID=""
    if [ -n "$PERF_PID" ]; then
        stop_perf
        "$PYTHON" loadtest/peers/profile_report.py "$log.perf.data" --title "$row, $srv, run $run" >"$log.profile.md" 2>&1 || true
        { echo; cat "$log.profile.md"; } >>"$PROFILES"
        rm -f "$log.perf.data"
    fi
    c1=$(srv_cpu_s); t1=$(date +%s.%N); rss=$(srv_rss_kb)
    cp "$DATA/server.err" "$log.server.err" 2>/dev/null || true
    stop_server
    "$PYTHON" loadtest/peers/bench_report.py record --row "$row" --server "$srv" --run "$run" --command "$shown" \
        --stdout "$log.out" --stderr "$log.err" --exit "$rc" --srv-cpu-s "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
        --wall-s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" --srv-rss-kb "$rss" >>"$RESULTS"
    "$PYTHON" loadtest/peers/bench_report.py line "$RESULTS" >&2
}

IFS=, read -r -a ROWS <<<"$ONLY"
echo "bench.sh: rows ${ONLY}, $RUNS run(s), ${DURATION} s each; server on CPU $HUB_CPU, generator on CPU $LOAD_CPU (row j unpinned); results in $RESULTS" >&2
for row in "${ROWS[@]}"; do
    for ((run = 1; run <= RUNS; run++)); do
        run_one "$row" hub "$run"
        case "$row" in a|b|c|d|e)
            [ "$USE_UWS" = 1 ] && run_one "$row" uws "$run"
            [ "$PICOWS" = 1 ] && run_one "$row" picows "$run" ;;
        esac
    done
done

export BENCH_HUB_CMD="$HUB_CMD" BENCH_PICOWS_CMD="$PICOWS_CMD" BENCH_UWS_CMD="$UWS_CMD" BENCH_TOKEN_CMD="$TOKEN_CMD" BENCH_RUNS="$RUNS" \
    BENCH_DURATION="$DURATION" BENCH_LOAD_CPU="$LOAD_CPU" BENCH_HUB_CPU="$HUB_CPU" BENCH_FANOUT_WINDOW="$FANOUT_WINDOW" \
    BENCH_CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)" BENCH_CORES="$(nproc)" BENCH_KERNEL="$(uname -r)" \
    BENCH_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" BENCH_PICOWS_VERSION="$("$PYTHON" -c 'import picows; print(picows.__version__)' 2>/dev/null || echo '?')"
REPORT=(--results "$RESULTS" --markdown "${RESULTS%.jsonl}.md")
[ "$WRITE_README" = 1 ] && REPORT+=(--readme README.md)
"$PYTHON" loadtest/peers/bench_report.py report "${REPORT[@]}"
[ "$PROFILE" = 1 ] && echo "bench.sh: profiles in $PROFILES" >&2
exit 0
