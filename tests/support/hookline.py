"""An in-process Hookline (API + worker) on a real SQLite file, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from hookline.api.app import create_app
from hookline.config import Settings
from hookline.delivery.worker import Worker
from hookline.services import Services, open_services
from hookline.store import tenants
from hookline.store.migrate import migrate

T = TypeVar("T")

ALL_SCOPES = ["webhooks:read", "webhooks:admin", "events:publish", "events:read"]


def make_settings(directory: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{directory / 'hookline.db'}",
        "allow_insecure_targets": True,
        "secret_key": "test-secret-key-0123456789",
        "request_timeout": "3s",
        "connect_timeout": "2s",
        **overrides,
    }
    return Settings(**values)


@dataclass
class Tenant:
    id: str
    key: str
    client: httpx.AsyncClient

    async def create_webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        body = {"title": fields.pop("title", "test"), "url": url, **fields}
        response = await self.client.post("/webhooks", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def publish(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.client.post("/events", json={"events": list(events)})
        assert response.status_code == 201, response.text
        return list(response.json()["events"])

    async def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and return its JSON body, asserting a 200."""
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def reconnect(self, hookline: Hookline) -> Tenant:
        """The same tenant with a client on ``hookline``'s current app (after a restart)."""
        return Tenant(self.id, self.key, hookline.client(self.key))


class Hookline:
    """API (through an ASGI transport) and a delivery worker sharing one process, like
    ``hookline serve``. ``restart()`` closes everything and reopens the same database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._clients: list[httpx.AsyncClient] = []

    async def start(self, *, worker: bool = True) -> Hookline:
        await asyncio.to_thread(migrate, self.settings.database_url)
        self.services = await open_services(self.settings)
        self.app = create_app(self.services)
        if worker:
            await self.start_worker()
        return self

    def new_worker(self) -> Worker:
        """A worker on this instance's services, not started."""
        assert self.services is not None
        services = self.services
        return Worker(
            services.db, self.settings, wakeups=services.wakeups, sender=services.sender,
            signer=services.signer,
        )  # fmt: skip

    async def start_worker(self) -> None:
        self.worker = self.new_worker()
        self._worker_task = asyncio.create_task(self.worker.run())
        await self.worker.wait_ready()

    async def stop_worker(self, *, grace: float = 5.0) -> None:
        if self.worker is not None and self._worker_task is not None:
            await self.worker.stop(grace=grace)
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        self.worker = self._worker_task = None

    async def crash(self) -> None:
        """Stop abruptly: cancel the worker mid-flight and keep its leases (like SIGKILL)."""
        if self._worker_task is not None:
            self._worker_task.cancel()
            for task in list(self.worker._tasks) if self.worker else []:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        self.worker = self._worker_task = None
        await self._close()

    async def stop(self) -> None:
        await self.stop_worker()
        await self._close()

    async def _close(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        if self.services is not None:
            await self.services.close()
            self.services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://hookline.test",
            headers=headers,
        )  # fmt: skip
        self._clients.append(client)
        return client

    async def tenant(self, name: str, scopes: list[str] | None = None) -> Tenant:
        assert self.services is not None
        async with self.services.db.write() as conn:
            tenant_id = await tenants.create_tenant(conn, name)
            _, key = await tenants.create_key(conn, tenant_id, scopes=scopes or ALL_SCOPES)
        return Tenant(tenant_id, key, self.client(key))

    async def key_for(self, tenant_id: str, scopes: list[str]) -> str:
        assert self.services is not None
        async with self.services.db.write() as conn:
            _, key = await tenants.create_key(conn, tenant_id, scopes=scopes)
        return key


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Hookline]:
    """A started Hookline with these settings, stopped on exit (for non-default settings)."""
    instance = await Hookline(settings).start()
    try:
        yield instance
    finally:
        await instance.stop()


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a per-call bound
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail after ``timeout``.

    For state the receiver cannot see (attempt records, package status, a disabled flag)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
