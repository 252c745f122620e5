"""The transaction mechanics of ``store/db.py`` on a real SQLite file and a real PostgreSQL:
rollback on error, visibility across connections, SQLite writes that never yield mid-way, and
PostgreSQL connections cut while resting in the pool."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, insert, inspect, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from hookline.domain.events import CategoryBatch, NewEvent, Published, StoredEvent, wire_size
from hookline.domain.webhooks import CategoryFilter, WebhookSpec
from hookline.ids import new_id, utcnow
from hookline.store import db as db_module
from hookline.store import deliveries
from hookline.store.db import Database, Tx
from hookline.store.deliveries import (
    AttemptRecord,
    Closing,
    close_package,
    open_package,
    record_attempt,
)
from hookline.store.events import (
    EventQuery,
    append_events,
    list_events_for_tenant,
    waiting_events,
)
from hookline.store.migrate import migrate
from hookline.store.tables import attempts, events, packages, tenants, webhook_state, webhooks
from hookline.store.tenants import create_tenant
from hookline.store.webhooks import create_webhook
from tests.support import postgres

AHEAD = timezone(timedelta(hours=2))  # a zone other than UTC


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


def _size(path: str) -> int:
    """A file's size (a stat: nothing an event loop would wait on)."""
    return os.path.getsize(path)


async def _fill(db: Database, tenant_id: str, events_count: int) -> None:
    """Append ``events_count`` events of ~1 KiB in one write transaction."""
    batch = [NewEvent("ORDER.FILLED", '{"pad":"%s"}' % ("x" * 1000))] * events_count
    async with db.write() as conn:
        await append_events(conn, tenant_id, batch, now=utcnow())


async def test_sqlite_checkpoints_run_on_a_thread_soon_after_writes(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a write leaves in the WAL is copied back into the database file shortly after,
    by the checkpointer's thread, though far fewer pages than SQLite's own threshold were
    written (its checkpoints would have left the file as it was)."""
    monkeypatch.setattr(db_module, "CHECKPOINT_AFTER", 0.01)
    path = f"{tmp_path}/checkpointed.db"
    migrate(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.write() as conn:
            tenant_id = await create_tenant(conn, "acme")
        before = _size(path)
        await _fill(db, tenant_id, 500)  # ~0.7 MB: ~170 pages, well under 1000
        for _ in range(500):
            if _size(path) > before + 500_000:
                break
            await asyncio.sleep(0.01)
        assert _size(path) > before + 500_000, "the WAL was not checkpointed"
    finally:
        await db.close()


async def test_sqlite_commits_leave_checkpoints_to_the_thread(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that takes the WAL past SQLite's default threshold (1000 pages) does not copy
    it back inside its COMMIT, on the event loop's thread: the file is as it was when the
    write returns. Closing the database runs the thread's last checkpoint."""
    monkeypatch.setattr(db_module, "CHECKPOINT_AFTER", 60.0)  # not before close() here
    path = f"{tmp_path}/backstop.db"
    migrate(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    async with db.write() as conn:
        tenant_id = await create_tenant(conn, "acme")
    before = _size(path)
    await _fill(db, tenant_id, 4000)  # ~5.5 MB: ~1400 pages
    assert _size(path) == before
    assert _size(f"{path}-wal") > 4 * 2**20
    await db.close()
    assert _size(path) > before + 4 * 2**20


async def test_sqlite_writes_keep_one_connection(tmp_path: object) -> None:
    """Writes take turns on one kept connection (a checkout per write cost as much as the
    worker's write). A write that fails hands it back to the pool, whose reset ends that
    transaction: nothing of it stays, its lock is free for other processes, and the next
    write takes a connection again."""
    url = f"sqlite:///{tmp_path}/kept.db"
    migrate(url)
    db, other = Database(url), Database(url)
    assert db._inline is not None
    checkouts = 0

    def count(*_: object) -> None:
        nonlocal checkouts
        checkouts += 1

    sa_event.listen(db._inline, "checkout", count)
    try:
        for n in range(5):
            async with db.write() as conn:
                await create_tenant(conn, f"t{n}")
        assert checkouts == 1
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await create_tenant(conn, "failed")
                raise RuntimeError("after the insert")
        async with other.write() as conn:  # the failed write's lock is gone
            await create_tenant(conn, "other")
        async with db.write() as conn:
            await create_tenant(conn, "after")
        assert checkouts == 2
        assert sorted(await _names(db)) == ["after", "other", "t0", "t1", "t2", "t3", "t4"]
    finally:
        await db.close()
        await other.close()


_HOLD_A_WRITE = """
import asyncio, sys
from hookline.store.db import Database
from hookline.store.tenants import create_tenant

async def main() -> None:
    db = Database(sys.argv[1])
    async with db.write() as conn:
        await create_tenant(conn, sys.argv[3])
        print("holding", flush=True)
        await asyncio.sleep(float(sys.argv[2]))
    await db.close()

asyncio.run(main())
"""
HOLD_SECONDS = 1.5


async def _holder(
    url: str, seconds: float = HOLD_SECONDS, *, name: str = "holder", within: float = 30
) -> asyncio.subprocess.Process:
    """Another process, inside a write transaction on ``url`` (making tenant ``name``) for
    ``seconds``, once it got in (``within`` seconds)."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_A_WRITE, url, str(seconds), name,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), within) == b"holding\n"
    except BaseException:
        holder.kill()
        await holder.wait()
        raise
    return holder


async def test_a_sqlite_write_waits_for_another_processs_turn_off_the_event_loop(
    tmp_path: object,
) -> None:
    """Another process is inside a write transaction: this process's writer waits for its
    turn on a thread, so the event loop goes on with everything else (before, it slept in
    SQLite's busy handler on the loop's thread and the whole process stood still until the
    other committed), and it writes once the other has committed."""
    url = f"sqlite:///{tmp_path}/turns.db"
    migrate(url)
    db = Database(url)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    holder = await _holder(url)
    beat = asyncio.create_task(ticker())
    try:
        async with db.write() as conn:
            waited = ticks
            await create_tenant(conn, "waiter")
        # ~75 ticks of the 1.5 s hold; a loop blocked throughout would count none
        assert waited >= 20
        assert await holder.wait() == 0
        assert sorted(await _names(db)) == ["holder", "waiter"]
    finally:
        beat.cancel()
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await db.close()


async def test_a_sqlite_writer_cancelled_while_waiting_gives_its_turn_back(
    tmp_path: object,
) -> None:
    """A write cancelled while it waits for its turn (a request timed out, a worker
    stopping) does not keep the turn its thread takes later: another process gets it as soon
    as the first one commits, not after the busy timeout, and so does this one."""
    url = f"sqlite:///{tmp_path}/cancelled.db"
    migrate(url)
    db = Database(url)

    async def write(name: str) -> None:
        async with db.write() as conn:
            await create_tenant(conn, name)

    holder = await _holder(url)
    try:
        waiting = asyncio.create_task(write("cancelled"))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await holder.wait() == 0
        await asyncio.sleep(0.2)  # the cancelled writer's thread has had the turn by now
        again = await _holder(url, 0, name="again", within=10)
        assert await again.wait() == 0
        await asyncio.wait_for(write("next"), 10)
        assert sorted(await _names(db)) == ["again", "holder", "next"]
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await db.close()


async def test_sqlite_writes_work_where_turns_cannot_be_taken(tmp_path: object) -> None:
    """No lock file beside the database (a read-only directory, say): writers are ordered by
    SQLite's busy handler alone, as before, and say so once in the log."""
    url = f"sqlite:///{tmp_path}/noturns.db"
    migrate(url)
    db = Database(url)
    assert db._turns is not None
    db._turns._path = f"{tmp_path}/missing/dir/noturns.db-lock"
    try:
        for name in ("a", "b"):
            async with db.write() as conn:
                await create_tenant(conn, name)
        assert sorted(await _names(db)) == ["a", "b"]
        assert db._turns._fd is None and not db._turns._usable
    finally:
        await db.close()


@pytest.fixture
def postgres_only_url(postgres_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database, for tests that have no SQLite counterpart."""
    name = postgres.create_database(postgres_url, postgres_template)
    yield postgres.with_database(postgres_url, name)
    postgres.drop_database(postgres_url, name)


@pytest.mark.postgres
async def test_a_pooled_connection_cut_while_resting_is_replaced(
    postgres_url: str, postgres_only_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
    db = Database(postgres_only_url, pool_size=1)
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


# --- the package statements (PostgreSQL runs them as one data-modifying CTE each) ----------


async def _webhook(db: Database) -> tuple[str, str, Any]:
    now = utcnow()
    async with db.write() as conn:
        tenant_id = await create_tenant(conn, "acme")
        spec = WebhookSpec(title="t", url="https://example.com/hook")
        record = await create_webhook(conn, tenant_id, spec, now=now)
        await conn.execute(
            update(webhook_state)
            .where(webhook_state.c.webhook_id == record.id)
            .values(lease_owner="me", lease_until=now + timedelta(minutes=1))
        )
        appended = await append_events(
            conn, tenant_id, [NewEvent("ORDER.FILLED", '{"n":1}')] * 3, now=now
        )
    return tenant_id, record.id, (record.updated_at, appended.appended)


async def _open(db: Database, tenant_id: str, webhook_id: str, state: Any, **kw: Any) -> Any:
    settings_at, _events = state
    async with db.write() as conn:
        return await open_package(
            conn, tenant_id=tenant_id, webhook_id=webhook_id, owner=kw.pop("owner", "me"),
            settings_at=settings_at, size=100, now=utcnow(), **kw,
        )  # fmt: skip


async def _rows(db: Database, table: Any) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(table))).all())


async def test_a_package_is_stored_only_if_the_cursor_moved(database: Database) -> None:
    tenant_id, webhook_id, state = await _webhook(database)
    events = state[1]
    for wrong in ({"expected_cursor": 99}, {"expected_cursor": 0, "owner": "someone else"}):
        opened = await _open(database, tenant_id, webhook_id, state, events=events[:1], **wrong)
        assert opened is None
    assert await _rows(database, packages) == []
    first = await _open(database, tenant_id, webhook_id, state, events=events[:2],
                        expected_cursor=0)  # fmt: skip
    assert first is not None
    [row] = await _rows(database, packages)
    assert (row.id, row.event_seqs, row.status) == (first.id, [1, 2], "pending")
    [st] = [r for r in await _rows(database, webhook_state) if r.webhook_id == webhook_id]
    assert (st.cursor_seq, st.open_package_id) == (2, first.id)

    # the next one may open only in the same step that closes the first, and records its try
    failed = Closing(_attempt(first, 503), failing=True, now=utcnow())
    second = await _open(database, tenant_id, webhook_id, state, events=events[2:],
                         expected_cursor=2, closing=failed)  # fmt: skip
    assert second is not None
    [st] = [r for r in await _rows(database, webhook_state) if r.webhook_id == webhook_id]
    assert (st.cursor_seq, st.open_package_id) == (3, second.id)
    assert st.failing_since is not None
    by_id = {row.id: row for row in await _rows(database, packages)}
    assert (by_id[first.id].status, by_id[first.id].last_status) == ("failed", 503)
    assert by_id[first.id].finished_at is not None
    assert (by_id[second.id].status, by_id[second.id].event_seqs) == ("pending", [3])
    [tried] = await _rows(database, attempts)
    assert (tried.package_id, tried.status_code, tried.number) == (first.id, 503, 1)


def _attempt(package: Any, status: int) -> AttemptRecord:
    return AttemptRecord(
        package.id, package.tenant_id, package.webhook_id, package.attempts + 1, "scheduled",
        "https://example.com/hook", utcnow(), 12.5, status, None, {"x-seen": "1"}, "ok",
    )  # fmt: skip


async def test_a_closing_whose_next_package_cannot_open_is_still_recorded(
    database: Database,
) -> None:
    """The state moved underneath (here: the cursor): the next package is not stored, but the
    finished one is closed and its attempt recorded, in the same step."""
    tenant_id, webhook_id, state = await _webhook(database)
    events = state[1]
    first = await _open(database, tenant_id, webhook_id, state, events=events[:1],
                        expected_cursor=0)  # fmt: skip
    delivered = Closing(_attempt(first, 200), failing=False, now=utcnow())
    async with database.write() as conn:
        tx = Tx(conn)
        second = await open_package(
            conn, tenant_id=tenant_id, webhook_id=webhook_id, owner="me", settings_at=state[0],
            size=100, now=utcnow(), events=events[1:], expected_cursor=0, closing=delivered,
            later=tx.later,
        )  # fmt: skip
        await tx.flush()
    assert second is None
    [st] = [r for r in await _rows(database, webhook_state) if r.webhook_id == webhook_id]
    assert (st.cursor_seq, st.open_package_id, st.failing_since) == (1, None, None)
    [stored] = await _rows(database, packages)
    assert (stored.id, stored.status, stored.attempts) == (first.id, "delivered", 1)
    [tried] = await _rows(database, attempts)
    assert (tried.package_id, tried.status_code) == (first.id, 200)


async def test_closing_without_a_next_package(database: Database) -> None:
    tenant_id, webhook_id, state = await _webhook(database)
    first = await _open(database, tenant_id, webhook_id, state, events=state[1],
                        expected_cursor=0)  # fmt: skip
    given_up = Closing(_attempt(first, 500), failing=True, now=utcnow())
    async with database.write() as conn:
        tx = Tx(conn)
        await close_package(conn, webhook_id, given_up, later=tx.later)
        await tx.flush()
    [st] = [r for r in await _rows(database, webhook_state) if r.webhook_id == webhook_id]
    assert (st.cursor_seq, st.open_package_id) == (3, None)
    assert st.failing_since == given_up.now
    [stored] = await _rows(database, packages)
    assert (stored.status, stored.last_status) == ("failed", 500)
    assert len(await _rows(database, attempts)) == 1


async def test_the_queue_depth_counts_each_webhooks_waiting_package(database: Database) -> None:
    """Waiting means open for a webhook (workers deliver nothing else); retrying, tried."""
    tenant_id, webhook_id, state = await _webhook(database)

    async def depth() -> dict[str, int]:
        async with database.read() as conn:
            return await deliveries.queue_depth(conn)

    assert await depth() == {"pending": 0, "retrying": 0}
    package = await _open(database, tenant_id, webhook_id, state, events=state[1][:1],
                          expected_cursor=0)  # fmt: skip
    assert await depth() == {"pending": 1, "retrying": 0}
    async with database.write() as conn:
        await record_attempt(conn, _attempt(package, 503), status="pending",
                             next_attempt_at=utcnow(), now=utcnow())  # fmt: skip
        # a pending row no webhook has open: no worker would ever deliver it
        stray = deliveries.Package(
            id=new_id(), tenant_id=tenant_id, webhook_id=webhook_id, kind="test",
            status="pending", event_seqs=[], event_ids=[], size=1, created_at=utcnow(),
        )  # fmt: skip
        await deliveries.insert_package(conn, stray)
    assert await depth() == {"pending": 1, "retrying": 1}
    async with database.write() as conn:
        tx = Tx(conn)
        delivered = Closing(_attempt(package, 200), failing=False, now=utcnow())
        await close_package(conn, webhook_id, delivered, later=tx.later)
        await tx.flush()
    assert await depth() == {"pending": 0, "retrying": 0}


async def test_package_status_changes_can_be_heap_only_updates(database: Database) -> None:
    """No index covers ``packages.status``, which changes after every attempt, and on
    PostgreSQL pages keep room for the changed row beside the old one (migration 0004)."""
    async with database.read() as conn:
        indexed = await conn.run_sync(
            lambda sync: [ix["column_names"] for ix in inspect(sync).get_indexes("packages")]
        )
        assert indexed and all("status" not in columns for columns in indexed)
        if conn.dialect.name == "postgresql":
            options = await conn.scalar(text("SELECT reloptions FROM pg_class "
                                             "WHERE relname = 'packages'"))  # fmt: skip
            assert options == ["fillfactor=70"]


async def test_an_attempt_is_recorded_with_its_packages_new_status(database: Database) -> None:
    tenant_id, webhook_id, state = await _webhook(database)
    package = await _open(database, tenant_id, webhook_id, state, events=state[1],
                          expected_cursor=0)  # fmt: skip
    started = utcnow()
    attempt = AttemptRecord(
        package.id, tenant_id, webhook_id, 1, "scheduled", "https://example.com/hook", started,
        12.5, 200, None, {"x-seen": "1"}, "ok",
    )  # fmt: skip
    async with database.write() as conn:
        tx = Tx(conn)
        await record_attempt(conn, attempt, status="delivered", next_attempt_at=None,
                             now=started, later=tx.later)  # fmt: skip
        await tx.flush()
    [row] = await _rows(database, attempts)
    assert (row.package_id, row.status_code, row.response_headers) == (
        package.id, 200, {"x-seen": "1"},
    )  # fmt: skip
    [stored] = await _rows(database, packages)
    assert (stored.status, stored.attempts, stored.last_status) == ("delivered", 1, 200)
    assert stored.finished_at is not None


async def test_appended_events_are_stored_column_for_column(database: Database) -> None:
    """The log is written through the driver's bulk path (COPY on PostgreSQL, plain tuples on
    SQLite), outside SQLAlchemy's type processing: every column must still read back right,
    timestamps to the microsecond and in the format range queries compare against."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with database.write() as conn:
        tenant_id = await create_tenant(conn, "acme")
        batch = [
            NewEvent("ORDER.FILLED", '{"n":1}', created_at=moment.astimezone(AHEAD)),
            NewEvent("USER_CHECK.PASSED", '{"é":"ü"}'),
        ]
        result = await append_events(conn, tenant_id, batch, now=utcnow())
    stored = result.appended
    rows = sorted(await _rows(database, events), key=lambda row: row.seq)
    assert [(r.seq, r.id, r.type, r.category, r.object) for r in rows] == [
        (1, stored[0].id, "ORDER.FILLED", "ORDER", '{"n":1}'),
        (2, stored[1].id, "USER_CHECK.PASSED", "USER_CHECK", '{"é":"ü"}'),
    ]
    assert [r.size for r in rows] == [
        wire_size(e.type, len(e.object_json.encode())) for e in stored
    ]
    assert rows[0].created_at == moment
    assert rows[1].created_at == stored[1].created_at
    async with database.read() as conn:  # as the worker reads them
        waiting = await waiting_events(
            conn, tenant_id, after=0, category_filter=CategoryFilter(None, frozenset()), limit=5
        )
    for read in [*(row.created_at for row in rows), *(event.created_at for _, event in waiting)]:
        assert read.tzinfo is UTC  # read back aware, in UTC, whatever zone it was written in
    assert [event.created_at for _, event in waiting] == [moment, stored[1].created_at]
    # the wake-up notice is made from the same rows: sizes and oldest event per category
    assert result.notice == Published(tenant_id, 2, {
        "ORDER": CategoryBatch(rows[0].size, moment),
        "USER_CHECK": CategoryBatch(rows[1].size, stored[1].created_at),
    })  # fmt: skip
    async with database.read() as conn:
        later = EventQuery(created_after=moment - timedelta(microseconds=1))
        assert [e.seq for e in await list_events_for_tenant(conn, tenant_id, later)] == [1, 2]
        after = EventQuery(created_after=moment)
        assert [e.seq for e in await list_events_for_tenant(conn, tenant_id, after)] == [2]


async def test_the_log_head_moves_by_what_was_appended_and_its_clock_never_back(
    database: Database,
) -> None:
    """One statement moves the head (sequence numbers and the clock) when no ids are given;
    with ids it is locked first and moved by the events that were new. A clock that stepped
    back does not move server-assigned ``created_at`` back. (A guard of ``_advance``: the
    comparison of timestamps runs in SQL, on SQLite over their text.)"""
    later = utcnow()
    earlier = later - timedelta(hours=1)
    first_id, second_id = new_id(), new_id()

    async def append(batch: list[NewEvent], now: datetime) -> Any:
        async with database.write() as conn:
            return await append_events(conn, tenant_id, batch, now=now)

    async with database.write() as conn:
        tenant_id = await create_tenant(conn, "acme")
    plain = await append([NewEvent("ORDER.FILLED", "{}")] * 2, later)
    stepped_back = await append([NewEvent("ORDER.FILLED", "{}", id=first_id)], earlier)
    mixed = await append(
        [NewEvent("ORDER.FILLED", "{}", id=first_id), NewEvent("ORDER.FILLED", "{}"),
         NewEvent("ORDER.FILLED", "{}", id=second_id)], earlier,
    )  # fmt: skip
    repeated = await append([NewEvent("ORDER.FILLED", "{}", id=second_id)], earlier)
    assert [[e.seq for e in r.events] for r in (plain, stepped_back, mixed, repeated)] == [
        [1, 2], [3], [3, 4, 5], [5],
    ]  # fmt: skip
    assert [len(r.appended) for r in (plain, stepped_back, mixed, repeated)] == [2, 1, 2, 0]
    assert {e.created_at for r in (plain, stepped_back, mixed) for e in r.appended} == {later}
    assert (mixed.notice is not None and mixed.notice.last_seq, repeated.notice) == (5, None)
    async with database.read() as conn:
        head = (await conn.execute(select(tenants.c.last_seq, tenants.c.last_created_at))).one()
        stored = [row.seq for row in await conn.execute(select(events.c.seq))]
    assert (head.last_seq, head.last_created_at, sorted(stored)) == (5, later, [1, 2, 3, 4, 5])


async def test_racing_appends_hand_out_dense_runs_of_sequence_numbers(database_url: str) -> None:
    """Publishes to one tenant from several connections at once (on PostgreSQL they really
    race, each from its own pool): the head's row lock, taken by the statement that moves it,
    gives every batch one unbroken run, and all of them together 1..N with nothing twice."""
    migrate(database_url)
    databases = [Database(database_url) for _ in range(3)]
    try:
        async with databases[0].write() as conn:
            tenant_id = await create_tenant(conn, "acme")

        async def publish(db: Database, n: int) -> list[int]:
            batch = [NewEvent("ORDER.FILLED", f'{{"n":{n},"i":{i}}}') for i in range(5)]
            async with db.write() as conn:
                result = await append_events(conn, tenant_id, batch, now=utcnow())
            return [event.seq for event in result.appended]

        runs = await asyncio.gather(*(publish(databases[n % 3], n) for n in range(24)))
        for run in runs:
            assert run == list(range(run[0], run[0] + 5))
        assert sorted(seq for run in runs for seq in run) == list(range(1, 121))
        async with databases[0].read() as conn:
            stored = sorted(row.seq for row in await conn.execute(select(events.c.seq)))
            head = (await conn.execute(select(tenants.c.last_seq))).scalar_one()
        assert (stored, head) == (list(range(1, 121)), 120)
    finally:
        for db in databases:
            await db.close()


async def test_closing_a_package_locks_rows_in_the_documented_order(database: Database) -> None:
    """The one-statement closing (PostgreSQL) must lock webhook_state before packages, like
    every other writer (store/webhooks.py): here a DELETE holds the webhook's state and then
    drops its pending packages while a worker closes one of them. The other order deadlocks
    (the worker's statement would hold the package and wait for the state)."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no row locks to order")
    tenant_id, webhook_id, state = await _webhook(database)
    first = await _open(database, tenant_id, webhook_id, state, events=state[1],
                        expected_cursor=0)  # fmt: skip
    delivered = Closing(_attempt(first, 200), failing=False, now=utcnow())
    async with database.write() as conn:  # a PATCH: the worker's settings guard now fails
        await conn.execute(
            update(webhooks).where(webhooks.c.id == webhook_id).values(updated_at=utcnow())
        )
    async with database.engine.connect() as deleting:
        await deleting.begin()
        await deleting.execute(  # the DELETE's first steps: webhook, then its state
            update(webhooks).where(webhooks.c.id == webhook_id).values(deleted_at=utcnow())
        )
        await deleting.execute(
            update(webhook_state)
            .where(webhook_state.c.webhook_id == webhook_id)
            .values(open_package_id=None)
        )

        async def close() -> Any:
            async with database.autocommit() as conn:
                return await open_package(
                    conn, tenant_id=tenant_id, webhook_id=webhook_id, owner="me",
                    settings_at=state[0], size=100, now=utcnow(), events=state[1][:1],
                    expected_cursor=3, closing=delivered,
                )  # fmt: skip

        closing = asyncio.create_task(close())
        await _until_waiting_for_a_lock(database)
        # The DELETE goes on to drop the pending package: it must not wait for the worker.
        await deleting.execute(
            update(packages).where(packages.c.id == first.id).values(status="dropped")
        )
        await deleting.commit()
        assert await asyncio.wait_for(closing, 10) is None
    [stored] = await _rows(database, packages)
    assert stored.status == "dropped"  # the DELETE won; the try is still in the history
    assert [row.package_id for row in await _rows(database, attempts)] == [first.id]


async def _until_waiting_for_a_lock(database: Database) -> None:
    for _ in range(200):
        async with database.read() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the closing statement never waited for the DELETE's lock")


def _package_row(tenant_id: str, webhook_id: str, seqs: list[int], at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(), "tenant_id": tenant_id, "webhook_id": webhook_id, "kind": "queue",
        "status": "pending", "first_seq": seqs[0], "last_seq": seqs[-1], "event_seqs": seqs,
        "event_ids": [f"e{seq}" for seq in seqs], "size": 10, "created_at": at, "attempts": 0,
        "next_attempt_at": None,
    }  # fmt: skip


async def test_writes_run_through_the_driver_store_what_sqlalchemy_would(
    database: Database,
) -> None:
    """``db.run`` hands a statement compiled once, with positional values, to the driver: the
    row it stores reads back as one stored through ``conn.execute`` (aware timestamps from
    another zone, JSON lists, NULLs), and the statement's own literals are bound too (a
    guard on ``status = 'pending'`` matches once, then no more)."""
    tenant_id, webhook_id, _ = await _webhook(database)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    direct = _package_row(tenant_id, webhook_id, [1, 2], at.astimezone(AHEAD))
    through = _package_row(tenant_id, webhook_id, [3], at)
    async with database.write() as conn:
        assert await db_module.run(conn, deliveries._INSERT_PACKAGE, direct) == 1
        await conn.execute(insert(packages).values(**through))
    rows = {row.id: row for row in await _rows(database, packages)}
    for written in (direct, through):
        row = rows[written["id"]]
        assert {key: getattr(row, key) for key in written} == written | {"created_at": at}
        assert row.created_at.tzinfo is UTC
    assert await _created_at_text(database, direct["id"]) == await _created_at_text(
        database, through["id"]
    )
    # a None in a JSON column is JSON null, the SQLAlchemy way, not SQL NULL
    tried = [_attempt_row(direct, at), _attempt_row(direct, at)]
    async with database.write() as conn:
        await db_module.run(conn, deliveries._INSERT_ATTEMPT, tried[0])
        await conn.execute(insert(attempts).values(**tried[1]))
        stored = text("SELECT CAST(response_headers AS TEXT) FROM attempts ORDER BY id")
        assert len(set((await conn.execute(stored)).scalars())) == 1
    finish = {
        "b_package": direct["id"], "v_status": "delivered", "v_attempts": 1, "v_next": None,
        "v_last": at, "v_finished": at, "v_code": 200, "v_error": None,
    }  # fmt: skip
    for expected in (1, 0):  # no longer pending the second time
        async with database.write() as conn:
            assert await db_module.run(conn, deliveries._FINISH_ATTEMPT, finish) == expected
    finished = {row.id: row for row in await _rows(database, packages)}[direct["id"]]
    assert (finished.status, finished.finished_at, finished.last_status) == ("delivered", at, 200)


def _attempt_row(package: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(), "package_id": package["id"], "tenant_id": package["tenant_id"],
        "webhook_id": package["webhook_id"], "number": 1, "trigger": "scheduled",
        "url": "https://example.com/hook", "started_at": at, "duration_ms": 1.5,
        "status_code": None, "error": "refused", "response_headers": None,
        "response_excerpt": None,
    }  # fmt: skip


async def _created_at_text(db: Database, package_id: str) -> Any:
    """The stored value itself (on SQLite, the text that range queries compare)."""
    async with db.read() as conn:
        query = text("SELECT CAST(created_at AS TEXT) FROM packages WHERE id = :id")
        return (await conn.execute(query, {"id": package_id})).scalar_one()


async def test_a_write_on_the_autocommit_connection_goes_straight_to_asyncpg(
    database: Database,
) -> None:
    """On PostgreSQL's autocommit connection (a lone unit's: the one-webhook drain writes one
    statement per package there) ``db.run`` hands the statement to asyncpg itself, past
    SQLAlchemy's cursor, and reads the row count off the command tag. It stores what
    SQLAlchemy would, and a cut connection still fails the write and is replaced. In a
    transaction the statement stays with SQLAlchemy, which begins it lazily."""
    if database.is_sqlite:
        pytest.skip("SQLite writes go through write() and its lock")
    tenant_id, webhook_id, _ = await _webhook(database)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    direct = _package_row(tenant_id, webhook_id, [1, 2], at.astimezone(AHEAD))
    through = _package_row(tenant_id, webhook_id, [3], at)
    finish = {
        "b_package": direct["id"], "v_status": "delivered", "v_attempts": 1, "v_next": None,
        "v_last": at, "v_finished": at, "v_code": 200, "v_error": None,
    }  # fmt: skip
    seen: list[str] = []
    sa_event.listen(
        database.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2])
    )
    async with database.autocommit() as conn:
        assert db_module._autocommit_driver(conn) is not None
        assert await db_module.run(conn, deliveries._INSERT_PACKAGE, direct) == 1
        moved = update(tenants).where(tenants.c.id == bindparam("b_id")).values(last_seq=9)
        assert await db_module.run(conn, moved, {"b_id": tenant_id}) == 1
        assert await db_module.run(conn, deliveries._FINISH_ATTEMPT, finish) == 1
        assert await db_module.run(conn, deliveries._FINISH_ATTEMPT, finish) == 0
    assert seen == []
    async with database.write() as conn:
        await conn.execute(insert(packages).values(**through))
    rows = {row.id: row for row in await _rows(database, packages)}
    assert {key: getattr(rows[direct["id"]], key) for key in direct} == direct | {
        "created_at": at,
        "status": "delivered",
        "attempts": 1,
    }
    assert await _created_at_text(database, direct["id"]) == await _created_at_text(
        database, through["id"]
    )
    rolled_back = _package_row(tenant_id, webhook_id, [4], at)
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            assert db_module._autocommit_driver(conn) is None
            await db_module.run(conn, deliveries._INSERT_PACKAGE, rolled_back)
            raise RuntimeError("after the statement")
    assert any("INSERT INTO packages" in statement for statement in seen)
    assert rolled_back["id"] not in {row.id for row in await _rows(database, packages)}
    # cut while kept: the write fails (the batcher runs its unit again), the next use works
    async with database.autocommit() as conn:
        pid = int(await conn.scalar(text("SELECT pg_backend_pid()")))
    async with database.read() as conn:
        # waits (up to 5 s) until it is gone, so the write cannot slip in before
        await conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    later = _package_row(tenant_id, webhook_id, [5], at)
    with pytest.raises(Exception):  # noqa: B017 - whichever way asyncpg finds it cut
        async with database.autocommit() as conn:
            await db_module.run(conn, deliveries._INSERT_PACKAGE, later)
    async with database.autocommit() as conn:
        assert await db_module.run(conn, deliveries._INSERT_PACKAGE, later) == 1
    assert later["id"] in {row.id for row in await _rows(database, packages)}


async def test_writes_run_through_the_driver_are_part_of_the_transaction(
    database: Database,
) -> None:
    """A driver-level ``executemany`` as the first statement of a write transaction (on
    PostgreSQL the transaction begins lazily, at its first statement) still belongs to it: a
    failure afterwards leaves none of its rows."""
    tenant_id, webhook_id, _ = await _webhook(database)
    at = utcnow()
    rows = [_package_row(tenant_id, webhook_id, [n], at) for n in (1, 2)]
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            await db_module.run_many(conn, deliveries._INSERT_PACKAGE, rows)
            raise RuntimeError("after the statement")
    assert await _rows(database, packages) == []
    async with database.write() as conn:
        await db_module.run_many(conn, deliveries._INSERT_PACKAGE, rows)
    assert sorted(row.id for row in await _rows(database, packages)) == sorted(
        row["id"] for row in rows
    )


async def test_a_sqlite_write_goes_to_sqlite3_inside_its_transaction(database: Database) -> None:
    """On SQLite's write connection ``run`` and ``run_many`` hand a compiled statement to
    ``sqlite3`` itself, past SQLAlchemy's execution (no cursor events), yet inside the write's
    transaction: a failure after it leaves nothing, and a statement the database refuses
    raises the SQLAlchemy exception ``conn.execute`` would (``IntegrityError``), rolls the
    whole write back, and leaves the connection fit for the next write."""
    if not database.is_sqlite:
        pytest.skip("PostgreSQL writes go through SQLAlchemy or asyncpg (tests above)")
    tenant_id, webhook_id, _ = await _webhook(database)
    at = utcnow()
    first, second, third = (_package_row(tenant_id, webhook_id, [n], at) for n in (1, 2, 3))
    seen: list[str] = []
    assert database._inline is not None
    sa_event.listen(database._inline, "before_cursor_execute", lambda *a: seen.append(a[2]))
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            assert await db_module.run(conn, deliveries._INSERT_PACKAGE, first) == 1
            raise RuntimeError("after the statement")
    assert await _rows(database, packages) == []
    with pytest.raises(IntegrityError) as refused:
        async with database.write() as conn:
            await db_module.run_many(conn, deliveries._INSERT_PACKAGE, [first, second])
            await db_module.run(conn, deliveries._INSERT_PACKAGE, first)  # the same id again
    assert isinstance(refused.value.orig, sqlite3.IntegrityError)
    assert "INSERT INTO packages" in str(refused.value.statement)
    assert await _rows(database, packages) == []
    async with database.write() as conn:
        await db_module.run_many(conn, deliveries._INSERT_PACKAGE, [first, second])
        assert await db_module.run(conn, deliveries._INSERT_PACKAGE, third) == 1
    assert sorted(row.id for row in await _rows(database, packages)) == sorted(
        row["id"] for row in (first, second, third)
    )
    assert seen == []


async def test_statements_compiled_per_call_run_through_sqlalchemy(database: Database) -> None:
    """What can only be compiled with its values (lists expanded into ``IN``, columns named by
    the parameters, Python-side column defaults) is not compiled once: ``run`` executes it
    the usual way, defaults and all."""
    dialect = database.engine.dialect
    expanding = update(tenants).where(tenants.c.id.in_(["a", "b"])).values(last_seq=7)
    bare = insert(packages)  # columns from the parameters; ``attempts`` has a default
    assert db_module._positional(expanding, dialect) is None
    assert db_module._positional(bare, dialect) is None
    assert db_module._positional(deliveries._INSERT_PACKAGE, dialect) is not None
    tenant_id, webhook_id, _ = await _webhook(database)
    row = _package_row(tenant_id, webhook_id, [1], utcnow())
    del row["attempts"]
    async with database.write() as conn:
        other = await create_tenant(conn, "other")
        moved = update(tenants).where(tenants.c.id.in_([tenant_id, other])).values(last_seq=7)
        assert await db_module.run(conn, moved, {}) == 2
        assert await db_module.run(conn, bare, row) == 1
    [stored] = await _rows(database, packages)
    assert stored.attempts == 0
    async with database.write() as conn:
        # a parameter the compiled SQL does not take is a column SQLAlchemy would add
        assert await db_module.run(conn, deliveries._FINISH_ATTEMPT, {
            "b_package": row["id"], "v_status": "failed", "v_attempts": 3, "v_next": None,
            "v_last": None, "v_finished": None, "v_code": None, "v_error": None, "size": 99,
        }) == 1  # fmt: skip
    assert [row.last_seq for row in await _rows(database, tenants)] == [7, 7]
    [stored] = await _rows(database, packages)
    assert (stored.attempts, stored.status, stored.size) == (3, "failed", 99)


@pytest.mark.parametrize("failing", [None, False, True], ids=["open", "delivered", "failed"])
@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_the_workers_steps_run_through_the_driver(failing: bool | None, dialect_name: str) -> None:
    """Each statement of a worker's step (open the next package, alone or closing the last
    one, delivered or failed; on PostgreSQL, close one without a next) compiles once and is
    given exactly what it binds. One parameter more sends it through SQLAlchemy's per-row
    processing: on PostgreSQL a delivered closing sent the time it does not bind (the group's
    whole batch took the slow path), on SQLite every closing sent the attempt's columns."""
    postgres = dialect_name == "postgresql"
    dialect = postgresql_asyncpg.dialect() if postgres else pysqlite.dialect()
    now = utcnow()
    events = [StoredEvent(1, new_id(), "ORDER.FILLED", now, "{}")]
    tenant_id, webhook_id, package_id = new_id(), new_id(), new_id()
    closing = None
    if failing is not None:
        attempt = AttemptRecord(
            package_id, tenant_id, webhook_id, 1, "scheduled", "https://example.com/hook", now,
            12.5, 500 if failing else 200, None, None, None,
        )  # fmt: skip
        closing = Closing(attempt, failing=failing, now=now)
    _, opening, params = deliveries._opening(
        tenant_id, webhook_id, "me", 0, now, events, 100, now, closing, postgres=postgres
    )
    steps = [(opening, params)]
    if closing is not None and postgres:
        closed = deliveries._close_package_pg(closing.failing)
        steps.append((closed, deliveries._closing_params(closing) | {"b_webhook": webhook_id}))
    for statement, given in steps:
        _assert_binds_exactly(statement, dialect, given)


def _assert_binds_exactly(statement: Any, dialect: Any, given: dict[str, Any]) -> None:
    positional = db_module._positional(statement, dialect)
    assert positional is not None
    required = positional.accepts - positional.literals.keys()
    assert required <= given.keys() <= positional.accepts, (
        sorted(given.keys() - positional.accepts),
        sorted(required - given.keys()),
    )


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("failing", [False, True])
@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_settling_a_webhooks_state_runs_through_the_driver(
    closed: bool, failing: bool, dialect_name: str
) -> None:
    """After an attempt that leaves no next package to open with, the state is settled by a
    statement compiled once, given exactly what it binds (see above)."""
    dialect = pysqlite.dialect() if dialect_name == "sqlite" else postgresql_asyncpg.dialect()
    statement = deliveries._settle_statement(closed=closed, failing=failing)
    params = deliveries._settle_params(new_id(), new_id(), failing=failing, now=utcnow())
    _assert_binds_exactly(statement, dialect, params)
