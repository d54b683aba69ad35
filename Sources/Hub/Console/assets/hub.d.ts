// hub.d.ts — TypeScript types for hub.js, the browser client of Montrose Hub (served at /hub.d.ts).
//
// Copy hub.js and this file side by side into an app and `import { HubClient } from "./hub.js"`:
// TypeScript reads these types for that module. The wire contract is docs/protocol.md; the
// API is hub.js's (API.md beside it). `clients/typescript-check` in the repository type-checks
// an example using every op and event against this file (tsc --strict) and runs it on Node.

// MARK: vocabulary

/** The roles a token can carry. */
export type Role = "admin" | "website_agent" | "marketing_agent" | "client";
/** Who a message can be from: a role, the platform (`system`) or a bot user. */
export type SenderRole = Role | "system" | "bot";
/** The services conversations exist for. */
export type ConversationService = "marketing" | "website" | "courses" | "support";
/** The services notifications may carry. */
export type NotificationService = ConversationService | "wallet" | "platform";
export type NotificationCategory = "payments" | "messages" | "analytics" | "updates";
/** What an agent or admin sets with `status`. */
export type AgentStatus = "available" | "busy" | "away";
/** `presence` lists clients as `online`. */
export type PresenceStatus = AgentStatus | "online";
/** A conversation's support-desk status. */
export type ConversationStatusValue = "open" | "pending" | "resolved";
/** `user:<id>` or `conv:<service>:<clientId>`. */
export type Channel = string;

/** The hub's error codes (`error.code` of a failed reply; stable). */
export type ServerErrorCode =
  | "bad_request" | "unauthorized" | "forbidden" | "not_found" | "conflict" | "too_large"
  | "rate_limited" | "unavailable" | "internal";
/** Codes hub.js gives failures of its own: no reply in time, the connection lost before the
 *  reply (`unavailable`, as the hub's), close() called, unsubscribed while a subscribe waited. */
export type ClientErrorCode = "timeout" | "closed" | "cancelled";
export type HubErrorCode = ServerErrorCode | ClientErrorCode;

/** The client's connection states (`state` getter and `state` event). */
export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline" | "closed";

// MARK: objects

export interface UserRef { id: string; role: Role; name: string }
export interface Sender { id: string; role: SenderRole; name: string }

/** A file reference on a message (the hub stores references, never files). */
export interface Attachment { url: string; name: string; size: number; content_type: string }

/** A conversation message. A deleted one is a tombstone: `deleted: true`, no `text`, no
 *  `attachments`; its seq stays. */
export interface Message {
  channel: Channel;
  seq: number;
  msg_id: number;
  from: Sender;
  text?: string;
  ts: number;
  /** null for a bridge message posted without one; `idem:<key>` when an Idempotency-Key stood in. */
  client_msg_id: string | null;
  /** Present on internal notes (agents and admins only). */
  internal?: true;
  attachments?: Attachment[];
  edited_at?: number;
  deleted?: true;
}

export interface Unread { total: number; by_service: Partial<Record<NotificationService, number>> }

export interface Notification {
  id: number;
  service: NotificationService;
  category: NotificationCategory;
  title: string;
  body: string;
  data: Record<string, unknown>;
  ts: number;
  read: boolean;
  /** Present on broadcasts in a list. */
  broadcast?: true;
}

export interface ReadMark { user: string; seq: number }
export interface PresenceEntry { id: string; role: Role; name: string; status: PresenceStatus }

export interface ConversationStatus {
  channel: Channel;
  status: ConversationStatusValue;
  status_by: string | null;
  status_at: number | null;
}

export interface ConversationItem extends ConversationStatus {
  client: string;
  agents: string[];
  last_message: Message | null;
  unread: number;
  names: Record<string, string>;
  unassigned: boolean;
}

export interface Assignment { service: ConversationService; client: string; agents: string[] }

export interface Durations { count: number; median: number | null; p90: number | null }
export interface SupportFigures { opened: number; resolved: number; first_response_ms: Durations; resolution_ms: Durations }
export interface SupportReport {
  service: ConversationService | null;
  from: number;
  to: number;
  total: SupportFigures;
  by_service: Partial<Record<ConversationService, SupportFigures>>;
  by_agent: Record<string, SupportFigures>;
  queue: { ts: number; length: number; peak: number }[];
}

export interface CountByRole { admin: number; website_agent: number; marketing_agent: number; client: number }
export interface AdminStats {
  connections: number;
  websockets: number;
  users_online: number;
  agents_online: number;
  online_by_role: CountByRole;
  messages_stored: number;
  notifications_stored: number;
  messages_total: number;
  notifications_total: number;
}

export interface SearchHit {
  channel: Channel;
  seq: number;
  msg_id: number;
  from: Sender;
  ts: number;
  /** HTML whose only tags are <mark>…</mark> around the matched words. */
  snippet: string;
  /** Present on internal notes (found by agents and admins only). */
  internal?: true;
}

export interface MessageEdit { text: string; edited_at: number; editor: string }

// MARK: ops

/** The auth result: `connect()` resolves with it, `hub.user` holds it, `auth` events carry it. */
export interface AuthResult { user: string; role: Role; name: string; session: string; server_time: number }

export interface SubscribeResult {
  last_seq: number;
  messages: Message[];
  more: boolean;
  read_marks?: ReadMark[];
  epoch?: string;
  /** The `since` given was of another epoch: the result starts from the beginning. */
  reset?: true;
}
export interface SendResult { seq: number; msg_id: number; ts: number; duplicate: boolean }
export interface MessagePage { messages: Message[]; more: boolean }
export interface NotificationPage { items: Notification[]; unread: Unread; more: boolean }
export type MarkReadParams =
  | { ids: number[]; all?: undefined; service?: NotificationService }
  | { all: true; ids?: undefined; service?: NotificationService };

/** Every op of the WebSocket contract: its parameters (besides `id` and `op`) and its result. */
export interface HubOps {
  auth: { params: { token: string }; result: AuthResult };
  ping: { params: Record<string, never>; result: Record<string, never> };
  subscribe: { params: { channel: Channel; since?: number; epoch?: string }; result: SubscribeResult };
  unsubscribe: { params: { channel: Channel }; result: Record<string, never> };
  send: {
    params: { channel: Channel; text: string; client_msg_id: string; internal?: boolean; attachments?: Attachment[] };
    result: SendResult;
  };
  history: { params: { channel: Channel; before?: number; limit?: number }; result: MessagePage };
  read: { params: { channel: Channel; seq: number }; result: { seq: number } };
  typing: { params: { channel: Channel }; result: Record<string, never> };
  presence: { params: { channel: Channel }; result: { online: PresenceEntry[] } };
  status: { params: { status: AgentStatus }; result: Record<string, never> };
  conversations: {
    params: { service?: ConversationService; status?: ConversationStatusValue; queue?: boolean; before?: number; limit?: number };
    result: { conversations: ConversationItem[]; more: boolean };
  };
  notifications: {
    params: { before?: number; limit?: number; service?: NotificationService; unread_only?: boolean };
    result: NotificationPage;
  };
  "notifications.read": { params: MarkReadParams; result: { unread: Unread } };
  "admin.broadcast": { params: { audience?: "all" | Role; title: string; body?: string }; result: { id: number; delivered_live: number } };
  "admin.stats": { params: Record<string, never>; result: AdminStats };
  "admin.report": { params: { from?: number; to?: number; service?: ConversationService }; result: SupportReport };
  "conversation.status": { params: { channel: Channel; status: ConversationStatusValue }; result: ConversationStatus };
  claim: { params: { channel: Channel }; result: Assignment };
  assign: { params: { channel: Channel; agent_id: string }; result: Assignment & { previous_agent: string | null } };
  edit: { params: { channel: Channel; seq: number; text: string }; result: { seq: number; edited_at: number | null } };
  delete: { params: { channel: Channel; seq: number }; result: { seq: number } };
  edits: { params: { channel: Channel; seq: number }; result: { message: Message; edits: MessageEdit[] } };
  search: {
    params: { query: string; channel?: Channel; service?: ConversationService; before?: number; limit?: number };
    result: { items: SearchHit[]; more: boolean };
  };
}
export type OpName = keyof HubOps;
export type OpParams<K extends OpName> = HubOps[K]["params"];
export type OpResult<K extends OpName> = HubOps[K]["result"];

// MARK: pushes

export interface MessagePush extends Message { type: "message" }
export interface MessageUpdatedPush { type: "message.updated"; channel: Channel; seq: number; msg_id: number; text: string; edited_at: number; internal?: true }
export interface MessageDeletedPush { type: "message.deleted"; channel: Channel; seq: number; msg_id: number; internal?: true }
export interface ReadPush { type: "read"; channel: Channel; user: string; seq: number }
export interface TypingPush { type: "typing"; channel: Channel; user: string; name: string }
export interface JoinPush { type: "join"; channel: Channel; user: UserRef }
export interface LeavePush { type: "leave"; channel: Channel; user: UserRef }
export interface StatusPush { type: "status"; channel: Channel; user: string; status: AgentStatus }
export interface RevokedPush { type: "revoked"; channel: Channel }
export interface NotificationPush extends Notification { type: "notification" }
export interface UnreadPush extends Unread { type: "unread" }
export interface BroadcastPush { type: "broadcast"; id: number; title: string; body: string; data: Record<string, unknown>; ts: number }
export interface AssignmentPush extends Assignment { type: "assignment" }
export interface ConversationPush extends ConversationStatus { type: "conversation" }
export interface QueuePush {
  type: "queue";
  channel: Channel;
  client: string;
  service: ConversationService;
  last_message: Message | null;
  unassigned: boolean;
}

/** Every push of the hub, discriminated on `type`. */
export type Push =
  | MessagePush | MessageUpdatedPush | MessageDeletedPush | ReadPush | TypingPush | JoinPush | LeavePush
  | StatusPush | RevokedPush | NotificationPush | UnreadPush | BroadcastPush | AssignmentPush
  | ConversationPush | QueuePush;
export type PushType = Push["type"];
export type PushOf<T extends PushType> = Extract<Push, { type: T }>;

// MARK: events

export interface StateDetail {
  state: ConnectionState;
  /** "network" (offline), "unauthorized" (the token was refused: no reconnect), "bad_url". */
  reason?: "network" | "unauthorized" | "bad_url";
  /** The close code that caused a reconnect. */
  code?: number;
}
/** A failure nobody awaited (a remembered subscribe refused, a token function that threw). */
export interface ErrorDetail { code: HubErrorCode | "token"; message: string; op?: string; channel?: Channel }
/** The hub's store has another epoch: drop what is shown for the channel; it comes again from seq 1. */
export interface ResetDetail { channel: Channel; epoch?: string }

/** `addEventListener(type, e => e.detail)`: each event's detail. A push's event has the push's
 *  name and the push as detail; `message` comes once per seq per channel, in order. */
export type HubEventMap = { [T in PushType]: PushOf<T> } & {
  state: StateDetail;
  auth: AuthResult;
  error: ErrorDetail;
  reset: ResetDetail;
};
export type HubEventType = keyof HubEventMap;
export type HubEvent<K extends HubEventType> = CustomEvent<HubEventMap[K]>;

// MARK: the client

export interface HubClientOptions {
  /** The hub's WebSocket URL, e.g. "wss://hub.example.com/ws". */
  url: string;
  /** The JWT, or a function asked for one before each (re)connect (for short-lived tokens). */
  token: string | (() => string | Promise<string>);
  /** How long a request waits for its reply (default 10000). */
  requestTimeoutMs?: number;
  /** Reconnect backoff bounds (default 500 and 15000). */
  reconnect?: { minMs?: number; maxMs?: number };
  /** Idle check of a live connection (default 25000; 0 = off). */
  pingIntervalMs?: number;
}

/** An error reply of the hub, or a client-side failure (see HubErrorCode). */
export declare class HubError extends Error {
  constructor(code: HubErrorCode, message?: string);
  readonly name: "HubError";
  code: HubErrorCode;
}

export interface PendingSend { client_msg_id: string; text: string; channel: Channel; internal: boolean; attachments?: Attachment[] }

/** A connection to the hub that survives disconnects (see hub.js). */
export declare class HubClient extends EventTarget {
  constructor(options: HubClientOptions);
  readonly url: string;
  /** The token (or token function) used on the next (re)connect; may be replaced. */
  token: HubClientOptions["token"];
  requestTimeoutMs: number;
  reconnect: { minMs: number; maxMs: number };
  pingIntervalMs: number;
  /** The auth result, once authenticated (null before). */
  user: AuthResult | null;
  readonly state: ConnectionState;

  /** Opens the connection and keeps it open; resolves once authenticated. Rejects with
   *  HubError "unauthorized" when the token is refused, "closed" when close() comes first. */
  connect(): Promise<AuthResult>;
  /** Closes for good: no reconnect; waiting requests and queued sends reject with "closed". */
  close(): void;

  /** One op, resolved with its result; rejects with HubError. Low level: subscribe,
   *  unsubscribe and send below keep the bookkeeping (recovery, retries). */
  request<K extends OpName>(op: K, ...params: Record<string, never> extends OpParams<K>
    ? [params?: OpParams<K>] : [params: OpParams<K>]): Promise<OpResult<K>>;

  /** Subscribes and remembers the channel: re-subscribed with `since` after every reconnect;
   *  missed messages come as `message` events, in order, never twice. */
  subscribe(channel: Channel, options?: { since?: number; epoch?: string }): Promise<SubscribeResult>;
  unsubscribe(channel: Channel): Promise<Record<string, never>>;
  /** Queued per channel, sent in order with a client_msg_id made once, retried with it until
   *  acknowledged (`duplicate: true` is a success). `internal: true`: an internal note;
   *  `attachments`: up to 10 file references (then `text` may be ""). */
  send(channel: Channel, text: string, options?: { internal?: boolean; attachments?: Attachment[] }): Promise<SendResult>;
  /** The sends not yet acknowledged, oldest first. */
  pending(channel?: Channel): PendingSend[];
  history(channel: Channel, options?: { before?: number; limit?: number }): Promise<MessagePage>;
  /** Changes one of my messages' text within the edit window; every subscriber gets `message.updated`. */
  edit(channel: Channel, seq: number, text: string): Promise<OpResult<"edit">>;
  /** Deletes a message (mine within the window; anyone's for an admin): a tombstone stays. */
  deleteMessage(channel: Channel, seq: number): Promise<OpResult<"delete">>;
  /** The same as deleteMessage (the op's own name). */
  delete(channel: Channel, seq: number): Promise<OpResult<"delete">>;
  /** An admin reads a message's earlier texts, oldest first. */
  edits(channel: Channel, seq: number): Promise<OpResult<"edits">>;
  /** Messages the caller may read, newest first; `before` is a msg_id. */
  search(params: OpParams<"search">): Promise<OpResult<"search">>;
  read(channel: Channel, seq: number): Promise<{ seq: number }>;
  typing(channel: Channel): Promise<Record<string, never>>;
  presence(channel: Channel): Promise<{ online: PresenceEntry[] }>;
  status(status: AgentStatus): Promise<Record<string, never>>;
  conversations(options?: OpParams<"conversations">): Promise<OpResult<"conversations">>;
  /** `conversation.status` (the assigned agent, admins). */
  setStatus(channel: Channel, status: ConversationStatusValue): Promise<ConversationStatus>;
  claim(channel: Channel): Promise<Assignment>;
  assign(channel: Channel, agentId: string): Promise<OpResult<"assign">>;
  notifications(options?: OpParams<"notifications">): Promise<NotificationPage>;
  /** `notifications.read`. */
  markRead(what: MarkReadParams): Promise<{ unread: Unread }>;

  addEventListener<K extends HubEventType>(type: K, listener: (event: HubEvent<K>) => void,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends HubEventType>(type: K, listener: (event: HubEvent<K>) => void,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

/** Applies a `message.updated` or `message.deleted` push (or an edit or delete result) to a
 *  message in place: the new text and `edited_at`, or a tombstone. Returns the same message. */
export declare function applyChange<M extends Partial<Message>>(message: M,
  change: MessageUpdatedPush | MessageDeletedPush | { type?: string; text?: string; edited_at?: number | null; deleted?: boolean }): M;
