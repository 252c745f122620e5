"""Group commit: the worker's per-package writes, from many webhooks, in one transaction.

Each unit of work (record an attempt, open the next package) touches only its own webhook's
rows and changes no in-memory state until its result is handed back after the commit, so
units can share a transaction. Writes whose outcome no unit reads are queued on the ``Tx``
and sent at the end as one ``executemany`` per statement. Units that arrive while a
transaction runs go into the next one. If a shared transaction fails, its units run again one
transaction each, so one bad unit cannot sink the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hookline.store.db import Database, Tx

T = TypeVar("T")
Unit = Callable[[Tx], Awaitable[Any]]
MAX_BATCH = 64


class WriteBatcher:
    """Runs units of work in as few transactions as the arrival rate allows."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``unit`` in a write transaction shared with other units; its result, once
        committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                async with self.db.write() as conn:
                    tx = Tx(conn)
                    results = [await unit(tx) for unit, _ in batch]
                    await tx.flush()
            except Exception:
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        for unit, future in batch:
            try:
                async with self.db.write() as conn:
                    tx = Tx(conn)
                    result = await unit(tx)
                    await tx.flush()
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
