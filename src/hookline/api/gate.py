"""What every request passes before a router sees it (pure ASGI, inside RequestIdMiddleware):

1. size limits: URL (414), headers (431), body (413, by Content-Length and as it streams);
2. for a caller with a valid API key: the signed-request check (401), the tenant's rate limit
   (429), and on POST the ``Idempotency-Key`` (replay, 409, 422).

Requests without a valid key pass through; the routes' scope check answers them with 401.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookline.api.auth import KeyCache
from hookline.api.idempotency import HEADER, IdempotentCall, request_hash, valid_key
from hookline.api.problems import error_problem
from hookline.api.ratelimit import TokenBuckets
from hookline.api.request_signing import verify_request
from hookline.config import Settings
from hookline.errors import (
    HeadersTooLarge,
    HooklineError,
    PayloadTooLarge,
    RateLimited,
    URITooLong,
    ValidationFailed,
)
from hookline.services import Services
from hookline.signatures.rfc9421 import HTTPRequestView
from hookline.store.tenants import Principal

MAX_HEADER_COUNT = 100
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def _headers(scope: Scope) -> dict[str, str]:
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def check_sizes(scope: Scope, settings: Settings) -> None:
    """Refuse over-long URLs and over-large header sections."""
    if len(_target(scope)) > settings.max_url_bytes:
        raise URITooLong(f"the request target exceeds {settings.max_url_bytes} bytes")
    headers = scope["headers"]
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if len(headers) > MAX_HEADER_COUNT or size > settings.max_header_bytes:
        raise HeadersTooLarge(
            f"send at most {MAX_HEADER_COUNT} headers and {settings.max_header_bytes} bytes of them"
        )


def _declared_length(headers: dict[str, str], limit: int) -> None:
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise ValidationFailed("Content-Length is not a number", field="Content-Length")
    if int(declared) > limit:
        raise PayloadTooLarge(f"the request body exceeds {limit} bytes")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refusing it as soon as it grows past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away; the app will see the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ApiGate:
    """The middleware; its state (services, key cache, buckets) is read from the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        try:
            await self._guarded(scope, receive, send)
        except HooklineError as exc:
            await _answer(exc, scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: Any = scope["app"].state
        services: Services = state.services
        settings = services.settings
        check_sizes(scope, settings)
        headers = _headers(scope)
        _declared_length(headers, settings.max_body_bytes)
        body = b""
        if scope["method"] not in _BODILESS:
            body = await read_body(receive, settings.max_body_bytes)
            receive = replaying(body, receive)
        principal = await _principal(state.keys, headers)
        if principal is None:
            await self.app(scope, receive, send)
            return
        scope["state"]["principal"] = principal
        _check_signature(scope, headers, body, principal, settings)
        _check_rate(state.buckets, principal)
        key = headers.get(HEADER)
        if scope["method"] != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        fingerprint = request_hash(scope["method"], _target(scope), body)
        call = IdempotentCall(services, principal.tenant_id, valid_key(key), fingerprint)
        await call.run(self.app, scope, receive, send)


async def _principal(keys: KeyCache, headers: dict[str, str]) -> Principal | None:
    scheme, _, secret = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return await keys.principal(secret.strip())


def _check_signature(
    scope: Scope, headers: dict[str, str], body: bytes, principal: Principal, settings: Settings
) -> None:
    if principal.public_key is None:
        return
    host = headers.get("host", "hookline")
    url = f"{scope.get('scheme', 'http')}://{host}{_target(scope)}"
    verify_request(
        HTTPRequestView(scope["method"], url, headers), body, key_id=principal.key_id,
        public_key_pem=principal.public_key, max_skew=settings.signature_max_skew,
    )  # fmt: skip


def _check_rate(buckets: TokenBuckets, principal: Principal) -> None:
    if not buckets.enabled:
        return
    wait = buckets.take(principal.tenant_id)
    if wait:
        raise RateLimited(
            f"over the rate limit of {buckets.rate:g} requests/s for this tenant", retry_after=wait
        )


async def _answer(exc: HooklineError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_problem(Request(scope), exc)(scope, receive, send)
