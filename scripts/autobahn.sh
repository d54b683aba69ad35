#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing client against one WebSocket echo URL.
#   scripts/autobahn.sh URL [CASE ...]     e.g. scripts/autobahn.sh ws://127.0.0.1:9001/echo '1.*'
# Cases default to all (1.* … 13.*). Reports go to $AB_OUT (default ./autobahn-reports).
# The suite is Python 2 code: it needs a python2.7 (PY2=, pyenv, or /usr/bin/python2.7) and installs
# `autobahntestsuite` from PyPI once into $AB_DIR (default $XDG_CACHE_HOME/montrose-autobahn).
# Last line: "N passed, M failed". OK, NON-STRICT and INFORMATIONAL pass; FAILED and UNIMPLEMENTED
# fail (a feature the server does not implement is not a pass). Exit 0 only when none failed.
set -u
url=${1:?usage: scripts/autobahn.sh URL [CASE ...]}; shift
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=("*")
AB_DIR=${AB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/montrose-autobahn}
AB_OUT=${AB_OUT:-$PWD/autobahn-reports}

fail() { echo "autobahn: $*"; echo "0 passed, 1 failed"; exit 1; }

py2=""
for c in "${PY2:-}" "${PYENV_ROOT:-$(pyenv root 2>/dev/null || true)}"/versions/2.7*/bin/python \
         /usr/bin/python2.7 "$(command -v python2.7 2>/dev/null || true)"; do
  if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info[0] != 2)' 2>/dev/null; then
    py2=$c; break
  fi
done
[ -n "$py2" ] || fail "no Python 2.7 found; set PY2=/path/to/python2.7"

if [ ! -f "$AB_DIR/.installed" ]; then
  mkdir -p "$AB_DIR"
  ok=""
  for attempt in 1 2 3; do
    if "$py2" -m pip install -q --disable-pip-version-check --target "$AB_DIR" autobahntestsuite \
         > "$AB_DIR/pip.log" 2>&1; then ok=1; break; fi
    sleep $((attempt * 3))
  done
  [ -n "$ok" ] || fail "pip install autobahntestsuite failed: $(tail -2 "$AB_DIR/pip.log")"
  # zope is a namespace package and --target installs skip its .pth file.
  touch "$AB_DIR/zope/__init__.py" "$AB_DIR/.installed"
fi

rm -rf "$AB_OUT"; mkdir -p "$AB_OUT"
spec=$AB_OUT/fuzzingclient.json
python3 -c 'import json, sys
print(json.dumps({"outdir": sys.argv[2], "servers": [{"agent": "hub", "url": sys.argv[1]}],
                  "cases": sys.argv[3:], "exclude-cases": [], "exclude-agent-cases": {}}))' \
  "$url" "$AB_OUT" "${cases[@]}" > "$spec"
PYTHONPATH="$AB_DIR" timeout "${AB_TIMEOUT:-1800}" "$py2" "$AB_DIR/bin/wstest" -m fuzzingclient -s "$spec" \
  > "$AB_OUT/wstest.log" 2>&1
rc=$?

python3 - "$AB_OUT/index.json" "$rc" <<'PY'
import collections, json, sys
index, rc = sys.argv[1], int(sys.argv[2])
try:
    results = next(iter(json.load(open(index)).values()), {})
except (OSError, ValueError, StopIteration) as e:
    print(f"autobahn: no results ({e}); wstest exited {rc}, see wstest.log")
    print("0 passed, 1 failed")
    sys.exit(1)
PASS, FAIL = {"OK", "NON-STRICT", "INFORMATIONAL"}, {"FAILED", "UNIMPLEMENTED"}
def key(case): return [int(x) for x in case.split(".")]
per_group = collections.defaultdict(collections.Counter)
for case, r in results.items():
    per_group[case.split(".")[0]][r["behavior"]] += 1
for group in sorted(per_group, key=int):
    print(f"  {group:<3} {dict(per_group[group])}")
failing = sorted((c for c, r in results.items() if r["behavior"] in FAIL), key=key)
if failing:
    print("not passing:", " ".join(failing[:40]) + (" ..." if len(failing) > 40 else ""))
passed = sum(1 for r in results.values() if r["behavior"] in PASS)
failed = sum(1 for r in results.values() if r["behavior"] not in PASS)
if not results:
    failed = 1
print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
PY
