"""Montrose Hub in a Django project: a view that receives the hub's webhooks, and a helper that
tells a user about a payment.

Wire it up (urls.py):  path("hooks/montrose", django_hub.montrose_webhook)
Settings (or environment): MONTROSE_BRIDGE_URL, MONTROSE_BRIDGE_KEY, MONTROSE_WEBHOOK_SECRET.

The code needs nothing from Django but its HttpResponse and csrf_exempt, and falls back to
small stand-ins without it, so the package's tests run this very file against a real hub with
no Django installed. In a project, keep the view as it is.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, List, Optional, Set

from montrose_hub import Hub, NotificationResult, WebhookEvent, WebhookVerificationError, verify_webhook

try:  # pragma: no cover - exercised only where Django is installed
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_POST
except ImportError:  # the tests run without Django
    class HttpResponse:  # type: ignore[no-redef]
        def __init__(self, content: bytes = b"", status: int = 200, content_type: str = "text/plain") -> None:
            self.content, self.status_code, self.content_type = content, status, content_type

    def csrf_exempt(view: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[no-redef]
        return view

    def require_POST(view: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[no-redef]  # noqa: N802
        return view


def setting(name: str, default: Optional[str] = None) -> str:
    """A Django setting if Django is configured, else the environment."""
    try:
        from django.conf import settings
        value = getattr(settings, name, None)
        if value is not None:
            return str(value)
    except Exception:  # Django absent or not configured
        pass
    value = os.environ.get(name, default)
    if value is None:
        raise KeyError(f"{name} is not set")
    return value


def hub() -> Hub:
    return Hub(setting("MONTROSE_BRIDGE_URL", "http://127.0.0.1:8081"), setting("MONTROSE_BRIDGE_KEY"),
               timeout=5, retries=3)


# MARK: a payment notification

def notify_payment(user_id: str, amount_cents: int, currency: str, payment_id: str,
                   client: Optional[Hub] = None) -> NotificationResult:
    """Tells `user_id` that a payment arrived: a live push if they are online, a mail if they
    have not read it within the hub's fallback delay. The payment id is the Idempotency-Key, so
    calling this twice for one payment (a retried Celery task, a double webhook from the payment
    provider) notifies once."""
    amount = f"{amount_cents / 100:.2f} {currency}"
    return (client or hub()).notify_users(
        [user_id], service="wallet", category="payments", title="Payment received",
        body=f"We received your payment of {amount}.",
        data={"payment_id": payment_id, "amount_cents": amount_cents, "currency": currency},
        email="fallback", idempotency_key=f"payment-{payment_id}")


# MARK: the webhook view

class SeenEvents:
    """Event ids already handled. Delivery is at least once: drop what was seen. In a project
    this is a table with a unique id column (or a cache with a TTL of a day or two)."""

    def __init__(self) -> None:
        self._ids: Set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids.add(event_id)
            return True


seen = SeenEvents()
handled: List[WebhookEvent] = []  # what the handlers below did, for the example's tests


def on_message_created(event: WebhookEvent) -> None:
    data: Dict[str, Any] = event.data
    if data.get("from", {}).get("role") == "client":
        # e.g. open a ticket, or wake the on-call agent
        handled.append(event)


def on_conversation_queued(event: WebhookEvent) -> None:
    handled.append(event)


HANDLERS: Dict[str, Callable[[WebhookEvent], None]] = {
    "message.created": on_message_created,
    "conversation.queued": on_conversation_queued,
}


@csrf_exempt
@require_POST
def montrose_webhook(request: Any) -> HttpResponse:
    """POST /hooks/montrose. Uses `request.body` (raw bytes) and `request.headers`, as Django's
    HttpRequest has them. Answers quickly: long work belongs on a queue (the hub counts an answer
    after 10 s as a failure and retries)."""
    try:
        event = verify_webhook(setting("MONTROSE_WEBHOOK_SECRET"), request.headers.get("Montrose-Signature"),
                               request.body)
    except WebhookVerificationError as e:
        return HttpResponse(f"refused: {e.reason}".encode(), status=400)
    if seen.first_time(event.id):
        handler = HANDLERS.get(event.type)
        if handler:
            handler(event)
    return HttpResponse(b"ok", status=200)
