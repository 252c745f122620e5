"""One domain error hierarchy. The API maps these to problem+json; the CLI to one line."""

from __future__ import annotations


class HooklineError(Exception):
    """Base of every error Hookline raises on purpose."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ValidationFailed(HooklineError):
    status = 400
    title = "Invalid request"
    slug = "validation"


class NotFound(HooklineError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Unauthenticated(HooklineError):
    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(HooklineError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class Conflict(HooklineError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class ConfigError(HooklineError):
    """Bad settings or arguments given to a command."""

    title = "Configuration error"
    slug = "config"


class BadRequestSignature(Unauthenticated):
    """A key with a registered public key sent a request without a valid RFC 9421 signature."""

    title = "Invalid request signature"
    slug = "bad-signature"
    headers = {"WWW-Authenticate": 'Bearer, Signature realm="hookline"'}


class IdempotencyInProgress(Conflict):
    title = "Request in progress"
    slug = "idempotency-in-progress"


class IdempotencyMismatch(HooklineError):
    status = 422
    title = "Idempotency key reused"
    slug = "idempotency-mismatch"


class PayloadTooLarge(HooklineError):
    status = 413
    title = "Payload too large"
    slug = "too-large"


class URITooLong(HooklineError):
    status = 414
    title = "URI too long"
    slug = "uri-too-long"


class HeadersTooLarge(HooklineError):
    status = 431
    title = "Request headers too large"
    slug = "headers-too-large"


class RateLimited(HooklineError):
    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}
