// The Montrose Hub web console: sign-in, conversations, notifications and the admin view,
// built on the hub.js client (see API.md). Every piece of text that comes from the hub or a
// user goes into the page through textContent or attributes, never through innerHTML.
import { HubClient, applyChange } from "/hub.js";
import { SupportReportCard } from "/reports.js";
import { DEFAULT_SETTINGS, MessageDecor, fetchSettings, isNewer, previewText } from "/messages.js";
import { SearchPanel } from "/search.js";
import { AttachControl } from "/attach.js";

const TOKEN_KEY = "montrose.token";
const DEV_KEY = "montrose.dev";
const STATUS_KEY = "montrose.status";
const ALERTS_KEY = "montrose.desktop-alerts"; // localStorage: "1" once the user opted in
const APP_TITLE = "Montrose Hub";

const SERVICE_LABELS = {
  marketing: "Marketing", website: "Website", courses: "Courses", support: "Support",
  wallet: "Wallet", platform: "Platform",
};
const ROLE_LABELS = {
  client: "Client", website_agent: "Website agent", marketing_agent: "Marketing agent",
  admin: "Admin", system: "System", bot: "Bot",
};
const CATEGORY_LABELS = { payments: "Payment", messages: "Message", analytics: "Analytics", updates: "Update" };
const AGENT_STATUSES = ["available", "busy", "away"];
// The support desk (docs/protocol.md "Support desk"): a conversation's status.
const CONV_STATUSES = ["open", "pending", "resolved"];
const CONV_STATUS_LABELS = { open: "Open", pending: "Pending", resolved: "Resolved" };
const QUEUE_PAGE = 100;
const QUEUE_TICK_MS = 30000; // the waiting times on the queue page
const NOTE_LABEL = "Internal note — only agents and admins see this";
const HISTORY_PAGE = 50;
const CONVERSATION_PAGE = 100;
const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 3000;
const STATS_POLL_MS = 5000;
const ADMIN_LIST_REFRESH_MS = 20000;
const BELL_ITEMS = 5;
const CACHE_PER_CHANNEL = 200; // messages kept per conversation for showing while offline
const OFFLINE_TEXT = "Can't reach the hub — showing saved messages; retrying…";
const OFFLINE_EMPTY_TEXT = "Can't reach the hub — no saved messages for this conversation yet; retrying…";
const BROADCAST_AUDIENCES = [
  ["all", "Everyone", "everyone (every client, agent and admin)"],
  ["client", "Clients", "every client"],
  ["website_agent", "Website agents", "every website agent"],
  ["marketing_agent", "Marketing agents", "every marketing agent"],
  ["admin", "Admins", "every admin"],
];

// ---------------------------------------------------------------- small DOM helpers

/** Builds an element. props: class, testid, data (object), text, on<Event> handlers, hidden,
 *  disabled, and any other attribute. Children: nodes or strings (as text), null skipped. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svgIcon(pathData, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", pathData);
  svg.append(path);
  if (label) svg.dataset.label = label;
  return svg;
}

const BELL_PATH = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z";

function srOnly(text) { return h("span", { class: "sr-only", text }); }

function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

function serviceOf(channel) { return String(channel).split(":")[1] || ""; }
function clientOf(channel) { return String(channel).split(":").slice(2).join(":"); }
function serviceLabel(service) { return SERVICE_LABELS[service] || service || "—"; }
function roleLabel(role) { return ROLE_LABELS[role] || role || ""; }
function statusLabel(status) { return CONV_STATUS_LABELS[status] || CONV_STATUS_LABELS.open; }
function isAgentRole(role) { return /_agent$/.test(String(role || "")); }

/** "3 min", "2 h 5 min", "1 d 4 h": how long since ts. */
function waitedLabel(ts) {
  if (!Number.isFinite(ts)) return "";
  const minutes = Math.max(0, Math.floor((Date.now() - ts) / 60000));
  if (minutes < 1) return "under a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/** A conversation's status as a chip: its word always, its colour as a second cue. */
function statusChip(status, testid = "conv-status") {
  const s = CONV_STATUSES.includes(status) ? status : "open";
  return h("span", { class: `chip status-chip status-${s}`, testid, data: { status: s }, text: statusLabel(s) });
}

function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function dayLabel(ts) {
  const today = dayKey(Date.now());
  const yesterday = dayKey(Date.now() - 86400000);
  const key = dayKey(ts);
  if (key === today) return "Today";
  if (key === yesterday) return "Yesterday";
  return new Date(ts).toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function timeLabel(ts) {
  if (!Number.isFinite(ts)) return "";
  const d = new Date(ts);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (dayKey(ts) === dayKey(Date.now())) return time;
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${time}`;
}

function errorText(e) {
  if (!e) return "unknown error";
  if (e.code && e.message) return `${e.message} (${e.code})`;
  return e.message || e.code || String(e);
}

function isAttentive() {
  return document.visibilityState === "visible" && document.hasFocus();
}

function toast(text, kind = "info") {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = h("div", { class: `toast toast-${kind}`, testid: "toast", text });
  region.append(item);
  while (region.children.length > 4) region.firstElementChild.remove();
  placeToasts();
  setTimeout(() => item.remove(), 6000);
}

/** Toasts sit above the composer when one is on screen, so they never cover the message box
 *  or its Send button; elsewhere in the bottom corner. */
function placeToasts() {
  const region = document.getElementById("toasts");
  if (!region) return;
  let bottom = 16;
  for (const form of document.querySelectorAll(".composer")) {
    if (form.hidden || !form.getClientRects().length) continue;
    const top = form.getBoundingClientRect().top;
    if (top > 0 && top < window.innerHeight) bottom = Math.max(bottom, Math.ceil(window.innerHeight - top) + 8);
  }
  region.style.bottom = `${bottom}px`;
}

// ---------------------------------------------------------------- the address: #/conversations/<channel>, #/notifications, #/admin

/** The view the fragment names, or null (no fragment, or one that is not a route). */
function routeFromHash(hash = location.hash) {
  const path = String(hash || "").replace(/^#/, "");
  if (path === "/notifications") return { view: "notifications", channel: null };
  if (path === "/admin") return { view: "admin", channel: null };
  if (path === "/queue") return { view: "queue", channel: null };
  const m = /^\/conversations(?:\/(.+))?$/.exec(path);
  if (!m) return null;
  let channel = null;
  if (m[1]) { try { channel = decodeURIComponent(m[1]); } catch { channel = null; } }
  return { view: "chat", channel };
}

function hashFor(view, channel) {
  if (view === "notifications") return "#/notifications";
  if (view === "admin") return "#/admin";
  if (view === "queue") return "#/queue";
  return channel ? `#/conversations/${encodeURIComponent(channel).replace(/%3A/gi, ":")}` : "#/conversations";
}

// ---------------------------------------------------------------- tokens

function base64urlJSON(part) {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
    const value = JSON.parse(atob(b64));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Whether the text has the shape of a JWT (three base64url parts, a JSON header with alg
 *  and a JSON payload). Whether the hub accepts it is for the hub to say. */
function looksLikeJwt(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3 || !parts[2] || !/^[A-Za-z0-9_-]+$/.test(parts[2])) return false;
  const header = base64urlJSON(parts[0]);
  return !!(header && typeof header.alg === "string" && base64urlJSON(parts[1]));
}

const NOT_A_TOKEN = "That is not a valid access token. A token is one long line of three parts separated by dots (it starts with “eyJ”): check that you pasted all of it.";

/** The sign-in page's sentence for a token the hub refused (close 4001, error "unauthorized";
 *  the error's message says why: docs/protocol.md "Identity and tokens"). */
function refusedTokenText(e) {
  const why = String(e?.message || "");
  if (/malformed|unsupported token algorithm|invalid token claim/i.test(why)) {
    return `That is not a valid access token (the hub says: ${why}). Check that you pasted all of it.`;
  }
  if (/expired/i.test(why)) return "That token has expired. Ask for a new one and sign in again.";
  if (/signature/i.test(why)) return "The hub did not accept that token: it was not issued for this hub (its signature does not match). Ask for a new one.";
  return `The hub did not accept that token${why ? ` (${why})` : ""}. Ask for a new one and sign in again.`;
}

function setView(root) {
  const app = document.getElementById("app");
  app.replaceChildren(root);
}

// ---------------------------------------------------------------- sign-in

let current = null; // the signed-in Session, if any

async function fetchDevUsers() {
  try {
    const res = await fetch("/dev/users", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) return null;
    const body = await res.json();
    // Outside development mode the hub answers {dev: false, users: []}.
    if (body.dev === false) return null;
    return Array.isArray(body.users) && body.users.length > 0 ? body.users : null;
  } catch {
    return null;
  }
}

async function mintDevToken(userId) {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ user: userId }),
  });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok || !body || typeof body.token !== "string") {
    throw new Error(body?.error?.message || `the hub answered ${res.status}`);
  }
  return body.token;
}

function takeTokenFromFragment() {
  if (!location.hash || location.hash.length < 2) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return null;
  // The token must not linger in the address bar (or in the history).
  history.replaceState(null, "", location.pathname + location.search);
  return token.trim();
}

async function showSignIn(notice = "", retryToken = null, retryForm = false) {
  const devUsers = await fetchDevUsers();
  const status = h("p", { class: "signin-status", role: "status", "aria-live": "polite" });
  const card = h("main", { class: "signin", id: "main" },
    h("h1", { class: "signin-title", text: "Montrose Hub" }),
    h("p", { class: "muted", text: "Sign in to chat with your team and see your notifications." }));
  if (notice) card.append(h("p", { class: "notice", role: "alert", testid: "signin-notice", text: notice }));
  if (retryToken) {
    card.append(h("button", {
      type: "button", class: "btn", text: "Try again",
      onclick: () => startSession(retryToken),
    }));
  }

  if (devUsers && devUsers.length) {
    const list = h("ul", { class: "signin-users", "aria-label": "Demo users" });
    for (const u of devUsers) {
      const button = h("button", {
        type: "button", class: "signin-user", testid: `signin-${u.id}`,
        "aria-label": `Sign in as ${u.name}, ${roleLabel(u.role)}`,
        onclick: async () => {
          for (const b of list.querySelectorAll("button")) b.disabled = true;
          status.textContent = `Signing in as ${u.name}…`;
          try {
            const token = await mintDevToken(u.id);
            sessionStorage.setItem(DEV_KEY, "1");
            await startSession(token, devUsers);
          } catch (e) {
            status.textContent = `Could not sign in: ${errorText(e)}`;
            for (const b of list.querySelectorAll("button")) b.disabled = false;
          }
        },
      }, h("span", { class: "signin-name", text: u.name }), h("span", { class: "signin-role", text: roleLabel(u.role) }));
      list.append(h("li", {}, button));
    }
    card.append(h("section", { class: "signin-dev", "aria-labelledby": "dev-title" },
      h("h2", { id: "dev-title", text: "Development mode: pick a demo user" }), list));
  }

  const input = h("input", {
    type: "text", id: "token-input", testid: "token-input", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", required: true, placeholder: "eyJ…", "aria-describedby": "token-error",
  });
  const tokenError = h("p", { class: "field-error", id: "token-error", testid: "token-error", role: "alert" });
  const form = h("form", { class: "signin-token", novalidate: true },
    h("label", { for: "token-input", text: "Access token" }),
    h("div", { class: "row" }, input, h("button", { type: "submit", class: "btn btn-primary", testid: "signin-token", text: "Sign in" })),
    tokenError);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const token = input.value.trim();
    const fail = (text) => { tokenError.textContent = text; input.setAttribute("aria-invalid", "true"); input.focus(); };
    if (!token) return fail("Paste the token you were given.");
    // A text that is not a JWT at all is said so here; the hub judges the rest.
    if (!looksLikeJwt(token)) return fail(NOT_A_TOKEN);
    tokenError.textContent = "";
    input.removeAttribute("aria-invalid");
    sessionStorage.removeItem(DEV_KEY);
    startSession(token, devUsers);
  });
  if (devUsers && devUsers.length) {
    card.append(h("details", { class: "signin-other", open: retryForm || null }, h("summary", { text: "Sign in with a token instead" }), form));
  } else {
    card.append(form);
  }
  card.append(status);
  setView(card);
  const first = retryForm ? input : (card.querySelector(".signin-user") || input);
  first.focus();
}

async function startSession(token, devUsers = null) {
  if (current) current.dispose();
  current = null;
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const session = new Session(token, devUsers);
    current = session;
    await session.start();
  } catch (e) {
    if (current) current.dispose();
    current = null;
    await showSignIn(`Could not start the console: ${errorText(e)}`);
  }
}

function signOut(notice = "") {
  if (current) current.dispose();
  current = null;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  document.title = APP_TITLE;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(DEV_KEY);
  showSignIn(notice);
}

// ---------------------------------------------------------------- the signed-in console

class Session {
  constructor(token, devUsers) {
    this.token = token;
    this.devUsers = devUsers;
    this.disposed = false;
    this.me = null;
    this.names = new Map(); // user id → name
    this.roles = new Map(); // user id → role, as far as this console has seen it
    this.convs = new Map(); // channel → {channel, client, agents, last_message, unread, status, status_by, status_at, unassigned}
    this.statusFilter = "all"; // the conversation list's filter: "all" or a status
    this.queue = new Map(); // channel → {channel, client, service, last_message}: waiting for an agent
    this.queueTimer = null;
    this.convEls = new Map(); // channel → <li> in the list
    this.convMore = false;
    this.subs = new Map(); // channel → subscribe promise (conversations followed live)
    this.readMarks = new Map(); // channel → Map(user → seq) of the other participants
    this.readSent = new Map(); // channel → highest seq this console marked read
    this.pendingSends = new Map(); // local key → {key, channel, text, cmid, error}
    this.sendCounter = 0;
    this.notes = new Map(); // id → notification
    this.notesMore = false;
    this.notesPageLoaded = false;
    this.unread = { total: 0, by_service: {} };
    this.cache = new Map(); // channel → Map(seq → message): what can be shown while the hub is unreachable
    this.routing = false;
    this.view = "chat";
    this.conv = null; // the open ConversationView
    this.timers = new Set();
    this.statsTimer = null;
    this.adminRefresh = null;
    this.started = false;
    this.settings = { ...DEFAULT_SETTINGS }; // the hub's attachment origins and edit window
    this.clockSkew = 0; // the hub's clock minus this browser's (the edit window is the hub's)
    this.decor = new MessageDecor({ h, session: this, toast, errorText, timeLabel });
    this.hub = new HubClient({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
      token,
      requestTimeoutMs: 10000,
      reconnect: { minMs: 500, maxMs: 15000 },
    });
    this.bindHub();
  }

  // ---- life cycle

  on(type, fn) {
    this.hub.addEventListener(type, (e) => {
      if (this.disposed) return;
      try { fn(e.detail || {}); } catch (err) { toast(`Console error: ${errorText(err)}`, "error"); }
    });
  }

  bindHub() {
    this.on("state", (d) => this.setConnection(d.state, d.reason, d.code));
    this.on("auth", (d) => this.onAuth(d));
    this.on("message", (m) => this.onMessage(m));
    this.on("message.updated", (c) => this.onMessageChange(c));
    this.on("message.deleted", (c) => this.onMessageChange({ ...c, deleted: true }));
    this.on("read", (r) => this.onRead(r));
    this.on("typing", (t) => this.conv?.channel === t.channel && this.conv.onTyping(t));
    this.on("join", (j) => { this.learn(j.user); if (this.conv?.channel === j.channel) this.conv.onJoin(j.user); });
    this.on("leave", (j) => { if (this.conv?.channel === j.channel) this.conv.onLeave(j.user); });
    this.on("status", (s) => { if (this.conv?.channel === s.channel) this.conv.onStatus(s); });
    this.on("notification", (n) => this.onNotification(n));
    this.on("unread", (u) => this.setUnread(u));
    this.on("broadcast", (b) => this.onBroadcast(b));
    this.on("assignment", () => this.loadConversations(true));
    this.on("conversation", (c) => this.onConversationStatus(c));
    this.on("queue", (q) => this.onQueue(q));
    this.on("revoked", (r) => this.onRevoked(r.channel));
    // The hub's store has another epoch (restored or replaced): what is shown for the channel may
    // hold messages the store no longer has; its messages follow again from seq 1.
    this.on("reset", (r) => {
      this.cache.delete(r.channel);
      if (this.conv?.channel === r.channel) this.conv.clearMessages();
    });
    this.on("error", (e) => {
      if (e.code === "forbidden" || e.code === "not_found") return; // a revoked channel's resubscribe
      if (e.message || e.code) toast(`Hub: ${errorText(e)}`, "error");
    });
  }

  async start() {
    this.startNote = h("p", { class: "muted", role: "status", text: "Connecting…" });
    setView(h("main", { class: "signin", id: "main" },
      h("h1", { class: "signin-title", text: "Montrose Hub" }),
      this.startNote,
      h("button", { type: "button", class: "btn btn-quiet", text: "Sign out", onclick: () => signOut() })));
    const settings = fetchSettings();
    let me;
    try {
      me = await this.hub.connect();
    } catch (e) {
      if (this.disposed) return;
      const unauthorized = e && (e.code === "unauthorized" || e.reason === "unauthorized");
      this.dispose();
      current = null;
      if (unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        showSignIn(refusedTokenText(e), null, sessionStorage.getItem(DEV_KEY) !== "1");
      } else {
        showSignIn(`Could not connect to the hub: ${errorText(e)}`, this.token);
      }
      return;
    }
    if (this.disposed) return;
    this.me = me || this.hub.user;
    this.settings = await settings;
    if (this.disposed) return;
    this.setClock(this.me);
    this.learn({ id: this.me.user, name: this.me.name });
    if (this.devUsers === null && sessionStorage.getItem(DEV_KEY) === "1") this.devUsers = await fetchDevUsers();
    if (this.disposed) return;
    for (const u of this.devUsers || []) this.learn(u);
    this.renderShell();
    this.setConnection(this.hub.state || "live");
    this.started = true;
    this.applyStoredStatus();
    this.loadConversations(false);
    this.loadNotifications();
    if (this.seesQueue) this.loadQueue();
    if (this.isAdmin) this.scheduleAdminRefresh();
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stopStats();
    if (this.conv) this.conv.close();
    try { this.hub.close(); } catch { /* already closed */ }
  }

  later(fn, ms) {
    const t = setTimeout(() => { this.timers.delete(t); if (!this.disposed) fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  cancel(t) { if (t) { clearTimeout(t); this.timers.delete(t); } }

  get isAdmin() { return this.me?.role === "admin"; }
  get isClient() { return this.me?.role === "client"; }
  get isAgent() { return isAgentRole(this.me?.role); }
  /** Agents and admins: the queue, internal notes, a conversation's status. */
  get seesQueue() { return this.isAgent || this.isAdmin; }
  get myId() { return this.me?.user; }

  /** The hub's time now, as near as this browser can tell (auth's server_time). */
  serverNow() { return Date.now() + this.clockSkew; }

  setClock(auth) {
    if (Number.isFinite(auth?.server_time)) this.clockSkew = auth.server_time - Date.now();
  }

  onAuth(auth) {
    if (!this.started) return; // the first connect is handled by start()
    if (auth && auth.user) this.me = { ...this.me, ...auth };
    this.setClock(auth);
    // After a reconnect: counts and lists may have moved while we were away.
    this.applyStoredStatus();
    this.loadConversations(true);
    this.loadNotifications();
    if (this.seesQueue) this.loadQueue();
    if (this.conv) { this.conv.refreshPresence(); this.conv.refreshShown(); }
  }

  learn(user) {
    if (user && user.id && user.role && user.role !== "system") this.roles.set(user.id, user.role);
    if (!user || !user.id || !user.name) return false;
    if (this.names.get(user.id) === user.name) return false;
    this.names.set(user.id, user.name);
    return true;
  }

  /** Agents this console knows of (demo users, conversations' agents, senders): whom an
   *  admin can pick when assigning; any other id can be typed. */
  knownAgents() {
    const ids = new Set();
    for (const [id, role] of this.roles) if (isAgentRole(role)) ids.add(id);
    for (const c of this.convs.values()) for (const a of c.agents) ids.add(a);
    return [...ids].sort((a, b) => this.nameOf(a).localeCompare(this.nameOf(b)));
  }

  nameOf(id) {
    if (!id) return "";
    if (id === this.myId) return "You";
    return this.names.get(id) || id;
  }

  // ---- the page frame

  renderShell() {
    this.connEl = h("span", { class: "conn", testid: "connection-state", "aria-live": "polite", data: { state: "live" }, text: "live" });
    this.bellCount = h("span", { class: "bell-count zero", testid: "bell-count", text: "0" });
    this.bellButton = h("button", {
      type: "button", class: "bell", testid: "bell", "aria-haspopup": "true", "aria-expanded": "false",
      "aria-controls": "bell-menu", "aria-label": "Notifications, 0 unread",
      onclick: (e) => { e.stopPropagation(); this.toggleBell(); },
    }, svgIcon(BELL_PATH), this.bellCount);
    this.bellList = h("ul", { class: "bell-list" });
    this.bellMenu = h("div", { class: "bell-menu popover", id: "bell-menu", testid: "bell-menu", hidden: true, role: "region", "aria-label": "Latest notifications" },
      this.bellList,
      h("div", { class: "bell-foot" },
        h("a", { class: "link", href: "#/notifications", testid: "bell-all", text: "All notifications", onclick: () => this.closeBell() }),
        h("button", { type: "button", class: "link", text: "Mark all read", onclick: () => this.markAllRead() })));
    this.bellWrap = h("div", { class: "bell-wrap" }, this.bellButton, this.bellMenu);

    // Sections are links to their address (#/…): a reload or a shared link lands on the same view.
    this.tabs = {};
    const tab = (name, long, short) => {
      this.tabs[name] = h("a", { class: `tab${short ? " has-short" : ""}`, href: hashFor(name), testid: `tab-${name}` },
        h("span", { class: "tab-long", text: long }),
        short ? h("span", { class: "tab-short", text: short }) : null);
      return this.tabs[name];
    };
    this.notesTabCount = h("span", { class: "tab-count", hidden: true });
    const nav = h("nav", { class: "tabs", "aria-label": "Sections" },
      tab("chat", "Conversations", "Chats"), tab("notifications", "Notifications"),
      this.seesQueue ? tab("queue", "Queue") : null, this.isAdmin ? tab("admin", "Admin") : null);
    this.tabs.notifications.append(this.notesTabCount);
    if (this.seesQueue) {
      // The queue's count stays on screen at every width: somebody is waiting.
      this.queueCount = h("span", { class: "tab-count queue-count", testid: "queue-count", hidden: true, text: "0" });
      this.tabs.queue.append(this.queueCount);
    }
    this.tabs.chat.addEventListener("click", (e) => {
      // On a phone the list and the conversation share the screen: the tab goes to the list.
      if (this.view === "chat" && this.conv && window.matchMedia("(max-width: 700px)").matches) {
        e.preventDefault();
        this.backToList();
      }
    });

    // The account menu: who I am, my status (agents and admins), desktop alerts, sign out.
    const meName = this.me.name || this.me.user;
    this.accountButton = h("button", {
      type: "button", class: "account", testid: "account", "aria-haspopup": "true", "aria-expanded": "false",
      "aria-controls": "account-menu", "aria-label": `Account: ${meName}, ${roleLabel(this.me.role)}`,
      onclick: (e) => { e.stopPropagation(); this.toggleAccount(); },
    },
    h("span", { class: "avatar", "aria-hidden": "true", text: initials(meName) }),
    h("span", { class: "me" },
      h("span", { class: "me-name", text: meName }),
      h("span", { class: "me-role", text: roleLabel(this.me.role) })));
    const accountItems = [
      h("p", { class: "account-who" }, h("strong", { text: meName }), h("span", { class: "muted", text: roleLabel(this.me.role) })),
    ];
    if (!this.isClient) {
      this.statusSelect = h("select", { id: "my-status", testid: "my-status", onchange: () => this.setMyStatus(this.statusSelect.value) },
        AGENT_STATUSES.map((s) => h("option", { value: s, text: s[0].toUpperCase() + s.slice(1) })));
      this.statusSelect.value = sessionStorage.getItem(STATUS_KEY) || "available";
      accountItems.push(h("div", { class: "field" }, h("label", { for: "my-status", text: "My status" }), this.statusSelect));
      this.accountButton.classList.add(`status-${this.statusSelect.value}`);
    }
    if (typeof window.Notification === "function") {
      this.alertsBox = h("input", { type: "checkbox", id: "desktop-alerts", testid: "desktop-alerts", onchange: () => this.setDesktopAlerts(this.alertsBox.checked) });
      this.alertsBox.checked = this.desktopAlertsOn();
      this.alertsNote = h("span", { class: "muted small", id: "desktop-alerts-note", testid: "desktop-alerts-note" });
      accountItems.push(h("div", { class: "check" }, this.alertsBox,
        h("label", { for: "desktop-alerts" }, "Desktop alerts", h("span", { class: "muted small block", text: "A system notification for a new message in a conversation that is not on screen." })),
        this.alertsNote));
    }
    accountItems.push(h("button", { type: "button", class: "btn", testid: "sign-out", text: "Sign out", onclick: () => signOut() }));
    this.accountMenu = h("div", { class: "account-menu popover", id: "account-menu", hidden: true, role: "region", "aria-label": "Account" }, accountItems);
    this.accountWrap = h("div", { class: "account-wrap" }, this.accountButton, this.accountMenu);

    const header = h("header", { class: `topbar${this.seesQueue ? " topbar-staff" : ""}${this.isAdmin ? " topbar-admin" : ""}`, testid: "topbar" },
      h("div", { class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true", text: "M" }), h("span", { class: "brand-name", text: APP_TITLE })),
      nav,
      h("div", { class: "topbar-right" },
        h("span", { class: "conn-wrap" }, h("span", { class: "sr-only", text: "Connection:" }), this.connEl),
        this.bellWrap,
        this.accountWrap));

    this.banner = h("div", { class: "banner", role: "alert", hidden: true });

    // Conversations. The list's heading is the view's h1; on a phone with a conversation
    // open the list is hidden and its heading stays for screen readers.
    this.convList = h("ul", { class: "conv-list", "aria-label": "Conversations" });
    this.search = new SearchPanel({ h, session: this, errorText, timeLabel });
    this.convMoreButton = h("button", { type: "button", class: "btn btn-quiet more", hidden: true, text: "Show more", onclick: () => this.loadMoreConversations() });
    this.convEmpty = h("p", { class: "muted empty", hidden: true, text: "No conversations yet." });
    // Agents and admins filter the list by status; a client sees each status, read only.
    this.statusFilterSelect = this.isClient ? null : h("select", {
      id: "status-filter", testid: "status-filter",
      onchange: () => { this.statusFilter = this.statusFilterSelect.value; this.renderConversations(); },
    }, h("option", { value: "all", text: "All" }), CONV_STATUSES.map((st) => h("option", { value: st, text: statusLabel(st) })));
    const filterRow = this.statusFilterSelect
      ? h("div", { class: "list-filter" }, h("label", { for: "status-filter", text: "Status" }), this.statusFilterSelect)
      : null;
    this.pane = h("section", { class: "pane", "aria-label": "Conversation" });
    this.chatView = h("div", { class: "view view-chat" },
      h("aside", { class: "sidebar", "aria-labelledby": "conversations-title" },
        h("h1", { class: "sidebar-title", id: "conversations-title", text: "Conversations" }), this.search.root, filterRow, this.convList, this.convEmpty, this.convMoreButton),
      this.pane);
    this.showPanePlaceholder("Choose a conversation.");

    // Notifications page.
    this.notesGroups = h("div", { class: "notes-groups" });
    this.notesMoreButton = h("button", { type: "button", class: "btn btn-quiet more", hidden: true, text: "Load older notifications", onclick: () => this.loadNotificationsPage(true) });
    this.notesEmpty = h("p", { class: "muted empty", hidden: true, text: "No notifications." });
    this.notesView = h("section", { class: "view view-notes", testid: "notifications-page", hidden: true, "aria-labelledby": "notes-title" },
      h("div", { class: "notes-head" },
        h("h1", { id: "notes-title", text: "Notifications" }),
        h("button", { type: "button", class: "btn", testid: "mark-all-read", text: "Mark all read", onclick: () => this.markAllRead() })),
      this.notesGroups, this.notesEmpty, this.notesMoreButton);

    const views = [this.chatView, this.notesView];
    if (this.seesQueue) { this.queueView = this.buildQueueView(); views.push(this.queueView); }
    if (this.isAdmin) { this.adminView = this.buildAdminView(); views.push(this.adminView); }

    this.main = h("main", { id: "main", class: "main", tabindex: "-1" }, views);
    setView(h("div", { class: "shell" }, header, this.banner, this.main));
    this.renderBell();
    this.renderTitle();
    this.applyRoute(routeFromHash() || { view: this.view, channel: null });
  }

  show(view) {
    if (view === "admin" && !this.isAdmin) view = "chat";
    if (view === "queue" && !this.seesQueue) view = "chat";
    this.view = view;
    this.chatView.hidden = view !== "chat";
    this.notesView.hidden = view !== "notifications";
    if (this.queueView) this.queueView.hidden = view !== "queue";
    if (this.adminView) this.adminView.hidden = view !== "admin";
    for (const [name, el] of Object.entries(this.tabs)) {
      if (name === view) el.setAttribute("aria-current", "page"); else el.removeAttribute("aria-current");
    }
    if (this.tabs.chat) this.tabs.chat.setAttribute("href", hashFor("chat", this.conv?.channel));
    if (view === "notifications") this.loadNotificationsPage(false);
    if (view === "admin") this.startStats(); else this.stopStats();
    if (view === "queue") this.startQueueTicks(); else this.stopQueueTicks();
    if (view === "chat") this.maybeRead();
    this.syncHash();
    placeToasts();
  }

  /** Puts the view on screen into the address: a new history entry (back returns), or in
   *  place while a route from the address is being applied. */
  syncHash(replace = false) {
    if (this.disposed) return;
    const target = hashFor(this.view, this.view === "chat" ? this.conv?.channel : null);
    if (location.hash === target) return;
    const url = location.pathname + location.search + target;
    if (replace || this.routing) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }

  /** Shows what the address names (a reload, a link, back or forward). */
  applyRoute(route) {
    if (!route || this.disposed) return;
    this.routing = true;
    try {
      if (route.view === "chat" && route.channel) {
        this.openConversation(route.channel);
      } else {
        if (route.view === "chat" && this.conv) this.closeConversation();
        this.show(route.view);
      }
    } finally {
      this.routing = false;
    }
    this.syncHash(true);
  }

  setConnection(state, reason, code) {
    if (!this.connEl) {
      if (!this.startNote) return;
      if (state === "offline" && reason === "network") this.startNote.textContent = "Offline: waiting for the network…";
      else if (code !== undefined || state === "reconnecting") this.startNote.textContent = "Connecting… (the hub is not answering yet; retrying)";
      return;
    }
    const shown = state === "live" ? "live" : (state === "connecting" || state === "reconnecting") ? "reconnecting" : "offline";
    if (this.connEl.textContent !== shown) this.connEl.textContent = shown;
    this.connEl.dataset.state = shown;
    if (reason === "unauthorized") {
      this.banner.replaceChildren(
        h("span", { text: "Your session has ended (the token expired or was revoked). " }),
        h("button", { type: "button", class: "btn btn-small", text: "Sign in again", onclick: () => signOut() }));
      this.banner.hidden = false;
    } else if (shown === "live") {
      this.banner.hidden = true;
    }
    if (this.conv) this.conv.onConnection(shown === "live");
  }

  // ---- my status (agents and admins)

  setMyStatus(value) {
    const previous = sessionStorage.getItem(STATUS_KEY) || "available";
    sessionStorage.setItem(STATUS_KEY, value);
    this.showStatusDot(value);
    this.hub.status(value).then(
      () => toast(`Status: ${value}`),
      (e) => {
        if (this.disposed) return;
        sessionStorage.setItem(STATUS_KEY, previous);
        if (this.statusSelect) this.statusSelect.value = previous;
        this.showStatusDot(previous);
        toast(`Could not set the status: ${errorText(e)}`, "error");
      });
  }

  showStatusDot(value) {
    if (!this.accountButton || this.isClient) return;
    for (const s of AGENT_STATUSES) this.accountButton.classList.toggle(`status-${s}`, s === value);
  }

  applyStoredStatus() {
    if (this.isClient) return;
    const stored = sessionStorage.getItem(STATUS_KEY);
    if (stored && stored !== "available" && AGENT_STATUSES.includes(stored)) {
      this.hub.status(stored).catch(() => { /* shown as available until set again */ });
    }
  }

  // ---- conversations list

  async loadConversations(refresh) {
    let res;
    try {
      res = await this.hub.conversations({ limit: CONVERSATION_PAGE });
    } catch (e) {
      if (!this.disposed && !refresh) toast(`Could not load conversations: ${errorText(e)}`, "error");
      return;
    }
    if (this.disposed) return;
    const fresh = new Map();
    for (const c of res.conversations || []) fresh.set(c.channel, this.normalizeConv(c));
    // Conversations loaded with "Show more" stay until a full reload says otherwise.
    const gone = [...this.convs.keys()].filter((ch) => !fresh.has(ch));
    this.convs = fresh;
    this.convMore = !!res.more;
    for (const ch of gone) this.unfollow(ch);
    this.renderConversations();
    this.followAll();
    if (this.conv) this.conv.updateTitle();
    if (this.conv && !this.convs.has(this.conv.channel) && !this.isAdmin) {
      this.closeConversation("You no longer have access to this conversation.");
    }
  }

  async loadMoreConversations() {
    const oldest = [...this.convs.values()].map((c) => c.last_message?.ts).filter(Number.isFinite);
    if (!oldest.length) { this.convMore = false; this.renderConversations(); return; }
    try {
      const res = await this.hub.conversations({ limit: CONVERSATION_PAGE, before: Math.min(...oldest) });
      if (this.disposed) return;
      for (const c of res.conversations || []) if (!this.convs.has(c.channel)) this.convs.set(c.channel, this.normalizeConv(c));
      this.convMore = !!res.more;
      this.renderConversations();
      this.followAll();
    } catch (e) {
      if (!this.disposed) toast(`Could not load more conversations: ${errorText(e)}`, "error");
    }
  }

  normalizeConv(c) {
    if (c.last_message?.from) this.learn(c.last_message.from);
    if (c.last_message && Number.isFinite(c.last_message.seq)) this.remember({ ...c.last_message, channel: c.channel });
    // The hub names the client and the agents of each conversation (docs/protocol.md `conversations`).
    for (const [id, name] of Object.entries(c.names || {})) this.learn({ id, name });
    return {
      channel: c.channel,
      client: c.client || clientOf(c.channel),
      agents: Array.isArray(c.agents) ? c.agents : [],
      last_message: c.last_message || null,
      unread: Number(c.unread) || 0,
      status: CONV_STATUSES.includes(c.status) ? c.status : "open",
      status_by: c.status_by ?? null,
      status_at: c.status_at ?? null,
      unassigned: !!c.unassigned,
    };
  }

  /** Clients and agents follow every conversation of theirs live (badges, previews); an admin
   *  follows only the open one, since each admin subscribe is an audited read. */
  followAll() {
    if (this.isAdmin) return;
    for (const ch of this.convs.keys()) this.follow(ch).catch(() => { /* reported by follow */ });
  }

  follow(channel) {
    let p = this.subs.get(channel);
    if (p) return p;
    // hub.js emits any messages of the result as "message" events itself.
    p = this.hub.subscribe(channel).then((r) => {
      this.mergeReadMarks(channel, r?.read_marks);
      return r;
    }, (e) => {
      if (this.subs.get(channel) === p) this.subs.delete(channel);
      throw e;
    });
    this.subs.set(channel, p);
    return p;
  }

  unfollow(channel) {
    if (!this.subs.has(channel)) return;
    this.subs.delete(channel);
    this.hub.unsubscribe(channel).catch(() => { /* already gone (revoked or offline) */ });
  }

  mergeReadMarks(channel, marks) {
    if (!Array.isArray(marks)) return;
    let map = this.readMarks.get(channel);
    if (!map) { map = new Map(); this.readMarks.set(channel, map); }
    for (const m of marks) {
      if (!m || !m.user || m.user === this.myId) continue;
      map.set(m.user, Math.max(map.get(m.user) || 0, Number(m.seq) || 0));
    }
    if (this.conv?.channel === channel) this.conv.refreshTicks();
  }

  othersReadUpTo(channel) {
    const map = this.readMarks.get(channel);
    if (!map) return 0;
    let max = 0;
    for (const [user, seq] of map) if (user !== this.myId && seq > max) max = seq;
    return max;
  }

  convTitle(conv) {
    const service = serviceLabel(serviceOf(conv.channel));
    const agents = conv.agents.map((a) => this.nameOf(a)).join(", ");
    if (this.isClient) {
      return { title: service, sub: agents ? `with ${agents}` : "No agent assigned yet" };
    }
    if (this.isAdmin) {
      return { title: `${this.nameOf(conv.client)} · ${service}`, sub: agents ? `Agent: ${agents}` : "No agent assigned" };
    }
    return { title: this.nameOf(conv.client), sub: service };
  }

  sortedConvs() {
    return [...this.convs.values()].sort((a, b) => {
      const ta = a.last_message?.ts ?? -1, tb = b.last_message?.ts ?? -1;
      return ta !== tb ? tb - ta : (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0);
    });
  }

  /** Updates the list in place: an item keeps its element (and focus) while it exists. */
  renderConversations() {
    if (!this.convList) return;
    const focused = document.activeElement;
    const order = this.sortedConvs();
    const keep = new Set(order.map((c) => c.channel));
    for (const [channel, li] of this.convEls) {
      if (!keep.has(channel)) { li.remove(); this.convEls.delete(channel); }
    }
    let prev = null;
    for (const conv of order) {
      let li = this.convEls.get(conv.channel);
      if (!li) {
        li = h("li", {}, h("button", {
          type: "button", class: "conv", testid: "conversation", data: { channel: conv.channel },
          onclick: () => this.openConversation(conv.channel),
        }));
        this.convEls.set(conv.channel, li);
      }
      this.fillConvItem(li.firstElementChild, conv);
      li.hidden = !this.passesFilter(conv);
      const expected = prev ? prev.nextElementSibling : this.convList.firstElementChild;
      if (expected !== li) this.convList.insertBefore(li, expected);
      prev = li;
    }
    const visible = order.filter((c) => this.passesFilter(c)).length;
    this.convEmpty.textContent = order.length ? `No ${statusLabel(this.statusFilter).toLowerCase()} conversations.` : "No conversations yet.";
    this.convEmpty.hidden = visible > 0;
    this.convMoreButton.hidden = !this.convMore;
    this.renderTitle();
    if (focused && focused !== document.activeElement && this.convList.contains(focused)) focused.focus();
  }

  passesFilter(conv) {
    return this.statusFilter === "all" || conv.status === this.statusFilter;
  }

  fillConvItem(button, conv) {
    const { title, sub } = this.convTitle(conv);
    const last = conv.last_message;
    const sender = last ? (last.from?.id === this.myId ? "You" : (last.from?.name || this.nameOf(last.from?.id))) : "";
    const preview = last ? `${last.internal ? "Note · " : ""}${sender}: ${previewText(last)}` : "No messages yet";
    const open = this.conv?.channel === conv.channel;
    const badge = h("span", { class: "badge", testid: "unread-badge", hidden: conv.unread <= 0, text: conv.unread > 0 ? String(conv.unread) : "" });
    if (open) button.setAttribute("aria-current", "true"); else button.removeAttribute("aria-current");
    button.replaceChildren(
    h("span", { class: "conv-top" },
      h("span", { class: "conv-title", text: title }),
      last ? h("time", { class: "conv-time", datetime: new Date(last.ts).toISOString(), text: timeLabel(last.ts) }) : null),
    h("span", { class: "conv-sub" },
      statusChip(conv.status),
      conv.unassigned && !this.isClient ? h("span", { class: "chip chip-warn", testid: "conv-unassigned", text: "Unassigned" }) : null,
      h("span", { text: sub })),
    h("span", { class: "conv-bottom" },
      h("span", { class: "conv-preview", text: preview }),
      badge,
      conv.unread > 0 ? srOnly(`, ${conv.unread} unread`) : null));
  }

  updateConv(channel) {
    const conv = this.convs.get(channel);
    if (!conv || !this.convList) return;
    this.renderConversations();
  }

  // ---- live chat events

  onMessage(m) {
    if (!m || !m.channel || !Number.isFinite(m.seq)) return;
    if (m.from && this.learn(m.from)) this.renderConversations();
    const conv = this.convs.get(m.channel);
    const mine = m.from?.id === this.myId;
    const viewing = this.conv?.channel === m.channel && this.view === "chat" && isAttentive() && this.conv.ready;
    const isNew = !this.cache.get(m.channel)?.has(m.seq);
    this.remember(m);
    if (conv) {
      const lastSeq = conv.last_message?.seq ?? 0;
      if (m.seq > lastSeq) {
        conv.last_message = m;
        if (!mine && !viewing) conv.unread += 1;
        this.updateConv(m.channel);
      }
    }
    if (isNew && !mine && !viewing) this.desktopAlert(m);
    if (this.conv?.channel === m.channel) {
      this.conv.addMessage(m);
      this.maybeRead();
    }
  }

  /** Keeps the latest messages of each conversation seen in this session, to show when the
   *  hub cannot be reached. */
  remember(m) {
    if (!m || !m.channel || !Number.isFinite(m.seq)) return;
    let map = this.cache.get(m.channel);
    if (!map) { map = new Map(); this.cache.set(m.channel, map); }
    if (map.has(m.seq)) {
      // A later copy may carry an edit or a delete made since.
      if (isNewer(map.get(m.seq), m)) map.set(m.seq, m);
      return;
    }
    map.set(m.seq, m);
    if (map.size > CACHE_PER_CHANNEL) {
      const seqs = [...map.keys()].sort((a, b) => a - b);
      for (const seq of seqs.slice(0, map.size - CACHE_PER_CHANNEL)) map.delete(seq);
    }
  }

  /** An edit or a delete (a push, or my own op's answer): the saved copy, the list's preview
   *  and the open conversation show the message as it now is. */
  onMessageChange(c) {
    if (!c || !c.channel || !Number.isFinite(c.seq)) return;
    const saved = this.cache.get(c.channel)?.get(c.seq);
    if (saved) applyChange(saved, c);
    const conv = this.convs.get(c.channel);
    if (conv?.last_message && conv.last_message.seq === c.seq) {
      applyChange(conv.last_message, c);
      this.updateConv(c.channel);
    }
    if (this.conv?.channel === c.channel) this.conv.applyChange(c);
  }

  cached(channel) {
    const map = this.cache.get(channel);
    return map ? [...map.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  /** Unread messages in conversations plus unread notifications, counting a conversation's
   *  message notification once (it is read with the conversation). */
  unreadTotal() {
    let messages = 0;
    for (const c of this.convs.values()) messages += c.unread || 0;
    let counted = 0; // message notifications of conversations whose messages are counted already
    for (const n of this.notes.values()) {
      const channel = n.data && typeof n.data === "object" ? n.data.channel : null;
      if (!n.read && n.category === "messages" && channel && this.convs.get(channel)?.unread > 0) counted += 1;
    }
    return messages + Math.max(0, (this.unread.total || 0) - counted);
  }

  /** "(3) Montrose Hub": the tab shows there is something to read. */
  renderTitle() {
    if (this.disposed) return;
    const total = this.unreadTotal();
    const title = total > 0 ? `(${total}) ${APP_TITLE}` : APP_TITLE;
    if (document.title !== title) document.title = title;
  }

  // ---- desktop alerts (opt-in: the browser's permission is asked only when the user turns them on)

  desktopAlertsOn() {
    return localStorage.getItem(ALERTS_KEY) === "1" && typeof window.Notification === "function" && window.Notification.permission === "granted";
  }

  async setDesktopAlerts(on) {
    const N = window.Notification;
    if (!on || typeof N !== "function") {
      localStorage.removeItem(ALERTS_KEY);
      if (this.alertsNote) this.alertsNote.textContent = "";
      return;
    }
    let permission = N.permission;
    if (permission !== "granted") {
      try { permission = await N.requestPermission(); } catch { permission = "denied"; }
    }
    if (this.disposed) return;
    if (permission === "granted") {
      localStorage.setItem(ALERTS_KEY, "1");
      if (this.alertsNote) this.alertsNote.textContent = "On: you will get an alert for new messages.";
    } else {
      localStorage.removeItem(ALERTS_KEY);
      if (this.alertsBox) this.alertsBox.checked = false;
      if (this.alertsNote) this.alertsNote.textContent = "The browser blocked notifications for this site; allow them in its site settings to turn alerts on.";
    }
  }

  desktopAlert(m) {
    if (!this.desktopAlertsOn()) return;
    const conv = this.convs.get(m.channel);
    const where = conv ? this.convTitle(conv).title : serviceLabel(serviceOf(m.channel));
    const from = m.from?.name || this.nameOf(m.from?.id) || "Someone";
    try {
      const n = new window.Notification(`${from} · ${where}`, { body: previewText(m).slice(0, 200), tag: m.channel });
      n.onclick = () => {
        window.focus();
        if (!this.disposed) this.openConversation(m.channel);
        n.close();
      };
    } catch { /* some browsers allow notifications only from a service worker */ }
  }

  onRead(r) {
    if (!r || !r.channel) return;
    if (r.user === this.myId) {
      // Read from another tab or device of mine.
      const conv = this.convs.get(r.channel);
      if (conv && (conv.last_message?.seq ?? 0) <= r.seq && conv.unread) { conv.unread = 0; this.updateConv(r.channel); }
      return;
    }
    this.mergeReadMarks(r.channel, [{ user: r.user, seq: r.seq }]);
  }

  onRevoked(channel) {
    if (!channel) return;
    const wasOpen = this.conv?.channel === channel;
    this.convs.delete(channel);
    this.subs.delete(channel);
    this.hub.unsubscribe(channel).catch(() => { /* the hub already ended it */ });
    this.renderConversations();
    if (wasOpen) this.closeConversation("This conversation was closed: you are no longer assigned to it.");
    else toast("A conversation was reassigned and removed from your list.");
  }

  /** Marks the open conversation read up to its latest message, when someone is looking. */
  maybeRead() {
    const view = this.conv;
    if (!view || !view.ready || view.closed || this.view !== "chat" || !isAttentive()) return;
    const seq = view.maxSeq();
    const conv = this.convs.get(view.channel);
    if (conv && conv.unread) { conv.unread = 0; this.updateConv(view.channel); }
    if (!seq || seq <= (this.readSent.get(view.channel) || 0)) return;
    this.readSent.set(view.channel, seq);
    this.hub.read(view.channel, seq).catch(() => {
      if (this.readSent.get(view.channel) === seq) this.readSent.delete(view.channel);
    });
  }

  onFocus() {
    this.maybeRead();
  }

  // ---- a conversation

  openConversation(channel) {
    if (this.conv?.channel === channel && !this.conv.closed) {
      this.chatView.classList.add("has-open");
      this.show("chat");
      this.conv.focusComposer();
      return;
    }
    if (this.conv) this.conv.close();
    this.conv = new ConversationView(this, channel);
    this.pane.replaceChildren(this.conv.root);
    this.chatView.classList.add("has-open");
    this.show("chat");
    this.renderConversations();
    this.conv.load();
  }

  closeConversation(notice = "") {
    if (this.conv) this.conv.close();
    this.conv = null;
    this.chatView.classList.remove("has-open");
    this.showPanePlaceholder(notice || "Choose a conversation.", !!notice);
    this.renderConversations();
    if (this.tabs?.chat) this.tabs.chat.setAttribute("href", hashFor("chat"));
    if (this.view === "chat") this.syncHash();
    placeToasts();
    if (notice) toast(notice);
  }

  backToList() {
    const channel = this.conv?.channel;
    this.closeConversation();
    const item = channel && this.convList.querySelector(`[data-channel="${CSS.escape(channel)}"]`);
    if (item) item.focus();
  }

  /** Opens a conversation scrolled to one of its messages, highlighted (a search result). */
  openConversationAt(channel, seq) {
    this.openConversation(channel);
    if (this.conv?.channel === channel) this.conv.reveal(seq);
  }

  showPanePlaceholder(text, isNotice = false) {
    this.pane.replaceChildren(h("div", { class: "pane-empty" }, h("p", { class: isNotice ? "notice" : "muted", role: isNotice ? "alert" : null, text })));
  }

  /** internal: an internal note (agents and admins), which the client never sees;
   *  attachments: references to files on the platform's file store. */
  sendMessage(channel, text, internal = false, attachments = []) {
    const key = ++this.sendCounter;
    const local = { key, channel, text, internal: !!internal, attachments: attachments.length ? attachments : null, cmid: null, error: null };
    let before = null;
    try { before = new Set((this.hub.pending(channel) || []).map((p) => p.client_msg_id)); } catch { before = null; }
    const options = {};
    if (local.internal) options.internal = true;
    if (local.attachments) options.attachments = local.attachments;
    let promise;
    try { promise = Promise.resolve(this.hub.send(channel, text, options)); } catch (e) { promise = Promise.reject(e); }
    if (before) {
      try {
        const added = (this.hub.pending(channel) || []).find((p) => !before.has(p.client_msg_id) && p.text === text);
        if (added) local.cmid = added.client_msg_id;
      } catch { /* the id shows once the message is stored */ }
    }
    this.pendingSends.set(key, local);
    if (this.conv?.channel === channel) this.conv.showPending(local);
    promise.then((r) => {
      if (this.disposed) return;
      this.pendingSends.delete(key);
      const m = {
        channel, seq: r.seq, msg_id: r.msg_id, ts: r.ts, text, client_msg_id: local.cmid,
        from: { id: this.myId, role: this.me.role, name: this.me.name },
      };
      if (local.internal) m.internal = true;
      if (local.attachments) m.attachments = local.attachments;
      if (this.conv?.channel === channel) this.conv.confirm(local, m);
      this.onMessage(m);
    }, (e) => {
      if (this.disposed) return;
      local.error = e || new Error("not sent");
      if (this.conv?.channel === channel) this.conv.showPending(local);
    });
  }

  retrySend(local) {
    this.pendingSends.delete(local.key);
    if (this.conv) this.conv.dropPending(local.key);
    this.sendMessage(local.channel, local.text, local.internal, local.attachments || []);
  }

  discardSend(local) {
    this.pendingSends.delete(local.key);
    if (this.conv) this.conv.dropPending(local.key);
  }

  // ---- the support desk: status, queue, claim, assign (docs/protocol.md "Support desk")

  /** A `conversation` push: a conversation's status changed. */
  onConversationStatus(c) {
    if (!c || !c.channel || !CONV_STATUSES.includes(c.status)) return;
    const conv = this.convs.get(c.channel);
    if (conv) {
      Object.assign(conv, { status: c.status, status_by: c.status_by ?? null, status_at: c.status_at ?? null });
      if (c.status === "resolved") conv.unassigned = false;
      this.updateConv(c.channel);
    } else if (this.isAdmin) {
      this.loadConversations(true);
    }
    if (this.conv?.channel === c.channel) this.conv.renderDesk(c);
  }

  async setConversationStatus(channel, status) {
    const res = await this.hub.setStatus(channel, status);
    if (this.disposed) return res;
    this.onConversationStatus({ channel, ...res, status: res?.status || status });
    return res;
  }

  async loadQueue() {
    let res;
    try {
      res = await this.hub.conversations({ queue: true, limit: QUEUE_PAGE });
    } catch (e) {
      if (!this.disposed) toast(`Could not load the queue: ${errorText(e)}`, "error");
      return;
    }
    if (this.disposed) return;
    this.queue.clear();
    for (const c of res.conversations || []) {
      for (const [id, name] of Object.entries(c.names || {})) this.learn({ id, name });
      if (c.last_message?.from) this.learn(c.last_message.from);
      this.queue.set(c.channel, { channel: c.channel, client: c.client || clientOf(c.channel), service: serviceOf(c.channel), last_message: c.last_message || null });
    }
    this.renderQueue();
  }

  /** A `queue` push: a conversation entered the queue or left it (claimed, assigned). */
  onQueue(q) {
    if (!q || !q.channel) return;
    if (q.last_message?.from) this.learn(q.last_message.from);
    const known = this.queue.has(q.channel);
    if (q.unassigned) {
      this.queue.set(q.channel, { channel: q.channel, client: q.client || clientOf(q.channel), service: q.service || serviceOf(q.channel), last_message: q.last_message || null });
      if (!known) toast(`Waiting in the queue: ${this.nameOf(q.client || clientOf(q.channel))} · ${serviceLabel(q.service || serviceOf(q.channel))}`);
    } else {
      this.queue.delete(q.channel);
    }
    const conv = this.convs.get(q.channel);
    if (conv) { conv.unassigned = !!q.unassigned; this.updateConv(q.channel); }
    // An admin gets no `assignment` push: the list's agents come from a reload.
    if (this.isAdmin) this.loadConversations(true);
    this.renderQueue();
    if (this.conv?.channel === q.channel) this.conv.renderDesk();
  }

  buildQueueView() {
    this.queueList = h("ul", { class: "queue-list", "aria-labelledby": "queue-title" });
    this.queueNotice = h("p", { class: "notice", testid: "queue-notice", role: "status", hidden: true });
    this.queueEmpty = h("p", { class: "muted empty", text: "Nobody is waiting. A client's conversation that has no agent appears here." });
    const about = this.isAdmin
      ? "Conversations of every service whose client wrote and no agent serves. Open one to assign it to an agent."
      : "Conversations whose client wrote and no agent serves, for the services your role may serve. Claim one to answer it.";
    return h("section", { class: "view view-queue", testid: "queue-page", hidden: true, "aria-labelledby": "queue-title" },
      h("div", { class: "notes-head" }, h("h1", { id: "queue-title", text: "Queue" })),
      h("p", { class: "muted queue-about", text: about }),
      this.queueNotice, this.queueList, this.queueEmpty);
  }

  renderQueue() {
    if (!this.queueList || this.disposed) return;
    const n = this.queue.size;
    this.queueCount.textContent = String(n);
    this.queueCount.hidden = n === 0;
    this.tabs.queue.setAttribute("aria-label", n ? `Queue, ${n} waiting` : "Queue, nobody waiting");
    // Oldest wait first, as the hub lists them.
    const items = [...this.queue.values()].sort((a, b) => (a.last_message?.ts ?? 0) - (b.last_message?.ts ?? 0));
    const focusedChannel = this.queueList.contains(document.activeElement) ? document.activeElement.closest("[data-channel]")?.dataset.channel : null;
    this.queueList.replaceChildren(...items.map((item) => this.renderQueueItem(item)));
    this.queueEmpty.hidden = n > 0;
    if (focusedChannel) {
      const again = this.queueList.querySelector(`[data-channel="${CSS.escape(focusedChannel)}"] button`);
      const heading = again ? null : this.queueView.querySelector("h1");
      if (heading) heading.setAttribute("tabindex", "-1");
      (again || heading)?.focus();
    }
    this.renderTitle();
  }

  renderQueueItem(item) {
    const client = this.nameOf(item.client);
    const service = serviceLabel(item.service);
    const last = item.last_message;
    const headingId = `queue-${item.channel.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const action = this.isAgent
      ? h("button", {
        type: "button", class: "btn btn-primary", testid: "queue-claim", "aria-describedby": headingId,
        text: "Claim", onclick: (e) => this.claim(item.channel, e.currentTarget),
      })
      : h("button", {
        type: "button", class: "btn", testid: "queue-open", "aria-describedby": headingId,
        text: "Open to assign", onclick: () => this.openConversation(item.channel),
      });
    return h("li", { class: "queue-item card", testid: "queue-item", data: { channel: item.channel } },
      h("div", { class: "queue-top" },
        h("h2", { class: "queue-client", id: headingId }, client, srOnly(`, ${service}`)),
        h("span", { class: "chip", "aria-hidden": "true", text: service }),
        last ? h("span", { class: "queue-wait muted", testid: "queue-wait" }, "waiting ",
          h("time", { datetime: new Date(last.ts).toISOString(), text: waitedLabel(last.ts) })) : null),
      h("p", { class: "queue-last", testid: "queue-last" },
        last ? `${last.from?.name || this.nameOf(last.from?.id)}: ${previewText(last)}` : "No message shown"),
      h("div", { class: "row" }, action));
  }

  startQueueTicks() {
    if (this.queueTimer || this.disposed) return;
    const tick = () => {
      if (this.view !== "queue") { this.queueTimer = null; return; }
      this.renderQueue();
      this.queueTimer = this.later(tick, QUEUE_TICK_MS);
    };
    this.renderQueue();
    this.queueTimer = this.later(tick, QUEUE_TICK_MS);
  }

  stopQueueTicks() {
    if (this.queueTimer) this.cancel(this.queueTimer);
    this.queueTimer = null;
  }

  showQueueNotice(text) {
    if (!this.queueNotice) return;
    this.queueNotice.textContent = text;
    this.queueNotice.hidden = !text;
  }

  /** An agent takes a queued conversation; if another agent was first, says who and drops
   *  the item. */
  async claim(channel, button) {
    if (button) button.disabled = true;
    const item = this.queue.get(channel);
    const what = `${this.nameOf(item?.client || clientOf(channel))} · ${serviceLabel(serviceOf(channel))}`;
    try {
      await this.hub.claim(channel);
    } catch (e) {
      if (this.disposed) return;
      if (button) button.disabled = false;
      if (e?.code === "conflict") {
        // The hub's message starts with the holder's id: "<agent> serves <channel> already".
        const holder = /^(\S+) serves /.exec(String(e.message || ""))?.[1];
        const text = `${holder ? this.nameOf(holder) : "Another agent"} took it first: ${what} is no longer in the queue.`;
        this.queue.delete(channel);
        this.renderQueue();
        this.showQueueNotice(text);
        toast(text, "error");
      } else if (e?.code === "forbidden") {
        toast(`You cannot take ${what}: ${e.message || "your role does not serve this service"}.`, "error");
      } else {
        toast(`Could not claim ${what}: ${errorText(e)}`, "error");
      }
      return;
    }
    if (this.disposed) return;
    this.queue.delete(channel);
    this.renderQueue();
    this.showQueueNotice("");
    toast(`You took ${what}.`);
    await this.loadConversations(true);
    if (!this.disposed) this.openConversation(channel);
  }

  /** An admin gives the conversation to an agent, or moves it to another. */
  async assign(channel, agentId) {
    const res = await this.hub.assign(channel, agentId);
    if (this.disposed) return res;
    this.queue.delete(channel);
    this.renderQueue();
    await this.loadConversations(true);
    return res;
  }

  // ---- notifications

  async loadNotifications() {
    try {
      const res = await this.hub.notifications({ limit: 20 });
      if (this.disposed) return;
      this.mergeNotes(res.items, true);
      this.setUnread(res.unread);
      if (!this.notesPageLoaded) this.notesMore = !!res.more;
      if (this.view === "notifications") { this.notesPageLoaded = false; this.loadNotificationsPage(false); }
    } catch (e) {
      if (!this.disposed) toast(`Could not load notifications: ${errorText(e)}`, "error");
    }
  }

  async loadNotificationsPage(older) {
    if (this.notesLoading) return;
    if (!older && this.notesPageLoaded) { this.renderNotes(); return; }
    this.notesLoading = true;
    try {
      const params = { limit: 50 };
      if (older) {
        const ids = [...this.notes.keys()];
        if (ids.length) params.before = Math.min(...ids);
      }
      const res = await this.hub.notifications(params);
      if (this.disposed) return;
      this.mergeNotes(res.items, !older);
      this.setUnread(res.unread);
      this.notesMore = !!res.more;
      this.notesPageLoaded = true;
      this.renderNotes();
    } catch (e) {
      if (!this.disposed) toast(`Could not load notifications: ${errorText(e)}`, "error");
    } finally {
      this.notesLoading = false;
    }
  }

  mergeNotes(items, authoritative) {
    for (const n of items || []) {
      if (!n || !Number.isFinite(n.id)) continue;
      const prev = this.notes.get(n.id);
      if (!authoritative && prev && prev.ts > n.ts) continue;
      this.notes.set(n.id, { ...n });
    }
    this.renderBell();
    this.renderNotes();
  }

  onNotification(n) {
    if (!n || !Number.isFinite(n.id)) return;
    this.notes.set(n.id, { ...n });
    this.renderBell();
    this.renderNotes();
  }

  onBroadcast(b) {
    if (!b || !Number.isFinite(b.id)) return;
    const known = this.notes.has(b.id);
    this.notes.set(b.id, { ...b, service: "platform", category: "updates", broadcast: true, read: known ? this.notes.get(b.id).read : false });
    if (!known) {
      // No unread push follows a broadcast: count it ourselves.
      const by = { ...(this.unread.by_service || {}) };
      by.platform = (by.platform || 0) + 1;
      this.setUnread({ total: (this.unread.total || 0) + 1, by_service: by });
      toast(`Announcement: ${b.title || ""}`);
    }
    this.renderBell();
    this.renderNotes();
  }

  setUnread(u) {
    if (!u || !Number.isFinite(Number(u.total))) return;
    this.unread = { total: Number(u.total), by_service: u.by_service || {} };
    if (this.unread.total === 0) {
      let changed = false;
      for (const n of this.notes.values()) if (!n.read) { n.read = true; changed = true; }
      if (changed) { this.renderBell(); this.renderNotes(); }
    }
    this.renderBellCount();
  }

  renderBellCount() {
    if (!this.bellCount) return;
    const total = this.unread.total || 0;
    this.bellCount.textContent = String(total);
    this.bellCount.classList.toggle("zero", total === 0);
    this.bellButton.setAttribute("aria-label", `Notifications, ${total} unread`);
    if (this.notesTabCount) {
      this.notesTabCount.textContent = total ? String(total) : "";
      this.notesTabCount.hidden = !total;
      this.tabs.notifications.setAttribute("aria-label", total ? `Notifications, ${total} unread` : "Notifications");
    }
    this.renderTitle();
  }

  sortedNotes() {
    return [...this.notes.values()].sort((a, b) => (b.ts - a.ts) || (b.id - a.id));
  }

  renderBell() {
    if (!this.bellList) return;
    this.renderBellCount();
    const latest = this.sortedNotes().slice(0, BELL_ITEMS);
    if (!latest.length) {
      this.bellList.replaceChildren(h("li", { class: "muted bell-empty", text: "No notifications yet." }));
      return;
    }
    this.bellList.replaceChildren(...latest.map((n) => h("li", {},
      h("button", {
        type: "button", class: `bell-item${n.read ? "" : " unread"}`, testid: "bell-item", data: { id: n.id, read: String(!!n.read) },
        onclick: () => this.activateNote(n),
      },
      h("span", { class: "bell-item-top" },
        h("span", { class: "chip", text: serviceLabel(n.service) }),
        h("time", { class: "muted", text: timeLabel(n.ts) })),
      h("span", { class: "bell-item-title", text: n.title || "" }),
      n.body ? h("span", { class: "bell-item-body", text: n.body }) : null,
      n.read ? null : srOnly(" (unread)")))));
  }

  toggleBell() {
    if (this.bellMenu.hidden) this.openBell(); else this.closeBell();
  }

  openBell() {
    this.closeAccount();
    this.bellMenu.hidden = false;
    this.bellButton.setAttribute("aria-expanded", "true");
    this.renderBell();
  }

  toggleAccount() {
    if (this.accountMenu.hidden) {
      this.closeBell();
      this.accountMenu.hidden = false;
      this.accountButton.setAttribute("aria-expanded", "true");
    } else {
      this.closeAccount();
    }
  }

  closeAccount(focusButton = false) {
    if (!this.accountMenu || this.accountMenu.hidden) return;
    this.accountMenu.hidden = true;
    this.accountButton.setAttribute("aria-expanded", "false");
    if (focusButton) this.accountButton.focus();
  }

  closeBell(focusButton = false) {
    if (!this.bellMenu || this.bellMenu.hidden) return;
    this.bellMenu.hidden = true;
    this.bellButton.setAttribute("aria-expanded", "false");
    if (focusButton) this.bellButton.focus();
  }

  activateNote(n) {
    this.closeBell();
    if (!n.read) this.markRead([n.id]);
    const channel = n.data && typeof n.data === "object" ? n.data.channel : null;
    if (channel && this.convs.has(channel)) this.openConversation(channel);
    else if (this.view !== "notifications") this.show("notifications");
  }

  async markRead(ids) {
    for (const id of ids) { const n = this.notes.get(id); if (n) n.read = true; }
    this.renderBell();
    this.renderNotes();
    try {
      const res = await this.hub.markRead({ ids });
      if (!this.disposed) this.setUnread(res?.unread);
    } catch (e) {
      if (this.disposed) return;
      for (const id of ids) { const n = this.notes.get(id); if (n) n.read = false; }
      this.renderBell();
      this.renderNotes();
      toast(`Could not mark as read: ${errorText(e)}`, "error");
    }
  }

  async markAllRead() {
    const before = new Map([...this.notes].map(([id, n]) => [id, n.read]));
    for (const n of this.notes.values()) n.read = true;
    this.renderBell();
    this.renderNotes();
    try {
      const res = await this.hub.markRead({ all: true });
      if (!this.disposed) this.setUnread(res?.unread);
    } catch (e) {
      if (this.disposed) return;
      for (const [id, read] of before) { const n = this.notes.get(id); if (n) n.read = read; }
      this.renderBell();
      this.renderNotes();
      toast(`Could not mark all as read: ${errorText(e)}`, "error");
    }
  }

  renderNotes() {
    if (!this.notesGroups || !this.notesPageLoaded) return;
    const days = new Map(); // day key → {label, services: Map(service → items)}
    for (const n of this.sortedNotes()) {
      const key = dayKey(n.ts);
      let day = days.get(key);
      if (!day) { day = { label: dayLabel(n.ts), services: new Map() }; days.set(key, day); }
      const service = n.service || "platform";
      if (!day.services.has(service)) day.services.set(service, []);
      day.services.get(service).push(n);
    }
    const sections = [];
    for (const [key, day] of days) {
      const headingId = `day-${key}`;
      const section = h("section", { class: "notes-day", "aria-labelledby": headingId }, h("h2", { id: headingId, text: day.label }));
      for (const [service, items] of day.services) {
        section.append(h("div", { class: "notes-service" },
          h("h3", { text: serviceLabel(service) }),
          h("ul", { class: "notes-list" }, items.map((n) => this.renderNote(n)))));
      }
      sections.push(section);
    }
    this.notesGroups.replaceChildren(...sections);
    this.notesEmpty.hidden = sections.length > 0;
    this.notesMoreButton.hidden = !this.notesMore;
  }

  /** One notification on the page: the whole item opens it, as in the bell (a conversation's
   *  notification opens the conversation; any other is marked read). */
  renderNote(n) {
    const channel = n.data && typeof n.data === "object" ? n.data.channel : null;
    const opens = channel && this.convs.has(channel);
    const what = opens ? "Open the conversation" : (n.read ? "" : "Mark as read");
    const open = h("button", {
      type: "button", class: "note-open", testid: "notification-open", data: { id: n.id },
      title: what || null, onclick: () => this.activateNote(n),
    },
    h("span", { class: "note-top" },
      h("span", { class: "chip", text: CATEGORY_LABELS[n.category] || n.category || "" }),
      n.broadcast ? h("span", { class: "chip chip-quiet", text: "Announcement" }) : null,
      h("time", { class: "muted", datetime: Number.isFinite(n.ts) ? new Date(n.ts).toISOString() : null, text: timeLabel(n.ts) })),
    h("span", { class: "note-title", text: n.title || "(no title)" }),
    n.body ? h("span", { class: "note-body", text: n.body }) : null,
    opens ? h("span", { class: "note-go", "aria-hidden": "true", text: "Open conversation ›" }) : null,
    n.read ? null : srOnly(" (unread)"));
    return h("li", { class: `note${n.read ? "" : " unread"}`, testid: "notification", data: { id: n.id, read: String(!!n.read) } },
      open,
      n.read
        ? h("span", { class: "note-state muted", text: "Read" })
        : h("button", { type: "button", class: "btn btn-small", text: "Mark read", "aria-label": `Mark “${n.title || "notification"}” as read`, onclick: () => this.markRead([n.id]) }));
  }

  // ---- admin

  buildAdminView() {
    const title = h("input", { id: "broadcast-title", testid: "broadcast-title", type: "text", required: true, maxlength: "200", autocomplete: "off" });
    const body = h("textarea", { id: "broadcast-body", testid: "broadcast-body", rows: "3", maxlength: "2000" });
    const audience = h("select", { id: "broadcast-audience", testid: "broadcast-audience" },
      BROADCAST_AUDIENCES.map(([value, label]) => h("option", { value, text: label })));
    const send = h("button", { type: "submit", class: "btn btn-primary", testid: "broadcast-send", text: "Send broadcast…" });
    const result = h("p", { class: "form-status", role: "status", "aria-live": "polite", testid: "broadcast-result" });
    // The confirmation step: nothing goes out before "Send to …" here.
    const question = h("p", { class: "confirm-question", id: "broadcast-question", tabindex: "-1" });
    const confirmSend = h("button", { type: "button", class: "btn btn-primary", testid: "broadcast-confirm-send" });
    const cancel = h("button", { type: "button", class: "btn", testid: "broadcast-cancel", text: "Cancel" });
    const confirm = h("div", { class: "confirm", testid: "broadcast-confirm", hidden: true, role: "group", "aria-labelledby": "broadcast-question" },
      question, h("div", { class: "row" }, confirmSend, cancel));
    const sendRow = h("div", { class: "row" }, send);
    const form = h("form", { class: "card broadcast-form", "aria-labelledby": "broadcast-heading" },
      h("h2", { id: "broadcast-heading", text: "Broadcast" }),
      h("div", { class: "field" }, h("label", { for: "broadcast-title", text: "Title" }), title),
      h("div", { class: "field" }, h("label", { for: "broadcast-body", text: "Message (optional)" }), body),
      h("div", { class: "field" }, h("label", { for: "broadcast-audience", text: "Audience" }), audience),
      sendRow, confirm, result);
    let params = null;
    const editing = (on) => {
      for (const el of [title, body, audience]) el.disabled = !on;
      sendRow.hidden = !on;
      confirm.hidden = on;
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const t = title.value.trim();
      if (!t) { result.textContent = "A title is needed."; title.focus(); return; }
      params = { audience: audience.value, title: t };
      if (body.value.trim()) params.body = body.value.trim();
      const [, label, who] = BROADCAST_AUDIENCES.find(([v]) => v === params.audience) || [params.audience, params.audience, params.audience];
      question.replaceChildren("Send “", h("strong", { text: t }), `” to ${who}? It goes out at once and cannot be taken back.`);
      confirmSend.textContent = params.audience === "all" ? "Send to everyone" : `Send to ${label.toLowerCase()}`;
      result.textContent = "";
      editing(false);
      question.focus();
    });
    cancel.addEventListener("click", () => {
      params = null;
      editing(true);
      result.textContent = "Not sent.";
      send.focus();
    });
    confirmSend.addEventListener("click", async () => {
      if (!params) return;
      const p = params;
      params = null;
      confirmSend.disabled = cancel.disabled = true;
      result.textContent = "Sending…";
      try {
        const r = await this.hub.request("admin.broadcast", p);
        if (this.disposed) return;
        result.textContent = `Sent (announcement #${r?.id}); delivered live to ${r?.delivered_live ?? 0} user(s) online.`;
        title.value = "";
        body.value = "";
      } catch (err) {
        if (!this.disposed) result.textContent = `Not sent: ${errorText(err)}`;
      } finally {
        confirmSend.disabled = cancel.disabled = false;
        editing(true);
        title.focus();
      }
    });

    this.statsList = h("ul", { class: "stats-list" });
    this.statsNote = h("p", { class: "muted small", text: "Updated every 5 seconds while this page is shown." });
    const stats = h("section", { class: "card stats", testid: "stats", "aria-labelledby": "stats-heading" },
      h("h2", { id: "stats-heading", text: "Live stats" }), this.statsList, this.statsNote);
    this.report = new SupportReportCard({
      h, request: (op, params) => this.hub.request(op, params), serviceLabel, userName: (id) => this.nameOf(id) });
    return h("section", { class: "view view-admin", hidden: true, "aria-labelledby": "admin-title" },
      h("h1", { class: "view-title", id: "admin-title", text: "Admin" }), h("div", { class: "admin-grid" }, form, stats),
      this.report.element);
  }

  startStats() {
    if (this.statsTimer !== null || this.disposed) return;
    this.report?.load(); // once per visit to the view: a report is not a live figure
    this.statsTimer = 0;
    const tick = async () => {
      if (this.disposed || this.view !== "admin") { this.statsTimer = null; return; }
      try {
        const s = await this.hub.request("admin.stats", {});
        if (!this.disposed) this.renderStats(s);
      } catch (e) {
        if (!this.disposed) this.statsNote.textContent = `Stats unavailable: ${errorText(e)}`;
      }
      if (this.disposed || this.view !== "admin" || this.statsTimer === null) { this.statsTimer = null; return; }
      this.statsTimer = this.later(tick, STATS_POLL_MS);
    };
    tick();
  }

  stopStats() {
    if (this.statsTimer) this.cancel(this.statsTimer);
    this.statsTimer = null;
  }

  renderStats(s) {
    if (!s) return;
    // [key, label, value, hint]
    const rows = [
      ["connections", "Connections", s.connections, "Every open connection to the hub: HTTP requests (the public port and the backend bridge) and WebSockets, this console's included."],
      ["websockets", "WebSockets", s.websockets, "Upgraded connections only (browsers and apps signed in or signing in)."],
      ["users_online", "Users online", s.users_online, null],
      ["agents_online", "Agents online", s.agents_online, null],
    ];
    for (const [role, n] of Object.entries(s.online_by_role || {})) rows.push([`online_${role}`, `Online: ${roleLabel(role)}`, n, null]);
    rows.push(
      ["messages_total", "Messages in store", s.messages_total, "All chat messages the hub holds."],
      ["notifications_total", "Notifications in store", s.notifications_total, "All notifications the hub holds."],
      ["messages_stored", "Messages since hub start", s.messages_stored, "Stored by this hub process since it started."],
      ["notifications_stored", "Notifications since hub start", s.notifications_stored, "Stored by this hub process since it started."]);
    // Updated in place: the items stay (and a screen reader's place in them) from poll to poll.
    if (!this.statEls) this.statEls = new Map();
    const keep = new Set(rows.map(([key]) => key));
    for (const [key, li] of this.statEls) if (!keep.has(key)) { li.remove(); this.statEls.delete(key); }
    let prev = null;
    for (const [key, label, value, hint] of rows) {
      let li = this.statEls.get(key);
      if (!li) {
        li = h("li", { class: "stat", testid: "stat", data: { key } },
          h("span", { class: "stat-label", text: label }),
          h("span", { class: "stat-value", testid: "stat-value" }),
          hint ? h("span", { class: "stat-hint", text: hint }) : null);
        this.statEls.set(key, li);
      }
      const text = Number.isFinite(value) ? String(value) : "—";
      const valueEl = li.querySelector(".stat-value");
      if (valueEl.textContent !== text) valueEl.textContent = text;
      const expected = prev ? prev.nextElementSibling : this.statsList.firstElementChild;
      if (expected !== li) this.statsList.insertBefore(li, expected);
      prev = li;
    }
    this.statsNote.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 seconds while shown.`;
  }

  scheduleAdminRefresh() {
    // An admin does not follow every conversation live: refresh the list now and then.
    this.later(() => {
      if (this.view === "chat" && document.visibilityState === "visible") this.loadConversations(true);
      this.scheduleAdminRefresh();
    }, ADMIN_LIST_REFRESH_MS);
  }
}

// ---------------------------------------------------------------- one open conversation

class ConversationView {
  constructor(session, channel) {
    this.s = session;
    this.channel = channel;
    this.closed = false;
    this.ready = false;
    this.more = false;
    this.loadingOlder = false;
    this.els = new Map(); // seq → <li>
    this.msgs = new Map(); // seq → message
    this.pendingEls = new Map(); // local key → <li>
    this.online = new Map(); // user id → {id, role, name, status}
    this.typers = new Map(); // user id → {name, timer}
    this.lastTypingSent = 0;
    this.noteMode = false; // the composer writes an internal note (agents and admins)
    this.loaded = new Promise((resolve) => { this.markLoaded = resolve; }); // settles once the first page is on screen
    this.build();
  }

  updateTitle() {
    const conv = this.s.convs.get(this.channel);
    const { title, sub } = conv ? this.s.convTitle(conv) : { title: this.channel, sub: "" };
    this.titleEl.textContent = title;
    this.subEl.textContent = sub;
    this.renderObserverNote();
    this.renderDesk();
  }

  // ---- the support desk in the header: the status, and for an admin Assign/Transfer

  /** Whether I may set this conversation's status: its assigned agent, or an admin. */
  maySetStatus() {
    if (this.s.isAdmin) return true;
    const conv = this.s.convs.get(this.channel);
    return this.s.isAgent && !!conv && conv.agents.includes(this.s.myId);
  }

  buildDesk() {
    // A client sees the status (read only); the control is for its agent and admins.
    if (!this.s.isClient) {
      this.statusSelect = h("select", {
        id: "conv-status-select", testid: "conv-status-select",
        onchange: () => this.changeStatus(this.statusSelect.value),
      }, CONV_STATUSES.map((st) => h("option", { value: st, text: statusLabel(st) })));
      this.statusField = h("div", { class: "desk-field" }, h("label", { for: "conv-status-select", text: "Status" }), this.statusSelect);
    }
    this.statusRead = h("span", { class: "desk-status" });
    this.deskNote = h("p", { class: "desk-note", role: "status", testid: "desk-note" });
    this.desk = h("div", { class: "desk" }, this.statusField || null, this.statusRead);
    if (this.s.isAdmin) {
      this.assignToggle = h("button", {
        type: "button", class: "btn btn-small", testid: "assign-open", "aria-expanded": "false", "aria-controls": "assign-form",
        onclick: () => this.toggleAssign(),
      });
      this.assignInput = h("input", {
        type: "text", id: "assign-agent", testid: "assign-agent", list: "assign-agents", autocomplete: "off",
        spellcheck: "false", autocapitalize: "off", placeholder: "agent id", "aria-describedby": "assign-hint",
      });
      this.assignList = h("datalist", { id: "assign-agents" });
      this.assignForm = h("form", { class: "assign-form", id: "assign-form", hidden: true, "aria-label": "Assign to an agent" },
        h("label", { for: "assign-agent", text: "Agent" }),
        h("div", { class: "row" }, this.assignInput, this.assignList,
          h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "assign-submit", text: "Assign" }),
          h("button", { type: "button", class: "btn btn-quiet btn-small", text: "Cancel", onclick: () => this.toggleAssign(false) })),
        h("p", { class: "muted small", id: "assign-hint", text: "Pick an agent or type a user id; the agent's role must serve this service." }));
      this.assignForm.addEventListener("submit", (e) => { e.preventDefault(); this.submitAssign(); });
      this.desk.append(this.assignToggle);
    }
    return h("div", { class: "desk-wrap" }, this.desk, this.assignForm || null, this.deskNote);
  }

  /** The status on screen (from the list's entry, or the push/answer just received). */
  renderDesk(change = null) {
    if (!this.desk) return;
    const conv = this.s.convs.get(this.channel);
    const status = change?.status || conv?.status || "open";
    const by = change?.status_by ?? conv?.status_by ?? null;
    const at = change?.status_at ?? conv?.status_at ?? null;
    const may = this.maySetStatus();
    if (this.statusField) {
      this.statusField.hidden = !may;
      if (this.statusSelect.value !== status && !this.statusSelect.disabled) this.statusSelect.value = status;
    }
    const who = by ? (by === "system:montrose" ? "the platform" : this.s.nameOf(by)) : "";
    const when = Number.isFinite(at) ? timeLabel(at) : "";
    this.statusRead.replaceChildren();
    append(this.statusRead, [
      may ? null : h("span", { class: "sr-only", text: "Status: " }),
      may ? null : statusChip(status),
      conv?.unassigned && !this.s.isClient ? h("span", { class: "chip chip-warn", text: "Unassigned" }) : null,
      this.s.isClient && status === "resolved" ? h("span", { class: "muted small", text: "A new message reopens it." }) : null,
      who && !this.s.isClient ? h("span", { class: "muted small", testid: "status-by", text: `${statusLabel(status)} · set by ${who}${when ? ` at ${when}` : ""}` }) : null]);
    this.statusRead.dataset.status = status;
    if (this.assignToggle) {
      const agents = conv?.agents || [];
      this.assignToggle.textContent = agents.length ? "Transfer…" : "Assign…";
      this.assignToggle.setAttribute("aria-label", agents.length ? `Transfer to another agent (now ${agents.map((a) => this.s.nameOf(a)).join(", ")})` : "Assign to an agent");
    }
  }

  async changeStatus(status) {
    const conv = this.s.convs.get(this.channel);
    const previous = conv?.status || "open";
    this.statusSelect.disabled = true;
    try {
      await this.s.setConversationStatus(this.channel, status);
      if (this.closed) return;
      this.deskNote.textContent = `Status set to ${statusLabel(status)}.`;
    } catch (e) {
      if (this.closed) return;
      this.statusSelect.disabled = false;
      this.statusSelect.value = previous;
      const text = e?.code === "forbidden"
        ? "Only the assigned agent or an admin can change the status."
        : `Could not change the status: ${errorText(e)}`;
      this.deskNote.textContent = text;
      toast(text, "error");
      return;
    } finally {
      this.statusSelect.disabled = false;
    }
    this.renderDesk();
  }

  toggleAssign(open = this.assignForm.hidden) {
    this.assignForm.hidden = !open;
    this.assignToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const conv = this.s.convs.get(this.channel);
      const current = new Set(conv?.agents || []);
      this.assignList.replaceChildren(...this.s.knownAgents().filter((id) => !current.has(id))
        .map((id) => h("option", { value: id, label: `${this.s.nameOf(id)} (${roleLabel(this.s.roles.get(id)) || "agent"})` })));
      this.assignInput.focus();
    } else {
      this.assignToggle.focus();
    }
  }

  async submitAssign() {
    const agentId = this.assignInput.value.trim();
    if (!agentId) { this.deskNote.textContent = "Type or pick the agent's id."; this.assignInput.focus(); return; }
    const submit = this.assignForm.querySelector('[type="submit"]');
    submit.disabled = true;
    this.deskNote.textContent = "Assigning…";
    try {
      const res = await this.s.assign(this.channel, agentId);
      if (this.closed) return;
      const previous = res?.previous_agent;
      this.deskNote.textContent = previous && previous !== agentId
        ? `Transferred from ${this.s.nameOf(previous)} to ${this.s.nameOf(agentId)}.`
        : `Assigned to ${this.s.nameOf(agentId)}.`;
      this.assignInput.value = "";
      this.toggleAssign(false);
      this.updateTitle();
    } catch (e) {
      if (this.closed) return;
      let text;
      if (e?.code === "not_found") text = `There is no user “${agentId}”.`;
      else if (e?.code === "conflict") text = `Cannot assign to ${this.s.nameOf(agentId)}: ${e.message || "their role may not serve this service"}.`;
      else if (e?.code === "bad_request") text = `“${agentId}” is not a user id.`;
      else text = `Could not assign: ${errorText(e)}`;
      this.deskNote.textContent = text;
      this.assignInput.setAttribute("aria-invalid", "true");
      this.assignInput.focus();
    } finally {
      submit.disabled = false;
    }
  }

  /** An admin reads a client's conversation as an observer (docs/protocol.md "Channels and access"), but a
   *  send posts into it like anyone's: the composer says so. */
  renderObserverNote() {
    if (!this.observerNote) return;
    const conv = this.s.convs.get(this.channel);
    const client = this.s.nameOf(conv?.client || clientOf(this.channel));
    const service = serviceLabel(serviceOf(this.channel));
    const agents = (conv?.agents || []).map((a) => this.s.nameOf(a));
    const withWhom = agents.length ? `their ${service} agent, ${agents.join(", ")}` : `the ${service} team (no agent assigned yet)`;
    this.observerNote.replaceChildren(
      h("strong", { text: "Observing as admin. " }),
      `A message you send here is posted into ${client}'s conversation with ${withWhom}, and they will see it.`);
    if (!this.noteMode) this.input.setAttribute("placeholder", "Message as admin · Enter sends");
  }

  build() {
    this.titleEl = h("h2", { class: "conv-head-title", id: "conv-title" });
    this.subEl = h("p", { class: "conv-head-sub muted" });
    this.deskEl = this.buildDesk();
    this.onlineEl = h("div", { class: "online", testid: "online", "aria-live": "polite", text: "" });
    this.olderButton = h("button", { type: "button", class: "btn btn-quiet older", hidden: true, text: "Load older messages", onclick: () => this.loadOlder() });
    this.list = h("ol", { class: "msg-list" });
    this.loadingEl = h("p", { class: "muted loading", text: "Loading messages…" });
    this.scroller = h("div", {
      class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-labelledby": "conv-title",
      tabindex: "0", "aria-busy": "true",
    }, this.olderButton, this.loadingEl, this.list);
    this.scroller.addEventListener("scroll", () => {
      if (this.scroller.scrollTop < 60 && this.more && this.ready) this.loadOlder();
    }, { passive: true });
    this.typingEl = h("div", { class: "typing", testid: "typing", "aria-live": "polite" });
    this.input = h("textarea", {
      class: "composer-input", testid: "composer-input", rows: "2", id: "composer-input",
      "aria-label": "Message", placeholder: "Message · Enter sends, Shift+Enter for a new line",
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.onInput());
    const observing = this.s.isAdmin;
    this.sendButton = h("button", { type: "submit", class: "btn btn-primary", testid: "composer-send", text: observing ? "Send as admin" : "Send" });
    this.observerNote = observing ? h("p", { class: "observer-note", id: "observer-note", testid: "observer-note" }) : null;
    if (observing) this.input.setAttribute("aria-describedby", "observer-note");
    // Agents and admins write a reply or an internal note; a note is said in words, not only colour.
    this.noteHint = h("p", { class: "note-hint", id: "note-hint", testid: "note-hint", hidden: true },
      h("strong", { text: "Internal note. " }), "Only agents and admins see it; the client is not told, and no typing is shown.");
    let modes = null;
    if (this.s.seesQueue) {
      const radio = (value, label) => h("label", { class: "mode" },
        h("input", { type: "radio", name: "compose-mode", value, testid: `composer-mode-${value}`, checked: value === "reply",
          onchange: () => this.setNoteMode(value === "note") }),
        h("span", { text: label }));
      modes = h("fieldset", { class: "composer-modes" }, h("legend", { class: "sr-only", text: "Write" }), radio("reply", "Reply"), radio("note", "Internal note"));
    }
    this.attach = new AttachControl({ h, settings: () => this.s.settings, onChange: () => placeToasts() });
    this.composer = h("form", { class: `composer${observing ? " composer-observer" : ""}`, hidden: true, "aria-label": "Send a message" },
      modes, this.observerNote, this.noteHint, this.attach.panel, this.attach.list,
      h("div", { class: "composer-row" }, this.attach.button, this.input, this.sendButton));
    this.composer.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    if (typeof ResizeObserver === "function") {
      this.resizeWatch = new ResizeObserver(() => placeToasts());
      this.resizeWatch.observe(this.composer);
    }
    this.notice = h("p", { class: "notice", role: "alert", hidden: true });
    this.offlineNote = h("p", { class: "notice notice-offline", testid: "conv-offline", role: "status", hidden: true });
    this.root = h("div", { class: "conversation", data: { channel: this.channel } },
      h("div", { class: "conv-head" },
        h("button", { type: "button", class: "btn btn-quiet back", "aria-label": "Back to conversations", onclick: () => this.s.backToList() }, "‹ Back"),
        h("div", { class: "conv-head-text" }, this.titleEl, this.subEl, this.onlineEl),
        this.deskEl),
      this.notice, this.offlineNote, this.scroller, this.typingEl, this.composer);
    this.updateTitle();
    this.renderOnline();
  }

  /** Shows at once what this console has of the conversation; then, once the hub answers,
   *  subscribes and loads the latest page. While the hub cannot be reached it says so
   *  plainly, and loads when the connection is back (onConnection). */
  async load() {
    const s = this.s;
    if (this.loading || this.closed) return;
    const cached = s.cached(this.channel);
    for (const m of cached) this.addMessage(m, true);
    if (s.hub.state !== "live") return this.waitForHub();
    this.loading = true;
    let unreachable = false;
    try {
      const sub = await s.follow(this.channel);
      if (this.closed) return;
      s.mergeReadMarks(this.channel, sub?.read_marks);
      const hist = await s.hub.history(this.channel, { limit: HISTORY_PAGE });
      if (this.closed) return;
      const stick = this.composer.hidden || this.nearBottom();
      for (const m of hist?.messages || []) {
        s.learn(m.from);
        const msg = { ...m, channel: m.channel || this.channel };
        s.remember(msg);
        this.addMessage(msg, true);
      }
      this.more = !!hist?.more;
      if (stick) this.scrollToBottom();
    } catch (e) {
      if (this.closed) return;
      if (e && (e.code === "timeout" || e.code === "unavailable") ) unreachable = true;
      else this.showNotice(`Could not load this conversation: ${errorText(e)}`);
    } finally {
      this.loading = false;
    }
    if (this.closed) return;
    if (unreachable) return this.waitForHub();
    this.waiting = false;
    this.offlineNote.hidden = true;
    this.showLoaded();
    s.maybeRead();
    this.refreshPresence();
  }

  /** The hub is not answering: what is saved stays on screen with a plain note, the composer
   *  stays usable (sends are queued and go out when the hub is back), and the load is tried
   *  again when the connection is live. */
  waitForHub() {
    this.waiting = true;
    this.offlineNote.textContent = this.els.size ? OFFLINE_TEXT : OFFLINE_EMPTY_TEXT;
    this.offlineNote.hidden = false;
    this.showLoaded(false);
  }

  showLoaded(complete = true) {
    if (this.loadingEl.isConnected) this.loadingEl.remove();
    // Sends still queued or in flight from earlier in this session.
    for (const local of this.s.pendingSends.values()) if (local.channel === this.channel) this.showPending(local);
    this.scroller.setAttribute("aria-busy", "false");
    this.olderButton.hidden = !(complete && this.more);
    const first = this.composer.hidden;
    if (complete) { this.ready = true; this.markLoaded(); }
    this.composer.hidden = false;
    if (first) {
      this.scrollToBottom();
      this.focusComposer();
    }
    placeToasts();
  }

  /** The connection went away or came back. */
  onConnection(live) {
    if (this.closed) return;
    if (!live) {
      this.offlineNote.textContent = this.els.size ? OFFLINE_TEXT : OFFLINE_EMPTY_TEXT;
      this.offlineNote.hidden = false;
      if (this.loadingEl.isConnected) this.loadingEl.hidden = true;
      return;
    }
    if (this.loadingEl.isConnected) this.loadingEl.hidden = false;
    if (this.waiting) this.load();
    else if (!this.loading) this.offlineNote.hidden = true;
  }

  /** After a reconnect: `subscribe since` brings only new messages, so edits and deletes of
   *  messages on screen made meanwhile come from the latest history page. */
  async refreshShown() {
    if (!this.ready || this.closed) return;
    try {
      const hist = await this.s.hub.history(this.channel, { limit: HISTORY_PAGE });
      if (this.closed) return;
      for (const m of hist?.messages || []) {
        if (!this.els.has(m.seq)) continue;
        const msg = { ...m, channel: m.channel || this.channel };
        this.s.remember(msg);
        this.addMessage(msg, true);
      }
    } catch { /* the next reconnect tries again */ }
  }

  refreshPresence() {
    this.s.hub.presence(this.channel).then((r) => {
      if (this.closed) return;
      this.online.clear();
      for (const u of r?.online || []) { this.s.learn(u); this.online.set(u.id, { ...u }); }
      this.renderOnline();
    }, () => { /* presence is a nicety; the list stays as it was */ });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.revealing = null;
    if (this.resizeWatch) this.resizeWatch.disconnect();
    for (const t of this.typers.values()) clearTimeout(t.timer);
    this.typers.clear();
    // An admin follows only the conversation on screen.
    if (this.s.isAdmin && !this.s.disposed) this.s.unfollow(this.channel);
  }

  focusComposer() {
    if (!this.composer.hidden && window.matchMedia("(pointer: fine)").matches) this.input.focus();
  }

  showNotice(text) {
    this.notice.textContent = text;
    this.notice.hidden = false;
  }

  // ---- messages

  nearBottom() {
    const el = this.scroller;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  scrollToBottom() { this.scroller.scrollTop = this.scroller.scrollHeight; }

  maxSeq() {
    let max = 0;
    for (const seq of this.els.keys()) if (seq > max) max = seq;
    return max;
  }

  minSeq() {
    let min = Infinity;
    for (const seq of this.els.keys()) if (seq < min) min = seq;
    return Number.isFinite(min) ? min : 0;
  }

  /** Forgets every shown message (their seqs are about to be delivered again). */
  clearMessages() {
    for (const li of this.els.values()) li.remove();
    this.els.clear();
    this.msgs.clear();
  }

  addMessage(m, fromHistory = false) {
    if (this.closed || !Number.isFinite(m.seq)) return;
    if (this.els.has(m.seq)) {
      // Shown already: a later copy (history after a reconnect) may say it was edited or deleted.
      if (isNewer(this.msgs.get(m.seq), m)) { this.msgs.set(m.seq, m); this.fill(this.els.get(m.seq), m); }
      return;
    }
    const stick = !fromHistory && (this.nearBottom() || m.from?.id === this.s.myId);
    let li = null;
    if (m.from?.id === this.s.myId) li = this.claimPending(m);
    li = this.fill(li || this.skeleton(), m);
    this.msgs.set(m.seq, m);
    this.els.set(m.seq, li);
    this.place(li, m.seq);
    if (m.from?.id) this.clearTyper(m.from.id);
    if (stick) this.scrollToBottom();
  }

  /** The pending element of one of my sends that this stored message is, if any. */
  claimPending(m) {
    let match = null;
    for (const local of this.s.pendingSends.values()) {
      if (local.channel !== this.channel || !this.pendingEls.has(local.key)) continue;
      if (m.client_msg_id && local.cmid === m.client_msg_id) { match = local; break; }
      if (!match && !local.cmid && local.text === m.text) match = local;
    }
    if (!match) return null;
    const li = this.pendingEls.get(match.key);
    this.pendingEls.delete(match.key);
    match.claimedSeq = m.seq;
    return li;
  }

  skeleton() {
    const li = h("li", { class: "msg", testid: "message" });
    li.append(
      h("p", { class: "msg-note-label", hidden: true, text: NOTE_LABEL }),
      h("div", { class: "msg-meta" }, h("span", { class: "msg-from" }), h("span", { class: "msg-badge", hidden: true }), h("time", { class: "msg-time" })),
      h("div", { class: "text" }),
      h("div", { class: "msg-foot" }));
    return li;
  }

  fill(li, m) {
    const mine = m.from?.id === this.s.myId;
    li.classList.toggle("own", mine);
    li.classList.toggle("system", m.from?.role === "system");
    this.markKind(li, !!m.internal, m.from?.role === "bot");
    li.classList.remove("pending", "failed");
    li.dataset.seq = String(m.seq);
    li.dataset.clientMsgId = m.client_msg_id || li.dataset.clientMsgId || "";
    li.querySelector(".msg-from").textContent = mine ? "You" : (m.from?.name || this.s.nameOf(m.from?.id));
    const time = li.querySelector(".msg-time");
    time.textContent = timeLabel(m.ts);
    if (Number.isFinite(m.ts)) time.setAttribute("datetime", new Date(m.ts).toISOString());
    const foot = li.querySelector(".msg-foot");
    foot.replaceChildren();
    // Text or tombstone, attachments, "edited", and Edit/Delete while they are allowed.
    this.s.decor.render(this, li, m);
    // A note has no read tick: the client's read mark passing it says nothing (it never sees it).
    if (mine && !m.internal && !m.deleted) foot.append(this.tick(m.seq <= this.s.othersReadUpTo(this.channel) ? "read" : "sent"));
    return li;
  }

  /** An internal note (a label above it, and its own colours) or a bot's message (a badge by
   *  the sender's name). */
  markKind(li, internal, bot) {
    li.classList.toggle("internal", internal);
    li.classList.toggle("bot", bot);
    if (internal) li.dataset.internal = "true"; else delete li.dataset.internal;
    const label = li.querySelector(".msg-note-label");
    label.hidden = !internal;
    if (internal) label.dataset.testid = "internal-label"; else delete label.dataset.testid;
    const badge = li.querySelector(".msg-badge");
    badge.hidden = !bot;
    badge.textContent = bot ? "Bot" : "";
    if (bot) badge.dataset.testid = "bot-badge"; else delete badge.dataset.testid;
  }

  /** Delivery state of one of my messages: a mark and a word, in a colour of its own
   *  (sending: a clock, grey; sent: one check, grey; read: two checks on blue). */
  tick(state) {
    const labels = { pending: "Sending", sent: "Sent", read: "Read" };
    const marks = { pending: "◷", sent: "✓", read: "✓✓" };
    return h("span", { class: `tick tick-${state}`, testid: "tick", data: { state }, title: labels[state] },
      h("span", { class: "tick-mark", "aria-hidden": "true", text: marks[state] }),
      h("span", { class: "tick-label", text: labels[state] }));
  }

  /** Inserts a stored message's element by seq, before any pending ones. */
  place(li, seq) {
    let before = null;
    for (const child of this.list.children) {
      if (child === li) continue;
      const s = Number(child.dataset.seq);
      if (!child.dataset.seq || s > seq) { before = child; break; }
    }
    if (before) this.list.insertBefore(li, before); else this.list.append(li);
  }

  refreshTicks() {
    const upTo = this.s.othersReadUpTo(this.channel);
    for (const [seq, li] of this.els) {
      const tick = li.querySelector('[data-testid="tick"]');
      if (!tick) continue;
      const state = seq <= upTo ? "read" : "sent";
      if (tick.dataset.state !== state) tick.replaceWith(this.tick(state));
    }
  }

  showPending(local) {
    if (this.closed || local.claimedSeq) return;
    let li = this.pendingEls.get(local.key);
    if (!li) {
      li = this.skeleton();
      li.classList.add("own");
      li.dataset.seq = "";
      li.querySelector(".msg-from").textContent = "You";
      this.s.decor.render(this, li, { text: local.text, attachments: local.attachments || [], from: { id: this.s.myId } });
      this.markKind(li, !!local.internal, false);
      this.pendingEls.set(local.key, li);
      this.list.append(li);
      this.scrollToBottom();
    }
    li.classList.add("pending");
    li.dataset.clientMsgId = local.cmid || "";
    li.classList.toggle("failed", !!local.error);
    li.querySelector(".msg-time").textContent = local.error ? "" : "sending…";
    const foot = li.querySelector(".msg-foot");
    foot.replaceChildren(this.tick("pending"));
    if (local.error) {
      foot.append(
        h("span", { class: "send-error", role: "alert", text: `Not sent: ${errorText(local.error)}` }),
        h("button", { type: "button", class: "btn btn-small", text: "Retry", onclick: () => this.s.retrySend(local) }),
        h("button", { type: "button", class: "btn btn-small btn-quiet", text: "Discard", onclick: () => this.s.discardSend(local) }));
    }
  }

  dropPending(key) {
    const li = this.pendingEls.get(key);
    if (li) li.remove();
    this.pendingEls.delete(key);
  }

  /** My send was stored: its pending element becomes the stored message (or goes, when the
   *  push already drew it). */
  confirm(local, m) {
    if (this.closed) return;
    if (this.els.has(m.seq)) { this.dropPending(local.key); return; }
    const li = this.pendingEls.get(local.key);
    if (!li) { this.addMessage(m); return; }
    this.pendingEls.delete(local.key);
    local.claimedSeq = m.seq;
    const stick = this.nearBottom();
    this.fill(li, m);
    this.msgs.set(m.seq, m);
    this.els.set(m.seq, li);
    this.place(li, m.seq);
    if (stick) this.scrollToBottom();
  }

  /** An edit or a delete of a message on screen. */
  applyChange(c) {
    const m = this.msgs.get(c.seq);
    const li = this.els.get(c.seq);
    if (!m || !li || this.closed) return;
    applyChange(m, c);
    this.fill(li, m);
  }

  /** Scrolls to a message and highlights it, loading older pages until it is on screen (up
   *  to ten), or else the page that ends at it. */
  async reveal(seq) {
    this.revealing = seq;
    await Promise.race([this.loaded, new Promise((resolve) => setTimeout(resolve, 10000))]);
    for (let pages = 0; !this.els.has(seq) && this.more && this.minSeq() > seq && pages < 10 && !this.closed && this.revealing === seq; pages++) {
      await this.loadOlder();
    }
    if (this.closed || this.revealing !== seq) return;
    if (!this.els.has(seq)) {
      try {
        const hist = await this.s.hub.history(this.channel, { before: seq + 1, limit: HISTORY_PAGE });
        if (this.closed) return;
        for (const m of hist?.messages || []) { this.s.learn(m.from); this.addMessage({ ...m, channel: m.channel || this.channel }, true); }
      } catch (e) {
        if (!this.closed) toast(`Could not load that message: ${errorText(e)}`, "error");
        return;
      }
    }
    const li = this.els.get(seq);
    if (!li || this.revealing !== seq) { if (!li) toast("That message is not in this conversation any more."); return; }
    for (const old of this.list.querySelectorAll(".msg-hit")) { old.classList.remove("msg-hit"); delete old.dataset.highlight; }
    li.classList.add("msg-hit");
    li.dataset.highlight = "true";
    li.setAttribute("tabindex", "-1");
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
  }

  async loadOlder() {
    if (this.loadingOlder || !this.more || this.closed) return;
    const before = this.minSeq();
    if (!before || before <= 1) { this.more = false; this.olderButton.hidden = true; return; }
    this.loadingOlder = true;
    this.olderButton.disabled = true;
    this.olderButton.textContent = "Loading…";
    try {
      const hist = await this.s.hub.history(this.channel, { before, limit: HISTORY_PAGE });
      if (this.closed) return;
      const oldHeight = this.scroller.scrollHeight;
      const oldTop = this.scroller.scrollTop;
      for (const m of hist?.messages || []) { this.s.learn(m.from); this.addMessage({ ...m, channel: m.channel || this.channel }, true); }
      this.more = !!hist?.more;
      this.scroller.scrollTop = oldTop + (this.scroller.scrollHeight - oldHeight);
    } catch (e) {
      if (!this.closed) toast(`Could not load older messages: ${errorText(e)}`, "error");
    } finally {
      this.loadingOlder = false;
      this.olderButton.disabled = false;
      this.olderButton.textContent = "Load older messages";
      this.olderButton.hidden = !this.more;
    }
  }

  // ---- composing

  submit() {
    const text = this.input.value;
    if ((!text.trim() && !this.attach.staged.length) || this.closed) return;
    this.input.value = "";
    const attachments = this.attach.take();
    this.s.sendMessage(this.channel, text.trim() ? text : "", this.noteMode, attachments);
    this.input.focus();
  }

  /** The composer writes an internal note (on) or a reply the client sees (off). */
  setNoteMode(on) {
    this.noteMode = !!on;
    this.composer.classList.toggle("composer-note", this.noteMode);
    this.noteHint.hidden = !this.noteMode;
    if (this.observerNote) this.observerNote.hidden = this.noteMode;
    const describedBy = this.noteMode ? "note-hint" : (this.observerNote ? "observer-note" : null);
    if (describedBy) this.input.setAttribute("aria-describedby", describedBy); else this.input.removeAttribute("aria-describedby");
    this.input.setAttribute("aria-label", this.noteMode ? "Internal note" : "Message");
    this.input.setAttribute("placeholder", this.noteMode
      ? "Internal note · only agents and admins see it"
      : (this.s.isAdmin ? "Message as admin · Enter sends" : "Message · Enter sends, Shift+Enter for a new line"));
    this.sendButton.textContent = this.noteMode ? "Add note" : (this.s.isAdmin ? "Send as admin" : "Send");
    placeToasts();
  }

  onInput() {
    // A note is never announced: the client must not see that someone is typing.
    if (!this.input.value || this.noteMode) return;
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_SEND_MS) return;
    this.lastTypingSent = now;
    this.s.hub.typing(this.channel).catch(() => { /* typing is best effort */ });
  }

  // ---- typing and presence

  onTyping(t) {
    if (!t.user || t.user === this.s.myId) return;
    const prev = this.typers.get(t.user);
    if (prev) clearTimeout(prev.timer);
    const name = t.name || this.s.nameOf(t.user);
    const timer = setTimeout(() => this.clearTyper(t.user), TYPING_SHOW_MS);
    this.typers.set(t.user, { name, timer });
    this.renderTyping();
  }

  clearTyper(id) {
    const t = this.typers.get(id);
    if (!t) return;
    clearTimeout(t.timer);
    this.typers.delete(id);
    this.renderTyping();
  }

  renderTyping() {
    if (this.closed) return;
    const names = [...this.typers.values()].map((t) => t.name);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    this.typingEl.textContent = text;
  }

  onJoin(user) {
    if (!user || !user.id) return;
    if (!this.online.has(user.id)) this.online.set(user.id, { ...user, status: user.role === "client" ? "online" : "available" });
    this.renderOnline();
  }

  onLeave(user) {
    if (!user || !user.id) return;
    this.online.delete(user.id);
    this.clearTyper(user.id);
    this.renderOnline();
  }

  onStatus(st) {
    const u = this.online.get(st.user);
    if (u) { u.status = st.status; this.renderOnline(); }
  }

  renderOnline() {
    const others = [...this.online.values()].filter((u) => u.id !== this.s.myId);
    this.onlineEl.replaceChildren();
    if (!others.length) {
      this.onlineEl.append(h("span", { class: "muted", text: "No one else is online here" }));
      return;
    }
    this.onlineEl.append(h("span", { class: "online-label", text: "Online: " }));
    others.forEach((u, i) => {
      const status = u.status || "online";
      this.onlineEl.append(
        h("span", { class: `presence presence-${status}`, data: { user: u.id } },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("span", { class: "presence-name", text: u.name || this.s.nameOf(u.id) }),
          h("span", { class: "presence-status", text: ` (${status})` })),
        i < others.length - 1 ? ", " : "");
    });
  }
}

// ---------------------------------------------------------------- page-wide wiring

window.addEventListener("focus", () => current?.onFocus());
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") current?.onFocus(); });
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (current?.bellMenu && !current.bellMenu.hidden) { e.preventDefault(); current.closeBell(true); }
  if (current?.accountMenu && !current.accountMenu.hidden) { e.preventDefault(); current.closeAccount(true); }
});
document.addEventListener("click", (e) => {
  if (current?.bellWrap && current.bellMenu && !current.bellMenu.hidden && !current.bellWrap.contains(e.target)) current.closeBell();
  if (current?.accountWrap && current.accountMenu && !current.accountMenu.hidden && !current.accountWrap.contains(e.target)) current.closeAccount();
});
window.addEventListener("resize", () => placeToasts());

// The fragment: a token handed over while the page is open (same-document navigation), or a
// view's address (a section link, back or forward).
function onAddressChange() {
  const token = takeTokenFromFragment();
  if (token) {
    sessionStorage.removeItem(DEV_KEY);
    startSession(token).catch((e) => toast(`Could not sign in: ${errorText(e)}`, "error"));
    return;
  }
  const route = routeFromHash();
  if (route && current?.started && !current.disposed) current.applyRoute(route);
}
window.addEventListener("hashchange", onAddressChange);
window.addEventListener("popstate", onAddressChange);

async function boot() {
  const fromFragment = takeTokenFromFragment();
  if (fromFragment) {
    sessionStorage.setItem(TOKEN_KEY, fromFragment);
    sessionStorage.removeItem(DEV_KEY);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) await startSession(token);
  else await showSignIn();
}

boot().catch((e) => {
  setView(h("main", { class: "signin", id: "main" }, h("p", { class: "notice", role: "alert", text: `The console could not start: ${errorText(e)}` })));
});
