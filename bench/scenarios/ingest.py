"""Ingest: events/s accepted by POST /events (batches of 500) and by the in-process Python
publish call (``append_events``, what ``hookline events publish`` uses), beside the raw insert
rate of the same rows with the same driver in batches of 500 (the limit): ``sqlite3``
``executemany`` on SQLite, and on PostgreSQL asyncpg ``COPY`` (what ``append_events`` uses
there) with ``executemany`` shown for reference.

POST /events is measured twice: against one ``hookline api`` process (4 requests in flight),
and against ``hookline api --processes auto`` (one per CPU, 4 in flight for each: the kernel
spreads connections, not requests, over the processes, and four connections all land on one
of two processes one time in eight), each into an empty log of its own. The raw insert runs
after POST /events and the Python call, into a log that holds their 200k rows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import (
    Stack,
    append_backlog,
    fresh_database,
    hookline_env,
    log,
    make_events,
    median,
    new_tenant,
    publish_api,
    start_api,
)
from bench.report import ingest_limit
from bench.scenarios import Context
from hookline.supervisor import process_count

BATCH = 500
IN_FLIGHT = 4  # requests in flight per API process


def _rows(tenant_id: str, total: int) -> list[tuple[Any, ...]]:
    """The rows append_events would write for ``total`` events, as driver tuples in
    ``COLUMNS`` order (created_at as a datetime: each raw insert converts it its own way)."""
    from hookline.domain.events import category_of, event_size, parse_new_event
    from hookline.ids import new_id, utcnow

    now = utcnow()
    rows = []
    for seq, raw in enumerate(make_events(total), start=1):
        new = parse_new_event(raw, open_catalog=False, max_object_bytes=262_144, now=now)
        category, size = category_of(new.type), event_size(new.type, new.object_json)
        rows.append((tenant_id, seq, new_id(), new.type, category, now, new.object_json, size))
    return rows


_OLDER_PRAGMAS = (
    "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON",
    "cache_size=-65536",
)  # fmt: skip


def _raw_sqlite(path: str, rows: list[tuple[Any, ...]]) -> float:
    """sqlite3, the driver Hookline writes with (store/db.py), with Hookline's pragmas."""
    import sqlite3

    from hookline.store import db
    from hookline.store.events import INSERT_SQLITE

    # A --ref from before SQLITE_PRAGMAS (052cbb2) set these same five in its connect hook.
    pragmas = getattr(db, "SQLITE_PRAGMAS", _OLDER_PRAGMAS)
    rows = [(*r[:5], r[5].replace(tzinfo=None).isoformat(" "), *r[6:]) for r in rows]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQLITE, rows[start : start + BATCH])
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


async def _raw_postgres(url: str, rows: list[tuple[Any, ...]], copy: bool) -> float:
    import asyncpg

    from hookline.store.events import COLUMNS

    placeholders = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    conn = await asyncpg.connect(url, timeout=10)
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            async with conn.transaction():
                if copy:
                    await conn.copy_records_to_table("events", records=chunk, columns=COLUMNS)
                else:
                    await conn.executemany(sql, chunk)
        return time.perf_counter() - started
    finally:
        await conn.close()


def _publish_rate(api: str, key: str, total: int, in_flight: int) -> float:
    asyncio.run(publish_api(api, key, 2 * BATCH, concurrency=in_flight))  # warm up
    return total / asyncio.run(publish_api(api, key, total, batch=BATCH, concurrency=in_flight))


def _one_run(kind: str, total: int, processes: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with Stack() as stack:
        db = fresh_database(stack, kind)
        env = hookline_env(db)
        key = new_tenant(env, "bench")
        new_tenant(env, "python")  # the Python publish call appends to its own log
        new_tenant(env, "raw")  # and the raw inserts to theirs
        api = start_api(stack, db, env)
        out["api"] = _publish_rate(api, key, total, IN_FLIGHT)
        out["python"] = total / asyncio.run(append_backlog(db.url, "python", total, BATCH))
        tenant_id = _tenant_id(db.url, "raw")
        rows = _rows(tenant_id, total)
        if kind == "sqlite":
            out["raw"] = total / _raw_sqlite(db.url.removeprefix("sqlite:///"), rows)
        else:
            out["raw"] = total / asyncio.run(_raw_postgres(db.url, rows, copy=False))
            rows = _rows(_tenant_id(db.url, "raw2", create=True), total)
            out["raw_copy"] = total / asyncio.run(_raw_postgres(db.url, rows, copy=True))
    if processes > 1:
        out["api_processes"] = _api_processes_rate(kind, total, processes)
    return out


def _api_processes_rate(kind: str, total: int, processes: int) -> float:
    """POST /events to ``hookline api --processes``, into an empty log of its own, as the
    one-process run publishes into (a log that already holds the other runs' 300k rows
    inserts more slowly: 87-90k events/s against 111-115k here on SQLite)."""
    with Stack() as stack:
        db = fresh_database(stack, kind)
        env = hookline_env(db, HOOKLINE_API_PROCESSES=str(processes))
        key = new_tenant(env, "bench")
        many = start_api(stack, db, env)
        return _publish_rate(many, key, total, IN_FLIGHT * processes)


def _tenant_id(url: str, name: str, create: bool = False) -> str:
    from hookline.store import tenants
    from hookline.store.db import Database

    async def go() -> str:
        db = Database(url)
        try:
            async with db.write() as conn:
                if create:
                    return await tenants.create_tenant(conn, name)
                return await tenants.find_tenant(conn, name)
        finally:
            await db.close()

    return asyncio.run(go())


def run(ctx: Context) -> None:
    total = ctx.size(40_000, 100_000)
    processes = process_count("auto")
    results: dict[str, Any] = {"events_per_run": total, "batch": BATCH, "in_flight": IN_FLIGHT,
                               "api_processes": processes}  # fmt: skip
    for kind in ctx.dbs:
        runs: list[dict[str, float]] = []
        for n in ctx.repeats(f"ingest {kind}"):
            log(f"ingest {kind}: run {n + 1}/{ctx.runs}, {total} events")
            runs.append(_one_run(kind, total, processes))
        med = {k: median(r[k] for r in runs) for k in runs[0]} if runs else {}
        results[kind] = {"runs": runs, "median": med}
        if not med:
            continue
        ctx.table.add("ingest", f"{kind}: POST /events (batch {BATCH})", med["api"], "events/s")
        if "api_processes" in med:
            ctx.table.add("ingest", f"{kind}: POST /events, api --processes {processes}",
                          med["api_processes"], "events/s")  # fmt: skip
        ctx.table.add("ingest", f"{kind}: Python append_events (batch {BATCH})", med["python"],
                      "events/s")  # fmt: skip
        label = "sqlite3 executemany" if kind == "sqlite" else "asyncpg executemany"
        ctx.table.add("ingest", f"{kind}: raw insert, {label}", med["raw"], "events/s")
        if "raw_copy" in med:
            ctx.table.add("ingest", f"{kind}: raw insert, asyncpg COPY", med["raw_copy"],
                          "events/s")  # fmt: skip
        limit = ingest_limit(med)
        ctx.table.add("ingest", f"{kind}: POST /events / raw insert", med["api"] / limit,
                      "ratio")  # fmt: skip
        if "api_processes" in med:
            ctx.table.add("ingest", f"{kind}: POST /events, {processes} processes / raw insert",
                          med["api_processes"] / limit, "ratio")  # fmt: skip
        ctx.table.add("ingest", f"{kind}: Python publish / raw insert",
                      med["python"] / limit, "ratio")  # fmt: skip
    ctx.results["ingest"] = results
