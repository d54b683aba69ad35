// Every op and every event of hub.js through hub.d.ts, type-checked with `tsc --noEmit --strict`
// so the types cannot drift from the contract unnoticed; `main` also runs under Node against a
// real hub (run.sh starts one): auth, subscribe, send, history, ping, and the pushes they cause.
import {
  HubClient, HubError, applyChange, type AuthResult, type ConnectionState, type HubErrorCode, type Message, type OpName,
  type Push, type PushType, type SendResult,
} from "./hub.js";

declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

// MARK: every push, exhaustively (a new push type without a case fails the `never` check)

export function describe(push: Push): string {
  switch (push.type) {
    case "message": return `${push.channel}#${push.seq} ${push.from.name} (${push.from.role}): ${push.text ?? "(deleted)"}`;
    case "message.updated": return `${push.channel}#${push.seq} edited at ${push.edited_at}: ${push.text}`;
    case "message.deleted": return `${push.channel}#${push.seq} deleted${push.internal ? " (note)" : ""}`;
    case "read": return `${push.user} read ${push.channel} up to ${push.seq}`;
    case "typing": return `${push.name} (${push.user}) is typing in ${push.channel}`;
    case "join": return `${push.user.name} (${push.user.role}) joined ${push.channel}`;
    case "leave": return `${push.user.id} left ${push.channel}`;
    case "status": return `${push.user} is ${push.status} in ${push.channel}`;
    case "revoked": return `access to ${push.channel} revoked`;
    case "notification": return `[${push.service}/${push.category}] ${push.title} ${push.read ? "" : "(unread)"} ${JSON.stringify(push.data)}`;
    case "unread": return `unread ${push.total} ${JSON.stringify(push.by_service)}`;
    case "broadcast": return `broadcast ${push.id}: ${push.title} — ${push.body}`;
    case "assignment": return `${push.service}/${push.client} served by ${push.agents.join(", ") || "nobody"}`;
    case "conversation": return `${push.channel} is ${push.status} (by ${push.status_by ?? "-"} at ${push.status_at ?? "-"})`;
    case "queue": return `${push.channel} ${push.unassigned ? "waits" : "was taken"}; last: ${push.last_message?.text ?? "-"}`;
    default: {
      const unhandled: never = push;
      return unhandled;
    }
  }
}

const PUSH_TYPES: PushType[] = ["message", "message.updated", "message.deleted", "read", "typing", "join", "leave",
  "status", "revoked", "notification", "unread", "broadcast", "assignment", "conversation", "queue"];

// MARK: every event, each with its typed detail

export function listenToEverything(hub: HubClient, log: (line: string) => void): void {
  hub.addEventListener("state", e => {
    const s: ConnectionState = e.detail.state;
    log(`state ${s}${e.detail.reason ? ` (${e.detail.reason})` : ""}${e.detail.code ? ` code ${e.detail.code}` : ""}`);
  });
  hub.addEventListener("auth", e => log(`signed in as ${e.detail.user} (${e.detail.role}), session ${e.detail.session}`));
  hub.addEventListener("error", e => log(`error ${e.detail.code}: ${e.detail.message} ${e.detail.op ?? ""} ${e.detail.channel ?? ""}`));
  hub.addEventListener("reset", e => log(`reset ${e.detail.channel} to epoch ${e.detail.epoch ?? "?"}`));
  hub.addEventListener("message", e => log(describe(e.detail)));
  hub.addEventListener("message.updated", e => log(describe(e.detail)));
  hub.addEventListener("message.deleted", e => log(describe(e.detail)));
  hub.addEventListener("read", e => log(describe(e.detail)));
  hub.addEventListener("typing", e => log(describe(e.detail)));
  hub.addEventListener("join", e => log(describe(e.detail)));
  hub.addEventListener("leave", e => log(describe(e.detail)));
  hub.addEventListener("status", e => log(describe(e.detail)));
  hub.addEventListener("revoked", e => log(describe(e.detail)));
  hub.addEventListener("notification", e => log(describe(e.detail)));
  hub.addEventListener("unread", e => log(describe(e.detail)));
  hub.addEventListener("broadcast", e => log(describe(e.detail)));
  hub.addEventListener("assignment", e => log(describe(e.detail)));
  hub.addEventListener("conversation", e => log(describe(e.detail)));
  hub.addEventListener("queue", e => log(describe(e.detail)));
}

// MARK: every op (type-checked; main runs a handful)

export async function everyOp(hub: HubClient, channel: string, token: string): Promise<void> {
  const auth: AuthResult = await hub.connect();
  const again = await hub.request("auth", { token });
  await hub.request("ping");
  const sub = await hub.subscribe(channel, { since: 0 });
  const marks = sub.read_marks?.map(m => `${m.user}@${m.seq}`) ?? [];
  await hub.request("subscribe", { channel, since: sub.last_seq, epoch: sub.epoch });
  const sent: SendResult = await hub.send(channel, "hello", { internal: false });
  await hub.request("send", {
    channel, text: "", client_msg_id: "c-1",
    attachments: [{ url: "https://files.example.com/a.pdf", name: "a.pdf", size: 10, content_type: "application/pdf" }],
  });
  const page = await hub.history(channel, { before: sent.seq, limit: 10 });
  await hub.request("history", { channel, limit: 1 });
  await hub.read(channel, sent.seq);
  await hub.request("read", { channel, seq: sent.seq });
  await hub.typing(channel);
  await hub.request("typing", { channel });
  const { online } = await hub.presence(channel);
  await hub.request("presence", { channel });
  await hub.status("busy");
  await hub.request("status", { status: "away" });
  const convs = await hub.conversations({ service: "website", status: "open", queue: false, limit: 20 });
  await hub.request("conversations", { before: convs.conversations.at(-1)?.last_message?.ts });
  const notes = await hub.notifications({ limit: 5, service: "wallet", unread_only: true });
  await hub.request("notifications", {});
  await hub.markRead({ ids: notes.items.map(n => n.id) });
  await hub.markRead({ all: true, service: "wallet" });
  await hub.request("notifications.read", { all: true });
  const b = await hub.request("admin.broadcast", { audience: "client", title: "Hi", body: "All" });
  const stats = await hub.request("admin.stats");
  const report = await hub.request("admin.report", { service: "support" });
  const status = await hub.setStatus(channel, "pending");
  await hub.request("conversation.status", { channel, status: "resolved" });
  const claimed = await hub.claim(channel);
  await hub.request("claim", { channel });
  const assigned = await hub.assign(channel, "wes");
  await hub.request("assign", { channel, agent_id: "wes" });
  const edited = await hub.request("edit", { channel, seq: sent.seq, text: "hello again" });
  await hub.edit(channel, sent.seq, "hello once more");
  const edits = await hub.request("edits", { channel, seq: sent.seq });
  await hub.edits(channel, sent.seq);
  await hub.request("delete", { channel, seq: sent.seq });
  await hub.deleteMessage(channel, sent.seq);
  await hub.delete(channel, sent.seq);
  const found = await hub.request("search", { query: "hello", channel, service: "website", limit: 5 });
  const more = await hub.search({ query: "hello", before: found.items.at(-1)?.msg_id });
  const shown: Message = applyChange(page.messages[0], { type: "message.deleted", channel, seq: 1, msg_id: 1 });
  await hub.send(channel, "", { attachments: [{ url: "https://files.example.com/b.png", name: "b.png", size: 1, content_type: "image/png" }] });
  console.log(more.more, shown.deleted, hub.pending().map(p => p.attachments?.length));
  await hub.unsubscribe(channel);
  await hub.request("unsubscribe", { channel });
  const waiting = hub.pending(channel).map(p => p.client_msg_id);
  console.log(auth.user, again.session, marks, page.more, online.map(u => u.status), b.delivered_live,
    stats.online_by_role.client, report.total.first_response_ms.median, status.status_by, claimed.agents,
    assigned.previous_agent, edited.edited_at, edits.edits.map(x => x.editor), found.items.map(h => h.snippet),
    waiting, hub.state, hub.user?.role);
  hub.close();
}

export function codeOf(err: unknown): HubErrorCode | "other" {
  return err instanceof HubError ? err.code : "other";
}

const OPS: OpName[] = ["auth", "ping", "subscribe", "unsubscribe", "send", "history", "read", "typing", "presence",
  "status", "conversations", "notifications", "notifications.read", "admin.broadcast", "admin.stats",
  "admin.report", "conversation.status", "claim", "assign", "edit", "delete", "edits", "search"];

// MARK: the Node run

function waitFor<T>(what: string, ms: number, arm: (done: (value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    arm(value => { clearTimeout(timer); resolve(value); });
  });
}

async function main(): Promise<void> {
  const { HUB_WS, HUB_BRIDGE, BRIDGE_KEY, CLIENT_ID, CLIENT_TOKEN } = process.env;
  if (!HUB_WS || !HUB_BRIDGE || !BRIDGE_KEY || !CLIENT_ID || !CLIENT_TOKEN) throw new Error("HUB_WS, HUB_BRIDGE, BRIDGE_KEY, CLIENT_ID and CLIENT_TOKEN are required");
  const channel = `conv:website:${CLIENT_ID}`;
  const states: ConnectionState[] = [];
  const hub = new HubClient({ url: HUB_WS, token: async () => CLIENT_TOKEN, requestTimeoutMs: 5000 });
  listenToEverything(hub, line => console.log("  event:", line));
  hub.addEventListener("state", e => { states.push(e.detail.state); });
  const ops: string[] = [];

  const auth = await hub.connect();
  if (auth.user !== CLIENT_ID || auth.role !== "client") throw new Error(`auth answered ${JSON.stringify(auth)}`);
  ops.push("auth");
  await hub.request("ping");
  ops.push("ping");
  const sub = await hub.subscribe(channel);
  ops.push("subscribe");

  const echoed = waitFor<Message>("message push of our send", 5000, done =>
    hub.addEventListener("message", e => { if (e.detail.text === "hello from node") done(e.detail); }));
  const sent = await hub.send(channel, "hello from node");
  ops.push("send");
  const push = await echoed;
  if (push.seq !== sent.seq || sent.seq !== sub.last_seq + 1 || push.from.id !== CLIENT_ID) throw new Error("the push is not our message");

  const page = await hub.history(channel, { limit: 10 });
  ops.push("history");
  if (page.messages.at(-1)?.msg_id !== sent.msg_id) throw new Error("history lacks the message");

  const found = await hub.search({ query: "hello node", channel });
  ops.push("search");
  if (found.items[0]?.msg_id !== sent.msg_id || !found.items[0].snippet.includes("<mark>node</mark>")) {
    throw new Error(`search answered ${JSON.stringify(found)}`);
  }

  const updated = waitFor<string>("message.updated push", 5000, done =>
    hub.addEventListener("message.updated", e => done(e.detail.text)));
  const edit = await hub.edit(channel, sent.seq, "hello from node, edited");
  ops.push("edit");
  if ((await updated) !== "hello from node, edited" || typeof edit.edited_at !== "number") throw new Error("edit not pushed");

  const deleted = waitFor<number>("message.deleted push", 5000, done =>
    hub.addEventListener("message.deleted", e => done(e.detail.seq)));
  await hub.deleteMessage(channel, sent.seq);
  ops.push("delete");
  const tomb = applyChange({ ...push }, { type: "message.deleted", channel, seq: sent.seq, msg_id: sent.msg_id });
  if ((await deleted) !== sent.seq || !tomb.deleted || tomb.text !== undefined) throw new Error("delete not pushed");

  const notified = waitFor<string>("notification push", 5000, done =>
    hub.addEventListener("notification", e => done(e.detail.title)));
  const posted = await fetch(`${HUB_BRIDGE}/v1/notifications`, {
    method: "POST", headers: { Authorization: `Bearer ${BRIDGE_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ to: { users: [CLIENT_ID] }, service: "wallet", category: "payments", title: "Paid from the bridge" }),
  });
  if (posted.status !== 201) throw new Error(`bridge answered ${posted.status}`);
  if ((await notified) !== "Paid from the bridge") throw new Error("wrong notification");
  const list = await hub.notifications({ limit: 5 });
  ops.push("notifications");

  try {
    await hub.request("subscribe", { channel: "conv:website:someone-else" });
    throw new Error("another client's conversation was not refused");
  } catch (err) {
    if (codeOf(err) !== "forbidden") throw err;
  }
  ops.push("subscribe (forbidden)");

  hub.close();
  if (hub.state !== "closed" || !states.includes("live")) throw new Error(`states ${states.join(",")}`);
  console.log(`node run ok: ${ops.length} ops (${ops.join(", ")}), pushes message, message.updated, message.deleted, notification; ` +
    `${list.unread.total} unread; ${OPS.length} ops and ${PUSH_TYPES.length} push types typed`);
}

main().catch(err => {
  console.error("node run failed:", err instanceof HubError ? `${err.code}: ${err.message}` : err);
  process.exit(1);
});
