"""`Hub`: one method per bridge call (docs/protocol.md "Bridge API", docs/openapi.yaml).

Every call has a timeout. A call that gets no answer (connection refused or cut, timeout), a
429 or a 5xx (but 501 and 505, which a retry cannot change) is retried with jittered
exponential backoff, honouring Retry-After. Each POST carries an Idempotency-Key, generated
unless given, and its retries send the same key with the same body bytes, so the hub answers
a retry with the first answer and changes nothing. PUT and DELETE are idempotent by themselves
(a DELETE of an assignment retried after a lost answer gets 404: it is gone either way).
"""
from __future__ import annotations

import email.utils
import http.client
import json
import random
import secrets
import socket
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode, urlsplit

from .errors import HubConnectionError, HubError, HubTimeoutError, error_for
from .models import (Assignment, Attachment, Broadcast, ConversationStatus, Message, MessageEdits, MessagePage,
                     NotificationPage, NotificationResult, Receipt, SearchPage, Stats, SupportReport, Token, User,
                     WebhookDeliveries)

Json = Dict[str, Any]
AttachmentLike = Union[Attachment, Mapping[str, Any]]

_NOT_RETRIED_5XX = (501, 505)
_MAX_RETRY_AFTER = 60.0


def new_idempotency_key() -> str:
    """A fresh key: 24 random bytes, URL-safe (visible ASCII, as the bridge requires)."""
    return "mh-" + secrets.token_urlsafe(24)


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: Any) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def replayed(self) -> bool:
        return self.headers.get("idempotent-replayed", "").lower() == "true"


class Hub:
    """The bridge of a Montrose Hub.

        hub = Hub("http://127.0.0.1:8081", key="…")
        hub.notify_users(["ann"], service="wallet", category="payments", title="Top-up received")

    `timeout` (seconds) bounds each attempt (connect, send, and each read); `retries` is how many
    times a failed attempt is tried again (0: never); `backoff` and `max_backoff` (seconds)
    shape the waits between attempts: full jitter over backoff * 2**attempt, capped.
    """

    def __init__(self, url: str, key: str, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.2, max_backoff: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http(s)://host[:port] (the hub's bridge listener)")
        if not key:
            raise ValueError("key (a --bridge-key of the hub) is required")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._key = key
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep

    # MARK: transport

    def request(self, method: str, path: str, body: Optional[Json] = None, query: Optional[Mapping[str, Any]] = None,
                idempotency_key: Optional[str] = None) -> Response:
        """One bridge call with retries; raises HubError (a subclass) on an error answer."""
        target = self._prefix + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urlencode(params)
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json",
                   "User-Agent": "montrose-hub-python/0.9"}
        payload: Optional[bytes] = None
        if body is not None:
            # Serialized once: every retry sends the same bytes, which the hub's replay compares.
            payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        attempt = 0
        while True:
            try:
                response = self._once(method, target, payload, headers)
            except (OSError, http.client.HTTPException) as e:
                timed_out = isinstance(e, (socket.timeout, TimeoutError))
                if attempt >= self.retries:
                    if timed_out:
                        raise HubTimeoutError("timeout", f"no answer within {self.timeout} s ({method} {path})") from None
                    raise HubConnectionError("connection", f"{type(e).__name__}: {e} ({method} {path})") from None
                self._sleep(self._delay(attempt, None))
                attempt += 1
                continue
            if response.status < 400:
                return response
            retryable = response.status == 429 or (response.status >= 500 and response.status not in _NOT_RETRIED_5XX)
            if not retryable or attempt >= self.retries:
                raise error_for(response.status, response.body)
            self._sleep(self._delay(attempt, response.headers.get("retry-after")))
            attempt += 1

    def _once(self, method: str, target: str, payload: Optional[bytes], headers: Dict[str, str]) -> Response:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(method, target, body=payload, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            resp_headers = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = {"error": {"code": f"http_{r.status}", "message": raw[:200].decode("utf-8", "replace")}}
        return Response(r.status, resp_headers, body)

    def _delay(self, attempt: int, retry_after: Optional[str]) -> float:
        jittered = random.uniform(0, min(self.max_backoff, self.backoff * (2 ** attempt)))
        hinted = _retry_after_seconds(retry_after)
        return max(jittered, min(hinted, _MAX_RETRY_AFTER)) if hinted is not None else jittered

    def _json(self, method: str, path: str, body: Optional[Json] = None, query: Optional[Mapping[str, Any]] = None,
              idempotency_key: Optional[str] = None) -> Tuple[Json, bool]:
        r = self.request(method, path, body, query, idempotency_key)
        return (r.body if isinstance(r.body, dict) else {}), r.replayed

    # MARK: users and assignments

    def put_user(self, user_id: str, role: str, name: str, email: Optional[str] = None,
                 services: Optional[Sequence[str]] = None) -> User:
        """Creates or updates a user (`role` a token role, or `bot`). An absent email keeps the stored one."""
        body: Json = {"role": role, "name": name}
        if email is not None:
            body["email"] = email
        if services is not None:
            body["services"] = list(services)
        j, _ = self._json("PUT", f"/v1/users/{_seg(user_id)}", body)
        return User.from_json(j)

    def put_assignment(self, service: str, client_id: str, agent_id: str) -> Assignment:
        """Makes `agent_id` the one agent serving `client_id` for `service` (replacing any other)."""
        j, _ = self._json("PUT", f"/v1/assignments/{_seg(service)}/{_seg(client_id)}", {"agent_id": agent_id})
        return Assignment.from_json(j)

    def delete_assignment(self, service: str, client_id: str) -> Assignment:
        """Removes the assignment; NotFoundError when there was none."""
        j, _ = self._json("DELETE", f"/v1/assignments/{_seg(service)}/{_seg(client_id)}")
        return Assignment.from_json(j)

    # MARK: notifications and broadcasts

    def notify_users(self, users: Iterable[str], service: str, category: str, title: str, body: Optional[str] = None,
                     data: Optional[Json] = None, email: Optional[str] = None, strict: bool = False,
                     idempotency_key: Optional[str] = None) -> NotificationResult:
        """One notification per user. `email`: "now", "fallback" or None. `strict=True` refuses
        (NotFoundError, `.unknown`) when a user id has no user in the hub."""
        return self._notify({"users": list(users)}, service, category, title, body, data, email, strict, idempotency_key)

    def notify_role(self, role: str, service: str, category: str, title: str, body: Optional[str] = None,
                    data: Optional[Json] = None, email: Optional[str] = None,
                    idempotency_key: Optional[str] = None) -> NotificationResult:
        """One notification for each user of `role` (stored in the background; `count` users)."""
        return self._notify({"role": role}, service, category, title, body, data, email, False, idempotency_key)

    def notify_everyone(self, service: str, category: str, title: str, body: Optional[str] = None,
                        data: Optional[Json] = None, email: Optional[str] = None,
                        idempotency_key: Optional[str] = None) -> NotificationResult:
        return self._notify({"all": True}, service, category, title, body, data, email, False, idempotency_key)

    def _notify(self, to: Json, service: str, category: str, title: str, body: Optional[str], data: Optional[Json],
                email: Optional[str], strict: bool, idempotency_key: Optional[str]) -> NotificationResult:
        payload: Json = {"to": to, "service": service, "category": category, "title": title}
        if body is not None:
            payload["body"] = body
        if data is not None:
            payload["data"] = data
        if email is not None:
            payload["email"] = email
        if strict:
            payload["strict"] = True
        j, replayed = self._json("POST", "/v1/notifications", payload, idempotency_key=idempotency_key)
        return NotificationResult.from_json(j, replayed)

    def broadcast(self, audience: str, title: str, body: Optional[str] = None, data: Optional[Json] = None,
                  idempotency_key: Optional[str] = None) -> Broadcast:
        """Stored once, in every addressed user's list; `audience` is "all" or a role."""
        payload: Json = {"audience": audience, "title": title}
        if body is not None:
            payload["body"] = body
        if data is not None:
            payload["data"] = data
        j, replayed = self._json("POST", "/v1/broadcasts", payload, idempotency_key=idempotency_key)
        return Broadcast.from_json(j, replayed)

    def user_notifications(self, user_id: str, before: Optional[int] = None, limit: Optional[int] = None,
                           service: Optional[str] = None, unread_only: Optional[bool] = None) -> NotificationPage:
        j, _ = self._json("GET", f"/v1/users/{_seg(user_id)}/notifications",
                          query={"before": before, "limit": limit, "service": service, "unread_only": unread_only})
        return NotificationPage.from_json(j)

    def receipt(self, notification_id: int) -> Receipt:
        """The notification with each recipient's state: stored, pushed, read, mail."""
        j, _ = self._json("GET", f"/v1/notifications/{int(notification_id)}")
        return Receipt.from_json(j)

    # MARK: conversations

    def post_message(self, service: str, client_id: str, text: str = "", client_msg_id: Optional[str] = None,
                     as_bot: Optional[str] = None, attachments: Optional[Sequence[AttachmentLike]] = None,
                     idempotency_key: Optional[str] = None) -> Message:
        """Posts into `conv:<service>:<client_id>` as the platform (`system`), or as the bot
        user `as_bot` (stored with role "bot"). A retry (same `client_msg_id`, or without one
        the same Idempotency-Key) answers the first message with `replayed` True."""
        body: Json = {"text": text}
        if client_msg_id is not None:
            body["client_msg_id"] = client_msg_id
        if as_bot is not None:
            body["as"] = as_bot
        if attachments:
            body["attachments"] = [a.to_json() if isinstance(a, Attachment) else dict(a) for a in attachments]
        j, replayed = self._json("POST", f"/v1/conversations/{_seg(service)}/{_seg(client_id)}/messages", body,
                                 idempotency_key=idempotency_key)
        return Message.from_json(j, replayed)

    def messages(self, service: str, client_id: str, before: Optional[int] = None,
                 limit: Optional[int] = None) -> MessagePage:
        """A page of the conversation (ascending seq; internal notes included, marked)."""
        j, _ = self._json("GET", f"/v1/conversations/{_seg(service)}/{_seg(client_id)}/messages",
                          query={"before": before, "limit": limit})
        return MessagePage.from_json(j)

    def delete_message(self, service: str, client_id: str, seq: int, by: Optional[str] = None) -> Message:
        """Erases a message (moderation, at any time); answers the tombstone. `by`: who the audit log names."""
        j, _ = self._json("DELETE", f"/v1/conversations/{_seg(service)}/{_seg(client_id)}/messages/{int(seq)}",
                          query={"by": by})
        return Message.from_json(j)

    def message_edits(self, service: str, client_id: str, seq: int) -> MessageEdits:
        """The message as it is and its earlier texts, oldest first."""
        j, _ = self._json("GET", f"/v1/conversations/{_seg(service)}/{_seg(client_id)}/messages/{int(seq)}/edits")
        return MessageEdits.from_json(j)

    def set_conversation_status(self, service: str, client_id: str, status: str,
                                by: Optional[str] = None) -> ConversationStatus:
        """`status`: "open", "pending" or "resolved"; `by` names who set it (default the platform)."""
        body: Json = {"status": status}
        if by is not None:
            body["by"] = by
        j, _ = self._json("PUT", f"/v1/conversations/{_seg(service)}/{_seg(client_id)}/status", body)
        return ConversationStatus.from_json(j)

    def search(self, query: str, user: str, channel: Optional[str] = None, service: Optional[str] = None,
               before: Optional[int] = None, limit: Optional[int] = None) -> SearchPage:
        """Messages matching `query` that `user` may read, newest first (`before` a msg_id)."""
        j, _ = self._json("GET", "/v1/search", query={"query": query, "user": user, "channel": channel,
                                                      "service": service, "before": before, "limit": limit})
        return SearchPage.from_json(j)

    # MARK: tokens, stats, reports, webhooks

    def create_token(self, sub: str, role: str, name: str, services: Optional[Sequence[str]] = None,
                     ttl_s: Optional[int] = None, idempotency_key: Optional[str] = None) -> Token:
        """A token minted by the hub (see also `mint_token`, which signs locally)."""
        body: Json = {"sub": sub, "role": role, "name": name}
        if services is not None:
            body["services"] = list(services)
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        j, _ = self._json("POST", "/v1/tokens", body, idempotency_key=idempotency_key)
        return Token(j["token"], j["expires_at"])

    def stats(self) -> Stats:
        j, _ = self._json("GET", "/v1/stats")
        return Stats.from_json(j)

    def support_report(self, from_ms: Optional[int] = None, to_ms: Optional[int] = None,
                       service: Optional[str] = None) -> SupportReport:
        j, _ = self._json("GET", "/v1/reports/support", query={"from": from_ms, "to": to_ms, "service": service})
        return SupportReport.from_json(j)

    def webhook_deliveries(self, limit: Optional[int] = None) -> WebhookDeliveries:
        j, _ = self._json("GET", "/v1/webhooks/deliveries", query={"limit": limit})
        return WebhookDeliveries.from_json(j)

    def healthy(self) -> bool:
        """GET /healthz (no key needed): True when the bridge answers ok."""
        try:
            return self.request("GET", "/healthz").status == 200
        except HubError:
            return False


def _seg(value: str) -> str:
    """A path segment, percent-encoded (the hub decodes it)."""
    return quote(str(value), safe="")


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["Hub", "Response", "new_idempotency_key"]
