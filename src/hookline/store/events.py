"""The append-only event log: idempotent bulk append, cursor reads, the worker's window reads."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.domain.events import (
    NewEvent,
    NoticeTally,
    Published,
    StoredEvent,
    category_of,
    event_size,
)
from hookline.domain.packing import Waiting
from hookline.domain.webhooks import CategoryFilter
from hookline.ids import is_id, new_ids
from hookline.store.tables import events, tenants

_CHUNK = 500
_FULL = (events.c.seq, events.c.id, events.c.type, events.c.created_at, events.c.object)


def _stored(row: object) -> StoredEvent:
    return StoredEvent(row.seq, row.id, row.type, row.created_at, row.object)  # type: ignore[attr-defined]


@dataclass(slots=True)
class AppendResult:
    """Every event of the call in input order (duplicates as first stored), and the new ones."""

    events: list[StoredEvent]
    appended: list[StoredEvent]
    notice: Published | None = None  # the wake-up notice for ``appended``, if any


async def _existing(
    conn: AsyncConnection, tenant_id: str, ids: Sequence[str]
) -> dict[str, StoredEvent]:
    found: dict[str, StoredEvent] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(*_FULL).where(events.c.tenant_id == tenant_id, events.c.id.in_(chunk))
        found.update((row.id, _stored(row)) for row in await conn.execute(query))
    return found


# Moves a tenant's log head on by ``b_count`` events and returns it, taking the row's lock for
# the transaction. ``last_created_at`` only moves forward: it is the clock of the next publish.
_NOW = bindparam("b_now", type_=tenants.c.last_created_at.type)
_ADVANCE = (
    update(tenants)
    .where(tenants.c.id == bindparam("b_tenant"))
    .values(
        last_seq=tenants.c.last_seq + bindparam("b_count"),
        last_created_at=case(
            (tenants.c.last_created_at > _NOW, tenants.c.last_created_at), else_=_NOW
        ),
    )
    .returning(tenants.c.last_seq, tenants.c.last_created_at)
)


async def _advance(
    conn: AsyncConnection, tenant_id: str, count: int, now: datetime
) -> tuple[int, datetime]:
    """The tenant's log head after moving it on by ``count``: (last_seq, last_created_at)."""
    params = {"b_tenant": tenant_id, "b_count": count, "b_now": now}
    last_seq, last_created_at = (await conn.execute(_ADVANCE, params)).one()
    return last_seq, last_created_at


async def append_events(
    conn: AsyncConnection, tenant_id: str, batch: Sequence[NewEvent], *, now: datetime
) -> AppendResult:
    """Append ``batch`` in one transaction; an ``id`` stored before is not stored again.

    Sequence numbers come from the tenant row, locked for the transaction, so they are dense
    and commit in order. Server-assigned ``created_at`` never goes backwards for a tenant.
    """
    # What does not depend on the log's head is worked out before its lock is taken: the
    # tenant's other publishes wait from then until this transaction commits.
    given = [event.id for event in batch if event.id]
    if given:
        fresh = iter(new_ids(len(batch) - len(given)))
        ids = [event.id or next(fresh) for event in batch]
        # Lock the head before looking: two publishes of one id must not both find it missing.
        # How far it moves is known only once the duplicates are.
        seq, clock = await _advance(conn, tenant_id, 0, now)
        known = await _existing(conn, tenant_id, given)
    else:
        ids = new_ids(len(batch))
        # Nothing to look up: one statement takes the lock and every sequence number.
        last, clock = await _advance(conn, tenant_id, len(batch), now)
        seq, known = last - len(batch), {}
    # One pass makes each new event, its row and its share of the wake-up notice (a pass
    # per piece, and a tuple per event handed between them, took a sixth longer). Rows hold
    # created_at as the driver takes it (on SQLite, text): most events take the clock's,
    # converted once for all of them.
    as_column = _created_at_column(conn)
    clock_column = as_column(clock)
    events: list[StoredEvent] = []
    # Without given ids every event is new: one list serves as both.
    result = AppendResult(events=events, appended=[] if given else events)
    appended = result.appended
    rows: list[tuple[Any, ...]] = []
    tally = NoticeTally()
    for (event_type, object_json, _, moment), event_id in zip(batch, ids, strict=True):
        if known and event_id in known:
            events.append(known[event_id])
            continue
        seq += 1
        category, size = category_of(event_type), event_size(event_type, object_json)
        if moment is None:
            moment, column = clock, clock_column
        else:
            column = as_column(moment)
        stored = StoredEvent(seq, event_id, event_type, moment, object_json)
        events.append(stored)
        if given:  # only given ids can come again, later in the same batch
            known[event_id] = stored
            appended.append(stored)
        rows.append((tenant_id, seq, event_id, event_type, category, column, object_json, size))
        tally.add(category, size, moment)
    if given and appended:
        await _advance(conn, tenant_id, len(appended), now)
    if appended:
        result.notice = tally.notice(tenant_id, seq)
        await _insert(conn, rows)
    return result


COLUMNS = ("tenant_id", "seq", "id", "type", "category", "created_at", "object", "size")
INSERT_SQLITE = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


def _created_at_column(conn: AsyncConnection) -> Callable[[datetime], Any]:
    """How a row's created_at goes to the driver: the column type's text on SQLite (rows go
    through the driver's bulk path, past SQLAlchemy's processors), the datetime on
    PostgreSQL (``COPY`` encodes it)."""
    if conn.dialect.name == "postgresql":
        return _same
    as_text = events.c.created_at.type.bind_processor(conn.dialect)
    assert as_text is not None
    return as_text


def _same(moment: datetime) -> datetime:
    return moment


async def _insert(conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
    """Rows into the log through the driver's own bulk path, in the caller's transaction:
    ``COPY`` on PostgreSQL, ``executemany`` of plain tuples on SQLite. SQLAlchemy's per-row
    parameter processing cost more than the insert itself (a third of a publish's time)."""
    if conn.dialect.name == "postgresql":
        # After the tenant-row lock, so the transaction has begun on this connection (the
        # adapter begins lazily, at the first statement through it).
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None and driver.is_in_transaction(), "COPY outside a transaction"
        await driver.copy_records_to_table("events", records=rows, columns=COLUMNS)
        return
    await conn.exec_driver_sql(INSERT_SQLITE, rows)


async def get_event_for_tenant(
    conn: AsyncConnection, tenant_id: str, event_id: str
) -> StoredEvent | None:
    if not is_id(event_id):
        return None
    query = select(*_FULL).where(events.c.tenant_id == tenant_id, events.c.id == event_id)
    row = (await conn.execute(query)).first()
    return _stored(row) if row else None


@dataclass(frozen=True, slots=True)
class EventQuery:
    after: int = 0
    limit: int = 100
    types: Sequence[str] = ()
    categories: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_events_for_tenant(
    conn: AsyncConnection, tenant_id: str, query: EventQuery
) -> list[StoredEvent]:
    """Oldest first from sequence ``after`` (exclusive); cost bounded by ``limit`` and filters."""
    stmt = select(*_FULL).where(events.c.tenant_id == tenant_id, events.c.seq > query.after)
    if query.types:
        stmt = stmt.where(events.c.type.in_(query.types))
    if query.categories:
        stmt = stmt.where(events.c.category.in_(query.categories))
    if query.created_after:
        stmt = stmt.where(events.c.created_at > query.created_after)
    if query.created_before:
        stmt = stmt.where(events.c.created_at < query.created_before)
    stmt = stmt.order_by(events.c.seq).limit(query.limit)
    return [_stored(row) for row in await conn.execute(stmt)]


def _filtered(stmt, category_filter: CategoryFilter):  # type: ignore[no-untyped-def]
    if category_filter.include is not None:
        stmt = stmt.where(events.c.category.in_(sorted(category_filter.include)))
    if category_filter.exclude:
        stmt = stmt.where(events.c.category.not_in(sorted(category_filter.exclude)))
    return stmt


async def waiting_events(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    after: int,
    category_filter: CategoryFilter,
    limit: int,
) -> list[tuple[Waiting, StoredEvent]]:
    """The first ``limit`` events a webhook has waiting after its cursor, in log order, with
    what packing needs to know of each."""
    rows = await conn.execute(
        _waiting_statement(category_filter),
        {"b_tenant": tenant_id, "b_after": after, "b_limit": limit},
    )
    # Unpacked by position: the worker reads a window for every few packages it sends.
    return [
        (Waiting(seq, size, created_at), StoredEvent(seq, event_id, event_type, created_at, body))
        for seq, event_id, event_type, created_at, body, size in rows.all()
    ]


@functools.lru_cache(maxsize=4096)
def _waiting_statement(category_filter: CategoryFilter) -> Select[Any]:
    """Built once per filter: the worker runs it for every package (see store/deliveries)."""
    stmt = select(*_FULL, events.c.size).where(
        events.c.tenant_id == bindparam("b_tenant"), events.c.seq > bindparam("b_after")
    )
    return _filtered(stmt, category_filter).order_by(events.c.seq).limit(bindparam("b_limit"))


async def events_by_seq(
    conn: AsyncConnection, tenant_id: str, seqs: Sequence[int]
) -> list[StoredEvent]:
    """Exactly these events (a package's), in log order."""
    found: list[StoredEvent] = []
    for start in range(0, len(seqs), _CHUNK):
        chunk = seqs[start : start + _CHUNK]
        stmt = select(*_FULL).where(events.c.tenant_id == tenant_id, events.c.seq.in_(chunk))
        found.extend(_stored(row) for row in await conn.execute(stmt))
    return sorted(found, key=lambda event: event.seq)


async def log_head(conn: AsyncConnection, tenant_id: str) -> int:
    """The tenant's last sequence number."""
    query = select(tenants.c.last_seq).where(tenants.c.id == tenant_id)
    return int((await conn.execute(query)).scalar_one())


async def log_heads(conn: AsyncConnection) -> dict[str, int]:
    """Every tenant's last sequence number (the workers' fallback for missed wake-ups)."""
    rows = await conn.execute(select(tenants.c.id, tenants.c.last_seq))
    return {row.id: row.last_seq for row in rows}
