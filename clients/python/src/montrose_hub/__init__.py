"""Montrose Hub for Python backends: the bridge API (`Hub`), local token minting
(`mint_token`) and webhook verification (`verify_webhook`). Standard library only."""
from .client import Hub, new_idempotency_key
from .errors import (AuthenticationError, BadRequestError, ConflictError, ForbiddenError, HubConnectionError, HubError,
                     HubTimeoutError, InternalError, NotFoundError, RateLimitedError, TooLargeError,
                     UnavailableError, WebhookVerificationError)
from .models import (Assignment, Attachment, Broadcast, ConversationStatus, DayCount, Durations, Message,
                     MessageEdit, MessageEdits, MessagePage, Notification, NotificationPage, NotificationResult,
                     Receipt, Recipient, SearchHit, SearchPage, Sender, Stats, SupportFigures, SupportReport, Token,
                     Unread, User, WebhookDeliveries, WebhookDelivery, WebhookEvent)
from .security import SIGNATURE_HEADER, mint_token, verify_webhook

__version__ = "0.9.0"

__all__ = [
    "Hub", "new_idempotency_key", "mint_token", "verify_webhook", "SIGNATURE_HEADER",
    "HubError", "BadRequestError", "AuthenticationError", "ForbiddenError", "NotFoundError", "ConflictError", "TooLargeError",
    "RateLimitedError", "UnavailableError", "InternalError", "HubConnectionError", "HubTimeoutError",
    "WebhookVerificationError",
    "User", "Assignment", "NotificationResult", "Broadcast", "Attachment", "Sender", "Message", "MessagePage",
    "MessageEdit", "MessageEdits", "ConversationStatus", "Unread", "Notification", "NotificationPage", "Recipient",
    "Receipt", "Token", "DayCount", "Stats", "Durations", "SupportFigures", "SupportReport", "WebhookDelivery",
    "WebhookDeliveries", "SearchHit", "SearchPage", "WebhookEvent",
]
