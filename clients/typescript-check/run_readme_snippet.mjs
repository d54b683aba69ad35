// Runs the README's TypeScript snippet (compiled to readme_snippet.js, unchanged) under Node
// against the hub run.sh started: it is written for a browser, so the two things a browser
// would supply are stood in for here, before it loads: its WebSocket URL (wss://hub.example.com)
// is pointed at the test hub, and `fetch("/api/hub-token")` (the app's own token endpoint)
// answers a token for "ann". Then the snippet's own listener must print the message it sent.
const { HUB_WS, ANN_TOKEN } = process.env;
const RealWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends RealWebSocket {
  constructor(_url, protocols) { super(HUB_WS, protocols); }
};
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) =>
  String(input) === "/api/hub-token" ? new Response(JSON.stringify({ token: ANN_TOKEN })) : realFetch(input, init);

const printed = [];
const realLog = console.log;
console.log = (...args) => { printed.push(args.join(" ")); realLog("  snippet:", ...args); };

const timer = setTimeout(() => { realLog("README snippet: no message printed within 10 s"); process.exit(1); }, 10000);
await import("./readme_snippet.js");
while (!printed.includes("Ann Hello")) await new Promise(r => setTimeout(r, 20));
clearTimeout(timer);
realLog("README snippet ok: connected, subscribed, sent, and its message listener printed \"Ann Hello\"");
process.exit(0);
