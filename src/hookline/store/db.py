"""Engines and transactions. Everything that differs between SQLite and PostgreSQL is here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import Connection, Dialect, Engine, Executable, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SAWarning
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from hookline.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone orders writers
    fcntl = None  # type: ignore[assignment]


def async_url(url: str) -> str:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``; ``postgresql://`` -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


log = structlog.get_logger("hookline.db")

# Checkpoints come from a thread (see _Checkpointer); SQLite's own, run by the COMMIT that
# takes the WAL past this many pages, is only the backstop if that thread falls behind.
WAL_BACKSTOP_PAGES = 10_000
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another to finish before it fails
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    f"busy_timeout={int(BUSY_TIMEOUT * 1000)}",
    "foreign_keys=ON",
    "cache_size=-65536",
    f"wal_autocheckpoint={WAL_BACKSTOP_PAGES}",
)
CHECKPOINT_AFTER = 0.2  # seconds from a write to the checkpoint that copies it back


class _Checkpointer:
    """Copies an SQLite database's WAL back into its file, on a thread of its own.

    Left to SQLite, the checkpoint runs inside the COMMIT that takes the WAL past
    ``wal_autocheckpoint`` pages: on the writer's thread, which here is the event loop's,
    ending with an fsync. A publish of 500 events spent a sixth of its time there. This
    thread runs ``PRAGMA wal_checkpoint(PASSIVE)``, which waits for no reader or writer, a
    moment after writes (so that the pages several commits rewrote are copied once), and
    ``sqlite3`` lets go of the GIL while SQLite works. Another process's checkpointer may
    run at the same time: one of the two finds the database busy and tries again later."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._written = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None  # started by the first write

    def written(self) -> None:
        """A write committed: checkpoint soon."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpoints", daemon=True
            )
            self._thread.start()
        self._written.set()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            self._written.wait()
            self._closing.wait(CHECKPOINT_AFTER)  # let the commits of the next moment join
            self._written.clear()
            try:
                if connection is None:
                    connection = sqlite3.connect(self._path, isolation_level=None)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:
                # Busy: another process is checkpointing. Otherwise the file broke or went
                # away: start again from a new connection. The next write retries either way.
                if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                    log.warning("sqlite checkpoint failed", error=str(error))
                    if connection is not None:
                        connection.close()
                    connection = None
            if self._closing.is_set():
                break
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Stop after one last checkpoint; returns once the thread has."""
        if self._thread is None:
            return
        self._closing.set()
        self._written.set()
        self._thread.join()


class _WriteTurns:
    """Turns at writing one SQLite file, across processes: an advisory ``flock`` on a file
    beside the database (``<file>-lock``), taken before ``BEGIN IMMEDIATE`` and given back
    after the commit.

    Without it, a writer that finds another process inside a write transaction waits in
    SQLite's busy handler, which sleeps (1, 2, 5, 10 ms and longer) inside the call, on the
    event loop's thread, and retries in no particular order: two worker processes on one file
    spent about a tenth of their time blocked there. Here an uncontended turn is one
    non-blocking ``flock``; a contended one is waited for on a thread, so the loop goes on with
    everything else, and the kernel wakes the waiter as soon as the holder lets go. After
    ``BUSY_TIMEOUT`` the writer stops waiting for its turn and leaves it to SQLite, which
    then fails as before. SQLite's own lock still decides who writes: a writer that does not
    take turns (another program, the ``sqlite3`` shell) only makes the others wait in the
    busy handler again."""

    def __init__(self, database_path: str) -> None:
        self._path = f"{database_path}-lock"
        self._fd: int | None = None
        self._usable = fcntl is not None

    def _file(self) -> int | None:
        if self._fd is None and self._usable:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                self._give_up(error)
        return self._fd

    def _give_up(self, error: OSError) -> None:
        """Turns cannot be had here (a read-only directory, a file system without ``flock``):
        SQLite's busy handler alone orders the writers, as without turns."""
        log.warning("sqlite write turns unavailable", path=self._path, error=str(error))
        self._usable = False
        self.close()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        fd = self._file()
        held = fd is not None and await self._take(fd)
        try:
            yield
        finally:
            if held and self._fd == fd:
                assert fd is not None
                fcntl.flock(fd, fcntl.LOCK_UN)

    async def _take(self, fd: int) -> bool:
        """Whether this writer got the turn: at once, or on a thread within ``BUSY_TIMEOUT``."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as error:
            self._give_up(error)
            return False
        taking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(taking), BUSY_TIMEOUT)
            return True
        except TimeoutError:  # (an OSError: first) SQLite's busy handler decides from here
            taking.add_done_callback(functools.partial(self._give_back, fd))
            return False
        except OSError as error:  # flock itself failed
            self._give_up(error)
            return False
        except BaseException:
            # The thread goes on waiting and will take the turn: give it back once it has.
            taking.add_done_callback(functools.partial(self._give_back, fd))
            raise

    def _give_back(self, fd: int, taken: asyncio.Future[None]) -> None:
        if self._fd == fd and not taken.cancelled() and taken.exception() is None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            # Closing gives back a turn that a thread still waiting takes later.
            fd, self._fd = self._fd, None
            os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin) so writers can take the lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql(f"BEGIN {_begin_mode(conn)}")


def _sqlite_begin_inline(conn: Any) -> None:
    """``_sqlite_begin`` for the inline engine, whose connections are ``sqlite3``'s own: the
    BEGIN goes straight to the driver (through ``exec_driver_sql``, 15 µs of every write)."""
    conn.connection.dbapi_connection.execute(f"BEGIN {_begin_mode(conn)}")


def _begin_mode(conn: Any) -> str:
    return str(conn.get_execution_options().get("sqlite_begin", "DEFERRED"))


PING_AFTER_IDLE = 2.0  # seconds a pooled PostgreSQL connection may rest before it is pinged


def _ping_idle_connections(engine: Engine) -> None:
    """Like ``pool_pre_ping``, but only for connections that rested in the pool a while.

    The stock pre-ping costs three round trips (BEGIN, a query, ROLLBACK) at every checkout,
    which on the worker's hot path is as much as the transaction it guards. A connection
    handed back moments ago is as alive as a ping would prove; one that rested may have been
    cut by a server restart or a proxy, so it is pinged, and replaced if the ping fails."""

    def checkin(_dbapi: Any, record: Any) -> None:
        record.info["rested_since"] = time.monotonic()

    def checkout(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("rested_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as error:  # the pool discards this connection and takes another
            raise DisconnectionError(f"pooled connection failed its ping: {error}") from error

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _json_text(value: Any) -> str:
    """orjson, or the standard library for what orjson refuses (text that is not valid
    UTF-8, which it cannot encode): a write must not fail on what it was given. Reads stay
    with the standard library's decoder, which reads both (orjson does not read the escaped
    lone surrogates the standard library writes)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


class _InlineConnection(AsyncConnection):
    """An ``AsyncConnection`` over a blocking ``sqlite3`` connection, run on the calling
    thread (see ``Database``): statements execute directly, without a greenlet or a thread."""

    async def execute(
        self, statement: Executable, parameters: Any = None, *, execution_options: Any = None
    ) -> CursorResult[Any]:
        return self._proxied.execute(statement, parameters, execution_options=execution_options)

    async def exec_driver_sql(
        self, statement: str, parameters: Any = None, execution_options: Any = None
    ) -> CursorResult[Any]:
        return self._proxied.exec_driver_sql(statement, parameters, execution_options)

    def driver_write(self, sql: str, values: tuple[Any, ...] | list[tuple[Any, ...]]) -> int:
        """A write compiled ahead (``_Positional``), handed to ``sqlite3`` itself inside the
        transaction this connection holds; its row count (for a list of parameter sets, one
        ``executemany``).

        Through ``exec_driver_sql`` a statement also took SQLAlchemy's execution context,
        events, cursor wrapper and result object: two thirds of the cost of the guarded
        cursor move that opens each package (its ``sqlite3`` call is the other third). The
        transaction is the connection's, begun and committed as before; an error comes as
        the SQLAlchemy exception ``exec_driver_sql`` would have raised."""
        dbapi = self._proxied.connection.dbapi_connection
        assert dbapi is not None
        try:
            if isinstance(values, list):
                return int(dbapi.executemany(sql, values).rowcount)
            return int(dbapi.execute(sql, values).rowcount)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


class Database:
    """One engine plus the right way to open read and write transactions on it.

    On SQLite, write transactions run on the event loop's own thread through the standard
    ``sqlite3`` driver, and reads through ``aiosqlite``'s threads. A write runs while holding
    the process's write lock and awaits nothing but its own statements, so it never yields
    mid-transaction; each statement is a few tens of microseconds of local work (WAL,
    ``synchronous=NORMAL``: no fsync at commit). Through ``aiosqlite`` every statement costs
    several thread hand-offs, about ten times the statement itself, and the worker's hot path
    is made of writes. Reads stay threaded, so a slow API query does not stall the loop.
    Checkpoints, which would otherwise run inside a COMMIT, run on a thread of their own
    (``_Checkpointer``).
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        # JSON columns (a package's event ids, a response's headers) are written through
        # orjson: the standard library's encoder was 5 µs of every delivered package.
        options: dict[str, Any] = {"json_serializer": _json_text}
        self._inline: Engine | None = None
        self._checkpointer: _Checkpointer | None = None
        self._turns: _WriteTurns | None = None
        if self.is_sqlite:
            if ":memory:" in url or not make_url(url).database:
                options["poolclass"] = NullPool
            else:
                # The pool's reset on return stays: after a failed COMMIT it is what ends the
                # transaction (and frees SQLite's lock); otherwise it is a no-op rollback.
                self._inline = create_engine(
                    make_url(url).set(drivername="sqlite"), json_serializer=_json_text
                )
                event.listen(self._inline, "connect", _sqlite_pragmas)
                event.listen(self._inline, "begin", _sqlite_begin_inline)
                self._checkpointer = _Checkpointer(str(make_url(url).database))
                self._turns = _WriteTurns(str(make_url(url).database))
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            _ping_idle_connections(self.engine.sync_engine)
        # SQLite has one writer at a time; queueing writers here beats spinning on SQLITE_BUSY.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite's write connection, kept between writes (see write)
        self._writer: tuple[Connection, _InlineConnection] | None = None
        self._autocommit: AsyncConnection | None = None  # kept between uses (see autocommit)
        self._autocommit_used = 0.0
        self._autocommit_lock = asyncio.Lock()

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
        async with self._write_lock:
            if self._inline is None:
                async with self.engine.connect() as conn:
                    conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
                    async with conn.begin():
                        yield conn
                return
            assert self._turns is not None
            # Other processes' writers take turns with this one's (see _WriteTurns).
            async with self._turns.turn(), self._inline_write() as conn:
                yield conn
            if self._checkpointer is not None:
                self._checkpointer.written()

    @asynccontextmanager
    async def _inline_write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on the kept ``sqlite3`` connection (see ``write``)."""
        assert self._inline is not None
        # One connection serves every write in turn (the lock admits one writer): taking
        # one from the pool and wrapping it cost as much as the worker's write itself.
        writer, self._writer = self._writer, None
        if writer is None:
            sync_conn = self._inline.connect()
            sync_conn.execution_options(sqlite_begin="IMMEDIATE")
            writer = sync_conn, _InlineConnection(self.engine, sync_connection=sync_conn)
        try:
            # The transaction on the sync connection itself: through ``AsyncConnection.begin``,
            # its begin and its commit each ran in a greenlet of their own, ~40 µs of a write.
            with writer[0].begin():
                yield writer[1]
        except BaseException:
            # Back to the pool, whose reset ends whatever a failed COMMIT left open.
            writer[0].close()
            raise
        self._writer = writer

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which every statement commits on its own (PostgreSQL only: for a
        single write, it saves the ``BEGIN`` and ``COMMIT`` round trips). One user at a time.

        The connection is kept between uses: checking one out of the pool and switching its
        isolation level, then back, cost more than the statement itself. After a rest (as
        long as the pool's, ``PING_AFTER_IDLE``) it is pinged first, and replaced if the ping
        fails; after an error it goes back to the pool, which checks or replaces it."""
        assert not self.is_sqlite, "SQLite writes go through write() and its lock"
        async with self._autocommit_lock:
            conn, self._autocommit = self._autocommit, None
            if conn is not None and time.monotonic() - self._autocommit_used >= PING_AFTER_IDLE:
                try:
                    await conn.exec_driver_sql("SELECT 1")
                except Exception:  # cut while it rested (a restart, a proxy): take another
                    await _discard(conn)
                    conn = None
            if conn is None:
                conn = await self.engine.connect()
                try:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                except BaseException:
                    await _discard(conn)
                    raise
            try:
                yield conn
            except BaseException:
                await _discard(conn)  # it may be broken: the pool checks or replaces it
                raise
            self._autocommit, self._autocommit_used = conn, time.monotonic()

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        if self._autocommit is not None:
            conn, self._autocommit = self._autocommit, None
            await _discard(conn)
        await self.engine.dispose()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer[0].close()
        if self._inline is not None:
            self._inline.dispose()
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            await asyncio.to_thread(checkpointer.close)
        if self._turns is not None:
            self._turns.close()


async def _discard(conn: AsyncConnection) -> None:
    """Give a connection back to the pool, which resets it, or drops it if that fails; a
    connection that is already broken must not turn one error into two."""
    with contextlib.suppress(Exception):
        await conn.close()


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


@dataclass(frozen=True, slots=True)
class _Positional:
    """A statement compiled for one dialect, and how to turn named parameters into the
    driver's positional ones: each name's bind processor, and the values of bound literals."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    literals: dict[str, Any]
    accepts: frozenset[str]

    def takes(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` are exactly this SQL's: a name it lacks would be a column that
        SQLAlchemy adds to the statement at execution (``SET name = ...``)."""
        return params.keys() <= self.accepts

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """The driver's parameters, processed as SQLAlchemy would (``None`` too: a JSON
        column stores it as ``null``)."""
        values = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.literals[name]
            values.append(value if process is None else process(value))
        return tuple(values)


@functools.lru_cache(maxsize=256)
def _positional(statement: Executable, dialect: Dialect) -> _Positional | None:
    """``statement`` compiled once for ``dialect``; None if its SQL or values can only be
    worked out at execution: columns named by the parameters (an ``insert(table)`` without
    ``values``), lists expanded into ``IN``, Python-side column defaults."""
    clause = cast(ClauseElement, statement)
    compiled = cast(SQLCompiler, clause.compile(dialect=dialect))
    with warnings.catch_warnings():  # a probe: what it warns of is what rules it out here
        warnings.simplefilter("ignore", SAWarning)
        bare = clause.compile(dialect=dialect, column_keys=[])  # as without parameters
    binds = compiled.binds
    if (
        str(compiled) != str(bare)
        or compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or any(bind.expanding or bind.callable is not None for bind in binds.values())
    ):
        return None
    names = tuple(compiled.positiontup)
    processors = tuple(
        binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    literals = {name: bind.value for name, bind in binds.items() if not bind.required}
    return _Positional(str(compiled), names, processors, literals, frozenset(names))


async def run(conn: AsyncConnection, statement: Executable, params: dict[str, Any]) -> int:
    """Execute a write and return its row count, through ``exec_driver_sql`` when the
    statement allows it (see ``_positional``).

    ``conn.execute`` looks the statement up in the compiled cache and builds and processes
    its parameters, every time: on the worker's hot path that was half of what the client
    spends on a statement (PostgreSQL: 314 µs of CPU per package-opening statement, 251 this
    way, 175 of it asyncpg's own and the connection's; micro-benchmark).
    The statement still goes through the connection: same SQL, same events, same error
    translation and transaction handling. Except on PostgreSQL's autocommit connection, where
    there is no transaction to handle: there asyncpg runs it itself (``_autocommit_driver``),
    and its errors come as asyncpg's own. And on SQLite's write connection, where ``sqlite3``
    runs it inside the connection's transaction (``_InlineConnection.driver_write``), without
    SQLAlchemy's execution events."""
    positional = _positional(statement, conn.dialect)
    if positional is None or not positional.takes(params):
        result = await conn.execute(statement, params)
        return int(result.rowcount)
    if isinstance(conn, _InlineConnection):
        return conn.driver_write(positional.sql, positional.values(params))
    driver = _autocommit_driver(conn)
    if driver is not None:
        try:
            status: str = await driver.execute(positional.sql, *positional.values(params))
        except BaseException:
            # SQLAlchemy, which never saw the error, would have told a cut connection from a
            # failed statement and dropped the former: drop it either way, or the pool could
            # hand a dead one out again (a write on its own fails rarely; a connection is
            # cheap beside a failed step).
            with contextlib.suppress(Exception):
                await conn.invalidate()
            raise
        return _status_rowcount(status)
    result = await conn.exec_driver_sql(positional.sql, positional.values(params))
    return int(result.rowcount)


def _autocommit_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` if ``conn`` is a PostgreSQL connection in
    autocommit (``Database.autocommit``), else None.

    There a statement is its own transaction, so handing it straight to asyncpg changes
    nothing but the cost: no greenlet, no cursor adapter, no result object, no events. The
    one-webhook drain waits for one such statement per package: its worker spent 11% less
    CPU per package, and delivered 8% more packages a second."""
    sync = conn.sync_connection
    if (
        sync is None
        or sync.invalidated
        or conn.dialect.name != "postgresql"
        or sync.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
    ):
        return None
    return sync.connection.driver_connection


def _status_rowcount(status: str) -> int:
    """The row count in a command tag: ``UPDATE 3``, ``INSERT 0 1``, ``DELETE 0``."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else -1


async def run_many(
    conn: AsyncConnection, statement: Executable, rows: list[dict[str, Any]]
) -> None:
    """``run`` for many parameter sets: one ``executemany`` (pipelined by asyncpg)."""
    positional = _positional(statement, conn.dialect)
    if positional is None or not all(positional.takes(row) for row in rows):
        await conn.execute(statement, rows)
    elif isinstance(conn, _InlineConnection):
        conn.driver_write(positional.sql, [positional.values(row) for row in rows])
    else:
        await conn.exec_driver_sql(positional.sql, [positional.values(row) for row in rows])


Later = Callable[[Executable, dict[str, Any]], None]


async def write(
    conn: AsyncConnection, later: Later | None, statement: Executable, params: dict[str, Any]
) -> None:
    """Execute now, or queue with ``later`` when the caller batches its writes (see ``Tx``)."""
    if later is None:
        await run(conn, statement, params)
    else:
        later(statement, params)


# Given the keys of guarded writes queued in a transaction, the keys of those that took effect.
Check = Callable[[AsyncConnection, list[Any]], Awaitable[set[Any]]]


@dataclass(slots=True)
class Confirmation:
    """Whether a write queued with ``Tx.later_confirmed`` took effect; None until the flush."""

    key: Hashable
    took_effect: bool | None = None


class Tx:
    """A write transaction's connection, plus writes that can wait for its end.

    Writes whose outcome nothing in the transaction reads (history rows, status updates) can
    be queued with ``later``; ``flush`` sends them as one ``executemany`` per statement, so in
    a group commit they cost one round trip for all webhooks instead of one each. A guarded
    write whose outcome only its caller needs, after the commit, can be queued too
    (``later_confirmed``): one query after the writes tells which took effect. On an
    ``autocommit`` connection there is no end to wait for, and nothing may be queued.
    """

    def __init__(self, conn: AsyncConnection, *, autocommit: bool = False) -> None:
        self.conn = conn
        self.autocommit = autocommit
        self._later: dict[Executable, list[dict[str, Any]]] = {}
        self._checks: dict[Check, list[Confirmation]] = {}
        # Set before this transaction appends to an event log: from then on, its reads of the
        # log may see events that are not committed, and may never be.
        self.log_written = False

    def later(self, statement: Executable, params: dict[str, Any]) -> None:
        if self.autocommit:
            raise RuntimeError("a write queued without a transaction would not be atomic")
        self._later.setdefault(statement, []).append(params)

    def later_confirmed(
        self, statement: Executable, params: dict[str, Any], *, check: Check, key: Hashable
    ) -> Confirmation:
        """Queue a guarded write (see ``later``); after ``flush``, the confirmation says
        whether it took effect, as ``check`` (one call for all writes queued with it) finds."""
        self.later(statement, params)
        confirmation = Confirmation(key)
        self._checks.setdefault(check, []).append(confirmation)
        return confirmation

    async def flush(self) -> None:
        queued, self._later = self._later, {}
        checks, self._checks = self._checks, {}
        for statement, rows in queued.items():
            await run_many(self.conn, statement, rows)
        for check, pending in checks.items():
            took_effect = await check(self.conn, [c.key for c in pending])
            for confirmation in pending:
                confirmation.took_effect = confirmation.key in took_effect
