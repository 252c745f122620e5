"""Latency: steady publishing at 1k events/s through POST /events (a batch every 50 ms) to one
webhook with ``delay`` 1s; from the publish call's commit (its 201 answer) to the receiver's
arrival, p50/p95/p99, and the same minus the configured delay.

SQLite runs ``hookline serve`` (API and worker in one process, in-process wake-ups);
PostgreSQL runs ``hookline api`` + ``hookline worker`` (LISTEN/NOTIFY wake-ups)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from bench.common import (
    BenchError,
    Receiver,
    Stack,
    auth,
    create_webhooks,
    fresh_database,
    hookline_env,
    log,
    make_events,
    median,
    new_tenant,
    percentile,
    start_api,
    start_worker,
)
from bench.scenarios import Context

RATE = 1000
TICK = 0.05
DELAY_S = 1.0


async def steady_publish(api: str, key: str, seconds: float) -> tuple[dict[str, float], float]:
    """Publish RATE events/s for ``seconds``; {event id: commit time} and the rate achieved."""
    per_tick = int(RATE * TICK)
    committed: dict[str, float] = {}
    ticks = int(seconds / TICK)
    async with aiohttp.ClientSession(base_url=api, timeout=aiohttp.ClientTimeout(30)) as http:
        started = time.perf_counter()
        for tick in range(ticks):
            wait = started + tick * TICK - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            body = orjson.dumps({"events": make_events(per_tick, tick * per_tick)})
            async with http.post("/events", data=body, headers=auth(key)) as response:
                if response.status != 201:
                    raise BenchError(f"POST /events -> {response.status}")
                stored = orjson.loads(await response.read())["events"]
            now = time.time()
            committed.update((e["id"], now) for e in stored)
        took = time.perf_counter() - started
    return committed, len(committed) / took


def latency_run(kind: str, seconds: float, max_package_size: int) -> dict[str, Any]:
    with Stack() as stack:
        receiver = Receiver(stack)
        db = fresh_database(stack, kind)
        env = hookline_env(db)
        key = new_tenant(env)
        api = start_api(stack, db, env, role="serve" if kind == "sqlite" else "api")
        if kind != "sqlite":
            start_worker(stack, env)
        asyncio.run(create_webhooks(api, key, [receiver.url("/h/0")], delay=f"{DELAY_S:.0f}s",
                                    max_package_size=max_package_size))  # fmt: skip
        asyncio.run(receiver.reset(record=True))
        committed, rate = asyncio.run(steady_publish(api, key, seconds))
        asyncio.run(receiver.wait_events(len(committed), 60, stack.procs))
        arrivals = asyncio.run(receiver.arrivals())
    lat = [(arrivals[i] - t) * 1000 for i, t in committed.items() if i in arrivals]
    return {
        "events": len(committed),
        "publish_rate": rate,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat),
        "samples": sorted(lat)[:: max(1, len(lat) // 2000)],
    }


# 10 KiB (the default) fills in ~30 ms at 1k events/s, so packages leave full, before the delay;
# 1 MiB never fills in a second, so packages leave on the delay.
SIZES = (10240, 1048576)


def run(ctx: Context) -> None:
    seconds = ctx.size(8, 60)
    results: dict[str, Any] = {"rate": RATE, "delay_s": DELAY_S, "seconds": seconds}
    for kind in ctx.dbs:
        for size in SIZES:
            _variant(ctx, kind, size, seconds, results)
    ctx.results["latency"] = results


def _variant(ctx: Context, kind: str, size: int, seconds: float, results: dict[str, Any]) -> None:
    label = f"{kind} max_package_size {size}"
    runs = []
    for n in ctx.repeats(f"latency {label}"):
        log(f"latency {label}: run {n + 1}/{ctx.runs}, {RATE}/s for {seconds}s")
        runs.append(latency_run(kind, seconds, size))
    if not runs:
        return
    med = {k: median(r[k] for r in runs) for k in runs[0] if k != "samples"}
    results[label] = {"runs": runs, "median": med, "max_package_size": size}
    t = ctx.table
    t.add("latency", f"{label}: publish rate", med["publish_rate"], "events/s")
    for q in ("p50", "p95", "p99"):
        t.add("latency", f"{label}: {q} commit->receipt", med[f"{q}_ms"], "ms")
    t.add("latency", f"{label}: p99 minus delay", med["p99_ms"] - DELAY_S * 1000, "ms")
