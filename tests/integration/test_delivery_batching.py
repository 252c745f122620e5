"""Batching by time and by size, and order within and across packages (SPEC §4)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text

from hookline.delivery import worker as worker_module
from hookline.delivery.eventcache import EventCache
from hookline.delivery.runtime import Runtime
from hookline.delivery.worker import Worker
from hookline.domain.events import MIN_WIRE_SIZE
from hookline.domain.packing import planning_window
from hookline.services import Services
from hookline.store import db as db_module
from hookline.store.db import Tx
from hookline.store.events import log_heads
from hookline.store.tables import packages, webhook_state
from tests.support.hookline import Hookline, Tenant, eventually, running
from tests.support.receiver import Answer, Receiver


def order_event(n: int, pad: int = 0) -> dict[str, Any]:
    return {"type": "ORDER.FILLED", "object": {"n": n, "pad": "x" * pad}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def test_events_published_together_arrive_in_one_package(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url(), config={"delay": "1s"})
    stored = await acme.publish(*(order_event(n) for n in range(5)))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 5, what="5 events")
    [package] = receiver.at("/hook")
    assert ids(package.events) == ids(stored)


async def test_packages_respect_max_package_size_and_keep_order(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url(), config={"delay": "1s", "max_package_size": 1000})
    stored = await acme.publish(*(order_event(n, pad=110) for n in range(10)))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 10, what="10 events")
    packages = receiver.at("/hook")
    assert all(len(p.body) <= 1000 for p in packages), [len(p.body) for p in packages]
    assert [len(p.events) for p in packages] == [3, 3, 3, 1]  # ~300 bytes each
    assert ids(receiver.delivered("/hook")) == ids(stored)


async def test_an_event_bigger_than_the_maximum_goes_alone(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url(), config={"delay": "1s", "max_package_size": 1000})
    stored = await acme.publish(order_event(1), order_event(2, pad=3000), order_event(3))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 3, what="3 events")
    packages = receiver.at("/hook")
    assert [ids(p.events) for p in packages] == [[e["id"]] for e in stored]
    assert len(packages[1].body) > 1000
    assert all(len(p.body) <= 1000 for p in (packages[0], packages[2]))


async def test_many_publishes_arrive_in_log_order_one_package_at_a_time(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url("/all"), config={"max_package_size": 4096})
    await acme.create_webhook(receiver.url("/orders"), type=["ORDER"])
    receiver.default("/all", Answer(hang=0.05))  # slow answers: overlap would show
    receiver.default("/orders", Answer(hang=0.05))
    stored: list[dict[str, Any]] = []
    for call in range(6):
        batch = [
            {"type": "USER.CREATED" if n % 3 == 0 else "ORDER.NEW", "object": {"c": call, "n": n}}
            for n in range(50)
        ]
        stored += await acme.publish(*batch)
    orders = [e for e in stored if e["type"].startswith("ORDER.")]
    await receiver.wait_for(
        lambda: (
            len(receiver.delivered("/all")) == 300
            and len(receiver.delivered("/orders")) == len(orders)
        ),
        what="every event at both webhooks",
    )
    assert ids(receiver.delivered("/all")) == ids(stored)
    assert ids(receiver.delivered("/orders")) == ids(orders)
    assert len(receiver.at("/all")) > 1  # several packages, not one
    assert receiver.max_in_flight["/all"] == 1
    assert receiver.max_in_flight["/orders"] == 1


async def test_a_backlog_drains_completely_in_order_in_full_packages(
    hookline: Hookline, receiver: Receiver
) -> None:
    """A backlog is cut into full packages from reads that serve several packages at once;
    a category filter with other events interleaved must not lose or reorder any."""
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    await acme.create_webhook(
        receiver.url(), type=["ORDER"], config={"delay": "1s", "max_package_size": 1000}
    )
    stored: list[dict[str, Any]] = []
    for start in range(0, 400, 100):
        batch = [
            order_event(n, pad=n % 50) if n % 3 else {"type": "USER.CREATED", "object": {"n": n}}
            for n in range(start, start + 100)
        ]
        stored += await acme.publish(*batch)
    wanted = [e["id"] for e in stored if e["type"] == "ORDER.FILLED"]
    await hookline.start_worker()
    await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == len(wanted), what="backlog")
    assert ids(receiver.delivered("/hook")) == wanted
    packages = receiver.at("/hook")
    assert all(len(p.body) <= 1000 for p in packages)
    # every package but the last is full: the next event would not have fitted
    for package, following in itertools.pairwise(packages):
        next_event = json.dumps(following.events[0], separators=(",", ":"))
        assert len(package.body) + len(next_event) + 1 > 1000


async def test_a_delivered_package_costs_one_write_on_postgresql(
    hookline: Hookline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Draining, each answered package is recorded, closed and followed by the next one in a
    single statement on PostgreSQL (data-modifying CTEs). Counted through SQLAlchemy and, for
    a lone unit's statement on the autocommit connection, at the driver (see ``db.run``)."""
    assert hookline.services is not None
    if hookline.services.db.is_sqlite:
        pytest.skip("on SQLite a statement is a local call: each write is its own")
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url(), config={"max_package_size": 1000})
    stored = await acme.publish(*(order_event(n, pad=100) for n in range(60)))
    writes: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith(("INSERT", "UPDATE", "DELETE", "WITH")):
            writes.append(statement)

    engine = hookline.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    monkeypatch.setattr(db_module, "_autocommit_driver", _recording(count))
    try:
        await hookline.start_worker()
        await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == 60, what="backlog")
        await hookline.stop_worker()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert ids(receiver.delivered("/hook")) == ids(stored)
    delivered = len(receiver.at("/hook"))
    assert delivered >= 15  # ~4 events a package
    hot = [s for s in writes if "INTO packages" in s or "INTO attempts" in s]
    fused = [s for s in hot if "closed AS" in s and "INTO attempts" in s]  # record+close+open
    opens = [s for s in hot if s not in fused and "INTO packages" in s]  # nothing to close
    closes = [s for s in hot if s not in fused and "INTO attempts" in s]  # nothing to open
    assert len(fused) + len(opens) + len(closes) == len(hot)  # nothing else, nothing twice
    assert len(fused) + len(opens) == delivered  # each package opened once
    assert len(fused) + len(closes) == delivered  # each attempt recorded once
    # the first package opens alone; so may the last, after waiting for its delay
    assert len(fused) >= delivered - 2


class _RecordingDriver:
    """An asyncpg connection whose ``execute`` tells ``seen`` each statement first."""

    def __init__(self, driver: Any, seen: Any) -> None:
        self._driver, self._seen = driver, seen

    async def execute(self, statement: str, *args: Any) -> str:
        self._seen(None, None, statement)
        return str(await self._driver.execute(statement, *args))


def _recording(seen: Any) -> Any:
    """``db._autocommit_driver``, with every statement it runs told to ``seen``."""
    real = db_module._autocommit_driver

    def driver(conn: Any) -> Any:
        found = real(conn)
        return None if found is None else _RecordingDriver(found, seen)

    return driver


async def _loaded(
    hookline: Hookline, receiver: Receiver, *, webhooks: int
) -> tuple[Tenant, Worker, list[Runtime]]:
    """A backlog of 20 events for ``webhooks`` new webhooks, and a worker that has loaded them
    but does not run: nothing is sent, and no change notice reaches it."""
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    hooks = [
        await acme.create_webhook(receiver.url(f"/h{n}"), config={"max_package_size": 1000})
        for n in range(webhooks)
    ]
    await acme.publish(*(order_event(n, pad=300) for n in range(20)))
    worker = hookline.new_worker()
    await worker._sync()
    return acme, worker, [worker._runtimes[hook["id"]] for hook in hooks]


async def test_packages_opened_together_are_known_opened_only_after_the_commit(
    hookline: Hookline, receiver: Receiver
) -> None:
    """Webhooks whose next packages open in one shared transaction (on PostgreSQL, one
    pipelined ``executemany`` for all of them, whose outcome one query reads afterwards): one
    whose settings changed after it was loaded opens nothing and reloads, the others open
    theirs, and each runtime holds only what the database holds."""
    acme, worker, runtimes = await _loaded(hookline, receiver, webhooks=3)
    services = hookline.services
    assert services is not None
    path = f"/webhooks/{runtimes[1].webhook_id}"
    changed = await acme.client.patch(path, json={"title": "renamed"})
    assert changed.status_code == 200
    executions: list[tuple[bool, int]] = []

    def count(_conn, _cursor, statement: str, params, _context, many: bool) -> None:  # type: ignore[no-untyped-def]
        if "INTO packages" in statement:
            executions.append((many, len(params) if many else 1))

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(*(worker._open_next(runtime) for runtime in runtimes))
    finally:
        event.remove(engine, "before_cursor_execute", count)

    opened, renamed, also_opened = runtimes
    assert renamed.package is None and renamed.stale and renamed.cursor == 0
    async with services.db.read() as conn:
        rows = (await conn.execute(select(webhook_state))).all()
        stored = (await conn.execute(select(packages.c.id, packages.c.webhook_id))).all()
    held = {row.webhook_id: (row.cursor_seq, row.open_package_id) for row in rows}
    for runtime in (opened, also_opened):
        assert runtime.package is not None and not runtime.stale
        assert held[runtime.webhook_id] == (runtime.cursor, runtime.package.id)
        assert runtime.package.event_seqs[0] == 1
    assert held[renamed.webhook_id] == (0, None)
    assert sorted(stored) == sorted(
        (r.package.id, r.webhook_id) for r in (opened, also_opened) if r.package
    )
    if not services.db.is_sqlite:
        assert executions == [(True, 3)]  # one pipelined statement for the three units


@contextlib.contextmanager
def _log_reads(services: Services) -> Iterator[list[tuple[Any, ...]]]:
    """The parameters of every read of the events table made while inside."""
    reads: list[tuple[Any, ...]] = []

    def count(_conn, _cursor, statement: str, params, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and "FROM events" in statement:
            reads.append(params)

    # SQLite writes run on a synchronous engine of their own (see Database.write)
    engine = services.db._inline or services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _loaded_with_heads(hookline: Hookline) -> tuple[Worker, Services]:
    """A new worker, not running, that has loaded its webhooks and the logs' heads."""
    worker = hookline.new_worker()
    await worker._sync()
    services = hookline.services
    assert services is not None
    async with services.db.read() as conn:
        worker._heads = await log_heads(conn)
    return worker, services


async def test_webhooks_starting_together_read_the_log_once(
    hookline: Hookline, receiver: Receiver
) -> None:
    """A thousand webhooks of a tenant start in the same shared transactions: the first unit's
    read of the log (only committed events: nothing in the transaction wrote to the log) serves
    the others at once, not after the commit. A transaction that did write to the log keeps
    its reads to itself until it commits."""
    _, worker, runtimes = await _loaded(hookline, receiver, webhooks=5)
    services = hookline.services
    assert services is not None
    with _log_reads(services) as reads:
        await asyncio.gather(*(worker._open_next(runtime) for runtime in runtimes[:4]))
        assert len(reads) == 1
        assert all(r.package is not None and r.package.event_seqs[0] == 1 for r in runtimes[:4])

        worker._events = EventCache()  # as if nothing had been read yet
        async with services.db.write() as conn:
            tx = Tx(conn)
            tx.log_written = True
            window, _, read = await worker._window(tx, runtimes[4], head=20)
        assert len(reads) == 2 and len(worker._events) == 0  # held back until the commit
        assert read is not None and [item[0].seq for item in window][:3] == [1, 2, 3]


async def test_webhooks_near_the_head_of_the_log_read_it_once_between_them(
    hookline: Hookline, receiver: Receiver
) -> None:
    """Fewer events wait than a planning window (a package's worth of the smallest events):
    the cache holds less than that, but every event up to the head. The first webhook's read
    serves the others, who do not read again to find nothing more; once the log moves on,
    one reads from where the cache ends and the others share that too."""
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    small = {"max_package_size": 4000}  # 20 events of ~450 bytes fill it: due at once
    hooks = [await acme.create_webhook(receiver.url(f"/h{n}"), config=small) for n in range(4)]
    await acme.publish(*(order_event(n, pad=300) for n in range(20)))
    worker, services = await _loaded_with_heads(hookline)
    runtimes = [worker._runtimes[hook["id"]] for hook in hooks]
    window = planning_window(
        max_size=4000, max_events=hookline.settings.max_package_events,
        min_event_size=MIN_WIRE_SIZE,
    )  # fmt: skip
    assert window > 20

    def opened() -> list[list[int]]:
        return [r.package.event_seqs if r.package else [] for r in runtimes]

    with _log_reads(services) as reads:
        await asyncio.gather(*(worker._open_next(runtime) for runtime in runtimes))
        assert len(reads) == 1
        first = opened()[0]
        assert first[0] == 1 and first[-1] < 20 and opened() == [first] * 4

        await acme.publish(*(order_event(n, pad=300) for n in range(20, 25)))
        reads.clear()
        async with services.db.write() as conn:
            windows = [await worker._window(Tx(conn), runtime, head=25) for runtime in runtimes]
        assert len(reads) == 1 and 20 in reads[0]  # read from where the cache ended
        seqs = [[item[0].seq for item in window] for window, _, _ in windows]
        assert seqs == [list(range(first[-1] + 1, 26))] * 4

        runtimes[0].cursor = 25  # at the cache's end: it looks, for what came since the head
        reads.clear()
        async with services.db.write() as conn:
            window, _, _ = await worker._window(Tx(conn), runtimes[0], head=25)
        assert window == [] and len(reads) == 1 and 25 in reads[0]


async def test_idle_webhooks_with_one_filter_read_the_log_once_between_them(
    hookline: Hookline, receiver: Receiver
) -> None:
    """Webhooks of a tenant that find nothing they take waiting (a worker starting with
    thousands of them) share what the first one's read showed: the others neither read nor
    miss anything. What one filter showed says nothing for another; and once the log moves
    on, each reads again, from where nothing was known to wait."""
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    one_each = {"max_package_size": 100}  # one event fills a package: it is due at once
    reports = [
        await acme.create_webhook(receiver.url(f"/r{n}"), type=["REPORT"], config=one_each)
        for n in range(4)
    ]
    accounts = await acme.create_webhook(receiver.url("/a"), type=["ACCOUNT"], config=one_each)
    await acme.publish(*(order_event(n) for n in range(20)))
    worker, services = await _loaded_with_heads(hookline)
    runtimes = [worker._runtimes[hook["id"]] for hook in [*reports, accounts]]
    with _log_reads(services) as reads:
        await asyncio.gather(*(worker._open_next(runtime) for runtime in runtimes))
        assert len(reads) == 2  # one for the REPORT webhooks, one for the ACCOUNT one
        assert all(r.package is None and r.floor == 20 for r in runtimes)

        await acme.publish({"type": "REPORT.CREATED", "object": {"n": 20}})
        worker._heads[acme.id] = 21
        reads.clear()
        await asyncio.gather(*(worker._open_next(runtime) for runtime in runtimes))
        assert len(reads) == 5  # the log moved on: each looks again (reads are not shared)
        assert all(params[1] == 20 for params in reads)  # from where nothing was known to wait
        assert [r.package.event_seqs if r.package else None for r in runtimes] == [
            [21], [21], [21], [21], None,
        ]  # fmt: skip
        assert runtimes[4].floor == 21


# Locks a webhook's state row for the transaction, as a delivery write does.
_TOUCH = text("UPDATE webhook_state SET cursor_seq = cursor_seq WHERE webhook_id = :id")


async def _two_held_webhooks(hookline: Hookline, receiver: Receiver) -> tuple[Worker, str, str]:
    """(PostgreSQL only) A worker, not running, holding two webhooks, named in the order a
    scan of ``webhook_state`` meets their rows, as a statement updating both takes them."""
    services = hookline.services
    assert services is not None
    if services.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no row is ever waited for")
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    for n in range(2):
        await acme.create_webhook(receiver.url(f"/h{n}"))
    worker = hookline.new_worker()
    await worker._sync()
    rows = select(webhook_state.c.webhook_id).order_by(text("ctid"))
    async with services.db.read() as conn:
        first, last = [row.webhook_id for row in await conn.execute(rows)]
    return worker, first, last


async def test_renewing_leases_never_deadlocks_with_a_delivery_write(
    hookline: Hookline, receiver: Receiver
) -> None:
    """On PostgreSQL a worker's delivery writes, many webhooks' in one transaction, lock the
    rows its lease renewal updates. Renewing every lease in one statement, it waited for a row
    such a transaction held while holding the row that transaction came to next: a deadlock
    (a second's stall and a failed batch) at renewals under load. Now the rows locked at
    that moment are renewed one at a time, once free, and every lease is still renewed."""
    worker, first, last = await _two_held_webhooks(hookline, receiver)
    services = hookline.services
    assert services is not None
    leases = select(webhook_state.c.webhook_id, webhook_state.c.lease_until)
    async with services.db.read() as conn:
        before = {row.webhook_id: row.lease_until for row in await conn.execute(leases)}
    async with services.db.write() as conn:
        await conn.execute(_TOUCH, {"id": last})  # a delivery write holds the last row
        renewal = asyncio.create_task(worker._sync())
        await asyncio.sleep(0.3)  # the renewal takes what it can meanwhile
        await conn.execute(_TOUCH, {"id": first})  # and the write comes to the first row
    await asyncio.wait_for(renewal, 10)
    async with services.db.read() as conn:
        after = {row.webhook_id: row.lease_until for row in await conn.execute(leases)}
    assert set(after) == {first, last}
    assert all(after[i] > before[i] for i in after)
    assert set(worker._runtimes) == {first, last}


@pytest.mark.parametrize("budget", [worker_module.SHARED_READ_BYTES, 10_000])
async def test_shared_reads_grow_while_events_are_small(
    hookline: Hookline, receiver: Receiver, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read for the worker's shared cache asks for two packages' worth of events at first;
    once the cache shows what the tenant's events weigh, up to eight packages' worth, as long
    as that stays within SHARED_READ_BYTES (here, in the second case, it would not)."""
    monkeypatch.setattr(worker_module, "SHARED_READ_BYTES", budget)
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    hook = await acme.create_webhook(receiver.url("/h"), config={"max_package_size": 1000})
    await acme.publish(*(order_event(n) for n in range(100)))
    worker = hookline.new_worker()
    await worker._sync()
    runtime = worker._runtimes[hook["id"]]
    services = hookline.services
    assert services is not None
    size = planning_window(
        max_size=1000, max_events=hookline.settings.max_package_events,
        min_event_size=MIN_WIRE_SIZE,
    )  # fmt: skip
    async with services.db.write() as conn:
        await worker._window(Tx(conn), runtime, head=100)
        assert len(worker._events) == 2 * size  # nothing known yet: two packages' worth
        runtime.cursor = 2 * size  # past what the cache holds
        await worker._window(Tx(conn), runtime, head=100)
    grown = 8 * size if budget > 10_000 else 2 * size
    assert len(worker._events) == 2 * size + grown


async def test_a_starting_worker_takes_every_free_webhook_in_its_first_sync(
    hookline: Hookline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free webhooks are claimed a batch at a time (``CLAIM_BATCH``), each batch loaded
    before the next, but all of them at once: one batch per renewal period left a new worker
    with ten thousand webhooks over three minutes from driving them all."""
    monkeypatch.setattr(worker_module, "CLAIM_BATCH", 2)
    await hookline.stop_worker()
    acme = await hookline.tenant("acme")
    hooks = [await acme.create_webhook(receiver.url(f"/h{n}")) for n in range(5)]
    worker = hookline.new_worker()
    await worker._sync()
    assert set(worker._runtimes) == {hook["id"] for hook in hooks}
    services = hookline.services
    assert services is not None
    async with services.db.read() as conn:
        owners = {row.lease_owner for row in await conn.execute(select(webhook_state))}
    assert owners == {worker.owner}


async def test_webhooks_waiting_for_their_turn_keep_no_package_bytes(
    settings_for: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn ends after ``BURST`` packages; while other webhooks wait for theirs, the last
    step opens no next package, so a webhook waiting for its turn holds no package bytes:
    with ten thousand webhooks taking turns, those bytes had grown the worker by 120 MB. And
    every event still arrives once, in order."""
    monkeypatch.setattr(worker_module, "BURST", 2)
    async with running(settings_for(max_concurrency=1)) as hookline:
        await hookline.stop_worker()
        acme = await hookline.tenant("acme")
        paths = [f"/h{n}" for n in range(4)]
        for path in paths:
            await acme.create_webhook(receiver.url(path), config={"max_package_size": 1000})
        published = await acme.publish(*(order_event(n, pad=200) for n in range(24)))
        await hookline.start_worker()
        worker = hookline.worker
        assert worker is not None
        held = 0

        def delivered() -> bool:
            nonlocal held
            held = max(held, sum(r.body is not None for r in worker._runtimes.values()))
            return all(len(receiver.delivered(path)) == 24 for path in paths)

        # checked whenever a request arrives: while one webhook's package is in flight
        await receiver.wait_for(delivered, what="every event at every webhook")
        assert held <= 1  # only the webhook taking its turn, between two of its steps
        for path in paths:
            assert ids(receiver.delivered(path)) == ids(published)


async def test_stopping_lets_a_write_in_flight_finish_before_giving_leases_back(
    hookline: Hookline, receiver: Receiver
) -> None:
    """A step cancelled at stop may leave its write running in a shared transaction, which
    locks the rows that giving the leases back updates. Released at once, the two deadlocked
    on PostgreSQL and the release failed: the webhooks then waited for the leases to expire
    before another worker could take them. Now the release waits for the write."""
    worker, first, last = await _two_held_webhooks(hookline, receiver)
    services = hookline.services
    assert services is not None
    gate = asyncio.Event()

    async def write_in_flight(tx: Tx) -> None:
        await tx.conn.execute(_TOUCH, {"id": last})
        await gate.wait()
        await tx.conn.execute(_TOUCH, {"id": first})

    writing = asyncio.create_task(worker._batcher.run(write_in_flight))
    await asyncio.sleep(0.1)  # its transaction holds the last row
    stopping = asyncio.create_task(worker.stop(grace=0))
    await asyncio.sleep(0.3)
    gate.set()  # and comes to the first one
    await asyncio.wait_for(stopping, 10)
    await writing
    async with services.db.read() as conn:
        owners = select(webhook_state.c.lease_owner)
        assert {row.lease_owner for row in await conn.execute(owners)} == {None}


async def test_a_worker_that_joins_takes_over_busy_webhooks_without_a_resend(
    hookline: Hookline, receiver: Receiver
) -> None:
    """A worker that joins while another drains a backlog gets its share of the backlog: the
    busy webhooks over the first worker's share are released at the end of their current step
    (its package closed, the next not opened) and the newcomer continues from there. Before,
    only idle webhooks were handed back, so the newcomer sat idle until the backlog was gone.
    Every event arrives once, in order, and no package is sent twice."""
    services = hookline.services
    first = hookline.worker
    assert services is not None and first is not None
    acme = await hookline.tenant("acme")
    paths = [f"/h{n}" for n in range(6)]
    for path in paths:
        receiver.default(path, Answer(hang=0.06))
        await acme.create_webhook(receiver.url(path), config={"max_package_size": 1000})
    published = await acme.publish(*(order_event(n, pad=200) for n in range(120)))
    await receiver.wait_for(lambda: all(receiver.at(p) for p in paths), what="every webhook busy")
    assert len(first._runtimes) == 6

    second = hookline.new_worker()
    running_second = asyncio.create_task(second.run())
    try:
        await second.wait_ready()  # registered: two live workers, a share of three each
        assert not second._runtimes  # everything is held, and busy
        await first._sync()  # over its share by two (one of slack): those two are let go

        async def two_free() -> bool:
            async with services.db.read() as conn:
                rows = await conn.execute(select(webhook_state.c.lease_owner))
                return sum(1 for row in rows if row.lease_owner is None) == 2

        await eventually(two_free, timeout=10, what="two webhooks released")
        await second._sync()
        taken = {runtime.spec.url.rsplit("/", 1)[1] for runtime in second._runtimes.values()}
        assert len(taken) == 2 and len(first._runtimes) == 4
        handed_at = max(r.at for p in paths for r in receiver.at(p))
        await receiver.wait_for(
            lambda: all(len(receiver.acked[p]) == 120 for p in paths), timeout=60,
            what="every event at every webhook",
        )  # fmt: skip
        for path in paths:
            delivered, twice = receiver.once_each(path)
            assert delivered == ids(published) and twice == 0, path
        for name in taken:  # the newcomer delivered the rest of their backlogs
            assert any(r.started > handed_at for r in receiver.at(f"/{name}"))
    finally:
        await second.stop(grace=5)
        running_second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running_second
