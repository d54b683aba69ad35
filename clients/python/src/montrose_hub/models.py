"""The bridge's answers as small typed objects. Each keeps the decoded JSON in `raw`, so a field
a newer hub adds is reachable before this package names it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

Json = Dict[str, Any]


def _int_or_none(v: Any) -> Optional[int]:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class User:
    id: str
    role: str
    name: str
    email: Optional[str]
    services: Optional[List[str]]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json) -> "User":
        return cls(j["id"], j["role"], j["name"], j.get("email"), j.get("services"), j)


@dataclass(frozen=True)
class Assignment:
    service: str
    client: str
    agents: List[str]
    agent_id: Optional[str]
    previous_agent: Optional[str] = None
    removed_agent: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json) -> "Assignment":
        return cls(j["service"], j["client"], list(j.get("agents", [])), j.get("agent_id"),
                   j.get("previous_agent"), j.get("removed_agent"), j)


@dataclass(frozen=True)
class NotificationResult:
    """`ids` for a notification to users (one per distinct user, in the order given); `count`
    for a role or everyone; `unknown`: ids the hub had no user for (stored all the same)."""
    ids: Optional[List[int]]
    count: Optional[int]
    unknown: List[str]
    replayed: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json, replayed: bool = False) -> "NotificationResult":
        return cls(j.get("ids"), j.get("count"), list(j.get("unknown", [])), replayed, j)


@dataclass(frozen=True)
class Broadcast:
    id: int
    delivered_live: int
    replayed: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json, replayed: bool = False) -> "Broadcast":
        return cls(j["id"], j["delivered_live"], replayed, j)


@dataclass(frozen=True)
class Attachment:
    """A file reference on a message (the hub stores references, never files)."""
    url: str
    name: str
    size: int
    content_type: str

    @classmethod
    def from_json(cls, j: Json) -> "Attachment":
        return cls(j["url"], j["name"], j["size"], j["content_type"])

    def to_json(self) -> Json:
        return {"url": self.url, "name": self.name, "size": self.size, "content_type": self.content_type}


@dataclass(frozen=True)
class Sender:
    id: str
    role: str
    name: str


@dataclass(frozen=True)
class Message:
    """A conversation message. `sender` is the wire's `from`. A deleted message is a tombstone:
    `deleted` true, `text` None, no attachments."""
    channel: str
    seq: int
    msg_id: int
    sender: Sender
    text: Optional[str]
    ts: int
    client_msg_id: Optional[str]
    internal: bool = False
    attachments: List[Attachment] = field(default_factory=list)
    edited_at: Optional[int] = None
    deleted: bool = False
    replayed: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json, replayed: bool = False) -> "Message":
        f = j.get("from", {})
        return cls(j["channel"], j["seq"], j["msg_id"], Sender(f.get("id", ""), f.get("role", ""), f.get("name", "")),
                   j.get("text"), j["ts"], j.get("client_msg_id"), bool(j.get("internal", False)),
                   [Attachment.from_json(a) for a in j.get("attachments", []) or []],
                   _int_or_none(j.get("edited_at")), bool(j.get("deleted", False)), replayed, j)


@dataclass(frozen=True)
class MessagePage:
    messages: List[Message]
    more: bool

    @classmethod
    def from_json(cls, j: Json) -> "MessagePage":
        return cls([Message.from_json(m) for m in j.get("messages", [])], bool(j.get("more", False)))


@dataclass(frozen=True)
class MessageEdit:
    """`text` is the text before the edit made at `edited_at` by `editor`."""
    text: str
    edited_at: int
    editor: str


@dataclass(frozen=True)
class MessageEdits:
    message: Message
    edits: List[MessageEdit]

    @classmethod
    def from_json(cls, j: Json) -> "MessageEdits":
        return cls(Message.from_json(j["message"]),
                   [MessageEdit(e["text"], e["edited_at"], e.get("editor", "")) for e in j.get("edits", [])])


@dataclass(frozen=True)
class ConversationStatus:
    channel: str
    status: str
    status_by: Optional[str]
    status_at: Optional[int]

    @classmethod
    def from_json(cls, j: Json) -> "ConversationStatus":
        return cls(j["channel"], j["status"], j.get("status_by"), j.get("status_at"))


@dataclass(frozen=True)
class Unread:
    total: int
    by_service: Dict[str, int]

    @classmethod
    def from_json(cls, j: Json) -> "Unread":
        return cls(j.get("total", 0), dict(j.get("by_service", {})))


@dataclass(frozen=True)
class Notification:
    id: int
    service: str
    category: str
    title: str
    body: str
    data: Json
    ts: int
    read: bool
    broadcast: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json) -> "Notification":
        return cls(j["id"], j["service"], j["category"], j["title"], j.get("body", ""), dict(j.get("data") or {}),
                   j["ts"], bool(j.get("read", False)), bool(j.get("broadcast", False)), j)


@dataclass(frozen=True)
class NotificationPage:
    items: List[Notification]
    unread: Unread
    more: bool

    @classmethod
    def from_json(cls, j: Json) -> "NotificationPage":
        return cls([Notification.from_json(n) for n in j.get("items", [])], Unread.from_json(j.get("unread", {})),
                   bool(j.get("more", False)))


@dataclass(frozen=True)
class Recipient:
    user: str
    stored: bool
    pushed: bool
    read: bool
    email: Optional[str]


@dataclass(frozen=True)
class Receipt:
    """A notification with each recipient's state (`GET /v1/notifications/{id}`)."""
    notification: Notification
    audience: Optional[str]
    addressed: int
    recipients: List[Recipient]

    @classmethod
    def from_json(cls, j: Json) -> "Receipt":
        return cls(Notification.from_json(j), j.get("audience"), j.get("addressed", 0),
                   [Recipient(r["user"], r["stored"], r["pushed"], r["read"], r.get("email")) for r in j.get("recipients", [])])


@dataclass(frozen=True)
class Token:
    token: str
    expires_at: int


@dataclass(frozen=True)
class DayCount:
    day: str
    service: str
    messages: int
    notifications: int


@dataclass(frozen=True)
class Stats:
    connections: int
    websockets: int
    users_online: int
    agents_online: int
    online_by_role: Dict[str, int]
    users_by_role: Dict[str, int]
    messages_stored: int
    notifications_stored: int
    messages_total: int
    notifications_total: int
    outbox: Dict[str, Any]
    writer: Dict[str, int]
    days: List[DayCount]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json) -> "Stats":
        return cls(j.get("connections", 0), j.get("websockets", 0), j.get("users_online", 0), j.get("agents_online", 0),
                   dict(j.get("online_by_role", {})), dict(j.get("users_by_role", {})),
                   j.get("messages_stored", 0), j.get("notifications_stored", 0),
                   j.get("messages_total", 0), j.get("notifications_total", 0),
                   dict(j.get("outbox", {})), dict(j.get("writer", {})),
                   [DayCount(d["day"], d["service"], d["messages"], d["notifications"]) for d in j.get("days", [])], j)


@dataclass(frozen=True)
class Durations:
    count: int
    median: Optional[int]
    p90: Optional[int]


@dataclass(frozen=True)
class SupportFigures:
    opened: int
    resolved: int
    first_response_ms: Durations
    resolution_ms: Durations

    @classmethod
    def from_json(cls, j: Json) -> "SupportFigures":
        def d(x: Json) -> Durations:
            return Durations(x.get("count", 0), x.get("median"), x.get("p90"))
        return cls(j.get("opened", 0), j.get("resolved", 0), d(j.get("first_response_ms", {})), d(j.get("resolution_ms", {})))


@dataclass(frozen=True)
class SupportReport:
    service: Optional[str]
    from_ms: int
    to_ms: int
    total: SupportFigures
    by_service: Dict[str, SupportFigures]
    by_agent: Dict[str, SupportFigures]
    queue: List[Json]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Json) -> "SupportReport":
        return cls(j.get("service"), j["from"], j["to"], SupportFigures.from_json(j.get("total", {})),
                   {k: SupportFigures.from_json(v) for k, v in j.get("by_service", {}).items()},
                   {k: SupportFigures.from_json(v) for k, v in j.get("by_agent", {}).items()},
                   list(j.get("queue", [])), j)


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    type: str
    attempt: int
    ts: int
    status: Optional[int]
    error: Optional[str]
    duration_ms: int
    state: str


@dataclass(frozen=True)
class WebhookDeliveries:
    configured: bool
    deliveries: List[WebhookDelivery]

    @classmethod
    def from_json(cls, j: Json) -> "WebhookDeliveries":
        return cls(bool(j.get("configured", False)),
                   [WebhookDelivery(d["event_id"], d["type"], d["attempt"], d["ts"], d.get("status"), d.get("error"),
                                    d.get("duration_ms", 0), d["state"]) for d in j.get("deliveries", [])])


@dataclass(frozen=True)
class SearchHit:
    channel: str
    seq: int
    msg_id: int
    sender: Sender
    ts: int
    #: HTML: the text around the first match, matched words in <mark>, everything else escaped.
    snippet: str
    internal: bool = False

    @classmethod
    def from_json(cls, j: Json) -> "SearchHit":
        f = j.get("from", {})
        return cls(j["channel"], j["seq"], j["msg_id"], Sender(f.get("id", ""), f.get("role", ""), f.get("name", "")),
                   j["ts"], j.get("snippet", ""), bool(j.get("internal", False)))


@dataclass(frozen=True)
class SearchPage:
    items: List[SearchHit]
    more: bool

    @classmethod
    def from_json(cls, j: Json) -> "SearchPage":
        return cls([SearchHit.from_json(h) for h in j.get("items", [])], bool(j.get("more", False)))


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook body: `id` (drop one already handled: delivery is at least once),
    `type` (`message.created`, …), `ts` (ms), `data`."""
    id: str
    type: str
    ts: int
    data: Json
    timestamp: int
