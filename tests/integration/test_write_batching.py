"""Group commit: units share transactions, and one failing unit does not sink the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select

from hookline.delivery.batching import WriteBatcher
from hookline.ids import utcnow
from hookline.store.db import Database, Tx
from hookline.store.migrate import migrate
from hookline.store.tables import tenants


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(migrate, database_url)
    database = Database(database_url)
    yield database
    await database.close()


def _add(name: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
    async def unit(tx: Tx) -> str:
        await tx.conn.execute(insert(tenants).values(id=name, name=name, created_at=utcnow()))
        if fail:
            raise RuntimeError(f"{name} fails")
        return name

    return unit


async def _names(db: Database) -> set[str]:
    async with db.read() as conn:
        return {row.name for row in await conn.execute(select(tenants.c.name))}


async def test_concurrent_units_share_few_transactions(db: Database) -> None:
    batcher = WriteBatcher(db, max_batch=8)
    commits = 0
    write = db.write

    def counting_write():  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        return write()

    db.write = counting_write  # type: ignore[method-assign]
    results = await asyncio.gather(*(batcher.run(_add(f"t{n}")) for n in range(20)))
    assert results == [f"t{n}" for n in range(20)]
    assert await _names(db) == {f"t{n}" for n in range(20)}
    assert commits <= 4  # 20 units, at most 8 a transaction: 3 batches (+1 for the first)


async def test_a_failing_unit_fails_alone(db: Database) -> None:
    batcher = WriteBatcher(db)
    outcomes = await asyncio.gather(
        batcher.run(_add("a")),
        batcher.run(_add("b", fail=True)),
        batcher.run(_add("c")),
        return_exceptions=True,
    )
    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], RuntimeError)
    assert await _names(db) == {"a", "c"}
