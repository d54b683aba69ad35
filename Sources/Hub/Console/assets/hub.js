// hub.js — the browser client of Montrose Hub. A dependency-free ES module.
//
// The wire contract is docs/protocol.md;
// the API below is the one documented in API.md next to this file.
//
//   import { HubClient, HubError } from "/hub.js";
//   const hub = new HubClient({ url: "wss://host/ws", token });
//   hub.addEventListener("message", e => show(e.detail));
//   await hub.connect();
//   await hub.subscribe("conv:website:demo-client");
//   await hub.send("conv:website:demo-client", "hello");
//
// What the library takes care of:
// - requests carry an integer `id`; replies settle the matching promise (with a timeout);
// - the `auth` op is the first frame of every connection;
// - reconnection with jittered exponential backoff, except after close 4001 / a refused token;
// - every subscribed channel is re-subscribed with `since` = the last seq delivered (and the
//   `epoch` it belongs to), and `message` events come out once per seq, in order, with gaps
//   fetched rather than skipped; when the hub's store changed epoch (restored or replaced), a
//   `reset` event {channel} comes first and the conversation is delivered again from seq 1;
// - sends are queued per channel (in order) with a `client_msg_id` made once, and retried with
//   it until the hub acknowledges them (a `duplicate: true` answer is a success);
// - `message.updated` and `message.deleted` (an edit, a delete) are emitted as events of those
//   names, and a message held back for a gap is changed in place first, so it comes out as it
//   now is.

/** Pushes re-emitted as events of the same name, `detail` = the push object. */
const PUSH_EVENTS = ["notification", "unread", "broadcast", "read", "typing", "join", "leave",
                     "status", "assignment", "revoked", "conversation", "queue",
                     "message.updated", "message.deleted"];
/** Event names the library itself uses; an unknown push type never shadows them. */
const OWN_EVENTS = new Set(["state", "message", "auth", "error", "reset"]);
/** Error codes after which retrying the same request cannot succeed. */
const PERMANENT = new Set(["bad_request", "forbidden", "not_found", "too_large", "conflict", "unauthorized"]);
/** Client-side close code for a connection the library gives up on (timeouts, offline). */
const CLIENT_GIVE_UP = 4000;
/** A history page is at most this long (docs/protocol.md `history`). */
const PAGE = 100;

/** An error reply of the hub (`code`, `message`), or a client-side failure: `timeout` (no reply
 *  in time), `unavailable` (the connection was lost before the reply), `closed` (close() was
 *  called), `cancelled` (unsubscribed while a subscribe waited). */
export class HubError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = "HubError";
    /** @type {string} */
    this.code = code;
  }
}

/** Marks a promise as handled so a caller that ignores it causes no "unhandled rejection";
 *  a caller that awaits it still sees the rejection. */
function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

/** A random RFC 4122 v4 id. `crypto.randomUUID` exists only in secure contexts (https,
 *  localhost); `getRandomValues` exists everywhere. */
function newClientMsgId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function browserOffline() {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}

/**
 * A connection to the hub that survives disconnects.
 *
 * Events (`addEventListener(type, e => e.detail)`): `state` {state, reason?, code?},
 * `message` (the message push), `message.updated` {channel, seq, msg_id, text, edited_at},
 * `message.deleted` {channel, seq, msg_id}, `notification`, `unread`, `broadcast`, `read`,
 * `typing`, `join`, `leave`, `status`, `assignment`, `revoked` (the push object), `auth` (the
 * auth result after each (re)connect), `error` {code, message, op?, channel?} for failures
 * nobody awaited.
 */
export class HubClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url the hub's WebSocket URL, e.g. "wss://hub.example/ws"
   * @param {string | (() => string | Promise<string>)} options.token the JWT, or a function
   *   asked for one before each (re)connect (for short-lived tokens)
   * @param {number} [options.requestTimeoutMs=10000] how long a request waits for its reply
   * @param {{minMs?: number, maxMs?: number}} [options.reconnect] backoff bounds (500, 15000)
   * @param {number} [options.pingIntervalMs=25000] idle check of a live connection (0 = off)
   */
  constructor(options = {}) {
    super();
    if (!options.url) throw new TypeError("HubClient: options.url is required");
    this.url = options.url;
    /** The token (or token function) used on the next (re)connect; may be replaced. */
    this.token = options.token;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this.reconnect = { minMs: options.reconnect?.minMs ?? 500, maxMs: options.reconnect?.maxMs ?? 15000 };
    this.pingIntervalMs = options.pingIntervalMs ?? 25000;
    /** The auth result {user, role, name, session, server_time}, once authenticated. */
    this.user = null;

    this._state = "closed";
    this._reason = undefined;
    this._active = false;      // connect() called, and neither close() nor a refused token since
    this._everLive = false;    // "connecting" until the first success, "reconnecting" after
    this._ws = null;
    this._live = false;        // the current socket is open and authenticated
    this._attempt = 0;         // reconnect attempts since the last success
    this._reconnectTimer = null;
    this._openTimer = null;
    this._pingTimer = null;
    this._connectWaiter = null; // {promise, resolve, reject} of connect()
    this._nextId = 1;
    this._pending = new Map();  // id → {ws, op, resolve, reject, timer}: sent, awaiting a reply
    this._waiting = [];         // requests made while not live: sent once live
    this._channels = new Map(); // channel → delivery state (see _channel)
    this._outbox = new Map();   // channel → [send entries], oldest first

    this._onOnline = () => this._browserOnline();
    this._onOffline = () => this._browserOffline();
  }

  /** "connecting" | "live" | "reconnecting" | "offline" | "closed" ("closed" also before connect()). */
  get state() {
    return this._state;
  }

  // MARK: connection

  /**
   * Opens the connection (and keeps it open). Resolves with the auth result once
   * authenticated; network failures are retried meanwhile. Rejects with HubError
   * "unauthorized" when the hub refuses the token, "closed" when close() is called first.
   * @returns {Promise<{user: string, role: string, name: string, session: string, server_time: number}>}
   */
  connect() {
    if (this._live) return Promise.resolve(this.user);
    const waiter = this._connectWaiter ?? (this._connectWaiter = deferred());
    if (!this._active) {
      this._active = true;
      this._attempt = 0;
      if (typeof globalThis.addEventListener === "function") {
        globalThis.addEventListener("online", this._onOnline);
        globalThis.addEventListener("offline", this._onOffline);
      }
      if (browserOffline()) this._setState("offline", { reason: "network" });
      else this._open();
    }
    return quiet(waiter.promise);
  }

  /** Closes the connection for good: no reconnect; requests, subscribe waits and queued sends
   *  are rejected with HubError "closed"; subscriptions are forgotten. */
  close() {
    this._active = false;
    this._everLive = false;
    clearTimeout(this._reconnectTimer);
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
      globalThis.removeEventListener("offline", this._onOffline);
    }
    if (this._ws) this._lost(this._ws, 1000, "closed by the client");
    const closed = () => new HubError("closed", "the client was closed");
    this._failWaiting(closed);
    this._connectWaiter?.reject(closed());
    this._connectWaiter = null;
    for (const ch of this._channels.values()) this._rejectSubscribers(ch, closed());
    this._channels.clear();
    for (const queue of this._outbox.values()) {
      for (const entry of queue) {
        clearTimeout(entry.retryTimer);
        entry.reject(closed());
      }
    }
    this._outbox.clear();
    this._setState("closed");
  }

  _open() {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._setState(this._everLive ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      // A malformed URL: retrying cannot help.
      this._stop("bad_url", new HubError("bad_request", `bad hub URL: ${err.message}`));
      return;
    }
    this._ws = ws;
    // Open and authenticate within one request timeout, or give up on this socket.
    this._openTimer = setTimeout(() => this._lost(ws, CLIENT_GIVE_UP, "connect timeout"), this.requestTimeoutMs);
    ws.onopen = () => { this._authenticate(ws); };
    ws.onmessage = e => this._onFrame(ws, e.data);
    ws.onclose = e => this._lost(ws, e.code, e.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  async _authenticate(ws) {
    let token;
    try {
      token = typeof this.token === "function" ? await this.token() : this.token;
    } catch (err) {
      this._emit("error", { code: "token", message: `could not get a token: ${err?.message ?? err}` });
      return this._lost(ws, CLIENT_GIVE_UP, "no token");
    }
    if (ws !== this._ws) return;
    let auth;
    try {
      auth = await this._rawRequest(ws, "auth", { token }, Date.now() + this.requestTimeoutMs);
    } catch (err) {
      if (ws !== this._ws) return; // the socket went first; _lost decided already
      if (err.code === "unauthorized" || err.code === "bad_request") return this._stop("unauthorized", err);
      return this._lost(ws, CLIENT_GIVE_UP, `auth failed: ${err.code}`);
    }
    if (ws !== this._ws) return;
    this._onLive(ws, auth);
  }

  _onLive(ws, auth) {
    clearTimeout(this._openTimer);
    this._live = true;
    this._everLive = true;
    this._attempt = 0;
    this.user = auth;
    this._setState("live");
    this._emit("auth", auth);
    this._connectWaiter?.resolve(auth);
    this._connectWaiter = null;
    this._startPing(ws);
    // Order on the wire: subscriptions first (so our own sends come back as pushes), then
    // the requests made while offline, then the queued sends.
    for (const ch of this._channels.values()) this._subscribeNow(ch);
    const waiting = this._waiting;
    this._waiting = [];
    for (const w of waiting) {
      clearTimeout(w.timer);
      this._rawRequest(ws, w.op, w.params, w.deadline).then(w.resolve, w.reject);
    }
    for (const [channel, queue] of this._outbox) {
      for (const entry of queue) {
        clearTimeout(entry.retryTimer);
        entry.retryTimer = null;
      }
      this._pump(channel);
    }
  }

  /** The socket is gone (closed by either side, or given up on): clean up, then reconnect
   *  unless the client was closed or the token refused. */
  _lost(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._live = false;
    clearTimeout(this._openTimer);
    clearInterval(this._pingTimer);
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === 0 || ws.readyState === 1) {
      try { ws.close(code === 1000 ? 1000 : CLIENT_GIVE_UP, String(reason ?? "").slice(0, 100)); } catch { /* already closing */ }
    }
    // Replies will never come on this socket. Sends and subscriptions are redone when live
    // again (their handlers see that the socket changed); other requests fail.
    const lost = this._active ? new HubError("unavailable", "the connection was lost before the reply")
                              : new HubError("closed", "the client was closed");
    for (const [id, p] of this._pending) {
      if (p.ws !== ws) continue;
      this._pending.delete(id);
      clearTimeout(p.timer);
      p.reject(lost);
    }
    if (!this._active) return;
    if (code === 4001) return this._stop("unauthorized", new HubError("unauthorized", reason || "invalid token"));
    this._scheduleReconnect(code);
  }

  _scheduleReconnect(code) {
    clearTimeout(this._reconnectTimer);
    if (browserOffline()) {
      // Nothing to try until the browser says it is back ("online" event).
      this._setState("offline", { reason: "network" });
      return;
    }
    this._setState(this._everLive ? "reconnecting" : "connecting", { code });
    const delay = this._backoff(this._attempt++);
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  /** Full jitter between minMs and an exponentially growing cap (at most maxMs), so that
   *  clients dropped together by a hub restart do not come back together. */
  _backoff(attempt) {
    const { minMs, maxMs } = this.reconnect;
    const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt + 1, 30));
    return minMs + Math.random() * Math.max(0, cap - minMs);
  }

  /** Stops reconnecting (refused token, bad URL): state "offline"; queued sends stay queued
   *  and go out if connect() is called again (e.g. with a new token). */
  _stop(reason, error) {
    this._active = false;
    clearTimeout(this._reconnectTimer);
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      this._live = false;
      clearTimeout(this._openTimer);
      clearInterval(this._pingTimer);
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closing */ }
      for (const [id, p] of this._pending) {
        if (p.ws !== ws) continue;
        this._pending.delete(id);
        clearTimeout(p.timer);
        p.reject(error);
      }
    }
    this._failWaiting(() => error);
    this._setState("offline", { reason });
    this._connectWaiter?.reject(error);
    this._connectWaiter = null;
  }

  _browserOffline() {
    if (!this._active) return;
    // The socket may linger for minutes on a dead network; give it up now so sends queue.
    if (this._ws) this._lost(this._ws, CLIENT_GIVE_UP, "browser offline");
    else this._scheduleReconnect();
  }

  _browserOnline() {
    if (!this._active || this._ws) return;
    this._attempt = 0;
    this._open();
  }

  /** A cheap `ping` on an idle connection finds half-open sockets the browser would not. */
  _startPing(ws) {
    clearInterval(this._pingTimer);
    if (!(this.pingIntervalMs > 0)) return;
    let outstanding = false;
    this._pingTimer = setInterval(() => {
      if (outstanding || ws !== this._ws) return;
      outstanding = true;
      this._rawRequest(ws, "ping", {}, Date.now() + this.requestTimeoutMs).then(
        () => { outstanding = false; },
        err => {
          outstanding = false;
          if (err.code === "timeout") this._lost(ws, CLIENT_GIVE_UP, "ping timeout");
        });
    }, this.pingIntervalMs);
  }

  // MARK: requests

  /**
   * Sends one op and resolves with its `result`. Low level: no bookkeeping (use subscribe,
   * unsubscribe and send for those). While (re)connecting the request waits to be sent;
   * the timeout counts from this call.
   * @param {string} op
   * @param {object} [params]
   * @returns {Promise<any>} rejects with HubError {code, message}; code "timeout" when no
   *   reply came within requestTimeoutMs, "unavailable" when the connection dropped first
   */
  request(op, params = {}) {
    return quiet(this._request(op, params));
  }

  _request(op, params) {
    const deadline = Date.now() + this.requestTimeoutMs;
    if (this._live) return this._rawRequest(this._ws, op, params, deadline);
    if (!this._active) {
      return Promise.reject(this._state === "offline" && this._reason === "unauthorized"
        ? new HubError("unauthorized", "the hub refused the token")
        : new HubError("closed", "not connected: call connect()"));
    }
    return new Promise((resolve, reject) => {
      const w = { op, params, deadline, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        this._waiting = this._waiting.filter(x => x !== w);
        reject(new HubError("timeout", `${op}: not connected within ${this.requestTimeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      this._waiting.push(w);
    });
  }

  _failWaiting(makeError) {
    const waiting = this._waiting;
    this._waiting = [];
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(makeError());
    }
  }

  /** Writes one request on `ws` and settles with its reply. */
  _rawRequest(ws, op, params, deadline) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) {
        reject(new HubError("unavailable", "not connected"));
        return;
      }
      const id = this._nextId++;
      const frame = JSON.stringify(Object.assign({}, params, { id, op }));
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HubError("timeout", `no reply to ${op} within ${this.requestTimeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      this._pending.set(id, { ws, op, resolve, reject, timer });
      try {
        ws.send(frame);
      } catch (err) {
        this._pending.delete(id);
        clearTimeout(timer);
        reject(new HubError("unavailable", `could not send: ${err?.message ?? err}`));
      }
    });
  }

  _onFrame(ws, data) {
    if (ws !== this._ws || typeof data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the hub writes JSON; nothing sensible to do with anything else
    }
    if (!frame || typeof frame !== "object") return;
    if ("ok" in frame && "id" in frame) {
      const p = this._pending.get(frame.id);
      if (!p) {
        // id null: the hub could not read one of our requests (a bug, not a user action).
        if (frame.ok === false && frame.id === null) this._emit("error", { ...frame.error });
        return; // a late reply to a request that timed out
      }
      this._pending.delete(frame.id);
      clearTimeout(p.timer);
      if (frame.ok) p.resolve(frame.result ?? {});
      else p.reject(new HubError(frame.error?.code ?? "internal", frame.error?.message));
      return;
    }
    if (typeof frame.type === "string") this._onPush(frame);
  }

  _onPush(push) {
    const type = push.type;
    if (type === "message") {
      const ch = this._channels.get(push.channel);
      if (ch) this._ingest(ch, push);
      else this._emit("message", push); // a channel subscribed with request(): no bookkeeping
      return;
    }
    if (type === "message.updated" || type === "message.deleted") this._changeHeld(push);
    if (type === "revoked") {
      // The hub ended the subscription; re-subscribing would be forbidden.
      const ch = this._channels.get(push.channel);
      if (ch) {
        this._channels.delete(push.channel);
        this._rejectSubscribers(ch, new HubError("forbidden", "access revoked"));
      }
    }
    if (PUSH_EVENTS.includes(type) || !OWN_EVENTS.has(type)) this._emit(type, push);
  }

  /** An edit or delete of a message held back for a gap (not emitted yet): it comes out as
   *  it now is. One already emitted is the listener's to change (the event follows). */
  _changeHeld(push) {
    const held = this._channels.get(push.channel)?.buffer.get(push.seq);
    if (!held) return;
    applyChange(held, push);
  }

  // MARK: channels

  /**
   * Subscribes to a channel and remembers it: after every reconnect it is re-subscribed with
   * `since` = the last seq delivered, and what was missed comes as `message` events in seq
   * order, never twice. Messages in a result with `since` are emitted as events too.
   * A subscribe made while (re)connecting is sent once live; if it times out meanwhile the
   * channel stays remembered (unsubscribe() forgets it). forbidden/not_found forget it.
   * @param {string} channel
   * @param {{since?: number, epoch?: string}} [options] extension: start from this seq (of this
   *   epoch, as a previous result's `epoch` said) instead of "now"
   * @returns {Promise<{last_seq: number, messages: object[], more: boolean, read_marks?: object[]}>}
   */
  subscribe(channel, options = {}) {
    if (typeof channel !== "string" || !channel) return quiet(Promise.reject(new HubError("bad_request", "channel must be a string")));
    if (!this._active && !(this._state === "offline" && this._reason === "unauthorized")) {
      return quiet(Promise.reject(new HubError("closed", "not connected: call connect()")));
    }
    let ch = this._channels.get(channel);
    if (!ch) {
      ch = { name: channel, lastSeq: null, since: options.since ?? null, epoch: options.epoch ?? null, buffer: new Map(),
             filling: false, inFlightOn: null, subscribers: [] };
      this._channels.set(channel, ch);
    }
    const promise = new Promise((resolve, reject) => {
      const s = { resolve, reject, timer: null };
      s.timer = setTimeout(() => {
        ch.subscribers = ch.subscribers.filter(x => x !== s);
        reject(new HubError("timeout", `no reply to subscribe within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      ch.subscribers.push(s);
    });
    if (this._live) this._subscribeNow(ch, true);
    return quiet(promise);
  }

  /** Sends `subscribe` for a remembered channel on the live socket. `again`: even if one is
   *  in flight already (an explicit subscribe() call wants a fresh result). */
  _subscribeNow(ch, again = false) {
    const ws = this._ws;
    if (!again && ch.inFlightOn === ws) return;
    ch.inFlightOn = ws;
    const since = ch.lastSeq ?? ch.since;
    const params = since == null ? { channel: ch.name } : { channel: ch.name, since };
    if (since != null && ch.epoch != null) params.epoch = ch.epoch;
    this._rawRequest(ws, "subscribe", params, Date.now() + this.requestTimeoutMs).then(result => {
      if (ch.inFlightOn === ws) ch.inFlightOn = null;
      if (this._channels.get(ch.name) !== ch) return; // unsubscribed meanwhile
      // Positions from another epoch mean nothing here: start again from the beginning.
      if (result.reset) {
        ch.lastSeq = 0;
        ch.buffer.clear();
        this._emit("reset", { channel: ch.name, epoch: result.epoch });
      }
      if (typeof result.epoch === "string") ch.epoch = result.epoch;
      // Without `since`, live messages start after last_seq.
      if (ch.lastSeq == null) ch.lastSeq = since ?? result.last_seq ?? 0;
      // The rest of a `more` catch-up follows as pushes, in order, before live ones.
      for (const m of result.messages ?? []) this._ingest(ch, m);
      const subscribers = ch.subscribers;
      ch.subscribers = [];
      for (const s of subscribers) {
        clearTimeout(s.timer);
        s.resolve(result);
      }
    }, err => {
      if (ch.inFlightOn === ws) ch.inFlightOn = null;
      if (this._channels.get(ch.name) !== ch) return;
      if (ws !== this._ws) return; // connection lost: re-subscribed when live again
      if (PERMANENT.has(err.code)) {
        this._channels.delete(ch.name);
        if (ch.subscribers.length) this._rejectSubscribers(ch, err);
        else this._emit("error", { code: err.code, message: err.message, op: "subscribe", channel: ch.name });
        return;
      }
      // Busy or slow hub (timeout, rate_limited, internal, unavailable): try again shortly.
      setTimeout(() => {
        if (this._live && ws === this._ws && this._channels.get(ch.name) === ch) this._subscribeNow(ch);
      }, this._backoff(1));
    });
  }

  _rejectSubscribers(ch, error) {
    const subscribers = ch.subscribers;
    ch.subscribers = [];
    for (const s of subscribers) {
      clearTimeout(s.timer);
      s.reject(error);
    }
  }

  /**
   * Unsubscribes and forgets the channel (no re-subscribe on reconnect).
   * @param {string} channel
   * @returns {Promise<{}>}
   */
  unsubscribe(channel) {
    const ch = this._channels.get(channel);
    if (ch) {
      this._channels.delete(channel);
      this._rejectSubscribers(ch, new HubError("cancelled", "unsubscribed"));
    }
    // Not live: the next connection simply does not subscribe it.
    if (!this._live) return Promise.resolve({});
    return quiet(this._request("unsubscribe", { channel }));
  }

  /** Delivers a message of a remembered channel exactly once and in seq order. */
  _ingest(ch, m) {
    if (typeof m.seq !== "number") return this._emit("message", m);
    if (ch.lastSeq == null) ch.lastSeq = m.seq - 1; // not expected: pushes follow the subscribe reply
    if (m.seq <= ch.lastSeq) return; // seen already
    if (m.seq > ch.lastSeq + 1) {
      // A gap: keep this one and fetch what is missing before it.
      ch.buffer.set(m.seq, m);
      this._fillGap(ch);
      return;
    }
    ch.lastSeq = m.seq;
    this._emit("message", m);
    this._releaseBuffered(ch);
  }

  /** Emits the buffered messages that now follow `lastSeq`, in order. */
  _releaseBuffered(ch) {
    while (ch.buffer.size) {
      const next = ch.buffer.get(ch.lastSeq + 1);
      if (!next) break;
      ch.buffer.delete(next.seq);
      ch.lastSeq = next.seq;
      this._emit("message", next);
    }
    for (const seq of ch.buffer.keys()) if (seq <= ch.lastSeq) ch.buffer.delete(seq);
  }

  /** Closes a gap with `history` pages (oldest first); when a page cannot be had, re-subscribes
   *  with `since`, which the hub answers gap-free. */
  async _fillGap(ch) {
    if (ch.filling) return;
    ch.filling = true;
    try {
      while (this._live && this._channels.get(ch.name) === ch && ch.buffer.size) {
        let lowest = Infinity;
        for (const seq of ch.buffer.keys()) if (seq < lowest) lowest = seq;
        const from = ch.lastSeq;
        const before = Math.min(lowest, from + PAGE + 1);
        const page = await this._rawRequest(this._ws, "history",
          { channel: ch.name, before, limit: before - from - 1 }, Date.now() + this.requestTimeoutMs);
        if (this._channels.get(ch.name) !== ch) return;
        // The page was asked for the whole window from+1 … before-1 (limit = its length), so
        // it holds every message of that window this user may read, whether the hub counts
        // the limit in seqs (a client's page: an agents' internal note takes its place and is
        // left out, so the page can come back short or empty with more: true) or in messages
        // shown. A seq of the window it lacks is not for this user, not lost: step past it.
        const got = new Map();
        for (const m of page.messages ?? []) if (typeof m.seq === "number") got.set(m.seq, m);
        for (let seq = from + 1; seq < before; seq++) {
          if (seq <= ch.lastSeq) continue;
          const m = got.get(seq);
          if (m) this._ingest(ch, m);
          else ch.lastSeq = seq;
        }
        this._releaseBuffered(ch);
      }
    } catch {
      // Lost connection: the reconnect re-subscribes with `since`. Otherwise ask the hub.
      if (this._live && this._channels.get(ch.name) === ch) this._subscribeNow(ch);
    } finally {
      ch.filling = false;
    }
  }

  // MARK: sending

  /**
   * Sends a message. It is queued per channel and dispatched in order, one at a time; while
   * offline or unanswered it is retried (after reconnect) with the same client_msg_id until
   * the hub acknowledges it. Rejects only on an error that a retry cannot fix (forbidden,
   * too_large, ...) or on close().
   * @param {string} channel
   * @param {string} text may be "" when attachments are given
   * @param {{internal?: boolean, attachments?: {url: string, name: string, size: number, content_type: string}[]}} [options]
   *   `internal: true` stores an internal note (agents and admins; docs/protocol.md "Internal
   *   notes"); `attachments`: up to 10 references to files on the platform's file store (the
   *   hub checks each url's origin against its allow-list)
   * @returns {Promise<{seq: number, msg_id: number, ts: number, duplicate: boolean}>}
   */
  send(channel, text, options) {
    if (typeof channel !== "string" || !channel) return quiet(Promise.reject(new HubError("bad_request", "channel must be a string")));
    const attachments = Array.isArray(options?.attachments) && options.attachments.length
      ? options.attachments.map(a => ({ url: a.url, name: a.name, size: a.size, content_type: a.content_type }))
      : null;
    if (typeof text !== "string" || (!text && !attachments)) {
      return quiet(Promise.reject(new HubError("bad_request", "text must be a non-empty string (or attachments given)")));
    }
    if (this._state === "closed") return quiet(Promise.reject(new HubError("closed", "not connected: call connect()")));
    const internal = options?.internal === true;
    const entry = { channel, text, internal, attachments, client_msg_id: newClientMsgId(), inFlight: false, attempts: 0, retryTimer: null };
    const promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    const queue = this._outbox.get(channel);
    if (queue) queue.push(entry);
    else this._outbox.set(channel, [entry]);
    this._pump(channel);
    return quiet(promise);
  }

  /**
   * The sends of a channel (or of all channels) not yet acknowledged, oldest first.
   * @param {string} [channel]
   * @returns {{client_msg_id: string, text: string, channel: string, internal: boolean, attachments?: object[]}[]}
   */
  pending(channel) {
    const queues = channel === undefined ? [...this._outbox.values()] : [this._outbox.get(channel) ?? []];
    return queues.flat().map(e => {
      const p = { client_msg_id: e.client_msg_id, text: e.text, channel: e.channel, internal: e.internal };
      if (e.attachments) p.attachments = e.attachments.map(a => ({ ...a }));
      return p;
    });
  }

  _removeSend(entry) {
    const queue = this._outbox.get(entry.channel);
    if (!queue) return false;
    const i = queue.indexOf(entry);
    if (i < 0) return false;
    queue.splice(i, 1);
    if (!queue.length) this._outbox.delete(entry.channel);
    return true;
  }

  /** Sends the oldest unacknowledged message of a channel, if none is in flight. One at a
   *  time keeps the order even when an attempt fails and is retried. */
  _pump(channel) {
    const entry = this._outbox.get(channel)?.[0];
    if (!entry || entry.inFlight || entry.retryTimer || !this._live) return;
    const ws = this._ws;
    entry.inFlight = true;
    entry.attempts++;
    const params = { channel, text: entry.text, client_msg_id: entry.client_msg_id };
    if (entry.internal) params.internal = true;
    if (entry.attachments) params.attachments = entry.attachments;
    this._rawRequest(ws, "send", params, Date.now() + this.requestTimeoutMs).then(result => {
      entry.inFlight = false;
      if (!this._removeSend(entry)) return; // closed meanwhile
      entry.resolve(result); // duplicate: true = an earlier attempt was stored: fine
      this._pump(channel);
    }, err => {
      entry.inFlight = false;
      if (!this._outbox.get(channel)?.includes(entry)) return; // closed meanwhile
      if (ws !== this._ws || !this._live) return; // lost connection: pumped again when live
      if (PERMANENT.has(err.code)) {
        this._removeSend(entry);
        entry.reject(err);
        this._pump(channel);
        return;
      }
      // timeout, rate_limited, internal, unavailable: retry on this connection after a pause.
      entry.retryTimer = setTimeout(() => {
        entry.retryTimer = null;
        this._pump(channel);
      }, this._backoff(entry.attempts));
    });
  }

  // MARK: op helpers

  /**
   * @param {string} channel
   * @param {{before?: number, limit?: number}} [options] `before` is a seq
   * @returns {Promise<{messages: object[], more: boolean}>}
   */
  history(channel, options) {
    const { before, limit } = options ?? {};
    return this.request("history", { channel, before, limit });
  }

  /**
   * Changes the text of one of my messages, within the hub's edit window (`forbidden` after
   * it, or for another's message). Every subscriber, this client too, gets `message.updated`.
   * @param {string} channel
   * @param {number} seq
   * @param {string} text
   * @returns {Promise<{seq: number, edited_at: number}>}
   */
  edit(channel, seq, text) {
    return this.request("edit", { channel, seq, text });
  }

  /**
   * Deletes a message: my own within the edit window, anyone's for an admin. Its text and
   * attachments are erased, its seq stays (a tombstone, `deleted: true`); every subscriber gets
   * `message.deleted`.
   * @param {string} channel
   * @param {number} seq
   * @returns {Promise<{seq: number}>}
   */
  deleteMessage(channel, seq) {
    return this.request("delete", { channel, seq });
  }

  /** The same as deleteMessage (the op's own name). */
  delete(channel, seq) {
    return this.deleteMessage(channel, seq);
  }

  /**
   * Searches the messages the caller may read, newest first. Each item's `snippet` is HTML
   * whose only tags are `<mark>`…`</mark>` around the matched words (everything else escaped).
   * @param {{query: string, channel?: string, service?: string, before?: number, limit?: number}} params
   *   `before` is a msg_id (the last item's, for the next page)
   * @returns {Promise<{items: {channel: string, seq: number, msg_id: number, from: object, ts: number, snippet: string}[], more: boolean}>}
   */
  search(params) {
    const { query, channel, service, before, limit } = params ?? {};
    return this.request("search", { query, channel, service, before, limit });
  }

  /**
   * An admin reads a message's edit history (moderation): the earlier texts, oldest first.
   * @param {string} channel
   * @param {number} seq
   * @returns {Promise<{message: object, edits: {text: string, edited_at: number, editor: string}[]}>}
   */
  edits(channel, seq) {
    return this.request("edits", { channel, seq });
  }

  /**
   * Moves the caller's read mark forward.
   * @param {string} channel
   * @param {number} seq
   * @returns {Promise<{seq: number}>} the mark now stored
   */
  read(channel, seq) {
    return this.request("read", { channel, seq });
  }

  /** @param {string} channel @returns {Promise<{}>} */
  typing(channel) {
    return this.request("typing", { channel });
  }

  /** @param {string} channel @returns {Promise<{online: {id: string, role: string, name: string, status: string}[]}>} */
  presence(channel) {
    return this.request("presence", { channel });
  }

  /** Agents and admins. @param {"available"|"busy"|"away"} status @returns {Promise<{}>} */
  status(status) {
    return this.request("status", { status });
  }

  /**
   * @param {{service?: string, status?: "open"|"pending"|"resolved", queue?: boolean, before?: number, limit?: number}} [options]
   *   `before` is a ts (ms); `queue: true` lists the queued conversations the caller may take
   * @returns {Promise<{conversations: object[], more: boolean}>}
   */
  conversations(options) {
    const { service, status, queue, before, limit } = options ?? {};
    return this.request("conversations", { service, status, queue, before, limit });
  }

  /**
   * Sets a conversation's support-desk status (`conversation.status`: its agent or an admin).
   * @param {string} channel
   * @param {"open"|"pending"|"resolved"} status
   * @returns {Promise<{channel: string, status: string, status_by: string|null, status_at: number|null}>}
   */
  setStatus(channel, status) {
    return this.request("conversation.status", { channel, status });
  }

  /**
   * An agent takes a queued conversation (`claim`); `conflict` when another agent has it.
   * @param {string} channel
   * @returns {Promise<{service: string, client: string, agents: string[]}>}
   */
  claim(channel) {
    return this.request("claim", { channel });
  }

  /**
   * An admin gives a conversation to an agent, or moves it to another (`assign`).
   * @param {string} channel
   * @param {string} agentId
   * @returns {Promise<{service: string, client: string, agents: string[], previous_agent: string|null}>}
   */
  assign(channel, agentId) {
    return this.request("assign", { channel, agent_id: agentId });
  }

  /**
   * @param {{before?: number, limit?: number, service?: string, unread_only?: boolean}} [options]
   * @returns {Promise<{items: object[], unread: {total: number, by_service: object}, more: boolean}>}
   */
  notifications(options) {
    const { before, limit, service, unread_only } = options ?? {};
    return this.request("notifications", { before, limit, service, unread_only });
  }

  /**
   * Marks notifications read (`notifications.read`).
   * @param {{ids: number[]} | {all: true, service?: string}} what
   * @returns {Promise<{unread: {total: number, by_service: object}}>}
   */
  markRead(what) {
    const { ids, all, service } = what ?? {};
    return this.request("notifications.read", { ids, all, service });
  }

  // MARK: events

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    if (state === this._state && extra.reason === this._reason) return;
    this._state = state;
    this._reason = extra.reason;
    const detail = { state };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) detail[k] = v;
    this._emit("state", detail);
  }
}

/**
 * Applies a `message.updated` or `message.deleted` push (or an edit/delete result) to a
 * message object in place: the new text and `edited_at`, or a tombstone (`deleted: true`, no
 * text, no attachments). Exported for callers that keep messages of their own.
 * @param {object} message
 * @param {{type?: string, text?: string, edited_at?: number, deleted?: boolean}} change
 * @returns {object} the same message
 */
export function applyChange(message, change) {
  if (change.type === "message.deleted" || change.deleted === true) {
    delete message.text;
    delete message.attachments;
    message.deleted = true;
    return message;
  }
  if (message.deleted) return message; // an edit never revives a deleted message
  if (typeof change.text === "string") message.text = change.text;
  if (typeof change.edited_at === "number") message.edited_at = change.edited_at;
  return message;
}

function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  return d;
}
