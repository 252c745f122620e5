"""Retention: delete old events, packages and attempts in small batches.

Each batch is its own short transaction keyed on a primary key, so deletes never hold long
locks or scan whole tables: packages and attempts have UUIDv7 ids, whose order is their
creation time, so "older than" is a range of the primary key. Events go only once every
webhook that still needs them is past them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.store.db import Database
from hookline.store.tables import attempts, events, packages, tenants, webhook_state, webhooks


def uuid7_floor(moment: datetime) -> str:
    """The smallest UUIDv7 of ``moment``: every id made before it sorts below."""
    digits = f"{int(moment.timestamp() * 1000):012x}" + "7000" + "8000" + "0" * 12
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass
class Pruned:
    events: int = 0
    packages: int = 0
    attempts: int = 0
    tenants: dict[str, int] = field(default_factory=dict)


async def _batches(
    db: Database, one_batch: Callable[[AsyncConnection], Awaitable[int]], limit: int
) -> int:
    total = 0
    while True:
        async with db.write() as conn:
            removed = await one_batch(conn)
        total += removed
        if removed < limit:
            return total


async def _needed_from(conn: AsyncConnection, tenant_id: str) -> int:
    """The lowest sequence number some webhook of the tenant may still send."""
    live = select(webhooks.c.id).where(
        webhooks.c.tenant_id == tenant_id,
        webhooks.c.enabled.is_(True),
        webhooks.c.deleted_at.is_(None),
    )
    cursor = select(func.min(webhook_state.c.cursor_seq) + 1).where(
        webhook_state.c.webhook_id.in_(live)
    )
    # Only live webhooks' packages: a disabled webhook restarts from the head when re-enabled
    # (its old pending package is dropped then), so it must not pin the log meanwhile.
    pending = select(func.min(packages.c.first_seq)).where(
        packages.c.webhook_id.in_(live), packages.c.status == "pending"
    )
    head = select(tenants.c.last_seq + 1).where(tenants.c.id == tenant_id)
    bounds = [(await conn.execute(q)).scalar() for q in (cursor, pending, head)]
    return int(min(b for b in bounds if b is not None))


async def prune(db: Database, *, events_age: timedelta, history_age: timedelta,
                now: datetime, batch: int) -> Pruned:  # fmt: skip
    """Delete what is past retention; ``timedelta(0)`` keeps that kind forever."""
    result = Pruned()
    if history_age:
        floor = uuid7_floor(now - history_age)
        result.attempts = await _batches(db, lambda c: _attempts_batch(c, floor, batch), batch)
        result.packages = await _batches(db, lambda c: _packages_batch(c, floor, batch), batch)
    if events_age:
        async with db.read() as conn:
            tenant_ids = [row.id for row in await conn.execute(select(tenants.c.id))]
        for tenant_id in tenant_ids:
            removed = await _prune_tenant_events(db, tenant_id, now - events_age, batch)
            if removed:
                result.tenants[tenant_id] = removed
                result.events += removed
    return result


async def _prune_tenant_events(db: Database, tenant_id: str, cutoff: datetime, batch: int) -> int:
    async with db.read() as conn:
        bound = await _needed_from(conn, tenant_id)

    async def one_batch(conn: AsyncConnection) -> int:
        doomed = (
            select(events.c.seq)
            .where(
                events.c.tenant_id == tenant_id, events.c.seq < bound, events.c.created_at < cutoff
            )
            .order_by(events.c.seq)
            .limit(batch)
        )
        result = await conn.execute(
            delete(events).where(and_(events.c.tenant_id == tenant_id, events.c.seq.in_(doomed)))
        )
        return int(result.rowcount or 0)

    return await _batches(db, one_batch, batch)


async def _attempts_batch(conn: AsyncConnection, floor: str, batch: int) -> int:
    doomed = select(attempts.c.id).where(attempts.c.id < floor).order_by(attempts.c.id).limit(batch)
    result = await conn.execute(delete(attempts).where(attempts.c.id.in_(doomed)))
    return int(result.rowcount or 0)


async def _packages_batch(conn: AsyncConnection, floor: str, batch: int) -> int:
    doomed = (
        select(packages.c.id)
        .where(packages.c.id < floor, packages.c.status != "pending")
        .order_by(packages.c.id)
        .limit(batch)
    )
    result = await conn.execute(delete(packages).where(packages.c.id.in_(doomed)))
    return int(result.rowcount or 0)
