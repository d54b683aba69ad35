"""Retries that never duplicate: a TCP proxy in front of the real bridge forwards a request,
then drops the client's connection without the answer, so the client retries with the same
Idempotency-Key and the hub answers the replay. Also: what is not retried, Retry-After,
connection refusals and timeouts."""
from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

from conftest import BRIDGE_KEY, unique
from montrose_hub import BadRequestError, Hub, HubConnectionError, HubTimeoutError, UnavailableError


def read_http(sock: socket.socket) -> bytes:
    """One HTTP message (head and Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def header(raw: bytes, name: str) -> Optional[str]:
    for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


class Proxy:
    """Forwards each connection's one request to the hub. The first `drop` requests are
    forwarded and their answers thrown away (the connection is cut); the first `refuse_503`
    requests are answered 503 with Retry-After by the proxy itself, never forwarded."""

    def __init__(self, upstream_port: int, drop: int = 0, refuse_503: int = 0) -> None:
        self.upstream_port, self.drop, self.refuse_503 = upstream_port, drop, refuse_503
        self.requests: List[bytes] = []
        self.forwarded = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            request = read_http(conn)
            with self.lock:
                self.requests.append(request)
                n = len(self.requests)
            if n <= self.refuse_503:
                body = b'{"error":{"code":"unavailable","message":"proxy says wait"}}'
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5) as up:
                up.sendall(request)
                answer = read_http(up)
            with self.lock:
                self.forwarded += 1
            if n <= self.refuse_503 + self.drop:
                return  # the hub did the work; the client never hears of it
            conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture()
def sleeps() -> List[float]:
    return []


def proxied(hub_process, sleeps: List[float], **kw) -> Tuple[Hub, Proxy]:
    proxy = Proxy(hub_process.bridge_port, **kw)
    return Hub(f"http://127.0.0.1:{proxy.port}", BRIDGE_KEY, timeout=5, retries=3, sleep=sleeps.append), proxy


def test_a_lost_answer_is_retried_with_the_same_key_and_stores_one_notification(hub, hub_process, sleeps):
    client = unique("idem")
    hub.put_user(client, role="client", name="Ida")
    via, proxy = proxied(hub_process, sleeps, drop=1)
    try:
        result = via.notify_users([client], service="wallet", category="payments", title="Paid once")
    finally:
        proxy.close()
    assert result.replayed, "the second attempt should be the hub's replay of the first"
    assert len(proxy.requests) == 2 and proxy.forwarded == 2 and len(sleeps) == 1
    keys = {header(r, "Idempotency-Key") for r in proxy.requests}
    assert len(keys) == 1 and None not in keys, keys
    bodies = {r.split(b"\r\n\r\n", 1)[1] for r in proxy.requests}
    assert len(bodies) == 1, "a retry must send the same body bytes"
    page = hub.user_notifications(client)
    assert [n.title for n in page.items if n.title == "Paid once"] == ["Paid once"], "exactly one notification is stored"


def test_a_lost_answer_to_a_message_post_stores_one_message(hub, hub_process, sleeps):
    client = unique("idem")
    via, proxy = proxied(hub_process, sleeps, drop=2)
    try:
        message = via.post_message("support", client, "We received your ticket")
    finally:
        proxy.close()
    assert message.replayed and len(proxy.requests) == 3 and len(sleeps) == 2
    assert message.client_msg_id is not None and message.client_msg_id.startswith("idem:")
    assert [m.text for m in hub.messages("support", client).messages] == ["We received your ticket"]


def test_every_post_gets_its_own_key_unless_given(hub_process, sleeps):
    via, proxy = proxied(hub_process, sleeps)
    try:
        via.broadcast("admin", title="one")
        via.broadcast("admin", title="two")
        first = via.broadcast("admin", title="three", idempotency_key="bcast-fixed-1")
        again = via.broadcast("admin", title="three", idempotency_key="bcast-fixed-1")
    finally:
        proxy.close()
    keys = [header(r, "Idempotency-Key") for r in proxy.requests]
    assert len(set(keys[:3])) == 3 and keys[2] == keys[3] == "bcast-fixed-1"
    assert again.replayed and again.id == first.id


def test_503_is_retried_after_retry_after(hub_process, sleeps):
    via, proxy = proxied(hub_process, sleeps, refuse_503=2)
    try:
        stats = via.stats()
    finally:
        proxy.close()
    assert stats.connections >= 1 and len(proxy.requests) == 3
    assert sleeps and all(s >= 1.0 for s in sleeps), f"Retry-After: 1 must be honoured, slept {sleeps}"


def test_503_until_the_retries_run_out(hub_process, sleeps):
    via, proxy = proxied(hub_process, sleeps, refuse_503=10)
    try:
        with pytest.raises(UnavailableError) as e:
            via.stats()
    finally:
        proxy.close()
    assert e.value.status == 503 and len(proxy.requests) == 4 and len(sleeps) == 3


def test_a_4xx_is_not_retried(hub_process, sleeps):
    via, proxy = proxied(hub_process, sleeps)
    try:
        with pytest.raises(BadRequestError):
            via.broadcast("all", title="")
    finally:
        proxy.close()
    assert len(proxy.requests) == 1 and sleeps == []


def test_a_refused_connection_is_retried_then_raised(sleeps):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    hub = Hub(f"http://127.0.0.1:{port}", BRIDGE_KEY, retries=2, sleep=sleeps.append)
    with pytest.raises(HubConnectionError) as e:
        hub.stats()
    assert e.value.code == "connection" and e.value.status is None and len(sleeps) == 2
    assert all(0 <= s <= hub.max_backoff for s in sleeps)
    assert not hub.healthy()


def test_retry_after_as_seconds_or_a_date():
    from email.utils import formatdate
    from montrose_hub.client import _retry_after_seconds
    assert _retry_after_seconds("3") == 3.0
    assert 8 <= (_retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
    assert _retry_after_seconds(formatdate(time.time() - 10, usegmt=True)) == 0.0
    assert _retry_after_seconds("soon") is None and _retry_after_seconds(None) is None


def test_a_silent_server_times_out():
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        hub = Hub(f"http://127.0.0.1:{silent.getsockname()[1]}", BRIDGE_KEY, timeout=0.3, retries=1, sleep=lambda s: None)
        started = time.monotonic()
        with pytest.raises(HubTimeoutError) as e:
            hub.stats()
        assert e.value.code == "timeout" and time.monotonic() - started < 3
    finally:
        silent.close()
