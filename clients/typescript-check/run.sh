#!/usr/bin/env bash
# The TypeScript check of hub.d.ts, on a built hub:
#   clients/typescript-check/run.sh [path/to/montrose-hub]   (default .build/release/montrose-hub)
# 1. stages hub.js and hub.d.ts (Sources/Hub/Console/assets), example.ts and the README's
#    TypeScript snippet (taken verbatim from its "Clients" section) in a temporary folder and
#    type-checks them: tsc --noEmit --strict (Debian's node-typescript);
# 2. compiles example.ts to JavaScript and runs it under Node (node --experimental-websocket:
#    Node 20 has its WebSocket behind that flag; hub.js needs nothing else) against a hub this
#    script starts on free ports with a temporary data folder, and stops by PID;
# 3. runs the README's snippet, as compiled, under Node against that hub (run_readme_snippet.mjs
#    stands in for what a browser page supplies: the URL and the app's token endpoint);
# 4. checks the hub serves /hub.d.ts byte for byte as the file.
# Prints "tsc ok: N files", "README snippet ok" and "node run ok: …"; exit 0 only if all passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/clients/typescript-check"
bin=${1:-$root/.build/release/montrose-hub}
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "typescript-check: no executable at $bin"; exit 2; }
command -v tsc >/dev/null || { echo "typescript-check: tsc missing (apt-get install -y node-typescript)"; exit 2; }
command -v node >/dev/null || { echo "typescript-check: node missing"; exit 2; }

source "$root/scripts/lib/hub-process.sh"
work=$hub_work

assets="$root/Sources/Hub/Console/assets"
cp "$assets/hub.js" "$assets/hub.d.ts" "$here/example.ts" "$here/tsconfig.json" "$work/"
# The README's snippet, verbatim: the first ```ts block of its "Clients" section.
awk '/^## Clients/ { inside = 1; next } inside && /^## / { exit }
     inside && /^```ts$/ { code = 1; next } code && /^```$/ { exit } code { print }' "$root/README.md" > "$work/readme_snippet.ts"
[ -s "$work/readme_snippet.ts" ] || { echo "typescript-check: no \`\`\`ts snippet in the README's Clients section"; exit 1; }

# Every public method of HubClient and every export of hub.js must be declared in hub.d.ts: a
# method added to hub.js without its types fails here.
missing=$(cd "$work" && node --input-type=module -e '
  import * as mod from "./hub.js";
  import { readFileSync } from "node:fs";
  const dts = readFileSync("hub.d.ts", "utf8");
  const from = dts.indexOf("export declare class HubClient");
  const cls = dts.slice(from, dts.indexOf("\n}\n", from));
  const out = [];
  for (const name of Object.keys(mod))
    if (!new RegExp(`export declare (class|function|const) ${name}\\b`).test(dts)) out.push(name);
  for (const name of Object.getOwnPropertyNames(mod.HubClient.prototype))
    if (!name.startsWith("_") && name !== "constructor" && !new RegExp(`\\n  (readonly )?${name}[(<:]`).test(cls)) out.push(`HubClient.${name}`);
  console.log(out.join(" "));')
[ -z "$missing" ] || { echo "typescript-check: hub.js has what hub.d.ts does not declare: $missing"; exit 1; }
echo "hub.d.ts declares every export of hub.js and every public HubClient method"

echo "tsc $(tsc --version): tsc --noEmit --strict -p (example.ts, the README snippet, hub.d.ts)"
(cd "$work" && tsc --noEmit --strict -p tsconfig.json)
echo "tsc ok: 3 files (example.ts, readme_snippet.ts, hub.d.ts)"

(cd "$work" && tsc -p tsconfig.json --outDir out)
cp "$work/hub.js" "$work/out/hub.js"
echo '{"type": "module"}' > "$work/out/package.json"

jwt="ts-check-jwt-secret-$RANDOM$RANDOM-0123456789"
key="ts-check-bridge-key-$RANDOM$RANDOM-0123456789"
hub_start "$bin" --jwt-secret "$jwt" --bridge-key "$key" --loops 1 || { echo "typescript-check: hub did not start"; exit 1; }
bridge=$hub_bridge public=$hub_public

curl -fsS "http://127.0.0.1:$public/hub.d.ts" -o "$work/served.d.ts"
cmp -s "$work/served.d.ts" "$assets/hub.d.ts" || { echo "typescript-check: /hub.d.ts differs from the file"; exit 1; }
ctype=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$public/hub.d.ts")
echo "GET /hub.d.ts: the file, $ctype"

client="ts-client-$RANDOM"
token=$(curl -fsS -X POST -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
          --data "{\"sub\":\"$client\",\"role\":\"client\",\"name\":\"Tess Script\"}" "http://127.0.0.1:$bridge/v1/tokens" \
        | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "typescript-check: no token from POST /v1/tokens"; exit 1; }

ann_token=$(curl -fsS -X POST -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
          --data '{"sub":"ann","role":"client","name":"Ann"}' "http://127.0.0.1:$bridge/v1/tokens" \
        | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
cp "$here/run_readme_snippet.mjs" "$work/out/"
HUB_WS="ws://127.0.0.1:$public/ws" ANN_TOKEN="$ann_token" \
  timeout 30 node --experimental-websocket --no-warnings "$work/out/run_readme_snippet.mjs"

HUB_WS="ws://127.0.0.1:$public/ws" HUB_BRIDGE="http://127.0.0.1:$bridge" BRIDGE_KEY="$key" \
CLIENT_ID="$client" CLIENT_TOKEN="$token" \
  timeout 60 node --experimental-websocket --no-warnings "$work/out/example.js"
