"""The FastAPI application: routers, problem+json, request ids, and the process lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hookline import __version__
from hookline.api import events, openapi, system, webhooks
from hookline.api.auth import KeyCache
from hookline.api.gate import ApiGate
from hookline.api.idempotency import sweep_forever
from hookline.api.problems import RequestIdMiddleware, install_problem_handlers
from hookline.api.ratelimit import TokenBuckets
from hookline.api.schemas import EventBatchIn, EventIn, PackageBody
from hookline.services import Services

DESCRIPTION = """Hookline delivers batched, ordered, signed packages of events to your webhooks,
retries until they are acknowledged, and shows what happened. Errors are RFC 9457 problem
documents; every response has a `request-id` header.

Authenticate with `Authorization: Bearer <API key>`. Keys with a registered public key must
also sign every request (RFC 9421, see the `RequestSignature` scheme). Every `POST` accepts an
`Idempotency-Key` header. Request sizes and per-tenant request rates are limited (`413`,
`414`, `431`, `429` with `Retry-After`)."""
KEY_FLUSH_SECONDS = 10.0


async def _flush_keys(cache: KeyCache) -> None:
    while True:
        await asyncio.sleep(KEY_FLUSH_SECONDS)
        with contextlib.suppress(Exception):
            await cache.flush()


def create_app(services: Services) -> FastAPI:
    """The API bound to ``services`` (opened and closed by the caller)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timers = [
            asyncio.create_task(_flush_keys(app.state.keys)),
            asyncio.create_task(sweep_forever(services)),
        ]
        try:
            yield
        finally:
            for timer in timers:
                timer.cancel()
            for pending in list(app.state.background):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pending, 20)
            with contextlib.suppress(Exception):
                await app.state.keys.flush()

    app = FastAPI(
        title="Hookline",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.keys = KeyCache(services)
    app.state.background = set()
    settings = services.settings
    app.state.buckets = TokenBuckets(settings.rate_limit, settings.rate_limit_burst)
    install_problem_handlers(app)
    app.add_middleware(ApiGate)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so the gate's answers too
    for module in (webhooks, events, system):
        app.include_router(module.router)
    _document_outgoing(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _document_outgoing(app: FastAPI) -> None:
    @app.webhooks.post("package")
    def package(body: PackageBody) -> None:
        """What Hookline POSTs to every webhook: a package of events in log order, signed with
        RFC 9421 (`Signature-Input`, `Signature`, `Content-Digest`) and Standard Webhooks
        (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Answer 2xx to acknowledge."""


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        openapi_version="3.1.0",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (EventIn, EventBatchIn):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    app.openapi_schema = openapi.complete(schema)
    return schema
