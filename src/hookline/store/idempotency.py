"""Idempotency-Key records: claimed atomically by the first request, replayed afterwards.

The claim is one ``INSERT ... ON CONFLICT DO NOTHING`` on the (tenant, key) primary key, so
two API processes racing with the same key cannot both run the request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.store.tables import idempotency_keys as keys

IN_PROGRESS = "in_progress"
DONE = "done"


class Outcome(enum.Enum):
    STARTED = "started"  # this request holds the key now: run it, then complete or release
    REPLAY = "replay"  # done before with the same request: answer with the stored response
    IN_PROGRESS = "in_progress"  # the first request is still running
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    response: StoredResponse | None = None


async def _insert(
    conn: AsyncConnection, tenant_id: str, key: str, request_hash: str, *, now: datetime,
    ttl: timedelta,
) -> bool:  # fmt: skip
    build = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = build(keys).values(
        tenant_id=tenant_id, key=key, request_hash=request_hash, state=IN_PROGRESS,
        created_at=now, expires_at=now + ttl,
    )  # fmt: skip
    stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    result = await conn.execute(stmt.returning(keys.c.key))
    return result.first() is not None


async def _take_over(
    conn: AsyncConnection, tenant_id: str, key: str, request_hash: str, *, now: datetime,
    ttl: timedelta, lease: timedelta,
) -> bool:  # fmt: skip
    """Reuse an expired record, or one whose first request died without releasing it."""
    abandoned = and_(keys.c.state == IN_PROGRESS, keys.c.created_at < now - lease)
    result = await conn.execute(
        update(keys)
        .where(keys.c.tenant_id == tenant_id, keys.c.key == key)
        .where(or_(keys.c.expires_at <= now, abandoned))
        .values(
            request_hash=request_hash,
            state=IN_PROGRESS,
            status=None,
            headers=None,
            body=None,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return bool(result.rowcount)


async def claim(
    conn: AsyncConnection, tenant_id: str, key: str, request_hash: str, *, now: datetime,
    ttl: timedelta, lease: timedelta,
) -> Claim:  # fmt: skip
    """Claim ``key`` for a request, or say why not (see :class:`Outcome`)."""
    if await _insert(conn, tenant_id, key, request_hash, now=now, ttl=ttl):
        return Claim(Outcome.STARTED)
    if await _take_over(conn, tenant_id, key, request_hash, now=now, ttl=ttl, lease=lease):
        return Claim(Outcome.STARTED)
    row = (
        await conn.execute(select(keys).where(keys.c.tenant_id == tenant_id, keys.c.key == key))
    ).first()
    if row is None:  # swept between the statements: claim it afresh
        await _insert(conn, tenant_id, key, request_hash, now=now, ttl=ttl)
        return Claim(Outcome.STARTED)
    if row.request_hash != request_hash:
        return Claim(Outcome.MISMATCH)
    if row.state == IN_PROGRESS:
        return Claim(Outcome.IN_PROGRESS)
    headers = [(str(name), str(value)) for name, value in row.headers or []]
    return Claim(Outcome.REPLAY, StoredResponse(int(row.status), headers, bytes(row.body or b"")))


async def complete(
    conn: AsyncConnection, tenant_id: str, key: str, response: StoredResponse, *,
    now: datetime, ttl: timedelta,
) -> None:  # fmt: skip
    """Keep the first response for replays during ``ttl``."""
    await conn.execute(
        update(keys)
        .where(keys.c.tenant_id == tenant_id, keys.c.key == key, keys.c.state == IN_PROGRESS)
        .values(
            state=DONE,
            status=response.status,
            headers=[list(h) for h in response.headers],
            body=response.body,
            expires_at=now + ttl,
        )
    )


async def release(conn: AsyncConnection, tenant_id: str, key: str) -> None:
    """Forget a claim whose request failed, so that a retry runs it again."""
    await conn.execute(
        delete(keys).where(
            keys.c.tenant_id == tenant_id, keys.c.key == key, keys.c.state == IN_PROGRESS
        )
    )


async def sweep_expired(conn: AsyncConnection, *, now: datetime, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired records; returns how many went."""
    expired = select(keys.c.tenant_id, keys.c.key).where(keys.c.expires_at <= now).limit(batch)
    result = await conn.execute(
        delete(keys).where(tuple_(keys.c.tenant_id, keys.c.key).in_(expired))
    )
    return int(result.rowcount or 0)
