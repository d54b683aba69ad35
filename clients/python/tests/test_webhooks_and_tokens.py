"""verify_webhook on requests the real hub sent (signed with --webhook-secret), tampered and
stale ones refused; mint_token's tokens accepted by the real hub's WebSocket sign-in."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from conftest import JWT_SECRET, WEBHOOK_SECRET, WebSocket, unique
from montrose_hub import SIGNATURE_HEADER, WebhookVerificationError, mint_token, verify_webhook


@pytest.fixture()
def real_webhook(hub, webhooks):
    """A `message.created` request the hub POSTed: (headers, raw body)."""
    client = unique("hook")
    text = f"webhook check {client}"
    hub.post_message("courses", client, text)
    return webhooks.wait_for(lambda e: e.get("type") == "message.created" and e["data"].get("text") == text)


def test_a_webhook_from_the_hub_verifies(real_webhook):
    headers, body = real_webhook
    event = verify_webhook(WEBHOOK_SECRET, headers[SIGNATURE_HEADER.lower()], body)
    assert event.type == "message.created" and event.id.startswith("evt_") and event.data["seq"] == 1
    assert abs(event.timestamp - time.time()) < 60


def test_a_tampered_body_is_refused(real_webhook):
    headers, body = real_webhook
    tampered = body.replace(b"webhook check", b"webhook chock")
    with pytest.raises(WebhookVerificationError) as e:
        verify_webhook(WEBHOOK_SECRET, headers[SIGNATURE_HEADER.lower()], tampered)
    assert e.value.reason == "mismatch"
    with pytest.raises(WebhookVerificationError):
        verify_webhook("another-secret-0123456789", headers[SIGNATURE_HEADER.lower()], body)


def test_an_old_timestamp_is_refused(real_webhook):
    headers, body = real_webhook
    signature = headers[SIGNATURE_HEADER.lower()]
    t = int(signature.split(",")[0].split("=")[1])
    with pytest.raises(WebhookVerificationError) as e:
        verify_webhook(WEBHOOK_SECRET, signature, body, now=t + 301)
    assert e.value.reason == "outside_tolerance"
    assert verify_webhook(WEBHOOK_SECRET, signature, body, now=t + 299).type == "message.created"
    with pytest.raises(WebhookVerificationError):  # from the future as much
        verify_webhook(WEBHOOK_SECRET, signature, body, now=t - 301)
    # A replay re-signed with a fresh t cannot be made without the secret: moving t breaks the MAC.
    mac = signature.split("v1=")[1]
    with pytest.raises(WebhookVerificationError) as moved:
        verify_webhook(WEBHOOK_SECRET, f"t={t + 60},v1={mac}", body)
    assert moved.value.reason == "mismatch"


def sign(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


def test_several_v1_values_and_malformed_headers():
    body = json.dumps({"id": "evt_0123456789abcdef01234567", "type": "conversation.status", "ts": 1, "data": {}}).encode()
    t = int(time.time())
    good = sign(WEBHOOK_SECRET, t, body)
    rotated = f"t={t},v1={sign('the-old-secret-0123456789', t, body)},v1={good}"
    assert verify_webhook(WEBHOOK_SECRET, rotated, body).type == "conversation.status"
    assert verify_webhook(WEBHOOK_SECRET, f"t={t}, v1={good.upper()}", body).id.startswith("evt_")
    for bad in (None, "", "v1=" + good, f"t={t}", f"t=abc,v1={good}", f"t={t},v1", f"t={t},t={t},v1={good}",
                f"t=-{t},v1={good}", f"t={t},v1=é{good}", "x" * 5000):
        with pytest.raises(WebhookVerificationError) as e:
            verify_webhook(WEBHOOK_SECRET, bad, body)  # type: ignore[arg-type]
        assert e.value.reason in ("malformed", "mismatch"), bad
    with pytest.raises(WebhookVerificationError) as not_json:
        verify_webhook(WEBHOOK_SECRET, f"t={t},v1={sign(WEBHOOK_SECRET, t, b'nope')}", b"nope")
    assert not_json.value.reason == "malformed"


def test_mint_token_is_accepted_by_the_hub(hub_process):
    user = unique("minted")
    token = mint_token(JWT_SECRET, sub=user, role="client", name="Mina Minted", services=["website", "support"], ttl=120)
    ws = WebSocket(hub_process.public_port)
    try:
        reply = ws.call("auth", token=token)
        assert reply["ok"], reply
        assert (reply["result"]["user"], reply["result"]["role"], reply["result"]["name"]) == (user, "client", "Mina Minted")
        # The services claim is honoured: website yes, marketing no.
        assert ws.call("subscribe", channel=f"conv:website:{user}")["ok"]
        refused = ws.call("subscribe", channel=f"conv:marketing:{user}")
        assert refused["error"]["code"] == "forbidden"
    finally:
        ws.close()


@pytest.mark.parametrize("token_of", [
    lambda u: mint_token("a-different-secret-0123456789", u, "client", "X"),
    lambda u: mint_token(JWT_SECRET, u, "client", "X", ttl=1, now=int(time.time()) - 120),
    lambda u: mint_token(JWT_SECRET, u, "client", "X", now=int(time.time()) + 120),
])
def test_tokens_the_hub_must_refuse(hub_process, token_of):
    ws = WebSocket(hub_process.public_port)
    try:
        reply = ws.call("auth", token=token_of(unique("bad")))
        assert not reply["ok"] and reply["error"]["code"] == "unauthorized"
    finally:
        ws.close()


def test_mint_token_checks_claims_as_the_hub_does():
    for kwargs in ({"sub": "no spaces"}, {"role": "bot"}, {"name": ""}, {"name": "a\nb"}, {"ttl": 0},
                   {"services": ["website", "website"]}, {"services": ["wallet"]}):
        args = {"sub": "ann", "role": "client", "name": "Ann", **kwargs}
        with pytest.raises(ValueError):
            mint_token(JWT_SECRET, **args)
    header, payload, _ = mint_token(JWT_SECRET, "ann", "admin", "Ada", now=1_700_000_000).split(".")
    assert header == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
