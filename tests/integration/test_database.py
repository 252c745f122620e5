"""The transaction mechanics of ``store/db.py`` on a real SQLite file and a real PostgreSQL:
rollback on error, visibility across connections, SQLite writes that never yield mid-way, and
PostgreSQL connections cut while resting in the pool."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from hookline.store import db as db_module
from hookline.store.db import Database
from hookline.store.migrate import migrate
from hookline.store.tables import tenants
from hookline.store.tenants import create_tenant


@pytest.fixture
async def database(database_url: str) -> Database:
    migrate(database_url)
    db = Database(database_url)
    yield db  # type: ignore[misc]
    await db.close()


async def _names(db: Database) -> list[str]:
    async with db.read() as conn:
        return [row.name for row in await conn.execute(select(tenants.c.name))]


async def test_a_failed_write_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            await create_tenant(conn, "half")
            raise RuntimeError("boom")
    async with database.write() as conn:
        await create_tenant(conn, "whole")
    assert await _names(database) == ["whole"]


async def test_a_commit_is_seen_by_another_database_object(database_url: str) -> None:
    migrate(database_url)
    first, second = Database(database_url), Database(database_url)
    try:
        async with first.write() as conn:
            await create_tenant(conn, "shared")
        assert await _names(second) == ["shared"]
    finally:
        await first.close()
        await second.close()


async def test_sqlite_writers_take_turns_without_interleaving(tmp_path: object) -> None:
    """Writes run on the loop's thread and yield only between transactions: whatever else the
    loop runs never sees a write half done, and concurrent writers all commit."""
    url = f"sqlite:///{tmp_path}/inline.db"
    migrate(url)
    db = Database(url)
    inside = 0
    seen_inside: list[int] = []

    async def writer(n: int) -> None:
        nonlocal inside
        async with db.write() as conn:
            inside += 1
            await create_tenant(conn, f"t{n}")
            await asyncio.sleep(0)  # a real yield point inside the transaction
            inside -= 1

    async def observer() -> None:
        for _ in range(200):
            seen_inside.append(inside)
            await asyncio.sleep(0)

    await asyncio.gather(observer(), *(writer(n) for n in range(50)))
    try:
        assert len(await _names(db)) == 50
        assert max(seen_inside) <= 1  # never two writers inside at once
    finally:
        await db.close()


@pytest.mark.postgres
async def test_a_pooled_connection_cut_while_resting_is_replaced(
    postgres_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
    migrate(database_url)
    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(
            make_url(postgres_url).render_as_string(hide_password=False), timeout=10
        )
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        async with db.read() as conn:  # the dead connection is pinged, dropped and replaced
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await db.close()
