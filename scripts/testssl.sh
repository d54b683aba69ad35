#!/usr/bin/env bash
# Debian's testssl.sh (the `testssl` command) against a hub serving TLS.
#   scripts/testssl.sh [path/to/montrose-hub]      (default .build/release/montrose-hub)
# Builds nothing: give it a built binary. Makes a throwaway self-signed RSA certificate in a
# temporary folder (RSA, so the scan also tries the RSA key-exchange suites the profile must
# refuse), starts the hub with it on a free loopback port (--port 0; the port is read from the
# hub's "public listening on" line), scans it, and stops the hub it started, by PID.
# Exit 0 only when no finding is left that fails the run (below); the findings that do are
# printed. Needs testssl.sh and python3. No DNS lookups, no OCSP/CRL fetches: loopback only.
# Knobs: TESTSSL_TIMEOUT (seconds for the scan, default 480), TESTSSL_JSON (keep the report there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/.build/release/montrose-hub}
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "testssl: no executable at $bin (build it: swift build -c release --product montrose-hub)"; exit 2; }
scanner=$(command -v testssl || command -v testssl.sh || true)
[ -n "$scanner" ] || { echo "testssl: testssl.sh is not installed (apt-get install testssl.sh)"; exit 2; }

source "$root/scripts/lib/hub-process.sh"
work=$hub_work

# 90 days (Mozilla's recommended lifespan), names matching the address scanned.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 90 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

hub_start "$bin" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --loops 2 \
          --jwt-secret "testssl-jwt-secret-0123456789" --bridge-key "testssl-bridge-key-0123456789" \
  || { echo "testssl: hub did not start"; exit 1; }
port=$hub_public
echo "testssl: hub pid $hub_pid, https://127.0.0.1:$port"

# What is scanned: protocols (-p), cipher categories (-s), forward secrecy (-f), the server's
# cipher order (-P), server defaults and certificate (-S), HTTP headers (-h), every vulnerability
# check (-U) and each cipher the scanner knows, one by one (-e). Left out: client simulation
# (-c: what 30-odd browsers would pick, no rating) and the grease/bug checks (-g). --nodns none:
# no DNS (the CAA record, rDNS); OCSP and CRL are never fetched without --phone-out.
started=$(date +%s)
set +e
timeout "${TESTSSL_TIMEOUT:-480}" "$scanner" --quiet --color 0 --warnings off --nodns none \
  --connect-timeout 5 --openssl-timeout 10 -p -s -f -P -S -h -U -e \
  --jsonfile "$work/report.json" "127.0.0.1:$port" > "$work/report.txt" 2>&1
scan_rc=$?
set -e
elapsed=$(( $(date +%s) - started ))
[ -n "${TESTSSL_JSON:-}" ] && cp "$work/report.json" "$TESTSSL_JSON" 2>/dev/null || true
if [ "$scan_rc" -eq 124 ] || ! grep -q '"scanTime"' "$work/report.json" 2>/dev/null; then
  cat "$work/report.txt"; echo "testssl: the scan did not finish (exit $scan_rc after ${elapsed} s)"; exit 1
fi
if ! kill -0 "$hub_pid" 2>/dev/null; then
  echo "testssl: the hub died during the scan"; cat "$work/hub.err"; exit 1
fi
grep -E "^ (TLS 1|SSLv|Obsolete CBC|Strong enc|PFS is|Elliptic|Finite|Has server|Strict Transport|LUCKY13|ROBOT|Secure (Client-Initiated )?Renego|CRIME|BREACH)" \
  "$work/report.txt" || true

set +e
python3 - "$work/report.json" <<'EOF'
import json, re, sys

findings = json.load(open(sys.argv[1]))
if isinstance(findings, dict):          # the pretty format, in case someone switches to it
    findings = [f for s in findings.get("scanResult", []) for v in s.values() if isinstance(v, list) for f in v]

# Findings about the throwaway self-signed certificate this script makes, not about the hub.
# (testssl adds " <hostCert#N>" to these ids when a server has several certificates.)
ABOUT_THE_TEST_CERTIFICATE = {
    "cert_chain_of_trust",        # self-signed: no chain to a trusted CA (CRITICAL)
    "cert_revocation",            # no CRL or OCSP URI in it (HIGH): only a CA puts them there
    "cert_crlDistributionPoints", # the same absence, reported per field
    "cert_ocspURL",
    "cert_mustStapleExtension",   # an extension a CA would add, or not
    "certificate_transparency",   # SCTs come from a CA's CT logging
    "DNS_CAArecord",              # a DNS record of the certificate's domain (no DNS here anyway)
    "cert_trust",                 # name match: the certificate names localhost and 127.0.0.1
    "cert_commonName",            #   (rated only if that changes)
    "cert_expirationStatus",      # validity window of a 90-day certificate made a second ago
    "cert_notAfter",
    "cert_validityPeriod",
}
# Rated LOW by testssl 3.0, yet exactly what the profile exists to rule out: they fail the run
# whatever their rating (obsolete CBC ciphers, LUCKY13, no server cipher order, no HSTS).
PROFILE = {"cipherlist_AVERAGE", "cipherlist_3DES_IDEA", "LUCKY13", "cipher_order", "HSTS"}
RANK = {"MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}

failures = []
for f in findings:
    fid = f.get("id", "").split(" ")[0]
    sev = f.get("severity", "")
    text = f.get("finding", "")
    if fid in ABOUT_THE_TEST_CERTIFICATE:
        continue
    if RANK.get(sev, 0) >= 2:
        failures.append(f"{sev} {fid}: {text}")
    elif fid in PROFILE and sev not in ("OK", "INFO"):
        failures.append(f"{sev} {fid}: {text} (outside the profile)")
    # Key exchange groups: X25519, P-256, P-384 (and the hybrid X25519MLKEM768); no P-521,
    # X448 or finite-field groups (testssl lists those it found; none, no DH_groups line).
    elif fid == "PFS_ECDHE_curves" and set(text.split()) - {"X25519", "prime256v1", "secp384r1", "X25519MLKEM768"}:
        failures.append(f"{sev} {fid}: {text} (outside the profile)")
    elif fid == "DH_groups" and "not offered" not in text:
        failures.append(f"{sev} {fid}: {text} (outside the profile)")
    # Each cipher offered (-e): "x1301  TLS_AES_128_GCM_SHA256  ECDH 253  AESGCM  128 ...".
    # The profile: ECDHE key exchange (TLS 1.3's suites report it the same way) and AEAD only.
    elif fid.startswith("cipher_x") or fid.startswith("cipher-"):
        cols = text.split()
        if len(cols) >= 5 and re.match(r"^x[0-9a-f]+$", cols[0]):
            kx = cols[2]
            enc = cols[4] if cols[3].isdigit() else cols[3]   # "ECDH 253 AESGCM", "RSA AESGCM"
            if kx != "ECDH" or enc not in ("AESGCM", "ChaCha20"):
                failures.append(f"{sev} {fid}: {' '.join(cols[:2])} offered: {kx} key exchange, {enc} (outside the profile)")

if failures:
    print("testssl: findings against the hub:")
    for line in failures:
        print("  " + line)
    sys.exit(1)
print("testssl: no finding against the hub (medium or worse, or outside the TLS profile)")
EOF
status=$?
set -e
echo "testssl: scan took ${elapsed} s; exit $status"
exit "$status"
