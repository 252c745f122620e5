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
