#!/usr/bin/env bash
# Coverage-guided fuzzing of the Protocol module with libFuzzer (swiftc -sanitize=fuzzer,address).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Targets (fuzz/targets/<target>.swift): http, frames, frames_deflate, json, jwt; all by
# default, 30 seconds each. Each is built into .build-fuzz/<target> from the target file,
# fuzz/support/*.swift and every Swift file under Sources/Protocol as one module (so no SwiftPM build is
# involved), then run for the given time on a temporary copy of its seed corpus
# (fuzz/corpus/<target>/, which does not grow), with fuzz/dict/<target>.dict when there is
# one. One line per target:
#
#   fuzz http: 41234 runs in 30 s (1374 exec/s), cov 1460 ft 5313 corpus 311/41Kb, no crash
#
# On a crash (a trap, an ASan report, a timeout, running out of memory) the input is left in
# fuzz-artifacts/ with libFuzzer's report, the other targets still run, and the exit status is 1.
# A target that does not compile stops the script before any runs, with exit status 3.
# Replay one:   .build-fuzz/<target> fuzz-artifacts/<target>-crash-<sha1>
#
# Environment: FUZZ_OPT (-O by default; -Onone builds faster and runs slower),
# FUZZ_JOBS (builds and runs at a time, default: number of cores, at most 3), SWIFTC.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
[ $# -gt 0 ] && shift
all_targets=(http frames frames_deflate json jwt)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
case "$seconds" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2; exit 2 ;; esac

swiftc=${SWIFTC:-swiftc}
opt=${FUZZ_OPT:--O}
build=.build-fuzz
artifacts=fuzz-artifacts
mkdir -p "$build" "$artifacts"

# Longest input per target: room for pipelined requests and multi-frame streams, small enough
# to keep executions fast. JWT: past the verifier's 4096-byte cap.
max_len() {
  case "$1" in
    frames_deflate) echo 2048 ;;
    jwt) echo 4200 ;;
    *) echo 4096 ;;
  esac
}

# The Protocol module, its Contract folder included.
mapfile -t protocol_sources < <(find Sources/Protocol -name '*.swift' | sort)

# A target is rebuilt when any of its inputs is newer than the binary.
needs_build() {
  local bin="$build/$1" f
  [ -x "$bin" ] || return 0
  for f in "${protocol_sources[@]}" Sources/COpenSSL/* Sources/CZlib/* fuzz/support/*.swift \
           "fuzz/targets/$1.swift" scripts/fuzz.sh; do
    [ "$f" -nt "$bin" ] && return 0
  done
  return 1
}

build_target() {
  local t=$1 log="$build/$1.build.log"
  # One module: the Protocol sources, the shared support and the target. The system-library
  # module maps (Sources/COpenSSL, Sources/CZlib) name their libraries, so they autolink;
  # the -l flags are there anyway for clarity. lld keeps the link free of gold's ASan warnings.
  if "$swiftc" -swift-version 6 -sanitize=fuzzer,address -parse-as-library "$opt" -wmo \
       -module-name FuzzProtocol -I Sources/COpenSSL -I Sources/CZlib \
       "${protocol_sources[@]}" fuzz/support/*.swift "fuzz/targets/$t.swift" \
       -use-ld=lld -lssl -lcrypto -lz -o "$build/$t.tmp" >"$log" 2>&1; then
    mv "$build/$t.tmp" "$build/$t"
  else
    echo "fuzz $t: build failed" >&2
    tail -30 "$log" >&2
    return 1
  fi
}

for t in "${targets[@]}"; do
  [ -f "fuzz/targets/$t.swift" ] || { echo "no fuzz target $t (fuzz/targets/$t.swift)" >&2; exit 2; }
done

# Builds and runs take one core each: at most `jobs_max` at a time.
wait_for_a_slot() { while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 0.2; done; }

# Builds, a few at a time.
build_start=$(date +%s)
jobs_max=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs_max" -gt 3 ] && jobs_max=3
pids=()
names=()
for t in "${targets[@]}"; do
  needs_build "$t" || continue
  wait_for_a_slot
  build_target "$t" & pids+=($!); names+=("$t")
done
build_failed=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || build_failed=1; done
[ "$build_failed" -eq 0 ] || exit 3
echo "fuzz: built ${names[*]:-nothing (up to date)} in $(( $(date +%s) - build_start )) s ($opt)"

# The Swift runtime's backtracer cannot walk ASan's memory; libFuzzer prints the stack instead.
export SWIFT_BACKTRACE=enable=no

work=$(mktemp -d "${TMPDIR:-/tmp}/montrose-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One target's run; its result goes to $work/<target>.line, whose first line ends in "no crash"
# when there was none.
run_target() {
  local t=$1 corpus="$work/$1" log="$work/$1.log" start rc elapsed runs speed cov input
  mkdir -p "$corpus"
  cp -R "fuzz/corpus/$t/." "$corpus/" 2>/dev/null || true
  start=$(date +%s.%N)
  # -timeout: one input taking 10 s is a hang (a bug); -rss_limit_mb: memory blow-up is too.
  local dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  rc=0
  "$build/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line: "#N  DONE  cov: C ft: F corp: U/SIZE lim: ... exec/s: E rss: R"
  cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 |
        sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/cov \1 ft \2 corpus \3/' || true)
  [ -n "$cov" ] || cov="cov ?"
  if [ "$rc" -eq 0 ]; then
    echo "fuzz $t: ${runs:-?} runs in ${elapsed} s (${speed:-?} exec/s), $cov, no crash" >"$work/$t.line"
    return 0
  fi
  cp "$log" "$artifacts/$t.log"
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  {
    echo "fuzz $t: CRASH after ${runs:-?} runs in ${elapsed} s (exit $rc); input: ${input:-see $artifacts/$t.log}"
    # The reason: the Swift trap message, ASan's summary, or libFuzzer's own verdict.
    grep -E "Fatal error|invariant broken|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|SUMMARY|ALARM|out-of-memory" "$log" \
      | head -8 | sed 's/^/    /' || true
    if [ -n "$input" ]; then echo "    replay: $build/$t $input"; fi
  } >"$work/$t.line"
}

# The same seconds per target, several targets at once.
for t in "${targets[@]}"; do
  wait_for_a_slot
  run_target "$t" &
done
wait
crashed=()
for t in "${targets[@]}"; do
  cat "$work/$t.line" 2>/dev/null || echo "fuzz $t: no result"
  head -1 "$work/$t.line" 2>/dev/null | grep -q ", no crash$" || crashed+=("$t")
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${crashed[*]} (inputs and logs in $artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
