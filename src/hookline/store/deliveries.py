"""Delivery state: webhook leases, packages and attempts."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Update, any_, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.domain.events import StoredEvent
from hookline.ids import new_id
from hookline.store.db import Confirmation, Later, Tx, run, write
from hookline.store.tables import UTCDateTime, attempts, packages, webhook_state, webhooks


@dataclass(slots=True)
class Package:
    id: str
    tenant_id: str
    webhook_id: str
    kind: str
    status: str
    event_seqs: list[int]
    event_ids: list[str]
    size: int
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    finished_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None


def _package(row: Any) -> Package:
    return Package(
        row.id, row.tenant_id, row.webhook_id, row.kind, row.status, list(row.event_seqs),
        list(row.event_ids), row.size, row.created_at, row.attempts, row.next_attempt_at,
        row.last_attempt_at, row.finished_at, row.last_status, row.last_error,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StateRow:
    """What a worker loads to drive a webhook."""

    webhook_id: str
    tenant_id: str
    cursor_seq: int
    failing_since: datetime | None
    open_package: Package | None


# The hot path's statements are built once: building one per call costs three times as much as
# running it (SQLAlchemy generates its cache key on every new construct).
_PACKAGE_KEYS = (
    "id", "tenant_id", "webhook_id", "kind", "status", "first_seq", "last_seq", "event_seqs",
    "event_ids", "size", "created_at", "attempts", "next_attempt_at",
)  # fmt: skip
# Every column named, so the statements compile once whatever their parameters (see db.run).
_INSERT_PACKAGE = insert(packages).values(
    {key: bindparam(key, type_=packages.c[key].type) for key in _PACKAGE_KEYS}
)
_INSERT_ATTEMPT = insert(attempts).values(
    {c.name: bindparam(c.name, type_=c.type) for c in attempts.c}
)
# The cursor moves only if nothing changed since the package was planned: same cursor, no
# open package, and the webhook's settings as loaded (any PATCH or DELETE moves updated_at),
# still enabled. Otherwise a package cut with an old filter, size or URL would be sent.
_SETTINGS_UNCHANGED = exists().where(
    webhooks.c.id == webhook_state.c.webhook_id,
    webhooks.c.updated_at == bindparam("b_config"),
    webhooks.c.enabled.is_(True),
    webhooks.c.deleted_at.is_(None),
)
_MOVE_CURSOR_UNLEASED = (
    update(webhook_state)
    .where(
        webhook_state.c.webhook_id == bindparam("b_webhook"),
        webhook_state.c.cursor_seq == bindparam("b_cursor"),
        webhook_state.c.open_package_id.is_(None),
        _SETTINGS_UNCHANGED,
    )
    .values(cursor_seq=bindparam("v_cursor"), open_package_id=bindparam("v_package"))
)
_MOVE_CURSOR = _MOVE_CURSOR_UNLEASED.where(webhook_state.c.lease_owner == bindparam("b_owner"))


@functools.cache
def _move_cursor_closing(*, failing: bool) -> Update:
    """``_MOVE_CURSOR``, for a webhook whose open package is the ``Closing`` one: also
    closes it and sets ``failing_since`` as ``settle_state`` would."""
    return (
        update(webhook_state)
        .where(
            webhook_state.c.webhook_id == bindparam("b_webhook"),
            webhook_state.c.cursor_seq == bindparam("b_cursor"),
            webhook_state.c.open_package_id == bindparam("b_package"),
            webhook_state.c.lease_owner == bindparam("b_owner"),
            _SETTINGS_UNCHANGED,
        )
        .values(
            cursor_seq=bindparam("v_cursor"), open_package_id=bindparam("v_package"),
            failing_since=_failing_since(failing),
        )
    )  # fmt: skip


_FINISH_ATTEMPT = (
    update(packages)
    .where(packages.c.id == bindparam("b_package"), packages.c.status == "pending")
    .values(
        status=bindparam("v_status"), attempts=bindparam("v_attempts"),
        next_attempt_at=bindparam("v_next"), last_attempt_at=bindparam("v_last"),
        finished_at=bindparam("v_finished"), last_status=bindparam("v_code"),
        last_error=bindparam("v_error"),
    )
)  # fmt: skip

# On PostgreSQL, statements that always go together share a round trip through data-modifying
# CTEs (SQLite has no such CTEs, and there a statement is a local call anyway): an attempt's
# row and its package's new status; a package's row and the cursor move it depends on (the
# INSERT takes its one row from the UPDATE's RETURNING, so it inserts nothing when the guarded
# UPDATE matched nothing); and, when an attempt closes a package, both of those at once. The
# statements' bind names are distinct, or shared only where they carry the same value.
# The bind names of a package's and an attempt's columns, made once: formatting them for
# every package delivered was 1.8 µs of it (timeit).
_ATTEMPT_KEYS_PG = {c.name: f"a_{c.name}" for c in attempts.c}
_PACKAGE_KEYS_PG = tuple(f"p_{key}" for key in _PACKAGE_KEYS)
_INSERT_ATTEMPT_PG = insert(attempts).values(
    {c.name: bindparam(_ATTEMPT_KEYS_PG[c.name], type_=c.type) for c in attempts.c}
)
_RECORD_ATTEMPT_PG = _INSERT_ATTEMPT_PG.add_cte(_FINISH_ATTEMPT.cte("finish"))
_PACKAGE_COLUMNS = [c for c in packages.c if c.name in _PACKAGE_KEYS]


def _recording_attempt(statement: Any, *, after: Any = None) -> Any:
    """``statement``, also recording a ``Closing``'s attempt (see ``_closing_params``). The
    package's row is updated last, after ``after`` (a CTE) has run, so rows are locked in the
    order of store/webhooks.py: webhook_state, then packages."""
    finish = _FINISH_ATTEMPT
    if after is not None:
        # Reading ``after`` makes it run first; the condition itself always holds.
        finish = finish.where(select(func.count()).select_from(after).scalar_subquery() >= 0)
    return statement.add_cte(finish.cte("finish"), _INSERT_ATTEMPT_PG.cte("attempt"))


@functools.cache
def _open_package_pg(statement: Update, failing: bool | None) -> Insert:
    """Move the cursor with ``statement`` and insert the package if it moved. With ``failing``
    (a ``Closing``'s), also record the closing attempt and, if the cursor did not move, close
    the package as ``close_package`` does: every outcome in one statement."""
    moved = statement.returning(webhook_state.c.webhook_id).cte("moved")
    row = select(*(bindparam(f"p_{c.name}", type_=c.type) for c in _PACKAGE_COLUMNS))
    opened = insert(packages).from_select(_PACKAGE_COLUMNS, row.select_from(moved))
    if failing is None:
        return opened
    # Reads ``moved``, so it runs after it and updates the row only if ``moved`` did not.
    unmoved = _settle_statement(closed=True, failing=failing).where(
        ~select(moved.c.webhook_id).exists()
    )
    closed = unmoved.returning(webhook_state.c.webhook_id).cte("closed")
    return _recording_attempt(opened.add_cte(closed), after=closed)


@functools.cache
def _close_package_pg(failing: bool) -> Update:
    return _recording_attempt(_settle_statement(closed=True, failing=failing))


# --- leases --------------------------------------------------------------------------------


async def claim_webhooks(
    conn: AsyncConnection, owner: str, *, now: datetime, until: datetime, limit: int
) -> list[str]:
    """Take the lease of up to ``limit`` enabled webhooks nobody holds (or whose holder's lease
    ran out). Webhooks ``owner`` holds already are not counted: ``renew_leases`` keeps those."""
    free = (
        select(webhook_state.c.webhook_id)
        .join(webhooks, webhooks.c.id == webhook_state.c.webhook_id)
        .where(
            webhooks.c.enabled.is_(True),
            webhooks.c.deleted_at.is_(None),
            webhook_state.c.lease_owner.is_(None) | (webhook_state.c.lease_until < now),
            webhook_state.c.lease_owner.is_(None) | (webhook_state.c.lease_owner != owner),
        )
        .limit(limit)
        .with_for_update(skip_locked=True, of=webhook_state)
    )
    ids = [row.webhook_id for row in await conn.execute(free)]
    if ids:
        await conn.execute(
            update(webhook_state)
            .where(webhook_state.c.webhook_id.in_(ids))
            .values(lease_owner=owner, lease_until=until)
        )
    return ids


async def renew_leases(
    conn: AsyncConnection, owner: str, *, until: datetime
) -> tuple[set[str], set[str]]:
    """Extend the leases ``owner`` holds; returns the webhooks it holds, and those of them
    whose rows another transaction has locked right now (PostgreSQL), left for ``renew_lease``.

    The worker's delivery writes lock these same rows, many webhooks' in one transaction. A
    renewal taking every row in one statement waited for a row such a transaction held while
    holding the rows that transaction came to next: a deadlock, at one renewal in two under
    load, costing a second (``deadlock_timeout``) and a failed batch. So locked rows are
    skipped."""
    free = (
        select(webhook_state.c.webhook_id)
        .where(webhook_state.c.lease_owner == owner)
        .with_for_update(skip_locked=True)
    )
    renewed = await conn.execute(
        update(webhook_state)
        .where(webhook_state.c.webhook_id.in_(free))
        .values(lease_until=until)
        .returning(webhook_state.c.webhook_id)
    )
    extended = {row.webhook_id for row in renewed}
    held = select(webhook_state.c.webhook_id).where(webhook_state.c.lease_owner == owner)
    holds = {row.webhook_id for row in await conn.execute(held)}
    return holds, holds - extended


async def renew_lease(
    conn: AsyncConnection, owner: str, webhook_id: str, *, until: datetime
) -> bool:
    """Extend one lease ``owner`` holds, waiting for its row if it must; whether it still held
    it. Alone in its transaction, it waits holding no other row: no deadlock is possible."""
    result = await conn.execute(
        update(webhook_state)
        .where(webhook_state.c.webhook_id == webhook_id, webhook_state.c.lease_owner == owner)
        .values(lease_until=until)
    )
    return bool(result.rowcount)


async def release_leases(
    conn: AsyncConnection, owner: str, webhook_ids: Sequence[str] | None = None
) -> None:
    stmt = update(webhook_state).where(webhook_state.c.lease_owner == owner)
    if webhook_ids is not None:
        stmt = stmt.where(webhook_state.c.webhook_id.in_(webhook_ids))
    await conn.execute(stmt.values(lease_owner=None, lease_until=None))


async def load_states(conn: AsyncConnection, webhook_ids: Sequence[str]) -> list[StateRow]:
    rows = (
        await conn.execute(select(webhook_state).where(webhook_state.c.webhook_id.in_(webhook_ids)))
    ).all()
    open_ids = [row.open_package_id for row in rows if row.open_package_id]
    opened: dict[str, Package] = {}
    if open_ids:
        query = select(packages).where(packages.c.id.in_(open_ids))
        opened = {row.id: _package(row) for row in await conn.execute(query)}
    return [
        StateRow(
            row.webhook_id,
            row.tenant_id,
            row.cursor_seq,
            row.failing_since,
            opened.get(row.open_package_id) if row.open_package_id else None,
        )
        for row in rows
    ]


# --- packages ------------------------------------------------------------------------------


async def open_package(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    webhook_id: str,
    owner: str | None,
    expected_cursor: int,
    settings_at: datetime,
    events: Sequence[StoredEvent],
    size: int,
    now: datetime,
    later: Later | None = None,
    closing: Closing | None = None,
    package_id: str | None = None,
) -> Package | None:
    """Record the next package of a webhook and move its cursor past it, atomically; with
    ``closing`` (only for a leased webhook), close that finished package in the same step.

    Returns None when the state moved underneath (lease lost; webhook changed, disabled,
    re-enabled or deleted since ``settings_at``): the caller then reloads instead of sending.
    ``closing`` is then still closed, as by ``settle_state``.
    """
    postgres = conn.dialect.name == "postgresql"
    package, statement, params = _opening(
        tenant_id, webhook_id, owner, expected_cursor, settings_at, events, size, now, closing,
        postgres=postgres, package_id=package_id,
    )  # fmt: skip
    moved = await run(conn, statement, params)
    if postgres:
        return package if moved == 1 else None
    if moved != 1:
        if closing is not None:
            await close_package(conn, webhook_id, closing, later=later)
        return None
    if closing is not None:
        await _record_closing(conn, closing, later)
    await write(conn, later, _INSERT_PACKAGE, _package_values(package))
    return package


async def open_package_in(
    tx: Tx,
    *,
    tenant_id: str,
    webhook_id: str,
    owner: str,
    expected_cursor: int,
    settings_at: datetime,
    events: Sequence[StoredEvent],
    size: int,
    now: datetime,
    closing: Closing | None = None,
    package_id: str | None = None,
) -> tuple[Package | None, Confirmation | None]:
    """``open_package`` in a worker's transaction. On PostgreSQL, in a shared transaction,
    the statement is queued (``Tx.later_confirmed``): the group's packages are opened by one
    pipelined ``executemany`` at the flush, not one round trip each. Whether this one opened
    is then known only after the flush: the package comes with its ``Confirmation``."""
    if tx.autocommit or tx.conn.dialect.name != "postgresql":
        package = await open_package(
            tx.conn, tenant_id=tenant_id, webhook_id=webhook_id, owner=owner,
            expected_cursor=expected_cursor, settings_at=settings_at, events=events,
            size=size, now=now, later=None if tx.autocommit else tx.later, closing=closing,
            package_id=package_id,
        )  # fmt: skip
        return package, None
    package, statement, params = _opening(
        tenant_id, webhook_id, owner, expected_cursor, settings_at, events, size, now, closing,
        postgres=True, package_id=package_id,
    )  # fmt: skip
    key = (webhook_id, package.id)
    return package, tx.later_confirmed(statement, params, check=_opened, key=key)


def _opening(
    tenant_id: str, webhook_id: str, owner: str | None, expected_cursor: int,
    settings_at: datetime, events: Sequence[StoredEvent], size: int, now: datetime,
    closing: Closing | None, *, postgres: bool, package_id: str | None = None,
) -> tuple[Package, Any, dict[str, Any]]:  # fmt: skip
    """The package ``open_package`` records, its statement (on PostgreSQL, every write of the
    step in one; on SQLite, the cursor move) and the statement's parameters."""
    package = Package(
        id=package_id or new_id(), tenant_id=tenant_id, webhook_id=webhook_id, kind="queue",
        status="pending", event_seqs=[e.seq for e in events],
        event_ids=[e.id for e in events], size=size, created_at=now, next_attempt_at=now,
    )  # fmt: skip
    params = {
        "b_webhook": webhook_id, "b_cursor": expected_cursor, "b_owner": owner,
        "b_config": settings_at, "v_cursor": events[-1].seq, "v_package": package.id,
    }  # fmt: skip
    if closing is None:
        move = _MOVE_CURSOR if owner is not None else _MOVE_CURSOR_UNLEASED
    else:
        assert owner is not None, "closing is for the worker's leased webhooks"
        move = _move_cursor_closing(failing=closing.failing)
        if postgres:  # the attempt is recorded in the same statement
            params |= _closing_params(closing)
        else:
            params |= _settle_params(webhook_id, closing.package_id, failing=closing.failing,
                                     now=closing.now)  # fmt: skip
    if not postgres:
        return package, move, params
    params |= dict(zip(_PACKAGE_KEYS_PG, _package_tuple(package), strict=True))
    return package, _open_package_pg(move, None if closing is None else closing.failing), params


_IDS = bindparam("ids", type_=ARRAY(webhook_state.c.webhook_id.type))
_OPEN_PACKAGE_IDS = select(webhook_state.c.webhook_id, webhook_state.c.open_package_id).where(
    webhook_state.c.webhook_id == any_(_IDS)
)


async def _opened(conn: AsyncConnection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (webhook, package) pairs, those whose package is now the webhook's open one:
    the packages that opened (each id is new, so nothing else can have set it)."""
    rows = await conn.execute(_OPEN_PACKAGE_IDS, {"ids": [webhook_id for webhook_id, _ in keys]})
    return {(row.webhook_id, row.open_package_id) for row in rows}


def _package_tuple(package: Package) -> tuple[Any, ...]:
    """A package's row, in ``_PACKAGE_KEYS`` order."""
    seqs = package.event_seqs
    return (
        package.id, package.tenant_id, package.webhook_id, package.kind, package.status,
        seqs[0] if seqs else None, seqs[-1] if seqs else None, seqs, package.event_ids,
        package.size, package.created_at, package.attempts, package.next_attempt_at,
    )  # fmt: skip


def _package_values(package: Package) -> dict[str, Any]:
    return dict(zip(_PACKAGE_KEYS, _package_tuple(package), strict=True))


async def insert_package(conn: AsyncConnection, package: Package) -> None:
    """Store a package outside the queue (a test package)."""
    await conn.execute(insert(packages).values(**_package_values(package)))


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    package_id: str
    tenant_id: str
    webhook_id: str
    number: int
    trigger: str
    url: str
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_headers: dict[str, str] | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class Closing:
    """The package an attempt just finished, and that attempt, to record in the statement
    that opens the next package (one statement instead of three on the hot path): ``failing``
    if it was given up, ``delivered`` otherwise."""

    attempt: AttemptRecord
    failing: bool
    now: datetime

    @property
    def package_id(self) -> str:
        return self.attempt.package_id

    @property
    def status(self) -> str:
        return "failed" if self.failing else "delivered"


async def record_attempt(
    conn: AsyncConnection,
    attempt: AttemptRecord,
    *,
    status: str,
    next_attempt_at: datetime | None,
    now: datetime,
    later: Later | None = None,
) -> None:
    """Store one try and where its package stands now (``pending``/``delivered``/``failed``).

    A package dropped while the try was in flight (webhook deleted or re-enabled) stays
    dropped: the try is kept in the history, but it must not revive the package.
    """
    row, finish = _attempt_params(attempt, status=status, next_attempt_at=next_attempt_at, now=now)
    if conn.dialect.name == "postgresql":
        await write(conn, later, _RECORD_ATTEMPT_PG, finish | _prefixed(row))
        return
    await write(conn, later, _INSERT_ATTEMPT, row)
    await write(conn, later, _FINISH_ATTEMPT, finish)


def _attempt_params(
    attempt: AttemptRecord, *, status: str, next_attempt_at: datetime | None, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attempt's row, and the parameters of ``_FINISH_ATTEMPT`` for its package."""
    row = {"id": new_id(), **_attempt_values(attempt)}
    finish = {
        "b_package": attempt.package_id, "v_status": status, "v_attempts": attempt.number,
        "v_next": next_attempt_at, "v_last": attempt.started_at,
        "v_finished": None if status == "pending" else now,
        "v_code": attempt.status_code, "v_error": attempt.error,
    }  # fmt: skip
    return row, finish


def _prefixed(row: dict[str, Any]) -> dict[str, Any]:
    """An attempt's row as ``_INSERT_ATTEMPT_PG`` binds it."""
    return {_ATTEMPT_KEYS_PG[key]: value for key, value in row.items()}


def _closing_params(closing: Closing) -> dict[str, Any]:
    """What the PostgreSQL statements that record a ``Closing`` take, besides their own.

    Exactly what they bind: a parameter the compiled SQL lacks sends the whole batch through
    SQLAlchemy's per-row processing instead of the driver (``store.db.run_many``). Only a
    failing closing's statement takes the time (``_failing_since``); a delivered one's sent
    it anyway, so every package delivered and replaced in one statement took the slow path."""
    row, finish = _attempt_params(
        closing.attempt, status=closing.status, next_attempt_at=None, now=closing.now
    )
    return finish | _prefixed(row) | _failing_params(closing.failing, closing.now)


async def _record_closing(conn: AsyncConnection, closing: Closing, later: Later | None) -> None:
    await record_attempt(
        conn, closing.attempt, status=closing.status, next_attempt_at=None, now=closing.now,
        later=later,
    )  # fmt: skip


def _attempt_values(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "package_id": attempt.package_id,
        "tenant_id": attempt.tenant_id,
        "webhook_id": attempt.webhook_id,
        "number": attempt.number,
        "trigger": attempt.trigger,
        "url": attempt.url,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "response_headers": attempt.response_headers,
        "response_excerpt": attempt.response_excerpt,
    }


async def settle_state(
    conn: AsyncConnection, webhook_id: str, package_id: str, *, closed: bool, failing: bool,
    now: datetime,
) -> None:  # fmt: skip
    """After an attempt: close the open package if it is finished, track when failing began."""
    await run(conn, _settle_statement(closed=closed, failing=failing),
              _settle_params(webhook_id, package_id, failing=failing, now=now))  # fmt: skip


def _settle_params(
    webhook_id: str, package_id: str, *, failing: bool, now: datetime
) -> dict[str, Any]:
    """Exactly what ``_settle_statement`` binds (see ``_closing_params``)."""
    return {"b_webhook": webhook_id, "b_package": package_id} | _failing_params(failing, now)


def _failing_params(failing: bool, now: datetime) -> dict[str, Any]:
    """What ``_failing_since`` binds: the time, when the webhook is failing."""
    return {"v_now": now} if failing else {}


async def close_package(
    conn: AsyncConnection, webhook_id: str, closing: Closing, *, later: Later | None = None
) -> None:
    """Record ``closing``'s attempt and settle the state (as ``settle_state``), for a finished
    package whose next one was not opened with it."""
    if conn.dialect.name == "postgresql":
        params = _closing_params(closing) | {"b_webhook": webhook_id}
        await run(conn, _close_package_pg(closing.failing), params)
        return
    await settle_state(
        conn, webhook_id, closing.package_id, closed=True, failing=closing.failing,
        now=closing.now,
    )  # fmt: skip
    await _record_closing(conn, closing, later)


def _failing_since(failing: bool) -> Any:
    if failing:
        return func.coalesce(webhook_state.c.failing_since, bindparam("v_now", type_=UTCDateTime))
    return None


@functools.cache
def _settle_statement(*, closed: bool, failing: bool) -> Update:
    values: dict[str, Any] = {"failing_since": _failing_since(failing)}
    if closed:
        values["open_package_id"] = None
    return (
        update(webhook_state)
        .where(
            webhook_state.c.webhook_id == bindparam("b_webhook"),
            webhook_state.c.open_package_id == bindparam("b_package"),
        )
        .values(**values)
    )


# --- reads for the API ---------------------------------------------------------------------


async def list_packages_for_tenant(
    conn: AsyncConnection, tenant_id: str, webhook_id: str, *, offset: int, limit: int
) -> tuple[list[Package], int]:
    where = (packages.c.tenant_id == tenant_id) & (packages.c.webhook_id == webhook_id)
    query = select(packages).where(where).order_by(packages.c.id.desc()).offset(offset).limit(limit)
    total = select(func.count()).select_from(packages).where(where)
    rows = (await conn.execute(query)).all()
    return [_package(row) for row in rows], int((await conn.execute(total)).scalar_one())


async def list_attempts_for_tenant(
    conn: AsyncConnection, tenant_id: str, webhook_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    where = (attempts.c.tenant_id == tenant_id) & (attempts.c.webhook_id == webhook_id)
    query = select(attempts).where(where).order_by(attempts.c.id.desc()).offset(offset).limit(limit)
    total = select(func.count()).select_from(attempts).where(where)
    rows = (await conn.execute(query)).mappings().all()
    return [dict(row) for row in rows], int((await conn.execute(total)).scalar_one())


async def queue_depth(conn: AsyncConnection) -> dict[str, int]:
    """Packages waiting to be delivered, and how many of them are being retried (for /metrics).

    A waiting package is a webhook's open one (workers deliver nothing else), so a scrape
    looks each webhook's up by its primary key: it costs the webhooks, never the history.
    A scalar subquery per webhook keeps that plan whatever the tables' statistics say (a join
    could be planned as a scan of every package). ``packages.status`` has no index: an index on
    it would make every change of status a non-HOT update on PostgreSQL (migration 0004);
    finished packages are counted by the workers' counters."""
    tries = (
        select(packages.c.attempts)
        .where(packages.c.id == webhook_state.c.open_package_id, packages.c.status == "pending")
        .scalar_subquery()
    )
    waiting = select(tries.label("tries")).where(webhook_state.c.open_package_id.is_not(None))
    tries_of = waiting.subquery().c.tries
    query = select(func.count(tries_of), func.count().filter(tries_of > 0))
    pending, retrying = (await conn.execute(query)).one()
    return {"pending": int(pending), "retrying": int(retrying)}
