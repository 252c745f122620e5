"""FastAPI / Starlette adapter: a dependency that verifies the request and returns its events.

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from hookline.receiver import Event
    from hookline.receiver.fastapi import webhook_events

    app = FastAPI()
    Events = Annotated[list[Event], Depends(webhook_events(secret="whsec_..."))]

    @app.post("/hooks/hookline")
    def receive(events: Events) -> None:
        ...

Failures answer ``400`` (malformed) or ``401`` (not authentic) with ``{"detail": "..."}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Unpack

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from .errors import VerificationError
from .events import Event
from .verify import VerifierOptions, WebhookVerifier

#: What :func:`webhook_events` returns: pass it to ``Depends``.
EventsDependency = Callable[[Request], Awaitable[list[Event]]]


def webhook_events(**options: Unpack[VerifierOptions]) -> EventsDependency:
    """A dependency verifying the raw body and headers of the request; returns the events.

    Takes the options of :class:`~hookline.receiver.WebhookVerifier`: ``secret``, ``jwks``
    (client, document or URL), ``jwks_headers`` (sent when ``jwks`` is a URL, e.g. the
    ``Authorization`` header), ``public_key``, ``tolerance``, and ``url`` to override the
    request URL behind a proxy. Verification runs in the thread pool, since a JWKS refresh
    does blocking I/O.
    """
    verifier = WebhookVerifier(**options)

    async def hookline_events(request: Request) -> list[Event]:
        body = await request.body()
        try:
            return await run_in_threadpool(
                verifier.verify,
                request.headers,
                body,
                method=request.method,
                url=str(request.url),
            )
        except VerificationError as exc:
            raise HTTPException(status_code=exc.status_code, detail=str(exc)) from exc

    return hookline_events
