"""Group commit: the worker's per-package writes, from many webhooks, in one transaction.

Each unit of work (record an attempt, open the next package) touches only its own webhook's
rows and changes no in-memory state until its result is handed back after the commit, so
units can share a transaction. Writes whose outcome no unit reads are queued on the ``Tx``
and sent at the end as one ``executemany`` per statement; so are guarded writes whose outcome
only the unit's result needs (a package opened or not: ``Tx.later_confirmed``), settled by one
query after them. Units that arrive while transactions run go into the next one. If a shared
transaction fails, its units run again one transaction each, so one bad unit cannot sink the
others.

On PostgreSQL two shared transactions run at once (``PARALLEL``): their units are of
different webhooks, so they touch different rows, and while one waits for the server, the
other's units run. (A deadlock between them would only send their units down the one-by-one
path.)

A unit that writes with a single statement (``one_write``) and has the batch to itself runs
without a transaction on PostgreSQL: the statement commits on its own, atomically, and the
``BEGIN`` and ``COMMIT`` round trips are saved. That is the one-webhook drain's whole path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hookline.store.db import Database, Tx

T = TypeVar("T")
Unit = Callable[[Tx], Awaitable[Any]]
Queued = tuple[Unit, asyncio.Future[Any], bool]
MAX_BATCH = 64
# Shared transactions in flight at once on PostgreSQL: while one waits for the server (its
# statements, its commit), the next batch's units plan their packages. SQLite has one writer.
PARALLEL = 2


class WriteBatcher:
    """Runs units of work in as few transactions as the arrival rate allows."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[Queued] = []
        self._drainers: list[asyncio.Task[None]] = []
        self.parallel = 1 if db.is_sqlite else PARALLEL

    async def run(self, unit: Callable[[Tx], Awaitable[T]], *, one_write: bool = False) -> T:
        """Run ``unit`` in a write transaction shared with other units; its result, once
        committed. ``one_write``: on PostgreSQL, the unit reads, then writes at most one
        statement: at once when it runs alone, without a transaction (``Tx.autocommit``, where
        nothing can be queued), or queued in a shared one; SQLite ignores it."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future, one_write))
        # A drainer that found the queue empty is done at once (no await in between).
        self._drainers = [task for task in self._drainers if not task.done()]
        if len(self._drainers) < self.parallel:
            self._drainers.append(asyncio.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                if self._lone(batch):
                    results = [await self._alone(batch[0][0], True)]
                else:
                    async with self.db.write() as conn:
                        tx = Tx(conn)
                        results = [await unit(tx) for unit, _, _ in batch]
                        await tx.flush()
            except Exception:
                # Each unit runs again on its own (a lone one once more): a deadlock or a
                # dropped connection need not cost the webhook an error pause and a re-send.
                await self._one_by_one(batch)
                continue
            for (_, future, _), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def settled(self) -> None:
        """Return once every unit handed in so far has run (committed, or failed)."""
        while running := [task for task in self._drainers if not task.done()]:
            await asyncio.wait(running)

    def _lone(self, batch: list[Queued]) -> bool:
        """One ``one_write`` unit on PostgreSQL: it runs without a transaction."""
        return len(batch) == 1 and batch[0][2] and not self.db.is_sqlite

    async def _one_by_one(self, batch: list[Queued]) -> None:
        for unit, future, one_write in batch:
            try:
                result = await self._alone(unit, one_write)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def _alone(self, unit: Unit, one_write: bool) -> Any:
        if one_write and not self.db.is_sqlite:
            async with self.db.autocommit() as conn:
                return await unit(Tx(conn, autocommit=True))
        async with self.db.write() as conn:
            tx = Tx(conn)
            result = await unit(tx)
            await tx.flush()
        return result
