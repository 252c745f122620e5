"""LISTEN/NOTIFY relay: wake-up notices between Hookline processes sharing a PostgreSQL.

One dedicated asyncpg connection per process listens on the ``hookline`` channel and sends
the notices of its own process. Notices carry the sender's origin so a process ignores its own
echo. If the connection drops it is re-opened; what was missed meanwhile is caught by the
workers' safety poll of log heads and their periodic reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import structlog
from sqlalchemy.engine import make_url

from hookline.delivery.wakeups import Wakeups
from hookline.domain.events import CategoryBatch, Published

CHANNEL = "hookline"
RECONNECT_SECONDS = 2.0
log = structlog.get_logger("hookline.relay")


def plain_dsn(url: str) -> str:
    """``postgresql+asyncpg://…`` or ``postgres://…`` -> a DSN asyncpg accepts."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def encode_published(origin: str, notice: Published) -> str:
    categories = {
        name: [batch.size, batch.first_created_at.timestamp()]
        for name, batch in notice.categories.items()
    }
    message = {"o": origin, "k": "p", "t": notice.tenant_id, "s": notice.last_seq, "c": categories}
    return orjson.dumps(message).decode()


def decode_published(message: dict[str, Any]) -> Published:
    categories = {
        name: CategoryBatch(int(size), datetime.fromtimestamp(moment).astimezone())
        for name, (size, moment) in message["c"].items()
    }
    return Published(str(message["t"]), int(message["s"]), categories)


class PgRelay:
    """Relays this process's notices out and the other processes' notices in."""

    def __init__(self, url: str, wakeups: Wakeups) -> None:
        self.dsn = plain_dsn(url)
        self.wakeups = wakeups
        self.origin = secrets.token_hex(8)
        self._conn: asyncpg.Connection | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._connect()
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._watch())]
        self.wakeups.relay = self

    async def stop(self) -> None:
        self.wakeups.relay = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        await conn.add_listener(CHANNEL, self._received)
        self._conn = conn

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            if self._conn is None or self._conn.is_closed():
                try:
                    await self._connect()
                    log.info("relay reconnected")
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("relay cannot reconnect", error=str(exc))

    def _enqueue(self, payload: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(payload)  # dropped notices are caught by the safety poll

    def send_published(self, notice: Published) -> None:
        self._enqueue(encode_published(self.origin, notice))

    def send_webhook_changed(self, webhook_id: str) -> None:
        self._enqueue(orjson.dumps({"o": self.origin, "k": "w", "id": webhook_id}).decode())

    async def _send_loop(self) -> None:
        while True:
            payload = await self._outbox.get()
            try:
                if self._conn is not None and not self._conn.is_closed():
                    await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("relay cannot notify", error=str(exc))

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("o") == self.origin:
                return
            if message.get("k") == "p":
                self.wakeups.published(decode_published(message), local_only=True)
            elif message.get("k") == "w":
                self.wakeups.webhook_changed(str(message["id"]), local_only=True)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("relay ignored a malformed notice", error=str(exc))
