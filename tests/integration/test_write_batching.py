"""Group commit: units share transactions, and one failing unit does not sink the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import DBAPIError

from hookline.delivery.batching import WriteBatcher
from hookline.ids import utcnow
from hookline.store import db as db_module
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


async def _backend_pid(db: Database) -> int:
    async with db.autocommit() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_the_autocommit_connection_is_kept_while_in_use(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single writes keep one connection (a checkout and two isolation-level switches per
    write cost more than the write); after an error it goes back to the pool, and the next
    use checks one out again; after a rest it is pinged, and kept if it answers."""
    if db.is_sqlite:
        pytest.skip("SQLite writes go through write() and its lock")
    checkouts = 0

    def count(*_: object) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(db.engine.sync_engine, "checkout", count)
    first = await _backend_pid(db)
    for _ in range(5):
        assert await _backend_pid(db) == first
    assert checkouts == 1
    with pytest.raises(DBAPIError):
        async with db.autocommit() as conn:
            await conn.execute(text("SELECT 1 / 0"))
    async with db.autocommit() as conn:  # checked out again
        await _add("after-error")(Tx(conn, autocommit=True))
    assert checkouts == 2
    assert await _names(db) == {"after-error"}
    checkouts -= 1  # that read's
    kept = await _backend_pid(db)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)  # every use now follows a rest
    assert [await _backend_pid(db), await _backend_pid(db)] == [kept, kept]
    assert checkouts == 2


async def test_a_kept_connection_cut_while_it_rested_is_replaced_before_use(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restart or a proxy's idle timeout cuts the kept connection while the worker
    has nothing to send: the ping after the rest finds out, and the write goes through on
    another connection, without an error."""
    if db.is_sqlite:
        pytest.skip("SQLite writes go through write() and its lock")
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.2)
    kept = await _backend_pid(db)
    async with db.read() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept})
    await asyncio.sleep(0.3)  # a rest, spent checked out: the pool's own ping never sees it
    async with db.autocommit() as conn:
        await _add("after-rest")(Tx(conn, autocommit=True))
    assert await _names(db) == {"after-rest"}
    assert await _backend_pid(db) != kept


async def test_a_lone_unit_survives_its_kept_connection_being_cut(db: Database) -> None:
    """A server restart or a proxy cuts the kept connection: the lone unit fails once on it,
    then runs again on a fresh one (see the batcher), and the webhook loses nothing."""
    if db.is_sqlite:
        pytest.skip("SQLite writes go through write() and its lock")
    batcher = WriteBatcher(db)
    kept = await _backend_pid(db)
    async with db.read() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept})
    assert await batcher.run(_autocommit("survivor"), one_write=True) is True
    assert await _names(db) == {"survivor"}
    assert await _backend_pid(db) != kept


async def test_on_postgresql_a_second_batch_runs_while_the_first_waits(db: Database) -> None:
    """Two shared transactions at once on PostgreSQL: units queued behind a batch that waits
    (for the server, here for an event) commit meanwhile. SQLite has one writer: they wait."""
    batcher = WriteBatcher(db, max_batch=2)
    release = asyncio.Event()

    def waiting(name: str):  # type: ignore[no-untyped-def]
        async def unit(tx: Tx) -> str:
            await release.wait()
            return await _add(name)(tx)

        return unit

    first = [asyncio.create_task(batcher.run(waiting(f"w{n}"))) for n in range(2)]
    await asyncio.sleep(0)  # the first batch is taken and waits
    second = [asyncio.create_task(batcher.run(_add(f"s{n}"))) for n in range(2)]
    done, _ = await asyncio.wait(second, timeout=0.5 if db.is_sqlite else 10)
    if db.is_sqlite:
        assert not done
    else:
        assert done == set(second)
        assert await _names(db) == {"s0", "s1"}
    release.set()
    assert await asyncio.gather(*first, *second) == ["w0", "w1", "s0", "s1"]
    assert await _names(db) == {"w0", "w1", "s0", "s1"}
