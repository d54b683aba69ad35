"""The Django example (examples/django_hub.py, imported without Django) and the README's Python
snippet, run as written against the real hub."""
from __future__ import annotations

import os
import re
from typing import Dict, Optional

import pytest

import django_hub
from conftest import BRIDGE_KEY, JWT_SECRET, REPO, WEBHOOK_SECRET, WebSocket, unique
from montrose_hub import mint_token


class Headers:
    """Case-insensitive, as Django's request.headers."""

    def __init__(self, headers: Dict[str, str]) -> None:
        self._h = {k.lower(): v for k, v in headers.items()}

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self._h.get(name.lower(), default)


class Request:
    """The two attributes of Django's HttpRequest the view reads."""

    def __init__(self, body: bytes, headers: Dict[str, str]) -> None:
        self.body, self.headers, self.method = body, Headers(headers), "POST"


@pytest.fixture()
def example_env(hub_process, monkeypatch):
    monkeypatch.setenv("MONTROSE_BRIDGE_URL", hub_process.bridge_url)
    monkeypatch.setenv("MONTROSE_BRIDGE_KEY", BRIDGE_KEY)
    monkeypatch.setenv("MONTROSE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("MONTROSE_JWT_SECRET", JWT_SECRET)


def test_the_webhook_view_handles_a_real_event_once_and_refuses_a_forgery(example_env, hub_process, webhooks):
    client = unique("dj")
    text = f"my site is down ({client})"
    # A client's own message (over a WebSocket, with a locally minted token), so the example's
    # handler acts on it.
    sock = WebSocket(hub_process.public_port)
    try:
        assert sock.call("auth", token=mint_token(JWT_SECRET, client, "client", "Dee"))["ok"]
        assert sock.call("send", channel=f"conv:website:{client}", text=text, client_msg_id="c1")["ok"]
    finally:
        sock.close()
    headers, body = webhooks.wait_for(lambda e: e.get("type") == "message.created" and e["data"].get("text") == text)
    before = len(django_hub.handled)
    answer = django_hub.montrose_webhook(Request(body, headers))
    assert answer.status_code == 200
    assert [e.data["text"] for e in django_hub.handled[before:]] == [text]
    again = django_hub.montrose_webhook(Request(body, headers))  # at least once: a redelivery
    assert again.status_code == 200 and len(django_hub.handled) == before + 1
    forged = django_hub.montrose_webhook(Request(body.replace(b"down", b"up"), headers))
    assert forged.status_code == 400 and forged.content == b"refused: mismatch"
    unsigned = django_hub.montrose_webhook(Request(body, {}))
    assert unsigned.status_code == 400


def test_notify_payment_notifies_once_per_payment(example_env, hub):
    user = unique("payer")
    hub.put_user(user, role="client", name="Pay Er", email=f"{user}@example.com")
    first = django_hub.notify_payment(user, 2050, "EUR", payment_id=unique("pi"))
    payment = unique("pi")
    a = django_hub.notify_payment(user, 999, "EUR", payment_id=payment)
    b = django_hub.notify_payment(user, 999, "EUR", payment_id=payment)
    assert b.replayed and a.ids == b.ids and a.ids != first.ids
    items = [n for n in hub.user_notifications(user).items if n.category == "payments"]
    assert [n.body for n in items] == ["We received your payment of 9.99 EUR.", "We received your payment of 20.50 EUR."]
    assert items[0].data["payment_id"] == payment
    receipt = hub.receipt(a.ids[0])
    assert receipt.recipients[0].email == "pending"  # fallback mail waits for the delay


def readme_python_snippet() -> str:
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Clients"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Clients section has a python snippet"
    return match.group(1)


def test_the_readme_snippet_runs_as_written(example_env, hub_process):
    namespace: Dict[str, object] = {}
    exec(compile(readme_python_snippet(), "README.md (Clients)", "exec"), namespace)
    sent = namespace["sent"]
    assert sent.ids and len(sent.ids) == 1  # type: ignore[attr-defined]
    sock = WebSocket(hub_process.public_port)
    try:
        reply = sock.call("auth", token=namespace["token"])
        assert reply["ok"] and reply["result"]["user"] == "ann"
    finally:
        sock.close()
