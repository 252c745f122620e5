"""The registry of live delivery workers, from which each computes its fair share."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.store.db import upsert
from hookline.store.tables import webhooks, workers


async def heartbeat(conn: AsyncConnection, name: str, *, now: datetime) -> None:
    await upsert(
        conn,
        workers,
        {"name": name, "started_at": now, "heartbeat_at": now},
        key="name",
        update=["heartbeat_at"],
    )


async def live_workers(conn: AsyncConnection, *, since: datetime) -> int:
    query = select(func.count()).select_from(workers).where(workers.c.heartbeat_at >= since)
    return max(int((await conn.execute(query)).scalar_one()), 1)


async def forget(conn: AsyncConnection, name: str | None = None, *, before: datetime) -> None:
    """Remove a worker that stopped (``name``), and any silent since ``before``."""
    condition = workers.c.heartbeat_at < before
    if name is not None:
        condition = condition | (workers.c.name == name)
    await conn.execute(delete(workers).where(condition))


async def deliverable_webhooks(conn: AsyncConnection) -> int:
    """How many webhooks some worker should hold (enabled, not deleted)."""
    query = (
        select(func.count())
        .select_from(webhooks)
        .where(webhooks.c.enabled.is_(True), webhooks.c.deleted_at.is_(None))
    )
    return int((await conn.execute(query)).scalar_one())
