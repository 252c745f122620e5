"""RFC 9457 problem documents for every error, and the ``request-id`` on every response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookline.errors import HooklineError

PROBLEM_TYPE = "urn:hookline:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = structlog.get_logger("hookline.api")


def problem(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", "")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.scope.get("path", ""),  # not request.url: a bad Host breaks it
        "request_id": request_id,
    }
    if field:
        body["field"] = field
    # Set here too: a 500 is answered outside RequestIdMiddleware, which then never sees it.
    headers = {**(headers or {}), "request-id": request_id} if request_id else headers
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def error_problem(request: Request, exc: HooklineError) -> Response:
    """The problem document for a domain error (also used by the gate, before routing)."""
    detail = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
    return problem(
        request, status=exc.status, title=exc.title, detail=detail, slug=exc.slug,
        field=exc.field, headers=getattr(exc, "headers", None),
    )  # fmt: skip


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HooklineError)
    return error_problem(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = _field_of(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "json_invalid":
        field, message = "body", "request body is not valid JSON"
    return problem(
        request, status=400, title="Invalid request", detail=f"{field}: {message}",
        slug="validation", field=field,
    )  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    return problem(
        request, status=exc.status_code, title=titles.get(exc.status_code, "HTTP error"),
        detail=str(exc.detail), slug=f"http-{exc.status_code}", headers=exc.headers,
    )  # fmt: skip


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.scope.get("path"), exc_info=exc)
    detail = "something went wrong on our side; quote the request_id when asking"
    return problem(request, status=500, title="Internal error", detail=detail, slug="internal")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HooklineError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class RequestIdMiddleware:
    """Pure ASGI: give every request an id (or keep a sane incoming one), echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.match(incoming) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name.lower() != b"request-id" for name, _ in headers):
                    headers.append((b"request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
