"""Local crypto, no call to the hub: minting HS256 tokens the hub accepts, and verifying the
`Montrose-Signature` header of its webhook POSTs. Both follow the hub's own code
(Sources/Protocol/JWT.swift, Sources/Protocol/WebhookSignature.swift)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Iterable, List, Optional, Union

from .errors import WebhookVerificationError
from .models import WebhookEvent

ROLES = ("admin", "website_agent", "marketing_agent", "client")
CONVERSATION_SERVICES = ("marketing", "website", "courses", "support")
_USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The hub checks a name's length in characters (grapheme clusters); code points bound it
# from above, so a name within 100 code points is always accepted.
_MAX_NAME_BYTES = 400
_MAX_TTL = 7 * 86_400

Secret = Union[str, bytes]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _key(secret: Secret) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("secret must not be empty")
    return key


def mint_token(secret: Secret, sub: str, role: str, name: str, services: Optional[Iterable[str]] = None,
               ttl: int = 3600, now: Optional[int] = None) -> str:
    """An HS256 token for the hub, signed here with its `--jwt-secret` (the same bytes: a str is
    taken as UTF-8). Claims: `sub`, `role`, `name`, `exp` = now + ttl, `iat` = now, and `services`
    when given (clients only: the conversation services they may use; None means all).

    The claims are checked as the hub checks them, so a bad one fails here (ValueError) rather
    than at sign-in. The hub allows 30 s of clock skew on `exp` and `iat`.
    """
    if not isinstance(sub, str) or not _USER_ID.match(sub):
        raise ValueError("sub must be 1-64 characters of A-Za-z0-9_.@-")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(name, str) or not name or len(name) > 100 or len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise ValueError("name must be 1-100 characters (at most 400 bytes)")
    if _CONTROL.search(name):
        raise ValueError("name must not contain control characters")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= _MAX_TTL:
        raise ValueError(f"ttl must be an integer number of seconds, 1-{_MAX_TTL}")
    issued = int(time.time()) if now is None else int(now)
    claims = {"sub": sub, "role": role, "name": name, "exp": issued + ttl, "iat": issued}
    if services is not None:
        listed: List[str] = list(services)
        if len(set(listed)) != len(listed) or any(s not in CONVERSATION_SERVICES for s in listed):
            raise ValueError(f"services must be distinct values of {', '.join(CONVERSATION_SERVICES)}")
        claims["services"] = listed
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(_key(secret), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


SIGNATURE_HEADER = "Montrose-Signature"
_MAX_HEADER = 4096


def verify_webhook(secret: Secret, signature_header: Optional[str], body: bytes, tolerance_s: int = 300,
                   now: Optional[float] = None) -> WebhookEvent:
    """Checks a webhook POST from the hub and returns its event; raises WebhookVerificationError
    (answer 400) when it must be refused.

    `signature_header` is the `Montrose-Signature` header, `t=<unix seconds>,v1=<hex>` (several
    `v1` may appear, e.g. during a secret rotation: one match is enough); `body` the raw request
    body, bytes as received, before any JSON parsing. The MAC, HMAC-SHA256 of `"<t>.<body>"`, is
    compared in constant time; then `t` must be within `tolerance_s` of `now` (default: this
    machine's clock), so a captured request replayed later is refused.
    Drop an event `id` you have handled already: delivery is at least once.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be the raw bytes of the request")
    raw = bytes(body)
    if not isinstance(signature_header, str) or not signature_header or len(signature_header) > _MAX_HEADER:
        raise WebhookVerificationError("malformed", f"no {SIGNATURE_HEADER} header")
    timestamp: Optional[int] = None
    macs: List[str] = []
    for part in signature_header.split(","):
        name, eq, value = part.partition("=")
        if not eq:
            raise WebhookVerificationError("malformed", "every part must be name=value")
        name, value = name.strip(), value.strip()
        if name == "t":
            if timestamp is not None or not value.isdigit() or not value.isascii() or len(value) > 15:
                raise WebhookVerificationError("malformed", "t must be one decimal number of seconds")
            timestamp = int(value)
        elif name == "v1":
            macs.append(value.lower())
    if timestamp is None or not macs:
        raise WebhookVerificationError("malformed", "t and v1 are required")
    expected = hmac.new(_key(secret), str(timestamp).encode("ascii") + b"." + raw, hashlib.sha256).hexdigest()
    matched = False
    for mac in macs:
        # compare_digest takes str of ASCII only; a non-ASCII value cannot be a match.
        if mac.isascii() and hmac.compare_digest(mac, expected):
            matched = True
    if not matched:
        raise WebhookVerificationError("mismatch", "no v1 signature matches the body")
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance_s:
        raise WebhookVerificationError("outside_tolerance", f"t is {int(clock - timestamp)} s from this clock (tolerance {tolerance_s} s)")
    try:
        event = json.loads(raw.decode("utf-8"))
        return WebhookEvent(str(event["id"]), str(event["type"]), int(event["ts"]), dict(event.get("data") or {}), timestamp)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WebhookVerificationError("malformed", f"the body is not a webhook event: {e}") from None
