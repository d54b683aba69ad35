"""Exceptions: one base class, `HubError`, carrying the bridge's error code, message and HTTP
status, and a subclass per class of error so callers can catch what they can act on."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Type


class HubError(Exception):
    """An error answer of the bridge (`{"error": {"code", "message"}}`), or a failure to get one.

    `code` is the bridge's stable error code (`bad_request`, `unauthorized`, `not_found`,
    `conflict`, `too_large`, `rate_limited`, `unavailable`, `internal`, `method_not_allowed`, `forbidden`),
    or `connection` / `timeout` when no answer came. `status` is the HTTP status (None when no
    answer came). `body` is the decoded error body, when there was one.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None,
                 body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(f"{code} ({status}): {message}" if status is not None else f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.body = body or {}


class BadRequestError(HubError):
    """400 / 422 `bad_request`: a field breaks its rule (the message names the field)."""


class AuthenticationError(HubError):
    """401: no bridge key, or a wrong one."""


class ForbiddenError(HubError):
    """403: the user a call acts for may not do it (e.g. search a conversation they cannot read)."""


class NotFoundError(HubError):
    """404 (or the strict notification refusal, 422 `not_found`)."""

    @property
    def unknown(self) -> List[str]:
        """For `strict=True` notifications: the user ids the hub has no user for."""
        error = self.body.get("error", {}) if isinstance(self.body, dict) else {}
        return list(error.get("unknown", []))


class ConflictError(HubError):
    """409, or 422 `conflict` (an Idempotency-Key reused for a different request)."""


class TooLargeError(HubError):
    """413 / 431: a body or headers over the bridge's limits."""


class RateLimitedError(HubError):
    """429, after the client's retries ran out."""


class UnavailableError(HubError):
    """503 / 501: the hub cannot serve now (after the client's retries ran out)."""


class InternalError(HubError):
    """500: a storage error (after the client's retries ran out)."""


class HubConnectionError(HubError):
    """No answer: the connection was refused or cut (after the client's retries ran out)."""


class HubTimeoutError(HubConnectionError):
    """No answer within the timeout (after the client's retries ran out)."""


class WebhookVerificationError(Exception):
    """A webhook request that must be refused (answer 400): `reason` is `malformed`,
    `mismatch` or `outside_tolerance`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_BY_CODE: Dict[str, Type[HubError]] = {
    "bad_request": BadRequestError,
    "unauthorized": AuthenticationError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "too_large": TooLargeError,
    "rate_limited": RateLimitedError,
    "unavailable": UnavailableError,
    "internal": InternalError,
}

_BY_STATUS: Dict[int, Type[HubError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
    413: TooLargeError, 422: BadRequestError, 429: RateLimitedError, 500: InternalError,
    501: UnavailableError, 503: UnavailableError,
}


def error_for(status: int, body: Any) -> HubError:
    """The exception for an error answer: by the body's code (422 carries several), else by status."""
    code, message = "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", ""))
        message = str(body["error"].get("message", ""))
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or HubError
    if not code:
        code = "http_" + str(status)
    return cls(code, message or f"HTTP {status}", status, body if isinstance(body, dict) else None)
