"""Bearer API keys with scopes. Lookups are cached briefly; last-used times are batched."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hookline.errors import Forbidden, Unauthenticated
from hookline.ids import utcnow
from hookline.services import Services
from hookline.store.tenants import Principal, authenticate, touch_keys

CACHE_SECONDS = 2.0
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hk_...`")


class KeyCache:
    """Remembers authenticated keys for a moment, so a busy producer costs no query per call.
    A revoked key stops working within ``CACHE_SECONDS``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._known: dict[str, tuple[float, Principal | None]] = {}
        self._used: dict[str, datetime] = {}

    async def principal(self, secret: str) -> Principal | None:
        now = time.monotonic()
        hit = self._known.get(secret)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            async with self.services.db.read() as conn:
                principal = await authenticate(conn, secret)
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[secret] = (now + CACHE_SECONDS, principal)
        if principal is not None:
            self._used[principal.key_id] = utcnow()
        return principal

    async def flush(self) -> None:
        """Write the batched last-used times."""
        if not self._used:
            return
        used, self._used = self._used, {}
        async with self.services.db.write() as conn:
            await touch_keys(conn, used)


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, which must hold ``scope``."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        # Usually resolved already by the gate (api/gate.py), which also checked signatures.
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            cache: KeyCache = request.app.state.keys
            principal = await cache.principal(credentials.credentials)
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if scope not in principal.scopes:
            raise Forbidden(f"the API key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
