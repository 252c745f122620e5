"""The ``Idempotency-Key`` header on POST: run a request once, replay its response for 24 h.

The record lives in the database (store/idempotency.py), so every API process sees it. The
first request's response is captured, stored, then sent; a 5xx, an exception, or an answer
given before the request ran (401, 403, 429) releases the key so that a retry runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookline.errors import IdempotencyInProgress, IdempotencyMismatch, ValidationFailed
from hookline.ids import utcnow
from hookline.services import Services
from hookline.store import idempotency as store
from hookline.store.idempotency import Outcome, StoredResponse

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"
MAX_KEY_LENGTH = 255
#: A claim still "in progress" after this long belongs to a request that died; take it over.
IN_PROGRESS_LEASE = timedelta(minutes=5)
SWEEP_BATCH = 1000
_VISIBLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
_NOT_RUN = frozenset({401, 403, 429})
_NOT_KEPT = frozenset({b"request-id"})
log = structlog.get_logger("hookline.api")


def valid_key(value: str) -> str:
    """The key, if well formed (1..255 visible ASCII characters)."""
    if not value or len(value) > MAX_KEY_LENGTH or not _VISIBLE_ASCII.match(value):
        raise ValidationFailed(
            f"give 1..{MAX_KEY_LENGTH} visible ASCII characters", field="Idempotency-Key"
        )
    return value


def request_hash(method: str, target: str, body: bytes) -> str:
    """What makes two requests "the same" for one key: method, path with query, body."""
    digest = hashlib.sha256(f"{method}\n{target}\n".encode("latin-1"))
    digest.update(body)
    return digest.hexdigest()


@dataclass
class _Captured:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    def stored(self) -> StoredResponse:
        kept = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.headers
            if name.lower() not in _NOT_KEPT
        ]
        return StoredResponse(self.status, kept, bytes(self.body))


async def send_stored(response: StoredResponse, send: Send, *, replayed: bool) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    if replayed:
        headers.append((REPLAYED.encode(), b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


@dataclass(frozen=True)
class IdempotentCall:
    """One POST with an Idempotency-Key, for one tenant."""

    services: Services
    tenant_id: str
    key: str
    fingerprint: str

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Claim the key and run the request, or replay / refuse (409, 422)."""
        ttl = self.services.settings.idempotency_ttl
        async with self.services.db.write() as conn:
            claim = await store.claim(
                conn, self.tenant_id, self.key, self.fingerprint, now=utcnow(), ttl=ttl,
                lease=IN_PROGRESS_LEASE,
            )  # fmt: skip
        if claim.outcome is Outcome.MISMATCH:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used for a different request (method, path or body)"
            )
        if claim.outcome is Outcome.IN_PROGRESS:
            raise IdempotencyInProgress("the first request with this Idempotency-Key is running")
        if claim.response is not None:
            await send_stored(claim.response, send, replayed=True)
            return
        captured = await self._first(app, scope, receive)
        await self._settle(captured)
        await send_stored(captured.stored(), send, replayed=False)

    async def _first(self, app: ASGIApp, scope: Scope, receive: Receive) -> _Captured:
        captured = _Captured()
        try:
            await app(scope, receive, captured.send)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release())
            raise
        return captured

    async def _settle(self, captured: _Captured) -> None:
        try:
            if captured.status >= 500 or captured.status in _NOT_RUN or not captured.status:
                await self._release()
                return
            async with self.services.db.write() as conn:
                await store.complete(
                    conn, self.tenant_id, self.key, captured.stored(), now=utcnow(),
                    ttl=self.services.settings.idempotency_ttl,
                )  # fmt: skip
        except Exception as exc:  # the answer still goes out; a retry then meets 409 or runs
            log.warning("idempotency record not saved", key=self.key, error=repr(exc))
            with contextlib.suppress(Exception):
                await self._release()

    async def _release(self) -> None:
        async with self.services.db.write() as conn:
            await store.release(conn, self.tenant_id, self.key)


async def sweep_expired(services: Services) -> int:
    """Delete every expired record, a batch per transaction."""
    total = 0
    while True:
        async with services.db.write() as conn:
            deleted = await store.sweep_expired(conn, now=utcnow(), batch=SWEEP_BATCH)
        total += deleted
        if deleted < SWEEP_BATCH:
            return total


async def sweep_forever(services: Services) -> None:
    """The API's timer: sweep expired keys every ``idempotency_sweep_interval``."""
    interval = services.settings.idempotency_sweep_interval.total_seconds()
    while True:
        with contextlib.suppress(Exception):
            await sweep_expired(services)
        await asyncio.sleep(interval)
