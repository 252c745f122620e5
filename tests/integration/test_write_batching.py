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


async def test_a_single_write_alone_commits_without_a_transaction(db: Database) -> None:
    """On PostgreSQL a lone ``one_write`` unit's statement commits by itself (no BEGIN and
    COMMIT round trips): another connection sees it before the unit has returned. SQLite
    keeps its write transaction (and lock)."""
    batcher = WriteBatcher(db)
    seen: list[set[str]] = []

    async def unit(tx: Tx) -> bool:
        await _add("solo")(tx)
        seen.append(await _names(db) if not db.is_sqlite else set())
        if tx.autocommit:
            with pytest.raises(RuntimeError, match="atomic"):
                tx.later(insert(tenants), {"id": "x", "name": "x", "created_at": utcnow()})
        return tx.autocommit

    assert await batcher.run(unit, one_write=True) is (not db.is_sqlite)
    if not db.is_sqlite:
        assert seen == [{"solo"}]
    assert await _names(db) == {"solo"}


async def test_single_writes_still_share_a_transaction_when_they_meet(db: Database) -> None:
    batcher = WriteBatcher(db)
    modes = await asyncio.gather(
        *(batcher.run(_autocommit(f"t{n}"), one_write=True) for n in range(5))
    )
    assert not any(modes)  # queued before the batcher ran: one shared transaction
    assert await _names(db) == {f"t{n}" for n in range(5)}


def _autocommit(name: str):  # type: ignore[no-untyped-def]
    async def unit(tx: Tx) -> bool:
        await _add(name)(tx)
        return tx.autocommit

    return unit


async def test_a_lone_unit_that_fails_once_runs_again(db: Database) -> None:
    """As in a failed shared transaction, a unit gets a second run before its error is
    reported, also alone and without a transaction (a deadlock victim, say)."""
    batcher = WriteBatcher(db)
    runs = 0

    async def flaky(tx: Tx) -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("deadlock detected")
        return await _add("second")(tx)

    assert await batcher.run(flaky, one_write=True) == "second"
    assert runs == 2
    assert await _names(db) == {"second"}

    async def broken(tx: Tx) -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("still failing")

    with pytest.raises(RuntimeError, match="still failing"):
        await batcher.run(broken, one_write=True)
    assert runs == 4  # twice each
