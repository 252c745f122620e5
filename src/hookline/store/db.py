"""Engines and transactions. Everything that differs between SQLite and PostgreSQL is here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Table, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from hookline.errors import ConfigError


def async_url(url: str) -> str:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``; ``postgresql://`` -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin) so writers can take the lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        "cache_size=-65536",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine plus the right way to open read and write transactions on it."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        if self.is_sqlite:
            options["poolclass"] = NullPool if ":memory:" in url else None
            options = {k: v for k, v in options.items() if v is not None}
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        # SQLite has one writer at a time; queueing writers here beats spinning on SQLITE_BUSY.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit (``BEGIN IMMEDIATE`` on SQLite)."""
        if self._write_lock is None:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()


async def upsert(
    conn: AsyncConnection, table: Table, values: dict[str, Any], *, key: str, update: list[str]
) -> None:
    """Insert a row, or update ``update`` columns if ``key`` exists (both backends)."""
    build = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = build(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key], set_={column: stmt.excluded[column] for column in update}
    )
    await conn.execute(stmt)


Later = Callable[[Executable, dict[str, Any]], None]


async def write(
    conn: AsyncConnection, later: Later | None, statement: Executable, params: dict[str, Any]
) -> None:
    """Execute now, or queue with ``later`` when the caller batches its writes (see ``Tx``)."""
    if later is None:
        await conn.execute(statement, params)
    else:
        later(statement, params)


class Tx:
    """A write transaction's connection, plus writes that can wait for its end.

    Writes whose outcome nothing in the transaction reads (history rows, status updates) can
    be queued with ``later``; ``flush`` sends them as one ``executemany`` per statement, so in
    a group commit they cost one round trip for all webhooks instead of one each.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._later: dict[Executable, list[dict[str, Any]]] = {}

    def later(self, statement: Executable, params: dict[str, Any]) -> None:
        self._later.setdefault(statement, []).append(params)

    async def flush(self) -> None:
        queued, self._later = self._later, {}
        for statement, rows in queued.items():
            await self.conn.execute(statement, rows)
